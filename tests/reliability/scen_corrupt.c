/* scen_corrupt.c - damaged stores: a store is filled with acknowledged
 * sends, receives and deletes over three clean runs (so it holds SST files,
 * a MANIFEST and a WAL), stopped cleanly and copied; each case damages a
 * fresh copy and starts gearboxd on it. Acceptable outcomes:
 *   refused    gearboxd exits non-zero before its ready line, with a message;
 *   recovered  it serves exactly the acknowledged messages;
 *   loud       a request fails with an error, or the server stops with one.
 * Anything else is a violation: serving fewer acknowledged messages without
 * an error ("silent-loss"), serving deleted ones ("resurrected"), serving a
 * body that was never sent ("silent-corruption"), exiting 0 on refusal.
 *
 * The fixed cases cover the newest WAL cut at record boundaries, a torn
 * tail, bit flips and zeroed chunks in it; zeroed chunks of an SST (head,
 * middle, footer), a flip and a cut, a damaged SST of the idx and of the META
 * column family; the MANIFEST zeroed, cut, and damaged in its last record;
 * a damaged CURRENT. Random cases (seeded: a random file, a random flip,
 * zeroed chunk or cut) follow until --cycles cases were selected. --only and
 * --skip PREFIX[,PREFIX...] select cases by name.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gearbox.h"
#include "history.h"
#include "run.h"

/* The store: messages per run, bodies padded up to this many bytes so the
 * body column family spans several SST blocks. */
#define GEN_MSGS     150
#define GENERATIONS  3
#define BODY_PAD_MAX 3000
/* In the last run: messages received (visibility 1 s, so they are visible
 * again at the next start) and deleted. */
#define LAST_RECEIVED 60
#define LAST_DELETED  30
/* Chunk zeroed in an SST, the MANIFEST or the WAL. */
#define ZERO_CHUNK 4096
/* RocksDB log format: 32 KiB blocks, 7-byte record headers (checksum u32,
 * length u16, type u8); types 1-4 full/first/middle/last, 5-8 the same for
 * recycled logs (11-byte headers). */
#define WAL_BLOCK 32768
#define WAL_HDR   7
#define WAL_RHDR  11
/* Cases and record offsets we keep. */
#define MAX_CASES   512
#define MAX_RECORDS 65536
/* Random cases drawn per case wanted before giving up (with --only, few
 * random cases match). */
#define RANDOM_TRIES 20
/* How long a drain of the damaged store may take. */
#define DRAIN_TIMEOUT_MS 20000

typedef struct expect {
  uint8_t *state; /* per message index: 0 never sent, 1 acknowledged, 2 deleted */
  size_t n;
} expect_t;

static const char *const QUEUE = "cq";

/* ---- files ------------------------------------------------------------------ */

static int copy_file(const char *from, const char *to) {
  int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
  if (in < 0)
    return -1;
  out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0)
    goto fail;
  char buf[65536];
  ssize_t n;
  while ((n = read(in, buf, sizeof buf)) > 0)
    if (write(out, buf, (size_t)n) != n)
      goto fail;
  rc = n < 0 ? -1 : 0;
fail:
  if (in >= 0)
    close(in);
  if (out >= 0)
    close(out);
  return rc;
}

/* dir/name into out; -1 if it does not fit. */
static int join(char *out, size_t cap, const char *dir, const char *name) {
  int n = snprintf(out, cap, "%s/%s", dir, name);
  return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int rm_entry(const char *p, const struct stat *sb, int f, struct FTW *w) {
  (void)sb;
  (void)f;
  (void)w;
  remove(p);
  return 0;
}

/* Replaces dir `to` by a copy of the flat dir `from`. */
static int copy_dir(const char *from, const char *to) {
  nftw(to, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  if (mkdir(to, 0700) != 0)
    return -1;
  DIR *d = opendir(from);
  if (!d)
    return -1;
  struct dirent *e;
  int rc = 0;
  while (rc == 0 && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    char a[PATH_MAX], b[PATH_MAX];
    rc = join(a, sizeof a, from, e->d_name) || join(b, sizeof b, to, e->d_name) ? -1
                                                                                : copy_file(a, b);
  }
  closedir(d);
  return rc;
}

/* The store's files whose names end in suffix (or start with it when
 * prefix), sorted by name; returns how many (at most max). */
static int list_files(const char *dir, const char *pat, int prefix, char names[][64], int max) {
  DIR *d = opendir(dir);
  if (!d)
    return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL && n < max) {
    if (e->d_name[0] == '.')
      continue;
    size_t l = strlen(e->d_name), pl = strlen(pat);
    int match =
        prefix ? strncmp(e->d_name, pat, pl) == 0 : l > pl && strcmp(e->d_name + l - pl, pat) == 0;
    if (match && l < 64)
      memcpy(names[n++], e->d_name, l + 1);
  }
  closedir(d);
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
      char t[64];
      memcpy(t, names[j], 64);
      memcpy(names[j], names[j - 1], 64);
      memcpy(names[j - 1], t, 64);
    }
  return n;
}

