/* ids.c - see ids.h. */
#include "ids.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

struct ids {
  EVP_CIPHER_CTX *idc;  /* AES-128-ECB, message ids */
  EVP_CIPHER_CTX *idd;  /* the same key, decrypting: ids back to counters */
  EVP_CIPHER_CTX *macc; /* AES-128-ECB, receipt tags */
  uint8_t b64d[256];    /* base64url digit value + 1; 0: not a digit */
};

#define RECEIPT_VERSION 1u
#define RECEIPT_FIELDS 17u /* version 1 + qid 4 + seq 8 + rc 4 */
#define RECEIPT_TAG 12u
#define RECEIPT_RAW (RECEIPT_FIELDS + RECEIPT_TAG)

static const char b64u[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static EVP_CIPHER_CTX *ecb_ctx(const uint8_t *key) {
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  if (!c) return NULL;
  if (EVP_EncryptInit_ex(c, EVP_aes_128_ecb(), NULL, key, NULL) != 1) {
    EVP_CIPHER_CTX_free(c);
    return NULL;
  }
  EVP_CIPHER_CTX_set_padding(c, 0);
  return c;
}

ids_t *ids_new(const uint8_t key[IDS_KEY_BYTES]) {
  ids_t *ids = calloc(1, sizeof(*ids));
  if (!ids) return NULL;
  ids->idc = ecb_ctx(key);
  ids->macc = ecb_ctx(key + 16);
  ids->idd = EVP_CIPHER_CTX_new();
  if (ids->idd && EVP_DecryptInit_ex(ids->idd, EVP_aes_128_ecb(), NULL, key, NULL) == 1)
    EVP_CIPHER_CTX_set_padding(ids->idd, 0);
  else {
    EVP_CIPHER_CTX_free(ids->idd);
    ids->idd = NULL;
  }
  if (!ids->idc || !ids->macc || !ids->idd) {
    ids_free(ids);
    return NULL;
  }
  /* A table, not a chain of range checks: a receipt's digits are random,
   * so every branch of such a chain was mispredicted (3% of gearboxd's
   * time under W4, where each delivery's delete parses a receipt). */
  for (unsigned i = 0; i < 64; i++)
    ids->b64d[(uint8_t)b64u[i]] = (uint8_t)(i + 1);
  return ids;
}

void ids_free(ids_t *ids) {
  if (!ids) return;
  EVP_CIPHER_CTX_free(ids->idc);
  EVP_CIPHER_CTX_free(ids->idd);
  EVP_CIPHER_CTX_free(ids->macc);
  free(ids);
}

int ids_random_key(uint8_t key[IDS_KEY_BYTES]) {
  size_t got = 0;
  while (got < IDS_KEY_BYTES) {
    ssize_t n = getrandom(key + got, IDS_KEY_BYTES - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    got += (size_t)n;
  }
  return 0;
}

static void aes_block(EVP_CIPHER_CTX *c, const uint8_t in[16], uint8_t out[16]) {
  int outl = 0;
  /* ECB without padding on exactly one block cannot fail with a valid ctx. */
  EVP_EncryptUpdate(c, out, &outl, in, 16);
}

static void put_be64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--) { p[i] = (uint8_t)v; v >>= 8; }
}
static void put_be32(uint8_t *p, uint32_t v) {
  for (int i = 3; i >= 0; i--) { p[i] = (uint8_t)v; v >>= 8; }
}
static uint64_t get_be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
  return v;
}
static uint32_t get_be32(const uint8_t *p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v = (v << 8) | p[i];
  return v;
}

void ids_msgid(ids_t *ids, uint64_t n, char out[GBX_MSGID_LEN]) {
  static const char hex[] = "0123456789abcdef";
  uint8_t in[16] = {0}, b[16];
  put_be64(in, n);
  in[8] = 'g'; /* domain separation from nothing else today; keeps the block distinct */
  aes_block(ids->idc, in, b);
  size_t o = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = hex[b[i] >> 4];
    out[o++] = hex[b[i] & 15];
  }
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

