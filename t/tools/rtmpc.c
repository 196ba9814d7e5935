
/*
 * Copyright (C) ngx_rtmp_pgauth authors
 */


/*
 * rtmpc - a minimal RTMP publishing client for the test suite.
 *
 * Build: cc -O2 -Wall -Wextra -Werror -o rtmpc rtmpc.c
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


#define RTMPC_HS_SIZE          1536
#define RTMPC_OUT_CHUNK        4096
#define RTMPC_MAX_CSID         65599
#define RTMPC_MAX_DEPTH        64
#define RTMPC_MAX_NAME         100000
#define RTMPC_READ_SIZE        65536
#define RTMPC_DRAIN_MS         300

#define RTMPC_CSID_CTL         2
#define RTMPC_CSID_CMD         3
#define RTMPC_CSID_STREAM      8

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
    unsigned char          *data;
    size_t                  pos;
    size_t                  len;
    size_t                  cap;
} rtmpc_buf_t;


typedef struct {
    uint32_t                mlen;
    uint32_t                have;
    uint8_t                 type;
    uint8_t                 ext;
    unsigned char          *msg;
} rtmpc_stream_t;


typedef struct {
    const unsigned char    *level;
    size_t                  level_len;
    const unsigned char    *code;
    size_t                  code_len;
    const unsigned char    *desc;
    size_t                  desc_len;
} rtmpc_info_t;


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
    char                   *url;
    char                   *host;
    char                   *port;
    char                   *app;

    rtmpc_buf_t             in;
    rtmpc_buf_t             out;
    uint64_t                bytes_in;
    uint64_t                last_ack;
    uint32_t                win_ack;
    uint32_t                in_chunk;
    rtmpc_stream_t         *cur;
    uint32_t                chunk_left;

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


static rtmpc_t          rc;
static rtmpc_stream_t  *streams[RTMPC_MAX_CSID + 1];


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


static uint32_t
get_be16(const unsigned char *p)
{
    return ((uint32_t) p[0] << 8) | p[1];
}


static uint32_t
get_be24(const unsigned char *p)
{
    return ((uint32_t) p[0] << 16) | ((uint32_t) p[1] << 8) | p[2];
}


static uint32_t
get_be32(const unsigned char *p)
{
    return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16)
           | ((uint32_t) p[2] << 8) | p[3];
}


static double
get_double(const unsigned char *p)
{
    int       i;
    double    d;
    uint64_t  v;

    v = 0;

    for (i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }

    memcpy(&d, &v, sizeof(d));

    return d;
}


static void
buf_reserve(rtmpc_buf_t *b, size_t n)
{
    size_t          cap;
    unsigned char  *p;

    if (b->cap - b->len >= n) {
        return;
    }

    cap = b->cap ? b->cap : 1024;

    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2) {
            fatal("out of memory");
        }

        cap *= 2;
    }

    p = realloc(b->data, cap);
    if (p == NULL) {
        fatal("out of memory");
    }

    b->data = p;
    b->cap = cap;
}


static void
buf_put(rtmpc_buf_t *b, const void *data, size_t n)
{
    buf_reserve(b, n);

    if (n) {
        memcpy(b->data + b->len, data, n);
    }

    b->len += n;
}


static void
buf_byte(rtmpc_buf_t *b, unsigned char ch)
{
    buf_put(b, &ch, 1);
}


static void
buf_be(rtmpc_buf_t *b, uint32_t v, int n)
{
    while (n--) {
        buf_byte(b, (unsigned char) (v >> (8 * n)));
    }
}


static void
amf_put_str(rtmpc_buf_t *b, const unsigned char *s, size_t len)
{
    if (len <= 0xffff) {
        buf_byte(b, 0x02);
        buf_be(b, (uint32_t) len, 2);

    } else {
        buf_byte(b, 0x0c);
        buf_be(b, (uint32_t) len, 4);
    }

    buf_put(b, s, len);
}


static void
amf_put_cstr(rtmpc_buf_t *b, const char *s)
{
    amf_put_str(b, (const unsigned char *) s, strlen(s));
}


static void
amf_put_num(rtmpc_buf_t *b, double d)
{
    int       i;
    uint64_t  v;

    memcpy(&v, &d, sizeof(v));

    buf_byte(b, 0x00);

    for (i = 7; i >= 0; i--) {
        buf_byte(b, (unsigned char) (v >> (8 * i)));
    }
}


static void
amf_put_prop(rtmpc_buf_t *b, const char *key, const char *val)
{
    size_t  len;

    len = strlen(key);

    buf_be(b, (uint32_t) len, 2);
    buf_put(b, key, len);
    amf_put_cstr(b, val);
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

    buf_reserve(&rc.in, RTMPC_READ_SIZE);

    n = recv(rc.fd, rc.in.data + rc.in.len, rc.in.cap - rc.in.len, 0);

    if (n > 0) {
        rc.in.len += n;
        rc.bytes_in += n;
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
send_msg(uint32_t csid, uint8_t type, uint32_t msid,
    const unsigned char *data, size_t len)
{
    size_t  n;

    /* fmt 0 header, timestamp 0; csid is always 2..63 here */

    buf_byte(&rc.out, (unsigned char) csid);
    buf_be(&rc.out, 0, 3);
    buf_be(&rc.out, (uint32_t) len, 3);
    buf_byte(&rc.out, type);
    buf_byte(&rc.out, (unsigned char) msid);
    buf_byte(&rc.out, (unsigned char) (msid >> 8));
    buf_byte(&rc.out, (unsigned char) (msid >> 16));
    buf_byte(&rc.out, (unsigned char) (msid >> 24));

    for ( ;; ) {
        n = len < RTMPC_OUT_CHUNK ? len : RTMPC_OUT_CHUNK;

        buf_put(&rc.out, data, n);

        data += n;
        len -= n;

        if (len == 0) {
            break;
        }

        buf_byte(&rc.out, (unsigned char) (0xc0 | csid));
    }
}


