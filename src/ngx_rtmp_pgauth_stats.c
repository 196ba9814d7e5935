
/*
 * Copyright (C) ngx_rtmp_pgauth authors
 */


/*
 * Figures shared by all workers, for the pgauth_status handler: counters
 * (atomic adds), each worker's pool gauges in a slot of its own, and the
 * node's live streams in a list; all in one shared memory zone,
 * "pgauth_status", made when the module is in use.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_rtmp_pgauth_module.h"


#define NGX_RTMP_PGAUTH_STATS_SIZE     (1024 * 1024)


/* upper bounds of the decision time histogram, in ms */

ngx_msec_t  ngx_rtmp_pgauth_buckets[NGX_RTMP_PGAUTH_NBUCKETS] = {
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000
};


static ngx_int_t ngx_rtmp_pgauth_stats_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);


static ngx_str_t  ngx_rtmp_pgauth_stats_name = ngx_string("pgauth_status");


ngx_int_t
ngx_rtmp_pgauth_stats_add_zone(ngx_conf_t *cf,
    ngx_rtmp_pgauth_main_conf_t *pmcf)
{
    ngx_shm_zone_t  *zone;

    zone = ngx_shared_memory_add(cf, &ngx_rtmp_pgauth_stats_name,
                                 NGX_RTMP_PGAUTH_STATS_SIZE,
                                 &ngx_rtmp_pgauth_module);
    if (zone == NULL) {
        return NGX_ERROR;
    }

    zone->init = ngx_rtmp_pgauth_stats_init_zone;
    zone->data = pmcf;

    pmcf->stats_zone = zone;

    return NGX_OK;
}


static ngx_int_t
ngx_rtmp_pgauth_stats_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t          *shpool;
    ngx_rtmp_pgauth_stats_t  *stats;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists || shpool->data) {
        /* a reload keeps the figures */
        return NGX_OK;
    }

    stats = ngx_slab_calloc(shpool, sizeof(ngx_rtmp_pgauth_stats_t));
    if (stats == NULL) {
        return NGX_ERROR;
    }

    ngx_queue_init(&stats->streams);
    stats->started = ngx_time();

    shpool->data = stats;

    return NGX_OK;
}


/* the zone of a cycle, for the HTTP handler, or NULL */

ngx_shm_zone_t *
ngx_rtmp_pgauth_stats_zone(ngx_cycle_t *cycle)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_shm_zone_t   *zone;

    part = &cycle->shared_memory.part;
    zone = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            zone = part->elts;
            i = 0;
        }

        if (zone[i].tag == &ngx_rtmp_pgauth_module
            && zone[i].shm.name.len == ngx_rtmp_pgauth_stats_name.len
            && ngx_strncmp(zone[i].shm.name.data,
                           ngx_rtmp_pgauth_stats_name.data,
                           ngx_rtmp_pgauth_stats_name.len) == 0)
        {
            return &zone[i];
        }
    }
}


ngx_rtmp_pgauth_stats_t *
ngx_rtmp_pgauth_stats(ngx_shm_zone_t *zone)
{
    if (zone == NULL || zone->shm.addr == NULL) {
        return NULL;
    }

    return ((ngx_slab_pool_t *) zone->shm.addr)->data;
}


/* a worker takes the slot of a gone worker, or a free one */

ngx_rtmp_pgauth_worker_stats_t *
ngx_rtmp_pgauth_stats_worker(ngx_rtmp_pgauth_stats_t *stats)
{
    ngx_uint_t                       i;
    ngx_atomic_uint_t                pid;
    ngx_rtmp_pgauth_worker_stats_t  *w;

    for (i = 0; i < NGX_RTMP_PGAUTH_MAX_WORKERS; i++) {
        w = &stats->workers[i];
        pid = w->pid;

        if ((pid == 0 || (kill((ngx_pid_t) pid, 0) == -1
                          && ngx_errno == NGX_ESRCH))
            && ngx_atomic_cmp_set(&w->pid, pid, (ngx_atomic_uint_t) ngx_pid))
        {
            w->busy = 0;
            w->idle = 0;
            w->connecting = 0;
            w->waiting = 0;
            return w;
        }
    }

    return NULL;
}


