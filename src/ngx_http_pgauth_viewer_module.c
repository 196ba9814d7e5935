
/*
 * Copyright (C) ngx_rtmp_pgauth authors
 */


/*
 * pgauth_viewer: private HLS.  A request for a playlist or a segment of a
 * location with "pgauth_viewer on" must carry a viewer token
 * (?token=...) or the viewer session a first request with one was given.
 * The first request of a viewer asks PostgreSQL (pgauth.authorize_viewer()
 * through the worker's pool, without blocking it); the viewer session it
 * opens is kept in the shared "pgauth_viewer_zone", and every later
 * request of the viewer is checked there, without a query.
 *
 * The session reaches the segments two ways, so that players that drop
 * one still work: a cookie per stream, scoped to the playlist's
 * directory, and a "pgauth=<session>" parameter this module adds to every
 * URI of the playlists it serves.  Neither is the token: the session is
 * the viewer session's id and a random secret of nginx's.  Responses are
 * "Cache-Control: private" (playlists "no-store" too): a shared cache in
 * front never gives one viewer's response to another.
 *
 * The table holds two kinds of entries: by token ("t", digest, app,
 * stream) the session a token has on this node, and by session ("s", id)
 * its secret, stream and how long it holds.  A revoked token's sessions
 * go when the database confirms the notification about them (live.c).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_rtmp_pgauth_module.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>


#define NGX_HTTP_PGAUTH_VIEWER_QUERY                                        \
    "SELECT session_id, valid_for"                                          \
    " FROM pgauth.authorize_viewer($1, $2, $3, $4, 'hls')"

#define NGX_HTTP_PGAUTH_VIEWER_ZONE    "pgauth_viewers"
#define NGX_HTTP_PGAUTH_VIEWER_SIZE    (1024 * 1024)

/* "<id>-<secret>" */
#define NGX_HTTP_PGAUTH_SESSION_LEN                                         \
    (NGX_RTMP_PGAUTH_SID_LEN + 1 + 2 * NGX_RTMP_PGAUTH_SECRET_LEN)

/* "t", the digest, app, "/", name, "/", address */
#define NGX_HTTP_PGAUTH_TOKEN_KEY_LEN                                       \
    (1 + NGX_RTMP_PGAUTH_DIGEST_LEN + NGX_RTMP_MAX_NAME                      \
     + NGX_RTMP_PGAUTH_NAME_LEN + 1 + NGX_SOCKADDR_STRLEN)

/*
 * A playlist asks for a session's successor this long before it lapses
 * (half its time, when shorter): the URIs it lists hold for that long
 */
#define NGX_HTTP_PGAUTH_RENEW          60000

/*
 * A playlist waits for the successor this long at most, then goes out
 * with the session it came with (a database outage delays no viewer
 * more); another one asks again after the gap (a third of what the
 * session has left, when less)
 */
#define NGX_HTTP_PGAUTH_RENEW_WAIT     1000
#define NGX_HTTP_PGAUTH_RENEW_GAP      10000

/* what a refusal's log line calls it */
#define ngx_http_pgauth_viewer_what(ctx)                                    \
    ((ctx)->renew ? "viewer session not renewed" : "viewer refused")

/* a viewer is counted while it asks for something this often */
#define NGX_HTTP_PGAUTH_VIEWER_SEEN    30000

/* streams counted at most */
#define NGX_HTTP_PGAUTH_MAX_COUNTS     1000

/* a playlist larger than this is refused */
#define NGX_HTTP_PGAUTH_MAX_PLAYLIST   (1024 * 1024)


typedef struct {
    ngx_shm_zone_t                 *zone;
    ngx_flag_t                      used;
    ngx_array_t                     limits;     /* ngx_shm_zone_t * */
} ngx_http_pgauth_viewer_main_conf_t;


typedef struct {
    ngx_flag_t                      enable;
    ngx_str_t                       app;
    ngx_msec_t                      timeout;
    ngx_shm_zone_t                 *limit;      /* a pgauth_limit_zone */
} ngx_http_pgauth_viewer_loc_conf_t;


struct ngx_rtmp_pgauth_viewers_s {
    ngx_rtmp_pgauth_shm_t           shm;
};


/*
 * By session: "s" and the id.  A session is its client address's: another
 * address needs the token.
 */

typedef struct {
    ngx_msec_t                      until;
    ngx_msec_t                      seen;       /* its last request */
    ngx_msec_t                      renew;      /* a playlist asks again */
    u_char                          secret[NGX_RTMP_PGAUTH_SECRET_LEN];
    u_char                          digest[NGX_RTMP_PGAUTH_DIGEST_LEN];
    u_char                          renewed;    /* its successor is out */
    u_char                          app_len;
    u_char                          name_len;
    u_char                          addr_len;
    u_char                          data[1];    /* app, name, address */
} ngx_http_pgauth_session_node_t;


/* by token: "t", the digest, app, "/", name, "/", client address */

typedef struct {
    ngx_msec_t                      until;
    u_char                          sid_len;
    u_char                          sid[NGX_RTMP_PGAUTH_SID_LEN];
} ngx_http_pgauth_token_node_t;


typedef struct {
    ngx_http_request_t             *request;
    ngx_rtmp_pgauth_req_t          *req;
    ngx_event_t                     resume;
    ngx_int_t                       rc;         /* once decided */

    ngx_str_t                       app;        /* checked for */
    ngx_str_t                       name;       /* of the stream */
    ngx_str_t                       dir;        /* of the URI */
    ngx_str_t                       session;    /* to hand out */
    ngx_msec_t                      left;       /* it holds */
    size_t                          old_len;    /* a session renewed */
    u_char                          old[NGX_RTMP_PGAUTH_SID_LEN];
    u_char                          digest[NGX_RTMP_PGAUTH_DIGEST_LEN];
    u_char                          session_buf[NGX_HTTP_PGAUTH_SESSION_LEN];

    ngx_buf_t                      *body;       /* a playlist, collected */
    ngx_shm_zone_t                 *limit;      /* counted in */

    unsigned                        token:1;    /* its digest is here */
    unsigned                        renew:1;    /* the session is, still */
    unsigned                        successor:1;    /* is opened */
    unsigned                        limited:1;  /* counted by the limiter */
    unsigned                        decided:1;
    unsigned                        allowed:1;
    unsigned                        playlist:1;
    unsigned                        cookie:1;   /* to set */
    unsigned                        done:1;     /* the body went out */
} ngx_http_pgauth_viewer_ctx_t;


/* the counting of viewers, walking the zone */

typedef struct {
    ngx_array_t                    *counts;
    ngx_pool_t                     *pool;
    ngx_int_t                       rc;
} ngx_http_pgauth_viewer_walk_t;


static ngx_int_t ngx_http_pgauth_viewer_handler(ngx_http_request_t *r);
static ngx_http_pgauth_viewer_ctx_t *ngx_http_pgauth_viewer_get_ctx(
    ngx_http_request_t *r);
static ngx_uint_t ngx_http_pgauth_viewer_other(ngx_http_request_t *r,
    ngx_http_pgauth_viewer_ctx_t *ctx, ngx_str_t *app);
static ngx_rtmp_pgauth_viewers_t *ngx_http_pgauth_viewer_table(
    ngx_http_request_t *r);
