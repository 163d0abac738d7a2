/* envelope.h - the SNS notification envelope a queue receives from a topic
 * without raw delivery, rendered at receive time from the stored blob (the
 * body is stored once, as published). Field order and names as SNS sends
 * them to SQS: Type, MessageId, TopicArn, Subject (when set), Message,
 * Timestamp, SignatureVersion, Signature, SigningCertURL, UnsubscribeURL,
 * MessageAttributes (when any). */
#ifndef GBX_ENVELOPE_H
#define GBX_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "gbx_codec.h"
#include "ids.h"

typedef struct envelope_ctx {
  const char *region;     /* "us-east-1" */
  const char *account;    /* "123456789012" */
  const char *base_url;   /* "http://127.0.0.1:7411": for SigningCertURL / UnsubscribeURL */
  const uint8_t *sign_key;/* 32 bytes: HMAC key of the Signature field */
} envelope_ctx_t;

/* Renders the envelope of a v2 blob into out (replacing its contents);
 * sub_id (36 characters, or NULL when the subscription is gone) names the
 * subscription for UnsubscribeURL. Returns 0, or -1 when the blob is not a
 * well-formed publish or out of memory. */
int envelope_render(const envelope_ctx_t *ctx, ids_t *ids, const uint8_t *blob, size_t len,
                    const char *sub_id, gbx_buf_t *out);

#endif
