/* http.c - see http.h. Parsing is http_parser's (libhttp-parser 2.9); this
 * file keeps what the parser hands it, bounded: the target, the headers, the
 * body (its declared length is checked before a byte of it is kept). */
#include "http.h"

#include <http_parser.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gbx_codec.h"
#include "log.h"
#include "tls.h"
#include "wnow.h"

/* Reads go into a per-connection buffer in chunks of this size. */
#define READ_CHUNK (64u * 1024u)
/* Bytes buffered while a request waits (a long poll) before reading pauses:
 * one more maximal pipelined request plus its headers. */
#define READ_HOLD_CAP (HTTP_MAX_BODY + 128u * 1024u)
/* Request targets longer than this are refused (414): AWS's GET form of
 * the query protocol puts parameters there, and none needs more. */
#define MAX_TARGET (16u * 1024u)
/* Headers per request; SDK requests carry about ten. More is refused (431).
 * Their total size is capped by http_parser (HTTP_MAX_HEADER_SIZE, 80 KiB). */
#define MAX_HEADERS 64
/* Gates held per connection: a few batches are undurable at a time (see
 * net.c); when they run out the last mark is raised, which only delays. */
#define MAX_MARKS 8

typedef struct hdr {
  uint32_t name_off, name_len, val_off, val_len;
} hdr_t;

struct http_req {
  struct hconn *c;
  char method[16];
  gbx_buf_t target; /* path?query */
  gbx_buf_t hbuf;   /* header names and values */
  hdr_t hdrs[MAX_HEADERS];
  int nhdrs;
  int in_value; /* the parser is inside a header value */
  gbx_buf_t body;
  void *ud;
};

typedef struct hconn {
  uv_tcp_t tcp;
  http_t *h;
  struct hconn *next, *prev;
  struct hconn *dirty_next, *held_next, *held_prev, *resume_next;
  http_parser parser;
  http_req_t req;
  uint8_t *rbuf;
  size_t rlen, rcap;
  gbx_buf_t wbuf, held;
  uint64_t mark_gate[MAX_MARKS];
  size_t mark_end[MAX_MARKS];
  int nmarks;
  int refs;
  int fail_status; /* a limit the parser's callbacks refused the request for */
  uint8_t closing, dirty, on_held, on_resume, complete, busy, reading, close_after, keep_alive;
  uint8_t dispatching; /* inside the request callback: an answer needs no resume */
  tls_conn_t *tls;     /* NULL: plain HTTP */
  char peer[64];
} hconn_t;

struct http {
  uv_loop_t *loop;
  uv_tcp_t listener;
  uv_idle_t idle; /* keeps poll from blocking while connections wait to resume */
  int listening, idle_on;
  http_cfg_t cfg;
  http_cbs_t cbs;
  http_parser_settings settings;
  hconn_t *conns, *dirty, *held, *resume;
  uint32_t nconns;
  fdbudget_t own_fds; /* the budget when the config gives none */
  fdbudget_t *fds;    /* connections of both faces vs. the descriptor limit */
  uint64_t durable;
  uint8_t *tls_in; /* HTTPS: ciphertext lands here (one read at a time), then is fed */
};

typedef struct wreq {
  uv_write_t req;
  hconn_t *c;
  uint8_t *data;
} wreq_t;

static void process(hconn_t *c);
static void conn_close(hconn_t *c, const char *reason);
static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_idle(uv_idle_t *i);

/* ---- connection bookkeeping (as net.c) ---- */

static void conn_unref(hconn_t *c) {
  if (--c->refs)
    return;
  tls_conn_free(c->tls);
  free(c->rbuf);
  gbx_buf_free(&c->wbuf);
  gbx_buf_free(&c->held);
  gbx_buf_free(&c->req.target);
  gbx_buf_free(&c->req.hbuf);
  gbx_buf_free(&c->req.body);
  free(c);
}

