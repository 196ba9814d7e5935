
/*
 * Copyright (C) ngx_rtmp_pgauth authors
 */


/*
 * A per-worker pool of PostgreSQL connections driven by nginx events.
 *
 * libpq runs in nonblocking mode; each connection's socket is registered
 * level-triggered, so whatever libpq leaves unread wakes us again.  A
 * connection is CONNECTING (PQconnectPoll), SETUP (sending the session
 * settings), IDLE (watched for a server-side close) or BUSY (one request
 * in flight).  Requests wait in a bounded FIFO for an idle connection;
 * connections are opened on demand up to the pool size.  After a failed
 * connect, attempts are spaced by a growing backoff with jitter and only
 * one attempt is in flight at a time.  PQfinish() owns every socket.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include "ngx_rtmp_pgauth_module.h"


#define NGX_RTMP_PGAUTH_CONNECTING     0
#define NGX_RTMP_PGAUTH_SETUP          1
#define NGX_RTMP_PGAUTH_IDLE           2
#define NGX_RTMP_PGAUTH_BUSY           3

#define NGX_RTMP_PGAUTH_BACKOFF_MIN    100
#define NGX_RTMP_PGAUTH_BACKOFF_MAX    2000

/* requests answered by one batch query at most */
#define NGX_RTMP_PGAUTH_BATCH_MAX      64


struct ngx_rtmp_pgauth_conn_s {
    ngx_queue_t                     queue;      /* pool->idle or ->busy */
    ngx_rtmp_pgauth_pool_t         *pool;
    PGconn                         *pgconn;
    ngx_connection_t               *c;
    ino_t                           ino;        /* socket c was made for */
    ngx_rtmp_pgauth_req_t          *req;
    ngx_event_t                     timer;
    ngx_uint_t                      state;
    ngx_uint_t                      number;
    ngx_uint_t                      first;      /* of the host list */
    ngx_uint_t                     *gone;       /* set when closed */
    unsigned                        flushing:1;

    /* pcf.local: the setup's result comes first, then the sync's */
    unsigned                        setting:1;
    unsigned                        syncing:1;
};


struct ngx_rtmp_pgauth_pool_s {
    ngx_rtmp_pgauth_main_conf_t    *pmcf;
    ngx_rtmp_pgauth_pool_conf_t     pcf;        /* what it is for */
    const char                    **keywords;
    const char                    **values;
    ngx_log_t                      *log;

    ngx_queue_t                     idle;
    ngx_queue_t                     busy;
    ngx_queue_t                     waiting;

    ngx_uint_t                      nconns;
    ngx_uint_t                      nidle;
    ngx_uint_t                      nconnecting;
    ngx_uint_t                      nwaiting;
    ngx_uint_t                      nbounded;   /* waiting, not urgent */
    ngx_uint_t                      number;

    ngx_uint_t                      failures;
    ngx_msec_t                      backoff;
    ngx_event_t                     retry;

    /*
     * the connection whose reply is being handed out: idle once its
     * handlers return, it takes what they ask (its backend has just run,
     * another has slept since its last query); pool_run() waits for it
     */
    ngx_rtmp_pgauth_conn_t         *answering;

    unsigned                        exiting:1;
    unsigned                        nobatch:1;  /* the schema has none */
    unsigned                        deferred:1; /* pool_run() waited */
};


static void ngx_rtmp_pgauth_pool_run(ngx_rtmp_pgauth_pool_t *pool);
static void ngx_rtmp_pgauth_pool_report(ngx_rtmp_pgauth_pool_t *pool);
static void ngx_rtmp_pgauth_retry_handler(ngx_event_t *ev);

static void ngx_rtmp_pgauth_conn_open(ngx_rtmp_pgauth_pool_t *pool);
static ngx_int_t ngx_rtmp_pgauth_conn_start(ngx_rtmp_pgauth_conn_t *pc,
    const char **values);
static ngx_int_t ngx_rtmp_pgauth_conn_next_host(ngx_rtmp_pgauth_conn_t *pc);
static ngx_uint_t ngx_rtmp_pgauth_conn_host(ngx_rtmp_pgauth_conn_t *pc,
    char *host, char *port);
static const char **ngx_rtmp_pgauth_pool_values_from(
    ngx_rtmp_pgauth_pool_t *pool, ngx_uint_t first);
static u_char *ngx_rtmp_pgauth_kw_item(ngx_rtmp_pgauth_dsn_t *dsn,
    ngx_int_t kw, ngx_uint_t i, size_t *len);
static ngx_int_t ngx_rtmp_pgauth_conn_socket(ngx_rtmp_pgauth_conn_t *pc);
static void ngx_rtmp_pgauth_conn_release(ngx_rtmp_pgauth_conn_t *pc);
static ngx_int_t ngx_rtmp_pgauth_conn_want(ngx_rtmp_pgauth_conn_t *pc,
    ngx_uint_t read, ngx_uint_t write);
static void ngx_rtmp_pgauth_conn_handler(ngx_event_t *ev);
static void ngx_rtmp_pgauth_conn_timeout(ngx_event_t *ev);
static void ngx_rtmp_pgauth_conn_poll(ngx_rtmp_pgauth_conn_t *pc);
static void ngx_rtmp_pgauth_conn_setup(ngx_rtmp_pgauth_conn_t *pc);
static void ngx_rtmp_pgauth_conn_send(ngx_rtmp_pgauth_conn_t *pc,
    ngx_rtmp_pgauth_req_t *req);
static ngx_int_t ngx_rtmp_pgauth_conn_flush(ngx_rtmp_pgauth_conn_t *pc);
static void ngx_rtmp_pgauth_conn_read(ngx_rtmp_pgauth_conn_t *pc);
static void ngx_rtmp_pgauth_conn_idle_read(ngx_rtmp_pgauth_conn_t *pc);
static ngx_int_t ngx_rtmp_pgauth_conn_notifies(ngx_rtmp_pgauth_conn_t *pc);
static void ngx_rtmp_pgauth_conn_ready(ngx_rtmp_pgauth_conn_t *pc);
static void ngx_rtmp_pgauth_conn_failed(ngx_rtmp_pgauth_conn_t *pc,
    const char *what);
static void ngx_rtmp_pgauth_conn_close(ngx_rtmp_pgauth_conn_t *pc);

static void ngx_rtmp_pgauth_req_enqueue(ngx_rtmp_pgauth_req_t *req,
    ngx_uint_t head);
static void ngx_rtmp_pgauth_req_dequeue(ngx_rtmp_pgauth_req_t *req);
static void ngx_rtmp_pgauth_req_finish(ngx_rtmp_pgauth_req_t *req,
    ngx_uint_t rc, PGresult *res, ngx_str_t *err);
static void ngx_rtmp_pgauth_req_timeout(ngx_event_t *ev);
static ngx_rtmp_pgauth_req_t *ngx_rtmp_pgauth_req_gather(
    ngx_rtmp_pgauth_req_t *req);
static u_char *ngx_rtmp_pgauth_req_param(u_char *p,
    ngx_rtmp_pgauth_req_t *req, ngx_uint_t k, ngx_uint_t first);
static void ngx_rtmp_pgauth_req_scatter(ngx_rtmp_pgauth_req_t *carrier);
static void ngx_rtmp_pgauth_req_batched(ngx_rtmp_pgauth_req_t *carrier,
    ngx_uint_t rc, PGresult *res, ngx_str_t *err);
static PGresult *ngx_rtmp_pgauth_req_rows(PGresult *res,
    ngx_int_t *places, ngx_int_t place);
static void ngx_rtmp_pgauth_error_text(ngx_str_t *err, u_char *buf,
    size_t size, const char *msg);


