
/*
 * Copyright (C) ngx_rtmp_pgauth authors
 */


/*
 * Live control: the allowed sessions of this worker, and the one
 * connection per worker that LISTENs for what the database ends.
 *
 * The schema notifies "end <session id> <reason>" when a key is revoked,
 * deleted or expired, or a stream kicked or taken over; the worker holding
 * the session closes it.  Notifications are lost while the LISTEN
 * connection is down, so each time it is (re)established the worker
 * re-checks all its sessions at once (pgauth.check_sessions()), and can
 * re-check periodically.  The same connection registers the worker
 * (pgauth.worker_start()), ends the sessions of gone workers of its node,
 * and beats (pgauth.heartbeat()) so other nodes can tell a node that died.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_rtmp_pgauth_module.h"


#define NGX_RTMP_PGAUTH_WORKER_START                                        \
    "SELECT pgauth.worker_start($1, $2, $3)"
#define NGX_RTMP_PGAUTH_WORKER_GONE                                         \
    "SELECT pgauth.worker_gone($1, $2)"
#define NGX_RTMP_PGAUTH_HEARTBEAT                                           \
    "SELECT pgauth.heartbeat($1, $2, $3)"
#define NGX_RTMP_PGAUTH_CHECK                                               \
    "SELECT session_id, end_reason, valid_for"                              \
    " FROM pgauth.check_sessions($1::text[])"


/* ends of sessions this worker did not know when they came */
#define NGX_RTMP_PGAUTH_ENDED          64


typedef struct {
    u_char                          sid[NGX_RTMP_PGAUTH_SID_LEN];
    u_char                          reason[NGX_RTMP_PGAUTH_REASON_LEN];
} ngx_rtmp_pgauth_ended_t;


struct ngx_rtmp_pgauth_live_s {
    ngx_rtmp_pgauth_main_conf_t    *pmcf;
    ngx_rtmp_pgauth_pool_t         *pool;       /* the LISTEN connection */
    ngx_log_t                      *log;

    ngx_queue_t                     sessions;   /* allowed ones */
    ngx_uint_t                      nsessions;

    ngx_event_t                     heartbeat;
    ngx_event_t                     recheck;

    u_char                          pid[NGX_INT_T_LEN + 1];
    u_char                          beat[NGX_INT_T_LEN + 1];

    ngx_rtmp_pgauth_ended_t         ended[NGX_RTMP_PGAUTH_ENDED];
    ngx_uint_t                      nended;     /* the next one to reuse */
    ngx_msec_t                      ended_at;   /* the last one came */

    unsigned                        listening:1; /* pool is our own */
    unsigned                        registered:1;
    unsigned                        beating:1;  /* heartbeat in flight */
    unsigned                        checking:1; /* re-check in flight */
    unsigned                        again:1;    /* re-check once more */
};


static void ngx_rtmp_pgauth_live_ready(void *data);
static void ngx_rtmp_pgauth_live_notify(void *data, PGnotify *notify);
static ngx_rtmp_pgauth_ctx_t *ngx_rtmp_pgauth_live_find(
    ngx_rtmp_pgauth_live_t *live, u_char *sid, size_t len);
static ngx_int_t ngx_rtmp_pgauth_live_same(ngx_rtmp_pgauth_ctx_t *a,
    ngx_rtmp_pgauth_ctx_t *b);
static ngx_int_t ngx_rtmp_pgauth_live_submit(ngx_rtmp_pgauth_live_t *live,
    char *query, ngx_rtmp_pgauth_handler_pt handler, ngx_uint_t n, ...);
static void ngx_rtmp_pgauth_live_started(ngx_rtmp_pgauth_req_t *req,
    ngx_uint_t rc, PGresult *res, ngx_str_t *err);
static ngx_int_t ngx_rtmp_pgauth_live_gone(ngx_pid_t pid);
static void ngx_rtmp_pgauth_live_logged(ngx_rtmp_pgauth_req_t *req,
    ngx_uint_t rc, PGresult *res, ngx_str_t *err);
static void ngx_rtmp_pgauth_live_beat(ngx_event_t *ev);
static void ngx_rtmp_pgauth_live_beaten(ngx_rtmp_pgauth_req_t *req,
    ngx_uint_t rc, PGresult *res, ngx_str_t *err);
