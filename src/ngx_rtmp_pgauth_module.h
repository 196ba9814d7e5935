
/*
 * Copyright (C) ngx_rtmp_pgauth authors
 */


#ifndef _NGX_RTMP_PGAUTH_MODULE_H_INCLUDED_
#define _NGX_RTMP_PGAUTH_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include "ngx_rtmp.h"
#include "ngx_rtmp_cmd_module.h"
#include "ngx_rtmp_pgauth_parse.h"
#include "ngx_rtmp_pgauth_shm.h"

#include <libpq-fe.h>
#include <openssl/evp.h>


#define NGX_RTMP_PGAUTH_NPARAMS        6
/* a request's most: a decision's, and the record's reserved id */
#define NGX_RTMP_PGAUTH_REQ_PARAMS     7
#define NGX_RTMP_PGAUTH_FP_LEN         8

#define NGX_RTMP_PGAUTH_HASH_SHA256    0
#define NGX_RTMP_PGAUTH_HASH_NONE      1

#define NGX_RTMP_PGAUTH_TAKEOVER       0
#define NGX_RTMP_PGAUTH_REFUSE         1

#define NGX_RTMP_PGAUTH_RECHECK_KEEP   0
#define NGX_RTMP_PGAUTH_RECHECK_END    1

#define NGX_RTMP_PGAUTH_POOL_SESSION   0
#define NGX_RTMP_PGAUTH_POOL_TRANSACTION  1

/* how a request ended, as handed to its handler */
#define NGX_RTMP_PGAUTH_RESULT         0
#define NGX_RTMP_PGAUTH_FAILED         1
#define NGX_RTMP_PGAUTH_TIMEDOUT       2

#define NGX_RTMP_PGAUTH_BYTEAOID       17
#define NGX_RTMP_PGAUTH_TEXTOID        25

/* undefined_function: a schema older than the module */
#define NGX_RTMP_PGAUTH_SQLSTATE_NO_FUNCTION  "42883"

/* how long a busy connection may outlive its request's deadline */
#define NGX_RTMP_PGAUTH_GRACE          1000

/* a session named by a notification: to be checked, or being checked */
#define NGX_RTMP_PGAUTH_SUSPECT        1
#define NGX_RTMP_PGAUTH_CHECKING       2


typedef struct ngx_rtmp_pgauth_pool_s  ngx_rtmp_pgauth_pool_t;
typedef struct ngx_rtmp_pgauth_conn_s  ngx_rtmp_pgauth_conn_t;
typedef struct ngx_rtmp_pgauth_req_s   ngx_rtmp_pgauth_req_t;
typedef struct ngx_rtmp_pgauth_live_s  ngx_rtmp_pgauth_live_t;
typedef struct ngx_rtmp_pgauth_limit_s ngx_rtmp_pgauth_limit_t;
typedef struct ngx_rtmp_pgauth_cache_s ngx_rtmp_pgauth_cache_t;
typedef struct ngx_rtmp_pgauth_ctx_s   ngx_rtmp_pgauth_ctx_t;
typedef struct ngx_rtmp_pgauth_viewers_s  ngx_rtmp_pgauth_viewers_t;


/* how a decision came out: what pgauth_status counts, what the client
   is told (ngx_rtmp_pgauth_outcomes[]) */

typedef enum {
    NGX_RTMP_PGAUTH_OUT_ALLOWED = 0,        /* the database allowed */
    NGX_RTMP_PGAUTH_OUT_ALLOWED_CACHE,
    NGX_RTMP_PGAUTH_OUT_ALLOWED_STALE,      /* pgauth_cache_fallback */
    NGX_RTMP_PGAUTH_OUT_ALLOWED_LOOKUP,     /* pgauth_lookup_first */
    NGX_RTMP_PGAUTH_OUT_DENIED,
    NGX_RTMP_PGAUTH_OUT_DENIED_CACHE,
    NGX_RTMP_PGAUTH_OUT_UNAVAILABLE,
    NGX_RTMP_PGAUTH_OUT_BLOCKED,
    NGX_RTMP_PGAUTH_OUT_ALREADY_LIVE,
    NGX_RTMP_PGAUTH_OUT_VIEWER_ALLOWED,     /* pgauth_viewer's, asked */
    NGX_RTMP_PGAUTH_OUT_VIEWER_DENIED,
    NGX_RTMP_PGAUTH_OUT_VIEWER_UNAVAILABLE,
    NGX_RTMP_PGAUTH_OUT_N
} ngx_rtmp_pgauth_outcome_e;

