
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


static ngx_int_t ngx_rtmp_pgauth_hex(u_char *dst, u_char *src, size_t n);


/*
 * What a configured query is made of, as PostgreSQL's lexer would see it:
 * the parameters it refers to ($N outside quotes and comments), how many
 * statements (";" between them), the first word of the first statement,
 * and whether a quote or comment is left open.  Dollar quotes, E'' and
 * nested block comments are understood; a "$" inside an identifier is
 * part of it.
 */

void
ngx_rtmp_pgauth_query_scan(u_char *p, size_t len, ngx_rtmp_pgauth_query_t *q)
{
    u_char      *last, *tag, c;
    size_t       tlen, n;
    ngx_uint_t   depth, word, backslash, param;

    ngx_memzero(q, sizeof(ngx_rtmp_pgauth_query_t));

    last = p + len;
    word = 0;       /* the statement has a token */

#define ngx_rtmp_pgauth_ident(c)                                              \
    (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z')                 \
     || (c) == '_' || (c) >= 0x80)

    while (p < last) {
        c = *p;

        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f') {
            p++;
            continue;
        }

        if (c == ';') {
            word = 0;
            p++;
            continue;
        }

        if (c == '-' && p + 1 < last && p[1] == '-') {
            while (p < last && *p != '\n') {
                p++;
            }

            continue;
        }

        if (c == '/' && p + 1 < last && p[1] == '*') {
            depth = 1;
            p += 2;

            while (p < last && depth) {
                if (*p == '/' && p + 1 < last && p[1] == '*') {
                    depth++;
                    p += 2;

                } else if (*p == '*' && p + 1 < last && p[1] == '/') {
                    depth--;
                    p += 2;

                } else {
                    p++;
                }
            }

            if (depth) {
                q->open = 1;
            }

            continue;
        }

        /* a token: the statement counts */

        if (!word) {
            word = 1;
            q->statements++;
        }

        if (c == '\'' || c == '"') {
            backslash = (c == '\'' && q->prev_e);
            p++;

            for ( ;; ) {
                if (p == last) {
                    q->open = 1;
                    break;
                }

                if (backslash && *p == '\\' && p + 1 < last) {
                    p += 2;
                    continue;
                }

                if (*p++ == c) {
                    if (p < last && *p == c) {
                        p++;
                        continue;
                    }

                    break;
                }
            }

            q->prev_e = 0;
            continue;
        }

        q->prev_e = 0;

        if (c == '$') {
            p++;

            if (p < last && *p >= '0' && *p <= '9') {
                param = 0;

                while (p < last && *p >= '0' && *p <= '9') {
                    if (param < 100000) {
                        param = param * 10 + (*p - '0');
                    }

                    p++;
                }

                param = ngx_min(param, 100000);

                if (param > q->max) {
                    q->max = param;
                }

                if (param == 1) {
                    q->first = 1;
                }

                continue;
            }

            /* a dollar quote: $tag$ ... $tag$ */

            tag = p;

            while (p < last && (ngx_rtmp_pgauth_ident(*p)
                                || (p > tag && *p >= '0' && *p <= '9')))
            {
                p++;
            }

            if (p == last || *p != '$') {
                /* a lone "$": PostgreSQL refuses it, so will the server */
                continue;
            }

            tlen = p - tag;
            p++;

            for ( ;; ) {
                if (p == last) {
                    q->open = 1;
                    break;
                }

                if (*p++ != '$') {
                    continue;
                }

                if ((size_t) (last - p) > tlen
                    && ngx_strncmp(p, tag, tlen) == 0 && p[tlen] == '$')
                {
                    p += tlen + 1;
                    break;
                }
            }

            continue;
        }

        if (ngx_rtmp_pgauth_ident(c)) {
            tag = p;

            while (p < last && (ngx_rtmp_pgauth_ident(*p) || *p == '$'
                                || (*p >= '0' && *p <= '9')))
            {
                p++;
            }

            n = p - tag;

            /* E'...': backslash escapes in the string that follows */
            q->prev_e = (n == 1 && (*tag == 'e' || *tag == 'E')
                         && p < last && *p == '\'');

            if (q->statements == 1 && q->keyword[0] == '\0') {
                n = ngx_min(n, sizeof(q->keyword) - 1);

                for (tlen = 0; tlen < n; tlen++) {
                    q->keyword[tlen] = ngx_tolower(tag[tlen]);
                }

                q->keyword[n] = '\0';
            }

            continue;
        }

        p++;
    }

#undef ngx_rtmp_pgauth_ident
}