static void ngx_rtmp_pgauth_live_timer(ngx_event_t *ev);
static void ngx_rtmp_pgauth_live_check(ngx_rtmp_pgauth_live_t *live);
static void ngx_rtmp_pgauth_live_checked(ngx_rtmp_pgauth_req_t *req,
    ngx_uint_t rc, PGresult *res, ngx_str_t *err);


ngx_rtmp_pgauth_live_t *
ngx_rtmp_pgauth_live_create(ngx_cycle_t *cycle,
    ngx_rtmp_pgauth_main_conf_t *pmcf)
{
    u_char                       *p;
    size_t                        len;
    ngx_rtmp_pgauth_live_t       *live;
    ngx_rtmp_pgauth_pool_conf_t   pc;

    live = ngx_pcalloc(cycle->pool, sizeof(ngx_rtmp_pgauth_live_t));
    if (live == NULL) {
        return NULL;
    }

    live->pmcf = pmcf;
    live->log = cycle->log;

    ngx_queue_init(&live->sessions);

    ngx_sprintf(live->pid, "%P%Z", ngx_pid);
    ngx_sprintf(live->beat, "%M%Z", pmcf->heartbeat);

    live->heartbeat.handler = ngx_rtmp_pgauth_live_beat;
    live->heartbeat.data = live;
    live->heartbeat.log = cycle->log;
    live->heartbeat.cancelable = 1;

    live->recheck.handler = ngx_rtmp_pgauth_live_timer;
    live->recheck.data = live;
    live->recheck.log = cycle->log;
    live->recheck.cancelable = 1;

    /* the first heartbeat registers the worker when nothing else does */
    ngx_add_timer(&live->heartbeat, pmcf->channel.len ? pmcf->heartbeat : 1);

    if (pmcf->recheck) {
        ngx_add_timer(&live->recheck, pmcf->recheck);
    }

    if (pmcf->channel.len == 0) {
        /* no LISTEN: heartbeats and re-checks go through the pool */
        live->pool = pmcf->pool;
        return live;
    }

    /* SET statement_timeout = N; LISTEN "channel" */

    len = sizeof("SET statement_timeout = ; LISTEN \"\"") - 1
          + NGX_INT_T_LEN + pmcf->channel.len + 1;

    p = ngx_pnalloc(cycle->pool, len);
    if (p == NULL) {
        return NULL;
    }

    ngx_sprintf(p, "SET statement_timeout = %M; LISTEN \"%V\"%Z",
                pmcf->max_timeout, &pmcf->channel);

    ngx_memzero(&pc, sizeof(ngx_rtmp_pgauth_pool_conf_t));

    pc.name = "listen ";
    pc.size = 1;
    pc.queue_size = 16;
    pc.app_name = "nginx-rtmp-pgauth-listen";
    pc.setup = (char *) p;
    pc.notify = ngx_rtmp_pgauth_live_notify;
    pc.ready = ngx_rtmp_pgauth_live_ready;
    pc.data = live;
    pc.keep = 1;

    live->listening = 1;

    live->pool = ngx_rtmp_pgauth_pool_create(cycle, pmcf, &pc);
    if (live->pool == NULL) {
        return NULL;
    }

    return live;
}


void
ngx_rtmp_pgauth_live_destroy(ngx_rtmp_pgauth_live_t *live)
{
    if (live->heartbeat.timer_set) {
        ngx_del_timer(&live->heartbeat);
    }

    if (live->recheck.timer_set) {
        ngx_del_timer(&live->recheck);
    }

    if (live->listening) {
        ngx_rtmp_pgauth_pool_destroy(live->pool);
    }
}


void
ngx_rtmp_pgauth_live_add(ngx_rtmp_pgauth_live_t *live,
    ngx_rtmp_pgauth_ctx_t *ctx)
{
    if (ctx->linked) {
        return;
    }

    ngx_queue_insert_tail(&live->sessions, &ctx->queue);
    live->nsessions++;

    ctx->live = live;
    ctx->linked = 1;
}


void
ngx_rtmp_pgauth_live_remove(ngx_rtmp_pgauth_ctx_t *ctx)
{
    if (!ctx->linked) {
        return;
    }

    ngx_queue_remove(&ctx->queue);
    ctx->live->nsessions--;
    ctx->linked = 0;
}


/*
 * Another allowed session of this worker publishing the same name, kicked
 * already or not: until its close event has run, it holds the name in
 * nginx-rtmp's live module.  *newer is set when one of them has a later
 * session: with takeover, the database ended this one when it opened that
 * one, whichever of the two replies got here first.
 */