static off_t file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? st.st_size : -1;
}

static int zero_at(const char *path, off_t off, size_t len) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  static const char zeros[ZERO_CHUNK * 4];
  if (len > sizeof zeros)
    len = sizeof zeros;
  int rc = pwrite(fd, zeros, len, off) == (ssize_t)len ? 0 : -1;
  close(fd);
  return rc;
}

static int flip_at(const char *path, off_t off, unsigned bit) {
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return -1;
  uint8_t b;
  int rc = -1;
  if (pread(fd, &b, 1, off) == 1) {
    b ^= (uint8_t)(1u << (bit & 7));
    rc = pwrite(fd, &b, 1, off) == 1 ? 0 : -1;
  }
  close(fd);
  return rc;
}

/* Offsets where logical records (full or first fragments) start in a WAL. */
static int wal_records(const char *path, off_t *out, int max) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  off_t size = lseek(fd, 0, SEEK_END), off = 0;
  int n = 0;
  while (off + WAL_HDR <= size && n < max) {
    off_t left = WAL_BLOCK - off % WAL_BLOCK;
    if (left < WAL_HDR) {
      off += left; /* block trailer */
      continue;
    }
    uint8_t h[WAL_RHDR];
    if (pread(fd, h, WAL_HDR, off) != WAL_HDR)
      break;
    unsigned len = h[4] | (unsigned)h[5] << 8, type = h[6];
    if (type == 0 && len == 0)
      break; /* preallocated zeros: the end */
    unsigned hdr = type >= 5 && type <= 8 ? WAL_RHDR : WAL_HDR;
    if (type == 1 || type == 2 || type == 5 || type == 6)
      out[n++] = off;
    off += hdr + len;
  }
  close(fd);
  return n;
}

/* ---- the store -------------------------------------------------------------- */

static int body_of(char *buf, size_t cap, uint64_t i) {
  return hist_body(buf, cap, 'p', 7, i, (size_t)(i * 977 % BODY_PAD_MAX));
}

static int build_store(run_t *r, srv_t *s, expect_t *ex) {
  ex->n = GEN_MSGS * GENERATIONS;
  ex->state = calloc(ex->n, 1);
  if (!ex->state)
    return -1;
  static char body[HIST_TAG_MAX + BODY_PAD_MAX + 8];
  uint64_t next = 0;
  for (int g = 0; g < GENERATIONS; g++) {
    if (srv_start(s) != 0) {
      run_log(r, "error: cannot start gearboxd: %s", srv_error(s));
      return -1;
    }
    gbx_error_t e;
    gbx_client_t *c = gbx_connect("127.0.0.1", srv_port_now(s), &e);
    if (!c)
      return -1;
    gbx_set_timeout(c, 30000);
    gbx_queue_attrs_t a = {.set = GBX_QA_VISIBILITY, .visibility_timeout = 1};
    if (g == 0 && gbx_queue_create(c, QUEUE, &a, NULL, 0, NULL, &e) != GBX_E_OK)
      goto cfail;
    for (int i = 0; i < GEN_MSGS; i++, next++) {
      int len = body_of(body, sizeof body, next);
      if (gbx_queue_send(c, QUEUE, body, (size_t)len, NULL, 0, 0, NULL, &e) != GBX_E_OK)
        goto cfail;
      ex->state[next] = 1;
    }
    if (g == GENERATIONS - 1) {
      gbx_message_t *m = NULL;
      size_t n = 0, got = 0, deleted = 0;
      while (got < LAST_RECEIVED) {
        if (gbx_queue_receive(c, QUEUE, (uint32_t)(LAST_RECEIVED - got), 1, 0, &m, &n, &e) !=
                GBX_E_OK ||
            n == 0)
          goto cfail;
        for (size_t i = 0; i < n; i++, got++) {
          if (deleted >= LAST_DELETED)
            continue;
          uint64_t k = hist_parse_body(m[i].body, m[i].body_len);
          if (gbx_message_delete(c, QUEUE, m[i].receipt, &e) != GBX_E_OK)
            goto cfail;
          ex->state[k & HIST_MAX_SEQ] = 2;
          deleted++;
        }
        gbx_messages_free(m);
        m = NULL;
      }
    }
    gbx_close(c);
    if (run_stop_clean(r, s) != 0)
      return -1;
    continue;
  cfail:
    run_log(r, "error: building the store: %s", e.message);
    gbx_close(c);
    return -1;
  }
  return 0;
}

