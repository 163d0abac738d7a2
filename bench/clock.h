/* clock.h - the benchmark's one clock: CLOCK_MONOTONIC in nanoseconds.
 * It is system-wide, so a timestamp a producer thread writes into a body is
 * comparable with the time a consumer thread reads it. */
#ifndef BENCH_CLOCK_H
#define BENCH_CLOCK_H

#include <errno.h>
#include <stdint.h>
#include <time.h>

#define NS_PER_S  1000000000ull
#define NS_PER_MS 1000000ull
#define NS_PER_US 1000ull

/* Monotonic time in ns. */
static inline uint64_t clock_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* Sleeps until monotonic time t (returns at once if it has passed). */
static inline void clock_sleep_until(uint64_t t) {
  struct timespec ts = {(time_t)(t / NS_PER_S), (long)(t % NS_PER_S)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

#endif
