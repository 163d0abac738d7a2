/* creds.c - the principal set: parsing and checking the credentials file,
 * lookups by access key id and by name, and admin-defined principals.
 *
 * Principals sit in one array in file order (admin-defined ones after);
 * two open-addressing hash tables map names and access key ids to array
 * slots and are rebuilt whenever the set changes (a reload or an admin
 * operation, never a request). Keys come only from the file and from
 * admins, so request input cannot grow a probe chain.
 *
 * Secrets are wiped (OPENSSL_cleanse) from every buffer that held them:
 * the file text, the parsed JSON and freed principals. No message here ever
 * includes a secret or an access key id's value. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>

#include "creds.h"

#define ACCOUNT_MAX (sizeof(((principal_t *)0)->account) - 1)

struct creds {
  principal_t *v;
  uint32_t n, cap;
  uint32_t *by_name, *by_akid; /* slot + 1, 0 = empty; hmask + 1 entries each */
  uint32_t hmask;
};

static void cerr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void cerr(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  if (!err || !errlen)
    return;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* Bytes of outside text shown in a message. */
#define SHOWN_MAX 64u

/* s cut to SHOWN_MAX bytes, bytes outside printable ASCII as '?', so a
 * message (and the log line it may become) holds no control characters. */
static const char *shown(const char *s, char buf[SHOWN_MAX + 1]) {
  size_t i = 0;
  for (; s && s[i] && i < SHOWN_MAX; i++)
    buf[i] = (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f ? s[i] : '?';
  buf[i] = 0;
  return buf;
}

/* ---- the set and its indexes --------------------------------------------- */

static uint32_t hash(const char *s, size_t n) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

/* Rebuilds both indexes for the current array. -1 when out of memory (the
 * old indexes are kept, so the set stays consistent only if the caller
 * undoes its change). */
static int reindex(creds_t *c) {
  uint32_t cap = 16;
  while (cap < 2 * (uint64_t)c->n + 2)
    cap *= 2;
  uint32_t *bn = calloc(cap, sizeof *bn), *ba = calloc(cap, sizeof *ba);
  if (!bn || !ba) {
    free(bn);
    free(ba);
    return -1;
  }
  for (uint32_t i = 0; i < c->n; i++) {
    const principal_t *p = &c->v[i];
    uint32_t h = hash(p->name, strlen(p->name)) & (cap - 1);
    while (bn[h])
      h = (h + 1) & (cap - 1);
    bn[h] = i + 1;
    h = hash(p->akid, strlen(p->akid)) & (cap - 1);
    while (ba[h])
      h = (h + 1) & (cap - 1);
    ba[h] = i + 1;
  }
  free(c->by_name);
  free(c->by_akid);
  c->by_name = bn;
  c->by_akid = ba;
  c->hmask = cap - 1;
  return 0;
}

static const principal_t *lookup(const creds_t *c, const uint32_t *tab, int akid, const char *s,
                                 size_t len) {
  if (!c || !tab || !s)
    return NULL;
  uint32_t h = hash(s, len) & c->hmask;
  while (tab[h]) {
    const principal_t *p = &c->v[tab[h] - 1];
    const char *k = akid ? p->akid : p->name;
    if (strlen(k) == len && memcmp(k, s, len) == 0)
      return p;
    h = (h + 1) & c->hmask;
  }
  return NULL;
}

const principal_t *creds_by_akid(const creds_t *c, const char *akid, size_t len) {
  return c ? lookup(c, c->by_akid, 1, akid, len) : NULL;
}

const principal_t *creds_by_name(const creds_t *c, const char *name, size_t len) {
  return c ? lookup(c, c->by_name, 0, name, len) : NULL;
}

uint32_t creds_count(const creds_t *c) {
  return c ? c->n : 0;
}

const principal_t *creds_at(const creds_t *c, uint32_t i) {
  return c && i < c->n ? &c->v[i] : NULL;
}

creds_t *creds_new(void) {
  creds_t *c = calloc(1, sizeof *c);
  if (c && reindex(c) < 0) {
    free(c);
    return NULL;
  }
  return c;
}

/* Frees what p owns and wipes its secret. */
static void principal_clear(principal_t *p) {
  policy_free(p->policy);
  free(p->policy_json);
  OPENSSL_cleanse(p->secret, sizeof p->secret);
  p->policy = NULL;
  p->policy_json = NULL;
  p->secret_len = 0;
}

void creds_free(creds_t *c) {
  if (!c)
    return;
  for (uint32_t i = 0; i < c->n; i++)
    principal_clear(&c->v[i]);
  free(c->v);
  free(c->by_name);
  free(c->by_akid);
  free(c);
}

/* Makes room for one more principal. */
static int grow(creds_t *c) {
  if (c->n < c->cap)
    return 0;
  uint32_t cap = c->cap ? c->cap * 2 : 8;
  principal_t *v = realloc(c->v, (size_t)cap * sizeof *v);
  if (!v)
    return -1;
  c->v = v;
  c->cap = cap;
  return 0;
}

/* ---- field checks --------------------------------------------------------- */

static int valid_name(const char *s, size_t n) {
  if (n < 1 || n > CREDS_MAX_NAME)
    return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          strchr("+=,.@_-", ch)) ||
        ch == 0)
      return 0;
  }
  return 1;
}

