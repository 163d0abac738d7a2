/* auth.c - see auth.h. */
#include "auth.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

typedef struct guard_slot {
  char addr[200]; /* the bucket: an address, or "address|key"; "" = free */
  uint32_t fails;
  uint64_t last;  /* time of the last failure */
  uint64_t until; /* next attempt not before */
} guard_slot_t;

struct auth {
  char path[PATH_MAX];
  char account[33];
  creds_t *creds;
  uint64_t gen;
  guard_slot_t guard[AUTH_GUARD_SLOTS];
};

auth_t *auth_new(const char *path, const char *default_account, char *err, size_t errlen) {
  auth_t *a = calloc(1, sizeof(*a));
  if (!a) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  snprintf(a->account, sizeof(a->account), "%s", default_account);
  a->gen = 1;
  if (!path) return a;
  if (strlen(path) >= sizeof(a->path)) {
    snprintf(err, errlen, "credentials file path is too long");
    free(a);
    return NULL;
  }
  snprintf(a->path, sizeof(a->path), "%s", path);
  a->creds = creds_load_file(path, default_account, err, errlen);
  if (!a->creds) {
    free(a);
    return NULL;
  }
  return a;
}

void auth_free(auth_t *a) {
  if (!a) return;
  creds_free(a->creds);
  free(a);
}

int auth_enabled(const auth_t *a) { return a && a->creds; }
creds_t *auth_creds(const auth_t *a) { return a ? a->creds : NULL; }
uint64_t auth_generation(const auth_t *a) { return a->gen; }
void auth_touch(auth_t *a) { a->gen++; }

static void warn_dropped(void *ctx, const char *msg) {
  (void)ctx;
  LOG(LOG_WARN, "credentials reload: %s", msg);
}

int auth_reload(auth_t *a, char *err, size_t errlen) {
  if (!a->creds) {
    snprintf(err, errlen, "no credentials file is configured (--credentials)");
    return -1;
  }
  creds_t *file = creds_load_file(a->path, a->account, err, errlen);
  if (!file) return -1;
  creds_t *merged = creds_merge_admin(file, a->creds, warn_dropped, NULL);
  if (!merged) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  creds_free(a->creds);
  a->creds = merged;
  a->gen++;
  return 0;
}

int auth_put_admin(auth_t *a, const char *entry, size_t len, int *conflict, char *err,
                   size_t errlen) {
  *conflict = 0;
  if (!a->creds) {
    snprintf(err, errlen, "principal management needs --credentials (authentication is off)");
    return -1;
  }
  /* validated as a one-principal credentials file, so both paths agree */
  static const char pre[] = "{\"principals\":[", post[] = "]}";
  size_t n = sizeof(pre) - 1 + len + sizeof(post) - 1;
  char *doc = malloc(n + 1);
  if (!doc) abort();
  memcpy(doc, pre, sizeof(pre) - 1);
  memcpy(doc + sizeof(pre) - 1, entry, len);
  memcpy(doc + sizeof(pre) - 1 + len, post, sizeof(post));
  creds_t *one = creds_parse(doc, n, a->account, err, errlen);
  OPENSSL_cleanse(doc, n);
  free(doc);
  if (!one) return -1;
  principal_t p = *creds_at(one, 0);
  p.policy = policy_clone(p.policy);
  p.policy_json = p.policy_json ? strdup(p.policy_json) : NULL;
  if ((creds_at(one, 0)->policy && !p.policy) || (creds_at(one, 0)->policy_json && !p.policy_json))
    abort(); /* out of memory */
  creds_free(one);
  int rc = creds_put_admin(a->creds, &p, err, errlen);
  if (rc != 0) {
    const principal_t *f = creds_by_name(a->creds, p.name, strlen(p.name));
    const principal_t *k = creds_by_akid(a->creds, p.akid, strlen(p.akid));
    *conflict = (f && f->source == CREDS_FROM_FILE) || (k && k->source == CREDS_FROM_FILE);
    policy_free(p.policy);
    free(p.policy_json);
  }
  OPENSSL_cleanse(p.secret, sizeof(p.secret));
  if (rc == 0) a->gen++;
  return rc;
}