/* the outcomes of publishes, of ngx_rtmp_pgauth_outcomes[] */
#define NGX_RTMP_PGAUTH_OUT_PUBLISH_N  NGX_RTMP_PGAUTH_OUT_VIEWER_ALLOWED


/* what a refused or ended client is told */

#define NGX_RTMP_PGAUTH_DENIED         "NetStream.Publish.Denied"
#define NGX_RTMP_PGAUTH_DENIED_DESC    "Stream key rejected"
/* not "NetStream.Publish.Failed": OBS's librtmp logs the description of
   NetStream.Failed and ignores codes it does not know */
#define NGX_RTMP_PGAUTH_FAILED_CODE    "NetStream.Failed"
#define NGX_RTMP_PGAUTH_FAILED_DESC                                          \
    "Authorization unavailable, try again later"
#define NGX_RTMP_PGAUTH_BADNAME        "NetStream.Publish.BadName"
#define NGX_RTMP_PGAUTH_BADNAME_DESC   "Already publishing"
#define NGX_RTMP_PGAUTH_BUSY_DESC      "Stream already live"
#define NGX_RTMP_PGAUTH_BLOCKED_DESC                                         \
    "Too many failed attempts, try again later"


/* why a publish ended: what is recorded, what the client is told
   (ngx_rtmp_pgauth_ends[]) */

typedef enum {
    NGX_RTMP_PGAUTH_END_NONE = 0,
    NGX_RTMP_PGAUTH_END_REVOKED,
    NGX_RTMP_PGAUTH_END_DELETED,
    NGX_RTMP_PGAUTH_END_EXPIRED,
    NGX_RTMP_PGAUTH_END_TIME_LIMIT,
    NGX_RTMP_PGAUTH_END_TAKEOVER,
    NGX_RTMP_PGAUTH_END_KICKED,
    NGX_RTMP_PGAUTH_END_UNVERIFIED,
    NGX_RTMP_PGAUTH_END_ALREADY_LIVE,
    NGX_RTMP_PGAUTH_END_OTHER,      /* the database's own words */
    NGX_RTMP_PGAUTH_END_REFUSED,
    NGX_RTMP_PGAUTH_END_UNPUBLISH,
    NGX_RTMP_PGAUTH_END_DISCONNECT,
    NGX_RTMP_PGAUTH_END_CLIENT_GONE,
    NGX_RTMP_PGAUTH_END_STOPPED,    /* a play */
    NGX_RTMP_PGAUTH_END_N
} ngx_rtmp_pgauth_end_e;


typedef struct {
    ngx_str_t                       reason;     /* logged and recorded */
    char                           *desc;       /* a kicked client is told */
} ngx_rtmp_pgauth_end_t;


/* ... and counters */

#define NGX_RTMP_PGAUTH_CNT_DB_ERRORS      0
#define NGX_RTMP_PGAUTH_CNT_DB_TIMEOUTS    1
#define NGX_RTMP_PGAUTH_CNT_CONNECT_FAILS  2
#define NGX_RTMP_PGAUTH_CNT_CACHE_HITS     3
#define NGX_RTMP_PGAUTH_CNT_CACHE_MISSES   4
#define NGX_RTMP_PGAUTH_CNT_BLOCKS         5
#define NGX_RTMP_PGAUTH_CNT_ENDED          6    /* live publishes ended */
#define NGX_RTMP_PGAUTH_CNT_N              7

#define NGX_RTMP_PGAUTH_NBUCKETS           12
#define NGX_RTMP_PGAUTH_MAX_WORKERS        64


typedef struct {
    ngx_atomic_t                    pid;
    ngx_atomic_t                    busy;
    ngx_atomic_t                    idle;
    ngx_atomic_t                    connecting;
    ngx_atomic_t                    waiting;
} ngx_rtmp_pgauth_worker_stats_t;


typedef struct {
    ngx_queue_t                     queue;
    time_t                          since;
    ngx_pid_t                       pid;
    u_char                          name_len;
    u_char                          app_len;
    u_char                          addr_len;
    u_char                          data[1];    /* name, app, addr */
} ngx_rtmp_pgauth_stream_stats_t;


