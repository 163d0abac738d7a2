/* powercut.c - libgbxpowercut.so, an LD_PRELOAD layer that records what a
 * power cut would leave of the files under one directory ($GBX_PC_DIR).
 *
 * kill -9 keeps everything the process wrote (the page cache survives), so
 * it cannot find a missing sync. This layer follows the files of the data
 * dir through the calls that change them and keeps, in a side directory
 * (pcstate.h), exactly what a strict POSIX file system promises to keep:
 *
 *  - file content is durable as of the file's last fsync/fdatasync: at each
 *    one the ranges written since (write, pwrite, writev, pwritev, fallocate
 *    zeroing) and size changes (ftruncate, fallocate, O_TRUNC) are copied to
 *    the file's shadow copy; sync_file_range and close make nothing durable;
 *  - directory entries (creations, renames, unlinks) are durable as of the
 *    last fsync of the directory: at each one the directory is listed and
 *    its entries, each naming the shadow of its inode, become the durable
 *    namespace.
 *
 * Content is followed per inode lineage (a "sid"), not per name, so a rename
 * moves durable content with the file and a new file that reuses a deleted
 * file's inode number starts a new lineage. sync()/syncfs() make everything
 * durable. What the layer cannot follow makes it abort loudly rather than
 * emulate wrongly: a writable shared mmap of a followed file, copy_file_range
 * or sendfile into one, an fd beyond its table. Subdirectories are not
 * emulated (RocksDB keeps a flat directory); their use is noted in the log.
 *
 * gbx-powercut-apply (powercut_apply.c) turns the side directory into the
 * state after a power cut once gearboxd is dead. Every start of the library
 * wipes the side directory and takes what is on disk as durable: the test
 * applies a power cut after each kill, so that is the truth.
 *
 * Fault injection (a failing disk): with GBX_PC_FAIL=write or sync, the
 * GBX_PC_FAIL_AT-th (1-based, default 1) write (write, pwrite, writev,
 * pwritev*) or fsync/fdatasync on a followed file since the start fails with
 * GBX_PC_FAIL_ERRNO (EIO, the default, or ENOSPC), and with
 * GBX_PC_FAIL_STICKY=1 every later one of that kind too. A failed write
 * writes nothing; a failed sync makes nothing durable and, as Linux does
 * after a writeback error, forgets the dirty ranges, so a retried sync that
 * "succeeds" does not make them durable either (the power cut loses them).
 * The fault is announced on stderr (gearboxd's log) and in the side log.
 *
 * Under gcc's ASan put libasan first in LD_PRELOAD: its interceptors then
 * call this layer's functions as the "real" ones, which call libc's. This
 * library must itself be built without sanitizers (see CMakeLists.txt).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "pcstate.h"

/* Descriptors the table follows directly: RocksDB and gearboxd stay far
 * below this; an fd above it on a followed file aborts. */
#define PC_FD_MAX 65536
/* Dirty ranges kept per file before it counts as dirty all over: the WAL and
 * SST files are written sequentially and merge into one or two ranges. */
#define PC_MAX_RANGES 256
/* Copy buffer for shadow updates (used under the lock). */
#define PC_COPY_BUF (256 * 1024)

typedef struct range {
  uint64_t off, end;
} range_t;

/* One inode lineage: a file's content history from its creation. */
typedef struct frec {
  struct frec *next;
  uint64_t sid;
  dev_t dev;
  ino_t ino;
  int live;             /* its inode is still linked under the root */
  int durable;          /* named by the durable namespace */
  int nfd;              /* descriptors in the table pointing to it */
  int all_dirty;        /* too many ranges, or a write we could not place */
  uint64_t trunc_to;    /* smallest size set since the last sync (UINT64_MAX: none) */
  uint64_t ext_size;    /* largest size set by ftruncate/fallocate since then */
  uint64_t shadow_size; /* size of the durable content */
  range_t r[PC_MAX_RANGES];
  size_t nr;
} frec_t;

/* The table's mark for a descriptor of the root directory itself. */
static frec_t dir_root_mark;
#define DIR_ROOT (&dir_root_mark)

static _Atomic(frec_t *) fdt[PC_FD_MAX];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static frec_t *recs;
static uint64_t next_sid = 1;
static int active;
static char root[PATH_MAX], root_real[PATH_MAX], side[PATH_MAX];
static size_t root_len, root_real_len;
static char copybuf[PC_COPY_BUF];
static __thread int in_shim __attribute__((tls_model("initial-exec")));
static int noted_subdir;

/* ---- the real functions ---------------------------------------------------- */

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void *resolve(const char *name) {
  void *p = dlsym(RTLD_NEXT, name);
  if (!p)
    die("dlsym(RTLD_NEXT, %s) failed", name);
  return p;
}

/* The next definition of a function (libc's), looked up on first use. */
static void *real_get(void **slot, const char *name) {
  void *p = atomic_load((_Atomic(void *) *)slot);
  if (!p) {
    p = resolve(name);
    atomic_store((_Atomic(void *) *)slot, p);
  }
  return p;
}

#define REAL_DECL(ret, name, ...) static ret (*real_##name)(__VA_ARGS__)
#define REAL(name)                ((__typeof__(real_##name))real_get((void **)&real_##name, #name))