static void
send_cmd(uint32_t csid, uint32_t msid, rtmpc_buf_t *b)
{
    send_msg(csid, 20, msid, b->data, b->len);
    b->len = 0;
}


static void
send_connect(void)
{
    rtmpc_buf_t  b;

    memset(&b, 0, sizeof(b));

    /* set chunk size */

    buf_be(&b, RTMPC_OUT_CHUNK, 4);
    send_msg(RTMPC_CSID_CTL, 1, 0, b.data, b.len);
    b.len = 0;

    amf_put_cstr(&b, "connect");
    amf_put_num(&b, 1);
    buf_byte(&b, 0x03);
    amf_put_prop(&b, "app", rc.app);
    amf_put_prop(&b, "type", "nonprivate");
    amf_put_prop(&b, "flashVer", "FMLE/3.0 (compatible; rtmpc)");
    amf_put_prop(&b, "tcUrl", rc.url);
    buf_be(&b, 9, 3);
    send_cmd(RTMPC_CSID_CMD, 0, &b);

    free(b.data);

    flush_out();
}


static void
send_prepublish(void)
{
    rtmpc_buf_t  b;

    memset(&b, 0, sizeof(b));

    amf_put_cstr(&b, "releaseStream");
    amf_put_num(&b, 2);
    buf_byte(&b, 0x05);
    amf_put_str(&b, rc.name, rc.name_len);
    send_cmd(RTMPC_CSID_CMD, 0, &b);

    amf_put_cstr(&b, "FCPublish");
    amf_put_num(&b, 3);
    buf_byte(&b, 0x05);
    amf_put_str(&b, rc.name, rc.name_len);
    send_cmd(RTMPC_CSID_CMD, 0, &b);

    amf_put_cstr(&b, "createStream");
    amf_put_num(&b, 4);
    buf_byte(&b, 0x05);
    send_cmd(RTMPC_CSID_CMD, 0, &b);

    free(b.data);

    flush_out();
}