static void on_closed(uv_handle_t *hd) {
  conn_unref(hd->data);
}

static void mark_dirty(hconn_t *c) {
  if (c->dirty)
    return;
  c->dirty = 1;
  c->dirty_next = c->h->dirty;
  c->h->dirty = c;
}

static void held_unlink(hconn_t *c) {
  if (!c->on_held)
    return;
  if (c->held_prev)
    c->held_prev->held_next = c->held_next;
  else
    c->h->held = c->held_next;
  if (c->held_next)
    c->held_next->held_prev = c->held_prev;
  c->held_next = c->held_prev = NULL;
  c->on_held = 0;
}

/* HTTPS: encrypts the released responses into the session's outgoing
 * ciphertext (wbuf is emptied). Returns 0, or -1 with c closing. */
static int tls_seal(hconn_t *c) {
  if (c->wbuf.len && tls_conn_write(c->tls, c->wbuf.data, c->wbuf.len) != 0) {
    c->wbuf.len = 0;
    if (!c->closing) {
      LOG(LOG_WARN, "closing https connection %s: TLS: %s", c->peer, tls_conn_error(c->tls));
      conn_close(c, NULL);
    }
    return -1;
  }
  c->wbuf.len = 0;
  if (c->wbuf.cap > READ_CHUNK)
    gbx_buf_free(&c->wbuf); /* keep no large buffer */
  return 0;
}

/* 1 if c has bytes to write: released responses, or TLS records. */
static int has_output(const hconn_t *c) {
  return c->wbuf.len || (c->tls && tls_conn_out_pending(c->tls));
}

static void conn_close(hconn_t *c, const char *reason) {
  if (c->closing)
    return;
  http_t *h = c->h;
  c->closing = 1;
  if (reason)
    LOG(LOG_DEBUG, "closing http connection %s: %s", c->peer, reason);
  held_unlink(c);
  if (c->prev)
    c->prev->next = c->next;
  else
    h->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  h->nconns--;
  h->fds->used--;
  if (c->busy) {
    c->busy = 0;
    if (h->cbs.aborted)
      h->cbs.aborted(h->cbs.ctx, &c->req);
  }
  uv_read_stop((uv_stream_t *)&c->tcp);
  if (c->tls && tls_seal(c) == 0)
    tls_conn_close_notify(c->tls); /* after the last response */
  if (has_output(c)) {
    mark_dirty(c); /* http_flush writes what was released, then closes */
    return;
  }
  uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_write(uv_write_t *req, int status) {
  wreq_t *w = (wreq_t *)req;
  hconn_t *c = w->c;
  free(w->data);
  free(w);
  if (status < 0 && status != UV_ECANCELED && !c->closing)
    conn_close(c, uv_strerror(status));
  conn_unref(c);
}

static void write_out(hconn_t *c) {
  uint8_t *data;
  size_t len;
  if (c->tls) { /* encrypted here, so still one write per connection per flush */
    if (tls_seal(c) != 0 && !has_output(c))
      return;
    if (tls_conn_take_out(c->tls, &data, &len) != 0) {
      conn_close(c, "out of memory");
      return;
    }
    if (!data)
      return;
  } else {
    int r = stream_write_now((uv_stream_t *)&c->tcp, &c->wbuf, READ_CHUNK, &data, &len);
    if (r < 0) {
      if (!c->closing)
        conn_close(c, uv_strerror(r));
      return;
    }
    if (!data)
      return; /* all written */
  }
  wreq_t *w = malloc(sizeof(*w));
  if (!w) {
    free(data);
    conn_close(c, "out of memory");
    return;
  }
  uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
  w->c = c;
  w->data = data;
  c->refs++;
  int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write);
  if (r < 0) {
    free(w->data);
    free(w);
    conn_unref(c);
    if (!c->closing)
      conn_close(c, uv_strerror(r));
  }
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  hconn_t *c = req->data;
  (void)status;
  free(req);
  if (!uv_is_closing((uv_handle_t *)&c->tcp))
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void close_after_writes(hconn_t *c) {
  uv_shutdown_t *req = malloc(sizeof(*req));
  if (req) {
    req->data = c;
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) == 0)
      return;
    free(req);
  }
  uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static size_t unread(const hconn_t *c) {
  return uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp) + c->wbuf.len;
}