int ids_msgid_parse(ids_t *ids, const char *s, size_t len, uint64_t *n) {
  uint8_t b[16], p[16];
  size_t o = 0;
  int outl = 0;
  if (len != GBX_MSGID_LEN) return -1;
  for (size_t i = 0; i < len;) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i++] != '-') return -1;
      continue;
    }
    int h = hexval(s[i]), l = hexval(s[i + 1]);
    if (h < 0 || l < 0) return -1;
    b[o++] = (uint8_t)(h << 4 | l);
    i += 2;
  }
  EVP_DecryptUpdate(ids->idd, p, &outl, b, 16);
  /* the plaintext is the counter, the domain byte and zeros: anything else
   * was never issued */
  if (p[8] != 'g') return -1;
  for (int i = 9; i < 16; i++)
    if (p[i]) return -1;
  *n = get_be64(p);
  return 0;
}

/* CBC-MAC over exactly two blocks (the fields zero-padded to 32 bytes). A
 * fixed input length makes CBC-MAC a secure MAC. */
static void tag(ids_t *ids, const uint8_t fields[RECEIPT_FIELDS], uint8_t out[RECEIPT_TAG]) {
  uint8_t blk[32] = {0}, x[16], y[16];
  memcpy(blk, fields, RECEIPT_FIELDS);
  aes_block(ids->macc, blk, x);
  for (int i = 0; i < 16; i++) x[i] ^= blk[16 + i];
  aes_block(ids->macc, x, y);
  memcpy(out, y, RECEIPT_TAG);
}

void ids_receipt_make(ids_t *ids, const receipt_t *r, char out[IDS_RECEIPT_LEN]) {
  uint8_t raw[RECEIPT_RAW + 1] = {0}; /* +1: the encoder reads in groups of 3 */
  raw[0] = RECEIPT_VERSION;
  put_be32(raw + 1, r->qid);
  put_be64(raw + 5, r->seq);
  put_be32(raw + 13, r->rc);
  tag(ids, raw, raw + RECEIPT_FIELDS);
  size_t o = 0;
  for (size_t i = 0; i < RECEIPT_RAW; i += 3) {
    uint32_t v = ((uint32_t)raw[i] << 16) | ((uint32_t)raw[i + 1] << 8) | raw[i + 2];
    size_t left = RECEIPT_RAW - i;
    out[o++] = b64u[(v >> 18) & 63];
    out[o++] = b64u[(v >> 12) & 63];
    if (left > 1) out[o++] = b64u[(v >> 6) & 63];
    if (left > 2) out[o++] = b64u[v & 63];
  }
}

int ids_receipt_parse(ids_t *ids, const char *s, size_t len, receipt_t *r) {
  if (len != IDS_RECEIPT_LEN) return -1;
  uint8_t raw[RECEIPT_RAW + 2] = {0};
  size_t o = 0;
  for (size_t i = 0; i < len; i += 4) {
    uint32_t v = 0;
    size_t n = len - i < 4 ? len - i : 4;
    for (size_t j = 0; j < 4; j++) {
      uint32_t d = j < n ? ids->b64d[(uint8_t)s[i + j]] : 1;
      if (!d) return -1;
      v = (v << 6) | (d - 1);
    }
    raw[o++] = (uint8_t)(v >> 16);
    if (n > 2) raw[o++] = (uint8_t)(v >> 8);
    if (n > 3) raw[o++] = (uint8_t)v;
  }
  if (o != RECEIPT_RAW || raw[0] != RECEIPT_VERSION) return -1;
  uint8_t t[RECEIPT_TAG];
  tag(ids, raw, t);
  if (CRYPTO_memcmp(t, raw + RECEIPT_FIELDS, RECEIPT_TAG) != 0) return -1;
  r->qid = get_be32(raw + 1);
  r->seq = get_be64(raw + 5);
  r->rc = get_be32(raw + 13);
  return 0;
}
