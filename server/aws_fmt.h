/* aws_fmt.h - the AWS-compatible face's shared pieces: the per-request
 * context, request decoding (form encoding of the query protocol, JSON 1.0),
 * response rendering (XML and JSON), AWS's error codes and shapes, and the
 * MD5 digests SQS clients verify.
 *
 * Both wire protocols are reduced to one shape: a request's parameters
 * become a cJSON object shaped as the AWS JSON protocol sends them
 * (`Attributes` a map, `Entries` a list, ...), whatever protocol carried
 * them, and a handler's result is a cJSON object of the JSON protocol's
 * response shape, rendered as JSON or as the query protocol's XML.
 *
 * Files: aws.c (lifecycle, routing, test endpoints), aws_fmt.c (this),
 * aws_sqs.c (SQS actions), aws_sns.c (SNS actions). Loop thread only. */
#ifndef GBX_AWS_FMT_H
#define GBX_AWS_FMT_H

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "server.h"
#include "text.h"

/* AWS's errors: symbol, HTTP status, query-protocol code, JSON `__type`
 * shape (SQS's are prefixed "com.amazonaws.sqs#" unless they hold a '#'),
 * sender fault. The authentication errors carry the JSON types of AWS's
 * service framework; x-amzn-query-error still names the query code. */
