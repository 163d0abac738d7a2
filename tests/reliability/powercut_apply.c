/* powercut_apply.c - gbx-powercut-apply: turns a store into what a power cut
 * would have left of it, from the state libgbxpowercut.so kept (pcstate.h).
 *
 *   gbx-powercut-apply [--side DIR] [--seed N] [--no-torn] [--allow-missing] DATA_DIR
 *
 * Run it after gearboxd died (SIGKILL), before the next start:
 *  - every name that is not in the durable namespace is removed (a creation
 *    or rename not followed by a directory sync);
 *  - every durable name gets its durable content back: a file still holding
 *    the same inode with the durable content as a prefix is cut back to it,
 *    keeping (on a coin toss from the seed) a torn prefix of the unsynced
 *    tail; any other (renamed over, deleted, overwritten) is rewritten from
 *    its shadow copy;
 *  - the side directory is removed, so the next start of the shim takes the
 *    result as durable.
 * Info logs ("LOG*") are left alone. Prints one summary line. Exit status 0,
 * or 2 with a message on stderr. --allow-missing: a side directory without
 * a names file (gearboxd was killed before the shim finished starting, so
 * before anything was written) is nothing to undo, not an error.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pcstate.h"

/* Bytes compared or copied per read. */
#define IO_CHUNK (256 * 1024)

typedef struct entry {
  uint64_t sid, dev, ino;
  char name[NAME_MAX + 1];
} entry_t;

static uint64_t rng;

static uint64_t rnd(void) {
  uint64_t x = rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rng = x;
  return x * UINT64_C(2685821657736338717);
}

static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "gbx-powercut-apply: ");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(2);
}

/* Reads the durable namespace; returns the entries (count in *n). */
static entry_t *read_names(const char *side, size_t *n, int allow_missing) {
  char path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/%s", side, PC_NAMES);
  FILE *f = fopen(path, "re");
  if (!f && errno == ENOENT && allow_missing) {
    printf("power cut: the shim had not finished starting: nothing to undo\n");
    exit(0);
  }
  if (!f)
    fail("no power-cut state in %s (%s): was gearboxd run with the shim?", side, strerror(errno));
  char line[NAME_MAX + 128];
  if (!fgets(line, sizeof line, f) || strncmp(line, PC_NAMES_MAGIC "\n", sizeof PC_NAMES_MAGIC))
    fail("%s: not a power-cut names file", path);
  entry_t *v = NULL;
  size_t cap = 0;
  *n = 0;
  while (fgets(line, sizeof line, f)) {
    if (*n == cap) {
      cap = cap ? cap * 2 : 64;
      if (!(v = realloc(v, cap * sizeof *v)))
        fail("out of memory");
    }
    entry_t *e = &v[*n];
    if (sscanf(line, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %255s", &e->sid, &e->dev, &e->ino,
               e->name) != 4)
      fail("%s: bad line '%s'", path, line);
    (*n)++;
  }
  fclose(f);
  return v;
}

static const entry_t *find(const entry_t *v, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(v[i].name, name))
      return &v[i];
  return NULL;
}

/* 1 if the first len bytes of a and b are equal. */
static int same_prefix(int a, int b, uint64_t len) {
  static char ba[IO_CHUNK], bb[IO_CHUNK];
  for (uint64_t off = 0; off < len;) {
    size_t want = len - off > IO_CHUNK ? IO_CHUNK : (size_t)(len - off);
    ssize_t x = pread(a, ba, want, (off_t)off), y = pread(b, bb, want, (off_t)off);
    if (x != (ssize_t)want || y != (ssize_t)want || memcmp(ba, bb, want))
      return 0;
    off += want;
  }
  return 1;
}

/* Writes the shadow's content (fd sfd, or empty when -1) to dir/name. */
static void restore(int dfd, const char *name, int sfd) {
  char tmp[NAME_MAX + 16];
  snprintf(tmp, sizeof tmp, ".%s.pc-tmp", name);
  int out = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0)
    fail("create %s: %s", tmp, strerror(errno));
  static char buf[IO_CHUNK];
  for (off_t off = 0; sfd >= 0;) {
    ssize_t got = pread(sfd, buf, sizeof buf, off);
    if (got < 0)
      fail("read shadow of %s: %s", name, strerror(errno));
    if (got == 0)
      break;
    if (write(out, buf, (size_t)got) != got)
      fail("write %s: %s", tmp, strerror(errno));
    off += got;
  }
  close(out);
  if (renameat(dfd, tmp, dfd, name) != 0)
    fail("rename %s: %s", tmp, strerror(errno));
}

