/* net.h - the module that owns libuv streams: the listener, connections,
 * framing, output buffers and the durability gate on replies.
 *
 * Replies are queued with a gate: the number of the commit batch whose
 * durability they depend on. A reply whose gate is not yet durable is held;
 * net_release() lets it go once the batch is synced. Output is written once
 * per connection per loop iteration (net_flush), however many replies. */
#ifndef GBX_NET_H
#define GBX_NET_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "fdlimit.h"

typedef struct net net_t;
typedef struct conn conn_t;

struct tls_server;

typedef struct net_cfg {
  uint32_t max_frame;   /* payload bytes */
  uint32_t max_conns;
  uint64_t max_outbuf;  /* unread reply bytes per connection before it is cut off */
  unsigned slow_ms;     /* a frame left incomplete this long closes the connection */
  /* Authentication (--credentials): until net_conn_set_authed(), frames are
   * capped at preauth_max_frame and the connection is closed auth_ms after
   * it was accepted. auth_ms 0: connections start authenticated. */
  uint32_t preauth_max_frame;
  unsigned auth_ms;
  struct tls_server *tls; /* not NULL: every connection speaks TLS (borrowed; tls.h) */
  /* Connections of both faces against the descriptor limit (borrowed,
   * shared with the HTTP face; fdlimit.h). NULL: this face alone, capped
   * at fdlimit_get()'s conn_cap. */
  fdbudget_t *fds;
} net_cfg_t;

typedef struct net_cbs {
  void *ctx;
  /* One complete frame's payload, valid during the call. */
  void (*frame)(void *ctx, conn_t *c, const uint8_t *p, uint32_t len);
  /* The connection is closing: drop whatever refers to it (its user data). */
  void (*closed)(void *ctx, conn_t *c);
} net_cbs_t;

net_t *net_new(uv_loop_t *loop, const net_cfg_t *cfg, const net_cbs_t *cbs);
/* Binds and listens on host:port (port 0 picks one). Returns 0 and the bound
 * port, or -1 with a message in err. */
int net_listen(net_t *n, const char *host, int port, int *bound, char *err, size_t errlen);
/* Stops accepting (shutdown). */
void net_stop_listening(net_t *n);
/* Closes every connection (shutdown). */
void net_close_all(net_t *n);
void net_free(net_t *n);
uint32_t net_conn_count(const net_t *n);

/* Queues a whole frame (header included) for c, held until batch `gate` is
 * durable (gate <= durable: immediately). Copies the bytes. If c's unread
 * output exceeds max_outbuf, c is closed and the reply dropped. */
void net_reply(conn_t *c, const uint8_t *frame, size_t len, uint64_t gate);
/* Batches up to `durable` are durable: release replies held on them. */
void net_release(net_t *n, uint64_t durable);
/* Writes out everything queued, one write per connection. */
void net_flush(net_t *n);
/* Closes c after writing what is already released; reason goes to the log. */
void net_close(conn_t *c, const char *reason);
/* 1 if c is closing (replies to it are dropped). */
int net_closing(const conn_t *c);

/* c authenticated: lifts the pre-authentication frame cap and deadline. */
void net_conn_set_authed(conn_t *c);
/* Stops handing c's frames to the frame callback (and reading its socket)
 * until net_conn_resume(); frames already read wait in its buffer. */
void net_conn_pause(conn_t *c);
void net_conn_resume(conn_t *c);
/* Calls fn for every open connection (fn must not close any). */
void net_foreach(net_t *n, void (*fn)(void *ctx, conn_t *c), void *ctx);

/* Per-connection user data for the protocol layer. */
void *net_conn_data(const conn_t *c);
void net_conn_set_data(conn_t *c, void *ud);
const char *net_conn_peer(const conn_t *c);
/* Keeps c's memory alive across async work; net_conn_unref releases. */
void net_conn_ref(conn_t *c);
void net_conn_unref(conn_t *c);

#endif
