
/*
 * Copyright (C) ngx_rtmp_pgauth authors
 */


/*
 * pgauth_play: RTMP play of an application with a viewer token,
 * "rtmp://host/app/name?token=...".  The play waits for
 * pgauth.authorize_viewer() (through the worker's pool), then the chain
 * goes on, or the player gets an onStatus error and is closed.  Once
 * playing, the session is the live control's (live.c): its token's
 * expiry, revocation and deletion end it, and its end is recorded.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_rtmp_pgauth_module.h"


#define NGX_RTMP_PGAUTH_PLAY_QUERY                                          \
    "SELECT session_id, valid_for"                                          \
    " FROM pgauth.authorize_viewer($1, $2, $3, $4, 'rtmp')"

#define NGX_RTMP_PGAUTH_PLAY_FAILED    "NetStream.Play.Failed"
#define NGX_RTMP_PGAUTH_PLAY_DENIED    "Viewer token rejected"


/* what a play request carries: it may outlive the session */

typedef struct {
    u_char                          digest[NGX_RTMP_PGAUTH_DIGEST_LEN];
    u_char                          app[NGX_RTMP_MAX_NAME];
    u_char                          name[NGX_RTMP_MAX_NAME];
    u_char                          addr[NGX_SOCKADDR_STRLEN + 1];
} ngx_rtmp_pgauth_play_args_t;


static ngx_int_t ngx_rtmp_pgauth_play(ngx_rtmp_session_t *s,
    ngx_rtmp_play_t *v);
static ngx_int_t ngx_rtmp_pgauth_play_token(ngx_rtmp_play_t *v,
    u_char *digest, const EVP_MD *md);
static void ngx_rtmp_pgauth_play_decided(ngx_rtmp_pgauth_req_t *req,
    ngx_uint_t rc, PGresult *res, ngx_str_t *err);
static void ngx_rtmp_pgauth_play_refuse(ngx_rtmp_session_t *s,
    ngx_rtmp_pgauth_ctx_t *ctx, const char *code, const char *desc,
    const char *reason);
static ngx_int_t ngx_rtmp_pgauth_play_close(ngx_rtmp_session_t *s,
    ngx_rtmp_close_stream_t *v);


static ngx_str_t  ngx_rtmp_pgauth_play_query =
    ngx_string(NGX_RTMP_PGAUTH_PLAY_QUERY);


static ngx_rtmp_play_pt          next_play;
static ngx_rtmp_close_stream_pt  next_close_stream;


ngx_int_t
ngx_rtmp_pgauth_play_init(ngx_conf_t *cf)
{
    next_play = ngx_rtmp_play;
    ngx_rtmp_play = ngx_rtmp_pgauth_play;

    next_close_stream = ngx_rtmp_close_stream;
    ngx_rtmp_close_stream = ngx_rtmp_pgauth_play_close;

    return NGX_OK;
}


static ngx_int_t
ngx_rtmp_pgauth_play(ngx_rtmp_session_t *s, ngx_rtmp_play_t *v)
{
    ngx_str_t                     name;
    ngx_rtmp_pgauth_req_t        *req;
    ngx_rtmp_pgauth_ctx_t        *ctx;
    ngx_rtmp_pgauth_app_conf_t   *pacf;
    ngx_rtmp_pgauth_main_conf_t  *pmcf;

    if (s->auto_pushed || s->relay) {
        goto next;
    }

    pacf = ngx_rtmp_get_module_app_conf(s, ngx_rtmp_pgauth_module);

    if (pacf == NULL || !pacf->play) {
        goto next;
    }

    ctx = ngx_rtmp_pgauth_get_ctx(s);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    if (ctx->play_req || ctx->playing) {
        ngx_rtmp_pgauth_play_refuse(s, ctx, NGX_RTMP_PGAUTH_PLAY_FAILED,
                                    "Already playing", "play while playing");
        return NGX_ERROR;
    }

    pmcf = ngx_rtmp_get_module_main_conf(s, ngx_rtmp_pgauth_module);

    ctx->pacf = pacf;
    ctx->pmcf = pmcf;
    ctx->pool = pmcf->pool;
    ctx->live = pmcf->live;
    ctx->play_start = ngx_current_msec;

    ngx_memcpy(&ctx->play, v, sizeof(ngx_rtmp_play_t));

    if (ngx_rtmp_pgauth_play_token(&ctx->play, ctx->play_digest,
                                   pmcf->sha256 ? pmcf->sha256
                                                : EVP_sha256())
        != NGX_OK)
    {
        ngx_rtmp_pgauth_play_refuse(s, ctx, NGX_RTMP_PGAUTH_PLAY_FAILED,
                                    NGX_RTMP_PGAUTH_PLAY_DENIED, "no token");
        return NGX_ERROR;
    }

    /* nginx-rtmp's own copy (a static buffer) keeps no token either */
    ngx_memcpy(v->args, ctx->play.args, sizeof(v->args));

    if (ctx->pool == NULL) {
        ngx_rtmp_pgauth_play_refuse(s, ctx, "NetStream.Failed",
                                    NGX_RTMP_PGAUTH_FAILED_DESC,
                                    "no pool in this process");
        return NGX_ERROR;
    }

    name.data = v->name;
    name.len = ngx_strlen(v->name);

    req = ngx_rtmp_pgauth_viewer_request(ctx->pool, &ngx_rtmp_pgauth_play_query,
                                         ctx->play_digest, &s->app, &name,
                                         &s->connection->addr_text);
    if (req == NULL) {
        return NGX_ERROR;
    }

    req->handler = ngx_rtmp_pgauth_play_decided;
    req->data = ctx;

    /* before: the pool may decide at once, from inside submit() */
    ctx->play_req = req;

    if (ngx_rtmp_pgauth_req_submit(req, pacf->timeout) != NGX_OK) {
        ctx->play_req = NULL;
        ngx_rtmp_pgauth_req_free(req);
        ngx_rtmp_pgauth_play_refuse(s, ctx, "NetStream.Failed",
                                    NGX_RTMP_PGAUTH_FAILED_DESC,
                                    "too many decisions queued");
        return NGX_ERROR;
    }

    return NGX_OK;

next:

    return next_play(s, v);
}


