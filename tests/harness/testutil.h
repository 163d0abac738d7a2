/* testutil.h - what the integration tests share on top of the server harness
 * (testserver.h): the CHECK_OK/CHECK_ERR macros, the per-test fixture (a
 * fresh gearboxd plus a connected client), clocks, the libgearbox calls most
 * tests make (create a queue, receive exactly n messages, look up an
 * attribute), and hand-built requests on raw connections.
 *
 * Failure policy: as testserver.h, every function here fails the running
 * cmocka test (fail_msg or an assert) instead of returning an error.
 *
 * CHECK_OK and CHECK_ERR expand to cmocka's fail_msg: a file using them
 * includes <cmocka.h> (after its own prerequisites) as well. */
#ifndef GBX_TESTUTIL_H
#define GBX_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "gbx_codec.h"
#include "gearbox.h"
#include "testserver.h"

/* Every libgearbox call of a test gives up after this long, so a hung
 * server fails the test instead of stalling it until ctest's timeout. */
#define TU_CLIENT_TIMEOUT_MS 20000
/* Replies to hand-built requests are small; anything larger is a bug. */
#define TU_RAW_REPLY_MAX (64 * 1024)
/* How long a raw reply may take: far above a local round trip. */
#define TU_RAW_TIMEOUT_MS 10000
/* Room for a raw reply's msg (longer ones are truncated). */
#define TU_REPLY_MSG_MAX 256

/* Fail the test unless call returns GBX_E_OK (or want). The message names
 * the call and the error's text from `e`: the including file's
 * `static gbx_error_t e;` (or a local of that name) that its calls pass. */
#define CHECK_OK(call)                                                                             \
  do {                                                                                             \
    int rc_ = (call);                                                                              \
    if (rc_ != GBX_E_OK)                                                                           \
      fail_msg("%s: %s (%s)", #call, gbx_errname(rc_), e.message);                                 \
  } while (0)

#define CHECK_ERR(want, call)                                                                      \
  do {                                                                                             \
    int rc_ = (call);                                                                              \
    if (rc_ != (want))                                                                             \
      fail_msg("%s: got %s (%s), want %s", #call, gbx_errname(rc_), e.message, gbx_errname(want)); \
  } while (0)

/* ---- fixture -------------------------------------------------------------------- */

/* What tu_setup gives a test through *state: its own server and a client. */
typedef struct tu_fx {
  gbx_testserver_t *ts;
  gbx_client_t *c; /* NULL after tu_setup_server */
} tu_fx_t;

/* cmocka setup: starts a fresh gearboxd (no extra flags) and connects a
 * client with tu_connect. Free with tu_teardown. Never fails softly. */
int tu_setup(void **state);
/* As tu_setup without the client, for tests that only use raw sockets or
 * their own connections. */
int tu_setup_server(void **state);
/* cmocka teardown of either: closes the client, stops the server
 * (asserting a clean exit) and removes its temp dir. */
int tu_teardown(void **state);

/* ---- clients and clocks ------------------------------------------------------------ */

/* ts_connect with TU_CLIENT_TIMEOUT_MS as the client's timeout. The caller
 * closes it with gbx_close(). */
gbx_client_t *tu_connect(gbx_testserver_t *ts);
/* Closes f->c and connects it again (after a restart); returns f->c. */
gbx_client_t *tu_reconnect(tu_fx_t *f);
/* A fresh connection can still ping: the server survived the test. */
void tu_assert_alive(gbx_testserver_t *ts);

/* Sleeps ms milliseconds (the whole time, despite signals). */
void tu_sleep_ms(unsigned ms);
/* Monotonic clock in milliseconds, for measuring how long a wait took. */
int64_t tu_mono_ms(void);
/* Wall clock in epoch milliseconds, to compare with the server's stamps. */
uint64_t tu_wall_ms(void);

/* ---- calls most tests make ---------------------------------------------------------- */

/* Creates queue q with attrs a (NULL: defaults) and no tags. */
void tu_create_queue(gbx_client_t *c, const char *q, const gbx_queue_attrs_t *a);
/* Receives up to max messages of q without waiting, hidden for vis seconds
 * (-1: the queue's default), and fails unless exactly want came. Returns
 * them (NULL when none; free with gbx_messages_free). */
gbx_message_t *tu_recv_n(gbx_client_t *c, const char *q, uint32_t max, int vis, size_t want);
/* The attribute of m called name, or NULL. Points into m. */
const gbx_msg_attr_t *tu_msg_attr(const gbx_message_t *m, const char *name);
/* The queue attribute of info called name, or NULL. Points into info. */
const gbx_queue_attr_t *tu_find_attr(const gbx_queue_info_t *info, const char *name);
/* 1 if s is a UUID in its 36-character text form (any hex case), else 0. */
int tu_is_uuid(const char *s);

/* ---- raw requests (what libgearbox cannot or will not send) ---------------------------- */

/* A request payload being packed by hand. */
typedef struct tu_raw {
  gbx_buf_t b;
  msgpack_packer pk;
} tu_raw_t;

/* One reply as read off a raw connection. */
typedef struct tu_reply {
  uint64_t id;
  int err;
  int has_msg;                /* the reply carried a msg field */
  char msg[TU_REPLY_MSG_MAX]; /* its text (truncated), "" when none */
} tu_reply_t;

/* Starts an empty payload in r and returns the packer writing into it. The
 * caller frees r->b with gbx_buf_free() once it is sent. */
msgpack_packer *tu_raw_begin(tu_raw_t *r);
/* tu_raw_begin plus the start of a request: a map of 2 + nfields entries
 * whose first two are "op": op and "id": id; the caller packs the other
 * nfields key/value pairs. */
msgpack_packer *tu_raw_request(tu_raw_t *r, uint64_t op, uint64_t id, uint32_t nfields);
/* Reads one reply frame from fd within TU_RAW_TIMEOUT_MS. Fails the test on
 * EOF, timeout, a payload that does not parse or a missing id or err. */
tu_reply_t tu_raw_read_reply(int fd);
/* Sends payload b as one frame on a new raw connection, reads its reply
 * (tu_raw_read_reply) and closes the connection. b stays the caller's. */
tu_reply_t tu_raw_call(gbx_testserver_t *ts, const gbx_buf_t *b);

#endif
