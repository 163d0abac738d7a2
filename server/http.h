/* http.h - the HTTP/1.1 transport of the AWS-compatible face: a listener,
 * keep-alive connections, request parsing with http_parser (Debian's
 * libhttp-parser), output buffers and the durability gate on responses.
 *
 * One request per connection is handled at a time: the next pipelined
 * request is parsed only after the current one is answered, so responses
 * leave in request order. Bytes that arrive meanwhile are buffered (up to a
 * cap, then reading pauses), and a client that disconnects while its
 * request waits (a long poll) is noticed at once.
 *
 * Responses are queued with a gate, the commit batch whose durability they
 * depend on, exactly as net.h does for the binary protocol: a response
 * whose gate is not yet durable is held until http_release(). Output is
 * written once per connection per loop iteration (http_flush). */
#ifndef GBX_HTTP_H
#define GBX_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "fdlimit.h"

typedef struct http http_t;
typedef struct http_req http_req_t;

/* Request bodies above this many bytes are refused with 413 before any of
 * the body is read. The largest legal AWS request is a batch of 1 MiB of
 * message payload; percent-encoding (query protocol) or JSON escaping can
 * triple non-ASCII text, and attributes, names and ids add a little: 4 MiB
 * holds every valid request with room to spare. */
#define HTTP_MAX_BODY (4u * 1024u * 1024u)

struct tls_server;

typedef struct http_cfg {
  uint64_t max_body; /* bytes; see HTTP_MAX_BODY */
  uint32_t max_conns;
  uint64_t max_outbuf; /* unread response bytes per connection before it is cut off */
  struct tls_server *tls; /* not NULL: HTTPS on every connection (borrowed; tls.h) */
  /* Connections of both faces against the descriptor limit (borrowed,
   * shared with net.c; fdlimit.h). NULL: this face alone, capped at
   * fdlimit_get()'s conn_cap. */
  fdbudget_t *fds;
} http_cfg_t;

typedef struct http_cbs {
  void *ctx;
  /* One complete request. The callee must answer it exactly once with
   * http_respond(), now or later (then the request stays valid until
   * answered or aborted). */
  void (*request)(void *ctx, http_req_t *r);
  /* The connection of an unanswered request closed: drop whatever refers
   * to r; it must not be answered. */
  void (*aborted)(void *ctx, http_req_t *r);
  /* Optional: batches up to `durable` are durable (called by http_release
   * before it releases responses), for work that must wait for a write. */
  void (*durable)(void *ctx, uint64_t durable);
} http_cbs_t;

http_t *http_new(uv_loop_t *loop, const http_cfg_t *cfg, const http_cbs_t *cbs);
/* Binds and listens on host:port (port 0 picks one). Returns 0 and the
 * bound port, or -1 with a message in err. */
int http_listen(http_t *h, const char *host, int port, int *bound, char *err, size_t errlen);
/* Stops accepting (shutdown). */
void http_stop_listening(http_t *h);
/* Closes every connection (shutdown); unanswered requests are aborted. */
void http_close_all(http_t *h);
/* Frees h after http_close_all and the loop ran the close callbacks. */
void http_free(http_t *h);
/* The callbacks' ctx given to http_new. */
void *http_ctx(const http_t *h);
uint32_t http_conn_count(const http_t *h);

/* Batches up to `durable` are durable: release responses held on them. */
void http_release(http_t *h, uint64_t durable);
/* Writes out what is released (one write per connection) and resumes
 * parsing on connections whose request was answered asynchronously. */
void http_flush(http_t *h);

/* ---- the request being answered ---- */
const char *http_req_method(const http_req_t *r);
/* The request target's path (before '?'), and its query string (after '?',
 * "" if none); both point into the request, not NUL-terminated. */
const char *http_req_path(const http_req_t *r, size_t *len);
const char *http_req_query(const http_req_t *r, size_t *len);
/* A header's value by case-insensitive name, or NULL; not NUL-terminated. */
const char *http_req_header(const http_req_t *r, const char *name, size_t *len);
/* The number of header lines, and the i-th (0 <= i < count) in arrival
 * order, name and value pointing into the request (not NUL-terminated);
 * a repeated header appears once per line. */
int http_req_header_count(const http_req_t *r);
void http_req_header_at(const http_req_t *r, int i, const char **name, size_t *nl,
                        const char **value, size_t *vl);
const uint8_t *http_req_body(const http_req_t *r, size_t *len);
/* The peer's "ip:port". */
const char *http_req_peer(const http_req_t *r);
void *http_req_data(const http_req_t *r);
void http_req_set_data(http_req_t *r, void *ud);

/* Answers r with status, Content-Type ctype, extra header lines (each ending
 * in "\r\n", or NULL) and body (copied), held until batch `gate` is durable.
 * Must be called exactly once per request, never after it was aborted. */
void http_respond(http_req_t *r, int status, const char *ctype, const char *extra, const void *body,
                  size_t len, uint64_t gate);

#endif
