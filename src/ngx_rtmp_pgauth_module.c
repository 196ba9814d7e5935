
/*
 * Copyright (C) ngx_rtmp_pgauth authors
 */


/*
 * Directives, configuration and the per-worker pool's lifetime.  The
 * publish hook lives in ngx_rtmp_pgauth_publish.c, the PostgreSQL
 * connection pool in ngx_rtmp_pgauth_pool.c.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_rtmp_pgauth_module.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>


#define NGX_RTMP_PGAUTH_POOL_SIZE      2
#define NGX_RTMP_PGAUTH_QUEUE_SIZE     64
#define NGX_RTMP_PGAUTH_TIMEOUT        3000
#define NGX_RTMP_PGAUTH_HEARTBEAT      5000
#define NGX_RTMP_PGAUTH_CHANNEL        "pgauth"
#define NGX_RTMP_PGAUTH_HOST_TIMEOUT   1000

/* a takeover waits for the client to be confirmed: take_over() */
#define NGX_RTMP_PGAUTH_QUERY                                               \
    "SELECT stream_name, session_id, valid_for, takeover"                   \
    " FROM pgauth.authorize($1, $2, $3, $4, $5, true, $6::bigint[])"
#define NGX_RTMP_PGAUTH_QUERY_RAW                                           \
    "SELECT stream_name, session_id, valid_for, takeover"                   \
    " FROM pgauth.authorize(sha256(convert_to($1, 'UTF8')), $2, $3, $4, $5,"\
    " true, $6::bigint[])"
/* the read-only part of the default query: pgauth_lookup_first */
#define NGX_RTMP_PGAUTH_LOOKUP                                              \
    "SELECT stream_name, session_id, valid_for, takeover"                   \
    " FROM pgauth.look_up($1, $2)"
#define NGX_RTMP_PGAUTH_LOOKUP_RAW                                          \
    "SELECT stream_name, session_id, valid_for, takeover"                   \
    " FROM pgauth.look_up(sha256(convert_to($1, 'UTF8')), $2)"
/* the decision after it: $7, the session id the lookup drew */
#define NGX_RTMP_PGAUTH_RECORD                                              \
    "SELECT stream_name, session_id, valid_for, takeover"                   \
    " FROM pgauth.authorize($1, $2, $3, $4, $5, true, $6::bigint[],"        \
    " $7::bigint)"
#define NGX_RTMP_PGAUTH_RECORD_RAW                                          \
    "SELECT stream_name, session_id, valid_for, takeover"                   \
    " FROM pgauth.authorize(sha256(convert_to($1, 'UTF8')), $2, $3, $4, $5,"\
    " true, $6::bigint[], $7::bigint)"
/* several decisions of the default query at once, when they queue up */
#define NGX_RTMP_PGAUTH_QUERY_MANY                                          \
    "SELECT n, stream_name, session_id, valid_for, takeover"                \
    " FROM pgauth.authorize_many($1::bytea[], $2::text[], $3::text[],"      \
    " $4::text[], $5::text[], $6::text[], $7::bigint[])"
#define NGX_RTMP_PGAUTH_DONE_QUERY                                          \
    "SELECT pgauth.publish_done($1, $2)"

/*
 * each pool connection says which worker its sessions belong to: for the
 * session, or behind a pooler in transaction mode, in each transaction
 */
#define NGX_RTMP_PGAUTH_SETUP(local)                                        \
    "SELECT set_config('statement_timeout', $1, " local "),"                \
    " set_config('pgauth.node', $2, " local "),"                            \
    " set_config('pgauth.worker', $3, " local "),"                          \
    " set_config('pgauth.host', $4, " local ")"

/* what libpq and PostgreSQL take as milliseconds: an int */
#define NGX_RTMP_PGAUTH_MAX_MSEC       2147483647


typedef struct {
    ngx_conf_post_handler_pt        post_handler;
    ngx_uint_t                      max;        /* highest $N bound */
} ngx_rtmp_pgauth_query_post_t;


static ngx_int_t ngx_rtmp_pgauth_postconfiguration(ngx_conf_t *cf);
static void *ngx_rtmp_pgauth_create_main_conf(ngx_conf_t *cf);
static char *ngx_rtmp_pgauth_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_rtmp_pgauth_create_srv_conf(ngx_conf_t *cf);
static char *ngx_rtmp_pgauth_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static void *ngx_rtmp_pgauth_create_app_conf(ngx_conf_t *cf);
static char *ngx_rtmp_pgauth_merge_app_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_rtmp_pgauth_handshake_done(ngx_rtmp_session_t *s,
    ngx_rtmp_header_t *h, ngx_chain_t *in);
static ngx_int_t ngx_rtmp_pgauth_init_process(ngx_cycle_t *cycle);
static void ngx_rtmp_pgauth_exit_process(ngx_cycle_t *cycle);

