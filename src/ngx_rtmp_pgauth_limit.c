
/*
 * Copyright (C) ngx_rtmp_pgauth authors
 */


/*
 * The per-address limiter, shared by all workers: an address that fails
 * "failures" publishes within "window" is refused for "block", at once and
 * without a query.  Attempts being decided count too: an address has at
 * most "failures" decisions at once, less those that failed, so a burst
 * of parallel attempts cannot pass the limit before the first answer.
 * IPv6 clients count by their /64 (ipv6_prefix=).  A table of
 * ngx_rtmp_pgauth_shm.c by address: when the zone is full, the least
 * recently used make room, but never one blocked or in flight.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_rtmp_pgauth_module.h"


/* how long a decision in flight may take: older ones are a dead worker's */
#define NGX_RTMP_PGAUTH_LIMIT_STALE    60000


typedef struct {
    ngx_msec_t                      first;      /* window start */
    ngx_msec_t                      until;      /* blocked until, or 0 */
    ngx_msec_t                      taken;      /* the last one in flight */
    ngx_uint_t                      failures;
    ngx_uint_t                      pending;    /* decisions in flight */
} ngx_rtmp_pgauth_limit_node_t;


struct ngx_rtmp_pgauth_limit_s {
    ngx_rtmp_pgauth_shm_t           shm;
    ngx_uint_t                      failures;
    ngx_msec_t                      window;
    ngx_msec_t                      block;
    ngx_uint_t                      ipv6_prefix;    /* bits */
};


static size_t ngx_rtmp_pgauth_limit_key(ngx_rtmp_pgauth_limit_t *lim,
    ngx_connection_t *c, u_char *key);
static ngx_int_t ngx_rtmp_pgauth_limit_expired(ngx_rtmp_pgauth_shm_t *shm,
    void *value);
static ngx_int_t ngx_rtmp_pgauth_limit_pinned(ngx_rtmp_pgauth_shm_t *shm,
    void *value);


static ngx_rtmp_pgauth_shm_param_t  ngx_rtmp_pgauth_limit_params[] = {

    { ngx_string("failures="), NGX_RTMP_PGAUTH_SHM_NUMBER, 1, 65535, 5,
      offsetof(ngx_rtmp_pgauth_limit_t, failures) },

    { ngx_string("ipv6_prefix="), NGX_RTMP_PGAUTH_SHM_NUMBER, 1, 128, 64,
      offsetof(ngx_rtmp_pgauth_limit_t, ipv6_prefix) },

    { ngx_string("window="), NGX_RTMP_PGAUTH_SHM_TIME, 1, 0, 60000,
      offsetof(ngx_rtmp_pgauth_limit_t, window) },

    { ngx_string("block="), NGX_RTMP_PGAUTH_SHM_TIME, 1, 0, 600000,
      offsetof(ngx_rtmp_pgauth_limit_t, block) },

    { ngx_null_string, 0, 0, 0, 0, 0 }
};


/* what no longer matters goes first; blocks and decisions in flight stay */

ngx_rtmp_pgauth_shm_type_t  ngx_rtmp_pgauth_limit_type = {
    "pgauth_limit_zone", "pgauth_limit", sizeof(ngx_rtmp_pgauth_limit_t),
    ngx_rtmp_pgauth_limit_params, ngx_rtmp_pgauth_limit_expired,
    ngx_rtmp_pgauth_limit_pinned
};


/*
 * pgauth_limit_zone zone=name:size [failures=N] [window=time]
 *     [block=time] [ipv6_prefix=bits]
 */

char *
ngx_rtmp_pgauth_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    return ngx_rtmp_pgauth_shm_zone(cf, &ngx_rtmp_pgauth_limit_type, NULL);
}


/*
 * The client's address as bytes, an IPv6 one cut to its prefix (an IPv4
 * address mapped into IPv6 is the IPv4 one); 0 for what is not limited
 * (unix sockets).
 */

static size_t
ngx_rtmp_pgauth_limit_key(ngx_rtmp_pgauth_limit_t *lim, ngx_connection_t *c,
    u_char *key)
{
    struct sockaddr_in   *sin;
#if (NGX_HAVE_INET6)
    size_t                n;
    struct sockaddr_in6  *sin6;
#endif

    switch (c->sockaddr->sa_family) {

    case AF_INET:
        sin = (struct sockaddr_in *) c->sockaddr;
        ngx_memcpy(key, &sin->sin_addr, 4);
        return 4;

#if (NGX_HAVE_INET6)
    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) c->sockaddr;

        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            ngx_memcpy(key, &sin6->sin6_addr.s6_addr[12], 4);
            return 4;
        }

        n = (lim->ipv6_prefix + 7) / 8;

        ngx_memcpy(key, sin6->sin6_addr.s6_addr, n);

        if (lim->ipv6_prefix % 8) {
            key[n - 1] &= (u_char) (0xff << (8 - lim->ipv6_prefix % 8));
        }

        /* 1 to 16 bytes, and one more: never the length of an IPv4 key */
        key[n] = (u_char) lim->ipv6_prefix;

        return n + 1;
#endif

    default:
        return 0;
    }
}


/*
 * May the client try?  NGX_BUSY when its address is blocked (*left: for
 * how long) or has as many decisions in flight as failures left; else
 * NGX_OK, and the attempt is counted in flight until
 * ngx_rtmp_pgauth_limit_done().  Test and count under one lock.
 */