REAL_DECL(int, open, const char *, int, ...);
REAL_DECL(int, open64, const char *, int, ...);
REAL_DECL(int, __open_2, const char *, int);
REAL_DECL(int, __open64_2, const char *, int);
REAL_DECL(int, openat, int, const char *, int, ...);
REAL_DECL(int, openat64, int, const char *, int, ...);
REAL_DECL(int, __openat_2, int, const char *, int);
REAL_DECL(int, __openat64_2, int, const char *, int);
REAL_DECL(int, creat, const char *, mode_t);
REAL_DECL(int, creat64, const char *, mode_t);
REAL_DECL(ssize_t, write, int, const void *, size_t);
REAL_DECL(ssize_t, pwrite, int, const void *, size_t, off_t);
REAL_DECL(ssize_t, pwrite64, int, const void *, size_t, off_t);
REAL_DECL(ssize_t, writev, int, const struct iovec *, int);
REAL_DECL(ssize_t, pwritev, int, const struct iovec *, int, off_t);
REAL_DECL(ssize_t, pwritev64, int, const struct iovec *, int, off_t);
REAL_DECL(ssize_t, pwritev2, int, const struct iovec *, int, off_t, int);
REAL_DECL(ssize_t, pwritev64v2, int, const struct iovec *, int, off_t, int);
REAL_DECL(int, ftruncate, int, off_t);
REAL_DECL(int, ftruncate64, int, off_t);
REAL_DECL(int, fallocate, int, int, off_t, off_t);
REAL_DECL(int, fallocate64, int, int, off_t, off_t);
REAL_DECL(int, posix_fallocate, int, off_t, off_t);
REAL_DECL(int, posix_fallocate64, int, off_t, off_t);
REAL_DECL(int, fsync, int);
REAL_DECL(int, fdatasync, int);
REAL_DECL(void, sync, void);
REAL_DECL(int, syncfs, int);
REAL_DECL(int, rename, const char *, const char *);
REAL_DECL(int, renameat, int, const char *, int, const char *);
REAL_DECL(int, renameat2, int, const char *, int, const char *, unsigned);
REAL_DECL(int, unlink, const char *);
REAL_DECL(int, unlinkat, int, const char *, int);
REAL_DECL(int, close, int);
REAL_DECL(void *, mmap, void *, size_t, int, int, int, off_t);
REAL_DECL(void *, mmap64, void *, size_t, int, int, int, off_t);
REAL_DECL(ssize_t, copy_file_range, int, off_t *, int, off_t *, size_t, unsigned);
REAL_DECL(ssize_t, sendfile, int, int, off_t *, size_t);
REAL_DECL(ssize_t, sendfile64, int, int, off_t *, size_t);

/* ---- notes ------------------------------------------------------------------- */

static void vnote(const char *fmt, va_list ap) {
  char line[1024];
  int n = snprintf(line, sizeof line, "powercut[%d]: ", (int)getpid());
  n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  if (n >= (int)sizeof line - 1)
    n = (int)sizeof line - 2;
  line[n++] = '\n';
  char path[PATH_MAX + 16];
  snprintf(path, sizeof path, "%s/%s", side, PC_LOG);
  int fd = REAL(open)(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd >= 0) {
    if (REAL(write)(fd, line, (size_t)n) < 0) {
    }
    REAL(close)(fd);
  }
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vnote(fmt, ap);
  va_end(ap);
}

static void die(const char *fmt, ...) {
  va_list ap;
  char msg[512];
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  /* stderr is gearboxd's log, which the test prints on failure */
  fprintf(stderr, "powercut: FATAL: %s\n", msg);
  if (side[0])
    note("FATAL: %s", msg);
  abort();
}

/* ---- paths --------------------------------------------------------------- */

/* Collapses "//" and "/./" and drops a trailing "/". 0, or -1 on "..". */
static int normalize(char *p) {
  char *w = p;
  for (const char *r = p; *r;) {
    if (r[0] == '/' && r[1] == '/') {
      r++;
      continue;
    }
    if (r[0] == '/' && r[1] == '.' && (r[2] == '/' || r[2] == '\0')) {
      r += 2;
      continue;
    }
    if (r[0] == '/' && r[1] == '.' && r[2] == '.' && (r[3] == '/' || r[3] == '\0'))
      return -1;
    *w++ = *r++;
  }
  if (w > p + 1 && w[-1] == '/')
    w--;
  *w = '\0';
  return 0;
}

/* Where path (relative to dirfd) lies: 2 = the root itself, 1 = a file
 * directly in it (*base points at its name inside abs), 0 = elsewhere. */
static int classify(int dirfd, const char *path, char *abs, size_t cap, const char **base) {
  if (!path)
    return 0;
  if (path[0] == '/') {
    if (snprintf(abs, cap, "%s", path) >= (int)cap)
      return 0;
  } else if (dirfd == AT_FDCWD) {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd) || snprintf(abs, cap, "%s/%s", cwd, path) >= (int)cap)
      return 0;
  } else if (dirfd >= 0 && dirfd < PC_FD_MAX && atomic_load(&fdt[dirfd]) == DIR_ROOT) {
    if (snprintf(abs, cap, "%s/%s", root, path) >= (int)cap)
      return 0;
  } else {
    return 0;
  }
  if (normalize(abs) != 0)
    return 0;
  const char *prefixes[2] = {root, root_real};
  size_t lens[2] = {root_len, root_real_len};
  for (int i = 0; i < 2; i++) {
    if (!lens[i] || strncmp(abs, prefixes[i], lens[i]) != 0)
      continue;
    if (abs[lens[i]] == '\0')
      return 2;
    if (abs[lens[i]] != '/')
      continue;
    const char *rest = abs + lens[i] + 1;
    if (strchr(rest, '/')) {
      if (!noted_subdir++)
        note("a path below a subdirectory (%s) is not emulated", abs);
      return 0;
    }
    *base = rest;
    return 1;
  }
  return 0;
}

/* ---- records ------------------------------------------------------------- */

static frec_t *find_live(dev_t dev, ino_t ino) {
  for (frec_t *r = recs; r; r = r->next)
    if (r->live && r->dev == dev && r->ino == ino)
      return r;
  return NULL;
}

static frec_t *new_rec(dev_t dev, ino_t ino) {
  frec_t *r = calloc(1, sizeof *r);
  if (!r)
    die("out of memory");
  r->sid = next_sid++;
  r->dev = dev;
  r->ino = ino;
  r->live = 1;
  r->trunc_to = UINT64_MAX;
  r->next = recs;
  recs = r;
  return r;
}

