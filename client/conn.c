/* conn.c - one libgearbox connection: connect, the pending-request table,
 * buffered writes, large reads parsed frame by frame, and the two ways of
 * waiting (for one request's reply, or for any reply).
 *
 * The socket is non-blocking and every wait is a poll() on both directions:
 * while our requests are being written we also read the server's replies,
 * so a long pipeline can never deadlock with both sides' buffers full.
 */
#define _GNU_SOURCE
#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* gbx_connect gives up after this long: long enough for a loaded machine or
 * a far network, short enough that a wrong address fails within a human's
 * patience. Later I/O uses gbx_set_timeout's value. */
#define CONNECT_TIMEOUT_MS 10000
/* First size of the input buffer: a read of this size carries ~2,000 small
 * replies. It grows to hold one large frame (a receive reply of up to
 * GBX_HARD_MAX_FRAME) when needed. */
#define IN_INITIAL_CAP (256u * 1024u)
/* Once empty, a buffer grown past this (by one large message) is given
 * back, so a long-lived client does not keep megabytes for one big reply. */
#define BUF_KEEP_MAX (1024u * 1024u)
/* First size of the pending table (slots); it doubles at half load. */
#define PENDING_INITIAL_CAP 64u
/* Extra wait allowed beyond the timeout for a receive whose long-poll wait
 * the client does not know (the queue's default): the protocol's maximum. */
#define LONGPOLL_MAX_MS (GBX_WAIT_MAX * 1000u)

/* ---- errors ------------------------------------------------------------- */

const char *gbx_strerror(int code) {
  return gbx_err_message(code);
}

const char *gbx_errname(int code) {
  return gbx_err_name(code);
}

void gbx_free(void *p) {
  free(p);
}

static int vseterr(gbx_error_t *err, int code, const char *fmt, va_list ap) {
  if (err) {
    err->code = code;
    vsnprintf(err->message, sizeof err->message, fmt, ap);
  }
  return code;
}

int conn_seterr(gbx_error_t *err, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vseterr(err, code, fmt, ap);
  va_end(ap);
  return code;
}

int conn_fail(gbx_client_t *c, gbx_error_t *err, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (c->open) {
    c->open = 0;
    c->close_code = code;
    vsnprintf(c->close_msg, sizeof c->close_msg, fmt, ap);
  }
  va_end(ap);
  /* The caller learns the reason that closed the connection, which may be an
   * earlier one (a server's id-0 error read while flushing). */
  return conn_seterr(err, c->close_code, "%s", c->close_msg);
}

int conn_check_open(gbx_client_t *c, gbx_error_t *err) {
  if (!c)
    return conn_seterr(err, GBX_E_CLOSED, "no client");
  if (c->open)
    return GBX_E_OK;
  return conn_seterr(err, GBX_E_CLOSED, "connection closed earlier: %s: %s",
                     gbx_err_name(c->close_code), c->close_msg);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t conn_deadline(const gbx_client_t *c, unsigned extra_ms) {
  if (c->timeout_ms == 0)
    return 0;
  return now_ms() + c->timeout_ms + extra_ms;
}

/* ---- connecting ------------------------------------------------------------ */

static gbx_client_t *client_new(int fd, gbx_error_t *err) {
  gbx_client_t *c = calloc(1, sizeof *c);
  if (!c)
    goto fail;
  c->fd = fd;
  c->open = 1;
  c->next_id = 1;
  gbx_buf_init(&c->out);
  c->in = malloc(IN_INITIAL_CAP);
  c->pending = calloc(PENDING_INITIAL_CAP, sizeof *c->pending);
  if (!c->in || !c->pending)
    goto fail;
  c->in_cap = IN_INITIAL_CAP;
  c->pending_cap = PENDING_INITIAL_CAP;
  return c;

fail:
  if (c) {
    free(c->in);
    free(c->pending);
    free(c);
  }
  close(fd);
  conn_seterr(err, GBX_E_NOMEM, "out of memory creating a client");
  return NULL;
}

gbx_client_t *gbx_connect_fd(int fd, gbx_error_t *err) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
    int e = errno;
    close(fd);
    conn_seterr(err, GBX_E_IO, "fcntl: %s", strerror(e));
    return NULL;
  }
  return client_new(fd, err);
}

