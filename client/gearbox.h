/* gearbox.h - libgearbox, the C client library of the Gearbox message broker.
 *
 * The only header a program needs: #include <gearbox.h>, link -lgearbox
 * (pkg-config gearbox). It speaks the binary protocol of protocol/PROTOCOL.md
 * over one TCP connection per gbx_client_t.
 *
 * Threads: a gbx_client_t is used by one thread at a time (calls on it are
 * not synchronised; a program sharing one across threads must hold its own
 * lock around every call). Different clients are fully independent and may
 * be used by different threads at the same time. The library has no global
 * state and installs no signal handlers (writes use MSG_NOSIGNAL).
 *
 * Errors: every call returns GBX_E_OK (0) or an error code from the shared
 * table (gbx_errors.def, included below): a server error (code below 400,
 * with the server's message naming the culprit) or a client-side one:
 * GBX_E_IO (connect/read/write failed), GBX_E_PROTOCOL (the server sent
 * something this library cannot parse), GBX_E_NOMEM, GBX_E_TIMEOUT,
 * GBX_E_CLOSED (the connection was already unusable). Every reply is
 * checked with the shared codec before use: a malformed one is
 * GBX_E_PROTOCOL, never a crash. An I/O error, a timeout, a reply the
 * framing cannot be trusted after (a bad length, undecodable msgpack, an
 * unknown request id) or a server error sent with id 0 closes the
 * connection: every later call fails with GBX_E_CLOSED naming the first
 * cause, and the program reconnects with a new client (gbx_is_open tells).
 * A server error reply, a well-framed reply with a malformed field, and an
 * argument refused before sending (too many attributes, a batch of 0 or
 * more than GBX_MAX_BATCH entries, a request over GBX_HARD_MAX_FRAME)
 * leave it open. Every `gbx_error_t *err` parameter may be NULL; it is
 * filled only when a call fails.
 *
 * Ownership: string parameters are borrowed for the duration of the call.
 * Results are returned in caller-provided structs or in blocks that the
 * caller frees with the free function named at each call; nothing returned
 * points into the client, so results outlive later calls and gbx_close().
 *
 * Two ways to call:
 *  - blocking: gbx_queue_send() & co. write one request and wait for its
 *    reply;
 *  - pipelined: gbx_submit_*() buffer a request and return its id without
 *    waiting; gbx_collect() returns replies as they arrive (in any order).
 *    Buffered requests go out in one write when the buffer passes
 *    GBX_PIPELINE_FLUSH_BYTES, on gbx_flush(), or when a call waits for a
 *    reply. Blocking calls may be mixed in: replies to submitted requests
 *    that arrive meanwhile are kept for gbx_collect().
 */
#ifndef GEARBOX_H
#define GEARBOX_H

#include <stddef.h>
#include <stdint.h>

#include "gbx_error.h"
#include "gbx_limits.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define GBX_API __attribute__((visibility("default")))
#else
#define GBX_API
#endif

/* Operation codes (the wire codes of gbx_ops.def), as gbx_reply_op() reports. */
typedef enum gbx_op {
#define GBX_OP(sym, code, name, iam) GBX_OP_##sym = code,
#include "gbx_ops.def"
#undef GBX_OP
} gbx_op_t;

#define GBX_DEFAULT_HOST "127.0.0.1"
#define GBX_DEFAULT_PORT 7411
/* A message id (a 36-character UUID string) plus its NUL. */
#define GBX_MID_BUFSZ (GBX_MSGID_LEN + 1)
/* The pipelined write buffer is written out once it holds this much: large
 * enough that one write carries hundreds of small requests, small enough to
 * stay in the L2 cache. */
#define GBX_PIPELINE_FLUSH_BYTES (64u * 1024u)

/* ---- errors ------------------------------------------------------------- */

typedef struct gbx_error {
  int code;          /* GBX_E_OK or a gbx_err_t code */
  char message[256]; /* human-readable, names the culprit; "" on success */
} gbx_error_t;

/* Default message of an error code ("the queue does not exist"); never NULL. */
GBX_API const char *gbx_strerror(int code);
/* Stable short name of an error code ("queue_not_found"); never NULL. */
GBX_API const char *gbx_errname(int code);

/* Frees a string returned by the library (redrive task id, backup dir,
 * subscription id). */
GBX_API void gbx_free(void *p);

/* ---- connection ----------------------------------------------------------- */

typedef struct gbx_client gbx_client_t;

/* Connects to host:port (host NULL: GBX_DEFAULT_HOST; port 0:
 * GBX_DEFAULT_PORT; names resolve through getaddrinfo) with TCP_NODELAY.
 * The connect itself gives up after 10 s. Returns the client, or NULL with
 * err set (GBX_E_IO, GBX_E_TIMEOUT, GBX_E_NOMEM). Close with gbx_close(). */