/*
 * A request of pgauth.authorize_viewer() (query: for HLS or RTMP) with
 * copies of what it binds: it may outlive whoever asked.
 */

ngx_rtmp_pgauth_req_t *
ngx_rtmp_pgauth_viewer_request(ngx_rtmp_pgauth_pool_t *pool, ngx_str_t *query,
    u_char *digest, ngx_str_t *app, ngx_str_t *name, ngx_str_t *addr)
{
    size_t                        len;
    ngx_rtmp_pgauth_req_t        *req;
    ngx_rtmp_pgauth_play_args_t  *a;

    req = ngx_rtmp_pgauth_req_create(pool,
                                     sizeof(ngx_rtmp_pgauth_play_args_t));
    if (req == NULL) {
        return NULL;
    }

    a = (ngx_rtmp_pgauth_play_args_t *) (req + 1);

    ngx_memcpy(a->digest, digest, NGX_RTMP_PGAUTH_DIGEST_LEN);

    len = ngx_min(app->len, sizeof(a->app) - 1);
    *ngx_cpymem(a->app, app->data, len) = '\0';

    len = ngx_min(name->len, sizeof(a->name) - 1);
    *ngx_cpymem(a->name, name->data, len) = '\0';

    len = ngx_min(addr->len, sizeof(a->addr) - 1);
    *ngx_cpymem(a->addr, addr->data, len) = '\0';

    req->query = query;
    req->nparams = 4;

    req->values[0] = (char *) a->digest;
    req->lengths[0] = NGX_RTMP_PGAUTH_DIGEST_LEN;
    req->formats[0] = 1;
    req->types[0] = NGX_RTMP_PGAUTH_BYTEAOID;

    req->values[1] = (char *) a->app;
    req->values[2] = (char *) a->name;
    req->values[3] = (char *) a->addr;
    req->types[1] = NGX_RTMP_PGAUTH_TEXTOID;
    req->types[2] = NGX_RTMP_PGAUTH_TEXTOID;
    req->types[3] = NGX_RTMP_PGAUTH_TEXTOID;

    return req;
}


/*
 * The digest of the "token" argument, which is masked in place: what
 * nginx-rtmp logs of the play, and passes on, does not hold it.
 */

static ngx_int_t
ngx_rtmp_pgauth_play_token(ngx_rtmp_play_t *v, u_char *digest,
    const EVP_MD *md)
{
    u_char     *p, *last, *t;
    ngx_int_t   rc;

    rc = NGX_DECLINED;

    p = v->args;
    last = v->args + ngx_strlen(v->args);

    while (p + 6 <= last) {

        if (ngx_strncasecmp(p, (u_char *) "token=", 6) == 0
            && (p == v->args || p[-1] == '&'))
        {
            t = p + 6;

            for (p = t; p < last && *p != '&'; p++) { /* void */ }

            if (rc != NGX_OK && p > t) {
                EVP_Digest(t, p - t, digest, NULL, md, NULL);
                rc = NGX_OK;
            }

            ngx_memset(t, '*', p - t);
            continue;
        }

        p++;
    }

    return rc;
}


