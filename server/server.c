/* server.c - see server.h. The loop's phases, on one screen:
 *
 *   poll     net.c reads frames -> ops.c handlers -> broker mutations go
 *            into the open commit batch, replies are held on that batch
 *   check    phases(): serve woken long polls, hand the open batch to the
 *            commit thread (commit_kick), submit body prefetches, write
 *            every connection's output once, re-arm the one deadline timer
 *   timer    broker_tick(): visibility/delay expiry, retention, long-poll
 *            timeouts, redrive steps
 *   async    commit thread reports batch N durable -> net_release(N)
 *   prepare  phases() again, for work done by timers
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "aws_fmt.h"
#include "filter.h"
#include "log.h"
#include "records.h"

/* Prefetch requests per threadpool job. */
#define PREFETCH_JOB 256u

void server_cfg_defaults(server_cfg_t *c) {
  memset(c, 0, sizeof(*c));
  snprintf(c->host, sizeof(c->host), "127.0.0.1");
  c->port = 7411;
  snprintf(c->data_dir, sizeof(c->data_dir), "./data");
  c->policy = COMMIT_ALWAYS;
  c->interval_ms = 1000;
  c->max_frame = GBX_DEFAULT_MAX_FRAME;
  c->max_conns = 10000;
  c->max_waiters = 64;
  c->max_outbuf = 64u * 1024 * 1024;
  c->max_bytes = 0;
  c->body_cache = 512u * 1024 * 1024;
  /* RocksDB needs room to flush memtables (64 MiB each) and to compact;
   * refusing new messages well before the disk is full keeps receives and
   * deletes (which write too) working */
  c->min_free = 256u * 1024 * 1024;
  c->slow_ms = 30000;
  c->auth_timeout_ms = 10000;
  snprintf(c->region, sizeof(c->region), "us-east-1");
  snprintf(c->account, sizeof(c->account), "123456789012");
  snprintf(c->http_host, sizeof(c->http_host), "127.0.0.1");
  c->http_port = 9324; /* ElasticMQ's and most local SQS servers' port */
}

uint64_t server_gate(const server_t *s) {
#ifdef GBX_BROKEN_ACK_BEFORE_WRITE
  /* deliberately broken build (tests/reliability): replies before the write */
  return 0;
#endif
  uint64_t open = commit_open_no(s->commit);
  return commit_dirty(s->commit) ? open : open - 1;
}

/* ---- journal: the broker's mutations go into the open batch ---- */

static void j_put(void *ctx, store_cf_t cf, const void *k, size_t kl, const void *v, size_t vl) {
  server_t *s = ctx;
  store_batch_put(commit_batch(s->commit), cf, k, kl, v, vl);
}
static void j_del(void *ctx, store_cf_t cf, const void *k, size_t kl) {
  server_t *s = ctx;
  store_batch_delete(commit_batch(s->commit), cf, k, kl);
}
static void j_sdel(void *ctx, store_cf_t cf, const void *k, size_t kl) {
  server_t *s = ctx;
  store_batch_single_delete(commit_batch(s->commit), cf, k, kl);
}
static void j_range(void *ctx, store_cf_t cf, const void *a, size_t al, const void *b, size_t bl) {
  server_t *s = ctx;
  store_batch_delete_range(commit_batch(s->commit), cf, a, al, b, bl);
}

/* ---- prefetch ---- */

static void prefetch_done(fetch_job_t *j) {
  server_t *s = j->ud;
  for (uint32_t i = 0; i < j->n; i++)
    broker_attach_blob(s->broker, j->items[i].qid, j->items[i].seq, j->items[i].body_id,
                       j->items[i].blob);
  s->fetches_in_flight--;
  fetch_job_free(j);
}

static void submit_prefetch(server_t *s) {
  fetch_job_t *j = s->prefetch;
  if (!j)
    return;
  s->prefetch = NULL;
  s->fetches_in_flight++;
  if (fetch_submit(s->loop, j) != 0) {
    s->fetches_in_flight--;
    for (uint32_t i = 0; i < j->n; i++)
      broker_attach_blob(s->broker, j->items[i].qid, j->items[i].seq, j->items[i].body_id, NULL);
    fetch_job_free(j);
  }
}

static void want_body(void *ctx, uint32_t qid, uint64_t seq, uint64_t body_id) {
  server_t *s = ctx;
  if (s->prefetch && s->prefetch->n == s->prefetch->cap)
    submit_prefetch(s);
  if (!s->prefetch && !(s->prefetch = fetch_job_new(s->store, PREFETCH_JOB, prefetch_done, s))) {
    broker_attach_blob(s->broker, qid, seq, body_id, NULL);
    return;
  }
  fetch_job_add(s->prefetch, qid, seq, body_id);
}

/* ---- the loop's phases ---- */

static void on_timer(uv_timer_t *t);
static void begin_close(server_t *s);

static void arm_timer(server_t *s) {
  uint64_t due = broker_next_deadline(s->broker), pd = ops_parked_due(s);
  if (pd < due)
    due = pd;
  if (due == s->timer_due)
    return;
  s->timer_due = due;
  if (due == UINT64_MAX) {
    uv_timer_stop(&s->timer);
    return;
  }
  uint64_t now = uv_now(s->loop);
  uv_timer_start(&s->timer, on_timer, due > now ? due - now : 0, 0);
}

/* Free space on the data dir's disk, read at most every 250 ms (a statvfs
 * per loop iteration would be a system call per request under load). */
#define DISK_CHECK_MS 250u