static void shadow_path(const frec_t *r, char *buf, size_t cap) {
  snprintf(buf, cap, "%s/%s/%" PRIu64, side, PC_SHADOW_DIR, r->sid);
}

static void add_range(frec_t *r, uint64_t off, uint64_t end) {
  if (end <= off || r->all_dirty)
    return;
  /* merge with every range it touches, keep the list sorted */
  size_t i = 0;
  while (i < r->nr && r->r[i].end < off)
    i++;
  size_t j = i;
  while (j < r->nr && r->r[j].off <= end) {
    if (r->r[j].off < off)
      off = r->r[j].off;
    if (r->r[j].end > end)
      end = r->r[j].end;
    j++;
  }
  if (j == i) {
    if (r->nr == PC_MAX_RANGES) {
      r->all_dirty = 1;
      r->nr = 0;
      return;
    }
    memmove(&r->r[i + 1], &r->r[i], (r->nr - i) * sizeof r->r[0]);
    r->nr++;
  } else if (j > i + 1) {
    memmove(&r->r[i + 1], &r->r[j], (r->nr - j) * sizeof r->r[0]);
    r->nr -= j - i - 1;
  }
  r->r[i].off = off;
  r->r[i].end = end;
}

static frec_t *lookup(int fd) {
  if (fd < 0 || fd >= PC_FD_MAX)
    return NULL;
  return atomic_load(&fdt[fd]);
}

/* Points fd's table slot at r (NULL: not followed). Called with mu held. */
static void set_fd(int fd, frec_t *r) {
  frec_t *old = atomic_exchange(&fdt[fd], r);
  if (old && old != DIR_ROOT)
    old->nfd--;
  if (r && r != DIR_ROOT)
    r->nfd++;
}

/* Copies [a, b) of in to the same place in out. */
static void copy_range(int in, int out, uint64_t a, uint64_t b, const char *what) {
  while (a < b) {
    size_t n = b - a > PC_COPY_BUF ? PC_COPY_BUF : (size_t)(b - a);
    ssize_t got = pread(in, copybuf, n, (off_t)a);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0)
      die("reading %s for its shadow: %s", what, strerror(errno));
    if (got == 0)
      break; /* the file shrank meanwhile */
    for (ssize_t done = 0; done < got;) {
      ssize_t w =
          REAL(pwrite)(out, copybuf + done, (size_t)(got - done), (off_t)(a + (uint64_t)done));
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        die("writing the shadow of %s: %s", what, strerror(errno));
      done += w;
    }
    a += (uint64_t)got;
  }
}

/* Makes r's durable content what rfd (a read descriptor of the file) holds
 * in the dirty ranges, and its size. Called with mu held. */
