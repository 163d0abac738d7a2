/* sigv4.h - verification of AWS Signature Version 4 (AWS4-HMAC-SHA256), in
 * both of its forms: the Authorization header and the presigned URL
 * (X-Amz-* query parameters). Pure: the request, the wall-clock time and a
 * secret lookup come in, a verdict with AWS's error code and message text
 * goes out. No server state, no I/O; libcrypto for SHA-256 and HMAC.
 *
 * The canonical request is built as AWS builds it for services other than
 * S3: the path normalised (dot segments and empty segments removed) and
 * percent-encoded again as it arrived, the query parameters decoded,
 * re-encoded with AWS's unreserved set and sorted by name then value, the
 * signed headers lower-cased with their values trimmed, inner runs of
 * spaces collapsed and repeated headers joined with ','. The payload hash
 * is the x-amz-content-sha256 header when sent (checked against the body
 * unless UNSIGNED-PAYLOAD), else the body's SHA-256; a presigned URL
 * without that header may also have been signed over UNSIGNED-PAYLOAD (S3
 * style), which is tried second and reported in unsigned_payload. */
#ifndef GBX_SIGV4_H
#define GBX_SIGV4_H

#include <stddef.h>
#include <stdint.h>

/* Authorization header bytes accepted. SDKs send about 200 plus the signed
 * header names; 4 KiB holds 64 signed headers of 60 characters each. A
 * longer header is refused (IncompleteSignature) before it is parsed. */
#define SIGV4_MAX_AUTH 4096u
/* Signed headers per request: the HTTP face accepts 64 headers at most. */
#define SIGV4_MAX_SIGNED 64u
/* Access key ids: IAM allows 16-128 characters. */
#define SIGV4_MAX_AKID 128u
/* Secrets: our credentials file allows 128; room for longer ones. */
#define SIGV4_MAX_SECRET 256u
/* Region and service names in a credential scope (AWS's are under 32). */
#define SIGV4_MAX_SCOPE_PART 63u
/* AWS's clock-skew window: a request dated further than this from the
 * server's clock, either way, is refused. */
#define SIGV4_SKEW_S 900
/* X-Amz-Expires of a presigned URL: 1 s to 7 days (AWS's range). */
#define SIGV4_MAX_EXPIRES 604800
/* Path plus query bytes canonicalised; the HTTP face already refuses
 * targets above 16 KiB, this bounds direct callers (tests, fuzzing). */
#define SIGV4_MAX_TARGET (64u * 1024u)
/* Query parameters in one request (SQS's largest, a 10-entry batch with 10
 * attributes each, has about 700). */
#define SIGV4_MAX_PARAMS 4096u
/* Total header bytes looked at (http_parser caps a request's at 80 KiB). */
#define SIGV4_MAX_HEADER_BYTES (96u * 1024u)

/* Outcomes, each with AWS's code and HTTP status (sigv4_code,
 * sigv4_http_status). */
typedef enum sigv4_status {
  SIGV4_OK = 0,
  SIGV4_MISSING,     /* no Authorization header, no X-Amz-* query: 403 MissingAuthenticationToken */
  SIGV4_INCOMPLETE,  /* malformed header or parameters: 400 IncompleteSignature */
  SIGV4_UNKNOWN_KEY, /* access key id not known: 403 InvalidClientTokenId */
  SIGV4_MISMATCH,    /* wrong signature, scope date or payload hash: 403 SignatureDoesNotMatch */
  SIGV4_SKEWED,      /* dated outside the 15-minute window: 403 SignatureDoesNotMatch */
  SIGV4_EXPIRED,     /* presigned URL past X-Amz-Date + X-Amz-Expires: 400 RequestExpired */
  SIGV4_INTERNAL     /* out of memory or libcrypto failure: 500 InternalFailure */
} sigv4_status_t;

/* One request header as received; repeated names appear repeatedly. */
typedef struct sigv4_hdr {
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
} sigv4_hdr_t;

/* The request to verify; every pointer is only read during sigv4_verify. */
typedef struct sigv4_req {
  const char *method; /* "GET", "POST", ... (NUL-terminated) */
  const char *path;   /* raw path as received (percent-encoded) */
  size_t path_len;
  const char *query; /* raw query string after '?', "" if none */
  size_t query_len;
  const sigv4_hdr_t *hdrs;
  size_t nhdrs;
  const uint8_t *body;
  size_t body_len;
} sigv4_req_t;

/* Looks up the secret of an access key id: returns it (not NUL-terminated
 * necessarily) and its length, or NULL when the key is unknown. The pointer
 * need only stay valid until sigv4_verify returns. */
typedef const char *(*sigv4_secret_cb)(void *ctx, const char *akid, size_t akid_len,
                                       size_t *secret_len);

#define SIGV4_MAX_MSG 400u

/* What sigv4_verify found. The fields after status are filled as far as
 * parsing got (akid once the credential was read). */
typedef struct sigv4_result {
  sigv4_status_t status;
  int presigned;        /* the query form was used */
  int unsigned_payload; /* the payload hash was UNSIGNED-PAYLOAD: the body is not covered */
  char akid[SIGV4_MAX_AKID + 1];
  char region[SIGV4_MAX_SCOPE_PART + 1];
  char service[SIGV4_MAX_SCOPE_PART + 1];
  char msg[SIGV4_MAX_MSG]; /* AWS-like message text; "" when OK */
} sigv4_result_t;

/* Verifies rq's signature at wall-clock time now (unix seconds) with the
 * secrets secret_for(ctx, ...) returns. Fills *res and returns its status.
 * Never allocates by a size the request declares unchecked; every length
 * is checked against the limits above first. */
sigv4_status_t sigv4_verify(const sigv4_req_t *rq, int64_t now, sigv4_secret_cb secret_for,
                            void *ctx, sigv4_result_t *res);

/* AWS's error code for st ("SignatureDoesNotMatch"), "" for SIGV4_OK. */
const char *sigv4_code(sigv4_status_t st);
/* AWS's HTTP status for st (200 for SIGV4_OK). */
int sigv4_http_status(sigv4_status_t st);

/* Parses "YYYYMMDDTHHMMSSZ" (exactly 16 bytes) into unix seconds. 0, or
 * -1 when malformed or not a real date and time. */
int sigv4_parse_amzdate(const char *s, size_t n, int64_t *out);

#endif
