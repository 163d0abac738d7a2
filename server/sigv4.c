/* sigv4.c - see sigv4.h. The steps follow AWS's "Create a signed AWS API
 * request": canonical request, string to sign, derived signing key,
 * signature; the verdict compares the signature in constant time. */
#include "sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ALGORITHM        "AWS4-HMAC-SHA256"
#define TERMINATOR       "aws4_request"
#define UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
/* Headers in one request looked at; the HTTP face passes at most 64. */
#define MAX_HDRS 256u
/* Upper bound of a canonical request: the target percent-encoded twice at
 * most triples, the header values are bounded, the rest is small. */
#define MAX_CANONICAL (3u * SIGV4_MAX_TARGET + SIGV4_MAX_HEADER_BYTES + SIGV4_MAX_AUTH + 1024u)

/* ---- small helpers ---- */

/* Appends to a heap buffer that refuses to grow past max (err set). */
typedef struct sb {
  char *p;
  size_t len, cap, max;
  int err; /* 1: over max, 2: out of memory */
} sb_t;

static void sb_put(sb_t *b, const void *p, size_t n) {
  if (b->err)
    return;
  if (n > b->max - b->len) {
    b->err = 1;
    return;
  }
  if (b->len + n > b->cap) {
    size_t nc = b->cap ? b->cap : 1024;
    while (nc < b->len + n)
      nc *= 2;
    char *q = realloc(b->p, nc);
    if (!q) {
      b->err = 2;
      return;
    }
    b->p = q;
    b->cap = nc;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
}

static void sb_ch(sb_t *b, char c) {
  sb_put(b, &c, 1);
}

static void sb_str(sb_t *b, const char *s) {
  sb_put(b, s, strlen(s));
}

static int unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

/* AWS's URI encoding: every byte but the unreserved set as %XX (upper-case
 * hex); '/' kept when keep_slash. */
static void sb_uri(sb_t *b, const char *s, size_t n, int keep_slash) {
  static const char hex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (unreserved(c) || (keep_slash && c == '/')) {
      sb_ch(b, (char)c);
    } else {
      char e[3] = {'%', hex[c >> 4], hex[c & 15]};
      sb_put(b, e, 3);
    }
  }
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static void to_hex(const uint8_t *p, size_t n, char *out) {
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hex[p[i] >> 4];
    out[2 * i + 1] = hex[p[i] & 15];
  }
  out[2 * n] = 0;
}

/* 64 hex digits (either case) into 32 bytes; -1 if not exactly that. */
static int unhex32(const char *s, size_t n, uint8_t out[32]) {
  if (n != 64)
    return -1;
  for (size_t i = 0; i < 32; i++) {
    int h = hexval(s[2 * i]), l = hexval(s[2 * i + 1]);
    if (h < 0 || l < 0)
      return -1;
    out[i] = (uint8_t)(h << 4 | l);
  }
  return 0;
}

static int sha256(const void *p, size_t n, uint8_t out[32]) {
  unsigned int l = 0;
  return EVP_Digest(p, n, out, &l, EVP_sha256(), NULL) == 1 && l == 32 ? 0 : -1;
}

static int hmac(const void *key, size_t kl, const void *p, size_t n, uint8_t out[32]) {
  unsigned int l = 0;
  return HMAC(EVP_sha256(), key, (int)kl, p, n, out, &l) && l == 32 ? 0 : -1;
}

static int eq_ci(const char *a, size_t al, const char *b) {
  size_t bl = strlen(b);
  return al == bl && strncasecmp(a, b, bl) == 0;
}

static int eq(const char *a, size_t al, const char *b) {
  size_t bl = strlen(b);
  return al == bl && memcmp(a, b, bl) == 0;
}