/* ---- one case ------------------------------------------------------------- */

typedef struct kase {
  char name[64];
  char file[64]; /* basename in the store */
  enum {
    OP_CUT,
    OP_FLIP,
    OP_ZERO,
    OP_WAL_CUT_RECORDS, /* cut at the start of the arg-th record from the end */
    OP_ZERO_RECORDS,    /* zero from the start of the arg-th record from the end */
    OP_FLIP_RECORD_LEN, /* make the arg-th record from the end claim 32 KiB more */
  } op;
  off_t off; /* byte offset; < 0 counts from the end */
  long arg;  /* flip: bit; zero: length; wal cut: records dropped */
} kase_t;

static int damage(run_t *r, const char *dir, const kase_t *k, char *what, size_t cap) {
  char path[PATH_MAX];
  off_t size = join(path, sizeof path, dir, k->file) ? -1 : file_size(path);
  if (size <= 0) {
    snprintf(what, cap, "%s is missing or empty", k->file);
    return -1;
  }
  off_t off = k->off < 0 ? size + k->off : k->off;
  if (off < 0)
    off = 0;
  if (off >= size && k->op < OP_WAL_CUT_RECORDS)
    off = size - 1;
  switch (k->op) {
  case OP_CUT:
    snprintf(what, cap, "cut %s from %lld to %lld bytes", k->file, (long long)size, (long long)off);
    return truncate(path, off);
  case OP_FLIP:
    snprintf(what, cap, "flipped bit %ld at byte %lld of %s (%lld bytes)", k->arg & 7,
             (long long)off, k->file, (long long)size);
    return flip_at(path, off, (unsigned)k->arg);
  case OP_ZERO: {
    /* damage, not growth: never write past the end */
    long len = k->arg < size - off ? k->arg : (long)(size - off);
    snprintf(what, cap, "zeroed %ld bytes at %lld of %s (%lld bytes)", len, (long long)off, k->file,
             (long long)size);
    return zero_at(path, off, (size_t)len);
  }
  case OP_WAL_CUT_RECORDS: {
    static off_t rec[MAX_RECORDS];
    int n = wal_records(path, rec, MAX_RECORDS);
    if (n <= 0) {
      snprintf(what, cap, "%s holds no records", k->file);
      return -1;
    }
    int drop = (int)(k->arg > 0 ? k->arg : (n + 1) / 2);
    if (drop > n)
      drop = n;
    off_t at = rec[n - drop];
    snprintf(what, cap,
             "cut %s at a record boundary: %d of %d records dropped (%lld -> %lld bytes)", k->file,
             drop, n, (long long)size, (long long)at);
    return truncate(path, at);
  }
  case OP_ZERO_RECORDS:
  case OP_FLIP_RECORD_LEN: {
    /* records of the RocksDB log format (the WAL and the MANIFEST) */
    static off_t rec[MAX_RECORDS];
    int n = wal_records(path, rec, MAX_RECORDS);
    if (n < k->arg || k->arg < 1) {
      snprintf(what, cap, "%s holds %d records", k->file, n);
      return -1;
    }
    off_t at = rec[n - k->arg];
    if (k->op == OP_ZERO_RECORDS) {
      snprintf(what, cap, "zeroed %s from its record %d of %d (byte %lld) to its end (%lld)",
               k->file, n - (int)k->arg + 1, n, (long long)at, (long long)size);
      return zero_at(path, at, (size_t)(size - at));
    }
    /* bit 7 of the length's high byte (header bytes 4-5, little-endian) */
    snprintf(what, cap, "flipped the top bit of the length of record %d of %d in %s (byte %lld)",
             n - (int)k->arg + 1, n, k->file, (long long)at + 5);
    return flip_at(path, at + 5, 7);
  }
  }
  (void)r;
  return -1;
}