typedef struct {
    time_t                          started;
    ngx_atomic_t                    decisions[NGX_RTMP_PGAUTH_OUT_N];
    ngx_atomic_t                    counters[NGX_RTMP_PGAUTH_CNT_N];
    ngx_atomic_t                    buckets[NGX_RTMP_PGAUTH_NBUCKETS + 1];
    ngx_atomic_t                    time_ms;
    ngx_rtmp_pgauth_worker_stats_t  workers[NGX_RTMP_PGAUTH_MAX_WORKERS];

    /* under the zone's mutex */
    ngx_queue_t                     streams;
    ngx_uint_t                      nstreams;
} ngx_rtmp_pgauth_stats_t;


extern ngx_msec_t  ngx_rtmp_pgauth_buckets[NGX_RTMP_PGAUTH_NBUCKETS];


/* the viewers of a stream on this node (pgauth_viewers) */

typedef struct {
    ngx_str_t                       app;
    ngx_str_t                       name;
    ngx_uint_t                      viewers;
} ngx_rtmp_pgauth_viewer_count_t;


/* what the decision cache knows of a key */

typedef struct {
    ngx_uint_t                      allowed;
    ngx_msec_t                      age;
    ngx_msec_t                      left;       /* 0: no limit */
    ngx_str_t                       name;
    u_char                          name_buf[NGX_RTMP_PGAUTH_NAME_LEN];
} ngx_rtmp_pgauth_cached_t;


/*
 * Called once per request.  rc is one of NGX_RTMP_PGAUTH_RESULT (res holds
 * a PGRES_TUPLES_OK or PGRES_COMMAND_OK result), NGX_RTMP_PGAUTH_FAILED
 * (err says why; res is the server's error result, or NULL when the
 * connection failed) or NGX_RTMP_PGAUTH_TIMEDOUT.  The pool frees the
 * request and clears res after the handler returns.
 */
typedef void (*ngx_rtmp_pgauth_handler_pt)(ngx_rtmp_pgauth_req_t *req,
    ngx_uint_t rc, PGresult *res, ngx_str_t *err);

/* a LISTEN notification arrived on one of the pool's connections */
typedef void (*ngx_rtmp_pgauth_notify_pt)(void *data, PGnotify *notify);

/* a new connection of the pool is set up and ready */
typedef void (*ngx_rtmp_pgauth_ready_pt)(void *data);

/* must the pool keep a connection open now? */
typedef ngx_int_t (*ngx_rtmp_pgauth_keep_pt)(void *data);


/* a connection string (pgauth_dsn, pgauth_listen_dsn), parsed */

typedef struct {
    ngx_str_t                       text;
    const char                    **keywords;
    const char                    **values;

    /* a host list: where its keywords are, how long each host may take */
    ngx_uint_t                      nhosts;
    ngx_int_t                       host_kw;
    ngx_int_t                       hostaddr_kw;
    ngx_int_t                       port_kw;
    ngx_msec_t                      host_timeout;
} ngx_rtmp_pgauth_dsn_t;


/* what a pool is for: ngx_rtmp_pgauth_pool_create() copies it */

typedef struct {
    char                           *name;       /* "" or "listen " in logs */
    ngx_rtmp_pgauth_dsn_t          *dsn;
    ngx_uint_t                      size;
    ngx_uint_t                      queue_size;

    ngx_rtmp_pgauth_worker_stats_t *report;     /* gauges to keep, or NULL */

    /*
     * run on each new connection, with parameters when nparams > 0; with
     * "local", in each query's transaction instead, before the query (no
     * session state: a pooler in transaction mode)
     */
    const char                     *setup;
    int                             setup_nparams;
    const char                     *setup_values[4];

    /* the fallback_application_name, to tell the pool's backends apart */
    const char                     *app_name;

    ngx_rtmp_pgauth_notify_pt       notify;
    ngx_rtmp_pgauth_ready_pt        ready;
    ngx_rtmp_pgauth_keep_pt         keep;       /* one connection, or NULL */
    void                           *data;

    unsigned                        close_idle:1;  /* on worker shutdown */
    unsigned                        local:1;
} ngx_rtmp_pgauth_pool_conf_t;


struct ngx_rtmp_pgauth_req_s {
    ngx_queue_t                     queue;      /* pool->waiting */
    ngx_rtmp_pgauth_pool_t         *pool;
    ngx_log_t                      *log;
    ngx_rtmp_pgauth_conn_t         *conn;       /* in flight on it */
    ngx_event_t                     deadline;

