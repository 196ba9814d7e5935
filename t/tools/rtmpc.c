
/*
 * Copyright (C) ngx_rtmp_pgauth authors
 */


/*
 * rtmpc - a minimal RTMP publishing client for the test suite.
 *
 * Build: cc -O2 -Wall -Wextra -Werror -o rtmpc rtmpc.c rtmp.c (make
 * t/tools/rtmpc); the RTMP pieces are in rtmp.c, shared with loadc.
 *
 * Usage: rtmpc [options] rtmp://HOST[:PORT]/APP
 *
 *   -n NAME  stream name, sent verbatim (may contain "?args"); default "test"
 *   -x HEX   stream name as hex bytes (e.g. 410142ff); may be ""
 *   -l LEN   stream name of LEN bytes 'k' (0..100000); names longer than
 *            65535 bytes are sent as AMF0 long strings (type 0x0C)
 *   -w MS    after the publish decision (NetStream.Publish.Start or an
 *            onStatus with level "error") keep reading for MS ms, then
 *            close; default 0
 *   -W MS    do not wait for the publish reply: after sending publish,
 *            keep reading for MS ms, then drop the connection
 *   -t MS    overall timeout, default 10000
 *   -b ADDR  connect from this local address
 *   -F N     send the publish command N times back to back
 *   -D       leave delayed ACKs on, as a usual client does (by default
 *            rtmpc acknowledges at once, hiding the server's Nagle wait)
 *   -q       print only the summary line
 *
 * The last of -n, -x and -l wins.  The client does the simple (version 0)
 * handshake, sets its chunk size to 4096, then sends connect,
 * releaseStream, FCPublish, createStream and publish(NAME, "live") like
 * OBS and ffmpeg do.
 *
 * Output, one event per line; MS is milliseconds since the TCP connect
 * started, with one decimal:
 *
 *   connected MS
 *   handshake MS
 *   result MS TXN _result|_error
 *   status MS LEVEL CODE DESCRIPTION    (control bytes shown as '?')
 *   cmd MS NAME                         (any other command)
 *   closed MS                           (the server closed or reset)
 *   timeout MS
 *   summary publish=start|error|none code=CODE|- closed=0|1 ms=MS|-
 *
 * The summary line is always printed last.  "publish" is the decision:
 * the first onStatus that is either NetStream.Publish.Start or has level
 * "error"; "code" is the code of the last onStatus; "ms" is the time of the
 * first onStatus.
 *
 * After NetStream.Publish.Start the connection is closed cleanly
 * (deleteStream, then FIN) once -w expires.  After an error status the
 * client keeps reading until the server closes, or until -w expires if it
 * is given, or else until -t expires (a "timeout" line is printed then,
 * but the exit code stays 1).
 *
 * Exit codes: 0 - NetStream.Publish.Start, 1 - an onStatus with level
 * "error", 2 - closed or failed without a decision (also -W without one),
 * 3 - timeout without a decision, 4 - usage error.
 */


#define _XOPEN_SOURCE  700
#define _DEFAULT_SOURCE                /* TCP_QUICKACK, where available */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "rtmp.h"


#define RTMPC_MAX_NAME         100000
#define RTMPC_READ_SIZE        65536
#define RTMPC_DRAIN_MS         300

#define RTMPC_PH_CONNECT       0
#define RTMPC_PH_CREATE        1
#define RTMPC_PH_PUBLISH       2

#define RTMPC_NONE             0
#define RTMPC_START            1
#define RTMPC_ERROR            2

#define RTMPC_DL_TIMEOUT       0
#define RTMPC_DL_LINGER        1
#define RTMPC_DL_DROP          2


