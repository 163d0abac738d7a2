/* ctls.h - libgearbox internals: TLS over a client's non-blocking socket.
 * Not installed; the public API is gbx_connect_tls in gearbox.h.
 *
 * OpenSSL does the socket I/O itself through a small BIO whose writes use
 * send(MSG_NOSIGNAL), so a server that hangs up never raises SIGPIPE in the
 * program (the library installs no signal handlers). The calls mirror
 * recv/send: they never block; conn.c polls the socket as for plain TCP. */
#ifndef GBX_CTLS_H
#define GBX_CTLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gearbox.h"

typedef struct ctls ctls_t;

/* Results of ctls_recv / ctls_send besides a byte count (> 0). */
enum { CTLS_EOF = 0, CTLS_AGAIN = -1, CTLS_FAIL = -2 };

/* Starts TLS on fd (connected, non-blocking, still owned by the caller) to
 * host:port with the options o (NULL: defaults), and completes the
 * handshake, verifying the server's certificate unless o->no_verify, before
 * deadline_ms (CLOCK_MONOTONIC ms). Returns the session, or NULL with err
 * set (GBX_E_TLS naming OpenSSL's or the verifier's reason, GBX_E_TIMEOUT,
 * GBX_E_IO, GBX_E_NOMEM). */
ctls_t *ctls_start(int fd, const char *host, uint16_t port, const gbx_tls_opts_t *o,
                   int64_t deadline_ms, gbx_error_t *err);
/* Sends close_notify (best effort, without waiting) and frees t. NULL is a
 * no-op. Does not close the socket. */
void ctls_free(ctls_t *t);
/* Decrypts up to len bytes into buf: bytes (> 0), CTLS_EOF when the server
 * closed, CTLS_AGAIN when nothing is ready, or CTLS_FAIL with the reason
 * in why[0..cap). */
ssize_t ctls_recv(ctls_t *t, void *buf, size_t len, char *why, size_t cap);
/* Encrypts and sends up to len bytes: bytes taken (> 0), CTLS_AGAIN when the
 * socket is full (retry with the same bytes, possibly moved, possibly more),
 * or CTLS_FAIL with the reason in why. */
ssize_t ctls_send(ctls_t *t, const void *buf, size_t len, char *why, size_t cap);
/* 1 if decrypted or received bytes wait inside OpenSSL: poll() would not
 * report them, so read before polling. */
int ctls_has_pending(const ctls_t *t);
/* 1 if the last ctls_send could not proceed until the socket is readable
 * (not writable); poll for input before retrying it. */
int ctls_send_wants_read(const ctls_t *t);

#endif