static sigv4_status_t fail(sigv4_result_t *res, sigv4_status_t st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static sigv4_status_t fail(sigv4_result_t *res, sigv4_status_t st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(res->msg, sizeof(res->msg), fmt, ap);
  va_end(ap);
  res->status = st;
  return st;
}

/* printable, for echoing client input in a message */
static void clean(char *out, size_t outlen, const char *s, size_t n) {
  size_t k = 0;
  for (size_t i = 0; i < n && k + 1 < outlen; i++)
    out[k++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
  out[k] = 0;
}

/* ---- time ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * civil-from-days inverse, described in his date algorithms paper). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static int days_in_month(int y, int m) {
  static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 ? 28 + leap : dm[m - 1];
}

static int digits(const char *s, size_t n, int *out) {
  int v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 0;
}

static int make_time(int y, int mo, int d, int h, int mi, int s, int64_t *out) {
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
      s > 60)
    return -1;
  *out = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + s;
  return 0;
}

int sigv4_parse_amzdate(const char *s, size_t n, int64_t *out) {
  int y, mo, d, h, mi, sec;
  if (n != 16 || s[8] != 'T' || s[15] != 'Z' || digits(s, 4, &y) || digits(s + 4, 2, &mo) ||
      digits(s + 6, 2, &d) || digits(s + 9, 2, &h) || digits(s + 11, 2, &mi) ||
      digits(s + 13, 2, &sec))
    return -1;
  return make_time(y, mo, d, h, mi, sec, out);
}

/* RFC 7231 IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT" (the Date header). */
static int parse_http_date(const char *s, size_t n, int64_t *out) {
  static const char mons[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  int y, mo = 0, d, h, mi, sec;
  if (n != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
      s[19] != ':' || s[22] != ':' || memcmp(s + 25, " GMT", 4) != 0)
    return -1;
  for (int i = 0; i < 12; i++)
    if (!memcmp(s + 8, mons + 3 * i, 3))
      mo = i + 1;
  if (!mo || digits(s + 5, 2, &d) || digits(s + 12, 4, &y) || digits(s + 17, 2, &h) ||
      digits(s + 20, 2, &mi) || digits(s + 23, 2, &sec))
    return -1;
  return make_time(y, mo, d, h, mi, sec, out);
}

static void fmt_amzdate(int64_t t, char out[17]) {
  time_t tt = (time_t)t;
  struct tm tm;
  if (!gmtime_r(&tt, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0) {
    memcpy(out, "00000000T000000Z", 17);
    return;
  }
  /* each field is in range now, so exactly 16 characters */
  char buf[64];
  snprintf(buf, sizeof(buf), "%04d%02d%02dT%02d%02d%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  memcpy(out, buf, 16);
  out[16] = 0;
}

/* ---- the query string ---- */

typedef struct qparam {
  const char *name, *val; /* decoded */
  size_t nl, vl;
  const char *ename, *eval; /* AWS-encoded */
  size_t enl, evl;
} qparam_t;

typedef struct query {
  qparam_t *v;
  size_t n;
  char *dec, *enc; /* storage of the decoded and encoded texts */
} query_t;

static void query_free(query_t *q) {
  free(q->v);
  free(q->dec);
  free(q->enc);
}

/* Decodes %XX, and '+' as a space: exactly as the form decoder reads the
 * parameters (aws_form_decode), so what is verified is what is executed (a
 * '+' read as a plus here but as a space there would let a signed "%2B" be
 * swapped for an unsigned meaning). SDKs encode a space as %20 and a plus as
 * %2B, so they never send a bare '+'. A '%' not followed by two hex digits
 * stands for itself. */
static size_t pct_decode(const char *s, size_t n, char *out) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
      out[k++] = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
      i += 2;
    } else if (s[i] == '+') {
      out[k++] = ' ';
    } else {
      out[k++] = s[i];
    }
  }
  return k;
}

static size_t pct_encode(const char *s, size_t n, char *out) {
  static const char hex[] = "0123456789ABCDEF";
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (unreserved(c)) {
      out[k++] = (char)c;
    } else {
      out[k++] = '%';
      out[k++] = hex[c >> 4];
      out[k++] = hex[c & 15];
    }
  }
  return k;
}

/* Splits the raw query into decoded and re-encoded parameters. 0, -1 too
 * many parameters, -2 out of memory. */
static int query_parse(const char *s, size_t n, query_t *q) {
  memset(q, 0, sizeof(*q));
  size_t count = 1;
  for (size_t i = 0; i < n; i++)
    count += s[i] == '&';
  if (count > SIGV4_MAX_PARAMS)
    return -1;
  q->v = calloc(count, sizeof(*q->v));
  q->dec = malloc(n + 1);
  q->enc = malloc(3 * n + 1);
  if (!q->v || !q->dec || !q->enc)
    return -2;
  size_t dk = 0, ek = 0;
  for (size_t i = 0; i < n;) {
    const char *amp = memchr(s + i, '&', n - i);
    size_t end = amp ? (size_t)(amp - s) : n;
    if (end > i) {
      const char *eqp = memchr(s + i, '=', end - i);
      size_t ne = eqp ? (size_t)(eqp - s) : end;
      qparam_t *p = &q->v[q->n++];
      p->name = q->dec + dk;
      p->nl = pct_decode(s + i, ne - i, q->dec + dk);
      dk += p->nl;
      p->val = q->dec + dk;
      p->vl = eqp ? pct_decode(eqp + 1, end - ne - 1, q->dec + dk) : 0;
      dk += p->vl;
      p->ename = q->enc + ek;
      p->enl = pct_encode(p->name, p->nl, q->enc + ek);
      ek += p->enl;
      p->eval = q->enc + ek;
      p->evl = pct_encode(p->val, p->vl, q->enc + ek);
      ek += p->evl;
    }
    i = end + 1;
  }
  return 0;
}

static int bytes_cmp(const char *a, size_t al, const char *b, size_t bl) {
  int c = memcmp(a, b, al < bl ? al : bl);
  return c ? c : (al > bl) - (al < bl);
}

static int qparam_cmp(const void *x, const void *y) {
  const qparam_t *a = x, *b = y;
  int c = bytes_cmp(a->ename, a->enl, b->ename, b->enl);
  return c ? c : bytes_cmp(a->eval, a->evl, b->eval, b->evl);
}

/* The decoded value of the only parameter named name; NULL if absent.
 * *dup set when it appears more than once. */
static const qparam_t *query_get(const query_t *q, const char *name, int *dup) {
  const qparam_t *found = NULL;
  for (size_t i = 0; i < q->n; i++) {
    if (!eq(q->v[i].name, q->v[i].nl, name))
      continue;
    if (found)
      *dup = 1;
    found = &q->v[i];
  }
  return found;
}

/* ---- the parts of a signature ---- */

typedef struct sig {
  const char *cred; /* AKID/date/region/service/aws4_request */
  size_t cred_len;
  const char *akid, *sdate, *region, *service;
  size_t akid_len, region_len, service_len;
  const char *signed_hdrs; /* "a;b;c" */
  size_t signed_len;
  const char *sig_hex;
  size_t sig_len;
  uint8_t sig[32];
  char amzdate[17]; /* the request's time in ISO 8601 basic format */
  int64_t t;
} sigparts_t;

/* Splits and checks a credential "AKID/YYYYMMDD/region/service/aws4_request". */
static sigv4_status_t parse_credential(sigparts_t *g, sigv4_result_t *res) {
  const char *part[5];
  size_t len[5], k = 0, start = 0;
  char shown[160];
  for (size_t i = 0; i <= g->cred_len; i++) {
    if (i < g->cred_len && g->cred[i] != '/')
      continue;
    if (k == 5)
      break;
    part[k] = g->cred + start;
    len[k++] = i - start;
    start = i + 1;
  }
  clean(shown, sizeof(shown), g->cred, g->cred_len);
  if (k != 5 || start <= g->cred_len)
    return fail(res, SIGV4_INCOMPLETE,
                "Credential should be scoped to a valid region, service and terminator: "
                "'AKID/YYYYMMDD/region/service/aws4_request', not '%s'.",
                shown);
  if (len[0] == 0 || len[0] > SIGV4_MAX_AKID)
    return fail(res, SIGV4_INCOMPLETE, "Credential has an invalid access key id: '%s'.", shown);
  for (size_t i = 0; i < len[0]; i++)
    if (!((part[0][i] >= 'A' && part[0][i] <= 'Z') || (part[0][i] >= 'a' && part[0][i] <= 'z') ||
          (part[0][i] >= '0' && part[0][i] <= '9')))
      return fail(res, SIGV4_INCOMPLETE, "Credential has an invalid access key id: '%s'.", shown);
  memcpy(res->akid, part[0], len[0]);
  res->akid[len[0]] = 0;
  int dummy;
  if (len[1] != 8 || digits(part[1], 8, &dummy))
    return fail(res, SIGV4_INCOMPLETE, "Credential should be scoped to a valid date, not '%s'.",
                shown);
  for (int j = 2; j <= 3; j++) {
    if (len[j] == 0 || len[j] > SIGV4_MAX_SCOPE_PART)
      return fail(res, SIGV4_INCOMPLETE, "Credential should be scoped to a valid %s, not '%s'.",
                  j == 2 ? "region" : "service", shown);
    for (size_t i = 0; i < len[j]; i++) {
      char c = part[j][i];
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
        return fail(res, SIGV4_INCOMPLETE, "Credential should be scoped to a valid %s, not '%s'.",
                    j == 2 ? "region" : "service", shown);
    }
  }
  memcpy(res->region, part[2], len[2]);
  res->region[len[2]] = 0;
  memcpy(res->service, part[3], len[3]);
  res->service[len[3]] = 0;
  if (!eq(part[4], len[4], TERMINATOR))
    return fail(res, SIGV4_INCOMPLETE,
                "Credential should be scoped with a valid terminator: 'aws4_request', not '%s'.",
                shown);
  g->akid = part[0];
  g->akid_len = len[0];
  g->sdate = part[1];
  g->region = part[2];
  g->region_len = len[2];
  g->service = part[3];
  g->service_len = len[3];
  return SIGV4_OK;
}

static int token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Checks "a;b;c": lower-case header names, host among them. */
static sigv4_status_t check_signed(const sigparts_t *g, sigv4_result_t *res) {
  size_t count = 0, start = 0;
  int host = 0;
  if (g->signed_len == 0)
    return fail(res, SIGV4_INCOMPLETE, "SignedHeaders must not be empty.");
  for (size_t i = 0; i <= g->signed_len; i++) {
    if (i < g->signed_len && g->signed_hdrs[i] != ';') {
      if (!token_char(g->signed_hdrs[i]))
        return fail(res, SIGV4_INCOMPLETE,
                    "SignedHeaders must be lower-case header names separated by ';'.");
      continue;
    }
    if (i == start)
      return fail(res, SIGV4_INCOMPLETE, "SignedHeaders has an empty header name.");
    if (++count > SIGV4_MAX_SIGNED)
      return fail(res, SIGV4_INCOMPLETE, "SignedHeaders names more than %u headers.",
                  SIGV4_MAX_SIGNED);
    host |= eq(g->signed_hdrs + start, i - start, "host");
    start = i + 1;
  }
  if (!host)
    return fail(res, SIGV4_INCOMPLETE,
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
  return SIGV4_OK;
}

static const sigv4_hdr_t *find_hdr(const sigv4_req_t *rq, const char *name, int *count) {
  const sigv4_hdr_t *found = NULL;
  *count = 0;
  for (size_t i = 0; i < rq->nhdrs; i++) {
    if (eq_ci(rq->hdrs[i].name, rq->hdrs[i].name_len, name)) {
      if (!found)
        found = &rq->hdrs[i];
      (*count)++;
    }
  }
  return found;
}

/* Parses "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..."
 * (the three in any order, separated by ',' and optional spaces). */
static sigv4_status_t parse_auth(const char *a, size_t n, sigparts_t *g, sigv4_result_t *res) {
  size_t al = strlen(ALGORITHM);
  char shown[64];
  if (n > SIGV4_MAX_AUTH)
    return fail(res, SIGV4_INCOMPLETE, "The Authorization header is longer than %u bytes.",
                SIGV4_MAX_AUTH);
  size_t sp = 0;
  while (sp < n && a[sp] != ' ')
    sp++;
  if (sp != al || memcmp(a, ALGORITHM, al) != 0) {
    clean(shown, sizeof(shown), a, sp);
    return fail(res, SIGV4_INCOMPLETE, "Unsupported AWS 'algorithm': '%s'.", shown);
  }
  int have_c = 0, have_h = 0, have_s = 0;
  size_t i = sp;
  while (i < n) {
    while (i < n && (a[i] == ' ' || a[i] == ','))
      i++;
    if (i == n)
      break;
    size_t ks = i;
    while (i < n && a[i] != '=' && a[i] != ',' && a[i] != ' ')
      i++;
    if (i == n || a[i] != '=') {
      clean(shown, sizeof(shown), a + ks, i - ks);
      return fail(res, SIGV4_INCOMPLETE,
                  "Authorization header requires each component to be of the form "
                  "key=value: '%s'.",
                  shown);
    }
    const char *key = a + ks;
    size_t kl = i - ks;
    size_t vs = ++i;
    while (i < n && a[i] != ',' && a[i] != ' ')
      i++;
    const char *v = a + vs;
    size_t vl = i - vs;
    int *have;
    if (eq(key, kl, "Credential")) {
      have = &have_c;
      g->cred = v;
      g->cred_len = vl;
    } else if (eq(key, kl, "SignedHeaders")) {
      have = &have_h;
      g->signed_hdrs = v;
      g->signed_len = vl;
    } else if (eq(key, kl, "Signature")) {
      have = &have_s;
      g->sig_hex = v;
      g->sig_len = vl;
    } else {
      clean(shown, sizeof(shown), key, kl);
      return fail(res, SIGV4_INCOMPLETE, "Authorization header has an unknown component '%s'.",
                  shown);
    }
    if (*have)
      return fail(res, SIGV4_INCOMPLETE, "Authorization header repeats a component.");
    *have = 1;
  }
  if (!have_c || !have_h || !have_s)
    return fail(res, SIGV4_INCOMPLETE, "Authorization header requires '%s' parameter.",
                !have_c   ? "Credential"
                : !have_h ? "SignedHeaders"
                          : "Signature");
  return SIGV4_OK;
}

/* ---- the canonical request ---- */

/* Appends the canonical URI: dot and empty segments removed (as AWS does for
 * every service but S3), then each byte but '/' URI-encoded. The path is
 * taken as it arrived, so an escape in it is encoded a second time. */
static int canonical_uri(sb_t *b, const char *p, size_t n) {
  if (n == 0) {
    sb_ch(b, '/');
    return 0;
  }
  size_t *off = malloc((n + 1) * 2 * sizeof(size_t)); /* (start, len) per segment */
  if (!off)
    return -1;
  size_t k = 0, start = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i < n && p[i] != '/')
      continue;
    size_t l = i - start;
    if (l == 0 || (l == 1 && p[start] == '.')) {
      /* skipped */
    } else if (l == 2 && p[start] == '.' && p[start + 1] == '.') {
      if (k)
        k--;
    } else {
      off[2 * k] = start;
      off[2 * k + 1] = l;
      k++;
    }
    start = i + 1;
  }
  if (p[0] == '/')
    sb_ch(b, '/');
  for (size_t j = 0; j < k; j++) {
    if (j)
      sb_ch(b, '/');
    sb_uri(b, p + off[2 * j], off[2 * j + 1], 0);
  }
  if (k && p[n - 1] == '/')
    sb_ch(b, '/');
  free(off);
  return 0;
}