static void sync_rec(frec_t *r, int rfd) {
  struct stat st;
  if (fstat(rfd, &st) != 0)
    die("fstat for a sync: %s", strerror(errno));
  uint64_t size = (uint64_t)st.st_size;
  char sp[PATH_MAX + 64];
  shadow_path(r, sp, sizeof sp);
  int sfd = REAL(open)(sp, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (sfd < 0)
    die("open %s: %s", sp, strerror(errno));
  if (r->trunc_to < r->shadow_size) {
    if (REAL(ftruncate)(sfd, (off_t)r->trunc_to) != 0)
      die("ftruncate %s: %s", sp, strerror(errno));
    r->shadow_size = r->trunc_to;
  }
  uint64_t copied_end = 0;
  if (r->all_dirty) {
    copy_range(rfd, sfd, 0, size, sp);
    copied_end = size;
  } else {
    for (size_t i = 0; i < r->nr; i++) {
      uint64_t a = r->r[i].off < size ? r->r[i].off : size;
      uint64_t b = r->r[i].end < size ? r->r[i].end : size;
      copy_range(rfd, sfd, a, b, sp);
      if (b > copied_end)
        copied_end = b;
    }
  }
  /* The durable size: what the syncs and size changes we saw account for,
   * never a size grown by a write we have not recorded yet (a concurrent
   * append would otherwise leave zeros in the shadow). */
  uint64_t want = r->shadow_size;
  if (copied_end > want)
    want = copied_end;
  if (r->ext_size > want)
    want = r->ext_size;
  if (want > size)
    want = size;
  if (REAL(ftruncate)(sfd, (off_t)want) != 0)
    die("ftruncate %s: %s", sp, strerror(errno));
  REAL(close)(sfd);
  r->shadow_size = want;
  r->nr = 0;
  r->all_dirty = 0;
  r->trunc_to = UINT64_MAX;
  r->ext_size = 0;
}

/* A new lineage for a file we did not see being written: its content as
 * it is now counts as durable. Called with mu held. */
static frec_t *adopt(int dirfd, const char *name, const struct stat *st) {
  frec_t *r = new_rec(st->st_dev, st->st_ino);
  int fd = REAL(openat)(dirfd, name, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    die("open %s/%s to adopt it: %s", root, name, strerror(errno));
  r->all_dirty = 1;
  sync_rec(r, fd);
  REAL(close)(fd);
  return r;
}

/* ---- the durable namespace ------------------------------------------------ */

/* Lists the root and makes its entries the durable namespace; frees the
 * lineages nothing refers to any more. Called with mu held. */
static void sync_dir(void) {
  int dfd = REAL(open)(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    die("open %s: %s", root, strerror(errno));
  DIR *d = fdopendir(dfd);
  if (!d)
    die("fdopendir %s: %s", root, strerror(errno));
  char tmp[PATH_MAX + 32], fin[PATH_MAX + 32];
  snprintf(tmp, sizeof tmp, "%s/%s", side, PC_NAMES_TMP);
  snprintf(fin, sizeof fin, "%s/%s", side, PC_NAMES);
  int out = REAL(open)(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0)
    die("open %s: %s", tmp, strerror(errno));
  for (frec_t *r = recs; r; r = r->next)
    r->durable = 0;
  char line[NAME_MAX + 128];
  int n = snprintf(line, sizeof line, "%s\n", PC_NAMES_MAGIC);
  if (REAL(write)(out, line, (size_t)n) != n)
    die("write %s: %s", tmp, strerror(errno));
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || pc_unmanaged(e->d_name))
      continue;
    struct stat st;
    if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
      continue; /* gone meanwhile */
    if (!S_ISREG(st.st_mode)) {
      if (!noted_subdir++)
        note("%s/%s is not a regular file: not emulated", root, e->d_name);
      continue;
    }
    if (strpbrk(e->d_name, " \t\n\r"))
      die("file name with whitespace: '%s'", e->d_name);
    frec_t *r = find_live(st.st_dev, st.st_ino);
    if (!r) {
      note("%s was written behind the layer's back; its content now counts as durable", e->d_name);
      r = adopt(dfd, e->d_name, &st);
    }
    r->durable = 1;
    n = snprintf(line, sizeof line, "%" PRIu64 " %" PRIu64 " %" PRIu64 " %s\n", r->sid,
                 (uint64_t)r->dev, (uint64_t)r->ino, e->d_name);
    if (REAL(write)(out, line, (size_t)n) != n)
      die("write %s: %s", tmp, strerror(errno));
  }
  closedir(d);
  REAL(close)(out);
  if (REAL(rename)(tmp, fin) != 0)
    die("rename %s: %s", tmp, strerror(errno));
  for (frec_t **p = &recs; *p;) {
    frec_t *r = *p;
    if (!r->live && !r->durable && r->nfd == 0) {
      char sp[PATH_MAX + 64];
      shadow_path(r, sp, sizeof sp);
      REAL(unlink)(sp);
      *p = r->next;
      free(r);
    } else {
      p = &r->next;
    }
  }
}

/* The durable state after a sync of fd (file or root directory). */
static void after_sync(int fd) {
  if (!active || in_shim)
    return;
  frec_t *r = lookup(fd);
  in_shim = 1;
  pthread_mutex_lock(&mu);
  if (r == DIR_ROOT) {
    sync_dir();
  } else {
    struct stat st;
    if (!r && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (r = find_live(st.st_dev, st.st_ino))) {
      /* synced through a descriptor we do not follow (dup?): its writes may
       * have passed us by, so take the whole file */
      note("fsync of sid %" PRIu64 " through an unfollowed fd %d", r->sid, fd);
      r->all_dirty = 1;
    }
    if (r) {
      char p[64];
      snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
      int rfd = REAL(open)(p, O_RDONLY | O_CLOEXEC);
      if (rfd < 0)
        die("reopen %s for its shadow: %s", p, strerror(errno));
      sync_rec(r, rfd);
      REAL(close)(rfd);
    }
  }
  pthread_mutex_unlock(&mu);
  in_shim = 0;
}

/* sync()/syncfs(): every followed file and the root become durable. */
static void sync_everything(void) {
  if (!active || in_shim)
    return;
  in_shim = 1;
  pthread_mutex_lock(&mu);
  int dfd = REAL(open)(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    struct stat st;
    if (pc_unmanaged(e->d_name) || fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISREG(st.st_mode))
      continue;
    frec_t *r = find_live(st.st_dev, st.st_ino);
    if (!r)
      continue; /* sync_dir adopts it */
    int fd = REAL(openat)(dfd, e->d_name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      continue;
    sync_rec(r, fd);
    REAL(close)(fd);
  }
  if (d)
    closedir(d);
  sync_dir();
  pthread_mutex_unlock(&mu);
  in_shim = 0;
}

/* ---- start ----------------------------------------------------------------- */

/* Removes the previous run's state. The names file goes first: a process
 * killed in the middle leaves no names (gbx-powercut-apply --allow-missing
 * then knows nothing was written), never names pointing at removed shadows. */
static void wipe_side(void) {
  static const char *const files[] = {PC_NAMES, PC_NAMES_TMP, PC_READY, PC_LOG};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    char f[PATH_MAX + 64];
    snprintf(f, sizeof f, "%s/%s", side, files[i]);
    REAL(unlink)(f);
  }
  char p[PATH_MAX + 64];
  snprintf(p, sizeof p, "%s/%s", side, PC_SHADOW_DIR);
  DIR *d = opendir(p);
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    char f[PATH_MAX + 64 + NAME_MAX + 2];
    snprintf(f, sizeof f, "%s/%s", p, e->d_name);
    REAL(unlink)(f);
  }
  if (d)
    closedir(d);
  mkdir(side, 0700);
  if (mkdir(p, 0700) != 0 && errno != EEXIST)
    die("mkdir %s: %s", p, strerror(errno));
}

static void fault_config(void);

