
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

#include <libpq-fe.h>


#define NGX_RTMP_PGAUTH_NPARAMS        4
#define NGX_RTMP_PGAUTH_SID_LEN        64
#define NGX_RTMP_PGAUTH_FP_LEN         8

#define NGX_RTMP_PGAUTH_HASH_SHA256    0
#define NGX_RTMP_PGAUTH_HASH_NONE      1

/* how a request ended, as handed to its handler */
#define NGX_RTMP_PGAUTH_RESULT         0
#define NGX_RTMP_PGAUTH_FAILED         1
#define NGX_RTMP_PGAUTH_TIMEDOUT       2

#define NGX_RTMP_PGAUTH_BYTEAOID       17
#define NGX_RTMP_PGAUTH_TEXTOID        25


typedef struct ngx_rtmp_pgauth_pool_s  ngx_rtmp_pgauth_pool_t;
typedef struct ngx_rtmp_pgauth_conn_s  ngx_rtmp_pgauth_conn_t;
typedef struct ngx_rtmp_pgauth_req_s   ngx_rtmp_pgauth_req_t;


/*
 * Called once per request.  rc is one of NGX_RTMP_PGAUTH_RESULT (res holds
 * a PGRES_TUPLES_OK or PGRES_COMMAND_OK result), NGX_RTMP_PGAUTH_FAILED or
 * NGX_RTMP_PGAUTH_TIMEDOUT (err says why).  The pool frees the request
 * and clears res after the handler returns.
 */
typedef void (*ngx_rtmp_pgauth_handler_pt)(ngx_rtmp_pgauth_req_t *req,
    ngx_uint_t rc, PGresult *res, ngx_str_t *err);


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

    ngx_str_t                      *query;
    ngx_msec_t                      start;

    int                             nparams;
    const char                     *values[NGX_RTMP_PGAUTH_NPARAMS];
    int                             lengths[NGX_RTMP_PGAUTH_NPARAMS];
    int                             formats[NGX_RTMP_PGAUTH_NPARAMS];
    Oid                             types[NGX_RTMP_PGAUTH_NPARAMS];

    unsigned                        waiting:1;
    unsigned                        retried:1;
    unsigned                        urgent:1;   /* not bound by queue size */
};


typedef struct {
    ngx_str_t                       dsn;
    const char                    **keywords;
    const char                    **values;

    ngx_uint_t                      pool_size;
    ngx_uint_t                      queue_size;

    ngx_msec_t                      max_timeout;
    ngx_flag_t                      used;

    ngx_rtmp_pgauth_pool_t         *pool;       /* this worker's pool */
} ngx_rtmp_pgauth_main_conf_t;


typedef struct {
    ngx_flag_t                      enable;
    ngx_msec_t                      timeout;
    ngx_str_t                       query;      /* as configured */
    ngx_str_t                       run_query;  /* what runs */
    ngx_str_t                       done_query;
    ngx_uint_t                      key_hash;
} ngx_rtmp_pgauth_app_conf_t;


/* ngx_rtmp_pgauth_pool.c */

ngx_rtmp_pgauth_pool_t *ngx_rtmp_pgauth_pool_create(ngx_cycle_t *cycle,
    ngx_rtmp_pgauth_main_conf_t *pmcf);
void ngx_rtmp_pgauth_pool_destroy(ngx_rtmp_pgauth_pool_t *pool);

ngx_rtmp_pgauth_req_t *ngx_rtmp_pgauth_req_create(
    ngx_rtmp_pgauth_pool_t *pool, size_t size);
ngx_int_t ngx_rtmp_pgauth_req_submit(ngx_rtmp_pgauth_req_t *req,
    ngx_msec_t timeout);
void ngx_rtmp_pgauth_req_detach(ngx_rtmp_pgauth_req_t *req);
void ngx_rtmp_pgauth_req_free(ngx_rtmp_pgauth_req_t *req);


/* ngx_rtmp_pgauth_publish.c */

ngx_int_t ngx_rtmp_pgauth_publish_init(ngx_conf_t *cf);


extern ngx_module_t  ngx_rtmp_pgauth_module;


#endif /* _NGX_RTMP_PGAUTH_MODULE_H_INCLUDED_ */
