
/*
 * Copyright (C) ngx_rtmp_pgauth authors
 */


/*
 * The per-address limiter, shared by all workers: an address that fails
 * "failures" publishes within "window" is refused for "block", at once and
 * without a query.  Attempts being decided count too: an address has at
 * most "failures" decisions at once, less those that failed, so a burst
 * of parallel attempts cannot pass the limit before the first answer.
 * IPv6 clients count by their /64 (ipv6_prefix=).  Kept in a shared
 * memory zone as ngx_http_limit_req does: a red-black tree by address,
 * least recently used entries evicted when the zone is full, blocked ones
 * last.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_rtmp_pgauth_module.h"


/* how long a decision in flight may take: older ones are a dead worker's */
#define NGX_RTMP_PGAUTH_LIMIT_STALE    60000

/* how many of the least recently used are looked at to make room */
#define NGX_RTMP_PGAUTH_LIMIT_EVICT    8


typedef struct {
    u_char                          color;
    u_char                          len;
    u_short                         pending;    /* decisions in flight */
    ngx_queue_t                     queue;
    ngx_msec_t                      first;      /* window start */
    ngx_msec_t                      until;      /* blocked until, or 0 */
    ngx_msec_t                      taken;      /* the last one in flight */
    ngx_uint_t                      failures;
    u_char                          addr[1];
} ngx_rtmp_pgauth_limit_node_t;


typedef struct {
    ngx_rbtree_t                    rbtree;
    ngx_rbtree_node_t               sentinel;
    ngx_queue_t                     queue;
} ngx_rtmp_pgauth_limit_shctx_t;


struct ngx_rtmp_pgauth_limit_s {
    ngx_rtmp_pgauth_limit_shctx_t  *sh;
    ngx_slab_pool_t                *shpool;
    ngx_uint_t                      failures;
    ngx_msec_t                      window;
    ngx_msec_t                      block;
    ngx_uint_t                      ipv6_prefix;    /* bits */
};


static ngx_int_t ngx_rtmp_pgauth_limit_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_rtmp_pgauth_limit_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static size_t ngx_rtmp_pgauth_limit_key(ngx_rtmp_pgauth_limit_t *lim,
    ngx_rtmp_session_t *s, u_char *key);
static ngx_rtmp_pgauth_limit_node_t *ngx_rtmp_pgauth_limit_lookup(
    ngx_rtmp_pgauth_limit_t *lim, u_char *key, size_t len, uint32_t hash);
static ngx_rtmp_pgauth_limit_node_t *ngx_rtmp_pgauth_limit_alloc(
    ngx_rtmp_pgauth_limit_t *lim, u_char *key, size_t len, uint32_t hash);
static ngx_int_t ngx_rtmp_pgauth_limit_matters(ngx_rtmp_pgauth_limit_t *lim,
    ngx_rtmp_pgauth_limit_node_t *ln);
static void ngx_rtmp_pgauth_limit_delete(ngx_rtmp_pgauth_limit_t *lim,
    ngx_rtmp_pgauth_limit_node_t *ln);


/*
 * pgauth_limit_zone zone=name:size [failures=N] [window=time]
 *     [block=time] [ipv6_prefix=bits]
 */