ngx_rtmp_pgauth_ctx_t *
ngx_rtmp_pgauth_live_find_name(ngx_rtmp_pgauth_live_t *live,
    ngx_rtmp_pgauth_ctx_t *ctx, ngx_uint_t *newer)
{
    ngx_queue_t            *q;
    ngx_rtmp_pgauth_ctx_t  *c, *found;

    found = NULL;
    *newer = 0;

    for (q = ngx_queue_head(&live->sessions);
         q != ngx_queue_sentinel(&live->sessions);
         q = ngx_queue_next(q))
    {
        c = ngx_queue_data(q, ngx_rtmp_pgauth_ctx_t, queue);

        if (!ngx_rtmp_pgauth_live_same(c, ctx)) {
            continue;
        }

        if (found == NULL) {
            found = c;
        }

        if (ngx_rtmp_pgauth_sid_newer(c->sid, ctx->sid)) {
            *newer = 1;
            break;
        }
    }

    return found;
}


/*
 * The reason the database ended this session with, when its notification
 * came before the reply that opened it (a reply and a notification come
 * on two connections, in no set order), or NULL.  Such a notification
 * came after the request was sent, at "since".
 */

u_char *
ngx_rtmp_pgauth_live_ended(ngx_rtmp_pgauth_live_t *live, u_char *sid,
    ngx_msec_t since)
{
    ngx_uint_t                i;
    ngx_rtmp_pgauth_ended_t  *e;

    if (sid[0] == '\0' || live->nended == 0
        || (ngx_msec_int_t) (live->ended_at - since) < 0)
    {
        return NULL;
    }

    for (i = 0; i < NGX_RTMP_PGAUTH_ENDED; i++) {
        e = &live->ended[i];

        if (ngx_strcmp(e->sid, sid) == 0) {
            e->sid[0] = '\0';
            return e->reason;
        }
    }

    return NULL;
}


/* another publish of the same stream: name and application */

static ngx_int_t
ngx_rtmp_pgauth_live_same(ngx_rtmp_pgauth_ctx_t *a, ngx_rtmp_pgauth_ctx_t *b)
{
    return a != b
           && ngx_strcmp(a->name, b->name) == 0
           && a->session->app.len == b->session->app.len
           && ngx_strncmp(a->session->app.data, b->session->app.data,
                          b->session->app.len) == 0;
}


static ngx_rtmp_pgauth_ctx_t *
ngx_rtmp_pgauth_live_find(ngx_rtmp_pgauth_live_t *live, u_char *sid,
    size_t len)
{
    ngx_queue_t            *q;
    ngx_rtmp_pgauth_ctx_t  *c;

    for (q = ngx_queue_head(&live->sessions);
         q != ngx_queue_sentinel(&live->sessions);
         q = ngx_queue_next(q))
    {
        c = ngx_queue_data(q, ngx_rtmp_pgauth_ctx_t, queue);

        if (len && ngx_strlen(c->sid) == len
            && ngx_strncmp(c->sid, sid, len) == 0)
        {
            return c;
        }
    }

    return NULL;
}


/*
 * The LISTEN connection is (again) up: notifications may have been missed.
 * Register, end the sessions of this node's gone workers, re-check ours.
 */

static void
ngx_rtmp_pgauth_live_ready(void *data)
{
    ngx_rtmp_pgauth_live_t  *live = data;

    ngx_queue_t            *q;
    ngx_rtmp_pgauth_ctx_t  *ctx;

    if (live->listening) {
        ngx_log_error(NGX_LOG_INFO, live->log, 0,
                      "pgauth: listening on channel \"%V\" as node \"%V\"",
                      &live->pmcf->channel, &live->pmcf->node);
    }

    live->registered = 1;

    /* sessions admitted from the cache while the database was away */

    for (q = ngx_queue_head(&live->sessions);
         q != ngx_queue_sentinel(&live->sessions);
         q = ngx_queue_next(q))
    {
        ctx = ngx_queue_data(q, ngx_rtmp_pgauth_ctx_t, queue);
        ngx_rtmp_pgauth_confirm(ctx);
    }

    (void) ngx_rtmp_pgauth_live_submit(live, NGX_RTMP_PGAUTH_WORKER_START,
                                       ngx_rtmp_pgauth_live_started, 3,
                                       live->pmcf->node.data, live->pid,
                                       live->beat);

    ngx_rtmp_pgauth_live_check(live);
}