static char *ngx_rtmp_pgauth_dsn(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void ngx_rtmp_pgauth_dsn_hosts(ngx_conf_t *cf, PQconninfoOption *opts);
static void ngx_rtmp_pgauth_check_hosts(ngx_conf_t *cf, const char *hosts,
    const char *from);
static ngx_int_t ngx_rtmp_pgauth_service_host(const char *service,
    u_char *host, size_t size);
static ngx_int_t ngx_rtmp_pgauth_service_file(u_char *path,
    const char *service, u_char *host, size_t size);
static char *ngx_rtmp_pgauth_dsn_keywords(ngx_conf_t *cf,
    ngx_rtmp_pgauth_dsn_t *dsn, PQconninfoOption *opts);
static char *ngx_rtmp_pgauth_dsn_keyword(ngx_conf_t *cf,
    ngx_rtmp_pgauth_dsn_t *dsn, PQconninfoOption *o, ngx_uint_t i);
static const char *ngx_rtmp_pgauth_strdup(ngx_pool_t *pool, const char *s);
static char *ngx_rtmp_pgauth_check_query(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_rtmp_pgauth_check_timeout(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_rtmp_pgauth_check_bounds(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_rtmp_pgauth_set_enum(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_rtmp_pgauth_listen(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_rtmp_pgauth_set_time_off(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static u_char *ngx_rtmp_pgauth_host_id(ngx_cycle_t *cycle);
static ngx_int_t ngx_rtmp_pgauth_init_pool(ngx_cycle_t *cycle,
    ngx_rtmp_pgauth_main_conf_t *pmcf);


/* ngx_conf_check_num_bounds() would not name the directive */

static ngx_conf_num_bounds_t  ngx_rtmp_pgauth_pool_size_bounds = {
    ngx_rtmp_pgauth_check_bounds, 1, 1024
};


static ngx_conf_num_bounds_t  ngx_rtmp_pgauth_queue_size_bounds = {
    ngx_rtmp_pgauth_check_bounds, 1, 65536
};


static ngx_str_t  ngx_rtmp_pgauth_query_many =
    ngx_string(NGX_RTMP_PGAUTH_QUERY_MANY);
static ngx_str_t  ngx_rtmp_pgauth_lookup =
    ngx_string(NGX_RTMP_PGAUTH_LOOKUP);
static ngx_str_t  ngx_rtmp_pgauth_lookup_raw =
    ngx_string(NGX_RTMP_PGAUTH_LOOKUP_RAW);
static ngx_str_t  ngx_rtmp_pgauth_record =
    ngx_string(NGX_RTMP_PGAUTH_RECORD);
static ngx_str_t  ngx_rtmp_pgauth_record_raw =
    ngx_string(NGX_RTMP_PGAUTH_RECORD_RAW);


static ngx_conf_post_t  ngx_rtmp_pgauth_timeout_post = {
    ngx_rtmp_pgauth_check_timeout
};


static ngx_rtmp_pgauth_query_post_t  ngx_rtmp_pgauth_query_params = {
    ngx_rtmp_pgauth_check_query, NGX_RTMP_PGAUTH_NPARAMS
};


static ngx_rtmp_pgauth_query_post_t  ngx_rtmp_pgauth_done_query_params = {
    ngx_rtmp_pgauth_check_query, 2
};


static ngx_conf_enum_t  ngx_rtmp_pgauth_key_hash[] = {
    { ngx_string("sha256"), NGX_RTMP_PGAUTH_HASH_SHA256 },
    { ngx_string("none"), NGX_RTMP_PGAUTH_HASH_NONE },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_rtmp_pgauth_duplicate[] = {
    { ngx_string("takeover"), NGX_RTMP_PGAUTH_TAKEOVER },
    { ngx_string("refuse"), NGX_RTMP_PGAUTH_REFUSE },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_rtmp_pgauth_pool_modes[] = {
    { ngx_string("session"), NGX_RTMP_PGAUTH_POOL_SESSION },
    { ngx_string("transaction"), NGX_RTMP_PGAUTH_POOL_TRANSACTION },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_rtmp_pgauth_recheck_failure[] = {
    { ngx_string("keep"), NGX_RTMP_PGAUTH_RECHECK_KEEP },
    { ngx_string("end"), NGX_RTMP_PGAUTH_RECHECK_END },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_rtmp_pgauth_commands[] = {

    { ngx_string("pgauth_dsn"),
      NGX_RTMP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_rtmp_pgauth_dsn,
      NGX_RTMP_MAIN_CONF_OFFSET,
      offsetof(ngx_rtmp_pgauth_main_conf_t, dsn),
      NULL },

    { ngx_string("pgauth_listen_dsn"),
      NGX_RTMP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_rtmp_pgauth_dsn,
      NGX_RTMP_MAIN_CONF_OFFSET,
      offsetof(ngx_rtmp_pgauth_main_conf_t, listen_dsn),
      NULL },

    { ngx_string("pgauth_pool_mode"),
      NGX_RTMP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_rtmp_pgauth_set_enum,
      NGX_RTMP_MAIN_CONF_OFFSET,
      offsetof(ngx_rtmp_pgauth_main_conf_t, pool_mode),
      &ngx_rtmp_pgauth_pool_modes },

    { ngx_string("pgauth_pool_size"),
      NGX_RTMP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_RTMP_MAIN_CONF_OFFSET,
      offsetof(ngx_rtmp_pgauth_main_conf_t, pool_size),
      &ngx_rtmp_pgauth_pool_size_bounds },

    { ngx_string("pgauth_queue_size"),
      NGX_RTMP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_RTMP_MAIN_CONF_OFFSET,
      offsetof(ngx_rtmp_pgauth_main_conf_t, queue_size),
      &ngx_rtmp_pgauth_queue_size_bounds },

    { ngx_string("pgauth_listen"),
      NGX_RTMP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_rtmp_pgauth_listen,
      NGX_RTMP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("pgauth_node"),
      NGX_RTMP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_RTMP_MAIN_CONF_OFFSET,
      offsetof(ngx_rtmp_pgauth_main_conf_t, node),
      NULL },

    { ngx_string("pgauth_heartbeat"),
      NGX_RTMP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_RTMP_MAIN_CONF_OFFSET,
      offsetof(ngx_rtmp_pgauth_main_conf_t, heartbeat),
      &ngx_rtmp_pgauth_timeout_post },

    { ngx_string("pgauth_recheck"),
      NGX_RTMP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_rtmp_pgauth_set_time_off,
      NGX_RTMP_MAIN_CONF_OFFSET,
      offsetof(ngx_rtmp_pgauth_main_conf_t, recheck),
      NULL },

    { ngx_string("pgauth_recheck_failure"),
      NGX_RTMP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_rtmp_pgauth_set_enum,
      NGX_RTMP_MAIN_CONF_OFFSET,
      offsetof(ngx_rtmp_pgauth_main_conf_t, recheck_failure),
      &ngx_rtmp_pgauth_recheck_failure },

    { ngx_string("pgauth_duplicate"),
      NGX_RTMP_MAIN_CONF|NGX_RTMP_SRV_CONF|NGX_RTMP_APP_CONF|NGX_CONF_TAKE1,
      ngx_rtmp_pgauth_set_enum,
      NGX_RTMP_APP_CONF_OFFSET,
      offsetof(ngx_rtmp_pgauth_app_conf_t, duplicate),
      &ngx_rtmp_pgauth_duplicate },

    { ngx_string("pgauth_lookup_first"),
      NGX_RTMP_MAIN_CONF|NGX_RTMP_SRV_CONF|NGX_RTMP_APP_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_RTMP_APP_CONF_OFFSET,
      offsetof(ngx_rtmp_pgauth_app_conf_t, lookup_first),
      NULL },

    { ngx_string("pgauth_limit_zone"),
      NGX_RTMP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_rtmp_pgauth_limit_zone,
      NGX_RTMP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("pgauth_limit"),
      NGX_RTMP_MAIN_CONF|NGX_RTMP_SRV_CONF|NGX_RTMP_APP_CONF|NGX_CONF_TAKE1,
      ngx_rtmp_pgauth_shm_set_slot,
      NGX_RTMP_APP_CONF_OFFSET,
      offsetof(ngx_rtmp_pgauth_app_conf_t, limit),
      NULL },

    { ngx_string("pgauth_tcp_nodelay"),
      NGX_RTMP_MAIN_CONF|NGX_RTMP_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_RTMP_SRV_CONF_OFFSET,
      offsetof(ngx_rtmp_pgauth_srv_conf_t, tcp_nodelay),
      NULL },

    { ngx_string("pgauth_cache_zone"),
      NGX_RTMP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_rtmp_pgauth_cache_zone,
      NGX_RTMP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("pgauth_cache"),
      NGX_RTMP_MAIN_CONF|NGX_RTMP_SRV_CONF|NGX_RTMP_APP_CONF|NGX_CONF_TAKE1,
      ngx_rtmp_pgauth_shm_set_slot,
      NGX_RTMP_APP_CONF_OFFSET,
      offsetof(ngx_rtmp_pgauth_app_conf_t, cache),
      NULL },

    { ngx_string("pgauth_cache_fallback"),
      NGX_RTMP_MAIN_CONF|NGX_RTMP_SRV_CONF|NGX_RTMP_APP_CONF|NGX_CONF_TAKE1,
      ngx_rtmp_pgauth_set_time_off,
      NGX_RTMP_APP_CONF_OFFSET,
      offsetof(ngx_rtmp_pgauth_app_conf_t, cache_fallback),
      NULL },

    { ngx_string("pgauth_play"),
      NGX_RTMP_MAIN_CONF|NGX_RTMP_SRV_CONF|NGX_RTMP_APP_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_RTMP_APP_CONF_OFFSET,
      offsetof(ngx_rtmp_pgauth_app_conf_t, play),
      NULL },

    { ngx_string("pgauth"),
      NGX_RTMP_MAIN_CONF|NGX_RTMP_SRV_CONF|NGX_RTMP_APP_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_RTMP_APP_CONF_OFFSET,
      offsetof(ngx_rtmp_pgauth_app_conf_t, enable),
      NULL },

    { ngx_string("pgauth_timeout"),
      NGX_RTMP_MAIN_CONF|NGX_RTMP_SRV_CONF|NGX_RTMP_APP_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_RTMP_APP_CONF_OFFSET,
      offsetof(ngx_rtmp_pgauth_app_conf_t, timeout),
      &ngx_rtmp_pgauth_timeout_post },

    { ngx_string("pgauth_key_hash"),
      NGX_RTMP_MAIN_CONF|NGX_RTMP_SRV_CONF|NGX_RTMP_APP_CONF|NGX_CONF_TAKE1,
      ngx_rtmp_pgauth_set_enum,
      NGX_RTMP_APP_CONF_OFFSET,
      offsetof(ngx_rtmp_pgauth_app_conf_t, key_hash),
      &ngx_rtmp_pgauth_key_hash },

    { ngx_string("pgauth_query"),
      NGX_RTMP_MAIN_CONF|NGX_RTMP_SRV_CONF|NGX_RTMP_APP_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_RTMP_APP_CONF_OFFSET,
      offsetof(ngx_rtmp_pgauth_app_conf_t, query),
      &ngx_rtmp_pgauth_query_params },

    { ngx_string("pgauth_done_query"),
      NGX_RTMP_MAIN_CONF|NGX_RTMP_SRV_CONF|NGX_RTMP_APP_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_RTMP_APP_CONF_OFFSET,
      offsetof(ngx_rtmp_pgauth_app_conf_t, done_query),
      &ngx_rtmp_pgauth_done_query_params },

      ngx_null_command
};


static ngx_rtmp_module_t  ngx_rtmp_pgauth_module_ctx = {
    NULL,                                   /* preconfiguration */
    ngx_rtmp_pgauth_postconfiguration,      /* postconfiguration */

    ngx_rtmp_pgauth_create_main_conf,       /* create main configuration */
    ngx_rtmp_pgauth_init_main_conf,         /* init main configuration */

    ngx_rtmp_pgauth_create_srv_conf,        /* create server configuration */
    ngx_rtmp_pgauth_merge_srv_conf,         /* merge server configuration */

    ngx_rtmp_pgauth_create_app_conf,        /* create app configuration */
    ngx_rtmp_pgauth_merge_app_conf          /* merge app configuration */
};


ngx_module_t  ngx_rtmp_pgauth_module = {
    NGX_MODULE_V1,
    &ngx_rtmp_pgauth_module_ctx,            /* module context */
    ngx_rtmp_pgauth_commands,               /* module directives */
    NGX_RTMP_MODULE,                        /* module type */
    NULL,                                   /* init master */
    NULL,                                   /* init module */
    ngx_rtmp_pgauth_init_process,           /* init process */
    NULL,                                   /* init thread */
    NULL,                                   /* exit thread */
    ngx_rtmp_pgauth_exit_process,           /* exit process */
    NULL,                                   /* exit master */
    NGX_MODULE_V1_PADDING
};


/* not declared by ngx_rtmp.h */
extern ngx_module_t  ngx_rtmp_module;


static ngx_int_t
ngx_rtmp_pgauth_postconfiguration(ngx_conf_t *cf)
{
    ngx_rtmp_handler_pt          *h;
    ngx_rtmp_core_main_conf_t    *cmcf;
    ngx_rtmp_pgauth_main_conf_t  *pmcf;

    pmcf = ngx_rtmp_conf_get_module_main_conf(cf, ngx_rtmp_pgauth_module);
    cmcf = ngx_rtmp_conf_get_module_main_conf(cf, ngx_rtmp_core_module);

    h = ngx_array_push(&cmcf->events[NGX_RTMP_HANDSHAKE_DONE]);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_rtmp_pgauth_handshake_done;

    if (pmcf->used && ngx_rtmp_pgauth_stats_add_zone(cf, pmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    /* applications are merged before postconfiguration runs */

    if (pmcf->used && pmcf->dsn.text.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"pgauth on\" requires \"pgauth_dsn\" "
                           "in the rtmp block");
        return NGX_ERROR;
    }

    if (ngx_rtmp_pgauth_play_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_rtmp_pgauth_publish_init(cf);
}


static void *
ngx_rtmp_pgauth_create_main_conf(ngx_conf_t *cf)
{
    ngx_rtmp_pgauth_main_conf_t  *pmcf;

    pmcf = ngx_pcalloc(cf->pool, sizeof(ngx_rtmp_pgauth_main_conf_t));
    if (pmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     pmcf->dsn = { { 0, NULL }, NULL, ... };
     *     pmcf->listen_dsn = { { 0, NULL }, NULL, ... };
     *     pmcf->channel = { 0, NULL };
     *     pmcf->node = { 0, NULL };
     *     pmcf->max_timeout = 0;
     *     pmcf->used = 0;
     *     pmcf->pool = NULL;
     *     pmcf->live = NULL;
     */

    pmcf->pool_size = NGX_CONF_UNSET_UINT;
    pmcf->queue_size = NGX_CONF_UNSET_UINT;
    pmcf->heartbeat = NGX_CONF_UNSET_MSEC;
    pmcf->recheck = NGX_CONF_UNSET_MSEC;
    pmcf->recheck_failure = NGX_CONF_UNSET_UINT;
    pmcf->pool_mode = NGX_CONF_UNSET_UINT;

    return pmcf;
}


static char *
ngx_rtmp_pgauth_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_rtmp_pgauth_main_conf_t  *pmcf = conf;

    ngx_conf_init_uint_value(pmcf->pool_size, NGX_RTMP_PGAUTH_POOL_SIZE);
    ngx_conf_init_uint_value(pmcf->queue_size, NGX_RTMP_PGAUTH_QUEUE_SIZE);
    ngx_conf_init_msec_value(pmcf->heartbeat, NGX_RTMP_PGAUTH_HEARTBEAT);
    ngx_conf_init_msec_value(pmcf->recheck, 0);
    ngx_conf_init_uint_value(pmcf->recheck_failure,
                             NGX_RTMP_PGAUTH_RECHECK_KEEP);
    ngx_conf_init_uint_value(pmcf->pool_mode, NGX_RTMP_PGAUTH_POOL_SESSION);

    if (pmcf->channel.data == NULL) {
        ngx_str_set(&pmcf->channel, NGX_RTMP_PGAUTH_CHANNEL);
    }

    /* a pooler in transaction mode hands LISTEN's session to others */

    if (pmcf->pool_mode == NGX_RTMP_PGAUTH_POOL_TRANSACTION
        && pmcf->channel.len && pmcf->listen_dsn.text.len == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"pgauth_pool_mode transaction\" requires "
                           "\"pgauth_listen_dsn\" (a connection where "
                           "LISTEN works) or \"pgauth_listen off\"");
        return NGX_CONF_ERROR;
    }

    /* the host name, NUL-terminated: it is bound as a parameter */

    if (pmcf->node.data == NULL) {
        pmcf->node.len = cf->cycle->hostname.len;
        pmcf->node.data = ngx_pnalloc(cf->pool, pmcf->node.len + 1);
        if (pmcf->node.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(pmcf->node.data, cf->cycle->hostname.data,
                   pmcf->node.len);
        pmcf->node.data[pmcf->node.len] = '\0';
    }

    if (pmcf->node.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"pgauth_node\" must not be empty");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_rtmp_pgauth_create_srv_conf(ngx_conf_t *cf)
{
    ngx_rtmp_pgauth_srv_conf_t  *pscf;

    pscf = ngx_pcalloc(cf->pool, sizeof(ngx_rtmp_pgauth_srv_conf_t));
    if (pscf == NULL) {
        return NULL;
    }

    pscf->tcp_nodelay = NGX_CONF_UNSET;

    return pscf;
}


static char *
ngx_rtmp_pgauth_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_rtmp_pgauth_srv_conf_t *prev = parent;
    ngx_rtmp_pgauth_srv_conf_t *conf = child;

    ngx_conf_merge_value(conf->tcp_nodelay, prev->tcp_nodelay, 1);

    return NGX_CONF_OK;
}


/*
 * nginx-rtmp answers "connect" with several small writes and leaves Nagle
 * on: the later ones wait for the client's ACK of the first, which a
 * client with delayed ACKs holds back (40 ms on Linux, 200 ms on Windows).
 * Set TCP_NODELAY once the handshake is done, as nginx's HTTP does.
 */

static ngx_int_t
ngx_rtmp_pgauth_handshake_done(ngx_rtmp_session_t *s, ngx_rtmp_header_t *h,
    ngx_chain_t *in)
{
    int                           nodelay;
    ngx_connection_t             *c;
    ngx_rtmp_pgauth_srv_conf_t   *pscf;
    ngx_rtmp_pgauth_main_conf_t  *pmcf;

    c = s->connection;

    pmcf = ngx_rtmp_get_module_main_conf(s, ngx_rtmp_pgauth_module);
    pscf = ngx_rtmp_get_module_srv_conf(s, ngx_rtmp_pgauth_module);

    if (!pmcf->used || !pscf->tcp_nodelay || c->tcp_nodelay != 0
        || c->sockaddr->sa_family == AF_UNIX)
    {
        return NGX_OK;
    }

    nodelay = 1;

    if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof(int))
        == -1)
    {
        ngx_connection_error(c, ngx_socket_errno,
                             "setsockopt(TCP_NODELAY) failed");
        return NGX_OK;
    }

    c->tcp_nodelay = NGX_TCP_NODELAY_SET;

    return NGX_OK;
}


static void *
ngx_rtmp_pgauth_create_app_conf(ngx_conf_t *cf)
{
    ngx_rtmp_pgauth_app_conf_t  *pacf;

    pacf = ngx_pcalloc(cf->pool, sizeof(ngx_rtmp_pgauth_app_conf_t));
    if (pacf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     pacf->query = { 0, NULL };
     *     pacf->run_query = { 0, NULL };
     *     pacf->done_query = { 0, NULL };
     */

    pacf->enable = NGX_CONF_UNSET;
    pacf->play = NGX_CONF_UNSET;
    pacf->timeout = NGX_CONF_UNSET_MSEC;
    pacf->key_hash = NGX_CONF_UNSET_UINT;
    pacf->duplicate = NGX_CONF_UNSET_UINT;
    pacf->lookup_first = NGX_CONF_UNSET;
    pacf->limit = NGX_CONF_UNSET_PTR;
    pacf->cache = NGX_CONF_UNSET_PTR;
    pacf->cache_fallback = NGX_CONF_UNSET_MSEC;

    return pacf;
}


static char *
ngx_rtmp_pgauth_merge_app_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_rtmp_pgauth_app_conf_t *prev = parent;
    ngx_rtmp_pgauth_app_conf_t *conf = child;

    ngx_rtmp_pgauth_main_conf_t  *pmcf;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_value(conf->play, prev->play, 0);
    ngx_conf_merge_msec_value(conf->timeout, prev->timeout,
                              NGX_RTMP_PGAUTH_TIMEOUT);
    ngx_conf_merge_uint_value(conf->key_hash, prev->key_hash,
                              NGX_RTMP_PGAUTH_HASH_SHA256);
    ngx_conf_merge_uint_value(conf->duplicate, prev->duplicate,
                              NGX_RTMP_PGAUTH_TAKEOVER);
    ngx_conf_merge_value(conf->lookup_first, prev->lookup_first, 1);
    ngx_conf_merge_ptr_value(conf->limit, prev->limit, NULL);
    ngx_conf_merge_ptr_value(conf->cache, prev->cache, NULL);
    ngx_conf_merge_msec_value(conf->cache_fallback, prev->cache_fallback, 0);

    if (ngx_rtmp_pgauth_shm_check(cf, conf->limit,
                                  &ngx_rtmp_pgauth_limit_type)
        != NGX_CONF_OK
        || ngx_rtmp_pgauth_shm_check(cf, conf->cache,
                                     &ngx_rtmp_pgauth_cache_type)
           != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (conf->cache_fallback && conf->cache == NULL && conf->enable) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"pgauth_cache_fallback\" requires "
                           "\"pgauth_cache\"");
        return NGX_CONF_ERROR;
    }

    /*
     * the default query depends on the key hash of this level: only a
     * configured query is inherited, the default is chosen here
     */

    ngx_conf_merge_str_value(conf->query, prev->query, "");

    conf->decide_batch = NULL;
    conf->lookup = NULL;
    conf->record = NULL;

    if (conf->query.len == 0) {

        /* with refuse, only authorize() can tell whether the name is free */
        if (conf->lookup_first
            && conf->duplicate == NGX_RTMP_PGAUTH_TAKEOVER)
        {
            conf->lookup = (conf->key_hash == NGX_RTMP_PGAUTH_HASH_NONE)
                           ? &ngx_rtmp_pgauth_lookup_raw
                           : &ngx_rtmp_pgauth_lookup;
            conf->record = (conf->key_hash == NGX_RTMP_PGAUTH_HASH_NONE)
                           ? &ngx_rtmp_pgauth_record_raw
                           : &ngx_rtmp_pgauth_record;
        }

        if (conf->key_hash == NGX_RTMP_PGAUTH_HASH_NONE) {
            ngx_str_set(&conf->run_query, NGX_RTMP_PGAUTH_QUERY_RAW);

        } else {
            ngx_str_set(&conf->run_query, NGX_RTMP_PGAUTH_QUERY);

            /* a refusal (PA001) would fail all of a batch: alone */
            if (conf->duplicate == NGX_RTMP_PGAUTH_TAKEOVER) {
                conf->decide_batch = &ngx_rtmp_pgauth_query_many;
            }
        }

    } else {
        conf->run_query = conf->query;
    }

    ngx_conf_merge_str_value(conf->done_query, prev->done_query,
                             NGX_RTMP_PGAUTH_DONE_QUERY);

    /* the default one's ends go in batches (publish_done_many()) */
    conf->done_batch = (conf->done_query.len
                            == sizeof(NGX_RTMP_PGAUTH_DONE_QUERY) - 1
                        && ngx_strncmp(conf->done_query.data,
                                       NGX_RTMP_PGAUTH_DONE_QUERY,
                                       conf->done_query.len)
                           == 0);

    if (conf->enable || conf->play) {
        pmcf = ngx_rtmp_conf_get_module_main_conf(cf,
                                                  ngx_rtmp_pgauth_module);
        pmcf->used = 1;
        pmcf->max_timeout = ngx_max(pmcf->max_timeout, conf->timeout);
    }

    return NGX_CONF_OK;
}


/* the module's main configuration of the cycle, NULL without rtmp{} */

ngx_rtmp_pgauth_main_conf_t *
ngx_rtmp_pgauth_cycle_main_conf(ngx_cycle_t *cycle)
{
    ngx_rtmp_conf_ctx_t  *ctx;

    ctx = (ngx_rtmp_conf_ctx_t *) ngx_get_conf(cycle->conf_ctx,
                                               ngx_rtmp_module);
    if (ctx == NULL) {
        return NULL;
    }

    return ctx->main_conf[ngx_rtmp_pgauth_module.ctx_index];
}


static ngx_int_t
ngx_rtmp_pgauth_init_process(ngx_cycle_t *cycle)
{
    ngx_rtmp_pgauth_main_conf_t  *pmcf;

    /* not in the cache manager and loader (HLS cleanup runs there) */

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    pmcf = ngx_rtmp_pgauth_cycle_main_conf(cycle);

    if (pmcf == NULL || !pmcf->used) {
        return NGX_OK;
    }

    pmcf->stats = ngx_rtmp_pgauth_stats(pmcf->stats_zone);

    if (pmcf->stats) {
        /* streams of workers that crashed are gone too */
        ngx_rtmp_pgauth_stats_worker_gone(pmcf->stats, pmcf->stats_zone, 0);
        pmcf->wstats = ngx_rtmp_pgauth_stats_worker(pmcf->stats);
    }

#if (OPENSSL_VERSION_NUMBER >= 0x30000000L)
    pmcf->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
#endif

    if (pmcf->sha256 == NULL) {
        pmcf->sha256 = EVP_sha256();
    }

    pmcf->host_id = ngx_rtmp_pgauth_host_id(cycle);
    if (pmcf->host_id == NULL) {
        return NGX_ERROR;
    }

    if (ngx_rtmp_pgauth_init_pool(cycle, pmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    pmcf->live = ngx_rtmp_pgauth_live_create(cycle, pmcf);
    if (pmcf->live == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Which nginx this is, among those that may share a node name: the boot
 * of the host and the PID namespace it runs in (two containers of one
 * host name differ in the second).  Worker pids mean something only
 * within one of these.
 */

static u_char *
ngx_rtmp_pgauth_host_id(ngx_cycle_t *cycle)
{
    u_char    *id, *p, *last, boot[64], ns[64];
    ssize_t    n;
    ngx_fd_t   fd;

    n = 0;

    fd = ngx_open_file("/proc/sys/kernel/random/boot_id", NGX_FILE_RDONLY,
                       NGX_FILE_OPEN, 0);

    if (fd != NGX_INVALID_FILE) {
        n = read(fd, boot, sizeof(boot) - 1);
        ngx_close_file(fd);
    }

    if (n <= 0) {
        n = ngx_cpymem(boot, "unknown", 7) - boot;
    }

    while (n && (boot[n - 1] == '\n' || boot[n - 1] == ' ')) {
        n--;
    }

    boot[n] = '\0';

    n = readlink("/proc/self/ns/pid", (char *) ns, sizeof(ns) - 1);
    if (n <= 0) {
        n = ngx_cpymem(ns, "pid:?", 5) - ns;
    }

    ns[n] = '\0';

    id = ngx_pnalloc(cycle->pool, sizeof(boot) + sizeof(ns) + 1);
    if (id == NULL) {
        return NULL;
    }

    last = ngx_sprintf(id, "%s/%s", boot, ns);
    *last = '\0';

    /* printable only: it is bound as text */
    for (p = id; p < last; p++) {
        if (*p < 0x20 || *p >= 0x7f) {
            *p = '?';
        }
    }

    return id;
}


static ngx_int_t
ngx_rtmp_pgauth_init_pool(ngx_cycle_t *cycle,
    ngx_rtmp_pgauth_main_conf_t *pmcf)
{
    u_char                       *timeout, *pid;
    ngx_rtmp_pgauth_pool_conf_t   pcf;

    timeout = ngx_pnalloc(cycle->pool, NGX_INT_T_LEN + 1);
    pid = ngx_pnalloc(cycle->pool, NGX_INT_T_LEN + 1);

    if (timeout == NULL || pid == NULL) {
        return NGX_ERROR;
    }

    /*
     * the server gives up on a query when no one waits for it any more,
     * so a slow query never holds a backend past the longest deadline
     */

    ngx_sprintf(timeout, "%M%Z", pmcf->max_timeout);
    ngx_sprintf(pid, "%P%Z", ngx_pid);

    ngx_memzero(&pcf, sizeof(ngx_rtmp_pgauth_pool_conf_t));

    pcf.name = "";
    pcf.dsn = &pmcf->dsn;
    pcf.size = pmcf->pool_size;
    pcf.queue_size = pmcf->queue_size;

    if (pmcf->pool_mode == NGX_RTMP_PGAUTH_POOL_TRANSACTION) {
        pcf.setup = NGX_RTMP_PGAUTH_SETUP("true");
        pcf.local = 1;

    } else {
        pcf.setup = NGX_RTMP_PGAUTH_SETUP("false");
    }

    pcf.setup_nparams = 4;
    pcf.setup_values[0] = (char *) timeout;
    pcf.setup_values[1] = (char *) pmcf->node.data;
    pcf.setup_values[2] = (char *) pid;
    pcf.setup_values[3] = (char *) pmcf->host_id;
    pcf.close_idle = 1;
    pcf.report = pmcf->wstats;

    pmcf->pool = ngx_rtmp_pgauth_pool_create(cycle, pmcf, &pcf);
    if (pmcf->pool == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_rtmp_pgauth_exit_process(ngx_cycle_t *cycle)
{
    ngx_rtmp_pgauth_main_conf_t  *pmcf;

    pmcf = ngx_rtmp_pgauth_cycle_main_conf(cycle);
    if (pmcf == NULL) {
        return;
    }

    if (pmcf->live) {
        ngx_rtmp_pgauth_live_destroy(pmcf->live);
        pmcf->live = NULL;
    }

    if (pmcf->pool) {
        ngx_rtmp_pgauth_pool_destroy(pmcf->pool);
        pmcf->pool = NULL;
    }

    if (pmcf->stats) {
        ngx_rtmp_pgauth_stats_worker_gone(pmcf->stats, pmcf->stats_zone,
                                          ngx_pid);
    }

    if (pmcf->wstats) {
        pmcf->wstats->busy = 0;
        pmcf->wstats->idle = 0;
        pmcf->wstats->connecting = 0;
        pmcf->wstats->waiting = 0;
        pmcf->wstats->pid = 0;
    }
}


static char *
ngx_rtmp_pgauth_dsn(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    char                   *errmsg, *rv;
    size_t                  len;
    ngx_str_t              *value;
    PQconninfoOption       *opts;
    ngx_rtmp_pgauth_dsn_t  *dsn;

    dsn = (ngx_rtmp_pgauth_dsn_t *) (p + cmd->offset);

    if (dsn->text.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "empty \"%V\"", &cmd->name);
        return NGX_CONF_ERROR;
    }

    errmsg = NULL;

    opts = PQconninfoParse((char *) value[1].data, &errmsg);
    if (opts == NULL) {
        len = errmsg ? ngx_strlen(errmsg) : 0;

        while (len && (errmsg[len - 1] == '\n' || errmsg[len - 1] == ' ')) {
            len--;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"%V\": %*s", &cmd->name,
                           len, errmsg ? errmsg : "out of memory");

        if (errmsg) {
            PQfreemem(errmsg);
        }

        return NGX_CONF_ERROR;
    }

    ngx_rtmp_pgauth_dsn_hosts(cf, opts);

    rv = ngx_rtmp_pgauth_dsn_keywords(cf, dsn, opts);

    PQconninfoFree(opts);

    if (rv == NGX_CONF_OK) {
        dsn->text = value[1];
    }

    return rv;
}


/*
 * Where the hosts come from: the DSN, else PGHOST or a service file.
 * libpq resolves a host name with getaddrinfo(), which blocks: the worker
 * would stop for as long as the resolver takes on every connect.
 */

static void
ngx_rtmp_pgauth_dsn_hosts(ngx_conf_t *cf, PQconninfoOption *opts)
{
    u_char             buf[256];
    char              *host, *service;
    PQconninfoOption  *o;

    host = NULL;
    service = NULL;

    for (o = opts; o->keyword; o++) {
        if (o->val == NULL) {
            continue;
        }

        if (ngx_strcmp(o->keyword, "hostaddr") == 0) {
            /* addresses: no lookup */
            return;
        }

        if (ngx_strcmp(o->keyword, "host") == 0) {
            host = o->val;

        } else if (ngx_strcmp(o->keyword, "service") == 0) {
            service = o->val;
        }
    }

    if (host) {
        ngx_rtmp_pgauth_check_hosts(cf, host, "");
        return;
    }

    if (service == NULL) {
        service = getenv("PGSERVICE");
    }

    if (service
        && ngx_rtmp_pgauth_service_host(service, buf, sizeof(buf)) == NGX_OK)
    {
        ngx_rtmp_pgauth_check_hosts(cf, (char *) buf, " (from its service)");
        return;
    }

    host = getenv("PGHOST");

    if (host && getenv("PGHOSTADDR") == NULL) {
        ngx_rtmp_pgauth_check_hosts(cf, host, " (from PGHOST)");
    }
}


static void
ngx_rtmp_pgauth_check_hosts(ngx_conf_t *cf, const char *hosts,
    const char *from)
{
    u_char          name[256];
    size_t          len;
    ngx_str_t      *value;
    const char     *p, *end;
    struct in6_addr addr;

    for (p = hosts; *p; p = *end ? end + 1 : end) {

        end = p;
        while (*end && *end != ',') {
            end++;
        }

        len = end - p;

        if (len == 0 || p[0] == '/' || p[0] == '@') {
            continue;
        }

        if (len >= sizeof(name)) {
            len = sizeof(name) - 1;
        }

        ngx_memcpy(name, p, len);
        name[len] = '\0';

        if (inet_pton(AF_INET, (char *) name, &addr) == 1
            || inet_pton(AF_INET6, (char *) name, &addr) == 1)
        {
            continue;
        }

        value = cf->args->elts;

        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"%V\" host \"%s\"%s is a name: libpq "
                           "resolves it with a blocking call on each "
                           "connect; give an address or a hostaddr",
                           &value[0], name, from);
    }
}


/*
 * The host= of a service, as libpq finds it: in PGSERVICEFILE or
 * ~/.pg_service.conf, then in PGSYSCONFDIR's (Debian's
 * /etc/postgresql-common) pg_service.conf.
 */

static ngx_int_t
ngx_rtmp_pgauth_service_host(const char *service, u_char *host, size_t size)
{
    char        *env;
    u_char       path[NGX_MAX_PATH];
    ngx_uint_t   i;

    for (i = 0; i < 2; i++) {

        if (i == 0) {
            env = getenv("PGSERVICEFILE");

            if (env) {
                ngx_cpystrn(path, (u_char *) env, sizeof(path));

            } else if ((env = getenv("HOME")) != NULL) {
                ngx_snprintf(path, sizeof(path), "%s/.pg_service.conf%Z",
                             env);

            } else {
                continue;
            }

        } else {
            env = getenv("PGSYSCONFDIR");
            ngx_snprintf(path, sizeof(path), "%s/pg_service.conf%Z",
                         env ? env : "/etc/postgresql-common");
        }

        path[sizeof(path) - 1] = '\0';

        switch (ngx_rtmp_pgauth_service_file(path, service, host, size)) {

        case NGX_OK:
            return NGX_OK;

        case NGX_DONE:
            /* the service is there, with no host */
            return NGX_DECLINED;
        }
    }

    return NGX_DECLINED;
}


/*
 * One service file: NGX_OK with the host, NGX_DONE when the service is
 * there without one, NGX_DECLINED when it is not there.
 */

static ngx_int_t
ngx_rtmp_pgauth_service_file(u_char *path, const char *service,
    u_char *host, size_t size)
{
    FILE        *f;
    char         line[1024], *p, *e;
    size_t       len, slen;
    ngx_int_t    rc;
    ngx_uint_t   in;

    f = fopen((char *) path, "r");
    if (f == NULL) {
        return NGX_DECLINED;
    }

    rc = NGX_DECLINED;
    in = 0;
    slen = ngx_strlen(service);

    while (fgets(line, sizeof(line), f)) {

        for (p = line; *p == ' ' || *p == '\t'; p++) { /* void */ }

        len = ngx_strlen(p);

        while (len && (p[len - 1] == '\n' || p[len - 1] == '\r'
                       || p[len - 1] == ' ' || p[len - 1] == '\t'))
        {
            p[--len] = '\0';
        }

        if (len == 0 || p[0] == '#') {
            continue;
        }

        if (p[0] == '[') {
            if (in) {
                break;
            }

            in = (len == slen + 2 && p[len - 1] == ']'
                  && ngx_strncmp(p + 1, service, slen) == 0);

            if (in) {
                rc = NGX_DONE;
            }

            continue;
        }

        if (!in || ngx_strncmp(p, "host", 4) != 0) {
            continue;
        }

        for (e = p + 4; *e == ' ' || *e == '\t'; e++) { /* void */ }

        if (*e++ != '=') {
            continue;
        }

        for ( /* void */ ; *e == ' ' || *e == '\t'; e++) { /* void */ }

        ngx_cpystrn(host, (u_char *) e, size);
        rc = NGX_OK;
        break;
    }

    fclose(f);

    return rc;
}


/*
 * NULL-terminated arrays for PQconnectStartParams(): the DSN's own, then
 * ours: the host list's layout, a GSSAPI that stays off unless asked for
 * (its credential lookup can block), the application name, UTF-8.
 */

static char *
ngx_rtmp_pgauth_dsn_keywords(ngx_conf_t *cf,
    ngx_rtmp_pgauth_dsn_t *dsn, PQconninfoOption *opts)
{
    ngx_uint_t         n, i, gss;
    PQconninfoOption  *o;

    n = 0;
    gss = 0;

    for (o = opts; o->keyword; o++) {
        if (o->val) {
            n++;
            gss |= (ngx_strcmp(o->keyword, "gssencmode") == 0);
        }
    }

    dsn->nhosts = 1;
    dsn->host_kw = -1;
    dsn->hostaddr_kw = -1;
    dsn->port_kw = -1;
    dsn->host_timeout = NGX_RTMP_PGAUTH_HOST_TIMEOUT;

    /* the last occurrence of a keyword wins: ours come after */

    dsn->keywords = ngx_pcalloc(cf->pool, (n + 4) * sizeof(char *));
    dsn->values = ngx_pcalloc(cf->pool, (n + 4) * sizeof(char *));

    if (dsn->keywords == NULL || dsn->values == NULL) {
        return NGX_CONF_ERROR;
    }

    i = 0;

    for (o = opts; o->keyword; o++) {
        if (o->val == NULL) {
            continue;
        }

        dsn->keywords[i] = ngx_rtmp_pgauth_strdup(cf->pool, o->keyword);
        dsn->values[i] = ngx_rtmp_pgauth_strdup(cf->pool, o->val);

        if (dsn->keywords[i] == NULL || dsn->values[i] == NULL) {
            return NGX_CONF_ERROR;
        }

        if (ngx_rtmp_pgauth_dsn_keyword(cf, dsn, o, i) != NGX_CONF_OK) {
            return NGX_CONF_ERROR;
        }

        i++;
    }

    if (!gss) {
        dsn->keywords[i] = "gssencmode";
        dsn->values[i++] = "disable";
    }

    /* libpq uses it only when the DSN sets no application_name */
    dsn->keywords[i] = "fallback_application_name";
    dsn->values[i++] = "nginx-rtmp-pgauth";

    /* what we bind is validated as UTF-8 */
    dsn->keywords[i] = "client_encoding";
    dsn->values[i] = "UTF8";

    return NGX_CONF_OK;
}


/*
 * What the pool must know of keyword i: where the host list and ports
 * are, and how long a host may take.  libpq gives up on a host that does
 * not answer only in its blocking calls: with a list, the pool moves on
 * after connect_timeout (seconds, default 1) per host.
 */

static char *
ngx_rtmp_pgauth_dsn_keyword(ngx_conf_t *cf,
    ngx_rtmp_pgauth_dsn_t *dsn, PQconninfoOption *o, ngx_uint_t i)
{
    ngx_int_t   secs;
    ngx_str_t  *value;
    ngx_uint_t  n;

    if (ngx_strcmp(o->keyword, "host") == 0
        || ngx_strcmp(o->keyword, "hostaddr") == 0)
    {
        if (o->keyword[4] == '\0') {
            dsn->host_kw = i;

        } else {
            dsn->hostaddr_kw = i;
        }

        n = ngx_rtmp_pgauth_list_len((u_char *) o->val, ngx_strlen(o->val));
        dsn->nhosts = ngx_max(dsn->nhosts, n);

    } else if (ngx_strcmp(o->keyword, "port") == 0) {
        dsn->port_kw = i;

    } else if (ngx_strcmp(o->keyword, "connect_timeout") == 0) {
        secs = ngx_atoi((u_char *) o->val, ngx_strlen(o->val));

        if (secs > NGX_RTMP_PGAUTH_MAX_MSEC / 1000) {
            value = cf->args->elts;

            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" connect_timeout \"%s\" "
                               "is too large", &value[0], o->val);
            return NGX_CONF_ERROR;
        }

        if (secs > 0) {
            dsn->host_timeout = secs * 1000;
        }
    }

    return NGX_CONF_OK;
}


static const char *
ngx_rtmp_pgauth_strdup(ngx_pool_t *pool, const char *s)
{
    size_t   len;
    u_char  *p;

    len = ngx_strlen(s) + 1;

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, s, len);

    return (const char *) p;
}


/*
 * A query the module can run: one statement that binds $1 and nothing
 * past $max, and is not COPY (whose reply is no result: libpq would hand
 * out the same COPY state for ever).
 */

static char *
ngx_rtmp_pgauth_check_query(ngx_conf_t *cf, void *post, void *data)
{
    ngx_rtmp_pgauth_query_post_t  *qp = post;
    ngx_str_t                     *query = data;

    const char               *err;
    ngx_str_t                *value;
    ngx_rtmp_pgauth_query_t   q;

    if (query->len == 0) {
        return "is empty";
    }

    value = cf->args->elts;

    ngx_rtmp_pgauth_query_scan(query->data, query->len, &q);

    if (q.statements == 0) {
        err = "has no statement";

    } else if (q.open) {
        err = "leaves a quote or comment open";

    } else if (q.statements > 1) {
        err = "must be one statement";

    } else if (ngx_strcmp(q.keyword, "copy") == 0) {
        err = "cannot be COPY: its reply is not a result";

    } else if (!q.first) {
        err = "must use $1";

    } else if (q.max > qp->max) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" refers to $%ui, only $1..$%ui are bound",
                           &value[0], q.max, qp->max);
        return NGX_CONF_ERROR;

    } else {
        return NGX_CONF_OK;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%V\" %s: \"%V\"",
                       &value[0], err, query);

    return NGX_CONF_ERROR;
}


/* PostgreSQL takes it as an int of milliseconds: about 24 days at most */

static char *
ngx_rtmp_pgauth_check_timeout(ngx_conf_t *cf, void *post, void *data)
{
    ngx_msec_t  *timeout = data;

    if (*timeout == 0) {
        return "must be greater than 0";
    }

    if (*timeout > NGX_RTMP_PGAUTH_MAX_MSEC) {
        return "must be at most 2147483647ms (24 days)";
    }

    return NGX_CONF_OK;
}


static char *
ngx_rtmp_pgauth_check_bounds(ngx_conf_t *cf, void *post, void *data)
{
    ngx_conf_num_bounds_t  *bounds = post;
    ngx_int_t              *np = data;

    if (*np < bounds->low || *np > bounds->high) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" directive value must be between %i "
                           "and %i", &((ngx_str_t *) cf->args->elts)[0],
                           bounds->low, bounds->high);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* ngx_conf_set_enum_slot() would not name the directive in its error */

static char *
ngx_rtmp_pgauth_set_enum(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    u_char           *last, buf[NGX_MAX_CONF_ERRSTR];
    ngx_str_t        *value;
    ngx_uint_t       *np, i;
    ngx_conf_enum_t  *e;

    np = (ngx_uint_t *) (p + cmd->offset);

    if (*np != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    e = cmd->post;

    for (i = 0; e[i].name.len; i++) {
        if (e[i].name.len == value[1].len
            && ngx_strcmp(e[i].name.data, value[1].data) == 0)
        {
            *np = e[i].value;
            return NGX_CONF_OK;
        }
    }

    last = buf;

    for (i = 0; e[i].name.len; i++) {
        last = ngx_slprintf(last, buf + sizeof(buf), "%s\"%V\"",
                            i == 0 ? "" : e[i + 1].name.len ? ", " : " or ",
                            &e[i].name);
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\" directive, "
                       "it must be %*s", &value[1], &value[0],
                       last - buf, buf);

    return NGX_CONF_ERROR;
}


/* pgauth_listen channel | off: the channel is quoted into LISTEN */

static char *
ngx_rtmp_pgauth_listen(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_rtmp_pgauth_main_conf_t  *pmcf = conf;

    ngx_str_t  *value;

    if (pmcf->channel.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        ngx_str_set(&pmcf->channel, "");
        return NGX_CONF_OK;
    }

    if (ngx_rtmp_pgauth_channel_valid(value[1].data, value[1].len)
        == NGX_OK)
    {
        pmcf->channel = value[1];
        return NGX_CONF_OK;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid channel \"%V\" in \"%V\" directive: up to 63 "
                       "lowercase letters, digits and \"_\", not starting "
                       "with a digit", &value[1], &value[0]);

    return NGX_CONF_ERROR;
}


/* a time greater than 0, or "off" for 0 */

static char *
ngx_rtmp_pgauth_set_time_off(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_str_t   *value;
    ngx_msec_t  *mp;

    mp = (ngx_msec_t *) (p + cmd->offset);

    if (*mp != NGX_CONF_UNSET_MSEC) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        *mp = 0;
        return NGX_CONF_OK;
    }

    *mp = ngx_parse_time(&value[1], 0);

    if (*mp == (ngx_msec_t) NGX_ERROR || *mp == 0
        || *mp > NGX_RTMP_PGAUTH_MAX_MSEC)
    {
        return "invalid value: a time greater than 0 and at most 24 days, "
               "or \"off\"";
    }

    return NGX_CONF_OK;
}