    /*
     * handler: the owner of the request, called once on its outcome;
     * late: called instead when a reply arrives for a request whose owner
     * has gone (deadline passed or detached); may be NULL
     */
    ngx_rtmp_pgauth_handler_pt      handler;
    ngx_rtmp_pgauth_handler_pt      late;
    void                           *data;
    ngx_uint_t                      end;        /* detached from a live
                                                   session: why it ended */

    ngx_str_t                      *query;
    ngx_msec_t                      start;
    size_t                          size;       /* of what follows */

    /*
     * batch: a query that answers several requests of the same query at
     * once, when they wait together (each parameter an array of theirs,
     * as text; column 1 of a row the place, from 1, of the request it
     * answers, the other columns its own row); NULL: alone.  carrier:
     * the request it went in, whose items are those it carries.
     */
    ngx_str_t                      *batch;
    ngx_rtmp_pgauth_req_t          *carrier;
    ngx_rtmp_pgauth_req_t         **items;
    ngx_uint_t                      nitems;

    int                             nparams;
    const char                     *values[NGX_RTMP_PGAUTH_REQ_PARAMS];
    int                             lengths[NGX_RTMP_PGAUTH_REQ_PARAMS];
    int                             formats[NGX_RTMP_PGAUTH_REQ_PARAMS];
    Oid                             types[NGX_RTMP_PGAUTH_REQ_PARAMS];

    unsigned                        waiting:1;
    unsigned                        retried:1;
    unsigned                        urgent:1;   /* not bound by queue size */
    unsigned                        head:1;     /* before what waits */
};


typedef struct {
    ngx_rtmp_pgauth_dsn_t           dsn;
    ngx_rtmp_pgauth_dsn_t           listen_dsn; /* unset: dsn */
    ngx_uint_t                      pool_mode;  /* in front of PostgreSQL */

    ngx_uint_t                      pool_size;
    ngx_uint_t                      queue_size;

    ngx_str_t                       channel;    /* empty: no live control */
    ngx_str_t                       node;
    u_char                         *host_id;    /* boot and PID namespace */
    ngx_msec_t                      heartbeat;
    ngx_msec_t                      recheck;    /* 0: off */
    ngx_uint_t                      recheck_failure;

    ngx_array_t                     caches;     /* ngx_shm_zone_t * */

    ngx_msec_t                      max_timeout;
    ngx_flag_t                      used;

    ngx_rtmp_pgauth_pool_t         *pool;       /* this worker's pool */
    ngx_rtmp_pgauth_live_t         *live;       /* this worker's sessions */

    /* SHA-256, fetched once: an implicit fetch costs more than the hash */
    const EVP_MD                   *sha256;

    ngx_shm_zone_t                 *stats_zone;
    ngx_rtmp_pgauth_stats_t        *stats;
    ngx_rtmp_pgauth_worker_stats_t *wstats;     /* this worker's slot */
} ngx_rtmp_pgauth_main_conf_t;


typedef struct {
    ngx_flag_t                      tcp_nodelay;
} ngx_rtmp_pgauth_srv_conf_t;


typedef struct {
    ngx_flag_t                      enable;
    ngx_msec_t                      timeout;
    ngx_str_t                       query;      /* as configured */
    ngx_str_t                       run_query;  /* what runs */
    ngx_str_t                       done_query;
    ngx_flag_t                      done_batch; /* the default done query */
    ngx_str_t                      *decide_batch;  /* its batch, or NULL */
    ngx_flag_t                      lookup_first;
    ngx_str_t                      *lookup;     /* its query, or NULL */
    ngx_str_t                      *record;     /* the decision after it */
    ngx_uint_t                      key_hash;
    ngx_uint_t                      duplicate;
    ngx_shm_zone_t                 *limit;
    ngx_shm_zone_t                 *cache;
    ngx_msec_t                      cache_fallback;     /* 0: off */
    ngx_flag_t                      play;       /* pgauth_play */
} ngx_rtmp_pgauth_app_conf_t;


/* a session's state, in its connection's pool */

typedef void (*ngx_rtmp_pgauth_ctx_pt)(ngx_rtmp_pgauth_ctx_t *ctx);

