
/*
 * Copyright (C) ngx_rtmp_pgauth authors
 */


/*
 * loadc - an RTMP publish load generator.
 *
 * Build: cc -O2 -Wall -Wextra -Werror -I../tools -o loadc loadc.c
 *        ../tools/rtmp.c (util/bench.pl does); the RTMP pieces are in
 *        t/tools/rtmp.c, shared with rtmpc.
 *
 * Usage: loadc [options] rtmp://HOST[:PORT]/APP
 *
 *   -k FILE  stream names (keys), one per line (empty lines are skipped);
 *            connection slot i uses line (i mod n) for all of its
 *            attempts, so with at least as many keys as connections no
 *            two attempts use a key at the same time; default: -n
 *   -n NAME  a single stream name, default "test"
 *   -c N     concurrent connections, default 1 (sequential)
 *   -N N     attempts to count, default 1000; attempts started during
 *            the warm-up (-w) come on top of these
 *   -d SECS  start counted attempts for SECS seconds (after the warm-up)
 *            instead of -N; the attempts in flight then finish, up to the
 *            timeout, and count
 *   -w SECS  warm-up: attempts started in the first SECS seconds are not
 *            counted, default 0
 *   -t MS    per-attempt timeout, default 10000
 *   -p MS    pause: each connection waits MS after an attempt before its
 *            next one (default 0: at once)
 *   -q       set TCP_QUICKACK after each read (default off, so that the
 *            client sees the delayed ACKs a normal Linux client sees)
 *   -f       close with FIN instead of RST (see below)
 *   -o FILE  write each counted attempt's latency in ms and its outcome
 *            ("0.812 start") to FILE, in completion order
 *   -j       print the summary as one JSON object
 *
 * An attempt: a nonblocking TCP connect (TCP_NODELAY), the simple
 * (version 0) handshake, Set Chunk Size 4096, connect, then releaseStream,
 * FCPublish and createStream, then publish(NAME, "live").  The first
 * onStatus that is NetStream.Publish.Start or has level "error" decides
 * the attempt, and the socket is closed right away.  Outcomes:
 *
 *   start        NetStream.Publish.Start
 *   denied       level "error", NetStream.Publish.Denied
 *   failed       level "error", NetStream.Failed
 *   badname      level "error", NetStream.Publish.BadName
 *   other_error  any other error status, an _error reply to connect or
 *                createStream, or a protocol error
 *   closed       the connection failed or was closed before a decision
 *   timeout      no decision within -t
 *
 * The latency of an attempt runs from just before connect() to the
 * decision (or to the close, or to the timeout).
 *
 * Sockets are closed with SO_LINGER {1, 0}, i.e. with an RST: the client
 * closes first, so an orderly close would leave every client socket in
 * TIME_WAIT for 60 s and at thousands of attempts per second that soon
 * needs more local ports than the 28232 of the default range.  -f
 * restores the orderly close for comparison.
 *
 * Everything runs in one epoll loop (edge triggered) with a small state
 * machine per connection slot; buffers belong to the slots and are reused.
 *
 * Exit codes: 0 - it ran (whatever the outcomes), 1 - a fatal error,
 * 2 - usage error.
 */


#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "rtmp.h"


#define LOADC_IN_SIZE          8192
#define LOADC_MAX_STREAMS      8
#define LOADC_MAX_EVENTS       256
#define LOADC_CODE_LEN         64
#define LOADC_MAX_CODES        8

#define LOADC_ST_IDLE          0
#define LOADC_ST_HANDSHAKE     1
#define LOADC_ST_CONNECT       2
#define LOADC_ST_CREATE        3
#define LOADC_ST_PUBLISH       4

#define LOADC_NONE             -1
#define LOADC_START            0
#define LOADC_DENIED           1
#define LOADC_FAILED           2
#define LOADC_BADNAME          3
#define LOADC_OTHER            4
#define LOADC_CLOSED           5
#define LOADC_TIMEOUT          6
#define LOADC_NOUTCOMES        7

#define LOADC_OK               0
#define LOADC_ERROR            -1
#define LOADC_DONE             1


typedef struct {
    unsigned char          *name;
    size_t                  name_len;
    rtmp_buf_t              prepub;     /* releaseStream .. createStream */
    rtmp_buf_t              pub;        /* publish, msid 1 */
} loadc_key_t;


typedef struct loadc_conn_s  loadc_conn_t;

struct loadc_conn_s {
    int                     fd;
    int                     state;
    int                     outcome;
    int                     counted;
    int                     failed;     /* a connect error is counted */
    uint32_t                index;
    uint32_t                gen;
    uint64_t                start;
    uint64_t                not_before; /* -p: the next attempt */

    loadc_conn_t           *prev;       /* in flight, oldest first */
    loadc_conn_t           *next;
    loadc_conn_t           *ready;      /* to be started */

    loadc_key_t            *key;

