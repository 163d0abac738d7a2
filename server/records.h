/* records.h - the on-disk formats: keys and records of every column family.
 * Pure encoding/decoding, no I/O. Every decoder treats its input as hostile
 * (a corrupt store must give an error, never a crash). Keys are big-endian so
 * RocksDB orders them. See docs/ARCHITECTURE.md "On-disk layout".
 *
 *   META  "V"            -> u32 format version (RECORDS_FORMAT)
 *   META  "K"            -> IDS_KEY_BYTES of id/receipt key material
 *   META  "C"            -> u64 counter reservation (every counter value used
 *                           is below it; start-up resumes from it)
 *   META  "N"            -> u32 next queue id
 *   META  "Q" + name     -> queue record (msgpack map, versioned)
 *   META  "M" + qid(4)   -> the dead-letter queue's last redrive task
 *                           (fixed layout, below; deleted with the queue)
 *   META  "G" + name     -> u32 id of a deleted queue that messages were
 *                           dead-lettered from; a queue created with the
 *                           name takes the id (and the record goes)
 *   META  "S"            -> clean-stop marker (u64 last counter value)
 *   IDX   qid(4) seq(8)  -> message index record (fixed 62 bytes)
 *   BODY  body_id(8)     -> blob v1: version(1)=1 body_len(4) body attrs(msgpack map)
 *                           blob v2 (published): version(1)=2 body_len(4) body
 *                           attrs_len(4) attrs pub_idn(8) pub_ms(8) topic_len(1)
 *                           topic subject_len(1) subject
 *                           blob v3 (sent with an X-Ray trace header): version(1)=3
 *                           body_len(4) body attrs_len(4) attrs trace_len(2) trace
 */
#ifndef GBX_RECORDS_H
#define GBX_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include "gbx_codec.h"

/* Format of the store: 2 added blob v3 (trace headers). A store of format
 * 1 is read and its version record rewritten at start. */
#define RECORDS_FORMAT     2u
#define RECORDS_FORMAT_MIN 1u
#define IDX_KEY_LEN        12u
/* Bounds of a queue's index range tombstone: the queue id alone, shorter
 * than any idx key, so one range [qid, qid+1) covers the whole queue. */
#define IDX_RANGE_KEY_LEN 4u
#define BODY_KEY_LEN      8u
#define IDX_REC_LEN       62u
#define IDX_FLAG_SHARED   0x01u /* body shared with other messages (fan-out) */
#define IDX_FLAG_ENVELOPE 0x02u /* delivered from a topic without raw delivery */
#define IDX_REC_VERSION   1u
#define BLOB_VERSION      1u
#define BLOB_VERSION_PUB  2u
#define BLOB_VERSION_SYS  3u
/* Longest trace header a v3 blob holds (its length field is 16 bits). */
#define BLOB_MAX_TRACE 1024u
#define BLOB_HDR       5u

/* Valid ranges of stored identifiers. Message sequence numbers, id numbers,
 * body ids and subscription numbers all come from one counter that starts
 * at 1 and stays below RECORDS_COUNTER_MAX: 2^62 ids last ~146,000 years at
 * a million a second, so a larger value in a record is damage. Refusing it
 * at decode keeps recovery's "resume above the largest id seen" (value + 1,
 * then + the counter's reservation block) far from wrapping to 0 and
 * issuing ids again. */
#define RECORDS_COUNTER_MAX ((uint64_t)1 << 62)
/* Queue ids start at 1; the next queue id (largest + 1) must fit a u32, so
 * UINT32_MAX itself is never a queue id. */
#define RECORDS_QID_MAX (UINT32_MAX - 1u)

/* Queue attributes (settable ones), SQS names and ranges (gbx_limits.h). */
typedef struct qattrs {
  uint32_t vis, delay, retention, max_size, wait, max_receives;
  char dlq[GBX_MAX_NAME + 1]; /* "" = no dead-letter queue */
  char *policy;               /* malloc'd JSON or NULL */
  char *redrive_allow;        /* malloc'd JSON or NULL */
} qattrs_t;

/* One tag. */
typedef struct qtag {
  char *key;
  char *value;
} qtag_t;

/* The persisted part of a queue. */
typedef struct qrec {
  uint32_t qid;
  int64_t created_ms, modified_ms;
  qattrs_t a;
  qtag_t *tags;
  uint32_t ntags;
} qrec_t;

/* The persisted part of a message. deadline_ms: wall-clock ms until which
 * it is invisible (delay or visibility), 0 = visible. */
typedef struct idxrec {
  uint64_t idn;     /* counter the message id derives from */
  uint64_t body_id; /* key of its blob */
  int64_t sent_ms;  /* original send, wall ms */
  int64_t first_ms; /* first receive, 0 = never */
  int64_t recv_ms;  /* latest receive, 0 = never */
  int64_t deadline_ms;
  uint32_t rc;      /* receive count */
  uint32_t size;    /* body + attribute bytes, as SQS counts */
  uint32_t src_qid; /* queue it was dead-lettered from, 0 = none */
  uint8_t flags;    /* IDX_FLAG_* */
} idxrec_t;

void qattrs_defaults(qattrs_t *a);
/* Deep copy (policy strings duplicated). Returns 0 or -1 on OOM. */
int qattrs_copy(qattrs_t *dst, const qattrs_t *src);
void qattrs_free(qattrs_t *a);
/* 1 if every attribute is equal. */
int qattrs_equal(const qattrs_t *x, const qattrs_t *y);
void qrec_free(qrec_t *r);
/* Sets in[0..nin) into the *n tags at *tags (realloc'd): a key already
 * there, or given twice, keeps its first place and takes the last value
 * (as TagQueue does); new keys are appended. Aborts when out of memory.
 * The caller has checked the tag limit. */