__attribute__((constructor)) static void pc_start(void) {
  const char *d = getenv("GBX_PC_DIR");
  if (!d || !*d)
    return;
  in_shim = 1;
  if (d[0] != '/' || snprintf(root, sizeof root, "%s", d) >= (int)sizeof root ||
      normalize(root) != 0)
    die("GBX_PC_DIR must be an absolute path without '..': '%s'", d);
  root_len = strlen(root);
  const char *s = getenv("GBX_PC_SIDE");
  if (s && *s)
    snprintf(side, sizeof side, "%s", s);
  else
    snprintf(side, sizeof side, "%s%s", root, PC_SIDE_SUFFIX);
  if (realpath(root, root_real) && strcmp(root_real, root) != 0)
    root_real_len = strlen(root_real);
  else
    root_real[0] = '\0';
  wipe_side();
  /* What is on disk at the start is durable: adopt it and write the names. */
  uint64_t files = 0, bytes = 0;
  struct stat rst;
  pthread_mutex_lock(&mu);
  if (stat(root, &rst) == 0) {
    sync_dir();
    for (frec_t *r = recs; r; r = r->next) {
      files++;
      bytes += r->shadow_size;
    }
  } else {
    char fin[PATH_MAX + 32];
    snprintf(fin, sizeof fin, "%s/%s", side, PC_NAMES);
    int out = REAL(open)(fin, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0 || REAL(write)(out, PC_NAMES_MAGIC "\n", sizeof PC_NAMES_MAGIC) < 0)
      die("write %s: %s", fin, strerror(errno));
    REAL(close)(out);
  }
  pthread_mutex_unlock(&mu);
  char rp[PATH_MAX + 32], pid[32];
  snprintf(rp, sizeof rp, "%s/%s", side, PC_READY);
  int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
  int fd = REAL(open)(rp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || REAL(write)(fd, pid, (size_t)n) != n)
    die("write %s: %s", rp, strerror(errno));
  REAL(close)(fd);
  fault_config();
  note("start: following %s, %" PRIu64 " files (%" PRIu64 " bytes) durable", root, files, bytes);
  active = 1;
  in_shim = 0;
}

/* ---- interposed: open ----------------------------------------------------- */

typedef struct pre {
  int cls;     /* classify() */
  int existed; /* the file existed before the call */
} pre_t;

static void open_pre(int dirfd, const char *path, int flags, pre_t *p) {
  p->cls = 0;
  p->existed = 1;
  if (!active || in_shim)
    return;
  char abs[PATH_MAX];
  const char *base = NULL;
  p->cls = classify(dirfd, path, abs, sizeof abs, &base);
  if (p->cls == 1 && pc_unmanaged(base))
    p->cls = 0;
  if (p->cls == 1 && (flags & O_CREAT)) {
    struct stat st;
    p->existed = fstatat(AT_FDCWD, abs, &st, AT_SYMLINK_NOFOLLOW) == 0;
  }
}

static int open_post(int fd, int flags, const pre_t *p) {
  if (fd < 0 || !active || in_shim)
    return fd;
  int saved = errno;
  if (fd >= PC_FD_MAX) {
    if (p->cls)
      die("fd %d is beyond the layer's table", fd);
    return fd;
  }
  in_shim = 1;
  pthread_mutex_lock(&mu);
  frec_t *r = NULL;
  struct stat st;
  if (p->cls == 2) {
    r = DIR_ROOT;
  } else if (p->cls == 1 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    r = find_live(st.st_dev, st.st_ino);
    if (r && !p->existed) {
      r->live = 0; /* a stale lineage: its inode number was reused */
      r = NULL;
    }
    if (!r) {
      if (p->existed) {
        /* it existed but we never saw it made: take it as it is */
        note("opened a file the layer did not see being created (sid %" PRIu64 ")", next_sid);
        char pp[64];
        snprintf(pp, sizeof pp, "/proc/self/fd/%d", fd);
        r = new_rec(st.st_dev, st.st_ino);
        int rfd = REAL(open)(pp, O_RDONLY | O_CLOEXEC);
        if (rfd >= 0) {
          r->all_dirty = 1;
          sync_rec(r, rfd);
          REAL(close)(rfd);
        }
      } else {
        r = new_rec(st.st_dev, st.st_ino); /* empty until its first sync */
      }
    }
    if (flags & O_TRUNC)
      r->trunc_to = 0;
  }
  set_fd(fd, r);
  pthread_mutex_unlock(&mu);
  in_shim = 0;
  errno = saved;
  return fd;
}

static mode_t va_mode(int flags, va_list ap) {
  return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = va_mode(flags, ap);
  va_end(ap);
  pre_t p;
  open_pre(AT_FDCWD, path, flags, &p);
  return open_post(REAL(open)(path, flags, mode), flags, &p);
}

int open64(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = va_mode(flags, ap);
  va_end(ap);
  pre_t p;
  open_pre(AT_FDCWD, path, flags, &p);
  return open_post(REAL(open64)(path, flags, mode), flags, &p);
}

int __open_2(const char *path, int flags) {
  pre_t p;
  open_pre(AT_FDCWD, path, flags, &p);
  return open_post(REAL(__open_2)(path, flags), flags, &p);
}

int __open64_2(const char *path, int flags) {
  pre_t p;
  open_pre(AT_FDCWD, path, flags, &p);
  return open_post(REAL(__open64_2)(path, flags), flags, &p);
}

int openat(int dirfd, const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = va_mode(flags, ap);
  va_end(ap);
  pre_t p;
  open_pre(dirfd, path, flags, &p);
  return open_post(REAL(openat)(dirfd, path, flags, mode), flags, &p);
}

int openat64(int dirfd, const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = va_mode(flags, ap);
  va_end(ap);
  pre_t p;
  open_pre(dirfd, path, flags, &p);
  return open_post(REAL(openat64)(dirfd, path, flags, mode), flags, &p);
}

int __openat_2(int dirfd, const char *path, int flags) {
  pre_t p;
  open_pre(dirfd, path, flags, &p);
  return open_post(REAL(__openat_2)(dirfd, path, flags), flags, &p);
}

int __openat64_2(int dirfd, const char *path, int flags) {
  pre_t p;
  open_pre(dirfd, path, flags, &p);
  return open_post(REAL(__openat64_2)(dirfd, path, flags), flags, &p);
}

int creat(const char *path, mode_t mode) {
  pre_t p;
  int flags = O_CREAT | O_WRONLY | O_TRUNC;
  open_pre(AT_FDCWD, path, flags, &p);
  return open_post(REAL(creat)(path, mode), flags, &p);
}

int creat64(const char *path, mode_t mode) {
  pre_t p;
  int flags = O_CREAT | O_WRONLY | O_TRUNC;
  open_pre(AT_FDCWD, path, flags, &p);
  return open_post(REAL(creat64)(path, mode), flags, &p);
}

