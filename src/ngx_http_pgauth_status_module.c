
/*
 * Copyright (C) ngx_rtmp_pgauth authors
 */


/*
 * pgauth_status: the figures of the RTMP side, aggregated over the
 * workers through the "pgauth_status" shared memory zone.  Prometheus text
 * exposition by default; with ?format=json or "Accept: application/json",
 * the node's live streams and the same figures as JSON.  Never a key: a
 * stream published under the client's own name is listed without it.
 * "pgauth_status public" is for a page anyone may load: JSON always, the
 * streams without client addresses, no figures.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_rtmp_pgauth_module.h"


#define NGX_HTTP_PGAUTH_JSON           1

/* listed at most: a response's memory is bounded, whatever the node runs */
#define NGX_HTTP_PGAUTH_MAX_STREAMS    1000


typedef struct {
    ngx_flag_t                      public;
} ngx_http_pgauth_status_loc_conf_t;


/* a live stream, copied out of the zone */

typedef struct {
    time_t                          since;
    ngx_str_t                       name;
    ngx_str_t                       app;
    ngx_str_t                       addr;
} ngx_http_pgauth_stream_t;


typedef struct {
    ngx_str_t                       name;
    ngx_str_t                       help;
    ngx_str_t                       labels;
    ngx_uint_t                      type;       /* 0 decision, 1 counter */
    ngx_uint_t                      index;
    char                           *key;        /* in JSON */
} ngx_http_pgauth_metric_t;


static char *ngx_http_pgauth_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_pgauth_status_handler(ngx_http_request_t *r);
static void *ngx_http_pgauth_status_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_pgauth_status_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_int_t ngx_http_pgauth_status_format(ngx_http_request_t *r);
static u_char *ngx_http_pgauth_prometheus(u_char *p, u_char *last,
    ngx_rtmp_pgauth_stats_t *stats, ngx_array_t *viewers);
static ngx_uint_t ngx_http_pgauth_viewers_of(ngx_array_t *viewers,
    ngx_http_pgauth_stream_t *hs);
static ngx_int_t ngx_http_pgauth_streams(ngx_http_request_t *r,
    ngx_rtmp_pgauth_stats_t *stats, ngx_shm_zone_t *zone, ngx_array_t *a,
    ngx_uint_t *total);
static size_t ngx_http_pgauth_json_size(ngx_array_t *streams);
static u_char *ngx_http_pgauth_json(u_char *p, u_char *last,
    ngx_rtmp_pgauth_stats_t *stats, ngx_array_t *streams, ngx_uint_t total,
    ngx_array_t *viewers, ngx_flag_t public);
static size_t ngx_http_pgauth_json_len(ngx_str_t *s);
static u_char *ngx_http_pgauth_json_str(u_char *p, u_char *last,
    u_char *s, size_t len);