GBX_API gbx_client_t *gbx_connect(const char *host, uint16_t port, gbx_error_t *err);
/* TLS settings of gbx_connect_tls. Zero-initialise, then set what differs
 * from the defaults; the strings are borrowed for the duration of the call. */
typedef struct gbx_tls_opts {
  const char *ca_file;     /* PEM file of the CAs to trust; NULL: the system's default store */
  const char *server_name; /* name sent (SNI) and checked against the certificate (a DNS
                              name, or an IP address checked against IP SANs); NULL: the
                              host connected to */
  int no_verify;           /* 1: accept any certificate and name (testing only: it lets a
                              man in the middle read everything). 0, the default: verify */
} gbx_tls_opts_t;

/* As gbx_connect, then TLS (1.2 or newer): the handshake completes, and the
 * server's certificate chain and name are verified (unless tls->no_verify),
 * within the same 10 s. tls NULL: the defaults above. A handshake or
 * verification failure is GBX_E_TLS with the reason (e.g. "certificate
 * verification failed: Hostname mismatch"). Every call, blocking and
 * pipelined, then works as over plain TCP. Close with gbx_close(). */
GBX_API gbx_client_t *gbx_connect_tls(const char *host, uint16_t port, const gbx_tls_opts_t *tls,
                                      gbx_error_t *err);
/* Wraps an already connected stream socket (TCP or Unix), taking ownership
 * of fd (closed by gbx_close, or here on failure). Returns NULL with err set
 * on allocation or fcntl failure. */
GBX_API gbx_client_t *gbx_connect_fd(int fd, gbx_error_t *err);
/* Closes the connection and frees the client and every reply not yet
 * collected. NULL is a no-op. */
GBX_API void gbx_close(gbx_client_t *c);
/* Bounds every wait for the network by timeout_ms (0, the default: wait
 * forever). A receive with a long-poll wait gets its wait added on top. A
 * call that times out fails with GBX_E_TIMEOUT and closes the connection (a
 * late reply could not be matched any more). */
GBX_API void gbx_set_timeout(gbx_client_t *c, unsigned timeout_ms);
/* 1 while the connection is usable, 0 once an I/O or protocol error or a
 * timeout closed it. */
GBX_API int gbx_is_open(const gbx_client_t *c);

/* ---- queues ---------------------------------------------------------------- */

/* Flags of gbx_queue_attrs_t.set: which fields hold a value. */
enum {
  GBX_QA_VISIBILITY = 1u << 0,    /* VisibilityTimeout */
  GBX_QA_DELAY = 1u << 1,         /* DelaySeconds */
  GBX_QA_RETENTION = 1u << 2,     /* MessageRetentionPeriod */
  GBX_QA_MAX_SIZE = 1u << 3,      /* MaximumMessageSize */
  GBX_QA_WAIT = 1u << 4,          /* ReceiveMessageWaitTimeSeconds */
  GBX_QA_DLQ = 1u << 5,           /* DeadLetterQueue */
  GBX_QA_MAX_RECEIVES = 1u << 6,  /* MaxReceiveCount */
  GBX_QA_POLICY = 1u << 7,        /* Policy */
  GBX_QA_REDRIVE_ALLOW = 1u << 8, /* RedriveAllowPolicy */
};

/* The settable queue attributes (PROTOCOL.md has ranges and defaults). Only
 * fields whose flag is in `set` are sent; zero-initialise and set flags. */
typedef struct gbx_queue_attrs {
  unsigned set;
  uint32_t visibility_timeout;   /* s */
  uint32_t delay_seconds;        /* s */
  uint32_t retention_period;     /* s */
  uint32_t max_message_size;     /* bytes */
  uint32_t receive_wait;         /* s */
  const char *dead_letter_queue; /* queue name, "" = none */
  uint32_t max_receive_count;
  const char *policy;               /* JSON text */
  const char *redrive_allow_policy; /* JSON text */
} gbx_queue_attrs_t;

typedef struct gbx_tag {
  const char *key;
  const char *value;
} gbx_tag_t;

/* One queue attribute as the server reported it: text or a number. */
typedef struct gbx_queue_attr {
  const char *name;
  const char *str; /* the value when textual, else NULL */
  uint64_t num;    /* the value when str is NULL */
} gbx_queue_attr_t;

/* Everything gbx_queue_get_attrs() reports. Strings live in one block owned
 * by the struct; free it with gbx_queue_info_free(). */