    rtmp_buf_t              in;         /* LOADC_IN_SIZE */
    rtmp_buf_t              out;        /* what the socket refused */
    rtmp_reader_t           reader;

    char                    code[LOADC_CODE_LEN];
};


typedef struct {
    double                  ms;
    int                     outcome;
} loadc_result_t;


typedef struct {
    char                    code[LOADC_CODE_LEN];
    uint64_t                count;
} loadc_code_t;


typedef struct {
    /* options */
    rtmp_url_t              url;
    loadc_key_t            *keys;
    size_t                  nkeys;
    uint32_t                nconns;
    uint64_t                total;
    double                  duration;   /* seconds, 0: use total */
    double                  warm;
    uint64_t                timeout;    /* ns */
    uint64_t                pause;      /* ns */
    int                     quickack;
    int                     fin;
    int                     json;
    char                   *outfile;

    struct sockaddr_storage addr;
    socklen_t               addr_len;
    int                     family;

    unsigned char           c0c1[RTMP_HS_C0C1];
    rtmp_buf_t              connect;    /* Set Chunk Size and connect */

    int                     ep;
    loadc_conn_t           *conns;
    loadc_conn_t           *head;       /* in flight, oldest first */
    loadc_conn_t           *tail;
    loadc_conn_t           *ready;
    uint32_t                active;

    uint64_t                t_begin;
    uint64_t                t_count;    /* warm-up end */
    uint64_t                t_stop;     /* -d: no new attempts after */
    uint64_t                t_end;

    uint64_t                attempts;
    uint64_t                counted_started;
    uint64_t                counted;
    uint64_t                outcomes[LOADC_NOUTCOMES];
    uint64_t                first_start;
    uint64_t                last_end;
    uint64_t                connect_errors;
    int                     last_errno;

    loadc_result_t         *results;
    size_t                  nresults;
    size_t                  results_cap;

    loadc_code_t            codes[LOADC_MAX_CODES];
    int                     ncodes;
    uint64_t                codes_more;
} loadc_t;


static const char  *outcome_names[LOADC_NOUTCOMES] = {
    "start", "denied", "failed", "badname", "other_error", "closed",
    "timeout"
};


static loadc_t                lc;
static volatile sig_atomic_t  stop;


static void attempt_done(loadc_conn_t *c, int outcome);
static int conn_send(loadc_conn_t *c, struct iovec *iov, int niov);


static uint64_t
now_ns(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000000 + (uint64_t) ts.tv_nsec;
}


static void
fatal(const char *msg)
{
    fprintf(stderr, "loadc: %s\n", msg);
    exit(1);
}


static void
nomem(void)
{
    fatal("out of memory");
}


static void
usage(const char *msg)
{
    rtmp_usage("loadc", msg,
               "usage: loadc [-k FILE | -n NAME] [-c N] [-N N | -d SECS] "
               "[-w SECS] [-t MS] [-p MS]\n"
               "             [-q] [-f] [-o FILE] [-j] "
               "rtmp://HOST[:PORT]/APP\n", 2);
}


/* the messages are the same for every attempt: build them once */

static void
build_templates(void)
{
    size_t        i;
    loadc_key_t  *k;

    rtmp_hs_c0c1(lc.c0c1, (uint32_t) (now_ns() / 1000000));

    rtmp_put_connect(&lc.connect, lc.url.app, "FMLE/3.0 (compatible; loadc)",
                     lc.url.url);

    for (i = 0; i < lc.nkeys; i++) {
        k = &lc.keys[i];

        rtmp_put_prepublish(&k->prepub, k->name, k->name_len);
        rtmp_put_publish(&k->pub, 1, k->name, k->name_len, "live");
    }
}


/* output */

static int
conn_flush(loadc_conn_t *c)
{
    ssize_t  n;

    while (c->out.pos < c->out.len) {
        n = send(c->fd, c->out.data + c->out.pos, c->out.len - c->out.pos,
                 MSG_NOSIGNAL);

        if (n > 0) {
            c->out.pos += n;
            continue;
        }

        if (n < 0 && errno == EINTR) {
            continue;
        }

        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* edge triggered EPOLLOUT tells when to go on */
            return LOADC_OK;
        }

        return LOADC_ERROR;
    }

    c->out.len = 0;
    c->out.pos = 0;

    return LOADC_OK;
}


/* sends at once if nothing is pending, keeps what the socket refuses */

static int
conn_send(loadc_conn_t *c, struct iovec *iov, int niov)
{
    int            i;
    size_t         n;
    ssize_t        rv;
    struct msghdr  mh;

    if (c->out.len == 0) {
        memset(&mh, 0, sizeof(mh));
        mh.msg_iov = iov;
        mh.msg_iovlen = niov;

        do {
            rv = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        } while (rv < 0 && errno == EINTR);

        if (rv < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                return LOADC_ERROR;
            }

            rv = 0;
        }

        n = (size_t) rv;

        for (i = 0; i < niov; i++) {
            if (n >= iov[i].iov_len) {
                n -= iov[i].iov_len;
                continue;
            }

            rtmp_buf_put(&c->out, (unsigned char *) iov[i].iov_base + n,
                         iov[i].iov_len - n);
            n = 0;
        }

        return LOADC_OK;
    }

    for (i = 0; i < niov; i++) {
        rtmp_buf_put(&c->out, iov[i].iov_base, iov[i].iov_len);
    }

    return conn_flush(c);
}