/* Queues bytes for c behind everything queued before, held until `gate`. */
static void queue_out(hconn_t *c, const void *p, size_t len, uint64_t gate) {
  http_t *h = c->h;
  if (c->closing)
    return;
  if (gate <= h->durable && !c->nmarks) {
    if (unread(c) + len > h->cfg.max_outbuf) {
      conn_close(c, "client does not read its responses (output buffer limit)");
      return;
    }
    if (gbx_buf_append(&c->wbuf, p, len) != 0) {
      conn_close(c, "out of memory");
      return;
    }
    mark_dirty(c);
    return;
  }
  if (unread(c) + c->held.len + len > h->cfg.max_outbuf) {
    conn_close(c, "client does not read its responses (output buffer limit)");
    return;
  }
  if (gbx_buf_append(&c->held, p, len) != 0) {
    conn_close(c, "out of memory");
    return;
  }
  if (c->nmarks && c->mark_gate[c->nmarks - 1] >= gate) {
    c->mark_end[c->nmarks - 1] = c->held.len; /* same or earlier batch: extend */
  } else if (c->nmarks < MAX_MARKS) {
    c->mark_gate[c->nmarks] = gate;
    c->mark_end[c->nmarks++] = c->held.len;
  } else {
    c->mark_gate[c->nmarks - 1] = gate; /* merge: only ever delays */
    c->mark_end[c->nmarks - 1] = c->held.len;
  }
  if (!c->on_held) {
    c->on_held = 1;
    c->held_prev = NULL;
    c->held_next = h->held;
    if (h->held)
      h->held->held_prev = c;
    h->held = c;
  }
}

/* The gate a response queued now must wait for: the last one held. */
static uint64_t last_gate(const hconn_t *c) {
  return c->nmarks ? c->mark_gate[c->nmarks - 1] : 0;
}

void http_release(http_t *h, uint64_t durable) {
  h->durable = durable;
  if (h->cbs.durable)
    h->cbs.durable(h->cbs.ctx, durable);
  for (hconn_t *c = h->held, *next; c; c = next) {
    next = c->held_next;
    int k = 0;
    while (k < c->nmarks && c->mark_gate[k] <= durable)
      k++;
    if (!k)
      continue;
    size_t end = c->mark_end[k - 1];
    if (gbx_buf_append(&c->wbuf, c->held.data, end) != 0) {
      conn_close(c, "out of memory");
      continue;
    }
    memmove(c->held.data, c->held.data + end, c->held.len - end);
    c->held.len -= end;
    for (int i = k; i < c->nmarks; i++) {
      c->mark_gate[i - k] = c->mark_gate[i];
      c->mark_end[i - k] = c->mark_end[i] - end;
    }
    c->nmarks -= k;
    if (!c->nmarks)
      held_unlink(c);
    mark_dirty(c);
  }
}

