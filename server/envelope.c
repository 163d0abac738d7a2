/* envelope.c - see envelope.h.
 *
 * Signature: SNS signs with an AWS-held RSA key that Gearbox cannot have.
 * Gearbox fills Signature with base64 HMAC-SHA256, under a key of the store,
 * of SNS's canonical string for a Notification (Message, MessageId, Subject
 * when set, Timestamp, TopicArn, Type; each name and value followed by a
 * newline) and says SignatureVersion "2" (SHA-256). A consumer that verifies
 * AWS signatures against AWS's certificate will reject it, as it should: the
 * message did not come from AWS. */
#include "envelope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "records.h"
#include "strutil.h"

static void iso8601(int64_t ms, char out[32]) {
  time_t s = (time_t)(ms / 1000);
  struct tm tm;
  char day[16];
  gmtime_r(&s, &tm);
  strftime(day, sizeof(day), "%Y-%m-%d", &tm);
  snprintf(out, 32, "%.10sT%02u:%02u:%02u.%03uZ", day, (unsigned)tm.tm_hour % 24u,
           (unsigned)tm.tm_min % 60u, (unsigned)tm.tm_sec % 61u, (unsigned)(ms % 1000));
}

static void canon_add(gbx_buf_t *c, const char *k, const char *v, size_t vl) {
  gbx_buf_append(c, k, strlen(k));
  gbx_buf_append(c, "\n", 1);
  gbx_buf_append(c, v, vl);
  gbx_buf_append(c, "\n", 1);
}

static char *b64(const uint8_t *p, size_t n) {
  char *o = malloc(4 * ((n + 2) / 3) + 1);
  if (o) EVP_EncodeBlock((unsigned char *)o, p, (int)n);
  return o;
}

/* Adds MessageAttributes {"name": {"Type": t, "Value": v}}; Binary values
 * are base64, as SNS renders them. */
static int add_attrs(cJSON *env, const uint8_t *attrs, uint32_t al) {
  gbx_doc_t d;
  gbx_errbuf_t eb;
  gbx_attr_t a[GBX_MAX_ATTRS];
  uint32_t n = 0;
  if (!al) return 0;
  /* the attribute map is stored pre-packed; wrap it to parse it as a doc */
  gbx_buf_t w;
  gbx_buf_init(&w);
  static const uint8_t hdr[] = {0x81, 0xa1, 'a'};
  if (gbx_buf_append(&w, hdr, sizeof(hdr)) || gbx_buf_append(&w, attrs, al)) {
    gbx_buf_free(&w);
    return -1;
  }
  int rc = -1;
  if (gbx_doc_parse(&d, w.data, w.len, &eb) != GBX_E_OK) goto out_buf;
  if (gbx_attrs_decode(gbx_map_get(&d.root, "a"), a, &n, &eb) != GBX_E_OK) goto out_doc;
  cJSON *m = cJSON_AddObjectToObject(env, "MessageAttributes");
  for (uint32_t i = 0; m && i < n; i++) {
    char name[GBX_MAX_ATTR_NAME + 1], type[GBX_MAX_ATTR_TYPE + 1];
    snprintf(name, sizeof(name), "%.*s", (int)a[i].name_len, a[i].name);
    snprintf(type, sizeof(type), "%.*s", (int)a[i].type_len, a[i].type);
    cJSON *o = cJSON_AddObjectToObject(m, name);
    if (!o) goto out_doc;
    cJSON_AddStringToObject(o, "Type", type);
    char *v = strncmp(type, "Binary", 6) == 0 ? b64((const uint8_t *)a[i].value, a[i].value_len)
                                              : str_copy(a[i].value, a[i].value_len);
    if (!v) goto out_doc;
    cJSON_AddStringToObject(o, "Value", v);
    free(v);
  }
  rc = m ? 0 : -1;
out_doc:
  gbx_doc_free(&d);
out_buf:
  gbx_buf_free(&w);
  return rc;
}

int envelope_render(const envelope_ctx_t *ctx, ids_t *ids, const uint8_t *blob, size_t len,
                    const char *sub_id, gbx_buf_t *out) {
  blob_pub_t pm;
  const uint8_t *body, *attrs;
  uint32_t bl, al;
  char mid[GBX_MSGID_LEN + 1], arn[160], ts[32], url[512];
  int rc = -1;
  if (blob_pub_meta(blob, len, &pm) != 0 || blob_parse(blob, len, &body, &bl, &attrs, &al) != 0)
    return -1;
  ids_msgid(ids, pm.pub_idn, mid);
  mid[GBX_MSGID_LEN] = 0;
  snprintf(arn, sizeof(arn), "arn:aws:sns:%s:%s:%.*s", ctx->region, ctx->account,
           (int)pm.topic_len, pm.topic);
  iso8601(pm.pub_ms, ts);
  /* JSON strings need the body as text; cJSON takes a NUL-terminated copy */
  char *msg = malloc((size_t)bl + 1);
  char *subj = pm.subject ? str_copy(pm.subject, pm.subject_len) : NULL;
  cJSON *env = cJSON_CreateObject();
  gbx_buf_t canon;
  gbx_buf_init(&canon);
  if (!msg || !env || (pm.subject && !subj)) goto out;
  memcpy(msg, body, bl);
  msg[bl] = 0;
  cJSON_AddStringToObject(env, "Type", "Notification");
  cJSON_AddStringToObject(env, "MessageId", mid);
  cJSON_AddStringToObject(env, "TopicArn", arn);
  if (subj) cJSON_AddStringToObject(env, "Subject", subj);
  cJSON_AddStringToObject(env, "Message", msg);
  cJSON_AddStringToObject(env, "Timestamp", ts);
  cJSON_AddStringToObject(env, "SignatureVersion", "2");
  canon_add(&canon, "Message", (const char *)body, bl);
  canon_add(&canon, "MessageId", mid, GBX_MSGID_LEN);
  if (subj) canon_add(&canon, "Subject", subj, pm.subject_len);
  canon_add(&canon, "Timestamp", ts, strlen(ts));
  canon_add(&canon, "TopicArn", arn, strlen(arn));
  canon_add(&canon, "Type", "Notification", 12);
  uint8_t mac[32];
  unsigned ml = 0;
  if (!canon.data || !HMAC(EVP_sha256(), ctx->sign_key, 32, canon.data, canon.len, mac, &ml))
    goto out;
  char *sig = b64(mac, ml);
  if (!sig) goto out;
  cJSON_AddStringToObject(env, "Signature", sig);
  free(sig);
  snprintf(url, sizeof(url), "%s/gearbox/sns-signing-key", ctx->base_url);
  cJSON_AddStringToObject(env, "SigningCertURL", url);
  snprintf(url, sizeof(url), "%s/?Action=Unsubscribe&SubscriptionArn=%s%s%s", ctx->base_url, arn,
           sub_id ? ":" : "", sub_id ? sub_id : "");
  cJSON_AddStringToObject(env, "UnsubscribeURL", url);
  if (add_attrs(env, attrs, al) != 0) goto out;
  char *text = cJSON_PrintUnformatted(env);
  if (!text) goto out;
  out->len = 0;
  rc = gbx_buf_append(out, text, strlen(text));
  free(text);
out:
  gbx_buf_free(&canon);
  cJSON_Delete(env);
  free(msg);
  free(subj);
  return rc;
}
