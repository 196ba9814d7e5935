
/*
 * Copyright (C) ngx_rtmp_pgauth authors
 */


/*
 * The publish hook.  A publish to an application with "pgauth on" waits
 * for PostgreSQL: the client's publish is copied into the request, the
 * chain resumes from the reply (renamed to the public name) or the client
 * gets an onStatus error and is closed.  The stream key itself never
 * leaves this file except as its SHA-256 digest (or raw, when configured
 * with "pgauth_key_hash none"), and is never logged.
 *
 * This file decides; once allowed, a session's life (kick, expiry, end and
 * its record) is the live control's (ngx_rtmp_pgauth_live.c), which calls
 * back into the decision only through ctx->confirm and ctx->verified.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_rtmp_pgauth_module.h"


/* raised by pgauth.authorize() when the name is live and may not be taken */
#define NGX_RTMP_PGAUTH_SQLSTATE_BUSY  "PA001"
/* insufficient_privilege: a role that may not run pgauth.look_up() */
#define NGX_RTMP_PGAUTH_SQLSTATE_PRIV  "42501"

/* once the client is known to wait: see ngx_rtmp_pgauth_take_over() */
#define NGX_RTMP_PGAUTH_TAKE_OVER      "SELECT pgauth.take_over($1)"


/* what a decision's outcome means to the client and the log */

typedef struct {
    ngx_uint_t                      level;      /* of the log line */
    char                           *code;       /* of a refusal's onStatus */
    char                           *desc;
    char                           *via;        /* of an allowance */
    ngx_uint_t                      failed;     /* for the limiter */
} ngx_rtmp_pgauth_outcome_t;


static ngx_rtmp_pgauth_outcome_t
    ngx_rtmp_pgauth_outcomes[NGX_RTMP_PGAUTH_OUT_PUBLISH_N] =
{

    /* NGX_RTMP_PGAUTH_OUT_ALLOWED */
    { NGX_LOG_NOTICE, NULL, NULL, "", 0 },

    /* NGX_RTMP_PGAUTH_OUT_ALLOWED_CACHE */
    { NGX_LOG_NOTICE, NULL, NULL, " cache=hit", 0 },

    /* NGX_RTMP_PGAUTH_OUT_ALLOWED_STALE */
    { NGX_LOG_NOTICE, NULL, NULL, " cache=stale", 0 },

    /* NGX_RTMP_PGAUTH_OUT_ALLOWED_LOOKUP */
    { NGX_LOG_NOTICE, NULL, NULL, " via=lookup", 0 },

    /* NGX_RTMP_PGAUTH_OUT_DENIED */
    { NGX_LOG_ERR, NGX_RTMP_PGAUTH_DENIED, NGX_RTMP_PGAUTH_DENIED_DESC,
      NULL, 1 },

    /* NGX_RTMP_PGAUTH_OUT_DENIED_CACHE */
    { NGX_LOG_ERR, NGX_RTMP_PGAUTH_DENIED, NGX_RTMP_PGAUTH_DENIED_DESC,
      NULL, 1 },

    /* NGX_RTMP_PGAUTH_OUT_UNAVAILABLE */
    { NGX_LOG_ERR, NGX_RTMP_PGAUTH_FAILED_CODE, NGX_RTMP_PGAUTH_FAILED_DESC,
      NULL, 0 },

    /* NGX_RTMP_PGAUTH_OUT_BLOCKED: logged once when it was blocked */
    { NGX_LOG_INFO, NGX_RTMP_PGAUTH_DENIED, NGX_RTMP_PGAUTH_BLOCKED_DESC,
      NULL, 0 },

    /* NGX_RTMP_PGAUTH_OUT_ALREADY_LIVE */
    { NGX_LOG_ERR, NGX_RTMP_PGAUTH_BADNAME, NGX_RTMP_PGAUTH_BUSY_DESC,
      NULL, 0 }
};


/* the ids named in a decision as the worker's sessions of the key ending */
#define NGX_RTMP_PGAUTH_ENDING_LEN     128


/* what a decision request carries: it may outlive the session */

typedef struct {
    ngx_rtmp_pgauth_app_conf_t     *pacf;
    u_char                          digest[NGX_RTMP_PGAUTH_DIGEST_LEN];
    u_char                          key[NGX_RTMP_PGAUTH_NAME_LEN];
    u_char                          args[NGX_RTMP_PGAUTH_NAME_LEN];
    u_char                          fp[NGX_RTMP_PGAUTH_FP_LEN + 1];
    u_char                          app[NGX_RTMP_MAX_NAME];
    u_char                          addr[NGX_SOCKADDR_STRLEN + 1];
    u_char                          duplicate[sizeof("takeover")];
    u_char                          ending[NGX_RTMP_PGAUTH_ENDING_LEN];
    u_char                          reserved[NGX_RTMP_PGAUTH_SID_LEN];
} ngx_rtmp_pgauth_decision_t;


static ngx_int_t ngx_rtmp_pgauth_publish(ngx_rtmp_session_t *s,
    ngx_rtmp_publish_t *v);
static ngx_int_t ngx_rtmp_pgauth_close_stream(ngx_rtmp_session_t *s,
    ngx_rtmp_close_stream_t *v);
static ngx_int_t ngx_rtmp_pgauth_from_cache(ngx_rtmp_session_t *s,
    ngx_rtmp_pgauth_ctx_t *ctx);
static ngx_int_t ngx_rtmp_pgauth_live_first(ngx_rtmp_session_t *s,
    ngx_rtmp_pgauth_ctx_t *ctx, ngx_rtmp_pgauth_outcome_e outcome);
static void ngx_rtmp_pgauth_cleanup(void *data);
static void ngx_rtmp_pgauth_digest(const EVP_MD *md, u_char *key,
    u_char *digest, u_char *fp);
static ngx_int_t ngx_rtmp_pgauth_check(ngx_rtmp_session_t *s,
    ngx_rtmp_pgauth_ctx_t *ctx, ngx_rtmp_publish_t *v);
static void ngx_rtmp_pgauth_decided(ngx_rtmp_pgauth_req_t *req,
    ngx_uint_t rc, PGresult *res, ngx_str_t *err);
static ngx_uint_t ngx_rtmp_pgauth_no_look_up(ngx_rtmp_session_t *s,
    ngx_rtmp_pgauth_ctx_t *ctx, PGresult *res, ngx_str_t *err);
