/* tls.c - see tls.h. One SSL per connection with two memory BIOs: rbio
 * holds ciphertext fed from the socket, wbio collects ciphertext to write. */
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

struct tls_server {
  SSL_CTX *ctx;
};

struct tls_conn {
  SSL *ssl;
  BIO *rbio, *wbio; /* owned by ssl */
  size_t hs_bytes;  /* ciphertext fed before the handshake completed */
  int failed;       /* a fatal error happened: no close_notify, no more I/O */
  char err[200];
};

/* Formats OpenSSL's oldest queued error (the root cause) after prefix, and
 * clears the queue. */
static void ssl_reason(char *buf, size_t cap, const char *prefix) {
  unsigned long e = ERR_get_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  const char *lib = e ? ERR_lib_error_string(e) : NULL;
  if (r)
    snprintf(buf, cap, "%s%s%s%s", prefix, lib ? lib : "", lib ? ": " : "", r);
  else if (e)
    snprintf(buf, cap, "%sOpenSSL error %lx", prefix, e);
  else
    snprintf(buf, cap, "%sunknown OpenSSL error", prefix);
  ERR_clear_error();
}

/* Checks that path can be opened for reading, so a missing or unreadable
 * file is reported with errno rather than OpenSSL's wording. */
static int readable(const char *what, const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, errlen, "cannot read the TLS %s '%s': %s", what, path, strerror(errno));
    return -1;
  }
  fclose(f);
  return 0;
}

tls_server_t *tls_server_new(const char *cert_file, const char *key_file, char *err,
                             size_t errlen) {
  tls_server_t *s = NULL;
  ERR_clear_error();
  if (readable("certificate", cert_file, err, errlen) || readable("key", key_file, err, errlen))
    return NULL;
  s = calloc(1, sizeof(*s));
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  s->ctx = SSL_CTX_new(TLS_server_method());
  if (!s->ctx) {
    ssl_reason(err, errlen, "cannot make a TLS context: ");
    goto fail;
  }
  SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION);
  /* the server picks the cipher from OpenSSL's default list; compression
   * (CRIME) and renegotiation (a client-driven CPU sink) are off */
  SSL_CTX_set_options(s->ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                  SSL_OP_CIPHER_SERVER_PREFERENCE);
  /* idle connections give their 34 KiB of record buffers back */
  SSL_CTX_set_mode(s->ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_session_id_context(s->ctx, (const unsigned char *)"gearboxd", 8);
  if (SSL_CTX_use_certificate_chain_file(s->ctx, cert_file) != 1) {
    char why[160];
    ssl_reason(why, sizeof(why), "");
    snprintf(err, errlen, "cannot load the TLS certificate chain '%s': %s", cert_file, why);
    goto fail;
  }
  if (SSL_CTX_use_PrivateKey_file(s->ctx, key_file, SSL_FILETYPE_PEM) != 1) {
    char why[160];
    int mismatch = ERR_GET_REASON(ERR_peek_error()) == X509_R_KEY_VALUES_MISMATCH;
    ssl_reason(why, sizeof(why), "");
    if (mismatch)
      snprintf(err, errlen, "the TLS private key '%s' does not match the certificate '%s': %s",
               key_file, cert_file, why);
    else
      snprintf(err, errlen, "cannot load the TLS private key '%s': %s", key_file, why);
    goto fail;
  }
  if (SSL_CTX_check_private_key(s->ctx) != 1) {
    char why[160];
    ssl_reason(why, sizeof(why), "");
    snprintf(err, errlen, "the TLS private key '%s' does not match the certificate '%s': %s",
             key_file, cert_file, why);
    goto fail;
  }
  return s;

fail:
  tls_server_free(s);
  return NULL;
}

void tls_server_free(tls_server_t *s) {
  if (!s)
    return;
  SSL_CTX_free(s->ctx);
  free(s);
}

tls_conn_t *tls_conn_new(tls_server_t *s) {
  tls_conn_t *t = calloc(1, sizeof(*t));
  if (!t)
    return NULL;
  t->ssl = SSL_new(s->ctx);
  t->rbio = BIO_new(BIO_s_mem());
  t->wbio = BIO_new(BIO_s_mem());
  if (!t->ssl || !t->rbio || !t->wbio)
    goto fail;
  /* an empty rbio means "wait for more", not end of stream */
  BIO_set_mem_eof_return(t->rbio, -1);
  BIO_set_mem_eof_return(t->wbio, -1);
  SSL_set_bio(t->ssl, t->rbio, t->wbio); /* ssl owns both now */
  SSL_set_accept_state(t->ssl);
  return t;

fail:
  SSL_free(t->ssl); /* not yet owning the BIOs */
  BIO_free(t->rbio);
  BIO_free(t->wbio);
  free(t);
  ERR_clear_error();
  return NULL;
}