void http_flush(http_t *h) {
  /* connections whose request was answered later: parse what they sent
   * since. Requests parsed here may fill the commit batch after this
   * iteration's kick, so the idle handle stays on one more iteration: the
   * loop then polls without blocking and the next phases() kicks. */
  int resumed = h->resume != NULL;
  while (h->resume) {
    hconn_t *c = h->resume;
    h->resume = c->resume_next;
    c->on_resume = 0;
    if (!c->closing)
      process(c);
    conn_unref(c);
  }
  if (resumed && !h->idle_on) {
    h->idle_on = 1;
    uv_idle_start(&h->idle, on_idle);
  } else if (!resumed && h->idle_on) {
    uv_idle_stop(&h->idle);
    h->idle_on = 0;
  }
  while (h->dirty) {
    hconn_t *c = h->dirty;
    h->dirty = c->dirty_next;
    c->dirty = 0;
    if (uv_is_closing((uv_handle_t *)&c->tcp))
      continue;
    if (has_output(c))
      write_out(c);
    if (!c->closing && c->close_after && !c->nmarks && !c->busy) {
      conn_close(c, NULL);
    }
    if (c->closing && !uv_is_closing((uv_handle_t *)&c->tcp))
      close_after_writes(c);
  }
}

/* ---- responses ---- */

static const char *reason(int status) {
  switch (status) {
  case 100:
    return "Continue";
  case 200:
    return "OK";
  case 400:
    return "Bad Request";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 411:
    return "Length Required";
  case 413:
    return "Payload Too Large";
  case 414:
    return "URI Too Long";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 503:
    return "Service Unavailable";
  }
  return "Status";
}

static void respond_raw(hconn_t *c, int status, const char *ctype, const char *extra,
                        const void *body, size_t len, uint64_t gate) {
  char head[512];
  int n = snprintf(head, sizeof(head),
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n", status,
                   reason(status), ctype, len, c->keep_alive ? "" : "Connection: close\r\n",
                   extra && strlen(extra) < sizeof(head) - 200 ? extra : "");
  if (n < 0 || (size_t)n >= sizeof(head))
    n = (int)strlen(head);
  gbx_buf_t b;
  gbx_buf_init(&b);
  if (gbx_buf_append(&b, head, (size_t)n) != 0 || gbx_buf_append(&b, body, len) != 0) {
    gbx_buf_free(&b);
    conn_close(c, "out of memory");
    return;
  }
  queue_out(c, b.data, b.len, gate);
  gbx_buf_free(&b);
}

/* A request refused by the transport itself: plain-text status, then close
 * (the stream position after a refused request cannot be trusted). */
static void refuse(hconn_t *c, int status, const char *msg) {
  c->keep_alive = 0;
  respond_raw(c, status, "text/plain", NULL, msg, strlen(msg), last_gate(c));
  c->close_after = 1;
  mark_dirty(c);
}

void http_respond(http_req_t *r, int status, const char *ctype, const char *extra, const void *body,
                  size_t len, uint64_t gate) {
  hconn_t *c = r->c;
  if (!c->busy)
    return; /* aborted: never answered (see http.h) */
  c->busy = 0;
  if (!c->keep_alive)
    c->close_after = 1;
  respond_raw(c, status, ctype, extra, body, len, gate);
  gbx_buf_free(&r->body); /* a large body is not kept for the next request */
  if (c->closing)
    return;
  mark_dirty(c);
  if (!c->reading) {
    c->reading = 1;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  }
  if (!c->on_resume && !c->dispatching) {
    /* parse what is buffered at the next flush, not here: the caller may
     * be deep inside the broker */
    c->on_resume = 1;
    c->refs++;
    c->resume_next = c->h->resume;
    c->h->resume = c;
    if (!c->h->idle_on) {
      c->h->idle_on = 1;
      uv_idle_start(&c->h->idle, on_idle);
    }
  }
}

/* ---- request accessors ---- */

const char *http_req_method(const http_req_t *r) {
  return r->method;
}

const char *http_req_path(const http_req_t *r, size_t *len) {
  const char *t = (const char *)r->target.data;
  const char *q = t ? memchr(t, '?', r->target.len) : NULL;
  *len = t ? (q ? (size_t)(q - t) : r->target.len) : 0;
  return t ? t : "";
}

const char *http_req_query(const http_req_t *r, size_t *len) {
  const char *t = (const char *)r->target.data;
  const char *q = t ? memchr(t, '?', r->target.len) : NULL;
  if (!q) {
    *len = 0;
    return "";
  }
  *len = r->target.len - (size_t)(q + 1 - t);
  return q + 1;
}