typedef struct {
    int                     fd;
    double                  t0;
    int                     quiet;
    int                     flood;      /* publish commands to send */
    int                     delayed_acks;   /* -D: no quick ACKs */
    const char             *bind;       /* local address, or NULL */
    long                    timeout;
    long                    linger;
    long                    drop;

    unsigned char          *name;
    size_t                  name_len;
    rtmp_url_t              url;

    rtmp_buf_t              in;
    rtmp_buf_t              out;
    rtmp_reader_t           reader;

    int                     phase;
    double                  sid;
    int                     publish_sent;
    double                  publish_at;
    int                     decided;
    double                  decided_at;
    int                     have_status;
    double                  first_status;
    char                    last_code[256];

    int                     eof;
    int                     wr_dead;
    int                     closed;
    int                     timed_out;
    int                     stop;
} rtmpc_t;


static void usage(const char *msg);


static rtmpc_t  rc;


static double
now_abs(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1000000.0;
}


static double
now_ms(void)
{
    return now_abs() - rc.t0;
}


static void
finish(int code)
{
    const char  *publish;

    if (code < 0) {
        if (rc.decided == RTMPC_START) {
            code = 0;

        } else if (rc.decided == RTMPC_ERROR) {
            code = 1;

        } else if (rc.timed_out) {
            code = 3;

        } else {
            code = 2;
        }
    }

    publish = (rc.decided == RTMPC_START) ? "start"
              : (rc.decided == RTMPC_ERROR) ? "error" : "none";

    printf("summary publish=%s code=%s closed=%d ms=", publish,
           rc.have_status && rc.last_code[0] ? rc.last_code : "-",
           rc.closed);

    if (rc.have_status) {
        printf("%.1f\n", rc.first_status);

    } else {
        printf("-\n");
    }

    fflush(stdout);

    exit(code);
}


static void
fatal(const char *msg)
{
    fprintf(stderr, "rtmpc: %s\n", msg);
    finish(-1);
}


/* out of memory: before the connect a usage error, as in set_name() */

static void
nomem(void)
{
    if (rc.t0 == 0) {
        usage("out of memory");
    }

    fatal("out of memory");
}


static void
emit(const char *event)
{
    if (!rc.quiet) {
        printf("%s %.1f\n", event, now_ms());
    }
}


static void
put_clean(const unsigned char *s, size_t len, int spaces)
{
    size_t         i;
    unsigned char  ch;

    for (i = 0; i < len; i++) {
        ch = s[i];

        if (ch < 0x20 || ch == 0x7f || (!spaces && ch == ' ')) {
            ch = '?';
        }

        putchar(ch);
    }
}


static void
put_word(const unsigned char *s, size_t len)
{
    if (s == NULL || len == 0) {
        putchar('-');
        return;
    }

    put_clean(s, len, 0);
}


/*
 * nginx-rtmp does not set TCP_NODELAY, so its second small write waits
 * for our ACK; without quick ACKs that adds ~40 ms of delayed ACK to
 * replies that nginx writes in pieces (e.g. the connect result).
 */

static void
quick_ack(void)
{
#ifdef TCP_QUICKACK
    int  on;

    if (rc.delayed_acks) {
        return;
    }

    on = 1;
    (void) setsockopt(rc.fd, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof(on));
#endif
}


static int
io_read(void)
{
    ssize_t  n;

    if (rc.in.pos == rc.in.len) {
        rc.in.pos = 0;
        rc.in.len = 0;

    } else if (rc.in.pos >= RTMPC_READ_SIZE) {
        memmove(rc.in.data, rc.in.data + rc.in.pos, rc.in.len - rc.in.pos);
        rc.in.len -= rc.in.pos;
        rc.in.pos = 0;
    }

    rtmp_buf_reserve(&rc.in, RTMPC_READ_SIZE);

    n = recv(rc.fd, rc.in.data + rc.in.len, rc.in.cap - rc.in.len, 0);

    if (n > 0) {
        rc.in.len += n;
        rc.reader.bytes_in += n;
        quick_ack();
        return 1;
    }

    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
    {
        return 1;
    }

    rc.eof = 1;

    return 0;
}


