/* fdlimit.c - see fdlimit.h. */
#include "fdlimit.h"

#include <sys/resource.h>

void fdlimit_get(fdlimit_t *out) {
  struct rlimit rl;
  out->soft = 0;
  out->reserve = 0;
  out->conn_cap = UINT32_MAX;
  out->store_files = -1;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
    return;
  uint64_t soft = rl.rlim_cur;
  uint64_t reserve = soft / 4 > FDLIMIT_RESERVE_MIN ? soft / 4 : FDLIMIT_RESERVE_MIN;
  out->soft = soft;
  out->reserve = reserve;
  /* at least one connection, so a tiny limit still serves (and says so) */
  uint64_t cap = soft > reserve ? soft - reserve : 1;
  out->conn_cap = cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap;
  /* Half the reserve for SSTs: the other half covers the WAL, MANIFEST,
   * LOG, compaction outputs, listeners and libuv. */
  uint64_t files = reserve / 2;
  if (files < FDLIMIT_STORE_MIN)
    files = FDLIMIT_STORE_MIN;
  out->store_files = files > INT32_MAX ? INT32_MAX : (int)files;
}

uint64_t fdbudget_refused(fdbudget_t *b, uint64_t now) {
  b->refused++;
  if (b->refusal_log_ms != 0 && now - b->refusal_log_ms < FDLIMIT_REFUSAL_LOG_MS)
    return 0;
  uint64_t n = b->refused;
  b->refusal_log_ms = now ? now : 1;
  b->refused = 0;
  return n;
}