const char *http_req_header(const http_req_t *r, const char *name, size_t *len) {
  size_t nl = strlen(name);
  for (int i = 0; i < r->nhdrs; i++) {
    const hdr_t *h = &r->hdrs[i];
    if (h->name_len == nl && strncasecmp((const char *)r->hbuf.data + h->name_off, name, nl) == 0) {
      *len = h->val_len;
      return (const char *)r->hbuf.data + h->val_off;
    }
  }
  return NULL;
}

int http_req_header_count(const http_req_t *r) {
  return r->nhdrs;
}

void http_req_header_at(const http_req_t *r, int i, const char **name, size_t *nl,
                        const char **value, size_t *vl) {
  const hdr_t *h = &r->hdrs[i];
  *name = (const char *)r->hbuf.data + h->name_off;
  *nl = h->name_len;
  *value = h->val_len ? (const char *)r->hbuf.data + h->val_off : "";
  *vl = h->val_len;
}

const uint8_t *http_req_body(const http_req_t *r, size_t *len) {
  *len = r->body.len;
  return r->body.data ? r->body.data : (const uint8_t *)"";
}

const char *http_req_peer(const http_req_t *r) {
  return r->c->peer;
}
void *http_req_data(const http_req_t *r) {
  return r->ud;
}
void http_req_set_data(http_req_t *r, void *ud) {
  r->ud = ud;
}

/* ---- parser callbacks ---- */

static int cb_begin(http_parser *p) {
  hconn_t *c = p->data;
  http_req_t *r = &c->req;
  r->target.len = 0;
  r->hbuf.len = 0;
  r->body.len = 0;
  r->nhdrs = 0;
  r->in_value = 0;
  r->ud = NULL;
  c->fail_status = 0;
  return 0;
}

static int cb_url(http_parser *p, const char *at, size_t len) {
  hconn_t *c = p->data;
  if (c->req.target.len + len > MAX_TARGET) {
    c->fail_status = 414;
    return -1;
  }
  return gbx_buf_append(&c->req.target, at, len) ? -1 : 0;
}

static int cb_field(http_parser *p, const char *at, size_t len) {
  hconn_t *c = p->data;
  http_req_t *r = &c->req;
  if (r->in_value || r->nhdrs == 0) {
    if (r->nhdrs == MAX_HEADERS) {
      c->fail_status = 431;
      return -1;
    }
    r->hdrs[r->nhdrs++] = (hdr_t){(uint32_t)r->hbuf.len, 0, 0, 0};
    r->in_value = 0;
  }
  r->hdrs[r->nhdrs - 1].name_len += (uint32_t)len;
  return gbx_buf_append(&r->hbuf, at, len) ? -1 : 0;
}

static int cb_value(http_parser *p, const char *at, size_t len) {
  hconn_t *c = p->data;
  http_req_t *r = &c->req;
  if (!r->nhdrs)
    return -1;
  if (!r->in_value) {
    r->in_value = 1;
    r->hdrs[r->nhdrs - 1].val_off = (uint32_t)r->hbuf.len;
  }
  r->hdrs[r->nhdrs - 1].val_len += (uint32_t)len;
  return gbx_buf_append(&r->hbuf, at, len) ? -1 : 0;
}

