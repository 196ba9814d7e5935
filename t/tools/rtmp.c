
/*
 * Copyright (C) ngx_rtmp_pgauth authors
 */


/*
 * rtmp - the RTMP client core of t/tools/rtmpc and t/bench/loadc; see
 * rtmp.h.
 */


#define _DEFAULT_SOURCE                /* random() */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtmp.h"


static void rtmp_nomem_default(void);
static void *rtmp_realloc(void *p, size_t size);
static uint32_t rtmp_get_be16(const unsigned char *p);
static uint32_t rtmp_get_be24(const unsigned char *p);
static uint32_t rtmp_get_be32(const unsigned char *p);
static double rtmp_get_double(const unsigned char *p);
static rtmp_stream_t *rtmp_stream(rtmp_reader_t *r, uint32_t csid);
static int rtmp_read_header(rtmp_reader_t *r, rtmp_buf_t *in);
static void rtmp_apply(rtmp_reader_t *r, const rtmp_msg_t *m);
static void rtmp_info_set(rtmp_cmd_t *info, const unsigned char *key,
    size_t klen, const unsigned char *s, size_t len);
static const unsigned char *rtmp_amf_props(const unsigned char *p,
    const unsigned char *end, int depth, rtmp_cmd_t *info);


void  (*rtmp_nomem)(void) = rtmp_nomem_default;


static void
rtmp_nomem_default(void)
{
    fprintf(stderr, "out of memory\n");
    exit(1);
}


static void *
rtmp_realloc(void *p, size_t size)
{
    p = realloc(p, size);

    if (p == NULL) {
        rtmp_nomem();
        abort();
    }

    return p;
}


static uint32_t
rtmp_get_be16(const unsigned char *p)
{
    return ((uint32_t) p[0] << 8) | p[1];
}


static uint32_t
rtmp_get_be24(const unsigned char *p)
{
    return ((uint32_t) p[0] << 16) | ((uint32_t) p[1] << 8) | p[2];
}


static uint32_t
rtmp_get_be32(const unsigned char *p)
{
    return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16)
           | ((uint32_t) p[2] << 8) | p[3];
}


static double
rtmp_get_double(const unsigned char *p)
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


/* buffers */

void
rtmp_buf_reserve(rtmp_buf_t *b, size_t n)
{
    size_t  cap;

    if (b->cap - b->len >= n) {
        return;
    }

    cap = b->cap ? b->cap : 1024;

    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2) {
            rtmp_nomem();
            abort();
        }

        cap *= 2;
    }

    b->data = rtmp_realloc(b->data, cap);
    b->cap = cap;
}


void
rtmp_buf_put(rtmp_buf_t *b, const void *data, size_t n)
{
    rtmp_buf_reserve(b, n);

    if (n) {
        memcpy(b->data + b->len, data, n);
    }

    b->len += n;
}


void
rtmp_buf_byte(rtmp_buf_t *b, unsigned char ch)
{
    rtmp_buf_put(b, &ch, 1);
}


void
rtmp_buf_be(rtmp_buf_t *b, uint32_t v, int n)
{
    while (n--) {
        rtmp_buf_byte(b, (unsigned char) (v >> (8 * n)));
    }
}


void
rtmp_buf_free(rtmp_buf_t *b)
{
    free(b->data);

    b->data = NULL;
    b->pos = 0;
    b->len = 0;
    b->cap = 0;
}


/*
 * rtmp://HOST[:PORT]/APP, HOST a name, an IPv4 address or an IPv6 one in
 * brackets; the port defaults to 1935.  url stays as it is (the tcUrl);
 * the parts are in a copy.  Returns NULL, or what is wrong.
 */

const char *
rtmp_url_parse(char *url, rtmp_url_t *u)
{
    char    *p, *host, *end;
    size_t   len;

    if (strncmp(url, "rtmp://", 7) != 0) {
        return "URL must start with rtmp://";
    }

    u->url = url;
    p = url + 7;

    end = strchr(p, '/');
    len = end ? (size_t) (end - p) : strlen(p);

    host = rtmp_realloc(NULL, len + 1);

    memcpy(host, p, len);
    host[len] = '\0';

    u->app = end ? end + 1 : (char *) "";
    u->port = (char *) "1935";

    if (host[0] == '[') {
        p = strchr(host, ']');
        if (p == NULL) {
            return "bad IPv6 address";
        }

        *p++ = '\0';
        u->host = host + 1;

    } else {
        u->host = host;
        p = strchr(host, ':');
    }

    if (p && *p == ':') {
        *p++ = '\0';

        if (*p) {
            u->port = p;
        }

    } else if (p && *p) {
        return "bad URL";
    }

    if (u->host[0] == '\0') {
        return "no host in URL";
    }

    return NULL;
}