static int
send_all(const unsigned char *p, size_t len)
{
    int            ms;
    double         deadline, left;
    ssize_t        n;
    struct pollfd  pfd;

    deadline = now_ms() + rc.timeout;

    while (len) {
        if (rc.wr_dead) {
            return -1;
        }

        n = send(rc.fd, p, len, MSG_NOSIGNAL);

        if (n > 0) {
            p += n;
            len -= n;
            continue;
        }

        if (n < 0 && errno == EINTR) {
            continue;
        }

        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            left = deadline - now_ms();
            if (left <= 0) {
                fprintf(stderr, "rtmpc: send timed out\n");
                rc.wr_dead = 1;
                return -1;
            }

            ms = (int) left + 1;

            pfd.fd = rc.fd;
            pfd.events = POLLOUT | (rc.eof ? 0 : POLLIN);
            pfd.revents = 0;

            if (poll(&pfd, 1, ms) < 0 && errno != EINTR) {
                rc.wr_dead = 1;
                return -1;
            }

            if (pfd.revents & POLLIN) {
                (void) io_read();
            }

            continue;
        }

        rc.wr_dead = 1;
        return -1;
    }

    return 0;
}


static void
flush_out(void)
{
    if (rc.out.len) {
        (void) send_all(rc.out.data, rc.out.len);
        rc.out.len = 0;
    }
}


static void
send_connect(void)
{
    rtmp_put_connect(&rc.out, rc.url.app, "FMLE/3.0 (compatible; rtmpc)",
                     rc.url.url);
    flush_out();
}


static void
send_prepublish(void)
{
    rtmp_put_prepublish(&rc.out, rc.name, rc.name_len);
    flush_out();
}


static void
send_publish(void)
{
    uint32_t  msid;

    msid = rtmp_msid(rc.sid);

    rtmp_put_publish(&rc.out, msid, rc.name, rc.name_len, "live");

    /*
     * -F: more commands right after it, without waiting; these have always
     * been empty command messages (the body was used up by the first)
     */

    while (rc.flood-- > 1) {
        rtmp_msg_put(&rc.out, RTMP_CSID_STREAM, RTMP_MSG_AMF0_CMD, msid,
                     NULL, 0);
    }

    flush_out();

    rc.publish_sent = 1;
    rc.publish_at = now_ms();
}


static void
send_delete(void)
{
    rtmp_put_delete_stream(&rc.out, rc.sid);
    flush_out();
}


static void
send_control(const unsigned char *msg, size_t len)
{
    rtmp_buf_put(&rc.out, msg, len);
    flush_out();
}


static void
on_status(rtmp_cmd_t *info)
{
    size_t  i, n;
    double  ms;

    ms = now_ms();

    if (!rc.quiet) {
        printf("status %.1f ", ms);
        put_word(info->level, info->level_len);
        putchar(' ');
        put_word(info->code, info->code_len);
        putchar(' ');

        if (info->desc) {
            put_clean(info->desc, info->desc_len, 1);
        }

        putchar('\n');
    }

    if (!rc.have_status) {
        rc.have_status = 1;
        rc.first_status = ms;
    }

    n = info->code ? info->code_len : 0;

    if (n > sizeof(rc.last_code) - 1) {
        n = sizeof(rc.last_code) - 1;
    }

    for (i = 0; i < n; i++) {
        rc.last_code[i] = (info->code[i] <= 0x20 || info->code[i] == 0x7f)
                          ? '?' : (char) info->code[i];
    }

    rc.last_code[n] = '\0';

    if (rc.decided != RTMPC_NONE) {
        return;
    }

    if (info->level && info->level_len == 5
        && memcmp(info->level, "error", 5) == 0)
    {
        rc.decided = RTMPC_ERROR;

    } else if (info->code && info->code_len == 23
               && memcmp(info->code, "NetStream.Publish.Start", 23) == 0)
    {
        rc.decided = RTMPC_START;

    } else {
        return;
    }

    rc.decided_at = ms;
}