/*
 * Payloads: "end <session id> <reason>", "recheck".  Anything else is
 * ignored: the channel may carry other traffic.
 */

static void
ngx_rtmp_pgauth_live_notify(void *data, PGnotify *notify)
{
    ngx_rtmp_pgauth_live_t  *live = data;

    u_char                   *p, buf[NGX_RTMP_PGAUTH_REASON_LEN];
    u_char                    digest[NGX_RTMP_PGAUTH_DIGEST_LEN];
    ngx_str_t                 sid, reason;
    ngx_rtmp_pgauth_ctx_t    *ctx;
    ngx_rtmp_pgauth_ended_t  *e;

    p = (u_char *) notify->extra;

    switch (ngx_rtmp_pgauth_parse_notify(p, ngx_strlen(p), &sid, &reason,
                                         digest))
    {
    case NGX_RTMP_PGAUTH_NOTIFY_RECHECK:
        ngx_rtmp_pgauth_live_check(live);
        return;

    case NGX_RTMP_PGAUTH_NOTIFY_KEY:
        if (live->pmcf->caches.nelts) {
            ngx_rtmp_pgauth_cache_forget(&live->pmcf->caches, digest);
        }

        return;

    case NGX_RTMP_PGAUTH_NOTIFY_END:
        break;

    default:
        return;
    }

    ctx = ngx_rtmp_pgauth_live_find(live, sid.data, sid.len);

    if (ctx == NULL) {
        /*
         * Another worker's, or one of ours whose reply has not been
         * handled yet: kept for ngx_rtmp_pgauth_live_ended(), in place of
         * the oldest.  Session ids are not reused.
         */

        e = &live->ended[live->nended++ % NGX_RTMP_PGAUTH_ENDED];

        *ngx_cpymem(e->sid, sid.data, sid.len) = '\0';
        *ngx_cpymem(e->reason, reason.data, reason.len) = '\0';

        live->ended_at = ngx_current_msec;

        return;
    }

    *ngx_cpymem(buf, reason.data, reason.len) = '\0';

    ngx_rtmp_pgauth_kick(ctx, (char *) buf);
}


/*
 * A request on the LISTEN connection with n text parameters (u_char *,
 * NUL-terminated), copied into the request.
 */