/* Appends one header's canonical value: every occurrence, trimmed, inner
 * runs of spaces and tabs collapsed to one space, joined with ','. */
static void canonical_value(sb_t *b, const sigv4_req_t *rq, const char *name, size_t nl) {
  int first = 1;
  for (size_t i = 0; i < rq->nhdrs; i++) {
    const sigv4_hdr_t *h = &rq->hdrs[i];
    if (h->name_len != nl || strncasecmp(h->name, name, nl) != 0)
      continue;
    if (!first)
      sb_ch(b, ',');
    first = 0;
    size_t s = 0, e = h->value_len;
    while (s < e && (h->value[s] == ' ' || h->value[s] == '\t'))
      s++;
    while (e > s && (h->value[e - 1] == ' ' || h->value[e - 1] == '\t'))
      e--;
    for (size_t j = s; j < e; j++) {
      char c = h->value[j];
      if (c == ' ' || c == '\t') {
        if (h->value[j - 1] == ' ' || h->value[j - 1] == '\t')
          continue;
        c = ' ';
      }
      sb_ch(b, c);
    }
  }
}

static sigv4_status_t build_canonical(const sigv4_req_t *rq, query_t *q, int presigned,
                                      const sigparts_t *g, const char *payload, sb_t *b,
                                      sigv4_result_t *res) {
  sb_str(b, rq->method);
  sb_ch(b, '\n');
  if (canonical_uri(b, rq->path, rq->path_len) != 0)
    return fail(res, SIGV4_INTERNAL, "out of memory");
  sb_ch(b, '\n');
  qsort(q->v, q->n, sizeof(*q->v), qparam_cmp);
  int any = 0;
  for (size_t i = 0; i < q->n; i++) {
    const qparam_t *p = &q->v[i];
    if (presigned && eq(p->name, p->nl, "X-Amz-Signature"))
      continue;
    if (any)
      sb_ch(b, '&');
    any = 1;
    sb_put(b, p->ename, p->enl);
    sb_ch(b, '=');
    sb_put(b, p->eval, p->evl);
  }
  sb_ch(b, '\n');
  size_t start = 0;
  for (size_t i = 0; i <= g->signed_len; i++) {
    if (i < g->signed_len && g->signed_hdrs[i] != ';')
      continue;
    sb_put(b, g->signed_hdrs + start, i - start);
    sb_ch(b, ':');
    canonical_value(b, rq, g->signed_hdrs + start, i - start);
    sb_ch(b, '\n');
    start = i + 1;
  }
  sb_ch(b, '\n');
  sb_put(b, g->signed_hdrs, g->signed_len);
  sb_ch(b, '\n');
  sb_str(b, payload);
  if (b->err == 2)
    return fail(res, SIGV4_INTERNAL, "out of memory");
  if (b->err)
    return fail(res, SIGV4_INCOMPLETE, "The request is too large to be signed.");
  return SIGV4_OK;
}