/* Drains the damaged store's queue, judging what it serves. */
static void judge_started(run_t *r, srv_t *s, const expect_t *ex, const char *name) {
  gbx_error_t e;
  gbx_client_t *c = gbx_connect("127.0.0.1", srv_port_now(s), &e);
  uint8_t *seen = calloc(ex->n, 1);
  uint64_t served = 0, resurrected = 0, foreign = 0, dup = 0, want = 0;
  int loud = 0;
  char why[300] = "";
  for (size_t i = 0; i < ex->n; i++)
    want += ex->state[i] == 1;
  if (!c || !seen) {
    run_log(r, "  %s: error: cannot connect to the started server", name);
    free(seen);
    gbx_close(c);
    return;
  }
  gbx_set_timeout(c, DRAIN_TIMEOUT_MS);
  int64_t deadline = srv_now_us() + (int64_t)DRAIN_TIMEOUT_MS * 1000;
  for (;;) {
    gbx_message_t *m = NULL;
    size_t n = 0;
    int code = gbx_queue_receive(c, QUEUE, GBX_MAX_RECEIVE, 600, 0, &m, &n, &e);
    if (code != GBX_E_OK) {
      loud = 1;
      snprintf(why, sizeof why, "receive failed: %s (%s)", e.message, gbx_errname(code));
      break;
    }
    gbx_receipt_entry_t ent[GBX_MAX_RECEIVE];
    gbx_batch_result_t res[GBX_MAX_RECEIVE];
    for (size_t i = 0; i < n; i++) {
      ent[i] = (gbx_receipt_entry_t){NULL, m[i].receipt, 0};
      uint64_t k = hist_parse_body(m[i].body, m[i].body_len);
      uint64_t idx = k & HIST_MAX_SEQ;
      if (k == HIST_KEY_BAD || idx >= ex->n || !ex->state[idx] || (k >> 40 & 0xfffff) != 7)
        foreign++;
      else if (ex->state[idx] == 2)
        resurrected++;
      else if (seen[idx]++)
        dup++;
      else
        served++;
    }
    /* delete what was served, so the queue's counters reach zero */
    code = n ? gbx_message_delete_batch(c, QUEUE, ent, n, res, &e) : GBX_E_OK;
    gbx_messages_free(m);
    if (code != GBX_E_OK) {
      loud = 1;
      snprintf(why, sizeof why, "delete failed: %s (%s)", e.message, gbx_errname(code));
      break;
    }
    if (srv_now_us() > deadline)
      break;
    if (n == 0) {
      /* messages received just before the stop come back when their 1 s
       * visibility ends: wait for the queue's counters to read zero */
      gbx_stats_t st;
      if ((code = gbx_stats(c, QUEUE, &st, &e)) != GBX_E_OK) {
        loud = 1;
        snprintf(why, sizeof why, "stats failed: %s (%s)", e.message, gbx_errname(code));
        break;
      }
      uint64_t left = 0;
      for (size_t i = 0; i < st.nqueues; i++)
        left += st.queues[i].visible + st.queues[i].inflight + st.queues[i].delayed;
      gbx_stats_free(&st);
      if (left == 0)
        break;
      srv_sleep_ms(100);
    }
  }
  gbx_close(c);
  free(seen);
  if (!loud && !srv_running(s)) {
    loud = 1;
    snprintf(why, sizeof why, "the server stopped: %s", srv_error(s));
  }
  if (loud) {
    run_log(r, "  %s: LOUD after serving %" PRIu64 "/%" PRIu64 ": %s", name, served, want, why);
  } else if (served == want && !resurrected && !foreign && !dup) {
    run_log(r, "  %s: RECOVERED (%" PRIu64 "/%" PRIu64 " acknowledged messages)", name, served,
            want);
  } else {
    run_log(r,
            "  %s: SILENT: served %" PRIu64 "/%" PRIu64 " acknowledged messages without an "
            "error, %" PRIu64 " deleted ones, %" PRIu64 " unknown bodies, %" PRIu64 " twice",
            name, served, want, resurrected, foreign, dup);
    run_found(r, "silent-loss", want - served);
    run_found(r, "resurrected", resurrected);
    run_found(r, "silent-corruption", foreign + dup);
  }
  if (srv_running(s)) {
    int code;
    if (srv_stop(s, &code) == 0 && code != 0)
      run_log(r, "  %s: (stopped with exit code %d)", name, code);
  }
}