/* "prog: msg" when there is a msg, then the usage text; exits */

void
rtmp_usage(const char *prog, const char *msg, const char *text, int status)
{
    if (msg) {
        fprintf(stderr, "%s: %s\n", prog, msg);
    }

    fputs(text, stderr);

    exit(status);
}


/* handshake */

void
rtmp_hs_c0c1(unsigned char *c0c1, uint32_t time)
{
    size_t  i;

    c0c1[0] = 0x03;

    c0c1[1] = (unsigned char) (time >> 24);
    c0c1[2] = (unsigned char) (time >> 16);
    c0c1[3] = (unsigned char) (time >> 8);
    c0c1[4] = (unsigned char) time;

    /* zero version: nginx-rtmp takes the old-style handshake */

    memset(c0c1 + 5, 0, 4);

    for (i = 9; i < RTMP_HS_C0C1; i++) {
        c0c1[i] = (unsigned char) (random() >> 7);
    }
}


/*
 * RTMP_AGAIN until the RTMP_HS_S0S1S2 bytes of S0 S1 S2 are there; then
 * *c2 is what to send back as C2 (S1, echoed), and the result RTMP_OK, or
 * RTMP_DECLINED when S0 is not version 3.
 */

int
rtmp_hs_reply(const unsigned char *p, size_t len, const unsigned char **c2)
{
    if (len < RTMP_HS_S0S1S2) {
        return RTMP_AGAIN;
    }

    *c2 = p + 1;

    return p[0] == 0x03 ? RTMP_OK : RTMP_DECLINED;
}


/* AMF0 encoding */

void
rtmp_amf_number(rtmp_buf_t *b, double d)
{
    int       i;
    uint64_t  v;

    memcpy(&v, &d, sizeof(v));

    rtmp_buf_byte(b, 0x00);

    for (i = 7; i >= 0; i--) {
        rtmp_buf_byte(b, (unsigned char) (v >> (8 * i)));
    }
}


void
rtmp_amf_boolean(rtmp_buf_t *b, int v)
{
    rtmp_buf_byte(b, 0x01);
    rtmp_buf_byte(b, v ? 1 : 0);
}


/* a string; one longer than 65535 bytes as a long string (0x0c) */

void
rtmp_amf_string(rtmp_buf_t *b, const unsigned char *s, size_t len)
{
    if (len <= 0xffff) {
        rtmp_buf_byte(b, 0x02);
        rtmp_buf_be(b, (uint32_t) len, 2);

    } else {
        rtmp_buf_byte(b, 0x0c);
        rtmp_buf_be(b, (uint32_t) len, 4);
    }

    rtmp_buf_put(b, s, len);
}


void
rtmp_amf_cstring(rtmp_buf_t *b, const char *s)
{
    rtmp_amf_string(b, (const unsigned char *) s, strlen(s));
}


void
rtmp_amf_null(rtmp_buf_t *b)
{
    rtmp_buf_byte(b, 0x05);
}


/* an object, or an ECMA array: keys and values, then rtmp_amf_end() */

void
rtmp_amf_object(rtmp_buf_t *b)
{
    rtmp_buf_byte(b, 0x03);
}


void
rtmp_amf_ecma_array(rtmp_buf_t *b, uint32_t count)
{
    rtmp_buf_byte(b, 0x08);
    rtmp_buf_be(b, count, 4);
}


void
rtmp_amf_key(rtmp_buf_t *b, const char *key)
{
    size_t  len;

    len = strlen(key);

    rtmp_buf_be(b, (uint32_t) len, 2);
    rtmp_buf_put(b, key, len);
}


void
rtmp_amf_prop(rtmp_buf_t *b, const char *key, const char *val)
{
    rtmp_amf_key(b, key);
    rtmp_amf_cstring(b, val);
}


void
rtmp_amf_end(rtmp_buf_t *b)
{
    rtmp_buf_be(b, 9, 3);
}


/* messages */

/* appends a whole message, fmt 0 header, timestamp 0, csid 2..63 */

