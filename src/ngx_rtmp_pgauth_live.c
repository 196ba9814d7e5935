
/*
 * Copyright (C) ngx_rtmp_pgauth authors
 */


/*
 * Live control: the allowed sessions of this worker, their life once
 * allowed (kicked, expired, ended, the end recorded), and the one
 * connection per worker that LISTENs for what the database ends.
 *
 * The schema notifies "end <session id> <reason>" when a key is revoked,
 * deleted or expired, or a stream kicked or taken over.  Any database
 * login may NOTIFY, so a notification is only a hint: the sessions it
 * names are checked with the database (pgauth.check_sessions(), one query
 * for all of them, one at a time; a few at once, then one every
 * NGX_RTMP_PGAUTH_CHECK_GAP ms), and only the answer to that query ends
 * one.  Whoever sends them, a notification costs a lookup by session id.
 *
 * Notifications are lost while the LISTEN connection is down, so each
 * time it is (re)established every session is checked, and can be
 * periodically.  The worker registers (pgauth.worker_register()), ends the
 * sessions of gone workers of its node, and beats (pgauth.heartbeat()) so
 * other nodes can tell a node that died; all of that goes through the
 * worker's pool, whatever the LISTEN connection does.  A worker that is
 * shutting down (reload, graceful quit) goes on beating and listening for
 * as long as it holds a session.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_rtmp_pgauth_module.h"


#define NGX_RTMP_PGAUTH_REGISTER                                            \
    "SELECT other_pid, same_host"                                           \
    " FROM pgauth.worker_register($1, $2, $3, $4)"
#define NGX_RTMP_PGAUTH_WORKER_GONE                                         \
    "SELECT pgauth.worker_gone($1, $2)"
#define NGX_RTMP_PGAUTH_HEARTBEAT                                           \
    "SELECT pgauth.heartbeat($1, $2, $3, $4)"
#define NGX_RTMP_PGAUTH_CHECK                                               \
    "SELECT session_id, end_reason, valid_for"                              \
    " FROM pgauth.check_sessions($1::text[])"
#define NGX_RTMP_PGAUTH_PLAY_DONE                                           \
    "SELECT pgauth.viewer_done($1, $2)"
#define NGX_RTMP_PGAUTH_CHECK_VIEWERS                                       \
    "SELECT session_id, end_reason"                                         \
    " FROM pgauth.check_viewer_sessions($1::text[])"

#define NGX_RTMP_PGAUTH_DONE_MANY                                           \
    "SELECT pgauth.publish_done_many($1::bigint[], $2::text[])"

/* a notification the LISTEN connection must hear: does LISTEN work? */
#define NGX_RTMP_PGAUTH_PROBE                                               \
    "SELECT pg_notify($1, $2)"

/* the payload: "probe " and the token, 16 hex digits */
#define NGX_RTMP_PGAUTH_PROBE_PREFIX   (sizeof("probe ") - 1)
#define NGX_RTMP_PGAUTH_PROBE_LEN      (NGX_RTMP_PGAUTH_PROBE_PREFIX + 16)

/* the ends of sessions recorded in one transaction at most */
#define NGX_RTMP_PGAUTH_END_BATCH      256

/* ends on their way known by key: those waiting and two batches' */
#define NGX_RTMP_PGAUTH_ENDING         (3 * NGX_RTMP_PGAUTH_END_BATCH)

/* viewer sessions of this node named by notifications, checked at once */
#define NGX_RTMP_PGAUTH_VIEWERS        256


/*
 * The longest timer set for a session or a play, about 11 days (nginx's
 * hold 24 where they have 32 bits): a longer authorization sets the rest
 * when it runs out.  Builds for tests set it short.
 */
#ifndef NGX_RTMP_PGAUTH_TIMER_MAX
#define NGX_RTMP_PGAUTH_TIMER_MAX      1000000000
#endif


/* ends of sessions this worker did not know when they came */
#define NGX_RTMP_PGAUTH_ENDED          64

/* checks of hinted sessions: a burst at once, then one every gap */
#define NGX_RTMP_PGAUTH_CHECK_BURST    5
#define NGX_RTMP_PGAUTH_CHECK_GAP      100

/* another nginx under this node name is logged at most this often */
#define NGX_RTMP_PGAUTH_SHARED_LOG     60000


typedef struct {
    u_char                          sid[NGX_RTMP_PGAUTH_SID_LEN];
} ngx_rtmp_pgauth_ended_t;


struct ngx_rtmp_pgauth_live_s {
    ngx_rtmp_pgauth_main_conf_t    *pmcf;
    ngx_rtmp_pgauth_pool_t         *listen;     /* LISTEN, or NULL */
    ngx_log_t                      *log;

    ngx_queue_t                     sessions;   /* allowed ones */
    ngx_uint_t                      nsessions;

    /* every session of the worker the database gave an id, by that id */
    ngx_rbtree_t                    ids;
    ngx_rbtree_node_t               sentinel;

    ngx_queue_t                     suspects;   /* to check */
    ngx_queue_t                     checked;    /* in the check in flight */

    ngx_event_t                     heartbeat;
    ngx_event_t                     recheck;
    ngx_event_t                     check;
    ngx_event_t                     probe;      /* its notification due */
    ngx_uint_t                      tokens;     /* checks sent at once */
    ngx_msec_t                      refilled;   /* tokens counted at */
    ngx_msec_t                      shared_at;  /* logged */

    u_char                          pid[NGX_INT_T_LEN + 1];
    u_char                          beat[NGX_INT_T_LEN + 1];
    u_char                          token[NGX_RTMP_PGAUTH_PROBE_LEN + 1];

    ngx_rtmp_pgauth_ended_t         ended[NGX_RTMP_PGAUTH_ENDED];
    ngx_uint_t                      nended;     /* ever kept */

    /* pgauth_play's sessions of the worker, by viewer session id */
    ngx_rbtree_t                    plays;
    ngx_rbtree_node_t               plays_sentinel;

    /* pgauth_viewer's sessions, in the http block's zone, or NULL */
    ngx_shm_zone_t                 *viewer_zone;
    ngx_rtmp_pgauth_ended_t         viewers[NGX_RTMP_PGAUTH_VIEWERS];
    ngx_uint_t                      nviewers;   /* to check */

    unsigned                        registered:1;
    unsigned                        beating:1;  /* heartbeat in flight */
    unsigned                        checking:1; /* check in flight */
    unsigned                        all:1;      /* check every session */
    unsigned                        deaf:1;     /* LISTEN hears nothing */
};


/* what the reasons a publish ends with mean, by ngx_rtmp_pgauth_end_e */

ngx_rtmp_pgauth_end_t  ngx_rtmp_pgauth_ends[] = {
    { ngx_null_string, NULL },
    { ngx_string("revoked"), "Stream key revoked" },
    { ngx_string("deleted"), "Stream key revoked" },
    { ngx_string("expired"), "Stream key expired" },
    { ngx_string("time limit"), "Session time limit reached" },
    { ngx_string("takeover"), "Stream taken over by another publisher" },
    { ngx_string("kicked"), "Stream stopped by the operator" },
    { ngx_string("unverified"), NGX_RTMP_PGAUTH_FAILED_DESC },
    { ngx_string("already live"), NGX_RTMP_PGAUTH_BUSY_DESC },
    { ngx_null_string, "Stream ended by the server" },
    { ngx_string("refused"), NULL },
    { ngx_string("unpublish"), NULL },
    { ngx_string("disconnect"), NULL },
    { ngx_string("client gone"), NULL },
    { ngx_string("stopped"), NULL }
};


/*
 * The ends of sessions the default pgauth_done_query records, in batches
 * (pgauth.publish_done_many()): one batch in flight at a time, and the
 * ends that come meanwhile go together in the next.  At a few ends a
 * second each goes alone, at once; under load many share one transaction
 * and its WAL flush.  One per worker: a worker has one pool.
 *
 * Until its batch is answered an end is also kept with the key's digest:
 * the next decision for the key names it (ngx_rtmp_pgauth_live_ending()),
 * so that a publisher back before its end is committed is not taken for
 * another one live.  So is a session live on its lookup whose client left
 * before the record's answer, under the id the lookup drew, from then
 * until that answer (its end then follows as any other), pgauth_timeout
 * at most: ngx_rtmp_pgauth_live_ending_hold().
 */

typedef struct {
    u_char                          sid[NGX_RTMP_PGAUTH_SID_LEN];
    u_char                          digest[NGX_RTMP_PGAUTH_DIGEST_LEN];
    ngx_uint_t                      batch;      /* 0: not sent yet */
    ngx_msec_t                      until;      /* held: kept until */
    unsigned                        held:1;     /* its record on its way */
} ngx_rtmp_pgauth_ending_t;


typedef struct {
    ngx_rtmp_pgauth_pool_t         *pool;
    ngx_str_t                      *done_query; /* without batches */
    ngx_msec_t                      timeout;
    ngx_uint_t                      n;
    ngx_uint_t                      sending;    /* batches in flight */
    ngx_uint_t                      missing;    /* a schema without them */
    ngx_uint_t                      batch;      /* the last one sent */
    ngx_uint_t                      nending;
    u_char                          sid[NGX_RTMP_PGAUTH_END_BATCH]
                                       [NGX_RTMP_PGAUTH_SID_LEN];
    u_char                          reason[NGX_RTMP_PGAUTH_END_BATCH]
                                          [NGX_RTMP_PGAUTH_REASON_LEN];
    ngx_rtmp_pgauth_ending_t        ending[NGX_RTMP_PGAUTH_ENDING];
} ngx_rtmp_pgauth_batch_t;