static void
on_result(rtmp_cmd_t *cmd)
{
    int     error;
    double  txn;

    txn = cmd->txn;
    error = (cmd->kind == RTMP_CMD_ERROR);

    if (!rc.quiet) {
        if (txn < 1e15 && txn > -1e15 && txn == (double) (long long) txn) {
            printf("result %.1f %.0f %s\n", now_ms(), txn,
                   error ? "_error" : "_result");

        } else {
            printf("result %.1f %g %s\n", now_ms(), txn,
                   error ? "_error" : "_result");
        }
    }

    if (rc.decided != RTMPC_NONE) {
        return;
    }

    if (txn == RTMP_TXN_CONNECT && rc.phase == RTMPC_PH_CONNECT) {
        if (error) {
            fprintf(stderr, "rtmpc: connect rejected\n");
            rc.stop = 1;
            return;
        }

        rc.phase = RTMPC_PH_CREATE;
        send_prepublish();

    } else if (txn == RTMP_TXN_CREATE && rc.phase == RTMPC_PH_CREATE) {
        if (error || !cmd->have_num) {
            fprintf(stderr, "rtmpc: createStream failed\n");
            rc.stop = 1;
            return;
        }

        rc.sid = cmd->num;
        rc.phase = RTMPC_PH_PUBLISH;
        send_publish();
    }
}


static void
on_command(rtmp_cmd_t *cmd)
{
    switch (cmd->kind) {

    case RTMP_CMD_RESULT:
    case RTMP_CMD_ERROR:
        on_result(cmd);
        break;

    case RTMP_CMD_STATUS:
        on_status(cmd);
        break;

    default:
        if (!rc.quiet) {
            printf("cmd %.1f ", now_ms());
            put_word(cmd->name, cmd->name_len);
            putchar('\n');
        }
    }
}


/* Set Chunk Size, Abort and Window Ack Size are the reader's own */

static void
on_message(rtmp_msg_t *m)
{
    size_t         n;
    rtmp_cmd_t     cmd;
    unsigned char  pong[RTMP_CONTROL_SIZE];

    n = rtmp_pong(m, pong);

    if (n) {
        send_control(pong, n);
        return;
    }

    if (rtmp_command(m, &cmd) == RTMP_OK) {
        on_command(&cmd);
    }
}


static void
parse_input(void)
{
    rtmp_msg_t  m;

    /* never RTMP_ERROR: the reader takes every chunk stream id */

    while (!rc.stop && rtmp_read(&rc.reader, &rc.in, &m) == RTMP_OK) {
        on_message(&m);
    }
}


static void
check_ack(void)
{
    size_t         n;
    unsigned char  ack[RTMP_CONTROL_SIZE];

    if (rc.wr_dead) {
        return;
    }

    n = rtmp_ack(&rc.reader, ack);

    if (n) {
        send_control(ack, n);
    }
}


/* waits for input until the deadline; returns 0 on timeout */

static int
wait_input(double deadline)
{
    int            n;
    double         left;
    struct pollfd  pfd;

    left = deadline - now_ms();
    if (left <= 0) {
        return 0;
    }

    pfd.fd = rc.fd;
    pfd.events = POLLIN;
    pfd.revents = 0;

    n = poll(&pfd, 1, left > 1e9 ? 1000000000 : (int) left + 1);

    if (n < 0 && errno != EINTR) {
        rc.eof = 1;
        return 1;
    }

    if (n > 0) {
        (void) io_read();
    }

    return 1;
}


static void
server_closed(void)
{
    emit("closed");
    rc.closed = 1;
    close(rc.fd);
    rc.fd = -1;
}


static void
close_conn(int graceful)
{
    double  deadline;

    if (graceful && !rc.wr_dead && shutdown(rc.fd, SHUT_WR) == 0) {

        /* wait briefly for the server's FIN, discarding what arrives */

        deadline = now_ms() + RTMPC_DRAIN_MS;

        while (!rc.eof && wait_input(deadline)) {
            rc.in.pos = rc.in.len;
        }
    }

    close(rc.fd);
    rc.fd = -1;
}