static int valid_akid(const char *s, size_t n) {
  if (n < 16 || n > CREDS_MAX_AKID)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
      return 0;
  return 1;
}

static int valid_secret(const char *s, size_t n) {
  if (n < CREDS_MIN_SECRET || n > CREDS_MAX_SECRET)
    return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
      return 0;
  return 1;
}

/* Account ids appear inside ARNs, so no ':' '/' or wildcard may be in one. */
static int valid_account(const char *s) {
  size_t n = s ? strnlen(s, ACCOUNT_MAX + 1) : 0;
  if (n < 1 || n > ACCOUNT_MAX)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
          (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
      return 0;
  return 1;
}

/* Checks p's fields (not its policy); the reason in err. */
static int check_principal(const principal_t *p, const char *where, char *err, size_t errlen) {
  if (!valid_name(p->name, strnlen(p->name, sizeof p->name))) {
    cerr(err, errlen, "%s: name must be 1-%d characters of A-Z a-z 0-9 + = , . @ _ -", where,
         CREDS_MAX_NAME);
    return -1;
  }
  if (!valid_akid(p->akid, strnlen(p->akid, sizeof p->akid))) {
    cerr(err, errlen, "%s: access_key_id must be 16-%d characters of A-Z 0-9", where,
         CREDS_MAX_AKID);
    return -1;
  }
  if (p->secret_len > CREDS_MAX_SECRET || !valid_secret(p->secret, p->secret_len) ||
      memchr(p->secret, 0, p->secret_len)) {
    cerr(err, errlen, "%s: secret_access_key must be %d-%d printable ASCII characters, no spaces",
         where, CREDS_MIN_SECRET, CREDS_MAX_SECRET);
    return -1;
  }
  if (!valid_account(p->account)) {
    cerr(err, errlen, "%s: account_id must be 1-%zu characters of A-Z a-z 0-9 - _", where,
         ACCOUNT_MAX);
    return -1;
  }
  return 0;
}

/* ---- parsing --------------------------------------------------------------- */

/* The 1-based line of offset off in text. */
static unsigned line_of(const char *text, size_t len, size_t off) {
  unsigned line = 1;
  for (size_t i = 0; i < off && i < len; i++)
    line += text[i] == '\n';
  return line;
}

/* Wipes every secret_access_key string of the parsed document before it is
 * freed, so no copy of a secret is left in freed heap memory. */
static void wipe_doc_secrets(cJSON *doc) {
  const cJSON *ps = cJSON_GetObjectItemCaseSensitive(doc, "principals");
  for (const cJSON *e = cJSON_IsArray(ps) ? ps->child : NULL; e; e = e->next)
    for (cJSON *k = cJSON_IsObject(e) ? e->child : NULL; k; k = k->next)
      if (cJSON_IsString(k) && k->string && !strcmp(k->string, "secret_access_key"))
        OPENSSL_cleanse(k->valuestring, strlen(k->valuestring));
}

/* Copies a JSON string field into dst (cap bytes with the NUL); -1 if it is
 * not a string or too long. */
static int copy_str(const cJSON *v, char *dst, size_t cap, size_t *outlen) {
  if (!cJSON_IsString(v))
    return -1;
  size_t n = strlen(v->valuestring);
  if (n >= cap)
    return -1;
  memcpy(dst, v->valuestring, n + 1);
  if (outlen)
    *outlen = n;
  return 0;
}

/* Fills p from principal object o (index i). */
static int parse_principal(const cJSON *o, uint32_t i, const char *default_account, principal_t *p,
                           char *err, size_t errlen) {
  static const char *const keys[] = {"name", "access_key_id", "secret_access_key", "account_id",
                                     "policy"};
  const cJSON *v[5] = {0};
  char where[96], perrbuf[256], sb[SHOWN_MAX + 1];

  snprintf(where, sizeof where, "principal %u", i);
  if (!cJSON_IsObject(o)) {
    cerr(err, errlen, "%s: must be an object", where);
    return -1;
  }
  /* name the principal in messages as soon as its name is known good */
  const cJSON *nm = cJSON_GetObjectItemCaseSensitive(o, "name");
  if (cJSON_IsString(nm) && valid_name(nm->valuestring, strlen(nm->valuestring)))
    snprintf(where, sizeof where, "principal %u (\"%s\")", i, nm->valuestring);
  for (const cJSON *e = o->child; e; e = e->next) {
    size_t k;
    for (k = 0; k < 5 && strcmp(e->string, keys[k]) != 0; k++)
      ;
    if (k == 5) {
      cerr(err, errlen, "%s: unknown key \"%s\"", where, shown(e->string, sb));
      return -1;
    }
    if (v[k]) {
      cerr(err, errlen, "%s: duplicate key \"%s\"", where, keys[k]);
      return -1;
    }
    v[k] = e;
  }
  for (size_t k = 0; k < 3; k++)
    if (!v[k]) {
      cerr(err, errlen, "%s: \"%s\" is missing", where, keys[k]);
      return -1;
    }
  memset(p, 0, sizeof *p);
  p->source = CREDS_FROM_FILE;
  if (copy_str(v[0], p->name, sizeof p->name, NULL) < 0 || !valid_name(p->name, strlen(p->name))) {
    cerr(err, errlen, "%s: name must be 1-%d characters of A-Z a-z 0-9 + = , . @ _ -", where,
         CREDS_MAX_NAME);
    return -1;
  }
  if (copy_str(v[1], p->akid, sizeof p->akid, NULL) < 0) {
    cerr(err, errlen, "%s: access_key_id must be 16-%d characters of A-Z 0-9", where,
         CREDS_MAX_AKID);
    return -1;
  }
  if (copy_str(v[2], p->secret, sizeof p->secret, &p->secret_len) < 0) {
    cerr(err, errlen, "%s: secret_access_key must be %d-%d printable ASCII characters, no spaces",
         where, CREDS_MIN_SECRET, CREDS_MAX_SECRET);
    return -1;
  }
  if (v[3]) {
    if (copy_str(v[3], p->account, sizeof p->account, NULL) < 0 || !valid_account(p->account)) {
      cerr(err, errlen, "%s: account_id must be 1-%zu characters of A-Z a-z 0-9 - _", where,
           ACCOUNT_MAX);
      return -1;
    }
  } else if (!valid_account(default_account)) {
    cerr(err, errlen, "%s: no account_id and no valid default account", where);
    return -1;
  } else {
    memcpy(p->account, default_account, strlen(default_account) + 1);
  }
  if (check_principal(p, where, err, errlen) < 0)
    return -1;
  if (v[4]) {
    if (!cJSON_IsObject(v[4])) {
      cerr(err, errlen, "%s: policy must be a policy document (a JSON object)", where);
      return -1;
    }
    p->policy = policy_from_json(v[4], POLICY_IDENTITY, perrbuf, sizeof perrbuf);
    if (!p->policy) {
      cerr(err, errlen, "%s: policy: %s", where, perrbuf);
      return -1;
    }
    p->policy_json = cJSON_PrintUnformatted(v[4]);
    if (!p->policy_json) {
      cerr(err, errlen, "%s: out of memory", where);
      return -1;
    }
  }
  return 0;
}

creds_t *creds_parse(const char *json, size_t len, const char *default_account, char *err,
                     size_t errlen) {
  cJSON *doc = NULL;
  creds_t *c = NULL;
  const char *end = NULL;
  principal_t p = {0};
  char sb[SHOWN_MAX + 1];

  if (err && errlen)
    err[0] = 0;
  if (len > CREDS_MAX_FILE) {
    cerr(err, errlen, "%zu bytes, more than %u", len, CREDS_MAX_FILE);
    goto fail;
  }
  size_t first = 0;
  while (json && first < len && strchr(" \t\r\n", json[first]) && json[first])
    first++;
  if (!json || first == len) {
    cerr(err, errlen,
         "is empty: an empty credentials file never means allow everyone; list principals");
    goto fail;
  }
  doc = cJSON_ParseWithLengthOpts(json, len, &end, 0);
  if (doc) {
    for (const char *q = end; q < json + len; q++)
      if (*q != ' ' && *q != '\t' && *q != '\n' && *q != '\r') {
        cerr(err, errlen, "line %u: text after the JSON document",
             line_of(json, len, (size_t)(q - json)));
        goto fail;
      }
  } else {
    /* cJSON reports where it stopped through end (the same position as
     * cJSON_GetErrorPtr, without its global state) */
    size_t off = end && end >= json && end <= json + len ? (size_t)(end - json) : 0;
    cerr(err, errlen, "line %u: not valid JSON", line_of(json, len, off));
    goto fail;
  }
  if (!cJSON_IsObject(doc)) {
    cerr(err, errlen, "must be a JSON object {\"principals\": [...]}");
    goto fail;
  }
  const cJSON *ps = NULL;
  for (const cJSON *e = doc->child; e; e = e->next) {
    if (strcmp(e->string, "principals") != 0) {
      cerr(err, errlen, "unknown key \"%s\" (the file holds only \"principals\")",
           shown(e->string, sb));
      goto fail;
    }
    if (ps) {
      cerr(err, errlen, "duplicate key \"principals\"");
      goto fail;
    }
    ps = e;
  }
  if (!ps || !cJSON_IsArray(ps)) {
    cerr(err, errlen,
         "has no \"principals\" array: an empty credentials file never means allow "
         "everyone");
    goto fail;
  }
  uint32_t n = 0;
  for (const cJSON *e = ps->child; e; e = e->next)
    if (++n > CREDS_MAX_PRINCIPALS) {
      cerr(err, errlen, "more than %u principals", CREDS_MAX_PRINCIPALS);
      goto fail;
    }
  if (n == 0) {
    cerr(err, errlen, "lists no principals: an empty credentials file never means allow everyone");
    goto fail;
  }
  c = creds_new();
  if (!c) {
    cerr(err, errlen, "out of memory");
    goto fail;
  }
  c->v = calloc(n, sizeof *c->v);
  if (!c->v) {
    cerr(err, errlen, "out of memory");
    goto fail;
  }
  c->cap = n;
  uint32_t i = 0;
  for (const cJSON *e = ps->child; e; e = e->next, i++) {
    if (parse_principal(e, i, default_account, &p, err, errlen) < 0)
      goto fail;
    c->v[c->n++] = p;
    memset(&p, 0, sizeof p);
  }
  if (reindex(c) < 0) {
    cerr(err, errlen, "out of memory");
    goto fail;
  }
  /* the indexes hold duplicates too; find them by looking each one up */
  for (i = 0; i < c->n; i++) {
    const principal_t *q = &c->v[i];
    if (creds_by_name(c, q->name, strlen(q->name)) != q) {
      cerr(err, errlen, "principal %u: name \"%s\" is used twice", i, q->name);
      goto fail;
    }
    if (creds_by_akid(c, q->akid, strlen(q->akid)) != q) {
      cerr(err, errlen, "principal %u (\"%s\"): access_key_id is used twice", i, q->name);
      goto fail;
    }
  }
  wipe_doc_secrets(doc);
  cJSON_Delete(doc);
  return c;

fail:
  principal_clear(&p);
  if (doc)
    wipe_doc_secrets(doc);
  cJSON_Delete(doc);
  creds_free(c);
  return NULL;
}

creds_t *creds_load_file(const char *path, const char *default_account, char *err, size_t errlen) {
  char *buf = NULL, sub[512];
  size_t size = 0;
  creds_t *c = NULL;
  struct stat st;
  /* O_NOFOLLOW: a symlink could point anywhere; O_NONBLOCK: opening a FIFO
   * must not hang (fstat then refuses it) */
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

  if (fd < 0) {
    cerr(err, errlen, "credentials file %s: %s", path,
         errno == ELOOP ? "is a symbolic link (not followed)" : strerror(errno));
    goto fail;
  }
  if (fstat(fd, &st) != 0) {
    cerr(err, errlen, "credentials file %s: %s", path, strerror(errno));
    goto fail;
  }
  if (!S_ISREG(st.st_mode)) {
    cerr(err, errlen, "credentials file %s is not a regular file", path);
    goto fail;
  }
  if (st.st_uid != geteuid() && st.st_uid != 0) {
    cerr(err, errlen, "credentials file %s is owned by uid %u: it must be owned by uid %u or root",
         path, (unsigned)st.st_uid, (unsigned)geteuid());
    goto fail;
  }
  if ((st.st_mode & 077) != 0) {
    cerr(err, errlen,
         "credentials file %s has mode %04o: it must not be readable or writable by group or "
         "others (chmod 600 %s)",
         path, (unsigned)(st.st_mode & 07777), path);
    goto fail;
  }
  if (st.st_size < 0 || (uint64_t)st.st_size > CREDS_MAX_FILE) {
    cerr(err, errlen, "credentials file %s is %lld bytes, more than %u", path,
         (long long)st.st_size, CREDS_MAX_FILE);
    goto fail;
  }
  size = (size_t)st.st_size;
  buf = malloc(size + 1);
  if (!buf) {
    cerr(err, errlen, "credentials file %s: out of memory", path);
    goto fail;
  }
  /* read one byte more than fstat said, to notice a file growing under us */
  size_t got = 0;
  while (got < size + 1) {
    ssize_t r = read(fd, buf + got, size + 1 - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      cerr(err, errlen, "credentials file %s: %s", path, strerror(errno));
      goto fail;
    }
    if (r == 0)
      break;
    got += (size_t)r;
  }
  if (got != size) {
    cerr(err, errlen, "credentials file %s changed while it was read", path);
    goto fail;
  }
  c = creds_parse(buf, size, default_account, sub, sizeof sub);
  if (!c)
    cerr(err, errlen, "credentials file %s: %s", path, sub);

fail:
  if (buf) {
    OPENSSL_cleanse(buf, size + 1);
    free(buf);
  }
  if (fd >= 0)
    close(fd);
  return c;
}

/* ---- admin-defined principals --------------------------------------------- */

int creds_put_admin(creds_t *c, principal_t *p, char *err, size_t errlen) {
  /* On success p->policy and p->policy_json belong to the set (and are set
   * to NULL in *p); on failure they stay with the caller. */
  if (!c || !p) {
    cerr(err, errlen, "no principal");
    return -1;
  }
  if (check_principal(p, "principal", err, errlen) < 0)
    return -1;
  const principal_t *byn = creds_by_name(c, p->name, strlen(p->name));
  const principal_t *bya = creds_by_akid(c, p->akid, strlen(p->akid));
  if ((byn && byn->source == CREDS_FROM_FILE) || (bya && bya->source == CREDS_FROM_FILE)) {
    cerr(err, errlen,
         "principal \"%s\": its %s belongs to a principal of the credentials file, which wins",
         p->name, byn && byn->source == CREDS_FROM_FILE ? "name" : "access key id");
    return -1;
  }
  if (bya && bya != byn) {
    cerr(err, errlen, "principal \"%s\": its access key id belongs to principal \"%s\"", p->name,
         bya->name);
    return -1;
  }
  if (byn) { /* replace in place: the indexes stay right (same name, and
              * the key is either unchanged or unused) */
    uint32_t i = (uint32_t)(byn - c->v);
    principal_t old = c->v[i];
    c->v[i] = *p;
    c->v[i].source = CREDS_FROM_ADMIN;
    if (reindex(c) < 0) {
      c->v[i] = old;
      cerr(err, errlen, "out of memory");
      return -1;
    }
    principal_clear(&old);
  } else {
    if (grow(c) < 0) {
      cerr(err, errlen, "out of memory");
      return -1;
    }
    c->v[c->n] = *p;
    c->v[c->n].source = CREDS_FROM_ADMIN;
    c->n++;
    if (reindex(c) < 0) {
      c->n--;
      memset(&c->v[c->n], 0, sizeof c->v[c->n]);
      cerr(err, errlen, "out of memory");
      return -1;
    }
  }
  p->policy = NULL;
  p->policy_json = NULL;
  return 0;
}

int creds_remove_admin(creds_t *c, const char *name, size_t len) {
  const principal_t *q = creds_by_name(c, name, len);
  if (!q || q->source != CREDS_FROM_ADMIN)
    return -1;
  uint32_t i = (uint32_t)(q - c->v);
  principal_t gone = c->v[i];
  memmove(&c->v[i], &c->v[i + 1], (size_t)(c->n - i - 1) * sizeof *c->v);
  c->n--;
  if (reindex(c) < 0) {
    /* put it back: a failed removal leaves the set as it was */
    memmove(&c->v[i + 1], &c->v[i], (size_t)(c->n - i) * sizeof *c->v);
    c->v[i] = gone;
    c->n++;
    return -1;
  }
  principal_clear(&gone);
  return 0;
}

creds_t *creds_merge_admin(creds_t *file, const creds_t *old,
                           void (*warn_cb)(void *ctx, const char *msg), void *ctx) {
  /* On NULL (out of memory) file has been freed. */
  principal_t q = {0};
  char msg[256];
  if (!file)
    return NULL;
  for (uint32_t i = 0; old && i < old->n; i++) {
    const principal_t *p = &old->v[i];
    if (p->source != CREDS_FROM_ADMIN)
      continue;
    const principal_t *byn = creds_by_name(file, p->name, strlen(p->name));
    const principal_t *bya = creds_by_akid(file, p->akid, strlen(p->akid));
    if (byn || bya) {
      if (warn_cb) {
        snprintf(msg, sizeof msg,
                 "admin-defined principal \"%s\" dropped: its %s is now defined by the "
                 "credentials file",
                 p->name, byn ? "name" : "access key id");
        warn_cb(ctx, msg);
      }
      continue;
    }
    q = *p;
    q.policy = p->policy ? policy_clone(p->policy) : NULL;
    q.policy_json = p->policy_json ? strdup(p->policy_json) : NULL;
    if ((p->policy && !q.policy) || (p->policy_json && !q.policy_json) || grow(file) < 0)
      goto fail;
    file->v[file->n++] = q;
    memset(&q, 0, sizeof q);
  }
  if (reindex(file) < 0)
    goto fail;
  return file;

fail:
  principal_clear(&q);
  creds_free(file);
  return NULL;
}
