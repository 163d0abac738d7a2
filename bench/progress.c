/* progress.c - the progress line (see progress.h): a thread redraws it
 * from an atomic counter the workload threads bump. */
#include "progress.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"

/* Redraws per second: smooth enough to watch, too few to cost anything. */
#define REDRAW_US 200000

static atomic_uint_fast64_t done;
static uint64_t total, started;
static char label[96];
static atomic_int running;
static pthread_t drawer;
static int active;

static void *draw(void *arg) {
  while (atomic_load(&running)) {
    double s = (double)(clock_ns() - started) / NS_PER_S;
    uint64_t d = atomic_load(&done);
    if (total)
      fprintf(stderr, "\r\033[K%s: %llu/%llu  %.1f s", label, (unsigned long long)d,
              (unsigned long long)total, s);
    else
      fprintf(stderr, "\r\033[K%s: %llu  %.1f s", label, (unsigned long long)d, s);
    fflush(stderr);
    usleep(REDRAW_US);
  }
  return NULL;
}

void progress_begin(const char *l, uint64_t t) {
  progress_end();
  atomic_store(&done, 0);
  total = t;
  started = clock_ns();
  snprintf(label, sizeof(label), "%s", l);
  if (!isatty(STDERR_FILENO))
    return;
  atomic_store(&running, 1);
  active = pthread_create(&drawer, NULL, draw, NULL) == 0;
}

void progress_add(uint64_t n) {
  atomic_fetch_add_explicit(&done, n, memory_order_relaxed);
}

void progress_end(void) {
  if (!active)
    return;
  atomic_store(&running, 0);
  pthread_join(drawer, NULL);
  active = 0;
  fprintf(stderr, "\r\033[K");
  fflush(stderr);
}
