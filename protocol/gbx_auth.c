/* gbx_auth.c - see gbx_auth.h. */
#include "gbx_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <string.h>

static const char *const LABEL[2] = {"gearbox-auth-v1 client", "gearbox-auth-v1 server"};

int gbx_auth_proof(gbx_auth_side_t side, const char *secret, size_t slen, const char *key,
                   size_t klen, const uint8_t nonce[GBX_AUTH_NONCE],
                   const uint8_t cnonce[GBX_AUTH_NONCE], uint8_t out[GBX_AUTH_PROOF]) {
  uint8_t msg[32 + 1 + GBX_AUTH_MAX_KEY + 1 + 2 * GBX_AUTH_NONCE];
  size_t ll = strlen(LABEL[side]), n = 0;
  unsigned ol = 0;
  if (!slen || slen > GBX_AUTH_MAX_SECRET || !klen || klen > GBX_AUTH_MAX_KEY)
    return -1;
  memcpy(msg, LABEL[side], ll);
  n = ll;
  msg[n++] = 0;
  memcpy(msg + n, key, klen);
  n += klen;
  msg[n++] = 0;
  memcpy(msg + n, nonce, GBX_AUTH_NONCE);
  n += GBX_AUTH_NONCE;
  memcpy(msg + n, cnonce, GBX_AUTH_NONCE);
  n += GBX_AUTH_NONCE;
  if (!HMAC(EVP_sha256(), secret, (int)slen, msg, n, out, &ol) || ol != GBX_AUTH_PROOF)
    return -1;
  return 0;
}

int gbx_auth_check(gbx_auth_side_t side, const char *secret, size_t slen, const char *key,
                   size_t klen, const uint8_t nonce[GBX_AUTH_NONCE],
                   const uint8_t cnonce[GBX_AUTH_NONCE], const uint8_t *proof, size_t plen) {
  uint8_t want[GBX_AUTH_PROOF];
  if (plen != GBX_AUTH_PROOF)
    return 0;
  if (gbx_auth_proof(side, secret, slen, key, klen, nonce, cnonce, want) != 0)
    return 0;
  int ok = CRYPTO_memcmp(want, proof, GBX_AUTH_PROOF) == 0;
  OPENSSL_cleanse(want, sizeof(want));
  return ok;
}

int gbx_auth_random(uint8_t *out, size_t n) {
  return RAND_bytes(out, (int)n) == 1 ? 0 : -1;
}