static int
conn_send1(loadc_conn_t *c, const void *data, size_t len)
{
    struct iovec  iov;

    iov.iov_base = (void *) data;
    iov.iov_len = len;

    return conn_send(c, &iov, 1);
}


static int
send_publish(loadc_conn_t *c, double sid)
{
    uint32_t      msid;
    loadc_key_t  *k;

    k = c->key;

    msid = rtmp_msid(sid);

    if (msid == 1) {
        return conn_send1(c, k->pub.data, k->pub.len);
    }

    /* rare: another message stream id than the template's */

    rtmp_put_publish(&c->out, msid, k->name, k->name_len, "live");

    return conn_flush(c);
}


static void
set_code(loadc_conn_t *c, const char *prefix, const unsigned char *s,
    size_t len)
{
    size_t  i, n;

    n = strlen(prefix);

    if (n > sizeof(c->code) - 1) {
        n = sizeof(c->code) - 1;
    }

    memcpy(c->code, prefix, n);

    for (i = 0; i < len && n < sizeof(c->code) - 1; i++) {
        c->code[n++] = (s[i] <= 0x20 || s[i] >= 0x7f) ? '?' : (char) s[i];
    }

    c->code[n] = '\0';
}


static void
on_status(loadc_conn_t *c, rtmp_cmd_t *info)
{
    if (info->level && info->level_len == 5
        && memcmp(info->level, "error", 5) == 0)
    {
        if (info->code && info->code_len == 24
            && memcmp(info->code, "NetStream.Publish.Denied", 24) == 0)
        {
            c->outcome = LOADC_DENIED;

        } else if (info->code && info->code_len == 16
                   && memcmp(info->code, "NetStream.Failed", 16) == 0)
        {
            c->outcome = LOADC_FAILED;

        } else if (info->code && info->code_len == 25
                   && memcmp(info->code, "NetStream.Publish.BadName", 25)
                      == 0)
        {
            c->outcome = LOADC_BADNAME;

        } else {
            c->outcome = LOADC_OTHER;
            set_code(c, "", info->code, info->code ? info->code_len : 0);
        }

        return;
    }

    if (info->code && info->code_len == 23
        && memcmp(info->code, "NetStream.Publish.Start", 23) == 0)
    {
        c->outcome = LOADC_START;
    }
}


static void
on_result(loadc_conn_t *c, rtmp_cmd_t *cmd)
{
    int  error;

    error = (cmd->kind == RTMP_CMD_ERROR);

    if (cmd->txn == RTMP_TXN_CONNECT && c->state == LOADC_ST_CONNECT) {
        if (error) {
            c->outcome = LOADC_OTHER;
            set_code(c, "connect _error", NULL, 0);
            return;
        }

        c->state = LOADC_ST_CREATE;

        if (conn_send1(c, c->key->prepub.data, c->key->prepub.len)
            != LOADC_OK)
        {
            c->outcome = LOADC_CLOSED;
        }

    } else if (cmd->txn == RTMP_TXN_CREATE && c->state == LOADC_ST_CREATE) {
        if (error || !cmd->have_num) {
            c->outcome = LOADC_OTHER;
            set_code(c, "createStream _error", NULL, 0);
            return;
        }

        c->state = LOADC_ST_PUBLISH;

        if (send_publish(c, cmd->num) != LOADC_OK) {
            c->outcome = LOADC_CLOSED;
        }
    }
}


/* Set Chunk Size, Abort and Window Ack Size are the reader's own */

static void
on_message(loadc_conn_t *c, rtmp_msg_t *m)
{
    size_t         n;
    rtmp_cmd_t     cmd;
    unsigned char  pong[RTMP_CONTROL_SIZE];

    n = rtmp_pong(m, pong);

    if (n) {
        if (conn_send1(c, pong, n) != LOADC_OK) {
            c->outcome = LOADC_CLOSED;
        }

        return;
    }

    if (rtmp_command(m, &cmd) != RTMP_OK) {
        return;
    }

    if (cmd.kind == RTMP_CMD_STATUS) {
        on_status(c, &cmd);

    } else if (cmd.kind != RTMP_CMD_OTHER) {
        on_result(c, &cmd);
    }
}


static void
parse_input(loadc_conn_t *c)
{
    int         rc;
    rtmp_msg_t  m;

    while (c->outcome == LOADC_NONE) {
        rc = rtmp_read(&c->reader, &c->in, &m);

        if (rc == RTMP_ERROR) {
            c->outcome = LOADC_OTHER;
            set_code(c, "protocol: too many chunk streams", NULL, 0);
            return;
        }

        if (rc != RTMP_OK) {
            return;
        }

        on_message(c, &m);
    }
}


