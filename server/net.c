/* net.c - see net.h. */
#include "net.h"

#include <stdlib.h>
#include <string.h>

#include "gbx_codec.h"
#include "log.h"
#include "tls.h"
#include "wnow.h"

/* Reads go into a per-connection buffer of at least this size; it grows to
 * hold one whole frame (at most max_frame + header) only when a frame
 * declares that size, after the length was checked against the limit. */
#define READ_CHUNK (64u * 1024u)
/* Gates held per connection: a few batches are undurable at a time (one
 * syncing, those written since, one being written, one open). When the marks
 * run out the last one is raised instead, which only delays replies. */
#define MAX_MARKS 8

struct conn {
  uv_tcp_t tcp;
  net_t *net;
  conn_t *next, *prev;           /* all connections */
  conn_t *dirty_next;            /* connections with output to write */
  conn_t *held_next, *held_prev; /* connections with held replies */
  uint8_t *rbuf;
  size_t rlen, rcap;
  gbx_buf_t wbuf; /* released, not yet handed to uv_write */
  gbx_buf_t held; /* waiting for durability */
  uint64_t mark_gate[MAX_MARKS];
  size_t mark_end[MAX_MARKS];
  int nmarks;
  int refs;
  uint8_t closing, dirty, on_held, reading;
  uint8_t authed, paused;
  uint64_t partial_since; /* mono ms when an incomplete frame began, 0 = none */
  uint64_t accepted;      /* mono ms */
  tls_conn_t *tls;        /* NULL: plain TCP */
  void *ud;
  char peer[64];
};

struct net {
  uv_loop_t *loop;
  uv_tcp_t listener;
  uv_timer_t sweep; /* housekeeping: slow senders (coarse, one per server) */
  int listening;
  net_cfg_t cfg;
  net_cbs_t cbs;
  conn_t *conns;
  conn_t *dirty;
  conn_t *held;
  uint32_t nconns;
  fdbudget_t own_fds; /* the budget when the config gives none */
  fdbudget_t *fds;    /* connections of both faces vs. the descriptor limit */
  uint64_t durable;
  uint8_t *tls_in; /* TLS: ciphertext lands here (one read at a time), then is fed */
};

typedef struct wreq {
  uv_write_t req;
  conn_t *c;
  uint8_t *data;
} wreq_t;

static void on_closed(uv_handle_t *h);

net_t *net_new(uv_loop_t *loop, const net_cfg_t *cfg, const net_cbs_t *cbs) {
  net_t *n = calloc(1, sizeof(*n));
  if (!n)
    return NULL;
  n->loop = loop;
  n->cfg = *cfg;
  n->cbs = *cbs;
  if (cfg->tls && !(n->tls_in = malloc(READ_CHUNK))) {
    free(n);
    return NULL;
  }
  n->fds = cfg->fds;
  if (!n->fds) {
    fdlimit_t fl;
    fdlimit_get(&fl);
    n->own_fds.cap = fl.conn_cap;
    n->fds = &n->own_fds;
    if (fl.conn_cap < n->cfg.max_conns)
      LOG(LOG_INFO,
          "at most %u connections: the descriptor limit is %llu (RLIMIT_NOFILE), the rest is "
          "kept for the store",
          fl.conn_cap, (unsigned long long)fl.soft);
  }
  return n;
}

/* Closes a connection we cannot serve, reporting refusals at most once per
 * FDLIMIT_REFUSAL_LOG_MS (fdbudget_refused). */
static void refuse(net_t *n, conn_t *c) {
  uint64_t k = fdbudget_refused(n->fds, uv_now(n->loop));
  if (k && n->nconns >= n->cfg.max_conns)
    LOG(LOG_WARN, "refusing connection from %s: %u connections (--max-conns); %llu refused",
        c->peer, n->nconns, (unsigned long long)k);
  else if (k)
    LOG(LOG_WARN,
        "refusing connection from %s: %u connections (HTTP included) is all the file "
        "descriptor limit (RLIMIT_NOFILE) allows; %llu refused",
        c->peer, n->fds->used, (unsigned long long)k);
  uv_close((uv_handle_t *)&c->tcp, on_closed);
}