static void
send_publish(void)
{
    uint32_t     msid;
    rtmpc_buf_t  b;

    memset(&b, 0, sizeof(b));

    msid = (rc.sid >= 0 && rc.sid <= 4294967295.0) ? (uint32_t) rc.sid : 1;

    amf_put_cstr(&b, "publish");
    amf_put_num(&b, 5);
    buf_byte(&b, 0x05);
    amf_put_str(&b, rc.name, rc.name_len);
    amf_put_cstr(&b, "live");
    send_cmd(RTMPC_CSID_STREAM, msid, &b);

    /* -F: the same publish again and again, without waiting */
    while (rc.flood-- > 1) {
        send_cmd(RTMPC_CSID_STREAM, msid, &b);
    }

    free(b.data);

    flush_out();

    rc.publish_sent = 1;
    rc.publish_at = now_ms();
}


static void
send_delete(void)
{
    rtmpc_buf_t  b;

    memset(&b, 0, sizeof(b));

    amf_put_cstr(&b, "deleteStream");
    amf_put_num(&b, 6);
    buf_byte(&b, 0x05);
    amf_put_num(&b, rc.sid);
    send_cmd(RTMPC_CSID_CMD, 0, &b);

    free(b.data);

    flush_out();
}


static void
send_control(uint8_t type, const unsigned char *data, size_t len)
{
    send_msg(RTMPC_CSID_CTL, type, 0, data, len);
    flush_out();
}


/* AMF0 decoding; every function returns NULL on malformed input */

static const unsigned char *amf_skip(const unsigned char *p,
    const unsigned char *end, int depth, rtmpc_info_t *info);


static const unsigned char *
amf_string(const unsigned char *p, const unsigned char *end,
    const unsigned char **s, size_t *len)
{
    size_t  n;

    if (p >= end) {
        return NULL;
    }

    if (*p == 0x02) {
        if (end - p < 3) {
            return NULL;
        }

        n = get_be16(p + 1);
        p += 3;

    } else if (*p == 0x0c) {
        if (end - p < 5) {
            return NULL;
        }

        n = get_be32(p + 1);
        p += 5;

    } else {
        return NULL;
    }

    if ((size_t) (end - p) < n) {
        return NULL;
    }

    *s = p;
    *len = n;

    return p + n;
}


static void
info_set(rtmpc_info_t *info, const unsigned char *key, size_t klen,
    const unsigned char *s, size_t len)
{
    if (klen == 5 && memcmp(key, "level", 5) == 0 && info->level == NULL) {
        info->level = s;
        info->level_len = len;

    } else if (klen == 4 && memcmp(key, "code", 4) == 0
               && info->code == NULL)
    {
        info->code = s;
        info->code_len = len;

    } else if (klen == 11 && memcmp(key, "description", 11) == 0
               && info->desc == NULL)
    {
        info->desc = s;
        info->desc_len = len;
    }
}


static const unsigned char *
amf_props(const unsigned char *p, const unsigned char *end, int depth,
    rtmpc_info_t *info)
{
    size_t                klen, slen;
    const unsigned char  *key, *s, *q;

    for ( ;; ) {
        if (end - p < 2) {
            return NULL;
        }

        klen = get_be16(p);
        p += 2;

        if (klen == 0 && p < end && *p == 0x09) {
            return p + 1;
        }

        if ((size_t) (end - p) < klen) {
            return NULL;
        }

        key = p;
        p += klen;

        if (p >= end) {
            return NULL;
        }

        if (info && (*p == 0x02 || *p == 0x0c)) {
            q = amf_string(p, end, &s, &slen);
            if (q == NULL) {
                return NULL;
            }

            info_set(info, key, klen, s, slen);
            p = q;
            continue;
        }

        p = amf_skip(p, end, depth + 1, NULL);
        if (p == NULL) {
            return NULL;
        }
    }
}