static ngx_http_pgauth_session_node_t *ngx_http_pgauth_viewer_find(
    ngx_rtmp_pgauth_viewers_t *vs, u_char *sid, size_t len);
static ngx_int_t ngx_http_pgauth_viewer_session(ngx_http_request_t *r,
    ngx_http_pgauth_viewer_ctx_t *ctx, ngx_str_t *app, ngx_str_t *value);
static ngx_uint_t ngx_http_pgauth_viewer_holds(ngx_http_request_t *r,
    ngx_http_pgauth_viewer_ctx_t *ctx, ngx_http_pgauth_session_node_t *sn,
    ngx_str_t *app);
static void ngx_http_pgauth_viewer_renewal(ngx_http_request_t *r,
    ngx_http_pgauth_viewer_ctx_t *ctx, ngx_http_pgauth_session_node_t *sn,
    ngx_str_t *sid);
static void ngx_http_pgauth_viewer_succeeded(ngx_http_request_t *r,
    ngx_http_pgauth_viewer_ctx_t *ctx);
static ngx_int_t ngx_http_pgauth_viewer_token(ngx_http_request_t *r,
    ngx_http_pgauth_viewer_ctx_t *ctx, ngx_str_t *app);
static ngx_int_t ngx_http_pgauth_viewer_ask(ngx_http_request_t *r,
    ngx_http_pgauth_viewer_ctx_t *ctx, ngx_str_t *app);
static void ngx_http_pgauth_viewer_decided(ngx_rtmp_pgauth_req_t *req,
    ngx_uint_t rc, PGresult *res, ngx_str_t *err);
static ngx_int_t ngx_http_pgauth_viewer_open(ngx_http_pgauth_viewer_ctx_t *ctx,
    ngx_str_t *app, u_char *sid, size_t len, ngx_msec_t left);
static void ngx_http_pgauth_viewer_resume(ngx_event_t *ev);
static void ngx_http_pgauth_viewer_cleanup(void *data);
static void ngx_http_pgauth_viewer_mask(ngx_str_t *s);
static size_t ngx_http_pgauth_viewer_token_key(u_char *key, u_char *digest,
    ngx_str_t *app, ngx_str_t *name, ngx_str_t *addr);
static ngx_int_t ngx_http_pgauth_viewer_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_pgauth_viewer_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_buf_t *ngx_http_pgauth_viewer_rewrite(ngx_http_request_t *r,
    ngx_http_pgauth_viewer_ctx_t *ctx);
static ngx_int_t ngx_http_pgauth_viewer_expired(ngx_rtmp_pgauth_shm_t *shm,
    void *value);
static void ngx_http_pgauth_viewer_count(void *value, u_char *key,
    size_t len, void *data);
