
/*
 * Copyright (C) ngx_rtmp_pgauth authors
 */


/*
 * The keyed table of the shared memory zones (ngx_rtmp_pgauth_shm.h), and
 * the directives that define and name its zones.  Kept as
 * ngx_http_limit_req keeps its state.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_rtmp_pgauth_module.h"


typedef struct {
    ngx_rbtree_node_t               node;       /* key: the hash */
    ngx_queue_t                     queue;
    u_short                         size;       /* of the value */
    u_short                         len;        /* of the key */

    /* the value, then the key */
} ngx_rtmp_pgauth_shm_node_t;


#define ngx_rtmp_pgauth_shm_value(n)  ((u_char *) (n) + sizeof(*(n)))
#define ngx_rtmp_pgauth_shm_node(v)                                          \
    ((ngx_rtmp_pgauth_shm_node_t *)                                          \
         ((u_char *) (v) - sizeof(ngx_rtmp_pgauth_shm_node_t)))
#define ngx_rtmp_pgauth_shm_key(n)                                           \
    (ngx_rtmp_pgauth_shm_value(n) + (n)->size)


static char *ngx_rtmp_pgauth_shm_param(ngx_conf_t *cf,
    ngx_rtmp_pgauth_shm_type_t *type, ngx_str_t *value, void *conf);
static ngx_int_t ngx_rtmp_pgauth_shm_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_rtmp_pgauth_shm_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static void ngx_rtmp_pgauth_shm_free(ngx_rtmp_pgauth_shm_t *shm,
    ngx_rtmp_pgauth_shm_node_t *n);


/*
 * The zone directive: zone=name:size, then the named parameters of the
 * type, each at most once, in any order.
 */

char *
ngx_rtmp_pgauth_shm_zone(ngx_conf_t *cf, ngx_rtmp_pgauth_shm_type_t *type,
    ngx_shm_zone_t **zone)
{
    u_char                       *p;
    char                         *rv;
    ssize_t                       size;
    ngx_str_t                    *value, name, s;
    ngx_uint_t                    i;
    ngx_rtmp_pgauth_shm_t        *shm;

    value = cf->args->elts;

    shm = ngx_rtmp_pgauth_shm_create(cf, type);
    if (shm == NULL) {
        return NGX_CONF_ERROR;
    }

    size = 0;
    name.len = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) != 0) {

            rv = ngx_rtmp_pgauth_shm_param(cf, type, &value[i], shm);
            if (rv != NGX_CONF_OK) {
                return rv;
            }

            continue;
        }

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
    }

    if (name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have \"zone\" parameter",
                           &value[0]);
        return NGX_CONF_ERROR;
    }

    return ngx_rtmp_pgauth_shm_define(cf, shm, &name, size, zone);

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" in \"%V\" directive",
                       &value[i], &value[0]);

    return NGX_CONF_ERROR;
}


/* a user's struct of the type, with its parameters' defaults */

ngx_rtmp_pgauth_shm_t *
ngx_rtmp_pgauth_shm_create(ngx_conf_t *cf, ngx_rtmp_pgauth_shm_type_t *type)
{
    ngx_rtmp_pgauth_shm_t        *shm;
    ngx_rtmp_pgauth_shm_param_t  *param;

    shm = ngx_pcalloc(cf->pool, type->size);
    if (shm == NULL) {
        return NULL;
    }

    shm->type = type;

    for (param = type->params; param->name.len; param++) {
        *(ngx_uint_t *) ((u_char *) shm + param->offset) = param->value;
    }

    return shm;
}


/* the zone of the table: each name once */

char *
ngx_rtmp_pgauth_shm_define(ngx_conf_t *cf, ngx_rtmp_pgauth_shm_t *shm,
    ngx_str_t *name, size_t size, ngx_shm_zone_t **zone)
{
    ngx_shm_zone_t  *shm_zone;

    shm_zone = ngx_shared_memory_add(cf, name, size, &ngx_rtmp_pgauth_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\" in \"%s\" directive",
                           name, shm->type->zone_directive);
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_rtmp_pgauth_shm_init_zone;
    shm_zone->data = shm;

    if (zone) {
        *zone = shm_zone;
    }

    return NGX_CONF_OK;
}


static char *
ngx_rtmp_pgauth_shm_param(ngx_conf_t *cf, ngx_rtmp_pgauth_shm_type_t *type,
    ngx_str_t *value, void *conf)
{
    ngx_int_t                     n;
    ngx_str_t                    *args, s;
    ngx_rtmp_pgauth_shm_param_t  *param;

    for (param = type->params; param->name.len; param++) {

        if (value->len < param->name.len
            || ngx_strncmp(value->data, param->name.data, param->name.len)
               != 0)
        {
            continue;
        }

        s.data = value->data + param->name.len;
        s.len = value->len - param->name.len;

        if (param->type == NGX_RTMP_PGAUTH_SHM_TIME) {
            n = ngx_parse_time(&s, 0);

        } else {
            n = ngx_atoi(s.data, s.len);
        }

        if (n == NGX_ERROR
            || (ngx_uint_t) n < param->min
            || (param->max && (ngx_uint_t) n > param->max))
        {
            break;
        }

        *(ngx_uint_t *) ((u_char *) conf + param->offset) = n;

        return NGX_CONF_OK;
    }

    args = cf->args->elts;

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" in \"%V\" directive",
                       value, &args[0]);

    return NGX_CONF_ERROR;
}