char *
ngx_rtmp_pgauth_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    u_char                   *p;
    ssize_t                   size;
    ngx_str_t                *value, name, s;
    ngx_int_t                 n;
    ngx_uint_t                i;
    ngx_shm_zone_t           *shm_zone;
    ngx_rtmp_pgauth_limit_t  *lim;

    value = cf->args->elts;

    lim = ngx_pcalloc(cf->pool, sizeof(ngx_rtmp_pgauth_limit_t));
    if (lim == NULL) {
        return NGX_CONF_ERROR;
    }

    lim->failures = 5;
    lim->window = 60000;
    lim->block = 600000;
    lim->ipv6_prefix = 64;

    size = 0;
    name.len = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {

            name.data = value[i].data + 5;

            p = (u_char *) ngx_strchr(name.data, ':');

            if (p == NULL) {
                goto invalid;
            }

            name.len = p - name.data;

            s.data = p + 1;
            s.len = value[i].data + value[i].len - s.data;

            size = ngx_parse_size(&s);

            if (size == NGX_ERROR || name.len == 0) {
                goto invalid;
            }

            if (size < (ssize_t) (8 * ngx_pagesize)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "zone \"%V\" is too small in "
                                   "\"%V\" directive", &value[i], &value[0]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "failures=", 9) == 0) {

            n = ngx_atoi(value[i].data + 9, value[i].len - 9);
            if (n <= 0 || n > 65535) {
                goto invalid;
            }

            lim->failures = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "ipv6_prefix=", 12) == 0) {

            n = ngx_atoi(value[i].data + 12, value[i].len - 12);
            if (n <= 0 || n > 128) {
                goto invalid;
            }

            lim->ipv6_prefix = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "window=", 7) == 0) {

            s.data = value[i].data + 7;
            s.len = value[i].len - 7;

            lim->window = ngx_parse_time(&s, 0);
            if (lim->window == (ngx_msec_t) NGX_ERROR || lim->window == 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "block=", 6) == 0) {

            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

            lim->block = ngx_parse_time(&s, 0);
            if (lim->block == (ngx_msec_t) NGX_ERROR || lim->block == 0) {
                goto invalid;
            }

            continue;
        }

        goto invalid;
    }

    if (name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have \"zone\" parameter",
                           &value[0]);
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &name, size, &ngx_rtmp_pgauth_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\" in \"%V\" directive",
                           &name, &value[0]);
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_rtmp_pgauth_limit_init_zone;
    shm_zone->data = lim;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" in \"%V\" directive",
                       &value[i], &value[0]);

    return NGX_CONF_ERROR;
}


/* pgauth_limit zone=name | off */