struct ngx_rtmp_pgauth_ctx_s {
    ngx_rtmp_session_t             *session;
    ngx_rtmp_pgauth_req_t          *req;        /* decision pending */
    ngx_rtmp_pgauth_pool_t         *pool;
    ngx_rtmp_pgauth_live_t         *live;
    ngx_rtmp_pgauth_app_conf_t     *pacf;
    ngx_rtmp_pgauth_main_conf_t    *pmcf;
    const EVP_MD                   *sha256;
    ngx_msec_t                      start;      /* of the decision */

    /* the decision's steps the live control calls (publish.c's) */
    ngx_rtmp_pgauth_ctx_pt          confirm;    /* admitted stale: ask */
    ngx_rtmp_pgauth_ctx_pt          verified;   /* held back: go on */
    void                           *listed;     /* in the status zone */

    ngx_queue_t                     queue;      /* live->sessions */
    ngx_str_node_t                  id;         /* live->ids, by sid */
    ngx_queue_t                     hint;       /* to check, or checking */
    ngx_uint_t                      hinted;     /* NGX_RTMP_PGAUTH_SUSPECT */
    ngx_uint_t                      mark;       /* live_mark() when asked */
    ngx_msec_t                      asked;      /* the decision was asked */
    ngx_msec_t                      left;       /* the authorization holds */
    ngx_event_t                     expire;
    ngx_msec_t                      expire_rest;    /* after its timer */
    ngx_event_t                     resume;     /* publish after a takeover */
    ngx_rtmp_publish_t              publish;    /* as the chain gets it */
    u_char                          key[NGX_RTMP_PGAUTH_NAME_LEN];  /* raw */

    ngx_rtmp_pgauth_end_e           end;        /* a kick's, or NONE */
    u_char                          reason[NGX_RTMP_PGAUTH_REASON_LEN];

    u_char                          digest[NGX_RTMP_PGAUTH_DIGEST_LEN];
    u_char                          fp[NGX_RTMP_PGAUTH_FP_LEN + 1];
    u_char                          name[NGX_RTMP_MAX_NAME];
    u_char                          sid[NGX_RTMP_PGAUTH_SID_LEN];
    u_char                          reserved[NGX_RTMP_PGAUTH_SID_LEN];

    unsigned                        allowed:1;
    unsigned                        linked:1;   /* in live->sessions */
    unsigned                        indexed:1;  /* in live->ids */
    unsigned                        kicked:1;
    unsigned                        confirming:1;  /* live, not recorded */
    unsigned                        looking:1;  /* the lookup asked */
    unsigned                        stale:1;    /* never confirmed */
    unsigned                        verify:1;   /* ask before going live */
    unsigned                        verifying:1;
    unsigned                        takeover:1; /* take_over() to come */
    unsigned                        won:1;      /* take_over() said so */
    unsigned                        limited:1;  /* counted by the limiter */
    unsigned                        counted:1;  /* the decision, in stats */

    /* pgauth_play: a play with a viewer token (play.c, then live.c) */
    ngx_rtmp_pgauth_req_t          *play_req;
    ngx_msec_t                      play_start;
    ngx_str_node_t                  play_id;    /* live->plays, by sid */
    ngx_event_t                     play_expire;
    ngx_msec_t                      play_rest;      /* after its timer */
    ngx_rtmp_pgauth_end_e           play_end;   /* a kick's, or NONE */
    ngx_rtmp_play_t                 play;
    u_char                          play_digest[NGX_RTMP_PGAUTH_DIGEST_LEN];
    u_char                          play_sid[NGX_RTMP_PGAUTH_SID_LEN];
    unsigned                        playing:1;
    unsigned                        play_indexed:1;
};


/* ngx_rtmp_pgauth_module.c */

ngx_rtmp_pgauth_main_conf_t *ngx_rtmp_pgauth_cycle_main_conf(
    ngx_cycle_t *cycle);


/* ngx_http_pgauth_viewer_module.c */

ngx_shm_zone_t *ngx_http_pgauth_viewer_zone_of_cycle(ngx_cycle_t *cycle);
ngx_int_t ngx_http_pgauth_viewer_known(ngx_shm_zone_t *zone, u_char *sid,
    size_t len, ngx_uint_t end);
ngx_int_t ngx_http_pgauth_viewer_counts(ngx_cycle_t *cycle, ngx_pool_t *pool,
    ngx_array_t *counts);

