/* strutil.h - a NUL-terminated copy of a length-delimited string. msgpack
 * and blob strings are not NUL-terminated, so strndup (which may look for a
 * NUL past n... and does, under strict sanitizers) is never used on them. */
#ifndef GBX_STRUTIL_H
#define GBX_STRUTIL_H

#include <stdlib.h>
#include <string.h>

/* Returns a malloc'd copy of p[0..n) plus a NUL, or NULL when out of memory. */
static inline char *str_copy(const void *p, size_t n) {
  char *s = malloc(n + 1);
  if (!s) return NULL;
  if (n) memcpy(s, p, n);
  s[n] = 0;
  return s;
}

#endif
