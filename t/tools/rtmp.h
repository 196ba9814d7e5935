
/*
 * Copyright (C) ngx_rtmp_pgauth authors
 */


/*
 * rtmp - the RTMP client core of the test tools: t/tools/rtmpc (blocking,
 * with timeouts) and t/bench/loadc (nonblocking, epoll).
 *
 * It does no I/O and keeps no clock: bytes in, bytes out.  A client reads
 * from its socket into an rtmp_buf_t and takes whole messages out of it
 * with rtmp_read(); it builds what it sends into an rtmp_buf_t (or a small
 * array) and writes that its own way.
 *
 *   handshake   rtmp_hs_c0c1() builds C0 C1 (the simple, version 0 kind
 *               nginx-rtmp accepts); rtmp_hs_reply() checks S0 S1 S2 and
 *               points at the bytes to send back as C2
 *   writer      rtmp_msg_put(): a message as chunks of RTMP_OUT_CHUNK,
 *               which rtmp_put_connect() announces with Set Chunk Size;
 *               the commands of a publish: connect, releaseStream,
 *               FCPublish, createStream, publish, deleteStream
 *   reader      rtmp_read(): the chunk stream (basic header, message
 *               header types 0-3, extended timestamp, per chunk stream
 *               state); it applies Set Chunk Size, Abort and Window
 *               Acknowledgement Size itself; rtmp_ack() and rtmp_pong()
 *               give the Acknowledgement and Ping Response to send
 *   AMF0        encoders of numbers, strings, booleans, null, objects and
 *               ECMA arrays; rtmp_command() decodes a command message:
 *               its name, transaction id, first number (createStream's
 *               stream id) and the level, code and description of an
 *               onStatus
 *
 * Out of memory, the core calls rtmp_nomem, which must not return.
 */


#ifndef _RTMP_H_INCLUDED_
#define _RTMP_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define RTMP_OK                0
#define RTMP_ERROR             -1
#define RTMP_AGAIN             -2
#define RTMP_DECLINED          -5

#define RTMP_HS_SIZE           1536
#define RTMP_HS_C0C1           (1 + RTMP_HS_SIZE)
#define RTMP_HS_S0S1S2         (1 + 2 * RTMP_HS_SIZE)

#define RTMP_OUT_CHUNK         4096
#define RTMP_IN_CHUNK          128     /* until Set Chunk Size */
#define RTMP_MAX_CSID          65599
#define RTMP_MAX_DEPTH         64      /* AMF nesting */
#define RTMP_CONTROL_SIZE      (12 + 6)   /* a fmt 0 header and a pong */

#define RTMP_CSID_CTL          2
#define RTMP_CSID_CMD          3
#define RTMP_CSID_STREAM       8

#define RTMP_MSG_CHUNK_SIZE    1
#define RTMP_MSG_ABORT         2
#define RTMP_MSG_ACK           3
#define RTMP_MSG_USER          4
#define RTMP_MSG_WIN_ACK       5
#define RTMP_MSG_AMF3_CMD      17
#define RTMP_MSG_AMF0_CMD      20

/* the transaction ids of the publish sequence */

#define RTMP_TXN_CONNECT       1
#define RTMP_TXN_RELEASE       2
#define RTMP_TXN_FCPUBLISH     3
#define RTMP_TXN_CREATE        4
#define RTMP_TXN_PUBLISH       5
#define RTMP_TXN_DELETE        6

#define RTMP_CMD_OTHER         0
#define RTMP_CMD_RESULT        1
#define RTMP_CMD_ERROR         2
#define RTMP_CMD_STATUS        3


typedef struct {
    unsigned char          *data;
    size_t                  pos;       /* what a reader has taken */
    size_t                  len;
    size_t                  cap;
} rtmp_buf_t;


typedef struct {
    char                   *url;       /* as given: the tcUrl */
    char                   *host;      /* without [] */
    char                   *port;
    char                   *app;
} rtmp_url_t;


typedef struct {
    uint32_t                csid;
    uint32_t                mlen;
    uint32_t                have;
    uint32_t                cap;
    uint8_t                 type;
    uint8_t                 ext;
    unsigned char          *msg;
} rtmp_stream_t;