/* the directive of an application that names a zone: zone=name | off */

char *
ngx_rtmp_pgauth_shm_set_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_str_t        *value, name;
    ngx_shm_zone_t  **zp;

    zp = (ngx_shm_zone_t **) (p + cmd->offset);

    if (*zp != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        *zp = NULL;
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

    /* size 0: defined by the zone directive, before or after this */

    *zp = ngx_shared_memory_add(cf, &name, 0, &ngx_rtmp_pgauth_module);
    if (*zp == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* a zone an application names must be defined, and of the type it wants */

char *
ngx_rtmp_pgauth_shm_check(ngx_conf_t *cf, ngx_shm_zone_t *zone,
    ngx_rtmp_pgauth_shm_type_t *type)
{
    ngx_rtmp_pgauth_shm_t  *shm;

    if (zone == NULL) {
        return NGX_CONF_OK;
    }

    if (zone->data == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown zone \"%V\" in \"%s\": no "
                           "\"%s\" defines it", &zone->shm.name,
                           type->use_directive, type->zone_directive);
        return NGX_CONF_ERROR;
    }

    shm = zone->data;

    if (zone->init != ngx_rtmp_pgauth_shm_init_zone || shm->type != type) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" in \"%s\" is not a \"%s\"",
                           &zone->shm.name, type->use_directive,
                           type->zone_directive);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* whether the zone is defined, as a table of the type */

ngx_int_t
ngx_rtmp_pgauth_shm_is(ngx_shm_zone_t *zone, ngx_rtmp_pgauth_shm_type_t *type)
{
    return zone->data
           && zone->init == ngx_rtmp_pgauth_shm_init_zone
           && ((ngx_rtmp_pgauth_shm_t *) zone->data)->type == type;
}


static ngx_int_t
ngx_rtmp_pgauth_shm_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_rtmp_pgauth_shm_t  *oshm = data;

    size_t                  len;
    ngx_rtmp_pgauth_shm_t  *shm;

    shm = shm_zone->data;

    if (oshm) {
        /* a reload keeps what the old zone knows */
        shm->sh = oshm->sh;
        shm->shpool = oshm->shpool;
        return NGX_OK;
    }

    shm->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    /* a full zone is normal: entries make room, the slab need not say */
    shm->shpool->log_nomem = 0;

    if (shm_zone->shm.exists) {
        shm->sh = shm->shpool->data;
        return NGX_OK;
    }

    shm->sh = ngx_slab_alloc(shm->shpool, sizeof(ngx_rtmp_pgauth_shm_sh_t));
    if (shm->sh == NULL) {
        return NGX_ERROR;
    }

    shm->shpool->data = shm->sh;

    ngx_rbtree_init(&shm->sh->rbtree, &shm->sh->sentinel,
                    ngx_rtmp_pgauth_shm_rbtree_insert);

    ngx_queue_init(&shm->sh->queue);

    len = sizeof(" in  \"\"") + ngx_strlen(shm->type->zone_directive)
          + shm_zone->shm.name.len;

    shm->shpool->log_ctx = ngx_slab_alloc(shm->shpool, len);
    if (shm->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(shm->shpool->log_ctx, " in %s \"%V\"%Z",
                shm->type->zone_directive, &shm_zone->shm.name);

    return NGX_OK;
}


/* equal hashes: ordered by the key bytes */

static void
ngx_rtmp_pgauth_shm_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t            **p;
    ngx_rtmp_pgauth_shm_node_t    *n, *t;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else { /* node->key == temp->key */

            n = (ngx_rtmp_pgauth_shm_node_t *) node;
            t = (ngx_rtmp_pgauth_shm_node_t *) temp;

            p = (ngx_memn2cmp(ngx_rtmp_pgauth_shm_key(n),
                              ngx_rtmp_pgauth_shm_key(t), n->len, t->len)
                 < 0)
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
 * The value of the entry of the key, or NULL.  With
 * NGX_RTMP_PGAUTH_SHM_PREFIX, of any entry whose key begins with it: the
 * hash must then be one of the prefix alone.
 */

void *
ngx_rtmp_pgauth_shm_find(ngx_rtmp_pgauth_shm_t *shm, uint32_t hash,
    u_char *key, size_t len, ngx_uint_t match)
{
    ngx_int_t                    rc;
    ngx_rbtree_node_t           *node, *sentinel;
    ngx_rtmp_pgauth_shm_node_t  *n;

    node = shm->sh->rbtree.root;
    sentinel = shm->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        n = (ngx_rtmp_pgauth_shm_node_t *) node;

        if (match == NGX_RTMP_PGAUTH_SHM_PREFIX && n->len >= len) {
            rc = ngx_memcmp(key, ngx_rtmp_pgauth_shm_key(n), len);

        } else {
            rc = ngx_memn2cmp(key, ngx_rtmp_pgauth_shm_key(n), len, n->len);
        }

        if (rc == 0) {
            return ngx_rtmp_pgauth_shm_value(n);
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


/*
 * A new entry of the key, with a value of size bytes, zeroed, the most
 * recently used: its value, or NULL when there is no room.  Two expired
 * entries go first, oldest first; when the zone is full, the least
 * recently used that are not pinned make room.
 */

void *
ngx_rtmp_pgauth_shm_add(ngx_rtmp_pgauth_shm_t *shm, uint32_t hash,
    u_char *key, size_t len, size_t size)
{
    ngx_uint_t                   i;
    ngx_queue_t                 *q, *prev;
    ngx_rtmp_pgauth_shm_node_t  *n;

    for (i = 0; i < 2 && !ngx_queue_empty(&shm->sh->queue); i++) {
        q = ngx_queue_last(&shm->sh->queue);
        n = ngx_queue_data(q, ngx_rtmp_pgauth_shm_node_t, queue);

        if (shm->type->expired == NULL
            || !shm->type->expired(shm, ngx_rtmp_pgauth_shm_value(n)))
        {
            break;
        }

        ngx_rtmp_pgauth_shm_free(shm, n);
    }

    n = ngx_slab_alloc_locked(shm->shpool, sizeof(*n) + size + len);

    q = ngx_queue_last(&shm->sh->queue);

    for (i = 0;
         n == NULL && i < NGX_RTMP_PGAUTH_SHM_EVICT
         && q != ngx_queue_sentinel(&shm->sh->queue);
         i++)
    {
        prev = ngx_queue_prev(q);
        n = ngx_queue_data(q, ngx_rtmp_pgauth_shm_node_t, queue);

        if (shm->type->pinned
            && shm->type->pinned(shm, ngx_rtmp_pgauth_shm_value(n)))
        {
            n = NULL;

        } else {
            ngx_rtmp_pgauth_shm_free(shm, n);
            n = ngx_slab_alloc_locked(shm->shpool, sizeof(*n) + size + len);
        }

        q = prev;
    }

    if (n == NULL) {
        return NULL;
    }

    n->node.key = hash;
    n->size = (u_short) size;
    n->len = (u_short) len;

    ngx_memzero(ngx_rtmp_pgauth_shm_value(n), size);
    ngx_memcpy(ngx_rtmp_pgauth_shm_key(n), key, len);

    ngx_rbtree_insert(&shm->sh->rbtree, &n->node);
    ngx_queue_insert_head(&shm->sh->queue, &n->queue);

    return ngx_rtmp_pgauth_shm_value(n);
}


/* the entry is the most recently used */

void
ngx_rtmp_pgauth_shm_touch(ngx_rtmp_pgauth_shm_t *shm, void *value)
{
    ngx_rtmp_pgauth_shm_node_t  *n;

    n = ngx_rtmp_pgauth_shm_node(value);

    ngx_queue_remove(&n->queue);
    ngx_queue_insert_head(&shm->sh->queue, &n->queue);
}


void
ngx_rtmp_pgauth_shm_delete(ngx_rtmp_pgauth_shm_t *shm, void *value)
{
    ngx_rtmp_pgauth_shm_free(shm, ngx_rtmp_pgauth_shm_node(value));
}


/* every entry, most recently used first; the caller holds the lock */

void
ngx_rtmp_pgauth_shm_walk(ngx_rtmp_pgauth_shm_t *shm,
    ngx_rtmp_pgauth_shm_walk_pt walk, void *data)
{
    ngx_queue_t                 *q;
    ngx_rtmp_pgauth_shm_node_t  *n;

    for (q = ngx_queue_head(&shm->sh->queue);
         q != ngx_queue_sentinel(&shm->sh->queue);
         q = ngx_queue_next(q))
    {
        n = ngx_queue_data(q, ngx_rtmp_pgauth_shm_node_t, queue);
        walk(ngx_rtmp_pgauth_shm_value(n), ngx_rtmp_pgauth_shm_key(n), n->len,
             data);
    }
}


static void
ngx_rtmp_pgauth_shm_free(ngx_rtmp_pgauth_shm_t *shm,
    ngx_rtmp_pgauth_shm_node_t *n)
{
    ngx_queue_remove(&n->queue);
    ngx_rbtree_delete(&shm->sh->rbtree, &n->node);
    ngx_slab_free_locked(shm->shpool, n);
}
