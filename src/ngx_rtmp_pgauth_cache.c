
/*
 * Copyright (C) ngx_rtmp_pgauth authors
 */


/*
 * The decision cache, shared by all workers: what the database last said
 * of a key's digest in an application (allowed, with the public name and
 * how long; or refused), and when.  A table of ngx_rtmp_pgauth_shm.c
 * by digest and application: when the zone is full, the least recently
 * decided make room.  A change of a key reaches every worker as a notification
 * ("key <digest>") and drops its entries.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_rtmp_pgauth_module.h"


/* the key of an entry: the digest, then the application */
#define NGX_RTMP_PGAUTH_CACHE_APP_LEN  255
#define NGX_RTMP_PGAUTH_CACHE_KEY_LEN                                        \
    (NGX_RTMP_PGAUTH_DIGEST_LEN + NGX_RTMP_PGAUTH_CACHE_APP_LEN)


typedef struct {
    ngx_msec_t                      decided;
    ngx_msec_t                      until;      /* 0: no limit */
    u_char                          allowed;
    u_char                          name_len;
    u_char                          name[1];
} ngx_rtmp_pgauth_cache_node_t;


struct ngx_rtmp_pgauth_cache_s {
    ngx_rtmp_pgauth_shm_t           shm;
    ngx_msec_t                      ttl;
};


static ngx_int_t ngx_rtmp_pgauth_cache_expired(ngx_rtmp_pgauth_shm_t *shm,
    void *value);
static size_t ngx_rtmp_pgauth_cache_key(u_char *key, u_char *digest,
    ngx_str_t *app);
static uint32_t ngx_rtmp_pgauth_cache_hash(u_char *digest);


static ngx_rtmp_pgauth_shm_param_t  ngx_rtmp_pgauth_cache_params[] = {
    { ngx_string("ttl="), NGX_RTMP_PGAUTH_SHM_TIME, 1, 0, 30000,
      offsetof(ngx_rtmp_pgauth_cache_t, ttl) },
    { ngx_null_string, 0, 0, 0, 0, 0 }
};


/* stale decisions go first; none is pinned: any may make room */

ngx_rtmp_pgauth_shm_type_t  ngx_rtmp_pgauth_cache_type = {
    "pgauth_cache_zone", "pgauth_cache", sizeof(ngx_rtmp_pgauth_cache_t),
    ngx_rtmp_pgauth_cache_params, ngx_rtmp_pgauth_cache_expired, NULL
};


/* pgauth_cache_zone zone=name:size [ttl=time] */

char *
ngx_rtmp_pgauth_cache_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_rtmp_pgauth_main_conf_t  *pmcf = conf;

    char             *rv;
    ngx_shm_zone_t   *zone, **zp;

    rv = ngx_rtmp_pgauth_shm_zone(cf, &ngx_rtmp_pgauth_cache_type, &zone);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

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

    *zp = zone;

    return NGX_CONF_OK;
}


/* an entry older than the ttl: none will take it */

static ngx_int_t
ngx_rtmp_pgauth_cache_expired(ngx_rtmp_pgauth_shm_t *shm, void *value)
{
    ngx_rtmp_pgauth_cache_t       *cache = (ngx_rtmp_pgauth_cache_t *) shm;
    ngx_rtmp_pgauth_cache_node_t  *cn = value;

    return ngx_current_msec - cn->decided > cache->ttl;
}


/* the digest, then the application (at most 255 bytes) */

static size_t
ngx_rtmp_pgauth_cache_key(u_char *key, u_char *digest, ngx_str_t *app)
{
    ngx_memcpy(key, digest, NGX_RTMP_PGAUTH_DIGEST_LEN);
    ngx_memcpy(key + NGX_RTMP_PGAUTH_DIGEST_LEN, app->data, app->len);

    return NGX_RTMP_PGAUTH_DIGEST_LEN + app->len;
}


/*
 * The first bytes of a digest are as random as any hash: the tree key,
 * the same for the digest in every application.
 */

static uint32_t
ngx_rtmp_pgauth_cache_hash(u_char *digest)
{
    uint32_t  hash;

    ngx_memcpy(&hash, digest, sizeof(uint32_t));

    return hash;
}


/*
 * What the database said of the digest in the application, at most
 * maxage ago: NGX_OK and *out filled, or NGX_DECLINED.
 */