typedef struct {
    uint32_t                in_chunk;
    uint32_t                win_ack;
    uint64_t                bytes_in;  /* counted by the client */
    uint64_t                last_ack;

    rtmp_stream_t          *cur;
    uint32_t                chunk_left;

    rtmp_stream_t          *streams;
    uint32_t                nstreams;
    uint32_t                nalloc;
    uint32_t                max_streams;
} rtmp_reader_t;


typedef struct {
    uint32_t                csid;
    uint8_t                 type;
    const unsigned char    *data;
    size_t                  len;
} rtmp_msg_t;


typedef struct {
    int                     kind;      /* RTMP_CMD_* */
    const unsigned char    *name;
    size_t                  name_len;
    double                  txn;
    int                     have_num;
    double                  num;

    const unsigned char    *level;     /* NULL: none */
    size_t                  level_len;
    const unsigned char    *code;
    size_t                  code_len;
    const unsigned char    *desc;
    size_t                  desc_len;
} rtmp_cmd_t;


extern void  (*rtmp_nomem)(void);


/* buffers */

void rtmp_buf_reserve(rtmp_buf_t *b, size_t n);
void rtmp_buf_put(rtmp_buf_t *b, const void *data, size_t n);
void rtmp_buf_byte(rtmp_buf_t *b, unsigned char ch);
void rtmp_buf_be(rtmp_buf_t *b, uint32_t v, int n);
void rtmp_buf_free(rtmp_buf_t *b);

/* command lines: rtmp://HOST[:PORT]/APP, a usage error */

const char *rtmp_url_parse(char *url, rtmp_url_t *u);
void rtmp_usage(const char *prog, const char *msg, const char *text,
    int status);

/* handshake */

void rtmp_hs_c0c1(unsigned char *c0c1, uint32_t time);
int rtmp_hs_reply(const unsigned char *p, size_t len,
    const unsigned char **c2);

/* AMF0 encoding */

void rtmp_amf_number(rtmp_buf_t *b, double d);
void rtmp_amf_boolean(rtmp_buf_t *b, int v);
void rtmp_amf_string(rtmp_buf_t *b, const unsigned char *s, size_t len);
void rtmp_amf_cstring(rtmp_buf_t *b, const char *s);
void rtmp_amf_null(rtmp_buf_t *b);
void rtmp_amf_object(rtmp_buf_t *b);
void rtmp_amf_ecma_array(rtmp_buf_t *b, uint32_t count);
void rtmp_amf_key(rtmp_buf_t *b, const char *key);
void rtmp_amf_prop(rtmp_buf_t *b, const char *key, const char *val);
void rtmp_amf_end(rtmp_buf_t *b);

/* messages, fmt 0 headers with timestamp 0, csid 2..63 */

void rtmp_msg_put(rtmp_buf_t *out, uint32_t csid, uint8_t type,
    uint32_t msid, const unsigned char *data, size_t len);
void rtmp_cmd_put(rtmp_buf_t *out, uint32_t csid, uint32_t msid,
    rtmp_buf_t *body);
size_t rtmp_control(unsigned char *out, uint8_t type,
    const unsigned char *data, size_t len);

void rtmp_put_connect(rtmp_buf_t *out, const char *app,
    const char *flashver, const char *tcurl);
void rtmp_put_prepublish(rtmp_buf_t *out, const unsigned char *name,
    size_t len);
void rtmp_put_publish(rtmp_buf_t *out, uint32_t msid,
    const unsigned char *name, size_t len, const char *type);
void rtmp_put_delete_stream(rtmp_buf_t *out, double sid);
uint32_t rtmp_msid(double sid);

/* reading */

void rtmp_reader_init(rtmp_reader_t *r, uint32_t max_streams);
void rtmp_reader_reset(rtmp_reader_t *r);
int rtmp_read(rtmp_reader_t *r, rtmp_buf_t *in, rtmp_msg_t *m);
size_t rtmp_ack(rtmp_reader_t *r, unsigned char *out);
size_t rtmp_pong(const rtmp_msg_t *m, unsigned char *out);

/* AMF0 decoding */

int rtmp_command(const rtmp_msg_t *m, rtmp_cmd_t *cmd);
const unsigned char *rtmp_amf_get_string(const unsigned char *p,
    const unsigned char *end, const unsigned char **s, size_t *len);
const unsigned char *rtmp_amf_skip(const unsigned char *p,
    const unsigned char *end, int depth, rtmp_cmd_t *info);


#endif /* _RTMP_H_INCLUDED_ */