typedef struct gbx_queue_info {
  gbx_queue_attrs_t attrs; /* settable attributes; attrs.set flags those reported */
  /* read-only counters (0 when the server did not report one) */
  uint64_t visible;      /* ApproximateNumberOfMessages */
  uint64_t not_visible;  /* ApproximateNumberOfMessagesNotVisible (in flight) */
  uint64_t delayed;      /* ApproximateNumberOfMessagesDelayed */
  uint64_t oldest_age_s; /* ApproximateAgeOfOldestMessage */
  uint64_t created_s;    /* CreatedTimestamp, epoch seconds */
  uint64_t modified_s;   /* LastModifiedTimestamp, epoch seconds */
  uint64_t bytes;        /* QueueBytes */
  gbx_queue_attr_t *all; /* every attribute, in the server's order */
  size_t nall;
  gbx_tag_t *tags;
  size_t ntags;
  void *block_; /* private */
} gbx_queue_info_t;

/* A list of queue names. Free with gbx_queue_list_free(). */
typedef struct gbx_queue_list {
  char **names;
  size_t count;
  char *next;   /* queue_list: token for the next page, NULL at the end */
  void *block_; /* private */
} gbx_queue_list_t;

/* Server round trip. */
GBX_API int gbx_ping(gbx_client_t *c, gbx_error_t *err);
/* Authenticates the connection as the principal owning access key id `key`
 * by challenge and response (the secret never leaves this process), and
 * checks the server's proof that it holds the same secret. Needed first on a
 * server started with --credentials. On success *principal (if not NULL)
 * is the principal's name (free with gbx_free). Fails with GBX_E_AUTH_FAILED
 * (wrong key or secret; the server slows repeated failures down). */
GBX_API int gbx_auth(gbx_client_t *c, const char *key, const char *secret, char **principal,
                     gbx_error_t *err);

/* ---- principals (servers with --credentials; docs/SECURITY.md) ---------- */

/* Adds or replaces the admin-defined principal `name` with access key id
 * `key`, `secret`, account (NULL: the server's) and identity policy JSON
 * (NULL: nothing allowed). Kept in the server's store. Fails with
 * GBX_E_PRINCIPAL_CONFLICT when the credentials file defines the name or key
 * (the file wins), GBX_E_BAD_PRINCIPAL / GBX_E_BAD_POLICY when invalid. A
 * replaced principal's open connections are revoked. */
GBX_API int gbx_principal_put(gbx_client_t *c, const char *name, const char *key,
                              const char *secret, const char *account, const char *policy,
                              gbx_error_t *err);
/* Removes an admin-defined principal (its connections are revoked). */
GBX_API int gbx_principal_delete(gbx_client_t *c, const char *name, gbx_error_t *err);

/* A principal as principal_list shows it (never its secret). */
typedef struct gbx_principal {
  char *name, *key, *account;
  char *source; /* "file" or "admin" */
  char *policy; /* JSON text or NULL */
} gbx_principal_t;
typedef struct gbx_principal_list {
  gbx_principal_t *v;
  size_t count;
} gbx_principal_list_t;
/* Every principal; free *out with gbx_principal_list_free(). */
GBX_API int gbx_principal_list(gbx_client_t *c, gbx_principal_list_t *out, gbx_error_t *err);
GBX_API void gbx_principal_list_free(gbx_principal_list_t *l);
/* Creates queue `name` with attrs (NULL: defaults) and ntags tags. *created
 * (if not NULL) is 1 if made now, 0 if it existed with the same attributes. */
GBX_API int gbx_queue_create(gbx_client_t *c, const char *name, const gbx_queue_attrs_t *attrs,
                             const gbx_tag_t *tags, size_t ntags, int *created, gbx_error_t *err);
/* Deletes a queue and its messages. */
GBX_API int gbx_queue_delete(gbx_client_t *c, const char *name, gbx_error_t *err);
/* One page of queue names, sorted: those starting with prefix (NULL: all),
 * at most max (0: the server's 1000), after token `next` (NULL: from the
 * start). On success *out must be freed with gbx_queue_list_free(). */
GBX_API int gbx_queue_list(gbx_client_t *c, const char *prefix, uint32_t max, const char *next,
                           gbx_queue_list_t *out, gbx_error_t *err);
/* Queues whose dead-letter queue is `name`. Free *out with gbx_queue_list_free(). */
GBX_API int gbx_queue_dlq_sources(gbx_client_t *c, const char *name, gbx_queue_list_t *out,
                                  gbx_error_t *err);
/* Frees the names of a list and zeroes it; NULL-safe, idempotent. */
GBX_API void gbx_queue_list_free(gbx_queue_list_t *l);
/* All attributes, counters and tags of a queue. On success free *out with
 * gbx_queue_info_free(). */
