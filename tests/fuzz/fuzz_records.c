/* fuzz_records.c - libFuzzer target for the stored-record decoders
 * (server/records.h) and the start-up recovery that feeds them to the
 * broker and the topics (what server.c's scan_* callbacks do with what a
 * possibly damaged store returns).
 *
 * Byte 0 picks the mode (mod 4), the rest is the input:
 *   0  index key (12 bytes) + index record: idx_key_decode, idx_decode;
 *   1  queue record: qrec_decode;
 *   2  blob: blob_parse, blob_pub_meta;
 *   3  a recovery: records "type(1) len(2, BE) bytes" restored in order into
 *      a fresh broker and topics, then broker_restore_done. Types (mod 4):
 *      0 queue (name NUL record), 1 index (key + record), 2 topic (name NUL
 *      record), 3 subscription (number(8) + record).
 *
 * Besides "no crash, no sanitizer report" it aborts when an invariant breaks:
 *   - a decoded index record re-encodes to the same 62 bytes (it has no
 *     spare bits), a decoded key to the same 12;
 *   - a decoded queue record re-encodes and decodes to equal attributes and
 *     tags;
 *   - a parsed blob's body and attributes lie inside it, and a v2 blob's
 *     topic and subject too;
 *   - a refused record leaves a message in the error buffer;
 *   - every id a decoder accepts is in its valid range (records.h), and
 *     after a recovery the id counter resumes above every restored message
 *     sequence, id, body id and subscription number (none wraps to 0).
 * Replayed over tests/fuzz/corpus/fuzz_records by replay_main.c under ctest. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "ids.h"
#include "records.h"
#include "topic.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Start-up's "now" (monotonic ms) and wall offset, as a real start has. */
#define NOW_MONO    5000000u
#define WALL_OFFSET 1700000000000LL

static void j_put(void *c, store_cf_t cf, const void *k, size_t kl, const void *v, size_t vl) {}
static void j_del(void *c, store_cf_t cf, const void *k, size_t kl) {}
static void j_delrange(void *c, store_cf_t cf, const void *s, size_t sl, const void *e, size_t el) {
}

static void fuzz_idx(const uint8_t *p, size_t n) {
  uint32_t qid;
  uint64_t seq;
  idxrec_t r;
  uint8_t out[IDX_REC_LEN], key[IDX_KEY_LEN];
  if (n < IDX_KEY_LEN)
    return;
  if (idx_key_decode(p, IDX_KEY_LEN, &qid, &seq) != 0) {
    /* refused only for an id out of range (the key has no other check) */
    qid = be32_get(p);
    seq = be64_get(p + 4);
    CHECK(qid == 0 || qid > RECORDS_QID_MAX || seq == 0 || seq >= RECORDS_COUNTER_MAX);
    return;
  }
  idx_key(key, qid, seq);
  CHECK(memcmp(key, p, IDX_KEY_LEN) == 0);
  CHECK(idx_key_decode(p, n, &qid, &seq) == (n == IDX_KEY_LEN ? 0 : -1));
  if (idx_decode(p + IDX_KEY_LEN, n - IDX_KEY_LEN, &r) != 0)
    return;
  CHECK(r.idn >= 1 && r.idn < RECORDS_COUNTER_MAX && r.body_id >= 1 &&
        r.body_id < RECORDS_COUNTER_MAX && r.src_qid <= RECORDS_QID_MAX);
  idx_encode(out, &r);
  CHECK(memcmp(out, p + IDX_KEY_LEN, IDX_REC_LEN) == 0);
}

static int tags_equal(const qrec_t *a, const qrec_t *b) {
  if (a->ntags != b->ntags)
    return 0;
  for (uint32_t i = 0; i < a->ntags; i++)
    if (strcmp(a->tags[i].key, b->tags[i].key) || strcmp(a->tags[i].value, b->tags[i].value))
      return 0;
  return 1;
}