ngx_int_t
ngx_rtmp_pgauth_cache_get(ngx_shm_zone_t *zone, u_char *digest,
    ngx_str_t *app, ngx_msec_t maxage, ngx_rtmp_pgauth_cached_t *out)
{
    u_char                         key[NGX_RTMP_PGAUTH_CACHE_KEY_LEN];
    size_t                         len;
    ngx_int_t                      rc;
    ngx_rtmp_pgauth_cache_t       *cache;
    ngx_rtmp_pgauth_cache_node_t  *cn;

    if (app->len > NGX_RTMP_PGAUTH_CACHE_APP_LEN) {
        /* never put */
        return NGX_DECLINED;
    }

    cache = zone->data;

    if (maxage == 0) {
        maxage = cache->ttl;
    }

    len = ngx_rtmp_pgauth_cache_key(key, digest, app);

    rc = NGX_DECLINED;

    ngx_rtmp_pgauth_shm_lock(&cache->shm);

    cn = ngx_rtmp_pgauth_shm_find(&cache->shm,
                                  ngx_rtmp_pgauth_cache_hash(digest), key,
                                  len, NGX_RTMP_PGAUTH_SHM_EXACT);

    if (cn
        && ngx_current_msec - cn->decided <= maxage
        && (cn->until == 0
            || (ngx_msec_int_t) (cn->until - ngx_current_msec) > 0))
    {
        out->allowed = cn->allowed;
        out->age = ngx_current_msec - cn->decided;
        out->left = cn->until ? cn->until - ngx_current_msec : 0;
        out->name.len = cn->name_len;
        ngx_memcpy(out->name_buf, cn->name, cn->name_len);
        out->name_buf[cn->name_len] = '\0';
        out->name.data = out->name_buf;

        rc = NGX_OK;
    }

    ngx_rtmp_pgauth_shm_unlock(&cache->shm);

    return rc;
}


/* keeps a decision; left: ms the authorization holds, 0 for no limit */

void
ngx_rtmp_pgauth_cache_put(ngx_shm_zone_t *zone, u_char *digest,
    ngx_str_t *app, ngx_uint_t allowed, u_char *name, size_t name_len,
    ngx_msec_t left, ngx_log_t *log)
{
    u_char                         key[NGX_RTMP_PGAUTH_CACHE_KEY_LEN];
    size_t                         len;
    uint32_t                       hash;
    ngx_rtmp_pgauth_cache_t       *cache;
    ngx_rtmp_pgauth_cache_node_t  *cn;

    if (app->len > NGX_RTMP_PGAUTH_CACHE_APP_LEN || name_len > 255) {
        return;
    }

    len = ngx_rtmp_pgauth_cache_key(key, digest, app);
    cache = zone->data;
    hash = ngx_rtmp_pgauth_cache_hash(digest);

    ngx_rtmp_pgauth_shm_lock(&cache->shm);

    cn = ngx_rtmp_pgauth_shm_find(&cache->shm, hash, key, len,
                                  NGX_RTMP_PGAUTH_SHM_EXACT);
    if (cn) {
        ngx_rtmp_pgauth_shm_delete(&cache->shm, cn);
    }

    cn = ngx_rtmp_pgauth_shm_add(&cache->shm, hash, key, len,
                                 offsetof(ngx_rtmp_pgauth_cache_node_t, name)
                                 + name_len);
    if (cn == NULL) {
        ngx_rtmp_pgauth_shm_unlock(&cache->shm);
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "pgauth: no room for a decision%s even after "
                      "dropping %d: the zone is too small",
                      cache->shm.shpool->log_ctx,
                      NGX_RTMP_PGAUTH_SHM_EVICT);
        return;
    }

    cn->allowed = (u_char) allowed;
    cn->name_len = (u_char) name_len;
    cn->decided = ngx_current_msec;
    cn->until = left ? ngx_current_msec + left : 0;
    ngx_memcpy(cn->name, name, name_len);

    ngx_rtmp_pgauth_shm_unlock(&cache->shm);
}


/* a key changed: what every cache knew of it, in any application, goes */

void
ngx_rtmp_pgauth_cache_forget(ngx_array_t *caches, u_char *digest)
{
    void                     *cn;
    uint32_t                  hash;
    ngx_uint_t                i;
    ngx_shm_zone_t          **zones;
    ngx_rtmp_pgauth_cache_t  *cache;

    zones = caches->elts;
    hash = ngx_rtmp_pgauth_cache_hash(digest);

    for (i = 0; i < caches->nelts; i++) {

        cache = zones[i]->data;

        ngx_rtmp_pgauth_shm_lock(&cache->shm);

        /* one entry per application it was asked for: a lookup each */

        while ((cn = ngx_rtmp_pgauth_shm_find(&cache->shm, hash, digest,
                                              NGX_RTMP_PGAUTH_DIGEST_LEN,
                                              NGX_RTMP_PGAUTH_SHM_PREFIX))
               != NULL)
        {
            ngx_rtmp_pgauth_shm_delete(&cache->shm, cn);
        }

        ngx_rtmp_pgauth_shm_unlock(&cache->shm);
    }
}
