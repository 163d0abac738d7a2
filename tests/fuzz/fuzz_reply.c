/* fuzz_reply.c - libFuzzer target for libgearbox's reply parser: the frame
 * check (reply_parse), the error accessor, and every structured decoder a
 * reply reaches (client/reply.h), as a client meets a hostile or broken
 * server.
 *
 * Byte 0 picks the decoder (mod 15), byte 1 the batch size n (mod
 * GBX_MAX_BATCH, + 1) a batch decoder expects; the rest is the reply
 * payload (the msgpack map after the 4-byte frame header).
 *
 * Besides "no crash, no sanitizer report" it aborts when an invariant breaks:
 *   - a refused reply is GBX_E_PROTOCOL or GBX_E_NOMEM with a message;
 *   - a decoded result's strings are terminated within their buffers and
 *     its counts within the limits the decoder promises;
 *   - a decoder's failure leaves nothing for the caller to free.
 * Replayed over tests/fuzz/corpus/fuzz_reply by replay_main.c under ctest. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


#define TERMINATED(buf) CHECK(memchr((buf), '\0', sizeof(buf)) != NULL)

/* Reads every byte of a string the decoder handed out, so ASan sees a
 * string that is not terminated inside its allocation. */
static size_t touch(const char *s) {
  return s ? strlen(s) : 0;
}

static void messages(gbx_reply_t *r, gbx_errbuf_t *eb) {
  gbx_message_t *m = NULL;
  size_t n = 0;
  if (reply_decode_messages(r, &m, &n, eb) != GBX_E_OK) {
    CHECK(m == NULL || n == 0);
    return;
  }
  CHECK(n <= GBX_MAX_BATCH);
  for (size_t i = 0; i < n; i++) {
    touch(m[i].mid);
    touch(m[i].receipt);
    touch(m[i].source_queue);
    CHECK(m[i].body_len == 0 || m[i].body != NULL);
    if (m[i].body)
      CHECK(m[i].body[m[i].body_len] == '\0');
    for (size_t a = 0; a < m[i].nattrs; a++)
      touch(m[i].attrs[a].name), touch(m[i].attrs[a].type);
  }
  gbx_messages_free(m);
}

static void batch(gbx_reply_t *r, int kind, size_t n, gbx_errbuf_t *eb) {
  gbx_batch_result_t res[GBX_MAX_BATCH];
  gbx_publish_result_t pres[GBX_MAX_BATCH];
  gbx_error_t err;
  if (kind == 2) {
    r->op = GBX_OP_PUBLISH_BATCH;
    if (gbx_reply_publish_results(r, pres, n, &err) == GBX_E_OK)
      for (size_t i = 0; i < n; i++) {
        TERMINATED(pres[i].message);
        TERMINATED(pres[i].mid);
      }
    return;
  }
  if (reply_decode_batch(r, kind, res, n, eb) == GBX_E_OK)
    for (size_t i = 0; i < n; i++) {
      TERMINATED(res[i].message);
      TERMINATED(res[i].mid);
    }
}

static void lists(gbx_reply_t *r, int which, gbx_errbuf_t *eb) {
  gbx_queue_list_t l;
  memset(&l, 0, sizeof l);
  int rc = which == 0   ? reply_decode_queue_list(r, 1, &l, eb)
           : which == 1 ? reply_decode_queue_list(r, 0, &l, eb)
                        : reply_decode_names(r, "topics", 1, &l, eb);
  if (rc != GBX_E_OK)
    return;
  for (size_t i = 0; i < l.count; i++)
    touch(l.names[i]);
  touch(l.next);
  gbx_queue_list_free(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  gbx_reply_t *r = NULL;
  gbx_errbuf_t eb;
  gbx_error_t err;
  if (size < 2)
    return 0;
  unsigned which = data[0] % 15u;
  size_t n = (size_t)(data[1] % GBX_MAX_BATCH) + 1;
  memset(&eb, 0, sizeof eb);
  int rc = reply_parse(data + 2, size - 2, &r, &eb);
  if (rc != GBX_E_OK) {
    CHECK(r == NULL && (rc == GBX_E_PROTOCOL || rc == GBX_E_NOMEM) && (int)eb.code == rc);
    CHECK(eb.msg[0] != '\0');
    return 0;
  }
  if (reply_error(r, &err) != GBX_E_OK) {
    TERMINATED(err.message);
    touch(err.message);
  }
  memset(&eb, 0, sizeof eb);
  switch (which) {
  case 0: {
    char mid[GBX_MID_BUFSZ];
    if (reply_decode_mid(r, mid, &eb) == GBX_E_OK)
      TERMINATED(mid);
    break;
  }
  case 1:
    messages(r, &eb);
    break;
  case 2:
  case 3:
  case 4:
    batch(r, (int)which - 2, n, &eb);
    break;
  case 5:
  case 6:
  case 7:
    lists(r, (int)which - 5, &eb);
    break;
  case 8: {
    gbx_queue_info_t qi;
    if (reply_decode_queue_info(r, &qi, &eb) == GBX_E_OK) {
      for (size_t i = 0; i < qi.nall; i++)
        touch(qi.all[i].name), touch(qi.all[i].str);
      for (size_t i = 0; i < qi.ntags; i++)
        touch(qi.tags[i].key), touch(qi.tags[i].value);
      gbx_queue_info_free(&qi);
    }
    break;
  }
  case 9: {
    gbx_stats_t st;
    if (reply_decode_stats(r, &st, &eb) == GBX_E_OK)
      gbx_stats_free(&st);
    break;
  }
  case 10: {
    gbx_redrive_status_t rs;
    if (reply_decode_redrive_status(r, &rs, &eb) == GBX_E_OK) {
      TERMINATED(rs.state);
      TERMINATED(rs.dst);
      TERMINATED(rs.message);
    }
    break;
  }
  case 11: {
    gbx_topic_info_t ti;
    if (reply_decode_topic_info(r, &ti, &eb) == GBX_E_OK)
      gbx_topic_info_free(&ti);
    break;
  }
  case 12: {
    gbx_sub_list_t sl;
    if (reply_decode_sub_list(r, &sl, &eb) == GBX_E_OK)
      gbx_sub_list_free(&sl);
    break;
  }
  case 13: {
    gbx_sub_info_t si;
    if (reply_decode_sub_info(r, &si, &eb) == GBX_E_OK)
      gbx_sub_info_free(&si);
    break;
  }
  case 14: {
    char mid[GBX_MID_BUFSZ], *s = NULL;
    uint32_t delivered;
    uint64_t u;
    int b;
    r->op = GBX_OP_PUBLISH;
    if (gbx_reply_publish(r, mid, &delivered, &err) == GBX_E_OK)
      TERMINATED(mid);
    reply_decode_u64(r, "n", &u, &eb);
    reply_decode_bool(r, "created", &b, &eb);
    if (reply_decode_strdup(r, "task", 1024, &s, &eb) == GBX_E_OK)
      touch(s);
    free(s);
    break;
  }
  }
  gbx_reply_free(r);
  return 0;
}