/* ---- the two forms ---- */

static sigv4_status_t header_form(const sigv4_req_t *rq, const sigv4_hdr_t *auth, sigparts_t *g,
                                  sigv4_result_t *res) {
  sigv4_status_t st = parse_auth(auth->value, auth->value_len, g, res);
  if (st)
    return st;
  int count;
  const sigv4_hdr_t *d = find_hdr(rq, "X-Amz-Date", &count);
  char shown[64];
  if (d) {
    if (sigv4_parse_amzdate(d->value, d->value_len, &g->t) != 0) {
      clean(shown, sizeof(shown), d->value, d->value_len);
      return fail(res, SIGV4_INCOMPLETE,
                  "Date must be in ISO-8601 'basic format'. Got '%s'. See "
                  "http://en.wikipedia.org/wiki/ISO_8601",
                  shown);
    }
    memcpy(g->amzdate, d->value, 16);
    g->amzdate[16] = 0;
  } else if ((d = find_hdr(rq, "Date", &count)) != NULL) {
    if (parse_http_date(d->value, d->value_len, &g->t) != 0 &&
        sigv4_parse_amzdate(d->value, d->value_len, &g->t) != 0) {
      clean(shown, sizeof(shown), d->value, d->value_len);
      return fail(res, SIGV4_INCOMPLETE, "The Date header is not a valid date: '%s'.", shown);
    }
    fmt_amzdate(g->t, g->amzdate);
  } else {
    return fail(res, SIGV4_INCOMPLETE,
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
                "header.");
  }
  if (count > 1)
    return fail(res, SIGV4_INCOMPLETE, "The request has more than one date header.");
  if (unhex32(g->sig_hex, g->sig_len, g->sig) != 0)
    return fail(res, SIGV4_INCOMPLETE, "Signature must be 64 hexadecimal digits.");
  return SIGV4_OK;
}