/* Connects one resolved address without blocking longer than the deadline.
 * Returns the connected non-blocking socket, or -1 with errno set. */
static int connect_one(const struct addrinfo *ai, int64_t deadline) {
  int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
  int one = 1, e = 0;
  socklen_t elen = sizeof e;
  if (fd < 0)
    return -1;
  if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
    if (errno != EINPROGRESS)
      goto fail;
    for (;;) {
      struct pollfd p = {.fd = fd, .events = POLLOUT};
      int64_t left = deadline - now_ms();
      if (left <= 0) {
        errno = ETIMEDOUT;
        goto fail;
      }
      int n = poll(&p, 1, (int)left);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        goto fail;
      if (n > 0)
        break;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) < 0)
      goto fail;
    if (e) {
      errno = e;
      goto fail;
    }
  }
  /* Requests are small and latency matters more than packet count; the
   * pipelined interface already batches writes itself. */
  if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;

fail:
  e = errno;
  close(fd);
  errno = e;
  return -1;
}

/* Resolves host:port (defaults applied) and connects before deadline.
 * Returns the connected non-blocking socket, or -1 with err set. */
static int dial(const char **host, uint16_t *port, int64_t deadline, gbx_error_t *err) {
  struct addrinfo hints, *res = NULL;
  char portstr[8];
  int fd = -1, rc, e = 0;

  if (!*host || !**host)
    *host = GBX_DEFAULT_HOST;
  if (*port == 0)
    *port = GBX_DEFAULT_PORT;
  snprintf(portstr, sizeof portstr, "%u", (unsigned)*port);
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  rc = getaddrinfo(*host, portstr, &hints, &res);
  if (rc != 0) {
    conn_seterr(err, GBX_E_IO, "cannot resolve %s: %s", *host, gai_strerror(rc));
    return -1;
  }
  for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
    fd = connect_one(ai, deadline);
    if (fd < 0)
      e = errno;
  }
  freeaddrinfo(res);
  if (fd < 0)
    conn_seterr(err, e == ETIMEDOUT ? GBX_E_TIMEOUT : GBX_E_IO, "connect to %s:%u: %s", *host,
                (unsigned)*port, strerror(e));
  return fd;
}

gbx_client_t *gbx_connect(const char *host, uint16_t port, gbx_error_t *err) {
  int fd = dial(&host, &port, now_ms() + CONNECT_TIMEOUT_MS, err);
  return fd < 0 ? NULL : client_new(fd, err);
}

gbx_client_t *gbx_connect_tls(const char *host, uint16_t port, const gbx_tls_opts_t *tls,
                              gbx_error_t *err) {
  int64_t deadline = now_ms() + CONNECT_TIMEOUT_MS;
  int fd = dial(&host, &port, deadline, err);
  if (fd < 0)
    return NULL;
  ctls_t *t = ctls_start(fd, host, port, tls, deadline, err);
  if (!t) {
    close(fd);
    return NULL;
  }
  gbx_client_t *c = client_new(fd, err); /* closes fd on failure */
  if (!c) {
    ctls_free(t);
    return NULL;
  }
  c->tls = t;
  return c;
}

static void reply_list_free(gbx_reply_t *r) {
  while (r) {
    gbx_reply_t *next = r->next;
    gbx_reply_free(r);
    r = next;
  }
}

void gbx_close(gbx_client_t *c) {
  if (!c)
    return;
  ctls_free(c->tls);
  close(c->fd);
  reply_list_free(c->ready_head);
  gbx_reply_free(c->wait_reply);
  gbx_buf_free(&c->out);
  free(c->in);
  free(c->pending);
  free(c);
}

void gbx_set_timeout(gbx_client_t *c, unsigned timeout_ms) {
  if (c)
    c->timeout_ms = timeout_ms;
}

int gbx_is_open(const gbx_client_t *c) {
  return c && c->open;
}

size_t gbx_pending(const gbx_client_t *c) {
  return c ? c->npending + c->nready : 0;
}

/* ---- pending table ------------------------------------------------------------ */

/* Ids are sequential, so a multiplicative hash spreads any window of them
 * evenly over the slots. */
static size_t slot_of(uint64_t id, size_t cap) {
  return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1);
}

static void pending_insert(pending_slot_t *tab, size_t cap, pending_slot_t s) {
  size_t i = slot_of(s.id, cap);
  while (tab[i].id)
    i = (i + 1) & (cap - 1);
  tab[i] = s;
}

