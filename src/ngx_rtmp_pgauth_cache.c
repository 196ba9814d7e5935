
/*
 * Copyright (C) ngx_rtmp_pgauth authors
 */


/*
 * The decision cache, shared by all workers: what the database last said
 * of a key's digest in an application (allowed, with the public name and
 * how long; or refused), and when.  Kept as ngx_http_limit_req keeps its
 * state: a red-black tree, least recently used entries evicted when the
 * zone is full.  A change of a key reaches every worker as a notification
 * ("key <digest>") and drops its entries.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_rtmp_pgauth_module.h"


typedef struct {
    u_char                          color;
    u_char                          allowed;
    u_char                          app_len;
    u_char                          name_len;
    ngx_queue_t                     queue;
    ngx_msec_t                      decided;
    ngx_msec_t                      until;      /* 0: no limit */
    u_char                          digest[NGX_RTMP_PGAUTH_DIGEST_LEN];
    u_char                          data[1];    /* app, then name */
} ngx_rtmp_pgauth_cache_node_t;


typedef struct {
    ngx_rbtree_t                    rbtree;
    ngx_rbtree_node_t               sentinel;
    ngx_queue_t                     queue;
} ngx_rtmp_pgauth_cache_shctx_t;


struct ngx_rtmp_pgauth_cache_s {
    ngx_rtmp_pgauth_cache_shctx_t  *sh;
    ngx_slab_pool_t                *shpool;
    ngx_msec_t                      ttl;
};


static ngx_int_t ngx_rtmp_pgauth_cache_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static uint32_t ngx_rtmp_pgauth_cache_hash(u_char *digest);
static ngx_int_t ngx_rtmp_pgauth_cache_cmp(u_char *digest, u_char *app,
    size_t len, ngx_rtmp_pgauth_cache_node_t *cn);
static void ngx_rtmp_pgauth_cache_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_rtmp_pgauth_cache_node_t *ngx_rtmp_pgauth_cache_lookup(
    ngx_rtmp_pgauth_cache_t *cache, u_char *digest, ngx_str_t *app);
static void ngx_rtmp_pgauth_cache_delete(ngx_rtmp_pgauth_cache_t *cache,
    ngx_rtmp_pgauth_cache_node_t *cn);


/* pgauth_cache_zone zone=name:size [ttl=time] */