static ngx_command_t  ngx_http_pgauth_status_commands[] = {

    { ngx_string("pgauth_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_pgauth_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_pgauth_status_module_ctx = {
    NULL,                                   /* preconfiguration */
    NULL,                                   /* postconfiguration */

    NULL,                                   /* create main configuration */
    NULL,                                   /* init main configuration */

    NULL,                                   /* create server configuration */
    NULL,                                   /* merge server configuration */

    ngx_http_pgauth_status_create_loc_conf, /* create location configuration */
    ngx_http_pgauth_status_merge_loc_conf   /* merge location configuration */
};


ngx_module_t  ngx_http_pgauth_status_module = {
    NGX_MODULE_V1,
    &ngx_http_pgauth_status_module_ctx,     /* module context */
    ngx_http_pgauth_status_commands,        /* module directives */
    NGX_HTTP_MODULE,                        /* module type */
    NULL,                                   /* init master */
    NULL,                                   /* init module */
    NULL,                                   /* init process */
    NULL,                                   /* init thread */
    NULL,                                   /* exit thread */
    NULL,                                   /* exit process */
    NULL,                                   /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_pgauth_metric_t  ngx_http_pgauth_metrics[] = {

    { ngx_string("pgauth_decisions_total"),
      ngx_string("Publish decisions, and the viewer decisions the database "
                 "was asked for, by outcome and by what decided."),
      ngx_string("outcome=\"allowed\",via=\"database\""),
      0, NGX_RTMP_PGAUTH_OUT_ALLOWED, "allowed" },
    { ngx_null_string, ngx_null_string,
      ngx_string("outcome=\"allowed\",via=\"cache\""),
      0, NGX_RTMP_PGAUTH_OUT_ALLOWED_CACHE, "allowed_cache" },
    { ngx_null_string, ngx_null_string,
      ngx_string("outcome=\"allowed\",via=\"stale_cache\""),
      0, NGX_RTMP_PGAUTH_OUT_ALLOWED_STALE, "allowed_stale_cache" },
    { ngx_null_string, ngx_null_string,
      ngx_string("outcome=\"denied\",via=\"database\""),
      0, NGX_RTMP_PGAUTH_OUT_DENIED, "denied" },
    { ngx_null_string, ngx_null_string,
      ngx_string("outcome=\"denied\",via=\"cache\""),
      0, NGX_RTMP_PGAUTH_OUT_DENIED_CACHE, "denied_cache" },
    { ngx_null_string, ngx_null_string,
      ngx_string("outcome=\"unavailable\",via=\"database\""),
      0, NGX_RTMP_PGAUTH_OUT_UNAVAILABLE, "unavailable" },
    { ngx_null_string, ngx_null_string,
      ngx_string("outcome=\"blocked\",via=\"limiter\""),
      0, NGX_RTMP_PGAUTH_OUT_BLOCKED, "blocked" },
    { ngx_null_string, ngx_null_string,
      ngx_string("outcome=\"already_live\",via=\"database\""),
      0, NGX_RTMP_PGAUTH_OUT_ALREADY_LIVE, "already_live" },
    { ngx_null_string, ngx_null_string,
      ngx_string("outcome=\"viewer_allowed\",via=\"database\""),
      0, NGX_RTMP_PGAUTH_OUT_VIEWER_ALLOWED, "viewer_allowed" },
    { ngx_null_string, ngx_null_string,
      ngx_string("outcome=\"viewer_denied\",via=\"database\""),
      0, NGX_RTMP_PGAUTH_OUT_VIEWER_DENIED, "viewer_denied" },
    { ngx_null_string, ngx_null_string,
      ngx_string("outcome=\"viewer_unavailable\",via=\"database\""),
      0, NGX_RTMP_PGAUTH_OUT_VIEWER_UNAVAILABLE, "viewer_unavailable" },

    { ngx_string("pgauth_database_errors_total"),
      ngx_string("Decisions refused because PostgreSQL answered an error "
                 "or the connection failed."),
      ngx_null_string, 1, NGX_RTMP_PGAUTH_CNT_DB_ERRORS, "database_errors" },
    { ngx_string("pgauth_database_timeouts_total"),
      ngx_string("Decisions refused because pgauth_timeout ran out."),
      ngx_null_string, 1, NGX_RTMP_PGAUTH_CNT_DB_TIMEOUTS,
      "database_timeouts" },
    { ngx_string("pgauth_connect_failures_total"),
      ngx_string("Connections to PostgreSQL that failed to open."),
      ngx_null_string, 1, NGX_RTMP_PGAUTH_CNT_CONNECT_FAILS,
      "connect_failures" },
    { ngx_string("pgauth_cache_hits_total"),
      ngx_string("Decisions found in the decision cache."),
      ngx_null_string, 1, NGX_RTMP_PGAUTH_CNT_CACHE_HITS, "cache_hits" },
    { ngx_string("pgauth_cache_misses_total"),
      ngx_string("Decisions not found in the decision cache."),
      ngx_null_string, 1, NGX_RTMP_PGAUTH_CNT_CACHE_MISSES, "cache_misses" },
    { ngx_string("pgauth_limiter_blocks_total"),
      ngx_string("Client addresses blocked by pgauth_limit."),
      ngx_null_string, 1, NGX_RTMP_PGAUTH_CNT_BLOCKS, "limiter_blocks" },
    { ngx_string("pgauth_publishes_ended_total"),
      ngx_string("Live publishes ended by the database or a time limit "
                 "(revoked, expired, kicked, taken over)."),
      ngx_null_string, 1, NGX_RTMP_PGAUTH_CNT_ENDED, "publishes_ended" },

    { ngx_null_string, ngx_null_string, ngx_null_string, 0, 0, NULL }
};


static void *
ngx_http_pgauth_status_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_pgauth_status_loc_conf_t  *slcf;

    slcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_pgauth_status_loc_conf_t));
    if (slcf == NULL) {
        return NULL;
    }

    slcf->public = NGX_CONF_UNSET;

    return slcf;
}