#define AWS_ERRORS(X)                                                                              \
  X(MISSING_PARAMETER, 400, "MissingParameter", "MissingParameter", 1)                             \
  X(INVALID_PARAMETER_VALUE, 400, "InvalidParameterValue", "InvalidParameterValue", 1)             \
  X(INVALID_ACTION, 400, "InvalidAction", "com.amazon.coral.service#UnknownOperationException", 1) \
  X(MALFORMED, 400, "MalformedQueryString", "com.amazon.coral.service#SerializationException", 1)  \
  X(QUEUE_DOES_NOT_EXIST, 400, "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", 1)  \
  X(QUEUE_NAME_EXISTS, 400, "QueueAlreadyExists", "QueueNameExists", 1)                            \
  X(RECEIPT_INVALID, 404, "ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", 1)                   \
  X(NOT_INFLIGHT, 400, "AWS.SimpleQueueService.MessageNotInflight", "MessageNotInflight", 1)       \
  X(INVALID_ATTRIBUTE_NAME, 400, "InvalidAttributeName", "InvalidAttributeName", 1)                \
  X(INVALID_ATTRIBUTE_VALUE, 400, "InvalidAttributeValue", "InvalidAttributeValue", 1)             \
  X(TOO_MANY_ENTRIES, 400, "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",                  \
    "TooManyEntriesInBatchRequest", 1)                                                             \
  X(EMPTY_BATCH, 400, "AWS.SimpleQueueService.EmptyBatchRequest", "EmptyBatchRequest", 1)          \
  X(IDS_NOT_DISTINCT, 400, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",                      \
    "BatchEntryIdsNotDistinct", 1)                                                                 \
  X(INVALID_BATCH_ID, 400, "AWS.SimpleQueueService.InvalidBatchEntryId", "InvalidBatchEntryId", 1) \
  X(BATCH_TOO_LONG, 400, "AWS.SimpleQueueService.BatchRequestTooLong", "BatchRequestTooLong", 1)   \
  X(OVER_LIMIT, 403, "OverLimit", "OverLimit", 1)                                                  \
  X(INVALID_MESSAGE_CONTENTS, 400, "InvalidMessageContents", "InvalidMessageContents", 1)          \
  X(UNSUPPORTED_OPERATION, 400, "AWS.SimpleQueueService.UnsupportedOperation",                     \
    "UnsupportedOperation", 1)                                                                     \
  X(RESOURCE_NOT_FOUND, 404, "ResourceNotFoundException", "ResourceNotFoundException", 1)          \
  X(INTERNAL, 500, "InternalError", "InternalError", 0)                                            \
  X(UNAVAILABLE, 503, "ServiceUnavailable", "ServiceUnavailable", 0)                               \
  X(SNS_INVALID_PARAMETER, 400, "InvalidParameter", "InvalidParameter", 1)                         \
  X(SNS_NOT_FOUND, 404, "NotFound", "NotFound", 1)                                                 \
  X(SNS_TOO_MANY_ENTRIES, 400, "TooManyEntriesInBatchRequest", "TooManyEntriesInBatchRequest", 1)  \
  X(SNS_EMPTY_BATCH, 400, "EmptyBatchRequest", "EmptyBatchRequest", 1)                             \
  X(SNS_IDS_NOT_DISTINCT, 400, "BatchEntryIdsNotDistinct", "BatchEntryIdsNotDistinct", 1)          \
  X(SNS_INVALID_BATCH_ID, 400, "InvalidBatchEntryId", "InvalidBatchEntryId", 1)                    \
  X(SNS_BATCH_TOO_LONG, 400, "BatchRequestTooLong", "BatchRequestTooLong", 1)                      \
  X(SNS_TAG_LIMIT, 400, "TagLimitExceeded", "TagLimitExceeded", 1)                                 \
  X(SNS_RESOURCE_NOT_FOUND, 404, "ResourceNotFound", "ResourceNotFound", 1)                        \
  X(MISSING_AUTH_TOKEN, 403, "MissingAuthenticationToken",                                         \
    "com.amazon.coral.service#MissingAuthenticationTokenException", 1)                             \
  X(INCOMPLETE_SIGNATURE, 400, "IncompleteSignature",                                              \
    "com.amazon.coral.service#IncompleteSignatureException", 1)                                    \
  X(INVALID_CLIENT_TOKEN_ID, 403, "InvalidClientTokenId",                                          \
    "com.amazon.coral.service#UnrecognizedClientException", 1)                                     \
  X(SIGNATURE_DOES_NOT_MATCH, 403, "SignatureDoesNotMatch",                                        \
    "com.amazon.coral.service#InvalidSignatureException", 1)                                       \
  X(REQUEST_EXPIRED, 400, "RequestExpired", "com.amazon.coral.service#RequestExpired", 1)          \
  X(INTERNAL_FAILURE, 500, "InternalFailure", "com.amazon.coral.service#InternalFailure", 0)       \
  X(ACCESS_DENIED, 403, "AccessDenied", "com.amazon.coral.service#AccessDeniedException", 1)       \
  X(SNS_AUTHORIZATION_ERROR, 403, "AuthorizationError", "AuthorizationError", 1)                   \
  X(THROTTLED, 400, "Throttling", "com.amazon.coral.availability#ThrottlingException", 1)

typedef enum aws_err {
  AWS_OK = 0,
#define AWS_X(sym, st, code, type, sender) AWS_E_##sym,
  AWS_ERRORS(AWS_X)
#undef AWS_X
} aws_err_t;

/* The query-protocol code of e ("AWS.SimpleQueueService.NonExistentQueue"). */
const char *aws_err_code(aws_err_t e);

enum { AWS_SQS = 1, AWS_SNS = 2 };

/* A request message longer than this is cut when echoed in an error. */
#define AWS_MAX_ERRMSG 512u

typedef struct aws aws_t;

/* The face's state, one per server (created by aws_start). */
struct aws {
  server_t *s;
  http_t *http;
  int test_endpoints;            /* POST /moto-api/reset and GET /gearbox/peek/... */
  uint64_t nreq;                 /* request ids */
  gbx_buf_t out;                 /* response rendering */
  gbx_buf_t scratch;             /* attribute packing */
  gbx_buf_t env;                 /* SNS envelopes */
  struct aws_deferred *deferred; /* body fetches waiting for a write (aws_fetch) */
};

/* One request being answered; freed once answered or aborted. */
typedef struct areq {
  aws_t *a;
  server_t *s;
  http_req_t *h;
  int json; /* AWS JSON 1.0; else the query protocol */
  int svc;  /* AWS_SQS or AWS_SNS */
  char action[64];
  cJSON *in;      /* parameters, JSON-protocol shaped (owned) */
  char base[300]; /* "http://host:port": base of queue URLs */
  char rid[40];   /* request id */
  uint64_t now;
  /* long-poll / fetch state of a ReceiveMessage */
  waiter_t *w;
  int fetching; /* a body fetch holds this request */
  int aborted;  /* the connection went away meanwhile */
  uint32_t max;
  int32_t vis;
  /* who signed the request (--credentials): copies, since a reload may
   * free the credential set; "" when authentication is off */
  char principal[65];
  char principal_account[33];
  auth_id_t id;    /* the signer, for revocation of its long polls */
  authz_who_t who; /* who.p valid while the request is handled synchronously; NULL: auth off */
  char iam[80];    /* the action's IAM name: "sqs:<Action>" or "sns:<Action>" */
  int scope_svc;   /* AWS_SQS or AWS_SNS from a verified credential scope, else 0 */
} areq_t;

/* ---- lifecycle (aws.c) ---- */

/* Creates the face and listens on host:port (port 0 picks one). Returns the
 * transport (s->http) or NULL with a message in err. */
http_t *aws_start(server_t *s, const char *host, int port, int test_endpoints, int *bound,
                  char *err, size_t errlen);
/* Frees the face and its transport (after http_close_all and the loop ran). */
void aws_free(http_t *h);

/* Submits a body fetch for r (r->fetching is set; fetches_in_flight
 * counted). A body sent in a batch not yet written is not in the store
 * yet, so the fetch waits until the current gate is durable. */
void aws_fetch(areq_t *r, fetch_job_t *j);

/* ---- SQS (aws_sqs.c) ---- */

/* Runs an SQS action (r->action); answers r. */
void aws_sqs_handle(areq_t *r);

/* ---- SNS (aws_sns.c) ---- */

/* 1 if action is an SNS action name. */
int aws_sns_has(const char *action);
/* Runs an SNS action; answers r. */
void aws_sns_handle(areq_t *r);

/* ---- answering (aws_fmt.c) ---- */

/* Answers r with the result object (JSON-protocol shape; taken over, may
 * be NULL for an empty result), rendered for r's protocol. Frees r. */
void aws_reply(areq_t *r, cJSON *result);
/* Answers r with an error in AWS's shape for r's protocol; msg is
 * printf-style. Frees r. */
void aws_fail(areq_t *r, aws_err_t e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* 1 if r's signer may do action on the resource; else answers r with
 * AccessDenied (SQS) or AuthorizationError (SNS) and returns 0. Always 1
 * without --credentials. */
int aws_authorize(areq_t *r, const char *action, authz_kind_t kind, const char *name, size_t nl);
/* The same without answering or an audit line: list filtering with r->iam. */
int aws_may_see(areq_t *r, authz_kind_t kind, const char *name, size_t nl);
/* Answers r with a raw body (test endpoints). Frees r. */
void aws_reply_raw(areq_t *r, int status, const char *ctype, const void *body, size_t len);
/* Frees r without answering (aborted). */
void aws_req_free(areq_t *r);

/* ---- parameters ---- */

/* Decodes application/x-www-form-urlencoded text into a tree: "A.1.B=v"
 * becomes {"A":[{"B":"v"}]}, and SNS's "X.member.N" and
 * "X.entry.N.key/value" become lists and maps. Adds to obj. Returns 0, or
 * -1 with a message in err (bad encoding, conflicting or too many
 * parameters). A decoded NUL byte becomes 0xFF, which no valid text holds,
 * so content checks still refuse it. An SNS map entry without its key or
 * value is left out and named in incomplete ("Attributes.entry.2.key"; empty
 * when none), for the caller to refuse in its service's terms. */
int aws_form_decode(const char *s, size_t n, cJSON *obj, char *err, size_t errlen, char *incomplete,
                    size_t il);
/* Renames SQS's flattened query names to the JSON protocol's shape:
 * "Attribute.N.Name/Value" -> "Attributes" map, "Tag.N.Key/Value" -> "Tags",
 * "SendMessageBatchRequestEntry.N" -> "Entries", "AttributeName.N" ->
 * "AttributeNames", ... Returns 0, or -1 with a message in err when a map
 * entry lacks its Name (Key) or Value. */
int aws_form_sqs_shape(cJSON *obj, char *err, size_t errlen);

/* The string parameter k of o, or NULL when absent or not a string. */
const char *aws_str(const cJSON *o, const char *k);
/* Integer parameter k of o (a number, or a decimal string in the query
 * protocol). Returns 1 and *out when present and valid, 0 when absent,
 * -1 when not an integer. */
int aws_int(const cJSON *o, const char *k, int64_t *out);
/* Boolean parameter ("true"/"false" or a JSON bool): 1/0 set, -1 bad,
 * 0 with *present 0 when absent. */
int aws_bool(const cJSON *o, const char *k, int *out, int *present);

/* A message's attributes decoded from a request; binary values own their
 * decoded bytes (aws_mattrs_free). */
typedef struct aws_mattrs {
  gbx_attr_t a[GBX_MAX_ATTRS];
  uint8_t *bin[GBX_MAX_ATTRS];
  uint32_t n;
} aws_mattrs_t;

/* Reads a MessageAttributes map ({name: {DataType, StringValue |
 * BinaryValue (base64)}}) with SQS's rules, then the codec's own checks
 * (names, number syntax) so both faces accept the same attributes. Returns
 * AWS_OK, or an error with its message in why; free m either way. */
aws_err_t aws_mattrs_parse(aws_t *a, const cJSON *ma, aws_mattrs_t *m, char *why, size_t wl);
void aws_mattrs_free(aws_mattrs_t *m);

/* ---- text and digests ---- */

/* Appends p[0..n) to b with XML escaping (&, <, >, ", ', and CR as &#xD;
 * so parsers keep it). */
void aws_xml_escape(gbx_buf_t *b, const char *p, size_t n);
/* Lower-case hex MD5 of p[0..n). */
void aws_md5_hex(const void *p, size_t n, char out[33]);
/* MD5OfMessageAttributes as SQS computes it: attributes sorted by name;
 * each contributes len(name) name len(type) type, a transport byte (1
 * String/Number, 2 Binary) and len(value) value, lengths as 4-byte
 * big-endian. n: at most GBX_MAX_ATTRS + 1 (a received message's 10 and
 * Gearbox.BodyEncoding). Returns 0, or -1 if n is 0 or more (no digest). */
int aws_attrs_md5(const gbx_attr_t *a, uint32_t n, char out[33]);
/* Base64 of p[0..n) (malloc'd, NUL-terminated), or NULL on OOM. */
char *aws_b64(const void *p, size_t n);
/* Decodes standard base64 (padding required). Returns the decoded length
 * into out (at least 3*len/4 bytes), or -1 when malformed. */
long aws_unb64(const char *s, size_t len, uint8_t *out);

/* ARN of a queue or topic: arn:aws:SVC:REGION:ACCOUNT:NAME. */
void aws_arn(const server_t *s, const char *svc, const char *name, char *out, size_t outlen);
/* The NAME of an ARN of service svc in our region and account; returns its
 * length (0 when the ARN is not one of ours) and sets *name. */
size_t aws_arn_name(const server_t *s, const char *svc, const char *arn, const char **name);

#endif
