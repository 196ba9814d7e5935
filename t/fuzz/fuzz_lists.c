/*
 * libFuzzer target: comma-separated host lists of pgauth_dsn, and the
 * text[] literal a re-check sends, parsed back and compared.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_rtmp_pgauth_parse.h"


/* parses a literal made by ngx_rtmp_pgauth_array_add(): {"a","b\"c"} */

static size_t
array_parse(u_char *s, u_char *out, size_t *lens, size_t max)
{
    size_t  n;

    if (*s++ != '{') {
        abort();
    }

    n = 0;

    if (*s == '}') {
        return 0;
    }

    for ( ;; ) {
        if (*s++ != '"' || n == max) {
            abort();
        }

        lens[n] = 0;

        while (*s != '"') {
            if (*s == '\0') {
                abort();
            }

            if (*s == '\\') {
                s++;
            }

            *out++ = *s++;
            lens[n]++;
        }

        s++;
        n++;

        if (*s == '}') {
            return n;
        }

        if (*s++ != ',') {
            abort();
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char      *p, *lit, *s, *back, *item;
    size_t       i, len, n, k, lens[256], plens[256], starts[256], ilen, off;
    ngx_uint_t   count;

    p = malloc(size ? size : 1);
    if (p == NULL) {
        return 0;
    }

    memcpy(p, data, size);

    /* lists: every item within the list, no comma in it, n of them */

    count = ngx_rtmp_pgauth_list_len(p, size);

    for (i = 0; i < count + 1 && i < 64; i++) {
        item = ngx_rtmp_pgauth_list_item(p, size, count, i, &ilen);

        if (i >= count) {
            if (item != NULL) {
                abort();
            }
            continue;
        }

        if (item == NULL || item < p || item + ilen > p + size
            || memchr(item, ',', ilen) != NULL)
        {
            abort();
        }
    }

    if (ngx_rtmp_pgauth_list_item(p, size, count + 1, 0, &ilen) != NULL) {
        abort();
    }

    /* the array literal: items are the input cut at zero bytes */

    lit = malloc(2 * size + 4 * 256 + 8);
    back = malloc(size + 1);

    if (lit == NULL || back == NULL) {
        free(p);
        free(lit);
        free(back);
        return 0;
    }

    n = 0;
    off = 0;
    s = lit;

    for (i = 0; i <= size && n < 256; i++) {
        if (i == size || p[i] == '\0') {
            len = i - off;
            starts[n] = off;
            lens[n] = len;
            s = ngx_rtmp_pgauth_array_add(s, p + off, len, n == 0);
            n++;
            off = i + 1;
        }
    }

    ngx_rtmp_pgauth_array_end(s, n == 0);

    k = array_parse(lit, back, plens, 256);

    if (k != n) {
        abort();
    }

    for (i = 0, off = 0; i < n; i++) {
        if (plens[i] != lens[i]
            || memcmp(back + off, p + starts[i], lens[i]) != 0)
        {
            abort();
        }

        off += lens[i];
    }

    free(p);
    free(lit);
    free(back);

    return 0;
}