static void check_disk(server_t *s) {
  uint64_t now = uv_now(s->loop);
  if (s->disk_checked && now - s->disk_checked < DISK_CHECK_MS)
    return;
  s->disk_checked = now;
  struct statvfs sv;
  if (statvfs(s->cfg.data_dir, &sv) != 0)
    return;
  uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
  int low = avail < s->cfg.min_free;
  if (low != s->disk_low)
    LOG(low ? LOG_ERROR : LOG_INFO, "%s: %llu bytes free on the data dir's disk (watermark %llu)",
        low ? "refusing sends" : "accepting sends again", (unsigned long long)avail,
        (unsigned long long)s->cfg.min_free);
  s->disk_low = low;
}

void server_fetch_after_gate(server_t *s, fetch_job_t *j) {
  j->gate = server_gate(s);
  j->next = NULL;
  s->fetches_in_flight++;
  if (j->gate <= commit_durable_no(s->commit)) {
    if (fetch_submit(s->loop, j) != 0)
      abort();
    return;
  }
  if (!s->deferred)
    s->deferred_tail = &s->deferred;
  *s->deferred_tail = j;
  s->deferred_tail = &j->next;
}

static void submit_deferred(server_t *s, uint64_t durable) {
  while (s->deferred && s->deferred->gate <= durable) {
    fetch_job_t *j = s->deferred;
    s->deferred = j->next;
    if (fetch_submit(s->loop, j) != 0)
      abort();
  }
}

void server_note_writer(server_t *s, const void *c) {
  uint32_t n = s->nwriters[0];
  for (uint32_t i = 0; i < n; i++)
    if (s->writers[0][i] == c)
      return;
  if (n < WRITERS_TRACKED)
    s->writers[0][s->nwriters[0]++] = c;
}

/* Lingering: when clients each wait for their own sync, the first request
 * after a sync would otherwise go out alone while the others arrive a round
 * trip later, and batches alternate {1},{n-1}. So when the commit thread is
 * free and fewer connections wrote into the open batch than wrote into the
 * last two batches together, the kick waits, polling, for the rest, but never
 * longer than a fraction of a sync. A single client never lingers. */
#define LINGER_MAX_NS 150000u

static void on_linger(uv_idle_t *h) {
  (void)h; /* phases() runs in check/prepare */
}

static int should_linger(server_t *s) {
  if (!commit_dirty(s->commit) || s->stopping)
    return 0;
  if (commit_durable_no(s->commit) + 1 != commit_open_no(s->commit))
    return 0; /* busy anyway */
  uint32_t recent = s->nwriters[1];
  for (uint32_t i = 0; i < s->nwriters[2]; i++) {
    int seen = 0;
    for (uint32_t j = 0; j < s->nwriters[1] && !seen; j++)
      seen = s->writers[2][i] == s->writers[1][j];
    recent += !seen;
  }
  if (s->nwriters[0] >= recent || s->nwriters[0] >= WRITERS_TRACKED) {
    if (s->linger_start)
      s->linger_kicks_full++;
    return 0;
  }
  uint64_t now = uv_hrtime();
  if (!s->linger_start) {
    s->linger_start = now;
    s->lingers++;
  }
  return now - s->linger_start < LINGER_MAX_NS;
}

static void kick(server_t *s) {
  if (should_linger(s)) {
    if (!uv_is_active((uv_handle_t *)&s->linger))
      uv_idle_start(&s->linger, on_linger);
    return;
  }
  if (uv_is_active((uv_handle_t *)&s->linger))
    uv_idle_stop(&s->linger);
  s->linger_start = 0;
  uint64_t before = commit_open_no(s->commit);
  commit_kick(s->commit);
  if (commit_open_no(s->commit) != before) { /* handed off: shift the windows */
    memcpy(s->writers[2], s->writers[1], sizeof(s->writers[1]));
    s->nwriters[2] = s->nwriters[1];
    memcpy(s->writers[1], s->writers[0], sizeof(s->writers[0]));
    s->nwriters[1] = s->nwriters[0];
    s->nwriters[0] = 0;
  }
}

static void phases(server_t *s) {
  check_disk(s);
  broker_serve_ready(s->broker, uv_now(s->loop));
  kick(s);
  submit_prefetch(s);
  net_flush(s->net);
  if (s->http)
    http_flush(s->http);
  arm_timer(s);
  if (s->stopping == 1 && !commit_dirty(s->commit) &&
      commit_durable_no(s->commit) + 1 == commit_open_no(s->commit) && !s->fetches_in_flight)
    begin_close(s);
}

static void on_timer(uv_timer_t *t) {
  server_t *s = t->data;
  s->timer_due = UINT64_MAX;
  broker_tick(s->broker, uv_now(s->loop));
  if (s->parked)
    ops_release_parked(s, uv_now(s->loop));
}

static void on_check(uv_check_t *h) {
  phases(h->data);
}
static void on_prepare(uv_prepare_t *h) {
  phases(h->data);
}

static void on_durable(void *ctx, uint64_t durable, int status, const char *err) {
  server_t *s = ctx;
  if (status != 0) {
    /* Never retry a failed write or sync and then acknowledge: the replies
     * held on this batch are never sent. Exiting leaves RocksDB's WAL as
     * the truth, which recovery replays at the next start. */
    LOG(LOG_ERROR, "store write failed, stopping without acknowledging batch %llu: %s",
        (unsigned long long)durable, err ? err : "?");
    fflush(stderr);
    _exit(3);
  }
  net_release(s->net, durable);
  submit_deferred(s, durable);
  if (s->http)
    http_release(s->http, durable);
}