extern ngx_rtmp_pgauth_shm_type_t  ngx_rtmp_pgauth_viewer_type;


/* ngx_rtmp_pgauth_pool.c */

ngx_rtmp_pgauth_pool_t *ngx_rtmp_pgauth_pool_create(ngx_cycle_t *cycle,
    ngx_rtmp_pgauth_main_conf_t *pmcf, ngx_rtmp_pgauth_pool_conf_t *pcf);
void ngx_rtmp_pgauth_pool_destroy(ngx_rtmp_pgauth_pool_t *pool);
void ngx_rtmp_pgauth_pool_wake(ngx_rtmp_pgauth_pool_t *pool);
ngx_uint_t ngx_rtmp_pgauth_pool_free(ngx_rtmp_pgauth_pool_t *pool);

ngx_rtmp_pgauth_req_t *ngx_rtmp_pgauth_req_create(
    ngx_rtmp_pgauth_pool_t *pool, size_t size);
ngx_int_t ngx_rtmp_pgauth_req_submit(ngx_rtmp_pgauth_req_t *req,
    ngx_msec_t timeout);
ngx_uint_t ngx_rtmp_pgauth_req_detach(ngx_rtmp_pgauth_req_t *req);
void ngx_rtmp_pgauth_req_free(ngx_rtmp_pgauth_req_t *req);


/* ngx_rtmp_pgauth_publish.c */

ngx_int_t ngx_rtmp_pgauth_publish_init(ngx_conf_t *cf);
ngx_rtmp_pgauth_ctx_t *ngx_rtmp_pgauth_get_ctx(ngx_rtmp_session_t *s);


/* ngx_rtmp_pgauth_play.c */

ngx_int_t ngx_rtmp_pgauth_play_init(ngx_conf_t *cf);
ngx_rtmp_pgauth_req_t *ngx_rtmp_pgauth_viewer_request(
    ngx_rtmp_pgauth_pool_t *pool, ngx_str_t *query, u_char *digest,
    ngx_str_t *app, ngx_str_t *name, ngx_str_t *addr);


/* ngx_rtmp_pgauth_cache.c */

char *ngx_rtmp_pgauth_cache_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_rtmp_pgauth_cache_get(ngx_shm_zone_t *zone, u_char *digest,
    ngx_str_t *app, ngx_msec_t maxage, ngx_rtmp_pgauth_cached_t *out);
void ngx_rtmp_pgauth_cache_put(ngx_shm_zone_t *zone, u_char *digest,
    ngx_str_t *app, ngx_uint_t allowed, u_char *name, size_t name_len,
    ngx_msec_t left, ngx_log_t *log);
void ngx_rtmp_pgauth_cache_forget(ngx_array_t *caches, u_char *digest);

extern ngx_rtmp_pgauth_shm_type_t  ngx_rtmp_pgauth_cache_type;


/* ngx_rtmp_pgauth_limit.c */

char *ngx_rtmp_pgauth_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_rtmp_pgauth_limit_take(ngx_shm_zone_t *zone,
    ngx_connection_t *c, ngx_msec_t *left);
void ngx_rtmp_pgauth_limit_done(ngx_shm_zone_t *zone, ngx_connection_t *c,
    ngx_uint_t failed, ngx_rtmp_pgauth_stats_t *stats, char *what);
void ngx_rtmp_pgauth_limit_give_back(ngx_rtmp_pgauth_ctx_t *ctx,
    ngx_uint_t failed);

extern ngx_rtmp_pgauth_shm_type_t  ngx_rtmp_pgauth_limit_type;


/* ngx_rtmp_pgauth_stats.c */

ngx_int_t ngx_rtmp_pgauth_stats_add_zone(ngx_conf_t *cf,
    ngx_rtmp_pgauth_main_conf_t *pmcf);
ngx_shm_zone_t *ngx_rtmp_pgauth_stats_zone(ngx_cycle_t *cycle);
ngx_rtmp_pgauth_stats_t *ngx_rtmp_pgauth_stats(ngx_shm_zone_t *zone);
ngx_rtmp_pgauth_worker_stats_t *ngx_rtmp_pgauth_stats_worker(
    ngx_rtmp_pgauth_stats_t *stats);
void ngx_rtmp_pgauth_stats_decision(ngx_rtmp_pgauth_stats_t *stats,
    ngx_uint_t outcome, ngx_msec_t ms);
