/* fsutil.c - temp dirs and disk use (see fsutil.h). */
#include "fsutil.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* statfs f_type values (linux/magic.h). */
#define FS_TMPFS_MAGIC 0x01021994
#define FS_RAMFS_MAGIC 0x858458f6
/* nftw's open-descriptor budget: deep trees reuse them. */
#define FTW_FDS 16

/* Finds the mount of device dev in /proc/self/mountinfo: mount point,
 * file system type and source. Returns 0 when found. */
static int find_mount(dev_t dev, char *mnt, size_t mcap, char *type, size_t tcap, char *src,
                      size_t scap) {
  char line[4096];
  int found = 0;
  FILE *f = fopen("/proc/self/mountinfo", "r");
  if (!f)
    return -1;
  while (!found && fgets(line, sizeof(line), f)) {
    /* id parent major:minor root mountpoint options ... - type source ... */
    unsigned maj, min;
    char root[1024], mp[1024];
    if (sscanf(line, "%*d %*d %u:%u %1023s %1023s", &maj, &min, root, mp) != 4)
      continue;
    if (makedev(maj, min) != dev)
      continue;
    char *dash = strstr(line, " - ");
    if (!dash)
      continue;
    char t[128], s[1024];
    if (sscanf(dash + 3, "%127s %1023s", t, s) != 2)
      continue;
    snprintf(mnt, mcap, "%s", mp);
    snprintf(type, tcap, "%s", t);
    snprintf(src, scap, "%s", s);
    found = 1;
  }
  fclose(f);
  return found ? 0 : -1;
}

int fs_describe(const char *path, char *out, size_t cap, int *ram) {
  struct statfs sf;
  struct stat st;
  char mnt[1024] = "?", type[128] = "?", src[1024] = "?";
  *ram = 0;
  if (statfs(path, &sf) != 0 || stat(path, &st) != 0) {
    snprintf(out, cap, "cannot stat %s: %s", path, strerror(errno));
    return -1;
  }
  if ((unsigned long)sf.f_type == FS_TMPFS_MAGIC || (unsigned long)sf.f_type == FS_RAMFS_MAGIC)
    *ram = 1;
  find_mount(st.st_dev, mnt, sizeof(mnt), type, sizeof(type), src, sizeof(src));
  snprintf(out, cap, "%s (%s, mounted on %s)", src, type, mnt);
  return 0;
}

int fs_mkdtemp(const char *base, char *out, size_t cap, char *err, size_t errcap) {
  char tmpl[4096];
  int n = snprintf(tmpl, sizeof(tmpl), "%s/bench-tmp-XXXXXX", base);
  if (n < 0 || (size_t)n >= sizeof(tmpl) || (size_t)n >= cap) {
    snprintf(err, errcap, "temp dir path too long under %s", base);
    return -1;
  }
  if (!mkdtemp(tmpl)) {
    snprintf(err, errcap, "mkdtemp %s: %s", tmpl, strerror(errno));
    return -1;
  }
  snprintf(out, cap, "%s", tmpl);
  return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f) {
  return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

int fs_rmtree(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0)
    return errno == ENOENT ? 0 : -1;
  return nftw(path, rm_one, FTW_FDS, FTW_DEPTH | FTW_PHYS);
}

static __thread uint64_t du_total;

static int du_one(const char *path, const struct stat *st, int flag, struct FTW *f) {
  if (flag == FTW_F || flag == FTW_D || flag == FTW_DP)
    du_total += (uint64_t)st->st_blocks * 512;
  return 0;
}

uint64_t fs_disk_bytes(const char *path) {
  du_total = 0;
  if (nftw(path, du_one, FTW_FDS, FTW_PHYS) != 0)
    return du_total;
  return du_total;
}
