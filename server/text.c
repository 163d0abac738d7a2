/* text.c - the text rules of text.h. */
#include "text.h"

#include <string.h>

int text_valid(const uint8_t *p, size_t n, uint32_t *bad) {
  size_t i = 0;
  while (i < n) {
    uint32_t c = p[i], need;
    if (c < 0x80) {
      need = 0;
    } else if ((c & 0xE0) == 0xC0) {
      need = 1;
      c &= 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      need = 2;
      c &= 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      need = 3;
      c &= 0x07;
    } else {
      *bad = 0xFFFFFFFFu;
      return 0;
    }
    if (need && i + need >= n) {
      *bad = 0xFFFFFFFFu;
      return 0;
    }
    for (uint32_t k = 1; k <= need; k++) {
      if ((p[i + k] & 0xC0) != 0x80) {
        *bad = 0xFFFFFFFFu;
        return 0;
      }
      c = (c << 6) | (p[i + k] & 0x3F);
    }
    /* overlong forms and surrogates are malformed UTF-8 */
    if ((need == 1 && c < 0x80) || (need == 2 && c < 0x800) || (need == 3 && c < 0x10000) ||
        (c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF) {
      *bad = 0xFFFFFFFFu;
      return 0;
    }
    int ok = c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) ||
             (c >= 0xE000 && c <= 0xFFFD) || c >= 0x10000;
    if (!ok) {
      *bad = c;
      return 0;
    }
    i += need + 1;
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