static int
check_ack(loadc_conn_t *c)
{
    size_t         n;
    unsigned char  ack[RTMP_CONTROL_SIZE];

    n = rtmp_ack(&c->reader, ack);

    if (n == 0) {
        return LOADC_OK;
    }

    return conn_send1(c, ack, n);
}


/* handles what has been read; LOADC_DONE when the attempt is over */

static int
conn_process(loadc_conn_t *c)
{
    struct iovec          iov[2];
    const unsigned char  *c2;

    if (c->state == LOADC_ST_HANDSHAKE) {
        if (rtmp_hs_reply(c->in.data, c->in.len, &c2) == RTMP_AGAIN) {
            return LOADC_OK;
        }

        /* C2 echoes S1; Set Chunk Size and connect go in the same write */

        iov[0].iov_base = (void *) c2;
        iov[0].iov_len = RTMP_HS_SIZE;
        iov[1].iov_base = lc.connect.data;
        iov[1].iov_len = lc.connect.len;

        if (conn_send(c, iov, 2) != LOADC_OK) {
            attempt_done(c, LOADC_CLOSED);
            return LOADC_DONE;
        }

        c->in.pos = RTMP_HS_S0S1S2;
        c->reader.bytes_in = c->in.len - c->in.pos;
        c->state = LOADC_ST_CONNECT;
    }

    parse_input(c);

    if (c->outcome == LOADC_NONE && check_ack(c) != LOADC_OK) {
        c->outcome = LOADC_CLOSED;
    }

    if (c->outcome != LOADC_NONE) {
        attempt_done(c, c->outcome);
        return LOADC_DONE;
    }

    if (c->in.pos == c->in.len) {
        c->in.pos = 0;
        c->in.len = 0;

    } else if (c->in.pos) {
        memmove(c->in.data, c->in.data + c->in.pos, c->in.len - c->in.pos);
        c->in.len -= c->in.pos;
        c->in.pos = 0;
    }

    return LOADC_OK;
}


/* counts the connections that failed before the server said anything */

static void
conn_error(loadc_conn_t *c, int err)
{
    if (c->state == LOADC_ST_HANDSHAKE && c->in.len == 0 && !c->failed) {
        c->failed = 1;
        lc.connect_errors++;
        lc.last_errno = err;
    }
}


static void
conn_read(loadc_conn_t *c, uint32_t events)
{
    int      on;
    size_t   size;
    ssize_t  n;

    for ( ;; ) {
        size = LOADC_IN_SIZE - c->in.len;

        n = recv(c->fd, c->in.data + c->in.len, size, 0);

        if (n > 0) {
            c->in.len += n;

            if (c->state != LOADC_ST_HANDSHAKE) {
                c->reader.bytes_in += n;
            }

            if (lc.quickack) {
                on = 1;
                (void) setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &on,
                                  sizeof(on));
            }

            if (conn_process(c) == LOADC_DONE) {
                return;
            }

            /*
             * a short read emptied the socket: more data will raise a new
             * edge; but a pending FIN raises none, so read on then
             */

            if ((size_t) n < size
                && !(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
            {
                return;
            }

            continue;
        }

        if (n < 0 && errno == EINTR) {
            continue;
        }

        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }

        if (n < 0) {
            conn_error(c, errno);
        }

        attempt_done(c, LOADC_CLOSED);
        return;
    }
}


static void
conn_event(loadc_conn_t *c, uint32_t events)
{
    if ((events & EPOLLOUT) && c->out.len && conn_flush(c) != LOADC_OK) {
        conn_error(c, errno);

        /* read what the server sent before it went away */

        conn_read(c, EPOLLERR);

        if (c->state != LOADC_ST_IDLE) {
            attempt_done(c, LOADC_CLOSED);
        }

        return;
    }

    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        conn_read(c, events);
    }
}


static void
record(loadc_conn_t *c, int outcome, uint64_t t)
{
    int              i;
    size_t           cap;
    loadc_result_t  *r;

    lc.attempts++;

    if (!c->counted) {
        return;
    }

    lc.counted++;
    lc.outcomes[outcome]++;

    if (lc.first_start == 0 || c->start < lc.first_start) {
        lc.first_start = c->start;
    }

    if (t > lc.last_end) {
        lc.last_end = t;
    }

    if (lc.nresults == lc.results_cap) {
        cap = lc.results_cap ? lc.results_cap * 2 : 65536;

        r = realloc(lc.results, cap * sizeof(loadc_result_t));
        if (r == NULL) {
            fatal("out of memory");
        }

        lc.results = r;
        lc.results_cap = cap;
    }

    r = &lc.results[lc.nresults++];
    r->ms = (double) (t - c->start) / 1e6;
    r->outcome = outcome;