static void fuzz_qrec(const uint8_t *p, size_t n) {
  qrec_t r, back;
  gbx_errbuf_t eb = {0};
  gbx_buf_t b;
  if (qrec_decode(p, n, &r, &eb) != 0) {
    CHECK(eb.msg[0] != '\0');
    return;
  }
  gbx_buf_init(&b);
  CHECK(qrec_encode(&b, &r) == 0);
  CHECK(qrec_decode(b.data, b.len, &back, &eb) == 0);
  CHECK(back.qid == r.qid && back.created_ms == r.created_ms && back.modified_ms == r.modified_ms);
  CHECK(qattrs_equal(&back.a, &r.a) && back.a.max_receives == r.a.max_receives);
  CHECK(tags_equal(&back, &r));
  qrec_free(&back);
  qrec_free(&r);
  gbx_buf_free(&b);
}

static int inside(const uint8_t *base, size_t n, const void *p, size_t len) {
  const uint8_t *q = p;
  return q >= base && q <= base + n && len <= (size_t)(base + n - q);
}

static void fuzz_blob(const uint8_t *p, size_t n) {
  const uint8_t *body, *attrs;
  uint32_t bl, al;
  blob_pub_t m;
  /* a private copy, so a read past the end is a heap overflow ASan sees */
  uint8_t *c = malloc(n ? n : 1);
  CHECK(c != NULL);
  memcpy(c, p, n);
  if (blob_parse(c, n, &body, &bl, &attrs, &al) == 0) {
    CHECK(inside(c, n, body, bl) && inside(c, n, attrs, al));
    CHECK(n >= 1 && (c[0] == BLOB_VERSION || c[0] == BLOB_VERSION_PUB || c[0] == BLOB_VERSION_SYS));
    const char *t;
    uint32_t tl;
    CHECK(blob_trace(c, n, &t, &tl) == 0);
    CHECK(c[0] == BLOB_VERSION_SYS ? tl >= 1 && tl <= BLOB_MAX_TRACE && inside(c, n, t, tl)
                                   : tl == 0 && t == NULL);
    /* what parses is written back byte for byte (a sent blob) */
    if (c[0] != BLOB_VERSION_PUB) {
      size_t wn = blob_sent_size(bl, al, tl);
      uint8_t *w = malloc(wn ? wn : 1);
      CHECK(w != NULL && wn == n);
      blob_sent_write(w, body, bl, attrs, al, t, tl);
      CHECK(memcmp(w, c, n) == 0);
      free(w);
    }
  }
  /* the same bytes as a redrive task record: what decodes encodes back */
  redrive_rec_t rr;
  if (redrive_decode(c, n, &rr) == 0) {
    uint8_t w[REDRIVE_REC_FIXED + REDRIVE_MSG_MAX];
    CHECK(rr.state >= 1 && rr.state <= 4 && rr.moved <= rr.total);
    CHECK(redrive_encode(w, &rr) == n && memcmp(w, c, n) == 0);
  }
  if (blob_pub_meta(c, n, &m) == 0) {
    CHECK(blob_parse(c, n, &body, &bl, &attrs, &al) == 0 || al != 0);
    CHECK(m.topic_len >= 1 && inside(c, n, m.topic, m.topic_len));
    CHECK(m.subject ? inside(c, n, m.subject, m.subject_len) : m.subject_len == 0);
  }
  free(c);
}

/* Copies at most cap-1 bytes of p up to its first NUL into out; returns the
 * bytes consumed (including the NUL), or 0 without a NUL. */
static size_t take_name(const uint8_t *p, size_t n, char *out, size_t cap) {
  const uint8_t *z = memchr(p, 0, n);
  if (!z || (size_t)(z - p) >= cap)
    return 0;
  memcpy(out, p, (size_t)(z - p) + 1);
  return (size_t)(z - p) + 1;
}

/* RocksDB never returns a key twice; the recovery mode keeps it so. */
#define SEEN_MAX 256u
typedef struct seen {
  uint64_t k[SEEN_MAX][2];
  uint32_t n;
} seen_t;

