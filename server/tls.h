/* tls.h - TLS for gearboxd's listeners: an OpenSSL engine over memory BIOs,
 * so the libuv loop never blocks on it and never hands OpenSSL a socket.
 *
 * The stream module (net.c, http.c) owns the socket. For each connection it
 * feeds the ciphertext it read (tls_conn_feed), pulls plaintext out
 * (tls_conn_read), hands its plaintext output over to be encrypted
 * (tls_conn_write) and writes whatever ciphertext is waiting
 * (tls_conn_take_out): handshake messages, session tickets, alerts and
 * application records alike. An error leaves a reason naming OpenSSL's
 * complaint (tls_conn_error); the stream module closes the connection.
 *
 * Settings: TLS 1.2 at least, OpenSSL's default secure cipher list, no
 * compression, no renegotiation, session tickets on. */
#ifndef GBX_TLS_H
#define GBX_TLS_H

#include <stddef.h>
#include <stdint.h>

/* Ciphertext accepted from a peer before its handshake completes: a
 * ClientHello is well under 2 KiB (with many extensions and a post-quantum
 * key share still under 8 KiB), so 16 KiB is generous for an honest client
 * and keeps a plain-text client or a slow-loris handshake from making the
 * server buffer without bound. */
#define TLS_HANDSHAKE_MAX (16u * 1024u)

typedef struct tls_server tls_server_t;
typedef struct tls_conn tls_conn_t;

/* Results of tls_conn_read besides a byte count. */
enum { TLS_AGAIN = 0, TLS_EOF = -1, TLS_FAIL = -2 };

/* Makes the server context from a PEM certificate chain file (the leaf
 * first) and a PEM private key file, and checks that they match. Returns
 * the context, or NULL with a message naming the file and the reason in
 * err. Free with tls_server_free. */
tls_server_t *tls_server_new(const char *cert_file, const char *key_file, char *err, size_t errlen);
/* Frees the context (connections still open keep their own reference). NULL
 * is a no-op. */
void tls_server_free(tls_server_t *s);

/* A server-side TLS session for one accepted connection. NULL out of
 * memory. Free with tls_conn_free. */
tls_conn_t *tls_conn_new(tls_server_t *s);
void tls_conn_free(tls_conn_t *t);

/* Takes len bytes of ciphertext read from the peer (copied). Returns 0, or
 * -1 (tls_conn_error says why) out of memory or when the peer has sent more
 * than TLS_HANDSHAKE_MAX bytes without completing its handshake. */
int tls_conn_feed(tls_conn_t *t, const void *p, size_t len);
/* Advances the handshake and decrypts into buf[0..cap). Returns the number
 * of plaintext bytes (> 0), TLS_AGAIN when more ciphertext is needed,
 * TLS_EOF when the peer sent close_notify, or TLS_FAIL (tls_conn_error).
 * Call until it returns TLS_AGAIN or less: OpenSSL may hold decrypted bytes. */
long tls_conn_read(tls_conn_t *t, uint8_t *buf, size_t cap);
/* Encrypts len plaintext bytes into the outgoing ciphertext. Returns 0, or
 * -1 (tls_conn_error) on failure or before the handshake completed. */
int tls_conn_write(tls_conn_t *t, const void *p, size_t len);
/* Queues a close_notify alert when the session is established and healthy;
 * otherwise does nothing. Nothing may be written after it. */
void tls_conn_close_notify(tls_conn_t *t);
/* Bytes of ciphertext waiting to be written to the peer. */
size_t tls_conn_out_pending(const tls_conn_t *t);
/* Moves every waiting ciphertext byte into a new malloc'd block (*out, the
 * caller frees it) of *len bytes; *out is NULL when nothing waits. Returns
 * 0, or -1 out of memory (nothing is lost: the bytes stay queued). */
int tls_conn_take_out(tls_conn_t *t, uint8_t **out, size_t *len);
/* 1 once the handshake completed. */
int tls_conn_established(const tls_conn_t *t);
/* Why the last call failed ("" if none): OpenSSL's reason. Valid until the
 * connection is freed. */
const char *tls_conn_error(const tls_conn_t *t);

#endif
