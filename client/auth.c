/* auth.c - gbx_auth(): the native challenge-response handshake
 * (protocol/gbx_auth.h). The secret stays here; the server's proof is
 * checked, so a server that does not hold the secret is not believed. */
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "gbx_auth.h"
#include "reply.h"
#include "request.h"

/* Reads a bin field of exactly n bytes from a reply. */
static int exact_bytes(const gbx_reply_t *r, const char *key, size_t n, uint8_t *out,
                       gbx_error_t *err) {
  gbx_errbuf_t eb = {0};
  const char *p;
  uint32_t l;
  if (gbx_get_bytes(reply_root(r), key, 1, (uint32_t)n, &p, &l, NULL, &eb) || l != n)
    return conn_seterr(err, GBX_E_PROTOCOL,
                       "malformed authentication reply: '%s' must be %zu bytes", key, n);
  memcpy(out, p, n);
  return 0;
}

int gbx_auth(gbx_client_t *c, const char *key, const char *secret, char **principal,
             gbx_error_t *err) {
  gbx_error_t err_local_;
  if (!err)
    err = &err_local_;
  if (principal)
    *principal = NULL;
  size_t kl = key ? strlen(key) : 0, sl = secret ? strlen(secret) : 0;
  if (!kl || kl > GBX_AUTH_MAX_KEY || !sl || sl > GBX_AUTH_MAX_SECRET)
    return conn_seterr(err, GBX_E_OUT_OF_RANGE,
                       "access key id and secret must be 1-%u and 1-%u bytes", GBX_AUTH_MAX_KEY,
                       GBX_AUTH_MAX_SECRET);
  uint8_t nonce[GBX_AUTH_NONCE], cnonce[GBX_AUTH_NONCE], proof[GBX_AUTH_PROOF];
  uint8_t sproof[GBX_AUTH_PROOF];
  gbx_reply_t *r = NULL;
  int rc;
  uint64_t id = request_one(c, GBX_OP_AUTH_BEGIN, "key", key, err);
  if (!id)
    return err->code;
  if ((rc = conn_call(c, id, 0, &r, err)))
    return rc;
  rc = exact_bytes(r, "nonce", GBX_AUTH_NONCE, nonce, err);
  gbx_reply_free(r);
  r = NULL;
  if (rc)
    return rc;
  if (gbx_auth_random(cnonce, sizeof(cnonce)) != 0 ||
      gbx_auth_proof(GBX_AUTH_CLIENT, secret, sl, key, kl, nonce, cnonce, proof) != 0)
    return conn_seterr(err, GBX_E_NOMEM, "libcrypto could not compute the proof");
  if (!(id = request_auth_prove(c, cnonce, proof, err)))
    return err->code;
  if ((rc = conn_call(c, id, 0, &r, err)))
    return rc;
  rc = exact_bytes(r, "sproof", GBX_AUTH_PROOF, sproof, err);
  if (!rc &&
      !gbx_auth_check(GBX_AUTH_SERVER, secret, sl, key, kl, nonce, cnonce, sproof, sizeof(sproof)))
    rc = conn_seterr(err, GBX_E_AUTH_FAILED,
                     "the server's proof is wrong: it does not hold this key's secret");
  if (!rc && principal) {
    gbx_errbuf_t eb = {0};
    if (reply_decode_strdup(r, "principal", 64, principal, &eb))
      rc = conn_seterr(err, GBX_E_PROTOCOL, "malformed authentication reply: %s", eb.msg);
  }
  gbx_reply_free(r);
  OPENSSL_cleanse(proof, sizeof(proof));
  return rc;
}

/* ---- principals -------------------------------------------------------- */

int gbx_principal_put(gbx_client_t *c, const char *name, const char *key, const char *secret,
                      const char *account, const char *policy, gbx_error_t *err) {
  gbx_error_t err_local_;
  if (!err)
    err = &err_local_;
  gbx_reply_t *r = NULL;
  uint64_t id = request_principal_put(c, name, key, secret, account, policy, err);
  if (!id)
    return err->code;
  int rc = conn_call(c, id, 0, &r, err);
  gbx_reply_free(r);
  return rc;
}

int gbx_principal_delete(gbx_client_t *c, const char *name, gbx_error_t *err) {
  gbx_error_t err_local_;
  if (!err)
    err = &err_local_;
  gbx_reply_t *r = NULL;
  uint64_t id = request_one(c, GBX_OP_PRINCIPAL_DELETE, "name", name, err);
  if (!id)
    return err->code;
  int rc = conn_call(c, id, 0, &r, err);
  gbx_reply_free(r);
  return rc;
}

void gbx_principal_list_free(gbx_principal_list_t *l) {
  if (!l)
    return;
  for (size_t i = 0; i < l->count; i++) {
    free(l->v[i].name);
    free(l->v[i].key);
    free(l->v[i].account);
    free(l->v[i].source);
    free(l->v[i].policy);
  }
  free(l->v);
  l->v = NULL;
  l->count = 0;
}

/* A copied string field of a map; required ones missing fail. */
static int str_field(const msgpack_object *m, const char *k, int required, uint32_t max,
                     char **out) {
  gbx_errbuf_t eb = {0};
  const char *p;
  uint32_t n;
  int present = 0;
  *out = NULL;
  if (gbx_get_str(m, k, required, 0, max, &p, &n, &present, &eb))
    return -1;
  if (!present)
    return 0;
  if (!(*out = malloc(n + 1u)))
    return -1;
  memcpy(*out, p, n);
  (*out)[n] = 0;
  return 0;
}

int gbx_principal_list(gbx_client_t *c, gbx_principal_list_t *out, gbx_error_t *err) {
  gbx_error_t err_local_;
  if (!err)
    err = &err_local_;
  memset(out, 0, sizeof(*out));
  gbx_reply_t *r = NULL;
  uint64_t id = request_principal_list(c, err);
  if (!id)
    return err->code;
  int rc = conn_call(c, id, 0, &r, err);
  if (rc)
    return rc;
  gbx_errbuf_t eb = {0};
  const msgpack_object_array *a;
  /* at most as many principals as a credentials file may hold */
  if (gbx_get_array(reply_root(r), "principals", 1, 0, 10000, &a, NULL, &eb)) {
    gbx_reply_free(r);
    return conn_seterr(err, GBX_E_PROTOCOL, "malformed principal_list reply: %s", eb.msg);
  }
  if (a->size && !(out->v = calloc(a->size, sizeof(*out->v)))) {
    gbx_reply_free(r);
    return conn_seterr(err, GBX_E_NOMEM, "out of memory");
  }
  for (uint32_t i = 0; i < a->size && !rc; i++) {
    const msgpack_object *m = &a->ptr[i];
    gbx_principal_t *p = &out->v[i];
    out->count = i + 1;
    if (m->type != MSGPACK_OBJECT_MAP || str_field(m, "name", 1, 64, &p->name) ||
        str_field(m, "key", 1, 128, &p->key) || str_field(m, "account", 1, 64, &p->account) ||
        str_field(m, "source", 1, 16, &p->source) ||
        str_field(m, "policy", 0, 1u << 20, &p->policy))
      rc = conn_seterr(err, GBX_E_PROTOCOL, "malformed principal %u in principal_list", i);
  }
  gbx_reply_free(r);
  if (rc)
    gbx_principal_list_free(out);
  return rc;
}