static int cb_headers_complete(http_parser *p) {
  hconn_t *c = p->data;
  http_req_t *r = &c->req;
  snprintf(r->method, sizeof(r->method), "%s", http_method_str((enum http_method)p->method));
  /* the declared length is checked before a byte of the body is kept */
  if (p->content_length != ULLONG_MAX && p->content_length > c->h->cfg.max_body) {
    c->fail_status = 413;
    return -1;
  }
  /* room for the declared body, up to one read's worth: a client that
   * declares the limit and sends nothing (before its signature is checked)
   * holds no more; larger bodies grow as their bytes arrive */
  size_t want = p->content_length == ULLONG_MAX  ? 0
                : p->content_length < READ_CHUNK ? (size_t)p->content_length
                                                 : READ_CHUNK;
  if (want > r->body.cap) {
    uint8_t *d = realloc(r->body.data, want);
    if (!d)
      return -1;
    r->body.data = d;
    r->body.cap = want;
  }
  size_t el;
  const char *ex = http_req_header(r, "Expect", &el);
  if (ex && el == 12 && strncasecmp(ex, "100-continue", 12) == 0) {
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    queue_out(c, cont, sizeof(cont) - 1, last_gate(c));
  }
  return 0;
}

static int cb_body(http_parser *p, const char *at, size_t len) {
  hconn_t *c = p->data;
  /* chunked bodies declare no length: the cap applies as they arrive */
  if (c->req.body.len + len > c->h->cfg.max_body) {
    c->fail_status = 413;
    return -1;
  }
  return gbx_buf_append(&c->req.body, at, len) ? -1 : 0;
}

static int cb_complete(http_parser *p) {
  hconn_t *c = p->data;
  c->complete = 1;
  http_parser_pause(p, 1); /* hand the request over before parsing the next */
  return 0;
}

/* ---- reading ---- */

static void dispatch(hconn_t *c) {
  http_t *h = c->h;
  c->keep_alive = (uint8_t)http_should_keep_alive(&c->parser);
  c->busy = 1;
  c->dispatching = 1;
  c->refs++;
  h->cbs.request(h->cbs.ctx, &c->req);
  c->dispatching = 0;
  conn_unref(c);
}

/* Parses buffered bytes, handing each complete request over, until the
 * buffer is used up or a request is waiting for its answer. */
static void process(hconn_t *c) {
  size_t off = 0;
  c->refs++;
  while (!c->closing && !c->busy && !c->close_after && off < c->rlen) {
    size_t n = http_parser_execute(&c->parser, &c->h->settings, (const char *)c->rbuf + off,
                                   c->rlen - off);
    off += n;
    if (c->complete) {
      c->complete = 0;
      http_parser_pause(&c->parser, 0);
      dispatch(c);
      continue;
    }
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e != HPE_OK) {
      int st = c->fail_status ? c->fail_status : 400;
      char msg[160];
      snprintf(msg, sizeof(msg), "%s\n",
               st == 413   ? "request body exceeds the size limit"
               : st == 414 ? "request target too long"
               : st == 431 ? "too many request headers"
                           : http_errno_description(e));
      c->keep_alive = 0;
      refuse(c, st, msg);
      off = c->rlen;
      break;
    }
  }
  if (!c->closing) {
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
    if (c->rcap > 4 * READ_CHUNK && c->rlen < READ_CHUNK) {
      uint8_t *p = realloc(c->rbuf, READ_CHUNK);
      if (p) {
        c->rbuf = p;
        c->rcap = READ_CHUNK;
      }
    }
    /* a waiting request: keep reading (to notice a disconnect) but not
     * without bound */
    if (c->busy && c->rlen >= READ_HOLD_CAP && c->reading) {
      uv_read_stop((uv_stream_t *)&c->tcp);
      c->reading = 0;
    }
  }
  conn_unref(c);
}

/* Makes room in rbuf for a quarter chunk or more. Returns 0, or -1 out of
 * memory. */
static int rbuf_reserve(hconn_t *c) {
  if (c->rcap - c->rlen < READ_CHUNK / 4) {
    size_t want = c->rlen + READ_CHUNK;
    uint8_t *p = realloc(c->rbuf, want);
    if (!p)
      return -1;
    c->rbuf = p;
    c->rcap = want;
  }
  return 0;
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf) {
  hconn_t *c = hd->data;
  (void)suggested;
  if (c->tls) { /* ciphertext goes to the shared landing buffer, plaintext to rbuf */
    buf->base = (char *)c->h->tls_in;
    buf->len = READ_CHUNK;
    return;
  }
  if (rbuf_reserve(c) != 0) {
    buf->base = NULL;
    buf->len = 0;
    return;
  }
  buf->base = (char *)c->rbuf + c->rlen;
  buf->len = c->rcap - c->rlen;
}