char *
ngx_rtmp_pgauth_cache_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_rtmp_pgauth_main_conf_t  *pmcf = conf;

    u_char                   *p;
    ssize_t                   size;
    ngx_str_t                *value, name, s;
    ngx_uint_t                i;
    ngx_shm_zone_t           *shm_zone, **zp;
    ngx_rtmp_pgauth_cache_t  *cache;

    value = cf->args->elts;

    cache = ngx_pcalloc(cf->pool, sizeof(ngx_rtmp_pgauth_cache_t));
    if (cache == NULL) {
        return NGX_CONF_ERROR;
    }

    cache->ttl = 30000;

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

        if (ngx_strncmp(value[i].data, "ttl=", 4) == 0) {

            s.data = value[i].data + 4;
            s.len = value[i].len - 4;

            cache->ttl = ngx_parse_time(&s, 0);
            if (cache->ttl == (ngx_msec_t) NGX_ERROR || cache->ttl == 0) {
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

    shm_zone->init = ngx_rtmp_pgauth_cache_init_zone;
    shm_zone->data = cache;

    /* every cache hears of every changed key */

    if (pmcf->caches.elts == NULL
        && ngx_array_init(&pmcf->caches, cf->pool, 2,
                          sizeof(ngx_shm_zone_t *))
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    zp = ngx_array_push(&pmcf->caches);
    if (zp == NULL) {
        return NGX_CONF_ERROR;
    }

    *zp = shm_zone;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" in \"%V\" directive",
                       &value[i], &value[0]);

    return NGX_CONF_ERROR;
}


/* pgauth_cache zone=name | off */

char *
ngx_rtmp_pgauth_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_rtmp_pgauth_app_conf_t  *pacf = conf;

    ngx_str_t  *value, name;

    if (pacf->cache != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        pacf->cache = NULL;
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

    pacf->cache = ngx_shared_memory_add(cf, &name, 0,
                                        &ngx_rtmp_pgauth_module);
    if (pacf->cache == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


char *
ngx_rtmp_pgauth_cache_check_conf(ngx_conf_t *cf, ngx_shm_zone_t *zone)
{
    if (zone && zone->data == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown zone \"%V\" in \"pgauth_cache\": no "
                           "\"pgauth_cache_zone\" defines it",
                           &zone->shm.name);
        return NGX_CONF_ERROR;
    }

    if (zone && zone->init != ngx_rtmp_pgauth_cache_init_zone) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" in \"pgauth_cache\" is not a "
                           "\"pgauth_cache_zone\"", &zone->shm.name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_rtmp_pgauth_cache_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_rtmp_pgauth_cache_t  *ocache = data;

    size_t                    len;
    ngx_rtmp_pgauth_cache_t  *cache;

    cache = shm_zone->data;

    if (ocache) {
        cache->sh = ocache->sh;
        cache->shpool = ocache->shpool;
        return NGX_OK;
    }

    cache->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    /* a full zone is normal: old entries make room, the slab need not say */
    cache->shpool->log_nomem = 0;

    if (shm_zone->shm.exists) {
        cache->sh = cache->shpool->data;
        return NGX_OK;
    }

    cache->sh = ngx_slab_alloc(cache->shpool,
                               sizeof(ngx_rtmp_pgauth_cache_shctx_t));
    if (cache->sh == NULL) {
        return NGX_ERROR;
    }

    cache->shpool->data = cache->sh;

    ngx_rbtree_init(&cache->sh->rbtree, &cache->sh->sentinel,
                    ngx_rtmp_pgauth_cache_rbtree_insert);

    ngx_queue_init(&cache->sh->queue);

    len = sizeof(" in pgauth_cache_zone \"\"") + shm_zone->shm.name.len;

    cache->shpool->log_ctx = ngx_slab_alloc(cache->shpool, len);
    if (cache->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(cache->shpool->log_ctx, " in pgauth_cache_zone \"%V\"%Z",
                &shm_zone->shm.name);

    return NGX_OK;
}


/* the first bytes of a digest are as random as any hash: the tree key */

static uint32_t
ngx_rtmp_pgauth_cache_hash(u_char *digest)
{
    uint32_t  hash;

    ngx_memcpy(&hash, digest, sizeof(uint32_t));

    return hash;
}


/* equal keys: ordered by digest, then application */

static ngx_int_t
ngx_rtmp_pgauth_cache_cmp(u_char *digest, u_char *app, size_t len,
    ngx_rtmp_pgauth_cache_node_t *cn)
{
    ngx_int_t  rc;

    rc = ngx_memcmp(digest, cn->digest, NGX_RTMP_PGAUTH_DIGEST_LEN);
    if (rc) {
        return rc;
    }

    return ngx_memn2cmp(app, cn->data, len, cn->app_len);
}


static void
ngx_rtmp_pgauth_cache_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t             **p;
    ngx_rtmp_pgauth_cache_node_t   *cn, *cnt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else { /* node->key == temp->key */

            cn = (ngx_rtmp_pgauth_cache_node_t *) &node->color;
            cnt = (ngx_rtmp_pgauth_cache_node_t *) &temp->color;

            p = (ngx_rtmp_pgauth_cache_cmp(cn->digest, cn->data, cn->app_len,
                                           cnt) < 0)
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


/* the entry of the digest in app; with app NULL, one in any application */

static ngx_rtmp_pgauth_cache_node_t *
ngx_rtmp_pgauth_cache_lookup(ngx_rtmp_pgauth_cache_t *cache, u_char *digest,
    ngx_str_t *app)
{
    uint32_t                       hash;
    ngx_int_t                      rc;
    ngx_rbtree_node_t             *node, *sentinel;
    ngx_rtmp_pgauth_cache_node_t  *cn;

    hash = ngx_rtmp_pgauth_cache_hash(digest);

    node = cache->sh->rbtree.root;
    sentinel = cache->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        cn = (ngx_rtmp_pgauth_cache_node_t *) &node->color;

        /* ordered by digest, then application */

        rc = app ? ngx_rtmp_pgauth_cache_cmp(digest, app->data, app->len, cn)
                 : ngx_memcmp(digest, cn->digest, NGX_RTMP_PGAUTH_DIGEST_LEN);

        if (rc == 0) {
            return cn;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_rtmp_pgauth_cache_delete(ngx_rtmp_pgauth_cache_t *cache,
    ngx_rtmp_pgauth_cache_node_t *cn)
{
    ngx_rbtree_node_t  *node;

    ngx_queue_remove(&cn->queue);

    node = (ngx_rbtree_node_t *)
               ((u_char *) cn - offsetof(ngx_rbtree_node_t, color));

    ngx_rbtree_delete(&cache->sh->rbtree, node);

    ngx_slab_free_locked(cache->shpool, node);
}


/*
 * What the database said of the digest in the application, at most
 * maxage ago: NGX_OK and *out filled, or NGX_DECLINED.
 */

ngx_int_t
ngx_rtmp_pgauth_cache_get(ngx_shm_zone_t *zone, u_char *digest,
    ngx_str_t *app, ngx_msec_t maxage, ngx_rtmp_pgauth_cached_t *out)
{
    ngx_int_t                      rc;
    ngx_rtmp_pgauth_cache_t       *cache;
    ngx_rtmp_pgauth_cache_node_t  *cn;

    cache = zone->data;

    if (maxage == 0) {
        maxage = cache->ttl;
    }

    rc = NGX_DECLINED;

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_rtmp_pgauth_cache_lookup(cache, digest, app);

    if (cn
        && ngx_current_msec - cn->decided <= maxage
        && (cn->until == 0
            || (ngx_msec_int_t) (cn->until - ngx_current_msec) > 0))
    {
        out->allowed = cn->allowed;
        out->age = ngx_current_msec - cn->decided;
        out->left = cn->until ? cn->until - ngx_current_msec : 0;
        out->name.len = cn->name_len;
        ngx_memcpy(out->name_buf, cn->data + cn->app_len, cn->name_len);
        out->name_buf[cn->name_len] = '\0';
        out->name.data = out->name_buf;

        rc = NGX_OK;
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);

    return rc;
}


/* keeps a decision; left: ms the authorization holds, 0 for no limit */

void
ngx_rtmp_pgauth_cache_put(ngx_shm_zone_t *zone, u_char *digest,
    ngx_str_t *app, ngx_uint_t allowed, u_char *name, size_t name_len,
    ngx_msec_t left, ngx_log_t *log)
{
    size_t                         size;
    ngx_uint_t                     i;
    ngx_queue_t                   *q;
    ngx_rbtree_node_t             *node;
    ngx_rtmp_pgauth_cache_t       *cache;
    ngx_rtmp_pgauth_cache_node_t  *cn;

    if (app->len > 255 || name_len > 255) {
        return;
    }

    cache = zone->data;

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_rtmp_pgauth_cache_lookup(cache, digest, app);

    if (cn) {
        ngx_rtmp_pgauth_cache_delete(cache, cn);
    }

    /* drop two stale entries, oldest first */

    for (i = 0; i < 2 && !ngx_queue_empty(&cache->sh->queue); i++) {
        q = ngx_queue_last(&cache->sh->queue);
        cn = ngx_queue_data(q, ngx_rtmp_pgauth_cache_node_t, queue);

        if (ngx_current_msec - cn->decided <= cache->ttl) {
            break;
        }

        ngx_rtmp_pgauth_cache_delete(cache, cn);
    }

    size = offsetof(ngx_rbtree_node_t, color)
           + offsetof(ngx_rtmp_pgauth_cache_node_t, data)
           + app->len + name_len;

    node = ngx_slab_alloc_locked(cache->shpool, size);

    /* full: the least recently decided make room */

    for (i = 0; node == NULL && i < 8; i++) {

        if (ngx_queue_empty(&cache->sh->queue)) {
            break;
        }

        q = ngx_queue_last(&cache->sh->queue);
        cn = ngx_queue_data(q, ngx_rtmp_pgauth_cache_node_t, queue);
        ngx_rtmp_pgauth_cache_delete(cache, cn);

        node = ngx_slab_alloc_locked(cache->shpool, size);
    }

    if (node == NULL) {
        ngx_shmtx_unlock(&cache->shpool->mutex);
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "pgauth: no room for a decision%s even after "
                      "dropping 8: the zone is too small",
                      cache->shpool->log_ctx);
        return;
    }

    node->key = ngx_rtmp_pgauth_cache_hash(digest);

    cn = (ngx_rtmp_pgauth_cache_node_t *) &node->color;

    cn->allowed = (u_char) allowed;
    cn->app_len = (u_char) app->len;
    cn->name_len = (u_char) name_len;
    cn->decided = ngx_current_msec;
    cn->until = left ? ngx_current_msec + left : 0;
    ngx_memcpy(cn->digest, digest, NGX_RTMP_PGAUTH_DIGEST_LEN);
    ngx_memcpy(cn->data, app->data, app->len);
    ngx_memcpy(cn->data + app->len, name, name_len);

    ngx_rbtree_insert(&cache->sh->rbtree, node);
    ngx_queue_insert_head(&cache->sh->queue, &cn->queue);

    ngx_shmtx_unlock(&cache->shpool->mutex);
}


/* a key changed: what every cache knew of it, in any application, goes */

void
ngx_rtmp_pgauth_cache_forget(ngx_array_t *caches, u_char *digest)
{
    ngx_uint_t                     i;
    ngx_shm_zone_t               **zones;
    ngx_rtmp_pgauth_cache_t       *cache;
    ngx_rtmp_pgauth_cache_node_t  *cn;

    zones = caches->elts;

    for (i = 0; i < caches->nelts; i++) {

        cache = zones[i]->data;

        ngx_shmtx_lock(&cache->shpool->mutex);

        /* one entry per application it was asked for: a lookup each */

        while ((cn = ngx_rtmp_pgauth_cache_lookup(cache, digest, NULL))
               != NULL)
        {
            ngx_rtmp_pgauth_cache_delete(cache, cn);
        }

        ngx_shmtx_unlock(&cache->shpool->mutex);
    }
}