/* ---- shutdown ---- */

static uv_check_t check_h;

static void on_signal(uv_signal_t *h, int sig) {
  server_t *s = h->data;
  if (s->stopping)
    return;
  LOG(LOG_INFO, "signal %d: draining and stopping", sig);
  s->stopping = 1;
  net_stop_listening(s->net);
  if (s->http)
    http_stop_listening(s->http);
  ops_end_waits(s);
  /* phases() finishes once the last batch is durable and released */
}

/* SIGHUP: reread the credentials file. A bad file changes nothing (the
 * running set stays, loudly); a good one applies to open connections at
 * their next request and ends long polls it no longer allows. */
static void on_sighup(uv_signal_t *h, int sig) {
  server_t *s = h->data;
  char err[512];
  (void)sig;
  if (!auth_enabled(s->auth)) {
    LOG(LOG_WARN, "SIGHUP: no --credentials file to reload");
    return;
  }
  if (auth_reload(s->auth, err, sizeof(err)) != 0) {
    LOG(LOG_ERROR, "SIGHUP: keeping the current credentials: %s", err);
    return;
  }
  s->creds = auth_creds(s->auth);
  LOG(LOG_INFO, "SIGHUP: credentials reloaded, %u principals", creds_count(s->creds));
  ops_auth_changed(s);
}

static void begin_close(server_t *s) {
  s->stopping = 2;
  net_flush(s->net);
  net_close_all(s->net);
  if (s->http)
    http_close_all(s->http);
  uv_timer_stop(&s->timer);
  uv_close((uv_handle_t *)&s->timer, NULL);
  uv_close((uv_handle_t *)&s->prepare, NULL);
  uv_close((uv_handle_t *)&s->linger, NULL);
  uv_close((uv_handle_t *)&check_h, NULL);
  uv_close((uv_handle_t *)&s->sigint, NULL);
  uv_close((uv_handle_t *)&s->sigterm, NULL);
  uv_close((uv_handle_t *)&s->sighup, NULL);
}

/* ---- recovery ---- */

typedef struct rctx {
  server_t *s;
  uint64_t now;
  uint64_t msgs, queues;
  char err[512];
} rctx_t;

static int scan_queue(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
  rctx_t *r = ctx;
  qrec_t rec;
  gbx_errbuf_t eb = {0};
  char name[GBX_MAX_NAME + 1];
  if (kl < 2 || kl - 1 > GBX_MAX_NAME || !gbx_name_valid(k + 1, kl - 1)) {
    snprintf(r->err, sizeof(r->err), "corrupt queue key of %zu bytes", kl);
    return 1;
  }
  memcpy(name, k + 1, kl - 1);
  name[kl - 1] = 0;
  if (qrec_decode(v, vl, &rec, &eb) != 0) {
    snprintf(r->err, sizeof(r->err), "corrupt record of queue '%s': %s", name, eb.msg);
    return 1;
  }
  if (broker_restore_queue(r->s->broker, name, &rec) != GBX_E_OK) {
    qrec_free(&rec);
    snprintf(r->err, sizeof(r->err), "out of memory restoring queue '%s'", name);
    return 1;
  }
  r->queues++;
  return 0;
}

static int scan_grave(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
  rctx_t *r = ctx;
  char name[GBX_MAX_NAME + 1];
  if (kl < 2 || kl - 1 > GBX_MAX_NAME || !gbx_name_valid(k + 1, kl - 1) || vl != 4) {
    snprintf(r->err, sizeof(r->err), "corrupt deleted-queue record (key %zu bytes, value %zu)", kl,
             vl);
    return 1;
  }
  memcpy(name, k + 1, kl - 1);
  name[kl - 1] = 0;
  uint32_t qid = be32_get((const uint8_t *)v);
  if (broker_restore_grave(r->s->broker, name, qid) != GBX_E_OK) {
    snprintf(r->err, sizeof(r->err),
             "corrupt deleted-queue record '%s': its id %u is in use or out of range", name, qid);
    return 1;
  }
  return 0;
}

static int scan_redrive(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
  rctx_t *r = ctx;
  redrive_rec_t rec;
  uint32_t qid = kl == REDRIVE_KEY_LEN ? be32_get((const uint8_t *)k + 1) : 0;
  if (kl != REDRIVE_KEY_LEN || redrive_decode(v, vl, &rec) != 0) {
    snprintf(r->err, sizeof(r->err), "corrupt redrive task record (key %zu bytes, value %zu)", kl,
             vl);
    return 1;
  }
  if (broker_restore_redrive(r->s->broker, qid, &rec, r->now) != GBX_E_OK) {
    snprintf(r->err, sizeof(r->err),
             "corrupt redrive task record: queue id %u, destination %u (unknown, or a second task)",
             qid, rec.dst_qid);
    return 1;
  }
  return 0;
}

static int scan_topic(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
  rctx_t *r = ctx;
  gbx_errbuf_t eb = {0};
  char name[GBX_MAX_NAME + 1];
  if (kl < 2 || kl - 1 > GBX_MAX_NAME || !gbx_name_valid(k + 1, kl - 1)) {
    snprintf(r->err, sizeof(r->err), "corrupt topic key of %zu bytes", kl);
    return 1;
  }
  memcpy(name, k + 1, kl - 1);
  name[kl - 1] = 0;
  if (topics_restore_topic(r->s->topics, name, v, vl, &eb) != 0) {
    snprintf(r->err, sizeof(r->err), "corrupt record of topic '%s': %s", name, eb.msg);
    return 1;
  }
  return 0;
}