uint32_t net_conn_count(const net_t *n) {
  return n->nconns;
}
void *net_conn_data(const conn_t *c) {
  return c->ud;
}
void net_conn_set_data(conn_t *c, void *ud) {
  c->ud = ud;
}
const char *net_conn_peer(const conn_t *c) {
  return c->peer;
}
int net_closing(const conn_t *c) {
  return c->closing;
}
void net_conn_ref(conn_t *c) {
  c->refs++;
}

static void conn_free(conn_t *c) {
  tls_conn_free(c->tls);
  free(c->rbuf);
  gbx_buf_free(&c->wbuf);
  gbx_buf_free(&c->held);
  free(c);
}

void net_conn_unref(conn_t *c) {
  if (--c->refs == 0)
    conn_free(c);
}

static void mark_dirty(conn_t *c) {
  if (!c->dirty) {
    c->dirty = 1;
    c->dirty_next = c->net->dirty;
    c->net->dirty = c;
  }
}

static void held_unlink(conn_t *c) {
  if (!c->on_held)
    return;
  if (c->held_prev)
    c->held_prev->held_next = c->held_next;
  else
    c->net->held = c->held_next;
  if (c->held_next)
    c->held_next->held_prev = c->held_prev;
  c->held_next = c->held_prev = NULL;
  c->on_held = 0;
}

static void on_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  net_conn_unref(c);
}

/* TLS: encrypts the released replies into the session's outgoing
 * ciphertext (wbuf is emptied). Returns 0, or -1 with c closing. */
static int tls_seal(conn_t *c) {
  if (c->wbuf.len && tls_conn_write(c->tls, c->wbuf.data, c->wbuf.len) != 0) {
    c->wbuf.len = 0;
    if (!c->closing)
      net_close(c, tls_conn_error(c->tls));
    return -1;
  }
  c->wbuf.len = 0;
  if (c->wbuf.cap > READ_CHUNK)
    gbx_buf_free(&c->wbuf); /* keep no large buffer */
  return 0;
}

/* 1 if c has bytes to write: released replies, or TLS records (handshake,
 * tickets, alerts). */
static int has_output(const conn_t *c) {
  return c->wbuf.len || (c->tls && tls_conn_out_pending(c->tls));
}

void net_close(conn_t *c, const char *reason) {
  if (c->closing)
    return;
  net_t *n = c->net;
  c->closing = 1;
  if (reason)
    LOG(LOG_WARN, "closing connection %s: %s", c->peer, reason);
  held_unlink(c);
  if (c->prev)
    c->prev->next = c->next;
  else
    n->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  n->nconns--;
  n->fds->used--;
  if (n->cbs.closed)
    n->cbs.closed(n->cbs.ctx, c);
  /* write what was already released, then close: uv_close after pending
   * writes would cancel them, so shut the write side down first. */
  uv_read_stop((uv_stream_t *)&c->tcp);
  if (c->tls && tls_seal(c) == 0)
    tls_conn_close_notify(c->tls); /* after the last reply */
  if (has_output(c)) {
    mark_dirty(c);
    return; /* net_flush writes and then closes */
  }
  uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_write(uv_write_t *req, int status) {
  wreq_t *w = (wreq_t *)req;
  conn_t *c = w->c;
  free(w->data);
  free(w);
  if (status < 0 && status != UV_ECANCELED && !c->closing)
    net_close(c, uv_strerror(status));
  net_conn_unref(c);
}

static void write_out(conn_t *c) {
  uint8_t *data;
  size_t len;
  if (c->tls) { /* encrypted here, so still one write per connection per flush */
    if (tls_seal(c) != 0 && !has_output(c))
      return;
    if (tls_conn_take_out(c->tls, &data, &len) != 0) {
      net_close(c, "out of memory");
      return;
    }
    if (!data)
      return;
  } else {
    int r = stream_write_now((uv_stream_t *)&c->tcp, &c->wbuf, READ_CHUNK, &data, &len);
    if (r < 0) {
      if (!c->closing)
        net_close(c, uv_strerror(r));
      return;
    }
    if (!data)
      return; /* all written */
  }
  wreq_t *w = malloc(sizeof(*w));
  if (!w) {
    free(data);
    net_close(c, "out of memory");
    return;
  }
  uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
  w->c = c;
  w->data = data;
  net_conn_ref(c);
  int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write);
  if (r < 0) {
    free(w->data);
    free(w);
    net_conn_unref(c);
    if (!c->closing)
      net_close(c, uv_strerror(r));
  }
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  conn_t *c = req->data;
  free(req);
  if (!uv_is_closing((uv_handle_t *)&c->tcp))
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

/* Closing with output pending: uv_close would cancel queued writes, so shut
 * the write side down (which waits for them) and close afterwards. */
static void close_after_writes(conn_t *c) {
  uv_shutdown_t *req = malloc(sizeof(*req));
  if (req) {
    req->data = c;
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) == 0)
      return;
    free(req);
  }
  uv_close((uv_handle_t *)&c->tcp, on_closed);
}

