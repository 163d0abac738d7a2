/* server.h - gearboxd's process: configuration, the loop and its phases,
 * recovery and shutdown. Wires store, commit, broker, net and ops together. */
#ifndef GBX_SERVER_H
#define GBX_SERVER_H

#include <limits.h>
#include <stdint.h>
#include <uv.h>

#include "broker.h"
#include "commit.h"
#include "fetch.h"
#include "gbx_codec.h"
#include "ids.h"
#include "net.h"
#include "http.h"
#include "store.h"
#include "topic.h"
#include "envelope.h"
#include "auth.h"
#include "authz.h"
#include "tls.h"

typedef struct server_cfg {
  char host[256];
  int port;
  char data_dir[PATH_MAX];
  commit_policy_t policy;
  unsigned interval_ms;
  uint32_t max_frame;
  uint32_t max_conns;
  uint32_t max_waiters; /* waiting receives per connection */
  uint64_t max_outbuf;
  uint64_t max_bytes;  /* stored message bytes, 0 = unlimited */
  uint64_t body_cache; /* bodies kept in memory */
  char region[64];     /* ARNs: arn:aws:sns:REGION:ACCOUNT:topic */
  char account[32];
  char public_url[256];       /* base of URLs in SNS envelopes; "" = http://HOST:PORT */
  uint64_t min_free;          /* refuse sends while the data dir's disk has less free */
  unsigned slow_ms;           /* close a connection whose frame stays incomplete this long */
  char http_host[256];        /* the AWS-compatible HTTP face (--http) */
  int http_port;              /* -1: off */
  int test_endpoints;         /* --test-endpoints: moto-api reset and peek */
  char credentials[PATH_MAX]; /* --credentials FILE; "" = none (protected mode) */
  int allow_public_noauth;    /* --allow-public-without-auth */
  unsigned auth_timeout_ms;   /* --auth-timeout: handshake deadline */
  char tls_cert[PATH_MAX];    /* --tls-cert: PEM chain; "" = plain TCP on both listeners */
  char tls_key[PATH_MAX];     /* --tls-key: PEM private key (given with --tls-cert) */
} server_cfg_t;

/* Defaults for every flag (documented in README and PROTOCOL.md). */
void server_cfg_defaults(server_cfg_t *cfg);

/* Connections remembered per batch for the linger heuristic: beyond this
 * many concurrent writers a batch is big enough that lingering gains little. */
#define WRITERS_TRACKED 32

typedef struct server {
  server_cfg_t cfg;
  uv_loop_t *loop;
  store_t *store;
  commit_t *commit;
  broker_t *broker;
  topics_t *topics;
  envelope_ctx_t env;
  struct creds *creds;  /* NULL: authentication off (no --credentials) */
  auth_t *auth;         /* credentials, reload, the failure throttle */
  authz_t *authz;       /* cached resource policies */
  struct oconn *parked; /* connections whose auth_prove waits out the throttle */
  uv_signal_t sighup;   /* reloads the credentials file */
  uint8_t sign_key[32];
  char base_url[300];
  gbx_buf_t envbuf; /* scratch for rendering envelopes */
  net_t *net;
  ids_t *ids;
  uv_timer_t timer;
  uv_prepare_t prepare;
  uv_signal_t sigint, sigterm;
  uint64_t timer_due;
  fetch_job_t *prefetch;                  /* prefetch requests gathered this iteration */
  fetch_job_t *deferred, **deferred_tail; /* reads waiting for their batch */
  uint32_t fetches_in_flight;
  int backup_running; /* a checkpoint is on the threadpool (one at a time) */
  gbx_buf_t out;      /* scratch reply buffer */
  gbx_buf_t scratch;  /* scratch for attribute packing */
  int stopping;
  int disk_low; /* free space below cfg.min_free: sends are refused */
  /* group-commit linger: the connections that wrote into the open batch and
   * into the last two batches handed off (see phases() in server.c) */
  const void *writers[3][WRITERS_TRACKED];
  uint32_t nwriters[3];
  uint64_t linger_start; /* uv_hrtime() when the current linger began, 0 = none */
  uv_idle_t linger;      /* keeps the loop polling (not blocking) while lingering */
  uint64_t lingers, linger_kicks_full;
  uint64_t disk_checked; /* when free space was last read (mono ms) */
  uint64_t started_ms;
  int bound_port;
  http_t *http;      /* the AWS-compatible face, NULL when off (aws.c) */
  fdbudget_t fds;    /* connections of both faces vs. RLIMIT_NOFILE (fdlimit.h) */
  tls_server_t *tls; /* both listeners' TLS context, NULL without --tls-cert */
  int http_bound_port;
} server_t;

/* Opens the store, recovers, listens and prints the ready line. Returns 0,
 * or -1 after logging a clear error. */
int server_start(server_t *s, const server_cfg_t *cfg, uv_loop_t *loop);
/* After a failed server_start: frees whatever it made. */
void server_abort_start(server_t *s);
/* Runs until SIGINT/SIGTERM, then drains and closes. Returns the exit code. */
int server_run(server_t *s);

/* The batch a reply must wait for: the last batch holding any mutation made
 * so far (the reply may have observed it). */
uint64_t server_gate(const server_t *s);
/* Reads job j's bodies off the loop thread once everything up to the
 * current gate is durable (a body sent in a batch not yet written is not in
 * RocksDB yet). Takes j. */
void server_fetch_after_gate(server_t *s, fetch_job_t *j);
/* Records that connection c put a mutation into the open batch. */
void server_note_writer(server_t *s, const void *c);

/* ---- the protocol layer (ops.c) ---- */
void ops_frame(void *ctx, conn_t *c, const uint8_t *p, uint32_t len);
void ops_conn_closed(void *ctx, conn_t *c);
void ops_serve_waiter(void *ctx, waiter_t *w, gbx_err_t err, delivery_t *d, uint32_t n);
/* Answers every waiting receive with an empty reply (shutdown). */
void ops_end_waits(server_t *s);
/* 1 if op (a code of gbx_ops.def) has a handler. */
int ops_handles(uint64_t op);
/* Loads the admin-defined principals kept in the store (ops_admin.c).
 * 0, or -1 (logged) if the store cannot be read. */
int ops_restore_principals(server_t *s);
/* Evaluates the parked auth_prove frames whose wait ended by now. */
void ops_release_parked(server_t *s, uint64_t now);
/* When the earliest parked frame is due (UINT64_MAX: none). */
uint64_t ops_parked_due(const server_t *s);
/* The credentials changed (reload): ends waiting receives of revoked
 * principals or of receives their policy no longer allows. */
void ops_auth_changed(server_t *s);

#endif