static char *ngx_http_pgauth_viewer(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_pgauth_viewer_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void *ngx_http_pgauth_viewer_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_pgauth_viewer_init_main_conf(ngx_conf_t *cf,
    void *conf);
static void *ngx_http_pgauth_viewer_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_pgauth_viewer_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_int_t ngx_http_pgauth_viewer_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_pgauth_viewer_init_module(ngx_cycle_t *cycle);
static void ngx_http_pgauth_viewer_unlimit(ngx_http_pgauth_viewer_ctx_t *ctx,
    ngx_uint_t failed);


static ngx_rtmp_pgauth_shm_param_t  ngx_http_pgauth_viewer_params[] = {
    { ngx_null_string, 0, 0, 0, 0, 0 }
};


/* sessions that no longer hold go first; none is pinned */

ngx_rtmp_pgauth_shm_type_t  ngx_rtmp_pgauth_viewer_type = {
    "pgauth_viewer_zone", "pgauth_viewer",
    sizeof(ngx_rtmp_pgauth_viewers_t), ngx_http_pgauth_viewer_params,
    ngx_http_pgauth_viewer_expired, NULL
};


static ngx_str_t  ngx_http_pgauth_viewer_query =
    ngx_string(NGX_HTTP_PGAUTH_VIEWER_QUERY);


static ngx_command_t  ngx_http_pgauth_viewer_commands[] = {

    { ngx_string("pgauth_viewer_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_pgauth_viewer_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("pgauth_viewer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE123,
      ngx_http_pgauth_viewer,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("pgauth_viewer_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pgauth_viewer_loc_conf_t, timeout),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_pgauth_viewer_module_ctx = {
    NULL,                                   /* preconfiguration */
    ngx_http_pgauth_viewer_init,            /* postconfiguration */

    ngx_http_pgauth_viewer_create_main_conf, /* create main configuration */
    ngx_http_pgauth_viewer_init_main_conf,  /* init main configuration */

    NULL,                                   /* create server configuration */
    NULL,                                   /* merge server configuration */

    ngx_http_pgauth_viewer_create_loc_conf, /* create location configuration */
    ngx_http_pgauth_viewer_merge_loc_conf   /* merge location configuration */
};


ngx_module_t  ngx_http_pgauth_viewer_module = {
    NGX_MODULE_V1,
    &ngx_http_pgauth_viewer_module_ctx,     /* module context */
    ngx_http_pgauth_viewer_commands,        /* module directives */
    NGX_HTTP_MODULE,                        /* module type */
    NULL,                                   /* init master */
    ngx_http_pgauth_viewer_init_module,     /* init module */
    NULL,                                   /* init process */
    NULL,                                   /* init thread */
    NULL,                                   /* exit thread */
    NULL,                                   /* exit process */
    NULL,                                   /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


static ngx_int_t
ngx_http_pgauth_viewer_handler(ngx_http_request_t *r)
{
    ngx_int_t                           rc;
    ngx_str_t                           value, cookie;
    ngx_uint_t                          playlist;
    ngx_pool_cleanup_t                 *cln;
    ngx_http_pgauth_viewer_ctx_t       *ctx;
    ngx_http_pgauth_viewer_loc_conf_t  *vlcf;

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_pgauth_viewer_module);

    if (!vlcf->enable || r != r->main) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_pgauth_viewer_get_ctx(r);

    if (ctx && !ctx->req
        && ngx_http_pgauth_viewer_other(r, ctx, &vlcf->app))
    {
        /* redirected to another stream's file: checked anew */
        ctx = NULL;
    }

    if (ctx) {
        /* back from the database, or from an internal redirect */

        if (ctx->req) {
            return NGX_AGAIN;
        }

        if (ctx->decided) {
            return ctx->rc;
        }

        return ctx->allowed ? NGX_OK : NGX_HTTP_FORBIDDEN;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_pgauth_viewer_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_pgauth_viewer_cleanup;
    cln->data = ctx;

    ctx->request = r;
    ctx->app = vlcf->app;

    ngx_http_set_ctx(r, ctx, ngx_http_pgauth_viewer_module);

    /*
     * The token's digest, and the token masked in the request at once,
     * before anything is logged: nginx's own logs (the error log's
     * request, $request, $request_uri) never hold it
     */

    if (ngx_http_arg(r, (u_char *) "token", 5, &value) == NGX_OK
        && value.len > 0 && value.len < NGX_RTMP_PGAUTH_NAME_LEN)
    {
        /* as the player sent it: a token is plain hex, nothing to unescape */
        EVP_Digest(value.data, value.len, ctx->digest, NULL, EVP_sha256(),
                   NULL);
        ctx->token = 1;
    }

    ngx_http_pgauth_viewer_mask(&r->args);
    ngx_http_pgauth_viewer_mask(&r->request_line);
    ngx_http_pgauth_viewer_mask(&r->unparsed_uri);

    /* no hint whether the stream exists: every refusal is the same 403 */

    if (ngx_rtmp_pgauth_hls_stream(r->uri.data, r->uri.len, &ctx->name,
                                   &ctx->dir, &playlist)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "pgauth: viewer refused: not a stream's file");
        return NGX_HTTP_FORBIDDEN;
    }

    ctx->playlist = playlist;

    /* the session handed out before: as a parameter, or the cookie */

    if (ngx_http_arg(r, (u_char *) "pgauth", 6, &value) == NGX_OK
        && ngx_http_pgauth_viewer_session(r, ctx, &vlcf->app, &value)
           == NGX_OK)
    {
        goto allowed;
    }

    cookie.len = sizeof("pgauth_") - 1 + ctx->name.len;
    cookie.data = ngx_pnalloc(r->pool, cookie.len);
    if (cookie.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(ngx_cpymem(cookie.data, "pgauth_", sizeof("pgauth_") - 1),
               ctx->name.data, ctx->name.len);

#if (nginx_version >= 1023000)
    if (ngx_http_parse_multi_header_lines(r, r->headers_in.cookie, &cookie,
                                          &value)
        != NULL)
#else
    if (ngx_http_parse_multi_header_lines(&r->headers_in.cookies, &cookie,
                                          &value)
        != NGX_DECLINED)
#endif
    {
        if (ngx_http_pgauth_viewer_session(r, ctx, &vlcf->app, &value)
            == NGX_OK)
        {
            goto allowed;
        }
    }

    rc = ngx_http_pgauth_viewer_token(r, ctx, &vlcf->app);

    if (rc == NGX_OK && ctx->renew) {
        goto allowed;
    }

    ctx->allowed = (rc == NGX_OK);

    return rc;

allowed:

    ctx->allowed = 1;

    if (!ctx->renew) {
        return NGX_OK;
    }

    /* the session's successor; without one, it holds as it is */

    rc = ngx_http_pgauth_viewer_ask(r, ctx, &vlcf->app);

    return (rc == NGX_AGAIN) ? NGX_AGAIN : NGX_OK;
}


/*
 * The request's context, after an internal redirect too (which clears the
 * modules' contexts): its answer stays private, and a playlist is still
 * rewritten, whichever location serves it.  Found through the request
 * pool's cleanup, as the realip module finds its own.
 */

static ngx_http_pgauth_viewer_ctx_t *
ngx_http_pgauth_viewer_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t            *cln;
    ngx_http_pgauth_viewer_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_pgauth_viewer_module);

    if (ctx || !(r->internal || r->filter_finalize)) {
        return ctx;
    }

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_pgauth_viewer_cleanup) {
            ctx = cln->data;
            ngx_http_set_ctx(r, ctx, ngx_http_pgauth_viewer_module);
            break;
        }
    }

    return ctx;
}


/* whether the request, redirected, is for another stream than ctx's */

static ngx_uint_t
ngx_http_pgauth_viewer_other(ngx_http_request_t *r,
    ngx_http_pgauth_viewer_ctx_t *ctx, ngx_str_t *app)
{
    ngx_str_t   name, dir;
    ngx_uint_t  playlist;

    if (ngx_rtmp_pgauth_hls_stream(r->uri.data, r->uri.len, &name, &dir,
                                   &playlist)
        != NGX_OK)
    {
        /* not a stream's file: refused as a first request would be */
        return 1;
    }

    return app->len != ctx->app.len
           || ngx_strncmp(app->data, ctx->app.data, app->len) != 0
           || name.len != ctx->name.len
           || ngx_strncmp(name.data, ctx->name.data, name.len) != 0;
}


static ngx_rtmp_pgauth_viewers_t *
ngx_http_pgauth_viewer_table(ngx_http_request_t *r)
{
    ngx_http_pgauth_viewer_main_conf_t  *vmcf;

    vmcf = ngx_http_get_module_main_conf(r, ngx_http_pgauth_viewer_module);

    return vmcf->zone->data;
}


/*
 * The viewer session the client hands back: NGX_OK when it holds for this
 * stream, NGX_DECLINED otherwise (the token may still do).
 */

static ngx_int_t
ngx_http_pgauth_viewer_session(ngx_http_request_t *r,
    ngx_http_pgauth_viewer_ctx_t *ctx, ngx_str_t *app, ngx_str_t *value)
{
    u_char                           secret[NGX_RTMP_PGAUTH_SECRET_LEN];
    ngx_int_t                        rc;
    ngx_str_t                        id;
    ngx_rtmp_pgauth_viewers_t       *vs;
    ngx_http_pgauth_session_node_t  *sn;

    if (ngx_rtmp_pgauth_parse_viewer(value->data, value->len, &id, secret)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    vs = ngx_http_pgauth_viewer_table(r);

    rc = NGX_DECLINED;

    ngx_rtmp_pgauth_shm_lock(&vs->shm);

    sn = ngx_http_pgauth_viewer_find(vs, id.data, id.len);

    if (sn
        && (ngx_msec_int_t) (sn->until - ngx_current_msec) > 0
        && CRYPTO_memcmp(sn->secret, secret, sizeof(secret)) == 0
        && ngx_http_pgauth_viewer_holds(r, ctx, sn, app))
    {
        ctx->left = sn->until - ngx_current_msec;

        if (!sn->renewed) {
            sn->seen = ngx_current_msec;
            ngx_http_pgauth_viewer_renewal(r, ctx, sn, &id);
        }

        ngx_rtmp_pgauth_shm_touch(&vs->shm, sn);
        rc = NGX_OK;
    }

    ngx_rtmp_pgauth_shm_unlock(&vs->shm);

    if (rc == NGX_OK) {
        ctx->session.data = ctx->session_buf;
        ctx->session.len = ngx_min(value->len, sizeof(ctx->session_buf));
        ngx_memcpy(ctx->session_buf, value->data, ctx->session.len);
    }

    return rc;
}


/* whether session sn is of this stream and address; under the lock */

static ngx_uint_t
ngx_http_pgauth_viewer_holds(ngx_http_request_t *r,
    ngx_http_pgauth_viewer_ctx_t *ctx, ngx_http_pgauth_session_node_t *sn,
    ngx_str_t *app)
{
    u_char     *p;
    ngx_str_t  *addr;

    addr = &r->connection->addr_text;
    p = sn->data;

    if (sn->app_len != app->len || ngx_strncmp(p, app->data, app->len) != 0)
    {
        return 0;
    }

    p += sn->app_len;

    if (sn->name_len != ctx->name.len
        || ngx_strncmp(p, ctx->name.data, ctx->name.len) != 0)
    {
        return 0;
    }

    p += sn->name_len;

    if (sn->addr_len != addr->len
        || ngx_strncmp(p, addr->data, addr->len) != 0)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "pgauth: viewer session of another address "
                      "name=\"%V\"", &ctx->name);
        return 0;
    }

    return 1;
}


/*
 * A playlist past the session's renewal point asks for its successor
 * with the session's token (its digest); under the lock.
 */

