/* fsutil.h - where the benchmark keeps its data: temp dirs on the disk
 * being measured (never a RAM file system), their size, their removal. */
#ifndef BENCH_FSUTIL_H
#define BENCH_FSUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Describes the file system holding path ("/dev/vda ext4 on /") into out;
 * sets *ram to 1 for tmpfs/ramfs (where a sync is free, so a durable
 * benchmark would measure nothing). Returns 0, or -1 with out holding why. */
int fs_describe(const char *path, char *out, size_t cap, int *ram);
/* Creates a fresh directory base/bench-tmp-XXXXXX (mode 0700) and writes
 * its path to out. Returns 0, or -1 with err filled. */
int fs_mkdtemp(const char *base, char *out, size_t cap, char *err, size_t errcap);
/* Removes path and everything below it; missing is fine. Returns 0 or -1. */
int fs_rmtree(const char *path);
/* Bytes allocated on disk (st_blocks * 512) below path, recursively. */
uint64_t fs_disk_bytes(const char *path);

#endif