void
rtmp_msg_put(rtmp_buf_t *out, uint32_t csid, uint8_t type, uint32_t msid,
    const unsigned char *data, size_t len)
{
    size_t  n;

    rtmp_buf_byte(out, (unsigned char) csid);
    rtmp_buf_be(out, 0, 3);
    rtmp_buf_be(out, (uint32_t) len, 3);
    rtmp_buf_byte(out, type);
    rtmp_buf_byte(out, (unsigned char) msid);
    rtmp_buf_byte(out, (unsigned char) (msid >> 8));
    rtmp_buf_byte(out, (unsigned char) (msid >> 16));
    rtmp_buf_byte(out, (unsigned char) (msid >> 24));

    for ( ;; ) {
        n = len < RTMP_OUT_CHUNK ? len : RTMP_OUT_CHUNK;

        rtmp_buf_put(out, data, n);

        data += n;
        len -= n;

        if (len == 0) {
            break;
        }

        rtmp_buf_byte(out, (unsigned char) (0xc0 | csid));
    }
}


/* the AMF0 command in body, which is emptied for the next one */

void
rtmp_cmd_put(rtmp_buf_t *out, uint32_t csid, uint32_t msid,
    rtmp_buf_t *body)
{
    rtmp_msg_put(out, csid, RTMP_MSG_AMF0_CMD, msid, body->data, body->len);
    body->len = 0;
}


/* a protocol control message of up to 6 bytes into out; returns its size */

size_t
rtmp_control(unsigned char *out, uint8_t type, const unsigned char *data,
    size_t len)
{
    /* fmt 0, csid 2, timestamp 0, msid 0 */

    memset(out, 0, 12);
    out[0] = RTMP_CSID_CTL;
    out[6] = (unsigned char) len;
    out[7] = type;
    memcpy(out + 12, data, len);

    return 12 + len;
}


/* Set Chunk Size RTMP_OUT_CHUNK and connect(app, flashVer, tcUrl) */

void
rtmp_put_connect(rtmp_buf_t *out, const char *app, const char *flashver,
    const char *tcurl)
{
    rtmp_buf_t  b;

    memset(&b, 0, sizeof(b));

    rtmp_buf_be(&b, RTMP_OUT_CHUNK, 4);
    rtmp_msg_put(out, RTMP_CSID_CTL, RTMP_MSG_CHUNK_SIZE, 0, b.data, b.len);
    b.len = 0;

    rtmp_amf_cstring(&b, "connect");
    rtmp_amf_number(&b, RTMP_TXN_CONNECT);
    rtmp_amf_object(&b);
    rtmp_amf_prop(&b, "app", app);
    rtmp_amf_prop(&b, "type", "nonprivate");
    rtmp_amf_prop(&b, "flashVer", flashver);
    rtmp_amf_prop(&b, "tcUrl", tcurl);
    rtmp_amf_end(&b);
    rtmp_cmd_put(out, RTMP_CSID_CMD, 0, &b);

    rtmp_buf_free(&b);
}


/* releaseStream(name), FCPublish(name) and createStream, like OBS */

void
rtmp_put_prepublish(rtmp_buf_t *out, const unsigned char *name, size_t len)
{
    rtmp_buf_t  b;

    memset(&b, 0, sizeof(b));

    rtmp_amf_cstring(&b, "releaseStream");
    rtmp_amf_number(&b, RTMP_TXN_RELEASE);
    rtmp_amf_null(&b);
    rtmp_amf_string(&b, name, len);
    rtmp_cmd_put(out, RTMP_CSID_CMD, 0, &b);

    rtmp_amf_cstring(&b, "FCPublish");
    rtmp_amf_number(&b, RTMP_TXN_FCPUBLISH);
    rtmp_amf_null(&b);
    rtmp_amf_string(&b, name, len);
    rtmp_cmd_put(out, RTMP_CSID_CMD, 0, &b);

    rtmp_amf_cstring(&b, "createStream");
    rtmp_amf_number(&b, RTMP_TXN_CREATE);
    rtmp_amf_null(&b);
    rtmp_cmd_put(out, RTMP_CSID_CMD, 0, &b);

    rtmp_buf_free(&b);
}


void
rtmp_put_publish(rtmp_buf_t *out, uint32_t msid, const unsigned char *name,
    size_t len, const char *type)
{
    rtmp_buf_t  b;

    memset(&b, 0, sizeof(b));

    rtmp_amf_cstring(&b, "publish");
    rtmp_amf_number(&b, RTMP_TXN_PUBLISH);
    rtmp_amf_null(&b);
    rtmp_amf_string(&b, name, len);
    rtmp_amf_cstring(&b, type);
    rtmp_cmd_put(out, RTMP_CSID_STREAM, msid, &b);

    rtmp_buf_free(&b);
}


