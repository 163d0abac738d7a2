/* gbx_limits.h - protocol limits shared by server and client.
 * Each limit says why it has that value. Server flags may lower (never raise
 * beyond the hard caps here) the ones marked "flag". */
#ifndef GBX_LIMITS_H
#define GBX_LIMITS_H

/* Frame header: 4-byte big-endian payload length. */
#define GBX_FRAME_HDR 4u
/* Default frame limit (flag --max-frame): a batch totals at most 1 MiB of
 * bodies+attributes; 1 MiB more covers field names, ids and msgpack overhead
 * of 100 entries with room to spare. */
#define GBX_DEFAULT_MAX_FRAME (2u * 1024u * 1024u)
/* Before a connection has authenticated, only the handshake is accepted, and
 * its frames are small (a key of at most 128 bytes, two 32-byte values):
 * 4 KiB leaves room while keeping what an anonymous peer can make the server
 * buffer tiny (Redis caps unauthenticated requests the same way). */
#define GBX_PREAUTH_MAX_FRAME 4096u
/* Hard cap on any frame the codec accepts, client or server side: a receive
 * reply is bounded by GBX_RECEIVE_REPLY_BUDGET plus one maximal message. */
#define GBX_HARD_MAX_FRAME (8u * 1024u * 1024u)
/* msgpack nesting: the deepest legal request is 4 (request map > entries
 * array > entry map > attribute map > attribute value map); 8 leaves slack. */
#define GBX_MAX_DEPTH 8u
/* msgpack objects per frame. msgpack-c spends ~24 bytes of zone per object,
 * so this caps a decoded frame at ~1.5 MiB whatever its bytes say. The
 * largest legal message needs ~7,000 (100 entries or messages of 10
 * attributes each); 65,536 leaves room. */
#define GBX_MAX_OBJECTS 65536u
/* Queue and topic names, as SQS: 1-80 characters of A-Za-z0-9_-. */
#define GBX_MAX_NAME 80u
/* Entries per batch request: 10x SQS's 10, so one request can carry a
 * whole pipelining window of small messages; the SQS face enforces 10. */
#define GBX_MAX_BATCH 100u
/* Bytes of bodies+attributes per batch: SQS's payload limit. */
#define GBX_MAX_BATCH_BYTES (1024u * 1024u)
/* Messages per receive (SQS: 10). */
#define GBX_MAX_RECEIVE 100u
/* A receive stops adding messages once its reply carries this many bytes
 * of bodies+attributes (it always returns at least one message). */
#define GBX_RECEIVE_REPLY_BUDGET (2u * 1024u * 1024u)
/* Message size (body + attribute names, types and values), as SQS. */
#define GBX_MAX_MESSAGE_SIZE (1024u * 1024u)
#define GBX_MIN_MESSAGE_SIZE 1024u
/* Message attributes per message and their name/type lengths, as SQS. */
#define GBX_MAX_ATTRS     10u
#define GBX_MAX_ATTR_NAME 256u
#define GBX_MAX_ATTR_TYPE 256u
/* Receipt handles are short base64url strings; anything longer is forged. */
#define GBX_MAX_RECEIPT 128u
/* Batch entry ids, as SQS: 1-80 characters of A-Za-z0-9_-. */
#define GBX_MAX_ENTRY_ID 80u
/* Tags per queue (SQS: 50), key 128 and value 256 characters. */
#define GBX_MAX_TAGS      50u
#define GBX_MAX_TAG_KEY   128u
#define GBX_MAX_TAG_VALUE 256u
/* Policy documents (SQS: 20 KiB for policies). */
#define GBX_MAX_POLICY (20u * 1024u)
/* A redrive (message move task) moves at most this many messages a second
 * (SQS's MaxNumberOfMessagesPerSecond), and by default that many. */
#define GBX_REDRIVE_RATE_MAX 500u

/* Queue attribute ranges, in seconds unless stated (SQS's). */
#define GBX_VIS_DEFAULT       30u
#define GBX_VIS_MAX           (12u * 3600u)
#define GBX_DELAY_MAX         900u
#define GBX_RETENTION_MIN     60u
#define GBX_RETENTION_MAX     (14u * 86400u)
#define GBX_RETENTION_DEFAULT (4u * 86400u)
#define GBX_WAIT_MAX          20u
#define GBX_MAX_RECEIVES_MIN  1u
#define GBX_MAX_RECEIVES_MAX  1000u
/* In-flight messages per queue (SQS standard queues: 120,000). */
#define GBX_MAX_INFLIGHT 120000u
/* Message ids are UUID-formatted strings of 36 characters. */
#define GBX_MSGID_LEN 36u

#endif