void ngx_rtmp_pgauth_stats_count(ngx_rtmp_pgauth_stats_t *stats,
    ngx_uint_t n);
void ngx_rtmp_pgauth_stats_viewer(ngx_rtmp_pgauth_stats_t *stats,
    ngx_rtmp_pgauth_outcome_e outcome);
void *ngx_rtmp_pgauth_stats_stream_add(ngx_rtmp_pgauth_stats_t *stats,
    ngx_shm_zone_t *zone, ngx_str_t *name, ngx_str_t *app, ngx_str_t *addr);
void ngx_rtmp_pgauth_stats_stream_remove(ngx_rtmp_pgauth_stats_t *stats,
    ngx_shm_zone_t *zone, void *entry);
void ngx_rtmp_pgauth_stats_outcome(ngx_rtmp_pgauth_ctx_t *ctx,
    ngx_rtmp_pgauth_outcome_e outcome);
void ngx_rtmp_pgauth_stats_worker_gone(ngx_rtmp_pgauth_stats_t *stats,
    ngx_shm_zone_t *zone, ngx_pid_t pid);


/* ngx_rtmp_pgauth_live.c */

ngx_rtmp_pgauth_live_t *ngx_rtmp_pgauth_live_create(ngx_cycle_t *cycle,
    ngx_rtmp_pgauth_main_conf_t *pmcf);
void ngx_rtmp_pgauth_live_destroy(ngx_rtmp_pgauth_live_t *live);
void ngx_rtmp_pgauth_live_add(ngx_rtmp_pgauth_live_t *live,
    ngx_rtmp_pgauth_ctx_t *ctx);
void ngx_rtmp_pgauth_live_index(ngx_rtmp_pgauth_live_t *live,
    ngx_rtmp_pgauth_ctx_t *ctx);
void ngx_rtmp_pgauth_live_remove(ngx_rtmp_pgauth_ctx_t *ctx);
ngx_rtmp_pgauth_ctx_t *ngx_rtmp_pgauth_live_find_name(
    ngx_rtmp_pgauth_live_t *live, ngx_rtmp_pgauth_ctx_t *ctx,
    ngx_uint_t *newer);
ngx_uint_t ngx_rtmp_pgauth_live_mark(ngx_rtmp_pgauth_live_t *live);
ngx_int_t ngx_rtmp_pgauth_live_hinted(ngx_rtmp_pgauth_live_t *live,
    u_char *sid, ngx_uint_t mark);
void ngx_rtmp_pgauth_live_verify(ngx_rtmp_pgauth_live_t *live,
    ngx_rtmp_pgauth_ctx_t *ctx);
void ngx_rtmp_pgauth_live_kick(ngx_rtmp_pgauth_ctx_t *ctx,
    ngx_rtmp_pgauth_end_e end);
void ngx_rtmp_pgauth_live_expire_in(ngx_rtmp_pgauth_ctx_t *ctx,
    ngx_msec_t ms);
void ngx_rtmp_pgauth_live_end(ngx_rtmp_pgauth_ctx_t *ctx,
    ngx_rtmp_pgauth_end_e end);
void ngx_rtmp_pgauth_live_play(ngx_rtmp_pgauth_ctx_t *ctx, ngx_msec_t left);
void ngx_rtmp_pgauth_live_play_end(ngx_rtmp_pgauth_ctx_t *ctx,
    ngx_rtmp_pgauth_end_e end);
void ngx_rtmp_pgauth_live_record_end(ngx_rtmp_pgauth_pool_t *pool,
    ngx_rtmp_pgauth_app_conf_t *pacf, u_char *sid, size_t len,
    u_char *digest, ngx_str_t *reason);
void ngx_rtmp_pgauth_live_ending(u_char *digest, u_char *buf, size_t size);
void ngx_rtmp_pgauth_live_ending_hold(u_char *digest, u_char *sid,
    ngx_msec_t timeout);
void ngx_rtmp_pgauth_live_ending_drop(u_char *digest, u_char *sid);

extern ngx_rtmp_pgauth_end_t  ngx_rtmp_pgauth_ends[];


extern ngx_module_t  ngx_rtmp_pgauth_module;


#endif /* _NGX_RTMP_PGAUTH_MODULE_H_INCLUDED_ */
