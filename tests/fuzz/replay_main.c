/* replay_main.c - runs a libFuzzer target over files without libFuzzer, so
 * the committed corpus is replayed under ctest by any compiler.
 *
 * Usage: fuzz_x_replay PATH...  Each directory argument contributes every
 * regular file in it (not recursing), each file argument itself. Exits 0 after
 * running at least one input; non-zero when a path is missing, unreadable, a
 * directory holds no files, or nothing ran at all: a replay that ran nothing
 * must fail, or a lost corpus would pass silently. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Corpus files are small seeds; anything bigger is a mistake in the corpus,
 * and refusing it keeps a stray large file from stalling ctest. */
#define REPLAY_MAX_INPUT (16u * 1024u * 1024u)

/* Feeds one file to the target. Returns 0, or -1 with a message. */
static int run_file(const char *path) {
  FILE *f = NULL;
  uint8_t *data = NULL;
  struct stat st;
  int rc = -1;

  if (stat(path, &st) != 0) {
    fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
    goto fail;
  }
  if (st.st_size < 0 || (uint64_t)st.st_size > REPLAY_MAX_INPUT) {
    fprintf(stderr, "replay: %s: %lld bytes is over the %u-byte limit\n", path,
            (long long)st.st_size, REPLAY_MAX_INPUT);
    goto fail;
  }
  size_t size = (size_t)st.st_size;
  f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
    goto fail;
  }
  /* malloc(0) may return NULL; always allocate at least one byte so the
   * target gets a valid pointer for an empty input. */
  data = malloc(size ? size : 1);
  if (!data) {
    fprintf(stderr, "replay: %s: out of memory\n", path);
    goto fail;
  }
  if (size && fread(data, 1, size, f) != size) {
    fprintf(stderr, "replay: %s: short read\n", path);
    goto fail;
  }
  LLVMFuzzerTestOneInput(data, size);
  rc = 0;

fail:
  free(data);
  if (f)
    fclose(f);
  return rc;
}

/* Runs every regular file of dir; adds the count to *ran. Returns 0 or -1. */
static int run_dir(const char *dir, unsigned long *ran) {
  DIR *d = opendir(dir);
  struct dirent *e;
  unsigned long here = 0;
  int rc = 0;
  char path[4096];

  if (!d) {
    fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
    return -1;
  }
  while ((e = readdir(d)) != NULL) {
    struct stat st;
    if (e->d_name[0] == '.' &&
        (e->d_name[1] == '\0' || (e->d_name[1] == '.' && e->d_name[2] == '\0')))
      continue;
    if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) {
      fprintf(stderr, "replay: %s/%s: path too long\n", dir, e->d_name);
      rc = -1;
      continue;
    }
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
      continue;
    if (run_file(path) != 0) {
      rc = -1;
      continue;
    }
    here++;
  }
  closedir(d);
  if (here == 0) {
    fprintf(stderr, "replay: %s: no input files\n", dir);
    rc = -1;
  }
  *ran += here;
  return rc;
}

int main(int argc, char **argv) {
  unsigned long ran = 0;
  int failed = 0;

  if (argc < 2) {
    fprintf(stderr, "usage: %s DIR_OR_FILE...\n", argv[0]);
    return 2;
  }
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
      failed = 1;
    } else if (S_ISDIR(st.st_mode)) {
      if (run_dir(argv[i], &ran) != 0)
        failed = 1;
    } else if (run_file(argv[i]) == 0) {
      ran++;
    } else {
      failed = 1;
    }
  }
  printf("replay: ran %lu input(s)\n", ran);
  if (ran == 0) {
    fprintf(stderr, "replay: nothing ran\n");
    return 1;
  }
  return failed ? 1 : 0;
}