    if (outcome != LOADC_OTHER) {
        return;
    }

    for (i = 0; i < lc.ncodes; i++) {
        if (strcmp(lc.codes[i].code, c->code) == 0) {
            lc.codes[i].count++;
            return;
        }
    }

    if (lc.ncodes == LOADC_MAX_CODES) {
        lc.codes_more++;
        return;
    }

    memcpy(lc.codes[lc.ncodes].code, c->code, sizeof(c->code));
    lc.codes[lc.ncodes++].count = 1;
}


static void
attempt_done(loadc_conn_t *c, int outcome)
{
    uint64_t  t;

    t = now_ns();

    close(c->fd);
    c->fd = -1;
    c->gen++;
    c->state = LOADC_ST_IDLE;

    if (c->prev) {
        c->prev->next = c->next;

    } else {
        lc.head = c->next;
    }

    if (c->next) {
        c->next->prev = c->prev;

    } else {
        lc.tail = c->prev;
    }

    c->prev = NULL;
    c->next = NULL;
    lc.active--;

    record(c, outcome, t);

    c->not_before = t + lc.pause;
    c->ready = lc.ready;
    lc.ready = c;
}


/* an attempt that failed before it got into the event loop */

static void
attempt_failed(loadc_conn_t *c, int err)
{
    lc.connect_errors++;
    lc.last_errno = err;

    close(c->fd);
    c->fd = -1;
    c->gen++;
    c->state = LOADC_ST_IDLE;

    record(c, LOADC_CLOSED, now_ns());

    c->not_before = now_ns() + lc.pause;
    c->ready = lc.ready;
    lc.ready = c;
}


static int
more(uint64_t now)
{
    if (stop) {
        return 0;
    }

    if (now < lc.t_count) {
        return 1;                      /* warm-up */
    }

    if (lc.duration > 0) {
        return now < lc.t_stop;
    }

    return lc.counted_started < lc.total;
}


static void
attempt_start(loadc_conn_t *c)
{
    int                 fd, on;
    struct linger       lg;
    struct epoll_event  ev;

    fd = socket(lc.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "loadc: socket: %s\n", strerror(errno));
        exit(1);
    }

    on = 1;
    (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));

    if (!lc.fin) {
        lg.l_onoff = 1;
        lg.l_linger = 0;
        (void) setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }

    c->fd = fd;
    c->state = LOADC_ST_HANDSHAKE;
    c->outcome = LOADC_NONE;
    c->failed = 0;
    c->in.pos = 0;
    c->in.len = 0;
    c->out.len = 0;
    c->out.pos = 0;
    rtmp_reader_reset(&c->reader);
    c->code[0] = '\0';

    c->start = now_ns();
    c->counted = (c->start >= lc.t_count);

    if (c->counted) {
        lc.counted_started++;
    }

    if (connect(fd, (struct sockaddr *) &lc.addr, lc.addr_len) != 0
        && errno != EINPROGRESS)
    {
        attempt_failed(c, errno);
        return;
    }

    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = ((uint64_t) c->gen << 32) | c->index;

    if (epoll_ctl(lc.ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        fprintf(stderr, "loadc: epoll_ctl: %s\n", strerror(errno));
        exit(1);
    }

    c->prev = lc.tail;
    c->next = NULL;

    if (lc.tail) {
        lc.tail->next = c;

    } else {
        lc.head = c;
    }

    lc.tail = c;
    lc.active++;

    /* on loopback the connect is usually done by now; if not, EPOLLOUT */

    if (conn_send1(c, lc.c0c1, sizeof(lc.c0c1)) != LOADC_OK) {
        conn_error(c, errno);          /* e.g. ECONNREFUSED */
        attempt_done(c, LOADC_CLOSED);
    }
}


static void
on_signal(int signo)
{
    (void) signo;

    stop = 1;
}


