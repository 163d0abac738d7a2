/* gbx_auth.h - the native protocol's challenge-response proofs, shared by
 * server and client (libcrypto only). The secret never crosses the wire:
 *
 *   client -> auth_begin {key}                 server -> {nonce}   (32 random bytes)
 *   client -> auth_prove {cnonce, proof}       server -> {principal, sproof}
 *
 *   proof  = HMAC-SHA256(secret, "gearbox-auth-v1 client" 0 key 0 nonce cnonce)
 *   sproof = HMAC-SHA256(secret, "gearbox-auth-v1 server" 0 key 0 nonce cnonce)
 *
 * The server's proof lets the client know the server holds its secret too
 * (a server that merely accepts everything cannot compute it). */
#ifndef GBX_AUTH_H
#define GBX_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define GBX_AUTH_NONCE      32 /* bytes of each nonce: 256 bits, never repeats */
#define GBX_AUTH_PROOF      32 /* HMAC-SHA256 */
#define GBX_AUTH_MAX_KEY    128
#define GBX_AUTH_MAX_SECRET 128

typedef enum { GBX_AUTH_CLIENT = 0, GBX_AUTH_SERVER = 1 } gbx_auth_side_t;

/* Computes the proof of `side` into out. Returns 0, or -1 if libcrypto fails
 * or a length is out of range (nothing is written then). */
int gbx_auth_proof(gbx_auth_side_t side, const char *secret, size_t slen, const char *key,
                   size_t klen, const uint8_t nonce[GBX_AUTH_NONCE],
                   const uint8_t cnonce[GBX_AUTH_NONCE], uint8_t out[GBX_AUTH_PROOF]);
/* 1 if the proof of `side` matches, compared in constant time; else 0. */
int gbx_auth_check(gbx_auth_side_t side, const char *secret, size_t slen, const char *key,
                   size_t klen, const uint8_t nonce[GBX_AUTH_NONCE],
                   const uint8_t cnonce[GBX_AUTH_NONCE], const uint8_t *proof, size_t plen);
/* Fills out with n cryptographically random bytes; 0, or -1. */
int gbx_auth_random(uint8_t *out, size_t n);

#endif