static int rm_entry(const char *p, const struct stat *sb, int f, struct FTW *w) {
  (void)sb;
  (void)f;
  (void)w;
  remove(p);
  return 0;
}

int main(int argc, char **argv) {
  const char *side_opt = NULL, *data = NULL;
  uint64_t seed = 1;
  int torn_ok = 1, allow_missing = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--side") && i + 1 < argc)
      side_opt = argv[++i];
    else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
      seed = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--no-torn"))
      torn_ok = 0;
    else if (!strcmp(argv[i], "--allow-missing"))
      allow_missing = 1;
    else if (argv[i][0] != '-' && !data)
      data = argv[i];
    else
      fail("usage: gbx-powercut-apply [--side DIR] [--seed N] [--no-torn] [--allow-missing] "
           "DATA_DIR");
  }
  if (!data)
    fail(
        "usage: gbx-powercut-apply [--side DIR] [--seed N] [--no-torn] [--allow-missing] DATA_DIR");
  char side[PATH_MAX];
  if (side_opt)
    snprintf(side, sizeof side, "%s", side_opt);
  else
    snprintf(side, sizeof side, "%s%s", data, PC_SIDE_SUFFIX);
  rng = seed * UINT64_C(0x9E3779B97F4A7C15) | 1;

  size_t n;
  entry_t *dur = read_names(side, &n, allow_missing);
  int dfd = open(data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    fail("open %s: %s", data, strerror(errno));

  /* 1. names created (or renamed into place) since the last directory sync */
  uint64_t removed = 0;
  DIR *d = fdopendir(dup(dfd));
  if (!d)
    fail("opendir %s: %s", data, strerror(errno));
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || pc_unmanaged(de->d_name))
      continue;
    if (find(dur, n, de->d_name))
      continue;
    if (unlinkat(dfd, de->d_name, 0) != 0)
      fail("unlink %s: %s", de->d_name, strerror(errno));
    removed++;
  }
  closedir(d);

  /* 2. every durable name back to its durable content */
  uint64_t durable_bytes = 0, dropped = 0, cut = 0, torn = 0, torn_bytes = 0, restored = 0;
  for (size_t i = 0; i < n; i++) {
    const entry_t *e = &dur[i];
    char sp[PATH_MAX + 64];
    snprintf(sp, sizeof sp, "%s/%s/%" PRIu64, side, PC_SHADOW_DIR, e->sid);
    int sfd = open(sp, O_RDONLY | O_CLOEXEC);
    if (sfd < 0 && errno != ENOENT)
      fail("open %s: %s", sp, strerror(errno));
    struct stat ss = {0}, cs;
    if (sfd >= 0 && fstat(sfd, &ss) != 0)
      fail("stat %s: %s", sp, strerror(errno));
    uint64_t dsize = (uint64_t)ss.st_size;
    durable_bytes += dsize;
    int cfd = openat(dfd, e->name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    int same = cfd >= 0 && fstat(cfd, &cs) == 0 && (uint64_t)cs.st_dev == e->dev &&
               (uint64_t)cs.st_ino == e->ino && (uint64_t)cs.st_size >= dsize &&
               (sfd < 0 || same_prefix(cfd, sfd, dsize));
    if (same) {
      uint64_t extra = (uint64_t)cs.st_size - dsize, keep = 0;
      if (torn_ok && extra && rnd() % 2)
        keep = 1 + rnd() % extra;
      if (keep < extra) {
        if (ftruncate(cfd, (off_t)(dsize + keep)) != 0)
          fail("truncate %s: %s", e->name, strerror(errno));
        cut++;
        dropped += extra - keep;
      }
      if (keep) {
        torn++;
        torn_bytes += keep;
      }
    } else {
      restore(dfd, e->name, sfd);
      restored++;
    }
    if (cfd >= 0)
      close(cfd);
    if (sfd >= 0)
      close(sfd);
  }
  if (fsync(dfd) != 0)
    fail("fsync %s: %s", data, strerror(errno));
  close(dfd);
  nftw(side, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  printf("power cut: %zu durable files (%" PRIu64 " bytes); cut back %" PRIu64 " (dropped %" PRIu64
         " unsynced bytes, %" PRIu64 " torn tails of %" PRIu64 " bytes kept); restored %" PRIu64
         "; removed %" PRIu64 " unsynced names\n",
         n, durable_bytes, cut, dropped, torn, torn_bytes, restored, removed);
  free(dur);
  return 0;
}