void
rtmp_put_delete_stream(rtmp_buf_t *out, double sid)
{
    rtmp_buf_t  b;

    memset(&b, 0, sizeof(b));

    rtmp_amf_cstring(&b, "deleteStream");
    rtmp_amf_number(&b, RTMP_TXN_DELETE);
    rtmp_amf_null(&b);
    rtmp_amf_number(&b, sid);
    rtmp_cmd_put(out, RTMP_CSID_CMD, 0, &b);

    rtmp_buf_free(&b);
}


/* the message stream id for createStream's answer, 1 if out of range */

uint32_t
rtmp_msid(double sid)
{
    return (sid >= 0 && sid <= 4294967295.0) ? (uint32_t) sid : 1;
}


/* reading */

/*
 * max_streams: how many chunk streams a connection may use; rtmp_read()
 * fails on one more (RTMP_MAX_CSID + 1: never)
 */

void
rtmp_reader_init(rtmp_reader_t *r, uint32_t max_streams)
{
    memset(r, 0, sizeof(rtmp_reader_t));

    r->max_streams = max_streams;
    r->in_chunk = RTMP_IN_CHUNK;
}


/* for a new connection; the message buffers are kept for reuse */

void
rtmp_reader_reset(rtmp_reader_t *r)
{
    r->in_chunk = RTMP_IN_CHUNK;
    r->win_ack = 0;
    r->bytes_in = 0;
    r->last_ack = 0;
    r->cur = NULL;
    r->chunk_left = 0;
    r->nstreams = 0;
}


static rtmp_stream_t *
rtmp_stream(rtmp_reader_t *r, uint32_t csid)
{
    uint32_t        i, n;
    rtmp_stream_t  *st;

    for (i = 0; i < r->nstreams; i++) {
        if (r->streams[i].csid == csid) {
            return &r->streams[i];
        }
    }

    if (r->nstreams == r->max_streams) {
        return NULL;
    }

    if (r->nstreams == r->nalloc) {
        n = r->nalloc ? 2 * r->nalloc : 8;

        if (n > r->max_streams) {
            n = r->max_streams;
        }

        r->streams = rtmp_realloc(r->streams, n * sizeof(rtmp_stream_t));
        memset(&r->streams[r->nalloc], 0,
               (n - r->nalloc) * sizeof(rtmp_stream_t));
        r->nalloc = n;
    }

    st = &r->streams[r->nstreams++];

    st->csid = csid;
    st->mlen = 0;
    st->have = 0;
    st->type = 0;
    st->ext = 0;

    return st;
}


/*
 * RTMP_OK when a chunk header was consumed, RTMP_AGAIN if more data is
 * needed, RTMP_ERROR for a chunk stream more than max_streams
 */

static int
rtmp_read_header(rtmp_reader_t *r, rtmp_buf_t *in)
{
    int                   fmt;
    size_t                avail, hl, need;
    uint32_t              csid, cap;
    uint8_t               ext;
    rtmp_stream_t        *st;
    const unsigned char  *p, *q;

    p = in->data + in->pos;
    avail = in->len - in->pos;

    if (avail < 1) {
        return RTMP_AGAIN;
    }

    fmt = p[0] >> 6;
    csid = p[0] & 0x3f;
    hl = 1;

    if (csid == 0) {
        if (avail < 2) {
            return RTMP_AGAIN;
        }

        csid = 64 + p[1];
        hl = 2;

    } else if (csid == 1) {
        if (avail < 3) {
            return RTMP_AGAIN;
        }

        csid = 64 + p[1] + 256 * (uint32_t) p[2];
        hl = 3;
    }

    need = hl + (fmt == 0 ? 11 : fmt == 1 ? 7 : fmt == 2 ? 3 : 0);

    if (avail < need) {
        return RTMP_AGAIN;
    }

    st = rtmp_stream(r, csid);

    if (st == NULL) {
        return RTMP_ERROR;
    }

    q = p + hl;

    if (fmt <= 2) {
        ext = (rtmp_get_be24(q) == 0xffffff);

    } else {
        /* like nginx-rtmp: type 3 repeats the extended timestamp */
        ext = st->ext;
    }

    if (ext) {
        need += 4;

        if (avail < need) {
            return RTMP_AGAIN;
        }
    }

    if (fmt <= 2) {
        st->ext = ext;

        /* a new message interrupts an unfinished one: drop it */
        st->have = 0;
    }

    if (fmt <= 1) {
        st->mlen = rtmp_get_be24(q + 3);
        st->type = q[6];
    }

    if (st->have == 0 && st->cap < st->mlen) {
        cap = st->mlen < 256 ? 256 : st->mlen;

        st->msg = rtmp_realloc(st->msg, cap);
        st->cap = cap;
    }

    in->pos += need;
    r->cur = st;
    r->chunk_left = st->mlen - st->have;

    if (r->chunk_left > r->in_chunk) {
        r->chunk_left = r->in_chunk;
    }

    return RTMP_OK;
}