static void
run(void)
{
    int                  i, n, ms;
    uint32_t             idx;
    uint64_t             now, dl;
    loadc_conn_t        *c;
    struct epoll_event   events[LOADC_MAX_EVENTS];

    lc.ep = epoll_create1(EPOLL_CLOEXEC);
    if (lc.ep < 0) {
        fatal("epoll_create1 failed");
    }

    lc.t_begin = now_ns();
    lc.t_count = lc.t_begin + (uint64_t) (lc.warm * 1e9);
    lc.t_stop = lc.t_count + (uint64_t) (lc.duration * 1e9);

    for (i = (int) lc.nconns - 1; i >= 0; i--) {
        c = &lc.conns[i];
        c->ready = lc.ready;
        lc.ready = c;
    }

    for ( ;; ) {
        now = now_ns();

        while (lc.ready && more(now_ns())
               && lc.ready->not_before <= now_ns())
        {
            c = lc.ready;
            lc.ready = c->ready;
            c->ready = NULL;

            attempt_start(c);
        }

        now = now_ns();

        if (lc.active == 0) {
            if (lc.ready == NULL || !more(now)) {
                break;
            }

            /* -p: nothing in flight, the next attempt waits */
            dl = lc.ready->not_before;

        } else {
            dl = lc.head->start + lc.timeout;

            if (lc.ready && more(now) && lc.ready->not_before < dl) {
                dl = lc.ready->not_before;
            }
        }

        ms = dl > now ? (int) ((dl - now + 999999) / 1000000) : 0;

        n = epoll_wait(lc.ep, events, LOADC_MAX_EVENTS, ms);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }

            fatal("epoll_wait failed");
        }

        for (i = 0; i < n; i++) {
            idx = (uint32_t) events[i].data.u64;
            c = &lc.conns[idx];

            if ((uint32_t) (events[i].data.u64 >> 32) != c->gen
                || c->state == LOADC_ST_IDLE)
            {
                continue;              /* stale */
            }

            conn_event(c, events[i].events);
        }

        now = now_ns();

        while (lc.head && lc.head->start + lc.timeout <= now) {
            attempt_done(lc.head, LOADC_TIMEOUT);
        }
    }

    lc.t_end = now_ns();
}


/* statistics */

static int
cmp_double(const void *a, const void *b)
{
    double  x, y;

    x = *(const double *) a;
    y = *(const double *) b;

    return (x > y) - (x < y);
}


typedef struct {
    size_t                  n;
    double                  min;
    double                  p50;
    double                  p90;
    double                  p99;
    double                  max;
    double                  mean;
} loadc_stats_t;


static double
pct(double *v, size_t n, size_t p)
{
    size_t  k;

    /* nearest rank: the smallest k with k >= n * p / 100 */

    k = (n * p + 99) / 100;

    if (k < 1) {
        k = 1;
    }

    if (k > n) {
        k = n;
    }

    return v[k - 1];
}


static void
stats(loadc_stats_t *s, int only)
{
    size_t   i, n;
    double  *v, sum;

    memset(s, 0, sizeof(loadc_stats_t));

    v = malloc((lc.nresults ? lc.nresults : 1) * sizeof(double));
    if (v == NULL) {
        fatal("out of memory");
    }

    n = 0;
    sum = 0;

    for (i = 0; i < lc.nresults; i++) {
        if (only >= 0 && lc.results[i].outcome != only) {
            continue;
        }

        v[n++] = lc.results[i].ms;
        sum += lc.results[i].ms;
    }

    s->n = n;

    if (n) {
        qsort(v, n, sizeof(double), cmp_double);

        s->min = v[0];
        s->p50 = pct(v, n, 50);
        s->p90 = pct(v, n, 90);
        s->p99 = pct(v, n, 99);
        s->max = v[n - 1];
        s->mean = sum / (double) n;
    }

    free(v);
}


static void
print_stats_text(const char *label, loadc_stats_t *s)
{
    if (s->n == 0) {
        printf("latency %-5s (ms): n 0\n", label);
        return;
    }

    printf("latency %-5s (ms): n %zu min %.3f p50 %.3f p90 %.3f p99 %.3f "
           "max %.3f mean %.3f\n", label, s->n, s->min, s->p50, s->p90,
           s->p99, s->max, s->mean);
}


static void
print_stats_json(const char *label, loadc_stats_t *s)
{
    if (s->n == 0) {
        printf("\"%s\":{\"n\":0,\"min\":null,\"p50\":null,\"p90\":null,"
               "\"p99\":null,\"max\":null,\"mean\":null}", label);
        return;
    }

    printf("\"%s\":{\"n\":%zu,\"min\":%.3f,\"p50\":%.3f,\"p90\":%.3f,"
           "\"p99\":%.3f,\"max\":%.3f,\"mean\":%.3f}", label, s->n, s->min,
           s->p50, s->p90, s->p99, s->max, s->mean);
}


static void
print_json_str(const char *s)
{
    putchar('"');

    for ( ; *s; s++) {
        if (*s == '"' || *s == '\\') {
            putchar('\\');
        }

        putchar(*s);
    }

    putchar('"');
}


