/*
 * libFuzzer target: what comes from clients and query results as
 * strings: UTF-8 (stream keys, arguments), public names, seconds, session
 * ids, error texts scrubbed of a secret, and the directive scanners
 * (queries, channel names).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_rtmp_pgauth_parse.h"


/* a second, plain implementation of UTF-8 validity to compare with */

static int
utf8_reference(const u_char *p, size_t len)
{
    size_t    i, n, k;
    uint32_t  u;

    for (i = 0; i < len; ) {
        u = p[i];

        if (u == 0) {
            return 0;
        }

        if (u < 0x80) {
            i++;
            continue;
        }

        if ((u & 0xe0) == 0xc0) {
            n = 2; u &= 0x1f;
        } else if ((u & 0xf0) == 0xe0) {
            n = 3; u &= 0x0f;
        } else if ((u & 0xf8) == 0xf0) {
            n = 4; u &= 0x07;
        } else {
            return 0;
        }

        if (i + n > len) {
            return 0;
        }

        for (k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return 0;
            }
            u = (u << 6) | (p[i + k] & 0x3f);
        }

        if ((n == 2 && u < 0x80) || (n == 3 && u < 0x800)
            || (n == 4 && u < 0x10000) || u > 0x10ffff
            || (u >= 0xd800 && u <= 0xdfff))
        {
            return 0;
        }

        i += n;
    }

    return 1;
}


static int
decimal(const char *s)
{
    size_t  i;

    for (i = 0; s[i] >= '0' && s[i] <= '9'; i++) { /* void */ }

    return i > 0 && s[i] == '\0' && (s[0] != '0' || i == 1);
}


