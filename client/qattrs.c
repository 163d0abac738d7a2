/* qattrs.c - the table of settable queue attributes (see qattrs.h). */
#include "qattrs.h"

#include <string.h>

#define QA_U32(wire, flag, field)                                                                  \
  { wire, flag, offsetof(gbx_queue_attrs_t, field), 0 }
#define QA_STR(wire, flag, field)                                                                  \
  { wire, flag, offsetof(gbx_queue_attrs_t, field), 1 }

const qattr_def_t qattr_defs[] = {
    QA_U32("VisibilityTimeout", GBX_QA_VISIBILITY, visibility_timeout),
    QA_U32("DelaySeconds", GBX_QA_DELAY, delay_seconds),
    QA_U32("MessageRetentionPeriod", GBX_QA_RETENTION, retention_period),
    QA_U32("MaximumMessageSize", GBX_QA_MAX_SIZE, max_message_size),
    QA_U32("ReceiveMessageWaitTimeSeconds", GBX_QA_WAIT, receive_wait),
    QA_STR("DeadLetterQueue", GBX_QA_DLQ, dead_letter_queue),
    QA_U32("MaxReceiveCount", GBX_QA_MAX_RECEIVES, max_receive_count),
    QA_STR("Policy", GBX_QA_POLICY, policy),
    QA_STR("RedriveAllowPolicy", GBX_QA_REDRIVE_ALLOW, redrive_allow_policy),
    {NULL, 0, 0, 0},
};

const qattr_def_t *qattr_find(const char *s, size_t len) {
  for (const qattr_def_t *d = qattr_defs; d->name; d++)
    if (strlen(d->name) == len && memcmp(d->name, s, len) == 0)
      return d;
  return NULL;
}

unsigned qattrs_count(const gbx_queue_attrs_t *a) {
  unsigned n = 0;
  if (!a)
    return 0;
  for (const qattr_def_t *d = qattr_defs; d->name; d++)
    if (a->set & d->flag)
      n++;
  return n;
}

void qattrs_pack(msgpack_packer *pk, const gbx_queue_attrs_t *a) {
  msgpack_pack_map(pk, qattrs_count(a));
  if (!a)
    return;
  for (const qattr_def_t *d = qattr_defs; d->name; d++) {
    const char *field = (const char *)a + d->off;
    if (!(a->set & d->flag))
      continue;
    if (d->is_str) {
      const char *s = *(const char *const *)field;
      gbx_pack_kv_cstr(pk, d->name, s ? s : "");
    } else {
      gbx_pack_kv_u64(pk, d->name, *(const uint32_t *)field);
    }
  }
}