static sigv4_status_t query_form(const query_t *q, sigparts_t *g, int64_t *expires,
                                 sigv4_result_t *res) {
  static const char *const need[] = {"X-Amz-Algorithm", "X-Amz-Credential",    "X-Amz-Date",
                                     "X-Amz-Expires",   "X-Amz-SignedHeaders", "X-Amz-Signature"};
  const qparam_t *p[6];
  char shown[64];
  for (int i = 0; i < 6; i++) {
    int dup = 0;
    p[i] = query_get(q, need[i], &dup);
    if (!p[i])
      return fail(res, SIGV4_INCOMPLETE,
                  "AWS query-string parameters must include '%s'. Re-examine the query-string "
                  "parameters.",
                  need[i]);
    if (dup)
      return fail(res, SIGV4_INCOMPLETE, "The query-string parameter '%s' appears more than once.",
                  need[i]);
  }
  if (!eq(p[0]->val, p[0]->vl, ALGORITHM)) {
    clean(shown, sizeof(shown), p[0]->val, p[0]->vl);
    return fail(res, SIGV4_INCOMPLETE, "Unsupported AWS 'algorithm': '%s'.", shown);
  }
  g->cred = p[1]->val;
  g->cred_len = p[1]->vl;
  if (sigv4_parse_amzdate(p[2]->val, p[2]->vl, &g->t) != 0) {
    clean(shown, sizeof(shown), p[2]->val, p[2]->vl);
    return fail(res, SIGV4_INCOMPLETE,
                "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\", not "
                "'%s'.",
                shown);
  }
  memcpy(g->amzdate, p[2]->val, 16);
  g->amzdate[16] = 0;
  int e = 0;
  if (p[3]->vl == 0 || p[3]->vl > 6 || digits(p[3]->val, p[3]->vl, &e) || e < 1 ||
      e > SIGV4_MAX_EXPIRES)
    return fail(res, SIGV4_INCOMPLETE,
                "X-Amz-Expires must be a whole number of seconds from 1 to %d (seven days).",
                SIGV4_MAX_EXPIRES);
  *expires = e;
  g->signed_hdrs = p[4]->val;
  g->signed_len = p[4]->vl;
  g->sig_hex = p[5]->val;
  g->sig_len = p[5]->vl;
  if (unhex32(g->sig_hex, g->sig_len, g->sig) != 0)
    return fail(res, SIGV4_INCOMPLETE, "X-Amz-Signature must be 64 hexadecimal digits.");
  return SIGV4_OK;
}