static void
handshake(void)
{
    unsigned char         c0c1[RTMP_HS_C0C1];
    const unsigned char  *c2;

    rtmp_hs_c0c1(c0c1, (uint32_t) now_abs());

    (void) send_all(c0c1, sizeof(c0c1));

    while (rc.in.len - rc.in.pos < RTMP_HS_S0S1S2) {
        if (rc.eof) {
            server_closed();
            finish(-1);
        }

        if (!wait_input(rc.timeout)) {
            emit("timeout");
            rc.timed_out = 1;
            close_conn(0);
            finish(-1);
        }
    }

    if (rtmp_hs_reply(rc.in.data + rc.in.pos, rc.in.len - rc.in.pos, &c2)
        != RTMP_OK)
    {
        fprintf(stderr, "rtmpc: unexpected S0 version %d\n",
                rc.in.data[rc.in.pos]);
    }

    (void) send_all(c2, RTMP_HS_SIZE);

    rc.in.pos += RTMP_HS_S0S1S2;
    rc.reader.bytes_in -= RTMP_HS_S0S1S2;

    emit("handshake");
}


/* -b: connect from this local address (another 127.x.y.z, say) */

static int
bind_local(int fd, int family)
{
    struct sockaddr_in   sin;
    struct sockaddr_in6  sin6;

    if (family == AF_INET) {
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;

        if (inet_pton(AF_INET, rc.bind, &sin.sin_addr) != 1) {
            errno = EINVAL;
            return -1;
        }

        return bind(fd, (struct sockaddr *) &sin, sizeof(sin));
    }

    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;

    if (inet_pton(AF_INET6, rc.bind, &sin6.sin6_addr) != 1) {
        errno = EINVAL;
        return -1;
    }

    return bind(fd, (struct sockaddr *) &sin6, sizeof(sin6));
}


static void
tcp_connect(void)
{
    int               fd, err, rv, flags;
    double            left;
    socklen_t         len;
    struct pollfd     pfd;
    struct addrinfo   hints, *res, *ai;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;

    rv = getaddrinfo(rc.url.host, rc.url.port, &hints, &res);
    if (rv != 0) {
        fprintf(stderr, "rtmpc: %s: %s\n", rc.url.host,
                gai_strerror(rv));
        finish(2);
    }

    rc.t0 = now_abs();
    err = 0;

    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }

        if (rc.bind && bind_local(fd, ai->ai_family) != 0) {
            err = errno;
            close(fd);
            continue;
        }

        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
            err = errno;
            close(fd);
            continue;
        }

        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            rc.fd = fd;
            break;
        }

        if (errno != EINPROGRESS) {
            err = errno;
            close(fd);
            continue;
        }

        for ( ;; ) {
            left = rc.timeout - now_ms();
            if (left <= 0) {
                emit("timeout");
                rc.timed_out = 1;
                close(fd);
                freeaddrinfo(res);
                finish(-1);
            }

            pfd.fd = fd;
            pfd.events = POLLOUT;
            pfd.revents = 0;

            rv = poll(&pfd, 1, (int) left + 1);

            if (rv > 0 || (rv < 0 && errno != EINTR)) {
                break;
            }
        }

        len = sizeof(err);

        if (rv < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
            err = errno;
        }

        if (err == 0) {
            rc.fd = fd;
            break;
        }

        close(fd);
    }

    freeaddrinfo(res);

    if (rc.fd < 0) {
        fprintf(stderr, "rtmpc: connect: %s\n", strerror(err));
        finish(2);
    }

    flags = 1;
    (void) setsockopt(rc.fd, IPPROTO_TCP, TCP_NODELAY, &flags,
                      sizeof(flags));

    quick_ack();

    emit("connected");
}


static double
get_deadline(int *kind)
{
    if (rc.drop >= 0) {
        if (rc.publish_sent) {
            *kind = RTMPC_DL_DROP;
            return rc.publish_at + rc.drop;
        }

        *kind = RTMPC_DL_TIMEOUT;
        return rc.timeout;
    }

    if (rc.decided == RTMPC_START
        || (rc.decided == RTMPC_ERROR && rc.linger > 0))
    {
        *kind = RTMPC_DL_LINGER;
        return rc.decided_at + rc.linger;
    }

    *kind = RTMPC_DL_TIMEOUT;
    return rc.timeout;
}