/* 1 if (a, b) was seen before (or the set is full); records it otherwise. */
static int seen_before(seen_t *s, uint64_t a, uint64_t b) {
  for (uint32_t i = 0; i < s->n; i++)
    if (s->k[i][0] == a && s->k[i][1] == b)
      return 1;
  if (s->n == SEEN_MAX)
    return 1;
  s->k[s->n][0] = a;
  s->k[s->n++][1] = b;
  return 0;
}

static void fuzz_recovery(const uint8_t *p, size_t n) {
  static seen_t seen;
  seen.n = 0;
  uint8_t key[IDS_KEY_BYTES];
  memset(key, 7, sizeof(key));
  journal_t j = {NULL, j_put, j_del, j_del, j_delrange};
  broker_cbs_t cbs = {0};
  broker_cfg_t cfg = {.body_cache_bytes = 1u << 20, .wall_offset = WALL_OFFSET};
  ids_t *ids = ids_new(key);
  CHECK(ids != NULL);
  broker_t *b = broker_new(&cfg, &j, ids, &cbs);
  topics_t *t = topics_new(b, &j);
  CHECK(b && t);
  CHECK(broker_restore_counter(b, 1u << 20, 1000) == 0);
  uint64_t top = 0; /* the largest counter value restored */

  while (n >= 3) {
    unsigned type = p[0] % 4u;
    size_t len = ((size_t)p[1] << 8) | p[2];
    p += 3;
    n -= 3;
    if (len > n)
      len = n;
    const uint8_t *v = p;
    p += len;
    n -= len;
    char name[GBX_MAX_NAME + 1];
    size_t used;
    gbx_errbuf_t eb = {0};
    switch (type) {
    case 0: { /* queue: server.c checks the name before decoding */
      qrec_t rec;
      if (!(used = take_name(v, len, name, sizeof name)) || used < 2 ||
          !gbx_name_valid(name, used - 1) || broker_queue(b, name, used - 1))
        break;
      if (qrec_decode(v + used, len - used, &rec, &eb) != 0)
        break;
      if (broker_restore_queue(b, name, &rec) != GBX_E_OK)
        qrec_free(&rec);
      break;
    }
    case 1: {
      uint32_t qid;
      uint64_t seq;
      idxrec_t rec;
      if (len < IDX_KEY_LEN || idx_key_decode(v, IDX_KEY_LEN, &qid, &seq) != 0 ||
          idx_decode(v + IDX_KEY_LEN, len - IDX_KEY_LEN, &rec) != 0 || seen_before(&seen, qid, seq))
        break;
      if (broker_restore_msg(b, qid, seq, &rec, NOW_MONO) == 0) {
        uint64_t hi = seq > rec.idn ? seq : rec.idn;
        hi = hi > rec.body_id ? hi : rec.body_id;
        top = hi > top ? hi : top;
      }
      break;
    }
    case 2:
      if (!(used = take_name(v, len, name, sizeof name)) || used < 2 ||
          !gbx_name_valid(name, used - 1) || topics_find(t, name, used - 1))
        break;
      if (topics_restore_topic(t, name, v + used, len - used, &eb) != 0)
        CHECK(eb.msg[0] != '\0');
      break;
    case 3:
      if (len < 8 || seen_before(&seen, UINT64_MAX, be64_get(v)))
        break;
      if (topics_restore_sub(t, be64_get(v), v + 8, len - 8, &eb) != 0)
        CHECK(eb.msg[0] != '\0');
      else
        top = be64_get(v) > top ? be64_get(v) : top;
      break;
    }
  }
  broker_restore_done(b, NOW_MONO);
  /* the counter resumes above every id restored, never wrapped to reuse one */
  uint64_t next = broker_counter(b);
  CHECK(next > top && next <= RECORDS_COUNTER_MAX);
  topics_free(t);
  broker_free(b);
  ids_free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  switch (data[0] % 4u) {
  case 0:
    fuzz_idx(data + 1, size - 1);
    break;
  case 1:
    fuzz_qrec(data + 1, size - 1);
    break;
  case 2:
    fuzz_blob(data + 1, size - 1);
    break;
  case 3:
    fuzz_recovery(data + 1, size - 1);
    break;
  }
  return 0;
}