static void run_case(run_t *r, srv_t *s, const char *pristine, const expect_t *ex, const kase_t *k,
                     unsigned *outcomes) {
  char what[256];
  if (copy_dir(pristine, r->data) != 0) {
    run_log(r, "  %s: error: cannot copy the store", k->name);
    return;
  }
  if (damage(r, r->data, k, what, sizeof what) != 0) {
    run_log(r, "  %s: skipped (%s)", k->name, what);
    return;
  }
  run_log(r, "case %s: %s", k->name, what);
  int code = 0;
  static char out[65536]; /* room for a sanitizer report after the message */
  int t = srv_try_start(s, &code, out, sizeof out);
  if (t < 0) {
    run_log(r, "  %s: error: %s", k->name, srv_error(s));
    return;
  }
  if (t == 1) {
    char *line = strstr(out, " ERROR "); /* gearboxd's log line */
    if (!line)
      line = out;
    else
      line++;
    line[strcspn(line, "\n")] = '\0';
    if (code == 0 || !*line) {
      run_log(r, "  %s: refused to start with exit code %d and %s", k->name, code,
              *line ? "a message" : "no message");
      run_found(r, "quiet-refusal", 1);
    } else {
      run_log(r, "  %s: REFUSED (exit %d): %.200s", k->name, code, line);
      outcomes[0]++;
    }
    return;
  }
  judge_started(r, s, ex, k->name);
  outcomes[1]++;
}

/* 1 if the file holds the bytes of s. */
static int file_has(const char *path, const char *s) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  static char buf[1 << 20];
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  return n > 0 && memmem(buf, (size_t)n, s, strlen(s)) != NULL;
}

/* The largest SST of one column family, told by what it holds: its
 * properties name the family ("idx", "body", "default") and body SSTs hold
 * the message tags. Returns 1 with the name in out. */
static int sst_holding(const char *dir, const char *must, const char *const *must_not,
                       char out[64]) {
  char sst[64][64];
  int ns = list_files(dir, ".sst", 0, sst, 64), found = 0;
  off_t best = -1;
  for (int i = 0; i < ns; i++) {
    char p[PATH_MAX];
    if (join(p, sizeof p, dir, sst[i]) || !file_has(p, must))
      continue;
    int bad = 0;
    for (int k = 0; must_not[k]; k++)
      bad |= file_has(p, must_not[k]);
    if (!bad && file_size(p) > best) {
      best = file_size(p);
      memcpy(out, sst[i], 64);
      found = 1;
    }
  }
  return found;
}

/* 1 if name starts with one of the comma-separated prefixes in list. */
static int name_in(const char *name, const char *list) {
  for (const char *p = list; *p;) {
    size_t n = strcspn(p, ",");
    if (n && strncmp(name, p, n) == 0)
      return 1;
    p += n + (p[n] == ',');
  }
  return 0;
}

/* 1 if the --only/--skip filters let the case called name run. */
static int selected(const run_t *r, const char *name) {
  return (!r->o.only || name_in(name, r->o.only)) && (!r->o.skip || !name_in(name, r->o.skip));
}