static const unsigned char *
amf_skip(const unsigned char *p, const unsigned char *end, int depth,
    rtmpc_info_t *info)
{
    size_t                n;
    uint32_t              i, count;
    const unsigned char  *s;

    if (p >= end || depth > RTMPC_MAX_DEPTH) {
        return NULL;
    }

    switch (*p) {

    case 0x00:                         /* number */
        n = 9;
        break;

    case 0x01:                         /* boolean */
        n = 2;
        break;

    case 0x02:                         /* string */
    case 0x0c:                         /* long string */
        return amf_string(p, end, &s, &n);

    case 0x03:                         /* object */
        return amf_props(p + 1, end, depth, info);

    case 0x05:                         /* null */
    case 0x06:                         /* undefined */
    case 0x0d:                         /* unsupported */
        n = 1;
        break;

    case 0x07:                         /* reference */
        n = 3;
        break;

    case 0x08:                         /* ECMA array */
        if (end - p < 5) {
            return NULL;
        }

        return amf_props(p + 5, end, depth, info);

    case 0x0a:                         /* strict array */
        if (end - p < 5) {
            return NULL;
        }

        count = get_be32(p + 1);
        p += 5;

        for (i = 0; i < count; i++) {
            p = amf_skip(p, end, depth + 1, NULL);
            if (p == NULL) {
                return NULL;
            }
        }

        return p;

    case 0x0b:                         /* date */
        n = 11;
        break;

    case 0x0f:                         /* XML document */
        if (end - p < 5) {
            return NULL;
        }

        n = get_be32(p + 1);
        p += 5;
        break;

    case 0x10:                         /* typed object */
        if (end - p < 3) {
            return NULL;
        }

        n = get_be16(p + 1);
        p += 3;

        if ((size_t) (end - p) < n) {
            return NULL;
        }

        return amf_props(p + n, end, depth, info);

    default:                           /* movieclip, object end, AMF3 */
        return NULL;
    }

    if ((size_t) (end - p) < n) {
        return NULL;
    }

    return p + n;
}


static void
on_status(rtmpc_info_t *info)
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
on_result(const unsigned char *name, size_t nlen, double txn,
    int have_num, double num)
{
    int  error;

    error = (nlen == 6 && memcmp(name, "_error", 6) == 0);

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

    if (txn == 1 && rc.phase == RTMPC_PH_CONNECT) {
        if (error) {
            fprintf(stderr, "rtmpc: connect rejected\n");
            rc.stop = 1;
            return;
        }

        rc.phase = RTMPC_PH_CREATE;
        send_prepublish();

    } else if (txn == 4 && rc.phase == RTMPC_PH_CREATE) {
        if (error || !have_num) {
            fprintf(stderr, "rtmpc: createStream failed\n");
            rc.stop = 1;
            return;
        }

        rc.sid = num;
        rc.phase = RTMPC_PH_PUBLISH;
        send_publish();
    }
}


static void
on_command(const unsigned char *p, size_t len)
{
    int                   have_num;
    size_t                nlen;
    double                txn, num;
    rtmpc_info_t          info;
    const unsigned char  *end, *name, *q;

    end = p + len;

    p = amf_string(p, end, &name, &nlen);
    if (p == NULL) {
        return;
    }

    txn = 0;
    memset(&info, 0, sizeof(info));

    if (p < end && *p == 0x00 && end - p >= 9) {
        txn = get_double(p + 1);
        p += 9;

    } else if (p < end) {
        p = amf_skip(p, end, 0, &info);
    }

    have_num = 0;
    num = 0;

    while (p && p < end) {
        if (*p == 0x00 && !have_num && end - p >= 9) {
            num = get_double(p + 1);
            have_num = 1;
            p += 9;
            continue;
        }

        q = p;
        p = amf_skip(p, end, 0, &info);

        if (p == q) {
            break;
        }
    }

    if ((nlen == 7 && memcmp(name, "_result", 7) == 0)
        || (nlen == 6 && memcmp(name, "_error", 6) == 0))
    {
        on_result(name, nlen, txn, have_num, num);
        return;
    }

    if (nlen == 8 && memcmp(name, "onStatus", 8) == 0) {
        on_status(&info);
        return;
    }

    if (!rc.quiet) {
        printf("cmd %.1f ", now_ms());
        put_word(name, nlen);
        putchar('\n');
    }
}