GBX_API int gbx_queue_get_attrs(gbx_client_t *c, const char *name, gbx_queue_info_t *out,
                                gbx_error_t *err);
/* Frees what a gbx_queue_info_t holds and zeroes it; NULL-safe, idempotent. */
GBX_API void gbx_queue_info_free(gbx_queue_info_t *info);
/* Changes the attributes flagged in attrs->set. */
GBX_API int gbx_queue_set_attrs(gbx_client_t *c, const char *name, const gbx_queue_attrs_t *attrs,
                                gbx_error_t *err);
/* Deletes every message of a queue; *purged (if not NULL) gets their number. */
GBX_API int gbx_queue_purge(gbx_client_t *c, const char *name, uint64_t *purged, gbx_error_t *err);
/* Adds or replaces tags. */
GBX_API int gbx_queue_tag(gbx_client_t *c, const char *name, const gbx_tag_t *tags, size_t ntags,
                          gbx_error_t *err);
/* Removes the tags with the given keys. */
GBX_API int gbx_queue_untag(gbx_client_t *c, const char *name, const char *const *keys,
                            size_t nkeys, gbx_error_t *err);

/* ---- messages ---------------------------------------------------------------- */

/* A typed message attribute, SQS style. type is "String", "Number" or
 * "Binary", optionally followed by "." and a label ("Number.float"). For a
 * String or Number the value is text, for a Binary raw bytes. In received
 * messages every string (and value, after value_len bytes) is NUL-terminated. */
typedef struct gbx_msg_attr {
  const char *name;
  const char *type;
  const void *value;
  size_t value_len;
} gbx_msg_attr_t;

/* A received message. Every pointer refers into the block returned by the
 * receive call, valid until gbx_messages_free(). */
typedef struct gbx_message {
  const char *mid;     /* message id */
  const char *receipt; /* receipt handle, for delete and change-visibility */
  const uint8_t *body; /* body[body_len] is a NUL not counted in body_len */
  size_t body_len;
  const gbx_msg_attr_t *attrs;
  size_t nattrs;
  uint64_t receive_count; /* including this receive */
  uint64_t sent_ms;       /* epoch ms of the original send */
  uint64_t first_receive_ms;
  const char *source_queue; /* queue it was dead-lettered from, or NULL */
} gbx_message_t;

/* Frees an array returned by gbx_queue_receive() or gbx_reply_messages(),
 * with everything its messages point to. NULL is a no-op. */
GBX_API void gbx_messages_free(gbx_message_t *msgs);

/* Sends one message (body of len bytes, any content) with nattrs attributes,
 * delayed `delay` seconds (0-900; -1: the queue's DelaySeconds). On success
 * mid (if not NULL) receives the message id. */
GBX_API int gbx_queue_send(gbx_client_t *c, const char *queue, const void *body, size_t len,
                           const gbx_msg_attr_t *attrs, size_t nattrs, int delay,
                           char mid[GBX_MID_BUFSZ], gbx_error_t *err);

/* One entry of a send batch. eid may be NULL. */
typedef struct gbx_send_entry {
  const char *eid;
  const void *body;
  size_t body_len;
  const gbx_msg_attr_t *attrs;
  size_t nattrs;
  int delay; /* 0-900, or -1 for the queue's DelaySeconds */
} gbx_send_entry_t;

/* One entry of a delete or change-visibility batch. eid may be NULL. */
typedef struct gbx_receipt_entry {
  const char *eid;
  const char *receipt;
  uint32_t visibility; /* change_vis_batch only: seconds from now */
} gbx_receipt_entry_t;

/* Outcome of one batch entry, in entry order. */
typedef struct gbx_batch_result {
  int code;                /* GBX_E_OK or the entry's error */
  char message[160];       /* the server's message when code != 0 */
  char mid[GBX_MID_BUFSZ]; /* send batch: the new message id when code == 0 */
} gbx_batch_result_t;

/* Sends n (1-GBX_MAX_BATCH) messages in one request. Returns a request-level
 * error, or GBX_E_OK with each entry's outcome in results[0..n). */
GBX_API int gbx_queue_send_batch(gbx_client_t *c, const char *queue,
                                 const gbx_send_entry_t *entries, size_t n,
                                 gbx_batch_result_t *results, gbx_error_t *err);

/* Receives up to max (0: 1; at most GBX_MAX_RECEIVE) messages, hidden for
 * vis seconds (-1: the queue's VisibilityTimeout), waiting up to wait
 * seconds for one (-1: the queue's ReceiveMessageWaitTimeSeconds). On
 * success *msgs is an array of *n messages (NULL when none), to be freed with
 * gbx_messages_free(). */