static void ngx_rtmp_pgauth_scrub_err(ngx_rtmp_pgauth_ctx_t *ctx,
    ngx_str_t *err, u_char *buf, size_t size);
static void ngx_rtmp_pgauth_failed(ngx_rtmp_session_t *s,
    ngx_rtmp_pgauth_ctx_t *ctx, PGresult *res, ngx_str_t *err);
static void ngx_rtmp_pgauth_decided_late(ngx_rtmp_pgauth_req_t *req,
    ngx_uint_t rc, PGresult *res, ngx_str_t *err);
static ngx_int_t ngx_rtmp_pgauth_ask(ngx_rtmp_session_t *s,
    ngx_rtmp_pgauth_ctx_t *ctx);
static ngx_int_t ngx_rtmp_pgauth_allow(ngx_rtmp_session_t *s,
    ngx_rtmp_pgauth_ctx_t *ctx, PGresult *res, ngx_str_t *name);
static void ngx_rtmp_pgauth_confirm(ngx_rtmp_pgauth_ctx_t *ctx);
static void ngx_rtmp_pgauth_proceed(ngx_rtmp_pgauth_ctx_t *ctx);
static void ngx_rtmp_pgauth_take_over(ngx_rtmp_pgauth_ctx_t *ctx);
static void ngx_rtmp_pgauth_took_over(ngx_rtmp_pgauth_req_t *req,
    ngx_uint_t rc, PGresult *res, ngx_str_t *err);
static void ngx_rtmp_pgauth_take_over_failed(ngx_rtmp_pgauth_ctx_t *ctx,
    ngx_str_t *err);
static void ngx_rtmp_pgauth_confirmed(ngx_rtmp_pgauth_ctx_t *ctx);
static ngx_int_t ngx_rtmp_pgauth_go_live(ngx_rtmp_session_t *s,
    ngx_rtmp_pgauth_ctx_t *ctx, ngx_rtmp_pgauth_outcome_e outcome);
static void ngx_rtmp_pgauth_unreachable(ngx_rtmp_session_t *s,
    ngx_rtmp_pgauth_ctx_t *ctx, const char *reason, ngx_uint_t counter,
    ngx_str_t *err);
static void ngx_rtmp_pgauth_resume(ngx_event_t *ev);
static void ngx_rtmp_pgauth_refuse(ngx_rtmp_session_t *s,
    ngx_rtmp_pgauth_ctx_t *ctx, ngx_rtmp_pgauth_outcome_e outcome,
    const char *reason, ngx_str_t *err);


static ngx_str_t  ngx_rtmp_pgauth_take_over_query =
    ngx_string(NGX_RTMP_PGAUTH_TAKE_OVER);


/* pgauth.look_up() missing or not granted: no lookup first in the worker */
static ngx_uint_t                ngx_rtmp_pgauth_no_lookup;

static ngx_rtmp_publish_pt       next_publish;
static ngx_rtmp_close_stream_pt  next_close_stream;


ngx_int_t
ngx_rtmp_pgauth_publish_init(ngx_conf_t *cf)
{
    next_publish = ngx_rtmp_publish;
    ngx_rtmp_publish = ngx_rtmp_pgauth_publish;

    next_close_stream = ngx_rtmp_close_stream;
    ngx_rtmp_close_stream = ngx_rtmp_pgauth_close_stream;

    return NGX_OK;
}


static ngx_int_t
ngx_rtmp_pgauth_publish(ngx_rtmp_session_t *s, ngx_rtmp_publish_t *v)
{
    u_char                        digest[NGX_RTMP_PGAUTH_DIGEST_LEN];
    u_char                        fp[NGX_RTMP_PGAUTH_FP_LEN + 1];
    ngx_int_t                     rc;
    ngx_rtmp_pgauth_ctx_t        *ctx;
    ngx_rtmp_pgauth_app_conf_t   *pacf;
    ngx_rtmp_pgauth_main_conf_t  *pmcf;

    if (s->auto_pushed || s->relay) {
        goto next;
    }

    pacf = ngx_rtmp_get_module_app_conf(s, ngx_rtmp_pgauth_module);

    if (pacf == NULL || !pacf->enable) {
        goto next;
    }

    ctx = ngx_rtmp_get_module_ctx(s, ngx_rtmp_pgauth_module);

    if (ctx && (ctx->req || ctx->allowed)) {
        /* the first publish's decision and digest are left as they are */

        ngx_rtmp_pgauth_digest(ctx->sha256, v->name, digest, fp);
        ngx_explicit_memzero(v->name, sizeof(v->name));

        ngx_log_error(NGX_LOG_ERR, s->connection->log, 0,
                      "pgauth: refused app=\"%V\" addr=\"%V\" fp=%s "
                      "reason=\"publish while publishing\"",
                      &s->app, &s->connection->addr_text, fp);

        ngx_rtmp_send_status(s, NGX_RTMP_PGAUTH_BADNAME, "error",
                             NGX_RTMP_PGAUTH_BADNAME_DESC);
        return NGX_ERROR;
    }

    ctx = ngx_rtmp_pgauth_get_ctx(s);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    pmcf = ngx_rtmp_get_module_main_conf(s, ngx_rtmp_pgauth_module);

    ctx->pacf = pacf;
    ctx->pmcf = pmcf;
    ctx->pool = pmcf->pool;
    ctx->live = pmcf->live;
    ctx->start = ngx_current_msec;
    ctx->sha256 = pmcf->sha256 ? pmcf->sha256 : EVP_sha256();
    ctx->counted = 0;
    ctx->won = 0;
    ctx->reserved[0] = '\0';   /* a cache hit draws no id */

    ngx_memcpy(&ctx->publish, v, sizeof(ngx_rtmp_publish_t));

    if (pacf->key_hash == NGX_RTMP_PGAUTH_HASH_NONE) {
        ngx_memcpy(ctx->key, v->name, sizeof(ctx->key));
    }

    /* nginx-rtmp's own copy of the key (a static buffer) is not kept */
    ngx_explicit_memzero(v->name, sizeof(v->name));

    if (ngx_rtmp_pgauth_check(s, ctx, &ctx->publish) != NGX_OK) {
        return NGX_ERROR;
    }

    rc = ngx_rtmp_pgauth_from_cache(s, ctx);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    /*
     * pgauth_lookup_first: with a connection free, a read-only lookup
     * answers sooner than the decision that records the session; under
     * load the decision alone, in batches, costs the database less
     */

    ctx->looking = (pacf->lookup && !ngx_rtmp_pgauth_no_lookup
                    && ngx_rtmp_pgauth_pool_free(ctx->pool));

    if (ngx_rtmp_pgauth_ask(s, ctx) != NGX_OK) {
        ngx_rtmp_pgauth_refuse(s, ctx, NGX_RTMP_PGAUTH_OUT_UNAVAILABLE,
                               "too many decisions queued", NULL);
        return NGX_ERROR;
    }

    ngx_log_debug0(NGX_LOG_DEBUG_RTMP, s->connection->log, 0,
                   "pgauth: decision pending");
    return NGX_OK;

next:

    return next_publish(s, v);
}


