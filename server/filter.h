/* filter.h - SNS subscription filter policies: compile once, match per publish.
 *
 * A policy is JSON in Amazon SNS's filter-policy syntax. filter_compile()
 * validates it against SNS's limits and turns it into a compact tree of
 * conditions (one allocation, no cJSON kept); filter_match() walks that tree
 * against one published message. Pure: no I/O, no globals. A compiled filter
 * is immutable, so many threads may match against it at once; a filter_msg_t
 * caches parsed JSON and belongs to one thread at a time. (cJSON itself
 * stores the position of its last parse error in a process-wide variable,
 * so concurrent parses race on that unused value.)
 *
 * What a policy can say (SNS semantics, docs pages named at each limit below):
 *   {"key": [v1, v2, ...]}   the key matches if any listed value matches (OR);
 *                            keys are ANDed. A value is one of
 *     "text" | 12.5 | true | false | null          exact match (numbers compare
 *                                                  numerically: 300 == 3.0e2)
 *     {"prefix": "ab"} {"suffix": "yz"} {"equals-ignore-case": "Ab"}
 *     {"anything-but": "x" | 5 | ["x", 5, ...] | {"prefix": "p"} | {"suffix": "s"}}
 *     {"numeric": ["=", 5]} or [">", 0, "<=", 5] (any of =, <, <=, >, >=; a range
 *                            is a lower bound > or >= then an upper bound < or <=)
 *     {"exists": true|false} {"cidr": "10.0.0.0/24" | "2001:db8::/32"}
 *   {"$or": [{...}, {...}]}  alternatives, at the top or inside a nested key.
 *   Body scope only: {"key": {"inner": [...]}} follows nested JSON objects.
 *
 * Matching rules:
 *   - Attribute scope: a key names a message attribute. String attributes
 *     meet string conditions, Number attributes numeric ones and exact numbers,
 *     "String.Array" attributes hold a JSON array and match if any element
 *     does. Binary attributes are ignored (as if absent), as SNS does.
 *   - Body scope: the body must be a JSON object; a key path follows objects
 *     and steps into arrays at any level, and matches if any leaf value
 *     (string, number, true, false, null) at the path matches. Objects and
 *     empty arrays are not leaves. A body that is not a JSON object matches
 *     nothing (no error). Each key is matched on its own: two keys may be
 *     satisfied by different elements of the same array.
 *   - A missing key (or one with no leaf, or only null leaves: SNS wants a
 *     non-null, non-empty value) matches only {"exists": false}; in
 *     attribute scope a message without any attribute matches no policy
 *     but {} (SNS: exists:false needs at least one attribute present);
 *     anything-but never matches a missing key. anything-but with values
 *     matches any present value not equal to one of them (a number is never
 *     equal to a string); anything-but prefix/suffix match only strings.
 *   - Numbers compare as fixed point with 5 decimal places; numbers outside
 *     -1e9..1e9 in a message meet no numeric condition or exact number.
 *   - equals-ignore-case folds ASCII letters only; other bytes compare exactly.
 *   - cidr matches a string holding exactly one IPv4 (dotted quad) or IPv6
 *     address of the block's family.
 *   - The empty policy {} matches every message.
 */
#ifndef GBX_FILTER_H
#define GBX_FILTER_H

#include <stddef.h>
#include <stdint.h>

#include "gbx_codec.h"

/* ---- limits ------------------------------------------------------------
 * From "Filter policy constraints in Amazon SNS",
 * https://docs.aws.amazon.com/sns/latest/dg/subscription-filter-policy-constraints.html
 * and "AND/OR logic", https://docs.aws.amazon.com/sns/latest/dg/and-or-logic.html */

/* "The maximum size of a filter policy is 256 KB." Checked before parsing. */
#define FILTER_MAX_POLICY_BYTES (256u * 1024u)
/* "A filter policy can have a maximum of five keys"; with body scope only
 * the top-level keys count. Counted per alternative: an $or group adds the
 * keys of its largest branch, since each message is judged by one branch. */
#define FILTER_MAX_KEYS 5u
/* "The total combination of values ... must not exceed 150": the product of
 * the lengths of the value arrays, each multiplied by its key's nesting depth
 * for body scope (the docs' nested example: 3 x 4 x 2 x 3 = 72), an $or
 * group contributing the sum over its branches. */
#define FILTER_MAX_COMBINATIONS 150u
/* "the value can range from -10^9 to 10^9 ... with five digits of accuracy
 * after the decimal point." Policy numbers outside are refused. */
#define FILTER_NUM_MAX      1e9
#define FILTER_NUM_DECIMALS 5
/* SNS documents no nesting limit; combinations grow with depth, so no useful
 * policy comes near 32 levels of objects ($or branches included), and the
 * cap bounds the recursion of compile and match. */
#define FILTER_MAX_DEPTH 32u

typedef struct filter filter_t;

enum { FILTER_SCOPE_ATTRIBUTES = 0, FILTER_SCOPE_BODY = 1 };

/* Compiles the policy json[0..len) for scope (FILTER_SCOPE_*). Returns a
 * filter to release with filter_free(), or NULL with eb->code =
 * GBX_E_BAD_FILTER_POLICY and a message naming the problem (bad JSON, a limit
 * exceeded, a bad operator or value, with the key path). Out of memory also
 * returns NULL, with GBX_E_INTERNAL. The json need not be NUL-terminated. */
filter_t *filter_compile(const char *json, size_t len, int scope, gbx_errbuf_t *eb);
/* Frees a filter; NULL is ignored. */
void filter_free(filter_t *f);
/* The scope the filter was compiled for. */
int filter_scope(const filter_t *f);

/* The message as matching sees it. Built once per publish by the caller and
 * shared by every subscription's filter_match(). JSON it needs (the body for
 * body scope, String.Array attribute values) is parsed at most once per
 * message, on first need, and cached here. */
typedef struct filter_msg {
  const gbx_attr_t *attrs; /* gbx_codec.h; not copied: must outlive the msg */
  uint32_t nattrs;
  const char *body; /* not copied */
  size_t body_len;
  void *body_json_;   /* private: cJSON* of the body, once parsed */
  int body_state_;    /* private: not parsed yet / parsed / not a JSON object */
  void *arrays_json_; /* private: per-attribute cache of parsed String.Array values */
} filter_msg_t;

/* Sets m up to describe a message; allocates nothing. Pointers are borrowed. */
void filter_msg_init(filter_msg_t *m, const gbx_attr_t *a, uint32_t n, const char *body, size_t bl);
/* Releases what matching cached in m; m may be reused after filter_msg_init. */
void filter_msg_free(filter_msg_t *m);

/* 1 if the message matches the policy, else 0; a NULL filter matches all.
 * Never re-parses the policy. Attribute scope allocates nothing except, once
 * per message, the parse of a String.Array value a policy key names; body
 * scope parses the body once per message. If that parse runs out of memory
 * the body or array counts as unparsable (no match). */
int filter_match(const filter_t *f, filter_msg_t *m);

/* 1 when equals-ignore-case folds by Unicode (C.UTF-8's case tables were
 * found), 0 when only ASCII letters fold. */
int filter_unicode_case(void);

#endif
