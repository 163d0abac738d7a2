/* conn.h - libgearbox internals: one connection, its buffers and its table
 * of requests awaiting a reply. Not installed; the public API is gearbox.h.
 *
 * Every request gets the next id; the id -> operation table (pending) lets
 * a reply be matched to its request in any order. Replies to requests that
 * nobody is waiting for right now are kept, in arrival order, on the ready
 * list for gbx_collect(). Writes are buffered in `out`; reads land in a
 * large input buffer that is parsed frame by frame, so one read system call
 * may carry hundreds of replies.
 */
#ifndef GBX_CONN_H
#define GBX_CONN_H

#include <stdarg.h>
#include <stdint.h>

#include "ctls.h"
#include "gbx_codec.h"
#include "gearbox.h"
#include "reply.h"

/* One slot of the pending table: a request id (0 = empty) and its op. */
typedef struct pending_slot {
  uint64_t id;
  uint8_t op;
  uint8_t longpoll; /* a receive that may wait up to GBX_WAIT_MAX seconds */
} pending_slot_t;

struct gbx_client {
  int fd;
  ctls_t *tls;    /* NULL: plain TCP */
  int open;       /* 0 once an error closed the connection */
  int close_code; /* why it closed */
  char close_msg[256];
  unsigned timeout_ms; /* 0 = no timeout */
  uint64_t next_id;

  gbx_buf_t out; /* requests not yet written: bytes out_off..out.len */
  size_t out_off;
  int pack_failed; /* an append to out failed while packing the current request */

  uint8_t *in; /* received bytes in_start..in_end of in_cap */
  size_t in_start, in_end, in_cap;

  pending_slot_t *pending; /* open-addressing table, pending_cap a power of two */
  size_t pending_cap, npending, nlongpoll;

  gbx_reply_t *ready_head, *ready_tail; /* replies kept for gbx_collect */
  size_t nready;

  uint64_t wait_id;        /* the request a blocking call waits for, or 0 */
  gbx_reply_t *wait_reply; /* its reply once it arrived */
};

/* Sets err (if not NULL) to code with a printf-style message; returns code. */
int conn_seterr(gbx_error_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Closes the connection after an error (idempotent: the first reason is
 * kept): later calls fail with GBX_E_CLOSED naming it. Returns code. */
int conn_fail(gbx_client_t *c, gbx_error_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* GBX_E_OK if the connection is usable, else GBX_E_CLOSED with the reason. */
int conn_check_open(gbx_client_t *c, gbx_error_t *err);

/* Records id as awaiting a reply to op. Returns 0, or -1 out of memory. */
int conn_pending_add(gbx_client_t *c, uint64_t id, int op, int longpoll);

/* Writes every buffered request, reading (and keeping) replies meanwhile so
 * neither side can block the other. deadline_ms is a CLOCK_MONOTONIC time
 * in ms, 0 for none. Returns GBX_E_OK or an error that closed the connection. */
int conn_flush(gbx_client_t *c, int64_t deadline_ms, gbx_error_t *err);

/* The deadline for a call that may legitimately wait extra_ms beyond the
 * I/O timeout; 0 when the client has no timeout. */
int64_t conn_deadline(const gbx_client_t *c, unsigned extra_ms);

/* Flushes and waits for the reply to request id. On GBX_E_OK, *out is that
 * reply (owned by the caller) and carries no error; a reply carrying a server
 * error is freed and its code and message returned. */
int conn_call(gbx_client_t *c, uint64_t id, unsigned extra_ms, gbx_reply_t **out, gbx_error_t *err);

/* Flushes and waits until a reply is on the ready list, then pops it into
 * *out (owned by the caller). GBX_E_CLOSED when nothing is pending. */
int conn_collect(gbx_client_t *c, gbx_reply_t **out, gbx_error_t *err);

#endif