static void
ngx_http_pgauth_viewer_renewal(ngx_http_request_t *r,
    ngx_http_pgauth_viewer_ctx_t *ctx, ngx_http_pgauth_session_node_t *sn,
    ngx_str_t *sid)
{
    if (!ctx->playlist
        || (ngx_msec_int_t) (ngx_current_msec - sn->renew) < 0
        || sid->len > sizeof(ctx->old))
    {
        return;
    }

    /* the next try: in the gap, or sooner for a short session */
    sn->renew = ngx_current_msec
                + ngx_min(NGX_HTTP_PGAUTH_RENEW_GAP,
                          (sn->until - ngx_current_msec) / 3);

    ngx_memcpy(ctx->digest, sn->digest, sizeof(ctx->digest));
    ngx_memcpy(ctx->old, sid->data, sid->len);
    ctx->old_len = sid->len;
    ctx->token = 1;
    ctx->renew = 1;
}


/*
 * A viewer token: the session it has on this node already, or the
 * database is asked for one.
 */

static ngx_int_t
ngx_http_pgauth_viewer_token(ngx_http_request_t *r,
    ngx_http_pgauth_viewer_ctx_t *ctx, ngx_str_t *app)
{
    u_char                           *p;
    u_char                            key[NGX_HTTP_PGAUTH_TOKEN_KEY_LEN];
    u_char                            secret[NGX_RTMP_PGAUTH_SECRET_LEN];
    size_t                            len;
    ngx_str_t                         session, sid;
    ngx_rtmp_pgauth_viewers_t        *vs;
    ngx_http_pgauth_token_node_t     *tn;
    ngx_http_pgauth_session_node_t   *sn;

    if (!ctx->token) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "pgauth: viewer refused name=\"%V\": no token",
                      &ctx->name);
        return NGX_HTTP_FORBIDDEN;
    }

    vs = ngx_http_pgauth_viewer_table(r);

    len = ngx_http_pgauth_viewer_token_key(key, ctx->digest, app, &ctx->name,
                                           &r->connection->addr_text);

    session.len = 0;

    ngx_rtmp_pgauth_shm_lock(&vs->shm);

    tn = ngx_rtmp_pgauth_shm_find(&vs->shm, ngx_crc32_short(key, len), key,
                                  len, NGX_RTMP_PGAUTH_SHM_EXACT);

    if (tn && (ngx_msec_int_t) (tn->until - ngx_current_msec) > 0) {

        sn = ngx_http_pgauth_viewer_find(vs, tn->sid, tn->sid_len);

        if (sn && (ngx_msec_int_t) (sn->until - ngx_current_msec) > 0
            && !sn->renewed)
        {
            sid.data = tn->sid;
            sid.len = tn->sid_len;

            sn->seen = ngx_current_msec;
            ngx_http_pgauth_viewer_renewal(r, ctx, sn, &sid);
            ngx_memcpy(secret, sn->secret, sizeof(secret));
            ctx->left = sn->until - ngx_current_msec;

            p = ngx_cpymem(ctx->session_buf, tn->sid, tn->sid_len);
            *p++ = '-';
            p = ngx_hex_dump(p, secret, sizeof(secret));

            session.data = ctx->session_buf;
            session.len = p - ctx->session_buf;
        }
    }

    ngx_rtmp_pgauth_shm_unlock(&vs->shm);

    if (session.len) {
        ctx->session = session;
        ctx->cookie = 1;
        return NGX_OK;
    }

    return ngx_http_pgauth_viewer_ask(r, ctx, app);
}


/* pgauth.authorize_viewer(), from the worker's pool; NGX_AGAIN */

static ngx_int_t
ngx_http_pgauth_viewer_ask(ngx_http_request_t *r,
    ngx_http_pgauth_viewer_ctx_t *ctx, ngx_str_t *app)
{
    ngx_msec_t                          left;
    ngx_rtmp_pgauth_req_t              *req;
    ngx_rtmp_pgauth_main_conf_t        *pmcf;
    ngx_http_pgauth_viewer_loc_conf_t  *vlcf;

    pmcf = ngx_rtmp_pgauth_cycle_main_conf((ngx_cycle_t *) ngx_cycle);

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_pgauth_viewer_module);

    if (vlcf->limit && !ctx->renew) {
        if (ngx_rtmp_pgauth_limit_take(vlcf->limit, r->connection, &left)
            == NGX_BUSY)
        {
            if (pmcf) {
                ngx_rtmp_pgauth_stats_viewer(pmcf->stats,
                                             NGX_RTMP_PGAUTH_OUT_VIEWER_DENIED);
            }

            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "pgauth: viewer refused name=\"%V\": address "
                          "blocked", &ctx->name);
            return NGX_HTTP_FORBIDDEN;
        }

        ctx->limited = 1;
        ctx->limit = vlcf->limit;
    }

    if (pmcf == NULL || pmcf->pool == NULL) {
        ngx_http_pgauth_viewer_unlimit(ctx, 0);

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "pgauth: %s name=\"%V\": no pool in this process "
                      "(pgauth_dsn in the rtmp block?)",
                      ngx_http_pgauth_viewer_what(ctx), &ctx->name);
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    req = ngx_rtmp_pgauth_viewer_request(pmcf->pool,
                                         &ngx_http_pgauth_viewer_query,
                                         ctx->digest, app, &ctx->name,
                                         &r->connection->addr_text);
    if (req == NULL) {
        ngx_http_pgauth_viewer_unlimit(ctx, 0);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    req->handler = ngx_http_pgauth_viewer_decided;
    req->data = ctx;

    /* before: the pool may decide at once, from inside submit() */
    ctx->req = req;

    if (ngx_rtmp_pgauth_req_submit(req, ctx->renew
                                        ? ngx_min(vlcf->timeout,
                                                  NGX_HTTP_PGAUTH_RENEW_WAIT)
                                        : vlcf->timeout)
        != NGX_OK)
    {
        ctx->req = NULL;
        ngx_rtmp_pgauth_req_free(req);
        ngx_http_pgauth_viewer_unlimit(ctx, 0);

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "pgauth: %s name=\"%V\": too many decisions queued",
                      ngx_http_pgauth_viewer_what(ctx), &ctx->name);
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    return NGX_AGAIN;
}


