/* authz.h - may this principal do this action on this resource? IAM's rules:
 * default deny; an explicit Deny in the principal's policy or in the
 * resource's policy (a queue's or topic's Policy attribute, as SQS
 * AddPermission writes it) wins; otherwise an Allow in either allows. Every
 * denial is an audit line. */
#ifndef GBX_AUTHZ_H
#define GBX_AUTHZ_H

#include <stddef.h>

#include "auth.h"
#include "gbx_limits.h"

struct server;
struct queue;
typedef struct authz authz_t;

typedef enum { AUTHZ_SERVER = 0, AUTHZ_QUEUE = 1, AUTHZ_TOPIC = 2 } authz_kind_t;

/* The caller of a request: NULL p means authentication is off (everything is
 * allowed). addr is the peer, for audit lines. */
typedef struct authz_who {
  const principal_t *p;
  const char *addr;
} authz_who_t;

authz_t *authz_new(void);
void authz_free(authz_t *z);
/* Forgets cached resource policies (a queue or topic was deleted or changed). */
void authz_forget(authz_t *z);

/* 1 if who may do action on the resource (kind, name); else 0 and, when
 * audit is set, logs "audit: denied principal=... action=... resource=...
 * addr=...". name is literal: it is never read as a pattern. */
int authz_allowed(struct server *s, const authz_who_t *who, const char *action, authz_kind_t kind,
                  const char *name, size_t nl, int audit);
/* A redrive to the sources writes into each queue that messages now in dlq
 * came from (broker_dlq_origins), so each needs sqs:SendMessage. Writes
 * into denied the name of the first such queue who may not send to, or ""
 * when who may send to all (or authentication is off). No audit line: the
 * caller asks again for the denied one, with its face's own error. */
void authz_source_denied(struct server *s, const authz_who_t *who, const struct queue *dlq,
                         char denied[GBX_MAX_NAME + 1]);
/* Writes the resource's ARN (arn:aws:sqs|sns:REGION:ACCOUNT:name, or
 * arn:aws:gearbox:REGION:ACCOUNT:server) into buf. */
void authz_arn(const struct server *s, authz_kind_t kind, const char *name, size_t nl, char *buf,
               size_t cap);
/* With authentication on, a Policy attribute being set must be a valid
 * resource policy: 0 if it is (or authentication is off, or text is NULL or
 * ""), else -1 with the reason in err. */
int authz_check_policy(const struct server *s, const char *text, char *err, size_t errlen);
/* An audit line for a refused authentication. */
void authz_audit_auth(const char *face, const char *key, const char *addr, const char *why);

#endif