static int scan_sub(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
  rctx_t *r = ctx;
  gbx_errbuf_t eb = {0};
  if (kl != 9) {
    snprintf(r->err, sizeof(r->err), "corrupt subscription key of %zu bytes", kl);
    return 1;
  }
  uint64_t num = be64_get((const uint8_t *)k + 1);
  if (topics_restore_sub(r->s->topics, num, v, vl, &eb) != 0) {
    snprintf(r->err, sizeof(r->err), "corrupt subscription %llu: %s", (unsigned long long)num,
             eb.msg);
    return 1;
  }
  return 0;
}

static int scan_msg(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
  rctx_t *r = ctx;
  uint32_t qid;
  uint64_t seq;
  idxrec_t rec;
  /* The decoders refuse ids outside their valid ranges, so the counters
   * restored from the largest ids seen cannot wrap. */
  if (idx_key_decode(k, kl, &qid, &seq) != 0 || idx_decode(v, vl, &rec) != 0) {
    snprintf(r->err, sizeof(r->err), "corrupt message index record (key of %zu bytes)", kl);
    return 1;
  }
  if (broker_restore_msg(r->s->broker, qid, seq, &rec, r->now) != 0) {
    snprintf(r->err, sizeof(r->err), "message %llu belongs to unknown queue id %u",
             (unsigned long long)seq, qid);
    return 1;
  }
  r->msgs++;
  return 0;
}

static int meta_get(server_t *s, const char *key, char **v, size_t *vl) {
  char *err = NULL;
  int r = store_get(s->store, STORE_CF_META, key, strlen(key), v, vl, &err);
  if (r < 0) {
    LOG(LOG_ERROR, "reading '%s' from the store: %s", key, err);
    free(err);
  }
  return r;
}

/* Adds the META format-version record (RECORDS_FORMAT) to b. */
static void put_version(store_batch_t *b) {
  uint8_t ver[4];
  be32_put(ver, RECORDS_FORMAT);
  store_batch_put(b, STORE_CF_META, "V", 1, ver, 4);
}

/* Marks a store of an older format with the current one, once it was
 * recovered and before anything of the newer format can be written: from
 * then on an older gearboxd refuses the store instead of misreading it. A
 * start refused before this leaves the store as it was. */
static int upgrade_format(server_t *s, uint32_t stored) {
  char *err = NULL;
  if (stored == RECORDS_FORMAT)
    return 0;
  store_batch_t *b = store_batch_new(s->store);
  put_version(b);
  int r = store_write(s->store, b, 1, &err);
  store_batch_free(b);
  if (r != 0) {
    LOG(LOG_ERROR, "upgrading the store format: %s", err);
    free(err);
    return -1;
  }
  LOG(LOG_INFO, "store format upgraded from version %u to %u (older gearboxd builds refuse it)",
      stored, RECORDS_FORMAT);
  return 0;
}

/* Reads the format version (into *stored) and the id key, creating both in
 * a fresh store. */
static int load_keys(server_t *s, uint8_t key[IDS_KEY_BYTES], uint32_t *stored) {
  char *v = NULL, *err = NULL;
  size_t vl = 0;
  int r = meta_get(s, "V", &v, &vl);
  if (r < 0)
    return -1;
  if (r == 1) {
    uint32_t ver = vl == 4 ? be32_get((uint8_t *)v) : 0;
    free(v);
    if (ver < RECORDS_FORMAT_MIN || ver > RECORDS_FORMAT) {
      LOG(LOG_ERROR,
          "store format is version %u, this gearboxd reads versions %u to %u: refusing to start",
          ver, RECORDS_FORMAT_MIN, RECORDS_FORMAT);
      return -1;
    }
    *stored = ver;
    if ((r = meta_get(s, "K", &v, &vl)) != 1 || vl != IDS_KEY_BYTES) {
      if (r == 1)
        free(v);
      LOG(LOG_ERROR, "store has no valid id key: refusing to start (corrupt store?)");
      return -1;
    }
    memcpy(key, v, IDS_KEY_BYTES);
    free(v);
    return 0;
  }
  /* fresh store: persist version and key, synced, before any id is issued */
  if (ids_random_key(key) != 0) {
    LOG(LOG_ERROR, "getrandom failed: %s", strerror(errno));
    return -1;
  }
  store_batch_t *b = store_batch_new(s->store);
  store_batch_put(b, STORE_CF_META, "K", 1, key, IDS_KEY_BYTES);
  put_version(b);
  r = store_write(s->store, b, 1, &err);
  store_batch_free(b);
  if (r != 0) {
    LOG(LOG_ERROR, "initialising the store: %s", err);
    free(err);
    return -1;
  }
  return 0;
}

/* The clean-stop marker: a small file beside the store, written and synced
 * (with its directory) after the store is closed. It holds RocksDB's last
 * sequence number and the queue and message counts. It lives outside
 * RocksDB on purpose: a marker inside the WAL would be cut away with the
 * records it guards. A WAL cut at a record boundary, or a MANIFEST whose last
 * edit is dropped, opens as a healthy smaller store; recovering less than the
 * marker says is how we see it. The marker is removed (durably) before the
 * store serves again, so it only ever describes a clean stop. */
#define STOP_MARKER "CLEAN_STOP"

static int sync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (fd < 0)
    return -1;
  int r = fsync(fd);
  close(fd);
  return r;
}

/* Writes the marker whole or not at all (tmp, fsync, rename, dir fsync): a
 * crash while writing it must not leave a damaged one, which refuses the
 * start. Returns 0 or -1 with errno. */