static void
ngx_http_pgauth_viewer_decided(ngx_rtmp_pgauth_req_t *req, ngx_uint_t rc,
    PGresult *res, ngx_str_t *err)
{
    ngx_http_pgauth_viewer_ctx_t  *ctx = req->data;

    char                               *what;
    u_char                              fp[NGX_RTMP_PGAUTH_FP_LEN + 1];
    ngx_uint_t                          level;
    ngx_msec_t                          left;
    ngx_http_request_t                 *r;
    ngx_rtmp_pgauth_outcome_e           outcome;
    ngx_rtmp_pgauth_main_conf_t        *pmcf;
    ngx_http_pgauth_viewer_loc_conf_t  *vlcf;

    r = ctx->request;
    ctx->req = NULL;

    vlcf = ngx_http_get_module_loc_conf(r, ngx_http_pgauth_viewer_module);
    pmcf = ngx_rtmp_pgauth_cycle_main_conf((ngx_cycle_t *) ngx_cycle);

    *ngx_hex_dump(fp, ctx->digest, NGX_RTMP_PGAUTH_FP_LEN / 2) = '\0';

    what = ngx_http_pgauth_viewer_what(ctx);

    /* a renewal refused: the viewer is served all the same */
    level = ctx->renew ? NGX_LOG_INFO : NGX_LOG_ERR;

    if (rc != NGX_RTMP_PGAUTH_RESULT) {
        ngx_log_error(level, r->connection->log, 0,
                      "pgauth: %s app=\"%V\" name=\"%V\" "
                      "fp=%s reason=\"%s%s%V\"",
                      what, &vlcf->app, &ctx->name, fp,
                      rc == NGX_RTMP_PGAUTH_TIMEDOUT
                      ? "timed out" : "database error",
                      err->len ? ": " : "", err);
        ctx->rc = NGX_HTTP_SERVICE_UNAVAILABLE;
        outcome = NGX_RTMP_PGAUTH_OUT_VIEWER_UNAVAILABLE;
        goto resume;
    }

    outcome = NGX_RTMP_PGAUTH_OUT_VIEWER_DENIED;

    if (PQntuples(res) != 1 || PQnfields(res) < 2 || PQgetisnull(res, 0, 0)
        || PQgetlength(res, 0, 0) >= NGX_RTMP_PGAUTH_SID_LEN)
    {
        ngx_log_error(level, r->connection->log, 0,
                      "pgauth: %s app=\"%V\" name=\"%V\" "
                      "fp=%s reason=\"no matching token\"",
                      what, &vlcf->app, &ctx->name, fp);
        ctx->rc = NGX_HTTP_FORBIDDEN;
        goto resume;
    }

    left = NGX_RTMP_PGAUTH_MAX_SECONDS * 1000;

    if (!PQgetisnull(res, 0, 1)
        && ngx_rtmp_pgauth_parse_seconds((u_char *) PQgetvalue(res, 0, 1),
                                         PQgetlength(res, 0, 1), &left)
           != NGX_OK)
    {
        left = 0;
    }

    if (left == 0
        || ngx_http_pgauth_viewer_open(ctx, &vlcf->app,
                                       (u_char *) PQgetvalue(res, 0, 0),
                                       PQgetlength(res, 0, 0), left)
           != NGX_OK)
    {
        ctx->rc = NGX_HTTP_FORBIDDEN;
        goto resume;
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "pgauth: viewer allowed app=\"%V\" name=\"%V\" fp=%s "
                  "session=\"%*s\" time=%Mms",
                  &vlcf->app, &ctx->name, fp,
                  PQgetlength(res, 0, 0), PQgetvalue(res, 0, 0),
                  ngx_current_msec - req->start);

    ctx->rc = NGX_OK;
    ctx->allowed = 1;
    ctx->cookie = 1;
    ctx->successor = ctx->renew;
    outcome = NGX_RTMP_PGAUTH_OUT_VIEWER_ALLOWED;

resume:

    if (ctx->renew && ctx->rc != NGX_OK) {
        /* the session holds as it is, until it lapses */
        ctx->rc = NGX_OK;
    }

    ctx->decided = 1;

    /* a wrong token counts against the address, as a wrong key does */
    ngx_http_pgauth_viewer_unlimit(ctx, outcome
                                        == NGX_RTMP_PGAUTH_OUT_VIEWER_DENIED);

    /* a viewer's decisions; a renewal is the same viewer's */

    if (pmcf && !ctx->renew) {
        ngx_rtmp_pgauth_stats_viewer(pmcf->stats, outcome);
    }

    /* the phases go on from an event of their own, not libpq's loop */

    ctx->resume.handler = ngx_http_pgauth_viewer_resume;
    ctx->resume.data = ctx;
    ctx->resume.log = r->connection->log;

    ngx_post_event(&ctx->resume, &ngx_posted_events);
}


/* the session the database opened: in the table, and for the client */

static ngx_int_t
ngx_http_pgauth_viewer_open(ngx_http_pgauth_viewer_ctx_t *ctx,
    ngx_str_t *app, u_char *sid, size_t len, ngx_msec_t left)
{
    u_char                           *p;
    u_char                            key[NGX_HTTP_PGAUTH_TOKEN_KEY_LEN];
    u_char                            secret[NGX_RTMP_PGAUTH_SECRET_LEN];
    size_t                            klen;
    ngx_int_t                         rc;
    ngx_str_t                        *addr;
    ngx_rtmp_pgauth_viewers_t        *vs;
    ngx_http_pgauth_token_node_t     *tn;
    ngx_http_pgauth_session_node_t   *sn;

    addr = &ctx->request->connection->addr_text;

    if (app->len > 255 || ctx->name.len > 255 || addr->len > 255) {
        return NGX_ERROR;
    }

    if (RAND_bytes(secret, sizeof(secret)) != 1) {
        return NGX_ERROR;
    }

    vs = ngx_http_pgauth_viewer_table(ctx->request);

    rc = NGX_ERROR;

    ngx_rtmp_pgauth_shm_lock(&vs->shm);

    key[0] = 's';
    ngx_memcpy(key + 1, sid, len);

    sn = ngx_rtmp_pgauth_shm_add(&vs->shm, ngx_crc32_short(key, len + 1), key,
                                 len + 1,
                                 offsetof(ngx_http_pgauth_session_node_t,
                                          data)
                                 + app->len + ctx->name.len + addr->len);
    if (sn == NULL) {
        goto done;
    }

    sn->until = ngx_current_msec + left;
    sn->seen = ngx_current_msec;
    sn->renew = sn->until - ngx_min(left / 2, NGX_HTTP_PGAUTH_RENEW);
    ngx_memcpy(sn->secret, secret, sizeof(secret));
    ngx_memcpy(sn->digest, ctx->digest, sizeof(sn->digest));
    sn->renewed = 0;
    sn->app_len = (u_char) app->len;
    sn->name_len = (u_char) ctx->name.len;
    sn->addr_len = (u_char) addr->len;
    p = ngx_cpymem(sn->data, app->data, app->len);
    p = ngx_cpymem(p, ctx->name.data, ctx->name.len);
    ngx_memcpy(p, addr->data, addr->len);

    /* later requests with the token find the session */

    klen = ngx_http_pgauth_viewer_token_key(key, ctx->digest, app,
                                            &ctx->name,
                                            &ctx->request->connection
                                                ->addr_text);

    tn = ngx_rtmp_pgauth_shm_find(&vs->shm, ngx_crc32_short(key, klen), key,
                                  klen, NGX_RTMP_PGAUTH_SHM_EXACT);
    if (tn) {
        ngx_rtmp_pgauth_shm_delete(&vs->shm, tn);
    }

    /* adding may evict: sn is not to be read again */

    tn = ngx_rtmp_pgauth_shm_add(&vs->shm, ngx_crc32_short(key, klen), key,
                                 klen, sizeof(ngx_http_pgauth_token_node_t));
    if (tn) {
        tn->until = ngx_current_msec + left;
        tn->sid_len = (u_char) len;
        ngx_memcpy(tn->sid, sid, len);
    }

    rc = NGX_OK;

done:

    ngx_rtmp_pgauth_shm_unlock(&vs->shm);

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, ctx->request->connection->log, 0,
                      "pgauth: no room for a viewer session%s even after "
                      "dropping %d: the zone is too small",
                      vs->shm.shpool->log_ctx, NGX_RTMP_PGAUTH_SHM_EVICT);
        return rc;
    }

    p = ngx_cpymem(ctx->session_buf, sid, len);
    *p++ = '-';
    p = ngx_hex_dump(p, secret, sizeof(secret));

    ctx->session.data = ctx->session_buf;
    ctx->session.len = p - ctx->session_buf;
    ctx->left = left;

    return NGX_OK;
}