/* HTTPS: feeds n bytes of ciphertext and decrypts everything it completes
 * into rbuf (about n bytes of plaintext at most, so the read-hold cap still
 * bounds rbuf). Returns 0, 1 when the peer's close_notify came after the
 * data, or -1 with c closing. */
static int tls_decrypt(hconn_t *c, const uint8_t *p, size_t n) {
  if (tls_conn_feed(c->tls, p, n) != 0)
    goto fail;
  for (;;) {
    if (rbuf_reserve(c) != 0) {
      conn_close(c, "out of memory for the read buffer");
      return -1;
    }
    long k = tls_conn_read(c->tls, c->rbuf + c->rlen, c->rcap - c->rlen);
    if (k > 0) {
      c->rlen += (size_t)k;
      continue;
    }
    if (k == TLS_AGAIN)
      break;
    if (k == TLS_EOF)
      return 1; /* requests before the close_notify are still handed over */
    goto fail;
  }
  if (tls_conn_out_pending(c->tls))
    mark_dirty(c); /* handshake records, tickets */
  return 0;

fail:
  LOG(LOG_WARN, "closing https connection %s: TLS: %s", c->peer, tls_conn_error(c->tls));
  conn_close(c, NULL);
  return -1;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  hconn_t *c = s->data;
  (void)buf;
  if (nread == UV_ENOBUFS) {
    conn_close(c, "out of memory for the read buffer");
    return;
  }
  if (nread < 0) {
    conn_close(c, nread == UV_EOF ? NULL : uv_strerror((int)nread));
    return;
  }
  int eof = 0;
  if (!c->tls)
    c->rlen += (size_t)nread;
  else if ((eof = tls_decrypt(c, (const uint8_t *)buf->base, (size_t)nread)) < 0)
    return;
  if (eof) {
    /* as plain data followed by EOF: requests are handed over, then the
     * connection closes (writing what was already released) */
    c->refs++;
    if (!c->busy)
      process(c);
    conn_close(c, NULL);
    conn_unref(c);
    return;
  }
  if (!c->busy)
    process(c);
  else if (c->rlen >= READ_HOLD_CAP && c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
  }
}

/* Closes a connection we cannot serve, reporting refusals at most once per
 * FDLIMIT_REFUSAL_LOG_MS (fdbudget_refused). */