/* The payload hash to sign: x-amz-content-sha256 when sent (checked
 * against the body unless it is UNSIGNED-PAYLOAD), else the body's SHA-256.
 * *alt set when a presigned URL without that header may have been signed
 * with UNSIGNED-PAYLOAD instead: S3-style presigners (and AWS's S3 example)
 * sign that, while botocore and the SDKs sign the body's hash for every
 * other service. */
static sigv4_status_t payload_hash(const sigv4_req_t *rq, int presigned, char out[65], int *alt,
                                   sigv4_result_t *res) {
  int count;
  const sigv4_hdr_t *h = find_hdr(rq, "x-amz-content-sha256", &count);
  uint8_t body[32], given[32];
  if (count > 1)
    return fail(res, SIGV4_INCOMPLETE,
                "The request has more than one x-amz-content-sha256 header.");
  if (h && eq(h->value, h->value_len, UNSIGNED_PAYLOAD)) {
    res->unsigned_payload = 1;
    snprintf(out, 65, "%s", UNSIGNED_PAYLOAD);
    return SIGV4_OK;
  }
  if (sha256(rq->body_len ? (const void *)rq->body : "", rq->body_len, body) != 0)
    return fail(res, SIGV4_INTERNAL, "SHA-256 failed");
  if (!h) {
    to_hex(body, 32, out);
    *alt = presigned;
    return SIGV4_OK;
  }
  if (unhex32(h->value, h->value_len, given) != 0)
    return fail(res, SIGV4_INCOMPLETE,
                "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or the SHA-256 of the payload in "
                "hexadecimal.");
  if (CRYPTO_memcmp(given, body, 32) != 0)
    return fail(res, SIGV4_MISMATCH,
                "The provided 'x-amz-content-sha256' header does not match what was computed.");
  memcpy(out, h->value, 64);
  out[64] = 0;
  return SIGV4_OK;
}