void qtags_set(qtag_t **tags, uint32_t *n, const qtag_t *in, uint32_t nin);

void idx_key(uint8_t out[IDX_KEY_LEN], uint32_t qid, uint64_t seq);
void body_key(uint8_t out[BODY_KEY_LEN], uint64_t body_id);
/* The 4-byte key qid: sorts after every idx key of queue qid-1 and before
 * every idx key of qid, so [range_key(q), range_key(q+1)) is all of q. */
void idx_range_key(uint8_t out[IDX_RANGE_KEY_LEN], uint32_t qid);
void idx_encode(uint8_t out[IDX_REC_LEN], const idxrec_t *r);
/* Returns 0, or -1 for a wrong length or version, a time before the epoch,
 * unknown flags, an oversized body, an id number or body id outside
 * 1..RECORDS_COUNTER_MAX-1 or a source queue id above RECORDS_QID_MAX. */
int idx_decode(const void *v, size_t vl, idxrec_t *r);
/* Returns 0 and the key's parts, or -1 for a wrong length, a queue id
 * outside 1..RECORDS_QID_MAX or a sequence outside 1..RECORDS_COUNTER_MAX-1. */
int idx_key_decode(const void *k, size_t kl, uint32_t *qid, uint64_t *seq);

/* Packs a queue record into b (msgpack map). Returns 0 or -1 (OOM). */
int qrec_encode(gbx_buf_t *b, const qrec_t *r);
/* Decodes a queue record; on success the caller owns r (qrec_free).
 * Returns 0, or -1 with a message in eb. */
int qrec_decode(const void *v, size_t vl, qrec_t *r, gbx_errbuf_t *eb);

/* A redrive (message move) task, as kept under META "M" + qid: version(1)=1
 * state(1) dst_qid(4) rate(4) moved(8) total(8) started_ms(8) msg_len(1)
 * msg. state: 1 running, 2 completed, 3 cancelled, 4 failed. */
#define REDRIVE_REC_VERSION 1u
#define REDRIVE_REC_FIXED   35u
#define REDRIVE_MSG_MAX     95u
typedef struct redrive_rec {
  uint8_t state;
  uint32_t dst_qid; /* 0: each message's source */
  uint32_t rate;    /* messages a second, 1-500 */
  uint64_t moved, total;
  int64_t started_ms;
  char msg[REDRIVE_MSG_MAX + 1]; /* failure reason, NUL-terminated */
} redrive_rec_t;
#define REDRIVE_KEY_LEN 5u
void redrive_key(uint8_t k[REDRIVE_KEY_LEN], uint32_t qid);
/* Writes r into out (at most REDRIVE_REC_FIXED + REDRIVE_MSG_MAX bytes);
 * returns the length. */
size_t redrive_encode(uint8_t *out, const redrive_rec_t *r);
/* 0, or -1 when v is not a well-formed record (hostile input). */
int redrive_decode(const void *v, size_t vl, redrive_rec_t *r);

/* Blob layout helpers. body/attrs point into the blob. Returns 0 or -1 when
 * the blob is malformed (wrong version, lengths past the end, attrs not a
 * valid msgpack map). */
int blob_parse(const uint8_t *blob, size_t len, const uint8_t **body, uint32_t *body_len,
               const uint8_t **attrs, uint32_t *attrs_len);

/* Size of a sent blob: v1, or v3 when it carries a trace header (tl > 0,
 * at most BLOB_MAX_TRACE). */
size_t blob_sent_size(uint32_t body_len, uint32_t attrs_len, uint32_t trace_len);
/* Writes a sent blob into out (blob_sent_size bytes); attrs is a packed
 * msgpack map or empty. */
void blob_sent_write(uint8_t *out, const uint8_t *body, uint32_t bl, const uint8_t *attrs,
                     uint32_t al, const char *trace, uint32_t tl);
/* The trace header a v3 blob carries: 0 with *tl = 0 for a blob without
 * one (v1, v2), -1 when the blob is malformed. */
int blob_trace(const uint8_t *blob, size_t len, const char **trace, uint32_t *tl);

/* The publish metadata of a v2 blob. Returns 0, or -1 if the blob is not v2
 * or is malformed. Pointers refer into the blob. */
typedef struct blob_pub {
  uint64_t pub_idn;
  int64_t pub_ms;
  const char *topic;
  uint32_t topic_len;
  const char *subject; /* NULL when none */
  uint32_t subject_len;
} blob_pub_t;
int blob_pub_meta(const uint8_t *blob, size_t len, blob_pub_t *out);
/* Size of a v2 blob for these parts. */
size_t blob_pub_size(uint32_t body_len, uint32_t attrs_len, uint32_t topic_len,
                     uint32_t subject_len);
/* Writes a v2 blob into out (blob_pub_size bytes). */
void blob_pub_write(uint8_t *out, const uint8_t *body, uint32_t bl, const uint8_t *attrs,
                    uint32_t al, uint64_t pub_idn, int64_t pub_ms, const char *topic, uint32_t tl,
                    const char *subject, uint32_t sl);

void be32_put(uint8_t *p, uint32_t v);
void be64_put(uint8_t *p, uint64_t v);
uint32_t be32_get(const uint8_t *p);
uint64_t be64_get(const uint8_t *p);

#endif