GBX_API int gbx_queue_receive(gbx_client_t *c, const char *queue, uint32_t max, int vis, int wait,
                              gbx_message_t **msgs, size_t *n, gbx_error_t *err);

/* Deletes the message a receipt handle refers to. */
GBX_API int gbx_message_delete(gbx_client_t *c, const char *queue, const char *receipt,
                               gbx_error_t *err);
/* Deletes n (1-GBX_MAX_BATCH) messages; outcomes in results[0..n). */
GBX_API int gbx_message_delete_batch(gbx_client_t *c, const char *queue,
                                     const gbx_receipt_entry_t *entries, size_t n,
                                     gbx_batch_result_t *results, gbx_error_t *err);
/* Makes a received message visible again vis seconds from now. */
GBX_API int gbx_message_change_vis(gbx_client_t *c, const char *queue, const char *receipt,
                                   uint32_t vis, gbx_error_t *err);
/* Changes the visibility of n (1-GBX_MAX_BATCH) messages. */
GBX_API int gbx_message_change_vis_batch(gbx_client_t *c, const char *queue,
                                         const gbx_receipt_entry_t *entries, size_t n,
                                         gbx_batch_result_t *results, gbx_error_t *err);

/* ---- redrive ---------------------------------------------------------------- */

/* Starts moving the messages of dead-letter queue `dlq` back to their source
 * queue (or to dst if not NULL) at rate msgs/s (0: the server's 500). *task
 * (if not NULL) gets the task id, freed with gbx_free(). */
GBX_API int gbx_redrive_start(gbx_client_t *c, const char *dlq, const char *dst, uint32_t rate,
                              char **task, gbx_error_t *err);

typedef struct gbx_redrive_status {
  char state[16]; /* "none", "running", "completed", "cancelled", "failed" */
  uint64_t moved;
  uint64_t total;
  char dst[GBX_MAX_NAME + 1]; /* "" when not reported */
  char message[256];          /* why it failed, "" when not reported */
} gbx_redrive_status_t;

/* The state of the redrive task of dlq. */
GBX_API int gbx_redrive_status(gbx_client_t *c, const char *dlq, gbx_redrive_status_t *out,
                               gbx_error_t *err);
/* Cancels it; *moved (if not NULL) gets the messages moved so far. */
GBX_API int gbx_redrive_cancel(gbx_client_t *c, const char *dlq, uint64_t *moved, gbx_error_t *err);

/* ---- broker ---------------------------------------------------------------- */

typedef struct gbx_queue_stats {
  const char *name;
  uint64_t visible;
  uint64_t inflight;
  uint64_t delayed;
  uint64_t oldest_age_s;
  uint64_t bytes;
} gbx_queue_stats_t;

/* Broker figures; one the server does not report reads 0. */
typedef struct gbx_broker_stats {
  uint64_t messages;
  uint64_t bytes;
  uint64_t queues;
  uint64_t connections;
  uint64_t batches; /* commits */
  uint64_t synced_mutations;
  double msgs_per_sync; /* requests acknowledged per commit, on average */
  uint64_t commit_p50_us;
  uint64_t commit_p99_us;
  double index_bytes_per_msg;
  uint64_t body_cache_bytes;
  uint64_t uptime_s;
} gbx_broker_stats_t;

/* Free with gbx_stats_free(). */
typedef struct gbx_stats {
  gbx_broker_stats_t broker;
  gbx_queue_stats_t *queues;
  size_t nqueues;
  void *block_; /* private */
} gbx_stats_t;

/* Broker figures and the counters of every queue (or of `queue` only when
 * not NULL). On success free *out with gbx_stats_free(). */
GBX_API int gbx_stats(gbx_client_t *c, const char *queue, gbx_stats_t *out, gbx_error_t *err);
/* Frees what a gbx_stats_t holds and zeroes it; NULL-safe, idempotent. */
GBX_API void gbx_stats_free(gbx_stats_t *s);

/* Writes a consistent checkpoint of the store into dir (a path on the
 * server's machine that must not exist yet). *dir_out (if not NULL) gets
 * the directory the server wrote, freed with gbx_free(). */
GBX_API int gbx_backup(gbx_client_t *c, const char *dir, char **dir_out, gbx_error_t *err);

/* ---- topics and subscriptions ------------------------------------------------ */

/* Topics fan a publish out to the queues subscribed to them, as SNS does for
 * SQS subscribers (PROTOCOL.md "Topics and subscriptions"). Topic names
 * follow the queue name pattern. A subscription names its queue by name:
 * the queue need not exist, and deleting it keeps the subscription. */