static void
run(void)
{
    int     kind;
    double  dl;

    for ( ;; ) {
        parse_input();

        if (rc.stop) {
            close_conn(1);
            return;
        }

        check_ack();

        if (rc.eof) {
            server_closed();
            return;
        }

        dl = get_deadline(&kind);

        if (wait_input(dl)) {
            continue;
        }

        switch (kind) {

        case RTMPC_DL_DROP:
            close_conn(0);
            return;

        case RTMPC_DL_LINGER:
            if (rc.decided == RTMPC_START) {
                send_delete();
            }

            close_conn(1);
            return;

        default:
            emit("timeout");
            rc.timed_out = 1;
            close_conn(1);
            return;
        }
    }
}


static void
usage(const char *msg)
{
    rtmp_usage("rtmpc", msg,
               "usage: rtmpc [-n NAME | -x HEX | -l LEN] [-w MS] [-W MS] "
               "[-t MS] [-q] [-b ADDR] [-F N] [-D]\n"
               "             rtmp://HOST[:PORT]/APP\n", 4);
}


static long
parse_ms(const char *s, long max)
{
    long   v;
    char  *end;

    errno = 0;
    v = strtol(s, &end, 10);

    if (*s == '\0' || *end != '\0' || errno || v < 0 || v > max) {
        usage("bad number");
    }

    return v;
}


static int
hex_digit(int ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }

    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }

    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }

    return -1;
}


static void
set_name_hex(const char *s)
{
    int     hi, lo;
    size_t  i, len;

    len = strlen(s);

    if (len % 2) {
        usage("odd number of hex digits");
    }

    free(rc.name);

    rc.name = malloc(len / 2 + 1);
    if (rc.name == NULL) {
        usage("out of memory");
    }

    for (i = 0; i < len / 2; i++) {
        hi = hex_digit(s[2 * i]);
        lo = hex_digit(s[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            usage("bad hex digit");
        }

        rc.name[i] = (unsigned char) (hi * 16 + lo);
    }

    rc.name_len = len / 2;
}


static void
set_name(const char *s, size_t len, int fill)
{
    free(rc.name);

    rc.name = malloc(len + 1);
    if (rc.name == NULL) {
        usage("out of memory");
    }

    if (fill) {
        memset(rc.name, 'k', len);

    } else {
        memcpy(rc.name, s, len);
    }

    rc.name_len = len;
}


int
main(int argc, char **argv)
{
    int          ch;
    const char  *err;

    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);

    rc.fd = -1;
    rc.timeout = 10000;
    rc.drop = -1;
    rtmp_nomem = nomem;
    rtmp_reader_init(&rc.reader, RTMP_MAX_CSID + 1);

    set_name("test", 4, 0);

    while ((ch = getopt(argc, argv, "n:x:l:w:W:t:qb:F:D")) != -1) {
        switch (ch) {

        case 'n':
            set_name(optarg, strlen(optarg), 0);
            break;

        case 'x':
            set_name_hex(optarg);
            break;

        case 'l':
            set_name(NULL, (size_t) parse_ms(optarg, RTMPC_MAX_NAME), 1);
            break;

        case 'w':
            rc.linger = parse_ms(optarg, INT_MAX);
            break;

        case 'W':
            rc.drop = parse_ms(optarg, INT_MAX);
            break;

        case 't':
            rc.timeout = parse_ms(optarg, INT_MAX);
            break;

        case 'q':
            rc.quiet = 1;
            break;

        case 'b':
            rc.bind = optarg;
            break;

        case 'F':
            rc.flood = (int) parse_ms(optarg, 100000);
            break;

        case 'D':
            rc.delayed_acks = 1;
            break;

        default:
            usage(NULL);
        }
    }

    if (optind != argc - 1) {
        usage(NULL);
    }

    err = rtmp_url_parse(argv[optind], &rc.url);
    if (err) {
        usage(err);
    }

    srandom((unsigned) time(NULL) ^ (unsigned) getpid());

    tcp_connect();
    handshake();
    send_connect();
    run();

    finish(-1);

    return 0;
}