static void
ngx_http_pgauth_viewer_resume(ngx_event_t *ev)
{
    ngx_http_pgauth_viewer_ctx_t  *ctx = ev->data;

    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = ctx->request;
    c = r->connection;

    ngx_http_core_run_phases(r);
    ngx_http_run_posted_requests(c);
}


/* the request is freed: a question in flight is left to lapse */

static void
ngx_http_pgauth_viewer_cleanup(void *data)
{
    ngx_http_pgauth_viewer_ctx_t  *ctx = data;

    ngx_http_pgauth_viewer_unlimit(ctx, 0);

    if (ctx->req) {
        ngx_rtmp_pgauth_req_detach(ctx->req);
        ctx->req = NULL;
    }

    if (ctx->resume.posted) {
        ngx_delete_posted_event(&ctx->resume);
    }
}


/* every "token=" value of s, in place, as "*" */

static void
ngx_http_pgauth_viewer_mask(ngx_str_t *s)
{
    u_char  *p, *last;

    if (s->data == NULL) {
        return;
    }

    p = s->data;
    last = s->data + s->len;

    while (p + 6 <= last) {

        if (ngx_strncasecmp(p, (u_char *) "token=", 6) == 0
            && (p == s->data || p[-1] == '&' || p[-1] == '?'))
        {
            for (p += 6; p < last && *p != '&' && *p != ' '; p++) {
                *p = '*';
            }

            continue;
        }

        p++;
    }
}


/* the limiter's count of a question to the database, given back once */

static void
ngx_http_pgauth_viewer_unlimit(ngx_http_pgauth_viewer_ctx_t *ctx,
    ngx_uint_t failed)
{
    ngx_rtmp_pgauth_main_conf_t        *pmcf;

    if (!ctx->limited) {
        return;
    }

    ctx->limited = 0;

    /* the zone it was taken from: the location may have changed since */

    pmcf = ngx_rtmp_pgauth_cycle_main_conf((ngx_cycle_t *) ngx_cycle);

    ngx_rtmp_pgauth_limit_done(ctx->limit, ctx->request->connection, failed,
                               pmcf ? pmcf->stats : NULL, "viewer tokens");
}


/*
 * A renewed session's successor went out: the old one holds for the URIs
 * it was written into, and is no longer counted nor renewed.  Until then
 * (an answer that was not a 2xx, a client gone) the old one is renewed
 * again.
 */

static void
ngx_http_pgauth_viewer_succeeded(ngx_http_request_t *r,
    ngx_http_pgauth_viewer_ctx_t *ctx)
{
    ngx_rtmp_pgauth_viewers_t       *vs;
    ngx_http_pgauth_session_node_t  *sn;

    ctx->successor = 0;

    vs = ngx_http_pgauth_viewer_table(r);

    ngx_rtmp_pgauth_shm_lock(&vs->shm);

    sn = ngx_http_pgauth_viewer_find(vs, ctx->old, ctx->old_len);
    if (sn) {
        sn->renewed = 1;
    }

    ngx_rtmp_pgauth_shm_unlock(&vs->shm);
}


/*
 * By token: of one client address, so that a token's cap on addresses
 * (max_viewers) is the database's to tell for each new one.
 */

static size_t
ngx_http_pgauth_viewer_token_key(u_char *key, u_char *digest, ngx_str_t *app,
    ngx_str_t *name, ngx_str_t *addr)
{
    u_char  *p;

    p = key;
    *p++ = 't';
    p = ngx_cpymem(p, digest, NGX_RTMP_PGAUTH_DIGEST_LEN);
    p = ngx_cpymem(p, app->data, ngx_min(app->len, NGX_RTMP_MAX_NAME - 1));
    *p++ = '/';
    p = ngx_cpymem(p, name->data,
                   ngx_min(name->len, NGX_RTMP_PGAUTH_NAME_LEN - 1));
    *p++ = '/';
    p = ngx_cpymem(p, addr->data, ngx_min(addr->len, NGX_SOCKADDR_STRLEN));

    return p - key;
}


/*
 * Every answer of the location is private, refusals and playlists not
 * even kept by the client (a cache in front must not give one viewer's
 * answer, or refusal, to another); a viewer allowed gets the cookie of a
 * session just handed out, and a playlist to be rewritten is read into
 * memory.
 */

static ngx_int_t
ngx_http_pgauth_viewer_header_filter(ngx_http_request_t *r)
{
    u_char                        *p;
    ngx_table_elt_t               *h;
    ngx_http_pgauth_viewer_ctx_t  *ctx;

    if (r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_pgauth_viewer_get_ctx(r);

    if (ctx == NULL) {
        return ngx_http_next_header_filter(r);
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");

    if (ctx->allowed && !ctx->playlist
        && r->headers_out.status == NGX_HTTP_OK)
    {
        ngx_str_set(&h->value, "private");

    } else {
        ngx_str_set(&h->value, "private, no-store");
    }

#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    if (!ctx->allowed) {
        return ngx_http_next_header_filter(r);
    }

    if (ctx->successor
        && r->headers_out.status >= NGX_HTTP_OK
        && r->headers_out.status < NGX_HTTP_SPECIAL_RESPONSE)
    {
        ngx_http_pgauth_viewer_succeeded(r, ctx);
    }

    if (ctx->cookie && ctx->session.len
        && r->headers_out.status >= NGX_HTTP_OK
        && r->headers_out.status < NGX_HTTP_SPECIAL_RESPONSE)
    {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->value.len = sizeof("pgauth_=; Path=; Max-Age=; HttpOnly; "
                              "SameSite=Lax; Secure") - 1
                       + ctx->name.len + ctx->session.len + ctx->dir.len
                       + NGX_TIME_T_LEN;

        h->value.data = ngx_pnalloc(r->pool, h->value.len);
        if (h->value.data == NULL) {
            return NGX_ERROR;
        }

        p = ngx_sprintf(h->value.data,
                        "pgauth_%V=%V; Path=%V; Max-Age=%T; HttpOnly; "
                        "SameSite=Lax",
                        &ctx->name, &ctx->session, &ctx->dir,
                        (time_t) (ctx->left / 1000));
#if (NGX_HTTP_SSL)
        if (r->connection->ssl) {
            p = ngx_cpymem(p, "; Secure", sizeof("; Secure") - 1);
        }
#endif
        h->value.len = p - h->value.data;

        h->hash = 1;
        ngx_str_set(&h->key, "Set-Cookie");
#if (nginx_version >= 1023000)
        h->next = NULL;
#endif
    }

    if (ctx->playlist && ctx->session.len
        && r->headers_out.status == NGX_HTTP_OK)
    {
        ngx_http_clear_content_length(r);
        ngx_http_clear_accept_ranges(r);
        ngx_http_clear_etag(r);

        r->filter_need_in_memory = 1;
    }

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_pgauth_viewer_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    size_t                         len, size;
    ngx_buf_t                     *b;
    ngx_uint_t                     last;
    ngx_chain_t                   *cl, out;
    ngx_http_pgauth_viewer_ctx_t  *ctx;

    if (r != r->main) {
        return ngx_http_next_body_filter(r, in);
    }

    ctx = ngx_http_pgauth_viewer_get_ctx(r);

    if (ctx == NULL || !ctx->allowed || !ctx->playlist
        || ctx->session.len == 0 || ctx->done
        || r->headers_out.status != NGX_HTTP_OK || r->header_only)
    {
        return ngx_http_next_body_filter(r, in);
    }

    /* a playlist is small: collected whole, then rewritten */

    last = 0;

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;
        len = b->last - b->pos;

        if (ctx->body == NULL
            || (size_t) (ctx->body->end - ctx->body->last) < len)
        {
            size = (ctx->body ? 2 * (ctx->body->end - ctx->body->start)
                              : 4096)
                   + len;

            if (size > NGX_HTTP_PGAUTH_MAX_PLAYLIST) {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "pgauth: playlist larger than %uz bytes",
                              (size_t) NGX_HTTP_PGAUTH_MAX_PLAYLIST);
                return NGX_ERROR;
            }

            b = ngx_create_temp_buf(r->pool, size);
            if (b == NULL) {
                return NGX_ERROR;
            }

            if (ctx->body) {
                b->last = ngx_cpymem(b->last, ctx->body->pos,
                                     ctx->body->last - ctx->body->pos);
            }

            ctx->body = b;
        }

        ctx->body->last = ngx_cpymem(ctx->body->last, cl->buf->pos, len);
        cl->buf->pos = cl->buf->last;

        if (cl->buf->last_buf || cl->buf->last_in_chain) {
            last = 1;
        }
    }

    if (!last) {
        return NGX_OK;
    }

    ctx->done = 1;

    b = ngx_http_pgauth_viewer_rewrite(r, ctx);
    if (b == NULL) {
        return NGX_ERROR;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}


