/* fdlimit.h - the process's file descriptor budget: RLIMIT_NOFILE split
 * between client connections (the binary protocol and the HTTP face draw
 * from one count) and a reserve for the store and everything else. One
 * computation, used by net.c, http.c and store.c, so the faces' cap and
 * RocksDB's max_open_files cannot disagree about what the reserve is. */
#ifndef GBX_FDLIMIT_H
#define GBX_FDLIMIT_H

#include <stdint.h>

/* Descriptors never given to connections: RocksDB keeps SSTs open plus its
 * WAL, MANIFEST and LOG, and the listeners, libuv, the threadpool and the
 * log need some. A quarter of RLIMIT_NOFILE, at least this many. Running
 * the store out of descriptors fails a flush and stops the server; a
 * refused connection costs one client a retry. */
#define FDLIMIT_RESERVE_MIN 64u
/* The least max_open_files the store gets: RocksDB raises anything below 20
 * to 20 itself, and a table cache much smaller reopens SSTs constantly. */
#define FDLIMIT_STORE_MIN 32

typedef struct fdlimit {
  uint64_t soft;     /* RLIMIT_NOFILE soft limit; 0: unlimited or unknown */
  uint64_t reserve;  /* descriptors kept from connections; 0 with soft 0 */
  uint32_t conn_cap; /* connections of both faces together; UINT32_MAX: no cap */
  int store_files;   /* RocksDB max_open_files: half the reserve; -1: unlimited */
} fdlimit_t;

/* Fills *out from the current RLIMIT_NOFILE (an unlimited or unreadable
 * limit gives no connection cap and unlimited store files). */
void fdlimit_get(fdlimit_t *out);

/* One connection count against one cap, shared by both faces (loop thread
 * only). The server owns it; net.c and http.c borrow it. */
typedef struct fdbudget {
  uint32_t cap;            /* fdlimit_t.conn_cap */
  uint32_t used;           /* open connections of both faces */
  uint64_t refused;        /* refused by either face since the last report */
  uint64_t refusal_log_ms; /* when the last report was due (0: never) */
} fdbudget_t;

/* Refusal reports are rate-limited to one per this many ms: a flood of
 * connections must not become a flood of log lines. */
#define FDLIMIT_REFUSAL_LOG_MS 1000u

/* Counts one refused connection at now (ms). Returns the number refused
 * since the last report when a report (one log line) is due now, else 0. */
uint64_t fdbudget_refused(fdbudget_t *b, uint64_t now);

#endif
