/* progress.h - one progress line on stderr, redrawn a few times a second,
 * only when stderr is a terminal (logs and CI output stay clean). */
#ifndef BENCH_PROGRESS_H
#define BENCH_PROGRESS_H

#include <stdint.h>

/* Starts showing `label` with a counter out of total (0: no total). */
void progress_begin(const char *label, uint64_t total);
/* Adds n to the counter; cheap enough for every completion (one atomic). */
void progress_add(uint64_t n);
/* Clears the line. */
void progress_end(void);

#endif