/*
 * Every URI of the playlist gets the session: the lines that are not tags
 * or blank, and the URI="..." of tags (keys, maps).
 */

static ngx_buf_t *
ngx_http_pgauth_viewer_rewrite(ngx_http_request_t *r,
    ngx_http_pgauth_viewer_ctx_t *ctx)
{
    u_char     *p, *last, *eol, *end, *q, *o, *uri;
    size_t      n, add;
    ngx_buf_t  *b, *in;

    in = ctx->body;
    p = in->pos;
    last = in->last;

    add = sizeof("&pgauth=") - 1 + ctx->session.len;

    /* at most one per line */

    for (n = 1, q = p; q < last; q++) {
        n += (*q == '\n');
    }

    b = ngx_create_temp_buf(r->pool, (last - p) + n * add);
    if (b == NULL) {
        return NULL;
    }

    o = b->last;

    while (p < last) {
        eol = ngx_strlchr(p, last, '\n');
        eol = eol ? eol + 1 : last;

        end = eol;

        while (end > p && (end[-1] == '\n' || end[-1] == '\r')) {
            end--;
        }

        uri = NULL;

        if (end > p && *p != '#') {
            uri = p;

        } else if (end - p > 6 && *p == '#') {
            q = ngx_strlcasestrn(p, end, (u_char *) "URI=\"", 5 - 1);
            if (q) {
                q += 5;
                end = ngx_strlchr(q, end, '"');
                uri = end ? q : NULL;
            }
        }

        if (uri == NULL) {
            o = ngx_cpymem(o, p, eol - p);
            p = eol;
            continue;
        }

        o = ngx_cpymem(o, p, end - p);
        o = ngx_cpymem(o, ngx_strlchr(uri, end, '?') ? "&pgauth=" : "?pgauth=",
                       sizeof("?pgauth=") - 1);
        o = ngx_cpymem(o, ctx->session.data, ctx->session.len);
        o = ngx_cpymem(o, end, eol - end);

        p = eol;
    }

    b->last = o;
    b->last_buf = 1;
    b->last_in_chain = 1;

    return b;
}


static ngx_int_t
ngx_http_pgauth_viewer_expired(ngx_rtmp_pgauth_shm_t *shm, void *value)
{
    /* both kinds of entry begin with their "until" */
    ngx_msec_t  *until = value;

    return (ngx_msec_int_t) (*until - ngx_current_msec) <= 0;
}


/* the zone of this cycle's viewer sessions, or NULL */

ngx_shm_zone_t *
ngx_http_pgauth_viewer_zone_of_cycle(ngx_cycle_t *cycle)
{
    ngx_http_pgauth_viewer_main_conf_t  *vmcf;

    vmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_pgauth_viewer_module);

    return vmcf ? vmcf->zone : NULL;
}


/* viewer session sid's entry ("s" and the id), or NULL; under the lock */

static ngx_http_pgauth_session_node_t *
ngx_http_pgauth_viewer_find(ngx_rtmp_pgauth_viewers_t *vs, u_char *sid,
    size_t len)
{
    u_char  key[1 + NGX_RTMP_PGAUTH_SID_LEN];

    if (len >= NGX_RTMP_PGAUTH_SID_LEN) {
        return NULL;
    }

    key[0] = 's';
    ngx_memcpy(key + 1, sid, len);

    return ngx_rtmp_pgauth_shm_find(&vs->shm, ngx_crc32_short(key, len + 1),
                                    key, len + 1, NGX_RTMP_PGAUTH_SHM_EXACT);
}


/*
 * Whether the zone holds viewer session sid; with end, it is dropped: the
 * database ended it, and its requests are refused from now on.
 */

ngx_int_t
ngx_http_pgauth_viewer_known(ngx_shm_zone_t *zone, u_char *sid, size_t len,
    ngx_uint_t end)
{
    void                       *sn;
    ngx_rtmp_pgauth_viewers_t  *vs;

    vs = zone->data;

    ngx_rtmp_pgauth_shm_lock(&vs->shm);

    sn = ngx_http_pgauth_viewer_find(vs, sid, len);
    if (sn && end) {
        ngx_rtmp_pgauth_shm_delete(&vs->shm, sn);
    }

    ngx_rtmp_pgauth_shm_unlock(&vs->shm);

    return sn != NULL;
}


/*
 * The viewers of each stream on this node: sessions that asked for
 * something within NGX_HTTP_PGAUTH_VIEWER_SEEN, in counts of
 * ngx_rtmp_pgauth_viewer_count_t, copied out of the zone.
 */

