/* fuzz_filter.c - libFuzzer target for the filter-policy compiler and
 * matcher (server/filter.h).
 *
 * Input layout: byte 0 picks the scope (bit 0: body), then the policy up to
 * the first NUL byte, then the message: lines "name<TAB>type<TAB>value"
 * become attributes (up to GBX_MAX_ATTRS), and everything from the first
 * line that is not one is the body. Without a NUL the message is empty.
 *
 * The policy and the message are each copied to the end of a buffer that an
 * inaccessible page follows, so a read past either faults even inside cJSON,
 * which the sanitizers do not instrument.
 *
 * Besides "no crash, no sanitizer report" it aborts when an invariant breaks:
 *   - a refused policy reports GBX_E_BAD_FILTER_POLICY with a message;
 *   - matching is a function of (policy, message): the same on a second call
 *     through the message's caches, on a fresh message, and with a second
 *     compile of the same policy;
 *   - a policy valid for attribute scope is valid for body scope (it has no
 *     nesting, so it counts the same).
 * Replayed over tests/fuzz/corpus/fuzz_filter by replay_main.c under ctest. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "filter.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/* Inputs longer than this are not fuzzed (libFuzzer's default -max_len is
 * 4096; the committed seeds are far smaller). */
#define GUARDED_MAX (1u << 20)

/* Copies s[0..n) so that its last byte sits just before an inaccessible
 * page. The mapping is made once and reused. NULL if it cannot be made. */
static char *guarded(const char *s, size_t n) {
  static char *region;
  size_t pg = (size_t)sysconf(_SC_PAGESIZE);
  if (!region) {
    char *m = mmap(NULL, GUARDED_MAX + pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (m == MAP_FAILED || mprotect(m + GUARDED_MAX, pg, PROT_NONE) != 0)
      return NULL;
    region = m;
  }
  char *p = region + GUARDED_MAX - n;
  if (n)
    memcpy(p, s, n);
  return p;
}

/* Splits the message part into attributes and a body. */
static uint32_t parse_message(const char *p, size_t n, gbx_attr_t *a, const char **body,
                              size_t *blen) {
  uint32_t na = 0;
  while (na < GBX_MAX_ATTRS) {
    const char *nl = memchr(p, '\n', n);
    size_t line = nl ? (size_t)(nl - p) : n;
    const char *t1 = memchr(p, '\t', line);
    const char *t2 = t1 ? memchr(t1 + 1, '\t', line - (size_t)(t1 + 1 - p)) : NULL;
    if (!t2)
      break;
    a[na++] = (gbx_attr_t){p,      (uint32_t)(t1 - p),         t1 + 1,
                           (uint32_t)(t2 - t1 - 1), t2 + 1, (uint32_t)(line - (size_t)(t2 + 1 - p))};
    size_t used = nl ? line + 1 : line;
    p += used;
    n -= used;
  }
  *body = p;
  *blen = n;
  return na;
}

static void check_refusal(const gbx_errbuf_t *eb) {
  CHECK(eb->code == GBX_E_BAD_FILTER_POLICY || eb->code == GBX_E_INTERNAL);
  CHECK(memchr(eb->msg, '\0', sizeof eb->msg) != NULL && eb->msg[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  gbx_attr_t attrs[GBX_MAX_ATTRS];
  gbx_errbuf_t eb = {0};
  const char *body;
  size_t blen;

  if (size < 1 || size > GUARDED_MAX)
    return 0;
  int scope = (data[0] & 1) ? FILTER_SCOPE_BODY : FILTER_SCOPE_ATTRIBUTES;
  const char *policy = (const char *)data + 1;
  size_t rest = size - 1;
  const char *nul = memchr(policy, '\0', rest);
  size_t plen = nul ? (size_t)(nul - policy) : rest;
  const char *msg = nul ? nul + 1 : policy + rest;
  size_t mlen = nul ? rest - plen - 1 : 0;

  /* compile from the guarded copy; keep a plain copy for the recompiles,
   * which run after the message has taken the guarded buffer */
  char *copy = malloc(plen ? plen : 1);
  const char *gp = guarded(policy, plen);
  if (!copy || !gp) {
    free(copy);
    return 0;
  }
  memcpy(copy, policy, plen);
  filter_t *f = filter_compile(gp, plen, scope, &eb);
  if (!f) {
    check_refusal(&eb);
    free(copy);
    return 0;
  }
  CHECK(filter_scope(f) == scope);
  uint32_t na = parse_message(guarded(msg, mlen), mlen, attrs, &body, &blen);

  filter_msg_t m;
  filter_msg_init(&m, attrs, na, body, blen);
  int r1 = filter_match(f, &m);
  int r2 = filter_match(f, &m);
  filter_msg_free(&m);
  CHECK(r1 == 0 || r1 == 1);
  CHECK(r1 == r2);

  filter_t *g = filter_compile(copy, plen, scope, &eb);
  CHECK(g != NULL);
  filter_msg_init(&m, attrs, na, body, blen);
  CHECK(filter_match(g, &m) == r1);
  filter_msg_free(&m);
  filter_free(g);

  if (scope == FILTER_SCOPE_ATTRIBUTES) {
    filter_t *b = filter_compile(copy, plen, FILTER_SCOPE_BODY, &eb);
    CHECK(b != NULL);
    filter_msg_init(&m, attrs, na, body, blen);
    int rb = filter_match(b, &m);
    CHECK(rb == 0 || rb == 1);
    filter_msg_free(&m);
    filter_free(b);
  }
  filter_free(f);
  free(copy);
  return 0;
}