static void refuse_conn(http_t *h, hconn_t *c) {
  uint64_t k = fdbudget_refused(h->fds, uv_now(h->loop));
  if (k && h->nconns >= h->cfg.max_conns)
    LOG(LOG_WARN, "refusing http connection from %s: %u connections (--max-conns); %llu refused",
        c->peer, h->nconns, (unsigned long long)k);
  else if (k)
    LOG(LOG_WARN,
        "refusing http connection from %s: %u connections (both faces) is all the file "
        "descriptor limit (RLIMIT_NOFILE) allows; %llu refused",
        c->peer, h->fds->used, (unsigned long long)k);
  uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_conn(uv_stream_t *server, int status) {
  http_t *h = server->data;
  if (status < 0) {
    LOG(LOG_WARN, "http accept failed: %s", uv_strerror(status));
    return;
  }
  hconn_t *c = calloc(1, sizeof(*c));
  if (!c)
    return;
  uv_tcp_init(h->loop, &c->tcp);
  c->tcp.data = c;
  c->h = h;
  c->refs = 1;
  c->req.c = c;
  c->keep_alive = 1;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    uv_close((uv_handle_t *)&c->tcp, on_closed);
    return;
  }
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
    char ip[48] = "?";
    int port = 0;
    if (ss.ss_family == AF_INET) {
      uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
      port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
      port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    snprintf(c->peer, sizeof(c->peer), "%s:%d", ip, port);
  }
  if (h->nconns >= h->cfg.max_conns || h->fds->used >= h->fds->cap) {
    refuse_conn(h, c);
    return;
  }
  if (h->cfg.tls && !(c->tls = tls_conn_new(h->cfg.tls))) {
    LOG(LOG_WARN, "refusing http connection from %s: out of memory for TLS", c->peer);
    uv_close((uv_handle_t *)&c->tcp, on_closed);
    return;
  }
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  uv_tcp_nodelay(&c->tcp, 1);
  c->next = h->conns;
  if (h->conns)
    h->conns->prev = c;
  h->conns = c;
  h->nconns++;
  h->fds->used++;
  c->reading = 1;
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---- the listener ---- */

static void on_idle(uv_idle_t *i) {
  (void)i;
}

http_t *http_new(uv_loop_t *loop, const http_cfg_t *cfg, const http_cbs_t *cbs) {
  http_t *h = calloc(1, sizeof(*h));
  if (!h)
    return NULL;
  h->loop = loop;
  h->cfg = *cfg;
  h->cbs = *cbs;
  if (cfg->tls && !(h->tls_in = malloc(READ_CHUNK))) {
    free(h);
    return NULL;
  }
  h->fds = cfg->fds;
  if (!h->fds) {
    fdlimit_t fl;
    fdlimit_get(&fl);
    h->own_fds.cap = fl.conn_cap;
    h->fds = &h->own_fds;
  }
  http_parser_settings_init(&h->settings);
  h->settings.on_message_begin = cb_begin;
  h->settings.on_url = cb_url;
  h->settings.on_header_field = cb_field;
  h->settings.on_header_value = cb_value;
  h->settings.on_headers_complete = cb_headers_complete;
  h->settings.on_body = cb_body;
  h->settings.on_message_complete = cb_complete;
  uv_idle_init(loop, &h->idle);
  h->idle.data = h;
  return h;
}

void *http_ctx(const http_t *h) {
  return h->cbs.ctx;
}
uint32_t http_conn_count(const http_t *h) {
  return h->nconns;
}

int http_listen(http_t *h, const char *host, int port, int *bound, char *err, size_t errlen) {
  struct sockaddr_storage ss;
  int r;
  if (strchr(host, ':'))
    r = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
  else
    r = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
  if (r) {
    snprintf(err, errlen, "bad --http address '%s': %s", host, uv_strerror(r));
    return -1;
  }
  uv_tcp_init(h->loop, &h->listener);
  h->listener.data = h;
  h->listening = 1;
  if ((r = uv_tcp_bind(&h->listener, (struct sockaddr *)&ss, 0)) != 0 ||
      (r = uv_listen((uv_stream_t *)&h->listener, 511, on_conn)) != 0) {
    snprintf(err, errlen, "cannot listen for http on %s:%d: %s", host, port, uv_strerror(r));
    return -1;
  }
  int len = sizeof(ss);
  uv_tcp_getsockname(&h->listener, (struct sockaddr *)&ss, &len);
  *bound = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                    : ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return 0;
}

void http_stop_listening(http_t *h) {
  if (h->listening && !uv_is_closing((uv_handle_t *)&h->listener))
    uv_close((uv_handle_t *)&h->listener, NULL);
}

void http_close_all(http_t *h) {
  while (h->conns)
    conn_close(h->conns, NULL);
  http_flush(h);
  if (!uv_is_closing((uv_handle_t *)&h->idle))
    uv_close((uv_handle_t *)&h->idle, NULL);
}

void http_free(http_t *h) {
  if (h)
    free(h->tls_in);
  free(h);
}