int conn_pending_add(gbx_client_t *c, uint64_t id, int op, int longpoll) {
  if ((c->npending + 1) * 2 > c->pending_cap) {
    size_t cap = c->pending_cap * 2;
    pending_slot_t *tab = calloc(cap, sizeof *tab);
    if (!tab)
      return -1;
    for (size_t i = 0; i < c->pending_cap; i++)
      if (c->pending[i].id)
        pending_insert(tab, cap, c->pending[i]);
    free(c->pending);
    c->pending = tab;
    c->pending_cap = cap;
  }
  pending_insert(c->pending, c->pending_cap,
                 (pending_slot_t){.id = id, .op = (uint8_t)op, .longpoll = (uint8_t) !!longpoll});
  c->npending++;
  if (longpoll)
    c->nlongpoll++;
  return 0;
}

/* Removes id from the table into *s. Returns 1 if it was there, else 0.
 * Deletion shifts later members of the probe run back (no tombstones). */
static int pending_take(gbx_client_t *c, uint64_t id, pending_slot_t *s) {
  size_t mask = c->pending_cap - 1, i = slot_of(id, c->pending_cap);
  while (c->pending[i].id != id) {
    if (!c->pending[i].id)
      return 0;
    i = (i + 1) & mask;
  }
  *s = c->pending[i];
  c->npending--;
  if (s->longpoll)
    c->nlongpoll--;
  for (size_t j = (i + 1) & mask; c->pending[j].id; j = (j + 1) & mask) {
    size_t home = slot_of(c->pending[j].id, c->pending_cap);
    /* j's member may move into the hole at i unless its home lies
     * cyclically in (i, j]. */
    if (((j - home) & mask) >= ((j - i) & mask)) {
      c->pending[i] = c->pending[j];
      i = j;
    }
  }
  c->pending[i].id = 0;
  return 1;
}

/* ---- reading ------------------------------------------------------------------- */

/* Hands a reply to whoever waits for it: the blocking call in progress, or
 * the ready list. A reply with id 0 is the server's verdict on the whole
 * connection (a frame it could not take) and closes it. */
static int route(gbx_client_t *c, gbx_reply_t *r, gbx_error_t *err) {
  pending_slot_t s;
  if (r->id == 0) {
    int code = r->code ? r->code : GBX_E_PROTOCOL;
    char msg[200];
    snprintf(msg, sizeof msg, "%.*s", r->msg ? (int)r->msg_len : 0, r->msg ? r->msg : "");
    gbx_reply_free(r);
    return conn_fail(c, err, code, "server refused the connection's data: %s",
                     msg[0] ? msg : gbx_err_message(code));
  }
  if (!pending_take(c, r->id, &s)) {
    uint64_t id = r->id;
    gbx_reply_free(r);
    return conn_fail(c, err, GBX_E_PROTOCOL, "reply for unknown request id %llu",
                     (unsigned long long)id);
  }
  r->op = s.op;
  if (r->id == c->wait_id) {
    c->wait_reply = r;
    return GBX_E_OK;
  }
  if (c->ready_tail)
    c->ready_tail->next = r;
  else
    c->ready_head = r;
  c->ready_tail = r;
  c->nready++;
  return GBX_E_OK;
}

/* Makes room for need more bytes after in_end: moves unread bytes to the
 * front, then grows. need is bounded by one maximal frame. */
static int in_reserve(gbx_client_t *c, size_t need, gbx_error_t *err) {
  if (c->in_cap - c->in_end >= need)
    return GBX_E_OK;
  if (c->in_start > 0) {
    memmove(c->in, c->in + c->in_start, c->in_end - c->in_start);
    c->in_end -= c->in_start;
    c->in_start = 0;
    if (c->in_cap - c->in_end >= need)
      return GBX_E_OK;
  }
  size_t cap = c->in_end + need;
  uint8_t *p = realloc(c->in, cap);
  if (!p)
    return conn_fail(c, err, GBX_E_NOMEM, "out of memory for a %zu-byte reply", need);
  c->in = p;
  c->in_cap = cap;
  return GBX_E_OK;
}

/* Parses and routes every complete frame in the input buffer, and makes
 * sure the buffer can hold the whole of the next, incomplete one. */