static void
on_message(uint8_t type, const unsigned char *p, size_t len)
{
    uint32_t         v;
    unsigned char    pong[6];
    rtmpc_stream_t  *st;

    switch (type) {

    case 1:                            /* set chunk size */
        if (len >= 4) {
            v = get_be32(p) & 0x7fffffff;
            if (v) {
                rc.in_chunk = v;
            }
        }
        break;

    case 2:                            /* abort */
        if (len >= 4) {
            v = get_be32(p);
            if (v <= RTMPC_MAX_CSID && streams[v] && streams[v] != rc.cur) {
                st = streams[v];
                free(st->msg);
                st->msg = NULL;
                st->have = 0;
            }
        }
        break;

    case 4:                            /* user control */
        if (len >= 6 && get_be16(p) == 6) {
            pong[0] = 0;
            pong[1] = 7;
            memcpy(pong + 2, p + 2, 4);
            send_control(4, pong, 6);
        }
        break;

    case 5:                            /* window acknowledgement size */
        if (len >= 4) {
            rc.win_ack = get_be32(p);
        }
        break;

    case 17:                           /* AMF3 command: format byte first */
        if (len >= 1) {
            on_command(p + 1, len - 1);
        }
        break;

    case 20:                           /* AMF0 command */
        on_command(p, len);
        break;

    default:                           /* ack, bandwidth, media, data */
        break;
    }
}


/* returns 1 when a chunk header was consumed, 0 if more data is needed */

static int
parse_header(void)
{
    int                   fmt;
    size_t                avail, hl, need;
    uint32_t              csid, mlen;
    uint8_t               ext;
    rtmpc_stream_t       *st;
    const unsigned char  *p, *q;

    p = rc.in.data + rc.in.pos;
    avail = rc.in.len - rc.in.pos;

    if (avail < 1) {
        return 0;
    }

    fmt = p[0] >> 6;
    csid = p[0] & 0x3f;
    hl = 1;

    if (csid == 0) {
        if (avail < 2) {
            return 0;
        }

        csid = 64 + p[1];
        hl = 2;

    } else if (csid == 1) {
        if (avail < 3) {
            return 0;
        }

        csid = 64 + p[1] + 256 * (uint32_t) p[2];
        hl = 3;
    }

    need = hl + (fmt == 0 ? 11 : fmt == 1 ? 7 : fmt == 2 ? 3 : 0);

    if (avail < need) {
        return 0;
    }

    st = streams[csid];

    if (st == NULL) {
        st = calloc(1, sizeof(rtmpc_stream_t));
        if (st == NULL) {
            fatal("out of memory");
        }

        streams[csid] = st;
    }

    q = p + hl;

    if (fmt <= 2) {
        ext = (get_be24(q) == 0xffffff);

    } else {
        /* like nginx-rtmp: type 3 repeats the extended timestamp */
        ext = st->ext;
    }

    if (ext) {
        need += 4;

        if (avail < need) {
            return 0;
        }
    }

    if (fmt <= 2) {
        st->ext = ext;

        if (st->have) {
            /* a new message interrupts an unfinished one: drop it */
            free(st->msg);
            st->msg = NULL;
            st->have = 0;
        }
    }

    if (fmt <= 1) {
        mlen = get_be24(q + 3);
        st->mlen = mlen;
        st->type = q[6];
    }

    if (st->msg == NULL) {
        st->msg = malloc(st->mlen ? st->mlen : 1);
        if (st->msg == NULL) {
            fatal("out of memory");
        }

        st->have = 0;
    }

    rc.in.pos += need;
    rc.cur = st;
    rc.chunk_left = st->mlen - st->have;

    if (rc.chunk_left > rc.in_chunk) {
        rc.chunk_left = rc.in_chunk;
    }

    return 1;
}


static void
parse_input(void)
{
    size_t           n, len;
    unsigned char   *msg;
    rtmpc_stream_t  *st;

    while (!rc.stop) {
        if (rc.cur == NULL && !parse_header()) {
            return;
        }

        st = rc.cur;
        n = rc.in.len - rc.in.pos;

        if (n > rc.chunk_left) {
            n = rc.chunk_left;
        }

        if (n) {
            memcpy(st->msg + st->have, rc.in.data + rc.in.pos, n);
            st->have += n;
            rc.in.pos += n;
            rc.chunk_left -= n;
        }

        if (rc.chunk_left) {
            return;
        }

        rc.cur = NULL;

        if (st->have == st->mlen) {
            msg = st->msg;
            len = st->have;
            st->msg = NULL;
            st->have = 0;

            on_message(st->type, msg, len);

            free(msg);
        }
    }
}