static int write_stop_marker(const char *dir, uint64_t seq, uint64_t msgs, uint64_t queues) {
  char path[PATH_MAX + 16], tmp[PATH_MAX + 32], text[128];
  snprintf(path, sizeof(path), "%s/" STOP_MARKER, dir);
  snprintf(tmp, sizeof(tmp), "%s/" STOP_MARKER ".tmp", dir);
  int n = snprintf(text, sizeof(text), "gearbox-clean-stop 1 seq=%llu messages=%llu queues=%llu\n",
                   (unsigned long long)seq, (unsigned long long)msgs, (unsigned long long)queues);
  int fd = open(tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
  int ok = fd >= 0 && write(fd, text, (size_t)n) == n && fsync(fd) == 0;
  if (fd >= 0)
    close(fd);
  ok = ok && rename(tmp, path) == 0 && sync_dir(dir) == 0;
  return ok ? 0 : -1;
}

/* Reads the marker: 1 and its fields, 0 when there is none (first start or
 * a crash), -1 with the refusal in why. */
static int read_stop_marker(const char *dir, unsigned long long *seq, unsigned long long *m,
                            unsigned long long *q, char *why, size_t wl) {
  char path[PATH_MAX + 16], text[160];
  snprintf(path, sizeof(path), "%s/" STOP_MARKER, dir);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return 0;
    snprintf(why, wl, "refusing to start: cannot read %s: %s", path, strerror(errno));
    return -1;
  }
  ssize_t n = read(fd, text, sizeof(text) - 1);
  close(fd);
  text[n > 0 ? n : 0] = 0;
  if (n <= 0 ||
      sscanf(text, "gearbox-clean-stop 1 seq=%llu messages=%llu queues=%llu", seq, m, q) != 3) {
    snprintf(why, wl, "refusing to start: %s is damaged; remove it to start anyway", path);
    return -1;
  }
  return 1;
}

/* The refusal when the store holds less than the marker says. scanned:
 * the message and queue counts the scan found, or NULL before the scan. A
 * marker already checked at this start's open holds sequence 0: only the
 * counts are compared then, and only they are named. */
static void missing(char *why, size_t wl, const char *dir, uint64_t have, const uint64_t *scanned,
                    unsigned long long seq, unsigned long long m, unsigned long long q) {
  char got[160] = "", want[64] = "";
  int n = seq ? snprintf(got, sizeof(got), "sequence %llu%s", (unsigned long long)have,
                         scanned ? " with " : "")
              : 0;
  if (scanned)
    snprintf(got + n, sizeof(got) - (size_t)n, "%llu messages in %llu queues",
             (unsigned long long)scanned[0], (unsigned long long)scanned[1]);
  if (seq)
    snprintf(want, sizeof(want), "at sequence %llu ", seq);
  snprintf(why, wl,
           "refusing to start: the store recovered %s, but was cleanly stopped %swith %llu "
           "messages in %llu queues: acknowledged data is missing (truncated or damaged WAL or "
           "MANIFEST?). Restore a backup, or remove %s/" STOP_MARKER " to start with what is left",
           got, want, m, q, dir);
}

/* store_opts_t.recovered: right after RocksDB recovered the store, before
 * anything flushes or is scanned, the recovered sequence is checked against
 * the marker's. A later open can report less than this one did (a flush
 * drops writes that cancel out), so once checked the marker is rewritten
 * without its sequence: a crash between here and the end of the scan must
 * not make the next start refuse a healthy store. ud: the data dir. */
static int stop_seq_check(void *ud, uint64_t have, char **err) {
  const char *dir = ud;
  char why[PATH_MAX + 512];
  unsigned long long seq, m, q;
  int r = read_stop_marker(dir, &seq, &m, &q, why, sizeof(why));
  if (r == 0)
    return 0;
  if (r > 0 && have < seq)
    missing(why, sizeof(why), dir, have, NULL, seq, m, q);
  else if (r > 0 && seq != 0 && write_stop_marker(dir, 0, m, q) != 0)
    snprintf(why, sizeof(why), "refusing to start: cannot rewrite %s/" STOP_MARKER ": %s", dir,
             strerror(errno));
  else if (r > 0)
    return 0;
  *err = strdup(why);
  return -1;
}

/* After the scan: checks the recovered counts against the marker of the
 * last clean stop, if any, and removes the marker. Returns 0, or -1
 * (logged) to refuse. */
static int check_stop_marker(server_t *s, uint64_t msgs, uint64_t queues) {
  char path[PATH_MAX + 16], why[PATH_MAX + 512];
  unsigned long long seq, m, q;
  int r = read_stop_marker(s->cfg.data_dir, &seq, &m, &q, why, sizeof(why));
  if (r == 0)
    return 0;
  uint64_t have = store_recovered_seq(s->store);
  if (r > 0 && (have < seq || msgs != m || queues != q)) {
    const uint64_t scanned[2] = {msgs, queues};
    missing(why, sizeof(why), s->cfg.data_dir, have, scanned, seq, m, q);
    r = -1;
  }
  if (r < 0) {
    LOG(LOG_ERROR, "%s", why);
    return -1;
  }
  snprintf(path, sizeof(path), "%s/" STOP_MARKER, s->cfg.data_dir);
  if (unlink(path) != 0 || sync_dir(s->cfg.data_dir) != 0) {
    LOG(LOG_ERROR, "refusing to start: cannot remove %s: %s", path, strerror(errno));
    return -1;
  }
  return 0;
}

