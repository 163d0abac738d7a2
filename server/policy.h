/* policy.h - IAM-style policy documents: parsing (cJSON) and evaluation.
 * Pure: no I/O, no server state. Identity policies are attached to
 * principals (credentials file, admin operations); resource policies are a
 * queue's Policy attribute (SQS AddPermission/RemovePermission). */
#ifndef GBX_POLICY_H
#define GBX_POLICY_H

#include <stddef.h>

typedef struct cJSON cJSON;
typedef struct policy policy_t;

/* What a policy says about one request. */
typedef enum { POLICY_NONE = 0, POLICY_ALLOW = 1, POLICY_DENY = 2 } policy_effect_t;

/* Identity policy: Principal not allowed. Resource policy: Principal required. */
typedef enum { POLICY_IDENTITY = 0, POLICY_RESOURCE = 1 } policy_kind_t;

/* Who asks, for resource-policy Principal matching. */
typedef struct policy_subject {
  const char *name;    /* principal name, e.g. "orders-worker" */
  const char *account; /* its account id, e.g. "123456789012" */
} policy_subject_t;

/* Limits (why: bounded work per request and bounded memory per document). */
#define POLICY_MAX_BYTES 20480u     /* SQS's cap on a Policy attribute: 20 KiB */
#define POLICY_MAX_STATEMENTS 100u
#define POLICY_MAX_ITEMS 100u       /* actions, resources or principals per statement */
#define POLICY_MAX_PATTERN 1024u    /* bytes in one action/resource/principal pattern */

/* Parses a policy document of at most POLICY_MAX_BYTES. NULL on error with a
 * one-line reason in err (naming the statement index and key). Caller frees
 * with policy_free. Never allocates by a size the input declares unchecked. */
policy_t *policy_parse(const char *json, size_t len, policy_kind_t kind, char *err, size_t errlen);
/* The same from an already parsed document (the credentials file embeds
 * policies as JSON objects). doc is not taken over. */
policy_t *policy_from_json(const cJSON *doc, policy_kind_t kind, char *err, size_t errlen);
void policy_free(policy_t *p);
/* A deep copy of p (NULL if p is NULL or out of memory); free with policy_free. */
policy_t *policy_clone(const policy_t *p);

/* The verdict of p for `who` doing `action` (e.g. "sqs:SendMessage") on
 * `resource` (a full ARN, e.g. "arn:aws:sqs:us-east-1:123456789012:orders"):
 * POLICY_DENY if a matching statement denies, else POLICY_ALLOW if one
 * allows, else POLICY_NONE. who is only read for resource policies. p may be
 * NULL (POLICY_NONE). */
policy_effect_t policy_eval(const policy_t *p, const policy_subject_t *who, const char *action,
                            const char *resource);

/* IAM wildcard match of a whole string: '*' matches any run of characters
 * (colons included, possibly empty), '?' exactly one; ci: ASCII
 * case-insensitive (actions), else exact (resources). The subject s is
 * always literal: a '*' in s matches only a '*' (or a wildcard) in pattern. */
int policy_match(const char *pattern, size_t plen, const char *s, size_t slen, int ci);

#endif