/*
 * takes chunks from in until a message is whole: RTMP_OK, the message in
 * m (valid until the next call); RTMP_AGAIN when in is used up; or
 * RTMP_ERROR: a chunk stream more than max_streams
 */

int
rtmp_read(rtmp_reader_t *r, rtmp_buf_t *in, rtmp_msg_t *m)
{
    int             rc;
    size_t          n;
    rtmp_stream_t  *st;

    for ( ;; ) {
        if (r->cur == NULL) {
            rc = rtmp_read_header(r, in);
            if (rc != RTMP_OK) {
                return rc;
            }
        }

        st = r->cur;
        n = in->len - in->pos;

        if (n > r->chunk_left) {
            n = r->chunk_left;
        }

        if (n) {
            memcpy(st->msg + st->have, in->data + in->pos, n);
            st->have += n;
            in->pos += n;
            r->chunk_left -= n;
        }

        if (r->chunk_left) {
            return RTMP_AGAIN;
        }

        r->cur = NULL;

        if (st->have == st->mlen) {
            st->have = 0;

            m->csid = st->csid;
            m->type = st->type;
            m->data = st->msg;
            m->len = st->mlen;

            rtmp_apply(r, m);

            return RTMP_OK;
        }
    }
}


/* Set Chunk Size, Abort and Window Acknowledgement Size */

static void
rtmp_apply(rtmp_reader_t *r, const rtmp_msg_t *m)
{
    uint32_t  i, v;

    switch (m->type) {

    case RTMP_MSG_CHUNK_SIZE:
        if (m->len >= 4) {
            v = rtmp_get_be32(m->data) & 0x7fffffff;
            if (v) {
                r->in_chunk = v;
            }
        }
        break;

    case RTMP_MSG_ABORT:
        if (m->len >= 4) {
            v = rtmp_get_be32(m->data);

            for (i = 0; i < r->nstreams; i++) {
                if (r->streams[i].csid == v) {
                    r->streams[i].have = 0;
                }
            }
        }
        break;

    case RTMP_MSG_WIN_ACK:
        if (m->len >= 4) {
            r->win_ack = rtmp_get_be32(m->data);
        }
        break;

    default:
        break;
    }
}


/*
 * the Acknowledgement due after bytes_in, into out (RTMP_CONTROL_SIZE
 * bytes); returns its size, 0 if none is due
 */

size_t
rtmp_ack(rtmp_reader_t *r, unsigned char *out)
{
    unsigned char  ack[4];

    if (r->win_ack == 0 || r->bytes_in - r->last_ack < r->win_ack) {
        return 0;
    }

    r->last_ack = r->bytes_in;

    ack[0] = (unsigned char) (r->bytes_in >> 24);
    ack[1] = (unsigned char) (r->bytes_in >> 16);
    ack[2] = (unsigned char) (r->bytes_in >> 8);
    ack[3] = (unsigned char) r->bytes_in;

    return rtmp_control(out, RTMP_MSG_ACK, ack, 4);
}


/*
 * the Ping Response to m if it is a Ping Request, into out
 * (RTMP_CONTROL_SIZE bytes); returns its size, 0 for any other message
 */

size_t
rtmp_pong(const rtmp_msg_t *m, unsigned char *out)
{
    unsigned char  pong[6];

    if (m->type != RTMP_MSG_USER || m->len < 6
        || rtmp_get_be16(m->data) != 6)
    {
        return 0;
    }

    pong[0] = 0;
    pong[1] = 7;
    memcpy(pong + 2, m->data + 2, 4);

    return rtmp_control(out, RTMP_MSG_USER, pong, 6);
}


/* AMF0 decoding; every function returns NULL on malformed input */

/*
 * a command message (AMF0, or AMF3 with its format byte first): RTMP_OK
 * and cmd filled in; the arguments are read only of _result, _error and
 * onStatus.  RTMP_DECLINED for any other message, or one without a name.
 */