static int recover(server_t *s, uint64_t now) {
  rctx_t r = {.s = s, .now = now};
  char *v = NULL, *err = NULL;
  size_t vl = 0;
  uint64_t next = 1;
  uint32_t next_qid = 1;
  int g;
  /* A damaged counter must refuse the start: ignoring it (or letting it
   * wrap) would resume below ids already issued and issue them again. */
  if ((g = meta_get(s, "C", &v, &vl)) < 0)
    return -1;
  if (g == 1) {
    int ok = vl == 8;
    if (ok)
      next = be64_get((uint8_t *)v);
    free(v);
    if (!ok) {
      LOG(LOG_ERROR, "refusing to start: corrupt id counter record (%zu bytes, not 8)", vl);
      return -1;
    }
  }
  if ((g = meta_get(s, "N", &v, &vl)) < 0)
    return -1;
  if (g == 1) {
    int ok = vl == 4;
    if (ok)
      next_qid = be32_get((uint8_t *)v);
    free(v);
    if (!ok) {
      LOG(LOG_ERROR, "refusing to start: corrupt queue id counter record (%zu bytes, not 4)", vl);
      return -1;
    }
  }
  if (broker_restore_counter(s->broker, next, next_qid) != 0) {
    LOG(LOG_ERROR,
        "refusing to start: corrupt counters: next id %llu (at most %llu), next queue id %u (at "
        "most %u)",
        (unsigned long long)next, (unsigned long long)RECORDS_COUNTER_MAX, next_qid,
        RECORDS_QID_MAX + 1u);
    return -1;
  }
  if (store_scan(s->store, STORE_CF_META, "Q", 1, "R", 1, scan_queue, &r, &err) != 0 || r.err[0] ||
      store_scan(s->store, STORE_CF_META, "G", 1, "H", 1, scan_grave, &r, &err) != 0 || r.err[0] ||
      store_scan(s->store, STORE_CF_META, "M", 1, "N", 1, scan_redrive, &r, &err) != 0 ||
      r.err[0]) {
    LOG(LOG_ERROR, "refusing to start: %s", r.err[0] ? r.err : err);
    free(err);
    return -1;
  }
  if (store_scan(s->store, STORE_CF_META, "T", 1, "U", 1, scan_topic, &r, &err) != 0 || r.err[0] ||
      store_scan(s->store, STORE_CF_META, "U", 1, "V", 1, scan_sub, &r, &err) != 0 || r.err[0]) {
    LOG(LOG_ERROR, "refusing to start: %s", r.err[0] ? r.err : err);
    free(err);
    return -1;
  }
  if (store_scan(s->store, STORE_CF_IDX, NULL, 0, NULL, 0, scan_msg, &r, &err) != 0 || r.err[0]) {
    LOG(LOG_ERROR, "refusing to start: %s", r.err[0] ? r.err : err);
    free(err);
    return -1;
  }
  if (check_stop_marker(s, r.msgs, r.queues) != 0)
    return -1;
  broker_restore_done(s->broker, now);
  LOG(LOG_INFO, "recovered %llu queues and %llu messages", (unsigned long long)r.queues,
      (unsigned long long)r.msgs);
  return 0;
}

/* ---- start and run ---- */

static int is_loopback(const char *host) {
  return !strcmp(host, "localhost") || !strncmp(host, "127.", 4) || !strcmp(host, "::1");
}

/* Protected mode (as Redis's): with no credentials, gearboxd serves only
 * loopback unless told explicitly, loudly, to do otherwise. */
static int check_exposure(const server_cfg_t *cfg) {
  int pub = !is_loopback(cfg->host) || (cfg->http_port >= 0 && !is_loopback(cfg->http_host));
  if (cfg->credentials[0] || !pub) {
    if (!cfg->credentials[0])
      LOG(LOG_INFO, "protected mode: no --credentials, so only loopback clients can connect");
    return 0;
  }
  if (!cfg->allow_public_noauth) {
    LOG(LOG_ERROR,
        "refusing to start: listening on a non-loopback address (%s%s%s) without credentials "
        "would let anyone on the network read and write every queue. Give --credentials FILE "
        "(see docs/SECURITY.md), or --allow-public-without-auth to accept that risk",
        cfg->host, cfg->http_port >= 0 ? ", http " : "", cfg->http_port >= 0 ? cfg->http_host : "");
    return -1;
  }
  LOG(LOG_WARN,
      "WARNING: serving %s without authentication (--allow-public-without-auth): "
      "anyone who can reach this port can read, write and delete every queue",
      cfg->host);
  return 0;
}

static const char *policy_name(const server_cfg_t *c, char *buf, size_t n) {
  if (c->policy == COMMIT_ALWAYS)
    return "always";
  if (c->policy == COMMIT_NONE)
    return "none";
  snprintf(buf, n, "interval:%u", c->interval_ms);
  return buf;
}

