/* result.c - one run's measurements (see result.h). */
#include "result.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void res_set(result_t *r, const char *name, double v) {
  for (size_t i = 0; i < r->nm; i++) {
    if (!strcmp(r->m[i].name, name)) {
      r->m[i].v = v;
      return;
    }
  }
  if (r->nm == RES_MAX_METRICS) {
    res_note(r, "metric %s dropped (too many metrics)", name);
    return;
  }
  snprintf(r->m[r->nm].name, RES_NAME, "%s", name);
  r->m[r->nm++].v = v;
}

double res_get(const result_t *r, const char *name) {
  for (size_t i = 0; i < r->nm; i++)
    if (!strcmp(r->m[i].name, name))
      return r->m[i].v;
  return -1;
}

void res_note(result_t *r, const char *fmt, ...) {
  size_t len = strlen(r->note);
  if (len + 3 >= sizeof(r->note))
    return;
  if (len) {
    r->note[len++] = ';';
    r->note[len++] = ' ';
    r->note[len] = 0;
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->note + len, sizeof(r->note) - len, fmt, ap);
  va_end(ap);
}