static int drain_frames(gbx_client_t *c, gbx_error_t *err) {
  for (;;) {
    size_t avail = c->in_end - c->in_start;
    uint32_t len;
    gbx_reply_t *r = NULL;
    gbx_errbuf_t eb;
    int rc;
    if (!gbx_frame_peek(c->in + c->in_start, avail, &len))
      break;
    /* Checked before any allocation: a declared length is outside input. */
    if (len == 0 || len > GBX_HARD_MAX_FRAME)
      return conn_fail(c, err, GBX_E_PROTOCOL, "reply frame of %u bytes (limit %u)", len,
                       GBX_HARD_MAX_FRAME);
    if (avail - GBX_FRAME_HDR < len) {
      rc = in_reserve(c, GBX_FRAME_HDR + (size_t)len - avail, err);
      if (rc)
        return rc;
      break;
    }
    rc = reply_parse(c->in + c->in_start + GBX_FRAME_HDR, len, &r, &eb);
    if (rc)
      return conn_fail(c, err, rc, "%s", eb.msg);
    c->in_start += GBX_FRAME_HDR + (size_t)len;
    rc = route(c, r, err);
    if (rc)
      return rc;
  }
  if (c->in_start == c->in_end) {
    c->in_start = c->in_end = 0;
    if (c->in_cap > BUF_KEEP_MAX) {
      uint8_t *p = realloc(c->in, IN_INITIAL_CAP);
      if (p) { /* on failure the large buffer simply stays */
        c->in = p;
        c->in_cap = IN_INITIAL_CAP;
      }
    }
  }
  return GBX_E_OK;
}

/* TLS: decrypts what has arrived (records until the socket is drained or
 * the input buffer is full), then parses it. */
static int read_some_tls(gbx_client_t *c, gbx_error_t *err) {
  char why[200];
  ssize_t n;
  size_t got = 0;
  while (c->in_cap > c->in_end) {
    n = ctls_recv(c->tls, c->in + c->in_end, c->in_cap - c->in_end, why, sizeof why);
    if (n == CTLS_AGAIN)
      break;
    if (n == CTLS_EOF)
      return got ? drain_frames(c, err)
                 : conn_fail(c, err, GBX_E_IO, "connection closed by the server");
    if (n < 0)
      return conn_fail(c, err, GBX_E_TLS, "%s", why);
    c->in_end += (size_t)n;
    got += (size_t)n;
  }
  return drain_frames(c, err);
}

/* One non-blocking read. Returns GBX_E_OK (also when nothing was there) or
 * an error that closed the connection. */
static int read_some(gbx_client_t *c, gbx_error_t *err) {
  ssize_t n;
  int rc = in_reserve(c, 1, err);
  if (rc)
    return rc;
  if (c->tls)
    return read_some_tls(c, err);
  do {
    n = recv(c->fd, c->in + c->in_end, c->in_cap - c->in_end, 0);
  } while (n < 0 && errno == EINTR);
  if (n == 0)
    return conn_fail(c, err, GBX_E_IO, "connection closed by the server");
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return GBX_E_OK;
    return conn_fail(c, err, GBX_E_IO, "read: %s", strerror(errno));
  }
  c->in_end += (size_t)n;
  return drain_frames(c, err);
}

/* One non-blocking write of buffered requests. */
static int write_some(gbx_client_t *c, gbx_error_t *err) {
  ssize_t n;
  if (c->tls) {
    char why[200];
    n = ctls_send(c->tls, c->out.data + c->out_off, c->out.len - c->out_off, why, sizeof why);
    if (n == CTLS_AGAIN)
      return GBX_E_OK;
    if (n < 0) {
      read_some(c, NULL); /* the server may have said why it hung up */
      return conn_fail(c, err, GBX_E_TLS, "%s", why);
    }
    goto wrote;
  }
  do {
    n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    int e = errno;
    if (e == EAGAIN || e == EWOULDBLOCK)
      return GBX_E_OK;
    /* The server may have said why it hung up (an id-0 reply such as
     * frame_too_large) before closing: that beats "broken pipe". */
    read_some(c, NULL);
    return conn_fail(c, err, GBX_E_IO, "write: %s", strerror(e));
  }
wrote:
  c->out_off += (size_t)n;
  if (c->out_off == c->out.len) {
    c->out_off = c->out.len = 0;
    if (c->out.cap > BUF_KEEP_MAX)
      gbx_buf_free(&c->out);
  }
  return GBX_E_OK;
}

