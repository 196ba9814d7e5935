
/*
 * Copyright (C) ngx_rtmp_pgauth authors
 */


#ifndef _NGX_RTMP_PGAUTH_PARSE_H_INCLUDED_
#define _NGX_RTMP_PGAUTH_PARSE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


#define NGX_RTMP_PGAUTH_SID_LEN        64
#define NGX_RTMP_PGAUTH_REASON_LEN     32

/* nginx-rtmp's NGX_RTMP_MAX_NAME: names are at most 255 bytes */
#define NGX_RTMP_PGAUTH_NAME_LEN       256

/*
 * The most seconds parse_seconds() gives: their milliseconds fit an
 * ngx_msec_t, and a signed one where it has 32 bits (about 23 days, a
 * longer authorization ends then, and is asked for again); 10,000 years
 */
#define NGX_RTMP_PGAUTH_MAX_SECONDS                                         \
    (sizeof(ngx_msec_t) == 4 ? 2000000.0 : 315360000000.0)

#define NGX_RTMP_PGAUTH_NOTIFY_END     1
#define NGX_RTMP_PGAUTH_NOTIFY_RECHECK 2
#define NGX_RTMP_PGAUTH_NOTIFY_KEY     3
#define NGX_RTMP_PGAUTH_NOTIFY_VIEWER_END  4
#define NGX_RTMP_PGAUTH_NOTIFY_PROBE   5

#define NGX_RTMP_PGAUTH_DIGEST_LEN     32

/* the random part of a viewer session handed to its client, in bytes */
#define NGX_RTMP_PGAUTH_SECRET_LEN     16


typedef struct {
    ngx_uint_t                      max;        /* highest $N, <= 100000 */
    ngx_uint_t                      statements;
    u_char                          keyword[8]; /* of the first, lowercase */
    unsigned                        first:1;    /* $1 is there */
    unsigned                        open:1;     /* a quote or comment */
    unsigned                        prev_e:1;   /* (scanning: E'') */
} ngx_rtmp_pgauth_query_t;


void ngx_rtmp_pgauth_query_scan(u_char *p, size_t len,
    ngx_rtmp_pgauth_query_t *q);
u_char *ngx_rtmp_pgauth_scrub(u_char *dst, size_t size, u_char *src,
    size_t len, u_char *secret, size_t slen);
ngx_int_t ngx_rtmp_pgauth_channel_valid(u_char *p, size_t len);
ngx_int_t ngx_rtmp_pgauth_parse_notify(u_char *p, size_t len,
    ngx_str_t *sid, ngx_str_t *reason, u_char *digest);
ngx_int_t ngx_rtmp_pgauth_sid_newer(u_char *a, u_char *b);
ngx_int_t ngx_rtmp_pgauth_public_name(u_char *name, size_t len);
ngx_int_t ngx_rtmp_pgauth_utf8(u_char *p, size_t len);
ngx_int_t ngx_rtmp_pgauth_parse_seconds(u_char *p, size_t len,
    ngx_msec_t *ms);
ngx_uint_t ngx_rtmp_pgauth_list_len(u_char *list, size_t len);
u_char *ngx_rtmp_pgauth_list_item(u_char *list, size_t len, ngx_uint_t n,
    ngx_uint_t i, size_t *ilen);
u_char *ngx_rtmp_pgauth_array_add(u_char *dst, u_char *item, size_t len,
    ngx_uint_t first);
u_char *ngx_rtmp_pgauth_array_end(u_char *dst, ngx_uint_t empty);
ngx_int_t ngx_rtmp_pgauth_hls_stream(u_char *uri, size_t len,
    ngx_str_t *name, ngx_str_t *dir, ngx_uint_t *playlist);
ngx_int_t ngx_rtmp_pgauth_parse_viewer(u_char *p, size_t len, ngx_str_t *id,
    u_char *secret);


#endif /* _NGX_RTMP_PGAUTH_PARSE_H_INCLUDED_ */
