/* ops_admin.c - the protocol layer's handlers for principal management:
 * principal_put, principal_delete and principal_list (see ops.c for the
 * conventions). Admin-defined principals live beside the credentials
 * file's: in the store, under META "P<name>", one credentials-file entry
 * (JSON) each, so they survive restarts; the file wins over them. */
#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "ops_int.h"
#include "text.h"

/* META key of an admin-defined principal. */
static size_t principal_key(char *k, const char *name) {
  size_t n = strlen(name);
  k[0] = 'P';
  memcpy(k + 1, name, n);
  return n + 1;
}

static int need_auth_on(req_t *q) {
  if (auth_enabled(q->s->auth))
    return 1;
  gbx_errbuf_set(&q->eb, GBX_E_BAD_PRINCIPAL,
                 "principal management needs --credentials (authentication is off)");
  ops_fail(q, GBX_E_BAD_PRINCIPAL);
  return 0;
}

/* The credentials changed: connections and long polls of a replaced or
 * removed principal are revoked at once (as after a reload). */
static void changed(server_t *s) {
  s->creds = auth_creds(s->auth);
  ops_auth_changed(s);
}

void op_principal_put(req_t *q) {
  const char *name, *key, *secret, *account = NULL, *policy = NULL;
  uint32_t nl, kl, sl, al = 0, pl = 0;
  int has_acct = 0, has_pol = 0, conflict = 0;
  gbx_err_t e;
  char err[400];
  if (!need_auth_on(q))
    return;
  if ((e = gbx_get_str(q->m, "name", 1, 1, CREDS_MAX_NAME, &name, &nl, NULL, &q->eb)) ||
      (e = gbx_get_str(q->m, "key", 1, 1, CREDS_MAX_AKID, &key, &kl, NULL, &q->eb)) ||
      (e = gbx_get_str(q->m, "secret", 1, 1, CREDS_MAX_SECRET, &secret, &sl, NULL, &q->eb)) ||
      (e = gbx_get_str(q->m, "account", 0, 1, 32, &account, &al, &has_acct, &q->eb)) ||
      (e = gbx_get_str(q->m, "policy", 0, 1, POLICY_MAX_BYTES, &policy, &pl, &has_pol, &q->eb))) {
    ops_fail(q, e);
    return;
  }
  /* copied as C strings below: a NUL would cut them unseen */
  if (memchr(name, 0, nl) || memchr(key, 0, kl) || memchr(secret, 0, sl) ||
      (has_acct && memchr(account, 0, al)) || (has_pol && json_has_nul(policy, pl))) {
    ops_fail(q, gbx_errbuf_set(&q->eb, GBX_E_BAD_TYPE,
                               "fields 'name', 'key', 'secret', 'account' and 'policy' must not "
                               "contain NUL"));
    return;
  }
  /* one entry in the credentials file's format: validated as the file is */
  cJSON *o = cJSON_CreateObject(), *pol = NULL;
  char *ns = strndup(name, nl), *ks = strndup(key, kl), *ss = strndup(secret, sl);
  char *as = has_acct ? strndup(account, al) : NULL;
  if (!o || !ns || !ks || !ss || (has_acct && !as))
    abort();
  if (has_pol) {
    pol = cJSON_ParseWithLength(policy, pl);
    if (!cJSON_IsObject(pol)) {
      cJSON_Delete(pol);
      pol = NULL;
      e = gbx_errbuf_set(&q->eb, GBX_E_BAD_POLICY, "field 'policy' is not a JSON object");
    }
  }
  char *text = NULL;
  if (!e) {
    cJSON_AddStringToObject(o, "name", ns);
    cJSON_AddStringToObject(o, "access_key_id", ks);
    cJSON_AddStringToObject(o, "secret_access_key", ss);
    if (as)
      cJSON_AddStringToObject(o, "account_id", as);
    if (pol)
      cJSON_AddItemToObject(o, "policy", pol);
    text = cJSON_PrintUnformatted(o);
    if (!text)
      abort();
    if (auth_put_admin(q->s->auth, text, strlen(text), &conflict, err, sizeof(err)) != 0)
      e = gbx_errbuf_set(&q->eb, conflict ? GBX_E_PRINCIPAL_CONFLICT : GBX_E_BAD_PRINCIPAL, "%s",
                         err);
  }
  if (!e) {
    /* q->who.p is stale from here: the set changed */
    char k[CREDS_MAX_NAME + 2];
    size_t klen = principal_key(k, ns);
    store_batch_put(commit_batch(q->s->commit), STORE_CF_META, k, klen, text, strlen(text));
    LOG(LOG_INFO, "principal '%s' put by an admin operation", ns);
    changed(q->s);
  }
  if (text) {
    OPENSSL_cleanse(text, strlen(text));
    free(text);
  }
  OPENSSL_cleanse(ss, sl);
  cJSON_Delete(o); /* holds pol */
  free(ns);
  free(ks);
  free(ss);
  free(as);
  if (e)
    ops_fail(q, e);
  else
    ops_reply_ok(q->s, q->c, q->id);
}