ngx_int_t
ngx_rtmp_pgauth_limit_take(ngx_shm_zone_t *zone, ngx_connection_t *c,
    ngx_msec_t *left)
{
    u_char                         key[17];
    size_t                         len;
    uint32_t                       hash;
    ngx_int_t                      rc;
    ngx_rtmp_pgauth_limit_t       *lim;
    ngx_rtmp_pgauth_limit_node_t  *ln;

    lim = zone->data;

    len = ngx_rtmp_pgauth_limit_key(lim, c, key);
    if (len == 0) {
        return NGX_OK;
    }

    hash = ngx_crc32_short(key, len);
    rc = NGX_OK;
    *left = 0;

    ngx_rtmp_pgauth_shm_lock(&lim->shm);

    ln = ngx_rtmp_pgauth_shm_find(&lim->shm, hash, key, len,
                                  NGX_RTMP_PGAUTH_SHM_EXACT);

    if (ln) {
        ngx_rtmp_pgauth_shm_touch(&lim->shm, ln);

    } else {
        ln = ngx_rtmp_pgauth_shm_add(&lim->shm, hash, key, len,
                                     sizeof(ngx_rtmp_pgauth_limit_node_t));
        if (ln == NULL) {
            /* full of what matters: this address goes uncounted */
            ngx_rtmp_pgauth_shm_unlock(&lim->shm);
            return NGX_OK;
        }

        ln->first = ngx_current_msec;
    }

    if (ln->until) {
        if ((ngx_msec_int_t) (ln->until - ngx_current_msec) > 0) {
            *left = ln->until - ngx_current_msec;
            rc = NGX_BUSY;
            goto done;
        }

        /* served its time: a clean slate */
        ln->until = 0;
        ln->failures = 0;
        ln->first = ngx_current_msec;
    }

    if (ngx_current_msec - ln->first > lim->window) {
        ln->first = ngx_current_msec;
        ln->failures = 0;
    }

    if (ln->pending
        && ngx_current_msec - ln->taken > NGX_RTMP_PGAUTH_LIMIT_STALE)
    {
        /* counted by a worker that died before the answer */
        ln->pending = 0;
    }

    if (ln->failures + ln->pending >= lim->failures) {
        rc = NGX_BUSY;
        goto done;
    }

    ln->pending++;
    ln->taken = ngx_current_msec;

done:

    ngx_rtmp_pgauth_shm_unlock(&lim->shm);

    return rc;
}


/* the attempt is decided: a failure is counted, the address blocked at
   the limit */

void
ngx_rtmp_pgauth_limit_done(ngx_shm_zone_t *zone, ngx_connection_t *c,
    ngx_uint_t failed, ngx_rtmp_pgauth_stats_t *stats, char *what)
{
    u_char                         key[17];
    size_t                         len;
    ngx_uint_t                     blocked, failures;
    ngx_rtmp_pgauth_limit_t       *lim;
    ngx_rtmp_pgauth_limit_node_t  *ln;

    lim = zone->data;

    len = ngx_rtmp_pgauth_limit_key(lim, c, key);
    if (len == 0) {
        return;
    }

    blocked = 0;
    failures = 0;

    ngx_rtmp_pgauth_shm_lock(&lim->shm);

    ln = ngx_rtmp_pgauth_shm_find(&lim->shm, ngx_crc32_short(key, len), key,
                                  len, NGX_RTMP_PGAUTH_SHM_EXACT);

    if (ln) {
        if (ln->pending) {
            ln->pending--;
        }

        if (failed && ln->until == 0) {

            if (ngx_current_msec - ln->first > lim->window) {
                ln->first = ngx_current_msec;
                ln->failures = 0;
            }

            failures = ++ln->failures;

            if (failures >= lim->failures) {
                ln->until = ngx_current_msec + lim->block;
                blocked = 1;
            }
        }
    }

    ngx_rtmp_pgauth_shm_unlock(&lim->shm);

    if (blocked) {
        ngx_rtmp_pgauth_stats_count(stats, NGX_RTMP_PGAUTH_CNT_BLOCKS);

        ngx_log_error(NGX_LOG_WARN, c->log, 0,
                      "pgauth: blocked addr=\"%V\" for %Ms after %ui "
                      "failed %s", &c->addr_text, lim->block / 1000,
                      failures, what);
    }
}


/*
 * The limiter's count of the publish: taken in check(), given back once:
 * when it goes live (a live publish may last hours), when its key is
 * refused (failed), or when it ends whichever way (end()).
 */

void
ngx_rtmp_pgauth_limit_give_back(ngx_rtmp_pgauth_ctx_t *ctx, ngx_uint_t failed)
{
    if (!ctx->limited) {
        return;
    }

    ctx->limited = 0;

    ngx_rtmp_pgauth_limit_done(ctx->pacf->limit, ctx->session->connection,
                               failed, ctx->pmcf->stats, "publishes");
}


/* no longer blocked, in flight, nor with failures in its window */

static ngx_int_t
ngx_rtmp_pgauth_limit_expired(ngx_rtmp_pgauth_shm_t *shm, void *value)
{
    ngx_rtmp_pgauth_limit_t       *lim = (ngx_rtmp_pgauth_limit_t *) shm;
    ngx_rtmp_pgauth_limit_node_t  *ln = value;

    if (ln->until) {
        return (ngx_msec_int_t) (ln->until - ngx_current_msec) <= 0;
    }

    return !ln->pending
           && !(ln->failures && ngx_current_msec - ln->first <= lim->window);
}


/* serving a block, or in flight: not even a full zone forgets it */

static ngx_int_t
ngx_rtmp_pgauth_limit_pinned(ngx_rtmp_pgauth_shm_t *shm, void *value)
{
    ngx_rtmp_pgauth_limit_node_t  *ln = value;

    return ln->pending
           || (ln->until
               && (ngx_msec_int_t) (ln->until - ngx_current_msec) > 0);
}
