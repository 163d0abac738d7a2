/* handshake.c - see handshake.h. */
#include "handshake.h"

#include <openssl/crypto.h>
#include <string.h>

gbx_err_t hs_begin(hs_state_t *st, const msgpack_object *req, const creds_t *creds,
                   hs_random_fn rnd, gbx_errbuf_t *eb) {
  const char *key;
  uint32_t kl;
  gbx_err_t e = gbx_get_str(req, "key", 1, 1, GBX_AUTH_MAX_KEY, &key, &kl, NULL, eb);
  if (e) return e;
  if (!creds)
    return gbx_errbuf_set(eb, GBX_E_AUTH_FAILED,
                          "this server has no credentials configured (no --credentials): there "
                          "is nothing to authenticate against");
  if (st->authed)
    return gbx_errbuf_set(eb, GBX_E_AUTH_FAILED, "this connection is already authenticated");
  /* an access key id is letters and digits (IAM's rule, and the credentials
   * file's): anything else, a NUL byte above all, can name no key, and
   * would make the key text and its C string disagree */
  for (uint32_t i = 0; i < kl; i++)
    if (!((key[i] >= 'A' && key[i] <= 'Z') || (key[i] >= 'a' && key[i] <= 'z') ||
          (key[i] >= '0' && key[i] <= '9')))
      return gbx_errbuf_set(eb, GBX_E_AUTH_FAILED,
                            "field 'key': an access key id is 1-%u letters and digits",
                            GBX_AUTH_MAX_KEY);
  if (rnd(st->nonce, GBX_AUTH_NONCE) != 0)
    return gbx_errbuf_set(eb, GBX_E_INTERNAL, "no random bytes for a challenge");
  memcpy(st->key, key, kl);
  st->key[kl] = 0;
  st->have_nonce = 1;
  return GBX_E_OK;
}

gbx_err_t hs_prove(hs_state_t *st, const msgpack_object *req, const creds_t *creds,
                   const principal_t **who, uint8_t sproof[GBX_AUTH_PROOF], hs_outcome_t *outcome,
                   gbx_errbuf_t *eb) {
  const char *cn, *pr;
  uint32_t cl, pl;
  gbx_err_t e;
  *who = NULL;
  *outcome = HS_BAD_REQUEST;
  if ((e = gbx_get_bytes(req, "cnonce", 1, GBX_AUTH_NONCE, &cn, &cl, NULL, eb)) ||
      (e = gbx_get_bytes(req, "proof", 1, GBX_AUTH_PROOF, &pr, &pl, NULL, eb)))
    return e;
  if (st->authed)
    return gbx_errbuf_set(eb, GBX_E_AUTH_FAILED, "this connection is already authenticated");
  if (!st->have_nonce || !creds)
    return gbx_errbuf_set(eb, GBX_E_AUTH_FAILED,
                          "auth_prove needs a challenge: send auth_begin first");
  st->have_nonce = 0; /* a challenge answers one proof, whatever its outcome */
  if (cl != GBX_AUTH_NONCE || pl != GBX_AUTH_PROOF)
    return gbx_errbuf_set(eb, GBX_E_AUTH_FAILED, "cnonce and proof must be %u bytes each",
                          GBX_AUTH_NONCE);
  size_t kl = strlen(st->key);
  const principal_t *p = creds_by_akid(creds, st->key, kl);
  /* an unknown key is checked against a dummy secret: same work, same reply */
  static const char dummy[] = "gearbox-no-such-key-00000000000000000000";
  int ok = gbx_auth_check(GBX_AUTH_CLIENT, p ? p->secret : dummy,
                          p ? p->secret_len : sizeof(dummy) - 1, st->key, kl, st->nonce,
                          (const uint8_t *)cn, (const uint8_t *)pr, pl);
  if (!ok || !p) {
    if (st->fails < 255) st->fails++;
    *outcome = p ? HS_WRONG_PROOF : HS_UNKNOWN_KEY;
    return gbx_errbuf_set(eb, GBX_E_AUTH_FAILED, "%s", gbx_err_message(GBX_E_AUTH_FAILED));
  }
  if (gbx_auth_proof(GBX_AUTH_SERVER, p->secret, p->secret_len, st->key, kl, st->nonce,
                     (const uint8_t *)cn, sproof) != 0)
    return gbx_errbuf_set(eb, GBX_E_INTERNAL, "libcrypto could not compute the server's proof");
  OPENSSL_cleanse(st->nonce, sizeof(st->nonce));
  st->authed = 1;
  *who = p;
  *outcome = HS_OK;
  return GBX_E_OK;
}