void op_principal_delete(req_t *q) {
  const char *name;
  uint32_t nl;
  int in_file = 0;
  char ns[CREDS_MAX_NAME + 1], k[CREDS_MAX_NAME + 2];
  if (!need_auth_on(q))
    return;
  gbx_err_t e = gbx_get_str(q->m, "name", 1, 1, CREDS_MAX_NAME, &name, &nl, NULL, &q->eb);
  if (!e && memchr(name, 0, nl)) /* "a\0" must not remove "a" */
    e = gbx_errbuf_set(&q->eb, GBX_E_BAD_TYPE, "field 'name' must not contain NUL");
  if (e) {
    ops_fail(q, e);
    return;
  }
  memcpy(ns, name, nl);
  ns[nl] = 0;
  if (auth_remove_admin(q->s->auth, ns, &in_file) != 0) {
    gbx_errbuf_set(&q->eb, in_file ? GBX_E_PRINCIPAL_CONFLICT : GBX_E_PRINCIPAL_NOT_FOUND,
                   in_file ? "principal '%s' is defined in the credentials file, which wins: edit "
                             "the file and send SIGHUP"
                           : "no admin-defined principal is called '%s'",
                   ns);
    ops_fail(q, in_file ? GBX_E_PRINCIPAL_CONFLICT : GBX_E_PRINCIPAL_NOT_FOUND);
    return;
  }
  store_batch_delete(commit_batch(q->s->commit), STORE_CF_META, k, principal_key(k, ns));
  LOG(LOG_INFO, "principal '%s' deleted by an admin operation", ns);
  changed(q->s);
  ops_reply_ok(q->s, q->c, q->id);
}

void op_principal_list(req_t *q) {
  if (!need_auth_on(q))
    return;
  const creds_t *c = auth_creds(q->s->auth);
  uint32_t n = creds_count(c);
  reply_t r;
  msgpack_packer *pk = ops_rbegin(&r, q->s, q->id, 1);
  gbx_pack_cstr(pk, "principals");
  msgpack_pack_array(pk, n);
  for (uint32_t i = 0; i < n; i++) { /* never the secret */
    const principal_t *p = creds_at(c, i);
    msgpack_pack_map(pk, p->policy_json ? 5 : 4);
    gbx_pack_kv_cstr(pk, "name", p->name);
    gbx_pack_kv_cstr(pk, "key", p->akid);
    gbx_pack_kv_cstr(pk, "account", p->account);
    gbx_pack_kv_cstr(pk, "source", p->source == CREDS_FROM_FILE ? "file" : "admin");
    if (p->policy_json)
      gbx_pack_kv_cstr(pk, "policy", p->policy_json);
  }
  ops_rend(&r, q->c);
}

typedef struct rctx {
  auth_t *auth;
  uint32_t kept, shadowed;
} rctx_t;

static int restore_one(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
  rctx_t *x = ctx;
  char err[400];
  int conflict = 0;
  if (auth_put_admin(x->auth, v, vl, &conflict, err, sizeof(err)) == 0) {
    x->kept++;
    return 0;
  }
  x->shadowed++;
  LOG(LOG_WARN, "admin-defined principal '%.*s' not loaded: %s", (int)(kl > 1 ? kl - 1 : 0), k + 1,
      err);
  return 0;
}

int ops_restore_principals(server_t *s) {
  rctx_t x = {s->auth, 0, 0};
  char *err = NULL;
  if (!auth_enabled(s->auth)) {
    /* kept in the store for a start with --credentials */
    return 0;
  }
  if (store_scan(s->store, STORE_CF_META, "P", 1, "Q", 1, restore_one, &x, &err) != 0) {
    LOG(LOG_ERROR, "reading admin-defined principals: %s", err);
    free(err);
    return -1;
  }
  s->creds = auth_creds(s->auth);
  if (x.kept || x.shadowed)
    LOG(LOG_INFO, "%u admin-defined principals restored (%u shadowed by the file)", x.kept,
        x.shadowed);
  return 0;
}