/*
 * Copies src into dst (at most size bytes) with every occurrence of
 * secret replaced by "***"; returns the end.  For error messages that may
 * quote what they were given.
 */

u_char *
ngx_rtmp_pgauth_scrub(u_char *dst, size_t size, u_char *src, size_t len,
    u_char *secret, size_t slen)
{
    u_char  *last, *end;

    last = dst + size;
    end = src + len;

    while (src < end && dst < last) {

        if (slen && (size_t) (end - src) >= slen
            && ngx_memcmp(src, secret, slen) == 0)
        {
            dst = ngx_cpymem(dst, "***", ngx_min(3, (size_t) (last - dst)));
            src += slen;
            continue;
        }

        *dst++ = *src++;
    }

    return dst;
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
    u_char     *last, *s;
    size_t      skip;
    ngx_int_t   rc;

    if (len == 7 && ngx_strncmp(p, "recheck", 7) == 0) {
        return NGX_RTMP_PGAUTH_NOTIFY_RECHECK;
    }

    if (len > 6 && ngx_strncmp(p, "probe ", 6) == 0) {
        /* the token, for the worker to tell its own */
        sid->data = p + 6;
        sid->len = len - 6;
        return NGX_RTMP_PGAUTH_NOTIFY_PROBE;
    }

    if (len == 4 + 2 * NGX_RTMP_PGAUTH_DIGEST_LEN
        && ngx_strncmp(p, "key ", 4) == 0)
    {
        return ngx_rtmp_pgauth_hex(digest, p + 4, NGX_RTMP_PGAUTH_DIGEST_LEN)
               == NGX_OK ? NGX_RTMP_PGAUTH_NOTIFY_KEY : NGX_DECLINED;
    }

    if (len > 5 && ngx_strncmp(p, "vend ", 5) == 0) {
        rc = NGX_RTMP_PGAUTH_NOTIFY_VIEWER_END;
        skip = 5;

    } else if (len > 4 && ngx_strncmp(p, "end ", 4) == 0) {
        rc = NGX_RTMP_PGAUTH_NOTIFY_END;
        skip = 4;

    } else {
        return NGX_DECLINED;
    }

    last = p + len;
    p += skip;

    for (s = p; s < last && *s > 0x20 && *s < 0x7f; s++) { /* void */ }

    sid->data = p;
    sid->len = s - p;

    if (sid->len == 0 || sid->len >= NGX_RTMP_PGAUTH_SID_LEN) {
        return NGX_DECLINED;
    }

    if (s == last) {
        ngx_str_set(reason, "ended");
        return rc;
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

    return rc;
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
 * "12", "2.5", "1.5e+20".  NGX_OK with *ms, at most
 * NGX_RTMP_PGAUTH_MAX_SECONDS; NGX_DECLINED when it is negative or not a
 * number.
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
                break;
            }
        }
    }

    if (p != last) {
        return NGX_DECLINED;
    }

    if (v > NGX_RTMP_PGAUTH_MAX_SECONDS) {
        v = NGX_RTMP_PGAUTH_MAX_SECONDS;
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


/*
 * The stream an HLS request is for, from its URI as nginx-rtmp names its
 * files: "/any/path/NAME.m3u8", "NAME-N.ts" (or any extension after
 * "-N"), and with hls_nested "NAME/index.m3u8" and "NAME/N.ts".  *dir is
 * the URI's directory, with its slashes.  NGX_DECLINED for what no stream
 * of a valid public name serves.
 */

ngx_int_t
ngx_rtmp_pgauth_hls_stream(u_char *uri, size_t len, ngx_str_t *name,
    ngx_str_t *dir, ngx_uint_t *playlist)
{
    u_char  *p, *base, *ext, *last;

    last = uri + len;

    for (base = last; base > uri && base[-1] != '/'; base--) { /* void */ }

    if (base == uri || base == last) {
        return NGX_DECLINED;
    }

    dir->data = uri;
    dir->len = base - uri;

    /* the directory becomes a cookie's Path: nothing that could end it */

    for (p = uri; p < base; p++) {
        if (*p <= 0x20 || *p >= 0x7f || *p == ';' || *p == ',' || *p == '"'
            || *p == '\\')
        {
            return NGX_DECLINED;
        }
    }

    for (ext = last; ext > base && ext[-1] != '.'; ext--) { /* void */ }

    if (ext == base) {
        return NGX_DECLINED;
    }

    *playlist = (last - ext == 4 && ngx_strncmp(ext, "m3u8", 4) == 0);

    /* NAME.m3u8, NAME-N.ts: the name before the extension, and "-N" */

    name->data = base;
    name->len = ext - 1 - base;

    if (!*playlist) {
        for (p = ext - 1; p > base && p[-1] >= '0' && p[-1] <= '9'; p--) {
            /* void */
        }

        if (p == ext - 1) {
            return NGX_DECLINED;
        }

        if (p > base + 1 && p[-1] == '-') {
            name->len = p - 1 - base;

        } else if (p == base) {
            name->len = 0;      /* N.ts: nested */

        } else {
            return NGX_DECLINED;
        }

    } else if (name->len == 5 && ngx_strncmp(base, "index", 5) == 0) {
        name->len = 0;          /* index.m3u8: nested */
    }

    if (name->len == 0) {
        /* hls_nested: the directory is the name */

        if (dir->len < 2) {
            return NGX_DECLINED;
        }

        for (p = base - 1; p > uri && p[-1] != '/'; p--) { /* void */ }

        name->data = p;
        name->len = base - 1 - p;
    }

    if (ngx_rtmp_pgauth_public_name(name->data, name->len) != NGX_OK
        || name->data[0] == '-')
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * A viewer session as the client hands it back: "<id>-<secret>", the id
 * decimal, the secret NGX_RTMP_PGAUTH_SECRET_LEN hex digits.
 */

ngx_int_t
ngx_rtmp_pgauth_parse_viewer(u_char *p, size_t len, ngx_str_t *id,
    u_char *secret)
{
    u_char      *dash;
    ngx_uint_t   i;

    dash = ngx_strlchr(p, p + len, '-');

    if (dash == NULL || dash == p || dash - p >= NGX_RTMP_PGAUTH_SID_LEN
        || p + len - (dash + 1) != 2 * NGX_RTMP_PGAUTH_SECRET_LEN)
    {
        return NGX_DECLINED;
    }

    for (i = 0; p + i < dash; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return NGX_DECLINED;
        }
    }

    id->data = p;
    id->len = dash - p;

    return ngx_rtmp_pgauth_hex(secret, dash + 1, NGX_RTMP_PGAUTH_SECRET_LEN);
}


/* n bytes from 2 * n lowercase hex digits; NGX_DECLINED for others */

static ngx_int_t
ngx_rtmp_pgauth_hex(u_char *dst, u_char *src, size_t n)
{
    u_char  c, h;
    size_t  i;

    for (i = 0; i < 2 * n; i++) {
        c = src[i];

        if (c >= '0' && c <= '9') {
            h = c - '0';

        } else if (c >= 'a' && c <= 'f') {
            h = c - 'a' + 10;

        } else {
            return NGX_DECLINED;
        }

        if (i % 2 == 0) {
            dst[i / 2] = (u_char) (h << 4);

        } else {
            dst[i / 2] |= h;
        }
    }

    return NGX_OK;
}