void net_flush(net_t *n) {
  while (n->dirty) {
    conn_t *c = n->dirty;
    n->dirty = c->dirty_next;
    c->dirty = 0;
    if (uv_is_closing((uv_handle_t *)&c->tcp))
      continue;
    if (has_output(c))
      write_out(c);
    if (c->closing && !uv_is_closing((uv_handle_t *)&c->tcp))
      close_after_writes(c);
  }
}

static size_t unread(const conn_t *c) {
  return uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp) + c->wbuf.len;
}

void net_reply(conn_t *c, const uint8_t *frame, size_t len, uint64_t gate) {
  if (c->closing)
    return;
  if (gate <= c->net->durable) {
    if (unread(c) + len > c->net->cfg.max_outbuf) {
      net_close(c, "client does not read its replies (output buffer limit)");
      return;
    }
    if (gbx_buf_append(&c->wbuf, frame, len) != 0) {
      net_close(c, "out of memory");
      return;
    }
    mark_dirty(c);
    return;
  }
  if (unread(c) + c->held.len + len > c->net->cfg.max_outbuf) {
    net_close(c, "client does not read its replies (output buffer limit)");
    return;
  }
  if (gbx_buf_append(&c->held, frame, len) != 0) {
    net_close(c, "out of memory");
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
    c->held_next = c->net->held;
    if (c->net->held)
      c->net->held->held_prev = c;
    c->net->held = c;
  }
}