/* Entries per publish batch, as SNS PublishBatch (the server's limit). */
#define GBX_MAX_PUBLISH_BATCH 10u

/* Flags of gbx_topic_attrs_t.set: which fields hold a value. */
enum {
  GBX_TA_DISPLAY_NAME = 1u << 0, /* DisplayName */
  GBX_TA_POLICY = 1u << 1,       /* Policy */
};

/* The settable topic attributes. Only fields whose flag is in `set` are
 * sent; zero-initialise and set flags. "" clears a value. */
typedef struct gbx_topic_attrs {
  unsigned set;
  const char *display_name; /* 0-100 characters */
  const char *policy;       /* JSON text, stored verbatim */
} gbx_topic_attrs_t;

/* Everything gbx_topic_get_attrs() reports. Strings live in one block owned
 * by the struct; free it with gbx_topic_info_free(). */
typedef struct gbx_topic_info {
  const char *display_name; /* DisplayName, "" when none */
  const char *policy;       /* Policy, "" when none */
  uint64_t subscriptions;   /* SubscriptionsConfirmed */
  uint64_t created_s;       /* CreatedTimestamp, epoch seconds */
  gbx_queue_attr_t *all;    /* every attribute, in the server's order */
  size_t nall;
  gbx_tag_t *tags;
  size_t ntags;
  void *block_; /* private */
} gbx_topic_info_t;

/* A page of topic names: the same struct as a queue list (names, count,
 * next); free it with gbx_queue_list_free(). */
typedef gbx_queue_list_t gbx_topic_list_t;

/* Flags of gbx_sub_attrs_t.set: which fields hold a value. */
enum {
  GBX_SA_FILTER_POLICY = 1u << 0, /* FilterPolicy */
  GBX_SA_FILTER_SCOPE = 1u << 1,  /* FilterPolicyScope */
  GBX_SA_RAW = 1u << 2,           /* RawMessageDelivery */
};

/* What a filter policy applies to (FilterPolicyScope). */
enum {
  GBX_FILTER_SCOPE_ATTRIBUTES = 0, /* "MessageAttributes", the default */
  GBX_FILTER_SCOPE_BODY = 1,       /* "MessageBody": the JSON body's keys */
};

/* Subscription attributes. Only fields whose flag is in `set` are sent;
 * zero-initialise and set flags. */
typedef struct gbx_sub_attrs {
  unsigned set;
  const char *filter_policy; /* SNS filter policy JSON; "" clears it */
  int filter_scope;          /* GBX_FILTER_SCOPE_* */
  int raw;                   /* 1: the queue gets body and attributes as published;
                                0: an SNS JSON envelope (the default) */
} gbx_sub_attrs_t;

/* What gbx_sub_get_attrs() reports. attrs.set flags the attributes the
 * server reported; attrs.filter_policy points into block_ ("" when none).
 * Free with gbx_sub_info_free(). */
typedef struct gbx_sub_info {
  char topic[GBX_MAX_NAME + 1]; /* TopicName */
  char queue[GBX_MAX_NAME + 1]; /* QueueName */
  gbx_sub_attrs_t attrs;
  void *block_; /* private */
} gbx_sub_info_t;

/* One subscription of a list. */
typedef struct gbx_sub {
  const char *id;
  const char *topic;
  const char *queue;
} gbx_sub_t;

/* A page of subscriptions, pointing into one block. Free with
 * gbx_sub_list_free(). */
typedef struct gbx_sub_list {
  gbx_sub_t *subs;
  size_t count;
  char *next;   /* token for the next page, NULL at the end */
  void *block_; /* private */
} gbx_sub_list_t;

/* Creates topic `name` with attrs (NULL: none) and ntags tags. *created (if
 * not NULL) is 1 if made now, 0 if it existed with the same attributes
 * (different ones: GBX_E_TOPIC_EXISTS). */
GBX_API int gbx_topic_create(gbx_client_t *c, const char *name, const gbx_topic_attrs_t *attrs,
                             const gbx_tag_t *tags, size_t ntags, int *created, gbx_error_t *err);
/* Deletes a topic and its subscriptions; messages already delivered to
 * queues stay. */
GBX_API int gbx_topic_delete(gbx_client_t *c, const char *name, gbx_error_t *err);
/* One page of topic names, sorted: those starting with prefix (NULL: all),
 * at most max (0: the server's 1000), after token `next` (NULL: from the
 * start). On success free *out with gbx_queue_list_free(). */
GBX_API int gbx_topic_list(gbx_client_t *c, const char *prefix, uint32_t max, const char *next,
                           gbx_topic_list_t *out, gbx_error_t *err);
