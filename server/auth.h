/* auth.h - who may connect: the credentials set (from --credentials, swapped
 * on SIGHUP), principal fingerprints for revocation, and the per-address
 * throttle of failed authentications. No libuv, no I/O beyond reading the
 * credentials file; times are injected. Authorization decisions are authz.h's. */
#ifndef GBX_AUTH_H_SERVER
#define GBX_AUTH_H_SERVER

#include <stddef.h>
#include <stdint.h>

#include "creds.h"

typedef struct auth auth_t;

/* Identity of a principal as it authenticated: a reload that removes the
 * principal or changes its key or secret changes the fingerprint. */
#define AUTH_FP 16
typedef struct auth_id {
  char name[CREDS_MAX_NAME + 1];
  char account[33];
  uint8_t fp[AUTH_FP];
} auth_id_t;

/* path NULL: authentication off (auth_enabled() is 0). Otherwise loads the
 * file (creds_load_file's checks); NULL with the reason in err. */
auth_t *auth_new(const char *path, const char *default_account, char *err, size_t errlen);
void auth_free(auth_t *a);
/* 1 when credentials are configured. */
int auth_enabled(const auth_t *a);
/* The current set (NULL when off); valid until the next auth_reload. */
creds_t *auth_creds(const auth_t *a);
/* Rereads the file. On success swaps the set (admin-defined principals are
 * kept unless the file now defines the same name or key), bumps the
 * generation and returns 0; on failure keeps the old set, returns -1 with
 * the reason in err. */
int auth_reload(auth_t *a, char *err, size_t errlen);
/* Changes each time the set changes (reload, admin operations). */
uint64_t auth_generation(const auth_t *a);
/* Notes a change made to auth_creds()'s set in place (admin operations). */
void auth_touch(auth_t *a);

/* ---- admin-defined principals (principal_put / principal_delete) ----
 * entry is one principal in the credentials file's format (a JSON object),
 * validated exactly as the file's entries are. */

/* Adds or replaces an admin-defined principal. 0; or -1 with the reason in
 * err and *conflict set when the file defines the name or key (the file
 * wins). Bumps the generation: pointers to principals are stale after. */
int auth_put_admin(auth_t *a, const char *entry, size_t len, int *conflict, char *err,
                   size_t errlen);
/* Removes an admin-defined principal: 0, or -1 if it is absent or defined by
 * the file (*in_file set). Bumps the generation. */
int auth_remove_admin(auth_t *a, const char *name, int *in_file);

/* Fills id for p. */
void auth_id_of(const principal_t *p, auth_id_t *id);
/* The principal id still names, or NULL if it was removed or its key or
 * secret changed (revoked). */
const principal_t *auth_current(const auth_t *a, const auth_id_t *id);

/* ---- throttling failed attempts per source address ----
 * After a failure from an address, its next attempt is evaluated no earlier
 * than AUTH_DELAY_BASE_MS << (failures - 1), at most AUTH_DELAY_MAX_MS;
 * failures are forgotten after AUTH_FORGET_MS without one. */
#define AUTH_DELAY_BASE_MS 100u
#define AUTH_DELAY_MAX_MS 10000u
#define AUTH_FORGET_MS (15u * 60u * 1000u)
/* Addresses remembered; beyond, the least recently failed is forgotten
 * (bounded memory under a spray of source addresses). */
#define AUTH_GUARD_SLOTS 4096u

/* Milliseconds an attempt from addr must still wait at now (0: go ahead).
 * addr is the peer address without its port. */
uint64_t auth_guard_wait(auth_t *a, const char *addr, uint64_t now);
/* Records a failed attempt from addr (a bucket: an address, or "address|
 * key") at now; the first `grace` failures cost no delay. */
void auth_guard_fail(auth_t *a, const char *addr, uint64_t now, uint32_t grace);

#endif