int server_start(server_t *s, const server_cfg_t *cfg, uv_loop_t *loop) {
  char *err = NULL, pbuf[32], errbuf[1024];
  uint8_t key[IDS_KEY_BYTES];
  memset(s, 0, sizeof(*s));
  s->cfg = *cfg;
  s->loop = loop;
  s->timer_due = UINT64_MAX;
  gbx_buf_init(&s->out);
  gbx_buf_init(&s->scratch);
  signal(SIGPIPE, SIG_IGN);
  umask(077); /* data files owner-only */
  if (check_exposure(cfg) != 0)
    return -1;
  s->auth =
      auth_new(cfg->credentials[0] ? cfg->credentials : NULL, cfg->account, errbuf, sizeof(errbuf));
  if (!s->auth) {
    LOG(LOG_ERROR, "refusing to start: %s", errbuf);
    return -1;
  }
  s->creds = auth_creds(s->auth);
  s->authz = authz_new();
  if (!s->authz)
    return -1;
  if (s->creds)
    LOG(LOG_INFO, "authentication on: %u principals from %s", creds_count(s->creds),
        cfg->credentials);

  /* a bad certificate or key refuses the start before the store is touched */
  if (cfg->tls_cert[0]) {
    s->tls = tls_server_new(cfg->tls_cert, cfg->tls_key, errbuf, sizeof(errbuf));
    if (!s->tls) {
      LOG(LOG_ERROR, "%s", errbuf);
      return -1;
    }
  }
  store_opts_t so = {.block_cache_bytes = 0,
                     .create_if_missing = 1,
                     .recovered = stop_seq_check,
                     .recovered_ud = (void *)cfg->data_dir};
  if (store_open(&s->store, cfg->data_dir, &so, &err) != 0) {
    LOG(LOG_ERROR, "%s", err);
    free(err);
    return -1;
  }
  uint32_t stored_format = RECORDS_FORMAT;
  if (load_keys(s, key, &stored_format) != 0)
    return -1;
  s->ids = ids_new(key);
  if (!s->ids) {
    LOG(LOG_ERROR, "cannot set up the id generator");
    return -1;
  }
  uv_update_time(loop);
  uint64_t now = uv_now(loop);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t wall = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  broker_cfg_t bc = {.body_cache_bytes = cfg->body_cache,
                     .max_bytes = cfg->max_bytes,
                     .wall_offset = wall - (int64_t)now};
  journal_t j = {.ctx = s, .put = j_put, .del = j_del, .sdel = j_sdel, .delrange = j_range};
  broker_cbs_t cbs = {.ctx = s, .serve = ops_serve_waiter, .fetch = want_body};
  s->broker = broker_new(&bc, &j, s->ids, &cbs);
  if (!s->broker)
    return -1;
  s->topics = topics_new(s->broker, &j);
  if (!s->topics)
    return -1;
  /* the envelope's signing key, derived from the store's key material */
  unsigned kl = 0;
  HMAC(EVP_sha256(), key, IDS_KEY_BYTES, (const unsigned char *)"gearbox-sns-signature", 21,
       s->sign_key, &kl);
  if (recover(s, now) != 0)
    return -1;
  if (ops_restore_principals(s) != 0)
    return -1;
  if (upgrade_format(s, stored_format) != 0)
    return -1;

  s->commit = commit_start(loop, s->store, cfg->policy, cfg->interval_ms, on_durable, s, &err);
  if (!s->commit) {
    LOG(LOG_ERROR, "cannot start the commit thread: %s", err);
    free(err);
    return -1;
  }
  commit_set_manual_kick(s->commit, 1);
  broker_prune_graves(s->broker); /* with the first batch */
  if (!filter_unicode_case())
    LOG(LOG_WARN, "locale C.UTF-8 not found (Debian's libc-bin ships it): filter policies' "
                  "equals-ignore-case folds ASCII letters only");
  /* One connection budget for both faces: each connection is a descriptor
   * whichever face took it, and the reserve must stay the store's. */
  fdlimit_t fl;
  fdlimit_get(&fl);
  s->fds.cap = fl.conn_cap;
  s->fds.used = 0;
  if (fl.conn_cap < cfg->max_conns)
    LOG(LOG_INFO,
        "at most %u connections (both faces together): the descriptor limit is %llu "
        "(RLIMIT_NOFILE), %llu are kept for the store and the rest of the process",
        fl.conn_cap, (unsigned long long)fl.soft, (unsigned long long)fl.reserve);
  net_cfg_t nc = {.max_frame = cfg->max_frame,
                  .max_conns = cfg->max_conns,
                  .fds = &s->fds,
                  .max_outbuf = cfg->max_outbuf,
                  .slow_ms = cfg->slow_ms,
                  .preauth_max_frame = GBX_PREAUTH_MAX_FRAME,
                  .auth_ms = s->creds ? cfg->auth_timeout_ms : 0,
                  .tls = s->tls};
  net_cbs_t ncb = {.ctx = s, .frame = ops_frame, .closed = ops_conn_closed};
  s->net = net_new(loop, &nc, &ncb);
  if (!s->net || net_listen(s->net, cfg->host, cfg->port, &s->bound_port, errbuf, sizeof(errbuf))) {
    LOG(LOG_ERROR, "%s", s->net ? errbuf : "out of memory");
    return -1;
  }
  uv_timer_init(loop, &s->timer);
  s->timer.data = s;
  uv_idle_init(loop, &s->linger);
  s->linger.data = s;
  uv_prepare_init(loop, &s->prepare);
  s->prepare.data = s;
  uv_prepare_start(&s->prepare, on_prepare);
  uv_check_init(loop, &check_h);
  check_h.data = s;
  uv_check_start(&check_h, on_check);
  uv_signal_init(loop, &s->sigint);
  uv_signal_init(loop, &s->sigterm);
  s->sigint.data = s->sigterm.data = s;
  uv_signal_start(&s->sigint, on_signal, SIGINT);
  uv_signal_start(&s->sigterm, on_signal, SIGTERM);
  uv_signal_init(loop, &s->sighup);
  s->sighup.data = s;
  uv_signal_start(&s->sighup, on_sighup, SIGHUP);
  s->started_ms = now;
  if (cfg->public_url[0])
    snprintf(s->base_url, sizeof(s->base_url), "%s", cfg->public_url);
  else
    snprintf(s->base_url, sizeof(s->base_url), "http://%s:%d", cfg->host, s->bound_port);
  s->env.region = s->cfg.region;
  s->env.account = s->cfg.account;
  s->env.base_url = s->base_url;
  s->env.sign_key = s->sign_key;
  topics_set_envelope(s->topics, &s->env);
  gbx_buf_init(&s->envbuf);
  LOG(LOG_INFO, "listening on %s:%d%s, data in %s, sync %s", cfg->host, s->bound_port,
      s->tls ? " (TLS)" : "", cfg->data_dir, policy_name(cfg, pbuf, sizeof(pbuf)));
  if (cfg->http_port >= 0) {
    s->http = aws_start(s, cfg->http_host, cfg->http_port, cfg->test_endpoints, &s->http_bound_port,
                        errbuf, sizeof(errbuf));
    if (!s->http) {
      LOG(LOG_ERROR, "%s", errbuf);
      return -1;
    }
    LOG(LOG_INFO, "AWS-compatible HTTP API on %s:%d%s", cfg->http_host, s->http_bound_port,
        s->tls ? " (HTTPS)" : "");
    /* envelope URLs (UnsubscribeURL, SigningCertURL) are the HTTP face's */
    if (!cfg->public_url[0])
      snprintf(s->base_url, sizeof(s->base_url), "%s://%s:%d", s->tls ? "https" : "http",
               cfg->http_host, s->http_bound_port);
  }
  char httpf[32] = "";
  if (s->http)
    snprintf(httpf, sizeof(httpf), " http=%d", s->http_bound_port);
  printf("gearboxd ready port=%d data=%s sync=%s%s\n", s->bound_port, cfg->data_dir,
         policy_name(cfg, pbuf, sizeof(pbuf)), httpf);
  fflush(stdout);
  return 0;
}