ngx_rtmp_pgauth_pool_t *
ngx_rtmp_pgauth_pool_create(ngx_cycle_t *cycle,
    ngx_rtmp_pgauth_main_conf_t *pmcf, ngx_rtmp_pgauth_pool_conf_t *pcf)
{
    ngx_uint_t               i, n;
    ngx_rtmp_pgauth_pool_t  *pool;

    pool = ngx_pcalloc(cycle->pool, sizeof(ngx_rtmp_pgauth_pool_t));
    if (pool == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     pool->nconns = 0;
     *     pool->nconnecting = 0;
     *     pool->nwaiting = 0;
     *     pool->failures = 0;
     *     pool->backoff = 0;
     */

    pool->pmcf = pmcf;
    pool->pcf = *pcf;
    pool->log = cycle->log;

    pool->keywords = pcf->dsn->keywords;
    pool->values = pcf->dsn->values;

    if (pcf->app_name) {
        for (n = 0; pool->keywords[n]; n++) { /* void */ }

        pool->values = ngx_palloc(cycle->pool, (n + 1) * sizeof(char *));
        if (pool->values == NULL) {
            return NULL;
        }

        for (i = 0; i <= n; i++) {
            pool->values[i] = pcf->dsn->values[i];

            if (i < n && ngx_strcmp(pool->keywords[i],
                                    "fallback_application_name") == 0)
            {
                pool->values[i] = pcf->app_name;
            }
        }
    }

    ngx_queue_init(&pool->idle);
    ngx_queue_init(&pool->busy);
    ngx_queue_init(&pool->waiting);

    pool->retry.handler = ngx_rtmp_pgauth_retry_handler;
    pool->retry.data = pool;
    pool->retry.log = cycle->log;
    pool->retry.cancelable = 1;

    ngx_rtmp_pgauth_pool_run(pool);

    return pool;
}


void
ngx_rtmp_pgauth_pool_destroy(ngx_rtmp_pgauth_pool_t *pool)
{
    ngx_queue_t            *q;
    ngx_rtmp_pgauth_req_t  *req;
    ngx_rtmp_pgauth_conn_t *pc;

    /* the worker exits: no handler runs, nothing new is started */
    pool->exiting = 1;

    if (pool->retry.timer_set) {
        ngx_del_timer(&pool->retry);
    }

    while (!ngx_queue_empty(&pool->waiting)) {
        q = ngx_queue_head(&pool->waiting);
        req = ngx_queue_data(q, ngx_rtmp_pgauth_req_t, queue);
        ngx_rtmp_pgauth_req_free(req);
    }

    while (!ngx_queue_empty(&pool->busy)) {
        q = ngx_queue_head(&pool->busy);
        pc = ngx_queue_data(q, ngx_rtmp_pgauth_conn_t, queue);
        ngx_rtmp_pgauth_conn_close(pc);
    }

    while (!ngx_queue_empty(&pool->idle)) {
        q = ngx_queue_head(&pool->idle);
        pc = ngx_queue_data(q, ngx_rtmp_pgauth_conn_t, queue);
        ngx_rtmp_pgauth_conn_close(pc);
    }
}


/* what the pool keeps (pc.keep) may have changed: act on it */

void
ngx_rtmp_pgauth_pool_wake(ngx_rtmp_pgauth_pool_t *pool)
{
    ngx_rtmp_pgauth_pool_run(pool);
}


/* whether a request submitted now would be sent at once */

ngx_uint_t
ngx_rtmp_pgauth_pool_free(ngx_rtmp_pgauth_pool_t *pool)
{
    return !pool->exiting && pool->nidle && pool->nwaiting == 0;
}


ngx_rtmp_pgauth_req_t *
ngx_rtmp_pgauth_req_create(ngx_rtmp_pgauth_pool_t *pool, size_t size)
{
    ngx_rtmp_pgauth_req_t  *req;

    req = ngx_alloc(sizeof(ngx_rtmp_pgauth_req_t) + size, pool->log);
    if (req == NULL) {
        return NULL;
    }

    ngx_memzero(req, sizeof(ngx_rtmp_pgauth_req_t));

    req->size = size;
    req->pool = pool;
    req->log = pool->log;

    req->deadline.handler = ngx_rtmp_pgauth_req_timeout;
    req->deadline.data = req;
    req->deadline.log = pool->log;

    return req;
}


ngx_int_t
ngx_rtmp_pgauth_req_submit(ngx_rtmp_pgauth_req_t *req, ngx_msec_t timeout)
{
    ngx_rtmp_pgauth_pool_t  *pool;

    pool = req->pool;

    /* the ends of sessions do not count against the queue's bound */

    if (pool->exiting
        || (!req->urgent && pool->nbounded >= pool->pcf.queue_size))
    {
        return NGX_BUSY;
    }

    req->start = ngx_current_msec;

    ngx_rtmp_pgauth_req_enqueue(req, req->head);

    ngx_add_timer(&req->deadline, timeout);

    ngx_rtmp_pgauth_pool_run(pool);

    return NGX_OK;
}


/* 1: in flight, its reply goes to the late handler; 0: freed, never sent */

ngx_uint_t
ngx_rtmp_pgauth_req_detach(ngx_rtmp_pgauth_req_t *req)
{
    if (req->deadline.timer_set) {
        ngx_del_timer(&req->deadline);
    }

    if (req->conn == NULL && req->carrier == NULL) {
        ngx_rtmp_pgauth_req_free(req);
        return 0;
    }

    req->handler = NULL;
    req->data = NULL;

    return 1;
}


void
ngx_rtmp_pgauth_req_free(ngx_rtmp_pgauth_req_t *req)
{
    ngx_uint_t  i;

    if (req->deadline.timer_set) {
        ngx_del_timer(&req->deadline);
    }

    if (req->waiting) {
        ngx_rtmp_pgauth_req_dequeue(req);
    }

    if (req->conn) {
        req->conn->req = NULL;
    }

    /* a carrier freed unanswered (the worker exits): its items too */

    for (i = 0; i < req->nitems; i++) {
        if (req->items[i]) {
            req->items[i]->carrier = NULL;
            ngx_rtmp_pgauth_req_free(req->items[i]);
        }
    }

    if (req->carrier) {
        for (i = 0; i < req->carrier->nitems; i++) {
            if (req->carrier->items[i] == req) {
                req->carrier->items[i] = NULL;
            }
        }
    }

    /* what it carried may be a stream key */
    ngx_explicit_memzero(req + 1, req->size);

    ngx_free(req);
}


static void
ngx_rtmp_pgauth_req_enqueue(ngx_rtmp_pgauth_req_t *req, ngx_uint_t head)
{
    ngx_rtmp_pgauth_pool_t  *pool;

    pool = req->pool;

    if (head) {
        ngx_queue_insert_head(&pool->waiting, &req->queue);

    } else {
        ngx_queue_insert_tail(&pool->waiting, &req->queue);
    }

    req->waiting = 1;
    pool->nwaiting++;

    if (!req->urgent) {
        pool->nbounded++;
    }
}


static void
ngx_rtmp_pgauth_req_dequeue(ngx_rtmp_pgauth_req_t *req)
{
    ngx_rtmp_pgauth_pool_t  *pool;

    pool = req->pool;

    ngx_queue_remove(&req->queue);

    req->waiting = 0;
    pool->nwaiting--;

    if (!req->urgent) {
        pool->nbounded--;
    }
}


static void
ngx_rtmp_pgauth_req_finish(ngx_rtmp_pgauth_req_t *req, ngx_uint_t rc,
    PGresult *res, ngx_str_t *err)
{
    ngx_rtmp_pgauth_handler_pt  handler;

    if (req->deadline.timer_set) {
        ngx_del_timer(&req->deadline);
    }

    if (req->conn) {
        req->conn->req = NULL;
        req->conn = NULL;
    }

    handler = req->handler ? req->handler : req->late;

    if (handler && !req->pool->exiting) {
        handler(req, rc, res, err);
    }

    ngx_rtmp_pgauth_req_free(req);
}


static void
ngx_rtmp_pgauth_req_timeout(ngx_event_t *ev)
{
    ngx_str_t               err;
    ngx_rtmp_pgauth_req_t  *req;

    req = ev->data;

    ngx_str_set(&err, "timed out");

    if (req->conn == NULL && req->carrier == NULL) {
        ngx_rtmp_pgauth_req_finish(req, NGX_RTMP_PGAUTH_TIMEDOUT, NULL, &err);
        return;
    }

    /*
     * in flight: tell the owner now, keep the request on its connection
     * so a late reply still reaches the late handler; the server cancels
     * the query at statement_timeout, the connection timer closes a
     * connection whose server does not answer at all
     */

    if (req->handler) {
        req->handler(req, NGX_RTMP_PGAUTH_TIMEDOUT, NULL, &err);
        req->handler = NULL;
        req->data = NULL;
    }
}


/*
 * The requests waiting with the same batch query as req, req first, go
 * in one request of that query, when there are several: the carrier,
 * answered by ngx_rtmp_pgauth_req_batched().  Each keeps its deadline
 * and handlers, and is in flight as the carrier is.  Returns what to
 * send: req itself when alone (or out of memory).  Binary parameters
 * are digests: at most NGX_RTMP_PGAUTH_NAME_LEN bytes.
 */

static ngx_rtmp_pgauth_req_t *
ngx_rtmp_pgauth_req_gather(ngx_rtmp_pgauth_req_t *req)
{
    u_char                 *p;
    size_t                  size;
    ngx_uint_t              i, k, n;
    ngx_queue_t            *q;
    ngx_rtmp_pgauth_req_t  *r, *carrier, *items[NGX_RTMP_PGAUTH_BATCH_MAX];

    n = 0;

    for (q = &req->queue;
         q != ngx_queue_sentinel(&req->pool->waiting)
         && n < NGX_RTMP_PGAUTH_BATCH_MAX;
         q = ngx_queue_next(q))
    {
        r = ngx_queue_data(q, ngx_rtmp_pgauth_req_t, queue);

        if (r->batch == req->batch && r->nparams == req->nparams) {
            items[n++] = r;
        }
    }

    if (n == 1) {
        return req;
    }

    /* each parameter an array: quoted, escaped, bytea as \x and hex */

    size = n * sizeof(ngx_rtmp_pgauth_req_t *);

    for (k = 0; k < (ngx_uint_t) req->nparams; k++) {
        size += 3;

        for (i = 0; i < n; i++) {
            r = items[i];
            size += r->values[k] == NULL ? sizeof(",NULL")
                    : r->formats[k] ? 4 * (size_t) r->lengths[k] + 8
                    : 2 * ngx_strlen(r->values[k]) + 4;
        }
    }

    carrier = ngx_rtmp_pgauth_req_create(req->pool, size);
    if (carrier == NULL) {
        return req;
    }

    carrier->items = (ngx_rtmp_pgauth_req_t **) (carrier + 1);
    p = (u_char *) (carrier->items + n);

    for (k = 0; k < (ngx_uint_t) req->nparams; k++) {
        carrier->values[k] = (char *) p;
        carrier->types[k] = 0;

        for (i = 0; i < n; i++) {
            p = ngx_rtmp_pgauth_req_param(p, items[i], k, i == 0);
        }

        p = ngx_rtmp_pgauth_array_end(p, 0) + 1;
    }

    for (i = 0; i < n; i++) {
        r = items[i];

        ngx_rtmp_pgauth_req_dequeue(r);
        r->carrier = carrier;
        carrier->items[i] = r;
    }

    carrier->nitems = n;
    carrier->query = req->batch;
    carrier->nparams = req->nparams;
    carrier->handler = ngx_rtmp_pgauth_req_batched;
    carrier->urgent = 1;
    carrier->start = ngx_current_msec;

    ngx_log_debug1(NGX_LOG_DEBUG_RTMP, req->pool->log, 0,
                   "pgauth: %ui requests in one batch", n);

    return carrier;
}


/* parameter k of req as an element of a text[] literal */

static u_char *
ngx_rtmp_pgauth_req_param(u_char *p, ngx_rtmp_pgauth_req_t *req,
    ngx_uint_t k, ngx_uint_t first)
{
    u_char  hex[2 * NGX_RTMP_PGAUTH_NAME_LEN + 3];
    size_t  len;

    if (req->values[k] == NULL) {
        return ngx_cpymem(p, first ? "{NULL" : ",NULL", 5);
    }

    if (req->formats[k] == 0) {
        return ngx_rtmp_pgauth_array_add(p, (u_char *) req->values[k],
                                         ngx_strlen(req->values[k]), first);
    }

    /* binary: bytea, written as PostgreSQL reads it in text */

    len = ngx_min((size_t) req->lengths[k], NGX_RTMP_PGAUTH_NAME_LEN);

    hex[0] = '\\';
    hex[1] = 'x';

    return ngx_rtmp_pgauth_array_add(p, hex,
                                     ngx_hex_dump(hex + 2,
                                                  (u_char *) req->values[k],
                                                  len)
                                     - hex, first);
}


/*
 * The answer to a batch: each request it carried gets its own rows, or
 * the error.  An error of the server's (the transaction was rolled back)
 * sends each again alone, where it fails or not on its own; a schema
 * without the batch query's function ends batching.  The handlers may
 * detach or submit requests: each item is taken off the carrier first.
 */

static void
ngx_rtmp_pgauth_req_batched(ngx_rtmp_pgauth_req_t *carrier, ngx_uint_t rc,
    PGresult *res, ngx_str_t *err)
{
    int                      t;
    char                    *state;
    PGresult                *own;
    ngx_int_t               *places;
    ngx_str_t                failure;
    ngx_uint_t               i;
    ngx_rtmp_pgauth_req_t   *r;
    ngx_rtmp_pgauth_pool_t  *pool;

    pool = carrier->pool;
    places = NULL;

    if (rc == NGX_RTMP_PGAUTH_RESULT) {

        /* the place each row answers, read once */

        places = ngx_alloc((PQntuples(res) + 1) * sizeof(ngx_int_t),
                           pool->log);
        if (places == NULL) {
            rc = NGX_RTMP_PGAUTH_FAILED;
            ngx_str_set(&failure, "out of memory");
            err = &failure;

        } else {
            /* anything but a place of this batch answers no one */

            for (t = 0; t < PQntuples(res); t++) {
                places[t] = PQnfields(res) > 1 && !PQgetisnull(res, t, 0)
                            ? ngx_atoi((u_char *) PQgetvalue(res, t, 0),
                                       PQgetlength(res, t, 0))
                            : NGX_ERROR;

                if (places[t] < 1 || places[t] > (ngx_int_t) carrier->nitems)
                {
                    places[t] = NGX_ERROR;
                }
            }
        }

    } else if (res) {
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

        if (state
            && ngx_strcmp(state, NGX_RTMP_PGAUTH_SQLSTATE_NO_FUNCTION) == 0)
        {
            ngx_log_error(NGX_LOG_WARN, pool->log, 0,
                          "pgauth: the batch query failed: %V; the schema "
                          "is older than the module (apply the new "
                          "pgauth.sql): decisions go one by one", err);
            pool->nobatch = 1;

        } else {
            ngx_log_error(NGX_LOG_WARN, pool->log, 0,
                          "pgauth: a batch of %ui failed: %V; each is sent "
                          "again alone", carrier->nitems, err);
        }

        /* the server did nothing of it */
        ngx_rtmp_pgauth_req_scatter(carrier);
        ngx_rtmp_pgauth_pool_run(pool);
        return;
    }

    for (i = 0; i < carrier->nitems; i++) {
        r = carrier->items[i];

        if (r == NULL) {
            continue;
        }

        carrier->items[i] = NULL;
        r->carrier = NULL;

        if (rc != NGX_RTMP_PGAUTH_RESULT) {
            ngx_rtmp_pgauth_req_finish(r, rc, NULL, err);
            continue;
        }

        own = ngx_rtmp_pgauth_req_rows(res, places, (ngx_int_t) i + 1);

        if (own == NULL) {
            ngx_str_set(&failure, "out of memory");
            ngx_rtmp_pgauth_req_finish(r, NGX_RTMP_PGAUTH_FAILED, NULL,
                                       &failure);
            continue;
        }

        ngx_rtmp_pgauth_req_finish(r, NGX_RTMP_PGAUTH_RESULT, own, NULL);
        PQclear(own);
    }

    carrier->nitems = 0;

    if (places) {
        ngx_free(places);
    }
}


/*
 * The items of a carrier that was not run (refused by the server, or not
 * sent) wait again, each alone, in the order they came, at the head of
 * the queue; those whose owner has gone are dropped: nothing was done
 * for them.  The carrier is left empty.
 */

static void
ngx_rtmp_pgauth_req_scatter(ngx_rtmp_pgauth_req_t *carrier)
{
    ngx_uint_t              i;
    ngx_rtmp_pgauth_req_t  *r;

    for (i = carrier->nitems; i-- > 0; /* void */) {
        r = carrier->items[i];

        if (r == NULL) {
            continue;
        }

        carrier->items[i] = NULL;
        r->carrier = NULL;
        r->batch = NULL;

        if (r->handler == NULL || carrier->pool->exiting) {
            ngx_rtmp_pgauth_req_free(r);
            continue;
        }

        ngx_rtmp_pgauth_req_enqueue(r, 1);
    }

    carrier->nitems = 0;
}


/* the rows of res for one place, without column 1, as a result alone */

static PGresult *
ngx_rtmp_pgauth_req_rows(PGresult *res, ngx_int_t *places, ngx_int_t place)
{
    int            f, t, row, nfields;
    PGresult      *own;
    PGresAttDesc  *attrs;

    nfields = PQnfields(res) - 1;

    own = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    if (own == NULL) {
        return NULL;
    }

    if (nfields <= 0) {
        return own;
    }

    attrs = PQresultAlloc(own, nfields * sizeof(PGresAttDesc));
    if (attrs == NULL) {
        goto failed;
    }

    for (f = 0; f < nfields; f++) {
        attrs[f].name = PQfname(res, f + 1);
        attrs[f].tableid = PQftable(res, f + 1);
        attrs[f].columnid = PQftablecol(res, f + 1);
        attrs[f].format = PQfformat(res, f + 1);
        attrs[f].typid = PQftype(res, f + 1);
        attrs[f].typlen = PQfsize(res, f + 1);
        attrs[f].atttypmod = PQfmod(res, f + 1);
    }

    if (!PQsetResultAttrs(own, nfields, attrs)) {
        goto failed;
    }

    row = 0;

    for (t = 0; t < PQntuples(res); t++) {
        if (places[t] != place) {
            continue;
        }

        for (f = 0; f < nfields; f++) {
            if (!PQsetvalue(own, row, f,
                            PQgetisnull(res, t, f + 1)
                                ? NULL : PQgetvalue(res, t, f + 1),
                            PQgetisnull(res, t, f + 1)
                                ? -1 : PQgetlength(res, t, f + 1)))
            {
                goto failed;
            }
        }

        row++;
    }

    return own;

failed:

    PQclear(own);
    return NULL;
}


static void
ngx_rtmp_pgauth_pool_run(ngx_rtmp_pgauth_pool_t *pool)
{
    ngx_uint_t               need;
    ngx_queue_t             *q;
    ngx_rtmp_pgauth_req_t   *req;
    ngx_rtmp_pgauth_conn_t  *pc;

    if (pool->exiting) {
        return;
    }

    if (pool->answering) {
        pool->deferred = 1;
        return;
    }

    pool->deferred = 0;

    ngx_rtmp_pgauth_pool_report(pool);

    while (!ngx_queue_empty(&pool->waiting)
           && !ngx_queue_empty(&pool->idle))
    {
        q = ngx_queue_head(&pool->waiting);
        req = ngx_queue_data(q, ngx_rtmp_pgauth_req_t, queue);

        q = ngx_queue_head(&pool->idle);
        pc = ngx_queue_data(q, ngx_rtmp_pgauth_conn_t, queue);

        if (req->batch && !pool->nobatch) {
            req = ngx_rtmp_pgauth_req_gather(req);
        }

        ngx_rtmp_pgauth_conn_send(pc, req);
    }

    /* open connections for what waits, unless already on their way */

    need = pool->nwaiting > pool->nconnecting
           ? pool->nwaiting - pool->nconnecting : 0;

    if (pool->pcf.keep && pool->nconns == 0
        && pool->pcf.keep(pool->pcf.data))
    {
        need = ngx_max(need, 1);
    }

    while (need-- && pool->nconns < pool->pcf.size) {

        if (pool->failures
            && (pool->nconnecting || pool->retry.timer_set))
        {
            /* the database is failing: one attempt at a time */
            break;
        }

        ngx_rtmp_pgauth_conn_open(pool);
    }
}


/* this worker's gauges for pgauth_status */

static void
ngx_rtmp_pgauth_pool_report(ngx_rtmp_pgauth_pool_t *pool)
{
    ngx_rtmp_pgauth_worker_stats_t  *w;

    w = pool->pcf.report;

    if (w == NULL) {
        return;
    }

    w->idle = pool->nidle;
    w->connecting = pool->nconnecting;
    w->busy = pool->nconns - pool->nidle - pool->nconnecting;
    w->waiting = pool->nwaiting;
}


static void
ngx_rtmp_pgauth_retry_handler(ngx_event_t *ev)
{
    ngx_rtmp_pgauth_pool_run(ev->data);
}


static void
ngx_rtmp_pgauth_conn_open(ngx_rtmp_pgauth_pool_t *pool)
{
    ngx_rtmp_pgauth_conn_t  *pc;

    pc = ngx_calloc(sizeof(ngx_rtmp_pgauth_conn_t), pool->log);
    if (pc == NULL) {
        return;
    }

    pc->pool = pool;
    pc->number = ++pool->number;
    pc->state = NGX_RTMP_PGAUTH_CONNECTING;

    pc->timer.handler = ngx_rtmp_pgauth_conn_timeout;
    pc->timer.data = pc;
    pc->timer.log = pool->log;
    pc->timer.cancelable = 1;

    ngx_queue_insert_tail(&pool->busy, &pc->queue);
    pool->nconns++;
    pool->nconnecting++;

    ngx_log_debug2(NGX_LOG_DEBUG_RTMP, pool->log, 0,
                   "pgauth: %sconnection #%ui connecting",
                   pc->pool->pcf.name, pc->number);

    switch (ngx_rtmp_pgauth_conn_start(pc, pool->values)) {

    case NGX_ERROR:
        ngx_rtmp_pgauth_conn_close(pc);
        return;

    case NGX_DECLINED:
        ngx_rtmp_pgauth_conn_failed(pc, "connect");
        return;
    }
}


/*
 * Starts libpq connecting.  NGX_DECLINED: it failed, libpq says why;
 * NGX_ERROR: no memory.
 */

static ngx_int_t
ngx_rtmp_pgauth_conn_start(ngx_rtmp_pgauth_conn_t *pc, const char **values)
{
    PGconn                       *pgconn;
    ngx_rtmp_pgauth_dsn_t        *dsn;
    ngx_rtmp_pgauth_main_conf_t  *pmcf;

    pmcf = pc->pool->pmcf;
    dsn = pc->pool->pcf.dsn;

    pgconn = PQconnectStartParams(pc->pool->keywords, values, 0);
    if (pgconn == NULL) {
        ngx_log_error(NGX_LOG_ALERT, pc->pool->log, 0,
                      "pgauth: PQconnectStartParams() failed: out of memory");
        return NGX_ERROR;
    }

    pc->pgconn = pgconn;

    if (PQstatus(pgconn) == CONNECTION_BAD) {
        return NGX_DECLINED;
    }

    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
    }

    ngx_add_timer(&pc->timer, dsn->nhosts > 1
                              ? ngx_min(dsn->host_timeout, pmcf->max_timeout)
                              : pmcf->max_timeout);

    /* as the libpq documentation says: first behave as if asked to write */

    if (ngx_rtmp_pgauth_conn_socket(pc) != NGX_OK
        || ngx_rtmp_pgauth_conn_want(pc, 0, 1) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * A host of the list did not answer in time: start again with the hosts
 * after it.  NGX_DECLINED when it was the last.
 */

static ngx_int_t
ngx_rtmp_pgauth_conn_next_host(ngx_rtmp_pgauth_conn_t *pc)
{
    char                         *host, *port;
    ngx_int_t                     rc;
    ngx_uint_t                    cur;
    const char                  **values;
    ngx_rtmp_pgauth_dsn_t        *dsn;

    dsn = pc->pool->pcf.dsn;

    host = PQhost(pc->pgconn);
    port = PQport(pc->pgconn);

    cur = ngx_rtmp_pgauth_conn_host(pc, host, port);

    if (cur + 1 >= dsn->nhosts) {
        return NGX_DECLINED;
    }

    ngx_log_error(NGX_LOG_WARN, pc->pool->log, 0,
                  "pgauth: %sconnection #%ui: host \"%s\" port %s did not "
                  "answer in %Mms, trying the next host",
                  pc->pool->pcf.name, pc->number, host ? host : "?",
                  port ? port : "?", dsn->host_timeout);

    pc->first = cur + 1;

    values = ngx_rtmp_pgauth_pool_values_from(pc->pool, pc->first);
    if (values == NULL) {
        return NGX_DECLINED;
    }

    /* the old socket goes with PQfinish() */

    if (pc->c) {
        ngx_rtmp_pgauth_conn_release(pc);
    }

    PQfinish(pc->pgconn);
    pc->pgconn = NULL;

    rc = ngx_rtmp_pgauth_conn_start(pc, values);

    ngx_free(values);

    return rc == NGX_OK ? NGX_OK : NGX_DECLINED;
}


/*
 * Which host of the list libpq is on (host and port are its own), from
 * where this attempt began: the first one when it cannot tell.
 */

static ngx_uint_t
ngx_rtmp_pgauth_conn_host(ngx_rtmp_pgauth_conn_t *pc, char *host, char *port)
{
    u_char                       *item;
    size_t                        len;
    ngx_uint_t                    i;
    ngx_rtmp_pgauth_dsn_t        *dsn;

    dsn = pc->pool->pcf.dsn;

    for (i = pc->first; host && i < dsn->nhosts; i++) {

        item = NULL;
        len = 0;

        if (dsn->host_kw >= 0) {
            item = ngx_rtmp_pgauth_kw_item(dsn, dsn->host_kw, i, &len);
        }

        if ((item == NULL || len == 0) && dsn->hostaddr_kw >= 0) {
            item = ngx_rtmp_pgauth_kw_item(dsn, dsn->hostaddr_kw, i, &len);
        }

        if (item == NULL
            || len != ngx_strlen(host)
            || ngx_strncmp(item, host, len) != 0)
        {
            continue;
        }

        if (port && dsn->port_kw >= 0) {
            item = ngx_rtmp_pgauth_kw_item(dsn, dsn->port_kw, i, &len);

            if (item && len
                && (len != ngx_strlen(port)
                    || ngx_strncmp(item, port, len) != 0))
            {
                continue;
            }
        }

        return i;
    }

    return pc->first;
}


/*
 * The pool's connection values with the host, hostaddr and port lists cut
 * to start at host first; ngx_free() them.  NULL when out of memory.
 */

static const char **
ngx_rtmp_pgauth_pool_values_from(ngx_rtmp_pgauth_pool_t *pool,
    ngx_uint_t first)
{
    char                         *p;
    u_char                       *item;
    size_t                        len, size;
    ngx_int_t                     kw[3];
    ngx_uint_t                    i, j, k;
    const char                  **values;
    ngx_rtmp_pgauth_dsn_t        *dsn;

    dsn = pool->pcf.dsn;

    kw[0] = dsn->host_kw;
    kw[1] = dsn->hostaddr_kw;
    kw[2] = dsn->port_kw;

    for (i = 0; pool->keywords[i]; i++) { /* void */ }

    size = (i + 1) * sizeof(char *);

    for (k = 0; k < 3; k++) {
        if (kw[k] >= 0) {
            size += ngx_strlen(dsn->values[kw[k]]) + 1;
        }
    }

    values = ngx_alloc(size, pool->log);
    if (values == NULL) {
        return NULL;
    }

    /* the pool's own values: its application name, for one */
    ngx_memcpy(values, pool->values, (i + 1) * sizeof(char *));

    p = (char *) (values + i + 1);

    for (k = 0; k < 3; k++) {

        if (kw[k] < 0
            || ngx_rtmp_pgauth_kw_item(dsn, kw[k], 0, &len) == NULL)
        {
            /* one value for every host: kept as it is */
            continue;
        }

        values[kw[k]] = p;

        for (j = first; j < dsn->nhosts; j++) {
            item = ngx_rtmp_pgauth_kw_item(dsn, kw[k], j, &len);

            if (j > first) {
                *p++ = ',';
            }

            p = (char *) ngx_cpymem(p, item, len);
        }

        *p++ = '\0';
    }

    return values;
}


/*
 * Makes pc->c the nginx connection of libpq's current socket.  libpq may
 * close its socket and open another during PQconnectPoll() (the next host
 * of a list, an SSL retry); the new one can get the same descriptor
 * number, so the socket is told apart by its inode.
 */

static ngx_int_t
ngx_rtmp_pgauth_conn_socket(ngx_rtmp_pgauth_conn_t *pc)
{
    int                fd;
    struct stat        st;
    ngx_connection_t  *c;

    fd = PQsocket(pc->pgconn);
    if (fd == -1) {
        return NGX_ERROR;
    }

    if (fstat(fd, &st) == -1) {
        ngx_log_error(NGX_LOG_ALERT, pc->pool->log, ngx_errno,
                      "pgauth: fstat() failed");
        return NGX_ERROR;
    }

    if (pc->c) {
        if (pc->c->fd == fd && pc->ino == st.st_ino) {
            return NGX_OK;
        }

        ngx_log_debug2(NGX_LOG_DEBUG_RTMP, pc->pool->log, 0,
                       "pgauth: %sconnection #%ui changed socket",
                       pc->pool->pcf.name, pc->number);

        /* libpq has closed the old socket: it left epoll with it */
        ngx_rtmp_pgauth_conn_release(pc);
    }

    c = ngx_get_connection(fd, pc->pool->log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->data = pc;
    c->read->handler = ngx_rtmp_pgauth_conn_handler;
    c->write->handler = ngx_rtmp_pgauth_conn_handler;
    c->read->log = pc->pool->log;
    c->write->log = pc->pool->log;

    pc->c = c;
    pc->ino = st.st_ino;

    return NGX_OK;
}


/* forgets pc->c without touching its socket: PQfinish() or libpq closes it */

static void
ngx_rtmp_pgauth_conn_release(ngx_rtmp_pgauth_conn_t *pc)
{
    ngx_connection_t  *c;

    c = pc->c;

    if (c->read->active || c->read->disabled) {
        ngx_del_event(c->read, NGX_READ_EVENT, NGX_CLOSE_EVENT);
    }

    if (c->write->active || c->write->disabled) {
        ngx_del_event(c->write, NGX_WRITE_EVENT, NGX_CLOSE_EVENT);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    c->fd = (ngx_socket_t) -1;
    ngx_free_connection(c);

    pc->c = NULL;
}


static ngx_int_t
ngx_rtmp_pgauth_conn_want(ngx_rtmp_pgauth_conn_t *pc, ngx_uint_t read,
    ngx_uint_t write)
{
    ngx_connection_t  *c;

    c = pc->c;

    if (read && !c->read->active) {
        if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (!read && c->read->active) {
        if (ngx_del_event(c->read, NGX_READ_EVENT, 0) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (write && !c->write->active) {
        if (ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (!write && c->write->active) {
        if (ngx_del_event(c->write, NGX_WRITE_EVENT, 0) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static void
ngx_rtmp_pgauth_conn_handler(ngx_event_t *ev)
{
    ngx_connection_t        *c;
    ngx_rtmp_pgauth_conn_t  *pc;

    c = ev->data;
    pc = c->data;

    if (c->close) {
        /* an idle connection of a worker that is shutting down */
        ngx_rtmp_pgauth_conn_close(pc);
        return;
    }

    switch (pc->state) {

    case NGX_RTMP_PGAUTH_CONNECTING:
        ngx_rtmp_pgauth_conn_poll(pc);
        break;

    case NGX_RTMP_PGAUTH_IDLE:
        ngx_rtmp_pgauth_conn_idle_read(pc);
        break;

    default: /* NGX_RTMP_PGAUTH_SETUP, NGX_RTMP_PGAUTH_BUSY */

        if (ev->write) {
            if (ngx_rtmp_pgauth_conn_flush(pc) != NGX_OK) {
                ngx_rtmp_pgauth_conn_failed(pc, "send");
            }

            break;
        }

        ngx_rtmp_pgauth_conn_read(pc);
    }
}


static void
ngx_rtmp_pgauth_conn_timeout(ngx_event_t *ev)
{
    ngx_rtmp_pgauth_conn_t  *pc;

    pc = ev->data;

    if (pc->state == NGX_RTMP_PGAUTH_CONNECTING
        && pc->pool->pcf.dsn->nhosts > 1
        && ngx_rtmp_pgauth_conn_next_host(pc) == NGX_OK)
    {
        return;
    }

    ngx_log_error(NGX_LOG_ERR, pc->pool->log, 0,
                  "pgauth: %sconnection #%ui to PostgreSQL timed out %s",
                  pc->pool->pcf.name, pc->number,
                  pc->state == NGX_RTMP_PGAUTH_CONNECTING
                  ? "while connecting" : "waiting for a reply");

    ngx_rtmp_pgauth_conn_failed(pc, NULL);
}


static void
ngx_rtmp_pgauth_conn_poll(ngx_rtmp_pgauth_conn_t *pc)
{
    ngx_int_t  rc;

    switch (PQconnectPoll(pc->pgconn)) {

    case PGRES_POLLING_READING:
        if (ngx_rtmp_pgauth_conn_socket(pc) != NGX_OK) {
            break;
        }

        rc = ngx_rtmp_pgauth_conn_want(pc, 1, 0);
        if (rc != NGX_OK) {
            break;
        }

        return;

    case PGRES_POLLING_WRITING:
        if (ngx_rtmp_pgauth_conn_socket(pc) != NGX_OK) {
            break;
        }

        rc = ngx_rtmp_pgauth_conn_want(pc, 0, 1);
        if (rc != NGX_OK) {
            break;
        }

        return;

    case PGRES_POLLING_OK:
        ngx_rtmp_pgauth_conn_setup(pc);
        return;

    default: /* PGRES_POLLING_FAILED */
        break;
    }

    ngx_rtmp_pgauth_conn_failed(pc, "connect");
}


static void
ngx_rtmp_pgauth_conn_setup(ngx_rtmp_pgauth_conn_t *pc)
{
    int                      rc;
    ngx_rtmp_pgauth_pool_t  *pool;

    ngx_log_debug3(NGX_LOG_DEBUG_RTMP, pc->pool->log, 0,
                   "pgauth: %sconnection #%ui connected, backend pid %d",
                   pc->pool->pcf.name, pc->number, PQbackendPID(pc->pgconn));

    pool = pc->pool;

    if (ngx_rtmp_pgauth_conn_socket(pc) != NGX_OK
        || PQsetnonblocking(pc->pgconn, 1) == -1)
    {
        ngx_rtmp_pgauth_conn_failed(pc, "connect");
        return;
    }

    if (pool->pcf.local) {
        /* each query goes with the setup, in a pipeline: one transaction */

        pc->state = NGX_RTMP_PGAUTH_SETUP;

        if (!PQenterPipelineMode(pc->pgconn)) {
            ngx_rtmp_pgauth_conn_failed(pc, "connect");
            return;
        }

        ngx_rtmp_pgauth_conn_ready(pc);
        return;
    }

    if (pool->pcf.setup_nparams) {
        rc = PQsendQueryParams(pc->pgconn, pool->pcf.setup,
                               pool->pcf.setup_nparams, NULL,
                               pool->pcf.setup_values, NULL, NULL, 0);

    } else {
        rc = PQsendQuery(pc->pgconn, pool->pcf.setup);
    }

    if (!rc) {
        ngx_rtmp_pgauth_conn_failed(pc, "connect");
        return;
    }

    pc->state = NGX_RTMP_PGAUTH_SETUP;

    if (ngx_rtmp_pgauth_conn_flush(pc) != NGX_OK) {
        ngx_rtmp_pgauth_conn_failed(pc, "connect");
    }
}


static void
ngx_rtmp_pgauth_conn_send(ngx_rtmp_pgauth_conn_t *pc,
    ngx_rtmp_pgauth_req_t *req)
{
    int                      rc;
    ngx_rtmp_pgauth_pool_t  *pool;

    pool = pc->pool;

    if (req->waiting) {
        ngx_rtmp_pgauth_req_dequeue(req);
    }

    ngx_queue_remove(&pc->queue);
    ngx_queue_insert_tail(&pool->busy, &pc->queue);
    pool->nidle--;

    pc->c->idle = 0;
    pc->state = NGX_RTMP_PGAUTH_BUSY;
    pc->req = req;
    req->conn = pc;

    ngx_log_debug2(NGX_LOG_DEBUG_RTMP, pool->log, 0,
                   "pgauth: %sconnection #%ui sends a query",
                   pc->pool->pcf.name, pc->number);

    rc = 1;

    if (pool->pcf.local) {
        /* in the query's transaction, ended by the sync */

        rc = PQsendQueryParams(pc->pgconn, pool->pcf.setup,
                               pool->pcf.setup_nparams, NULL,
                               pool->pcf.setup_values, NULL, NULL, 0);
        pc->setting = 1;
        pc->syncing = 1;
    }

    if (!rc
        || !PQsendQueryParams(pc->pgconn, (char *) req->query->data,
                              req->nparams, req->types, req->values,
                              req->lengths, req->formats, 0)
        || (pool->pcf.local && !PQpipelineSync(pc->pgconn))
        || ngx_rtmp_pgauth_conn_flush(pc) != NGX_OK)
    {
        if (req->nitems) {
            /* a batch not sent: its items try again, each alone */

            req->conn = NULL;
            pc->req = NULL;

            ngx_rtmp_pgauth_req_scatter(req);
            ngx_rtmp_pgauth_req_free(req);

        } else if (!req->retried) {
            /* a connection the server closed just now: try another once */

            req->retried = 1;
            req->conn = NULL;
            pc->req = NULL;

            ngx_rtmp_pgauth_req_enqueue(req, 1);
        }

        ngx_rtmp_pgauth_conn_failed(pc, "send");
        return;
    }

    ngx_add_timer(&pc->timer, pool->pmcf->max_timeout
                              + NGX_RTMP_PGAUTH_GRACE);
}


static ngx_int_t
ngx_rtmp_pgauth_conn_flush(ngx_rtmp_pgauth_conn_t *pc)
{
    int  rc;

    rc = PQflush(pc->pgconn);

    if (rc == -1) {
        return NGX_ERROR;
    }

    pc->flushing = (rc == 1);

    return ngx_rtmp_pgauth_conn_want(pc, 1, pc->flushing);
}


static void
ngx_rtmp_pgauth_conn_read(ngx_rtmp_pgauth_conn_t *pc)
{
    u_char                   buf[NGX_MAX_ERROR_STR];
    ngx_str_t                err;
    ngx_uint_t               gone, nulls;
    PGresult                *res;
    ExecStatusType           status;
    ngx_rtmp_pgauth_req_t   *req;
    ngx_rtmp_pgauth_pool_t  *pool;

    pool = pc->pool;

    if (!PQconsumeInput(pc->pgconn)) {
        ngx_rtmp_pgauth_conn_failed(pc, "receive");
        return;
    }

    if (pc->flushing && ngx_rtmp_pgauth_conn_flush(pc) != NGX_OK) {
        ngx_rtmp_pgauth_conn_failed(pc, "send");
        return;
    }

    if (ngx_rtmp_pgauth_conn_notifies(pc) != NGX_OK) {
        return;
    }

    nulls = 0;

    for ( ;; ) {

        if (PQisBusy(pc->pgconn)) {
            /* more to come on it: what the handlers asked goes elsewhere */
            if (pool->deferred) {
                ngx_rtmp_pgauth_pool_run(pool);
            }

            return;
        }

        res = PQgetResult(pc->pgconn);

        if (res == NULL) {
            if (pc->syncing && ++nulls < 3) {
                /* a pipeline's query is done: the next one, or the sync */
                continue;
            }

            break;
        }

        nulls = 0;
        status = PQresultStatus(res);

        if (status == PGRES_PIPELINE_SYNC && pc->syncing) {
            pc->syncing = 0;
            PQclear(res);
            continue;
        }

        if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK
            && status != PGRES_FATAL_ERROR
            && !(status == PGRES_PIPELINE_ABORTED && pc->syncing))
        {
            /*
             * COPY, or anything else that is not a reply: libpq would
             * hand out the same result for ever.  Only closing the
             * connection ends it.
             */

            ngx_log_error(NGX_LOG_ERR, pc->pool->log, 0,
                          "pgauth: %sconnection #%ui: unexpected result "
                          "\"%s\", closing it",
                          pc->pool->pcf.name, pc->number,
                          PQresStatus(status));
            PQclear(res);

            if (pc->req) {
                ngx_str_set(&err, "unexpected result");
                ngx_rtmp_pgauth_req_finish(pc->req, NGX_RTMP_PGAUTH_FAILED,
                                           NULL, &err);
            }

            ngx_rtmp_pgauth_conn_failed(pc, NULL);
            return;
        }

        if (pc->state == NGX_RTMP_PGAUTH_SETUP) {
            if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
                ngx_rtmp_pgauth_error_text(&err, buf, sizeof(buf),
                                           PQresultErrorMessage(res));
                ngx_log_error(NGX_LOG_ERR, pc->pool->log, 0,
                              "pgauth: %sconnection #%ui setup failed: %V",
                              pc->pool->pcf.name, pc->number, &err);
                PQclear(res);
                ngx_rtmp_pgauth_conn_failed(pc, NULL);
                return;
            }

            PQclear(res);
            continue;
        }

        if (pc->setting) {
            pc->setting = 0;

            if (status != PGRES_FATAL_ERROR) {
                PQclear(res);
                continue;
            }

            /* the setup's error is the query's: the query is not run */
        }

        req = pc->req;

        if (req == NULL) {
            /* the owner is gone and took no late interest */
            PQclear(res);
            continue;
        }

        /* the handler may close this connection: it is watched for that */

        gone = 0;
        pc->gone = &gone;
        pool->answering = pc;

        if (status == PGRES_FATAL_ERROR) {
            ngx_rtmp_pgauth_error_text(&err, buf, sizeof(buf),
                                       PQresultErrorMessage(res));
            ngx_rtmp_pgauth_req_finish(req, NGX_RTMP_PGAUTH_FAILED, res,
                                       &err);

        } else if (status == PGRES_PIPELINE_ABORTED) {
            ngx_str_set(&err, "query not run");
            ngx_rtmp_pgauth_req_finish(req, NGX_RTMP_PGAUTH_FAILED, NULL,
                                       &err);

        } else {
            ngx_rtmp_pgauth_req_finish(req, NGX_RTMP_PGAUTH_RESULT, res,
                                       NULL);
        }

        PQclear(res);

        if (gone) {
            /* closed: ngx_rtmp_pgauth_conn_close() ended the wait */
            if (pool->deferred) {
                ngx_rtmp_pgauth_pool_run(pool);
            }

            return;
        }

        pc->gone = NULL;
        pool->answering = NULL;
    }

    if (pc->req) {
        ngx_str_set(&err, "no result");
        ngx_rtmp_pgauth_req_finish(pc->req, NGX_RTMP_PGAUTH_FAILED, NULL,
                                   &err);
    }

    if (PQstatus(pc->pgconn) != CONNECTION_OK || pc->syncing) {
        ngx_rtmp_pgauth_conn_failed(pc, "receive");
        return;
    }

    ngx_rtmp_pgauth_conn_ready(pc);
}


static void
ngx_rtmp_pgauth_conn_idle_read(ngx_rtmp_pgauth_conn_t *pc)
{
    ngx_uint_t               level;
    ngx_rtmp_pgauth_pool_t  *pool;

    if (PQconsumeInput(pc->pgconn)) {

        if (ngx_rtmp_pgauth_conn_notifies(pc) != NGX_OK) {
            return;
        }

        if (PQstatus(pc->pgconn) == CONNECTION_OK) {
            return;
        }
    }

    pool = pc->pool;

    level = pool->pcf.keep ? NGX_LOG_WARN : NGX_LOG_INFO;

    ngx_log_error(level, pool->log, 0,
                  "pgauth: idle %sconnection #%ui closed by the server",
                  pc->pool->pcf.name, pc->number);

    ngx_rtmp_pgauth_conn_close(pc);

    ngx_rtmp_pgauth_pool_run(pool);
}


/*
 * Hands out the notifications libpq has read.  A handler may close the
 * connection: NGX_DONE then, and pc is gone.
 */

static ngx_int_t
ngx_rtmp_pgauth_conn_notifies(ngx_rtmp_pgauth_conn_t *pc)
{
    PGnotify                *notify;
    ngx_uint_t               gone;
    ngx_rtmp_pgauth_pool_t  *pool;

    pool = pc->pool;

    gone = 0;
    pc->gone = &gone;

    while ((notify = PQnotifies(pc->pgconn)) != NULL) {

        ngx_log_debug2(NGX_LOG_DEBUG_RTMP, pool->log, 0,
                       "pgauth: notification \"%s\" \"%s\"",
                       notify->relname, notify->extra);

        if (pool->pcf.notify && !pool->exiting) {
            pool->pcf.notify(pool->pcf.data, notify);
        }

        PQfreemem(notify);

        if (gone) {
            return NGX_DONE;
        }
    }

    pc->gone = NULL;

    return NGX_OK;
}


/* the connection has nothing in flight: give it work or park it */

static void
ngx_rtmp_pgauth_conn_ready(ngx_rtmp_pgauth_conn_t *pc)
{
    ngx_uint_t               setup;
    ngx_rtmp_pgauth_pool_t  *pool;

    pool = pc->pool;

    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
    }

    setup = (pc->state == NGX_RTMP_PGAUTH_SETUP);

    if (setup) {
        pool->nconnecting--;
        pool->failures = 0;
        pool->backoff = 0;

        ngx_log_debug2(NGX_LOG_DEBUG_RTMP, pool->log, 0,
                       "pgauth: %sconnection #%ui ready",
                       pc->pool->pcf.name, pc->number);
    }

    pc->state = NGX_RTMP_PGAUTH_IDLE;

    ngx_queue_remove(&pc->queue);
    ngx_queue_insert_head(&pool->idle, &pc->queue);
    pool->nidle++;

    /* if so configured, close it at once when the worker shuts down */
    pc->c->idle = pool->pcf.close_idle;

    if (ngx_rtmp_pgauth_conn_want(pc, 1, 0) != NGX_OK) {
        ngx_rtmp_pgauth_conn_failed(pc, NULL);
        return;
    }

    if (setup && pool->pcf.ready) {
        pool->pcf.ready(pool->pcf.data);
    }

    ngx_rtmp_pgauth_pool_run(pool);
}


/*
 * The connection is broken.  What was in flight fails; a failure before
 * the connection was ready backs the pool off.
 */

static void
ngx_rtmp_pgauth_conn_failed(ngx_rtmp_pgauth_conn_t *pc, const char *what)
{
    u_char                   buf[NGX_MAX_ERROR_STR];
    ngx_str_t                err;
    ngx_msec_t               delay, max;
    ngx_rtmp_pgauth_pool_t  *pool;

    pool = pc->pool;

    if (pc->pgconn) {
        ngx_rtmp_pgauth_error_text(&err, buf, sizeof(buf),
                                   PQerrorMessage(pc->pgconn));

    } else {
        ngx_str_set(&err, "out of memory");
    }

    if (err.len == 0) {
        ngx_str_set(&err, "connection lost");
    }

    if (what) {
        ngx_log_error(NGX_LOG_ERR, pool->log, 0,
                      "pgauth: %sconnection #%ui: %s failed: %V",
                      pc->pool->pcf.name, pc->number, what, &err);
    }

    if (pc->state == NGX_RTMP_PGAUTH_CONNECTING
        || pc->state == NGX_RTMP_PGAUTH_SETUP)
    {
        ngx_rtmp_pgauth_stats_count(pool->pmcf->stats,
                                    NGX_RTMP_PGAUTH_CNT_CONNECT_FAILS);

        pool->failures++;

        /*
         * the longest backoff stays within half the shortest wait a
         * request can have, so every request sees a connect attempt
         */

        max = ngx_min(NGX_RTMP_PGAUTH_BACKOFF_MAX,
                      pool->pmcf->max_timeout / 2);
        max = ngx_max(max, NGX_RTMP_PGAUTH_BACKOFF_MIN);

        pool->backoff = pool->backoff ? ngx_min(pool->backoff * 2, max)
                                      : NGX_RTMP_PGAUTH_BACKOFF_MIN;

        /* jitter: from a half to the whole of the backoff */
        delay = pool->backoff / 2 + ngx_random() % (pool->backoff / 2 + 1);

        if (pool->retry.timer_set) {
            ngx_del_timer(&pool->retry);
        }

        ngx_add_timer(&pool->retry, delay);

        ngx_log_debug2(NGX_LOG_DEBUG_RTMP, pool->log, 0,
                       "pgauth: %ui failed connects, next in %M ms",
                       pool->failures, delay);
    }

    if (pc->req) {
        ngx_rtmp_pgauth_req_finish(pc->req, NGX_RTMP_PGAUTH_FAILED, NULL,
                                   &err);
    }

    ngx_rtmp_pgauth_conn_close(pc);

    ngx_rtmp_pgauth_pool_run(pool);
}


static void
ngx_rtmp_pgauth_conn_close(ngx_rtmp_pgauth_conn_t *pc)
{
    ngx_str_t                err;
    ngx_rtmp_pgauth_pool_t  *pool;

    pool = pc->pool;

    ngx_log_debug2(NGX_LOG_DEBUG_RTMP, pool->log, 0,
                   "pgauth: %sconnection #%ui closed",
                   pc->pool->pcf.name, pc->number);

    if (pc->gone) {
        /* a loop over what libpq read is on the stack: it stops */
        *pc->gone = 1;
        pc->gone = NULL;
    }

    if (pool->answering == pc) {
        pool->answering = NULL;
    }

    if (pc->req) {
        ngx_str_set(&err, "connection closed");
        ngx_rtmp_pgauth_req_finish(pc->req, NGX_RTMP_PGAUTH_FAILED, NULL,
                                   &err);
    }

    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
    }

    if (pc->state == NGX_RTMP_PGAUTH_CONNECTING
        || pc->state == NGX_RTMP_PGAUTH_SETUP)
    {
        pool->nconnecting--;
    }

    if (pc->c) {
        ngx_rtmp_pgauth_conn_release(pc);
    }

    if (pc->pgconn) {
        PQfinish(pc->pgconn);
    }

    ngx_queue_remove(&pc->queue);
    pool->nconns--;

    if (pc->state == NGX_RTMP_PGAUTH_IDLE) {
        pool->nidle--;
    }

    ngx_free(pc);

    ngx_rtmp_pgauth_pool_report(pool);
}


/* PostgreSQL's message on one line, without the trailing newline */

static void
ngx_rtmp_pgauth_error_text(ngx_str_t *err, u_char *buf, size_t size,
    const char *msg)
{
    u_char  *p, *last;

    p = buf;
    last = buf + size;

    while (msg && *msg && p < last) {
        *p++ = (*msg == '\n' || *msg == '\r' || *msg == '\t') ? ' ' : *msg;
        msg++;
    }

    while (p > buf && p[-1] == ' ') {
        p--;
    }

    err->data = buf;
    err->len = p - buf;
}


/* item i of a host, hostaddr or port list given one item per host */

static u_char *
ngx_rtmp_pgauth_kw_item(ngx_rtmp_pgauth_dsn_t *dsn, ngx_int_t kw,
    ngx_uint_t i, size_t *len)
{
    u_char  *list;

    list = (u_char *) dsn->values[kw];

    return ngx_rtmp_pgauth_list_item(list, ngx_strlen(list), dsn->nhosts,
                                     i, len);
}