/* The fixed cases, on the files of the pristine store. */
static int fixed_cases(const char *dir, kase_t *v, int max) {
  char wal[8][64], sst[64][64], man[4][64];
  int nw = list_files(dir, ".log", 0, wal, 8), ns = list_files(dir, ".sst", 0, sst, 64);
  int nm = list_files(dir, "MANIFEST-", 1, man, 4);
  int n = 0;
#define ADD(nm_, file_, op_, off_, arg_)                                                           \
  do {                                                                                             \
    if (n < max) {                                                                                 \
      kase_t *k_ = &v[n++];                                                                        \
      snprintf(k_->name, sizeof k_->name, "%s", nm_);                                              \
      snprintf(k_->file, sizeof k_->file, "%s", file_);                                            \
      k_->op = op_;                                                                                \
      k_->off = off_;                                                                              \
      k_->arg = arg_;                                                                              \
    }                                                                                              \
  } while (0)
  if (nw) {
    const char *w = wal[nw - 1]; /* the newest */
    ADD("wal-truncate-1-record", w, OP_WAL_CUT_RECORDS, 0, 1);
    ADD("wal-truncate-2-records", w, OP_WAL_CUT_RECORDS, 0, 2);
    ADD("wal-truncate-10-records", w, OP_WAL_CUT_RECORDS, 0, 10);
    ADD("wal-truncate-half", w, OP_WAL_CUT_RECORDS, 0, 0);
    ADD("wal-torn-tail", w, OP_CUT, -5, 0);
    ADD("wal-flip-middle", w, OP_FLIP, 0, 3);
    ADD("wal-flip-last-record", w, OP_FLIP, -3, 5);
    ADD("wal-zero-middle", w, OP_ZERO, 0, ZERO_CHUNK);
    ADD("wal-truncate-zero-tail", w, OP_ZERO_RECORDS, 0, 2);
  }
  if (ns) {
    /* the largest SST holds the most data blocks */
    char best[64] = "";
    off_t bs = -1;
    for (int i = 0; i < ns; i++) {
      char p[PATH_MAX];
      if (!join(p, sizeof p, dir, sst[i]) && file_size(p) > bs) {
        bs = file_size(p);
        memcpy(best, sst[i], sizeof best);
      }
    }
    ADD("sst-zero-head", best, OP_ZERO, 0, ZERO_CHUNK);
    ADD("sst-zero-middle", best, OP_ZERO, 0, ZERO_CHUNK);
    ADD("sst-zero-footer", best, OP_ZERO, -64, 64);
    ADD("sst-flip-middle", best, OP_FLIP, 0, 1);
    ADD("sst-truncate", best, OP_CUT, 0, 0);
  }
  char idx[64], meta[64];
  static const char *const not_idx[] = {"p7-", "default", NULL};
  static const char *const not_meta[] = {"p7-", "idx", NULL};
  if (sst_holding(dir, "idx", not_idx, idx))
    ADD("sst-idx-zero-quarter", idx, OP_ZERO, 0, 64);
  if (sst_holding(dir, "default", not_meta, meta))
    ADD("sst-meta-zero-middle", meta, OP_ZERO, 0, 64);
  if (nm) {
    ADD("manifest-zero-middle", man[nm - 1], OP_ZERO, 0, 64);
    ADD("manifest-truncate-half", man[nm - 1], OP_CUT, 0, 0);
    /* the last record: RocksDB cannot tell damage there from a torn write */
    ADD("manifest-tail-length-flip", man[nm - 1], OP_FLIP_RECORD_LEN, 0, 1);
    ADD("manifest-tail-zero", man[nm - 1], OP_ZERO_RECORDS, 0, 1);
  }
  ADD("current-zero", "CURRENT", OP_ZERO, 0, 16);
  /* offsets "middle"/"half"/"quarter" are resolved against the real size */
  for (int i = 0; i < n; i++) {
    char p[PATH_MAX];
    off_t size = join(p, sizeof p, dir, v[i].file) ? 0 : file_size(p);
    if (strstr(v[i].name, "middle") || strstr(v[i].name, "half") ||
        !strcmp(v[i].name, "sst-truncate"))
      v[i].off = size / 2;
    if (strstr(v[i].name, "quarter"))
      v[i].off = size / 4; /* in the data blocks */
  }
  return n;
#undef ADD
}