static void
report(void)
{
    int            i;
    FILE          *f;
    size_t         k;
    double         wall, run_s, user, sys, cpu, per;
    struct rusage  ru;
    loadc_stats_t  all, st;

    if (lc.outfile) {
        f = fopen(lc.outfile, "w");
        if (f == NULL) {
            fprintf(stderr, "loadc: %s: %s\n", lc.outfile, strerror(errno));

        } else {
            for (k = 0; k < lc.nresults; k++) {
                fprintf(f, "%.3f %s\n", lc.results[k].ms,
                        outcome_names[lc.results[k].outcome]);
            }

            if (fclose(f) != 0) {
                fprintf(stderr, "loadc: %s: %s\n", lc.outfile,
                        strerror(errno));
            }
        }
    }

    stats(&all, -1);
    stats(&st, LOADC_START);

    getrusage(RUSAGE_SELF, &ru);

    user = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
    sys = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    cpu = user + sys;
    per = lc.attempts ? cpu * 1e6 / (double) lc.attempts : 0;

    wall = lc.counted ? (double) (lc.last_end - lc.first_start) / 1e9 : 0;
    run_s = (double) (lc.t_end - lc.t_begin) / 1e9;

    if (lc.json) {
        printf("{\"url\":");
        print_json_str(lc.url.url);
        printf(",\"connections\":%u,\"keys\":%zu,\"timeout_ms\":%.0f,"
               "\"quickack\":%s,\"close\":\"%s\",",
               lc.nconns, lc.nkeys, (double) lc.timeout / 1e6,
               lc.quickack ? "true" : "false", lc.fin ? "fin" : "rst");
        printf("\"attempts\":%llu,\"counted\":%llu,\"outcomes\":{",
               (unsigned long long) lc.attempts,
               (unsigned long long) lc.counted);

        for (i = 0; i < LOADC_NOUTCOMES; i++) {
            printf("%s\"%s\":%llu", i ? "," : "", outcome_names[i],
                   (unsigned long long) lc.outcomes[i]);
        }

        printf("},\"other_codes\":{");

        for (i = 0; i < lc.ncodes; i++) {
            printf("%s", i ? "," : "");
            print_json_str(lc.codes[i].code);
            printf(":%llu", (unsigned long long) lc.codes[i].count);
        }

        printf("},\"connect_errors\":%llu,",
               (unsigned long long) lc.connect_errors);
        print_stats_json("latency_all_ms", &all);
        putchar(',');
        print_stats_json("latency_start_ms", &st);
        printf(",\"wall_s\":%.3f,\"run_s\":%.3f,"
               "\"start_per_s\":%.1f,\"attempts_per_s\":%.1f,"
               "\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,"
               "\"cpu_per_attempt_us\":%.1f,\"cpu_util\":%.3f}\n",
               wall, run_s,
               wall > 0 ? (double) lc.outcomes[LOADC_START] / wall : 0,
               wall > 0 ? (double) lc.counted / wall : 0,
               user, sys, per, run_s > 0 ? cpu / run_s : 0);

        return;
    }

    printf("url %s connections %u keys %zu timeout %.0f ms quickack %s "
           "close %s\n", lc.url.url, lc.nconns, lc.nkeys,
           (double) lc.timeout / 1e6, lc.quickack ? "on" : "off",
           lc.fin ? "fin" : "rst");
    printf("attempts %llu counted %llu\n", (unsigned long long) lc.attempts,
           (unsigned long long) lc.counted);
    printf("outcomes");

    for (i = 0; i < LOADC_NOUTCOMES; i++) {
        printf(" %s %llu", outcome_names[i],
               (unsigned long long) lc.outcomes[i]);
    }

    putchar('\n');

    for (i = 0; i < lc.ncodes; i++) {
        printf("other_error %s: %llu\n", lc.codes[i].code,
               (unsigned long long) lc.codes[i].count);
    }

    if (lc.codes_more) {
        printf("other_error (more codes): %llu\n",
               (unsigned long long) lc.codes_more);
    }

    if (lc.connect_errors) {
        printf("connect errors %llu (last: %s)\n",
               (unsigned long long) lc.connect_errors,
               strerror(lc.last_errno));
    }

    print_stats_text("all", &all);
    print_stats_text("start", &st);

    printf("wall %.3f s (run %.3f s) throughput start %.1f/s all %.1f/s\n",
           wall, run_s,
           wall > 0 ? (double) lc.outcomes[LOADC_START] / wall : 0,
           wall > 0 ? (double) lc.counted / wall : 0);
    printf("client cpu user %.3f s sys %.3f s, %.1f us/attempt, "
           "%.1f%% of a core\n", user, sys, per,
           run_s > 0 ? 100 * cpu / run_s : 0);
}


/* options */

static double
parse_num(const char *s, double max)
{
    char    *end;
    double   v;

    errno = 0;
    v = strtod(s, &end);

    if (*s == '\0' || *end != '\0' || errno || !(v >= 0) || v > max) {
        usage("bad number");
    }

    return v;
}


static void
add_key(const char *s, size_t len)
{
    loadc_key_t  *k;

    if (lc.nkeys % 64 == 0) {
        k = realloc(lc.keys, (lc.nkeys + 64) * sizeof(loadc_key_t));
        if (k == NULL) {
            fatal("out of memory");
        }

        lc.keys = k;
    }

    k = &lc.keys[lc.nkeys++];
    memset(k, 0, sizeof(loadc_key_t));

    k->name = malloc(len + 1);
    if (k->name == NULL) {
        fatal("out of memory");
    }

    memcpy(k->name, s, len);
    k->name[len] = '\0';
    k->name_len = len;
}


