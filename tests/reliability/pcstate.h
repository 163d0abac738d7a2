/* pcstate.h - the power-cut emulation's on-disk state, shared by the shim
 * (powercut.c, LD_PRELOADed into gearboxd) and gbx-powercut-apply.
 *
 * The side directory (GBX_PC_SIDE, default "<data dir>.powercut") holds:
 *   ready          the pid of the process the shim runs in (proof it loaded)
 *   names          the durable namespace of the data dir: what a power cut
 *                  leaves, as of the last fsync of the directory
 *   shadow/<sid>   the durable content of one file (one inode's lineage), as
 *                  of its last fsync/fdatasync; absent = empty
 *   log            the shim's notes (start, files it could not follow)
 *
 * names: a first line PC_NAMES_MAGIC, then one line per durable entry:
 *   "<sid> <dev> <ino> <name>\n" (sid, dev, ino in decimal; the name has no
 *   whitespace). The shim replaces it atomically (write + rename), so a
 *   SIGKILL never leaves half a file.
 *
 * Info logs (names starting with "LOG") are left out of the emulation:
 * RocksDB writes them through stdio, which the shim cannot follow, and they
 * play no part in recovery.
 */
#ifndef GBX_REL_PCSTATE_H
#define GBX_REL_PCSTATE_H

#include <string.h>

#define PC_NAMES_MAGIC "gbx-powercut 1"
#define PC_READY       "ready"
#define PC_NAMES       "names"
#define PC_NAMES_TMP   "names.tmp"
#define PC_SHADOW_DIR  "shadow"
#define PC_LOG         "log"
/* Suffix of the default side directory. */
#define PC_SIDE_SUFFIX ".powercut"

/* 1 if name (a basename) is an info log, outside the emulation. */
static inline int pc_unmanaged(const char *name) {
  return strncmp(name, "LOG", 3) == 0;
}

#endif