void tls_conn_free(tls_conn_t *t) {
  if (!t)
    return;
  SSL_free(t->ssl); /* frees both BIOs */
  free(t);
}

static int fail_with(tls_conn_t *t, const char *msg) {
  t->failed = 1;
  snprintf(t->err, sizeof(t->err), "%s", msg);
  return -1;
}

int tls_conn_feed(tls_conn_t *t, const void *p, size_t len) {
  if (t->failed)
    return -1;
  if (!SSL_is_init_finished(t->ssl)) {
    t->hs_bytes += len;
    if (t->hs_bytes > TLS_HANDSHAKE_MAX)
      return fail_with(t, "more than 16 KiB sent without completing the TLS handshake");
  }
  if (len > (size_t)INT32_MAX || BIO_write(t->rbio, p, (int)len) != (int)len) {
    ERR_clear_error();
    return fail_with(t, "out of memory for TLS input");
  }
  return 0;
}

long tls_conn_read(tls_conn_t *t, uint8_t *buf, size_t cap) {
  if (t->failed)
    return TLS_FAIL;
  if (cap > (size_t)INT32_MAX)
    cap = INT32_MAX;
  ERR_clear_error();
  int n = SSL_read(t->ssl, buf, (int)cap);
  if (n > 0)
    return n;
  switch (SSL_get_error(t->ssl, n)) {
  case SSL_ERROR_WANT_READ:
  case SSL_ERROR_WANT_WRITE: /* a memory wbio never refuses; treat alike */
    if (!SSL_is_init_finished(t->ssl) && t->hs_bytes > TLS_HANDSHAKE_MAX) {
      fail_with(t, "more than 16 KiB sent without completing the TLS handshake");
      return TLS_FAIL;
    }
    return TLS_AGAIN;
  case SSL_ERROR_ZERO_RETURN:
    return TLS_EOF;
  case SSL_ERROR_SSL:
    t->failed = 1;
    ssl_reason(t->err, sizeof(t->err), "");
    return TLS_FAIL;
  default:
    t->failed = 1;
    ssl_reason(t->err, sizeof(t->err), "TLS failure: ");
    return TLS_FAIL;
  }
}

int tls_conn_write(tls_conn_t *t, const void *p, size_t len) {
  const uint8_t *q = p;
  if (t->failed)
    return -1;
  if (!SSL_is_init_finished(t->ssl))
    return fail_with(t, "reply before the TLS handshake completed");
  while (len) {
    int chunk = len > (size_t)INT32_MAX ? INT32_MAX : (int)len;
    ERR_clear_error();
    int n = SSL_write(t->ssl, q, chunk);
    if (n <= 0) {
      t->failed = 1;
      ssl_reason(t->err, sizeof(t->err), "TLS write: ");
      return -1;
    }
    q += n;
    len -= (size_t)n;
  }
  return 0;
}

void tls_conn_close_notify(tls_conn_t *t) {
  if (t->failed || !SSL_is_init_finished(t->ssl))
    return;
  ERR_clear_error();
  SSL_shutdown(t->ssl); /* queues the alert in wbio; the answer is not awaited */
  ERR_clear_error();
  t->failed = 1; /* nothing more may be written or read */
}

size_t tls_conn_out_pending(const tls_conn_t *t) {
  return BIO_ctrl_pending(t->wbio);
}

int tls_conn_take_out(tls_conn_t *t, uint8_t **out, size_t *len) {
  size_t n = BIO_ctrl_pending(t->wbio);
  *out = NULL;
  *len = 0;
  if (!n)
    return 0;
  uint8_t *p = malloc(n);
  if (!p)
    return -1;
  if (BIO_read(t->wbio, p, (int)n) != (int)n) { /* a memory BIO hands over all it holds */
    free(p);
    ERR_clear_error();
    return -1;
  }
  *out = p;
  *len = n;
  return 0;
}

int tls_conn_established(const tls_conn_t *t) {
  return SSL_is_init_finished(t->ssl);
}

const char *tls_conn_error(const tls_conn_t *t) {
  return t->err;
}