/* Waits until the socket can move data (or the deadline passes), then
 * writes what is buffered and reads what arrived. */
static int pump(gbx_client_t *c, int64_t deadline, gbx_error_t *err) {
  struct pollfd p = {.fd = c->fd, .events = POLLIN};
  int rc, n, wait = -1;
  /* bytes OpenSSL already holds would not wake poll() */
  if (c->tls && ctls_has_pending(c->tls))
    return read_some(c, err);
  if (c->out.len > c->out_off && !(c->tls && ctls_send_wants_read(c->tls)))
    p.events |= POLLOUT;
  if (deadline) {
    int64_t left = deadline - now_ms();
    if (left <= 0)
      return conn_fail(c, err, GBX_E_TIMEOUT, "no reply within the timeout");
    wait = left > 0x7fffffff ? 0x7fffffff : (int)left;
  }
  n = poll(&p, 1, wait);
  if (n < 0) {
    if (errno == EINTR)
      return GBX_E_OK;
    return conn_fail(c, err, GBX_E_IO, "poll: %s", strerror(errno));
  }
  if (n == 0)
    return GBX_E_OK; /* the deadline check above reports it */
  if (p.revents & POLLOUT) {
    rc = write_some(c, err);
    if (rc)
      return rc;
  }
  if (p.revents & (POLLIN | POLLHUP | POLLERR))
    return read_some(c, err);
  return GBX_E_OK;
}

int conn_flush(gbx_client_t *c, int64_t deadline, gbx_error_t *err) {
  int rc = conn_check_open(c, err);
  if (rc)
    return rc;
  /* Most flushes complete in the first write without a poll. */
  if (c->out.len > c->out_off) {
    rc = write_some(c, err);
    if (rc)
      return rc;
  }
  while (c->out.len > c->out_off) {
    rc = pump(c, deadline, err);
    if (rc)
      return rc;
  }
  return GBX_E_OK;
}

int gbx_flush(gbx_client_t *c, gbx_error_t *err) {
  return conn_flush(c, c ? conn_deadline(c, 0) : 0, err);
}

int conn_call(gbx_client_t *c, uint64_t id, unsigned extra_ms, gbx_reply_t **out,
              gbx_error_t *err) {
  int64_t deadline = conn_deadline(c, extra_ms);
  gbx_reply_t *r;
  int rc;

  *out = NULL;
  c->wait_id = id;
  rc = conn_flush(c, deadline, err);
  /* Replies already buffered (read while flushing) may include ours. */
  if (!rc && !c->wait_reply)
    rc = drain_frames(c, err);
  while (!rc && !c->wait_reply) {
    rc = conn_check_open(c, err);
    if (!rc)
      rc = pump(c, deadline, err);
  }
  r = c->wait_reply;
  c->wait_id = 0;
  c->wait_reply = NULL;
  /* A reply that arrived is returned even if a later frame of the same read
   * broke the connection: the next call reports that. */
  if (!r)
    return rc;
  if (r->code) {
    rc = reply_error(r, err);
    gbx_reply_free(r);
    return rc;
  }
  *out = r;
  return GBX_E_OK;
}

int conn_collect(gbx_client_t *c, gbx_reply_t **out, gbx_error_t *err) {
  int rc = GBX_E_OK;
  int64_t deadline;

  *out = NULL;
  if (!c)
    return conn_seterr(err, GBX_E_CLOSED, "no client");
  if (!c->ready_head) {
    if (c->npending == 0)
      return conn_seterr(err, GBX_E_CLOSED, "no request is pending");
    /* A pending long-poll receive may rightly take up to 20 s more. */
    deadline = conn_deadline(c, c->nlongpoll ? LONGPOLL_MAX_MS : 0);
    rc = conn_flush(c, deadline, err);
    while (!rc && !c->ready_head) {
      rc = conn_check_open(c, err);
      if (!rc)
        rc = pump(c, deadline, err);
    }
    if (rc && !c->ready_head)
      return rc;
  }
  *out = c->ready_head;
  c->ready_head = c->ready_head->next;
  if (!c->ready_head)
    c->ready_tail = NULL;
  c->nready--;
  (*out)->next = NULL;
  return GBX_E_OK;
}
