/* ctls.c - see ctls.h. One SSL_CTX and one SSL per client (the library has
 * no global state), over a BIO method of our own whose I/O is recv/send
 * with MSG_NOSIGNAL on the client's socket. */
#define _GNU_SOURCE
#include "ctls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "conn.h"

struct ctls {
  SSL_CTX *ctx;
  SSL *ssl;
  BIO_METHOD *meth; /* freed after ssl (its BIO uses it) */
  int fd;
  int send_wants_read;
};

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the socket BIO: recv/send with MSG_NOSIGNAL ---- */

static int bio_write(BIO *b, const char *p, int len) {
  ctls_t *t = BIO_get_data(b);
  ssize_t n;
  BIO_clear_retry_flags(b);
  do {
    n = send(t->fd, p, (size_t)len, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    BIO_set_retry_write(b);
  return (int)n;
}

static int bio_read(BIO *b, char *p, int len) {
  ctls_t *t = BIO_get_data(b);
  ssize_t n;
  BIO_clear_retry_flags(b);
  do {
    n = recv(t->fd, p, (size_t)len, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    BIO_set_retry_read(b);
  return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  (void)b;
  (void)num;
  (void)ptr;
  return cmd == BIO_CTRL_FLUSH ? 1 : 0; /* send() buffers nothing of ours */
}

static int bio_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

/* ---- errors ---- */

/* OpenSSL's oldest queued reason, or errno's for a system-level failure. */
static void reason(char *buf, size_t cap, const char *prefix, int sys_errno) {
  unsigned long e = ERR_get_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  if (r)
    snprintf(buf, cap, "%s%s", prefix, r);
  else if (sys_errno)
    snprintf(buf, cap, "%s%s", prefix, strerror(sys_errno));
  else
    snprintf(buf, cap, "%sconnection closed during TLS", prefix);
  ERR_clear_error();
}

/* ---- session ---- */

static int is_ip_literal(const char *s) {
  unsigned char a[16];
  return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

void ctls_free(ctls_t *t) {
  if (!t)
    return;
  if (t->ssl && SSL_is_init_finished(t->ssl)) {
    SSL_shutdown(t->ssl); /* one non-blocking attempt to say goodbye */
    ERR_clear_error();
  }
  SSL_free(t->ssl);
  SSL_CTX_free(t->ctx);
  BIO_meth_free(t->meth);
  free(t);
}

/* Makes the context and session for fd with o's CA and name settings.
 * Returns GBX_E_OK or an error in err. */
static int setup(ctls_t *t, const char *host, const gbx_tls_opts_t *o, gbx_error_t *err) {
  const char *name = o->server_name && *o->server_name ? o->server_name : host;
  BIO *bio;
  t->ctx = SSL_CTX_new(TLS_client_method());
  if (!t->ctx)
    return conn_seterr(err, GBX_E_NOMEM, "cannot make a TLS context");
  SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(t->ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  /* conn.c retries a send with the same bytes, possibly moved by a realloc
   * of its output buffer and possibly with more appended */
  SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (o->ca_file && *o->ca_file) {
    if (SSL_CTX_load_verify_locations(t->ctx, o->ca_file, NULL) != 1) {
      char why[160];
      reason(why, sizeof why, "", errno);
      return conn_seterr(err, GBX_E_TLS, "cannot load the CA file '%s': %s", o->ca_file, why);
    }
  } else if (SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
    char why[160];
    reason(why, sizeof why, "", 0);
    return conn_seterr(err, GBX_E_TLS, "cannot load the system's CA store: %s", why);
  }
  t->meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "gearbox socket");
  if (!t->meth || !BIO_meth_set_write(t->meth, bio_write) ||
      !BIO_meth_set_read(t->meth, bio_read) || !BIO_meth_set_ctrl(t->meth, bio_ctrl) ||
      !BIO_meth_set_create(t->meth, bio_create))
    return conn_seterr(err, GBX_E_NOMEM, "cannot make the TLS socket BIO");
  t->ssl = SSL_new(t->ctx);
  bio = t->ssl ? BIO_new(t->meth) : NULL;
  if (!bio)
    return conn_seterr(err, GBX_E_NOMEM, "cannot make a TLS session");
  BIO_set_data(bio, t);
  SSL_set_bio(t->ssl, bio, bio); /* ssl owns it */
  if (!is_ip_literal(name) && SSL_set_tlsext_host_name(t->ssl, name) != 1)
    return conn_seterr(err, GBX_E_TLS, "bad TLS server name '%s'", name);
  if (o->no_verify) {
    SSL_set_verify(t->ssl, SSL_VERIFY_NONE, NULL);
    return GBX_E_OK;
  }
  /* the name to check: an address literal against the certificate's IP
   * SANs, anything else against its DNS names */
  if (is_ip_literal(name)) {
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), name) != 1)
      return conn_seterr(err, GBX_E_TLS, "bad TLS server address '%s'", name);
  } else if (SSL_set1_host(t->ssl, name) != 1) {
    return conn_seterr(err, GBX_E_TLS, "bad TLS server name '%s'", name);
  }
  SSL_set_verify(t->ssl, SSL_VERIFY_PEER, NULL);
  return GBX_E_OK;
}

ctls_t *ctls_start(int fd, const char *host, uint16_t port, const gbx_tls_opts_t *o,
                   int64_t deadline_ms, gbx_error_t *err) {
  static const gbx_tls_opts_t defaults = {0};
  ctls_t *t = calloc(1, sizeof *t);
  if (!t) {
    conn_seterr(err, GBX_E_NOMEM, "out of memory for TLS");
    return NULL;
  }
  t->fd = fd;
  ERR_clear_error();
  if (setup(t, host, o ? o : &defaults, err) != GBX_E_OK)
    goto fail;
  for (;;) {
    int r = SSL_connect(t->ssl), e = errno;
    if (r == 1)
      return t;
    struct pollfd p = {.fd = fd};
    switch (SSL_get_error(t->ssl, r)) {
    case SSL_ERROR_WANT_READ:
      p.events = POLLIN;
      break;
    case SSL_ERROR_WANT_WRITE:
      p.events = POLLOUT;
      break;
    default: {
      long v = SSL_get_verify_result(t->ssl);
      char why[200];
      if (v != X509_V_OK) {
        ERR_clear_error();
        conn_seterr(err, GBX_E_TLS, "TLS handshake with %s:%u: certificate verification failed: %s",
                    host, (unsigned)port, X509_verify_cert_error_string(v));
      } else {
        reason(why, sizeof why, "", r < 0 ? e : 0);
        conn_seterr(err, GBX_E_TLS, "TLS handshake with %s:%u failed: %s", host, (unsigned)port,
                    why);
      }
      goto fail;
    }
    }
    for (;;) {
      int64_t left = deadline_ms - mono_ms();
      if (left <= 0) {
        conn_seterr(err, GBX_E_TIMEOUT, "TLS handshake with %s:%u timed out", host, (unsigned)port);
        goto fail;
      }
      int n = poll(&p, 1, (int)left);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0) {
        conn_seterr(err, GBX_E_IO, "poll: %s", strerror(errno));
        goto fail;
      }
      break;
    }
  }

fail:
  ERR_clear_error();
  ctls_free(t);
  return NULL;
}

ssize_t ctls_recv(ctls_t *t, void *buf, size_t len, char *why, size_t cap) {
  if (len > 0x7fffffff)
    len = 0x7fffffff;
  t->send_wants_read = 0; /* whatever a send waited for may be read now */
  ERR_clear_error();
  int n = SSL_read(t->ssl, buf, (int)len), e = errno;
  if (n > 0)
    return n;
  switch (SSL_get_error(t->ssl, n)) {
  case SSL_ERROR_WANT_READ:
  case SSL_ERROR_WANT_WRITE: /* a post-handshake message being answered */
    return CTLS_AGAIN;
  case SSL_ERROR_ZERO_RETURN:
    return CTLS_EOF;
  case SSL_ERROR_SYSCALL:
    if (ERR_peek_error() == 0 && (n == 0 || e == 0))
      return CTLS_EOF; /* the server hung up without close_notify */
    /* fall through */
  default:
    reason(why, cap, "TLS read: ", e);
    return CTLS_FAIL;
  }
}

ssize_t ctls_send(ctls_t *t, const void *buf, size_t len, char *why, size_t cap) {
  if (len > 0x7fffffff)
    len = 0x7fffffff;
  t->send_wants_read = 0;
  ERR_clear_error();
  int n = SSL_write(t->ssl, buf, (int)len), e = errno;
  if (n > 0)
    return n;
  switch (SSL_get_error(t->ssl, n)) {
  case SSL_ERROR_WANT_READ:
    t->send_wants_read = 1;
    return CTLS_AGAIN;
  case SSL_ERROR_WANT_WRITE:
    return CTLS_AGAIN;
  default:
    reason(why, cap, "TLS write: ", e);
    return CTLS_FAIL;
  }
}

int ctls_has_pending(const ctls_t *t) {
  return SSL_pending(t->ssl) > 0 || SSL_has_pending(t->ssl);
}

int ctls_send_wants_read(const ctls_t *t) {
  return t->send_wants_read;
}
