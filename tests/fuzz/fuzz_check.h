/* fuzz_check.h - the fuzz targets' invariant check: a broken invariant
 * prints where and what, then aborts, which libFuzzer and the corpus replay
 * (replay_main.c) both report as a crash with the input that caused it. */
#ifndef GBX_FUZZ_CHECK_H
#define GBX_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);                 \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

#endif
