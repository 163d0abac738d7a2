/* creds.h - principals: name, access key id, secret, account id and identity
 * policy, from the credentials file (and from admin operations). Pure data
 * and parsing; the server holds one creds_t and swaps it on SIGHUP. */
#ifndef GBX_CREDS_H
#define GBX_CREDS_H

#include <stddef.h>
#include <stdint.h>

#include "policy.h"

#define CREDS_MAX_NAME 64       /* IAM user names: 1-64 of [A-Za-z0-9+=,.@_-] */
#define CREDS_MAX_AKID 128      /* access key ids: 16-128 of [A-Z0-9] (IAM's rule) */
#define CREDS_MIN_SECRET 16     /* shorter secrets are guessable */
#define CREDS_MAX_SECRET 128    /* printable ASCII, no spaces */
#define CREDS_MAX_PRINCIPALS 10000u
#define CREDS_MAX_FILE (16u * 1024u * 1024u) /* a larger credentials file is refused */

typedef enum { CREDS_FROM_FILE = 0, CREDS_FROM_ADMIN = 1 } creds_source_t;

typedef struct principal {
  char name[CREDS_MAX_NAME + 1];
  char akid[CREDS_MAX_AKID + 1];
  char secret[CREDS_MAX_SECRET + 1];
  size_t secret_len;
  char account[33];      /* account id used in ARNs and resource-policy matching */
  policy_t *policy;      /* identity policy; NULL: nothing is allowed */
  char *policy_json;     /* the policy as text (for admin get/list and persistence); may be NULL */
  creds_source_t source;
} principal_t;

typedef struct creds creds_t;

/* Reads and checks the credentials file at path: a regular file owned by the
 * effective uid (or root) with no group/other permission bits, at most
 * CREDS_MAX_FILE bytes, in the format of docs/SECURITY.md, with at least one
 * principal, unique names and access key ids, and valid policies. NULL with
 * a message naming the file (and the JSON line where known) in err: a bad or
 * empty file is never "allow everyone". default_account fills a missing
 * "account_id". */
creds_t *creds_load_file(const char *path, const char *default_account, char *err, size_t errlen);
/* The same checks on a document in memory, without the file checks (tests, fuzzing). */
creds_t *creds_parse(const char *json, size_t len, const char *default_account, char *err,
                     size_t errlen);
/* An empty set (for admin-only principals); NULL only on OOM. */
creds_t *creds_new(void);
void creds_free(creds_t *c);

/* Lookups: NULL if absent. Pointers stay valid until the set is changed or freed. */
const principal_t *creds_by_akid(const creds_t *c, const char *akid, size_t len);
const principal_t *creds_by_name(const creds_t *c, const char *name, size_t len);
uint32_t creds_count(const creds_t *c);
const principal_t *creds_at(const creds_t *c, uint32_t i);

/* Adds or replaces an admin-defined principal (copies p, takes ownership of
 * p->policy and p->policy_json). Refused (-1, reason in err) if the name or
 * access key id belongs to a file-defined principal: the file wins. */
int creds_put_admin(creds_t *c, principal_t *p, char *err, size_t errlen);
/* Removes an admin-defined principal; -1 if absent or file-defined. */
int creds_remove_admin(creds_t *c, const char *name, size_t len);
/* A new set holding `file`'s principals plus the admin-defined principals of
 * `old` whose name and key do not clash with the file's (those are dropped
 * and named in a warning through warn_cb). Used on reload. Takes ownership
 * of file. NULL only on OOM. */
creds_t *creds_merge_admin(creds_t *file, const creds_t *old,
                           void (*warn_cb)(void *ctx, const char *msg), void *ctx);

#endif