/* All attributes and tags of a topic. On success free *out with
 * gbx_topic_info_free(). */
GBX_API int gbx_topic_get_attrs(gbx_client_t *c, const char *name, gbx_topic_info_t *out,
                                gbx_error_t *err);
/* Frees what a gbx_topic_info_t holds and zeroes it; NULL-safe, idempotent. */
GBX_API void gbx_topic_info_free(gbx_topic_info_t *info);
/* Changes the attributes flagged in attrs->set. */
GBX_API int gbx_topic_set_attrs(gbx_client_t *c, const char *name, const gbx_topic_attrs_t *attrs,
                                gbx_error_t *err);

/* Subscribes queue (which need not exist yet) to topic with attrs (NULL:
 * the defaults). *sub_id (if not NULL) gets the subscription id, freed with
 * gbx_free(). Subscribing again with the same attributes returns the same
 * id; with different ones fails with GBX_E_SUBSCRIPTION_EXISTS. An invalid
 * filter policy is GBX_E_BAD_FILTER_POLICY, its message naming the problem. */
GBX_API int gbx_subscribe(gbx_client_t *c, const char *topic, const char *queue,
                          const gbx_sub_attrs_t *attrs, char **sub_id, gbx_error_t *err);
/* Removes a subscription. */
GBX_API int gbx_unsubscribe(gbx_client_t *c, const char *sub_id, gbx_error_t *err);
/* One page of subscriptions: of topic (NULL: any) and of queue (NULL: any),
 * after token `next` (NULL: from the start). On success free *out with
 * gbx_sub_list_free(). */
GBX_API int gbx_sub_list(gbx_client_t *c, const char *topic, const char *queue, const char *next,
                         gbx_sub_list_t *out, gbx_error_t *err);
/* Frees what a gbx_sub_list_t holds and zeroes it; NULL-safe, idempotent. */
GBX_API void gbx_sub_list_free(gbx_sub_list_t *l);
/* A subscription's topic, queue and attributes. On success free *out with
 * gbx_sub_info_free(). */
GBX_API int gbx_sub_get_attrs(gbx_client_t *c, const char *sub_id, gbx_sub_info_t *out,
                              gbx_error_t *err);
/* Frees what a gbx_sub_info_t holds and zeroes it; NULL-safe, idempotent. */
GBX_API void gbx_sub_info_free(gbx_sub_info_t *info);
/* Changes the subscription attributes flagged in attrs->set. */
GBX_API int gbx_sub_set_attrs(gbx_client_t *c, const char *sub_id, const gbx_sub_attrs_t *attrs,
                              gbx_error_t *err);

/* Publishes one message (body of len bytes, nattrs attributes, subject NULL
 * for none, else 1-100 characters) to topic. Every subscribed queue whose
 * filter matches gets its own copy, all in one atomic commit. On success
 * mid (if not NULL) receives the publish's id and *delivered (if not NULL)
 * the number of queues that got a copy (0 is success too). */
GBX_API int gbx_publish(gbx_client_t *c, const char *topic, const void *body, size_t len,
                        const gbx_msg_attr_t *attrs, size_t nattrs, const char *subject,
                        char mid[GBX_MID_BUFSZ], uint32_t *delivered, gbx_error_t *err);

/* One entry of a publish batch. eid and subject may be NULL. */
typedef struct gbx_publish_entry {
  const char *eid;
  const void *body;
  size_t body_len;
  const gbx_msg_attr_t *attrs;
  size_t nattrs;
  const char *subject;
} gbx_publish_entry_t;

/* Outcome of one publish batch entry, in entry order. */
typedef struct gbx_publish_result {
  int code;                /* GBX_E_OK or the entry's error */
  char message[160];       /* the server's message when code != 0 */
  char mid[GBX_MID_BUFSZ]; /* the publish's id when code == 0 */
  uint32_t delivered;      /* queues that got a copy when code == 0 */
} gbx_publish_result_t;

/* Publishes n (1-GBX_MAX_PUBLISH_BATCH) messages in one request. Returns a
 * request-level error, or GBX_E_OK with each entry's outcome in
 * results[0..n). */
GBX_API int gbx_publish_batch(gbx_client_t *c, const char *topic,
                              const gbx_publish_entry_t *entries, size_t n,
                              gbx_publish_result_t *results, gbx_error_t *err);

/* ---- pipelining ------------------------------------------------------------ */

/* A reply as gbx_collect() returns it. Free with gbx_reply_free(). */
typedef struct gbx_reply gbx_reply_t;

