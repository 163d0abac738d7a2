/* handshake.h - the server's side of the native challenge-response
 * (protocol/gbx_auth.h) as pure logic: one connection's state, the two
 * requests decoded and checked against a credentials set. No I/O, no
 * libuv: ops.c adds the replies, the throttle and the audit lines, and
 * tests/fuzz/fuzz_handshake.c drives it with arbitrary frames. */
#ifndef GBX_HANDSHAKE_H
#define GBX_HANDSHAKE_H

#include <stdint.h>

#include "creds.h"
#include "gbx_auth.h"
#include "gbx_codec.h"

typedef struct hs_state {
  uint8_t authed;     /* a proof succeeded */
  uint8_t have_nonce; /* a challenge is outstanding (it answers one proof) */
  uint8_t fails;      /* failed proofs so far (saturates at 255) */
  uint8_t nonce[GBX_AUTH_NONCE];
  char key[GBX_AUTH_MAX_KEY + 1]; /* the access key id of the outstanding challenge */
} hs_state_t;

/* Random bytes for nonces (gbx_auth_random in the server; deterministic in
 * the fuzzer). Returns 0, or -1. */
typedef int (*hs_random_fn)(uint8_t *out, size_t n);

/* auth_begin {key}: on GBX_E_OK, st holds a fresh challenge for key (an
 * unknown key too, so keys cannot be probed) and st->nonce is the reply.
 * creds NULL (authentication off) and an authenticated st are refused with
 * GBX_E_AUTH_FAILED; a malformed request gets the codec's error. eb gets the
 * message. */
gbx_err_t hs_begin(hs_state_t *st, const msgpack_object *req, const creds_t *creds,
                   hs_random_fn rnd, gbx_errbuf_t *eb);

/* How an auth_prove ended, for the audit line. */
typedef enum { HS_OK = 0, HS_BAD_REQUEST, HS_UNKNOWN_KEY, HS_WRONG_PROOF } hs_outcome_t;

/* auth_prove {cnonce, proof}: consumes the challenge; on GBX_E_OK *who is
 * the principal (valid as creds is), sproof the server's proof and st is
 * authenticated. Otherwise GBX_E_AUTH_FAILED (or the codec's error) with
 * *outcome saying why; unknown keys cost the same HMAC as wrong secrets and
 * compare in constant time. */
gbx_err_t hs_prove(hs_state_t *st, const msgpack_object *req, const creds_t *creds,
                   const principal_t **who, uint8_t sproof[GBX_AUTH_PROOF], hs_outcome_t *outcome,
                   gbx_errbuf_t *eb);

#endif