/*
 * What the cache knows of the key decides, when it knows: a refusal, or
 * live now while the database records the session and confirms meanwhile
 * (ngx_rtmp_pgauth_decided() with ctx->confirming).  NGX_DECLINED: ask.
 */

static ngx_int_t
ngx_rtmp_pgauth_from_cache(ngx_rtmp_session_t *s, ngx_rtmp_pgauth_ctx_t *ctx)
{
    ngx_rtmp_pgauth_cached_t   cached;

    if (ctx->pacf->cache == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_rtmp_pgauth_cache_get(ctx->pacf->cache, ctx->digest, &s->app, 0,
                                  &cached)
        != NGX_OK)
    {
        ngx_rtmp_pgauth_stats_count(ctx->pmcf->stats,
                                    NGX_RTMP_PGAUTH_CNT_CACHE_MISSES);
        return NGX_DECLINED;
    }

    ngx_rtmp_pgauth_stats_count(ctx->pmcf->stats,
                                NGX_RTMP_PGAUTH_CNT_CACHE_HITS);

    if (!cached.allowed) {
        ngx_rtmp_pgauth_refuse(s, ctx, NGX_RTMP_PGAUTH_OUT_DENIED_CACHE,
                               "no matching key (cached)", NULL);
        return NGX_ERROR;
    }

    *ngx_cpymem(ctx->name, cached.name.data, cached.name.len) = '\0';
    ctx->left = cached.left;
    ctx->asked = ngx_current_msec;

    return ngx_rtmp_pgauth_live_first(s, ctx,
                                      NGX_RTMP_PGAUTH_OUT_ALLOWED_CACHE);
}


/*
 * Live before the session is recorded, on what the cache or the lookup
 * said: the database records it meanwhile and confirms, or the session
 * ends (ngx_rtmp_pgauth_decided() with ctx->confirming).
 */

static ngx_int_t
ngx_rtmp_pgauth_live_first(ngx_rtmp_session_t *s, ngx_rtmp_pgauth_ctx_t *ctx,
    ngx_rtmp_pgauth_outcome_e outcome)
{
    ngx_int_t  rc;

    rc = ngx_rtmp_pgauth_go_live(s, ctx, outcome);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx->confirming = 1;

    if (ngx_rtmp_pgauth_ask(s, ctx) != NGX_OK) {
        ctx->confirming = 0;
        ctx->stale = 1;

        ngx_log_error(NGX_LOG_WARN, s->connection->log, 0,
                      "pgauth: not confirmed app=\"%V\" fp=%s: too many "
                      "decisions queued", &s->app, ctx->fp);
    }

    return NGX_OK;
}


/* the session's state, made on its first publish or play */