/* A random case on a random file of the store. */
static void random_case(run_t *r, const char *dir, unsigned i, kase_t *k) {
  char files[96][64];
  int n = list_files(dir, "", 1, files, 96), m = 0;
  for (int j = 0; j < n; j++)
    if (strncmp(files[j], "LOG", 3) && strcmp(files[j], "LOCK") && strncmp(files[j], "OPTIONS", 7))
      memcpy(files[m++], files[j], 64);
  char f[64] = "CURRENT";
  if (m)
    memcpy(f, files[run_rand(r) % (uint64_t)m], sizeof f);
  char p[PATH_MAX];
  off_t size = join(p, sizeof p, dir, f) ? 0 : file_size(p);
  memcpy(k->file, f, sizeof k->file);
  k->off = size > 0 ? (off_t)(run_rand(r) % (uint64_t)size) : 0;
  switch (run_rand(r) % 4) {
  case 0:
    k->op = OP_FLIP;
    k->arg = (long)(run_rand(r) % 8);
    break;
  case 1:
    k->op = OP_ZERO;
    k->arg = (long)(1 + run_rand(r) % ZERO_CHUNK);
    break;
  case 2:
    k->op = OP_CUT;
    break;
  default:
    k->op = strstr(f, ".log") ? OP_WAL_CUT_RECORDS : OP_FLIP;
    k->arg = (long)(k->op == OP_WAL_CUT_RECORDS ? 1 + run_rand(r) % 20 : run_rand(r) % 8);
    break;
  }
  static const char *const ops[] = {"cut", "flip", "zero", "wal-cut", "zero-records", "len-flip"};
  /* Damage at the end of the WAL or of the MANIFEST is a known blind spot
   * (README: known server bugs): such cases get the fixed cases' prefixes,
   * so --skip/--only select them together. */
  int is_wal = strstr(f, ".log") != NULL, is_man = strncmp(f, "MANIFEST-", 9) == 0;
  off_t last = -1, end = k->op == OP_ZERO ? k->off + k->arg : k->op == OP_FLIP ? k->off + 1 : size;
  if (is_wal || is_man) {
    static off_t rec[MAX_RECORDS];
    int nr = wal_records(p, rec, MAX_RECORDS);
    if (nr > 0)
      last = rec[nr - 1];
  }
  int cut = k->op == OP_CUT || k->op >= OP_WAL_CUT_RECORDS;
  const char *prefix = "";
  if (is_wal && (cut || end >= size))
    prefix = "wal-truncate-";
  else if (is_man && (cut || (last >= 0 && end > last)))
    prefix = "manifest-tail-";
  snprintf(k->name, sizeof k->name, "%srandom-%u-%s-%.30s", prefix, i, ops[k->op], f);
}

int scen_corrupt(run_t *r) {
  int res = RUN_ERROR;
  expect_t ex = {0};
  char pristine[PATH_MAX + 16];
  snprintf(pristine, sizeof pristine, "%s/pristine", r->dir);
  srv_cfg_t cfg;
  run_srv_cfg(r, &cfg);
  srv_t *s = srv_new(&cfg), *sc = NULL;
  static kase_t cases[MAX_CASES];
  unsigned outcomes[2] = {0, 0};
  if (!s || build_store(r, s, &ex) != 0)
    goto done;
  /* The damaged stores get their own server settings: with
   * --allow-refusal-leak, LeakSanitizer is off there, because gearboxd
   * leaks its store and broker when it refuses to start (server_start has no
   * cleanup path); the known-failing test runs without it. */
  char asan_opts[1024];
  if (r->o.allow_refusal_leak) {
    const char *inherited = getenv("ASAN_OPTIONS");
    snprintf(asan_opts, sizeof asan_opts, "ASAN_OPTIONS=%s%sdetect_leaks=0",
             inherited ? inherited : "", inherited && *inherited ? ":" : "");
    cfg.env[0] = asan_opts;
  }
  if (!(sc = srv_new(&cfg)))
    goto done;
  if (copy_dir(r->data, pristine) != 0) {
    run_log(r, "error: cannot copy the store");
    goto done;
  }
  uint64_t want = 0;
  for (size_t i = 0; i < ex.n; i++)
    want += ex.state[i] == 1;
  run_log(r, "store built: %" PRIu64 " acknowledged messages in %d clean runs", want, GENERATIONS);
  /* the fixed cases the filters select, then random ones until --cycles
   * cases are selected (a random case the filters drop does not count) */
  int n = 0, nf = fixed_cases(pristine, cases, MAX_CASES);
  for (int i = 0; i < nf; i++)
    if (selected(r, cases[i].name))
      cases[n++] = cases[i];
  for (unsigned i = 0; (unsigned)n < r->o.cycles && n < MAX_CASES && i < RANDOM_TRIES * r->o.cycles;
       i++) {
    random_case(r, pristine, i, &cases[n]);
    n += selected(r, cases[n].name);
  }
  unsigned ran = 0;
  for (int i = 0; i < n; i++, ran++)
    run_case(r, sc, pristine, &ex, &cases[i], outcomes);
  run_log(r,
          "%u cases: %u refused to start, %u started (recovered or loud unless a violation "
          "is listed)",
          ran, outcomes[0], outcomes[1]);
  res = RUN_PASS;
done:
  if (s)
    run_check_sanitizers(r, s); /* the log is shared: this covers sc too */
  srv_free(s);
  srv_free(sc);
  free(ex.state);
  return res;
}