static void
check_ack(void)
{
    uint64_t       n;
    unsigned char  ack[4];

    if (rc.win_ack == 0 || rc.wr_dead) {
        return;
    }

    n = rc.bytes_in - rc.last_ack;

    if (n < rc.win_ack) {
        return;
    }

    rc.last_ack = rc.bytes_in;

    ack[0] = (unsigned char) (rc.bytes_in >> 24);
    ack[1] = (unsigned char) (rc.bytes_in >> 16);
    ack[2] = (unsigned char) (rc.bytes_in >> 8);
    ack[3] = (unsigned char) rc.bytes_in;

    send_control(3, ack, 4);
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
    size_t         i;
    uint32_t       t;
    unsigned char  c0c1[1 + RTMPC_HS_SIZE];

    c0c1[0] = 0x03;

    t = (uint32_t) now_abs();
    c0c1[1] = (unsigned char) (t >> 24);
    c0c1[2] = (unsigned char) (t >> 16);
    c0c1[3] = (unsigned char) (t >> 8);
    c0c1[4] = (unsigned char) t;

    /* zero version: nginx-rtmp takes the old-style handshake */

    memset(c0c1 + 5, 0, 4);

    for (i = 9; i < sizeof(c0c1); i++) {
        c0c1[i] = (unsigned char) (random() >> 7);
    }

    (void) send_all(c0c1, sizeof(c0c1));

    while (rc.in.len - rc.in.pos < 1 + 2 * RTMPC_HS_SIZE) {
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

    if (rc.in.data[rc.in.pos] != 0x03) {
        fprintf(stderr, "rtmpc: unexpected S0 version %d\n",
                rc.in.data[rc.in.pos]);
    }

    /* C2 echoes S1 */

    (void) send_all(rc.in.data + rc.in.pos + 1, RTMPC_HS_SIZE);

    rc.in.pos += 1 + 2 * RTMPC_HS_SIZE;
    rc.bytes_in -= 1 + 2 * RTMPC_HS_SIZE;

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

    rv = getaddrinfo(rc.host, rc.port, &hints, &res);
    if (rv != 0) {
        fprintf(stderr, "rtmpc: %s: %s\n", rc.host, gai_strerror(rv));
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
    if (msg) {
        fprintf(stderr, "rtmpc: %s\n", msg);
    }

    fprintf(stderr,
            "usage: rtmpc [-n NAME | -x HEX | -l LEN] [-w MS] [-W MS] "
            "[-t MS] [-q] [-b ADDR] [-F N] [-D]\n"
            "             rtmp://HOST[:PORT]/APP\n");

    exit(4);
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


static void
parse_url(char *url)
{
    char    *p, *host, *end;
    size_t   len;

    if (strncmp(url, "rtmp://", 7) != 0) {
        usage("URL must start with rtmp://");
    }

    rc.url = url;
    p = url + 7;

    end = strchr(p, '/');
    len = end ? (size_t) (end - p) : strlen(p);

    host = malloc(len + 1);
    if (host == NULL) {
        usage("out of memory");
    }

    memcpy(host, p, len);
    host[len] = '\0';

    rc.app = end ? end + 1 : (char *) "";
    rc.port = (char *) "1935";

    if (host[0] == '[') {
        p = strchr(host, ']');
        if (p == NULL) {
            usage("bad IPv6 address");
        }

        *p++ = '\0';
        rc.host = host + 1;

    } else {
        rc.host = host;
        p = strchr(host, ':');
    }

    if (p && *p == ':') {
        *p++ = '\0';

        if (*p) {
            rc.port = p;
        }

    } else if (p && *p) {
        usage("bad URL");
    }

    if (rc.host[0] == '\0') {
        usage("no host in URL");
    }
}


int
main(int argc, char **argv)
{
    int  ch;

    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);

    rc.fd = -1;
    rc.timeout = 10000;
    rc.drop = -1;
    rc.in_chunk = 128;

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

    if (argc - optind != 1) {
        usage(NULL);
    }

    parse_url(argv[optind]);

    srandom((unsigned) time(NULL) ^ (unsigned) getpid());

    tcp_connect();
    handshake();
    send_connect();
    run();

    finish(-1);

    return 0;
}
