/*
 * libFuzzer target: notification payloads ("end <sid> <reason>",
 * "recheck") as PostgreSQL delivers them on the LISTEN connection.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_rtmp_pgauth_parse.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t      i;
    u_char     *p;
    ngx_int_t   rc;
    ngx_str_t   sid, reason;
    u_char      digest[NGX_RTMP_PGAUTH_DIGEST_LEN], hex[65];

    /* a copy of exactly size bytes: reads past it are caught */
    p = malloc(size ? size : 1);
    if (p == NULL) {
        return 0;
    }

    memcpy(p, data, size);

    rc = ngx_rtmp_pgauth_parse_notify(p, size, &sid, &reason, digest);

    if (rc == NGX_RTMP_PGAUTH_NOTIFY_KEY) {
        /* the digest printed again is the payload */

        if (size != 68 || memcmp(p, "key ", 4) != 0) {
            abort();
        }

        for (i = 0; i < NGX_RTMP_PGAUTH_DIGEST_LEN; i++) {
            snprintf((char *) hex + 2 * i, 3, "%02x", digest[i]);
        }

        if (memcmp(hex, p + 4, 64) != 0) {
            abort();
        }

    } else if (rc == NGX_RTMP_PGAUTH_NOTIFY_RECHECK) {
        if (size != 7 || memcmp(p, "recheck", 7) != 0) {
            abort();
        }

    } else if (rc == NGX_RTMP_PGAUTH_NOTIFY_END
               || rc == NGX_RTMP_PGAUTH_NOTIFY_VIEWER_END)
    {
        if (memcmp(p, rc == NGX_RTMP_PGAUTH_NOTIFY_END ? "end " : "vend ",
                   rc == NGX_RTMP_PGAUTH_NOTIFY_END ? 4 : 5)
            != 0)
        {
            abort();
        }

        if (sid.len == 0 || sid.len >= NGX_RTMP_PGAUTH_SID_LEN
            || sid.data < p + 4 || sid.data + sid.len > p + size)
        {
            abort();
        }

        for (i = 0; i < sid.len; i++) {
            if (sid.data[i] <= 0x20 || sid.data[i] >= 0x7f) {
                abort();
            }
        }

        if (reason.len == 0 || reason.len >= NGX_RTMP_PGAUTH_REASON_LEN) {
            abort();
        }

        for (i = 0; i < reason.len; i++) {
            if (reason.data[i] < 0x20 || reason.data[i] >= 0x7f) {
                abort();
            }
        }

    } else if (rc == NGX_RTMP_PGAUTH_NOTIFY_PROBE) {
        /* the token is what follows "probe ", within the payload */

        if (size <= 6 || memcmp(p, "probe ", 6) != 0
            || sid.data != p + 6 || sid.len != size - 6)
        {
            abort();
        }

    } else if (rc != NGX_DECLINED) {
        abort();
    }

    free(p);

    return 0;
}