/* ---- fault injection ---------------------------------------------------------- */

enum { FAIL_NONE, FAIL_WRITE, FAIL_SYNC };
static int fail_kind;
static uint64_t fail_at = 1;
static int fail_errno = EIO;
static int fail_sticky;
static atomic_uint_fast64_t fail_calls;

/* Reads GBX_PC_FAIL*; a bad value aborts (a test that asked for a fault must
 * get it). Called from the constructor. */
static void fault_config(void) {
  const char *k = getenv("GBX_PC_FAIL"), *at = getenv("GBX_PC_FAIL_AT");
  const char *e = getenv("GBX_PC_FAIL_ERRNO"), *st = getenv("GBX_PC_FAIL_STICKY");
  if (!k || !*k)
    return;
  if (!strcmp(k, "write"))
    fail_kind = FAIL_WRITE;
  else if (!strcmp(k, "sync"))
    fail_kind = FAIL_SYNC;
  else
    die("GBX_PC_FAIL must be write or sync, not '%s'", k);
  if (at && *at) {
    char *end;
    unsigned long long n = strtoull(at, &end, 10);
    if (*end || n == 0)
      die("GBX_PC_FAIL_AT must be a positive number, not '%s'", at);
    fail_at = n;
  }
  if (e && *e) {
    if (!strcmp(e, "EIO"))
      fail_errno = EIO;
    else if (!strcmp(e, "ENOSPC"))
      fail_errno = ENOSPC;
    else
      die("GBX_PC_FAIL_ERRNO must be EIO or ENOSPC, not '%s'", e);
  }
  fail_sticky = st && !strcmp(st, "1");
  note("fault armed: %s call %" PRIu64 " fails with %s%s", k, fail_at, strerrorname_np(fail_errno),
       fail_sticky ? " (and every later one)" : "");
}

/* 1 if this followed call of kind must fail (errno set), else 0. */
static int fault_hit(int kind) {
  if (fail_kind != kind || in_shim)
    return 0;
  uint64_t n = atomic_fetch_add(&fail_calls, 1) + 1;
  if (n < fail_at || (n > fail_at && !fail_sticky))
    return 0;
  if (n == fail_at) {
    char line[160];
    int len = snprintf(line, sizeof line,
                       "powercut[%d]: injected %s failure: %s call %" PRIu64 "\n", (int)getpid(),
                       strerrorname_np(fail_errno), kind == FAIL_WRITE ? "write" : "sync", n);
    if (REAL(write)(2, line, (size_t)len) < 0) {
    }
    note("injected %s: %s call %" PRIu64, strerrorname_np(fail_errno),
         kind == FAIL_WRITE ? "write" : "sync", n);
  }
  errno = fail_errno;
  return 1;
}

/* A failed sync: the kernel drops the dirty pages' error state (and, for
 * us, the record of them), so they never become durable through a retry. */
static void fault_lose_dirty(frec_t *r) {
  pthread_mutex_lock(&mu);
  r->nr = 0;
  r->all_dirty = 0;
  pthread_mutex_unlock(&mu);
  errno = fail_errno;
}

/* ---- interposed: writes ----------------------------------------------------- */

static int followed(frec_t *r) {
  return r && r != DIR_ROOT;
}

static void dirty(frec_t *r, int64_t off, int64_t end) {
  int saved = errno;
  pthread_mutex_lock(&mu);
  if (off < 0)
    r->all_dirty = 1; /* position unknown: take the whole file */
  else
    add_range(r, (uint64_t)off, (uint64_t)end);
  pthread_mutex_unlock(&mu);
  errno = saved;
}

/* After a write at the file position: the range ends at the new position. */
static void dirty_at_pos(frec_t *r, int fd, ssize_t n) {
  int saved = errno;
  off_t end = lseek(fd, 0, SEEK_CUR);
  errno = saved;
  dirty(r, end < 0 ? -1 : (int64_t)end - n, end < 0 ? -1 : (int64_t)end);
}

ssize_t write(int fd, const void *buf, size_t n) {
  frec_t *r = lookup(fd);
  if (followed(r) && fault_hit(FAIL_WRITE))
    return -1;
  ssize_t w = REAL(write)(fd, buf, n);
  if (w > 0 && followed(r))
    dirty_at_pos(r, fd, w);
  return w;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
  frec_t *r = lookup(fd);
  if (followed(r) && fault_hit(FAIL_WRITE))
    return -1;
  ssize_t w = REAL(pwrite)(fd, buf, n, off);
  if (w > 0 && followed(r))
    dirty(r, off, off + w);
  return w;
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
  frec_t *r = lookup(fd);
  if (followed(r) && fault_hit(FAIL_WRITE))
    return -1;
  ssize_t w = REAL(pwrite64)(fd, buf, n, off);
  if (w > 0 && followed(r))
    dirty(r, off, off + w);
  return w;
}

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
  frec_t *r = lookup(fd);
  if (followed(r) && fault_hit(FAIL_WRITE))
    return -1;
  ssize_t w = REAL(writev)(fd, iov, cnt);
  if (w > 0 && followed(r))
    dirty_at_pos(r, fd, w);
  return w;
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off) {
  frec_t *r = lookup(fd);
  if (followed(r) && fault_hit(FAIL_WRITE))
    return -1;
  ssize_t w = REAL(pwritev)(fd, iov, cnt, off);
  if (w > 0 && followed(r))
    dirty(r, off, off + w);
  return w;
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off) {
  frec_t *r = lookup(fd);
  if (followed(r) && fault_hit(FAIL_WRITE))
    return -1;
  ssize_t w = REAL(pwritev64)(fd, iov, cnt, off);
  if (w > 0 && followed(r))
    dirty(r, off, off + w);
  return w;
}

ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags) {
  frec_t *r = lookup(fd);
  if (followed(r) && fault_hit(FAIL_WRITE))
    return -1;
  ssize_t w = REAL(pwritev2)(fd, iov, cnt, off, flags);
  if (w > 0 && followed(r)) {
    if (off == -1)
      dirty_at_pos(r, fd, w);
    else
      dirty(r, off, off + w);
  }
  return w;
}