int
rtmp_command(const rtmp_msg_t *m, rtmp_cmd_t *cmd)
{
    size_t                nlen;
    const unsigned char  *p, *end, *name, *q;

    p = m->data;
    end = p + m->len;

    if (m->type == RTMP_MSG_AMF3_CMD && m->len >= 1) {
        p++;

    } else if (m->type != RTMP_MSG_AMF0_CMD) {
        return RTMP_DECLINED;
    }

    memset(cmd, 0, sizeof(rtmp_cmd_t));

    p = rtmp_amf_get_string(p, end, &name, &nlen);
    if (p == NULL) {
        return RTMP_DECLINED;
    }

    cmd->name = name;
    cmd->name_len = nlen;

    if (nlen == 7 && memcmp(name, "_result", 7) == 0) {
        cmd->kind = RTMP_CMD_RESULT;

    } else if (nlen == 6 && memcmp(name, "_error", 6) == 0) {
        cmd->kind = RTMP_CMD_ERROR;

    } else if (nlen == 8 && memcmp(name, "onStatus", 8) == 0) {
        cmd->kind = RTMP_CMD_STATUS;

    } else {
        cmd->kind = RTMP_CMD_OTHER;
        return RTMP_OK;                /* onBWDone, onFCPublish, ... */
    }

    if (p < end && *p == 0x00 && end - p >= 9) {
        cmd->txn = rtmp_get_double(p + 1);
        p += 9;

    } else if (p < end) {
        p = rtmp_amf_skip(p, end, 0, cmd);
    }

    while (p && p < end) {
        if (*p == 0x00 && !cmd->have_num && end - p >= 9) {
            cmd->num = rtmp_get_double(p + 1);
            cmd->have_num = 1;
            p += 9;
            continue;
        }

        q = p;
        p = rtmp_amf_skip(p, end, 0, cmd);

        if (p == q) {
            break;
        }
    }

    return RTMP_OK;
}


const unsigned char *
rtmp_amf_get_string(const unsigned char *p, const unsigned char *end,
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

        n = rtmp_get_be16(p + 1);
        p += 3;

    } else if (*p == 0x0c) {
        if (end - p < 5) {
            return NULL;
        }

        n = rtmp_get_be32(p + 1);
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
rtmp_info_set(rtmp_cmd_t *info, const unsigned char *key, size_t klen,
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


/* the properties of an object: string values of the top level to info */

static const unsigned char *
rtmp_amf_props(const unsigned char *p, const unsigned char *end, int depth,
    rtmp_cmd_t *info)
{
    size_t                klen, slen;
    const unsigned char  *key, *s, *q;

    for ( ;; ) {
        if (end - p < 2) {
            return NULL;
        }

        klen = rtmp_get_be16(p);
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
            q = rtmp_amf_get_string(p, end, &s, &slen);
            if (q == NULL) {
                return NULL;
            }

            rtmp_info_set(info, key, klen, s, slen);
            p = q;
            continue;
        }

        p = rtmp_amf_skip(p, end, depth + 1, NULL);
        if (p == NULL) {
            return NULL;
        }
    }
}


/*
 * skips a value; of an object (or ECMA array, typed object) the level,
 * code and description go to info, unless it is NULL
 */

const unsigned char *
rtmp_amf_skip(const unsigned char *p, const unsigned char *end, int depth,
    rtmp_cmd_t *info)
{
    size_t                n;
    uint32_t              i, count;
    const unsigned char  *s;

    if (p >= end || depth > RTMP_MAX_DEPTH) {
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
        return rtmp_amf_get_string(p, end, &s, &n);

    case 0x03:                         /* object */
        return rtmp_amf_props(p + 1, end, depth, info);

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

        return rtmp_amf_props(p + 5, end, depth, info);

    case 0x0a:                         /* strict array */
        if (end - p < 5) {
            return NULL;
        }

        count = rtmp_get_be32(p + 1);
        p += 5;

        for (i = 0; i < count; i++) {
            p = rtmp_amf_skip(p, end, depth + 1, NULL);
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

        n = rtmp_get_be32(p + 1);
        p += 5;
        break;

    case 0x10:                         /* typed object */
        if (end - p < 3) {
            return NULL;
        }

        n = rtmp_get_be16(p + 1);
        p += 3;

        if ((size_t) (end - p) < n) {
            return NULL;
        }

        return rtmp_amf_props(p + n, end, depth, info);

    default:                           /* movieclip, object end, AMF3 */
        return NULL;
    }

    if ((size_t) (end - p) < n) {
        return NULL;
    }

    return p + n;
}