static void
sids(const u_char *p, size_t size)
{
    char    a[NGX_RTMP_PGAUTH_SID_LEN], b[NGX_RTMP_PGAUTH_SID_LEN];
    size_t  i, alen, blen;
    int     newer, want;

    for (i = 0; i < size && p[i] != '|'; i++) { /* void */ }

    alen = i;
    blen = i < size ? size - i - 1 : 0;

    if (alen >= sizeof(a) || blen >= sizeof(b)
        || memchr(p, '\0', size) != NULL)
    {
        return;
    }

    memcpy(a, p, alen);
    a[alen] = '\0';
    memcpy(b, p + alen + (i < size), blen);
    b[blen] = '\0';

    newer = ngx_rtmp_pgauth_sid_newer((u_char *) a, (u_char *) b) ? 1 : 0;

    if (!decimal(a) || !decimal(b)) {
        if (newer) {
            abort();
        }

        return;
    }

    /* never both newer than each other */

    if (newer && ngx_rtmp_pgauth_sid_newer((u_char *) b, (u_char *) a)) {
        abort();
    }

    if (alen <= 19 && blen <= 19) {
        want = strtoull(a, NULL, 10) > strtoull(b, NULL, 10);

        if (newer != want) {
            abort();
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t       i;
    u_char      *p;
    u_char      *last, *s, out[512];
    ngx_int_t    rc;
    ngx_msec_t   ms;
    char         buf[32];

    ngx_rtmp_pgauth_query_t  q;

    p = malloc(size ? size : 1);
    if (p == NULL) {
        return 0;
    }

    memcpy(p, data, size);

    /* UTF-8: ours agrees with the reference */

    rc = ngx_rtmp_pgauth_utf8(p, size);
    if ((rc == NGX_OK) != utf8_reference(p, size)) {
        abort();
    }

    /* an HLS URI's stream: a public name inside the URI, after a slash */

    {
        ngx_str_t   name, dir, id;
        ngx_uint_t  playlist;
        u_char      secret[NGX_RTMP_PGAUTH_SECRET_LEN];

        if (ngx_rtmp_pgauth_hls_stream(p, size, &name, &dir, &playlist)
            == NGX_OK)
        {
            if (name.data < p || name.data + name.len > p + size
                || ngx_rtmp_pgauth_public_name(name.data, name.len) != NGX_OK
                || dir.data != p || dir.len == 0 || dir.len > size
                || p[dir.len - 1] != '/'
                || (name.data > p && name.data[-1] != '/'))
            {
                abort();
            }

            /* the directory is a cookie's Path: nothing that ends it */

            for (i = 0; i < dir.len; i++) {
                if (p[i] <= 0x20 || p[i] >= 0x7f || p[i] == ';'
                    || p[i] == ',' || p[i] == '"' || p[i] == '\\')
                {
                    abort();
                }
            }
        }

        /* a viewer session: digits, a dash, the secret's hex digits */

        if (ngx_rtmp_pgauth_parse_viewer(p, size, &id, secret) == NGX_OK) {
            if (id.data != p || id.len == 0
                || id.len >= NGX_RTMP_PGAUTH_SID_LEN
                || size != id.len + 1 + 2 * NGX_RTMP_PGAUTH_SECRET_LEN
                || p[id.len] != '-')
            {
                abort();
            }

            for (i = 0; i < id.len; i++) {
                if (p[i] < '0' || p[i] > '9') {
                    abort();
                }
            }
        }
    }

    /* a public name accepted is safe as a file name */

    if (ngx_rtmp_pgauth_public_name(p, size) == NGX_OK) {
        if (size == 0 || size >= NGX_RTMP_PGAUTH_NAME_LEN || p[0] == '.') {
            abort();
        }

        for (i = 0; i < size; i++) {
            if (p[i] < 0x20 || p[i] == '/' || p[i] == '\\' || p[i] == 0x7f) {
                abort();
            }
        }
    }

    /* seconds: at most NGX_RTMP_PGAUTH_MAX_SECONDS; plain integers exact */

    ms = 0;

    if (ngx_rtmp_pgauth_parse_seconds(p, size, &ms) == NGX_OK) {
        if (ms > (ngx_msec_t) (NGX_RTMP_PGAUTH_MAX_SECONDS * 1000)) {
            abort();
        }

        if (size > 0 && size < 8) {
            for (i = 0; i < size && p[i] >= '0' && p[i] <= '9'; i++) {
                /* void */
            }

            if (i == size) {
                memcpy(buf, p, size);
                buf[size] = '\0';

                if (ms != (ngx_msec_t) strtoul(buf, NULL, 10) * 1000) {
                    abort();
                }
            }
        }
    }

    /* session ids: the input split in two at its first '|', compared as
       numbers; up to 19 digits against strtoull */

    sids(p, size);

    /* the scanners of directive values */

    ngx_rtmp_pgauth_query_scan(p, size, &q);

    if (q.max > 100000 || (q.first && q.max == 0)
        || q.keyword[sizeof(q.keyword) - 1] != '\0'
        || (q.statements == 0 && (q.first || q.keyword[0])))
    {
        abort();
    }

    /* a query without a "$", quote, comment or ";" is one plain statement */

    for (i = 0; i < size; i++) {
        if (strchr("$'\";-/", p[i]) != NULL || p[i] == '\0') {
            break;
        }
    }

    if (i == size) {
        for (i = 0; i < size && strchr(" \t\n\r\f", p[i]); i++) {
            /* void */
        }

        if (q.open || q.max || q.statements != (i < size)) {
            abort();
        }
    }

    /* the scrubbed text: the input with its first 4 bytes as the secret;
       the secret is nowhere in it afterwards, unless made of stars */

    if (size > 4) {
        last = ngx_rtmp_pgauth_scrub(out, sizeof(out), p + 4, size - 4, p, 4);

        if (last < out || last > out + sizeof(out)) {
            abort();
        }

        if (memchr(p, '*', 4) == NULL && size - 4 <= sizeof(out)) {
            for (s = out; s + 4 <= last; s++) {
                if (memcmp(s, p, 4) == 0) {
                    abort();
                }
            }
        }
    }

    if (ngx_rtmp_pgauth_channel_valid(p, size) == NGX_OK) {
        if (size == 0 || size > 63 || (p[0] >= '0' && p[0] <= '9')) {
            abort();
        }
    }

    free(p);

    return 0;
}