static void close_handle(uv_handle_t *h, void *arg) {
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

/* Frees everything server_start made, whatever it got to; stops the commit
 * thread and closes every handle. Returns -1 if the final commit failed. */
static int teardown(server_t *s) {
  int rc = 0;
  if (s->commit && commit_stop(s->commit) != 0) {
    LOG(LOG_ERROR, "the final commit failed");
    rc = -1;
  }
  s->commit = NULL;
  uv_walk(s->loop, close_handle, NULL);
  uv_run(s->loop, UV_RUN_DEFAULT); /* close callbacks */
  topics_free(s->topics);
  broker_free(s->broker);
  gbx_buf_free(&s->envbuf);
  if (s->store)
    store_close(s->store);
  ids_free(s->ids);
  net_free(s->net);
  aws_free(s->http);
  auth_free(s->auth);
  authz_free(s->authz);
  tls_server_free(s->tls); /* after the connections' sessions were freed */
  gbx_buf_free(&s->out);
  gbx_buf_free(&s->scratch);
  memset(s, 0, sizeof(*s));
  return rc;
}

void server_abort_start(server_t *s) {
  teardown(s);
}

int server_run(server_t *s) {
  uv_run(s->loop, UV_RUN_DEFAULT);
  char dir[PATH_MAX];
  snprintf(dir, sizeof(dir), "%s", s->cfg.data_dir);
  broker_stats_t st;
  broker_get_stats(s->broker, &st);
  uint64_t msgs = st.messages, queues = st.queues;
  /* the sequence number after the final commit, before the store closes */
  int rc = s->commit && commit_stop(s->commit) != 0 ? 1 : 0;
  if (rc)
    LOG(LOG_ERROR, "the final commit failed");
  s->commit = NULL;
  /* First make everything acknowledged durable in the WAL, whatever the
   * policy (RocksDB's Close does not sync it): under --sync none the marker
   * below would otherwise claim more than a power cut leaves. */
  char *serr = NULL;
  if (rc == 0 && store_sync_wal(s->store, &serr) != 0) {
    LOG(LOG_ERROR, "the final WAL sync failed: %s", serr ? serr : "?");
    rc = 1;
  }
  free(serr);
  serr = NULL;
  /* Then flush the memtables, so that the next start has no WAL to replay
   * (a minute of churn leaves up to STORE_MAX_TOTAL_WAL_BYTES of it, seconds
   * of replay). The flush may drop the last writes (a body put and its
   * SingleDelete cancel out), after which an open recovers a lower sequence
   * than the one the marker records: so the last write is one that stays in
   * the fresh WAL, the format version again, unchanged and synced. If either
   * fails (a full disk), the WAL still holds everything: no marker, and the
   * next start replays it and checks nothing against one. */
  int marker = rc == 0;
  if (marker && store_flush(s->store, &serr) != 0) {
    LOG(LOG_WARN, "flushing the store at stop: %s (the next start replays the WAL)",
        serr ? serr : "?");
    marker = 0;
  }
  free(serr);
  serr = NULL;
  if (marker) {
    store_batch_t *b = store_batch_new(s->store);
    if (!b)
      abort();
    put_version(b);
    if (store_write(s->store, b, 1, &serr) != 0) {
      LOG(LOG_WARN, "the stop's last write failed: %s (no clean-stop marker)", serr ? serr : "?");
      marker = 0;
    }
    store_batch_free(b);
    free(serr);
  }
  uint64_t seq = store_latest_seq(s->store);
  teardown(s);
  if (marker && write_stop_marker(dir, seq, msgs, queues) != 0)
    LOG(LOG_WARN, "could not write the clean-stop marker in %s: %s", dir, strerror(errno));
  LOG(LOG_INFO, "stopped");
  return rc;
}
