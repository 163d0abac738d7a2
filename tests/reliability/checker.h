/* checker.h - judges a history (history.h) after the run and its final drain.
 *
 * Each message is followed in its home queue (the queue it was sent or
 * published to; a delivery from a dead-letter queue counts for the source
 * queue it names). An operation in doubt may or may not have happened, so it
 * never makes a violation by itself; everything acknowledged must hold:
 *
 *  - lost: an acknowledged send (or one target of an acknowledged publish)
 *    the final drain did not find, with no delete of it acknowledged or in
 *    doubt;
 *  - unexpected: a delivered body that was never sent, whose send was
 *    refused, that carries no valid tag, or that came out of a queue it was
 *    not sent to;
 *  - after-delete: a receive issued after a delete of the same message was
 *    acknowledged returned it again;
 *  - rc-regression: a receive issued after another receive of the same
 *    message completed reported a receive count not above it;
 *  - queue+dlq: the message was in both a queue and its dead-letter queue
 *    (both in the final drain, or back in the queue after it had been
 *    delivered from the dead-letter queue);
 *  - drain-duplicate: the final drain (long visibility) got it twice from the
 *    same queue;
 *  - partial-fanout: a publish in doubt shows up in some of its target
 *    queues but not in the others (an acknowledged one is held to "lost").
 */
#ifndef GBX_REL_CHECKER_H
#define GBX_REL_CHECKER_H

#include <stdint.h>
#include <stdio.h>

#include "history.h"

typedef enum check_class {
  V_LOST,
  V_UNEXPECTED,
  V_AFTER_DELETE,
  V_RC_REGRESSION,
  V_QUEUE_AND_DLQ,
  V_DRAIN_DUPLICATE,
  V_PARTIAL_FANOUT,
  V_COUNT
} check_class_t;

typedef struct check_report {
  uint64_t violations[V_COUNT];
  uint64_t messages;     /* distinct messages attempted */
  uint64_t sends[3];     /* by hist_outcome_t */
  uint64_t publishes[3]; /* by hist_outcome_t */
  uint64_t receives;     /* deliveries during the load */
  uint64_t redeliveries; /* of which with receive count > 1 */
  uint64_t dlq_receives; /* of which from a dead-letter queue */
  uint64_t drained;      /* deliveries during the final drain */
  uint64_t deletes[3];   /* by hist_outcome_t, load and drain */
} check_report_t;

/* The short name of a class ("lost", "rc-regression", ...). */
const char *check_class_name(check_class_t c);
/* Checks h. Writes up to max_examples examples per class (each with the
 * message's whole timeline) to out (NULL: none) and fills *r. Returns the
 * total number of violations, or -1 on allocation failure. */
long check_run(const hist_t *h, check_report_t *r, FILE *out, unsigned max_examples);
/* Prints the report's figures and violation counts in one block. */
void check_print(const check_report_t *r, FILE *out);

#endif