static void
ngx_rtmp_pgauth_play_decided(ngx_rtmp_pgauth_req_t *req, ngx_uint_t rc,
    PGresult *res, ngx_str_t *err)
{
    ngx_rtmp_pgauth_ctx_t  *ctx = req->data;

    size_t               len;
    u_char               fp[NGX_RTMP_PGAUTH_FP_LEN + 1];
    ngx_msec_t           left;
    ngx_rtmp_session_t  *s;

    s = ctx->session;
    ctx->play_req = NULL;

    if (s->connection->destroyed) {
        return;
    }

    *ngx_hex_dump(fp, ctx->play_digest, NGX_RTMP_PGAUTH_FP_LEN / 2) = '\0';

    if (rc != NGX_RTMP_PGAUTH_RESULT) {
        ngx_rtmp_pgauth_stats_viewer(ctx->pmcf->stats,
                                     NGX_RTMP_PGAUTH_OUT_VIEWER_UNAVAILABLE);
        ngx_rtmp_pgauth_play_refuse(s, ctx, "NetStream.Failed",
                                    NGX_RTMP_PGAUTH_FAILED_DESC,
                                    rc == NGX_RTMP_PGAUTH_TIMEDOUT
                                    ? "timed out" : "database error");
        return;
    }

    if (PQntuples(res) != 1 || PQnfields(res) < 2 || PQgetisnull(res, 0, 0)
        || PQgetlength(res, 0, 0) >= NGX_RTMP_PGAUTH_SID_LEN)
    {
        ngx_rtmp_pgauth_stats_viewer(ctx->pmcf->stats,
                                     NGX_RTMP_PGAUTH_OUT_VIEWER_DENIED);
        ngx_rtmp_pgauth_play_refuse(s, ctx, NGX_RTMP_PGAUTH_PLAY_FAILED,
                                    NGX_RTMP_PGAUTH_PLAY_DENIED,
                                    "no matching token");
        return;
    }

    ngx_rtmp_pgauth_stats_viewer(ctx->pmcf->stats,
                                 NGX_RTMP_PGAUTH_OUT_VIEWER_ALLOWED);

    len = PQgetlength(res, 0, 0);
    *ngx_cpymem(ctx->play_sid, PQgetvalue(res, 0, 0), len) = '\0';

    left = 0;

    if (!PQgetisnull(res, 0, 1)
        && ngx_rtmp_pgauth_parse_seconds((u_char *) PQgetvalue(res, 0, 1),
                                         PQgetlength(res, 0, 1), &left)
           == NGX_OK
        && left == 0)
    {
        left = 1;
    }

    ngx_log_error(NGX_LOG_NOTICE, s->connection->log, 0,
                  "pgauth: viewer allowed app=\"%V\" name=\"%s\" fp=%s "
                  "session=\"%s\" rtmp time=%Mms",
                  &s->app, ctx->play.name, fp, ctx->play_sid,
                  ngx_current_msec - ctx->play_start);

    ngx_rtmp_pgauth_live_play(ctx, left);

    if (next_play(s, &ctx->play) != NGX_OK) {
        ngx_rtmp_finalize_session(s);
    }
}


static void
ngx_rtmp_pgauth_play_refuse(ngx_rtmp_session_t *s, ngx_rtmp_pgauth_ctx_t *ctx,
    const char *code, const char *desc, const char *reason)
{
    ngx_log_error(NGX_LOG_ERR, s->connection->log, 0,
                  "pgauth: viewer refused app=\"%V\" name=\"%s\" addr=\"%V\" "
                  "reason=\"%s\"",
                  &s->app, ctx->play.name, &s->connection->addr_text,
                  reason);

    ngx_rtmp_send_status(s, (char *) code, "error", (char *) desc);
    ngx_rtmp_finalize_session(s);
}


static ngx_int_t
ngx_rtmp_pgauth_play_close(ngx_rtmp_session_t *s, ngx_rtmp_close_stream_t *v)
{
    ngx_rtmp_pgauth_ctx_t  *ctx;

    ctx = ngx_rtmp_get_module_ctx(s, ngx_rtmp_pgauth_module);

    if (ctx) {
        ngx_rtmp_pgauth_live_play_end(ctx, s->connection->destroyed
                                           ? NGX_RTMP_PGAUTH_END_DISCONNECT
                                           : NGX_RTMP_PGAUTH_END_STOPPED);
    }

    return next_close_stream(s, v);
}