static ngx_int_t
ngx_rtmp_pgauth_live_submit(ngx_rtmp_pgauth_live_t *live, char *query,
    ngx_rtmp_pgauth_handler_pt handler, ngx_uint_t n, ...)
{
    u_char                 *p, *v[NGX_RTMP_PGAUTH_NPARAMS];
    size_t                  size, len[NGX_RTMP_PGAUTH_NPARAMS];
    va_list                 args;
    ngx_uint_t              i;
    ngx_rtmp_pgauth_req_t  *req;

    va_start(args, n);

    size = sizeof(ngx_str_t);

    for (i = 0; i < n; i++) {
        v[i] = va_arg(args, u_char *);
        len[i] = ngx_strlen(v[i]) + 1;
        size += len[i];
    }

    va_end(args);

    req = ngx_rtmp_pgauth_req_create(live->pool, size);
    if (req == NULL) {
        return NGX_ERROR;
    }

    /* the query text as an ngx_str_t of its own, in the request */

    req->query = (ngx_str_t *) (req + 1);
    req->query->data = (u_char *) query;
    req->query->len = ngx_strlen(query);

    p = (u_char *) (req->query + 1);

    for (i = 0; i < n; i++) {
        /* types left to the server: the functions say what they take */
        req->values[i] = (char *) p;
        p = ngx_cpymem(p, v[i], len[i]);
    }

    req->nparams = n;
    req->handler = handler;
    req->data = live;

    if (ngx_rtmp_pgauth_req_submit(req, live->pmcf->max_timeout) != NGX_OK) {
        ngx_rtmp_pgauth_req_free(req);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the other workers of this node the database knows: end the gone ones */

static void
ngx_rtmp_pgauth_live_started(ngx_rtmp_pgauth_req_t *req, ngx_uint_t rc,
    PGresult *res, ngx_str_t *err)
{
    ngx_rtmp_pgauth_live_t  *live = req->data;

    int        i, n;
    ngx_pid_t  pid;

    if (rc != NGX_RTMP_PGAUTH_RESULT) {
        ngx_log_error(NGX_LOG_ERR, live->log, 0,
                      "pgauth: registering the worker failed: %V", err);
        return;
    }

    n = PQntuples(res);

    for (i = 0; i < n; i++) {
        pid = ngx_atoi((u_char *) PQgetvalue(res, i, 0),
                       PQgetlength(res, i, 0));

        if (pid <= 0 || pid == ngx_pid || !ngx_rtmp_pgauth_live_gone(pid)) {
            continue;
        }

        ngx_log_error(NGX_LOG_NOTICE, live->log, 0,
                      "pgauth: ending the sessions of gone worker %P "
                      "of node \"%V\"", pid, &live->pmcf->node);

        (void) ngx_rtmp_pgauth_live_submit(live, NGX_RTMP_PGAUTH_WORKER_GONE,
                                           ngx_rtmp_pgauth_live_logged, 2,
                                           live->pmcf->node.data,
                                           PQgetvalue(res, i, 0));
    }
}


/*
 * No nginx process of that pid on this host: none at all, a zombie (a
 * killed worker whose parent has not reaped it), or another program that
 * got the pid.
 */

static ngx_int_t
ngx_rtmp_pgauth_live_gone(ngx_pid_t pid)
{
    u_char    *p, *last, path[64], stat[256];
    ssize_t    n;
    ngx_fd_t   fd;

    if (kill(pid, 0) == -1 && ngx_errno == NGX_ESRCH) {
        return 1;
    }

    ngx_sprintf(path, "/proc/%P/stat%Z", pid);

    fd = ngx_open_file(path, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        /* no /proc: trust kill() */
        return 0;
    }

    n = read(fd, stat, sizeof(stat) - 1);
    ngx_close_file(fd);

    if (n <= 0) {
        return 1;
    }

    /* "pid (comm) state ..." */

    last = stat + n;
    p = ngx_strlchr(stat, last, '(');

    if (p == NULL || last - p < 10 || ngx_strncmp(p, "(nginx) ", 8) != 0) {
        return 1;
    }

    return p[8] == 'Z' || p[8] == 'X';
}


static void
ngx_rtmp_pgauth_live_logged(ngx_rtmp_pgauth_req_t *req, ngx_uint_t rc,
    PGresult *res, ngx_str_t *err)
{
    if (rc != NGX_RTMP_PGAUTH_RESULT) {
        ngx_log_error(NGX_LOG_ERR, req->log, 0,
                      "pgauth: \"%V\" failed: %V", req->query, err);
    }
}


static void
ngx_rtmp_pgauth_live_beat(ngx_event_t *ev)
{
    ngx_rtmp_pgauth_live_t  *live = ev->data;

    ngx_queue_t            *q;
    ngx_rtmp_pgauth_ctx_t  *ctx;

    if (ngx_exiting || ngx_terminate) {
        return;
    }

    ngx_add_timer(&live->heartbeat, live->pmcf->heartbeat);

    if (!live->registered) {
        ngx_rtmp_pgauth_live_ready(live);
        return;
    }

    /* sessions live from the cache that could not be confirmed yet */

    for (q = ngx_queue_head(&live->sessions);
         q != ngx_queue_sentinel(&live->sessions);
         q = ngx_queue_next(q))
    {
        ctx = ngx_queue_data(q, ngx_rtmp_pgauth_ctx_t, queue);
        ngx_rtmp_pgauth_confirm(ctx);
    }

    if (live->beating) {
        return;
    }

    if (ngx_rtmp_pgauth_live_submit(live, NGX_RTMP_PGAUTH_HEARTBEAT,
                                    ngx_rtmp_pgauth_live_beaten, 3,
                                    live->pmcf->node.data, live->pid,
                                    live->beat)
        == NGX_OK)
    {
        live->beating = 1;
    }
}


static void
ngx_rtmp_pgauth_live_beaten(ngx_rtmp_pgauth_req_t *req, ngx_uint_t rc,
    PGresult *res, ngx_str_t *err)
{
    ngx_rtmp_pgauth_live_t  *live = req->data;

    live->beating = 0;

    if (rc != NGX_RTMP_PGAUTH_RESULT) {
        ngx_log_error(NGX_LOG_WARN, live->log, 0,
                      "pgauth: heartbeat failed: %V", err);
    }
}


static void
ngx_rtmp_pgauth_live_timer(ngx_event_t *ev)
{
    ngx_rtmp_pgauth_live_t  *live = ev->data;

    if (ngx_exiting || ngx_terminate) {
        return;
    }

    ngx_add_timer(&live->recheck, live->pmcf->recheck);

    ngx_rtmp_pgauth_live_check(live);
}


/* asks the database about every live session of this worker at once */

static void
ngx_rtmp_pgauth_live_check(ngx_rtmp_pgauth_live_t *live)
{
    u_char                 *p, *s;
    size_t                  len;
    ngx_queue_t            *q;
    ngx_rtmp_pgauth_ctx_t  *ctx;

    if (live->nsessions == 0) {
        return;
    }

    if (live->checking) {
        live->again = 1;
        return;
    }

    /*
     * a text[] literal: {"id","id",...}, of the sessions the database
     * knows (one live from the cache has no id until it is confirmed)
     */

    len = 3;

    for (q = ngx_queue_head(&live->sessions);
         q != ngx_queue_sentinel(&live->sessions);
         q = ngx_queue_next(q))
    {
        ctx = ngx_queue_data(q, ngx_rtmp_pgauth_ctx_t, queue);
        len += 2 * ngx_strlen(ctx->sid) + 4;
    }

    p = ngx_alloc(len, live->log);
    if (p == NULL) {
        return;
    }

    s = p;

    for (q = ngx_queue_head(&live->sessions);
         q != ngx_queue_sentinel(&live->sessions);
         q = ngx_queue_next(q))
    {
        ctx = ngx_queue_data(q, ngx_rtmp_pgauth_ctx_t, queue);

        if (ctx->sid[0]) {
            s = ngx_rtmp_pgauth_array_add(s, ctx->sid, ngx_strlen(ctx->sid),
                                          s == p);
        }
    }

    if (s == p) {
        ngx_free(p);
        return;
    }

    ngx_rtmp_pgauth_array_end(s, 0);

    if (ngx_rtmp_pgauth_live_submit(live, NGX_RTMP_PGAUTH_CHECK,
                                    ngx_rtmp_pgauth_live_checked, 1, p)
        == NGX_OK)
    {
        live->checking = 1;
    }

    ngx_free(p);
}


static void
ngx_rtmp_pgauth_live_checked(ngx_rtmp_pgauth_req_t *req, ngx_uint_t rc,
    PGresult *res, ngx_str_t *err)
{
    ngx_rtmp_pgauth_live_t  *live = req->data;

    int                     i, n;
    u_char                 *sid;
    ngx_msec_t              ms;
    ngx_queue_t            *q, *next;
    ngx_rtmp_pgauth_ctx_t  *ctx;

    live->checking = 0;

    if (rc != NGX_RTMP_PGAUTH_RESULT) {

        if (live->pmcf->recheck_failure == NGX_RTMP_PGAUTH_RECHECK_KEEP) {
            ngx_log_error(NGX_LOG_WARN, live->log, 0,
                          "pgauth: re-check of %ui live sessions failed, "
                          "they go on: %V", live->nsessions, err);
            return;
        }

        ngx_log_error(NGX_LOG_ERR, live->log, 0,
                      "pgauth: re-check of %ui live sessions failed, "
                      "ending them: %V", live->nsessions, err);

        for (q = ngx_queue_head(&live->sessions);
             q != ngx_queue_sentinel(&live->sessions);
             q = next)
        {
            next = ngx_queue_next(q);
            ctx = ngx_queue_data(q, ngx_rtmp_pgauth_ctx_t, queue);
            ngx_rtmp_pgauth_kick(ctx, "unverified");
        }

        return;
    }

    n = PQntuples(res);

    for (i = 0; i < n && PQnfields(res) >= 3; i++) {

        sid = (u_char *) PQgetvalue(res, i, 0);

        ctx = ngx_rtmp_pgauth_live_find(live, sid, PQgetlength(res, i, 0));
        if (ctx == NULL) {
            continue;
        }

        if (!PQgetisnull(res, i, 1)) {
            ngx_rtmp_pgauth_kick(ctx, PQgetvalue(res, i, 1));
            continue;
        }

        if (!PQgetisnull(res, i, 2)
            && ngx_rtmp_pgauth_parse_seconds((u_char *) PQgetvalue(res, i, 2),
                                             PQgetlength(res, i, 2), &ms)
               == NGX_OK)
        {
            ngx_rtmp_pgauth_expire_in(ctx, ms);
        }
    }

    if (live->again) {
        live->again = 0;
        ngx_rtmp_pgauth_live_check(live);
    }
}