static char *
ngx_http_pgauth_status_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_pgauth_status_loc_conf_t  *prev = parent;
    ngx_http_pgauth_status_loc_conf_t  *conf = child;

    ngx_conf_merge_value(conf->public, prev->public, 0);

    return NGX_CONF_OK;
}


static char *
ngx_http_pgauth_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_pgauth_status_loc_conf_t *slcf = conf;

    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    if (slcf->public != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    slcf->public = 0;

    if (cf->args->nelts == 2) {
        value = cf->args->elts;

        if (value[1].len != 6
            || ngx_strncmp(value[1].data, "public", 6) != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\" in \"%V\" directive, "
                               "it must be \"public\"", &value[1], &cmd->name);
            return NGX_CONF_ERROR;
        }

        slcf->public = 1;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_pgauth_status_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_pgauth_status_handler(ngx_http_request_t *r)
{
    size_t                    size;
    u_char                   *last;
    ngx_int_t                 rc, json;
    ngx_buf_t                *b;
    ngx_uint_t                i, total;
    ngx_array_t               streams, viewers;
    ngx_chain_t               out;

    ngx_rtmp_pgauth_viewer_count_t     *vc;
    ngx_shm_zone_t           *zone;
    ngx_rtmp_pgauth_stats_t  *stats;

    ngx_http_pgauth_status_loc_conf_t  *slcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    zone = ngx_rtmp_pgauth_stats_zone((ngx_cycle_t *) ngx_cycle);
    stats = ngx_rtmp_pgauth_stats(zone);

    if (stats == NULL) {
        /* no application uses pgauth */
        return NGX_HTTP_NOT_FOUND;
    }

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_pgauth_status_module);

    json = slcf->public ? NGX_HTTP_PGAUTH_JSON
                        : ngx_http_pgauth_status_format(r);

    /* the figures take a few kB */

    size = 8192;
    total = 0;

    /* pgauth_viewer's viewers, by stream */

    if (ngx_http_pgauth_viewer_counts((ngx_cycle_t *) ngx_cycle, r->pool,
                                      &viewers)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    vc = viewers.elts;

    for (i = 0; i < viewers.nelts; i++) {
        size += sizeof("pgauth_viewers{app=,name=} \n") + NGX_INT_T_LEN
                + ngx_http_pgauth_json_len(&vc[i].app)
                + ngx_http_pgauth_json_len(&vc[i].name);
    }

    if (json) {
        if (ngx_http_pgauth_streams(r, stats, zone, &streams, &total)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        size += ngx_http_pgauth_json_size(&streams)
                + streams.nelts * (sizeof(",\"viewers\":") + NGX_INT_T_LEN);
    }

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (json) {
        last = ngx_http_pgauth_json(b->last, b->end, stats, &streams, total,
                                    &viewers, slcf->public);
        ngx_str_set(&r->headers_out.content_type, "application/json");

    } else {
        last = ngx_http_pgauth_prometheus(b->last, b->end, stats, &viewers);
        ngx_str_set(&r->headers_out.content_type,
                    "text/plain; version=0.0.4; charset=utf-8");
    }

    b->last = last;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* ?format=json, or an Accept header asking for JSON */

static ngx_int_t
ngx_http_pgauth_status_format(ngx_http_request_t *r)
{
    ngx_str_t         value;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    if (ngx_http_arg(r, (u_char *) "format", 6, &value) == NGX_OK) {
        return value.len == 4 && ngx_strncmp(value.data, "json", 4) == 0;
    }

    /* headers_in.accept exists only in some builds: look for it */

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == 6
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Accept", 6) == 0
            && ngx_strlcasestrn(h[i].value.data,
                                h[i].value.data + h[i].value.len,
                                (u_char *) "application/json", 16 - 1)
               != NULL)
        {
            return NGX_HTTP_PGAUTH_JSON;
        }
    }

    return 0;
}


static u_char *
ngx_http_pgauth_prometheus(u_char *p, u_char *last,
    ngx_rtmp_pgauth_stats_t *stats, ngx_array_t *viewers)
{
    ngx_uint_t                       i;
    ngx_rtmp_pgauth_viewer_count_t  *vc;
    ngx_atomic_uint_t                v, total, busy, idle, connecting;
    ngx_atomic_uint_t                waiting;
    ngx_http_pgauth_metric_t        *m;
    ngx_rtmp_pgauth_worker_stats_t  *w;

    for (m = ngx_http_pgauth_metrics; m->name.len || m->labels.len; m++) {

        if (m->name.len) {
            p = ngx_slprintf(p, last, "# HELP %V %V\n# TYPE %V counter\n",
                             &m->name, &m->help, &m->name);
        }

        v = m->type ? stats->counters[m->index]
                    : stats->decisions[m->index];

        if (m->labels.len) {
            p = ngx_slprintf(p, last, "pgauth_decisions_total{%V} %uA\n",
                             &m->labels, v);

        } else {
            p = ngx_slprintf(p, last, "%V %uA\n", &m->name, v);
        }
    }

    /* the pools of the live workers */

    busy = idle = connecting = waiting = 0;

    for (i = 0; i < NGX_RTMP_PGAUTH_MAX_WORKERS; i++) {
        w = &stats->workers[i];

        if (w->pid) {
            busy += w->busy;
            idle += w->idle;
            connecting += w->connecting;
            waiting += w->waiting;
        }
    }

    p = ngx_slprintf(p, last,
                     "# HELP pgauth_pool_connections PostgreSQL connections "
                     "of the workers' pools.\n"
                     "# TYPE pgauth_pool_connections gauge\n"
                     "pgauth_pool_connections{state=\"busy\"} %uA\n"
                     "pgauth_pool_connections{state=\"idle\"} %uA\n"
                     "pgauth_pool_connections{state=\"connecting\"} %uA\n"
                     "# HELP pgauth_pool_waiting Requests waiting for a "
                     "pooled connection.\n"
                     "# TYPE pgauth_pool_waiting gauge\n"
                     "pgauth_pool_waiting %uA\n"
                     "# HELP pgauth_live_streams Publishes live on this "
                     "node.\n"
                     "# TYPE pgauth_live_streams gauge\n"
                     "pgauth_live_streams %ui\n",
                     busy, idle, connecting, waiting, stats->nstreams);

    /* decision time */

    p = ngx_slprintf(p, last,
                     "# HELP pgauth_decision_seconds Time from the publish "
                     "command to the decision.\n"
                     "# TYPE pgauth_decision_seconds histogram\n");

    total = 0;

    for (i = 0; i < NGX_RTMP_PGAUTH_NBUCKETS; i++) {
        total += stats->buckets[i];
        p = ngx_slprintf(p, last,
                         "pgauth_decision_seconds_bucket{le=\"%.3f\"} %uA\n",
                         (double) ngx_rtmp_pgauth_buckets[i] / 1000, total);
    }

    total += stats->buckets[NGX_RTMP_PGAUTH_NBUCKETS];

    p = ngx_slprintf(p, last,
                     "pgauth_decision_seconds_bucket{le=\"+Inf\"} %uA\n"
                     "pgauth_decision_seconds_sum %.3f\n"
                     "pgauth_decision_seconds_count %uA\n",
                     total, (double) stats->time_ms / 1000, total);

    p = ngx_slprintf(p, last,
                     "# HELP pgauth_viewers Viewers of a private stream on "
                     "this node (pgauth_viewer) that asked for it within "
                     "30 s.\n# TYPE pgauth_viewers gauge\n");

    vc = viewers->elts;

    for (i = 0; i < viewers->nelts; i++) {
        p = ngx_slprintf(p, last, "pgauth_viewers{app=");
        p = ngx_http_pgauth_json_str(p, last, vc[i].app.data, vc[i].app.len);
        p = ngx_slprintf(p, last, ",name=");
        p = ngx_http_pgauth_json_str(p, last, vc[i].name.data,
                                     vc[i].name.len);
        p = ngx_slprintf(p, last, "} %ui\n", vc[i].viewers);
    }

    return p;
}


/*
 * The node's live streams, at most NGX_HTTP_PGAUTH_MAX_STREAMS of them:
 * copied under the zone's lock (which publishes take too), formatted
 * after.  *total: how many there are.
 */

static ngx_int_t
ngx_http_pgauth_streams(ngx_http_request_t *r, ngx_rtmp_pgauth_stats_t *stats,
    ngx_shm_zone_t *zone, ngx_array_t *a, ngx_uint_t *total)
{
    u_char                          *d, *p, *last;
    size_t                           len;
    ngx_uint_t                       n;
    ngx_queue_t                     *q;
    ngx_slab_pool_t                 *shpool;
    ngx_http_pgauth_stream_t        *hs;
    ngx_rtmp_pgauth_stream_stats_t  *st;

    /* room for what there is now, or the most listed: no more */

    n = ngx_min(stats->nstreams, NGX_HTTP_PGAUTH_MAX_STREAMS);

    if (ngx_array_init(a, r->pool, n ? n : 1,
                       sizeof(ngx_http_pgauth_stream_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    len = n * 3 * 255;

    p = ngx_pnalloc(r->pool, len ? len : 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    last = p + len;

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    ngx_shmtx_lock(&shpool->mutex);

    *total = stats->nstreams;

    for (q = ngx_queue_head(&stats->streams);
         q != ngx_queue_sentinel(&stats->streams) && a->nelts < n;
         q = ngx_queue_next(q))
    {
        st = ngx_queue_data(q, ngx_rtmp_pgauth_stream_stats_t, queue);

        len = st->name_len + st->app_len + st->addr_len;

        if ((size_t) (last - p) < len) {
            break;
        }

        hs = ngx_array_push(a);     /* within what was allocated */

        d = st->data;

        hs->since = st->since;

        hs->name.data = p;
        hs->name.len = st->name_len;
        p = ngx_cpymem(p, d, st->name_len);

        hs->app.data = p;
        hs->app.len = st->app_len;
        p = ngx_cpymem(p, d + st->name_len, st->app_len);

        hs->addr.data = p;
        hs->addr.len = st->addr_len;
        p = ngx_cpymem(p, d + st->name_len + st->app_len, st->addr_len);
    }

    ngx_shmtx_unlock(&shpool->mutex);

    return NGX_OK;
}


static size_t
ngx_http_pgauth_json_size(ngx_array_t *streams)
{
    size_t                     size;
    ngx_uint_t                 i;
    ngx_http_pgauth_stream_t  *hs;

    hs = streams->elts;
    size = 0;

    for (i = 0; i < streams->nelts; i++) {
        size += sizeof("{\"name\":,\"app\":,\"client\":,\"since\":},")
                + NGX_TIME_T_LEN + 6
                + ngx_http_pgauth_json_len(&hs[i].name)
                + ngx_http_pgauth_json_len(&hs[i].app)
                + ngx_http_pgauth_json_len(&hs[i].addr);
    }

    return size;
}


static u_char *
ngx_http_pgauth_json(u_char *p, u_char *last, ngx_rtmp_pgauth_stats_t *stats,
    ngx_array_t *streams, ngx_uint_t total, ngx_array_t *viewers,
    ngx_flag_t public)
{
    ngx_uint_t                 i;
    ngx_http_pgauth_metric_t  *m;
    ngx_http_pgauth_stream_t  *hs;

    p = ngx_slprintf(p, last, "{\"node_started\":%T,\"streams_total\":%ui,"
                     "\"streams\":[", stats->started, total);

    hs = streams->elts;

    for (i = 0; i < streams->nelts; i++) {

        p = ngx_slprintf(p, last, "%s{\"name\":", i ? "," : "");

        if (hs[i].name.len) {
            p = ngx_http_pgauth_json_str(p, last, hs[i].name.data,
                                         hs[i].name.len);

        } else {
            p = ngx_slprintf(p, last, "null");
        }

        p = ngx_slprintf(p, last, ",\"app\":");
        p = ngx_http_pgauth_json_str(p, last, hs[i].app.data, hs[i].app.len);

        if (!public) {
            p = ngx_slprintf(p, last, ",\"client\":");
            p = ngx_http_pgauth_json_str(p, last, hs[i].addr.data,
                                         hs[i].addr.len);
        }

        p = ngx_slprintf(p, last, ",\"since\":%T,\"viewers\":%ui}",
                         hs[i].since,
                         ngx_http_pgauth_viewers_of(viewers, &hs[i]));
    }

    if (public) {
        return ngx_slprintf(p, last, "]}\n");
    }

    p = ngx_slprintf(p, last, "],\"figures\":{");

    for (m = ngx_http_pgauth_metrics; m->key; m++) {
        p = ngx_slprintf(p, last, "%s\"%s\":%uA",
                         m == ngx_http_pgauth_metrics ? "" : ",", m->key,
                         m->type ? stats->counters[m->index]
                                 : stats->decisions[m->index]);
    }

    return ngx_slprintf(p, last, "}}\n");
}


/* pgauth_viewer's viewers of a stream on this node */

static ngx_uint_t
ngx_http_pgauth_viewers_of(ngx_array_t *viewers, ngx_http_pgauth_stream_t *hs)
{
    ngx_uint_t                       i;
    ngx_rtmp_pgauth_viewer_count_t  *vc;

    vc = viewers->elts;

    for (i = 0; i < viewers->nelts; i++) {
        if (vc[i].name.len == hs->name.len
            && vc[i].app.len == hs->app.len
            && ngx_strncmp(vc[i].name.data, hs->name.data, hs->name.len) == 0
            && ngx_strncmp(vc[i].app.data, hs->app.data, hs->app.len) == 0)
        {
            return vc[i].viewers;
        }
    }

    return 0;
}


/* what ngx_http_pgauth_json_str() writes of s */

static size_t
ngx_http_pgauth_json_len(ngx_str_t *s)
{
    size_t  i, len;

    len = 2;

    for (i = 0; i < s->len; i++) {
        len += (s->data[i] == '"' || s->data[i] == '\\') ? 2
               : (s->data[i] < 0x20) ? 6 : 1;
    }

    return len;
}


/* a JSON string; the labels above are written as keys, escaped too */

static u_char *
ngx_http_pgauth_json_str(u_char *p, u_char *last, u_char *s, size_t len)
{
    size_t  i;

    if (p < last) {
        *p++ = '"';
    }

    for (i = 0; i < len && p + 6 < last; i++) {

        if (s[i] == '"' || s[i] == '\\') {
            *p++ = '\\';
            *p++ = s[i];

        } else if (s[i] < 0x20) {
            p = ngx_sprintf(p, "\\u%04xd", s[i]);

        } else {
            *p++ = s[i];
        }
    }

    if (p < last) {
        *p++ = '"';
    }

    return p;
}