static ngx_rtmp_pgauth_batch_t  ngx_rtmp_pgauth_batch;

static ngx_str_t  ngx_rtmp_pgauth_live_done_many_query =
    ngx_string(NGX_RTMP_PGAUTH_DONE_MANY);

static ngx_str_t  ngx_rtmp_pgauth_live_play_done_query =
    ngx_string(NGX_RTMP_PGAUTH_PLAY_DONE);


static void ngx_rtmp_pgauth_live_ready(void *data);
static void ngx_rtmp_pgauth_live_listening(void *data);
static void ngx_rtmp_pgauth_live_probe(ngx_rtmp_pgauth_live_t *live);
static void ngx_rtmp_pgauth_live_probed(ngx_rtmp_pgauth_req_t *req,
    ngx_uint_t rc, PGresult *res, ngx_str_t *err);
static void ngx_rtmp_pgauth_live_unheard(ngx_event_t *ev);
static void ngx_rtmp_pgauth_live_heard(ngx_rtmp_pgauth_live_t *live,
    ngx_str_t *token);
static void ngx_rtmp_pgauth_live_notify(void *data, PGnotify *notify);
static ngx_rtmp_pgauth_ctx_t *ngx_rtmp_pgauth_live_find(
    ngx_rtmp_pgauth_live_t *live, u_char *sid, size_t len);
static ngx_int_t ngx_rtmp_pgauth_live_same(ngx_rtmp_pgauth_ctx_t *a,
    ngx_rtmp_pgauth_ctx_t *b);
static void ngx_rtmp_pgauth_live_hint(ngx_rtmp_pgauth_live_t *live,
    ngx_rtmp_pgauth_ctx_t *ctx);
static void ngx_rtmp_pgauth_live_unhint(ngx_rtmp_pgauth_ctx_t *ctx);
static void ngx_rtmp_pgauth_live_schedule(ngx_rtmp_pgauth_live_t *live);
static ngx_msec_t ngx_rtmp_pgauth_live_wait(ngx_rtmp_pgauth_live_t *live);
static void ngx_rtmp_pgauth_live_viewer_hint(ngx_rtmp_pgauth_live_t *live,
    ngx_str_t *sid);
static ngx_rtmp_pgauth_ctx_t *ngx_rtmp_pgauth_live_lookup(ngx_rbtree_t *tree,
    u_char *sid, size_t len, size_t offset);
static ngx_rtmp_pgauth_ctx_t *ngx_rtmp_pgauth_live_find_play(
    ngx_rtmp_pgauth_live_t *live, u_char *sid, size_t len);
static void ngx_rtmp_pgauth_live_play_kick(ngx_rtmp_pgauth_ctx_t *ctx,
    ngx_rtmp_pgauth_end_e end);
static void ngx_rtmp_pgauth_live_arm(ngx_event_t *ev, ngx_msec_t *rest,
    ngx_msec_t ms);
static void ngx_rtmp_pgauth_live_play_expired(ngx_event_t *ev);
static void ngx_rtmp_pgauth_live_hint_plays(ngx_rtmp_pgauth_live_t *live);
static ngx_int_t ngx_rtmp_pgauth_live_check_viewers(
    ngx_rtmp_pgauth_live_t *live);
static void ngx_rtmp_pgauth_live_viewers_checked(ngx_rtmp_pgauth_req_t *req,
    ngx_uint_t rc, PGresult *res, ngx_str_t *err);
static ngx_int_t ngx_rtmp_pgauth_live_submit(ngx_rtmp_pgauth_live_t *live,
    char *query, ngx_rtmp_pgauth_handler_pt handler, ngx_uint_t n, ...);
static void ngx_rtmp_pgauth_live_registered(ngx_rtmp_pgauth_req_t *req,
    ngx_uint_t rc, PGresult *res, ngx_str_t *err);
static void ngx_rtmp_pgauth_live_shared(ngx_rtmp_pgauth_live_t *live,
    char *pid);
static ngx_int_t ngx_rtmp_pgauth_live_gone(ngx_pid_t pid);
static void ngx_rtmp_pgauth_live_logged(ngx_rtmp_pgauth_req_t *req,
    ngx_uint_t rc, PGresult *res, ngx_str_t *err);
static ngx_int_t ngx_rtmp_pgauth_live_holding(void *data);
static void ngx_rtmp_pgauth_live_beat(ngx_event_t *ev);
static void ngx_rtmp_pgauth_live_beaten(ngx_rtmp_pgauth_req_t *req,
    ngx_uint_t rc, PGresult *res, ngx_str_t *err);
static void ngx_rtmp_pgauth_live_timer(ngx_event_t *ev);
static void ngx_rtmp_pgauth_live_check_handler(ngx_event_t *ev);
static void ngx_rtmp_pgauth_live_check(ngx_rtmp_pgauth_live_t *live);
static void ngx_rtmp_pgauth_live_checked(ngx_rtmp_pgauth_req_t *req,
    ngx_uint_t rc, PGresult *res, ngx_str_t *err);
static ngx_rtmp_pgauth_end_e ngx_rtmp_pgauth_live_end_reason(
    ngx_rtmp_pgauth_ctx_t *ctx, u_char *text, size_t len);
static void ngx_rtmp_pgauth_live_end_text(ngx_rtmp_pgauth_ctx_t *ctx,
    ngx_rtmp_pgauth_end_e end, ngx_str_t *text);
static void ngx_rtmp_pgauth_live_expired(ngx_event_t *ev);
static void ngx_rtmp_pgauth_live_record_one(ngx_rtmp_pgauth_pool_t *pool,
    ngx_str_t *query, ngx_msec_t timeout, u_char *sid, size_t len,
    ngx_str_t *reason);
static void ngx_rtmp_pgauth_live_end_later(ngx_rtmp_pgauth_pool_t *pool,
    ngx_rtmp_pgauth_app_conf_t *pacf, u_char *sid, size_t len,
    u_char *digest, ngx_str_t *reason);
static void ngx_rtmp_pgauth_live_send_ends(void);
static void ngx_rtmp_pgauth_live_ended(ngx_uint_t batch);
static void ngx_rtmp_pgauth_live_ending_expire(void);
static void ngx_rtmp_pgauth_live_ends_recorded(ngx_rtmp_pgauth_req_t *req,
    ngx_uint_t rc, PGresult *res, ngx_str_t *err);
static void ngx_rtmp_pgauth_live_recorded(ngx_rtmp_pgauth_req_t *req,
    ngx_uint_t rc, PGresult *res, ngx_str_t *err);
static void ngx_rtmp_pgauth_live_unchecked(ngx_rtmp_pgauth_live_t *live,
    ngx_str_t *err);