char *
ngx_rtmp_pgauth_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_rtmp_pgauth_app_conf_t  *pacf = conf;

    ngx_str_t  *value, name;

    if (pacf->limit != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        pacf->limit = NULL;
        return NGX_CONF_OK;
    }

    if (ngx_strncmp(value[1].data, "zone=", 5) != 0 || value[1].len == 5) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"%V\" directive",
                           &value[1], &value[0]);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data + 5;
    name.len = value[1].len - 5;

    /* size 0: defined by pgauth_limit_zone, before or after this */

    pacf->limit = ngx_shared_memory_add(cf, &name, 0,
                                        &ngx_rtmp_pgauth_module);
    if (pacf->limit == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* every zone an application uses must have been defined */

char *
ngx_rtmp_pgauth_limit_check_conf(ngx_conf_t *cf, ngx_shm_zone_t *zone)
{
    if (zone && zone->data == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown zone \"%V\" in \"pgauth_limit\": no "
                           "\"pgauth_limit_zone\" defines it",
                           &zone->shm.name);
        return NGX_CONF_ERROR;
    }

    if (zone && zone->init != ngx_rtmp_pgauth_limit_init_zone) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" in \"pgauth_limit\" is not a "
                           "\"pgauth_limit_zone\"", &zone->shm.name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_rtmp_pgauth_limit_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_rtmp_pgauth_limit_t  *olim = data;

    size_t                    len;
    ngx_rtmp_pgauth_limit_t  *lim;

    lim = shm_zone->data;

    if (olim) {
        /* a reload keeps what the old zone knows */
        lim->sh = olim->sh;
        lim->shpool = olim->shpool;
        return NGX_OK;
    }

    lim->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    /* a full zone is normal: entries make room, the slab need not say */
    lim->shpool->log_nomem = 0;

    if (shm_zone->shm.exists) {
        lim->sh = lim->shpool->data;
        return NGX_OK;
    }

    lim->sh = ngx_slab_alloc(lim->shpool,
                             sizeof(ngx_rtmp_pgauth_limit_shctx_t));
    if (lim->sh == NULL) {
        return NGX_ERROR;
    }

    lim->shpool->data = lim->sh;

    ngx_rbtree_init(&lim->sh->rbtree, &lim->sh->sentinel,
                    ngx_rtmp_pgauth_limit_rbtree_insert);

    ngx_queue_init(&lim->sh->queue);

    len = sizeof(" in pgauth_limit_zone \"\"") + shm_zone->shm.name.len;

    lim->shpool->log_ctx = ngx_slab_alloc(lim->shpool, len);
    if (lim->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(lim->shpool->log_ctx, " in pgauth_limit_zone \"%V\"%Z",
                &shm_zone->shm.name);

    return NGX_OK;
}


static void
ngx_rtmp_pgauth_limit_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t             **p;
    ngx_rtmp_pgauth_limit_node_t   *ln, *lnt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else { /* node->key == temp->key */

            ln = (ngx_rtmp_pgauth_limit_node_t *) &node->color;
            lnt = (ngx_rtmp_pgauth_limit_node_t *) &temp->color;

            p = (ngx_memn2cmp(ln->addr, lnt->addr, ln->len, lnt->len) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


/*
 * The client's address as bytes, an IPv6 one cut to its prefix (an IPv4
 * address mapped into IPv6 is the IPv4 one); 0 for what is not limited
 * (unix sockets).
 */

static size_t
ngx_rtmp_pgauth_limit_key(ngx_rtmp_pgauth_limit_t *lim,
    ngx_rtmp_session_t *s, u_char *key)
{
    struct sockaddr_in   *sin;
#if (NGX_HAVE_INET6)
    size_t                n;
    struct sockaddr_in6  *sin6;
#endif

    switch (s->connection->sockaddr->sa_family) {

    case AF_INET:
        sin = (struct sockaddr_in *) s->connection->sockaddr;
        ngx_memcpy(key, &sin->sin_addr, 4);
        return 4;

#if (NGX_HAVE_INET6)
    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) s->connection->sockaddr;

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


static ngx_rtmp_pgauth_limit_node_t *
ngx_rtmp_pgauth_limit_lookup(ngx_rtmp_pgauth_limit_t *lim, u_char *key,
    size_t len, uint32_t hash)
{
    ngx_int_t                      rc;
    ngx_rbtree_node_t             *node, *sentinel;
    ngx_rtmp_pgauth_limit_node_t  *ln;

    node = lim->sh->rbtree.root;
    sentinel = lim->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        ln = (ngx_rtmp_pgauth_limit_node_t *) &node->color;

        rc = ngx_memn2cmp(key, ln->addr, len, (size_t) ln->len);

        if (rc == 0) {
            return ln;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


/*
 * May the client try?  NGX_BUSY when its address is blocked (*left: for
 * how long) or has as many decisions in flight as failures left; else
 * NGX_OK, and the attempt is counted in flight until
 * ngx_rtmp_pgauth_limit_done().  Test and count under one lock.
 */

ngx_int_t
ngx_rtmp_pgauth_limit_take(ngx_shm_zone_t *zone, ngx_rtmp_session_t *s,
    ngx_msec_t *left)
{
    u_char                         key[17];
    size_t                         len;
    uint32_t                       hash;
    ngx_int_t                      rc;
    ngx_rtmp_pgauth_limit_t       *lim;
    ngx_rtmp_pgauth_limit_node_t  *ln;

    lim = zone->data;

    len = ngx_rtmp_pgauth_limit_key(lim, s, key);
    if (len == 0) {
        return NGX_OK;
    }

    hash = ngx_crc32_short(key, len);
    rc = NGX_OK;
    *left = 0;

    ngx_shmtx_lock(&lim->shpool->mutex);

    ln = ngx_rtmp_pgauth_limit_lookup(lim, key, len, hash);

    if (ln == NULL) {
        ln = ngx_rtmp_pgauth_limit_alloc(lim, key, len, hash);

        if (ln == NULL) {
            /* full of what matters: this address goes uncounted */
            ngx_shmtx_unlock(&lim->shpool->mutex);
            return NGX_OK;
        }
    }

    ngx_queue_remove(&ln->queue);
    ngx_queue_insert_head(&lim->sh->queue, &ln->queue);

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

    ngx_shmtx_unlock(&lim->shpool->mutex);

    return rc;
}


/* the attempt is decided: a failure is counted, the address blocked at
   the limit */

void
ngx_rtmp_pgauth_limit_done(ngx_shm_zone_t *zone, ngx_rtmp_session_t *s,
    ngx_uint_t failed)
{
    u_char                         key[17];
    size_t                         len;
    ngx_uint_t                     blocked, failures;
    ngx_rtmp_pgauth_limit_t       *lim;
    ngx_rtmp_pgauth_main_conf_t   *pmcf;
    ngx_rtmp_pgauth_limit_node_t  *ln;

    lim = zone->data;

    len = ngx_rtmp_pgauth_limit_key(lim, s, key);
    if (len == 0) {
        return;
    }

    blocked = 0;
    failures = 0;

    ngx_shmtx_lock(&lim->shpool->mutex);

    ln = ngx_rtmp_pgauth_limit_lookup(lim, key, len,
                                      ngx_crc32_short(key, len));

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

    ngx_shmtx_unlock(&lim->shpool->mutex);

    if (blocked) {
        pmcf = ngx_rtmp_get_module_main_conf(s, ngx_rtmp_pgauth_module);
        ngx_rtmp_pgauth_stats_count(pmcf->stats, NGX_RTMP_PGAUTH_CNT_BLOCKS);

        ngx_log_error(NGX_LOG_WARN, s->connection->log, 0,
                      "pgauth: blocked addr=\"%V\" for %Ms after %ui "
                      "failed publishes",
                      &s->connection->addr_text, lim->block / 1000,
                      failures);
    }
}


/*
 * A new entry.  Two entries that no longer matter go first, oldest first;
 * when the zone is full, the least recently used that does not matter
 * (blocked or in flight) makes room.  NULL when none could.
 */

static ngx_rtmp_pgauth_limit_node_t *
ngx_rtmp_pgauth_limit_alloc(ngx_rtmp_pgauth_limit_t *lim, u_char *key,
    size_t len, uint32_t hash)
{
    size_t                          size;
    ngx_uint_t                      i;
    ngx_queue_t                    *q, *prev;
    ngx_rbtree_node_t              *node;
    ngx_rtmp_pgauth_limit_node_t   *ln;

    for (i = 0; i < 2 && !ngx_queue_empty(&lim->sh->queue); i++) {
        q = ngx_queue_last(&lim->sh->queue);
        ln = ngx_queue_data(q, ngx_rtmp_pgauth_limit_node_t, queue);

        if (ngx_rtmp_pgauth_limit_matters(lim, ln)) {
            break;
        }

        ngx_rtmp_pgauth_limit_delete(lim, ln);
    }

    size = offsetof(ngx_rbtree_node_t, color)
           + offsetof(ngx_rtmp_pgauth_limit_node_t, addr) + len;

    node = ngx_slab_alloc_locked(lim->shpool, size);

    q = ngx_queue_last(&lim->sh->queue);

    for (i = 0;
         node == NULL && i < NGX_RTMP_PGAUTH_LIMIT_EVICT
         && q != ngx_queue_sentinel(&lim->sh->queue);
         i++)
    {
        prev = ngx_queue_prev(q);
        ln = ngx_queue_data(q, ngx_rtmp_pgauth_limit_node_t, queue);

        if (!ln->pending
            && !(ln->until
                 && (ngx_msec_int_t) (ln->until - ngx_current_msec) > 0))
        {
            ngx_rtmp_pgauth_limit_delete(lim, ln);
            node = ngx_slab_alloc_locked(lim->shpool, size);
        }

        q = prev;
    }

    if (node == NULL) {
        return NULL;
    }

    node->key = hash;

    ln = (ngx_rtmp_pgauth_limit_node_t *) &node->color;
    ln->len = (u_char) len;
    ln->pending = 0;
    ln->first = ngx_current_msec;
    ln->until = 0;
    ln->taken = 0;
    ln->failures = 0;
    ngx_memcpy(ln->addr, key, len);

    ngx_rbtree_insert(&lim->sh->rbtree, node);
    ngx_queue_insert_head(&lim->sh->queue, &ln->queue);

    return ln;
}


/* blocked, in flight or with failures in its window */

static ngx_int_t
ngx_rtmp_pgauth_limit_matters(ngx_rtmp_pgauth_limit_t *lim,
    ngx_rtmp_pgauth_limit_node_t *ln)
{
    if (ln->until) {
        return (ngx_msec_int_t) (ln->until - ngx_current_msec) > 0;
    }

    return ln->pending
           || (ln->failures && ngx_current_msec - ln->first <= lim->window);
}


static void
ngx_rtmp_pgauth_limit_delete(ngx_rtmp_pgauth_limit_t *lim,
    ngx_rtmp_pgauth_limit_node_t *ln)
{
    ngx_rbtree_node_t  *node;

    ngx_queue_remove(&ln->queue);

    node = (ngx_rbtree_node_t *)
               ((u_char *) ln - offsetof(ngx_rbtree_node_t, color));

    ngx_rbtree_delete(&lim->sh->rbtree, node);

    ngx_slab_free_locked(lim->shpool, node);
}