int auth_remove_admin(auth_t *a, const char *name, int *in_file) {
  *in_file = 0;
  if (!a->creds) return -1;
  const principal_t *p = creds_by_name(a->creds, name, strlen(name));
  if (p && p->source == CREDS_FROM_FILE) {
    *in_file = 1;
    return -1;
  }
  if (creds_remove_admin(a->creds, name, strlen(name)) != 0) return -1;
  a->gen++;
  return 0;
}

void auth_id_of(const principal_t *p, auth_id_t *id) {
  uint8_t md[EVP_MAX_MD_SIZE];
  unsigned ml = 0;
  EVP_MD_CTX *x = EVP_MD_CTX_new();
  memset(id, 0, sizeof(*id));
  snprintf(id->name, sizeof(id->name), "%s", p->name);
  snprintf(id->account, sizeof(id->account), "%s", p->account);
  if (!x || EVP_DigestInit_ex(x, EVP_sha256(), NULL) != 1 ||
      EVP_DigestUpdate(x, p->name, strlen(p->name) + 1) != 1 ||
      EVP_DigestUpdate(x, p->akid, strlen(p->akid) + 1) != 1 ||
      EVP_DigestUpdate(x, p->secret, p->secret_len) != 1 ||
      EVP_DigestUpdate(x, p->account, strlen(p->account)) != 1 ||
      EVP_DigestFinal_ex(x, md, &ml) != 1)
    abort(); /* libcrypto cannot hash: nothing sensible is left to do */
  EVP_MD_CTX_free(x);
  memcpy(id->fp, md, AUTH_FP);
}

const principal_t *auth_current(const auth_t *a, const auth_id_t *id) {
  if (!a->creds) return NULL;
  const principal_t *p = creds_by_name(a->creds, id->name, strlen(id->name));
  if (!p) return NULL;
  auth_id_t now;
  auth_id_of(p, &now);
  return memcmp(now.fp, id->fp, AUTH_FP) == 0 ? p : NULL;
}

/* ---- the throttle: open addressing over a fixed table ---- */

static uint32_t addr_hash(const char *s) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
  return h;
}

/* The slot of addr, or NULL. Linear probing over a bounded window: the table
 * never fills (eviction keeps it below capacity). */
#define PROBE 16u

static guard_slot_t *find(auth_t *a, const char *addr) {
  uint32_t h = addr_hash(addr);
  for (uint32_t i = 0; i < PROBE; i++) {
    guard_slot_t *g = &a->guard[(h + i) % AUTH_GUARD_SLOTS];
    if (g->addr[0] && !strcmp(g->addr, addr)) return g;
  }
  return NULL;
}

uint64_t auth_guard_wait(auth_t *a, const char *addr, uint64_t now) {
  guard_slot_t *g = find(a, addr);
  if (!g) return 0;
  if (now - g->last >= AUTH_FORGET_MS) {
    g->addr[0] = 0;
    return 0;
  }
  return g->until > now ? g->until - now : 0;
}

void auth_guard_fail(auth_t *a, const char *addr, uint64_t now, uint32_t grace) {
  guard_slot_t *g = find(a, addr);
  if (!g) {
    /* a free slot in the window, else the one whose last failure is oldest */
    uint32_t h = addr_hash(addr);
    for (uint32_t i = 0; i < PROBE; i++) {
      guard_slot_t *c = &a->guard[(h + i) % AUTH_GUARD_SLOTS];
      if (!c->addr[0] || now - c->last >= AUTH_FORGET_MS) {
        g = c;
        break;
      }
      if (!g || c->last < g->last) g = c;
    }
    memset(g, 0, sizeof(*g));
    snprintf(g->addr, sizeof(g->addr), "%s", addr);
  } else if (now - g->last >= AUTH_FORGET_MS) {
    g->fails = 0;
  }
  if (g->fails < 32 + grace) g->fails++;
  g->last = now;
  if (g->fails <= grace) return;
  uint64_t d = (uint64_t)AUTH_DELAY_BASE_MS << (g->fails - grace - 1);
  g->until = now + (d < AUTH_DELAY_MAX_MS ? d : AUTH_DELAY_MAX_MS);
}
