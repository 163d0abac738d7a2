/* text.c - the text rules of text.h. */
#include "text.h"

#include <string.h>

uint32_t utf8_next(const uint8_t *p, size_t n, size_t *i) {
  const uint8_t *s = p + *i;
  size_t left = n - *i;
  uint32_t c = s[0];
  uint32_t need = c >= 0xF5 ? 0 : c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC2 ? 1 : 0;
  if (c >= 0x80 && (need == 0 || left <= need)) {
    (*i)++;
    return UTF8_MALFORMED + c;
  }
  /* the second byte's range rules out overlong forms, surrogates and
   * values past U+10FFFF */
  uint32_t lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
  uint32_t hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
  if (need && (s[1] < lo || s[1] > hi)) {
    (*i)++;
    return UTF8_MALFORMED + c;
  }
  uint32_t cp = need ? c & (0x3Fu >> need) : c;
  for (uint32_t k = 1; k <= need; k++) {
    if ((s[k] & 0xC0) != 0x80) {
      (*i)++;
      return UTF8_MALFORMED + c;
    }
    cp = cp << 6 | (s[k] & 0x3Fu);
  }
  *i += need + 1;
  return cp;
}

int utf8_valid(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n;)
    if (utf8_next(p, n, &i) >= UTF8_MALFORMED)
      return 0;
  return 1;
}

int text_valid(const uint8_t *p, size_t n, uint32_t *bad) {
  for (size_t i = 0; i < n;) {
    uint32_t c = utf8_next(p, n, &i);
    if (c >= UTF8_MALFORMED) {
      *bad = 0xFFFFFFFFu;
      return 0;
    }
    int ok = c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) ||
             (c >= 0xE000 && c <= 0xFFFD) || c >= 0x10000;
    if (!ok) {
      *bad = c;
      return 0;
    }
  }
  return 1;
}

int json_has_nul(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (p[i] == 0)
      return 1;
    if (p[i] != '\\' || i + 1 == n)
      continue;
    if (p[i + 1] == 'u' && i + 5 < n && !memcmp(p + i + 2, "0000", 4))
      return 1;
    i++; /* the escaped character */
  }
  return 0;
}

int text_json_valid(const char *p, size_t n) {
  uint32_t bad;
  return text_valid((const uint8_t *)p, n, &bad) && !json_has_nul(p, n);
}