ssize_t pwritev64v2(int fd, const struct iovec *iov, int cnt, off_t off, int flags) {
  frec_t *r = lookup(fd);
  if (followed(r) && fault_hit(FAIL_WRITE))
    return -1;
  ssize_t w = REAL(pwritev64v2)(fd, iov, cnt, off, flags);
  if (w > 0 && followed(r)) {
    if (off == -1)
      dirty_at_pos(r, fd, w);
    else
      dirty(r, off, off + w);
  }
  return w;
}

static void size_set(frec_t *r, uint64_t len) {
  int saved = errno;
  pthread_mutex_lock(&mu);
  if (len < r->trunc_to)
    r->trunc_to = len;
  if (len > r->ext_size)
    r->ext_size = len;
  pthread_mutex_unlock(&mu);
  errno = saved;
}

int ftruncate(int fd, off_t len) {
  frec_t *r = lookup(fd);
  int rc = REAL(ftruncate)(fd, len);
  if (rc == 0 && followed(r))
    size_set(r, (uint64_t)len);
  return rc;
}

int ftruncate64(int fd, off_t len) {
  frec_t *r = lookup(fd);
  int rc = REAL(ftruncate64)(fd, len);
  if (rc == 0 && followed(r))
    size_set(r, (uint64_t)len);
  return rc;
}

static void after_fallocate(frec_t *r, int mode, off_t off, off_t len) {
  if (mode & (FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE))
    dirty(r, -1, -1);
  else if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
    dirty(r, off, off + len);
  if (!(mode & FALLOC_FL_KEEP_SIZE)) {
    int saved = errno;
    pthread_mutex_lock(&mu);
    if ((uint64_t)(off + len) > r->ext_size)
      r->ext_size = (uint64_t)(off + len);
    pthread_mutex_unlock(&mu);
    errno = saved;
  }
}

int fallocate(int fd, int mode, off_t off, off_t len) {
  frec_t *r = lookup(fd);
  int rc = REAL(fallocate)(fd, mode, off, len);
  if (rc == 0 && followed(r))
    after_fallocate(r, mode, off, len);
  return rc;
}

int fallocate64(int fd, int mode, off_t off, off_t len) {
  frec_t *r = lookup(fd);
  int rc = REAL(fallocate64)(fd, mode, off, len);
  if (rc == 0 && followed(r))
    after_fallocate(r, mode, off, len);
  return rc;
}

int posix_fallocate(int fd, off_t off, off_t len) {
  frec_t *r = lookup(fd);
  int rc = REAL(posix_fallocate)(fd, off, len);
  if (rc == 0 && followed(r))
    after_fallocate(r, 0, off, len);
  return rc;
}

int posix_fallocate64(int fd, off_t off, off_t len) {
  frec_t *r = lookup(fd);
  int rc = REAL(posix_fallocate64)(fd, off, len);
  if (rc == 0 && followed(r))
    after_fallocate(r, 0, off, len);
  return rc;
}

ssize_t copy_file_range(int in, off_t *oin, int out, off_t *oout, size_t n, unsigned fl) {
  if (followed(lookup(out)))
    die("copy_file_range into a followed file is not emulated");
  return REAL(copy_file_range)(in, oin, out, oout, n, fl);
}

ssize_t sendfile(int out, int in, off_t *off, size_t n) {
  if (followed(lookup(out)))
    die("sendfile into a followed file is not emulated");
  return REAL(sendfile)(out, in, off, n);
}

ssize_t sendfile64(int out, int in, off_t *off, size_t n) {
  if (followed(lookup(out)))
    die("sendfile into a followed file is not emulated");
  return REAL(sendfile64)(out, in, off, n);
}

void *mmap(void *a, size_t len, int prot, int flags, int fd, off_t off) {
  if (fd >= 0 && (prot & PROT_WRITE) && (flags & MAP_SHARED) && followed(lookup(fd)))
    die("a writable shared mmap of a followed file is not emulated");
  return REAL(mmap)(a, len, prot, flags, fd, off);
}

void *mmap64(void *a, size_t len, int prot, int flags, int fd, off_t off) {
  if (fd >= 0 && (prot & PROT_WRITE) && (flags & MAP_SHARED) && followed(lookup(fd)))
    die("a writable shared mmap of a followed file is not emulated");
  return REAL(mmap64)(a, len, prot, flags, fd, off);
}

/* ---- interposed: syncs -------------------------------------------------------- */

/* What a file's sync covers: the writes recorded before it began. Writes
 * that land while the sync runs (another thread appending to the WAL as
 * gearboxd's pipelined commit does) are not made durable by it: the kernel
 * may or may not have them, so the emulation must assume it has not, or an
 * acknowledgement that relied on them would go unnoticed. */
typedef struct dirty_snap {
  range_t r[PC_MAX_RANGES];
  size_t nr;
  int all_dirty;
  uint64_t trunc_to, ext_size;
} dirty_snap_t;

static void snap_take(frec_t *r, dirty_snap_t *s) {
  memcpy(s->r, r->r, r->nr * sizeof(range_t));
  s->nr = r->nr;
  s->all_dirty = r->all_dirty;
  s->trunc_to = r->trunc_to;
  s->ext_size = r->ext_size;
  r->nr = 0;
  r->all_dirty = 0;
  r->trunc_to = UINT64_MAX;
  r->ext_size = 0;
}