/* HMAC chain of the derived signing key, then the signature of sts. */
static int sign(const char *secret, size_t sl, const sigparts_t *g, const char *sts, size_t stl,
                uint8_t out[32]) {
  uint8_t k[SIGV4_MAX_SECRET + 4];
  uint8_t a[32], b[32];
  int rc = -1;
  memcpy(k, "AWS4", 4);
  memcpy(k + 4, secret, sl);
  if (hmac(k, sl + 4, g->sdate, 8, a) || hmac(a, 32, g->region, g->region_len, b) ||
      hmac(b, 32, g->service, g->service_len, a) || hmac(a, 32, TERMINATOR, 12, b) ||
      hmac(b, 32, sts, stl, out))
    goto fail;
  rc = 0;
fail:
  OPENSSL_cleanse(k, sizeof(k));
  OPENSSL_cleanse(a, sizeof(a));
  OPENSSL_cleanse(b, sizeof(b));
  return rc;
}

sigv4_status_t sigv4_verify(const sigv4_req_t *rq, int64_t now, sigv4_secret_cb secret_for,
                            void *ctx, sigv4_result_t *res) {
  query_t q;
  sb_t creq = {.max = MAX_CANONICAL};
  sigparts_t g;
  int64_t expires = 0;
  char payload[65], when[17], now_s[17], lim_s[17];
  sigv4_status_t st;
  size_t hbytes = 0;

  memset(res, 0, sizeof(*res));
  memset(&g, 0, sizeof(g));
  memset(&q, 0, sizeof(q));
  if (rq->path_len > SIGV4_MAX_TARGET || rq->query_len > SIGV4_MAX_TARGET - rq->path_len)
    return fail(res, SIGV4_INCOMPLETE, "The request target is too long to be signed.");
  if (rq->nhdrs > MAX_HDRS)
    return fail(res, SIGV4_INCOMPLETE, "The request has too many headers to be signed.");
  for (size_t i = 0; i < rq->nhdrs; i++) {
    if (rq->hdrs[i].name_len > SIGV4_MAX_HEADER_BYTES ||
        rq->hdrs[i].value_len > SIGV4_MAX_HEADER_BYTES)
      return fail(res, SIGV4_INCOMPLETE, "The request headers are too large to be signed.");
    hbytes += rq->hdrs[i].name_len + rq->hdrs[i].value_len;
    if (hbytes > SIGV4_MAX_HEADER_BYTES)
      return fail(res, SIGV4_INCOMPLETE, "The request headers are too large to be signed.");
  }
  int nauth;
  const sigv4_hdr_t *auth = find_hdr(rq, "Authorization", &nauth);
  int qr = query_parse(rq->query, rq->query_len, &q);
  if (qr == -2) {
    st = fail(res, SIGV4_INTERNAL, "out of memory");
    goto fail;
  }
  if (qr == -1) {
    st = fail(res, SIGV4_INCOMPLETE, "The query string has more than %u parameters.",
              SIGV4_MAX_PARAMS);
    goto fail;
  }
  int dup = 0;
  int presigned = query_get(&q, "X-Amz-Algorithm", &dup) ||
                  query_get(&q, "X-Amz-Credential", &dup) || query_get(&q, "X-Amz-Signature", &dup);
  if (!auth && !presigned) {
    st = fail(res, SIGV4_MISSING,
              "The request must contain either a valid (registered) AWS access key ID or X.509 "
              "certificate.");
    goto fail;
  }
  if (auth && presigned) {
    st = fail(res, SIGV4_INCOMPLETE,
              "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the "
              "Authorization header should be specified.");
    goto fail;
  }
  if (nauth > 1) {
    st = fail(res, SIGV4_INCOMPLETE, "The request has more than one Authorization header.");
    goto fail;
  }
  res->presigned = presigned;
  st = presigned ? query_form(&q, &g, &expires, res) : header_form(rq, auth, &g, res);
  if (st)
    goto fail;
  if ((st = parse_credential(&g, res)) || (st = check_signed(&g, res)))
    goto fail;
  if (memcmp(g.sdate, g.amzdate, 8) != 0) {
    st = fail(res, SIGV4_MISMATCH,
              "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
              "from HTTP: '%.8s' != '%.8s', from '%s'.",
              g.sdate, g.amzdate, g.amzdate);
    goto fail;
  }
  size_t sl = 0;
  const char *secret = secret_for(ctx, g.akid, g.akid_len, &sl);
  if (!secret) {
    st = fail(res, SIGV4_UNKNOWN_KEY, "The security token included in the request is invalid.");
    goto fail;
  }
  if (sl > SIGV4_MAX_SECRET) {
    st = fail(res, SIGV4_INTERNAL, "The secret of this access key is too long.");
    goto fail;
  }
  fmt_amzdate(now, now_s);
  if (g.t > now + SIGV4_SKEW_S) {
    fmt_amzdate(now + SIGV4_SKEW_S, lim_s);
    st = fail(res, SIGV4_SKEWED,
              "Signature not yet current: %s is still later than %s (%s + 15 min.)", g.amzdate,
              lim_s, now_s);
    goto fail;
  }
  if (!presigned && g.t < now - SIGV4_SKEW_S) {
    fmt_amzdate(now - SIGV4_SKEW_S, lim_s);
    st = fail(res, SIGV4_SKEWED, "Signature expired: %s is now earlier than %s (%s - 15 min.)",
              g.amzdate, lim_s, now_s);
    goto fail;
  }
  if (presigned && now > g.t + expires) {
    fmt_amzdate(g.t + expires, when);
    st = fail(res, SIGV4_EXPIRED, "Request has expired: it expired at %s, now is %s.", when, now_s);
    goto fail;
  }
  int alt = 0;
  if ((st = payload_hash(rq, presigned, payload, &alt, res)))
    goto fail;
  if ((st = build_canonical(rq, &q, presigned, &g, payload, &creq, res)))
    goto fail;
  size_t base = creq.len - strlen(payload); /* where the payload hash starts */

  /* string to sign: algorithm, time, scope, hash of the canonical request */
  for (;;) {
    uint8_t h[32], mine[32];
    char sts[256 + SIGV4_MAX_AKID], hh[65];
    if (sha256(creq.p, creq.len, h) != 0) {
      st = fail(res, SIGV4_INTERNAL, "SHA-256 failed");
      goto fail;
    }
    to_hex(h, 32, hh);
    int stl =
        snprintf(sts, sizeof(sts), "%s\n%s\n%.8s/%.*s/%.*s/%s\n%s", ALGORITHM, g.amzdate, g.sdate,
                 (int)g.region_len, g.region, (int)g.service_len, g.service, TERMINATOR, hh);
    if (stl < 0 || (size_t)stl >= sizeof(sts) ||
        sign(secret, sl, &g, sts, (size_t)stl, mine) != 0) {
      st = fail(res, SIGV4_INTERNAL, "HMAC-SHA256 failed");
      goto fail;
    }
    int same = CRYPTO_memcmp(mine, g.sig, 32) == 0;
    OPENSSL_cleanse(mine, sizeof(mine));
    if (same)
      break;
    if (alt) { /* the other payload hash a presigner may have used */
      alt = 0;
      creq.len = base;
      sb_str(&creq, UNSIGNED_PAYLOAD);
      if (creq.err) {
        st = fail(res, SIGV4_INTERNAL, "out of memory");
        goto fail;
      }
      res->unsigned_payload = 1;
      continue;
    }
    res->unsigned_payload = 0;
    st = fail(res, SIGV4_MISMATCH,
              "The request signature we calculated does not match the signature you provided. "
              "Check your AWS Secret Access Key and signing method. Consult the service "
              "documentation for details.");
    goto fail;
  }
  res->status = st = SIGV4_OK;
fail:
  query_free(&q);
  free(creq.p);
  return st;
}

const char *sigv4_code(sigv4_status_t st) {
  switch (st) {
  case SIGV4_OK:
    return "";
  case SIGV4_MISSING:
    return "MissingAuthenticationToken";
  case SIGV4_INCOMPLETE:
    return "IncompleteSignature";
  case SIGV4_UNKNOWN_KEY:
    return "InvalidClientTokenId";
  case SIGV4_MISMATCH:
  case SIGV4_SKEWED:
    return "SignatureDoesNotMatch";
  case SIGV4_EXPIRED:
    return "RequestExpired";
  case SIGV4_INTERNAL:
    break;
  }
  return "InternalFailure";
}

int sigv4_http_status(sigv4_status_t st) {
  switch (st) {
  case SIGV4_OK:
    return 200;
  case SIGV4_INCOMPLETE:
  case SIGV4_EXPIRED:
    return 400;
  case SIGV4_MISSING:
  case SIGV4_UNKNOWN_KEY:
  case SIGV4_MISMATCH:
  case SIGV4_SKEWED:
    return 403;
  case SIGV4_INTERNAL:
    break;
  }
  return 500;
}