void net_release(net_t *n, uint64_t durable) {
  n->durable = durable;
  for (conn_t *c = n->held, *next; c; c = next) {
    next = c->held_next;
    int k = 0;
    while (k < c->nmarks && c->mark_gate[k] <= durable)
      k++;
    if (!k)
      continue;
    size_t end = c->mark_end[k - 1];
    if (gbx_buf_append(&c->wbuf, c->held.data, end) != 0) {
      net_close(c, "out of memory");
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
    if (unread(c) > n->cfg.max_outbuf)
      net_close(c, "client does not read its replies (output buffer limit)");
  }
}

static void send_fatal(conn_t *c, gbx_err_t code, const char *msg) {
  /* one error reply with id 0, then close: the framing is broken */
  gbx_buf_t b;
  msgpack_packer pk;
  gbx_buf_init(&b);
  msgpack_packer_init(&pk, &b, gbx_buf_write_cb);
  size_t off = gbx_frame_begin(&b);
  msgpack_pack_map(&pk, 3);
  gbx_pack_kv_u64(&pk, "id", 0);
  gbx_pack_kv_u64(&pk, "err", code);
  gbx_pack_kv_cstr(&pk, "msg", msg);
  gbx_frame_end(&b, off);
  if (b.data) {
    gbx_buf_append(&c->wbuf, b.data, b.len);
    mark_dirty(c);
  }
  gbx_buf_free(&b);
  net_close(c, msg);
}

/* The largest frame c may send now: before authentication only small
 * frames (the handshake) are read. */
static uint32_t frame_cap(const conn_t *c) {
  return c->authed ? c->net->cfg.max_frame : c->net->cfg.preauth_max_frame;
}

/* Makes room in rbuf for at least one more chunk, or for the whole of a
 * frame whose header asks for more and is within the limit (TLS decrypts
 * several chunks before process() has looked at the header: an over-limit
 * one must not size the buffer first). Returns 0, or -1 out of memory. */
static int rbuf_reserve(conn_t *c) {
  size_t want = c->rlen + READ_CHUNK;
  uint32_t flen;
  if (gbx_frame_peek(c->rbuf, c->rlen, &flen) && flen <= frame_cap(c) &&
      GBX_FRAME_HDR + (size_t)flen > want)
    want = GBX_FRAME_HDR + (size_t)flen;
  if (want > c->rcap) {
    uint8_t *p = realloc(c->rbuf, want);
    if (!p)
      return -1;
    c->rbuf = p;
    c->rcap = want;
  }
  return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  conn_t *c = h->data;
  if (c->tls) { /* ciphertext goes to the shared landing buffer, plaintext to rbuf */
    buf->base = (char *)c->net->tls_in;
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

/* TLS: feeds n bytes of ciphertext and decrypts everything it completes
 * into rbuf (at most about n bytes of plaintext, so rbuf stays bounded as
 * in the plain path). Returns 0, 1 when the peer's close_notify came after
 * the data, or -1 with c closing. */
static int tls_decrypt(conn_t *c, const uint8_t *p, size_t n) {
  char why[256];
  if (tls_conn_feed(c->tls, p, n) != 0)
    goto fail;
  for (;;) {
    if (c->rcap - c->rlen < READ_CHUNK / 4 && rbuf_reserve(c) != 0) {
      net_close(c, "out of memory for the read buffer");
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
      return 1; /* frames before the close_notify still count */
    goto fail;
  }
  if (tls_conn_out_pending(c->tls))
    mark_dirty(c); /* handshake records, tickets */
  return 0;

fail:
  snprintf(why, sizeof(why), "TLS: %s", tls_conn_error(c->tls));
  net_close(c, why);
  return -1;
}

/* Hands every whole frame in c's buffer to the frame callback, until c
 * closes or pauses; keeps the incomplete rest. */
static void process(conn_t *c) {
  net_t *n = c->net;
  size_t off = 0;
  net_conn_ref(c);
  while (!c->closing && !c->paused) {
    uint32_t flen;
    if (!gbx_frame_peek(c->rbuf + off, c->rlen - off, &flen))
      break;
    if (flen == 0) {
      send_fatal(c, GBX_E_BAD_FRAME, "frame of length 0");
      break;
    }
    uint32_t cap = frame_cap(c);
#ifdef GBX_BROKEN_NO_FRAME_CAP
    /* deliberately broken build (tests/reliability): no frame-size cap */
    if (0) {
#else
    if (flen > cap) {
#endif
      char m[128];
      snprintf(m, sizeof(m), "frame of %u bytes exceeds the limit of %u%s", flen, cap,
               c->authed ? "" : " before authentication");
      send_fatal(c, GBX_E_FRAME_TOO_LARGE, m);
      break;
    }
    if (c->rlen - off < GBX_FRAME_HDR + (size_t)flen)
      break;
    n->cbs.frame(n->cbs.ctx, c, c->rbuf + off + GBX_FRAME_HDR, flen);
    off += GBX_FRAME_HDR + flen;
  }
  if (!c->closing) {
    /* an incomplete frame starts the slow-sender clock; progress on whole
     * frames resets it */
    /* (an unfinished TLS handshake counts as an incomplete request) */
    if (c->rlen - off == 0 && (!c->tls || tls_conn_established(c->tls)))
      c->partial_since = 0;
    else if (off || !c->partial_since)
      c->partial_since = uv_now(n->loop);
  }
  if (!c->closing && off) {
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
    /* give back a large buffer once the big frame is consumed */
    if (c->rcap > 4 * READ_CHUNK && c->rlen < READ_CHUNK) {
      uint8_t *p = realloc(c->rbuf, READ_CHUNK);
      if (p) {
        c->rbuf = p;
        c->rcap = READ_CHUNK;
      }
    }
  }
  net_conn_unref(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = s->data;
  if (nread == UV_ENOBUFS) {
    net_close(c, "out of memory for the read buffer");
    return;
  }
  if (nread < 0) {
    net_close(c, nread == UV_EOF ? NULL : uv_strerror((int)nread));
    return;
  }
  int eof = 0;
  if (!c->tls)
    c->rlen += (size_t)nread;
  else if ((eof = tls_decrypt(c, (const uint8_t *)buf->base, (size_t)nread)) < 0)
    return;
  net_conn_ref(c);
  process(c);
  if (eof && !c->closing)
    net_close(c, NULL); /* frames before the close_notify were handled */
  net_conn_unref(c);
}

void net_conn_set_authed(conn_t *c) {
  c->authed = 1;
}

void net_conn_pause(conn_t *c) {
  if (c->paused || c->closing)
    return;
  c->paused = 1;
  uv_read_stop((uv_stream_t *)&c->tcp);
}

void net_conn_resume(conn_t *c) {
  if (!c->paused || c->closing)
    return;
  c->paused = 0;
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  process(c);
}

void net_foreach(net_t *n, void (*fn)(void *ctx, conn_t *c), void *ctx) {
  for (conn_t *c = n->conns; c; c = c->next)
    fn(ctx, c);
}

static void on_conn(uv_stream_t *server, int status) {
  net_t *n = server->data;
  if (status < 0) {
    LOG(LOG_WARN, "accept failed: %s", uv_strerror(status));
    return;
  }
  conn_t *c = calloc(1, sizeof(*c));
  if (!c)
    return;
  uv_tcp_init(n->loop, &c->tcp);
  c->tcp.data = c;
  c->net = n;
  c->refs = 1;
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
  if (n->nconns >= n->cfg.max_conns || n->fds->used >= n->fds->cap) {
    refuse(n, c);
    return;
  }
  if (n->cfg.tls && !(c->tls = tls_conn_new(n->cfg.tls))) {
    LOG(LOG_WARN, "refusing connection from %s: out of memory for TLS", c->peer);
    uv_close((uv_handle_t *)&c->tcp, on_closed);
    return;
  }
  if (c->tls)
    c->partial_since = uv_now(n->loop); /* the handshake is on the slow-sender clock */
  uv_tcp_nodelay(&c->tcp, 1);
  c->accepted = uv_now(n->loop);
  c->authed = n->cfg.auth_ms == 0;
  c->next = n->conns;
  if (n->conns)
    n->conns->prev = c;
  n->conns = c;
  n->nconns++;
  n->fds->used++;
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* Every second: close connections whose frame has stayed incomplete for
 * slow_ms (a byte-per-ten-seconds sender holds a buffer and a slot). */
static void on_sweep(uv_timer_t *t) {
  net_t *n = t->data;
  uint64_t now = uv_now(n->loop);
  for (conn_t *c = n->conns, *next; c; c = next) {
    next = c->next;
    if (c->partial_since && now - c->partial_since >= n->cfg.slow_ms)
      net_close(c, "request incomplete for too long (slow sender, --slow-timeout)");
    else if (!c->authed && now - c->accepted >= n->cfg.auth_ms)
      net_close(c, "did not authenticate in time (--auth-timeout)");
  }
  net_flush(n);
}

int net_listen(net_t *n, const char *host, int port, int *bound, char *err, size_t errlen) {
  struct sockaddr_storage ss;
  int r;
  if (strchr(host, ':'))
    r = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
  else
    r = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
  if (r) {
    snprintf(err, errlen, "bad listen address '%s': %s", host, uv_strerror(r));
    return -1;
  }
  uv_tcp_init(n->loop, &n->listener);
  n->listener.data = n;
  n->listening = 1;
  if ((r = uv_tcp_bind(&n->listener, (struct sockaddr *)&ss, 0)) != 0 ||
      (r = uv_listen((uv_stream_t *)&n->listener, 511, on_conn)) != 0) {
    snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, uv_strerror(r));
    return -1;
  }
  int len = sizeof(ss);
  uv_tcp_getsockname(&n->listener, (struct sockaddr *)&ss, &len);
  uv_timer_init(n->loop, &n->sweep);
  n->sweep.data = n;
  uv_timer_start(&n->sweep, on_sweep, 1000, 1000);
  uv_unref((uv_handle_t *)&n->sweep);
  *bound = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                    : ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return 0;
}

void net_stop_listening(net_t *n) {
  if (n->listening && !uv_is_closing((uv_handle_t *)&n->listener)) {
    uv_close((uv_handle_t *)&n->listener, NULL);
    uv_close((uv_handle_t *)&n->sweep, NULL);
  }
}

void net_close_all(net_t *n) {
  while (n->conns)
    net_close(n->conns, NULL);
  net_flush(n);
}

void net_free(net_t *n) {
  if (!n)
    return;
  free(n->tls_in);
  free(n);
}