static void
ngx_http_pgauth_viewer_count(void *value, u_char *key, size_t len,
    void *data)
{
    ngx_http_pgauth_viewer_walk_t  *w = data;

    u_char                          *p;
    ngx_uint_t                       i;
    ngx_http_pgauth_session_node_t  *sn;
    ngx_rtmp_pgauth_viewer_count_t  *c;

    sn = value;

    if (key[0] != 's' || w->rc != NGX_OK || sn->renewed
        || (ngx_msec_int_t) (sn->until - ngx_current_msec) <= 0
        || ngx_current_msec - sn->seen > NGX_HTTP_PGAUTH_VIEWER_SEEN)
    {
        return;
    }

    c = w->counts->elts;

    for (i = 0; i < w->counts->nelts; i++) {
        if (c[i].app.len == sn->app_len
            && c[i].name.len == sn->name_len
            && ngx_strncmp(c[i].app.data, sn->data, sn->app_len) == 0
            && ngx_strncmp(c[i].name.data, sn->data + sn->app_len,
                           sn->name_len)
               == 0)
        {
            c[i].viewers++;
            return;
        }
    }

    if (w->counts->nelts == NGX_HTTP_PGAUTH_MAX_COUNTS) {
        return;
    }

    c = ngx_array_push(w->counts);
    p = ngx_pnalloc(w->pool, sn->app_len + sn->name_len);

    if (c == NULL || p == NULL) {
        w->rc = NGX_ERROR;
        return;
    }

    ngx_memcpy(p, sn->data, sn->app_len + sn->name_len);

    c->app.data = p;
    c->app.len = sn->app_len;
    c->name.data = p + sn->app_len;
    c->name.len = sn->name_len;
    c->viewers = 1;
}


ngx_int_t
ngx_http_pgauth_viewer_counts(ngx_cycle_t *cycle, ngx_pool_t *pool,
    ngx_array_t *counts)
{
    ngx_shm_zone_t                 *zone;
    ngx_rtmp_pgauth_viewers_t      *vs;
    ngx_http_pgauth_viewer_walk_t   w;

    if (ngx_array_init(counts, pool, 8,
                       sizeof(ngx_rtmp_pgauth_viewer_count_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    zone = ngx_http_pgauth_viewer_zone_of_cycle(cycle);
    if (zone == NULL) {
        return NGX_OK;
    }

    vs = zone->data;

    w.counts = counts;
    w.pool = pool;
    w.rc = NGX_OK;

    ngx_rtmp_pgauth_shm_lock(&vs->shm);
    ngx_rtmp_pgauth_shm_walk(&vs->shm, ngx_http_pgauth_viewer_count, &w);
    ngx_rtmp_pgauth_shm_unlock(&vs->shm);

    return w.rc;
}


/* pgauth_viewer_zone zone=name:size */

static char *
ngx_http_pgauth_viewer_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_pgauth_viewer_main_conf_t  *vmcf = conf;

    if (vmcf->zone) {
        return "is duplicate";
    }

    return ngx_rtmp_pgauth_shm_zone(cf, &ngx_rtmp_pgauth_viewer_type,
                                    &vmcf->zone);
}


/* pgauth_viewer on [app=name] | off */

static char *
ngx_http_pgauth_viewer(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_pgauth_viewer_loc_conf_t  *vlcf = conf;

    ngx_str_t                           *value, name;
    ngx_uint_t                           i;
    ngx_shm_zone_t                     **zp;
    ngx_http_pgauth_viewer_main_conf_t  *vmcf;

    if (vlcf->enable != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0 && cf->args->nelts == 2) {
        vlcf->enable = 0;
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(value[1].data, "on") != 0) {
        goto invalid;
    }

    vlcf->enable = 1;

    vmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_pgauth_viewer_module);
    vmcf->used = 1;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "app=", 4) == 0
            && value[i].len > 4 && value[i].len - 4 < NGX_RTMP_MAX_NAME)
        {
            vlcf->app.data = value[i].data + 4;
            vlcf->app.len = value[i].len - 4;
            continue;
        }

        if (ngx_strncmp(value[i].data, "limit=", 6) == 0
            && value[i].len > 6)
        {
            name.data = value[i].data + 6;
            name.len = value[i].len - 6;

            /* a pgauth_limit_zone of the rtmp block, before or after */

            vlcf->limit = ngx_shared_memory_add(cf, &name, 0,
                                                &ngx_rtmp_pgauth_module);
            if (vlcf->limit == NULL) {
                return NGX_CONF_ERROR;
            }

            zp = ngx_array_push(&vmcf->limits);
            if (zp == NULL) {
                return NGX_CONF_ERROR;
            }

            *zp = vlcf->limit;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"%V\" directive",
                           &value[i], &value[0]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" in \"%V\" directive",
                       &value[1], &value[0]);

    return NGX_CONF_ERROR;
}


static void *
ngx_http_pgauth_viewer_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_pgauth_viewer_main_conf_t  *vmcf;

    /*
     * set by ngx_pcalloc():
     *
     *     vmcf->zone = NULL;
     *     vmcf->used = 0;
     */

    vmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_pgauth_viewer_main_conf_t));
    if (vmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&vmcf->limits, cf->pool, 1, sizeof(ngx_shm_zone_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return vmcf;
}


/* a location with pgauth_viewer on and no pgauth_viewer_zone: 1m */

static char *
ngx_http_pgauth_viewer_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_pgauth_viewer_main_conf_t  *vmcf = conf;

    ngx_str_t               name = ngx_string(NGX_HTTP_PGAUTH_VIEWER_ZONE);
    ngx_rtmp_pgauth_shm_t  *shm;

    if (!vmcf->used || vmcf->zone) {
        return NGX_CONF_OK;
    }

    shm = ngx_rtmp_pgauth_shm_create(cf, &ngx_rtmp_pgauth_viewer_type);
    if (shm == NULL) {
        return NGX_CONF_ERROR;
    }

    return ngx_rtmp_pgauth_shm_define(cf, shm, &name,
                                      NGX_HTTP_PGAUTH_VIEWER_SIZE,
                                      &vmcf->zone);
}


static void *
ngx_http_pgauth_viewer_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_pgauth_viewer_loc_conf_t  *vlcf;

    vlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_pgauth_viewer_loc_conf_t));
    if (vlcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     vlcf->app = { 0, NULL };
     */

    vlcf->enable = NGX_CONF_UNSET;
    vlcf->timeout = NGX_CONF_UNSET_MSEC;
    vlcf->limit = NGX_CONF_UNSET_PTR;

    return vlcf;
}


static char *
ngx_http_pgauth_viewer_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_pgauth_viewer_loc_conf_t  *prev = parent;
    ngx_http_pgauth_viewer_loc_conf_t  *conf = child;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_str_value(conf->app, prev->app, "live");
    ngx_conf_merge_msec_value(conf->timeout, prev->timeout, 3000);
    ngx_conf_merge_ptr_value(conf->limit, prev->limit, NULL);

    return NGX_CONF_OK;
}


/*
 * The limit zones named by pgauth_viewer: the rtmp block may come after
 * the http one, so they are known only now.
 */

static ngx_int_t
ngx_http_pgauth_viewer_init_module(ngx_cycle_t *cycle)
{
    ngx_uint_t                           i;
    ngx_shm_zone_t                     **zp;
    ngx_http_pgauth_viewer_main_conf_t  *vmcf;

    vmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_pgauth_viewer_module);
    if (vmcf == NULL) {
        return NGX_OK;
    }

    zp = vmcf->limits.elts;

    for (i = 0; i < vmcf->limits.nelts; i++) {
        if (!ngx_rtmp_pgauth_shm_is(zp[i], &ngx_rtmp_pgauth_limit_type)) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "zone \"%V\" in \"pgauth_viewer\" is not a "
                          "\"pgauth_limit_zone\"", &zp[i]->shm.name);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_pgauth_viewer_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_pgauth_viewer_handler;

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_pgauth_viewer_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_pgauth_viewer_body_filter;

    return NGX_OK;
}
