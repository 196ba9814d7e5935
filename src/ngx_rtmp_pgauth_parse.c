
/*
 * Copyright (C) ngx_rtmp_pgauth authors
 */


/*
 * Every parser of what reaches the module from outside: directive values,
 * notification payloads, query results, client strings.  Pure functions
 * of their bytes (no allocation, no nginx run-time), so that the fuzz
 * targets in t/fuzz/ can drive them alone.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_rtmp_pgauth_parse.h"


/* the highest $N a query refers to (0: none), at most 100000 */

ngx_uint_t
ngx_rtmp_pgauth_query_max_param(u_char *p, size_t len)
{
    u_char      *last;
    ngx_uint_t   n, max;

    last = p + len;
    max = 0;

    while (p < last) {
        if (*p++ != '$' || p == last || *p < '1' || *p > '9') {
            continue;
        }

        n = 0;

        while (p < last && *p >= '0' && *p <= '9') {
            if (n < 100000) {
                n = n * 10 + (*p - '0');
            }

            p++;
        }

        if (n > max) {
            max = n;
        }
    }

    return ngx_min(max, 100000);
}


/* a LISTEN channel: 1..63 of [a-z0-9_], not starting with a digit */

ngx_int_t
ngx_rtmp_pgauth_channel_valid(u_char *p, size_t len)
{
    size_t  i;

    if (len == 0 || len > 63) {
        return NGX_ERROR;
    }

    for (i = 0; i < len; i++) {
        if (!(p[i] == '_'
              || (p[i] >= 'a' && p[i] <= 'z')
              || (p[i] >= '0' && p[i] <= '9' && i)))
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * "end <session id> <reason>", "recheck" or "key <64 hex digits>";
 * anything else is not ours.  The session id is 1 to
 * NGX_RTMP_PGAUTH_SID_LEN - 1 visible bytes, the reason (default "ended")
 * 1 to NGX_RTMP_PGAUTH_REASON_LEN - 1 printable ones; the key's digest is
 * decoded into digest.
 */

ngx_int_t
ngx_rtmp_pgauth_parse_notify(u_char *p, size_t len, ngx_str_t *sid,
    ngx_str_t *reason, u_char *digest)
{
    u_char      *last, *s, c, h;
    ngx_uint_t   i;

    if (len == 7 && ngx_strncmp(p, "recheck", 7) == 0) {
        return NGX_RTMP_PGAUTH_NOTIFY_RECHECK;
    }

    if (len == 4 + 2 * NGX_RTMP_PGAUTH_DIGEST_LEN
        && ngx_strncmp(p, "key ", 4) == 0)
    {
        for (i = 0; i < 2 * NGX_RTMP_PGAUTH_DIGEST_LEN; i++) {
            c = p[4 + i];

            if (c >= '0' && c <= '9') {
                h = c - '0';

            } else if (c >= 'a' && c <= 'f') {
                h = c - 'a' + 10;

            } else {
                return NGX_DECLINED;
            }

            if (i % 2 == 0) {
                digest[i / 2] = (u_char) (h << 4);

            } else {
                digest[i / 2] |= h;
            }
        }

        return NGX_RTMP_PGAUTH_NOTIFY_KEY;
    }

    if (len < 5 || ngx_strncmp(p, "end ", 4) != 0) {
        return NGX_DECLINED;
    }

    last = p + len;
    p += 4;

    for (s = p; s < last && *s > 0x20 && *s < 0x7f; s++) { /* void */ }

    sid->data = p;
    sid->len = s - p;

    if (sid->len == 0 || sid->len >= NGX_RTMP_PGAUTH_SID_LEN) {
        return NGX_DECLINED;
    }

    if (s == last) {
        ngx_str_set(reason, "ended");
        return NGX_RTMP_PGAUTH_NOTIFY_END;
    }

    if (*s++ != ' ') {
        return NGX_DECLINED;
    }

    reason->data = s;
    reason->len = last - s;

    if (reason->len == 0 || reason->len >= NGX_RTMP_PGAUTH_REASON_LEN) {
        return NGX_DECLINED;
    }

    for ( /* void */ ; s < last; s++) {
        if (*s < 0x20 || *s >= 0x7f) {
            return NGX_DECLINED;
        }
    }

    return NGX_RTMP_PGAUTH_NOTIFY_END;
}


/*
 * Whether session id a is a larger number than b.  The project's schema
 * numbers sessions from a sequence, so the larger is the later publish; ids
 * of a query of one's own that are not plain decimal numbers (no sign, no
 * leading zero) compare as not newer.  Both are NUL-terminated.
 */

ngx_int_t
ngx_rtmp_pgauth_sid_newer(u_char *a, u_char *b)
{
    size_t  alen, blen;

    for (alen = 0; a[alen] >= '0' && a[alen] <= '9'; alen++) { /* void */ }
    for (blen = 0; b[blen] >= '0' && b[blen] <= '9'; blen++) { /* void */ }

    if (alen == 0 || blen == 0 || a[alen] != '\0' || b[blen] != '\0'
        || (a[0] == '0' && alen > 1) || (b[0] == '0' && blen > 1))
    {
        return 0;
    }

    if (alen != blen) {
        return alen > blen;
    }

    return ngx_strcmp(a, b) > 0;
}


/* a public name becomes file names (HLS, recordings): keep it plain */

ngx_int_t
ngx_rtmp_pgauth_public_name(u_char *name, size_t len)
{
    size_t  i;

    if (len == 0 || len >= NGX_RTMP_PGAUTH_NAME_LEN || name[0] == '.') {
        return NGX_ERROR;
    }

    for (i = 0; i < len; i++) {
        if (name[i] < 0x20 || name[i] == 0x7f
            || name[i] == '/' || name[i] == '\\' || name[i] == '?')
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * UTF-8 as PostgreSQL takes it: no overlong forms, no surrogates, nothing
 * past U+10FFFF, no NUL.
 */

ngx_int_t
ngx_rtmp_pgauth_utf8(u_char *p, size_t len)
{
    u_char    *last;
    uint32_t   u, min;
    ngx_uint_t n;

    last = p + len;

    while (p < last) {

        u = *p++;

        if (u < 0x80) {
            if (u == 0) {
                return NGX_ERROR;
            }

            continue;
        }

        if (u >= 0xf0 && u < 0xf5) {
            u &= 0x07;
            n = 3;
            min = 0x10000;

        } else if (u >= 0xe0 && u < 0xf0) {
            u &= 0x0f;
            n = 2;
            min = 0x800;

        } else if (u >= 0xc2 && u < 0xe0) {
            u &= 0x1f;
            n = 1;
            min = 0x80;

        } else {
            return NGX_ERROR;
        }

        if ((size_t) (last - p) < n) {
            return NGX_ERROR;
        }

        while (n--) {
            if ((*p & 0xc0) != 0x80) {
                return NGX_ERROR;
            }

            u = (u << 6) | (*p++ & 0x3f);
        }

        if (u < min || u > 0x10ffff || (u >= 0xd800 && u <= 0xdfff)) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * A number of seconds as PostgreSQL prints a numeric or a double:
 * "12", "2.5", "1.5e+20".  NGX_OK with *ms; NGX_DECLINED when it is
 * negative, too far to time (no limit then) or not a number.
 */

ngx_int_t
ngx_rtmp_pgauth_parse_seconds(u_char *p, size_t len, ngx_msec_t *ms)
{
    u_char      *last;
    double       v, scale;
    ngx_int_t    exp, esign, digits;

    last = p + len;
    v = 0;
    digits = 0;

    while (p < last && *p >= '0' && *p <= '9') {
        v = v * 10 + (*p++ - '0');
        digits++;
    }

    if (p < last && *p == '.') {
        p++;
        scale = 0.1;

        while (p < last && *p >= '0' && *p <= '9') {
            v += (*p++ - '0') * scale;
            scale /= 10;
            digits++;
        }
    }

    if (digits == 0) {
        return NGX_DECLINED;
    }

    if (p < last && (*p == 'e' || *p == 'E')) {
        p++;
        esign = 1;

        if (p < last && (*p == '+' || *p == '-')) {
            esign = (*p++ == '-') ? -1 : 1;
        }

        if (p == last) {
            return NGX_DECLINED;
        }

        exp = 0;

        while (p < last && *p >= '0' && *p <= '9') {
            if (exp < 1000) {
                exp = exp * 10 + (*p - '0');
            }

            p++;
        }

        while (exp-- > 0 && v != 0) {
            v = (esign > 0) ? v * 10 : v / 10;

            if (v > 1e12) {
                return NGX_DECLINED;
            }
        }
    }

    if (p != last) {
        return NGX_DECLINED;
    }

    /* nginx timers hold about 24 days; further is no limit */

    if (v > NGX_RTMP_PGAUTH_MAX_SECONDS) {
        return NGX_DECLINED;
    }

    *ms = (ngx_msec_t) (v * 1000);

    return NGX_OK;
}


/* the number of items in a comma-separated list */

ngx_uint_t
ngx_rtmp_pgauth_list_len(u_char *list, size_t len)
{
    size_t      i;
    ngx_uint_t  n;

    n = 1;

    for (i = 0; i < len; i++) {
        if (list[i] == ',') {
            n++;
        }
    }

    return n;
}


/*
 * Item i of a comma-separated list that must have n items; NULL when it
 * has not (a single value applies to every host) or i is past the end.
 */

u_char *
ngx_rtmp_pgauth_list_item(u_char *list, size_t len, ngx_uint_t n,
    ngx_uint_t i, size_t *ilen)
{
    u_char  *p, *last, *end;

    if (i >= n || ngx_rtmp_pgauth_list_len(list, len) != n) {
        return NULL;
    }

    p = list;
    last = list + len;

    while (i) {
        if (*p++ == ',') {
            i--;
        }
    }

    for (end = p; end < last && *end != ','; end++) { /* void */ }

    *ilen = end - p;

    return p;
}


/*
 * Appends one element to a PostgreSQL text[] literal being built in dst:
 * "{" before the first, "," between, quotes and backslashes escaped.
 * dst must have 2 * len + 4 bytes free.  ngx_rtmp_pgauth_array_end()
 * closes it.
 */

u_char *
ngx_rtmp_pgauth_array_add(u_char *dst, u_char *item, size_t len,
    ngx_uint_t first)
{
    size_t  i;

    *dst++ = first ? '{' : ',';
    *dst++ = '"';

    for (i = 0; i < len; i++) {
        if (item[i] == '"' || item[i] == '\\') {
            *dst++ = '\\';
        }

        *dst++ = item[i];
    }

    *dst++ = '"';

    return dst;
}


u_char *
ngx_rtmp_pgauth_array_end(u_char *dst, ngx_uint_t empty)
{
    if (empty) {
        *dst++ = '{';
    }

    *dst++ = '}';
    *dst = '\0';

    return dst;
}