static void
read_keys(const char *path)
{
    FILE    *f;
    char    *data, *p, *end, *nl;
    size_t   len, cap, n;

    f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "loadc: %s: %s\n", path, strerror(errno));
        usage(NULL);
    }

    data = NULL;
    len = 0;
    cap = 0;

    for ( ;; ) {
        if (cap - len < 65536) {
            cap = cap ? cap * 2 : 65536;

            p = realloc(data, cap);
            if (p == NULL) {
                fatal("out of memory");
            }

            data = p;
        }

        n = fread(data + len, 1, cap - len, f);
        len += n;

        if (n == 0) {
            break;
        }
    }

    if (ferror(f)) {
        fprintf(stderr, "loadc: %s: read error\n", path);
        usage(NULL);
    }

    fclose(f);

    p = data;
    end = data + len;

    while (p < end) {
        nl = memchr(p, '\n', end - p);
        n = nl ? (size_t) (nl - p) : (size_t) (end - p);

        if (n && p[n - 1] == '\r') {
            n--;
        }

        if (n) {
            add_key(p, n);
        }

        p += nl ? n + (p[n] == '\r' ? 2 : 1) : n;
    }

    free(data);

    if (lc.nkeys == 0) {
        usage("no keys in the key file");
    }
}


static void
parse_url(char *url)
{
    int               rv;
    const char       *err;
    struct addrinfo   hints, *res;

    err = rtmp_url_parse(url, &lc.url);
    if (err) {
        usage(err);
    }

    /* resolved once: every attempt connects to the same address */

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;

    rv = getaddrinfo(lc.url.host, lc.url.port, &hints, &res);
    if (rv != 0) {
        fprintf(stderr, "loadc: %s: %s\n", lc.url.host, gai_strerror(rv));
        usage(NULL);
    }

    memcpy(&lc.addr, res->ai_addr, res->ai_addrlen);
    lc.addr_len = res->ai_addrlen;
    lc.family = res->ai_family;

    freeaddrinfo(res);
}


int
main(int argc, char **argv)
{
    int                ch;
    char              *keyfile, *name;
    uint32_t           i;
    struct rlimit      rl;
    struct sigaction   sa;

    rtmp_nomem = nomem;

    keyfile = NULL;
    name = (char *) "test";

    lc.nconns = 1;
    lc.total = 1000;
    lc.timeout = 10000 * 1000000ULL;

    while ((ch = getopt(argc, argv, "k:n:c:N:d:w:t:p:qfo:j")) != -1) {
        switch (ch) {

        case 'k':
            keyfile = optarg;
            break;

        case 'n':
            name = optarg;
            break;

        case 'c':
            lc.nconns = (uint32_t) parse_num(optarg, 65536);
            if (lc.nconns == 0) {
                usage("-c must be at least 1");
            }
            break;

        case 'N':
            lc.total = (uint64_t) parse_num(optarg, 1e12);
            break;

        case 'd':
            lc.duration = parse_num(optarg, 1e7);
            if (lc.duration <= 0) {
                usage("-d must be positive");
            }
            break;

        case 'w':
            lc.warm = parse_num(optarg, 1e7);
            break;

        case 't':
            lc.timeout = (uint64_t) parse_num(optarg, 1e9) * 1000000ULL;
            break;

        case 'p':
            lc.pause = (uint64_t) parse_num(optarg, 1e7) * 1000000ULL;
            break;

        case 'q':
            lc.quickack = 1;
            break;

        case 'f':
            lc.fin = 1;
            break;

        case 'o':
            lc.outfile = optarg;
            break;

        case 'j':
            lc.json = 1;
            break;

        default:
            usage(NULL);
        }
    }

    if (argc - optind != 1) {
        usage(NULL);
    }

    parse_url(argv[optind]);

    if (keyfile) {
        read_keys(keyfile);

    } else {
        add_key(name, strlen(name));
    }

    srandom((unsigned) time(NULL) ^ (unsigned) getpid());

    build_templates();

    lc.conns = calloc(lc.nconns, sizeof(loadc_conn_t));
    if (lc.conns == NULL) {
        fatal("out of memory");
    }

    for (i = 0; i < lc.nconns; i++) {
        lc.conns[i].index = i;
        lc.conns[i].fd = -1;
        lc.conns[i].key = &lc.keys[i % lc.nkeys];

        rtmp_reader_init(&lc.conns[i].reader, LOADC_MAX_STREAMS);

        lc.conns[i].in.data = malloc(LOADC_IN_SIZE);
        if (lc.conns[i].in.data == NULL) {
            fatal("out of memory");
        }

        lc.conns[i].in.cap = LOADC_IN_SIZE;
    }

    /* a descriptor per connection, and a few more */

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < lc.nconns + 64) {
        rl.rlim_cur = lc.nconns + 64;

        if (rl.rlim_cur > rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
        }

        (void) setrlimit(RLIMIT_NOFILE, &rl);
    }

    signal(SIGPIPE, SIG_IGN);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    run();
    report();

    return 0;
}