ngx_rtmp_pgauth_ctx_t *
ngx_rtmp_pgauth_get_ctx(ngx_rtmp_session_t *s)
{
    ngx_pool_cleanup_t     *cln;
    ngx_rtmp_pgauth_ctx_t  *ctx;

    ctx = ngx_rtmp_get_module_ctx(s, ngx_rtmp_pgauth_module);
    if (ctx) {
        return ctx;
    }

    ctx = ngx_pcalloc(s->connection->pool, sizeof(ngx_rtmp_pgauth_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    /*
     * the pool cleanup runs however the session ends: a pending decision
     * is detached, a publish still open is recorded as ended
     */

    cln = ngx_pool_cleanup_add(s->connection->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_rtmp_pgauth_cleanup;
    cln->data = ctx;

    ctx->session = s;

    /* what the live control asks of the decision */
    ctx->confirm = ngx_rtmp_pgauth_confirm;
    ctx->verified = ngx_rtmp_pgauth_proceed;

    ngx_rtmp_set_ctx(s, ctx, ngx_rtmp_pgauth_module);

    return ctx;
}


/*
 * Sends the authorization query for the session's publish; NGX_BUSY when
 * the queue is full.  The request carries copies of what it binds: it
 * may outlive the session.
 */

static ngx_int_t
ngx_rtmp_pgauth_ask(ngx_rtmp_session_t *s, ngx_rtmp_pgauth_ctx_t *ctx)
{
    size_t                        len;
    ngx_str_t                    *addr;
    ngx_rtmp_pgauth_req_t        *req;
    ngx_rtmp_pgauth_app_conf_t   *pacf;
    ngx_rtmp_pgauth_decision_t   *d;

    pacf = ctx->pacf;

    req = ngx_rtmp_pgauth_req_create(ctx->pool,
                                     sizeof(ngx_rtmp_pgauth_decision_t));
    if (req == NULL) {
        return NGX_ERROR;
    }

    d = (ngx_rtmp_pgauth_decision_t *) (req + 1);

    ngx_memcpy(d->fp, ctx->fp, sizeof(d->fp));
    ngx_memcpy(d->digest, ctx->digest, sizeof(d->digest));
    ngx_memcpy(d->args, ctx->publish.args, sizeof(d->args));
    d->pacf = pacf;

    len = ngx_min(s->app.len, sizeof(d->app) - 1);
    *ngx_cpymem(d->app, s->app.data, len) = '\0';

    addr = &s->connection->addr_text;
    len = ngx_min(addr->len, sizeof(d->addr) - 1);
    *ngx_cpymem(d->addr, addr->data, len) = '\0';

    if (ctx->looking) {
        /* $1 and $2 of the decision: pgauth.look_up() */
        req->query = pacf->lookup;
        req->nparams = 2;

    } else if (ctx->confirming && ctx->reserved[0]) {
        /* live on the lookup: the decision, and $7, the id it drew */
        req->query = pacf->record;
        req->batch = pacf->decide_batch;
        req->nparams = NGX_RTMP_PGAUTH_NPARAMS + 1;

    } else {
        req->query = &pacf->run_query;
        req->batch = pacf->decide_batch;

        /* in a batch with the records of lookups: $7 NULL */
        req->nparams = NGX_RTMP_PGAUTH_NPARAMS + (req->batch != NULL);
    }

    if (pacf->key_hash == NGX_RTMP_PGAUTH_HASH_SHA256) {
        ngx_memcpy(d->key, ctx->digest, NGX_RTMP_PGAUTH_DIGEST_LEN);

        req->values[0] = (char *) d->key;
        req->lengths[0] = NGX_RTMP_PGAUTH_DIGEST_LEN;
        req->formats[0] = 1;
        req->types[0] = NGX_RTMP_PGAUTH_BYTEAOID;

    } else {
        ngx_memcpy(d->key, ctx->key, sizeof(d->key));

        req->values[0] = (char *) d->key;
        req->types[0] = NGX_RTMP_PGAUTH_TEXTOID;
    }

    req->values[1] = (char *) d->app;
    req->types[1] = NGX_RTMP_PGAUTH_TEXTOID;

    if (!ctx->looking) {
        ngx_cpystrn(d->duplicate,
                    (u_char *) (pacf->duplicate == NGX_RTMP_PGAUTH_REFUSE
                                ? "refuse" : "takeover"),
                    sizeof(d->duplicate));

        req->values[2] = (char *) d->addr;
        req->values[3] = (char *) d->args;
        req->values[4] = (char *) d->duplicate;
        req->types[2] = NGX_RTMP_PGAUTH_TEXTOID;
        req->types[3] = NGX_RTMP_PGAUTH_TEXTOID;
        req->types[4] = NGX_RTMP_PGAUTH_TEXTOID;

        /* $6: this worker's sessions of the key whose end is on its way */
        ngx_rtmp_pgauth_live_ending(d->digest, d->ending, sizeof(d->ending));

        req->values[5] = (char *) d->ending;
        req->types[5] = NGX_RTMP_PGAUTH_TEXTOID;

        if (req->query == pacf->record) {
            /* $7: the session gets the id the lookup drew */
            ngx_cpystrn(d->reserved, ctx->reserved, sizeof(d->reserved));

            req->values[6] = (char *) d->reserved;
        }

        req->types[6] = NGX_RTMP_PGAUTH_TEXTOID;
    }

    req->handler = ngx_rtmp_pgauth_decided;
    req->late = ngx_rtmp_pgauth_decided_late;
    req->data = ctx;

    ctx->req = req;
    ctx->asked = ngx_current_msec;
    ctx->mark = ctx->live ? ngx_rtmp_pgauth_live_mark(ctx->live) : 0;

    if (ngx_rtmp_pgauth_req_submit(req, pacf->timeout) != NGX_OK) {
        ctx->req = NULL;
        ngx_rtmp_pgauth_req_free(req);
        return NGX_BUSY;
    }

    return NGX_OK;
}


/*
 * A session admitted from the cache while the database was unreachable
 * is authorized properly once it answers again.
 */

static void
ngx_rtmp_pgauth_confirm(ngx_rtmp_pgauth_ctx_t *ctx)
{
    if (!ctx->stale || ctx->req || ctx->kicked || ctx->confirming) {
        return;
    }

    ctx->confirming = 1;

    if (ngx_rtmp_pgauth_ask(ctx->session, ctx) != NGX_OK) {
        ctx->confirming = 0;
    }
}


/* the key's SHA-256 digest, and the fingerprint that names it in logs
   without revealing it */

static void
ngx_rtmp_pgauth_digest(const EVP_MD *md, u_char *key, u_char *digest,
    u_char *fp)
{
    EVP_Digest(key, ngx_strlen(key), digest, NULL, md, NULL);
    *ngx_hex_dump(fp, digest, NGX_RTMP_PGAUTH_FP_LEN / 2) = '\0';
}


/* what can be refused without asking the database */

static ngx_int_t
ngx_rtmp_pgauth_check(ngx_rtmp_session_t *s, ngx_rtmp_pgauth_ctx_t *ctx,
    ngx_rtmp_publish_t *v)
{
    size_t      len;
    ngx_msec_t  left;

    len = ngx_strlen(v->name);

    ngx_rtmp_pgauth_digest(ctx->sha256, v->name, ctx->digest, ctx->fp);

    if (ctx->pacf->limit) {
        if (ngx_rtmp_pgauth_limit_take(ctx->pacf->limit, s->connection,
                                       &left)
            == NGX_BUSY)
        {
            ngx_rtmp_pgauth_refuse(s, ctx, NGX_RTMP_PGAUTH_OUT_BLOCKED,
                                   "address blocked", NULL);
            return NGX_ERROR;
        }

        ctx->limited = 1;
    }

    if (len == 0) {
        ngx_rtmp_pgauth_refuse(s, ctx, NGX_RTMP_PGAUTH_OUT_DENIED,
                               "empty stream key", NULL);
        return NGX_ERROR;
    }

    if (ctx->pacf->key_hash == NGX_RTMP_PGAUTH_HASH_NONE
        && ngx_rtmp_pgauth_utf8(v->name, len) != NGX_OK)
    {
        ngx_rtmp_pgauth_refuse(s, ctx, NGX_RTMP_PGAUTH_OUT_DENIED,
                               "stream key is not UTF-8", NULL);
        return NGX_ERROR;
    }

    if (ngx_rtmp_pgauth_utf8(v->args, ngx_strlen(v->args)) != NGX_OK) {
        ngx_rtmp_pgauth_refuse(s, ctx, NGX_RTMP_PGAUTH_OUT_DENIED,
                               "publish arguments are not UTF-8", NULL);
        return NGX_ERROR;
    }

    if (ctx->pool == NULL) {
        ngx_rtmp_pgauth_refuse(s, ctx, NGX_RTMP_PGAUTH_OUT_UNAVAILABLE,
                               "no pool in this process", NULL);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The database's answer to the authorization: refused, or allowed with a
 * session, which goes live once what must come first is done (see
 * ngx_rtmp_pgauth_proceed()).
 */

static void
ngx_rtmp_pgauth_decided(ngx_rtmp_pgauth_req_t *req, ngx_uint_t rc,
    PGresult *res, ngx_str_t *err)
{
    ngx_str_t               name;
    ngx_uint_t              lookup;
    ngx_rtmp_session_t     *s;
    ngx_rtmp_pgauth_ctx_t  *ctx;

    ctx = req->data;
    s = ctx->session;

    ctx->req = NULL;

    /* the answer of pgauth_lookup_first's lookup, or of the decision */
    lookup = ctx->looking;
    ctx->looking = 0;

    if (rc == NGX_RTMP_PGAUTH_TIMEDOUT) {

        if (ctx->confirming) {
            /* live already: a late record ends for why it was not in time */
            req->end = NGX_RTMP_PGAUTH_END_UNVERIFIED;
        }

        ngx_rtmp_pgauth_unreachable(s, ctx, "timed out",
                                    NGX_RTMP_PGAUTH_CNT_DB_TIMEOUTS, NULL);
        return;
    }

    if (rc != NGX_RTMP_PGAUTH_RESULT) {

        if (lookup && ngx_rtmp_pgauth_no_look_up(s, ctx, res, err)) {
            return;
        }

        ngx_rtmp_pgauth_failed(s, ctx, res, err);
        return;
    }

    if (PQntuples(res) == 0 || PQnfields(res) == 0) {

        if (ctx->pacf->cache) {
            ngx_rtmp_pgauth_cache_put(ctx->pacf->cache, ctx->digest, &s->app,
                                      0, NULL, 0, 0, s->connection->log);
        }

        if (ctx->confirming) {
            ngx_rtmp_pgauth_live_kick(ctx, NGX_RTMP_PGAUTH_END_REVOKED);
            return;
        }

        ngx_rtmp_pgauth_refuse(s, ctx, NGX_RTMP_PGAUTH_OUT_DENIED,
                               "no matching key", NULL);
        return;
    }

    if (ngx_rtmp_pgauth_allow(s, ctx, res, &name) != NGX_OK) {
        return;
    }

    if (ctx->pacf->cache) {
        ngx_rtmp_pgauth_cache_put(ctx->pacf->cache, ctx->digest, &s->app, 1,
                                  name.data, name.len, ctx->left,
                                  s->connection->log);
    }

    if (lookup) {
        /*
         * no session yet, no takeover: live, and the decision follows,
         * with the id the lookup drew for the session (none from a
         * schema older than the module)
         */

        ngx_memcpy(ctx->reserved, ctx->sid, sizeof(ctx->reserved));
        ctx->sid[0] = '\0';

        if (ngx_rtmp_pgauth_live_first(s, ctx,
                                       NGX_RTMP_PGAUTH_OUT_ALLOWED_LOOKUP)
            != NGX_OK)
        {
            ngx_rtmp_finalize_session(s);
        }

        return;
    }

    if (ctx->live) {
        /* notifications may name the session from now on */
        ngx_rtmp_pgauth_live_index(ctx->live, ctx);

        ctx->verify = ngx_rtmp_pgauth_live_hinted(ctx->live, ctx->sid,
                                                  ctx->mark);
    }

    ngx_rtmp_pgauth_proceed(ctx);
}


/*
 * A schema older than the module has no pgauth.look_up(), or the role may
 * not run it: the worker stops asking it, and this publish asks the
 * decision instead.
 */

static ngx_uint_t
ngx_rtmp_pgauth_no_look_up(ngx_rtmp_session_t *s, ngx_rtmp_pgauth_ctx_t *ctx,
    PGresult *res, ngx_str_t *err)
{
    u_char   buf[NGX_MAX_ERROR_STR];
    char    *state;

    state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    if (state == NULL
        || (ngx_strcmp(state, NGX_RTMP_PGAUTH_SQLSTATE_NO_FUNCTION) != 0
            && ngx_strcmp(state, NGX_RTMP_PGAUTH_SQLSTATE_PRIV) != 0))
    {
        return 0;
    }

    ngx_rtmp_pgauth_scrub_err(ctx, err, buf, sizeof(buf));

    ngx_log_error(NGX_LOG_WARN, s->connection->log, 0,
                  "pgauth: pgauth.look_up() failed: %V; publishes wait for "
                  "their session to be recorded (apply pgauth.sql of this "
                  "version)", err);

    ngx_rtmp_pgauth_no_lookup = 1;

    if (ngx_rtmp_pgauth_ask(s, ctx) != NGX_OK) {
        ngx_rtmp_pgauth_refuse(s, ctx, NGX_RTMP_PGAUTH_OUT_UNAVAILABLE,
                               "too many decisions queued", NULL);
    }

    return 1;
}


/*
 * With pgauth_key_hash none the server's message may quote what it was
 * given: the key.  It is replaced in *err, which then points into buf.
 */

static void
ngx_rtmp_pgauth_scrub_err(ngx_rtmp_pgauth_ctx_t *ctx, ngx_str_t *err,
    u_char *buf, size_t size)
{
    u_char  *p;

    if (ctx->pacf->key_hash != NGX_RTMP_PGAUTH_HASH_NONE) {
        return;
    }

    p = ngx_rtmp_pgauth_scrub(buf, size, err->data, err->len, ctx->key,
                              ngx_strlen(ctx->key));
    err->data = buf;
    err->len = p - buf;
}


/*
 * The authorization failed: PA001 says the name is live and
 * pgauth_duplicate refuse; any other error is the database's trouble.
 */

static void
ngx_rtmp_pgauth_failed(ngx_rtmp_session_t *s, ngx_rtmp_pgauth_ctx_t *ctx,
    PGresult *res, ngx_str_t *err)
{
    u_char   buf[NGX_MAX_ERROR_STR];
    char    *state;

    state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    if (state && ngx_strcmp(state, NGX_RTMP_PGAUTH_SQLSTATE_BUSY) == 0) {

        /* the name is live, and pgauth_duplicate refuse */

        if (ctx->confirming) {
            ngx_rtmp_pgauth_live_kick(ctx, NGX_RTMP_PGAUTH_END_ALREADY_LIVE);
            return;
        }

        ngx_rtmp_pgauth_refuse(s, ctx, NGX_RTMP_PGAUTH_OUT_ALREADY_LIVE,
                               "already live", NULL);
        return;
    }

    ngx_rtmp_pgauth_scrub_err(ctx, err, buf, sizeof(buf));

    ngx_rtmp_pgauth_unreachable(s, ctx, "database error",
                                NGX_RTMP_PGAUTH_CNT_DB_ERRORS, err);
}


/*
 * Takes what an allowing reply says: the session id, the public name
 * (checked; *name is the database's, for the cache), how long it holds,
 * whether another publisher must be taken over first.
 */

static ngx_int_t
ngx_rtmp_pgauth_allow(ngx_rtmp_session_t *s, ngx_rtmp_pgauth_ctx_t *ctx,
    PGresult *res, ngx_str_t *name)
{
    int         n;
    size_t      len;
    u_char     *value;
    ngx_str_t   reason;
    ngx_msec_t  left;

    ctx->sid[0] = '\0';

    if (PQnfields(res) > 1 && !PQgetisnull(res, 0, 1)) {
        value = (u_char *) PQgetvalue(res, 0, 1);
        len = PQgetlength(res, 0, 1);

        if (len >= sizeof(ctx->sid)) {
            ngx_str_set(&reason, "session id too long");
            ngx_rtmp_pgauth_refuse(s, ctx, NGX_RTMP_PGAUTH_OUT_UNAVAILABLE,
                                   "bad reply", &reason);
            return NGX_ERROR;
        }

        ngx_memcpy(ctx->sid, value, len + 1);
    }

    /* the session is open in the database from here on */
    ctx->allowed = 1;

    name->len = 0;
    name->data = NULL;

    if (!PQgetisnull(res, 0, 0)) {
        name->data = (u_char *) PQgetvalue(res, 0, 0);
        name->len = PQgetlength(res, 0, 0);

        if (ngx_rtmp_pgauth_public_name(name->data, name->len) != NGX_OK) {
            ngx_str_set(&reason, "unusable stream name");

            if (ctx->kicked) {
                return NGX_ERROR;
            }

            ngx_rtmp_pgauth_refuse(s, ctx, NGX_RTMP_PGAUTH_OUT_UNAVAILABLE,
                                   "bad reply", &reason);
            return NGX_ERROR;
        }
    }

    if (!ctx->confirming) {
        /* live from the cache, it keeps the name it went live with */
        *ngx_cpymem(ctx->name, name->data, name->len) = '\0';
    }

    /* column 3: how many seconds the authorization holds */

    left = 0;

    if (PQnfields(res) > 2 && !PQgetisnull(res, 0, 2)
        && ngx_rtmp_pgauth_parse_seconds((u_char *) PQgetvalue(res, 0, 2),
                                         PQgetlength(res, 0, 2), &left)
           == NGX_OK
        && left == 0)
    {
        /* expires this very moment */
        left = 1;
    }

    ctx->left = left;

    /* "takeover": another publisher of the name is to be taken over */

    n = PQfnumber(res, "takeover");

    ctx->takeover = (n >= 0 && !PQgetisnull(res, 0, n)
                     && PQgetvalue(res, 0, n)[0] == 't');

    return NGX_OK;
}


/*
 * An allowed session on its way to live: first the database is asked
 * whether a notification about it was right, then it takes the stream
 * over from another publisher, then it goes live (or, live from the
 * cache already, is confirmed).  Each step that asks the database comes
 * back here.
 */

static void
ngx_rtmp_pgauth_proceed(ngx_rtmp_pgauth_ctx_t *ctx)
{
    if (ctx->verify) {
        ctx->verify = 0;
        ngx_rtmp_pgauth_live_verify(ctx->live, ctx);
        return;
    }

    if (ctx->takeover) {
        ctx->takeover = 0;
        ngx_rtmp_pgauth_take_over(ctx);
        return;
    }

    if (ctx->confirming) {
        ngx_rtmp_pgauth_confirmed(ctx);
        return;
    }

    if (ngx_rtmp_pgauth_go_live(ctx->session, ctx, NGX_RTMP_PGAUTH_OUT_ALLOWED)
        != NGX_OK)
    {
        ngx_rtmp_finalize_session(ctx->session);
    }
}


/*
 * The client is still there: its session takes the stream over.  The
 * takeover was left to this moment so that a decision the client no
 * longer waits for ends no one else.  From here the client waits for the
 * answer: it is not refused for time before the server would have given
 * up on the statement itself (statement_timeout), or the connection
 * failed.
 */

static void
ngx_rtmp_pgauth_take_over(ngx_rtmp_pgauth_ctx_t *ctx)
{
    size_t                  len;
    ngx_str_t               err;
    ngx_rtmp_pgauth_req_t  *req;

    len = ngx_strlen(ctx->sid);

    req = ngx_rtmp_pgauth_req_create(ctx->pool, len + 1);
    if (req == NULL) {
        ngx_str_set(&err, "out of memory");
        ngx_rtmp_pgauth_take_over_failed(ctx, &err);
        return;
    }

    ngx_memcpy(req + 1, ctx->sid, len + 1);

    req->query = &ngx_rtmp_pgauth_take_over_query;
    req->values[0] = (char *) (req + 1);
    req->nparams = 1;
    req->handler = ngx_rtmp_pgauth_took_over;
    req->data = ctx;
    req->urgent = 1;
    req->head = 1;

    ctx->req = req;

    if (ngx_rtmp_pgauth_req_submit(req, ctx->pmcf->max_timeout
                                        + 2 * NGX_RTMP_PGAUTH_GRACE)
        != NGX_OK)
    {
        ctx->req = NULL;
        ngx_rtmp_pgauth_req_free(req);

        ngx_str_set(&err, "the worker is exiting");
        ngx_rtmp_pgauth_take_over_failed(ctx, &err);
    }
}


static void
ngx_rtmp_pgauth_took_over(ngx_rtmp_pgauth_req_t *req, ngx_uint_t rc,
    PGresult *res, ngx_str_t *err)
{
    ngx_rtmp_pgauth_ctx_t  *ctx;

    ctx = req->data;
    ctx->req = NULL;

    if (rc != NGX_RTMP_PGAUTH_RESULT) {
        ngx_rtmp_pgauth_stats_count(ctx->pmcf->stats,
                                    rc == NGX_RTMP_PGAUTH_TIMEDOUT
                                    ? NGX_RTMP_PGAUTH_CNT_DB_TIMEOUTS
                                    : NGX_RTMP_PGAUTH_CNT_DB_ERRORS);

        ngx_rtmp_pgauth_take_over_failed(ctx, err);
        return;
    }

    if (PQntuples(res) != 1 || PQnfields(res) < 1
        || PQgetvalue(res, 0, 0)[0] != 't')
    {
        /* a later publish of the name holds it: this one lost */
        ngx_rtmp_pgauth_live_kick(ctx, NGX_RTMP_PGAUTH_END_TAKEOVER);
        return;
    }

    /* the others are ended: this one holds the name */
    ctx->won = 1;

    ngx_rtmp_pgauth_proceed(ctx);
}


/* no answer about the takeover: refused, or ended when live from the cache */

static void
ngx_rtmp_pgauth_take_over_failed(ngx_rtmp_pgauth_ctx_t *ctx, ngx_str_t *err)
{
    if (ctx->confirming) {
        ngx_rtmp_pgauth_live_kick(ctx, NGX_RTMP_PGAUTH_END_UNVERIFIED);
        return;
    }

    ngx_rtmp_pgauth_refuse(ctx->session, ctx,
                           NGX_RTMP_PGAUTH_OUT_UNAVAILABLE,
                           "takeover failed", err);
}


/* live from the cache already: the database recorded the session */

static void
ngx_rtmp_pgauth_confirmed(ngx_rtmp_pgauth_ctx_t *ctx)
{
    ngx_rtmp_session_t  *s;

    s = ctx->session;

    /* at notice, as the allowed line: the session id is in one of them */

    ngx_log_error(NGX_LOG_NOTICE, s->connection->log, 0,
                  "pgauth: confirmed app=\"%V\" name=\"%s\" fp=%s "
                  "session=\"%s\" time=%Mms",
                  &s->app, ctx->name[0] ? ctx->name : (u_char *) "-",
                  ctx->fp, ctx->sid, ngx_current_msec - ctx->asked);

    ctx->confirming = 0;
    ctx->stale = 0;

    if (ctx->left) {
        ngx_rtmp_pgauth_live_expire_in(ctx, ctx->left);
    }
}


/*
 * No answer from the database.  Refused, unless the cache has allowed the
 * key recently enough and pgauth_cache_fallback says to use that.
 */

static void
ngx_rtmp_pgauth_unreachable(ngx_rtmp_session_t *s,
    ngx_rtmp_pgauth_ctx_t *ctx, const char *reason, ngx_uint_t counter,
    ngx_str_t *err)
{
    ngx_str_t                 empty = ngx_null_string;
    ngx_rtmp_pgauth_cached_t  cached;

    if (err == NULL) {
        err = &empty;
    }

    ngx_rtmp_pgauth_stats_count(ctx->pmcf->stats, counter);

    if (ctx->pacf->cache == NULL
        || ctx->pacf->cache_fallback == 0
        || ngx_rtmp_pgauth_cache_get(ctx->pacf->cache, ctx->digest, &s->app,
                                     ctx->pacf->cache_fallback, &cached)
           != NGX_OK
        || !cached.allowed)
    {
        if (ctx->confirming) {
            ngx_rtmp_pgauth_live_kick(ctx, NGX_RTMP_PGAUTH_END_UNVERIFIED);
            return;
        }

        ngx_rtmp_pgauth_refuse(s, ctx, NGX_RTMP_PGAUTH_OUT_UNAVAILABLE, reason,
                               err->len ? err : NULL);
        return;
    }

    /* each use is logged: the operator asked for it, and should see it */

    ngx_log_error(NGX_LOG_WARN, s->connection->log, 0,
                  "pgauth: %s app=\"%V\" addr=\"%V\" fp=%s from the cache "
                  "(allowed %Ms ago): database unreachable: %s%s%V",
                  ctx->confirming ? "kept" : "admitted", &s->app,
                  &s->connection->addr_text, ctx->fp, cached.age / 1000,
                  reason, err->len ? ": " : "", err);

    ctx->stale = 1;

    if (ctx->confirming) {
        ctx->confirming = 0;
        return;
    }

    *ngx_cpymem(ctx->name, cached.name.data, cached.name.len) = '\0';
    ctx->left = cached.left;

    if (ngx_rtmp_pgauth_go_live(s, ctx, NGX_RTMP_PGAUTH_OUT_ALLOWED_STALE)
        != NGX_OK)
    {
        ngx_rtmp_finalize_session(s);
    }
}


/*
 * The publish is allowed: renamed to the public name (ctx->name),
 * registered for live control, then the chain goes on: at once, or, when
 * a publisher of the same name in this worker is being taken over, from
 * an event posted after its close.  outcome: one of the allowed ones,
 * by the database or by the cache.
 */

static ngx_int_t
ngx_rtmp_pgauth_go_live(ngx_rtmp_session_t *s, ngx_rtmp_pgauth_ctx_t *ctx,
    ngx_rtmp_pgauth_outcome_e outcome)
{
    size_t                  len;
    ngx_str_t               pub;
    ngx_uint_t              newer;
    ngx_rtmp_pgauth_ctx_t  *old;

    ctx->allowed = 1;
    ctx->kicked = 0;
    ctx->end = NGX_RTMP_PGAUTH_END_NONE;

    if (outcome != NGX_RTMP_PGAUTH_OUT_ALLOWED) {
        /* the database has not said yet: no session id */
        ctx->sid[0] = '\0';
    }

    len = ngx_strlen(ctx->name);

    if (len) {
        /* the key goes, all of it, and the public name takes its place */
        ngx_explicit_memzero(ctx->publish.name, sizeof(ctx->publish.name));
        ngx_memcpy(ctx->publish.name, ctx->name, len);
    }

    ngx_rtmp_pgauth_stats_outcome(ctx, outcome);
    ngx_rtmp_pgauth_limit_give_back(ctx, 0);

    /* another publisher of the name in this worker (none has a session id
       newer than an empty one, from the cache) */

    old = len ? ngx_rtmp_pgauth_live_find_name(ctx->live, ctx, &newer)
              : NULL;

    if (old && newer && !ctx->won) {
        /* a later publish of the name is live here: this one lost */
        ngx_rtmp_pgauth_live_kick(ctx, NGX_RTMP_PGAUTH_END_TAKEOVER);
        return NGX_OK;
    }

    if (ctx->left) {
        ngx_rtmp_pgauth_live_expire_in(ctx, ctx->left);
    }

    if (ctx->listed == NULL) {
        pub.data = ctx->name;
        pub.len = len;

        ctx->listed = ngx_rtmp_pgauth_stats_stream_add(ctx->pmcf->stats,
                                                       ctx->pmcf->stats_zone,
                                                       &pub, &s->app,
                                                       &s->connection
                                                           ->addr_text);
    }

    ngx_log_error(NGX_LOG_NOTICE, s->connection->log, 0,
                  "pgauth: allowed app=\"%V\" name=\"%s\" addr=\"%V\" "
                  "fp=%s session=\"%s\" time=%Mms%s",
                  &s->app, len ? ctx->name : (u_char *) "-",
                  &s->connection->addr_text, ctx->fp, ctx->sid,
                  ngx_current_msec - ctx->asked,
                  ngx_rtmp_pgauth_outcomes[outcome].via);

    ngx_rtmp_pgauth_live_add(ctx->live, ctx);

    /*
     * The database has ended any other publisher of the name, and its
     * notification may have been handled already.  One in this worker
     * holds the name in the live module until its close event, posted by
     * the kick, has run: publish from an event posted after it.
     */

    if (old) {
        ngx_rtmp_pgauth_live_kick(old, NGX_RTMP_PGAUTH_END_TAKEOVER);

        ctx->resume.handler = ngx_rtmp_pgauth_resume;
        ctx->resume.data = ctx;
        ctx->resume.log = s->connection->log;

        ngx_post_event(&ctx->resume, &ngx_posted_events);
        return NGX_OK;
    }

    return next_publish(s, &ctx->publish);
}


static void
ngx_rtmp_pgauth_resume(ngx_event_t *ev)
{
    ngx_rtmp_pgauth_ctx_t  *ctx = ev->data;

    if (next_publish(ctx->session, &ctx->publish) != NGX_OK) {
        ngx_rtmp_finalize_session(ctx->session);
    }
}


/*
 * The reply came after the client was refused or had gone.  If the
 * database opened a session for it, close that session again: for why
 * it ended, when it was live before the record.
 */

static void
ngx_rtmp_pgauth_decided_late(ngx_rtmp_pgauth_req_t *req, ngx_uint_t rc,
    PGresult *res, ngx_str_t *err)
{
    size_t                       len;
    u_char                      *sid;
    ngx_uint_t                   end;
    ngx_rtmp_pgauth_decision_t  *d;

    d = (ngx_rtmp_pgauth_decision_t *) (req + 1);

    if (req->query == d->pacf->record) {
        /* its session was held as ending (its client left), or not */
        ngx_rtmp_pgauth_live_ending_drop(d->digest, d->reserved);
    }

    if (rc != NGX_RTMP_PGAUTH_RESULT
        || PQntuples(res) == 0
        || PQnfields(res) < 2
        || PQgetisnull(res, 0, 1))
    {
        return;
    }

    if (req->query == d->pacf->lookup) {
        /* the id a lookup drew: no session has it */
        return;
    }

    sid = (u_char *) PQgetvalue(res, 0, 1);
    len = PQgetlength(res, 0, 1);

    ngx_log_error(NGX_LOG_NOTICE, req->log, 0,
                  "pgauth: late reply for app=\"%s\" addr=\"%s\" fp=%s, "
                  "ending session \"%*s\"",
                  d->app, d->addr, d->fp, ngx_min(len, 64), sid);

    end = req->end ? req->end : NGX_RTMP_PGAUTH_END_CLIENT_GONE;

    ngx_rtmp_pgauth_live_record_end(req->pool, d->pacf, sid, len, d->digest,
                                    &ngx_rtmp_pgauth_ends[end].reason);
}


/*
 * Tells the client why in an onStatus it can print, then closes.  Never
 * tells whether the key exists: a wrong, disabled, expired or foreign key
 * all read "rejected"; only the database's trouble reads differently.
 */

static void
ngx_rtmp_pgauth_refuse(ngx_rtmp_session_t *s, ngx_rtmp_pgauth_ctx_t *ctx,
    ngx_rtmp_pgauth_outcome_e outcome, const char *reason, ngx_str_t *err)
{
    ngx_str_t                   empty = ngx_null_string;
    ngx_rtmp_pgauth_outcome_t  *o;

    if (err == NULL) {
        err = &empty;
    }

    o = &ngx_rtmp_pgauth_outcomes[outcome];

    ngx_rtmp_pgauth_stats_outcome(ctx, outcome);

    ngx_log_error(o->level, s->connection->log, 0,
                  "pgauth: refused app=\"%V\" addr=\"%V\" fp=%s "
                  "reason=\"%s%s%V\"",
                  &s->app, &s->connection->addr_text, ctx->fp,
                  reason, err->len ? ": " : "", err);

    if (o->failed) {
        ngx_rtmp_pgauth_limit_give_back(ctx, 1);
    }

    ngx_rtmp_send_status(s, o->code, "error", o->desc);

    ngx_rtmp_pgauth_live_end(ctx, NGX_RTMP_PGAUTH_END_REFUSED);

    ngx_rtmp_finalize_session(s);
}


static ngx_int_t
ngx_rtmp_pgauth_close_stream(ngx_rtmp_session_t *s,
    ngx_rtmp_close_stream_t *v)
{
    ngx_rtmp_pgauth_ctx_t  *ctx;

    ctx = ngx_rtmp_get_module_ctx(s, ngx_rtmp_pgauth_module);

    if (ctx) {
        /* a closing connection closes its streams */
        ngx_rtmp_pgauth_live_end(ctx, s->connection->destroyed
                                 ? NGX_RTMP_PGAUTH_END_DISCONNECT
                                 : NGX_RTMP_PGAUTH_END_UNPUBLISH);
    }

    return next_close_stream(s, v);
}


static void
ngx_rtmp_pgauth_cleanup(void *data)
{
    ngx_rtmp_pgauth_ctx_t  *ctx = data;

    /* the connection goes, with what it publishes and what it plays */
    ngx_rtmp_pgauth_live_play_end(ctx, NGX_RTMP_PGAUTH_END_DISCONNECT);
    ngx_rtmp_pgauth_live_end(ctx, NGX_RTMP_PGAUTH_END_DISCONNECT);
}


