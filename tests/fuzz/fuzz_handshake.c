/* fuzz_handshake.c - libFuzzer target for the server's side of the native
 * challenge-response (server/handshake.h), driven the way a hostile client
 * drives it: a sequence of frames, each decoded by the same codec as the
 * server's (gbx_doc_parse), then handed to hs_begin / hs_prove.
 *
 * Input layout: a list of records [flags:1][len:2 BE][payload:len]. flags
 * bit 0 picks the operation (0: auth_begin, 1: auth_prove); bit 1 on an
 * auth_prove replaces the payload with a correctly computed proof for the
 * outstanding challenge (using the secret of the key the challenge was for,
 * if the key exists), so the success path is reached too.
 *
 * Invariants (abort on violation):
 *   - an accepted challenge holds a non-empty key of letters and digits
 *     (found by this target: a key with a NUL byte made the key text and
 *     its C string disagree; tests/fuzz/corpus/fuzz_handshake/key_with_nul);
 *   - a prove succeeds only with an outstanding challenge for an existing
 *     key, and only with the proof the secret yields;
 *   - after any prove, success or not, the challenge is spent;
 *   - an authenticated state refuses every further begin and prove;
 *   - the server's proof on success is the one gbx_auth_proof computes.
 * Replayed over tests/fuzz/corpus/fuzz_handshake by replay_main.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "creds.h"
#include "gbx_codec.h"
#include "handshake.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static const char CREDS[] =
    "{\"principals\":["
    "{\"name\":\"a\",\"access_key_id\":\"GBXFUZZKEY000001\",\"secret_access_key\":\"fuzz-secret-one-0000\"},"
    "{\"name\":\"b\",\"access_key_id\":\"GBXFUZZKEY000002\",\"secret_access_key\":\"fuzz-secret-two-0000\"}"
    "]}";

static creds_t *creds;
static uint64_t counter;

/* Deterministic nonces: reproducible runs. */
static int det_random(uint8_t *out, size_t n) {
  for (size_t i = 0; i < n; i++) out[i] = (uint8_t)((counter * 131u + i * 7u) >> 1);
  counter++;
  return 0;
}

/* Packs {op, id, fields...} for a computed prove. */
static size_t pack_prove(uint8_t *buf, size_t cap, const uint8_t *cn, const uint8_t *pr) {
  gbx_buf_t b;
  msgpack_packer pk;
  gbx_buf_init(&b);
  msgpack_packer_init(&pk, &b, gbx_buf_write_cb);
  msgpack_pack_map(&pk, 4);
  gbx_pack_kv_u64(&pk, "op", 3);
  gbx_pack_kv_u64(&pk, "id", 1);
  gbx_pack_kv_bin(&pk, "cnonce", cn, GBX_AUTH_NONCE);
  gbx_pack_kv_bin(&pk, "proof", pr, GBX_AUTH_PROOF);
  size_t n = b.len <= cap ? b.len : 0;
  if (n) memcpy(buf, b.data, n);
  gbx_buf_free(&b);
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!creds) {
    char err[256];
    creds = creds_parse(CREDS, sizeof(CREDS) - 1, "123456789012", err, sizeof(err));
    CHECK(creds != NULL);
  }
  hs_state_t st;
  memset(&st, 0, sizeof(st));
  counter = 0;
  size_t off = 0;
  while (off + 3 <= size) {
    uint8_t flags = data[off];
    size_t len = (size_t)data[off + 1] << 8 | data[off + 2];
    off += 3;
    if (len > size - off) len = size - off;
    const uint8_t *payload = data + off;
    off += len;
    uint8_t built[256];
    int computed = 0;
    const principal_t *want = NULL;
    uint8_t cn[GBX_AUTH_NONCE], pr[GBX_AUTH_PROOF];
    if ((flags & 1) && (flags & 2) && st.have_nonce) {
      /* a client that knows the secret of the challenged key (if any) */
      want = creds_by_akid(creds, st.key, strlen(st.key));
      memset(cn, flags, sizeof(cn));
      const char *sec = want ? want->secret : "not-a-secret-at-all";
      size_t sl = want ? want->secret_len : 19;
      CHECK(gbx_auth_proof(GBX_AUTH_CLIENT, sec, sl, st.key, strlen(st.key), st.nonce, cn, pr) ==
            0);
      len = pack_prove(built, sizeof(built), cn, pr);
      payload = built;
      computed = 1;
    }
    gbx_doc_t d;
    gbx_errbuf_t eb = {0};
    if (gbx_doc_parse(&d, payload, len, &eb) != GBX_E_OK) continue;
    hs_state_t before = st;
    if (!(flags & 1)) {
      gbx_err_t e = hs_begin(&st, &d.root, creds, det_random, &eb);
      if (before.authed) CHECK(e != GBX_E_OK);
      if (e == GBX_E_OK) {
        CHECK(st.have_nonce && !st.authed);
        CHECK(st.key[0] != 0); /* the key is a whole C string: no NUL inside */
      }
    } else {
      const principal_t *who = NULL;
      uint8_t sproof[GBX_AUTH_PROOF];
      hs_outcome_t how;
      gbx_err_t e = hs_prove(&st, &d.root, creds, &who, sproof, &how, &eb);
      if (e == GBX_E_OK) {
        CHECK(!before.authed && before.have_nonce && who != NULL);
        CHECK(who == creds_by_akid(creds, before.key, strlen(before.key)));
        CHECK(st.authed && !st.have_nonce);
        uint8_t want_sp[GBX_AUTH_PROOF];
        /* the proof the client sent must be the secret's own */
        const gbx_doc_t *dd = &d;
        const char *p;
        uint32_t pl;
        gbx_errbuf_t eb2 = {0};
        CHECK(gbx_get_bytes(&dd->root, "proof", 1, GBX_AUTH_PROOF, &p, &pl, NULL, &eb2) == 0);
        const char *c;
        uint32_t cl;
        CHECK(gbx_get_bytes(&dd->root, "cnonce", 1, GBX_AUTH_NONCE, &c, &cl, NULL, &eb2) == 0);
        CHECK(gbx_auth_check(GBX_AUTH_CLIENT, who->secret, who->secret_len, before.key,
                             strlen(before.key), before.nonce, (const uint8_t *)c,
                             (const uint8_t *)p, pl));
        CHECK(gbx_auth_proof(GBX_AUTH_SERVER, who->secret, who->secret_len, before.key,
                             strlen(before.key), before.nonce, (const uint8_t *)c, want_sp) == 0);
        CHECK(memcmp(want_sp, sproof, GBX_AUTH_PROOF) == 0);
      } else {
        CHECK(who == NULL);
        CHECK(st.authed == before.authed);
        if (computed && want && !before.authed) CHECK(0 && "a correct proof was refused");
      }
      if (before.have_nonce && !before.authed && e != GBX_E_MISSING_FIELD &&
          e != GBX_E_BAD_TYPE && e != GBX_E_OUT_OF_RANGE)
        CHECK(!st.have_nonce); /* spent */
    }
    gbx_doc_free(&d);
  }
  return 0;
}
