
/*
 * Copyright (C) ngx_rtmp_pgauth authors
 */


#ifndef _NGX_RTMP_PGAUTH_SHM_H_INCLUDED_
#define _NGX_RTMP_PGAUTH_SHM_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * A keyed table in a shared memory zone, for every worker: entries found
 * by a hash and their key bytes (a red-black tree), the least recently
 * used evicted when the zone is full (a queue), allocated from the zone's
 * slab.  Each entry holds a value of its user's, found by the key.
 *
 * A user (the decision cache, the limiter) describes its table with an
 * ngx_rtmp_pgauth_shm_type_t and keeps its settings in a struct whose
 * first member is an ngx_rtmp_pgauth_shm_t; that struct is the zone's
 * data.  Entries are looked at and changed only between
 * ngx_rtmp_pgauth_shm_lock() and ngx_rtmp_pgauth_shm_unlock().
 */


#define NGX_RTMP_PGAUTH_SHM_NUMBER     0
#define NGX_RTMP_PGAUTH_SHM_TIME       1

/* how ngx_rtmp_pgauth_shm_find() matches the key */
#define NGX_RTMP_PGAUTH_SHM_EXACT      0
#define NGX_RTMP_PGAUTH_SHM_PREFIX     1

/* at most how many of the least recently used make room for a new one */
#define NGX_RTMP_PGAUTH_SHM_EVICT      8


typedef struct ngx_rtmp_pgauth_shm_s  ngx_rtmp_pgauth_shm_t;

/* an entry, as ngx_rtmp_pgauth_shm_walk() hands it over */
typedef void (*ngx_rtmp_pgauth_shm_walk_pt)(void *value, u_char *key,
    size_t len, void *data);

/* a question asked of an entry's value: 1 or 0 */
typedef ngx_int_t (*ngx_rtmp_pgauth_shm_test_pt)(ngx_rtmp_pgauth_shm_t *shm,
    void *value);


/* a named parameter of the zone directive: name=value */

typedef struct {
    ngx_str_t                       name;       /* with the "=" */
    ngx_uint_t                      type;       /* NGX_RTMP_PGAUTH_SHM_* */
    ngx_uint_t                      min;        /* a number's bounds */
    ngx_uint_t                      max;
    ngx_uint_t                      value;      /* the default */
    ngx_uint_t                      offset;     /* in the user's struct */
} ngx_rtmp_pgauth_shm_param_t;


typedef struct {
    char                           *zone_directive;  /* defines a zone */
    char                           *use_directive;   /* names one */
    size_t                          size;       /* of the user's struct */
    ngx_rtmp_pgauth_shm_param_t    *params;     /* ends with a null name */

    /* may go first to make room, oldest first; NULL: none */
    ngx_rtmp_pgauth_shm_test_pt     expired;

    /* must stay even when the zone is full; NULL: none */
    ngx_rtmp_pgauth_shm_test_pt     pinned;
} ngx_rtmp_pgauth_shm_type_t;


typedef struct {
    ngx_rbtree_t                    rbtree;
    ngx_rbtree_node_t               sentinel;
    ngx_queue_t                     queue;      /* most recent first */
} ngx_rtmp_pgauth_shm_sh_t;


struct ngx_rtmp_pgauth_shm_s {
    ngx_rtmp_pgauth_shm_type_t     *type;
    ngx_rtmp_pgauth_shm_sh_t       *sh;
    ngx_slab_pool_t                *shpool;
};


#define ngx_rtmp_pgauth_shm_lock(shm)   ngx_shmtx_lock(&(shm)->shpool->mutex)
#define ngx_rtmp_pgauth_shm_unlock(shm)                                      \
    ngx_shmtx_unlock(&(shm)->shpool->mutex)


char *ngx_rtmp_pgauth_shm_zone(ngx_conf_t *cf,
    ngx_rtmp_pgauth_shm_type_t *type, ngx_shm_zone_t **zone);
ngx_rtmp_pgauth_shm_t *ngx_rtmp_pgauth_shm_create(ngx_conf_t *cf,
    ngx_rtmp_pgauth_shm_type_t *type);
char *ngx_rtmp_pgauth_shm_define(ngx_conf_t *cf, ngx_rtmp_pgauth_shm_t *shm,
    ngx_str_t *name, size_t size, ngx_shm_zone_t **zone);
char *ngx_rtmp_pgauth_shm_set_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_rtmp_pgauth_shm_check(ngx_conf_t *cf, ngx_shm_zone_t *zone,
    ngx_rtmp_pgauth_shm_type_t *type);
ngx_int_t ngx_rtmp_pgauth_shm_is(ngx_shm_zone_t *zone,
    ngx_rtmp_pgauth_shm_type_t *type);

void *ngx_rtmp_pgauth_shm_find(ngx_rtmp_pgauth_shm_t *shm, uint32_t hash,
    u_char *key, size_t len, ngx_uint_t match);
void *ngx_rtmp_pgauth_shm_add(ngx_rtmp_pgauth_shm_t *shm, uint32_t hash,
    u_char *key, size_t len, size_t size);
void ngx_rtmp_pgauth_shm_touch(ngx_rtmp_pgauth_shm_t *shm, void *value);
void ngx_rtmp_pgauth_shm_delete(ngx_rtmp_pgauth_shm_t *shm, void *value);
void ngx_rtmp_pgauth_shm_walk(ngx_rtmp_pgauth_shm_t *shm,
    ngx_rtmp_pgauth_shm_walk_pt walk, void *data);


#endif /* _NGX_RTMP_PGAUTH_SHM_H_INCLUDED_ */