ngx_rtmp_pgauth_live_t *
ngx_rtmp_pgauth_live_create(ngx_cycle_t *cycle,
    ngx_rtmp_pgauth_main_conf_t *pmcf)
{
    u_char                       *p;
    size_t                        len;
    ngx_rtmp_pgauth_live_t       *live;
    ngx_rtmp_pgauth_pool_conf_t   pcf;

    live = ngx_pcalloc(cycle->pool, sizeof(ngx_rtmp_pgauth_live_t));
    if (live == NULL) {
        return NULL;
    }

    live->pmcf = pmcf;
    live->log = cycle->log;
    live->viewer_zone = ngx_http_pgauth_viewer_zone_of_cycle(cycle);

    ngx_queue_init(&live->sessions);
    ngx_queue_init(&live->suspects);
    ngx_queue_init(&live->checked);

    ngx_rbtree_init(&live->ids, &live->sentinel,
                    ngx_str_rbtree_insert_value);

    ngx_rbtree_init(&live->plays, &live->plays_sentinel,
                    ngx_str_rbtree_insert_value);

    live->tokens = NGX_RTMP_PGAUTH_CHECK_BURST;
    live->refilled = ngx_current_msec;

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

    live->check.handler = ngx_rtmp_pgauth_live_check_handler;
    live->check.data = live;
    live->check.log = cycle->log;
    live->check.cancelable = 1;

    live->probe.handler = ngx_rtmp_pgauth_live_unheard;
    live->probe.data = live;
    live->probe.log = cycle->log;
    live->probe.cancelable = 1;

    /* the first heartbeat registers the worker when nothing else does */
    ngx_add_timer(&live->heartbeat, pmcf->channel.len ? pmcf->heartbeat : 1);

    if (pmcf->recheck) {
        ngx_add_timer(&live->recheck, pmcf->recheck);
    }

    if (pmcf->channel.len == 0) {
        /* no LISTEN: re-checks are periodic only */
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

    ngx_memzero(&pcf, sizeof(ngx_rtmp_pgauth_pool_conf_t));

    pcf.name = "listen ";
    pcf.dsn = pmcf->listen_dsn.text.len ? &pmcf->listen_dsn : &pmcf->dsn;
    pcf.size = 1;
    pcf.queue_size = 1;
    pcf.app_name = "nginx-rtmp-pgauth-listen";
    pcf.setup = (char *) p;
    pcf.notify = ngx_rtmp_pgauth_live_notify;
    pcf.ready = ngx_rtmp_pgauth_live_listening;
    pcf.keep = ngx_rtmp_pgauth_live_holding;
    pcf.data = live;

    live->listen = ngx_rtmp_pgauth_pool_create(cycle, pmcf, &pcf);
    if (live->listen == NULL) {
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

    if (live->check.timer_set) {
        ngx_del_timer(&live->check);
    }

    if (live->probe.timer_set) {
        ngx_del_timer(&live->probe);
    }

    if (live->listen) {
        ngx_rtmp_pgauth_pool_destroy(live->listen);
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

    /* a worker shutting down stops beating when it holds nothing */

    if (!live->heartbeat.timer_set) {
        ngx_add_timer(&live->heartbeat, live->pmcf->heartbeat);
    }

    if (live->pmcf->recheck && !live->recheck.timer_set) {
        ngx_add_timer(&live->recheck, live->pmcf->recheck);
    }

    if (live->listen && live->nsessions == 1) {
        /* and listens again, if it had let the connection go */
        ngx_rtmp_pgauth_pool_wake(live->listen);
    }
}


/* the database gave the session an id: notifications can name it */

void
ngx_rtmp_pgauth_live_index(ngx_rtmp_pgauth_live_t *live,
    ngx_rtmp_pgauth_ctx_t *ctx)
{
    if (ctx->indexed || ctx->sid[0] == '\0') {
        return;
    }

    ctx->id.str.data = ctx->sid;
    ctx->id.str.len = ngx_strlen(ctx->sid);
    ctx->id.node.key = ngx_crc32_short(ctx->id.str.data, ctx->id.str.len);

    ngx_rbtree_insert(&live->ids, &ctx->id.node);

    ctx->live = live;
    ctx->indexed = 1;
}


void
ngx_rtmp_pgauth_live_remove(ngx_rtmp_pgauth_ctx_t *ctx)
{
    ngx_rtmp_pgauth_live_unhint(ctx);

    ctx->verifying = 0;

    if (ctx->indexed) {
        ngx_rbtree_delete(&ctx->live->ids, &ctx->id.node);
        ctx->indexed = 0;
    }

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


/* how many ends of unknown sessions have come so far: see live_hinted() */

ngx_uint_t
ngx_rtmp_pgauth_live_mark(ngx_rtmp_pgauth_live_t *live)
{
    return live->nended;
}


/*
 * Did a notification say the session ended before the reply that opened
 * it was handled?  A reply and a notification come on two connections, in
 * no set order.  Such ends are kept in a ring; "mark" is where the ring
 * stood when the request was sent.  Also yes when more ends came since
 * than the ring holds: one may have been lost.  Either way the database
 * is asked before the session goes on.
 */

ngx_int_t
ngx_rtmp_pgauth_live_hinted(ngx_rtmp_pgauth_live_t *live, u_char *sid,
    ngx_uint_t mark)
{
    ngx_uint_t                i;
    ngx_rtmp_pgauth_ended_t  *e;

    if (sid[0] == '\0' || live->nended == mark) {
        return 0;
    }

    if (live->nended - mark > NGX_RTMP_PGAUTH_ENDED) {
        return 1;
    }

    for (i = 0; i < NGX_RTMP_PGAUTH_ENDED; i++) {
        e = &live->ended[i];

        if (ngx_strcmp(e->sid, sid) == 0) {
            e->sid[0] = '\0';
            return 1;
        }
    }

    return 0;
}


/*
 * A session that must not go live before the database confirms it is
 * open; ctx->verified() is called with the answer.
 */

void
ngx_rtmp_pgauth_live_verify(ngx_rtmp_pgauth_live_t *live,
    ngx_rtmp_pgauth_ctx_t *ctx)
{
    ctx->verifying = 1;

    ngx_rtmp_pgauth_live_index(live, ctx);
    ngx_rtmp_pgauth_live_hint(live, ctx);
    ngx_rtmp_pgauth_live_schedule(live);
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
    return ngx_rtmp_pgauth_live_lookup(&live->ids, sid, len,
                                       offsetof(ngx_rtmp_pgauth_ctx_t, id));
}


/*
 * The session whose node at offset in its state is id sid in one of the
 * trees by session id, or NULL
 */

static ngx_rtmp_pgauth_ctx_t *
ngx_rtmp_pgauth_live_lookup(ngx_rbtree_t *tree, u_char *sid, size_t len,
    size_t offset)
{
    ngx_str_t        id;
    ngx_str_node_t  *sn;

    if (len == 0) {
        return NULL;
    }

    id.data = sid;
    id.len = len;

    sn = ngx_str_rbtree_lookup(tree, &id, ngx_crc32_short(sid, len));

    return sn ? (ngx_rtmp_pgauth_ctx_t *) ((u_char *) sn - offset) : NULL;
}


/* the session goes into the next check, once */

static void
ngx_rtmp_pgauth_live_hint(ngx_rtmp_pgauth_live_t *live,
    ngx_rtmp_pgauth_ctx_t *ctx)
{
    if (ctx->hinted == NGX_RTMP_PGAUTH_SUSPECT) {
        return;
    }

    if (ctx->hinted == NGX_RTMP_PGAUTH_CHECKING) {
        /* asked already, but hinted since: once more */
        ngx_queue_remove(&ctx->hint);
    }

    ngx_queue_insert_tail(&live->suspects, &ctx->hint);
    ctx->hinted = NGX_RTMP_PGAUTH_SUSPECT;
}


static void
ngx_rtmp_pgauth_live_unhint(ngx_rtmp_pgauth_ctx_t *ctx)
{
    if (ctx->hinted) {
        ngx_queue_remove(&ctx->hint);
        ctx->hinted = 0;
    }
}


/* the next check: at once, unless one is in flight or too many were */

static void
ngx_rtmp_pgauth_live_schedule(ngx_rtmp_pgauth_live_t *live)
{
    if (live->checking || live->check.timer_set
        || (!live->all && ngx_queue_empty(&live->suspects)
            && live->nviewers == 0))
    {
        return;
    }

    /* a timer even for 0: the check is never sent from inside a libpq loop */
    ngx_add_timer(&live->check, ngx_rtmp_pgauth_live_wait(live));
}


/*
 * How long until a check may be sent: a token bucket of
 * NGX_RTMP_PGAUTH_CHECK_BURST, one back every NGX_RTMP_PGAUTH_CHECK_GAP.
 */

static ngx_msec_t
ngx_rtmp_pgauth_live_wait(ngx_rtmp_pgauth_live_t *live)
{
    ngx_msec_t  elapsed, n;

    elapsed = ngx_current_msec - live->refilled;
    n = elapsed / NGX_RTMP_PGAUTH_CHECK_GAP;

    if (n) {
        live->tokens = ngx_min(NGX_RTMP_PGAUTH_CHECK_BURST, live->tokens + n);
        live->refilled += n * NGX_RTMP_PGAUTH_CHECK_GAP;
        elapsed -= n * NGX_RTMP_PGAUTH_CHECK_GAP;
    }

    return live->tokens ? 0 : NGX_RTMP_PGAUTH_CHECK_GAP - elapsed;
}


/*
 * Not shutting down, or shutting down with sessions: an old worker of a
 * reload still serves its publishers, and must be seen doing so.  It
 * keeps beating, re-checking and its LISTEN connection (pcf.keep) while so.
 */

static ngx_int_t
ngx_rtmp_pgauth_live_holding(void *data)
{
    ngx_rtmp_pgauth_live_t  *live = data;

    if (ngx_terminate) {
        return 0;
    }

    return !ngx_exiting || live->nsessions > 0;
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

    if (live->listen) {
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
        ctx->confirm(ctx);
    }

    (void) ngx_rtmp_pgauth_live_submit(live, NGX_RTMP_PGAUTH_REGISTER,
                                       ngx_rtmp_pgauth_live_registered, 4,
                                       live->pmcf->node.data, live->pid,
                                       live->beat, live->pmcf->host_id);

    live->all = 1;

    /* the plays too: a "vend" may have been missed */
    ngx_rtmp_pgauth_live_hint_plays(live);
}


/*
 * The LISTEN connection is (again) up.  Behind a pooler in transaction
 * mode LISTEN succeeds but the session it made is handed to others, and
 * no notification ever arrives: so the worker sends one through its pool,
 * as the database does, and waits for it.
 */

static void
ngx_rtmp_pgauth_live_listening(void *data)
{
    ngx_rtmp_pgauth_live_t  *live = data;

    ngx_rtmp_pgauth_live_ready(live);

    if (live->probe.timer_set) {
        ngx_del_timer(&live->probe);
    }

    ngx_rtmp_pgauth_live_probe(live);
}


static void
ngx_rtmp_pgauth_live_probe(ngx_rtmp_pgauth_live_t *live)
{
    /* a token no other login can guess: only this worker's probe counts */

    ngx_sprintf(live->token, "probe %08xD%08xD%Z",
                (uint32_t) ngx_random(), (uint32_t) ngx_random());

    if (ngx_rtmp_pgauth_live_submit(live, NGX_RTMP_PGAUTH_PROBE,
                                    ngx_rtmp_pgauth_live_probed, 2,
                                    live->pmcf->channel.data, live->token)
        != NGX_OK)
    {
        return;
    }

    /* it is sent through the pool, which may have to connect first */

    ngx_add_timer(&live->probe, live->pmcf->max_timeout
                                + live->pmcf->heartbeat);
}


static void
ngx_rtmp_pgauth_live_probed(ngx_rtmp_pgauth_req_t *req, ngx_uint_t rc,
    PGresult *res, ngx_str_t *err)
{
    ngx_rtmp_pgauth_live_t  *live = req->data;

    if (rc == NGX_RTMP_PGAUTH_RESULT) {
        return;
    }

    /* not sent: nothing to tell yet; a deaf worker tries at its next beat */

    ngx_log_error(NGX_LOG_WARN, live->log, 0,
                  "pgauth: notification to the LISTEN connection not sent: "
                  "%V", err);

    if (live->probe.timer_set) {
        ngx_del_timer(&live->probe);
    }
}


static void
ngx_rtmp_pgauth_live_unheard(ngx_event_t *ev)
{
    ngx_rtmp_pgauth_live_t  *live = ev->data;

    live->token[0] = '\0';

    if (live->deaf) {
        return;
    }

    if (!ngx_rtmp_pgauth_pool_free(live->listen)) {
        /*
         * the LISTEN connection was lost since (a pooler or the server
         * restarted): what it missed says nothing of LISTEN; it probes
         * again once it is back (ngx_rtmp_pgauth_live_listening())
         */
        return;
    }

    live->deaf = 1;

    ngx_log_error(NGX_LOG_ERR, live->log, 0,
                  "pgauth: the LISTEN connection on channel \"%V\" did not "
                  "receive the notification sent to it in %Mms: LISTEN does "
                  "not work there (a pooler in transaction mode? see "
                  "\"pgauth_listen_dsn\"); every live session is re-checked "
                  "every %Mms instead", &live->pmcf->channel,
                  live->pmcf->max_timeout + live->pmcf->heartbeat,
                  live->pmcf->heartbeat);
}


static void
ngx_rtmp_pgauth_live_heard(ngx_rtmp_pgauth_live_t *live, ngx_str_t *token)
{
    if (live->token[0] == '\0'
        || token->len != NGX_RTMP_PGAUTH_PROBE_LEN
                          - NGX_RTMP_PGAUTH_PROBE_PREFIX
        || ngx_strncmp(token->data, live->token + NGX_RTMP_PGAUTH_PROBE_PREFIX,
                       token->len) != 0)
    {
        /* another worker's, or a stale or forged one */
        return;
    }

    live->token[0] = '\0';

    if (live->probe.timer_set) {
        ngx_del_timer(&live->probe);
    }

    if (live->deaf) {
        live->deaf = 0;

        ngx_log_error(NGX_LOG_NOTICE, live->log, 0,
                      "pgauth: the LISTEN connection on channel \"%V\" "
                      "receives notifications again",
                      &live->pmcf->channel);
    }
}


/*
 * Payloads: "end <session id> <reason>", "recheck", "key <digest>".
 * Anything else is ignored: the channel may carry other traffic.  None of
 * them ends anything by itself, and none sends a query from here: this
 * runs inside libpq's loop over what it read.
 */

static void
ngx_rtmp_pgauth_live_notify(void *data, PGnotify *notify)
{
    ngx_rtmp_pgauth_live_t  *live = data;

    u_char                   *p;
    u_char                    digest[NGX_RTMP_PGAUTH_DIGEST_LEN];
    ngx_str_t                 sid, reason;
    ngx_rtmp_pgauth_ctx_t    *ctx;
    ngx_rtmp_pgauth_ended_t  *e;

    p = (u_char *) notify->extra;

    switch (ngx_rtmp_pgauth_parse_notify(p, ngx_strlen(p), &sid, &reason,
                                         digest))
    {
    case NGX_RTMP_PGAUTH_NOTIFY_RECHECK:
        live->all = 1;
        ngx_rtmp_pgauth_live_schedule(live);
        return;

    case NGX_RTMP_PGAUTH_NOTIFY_KEY:
        if (live->pmcf->caches.nelts) {
            ngx_rtmp_pgauth_cache_forget(&live->pmcf->caches, digest);
        }

        return;

    case NGX_RTMP_PGAUTH_NOTIFY_END:
        break;

    case NGX_RTMP_PGAUTH_NOTIFY_VIEWER_END:
        ngx_rtmp_pgauth_live_viewer_hint(live, &sid);
        return;

    case NGX_RTMP_PGAUTH_NOTIFY_PROBE:
        ngx_rtmp_pgauth_live_heard(live, &sid);
        return;

    default:
        return;
    }

    ctx = ngx_rtmp_pgauth_live_find(live, sid.data, sid.len);

    if (ctx) {
        ngx_rtmp_pgauth_live_hint(live, ctx);
        ngx_rtmp_pgauth_live_schedule(live);
        return;
    }

    /*
     * Another worker's, or one of ours whose reply has not been handled
     * yet: kept for ngx_rtmp_pgauth_live_hinted(), in place of the oldest.
     */

    e = &live->ended[live->nended++ % NGX_RTMP_PGAUTH_ENDED];

    *ngx_cpymem(e->sid, sid.data, sid.len) = '\0';
}


/*
 * A request through the worker's pool with n text parameters (u_char *,
 * NUL-terminated), copied into the request; not bound by the queue size.
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

    req = ngx_rtmp_pgauth_req_create(live->pmcf->pool, size);
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
    req->urgent = 1;

    if (ngx_rtmp_pgauth_req_submit(req, live->pmcf->max_timeout) != NGX_OK) {
        ngx_rtmp_pgauth_req_free(req);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The other workers of this node the database knows: end the gone ones of
 * this nginx; log those of another nginx that uses the same node name.
 */

static void
ngx_rtmp_pgauth_live_registered(ngx_rtmp_pgauth_req_t *req, ngx_uint_t rc,
    PGresult *res, ngx_str_t *err)
{
    ngx_rtmp_pgauth_live_t  *live = req->data;

    int         i, n;
    char       *value;
    ngx_pid_t   pid;

    if (rc != NGX_RTMP_PGAUTH_RESULT) {
        ngx_log_error(NGX_LOG_ERR, live->log, 0,
                      "pgauth: registering the worker failed: %V", err);
        return;
    }

    n = (PQnfields(res) >= 2) ? PQntuples(res) : 0;

    for (i = 0; i < n; i++) {
        value = PQgetvalue(res, i, 0);
        pid = ngx_atoi((u_char *) value, PQgetlength(res, i, 0));

        if (pid <= 0) {
            continue;
        }

        if (PQgetvalue(res, i, 1)[0] != 't') {
            ngx_rtmp_pgauth_live_shared(live, value);
            continue;
        }

        if (pid == ngx_pid || !ngx_rtmp_pgauth_live_gone(pid)) {
            continue;
        }

        ngx_log_error(NGX_LOG_NOTICE, live->log, 0,
                      "pgauth: ending the sessions of gone worker %P "
                      "of node \"%V\"", pid, &live->pmcf->node);

        (void) ngx_rtmp_pgauth_live_submit(live, NGX_RTMP_PGAUTH_WORKER_GONE,
                                           ngx_rtmp_pgauth_live_logged, 2,
                                           live->pmcf->node.data, value);
    }
}


static void
ngx_rtmp_pgauth_live_shared(ngx_rtmp_pgauth_live_t *live, char *pid)
{
    if (live->shared_at
        && ngx_current_msec - live->shared_at < NGX_RTMP_PGAUTH_SHARED_LOG)
    {
        return;
    }

    live->shared_at = ngx_current_msec;
    if (live->shared_at == 0) {
        live->shared_at = 1;
    }

    ngx_log_error(NGX_LOG_ERR, live->log, 0,
                  "pgauth: another nginx uses node name \"%V\" (its worker "
                  "%s beats from another host or container): give each "
                  "nginx its own \"pgauth_node\"", &live->pmcf->node, pid);
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

    if (!ngx_rtmp_pgauth_live_holding(live)) {
        return;
    }

    ngx_add_timer(&live->heartbeat, live->pmcf->heartbeat);

    if (!live->registered) {
        ngx_rtmp_pgauth_live_ready(live);
        return;
    }

    if (live->deaf) {
        /* no notification arrives: every session is asked about instead */

        live->all = 1;
        ngx_rtmp_pgauth_live_schedule(live);

        if (!live->probe.timer_set) {
            ngx_rtmp_pgauth_live_probe(live);
        }
    }

    /* sessions live from the cache that could not be confirmed yet */

    for (q = ngx_queue_head(&live->sessions);
         q != ngx_queue_sentinel(&live->sessions);
         q = ngx_queue_next(q))
    {
        ctx = ngx_queue_data(q, ngx_rtmp_pgauth_ctx_t, queue);
        ctx->confirm(ctx);
    }

    if (live->beating) {
        return;
    }

    if (ngx_rtmp_pgauth_live_submit(live, NGX_RTMP_PGAUTH_HEARTBEAT,
                                    ngx_rtmp_pgauth_live_beaten, 4,
                                    live->pmcf->node.data, live->pid,
                                    live->beat, live->pmcf->host_id)
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
        return;
    }

    /* false: the same node name and pid beat for another nginx */

    if (PQntuples(res) == 1 && PQnfields(res) == 1
        && PQgetvalue(res, 0, 0)[0] == 'f')
    {
        ngx_rtmp_pgauth_live_shared(live, (char *) live->pid);
    }
}


static void
ngx_rtmp_pgauth_live_timer(ngx_event_t *ev)
{
    ngx_rtmp_pgauth_live_t  *live = ev->data;

    if (!ngx_rtmp_pgauth_live_holding(live)) {
        return;
    }

    ngx_add_timer(&live->recheck, live->pmcf->recheck);

    live->all = 1;
    ngx_rtmp_pgauth_live_schedule(live);
}


static void
ngx_rtmp_pgauth_live_check_handler(ngx_event_t *ev)
{
    ngx_rtmp_pgauth_live_check(ev->data);
}


/* asks the database about the hinted sessions, or all, at once */

static void
ngx_rtmp_pgauth_live_check(ngx_rtmp_pgauth_live_t *live)
{
    u_char                 *p, *s;
    size_t                  len;
    ngx_str_t               err;
    ngx_queue_t            *q;
    ngx_rtmp_pgauth_ctx_t  *ctx;

    if (live->checking || ngx_terminate) {
        return;
    }

    if (ngx_rtmp_pgauth_live_wait(live)) {
        ngx_rtmp_pgauth_live_schedule(live);
        return;
    }

    if (live->all) {
        live->all = 0;

        for (q = ngx_queue_head(&live->sessions);
             q != ngx_queue_sentinel(&live->sessions);
             q = ngx_queue_next(q))
        {
            ctx = ngx_queue_data(q, ngx_rtmp_pgauth_ctx_t, queue);

            /* one live from the cache has no id until it is confirmed */
            if (ctx->sid[0]) {
                ngx_rtmp_pgauth_live_hint(live, ctx);
            }
        }
    }

    if (ngx_queue_empty(&live->suspects)) {
        (void) ngx_rtmp_pgauth_live_check_viewers(live);
        return;
    }

    /* a text[] literal: {"id","id",...} */

    len = 3;

    for (q = ngx_queue_head(&live->suspects);
         q != ngx_queue_sentinel(&live->suspects);
         q = ngx_queue_next(q))
    {
        ctx = ngx_queue_data(q, ngx_rtmp_pgauth_ctx_t, hint);
        len += 2 * ngx_strlen(ctx->sid) + 4;
    }

    p = ngx_alloc(len, live->log);
    if (p == NULL) {
        return;
    }

    s = p;

    while (!ngx_queue_empty(&live->suspects)) {
        q = ngx_queue_head(&live->suspects);
        ctx = ngx_queue_data(q, ngx_rtmp_pgauth_ctx_t, hint);

        ngx_queue_remove(q);
        ngx_queue_insert_tail(&live->checked, q);
        ctx->hinted = NGX_RTMP_PGAUTH_CHECKING;

        s = ngx_rtmp_pgauth_array_add(s, ctx->sid, ngx_strlen(ctx->sid),
                                      s == p);
    }

    ngx_rtmp_pgauth_array_end(s, s == p);

    live->tokens--;

    if (ngx_rtmp_pgauth_live_submit(live, NGX_RTMP_PGAUTH_CHECK,
                                    ngx_rtmp_pgauth_live_checked, 1, p)
        == NGX_OK)
    {
        live->checking = 1;
        ngx_free(p);
        return;
    }

    ngx_free(p);

    ngx_str_set(&err, "the worker is exiting");
    ngx_rtmp_pgauth_live_unchecked(live, &err);
}


/*
 * A viewer session of this node may have ended: its id is kept for the
 * next check.  One this node does not hold costs a lookup, nothing more.
 */

static void
ngx_rtmp_pgauth_live_viewer_hint(ngx_rtmp_pgauth_live_t *live,
    ngx_str_t *sid)
{
    ngx_uint_t  i;

    if (ngx_rtmp_pgauth_live_find_play(live, sid->data, sid->len) == NULL
        && (live->viewer_zone == NULL
            || !ngx_http_pgauth_viewer_known(live->viewer_zone, sid->data,
                                             sid->len, 0)))
    {
        return;
    }

    for (i = 0; i < live->nviewers; i++) {
        if (ngx_strlen(live->viewers[i].sid) == sid->len
            && ngx_strncmp(live->viewers[i].sid, sid->data, sid->len) == 0)
        {
            return;
        }
    }

    if (live->nviewers == NGX_RTMP_PGAUTH_VIEWERS) {
        /* the next check makes room; the session lapses meanwhile */
        return;
    }

    *ngx_cpymem(live->viewers[live->nviewers++].sid, sid->data, sid->len)
        = '\0';

    ngx_rtmp_pgauth_live_schedule(live);
}


/* a play with a viewer token has begun: its token may end it */

void
ngx_rtmp_pgauth_live_play(ngx_rtmp_pgauth_ctx_t *ctx, ngx_msec_t left)
{
    ngx_rtmp_pgauth_live_t  *live;

    ctx->playing = 1;
    ctx->play_end = NGX_RTMP_PGAUTH_END_NONE;

    live = ctx->live;

    if (live && !ctx->play_indexed) {
        ctx->play_id.str.data = ctx->play_sid;
        ctx->play_id.str.len = ngx_strlen(ctx->play_sid);
        ctx->play_id.node.key = ngx_crc32_short(ctx->play_id.str.data,
                                                ctx->play_id.str.len);

        ngx_rbtree_insert(&live->plays, &ctx->play_id.node);
        ctx->play_indexed = 1;
    }

    if (left) {
        ctx->play_expire.handler = ngx_rtmp_pgauth_live_play_expired;
        ctx->play_expire.data = ctx;
        ctx->play_expire.log = ctx->session->connection->log;
        ctx->play_expire.cancelable = 1;

        ngx_rtmp_pgauth_live_arm(&ctx->play_expire, &ctx->play_rest, left);
    }
}


/* a timer of ms, or of the longest and the rest kept for later */

static void
ngx_rtmp_pgauth_live_arm(ngx_event_t *ev, ngx_msec_t *rest, ngx_msec_t ms)
{
    if (ms > NGX_RTMP_PGAUTH_TIMER_MAX) {
        *rest = ms - NGX_RTMP_PGAUTH_TIMER_MAX;
        ms = NGX_RTMP_PGAUTH_TIMER_MAX;

    } else {
        *rest = 0;
    }

    ngx_add_timer(ev, ms);
}


static ngx_rtmp_pgauth_ctx_t *
ngx_rtmp_pgauth_live_find_play(ngx_rtmp_pgauth_live_t *live, u_char *sid,
    size_t len)
{
    return ngx_rtmp_pgauth_live_lookup(&live->plays, sid, len,
                                       offsetof(ngx_rtmp_pgauth_ctx_t,
                                                play_id));
}


static void
ngx_rtmp_pgauth_live_play_expired(ngx_event_t *ev)
{
    ngx_rtmp_pgauth_ctx_t  *ctx = ev->data;

    if (ctx->play_rest) {
        ngx_rtmp_pgauth_live_arm(ev, &ctx->play_rest, ctx->play_rest);
        return;
    }

    ngx_rtmp_pgauth_live_play_kick(ctx, NGX_RTMP_PGAUTH_END_EXPIRED);
}


/* the database ended a play's viewer session: the player is told why */

static void
ngx_rtmp_pgauth_live_play_kick(ngx_rtmp_pgauth_ctx_t *ctx,
    ngx_rtmp_pgauth_end_e end)
{
    ngx_str_t            reason;
    ngx_rtmp_session_t  *s;

    if (!ctx->playing || ctx->play_end) {
        return;
    }

    s = ctx->session;
    ctx->play_end = end;

    ngx_rtmp_pgauth_live_end_text(ctx, end, &reason);

    ngx_log_error(NGX_LOG_NOTICE, s->connection->log, 0,
                  "pgauth: viewer ended app=\"%V\" name=\"%s\" "
                  "addr=\"%V\" session=\"%s\" reason=\"%V\"",
                  &s->app, ctx->play.name, &s->connection->addr_text,
                  ctx->play_sid, &reason);

    ngx_rtmp_send_status(s, "NetStream.Play.Stop", "error",
                         ngx_rtmp_pgauth_ends[end].desc
                         ? ngx_rtmp_pgauth_ends[end].desc
                         : "Stream ended by the server");

    ngx_rtmp_finalize_session(s);
}


/* the play is over, or never will be; its end is recorded */

void
ngx_rtmp_pgauth_live_play_end(ngx_rtmp_pgauth_ctx_t *ctx,
    ngx_rtmp_pgauth_end_e end)
{
    u_char                 *p;
    size_t                  len;
    ngx_str_t               reason;
    ngx_rtmp_pgauth_req_t  *req;

    if (ctx->play_req) {
        ngx_rtmp_pgauth_req_detach(ctx->play_req);
        ctx->play_req = NULL;
    }

    if (ctx->play_expire.timer_set) {
        ngx_del_timer(&ctx->play_expire);
    }

    if (ctx->play_indexed) {
        ngx_rbtree_delete(&ctx->live->plays, &ctx->play_id.node);
        ctx->play_indexed = 0;
    }

    if (!ctx->playing) {
        return;
    }

    ctx->playing = 0;

    ngx_rtmp_pgauth_live_end_text(ctx, ctx->play_end ? ctx->play_end : end,
                                  &reason);

    len = ngx_strlen(ctx->play_sid);

    req = ngx_rtmp_pgauth_req_create(ctx->pool, len + 1 + reason.len + 1);
    if (req == NULL) {
        return;
    }

    p = (u_char *) (req + 1);
    req->values[0] = (char *) p;
    p = ngx_cpymem(p, ctx->play_sid, len);
    *p++ = '\0';

    req->values[1] = (char *) p;
    *ngx_cpymem(p, reason.data, reason.len) = '\0';
    req->types[1] = NGX_RTMP_PGAUTH_TEXTOID;

    req->query = &ngx_rtmp_pgauth_live_play_done_query;
    req->nparams = 2;
    req->handler = ngx_rtmp_pgauth_live_recorded;
    req->urgent = 1;

    if (ngx_rtmp_pgauth_req_submit(req, ctx->pacf->timeout) != NGX_OK) {
        ngx_rtmp_pgauth_req_free(req);
    }
}


/* every play of the worker goes into the next check of viewer sessions */

static void
ngx_rtmp_pgauth_live_hint_plays(ngx_rtmp_pgauth_live_t *live)
{
    ngx_str_node_t     *sn;
    ngx_rbtree_node_t  *node, *root, *sentinel;

    sentinel = live->plays.sentinel;
    root = live->plays.root;

    if (root != sentinel) {
        for (node = ngx_rbtree_min(root, sentinel);
             node;
             node = ngx_rbtree_next(&live->plays, node))
        {
            sn = (ngx_str_node_t *) node;
            ngx_rtmp_pgauth_live_viewer_hint(live, &sn->str);
        }
    }

    ngx_rtmp_pgauth_live_schedule(live);
}


/* asks the database about the viewer sessions hinted, at once */

static ngx_int_t
ngx_rtmp_pgauth_live_check_viewers(ngx_rtmp_pgauth_live_t *live)
{
    u_char      *p, *s;
    size_t       len;
    ngx_uint_t   i;

    if (live->nviewers == 0) {
        return NGX_DECLINED;
    }

    len = 3;

    for (i = 0; i < live->nviewers; i++) {
        len += 2 * ngx_strlen(live->viewers[i].sid) + 4;
    }

    p = ngx_alloc(len, live->log);
    if (p == NULL) {
        return NGX_ERROR;
    }

    s = p;

    for (i = 0; i < live->nviewers; i++) {
        s = ngx_rtmp_pgauth_array_add(s, live->viewers[i].sid,
                                      ngx_strlen(live->viewers[i].sid),
                                      i == 0);
    }

    ngx_rtmp_pgauth_array_end(s, 0);

    live->nviewers = 0;
    live->tokens--;

    if (ngx_rtmp_pgauth_live_submit(live, NGX_RTMP_PGAUTH_CHECK_VIEWERS,
                                    ngx_rtmp_pgauth_live_viewers_checked, 1,
                                    p)
        == NGX_OK)
    {
        live->checking = 1;
    }

    ngx_free(p);

    return NGX_OK;
}


/* the viewer sessions the database says have ended go from the zone */

static void
ngx_rtmp_pgauth_live_viewers_checked(ngx_rtmp_pgauth_req_t *req,
    ngx_uint_t rc, PGresult *res, ngx_str_t *err)
{
    ngx_rtmp_pgauth_live_t  *live = req->data;

    int                     i, n;
    ngx_rtmp_pgauth_ctx_t  *ctx;

    live->checking = 0;

    if (rc != NGX_RTMP_PGAUTH_RESULT) {
        /* HLS sessions lapse by themselves; the plays are asked again */
        ngx_log_error(NGX_LOG_WARN, live->log, 0,
                      "pgauth: check of viewer sessions failed: %V", err);
        ngx_rtmp_pgauth_live_hint_plays(live);
        return;
    }

    n = (PQnfields(res) >= 2) ? PQntuples(res) : 0;

    for (i = 0; i < n; i++) {
        if (PQgetisnull(res, i, 1)) {
            continue;
        }

        ngx_log_error(NGX_LOG_NOTICE, live->log, 0,
                      "pgauth: viewer session \"%*s\" ended, "
                      "reason=\"%*s\"",
                      ngx_min(PQgetlength(res, i, 0), 64),
                      PQgetvalue(res, i, 0),
                      ngx_min(PQgetlength(res, i, 1), 64),
                      PQgetvalue(res, i, 1));

        if (live->viewer_zone) {
            (void) ngx_http_pgauth_viewer_known(live->viewer_zone,
                                                (u_char *)
                                                    PQgetvalue(res, i, 0),
                                                PQgetlength(res, i, 0), 1);
        }

        ctx = ngx_rtmp_pgauth_live_find_play(live,
                                             (u_char *) PQgetvalue(res, i, 0),
                                             PQgetlength(res, i, 0));
        if (ctx) {
            ngx_rtmp_pgauth_live_play_kick(ctx,
                              ngx_rtmp_pgauth_live_end_reason(ctx,
                                  (u_char *) PQgetvalue(res, i, 1),
                                  PQgetlength(res, i, 1)));
        }
    }

    ngx_rtmp_pgauth_live_schedule(live);
}


/*
 * The database's answer about the sessions asked for: those it says must
 * end are kicked with its reason, the others have their time limit set
 * again; one held for the answer goes on.
 */

static void
ngx_rtmp_pgauth_live_checked(ngx_rtmp_pgauth_req_t *req, ngx_uint_t rc,
    PGresult *res, ngx_str_t *err)
{
    ngx_rtmp_pgauth_live_t  *live = req->data;

    int                     i, n;
    size_t                  len;
    u_char                 *sid, *reason;
    ngx_msec_t              ms;
    ngx_queue_t            *q;
    ngx_rtmp_pgauth_ctx_t  *ctx;

    live->checking = 0;

    if (rc != NGX_RTMP_PGAUTH_RESULT) {
        ngx_rtmp_pgauth_live_unchecked(live, err);
        ngx_rtmp_pgauth_live_schedule(live);
        return;
    }

    n = (PQnfields(res) >= 3) ? PQntuples(res) : 0;

    for (i = 0; i < n; i++) {

        sid = (u_char *) PQgetvalue(res, i, 0);

        ctx = ngx_rtmp_pgauth_live_find(live, sid, PQgetlength(res, i, 0));
        if (ctx == NULL) {
            /* ended meanwhile */
            continue;
        }

        if (ctx->hinted == NGX_RTMP_PGAUTH_CHECKING) {
            ngx_rtmp_pgauth_live_unhint(ctx);
        }

        if (!PQgetisnull(res, i, 1)) {
            reason = (u_char *) PQgetvalue(res, i, 1);
            len = PQgetlength(res, i, 1);

            ngx_rtmp_pgauth_live_kick(ctx,
                                      ngx_rtmp_pgauth_live_end_reason(ctx,
                                                                      reason,
                                                                      len));
            continue;
        }

        if (!PQgetisnull(res, i, 2)
            && ngx_rtmp_pgauth_parse_seconds((u_char *) PQgetvalue(res, i, 2),
                                             PQgetlength(res, i, 2), &ms)
               == NGX_OK)
        {
            ngx_rtmp_pgauth_live_expire_in(ctx, ms ? ms : 1);
        }

        if (ctx->verifying) {
            ctx->verifying = 0;
            ctx->verified(ctx);
        }
    }

    /* no row for them: nothing known against them */

    while (!ngx_queue_empty(&live->checked)) {
        q = ngx_queue_head(&live->checked);
        ctx = ngx_queue_data(q, ngx_rtmp_pgauth_ctx_t, hint);

        ngx_rtmp_pgauth_live_unhint(ctx);

        if (ctx->verifying) {
            ctx->verifying = 0;
            ctx->verified(ctx);
        }
    }

    ngx_rtmp_pgauth_live_schedule(live);
}


/* the check failed: pgauth_recheck_failure says what becomes of them */

static void
ngx_rtmp_pgauth_live_unchecked(ngx_rtmp_pgauth_live_t *live, ngx_str_t *err)
{
    ngx_uint_t              keep, level, n;
    ngx_queue_t            *q;
    ngx_rtmp_pgauth_ctx_t  *ctx;

    keep = (live->pmcf->recheck_failure == NGX_RTMP_PGAUTH_RECHECK_KEEP);
    level = keep ? NGX_LOG_WARN : NGX_LOG_ERR;

    n = 0;

    for (q = ngx_queue_head(&live->checked);
         q != ngx_queue_sentinel(&live->checked);
         q = ngx_queue_next(q))
    {
        n++;
    }

    ngx_log_error(level, live->log, 0,
                  "pgauth: re-check of %ui live sessions failed, %s: %V",
                  n, keep ? "they go on" : "ending them", err);

    while (!ngx_queue_empty(&live->checked)) {
        q = ngx_queue_head(&live->checked);
        ctx = ngx_queue_data(q, ngx_rtmp_pgauth_ctx_t, hint);

        ngx_rtmp_pgauth_live_unhint(ctx);

        if (!keep) {
            ngx_rtmp_pgauth_live_kick(ctx, NGX_RTMP_PGAUTH_END_UNVERIFIED);
            continue;
        }

        if (ctx->verifying) {
            ctx->verifying = 0;
            ctx->verified(ctx);
        }
    }
}


/*
 * Ends a publish the database (or its time limit) ended, live or on its
 * way there: the client is told why, the session closes, the end is
 * recorded with the reason.
 */

void
ngx_rtmp_pgauth_live_kick(ngx_rtmp_pgauth_ctx_t *ctx, ngx_rtmp_pgauth_end_e end)
{
    ngx_str_t            reason;
    ngx_rtmp_session_t  *s;

    if (!ctx->allowed || ctx->kicked) {
        return;
    }

    s = ctx->session;
    ctx->kicked = 1;

    /* one that never went live: the database allowed it, then ended it */
    ngx_rtmp_pgauth_stats_outcome(ctx, NGX_RTMP_PGAUTH_OUT_ALLOWED);

    ngx_rtmp_pgauth_stats_count(ctx->pmcf->stats, NGX_RTMP_PGAUTH_CNT_ENDED);

    ctx->end = end;

    ngx_rtmp_pgauth_live_end_text(ctx, end, &reason);

    ngx_log_error(NGX_LOG_NOTICE, s->connection->log, 0,
                  "pgauth: ended app=\"%V\" name=\"%s\" addr=\"%V\" fp=%s "
                  "session=\"%s\" reason=\"%V\"",
                  &s->app, ctx->name[0] ? ctx->name : (u_char *) "-",
                  &s->connection->addr_text, ctx->fp, ctx->sid, &reason);

    ngx_rtmp_send_status(s, NGX_RTMP_PGAUTH_DENIED, "error",
                         ngx_rtmp_pgauth_ends[end].desc);

    ngx_rtmp_finalize_session(s);
}


/*
 * The reason a session ended with, as the database words it.  Words of
 * its own are kept in the session for its kick: the result they are in is
 * about to be freed.
 */

static ngx_rtmp_pgauth_end_e
ngx_rtmp_pgauth_live_end_reason(ngx_rtmp_pgauth_ctx_t *ctx, u_char *text,
    size_t len)
{
    ngx_uint_t  i;

    /* those a kick may have: the others are ours */

    for (i = NGX_RTMP_PGAUTH_END_REVOKED; i < NGX_RTMP_PGAUTH_END_OTHER; i++) {
        if (ngx_rtmp_pgauth_ends[i].reason.len == len
            && ngx_strncmp(ngx_rtmp_pgauth_ends[i].reason.data, text, len)
               == 0)
        {
            return i;
        }
    }

    if (!ctx->kicked) {
        len = ngx_min(len, sizeof(ctx->reason) - 1);
        *ngx_cpymem(ctx->reason, text, len) = '\0';
    }

    return NGX_RTMP_PGAUTH_END_OTHER;
}


static void
ngx_rtmp_pgauth_live_end_text(ngx_rtmp_pgauth_ctx_t *ctx,
    ngx_rtmp_pgauth_end_e end, ngx_str_t *text)
{
    if (end == NGX_RTMP_PGAUTH_END_OTHER) {
        text->data = ctx->reason;
        text->len = ngx_strlen(ctx->reason);
        return;
    }

    *text = ngx_rtmp_pgauth_ends[end].reason;
}


/* ends the session when its authorization runs out */

void
ngx_rtmp_pgauth_live_expire_in(ngx_rtmp_pgauth_ctx_t *ctx, ngx_msec_t ms)
{
    if (!ctx->allowed || ctx->kicked) {
        return;
    }

    if (ctx->expire.timer_set) {
        ngx_del_timer(&ctx->expire);
    }

    ctx->expire.handler = ngx_rtmp_pgauth_live_expired;
    ctx->expire.data = ctx;
    ctx->expire.log = ctx->session->connection->log;
    ctx->expire.cancelable = 1;

    ngx_rtmp_pgauth_live_arm(&ctx->expire, &ctx->expire_rest, ms);
}


static void
ngx_rtmp_pgauth_live_expired(ngx_event_t *ev)
{
    ngx_rtmp_pgauth_ctx_t  *ctx = ev->data;

    if (ctx->expire_rest) {
        ngx_rtmp_pgauth_live_arm(ev, &ctx->expire_rest, ctx->expire_rest);
        return;
    }

    ngx_rtmp_pgauth_live_kick(ctx, NGX_RTMP_PGAUTH_END_EXPIRED);
}


/* the session's publish is over, or never will be */

void
ngx_rtmp_pgauth_live_end(ngx_rtmp_pgauth_ctx_t *ctx, ngx_rtmp_pgauth_end_e end)
{
    ngx_str_t   reason;
    ngx_uint_t  recording;

    if (ctx->req) {
        recording = 0;

        if (ctx->confirming) {
            /*
             * live before its record: the record, when it comes, ends for
             * this reason (the database's own words stay with the session)
             */
            ctx->req->end = ctx->end ? ctx->end : end;

            if (ctx->req->end == NGX_RTMP_PGAUTH_END_OTHER) {
                ctx->req->end = NGX_RTMP_PGAUTH_END_CLIENT_GONE;
            }

            recording = (ctx->reserved[0] != '\0');
        }

        if (ngx_rtmp_pgauth_req_detach(ctx->req) && recording) {
            /* sent: until its answer, a publisher back is no takeover */
            ngx_rtmp_pgauth_live_ending_hold(ctx->digest, ctx->reserved,
                                             ctx->pacf->timeout);
        }

        ctx->req = NULL;
    }

    if (ctx->expire.timer_set) {
        ngx_del_timer(&ctx->expire);
    }

    if (ctx->resume.posted) {
        ngx_delete_posted_event(&ctx->resume);
    }

    ngx_rtmp_pgauth_live_remove(ctx);
    ngx_rtmp_pgauth_limit_give_back(ctx, 0);

    if (ctx->listed) {
        ngx_rtmp_pgauth_stats_stream_remove(ctx->pmcf->stats,
                                            ctx->pmcf->stats_zone,
                                            ctx->listed);
        ctx->listed = NULL;
    }

    ctx->confirming = 0;
    ctx->looking = 0;
    ctx->stale = 0;
    ctx->verify = 0;
    ctx->takeover = 0;

    /* nothing of the key stays once the publish is over */
    ngx_explicit_memzero(ctx->key, sizeof(ctx->key));
    ngx_explicit_memzero(&ctx->publish, sizeof(ngx_rtmp_publish_t));

    if (!ctx->allowed) {
        return;
    }

    ctx->allowed = 0;

    /* a kick says why first */
    ngx_rtmp_pgauth_live_end_text(ctx, ctx->end ? ctx->end : end, &reason);

    ngx_log_error(NGX_LOG_INFO, ctx->session->connection->log, 0,
                  "pgauth: publish ended name=\"%s\" session=\"%s\" "
                  "reason=\"%V\"",
                  ctx->name[0] ? ctx->name : (u_char *) "-", ctx->sid,
                  &reason);

    if (ctx->sid[0]) {
        ngx_rtmp_pgauth_live_record_end(ctx->pool, ctx->pacf, ctx->sid,
                             ngx_strlen(ctx->sid), ctx->digest, &reason);
    }
}


void
ngx_rtmp_pgauth_live_record_end(ngx_rtmp_pgauth_pool_t *pool,
    ngx_rtmp_pgauth_app_conf_t *pacf, u_char *sid, size_t len,
    u_char *digest, ngx_str_t *reason)
{
    if (pacf->done_batch && !ngx_rtmp_pgauth_batch.missing
        && len < NGX_RTMP_PGAUTH_SID_LEN)
    {
        ngx_rtmp_pgauth_live_end_later(pool, pacf, sid, len, digest, reason);
        return;
    }

    ngx_rtmp_pgauth_live_record_one(pool, &pacf->done_query, pacf->timeout,
                                    sid, len, reason);
}


static void
ngx_rtmp_pgauth_live_record_one(ngx_rtmp_pgauth_pool_t *pool,
    ngx_str_t *query, ngx_msec_t timeout, u_char *sid, size_t len,
    ngx_str_t *reason)
{
    u_char                 *p;
    ngx_rtmp_pgauth_req_t  *req;

    req = ngx_rtmp_pgauth_req_create(pool, len + 1 + reason->len + 1);
    if (req == NULL) {
        return;
    }

    p = (u_char *) (req + 1);
    ngx_memcpy(p, sid, len);
    p[len] = '\0';

    req->values[0] = (char *) p;

    /* $1 as the query wants it, $2 text even when the query ignores it */

    p += len + 1;
    *ngx_cpymem(p, reason->data, reason->len) = '\0';

    req->values[1] = (char *) p;
    req->types[1] = NGX_RTMP_PGAUTH_TEXTOID;

    req->query = query;
    req->nparams = 2;
    req->handler = ngx_rtmp_pgauth_live_recorded;

    /* the end of a session is recorded even when the queue is full */
    req->urgent = 1;

    if (ngx_rtmp_pgauth_req_submit(req, timeout) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, req->log, 0,
                      "pgauth: the end of session \"%s\" is not recorded: "
                      "the worker is exiting", (u_char *) (req + 1));
        ngx_rtmp_pgauth_req_free(req);
    }
}


static void
ngx_rtmp_pgauth_live_end_later(ngx_rtmp_pgauth_pool_t *pool,
    ngx_rtmp_pgauth_app_conf_t *pacf, u_char *sid, size_t len,
    u_char *digest, ngx_str_t *reason)
{
    ngx_rtmp_pgauth_batch_t  *ends = &ngx_rtmp_pgauth_batch;

    ngx_uint_t                 i;
    ngx_rtmp_pgauth_ending_t  *e;

    if (ends->n && (ends->pool != pool || ends->n == NGX_RTMP_PGAUTH_END_BATCH))
    {
        ngx_rtmp_pgauth_live_send_ends();
    }

    /* kept by key: an id, as authorize() takes them, and room for it */

    for (i = 0; i < len; i++) {
        if (sid[i] < '0' || sid[i] > '9') {
            break;
        }
    }

    if (digest && len && i == len && len < 20
        && ends->nending < NGX_RTMP_PGAUTH_ENDING)
    {
        e = &ends->ending[ends->nending++];

        *ngx_cpymem(e->sid, sid, len) = '\0';
        ngx_memcpy(e->digest, digest, NGX_RTMP_PGAUTH_DIGEST_LEN);
        e->batch = 0;
        e->held = 0;
    }

    ends->pool = pool;
    ends->done_query = &pacf->done_query;
    ends->timeout = pacf->timeout;

    *ngx_cpymem(ends->sid[ends->n], sid, len) = '\0';
    *ngx_cpymem(ends->reason[ends->n], reason->data,
                ngx_min(reason->len, NGX_RTMP_PGAUTH_REASON_LEN - 1))
        = '\0';

    ends->n++;

    /* a worker that is going does not wait */

    if (ends->sending == 0 || ngx_exiting || ngx_quit || ngx_terminate) {
        ngx_rtmp_pgauth_live_send_ends();
    }
}


static void
ngx_rtmp_pgauth_live_send_ends(void)
{
    ngx_rtmp_pgauth_batch_t  *ends = &ngx_rtmp_pgauth_batch;

    u_char                 *p;
    size_t                  size;
    ngx_uint_t              i;
    ngx_rtmp_pgauth_req_t  *req;

    /* the batch's number, then what follows */
    size = sizeof(ngx_uint_t) + 9;

    for (i = 0; i < ends->n; i++) {
        /* in the two arrays, and as they are, for a schema without them */
        size += 3 * ngx_strlen(ends->sid[i]) + 5
                + 3 * ngx_strlen(ends->reason[i]) + 5;
    }

    req = ngx_rtmp_pgauth_req_create(ends->pool, size);
    if (req == NULL) {
        ngx_rtmp_pgauth_live_ended(0);
        ends->n = 0;
        return;
    }

    /* $1: {"id",...}, $2: {"reason",...} */

    p = (u_char *) (req + 1) + sizeof(ngx_uint_t);
    req->values[0] = (char *) p;

    for (i = 0; i < ends->n; i++) {
        p = ngx_rtmp_pgauth_array_add(p, ends->sid[i],
                                      ngx_strlen(ends->sid[i]), i == 0);
    }

    p = ngx_rtmp_pgauth_array_end(p, ends->n == 0) + 1;
    req->values[1] = (char *) p;

    for (i = 0; i < ends->n; i++) {
        p = ngx_rtmp_pgauth_array_add(p, ends->reason[i],
                                      ngx_strlen(ends->reason[i]), i == 0);
    }

    p = ngx_rtmp_pgauth_array_end(p, ends->n == 0) + 1;

    /* "sid\0reason\0" each, then "\0" */

    req->data = p;

    for (i = 0; i < ends->n; i++) {
        p = ngx_cpymem(p, ends->sid[i], ngx_strlen(ends->sid[i]) + 1);
        p = ngx_cpymem(p, ends->reason[i], ngx_strlen(ends->reason[i]) + 1);
    }

    *p = '\0';

    req->query = &ngx_rtmp_pgauth_live_done_many_query;
    req->nparams = 2;
    req->handler = ngx_rtmp_pgauth_live_ends_recorded;
    req->urgent = 1;

    /* the ends kept by key are in this batch from now */

    ends->batch = ends->batch + 1 ? ends->batch + 1 : 1;
    *(ngx_uint_t *) (req + 1) = ends->batch;

    for (i = 0; i < ends->nending; i++) {
        if (ends->ending[i].batch == 0 && !ends->ending[i].held) {
            ends->ending[i].batch = ends->batch;
        }
    }

    ends->n = 0;

    if (ngx_rtmp_pgauth_req_submit(req, ends->timeout) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, req->log, 0,
                      "pgauth: the end of sessions %s is not recorded: "
                      "the worker is exiting", req->values[0]);
        ngx_rtmp_pgauth_live_ended(ends->batch);
        ngx_rtmp_pgauth_req_free(req);
        return;
    }

    ends->sending++;
}


/* the ends of a batch answered (or given up) are no longer kept by key */

static void
ngx_rtmp_pgauth_live_ended(ngx_uint_t batch)
{
    ngx_rtmp_pgauth_batch_t  *ends = &ngx_rtmp_pgauth_batch;

    ngx_uint_t  i, n;

    n = 0;

    for (i = 0; i < ends->nending; i++) {
        if (ends->ending[i].batch == batch && !ends->ending[i].held) {
            continue;
        }

        if (n != i) {
            ends->ending[n] = ends->ending[i];
        }

        n++;
    }

    ends->nending = n;
}


/*
 * Writes the ids of the worker's sessions of the key whose ends are on
 * their way as an array literal ("{}" when none, or no room for more) of
 * at most size bytes, the NUL included.
 */

void
ngx_rtmp_pgauth_live_ending(u_char *digest, u_char *buf, size_t size)
{
    ngx_rtmp_pgauth_batch_t  *ends = &ngx_rtmp_pgauth_batch;

    u_char      *p;
    size_t       len;
    ngx_uint_t   i;

    ngx_rtmp_pgauth_live_ending_expire();

    p = buf;
    *p++ = '{';

    for (i = 0; i < ends->nending; i++) {
        if (ngx_memcmp(ends->ending[i].digest, digest,
                       NGX_RTMP_PGAUTH_DIGEST_LEN)
            != 0)
        {
            continue;
        }

        len = ngx_strlen(ends->ending[i].sid);

        if ((size_t) (p - buf) + len + sizeof(",}") > size) {
            break;
        }

        if (p != buf + 1) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, ends->ending[i].sid, len);
    }

    *p++ = '}';
    *p = '\0';
}


/*
 * The client of a session live on its lookup left while the session's
 * record was on its way (sid: the id the lookup drew): the key's next
 * decisions name it as ending until ngx_rtmp_pgauth_live_ending_drop()
 * at the record's answer, or for timeout at most.
 */

void
ngx_rtmp_pgauth_live_ending_hold(u_char *digest, u_char *sid,
    ngx_msec_t timeout)
{
    ngx_rtmp_pgauth_batch_t  *ends = &ngx_rtmp_pgauth_batch;

    size_t                     len;
    ngx_rtmp_pgauth_ending_t  *e;

    ngx_rtmp_pgauth_live_ending_expire();

    len = ngx_strlen(sid);

    if (len == 0 || len >= NGX_RTMP_PGAUTH_SID_LEN
        || ends->nending == NGX_RTMP_PGAUTH_ENDING)
    {
        return;
    }

    e = &ends->ending[ends->nending++];

    ngx_memcpy(e->sid, sid, len + 1);
    ngx_memcpy(e->digest, digest, NGX_RTMP_PGAUTH_DIGEST_LEN);
    e->batch = 0;
    e->until = ngx_current_msec + timeout;
    e->held = 1;
}


/* the record of a session held so has been answered, or given up */

void
ngx_rtmp_pgauth_live_ending_drop(u_char *digest, u_char *sid)
{
    ngx_rtmp_pgauth_batch_t  *ends = &ngx_rtmp_pgauth_batch;

    ngx_uint_t                 i;
    ngx_rtmp_pgauth_ending_t  *e;

    for (i = 0; i < ends->nending; i++) {
        e = &ends->ending[i];

        if (e->held
            && ngx_strcmp(e->sid, sid) == 0
            && ngx_memcmp(e->digest, digest, NGX_RTMP_PGAUTH_DIGEST_LEN)
               == 0)
        {
            e->until = ngx_current_msec;
        }
    }

    ngx_rtmp_pgauth_live_ending_expire();
}


/* held sessions whose record took longer than its timeout are not kept */

static void
ngx_rtmp_pgauth_live_ending_expire(void)
{
    ngx_rtmp_pgauth_batch_t  *ends = &ngx_rtmp_pgauth_batch;

    ngx_uint_t                 i, n;
    ngx_rtmp_pgauth_ending_t  *e;

    n = 0;

    for (i = 0; i < ends->nending; i++) {
        e = &ends->ending[i];

        if (e->held && (ngx_msec_int_t) (e->until - ngx_current_msec) <= 0) {
            continue;
        }

        if (n != i) {
            ends->ending[n] = *e;
        }

        n++;
    }

    ends->nending = n;
}


static void
ngx_rtmp_pgauth_live_ends_recorded(ngx_rtmp_pgauth_req_t *req,
    ngx_uint_t rc, PGresult *res, ngx_str_t *err)
{
    ngx_rtmp_pgauth_batch_t  *ends = &ngx_rtmp_pgauth_batch;

    char        *state;
    u_char      *p;
    size_t       len;
    ngx_str_t    reason;
    ngx_uint_t   i;

    ends->sending--;

    ngx_rtmp_pgauth_live_ended(*(ngx_uint_t *) (req + 1));

    if (rc == NGX_RTMP_PGAUTH_RESULT) {
        goto next;
    }

    state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    if (state && ngx_strcmp(state, NGX_RTMP_PGAUTH_SQLSTATE_NO_FUNCTION) == 0)
    {
        /* a schema older than the module: one by one, from now on */

        if (!ends->missing) {
            ngx_log_error(NGX_LOG_WARN, req->log, 0,
                          "pgauth: pgauth.publish_done_many() is not in the "
                          "database (apply the new pgauth.sql): the ends of "
                          "sessions are recorded one by one");
            ends->missing = 1;
        }

    } else {
        /* each is tried once more alone, and fails alone */
        ngx_log_error(NGX_LOG_WARN, req->log, 0,
                      "pgauth: recording the end of sessions %s failed: "
                      "%V; each is recorded alone", req->values[0], err);
    }

    for (p = req->data; *p; p += len + 1 + reason.len + 1) {
        len = ngx_strlen(p);
        reason.data = p + len + 1;
        reason.len = ngx_strlen(reason.data);

        ngx_rtmp_pgauth_live_record_one(ends->pool, ends->done_query,
                                        ends->timeout, p, len, &reason);
    }

    if (ends->missing) {
        /* those waiting too, and from now on record_end() does so */

        ngx_rtmp_pgauth_live_ended(0);

        for (i = 0; i < ends->n; i++) {
            reason.data = ends->reason[i];
            reason.len = ngx_strlen(reason.data);

            ngx_rtmp_pgauth_live_record_one(ends->pool, ends->done_query,
                                            ends->timeout, ends->sid[i],
                                            ngx_strlen(ends->sid[i]),
                                            &reason);
        }

        ends->n = 0;
        return;
    }

next:

    if (ends->n && ends->sending == 0) {
        ngx_rtmp_pgauth_live_send_ends();
    }
}


static void
ngx_rtmp_pgauth_live_recorded(ngx_rtmp_pgauth_req_t *req, ngx_uint_t rc,
    PGresult *res, ngx_str_t *err)
{
    if (rc == NGX_RTMP_PGAUTH_RESULT) {
        return;
    }

    ngx_log_error(NGX_LOG_ERR, req->log, 0,
                  "pgauth: recording the end of session \"%s\" failed: %V",
                  (u_char *) (req + 1), err);
}