/* Puts a snapshot's dirt back (the sync failed): with mu held. */
static void snap_merge_back(frec_t *r, const dirty_snap_t *s) {
  if (s->all_dirty) {
    r->all_dirty = 1;
    r->nr = 0;
  }
  for (size_t i = 0; i < s->nr; i++) add_range(r, s->r[i].off, s->r[i].end);
  if (s->trunc_to < r->trunc_to) r->trunc_to = s->trunc_to;
  if (s->ext_size > r->ext_size) r->ext_size = s->ext_size;
}

/* A file's sync: snapshot its dirt, sync, make only the snapshot durable. */
static int file_sync(int fd, frec_t *fr, int (*real)(int)) {
  if (!active || in_shim || !followed(fr) || fr == DIR_ROOT) {
    int rc = real(fd);
    if (rc == 0) {
      int saved = errno;
      after_sync(fd);
      errno = saved;
    }
    return rc;
  }
  dirty_snap_t snap; /* about 4 KiB of stack */
  pthread_mutex_lock(&mu);
  snap_take(fr, &snap);
  pthread_mutex_unlock(&mu);
  int rc = real(fd);
  int saved = errno;
  in_shim = 1;
  pthread_mutex_lock(&mu);
  if (rc != 0) {
    snap_merge_back(fr, &snap);
  } else {
    /* sync_rec works on the record's own fields: swap the snapshot in,
     * keep what was written meanwhile aside, then put it back as dirty */
    dirty_snap_t during;
    snap_take(fr, &during);
    fr->nr = snap.nr;
    memcpy(fr->r, snap.r, snap.nr * sizeof(range_t));
    fr->all_dirty = snap.all_dirty;
    fr->trunc_to = snap.trunc_to;
    fr->ext_size = snap.ext_size;
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    int rfd = REAL(open)(p, O_RDONLY | O_CLOEXEC);
    if (rfd < 0)
      die("reopen %s for its shadow: %s", p, strerror(errno));
    sync_rec(fr, rfd);
    REAL(close)(rfd);
    snap_merge_back(fr, &during);
  }
  pthread_mutex_unlock(&mu);
  in_shim = 0;
  errno = saved;
  return rc;
}

int fsync(int fd) {
  frec_t *fr = lookup(fd);
  if (followed(fr) && fault_hit(FAIL_SYNC)) {
    fault_lose_dirty(fr);
    return -1;
  }
  return file_sync(fd, fr, REAL(fsync));
}

int fdatasync(int fd) {
  frec_t *fr = lookup(fd);
  if (followed(fr) && fault_hit(FAIL_SYNC)) {
    fault_lose_dirty(fr);
    return -1;
  }
  return file_sync(fd, fr, REAL(fdatasync));
}

void sync(void) {
  REAL(sync)();
  sync_everything();
}

int syncfs(int fd) {
  int rc = REAL(syncfs)(fd);
  if (rc == 0) {
    int saved = errno;
    sync_everything();
    errno = saved;
  }
  return rc;
}

/* ---- interposed: namespace ------------------------------------------------------ */

/* Before an unlink or a rename over it: if path is the last link of a
 * followed file, its lineage dies with the call (the durable namespace may
 * still name it until the next directory sync). */
typedef struct victim {
  int is;
  dev_t dev;
  ino_t ino;
} victim_t;

static void victim_pre(int dirfd, const char *path, victim_t *v) {
  v->is = 0;
  if (!active || in_shim)
    return;
  char abs[PATH_MAX];
  const char *base;
  if (classify(dirfd, path, abs, sizeof abs, &base) != 1)
    return;
  struct stat st;
  if (fstatat(AT_FDCWD, abs, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
      st.st_nlink == 1) {
    v->is = 1;
    v->dev = st.st_dev;
    v->ino = st.st_ino;
  }
}

static void victim_post(int rc, const victim_t *v, const victim_t *keep) {
  if (rc != 0 || !v->is)
    return;
  if (keep && keep->is && keep->dev == v->dev && keep->ino == v->ino)
    return;
  int saved = errno;
  pthread_mutex_lock(&mu);
  frec_t *r = find_live(v->dev, v->ino);
  if (r)
    r->live = 0;
  pthread_mutex_unlock(&mu);
  errno = saved;
}

int unlink(const char *path) {
  victim_t v;
  victim_pre(AT_FDCWD, path, &v);
  int rc = REAL(unlink)(path);
  victim_post(rc, &v, NULL);
  return rc;
}

int unlinkat(int dirfd, const char *path, int flags) {
  victim_t v;
  if (flags & AT_REMOVEDIR)
    v.is = 0;
  else
    victim_pre(dirfd, path, &v);
  int rc = REAL(unlinkat)(dirfd, path, flags);
  victim_post(rc, &v, NULL);
  return rc;
}

int rename(const char *from, const char *to) {
  victim_t v, src;
  victim_pre(AT_FDCWD, to, &v);
  victim_pre(AT_FDCWD, from, &src);
  int rc = REAL(rename)(from, to);
  victim_post(rc, &v, &src);
  return rc;
}

int renameat(int fd1, const char *from, int fd2, const char *to) {
  victim_t v, src;
  victim_pre(fd2, to, &v);
  victim_pre(fd1, from, &src);
  int rc = REAL(renameat)(fd1, from, fd2, to);
  victim_post(rc, &v, &src);
  return rc;
}

int renameat2(int fd1, const char *from, int fd2, const char *to, unsigned flags) {
  victim_t v, src;
  victim_pre(fd2, to, &v);
  victim_pre(fd1, from, &src);
  if (flags & RENAME_EXCHANGE)
    v.is = 0; /* nothing dies in an exchange */
  int rc = REAL(renameat2)(fd1, from, fd2, to, flags);
  victim_post(rc, &v, &src);
  return rc;
}

int close(int fd) {
  if (fd >= 0 && fd < PC_FD_MAX && atomic_load(&fdt[fd])) {
    pthread_mutex_lock(&mu);
    set_fd(fd, NULL);
    pthread_mutex_unlock(&mu);
  }
  return REAL(close)(fd);
}
