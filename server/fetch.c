/* fetch.c - see fetch.h. */
#include "fetch.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "records.h"

fetch_job_t *fetch_job_new(store_t *store, uint32_t cap, fetch_done_cb done, void *ud) {
  fetch_job_t *j = calloc(1, sizeof(*j));
  if (!j) return NULL;
  j->items = calloc(cap ? cap : 1, sizeof(*j->items));
  if (!j->items) {
    free(j);
    return NULL;
  }
  j->store = store;
  j->cap = cap;
  j->done = done;
  j->ud = ud;
  j->work.data = j;
  return j;
}

int fetch_job_add(fetch_job_t *j, uint32_t qid, uint64_t seq, uint64_t body_id) {
  if (j->n == j->cap) return -1;
  fetch_item_t *it = &j->items[j->n++];
  it->qid = qid;
  it->seq = seq;
  it->body_id = body_id;
  it->blob = NULL;
  return 0;
}

static void work_cb(uv_work_t *w) {
  fetch_job_t *j = w->data;
  for (uint32_t i = 0; i < j->n; i++) {
    uint8_t k[BODY_KEY_LEN];
    char *v = NULL, *err = NULL;
    size_t vl = 0;
    body_key(k, j->items[i].body_id);
    int r = store_get(j->store, STORE_CF_BODY, k, sizeof(k), &v, &vl, &err);
    if (r < 0) {
      j->failed++;
      LOG(LOG_ERROR, "reading body %llu: %s", (unsigned long long)j->items[i].body_id,
          err ? err : "?");
      free(err);
      continue;
    }
    if (r == 0) continue; /* deleted meanwhile */
    const uint8_t *b, *a;
    uint32_t bl, al;
    if (vl > UINT32_MAX || blob_parse((const uint8_t *)v, vl, &b, &bl, &a, &al) != 0) {
      j->failed++;
      LOG(LOG_ERROR, "body %llu is corrupt", (unsigned long long)j->items[i].body_id);
      free(v);
      continue;
    }
    blob_t *bb = blob_new((uint32_t)vl);
    if (bb) memcpy(bb->data, v, vl);
    else j->failed++;
    j->items[i].blob = bb;
    free(v);
  }
}

static void after_cb(uv_work_t *w, int status) {
  fetch_job_t *j = w->data;
  j->done(j);
}

int fetch_submit(uv_loop_t *loop, fetch_job_t *j) {
  return uv_queue_work(loop, &j->work, work_cb, after_cb);
}

void fetch_job_free(fetch_job_t *j) {
  if (!j) return;
  for (uint32_t i = 0; i < j->n; i++) blob_unref(j->items[i].blob);
  free(j->items);
  free(j);
}