void
ngx_rtmp_pgauth_stats_decision(ngx_rtmp_pgauth_stats_t *stats,
    ngx_uint_t outcome, ngx_msec_t ms)
{
    ngx_uint_t  i;

    if (stats == NULL) {
        return;
    }

    (void) ngx_atomic_fetch_add(&stats->decisions[outcome], 1);

    for (i = 0; i < NGX_RTMP_PGAUTH_NBUCKETS; i++) {
        if (ms <= ngx_rtmp_pgauth_buckets[i]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&stats->buckets[i], 1);
    (void) ngx_atomic_fetch_add(&stats->time_ms, ms);
}


/* a viewer decision: counted, not timed with the publishes */

void
ngx_rtmp_pgauth_stats_viewer(ngx_rtmp_pgauth_stats_t *stats,
    ngx_rtmp_pgauth_outcome_e outcome)
{
    if (stats) {
        (void) ngx_atomic_fetch_add(&stats->decisions[outcome], 1);
    }
}


void
ngx_rtmp_pgauth_stats_count(ngx_rtmp_pgauth_stats_t *stats, ngx_uint_t n)
{
    if (stats) {
        (void) ngx_atomic_fetch_add(&stats->counters[n], 1);
    }
}


/*
 * The node's live streams: public name, application, client address and
 * since when.  A publish kept under the client's own name is listed
 * without it: that name is the key.
 */

void *
ngx_rtmp_pgauth_stats_stream_add(ngx_rtmp_pgauth_stats_t *stats,
    ngx_shm_zone_t *zone, ngx_str_t *name, ngx_str_t *app, ngx_str_t *addr)
{
    size_t                           size;
    ngx_slab_pool_t                 *shpool;
    ngx_rtmp_pgauth_stream_stats_t  *st;

    if (stats == NULL) {
        return NULL;
    }

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    size = sizeof(ngx_rtmp_pgauth_stream_stats_t)
           + ngx_min(name->len, 255) + ngx_min(app->len, 255)
           + ngx_min(addr->len, 255);

    ngx_shmtx_lock(&shpool->mutex);

    st = ngx_slab_alloc_locked(shpool, size);

    if (st) {
        st->since = ngx_time();
        st->pid = ngx_pid;
        st->name_len = (u_char) ngx_min(name->len, 255);
        st->app_len = (u_char) ngx_min(app->len, 255);
        st->addr_len = (u_char) ngx_min(addr->len, 255);

        ngx_memcpy(st->data, name->data, st->name_len);
        ngx_memcpy(st->data + st->name_len, app->data, st->app_len);
        ngx_memcpy(st->data + st->name_len + st->app_len, addr->data,
                   st->addr_len);

        ngx_queue_insert_tail(&stats->streams, &st->queue);
        stats->nstreams++;
    }

    ngx_shmtx_unlock(&shpool->mutex);

    return st;
}


void
ngx_rtmp_pgauth_stats_stream_remove(ngx_rtmp_pgauth_stats_t *stats,
    ngx_shm_zone_t *zone, void *entry)
{
    ngx_slab_pool_t                 *shpool;
    ngx_rtmp_pgauth_stream_stats_t  *st = entry;

    if (stats == NULL || st == NULL) {
        return;
    }

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    ngx_shmtx_lock(&shpool->mutex);

    ngx_queue_remove(&st->queue);
    stats->nstreams--;

    ngx_slab_free_locked(shpool, st);

    ngx_shmtx_unlock(&shpool->mutex);
}


/* a worker that exits (or crashed before) leaves no stream behind */

void
ngx_rtmp_pgauth_stats_worker_gone(ngx_rtmp_pgauth_stats_t *stats,
    ngx_shm_zone_t *zone, ngx_pid_t pid)
{
    ngx_queue_t                     *q, *next;
    ngx_slab_pool_t                 *shpool;
    ngx_rtmp_pgauth_stream_stats_t  *st;

    if (stats == NULL) {
        return;
    }

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    ngx_shmtx_lock(&shpool->mutex);

    for (q = ngx_queue_head(&stats->streams);
         q != ngx_queue_sentinel(&stats->streams);
         q = next)
    {
        next = ngx_queue_next(q);
        st = ngx_queue_data(q, ngx_rtmp_pgauth_stream_stats_t, queue);

        if (st->pid == pid
            || (kill(st->pid, 0) == -1 && ngx_errno == NGX_ESRCH))
        {
            ngx_queue_remove(q);
            stats->nstreams--;
            ngx_slab_free_locked(shpool, st);
        }
    }

    ngx_shmtx_unlock(&shpool->mutex);
}


/* pgauth_status: each publish's decision, counted once */

void
ngx_rtmp_pgauth_stats_outcome(ngx_rtmp_pgauth_ctx_t *ctx,
    ngx_rtmp_pgauth_outcome_e outcome)
{
    if (ctx->counted || ctx->pmcf == NULL) {
        return;
    }

    ctx->counted = 1;

    if (outcome == NGX_RTMP_PGAUTH_OUT_ALLOWED_LOOKUP) {
        /* the database allowed, on a lookup */
        outcome = NGX_RTMP_PGAUTH_OUT_ALLOWED;
    }

    ngx_rtmp_pgauth_stats_decision(ctx->pmcf->stats, outcome,
                                   ngx_current_msec - ctx->start);
}