/* Each gbx_submit_* buffers one request and returns its id (> 0; ids grow
 * by one per request of a client), or 0 with err set. The request is
 * written when the buffer passes GBX_PIPELINE_FLUSH_BYTES, at gbx_flush()
 * or when a call waits for a reply. Arguments are as for the blocking call
 * of the same name and are copied: the caller may reuse them at once. */
GBX_API uint64_t gbx_submit_ping(gbx_client_t *c, gbx_error_t *err);
GBX_API uint64_t gbx_submit_send(gbx_client_t *c, const char *queue, const void *body, size_t len,
                                 const gbx_msg_attr_t *attrs, size_t nattrs, int delay,
                                 gbx_error_t *err);
GBX_API uint64_t gbx_submit_send_batch(gbx_client_t *c, const char *queue,
                                       const gbx_send_entry_t *entries, size_t n, gbx_error_t *err);
GBX_API uint64_t gbx_submit_receive(gbx_client_t *c, const char *queue, uint32_t max, int vis,
                                    int wait, gbx_error_t *err);
GBX_API uint64_t gbx_submit_delete(gbx_client_t *c, const char *queue, const char *receipt,
                                   gbx_error_t *err);
GBX_API uint64_t gbx_submit_delete_batch(gbx_client_t *c, const char *queue,
                                         const gbx_receipt_entry_t *entries, size_t n,
                                         gbx_error_t *err);
GBX_API uint64_t gbx_submit_change_vis(gbx_client_t *c, const char *queue, const char *receipt,
                                       uint32_t vis, gbx_error_t *err);
GBX_API uint64_t gbx_submit_publish(gbx_client_t *c, const char *topic, const void *body,
                                    size_t len, const gbx_msg_attr_t *attrs, size_t nattrs,
                                    const char *subject, gbx_error_t *err);
GBX_API uint64_t gbx_submit_publish_batch(gbx_client_t *c, const char *topic,
                                          const gbx_publish_entry_t *entries, size_t n,
                                          gbx_error_t *err);

/* Writes every buffered request. */
GBX_API int gbx_flush(gbx_client_t *c, gbx_error_t *err);
/* Number of submitted requests whose reply gbx_collect() has not returned. */
GBX_API size_t gbx_pending(const gbx_client_t *c);
/* Flushes, then returns the next reply to a submitted request (one already
 * received first), waiting for it if need be. *out is owned by the caller
 * (gbx_reply_free). Returns GBX_E_OK even when the reply itself carries a
 * server error (see gbx_reply_error); GBX_E_CLOSED with nothing pending.
 * Reads are large: one read may bring many replies, kept for later calls. */
GBX_API int gbx_collect(gbx_client_t *c, gbx_reply_t **out, gbx_error_t *err);

/* The request id the reply answers. */
GBX_API uint64_t gbx_reply_id(const gbx_reply_t *r);
/* The operation of the request it answers (a gbx_op_t). */
GBX_API int gbx_reply_op(const gbx_reply_t *r);
/* The reply's error code (0 on success), with the server's message in err. */
GBX_API int gbx_reply_error(const gbx_reply_t *r, gbx_error_t *err);
/* The typed accessors below return the reply's own error (with its
 * message) when it carries one, GBX_E_PROTOCOL when it answers another
 * operation or is malformed. */
/* A send reply's message id, copied into mid. */
GBX_API int gbx_reply_mid(const gbx_reply_t *r, char mid[GBX_MID_BUFSZ], gbx_error_t *err);
/* A receive reply's messages, as gbx_queue_receive returns them (the array
 * is independent of r: free it with gbx_messages_free). */
GBX_API int gbx_reply_messages(const gbx_reply_t *r, gbx_message_t **msgs, size_t *n,
                               gbx_error_t *err);
/* A batch reply's n per-entry outcomes (n as submitted). */
GBX_API int gbx_reply_batch_results(const gbx_reply_t *r, gbx_batch_result_t *results, size_t n,
                                    gbx_error_t *err);
/* A publish reply's id (copied into mid, if not NULL) and number of queues
 * that got a copy (*delivered, if not NULL). */
GBX_API int gbx_reply_publish(const gbx_reply_t *r, char mid[GBX_MID_BUFSZ], uint32_t *delivered,
                              gbx_error_t *err);
/* A publish batch reply's n per-entry outcomes (n as submitted). */
GBX_API int gbx_reply_publish_results(const gbx_reply_t *r, gbx_publish_result_t *results, size_t n,
                                      gbx_error_t *err);
/* Frees a reply. NULL is a no-op. */
GBX_API void gbx_reply_free(gbx_reply_t *r);

#ifdef __cplusplus
}
#endif

#endif
