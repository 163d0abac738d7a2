/* cli.h - shared state and output helpers of the gearbox command line
 * tool (cli*.c). The tool is a thin layer over libgearbox: it parses
 * arguments, makes one or a few calls and prints the result, as text for
 * humans or, with --json, as one JSON document on stdout.
 *
 * Exit codes: 0 success, 1 an error from the server or the connection
 * (printed as "error: <name>: <message>" on stderr), 2 a usage error. */
#ifndef GBX_CLI_H
#define GBX_CLI_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "cli_args.h"
#include "gearbox.h"

#define CLI_OK    0
#define CLI_ERR   1
#define CLI_USAGE 2

typedef struct cli {
  const char *host;
  uint16_t port;
  unsigned timeout_ms;
  int json;
  int tls;                 /* --tls (implied by --ca-file, --server-name, --tls-no-verify) */
  gbx_tls_opts_t tls_opts; /* --ca-file, --server-name, --tls-no-verify */
  gbx_client_t *c;         /* connected by cli_connect */
} cli_t;

/* A command: words ("queue", "create"), its options, its help text (first
 * line: the synopsis), and its function, which gets itself and the parsed
 * arguments. */
typedef struct cli_cmd {
  const char *word1, *word2;
  const cli_optspec_t *opts;
  const char *help;
  int (*run)(cli_t *cli, const struct cli_cmd *cmd, const cli_args_t *a);
} cli_cmd_t;

/* Command tables of cli_queue.c, cli_msg.c, cli_topic.c and cli_admin.c,
 * each ending with an entry whose word1 is NULL. */
extern const cli_cmd_t cli_queue_cmds[];
extern const cli_cmd_t cli_msg_cmds[];
extern const cli_cmd_t cli_topic_cmds[];
extern const cli_cmd_t cli_admin_cmds[];

/* Connects cli->c if not yet connected. Returns CLI_OK or prints the
 * error and returns CLI_ERR. */
int cli_connect(cli_t *cli);

/* Runs "<kind> delete NAME": connects, calls del(c, NAME) and prints
 * "deleted <kind> NAME" (--json: {"<kind>": NAME, "deleted": true}).
 * Returns a CLI_ code. */
int cli_run_delete(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a, const char *kind,
                   int (*del)(gbx_client_t *c, const char *name, gbx_error_t *err));

/* Prints "error: <name>: <message>" to stderr; returns CLI_ERR. */
int cli_fail(const gbx_error_t *err);
/* Prints "usage error: <why>" and the command's synopsis to stderr;
 * returns CLI_USAGE. */
int cli_usage(const cli_cmd_t *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Checks the positional count is within min..max (else a usage error). */
int cli_npos(const cli_cmd_t *cmd, const cli_args_t *a, size_t min, size_t max);

/* Reads all of stdin, up to limit bytes. Returns the bytes (caller frees)
 * with *n set, or NULL: with *too_long set when there was more than limit,
 * else on a read error or out of memory. */
uint8_t *cli_read_stdin(size_t limit, size_t *n, int *too_long);

/* Tags given as KEY=VALUE arguments, their keys copied out of the
 * arguments (the values point into them). */
typedef struct cli_tags {
  gbx_tag_t tags[GBX_MAX_TAGS];
  char keys[GBX_MAX_TAGS][GBX_MAX_TAG_KEY + 1];
  size_t n;
} cli_tags_t;
/* Parses nargs KEY=VALUE arguments into ts. Returns CLI_OK, or a usage
 * error (more than GBX_MAX_TAGS, or one not KEY=VALUE) with ts->n 0. */
int cli_parse_tags(const cli_cmd_t *cmd, const char *const *args, size_t nargs, cli_tags_t *ts);
/* cli_parse_tags on the values of the repeatable --tag option. */
int cli_parse_tag_opts(const cli_cmd_t *cmd, const cli_args_t *a, cli_tags_t *ts);

/* A message given on the command line (send, publish): its --attr options
 * and its body, the BODY argument a->pos[1] or, without one or with "-",
 * all of stdin. Body and attributes stay valid until cli_msg_free. */
typedef struct cli_msg {
  const uint8_t *body;
  size_t len;
  gbx_msg_attr_t attrs[GBX_MAX_ATTRS + 1];
  size_t nattrs;
  cli_attr_t parsed_[GBX_MAX_ATTRS + 1]; /* private: what attrs point into */
  uint8_t *owned_;                       /* private: a body read from stdin */
} cli_msg_t;
/* Fills m from a's --attr options and body, reading at most limit bytes of
 * stdin. Returns CLI_OK (free m with cli_msg_free), or a usage error or
 * CLI_ERR, already printed, with nothing left to free. */
int cli_msg_parse(const cli_cmd_t *cmd, const cli_args_t *a, size_t limit, cli_msg_t *m);
/* Frees what cli_msg_parse kept in m. */
void cli_msg_free(cli_msg_t *m);

/* Prints j (pretty) on stdout with a newline and frees it. Returns CLI_OK,
 * or CLI_ERR when j is NULL (out of memory). */
int cli_json_print(cJSON *j);
/* The outcome of a command that returns nothing else: with --json
 * {"<field>": name, "<key>": true}, else the line human. Returns as
 * cli_json_print. */
int cli_print_done(cli_t *cli, const char *field, const char *name, const char *key,
                   const char *human);
/* The outcome of "<kind> create": with --json {"<kind>": name, "created":
 * bool}, else "created <kind> NAME" or that it already existed. */
int cli_print_created(cli_t *cli, const char *kind, const char *name, int created);
/* The attributes and tags of a queue or topic (stats): with --json
 * {"<kind>": name, "attributes": {...}, "tags": {...}}, else one line per
 * attribute, names padded to width, *Timestamp values also as a date. */
int cli_print_attrs(cli_t *cli, const char *kind, const char *name, const gbx_queue_attr_t *all,
                    size_t nall, const gbx_tag_t *tags, size_t ntags, int width);

/* Fetches the page of a listing after token (NULL: the first) and prints
 * its entries, or adds them to arr with --json. Sets *next to the page's
 * continuation token (malloc'd; NULL at the end or on failure). Returns
 * CLI_OK, CLI_ERR on a failed call (err set), or -1 out of memory. */
typedef int (*cli_page_fn)(cli_t *cli, void *ctx, const char *token, cJSON *arr, char **next,
                           gbx_error_t *err);
/* Prints every page of a listing (page is called until no token is left),
 * with --json as one document {"<key>": [...]}. Returns a CLI_ code. */
int cli_print_pages(cli_t *cli, const char *key, cli_page_fn page, void *ctx);
/* A call listing names, as gbx_queue_list and gbx_topic_list. */
typedef int (*cli_list_fn)(gbx_client_t *c, const char *prefix, uint32_t max, const char *next,
                           gbx_queue_list_t *out, gbx_error_t *err);
/* Prints every name list() reports for prefix (NULL: all), one per line,
 * with --json {"<key>": [names]}. Returns a CLI_ code. */
int cli_print_names(cli_t *cli, const char *key, const char *prefix, cli_list_fn list);
/* Prints the names of l, or adds them to arr with --json. Returns 0 or -1
 * (out of memory). */
int cli_add_names(cli_t *cli, cJSON *arr, const gbx_queue_list_t *l);
/* Adds body-like bytes to obj: "<key>" as a string when they are UTF-8
 * text without NUL, else "<key>_base64". Returns 0 or -1 (no memory). */
int cli_json_add_bytes(cJSON *obj, const char *key, const uint8_t *p, size_t n);
/* A received message as a JSON object (NULL out of memory). */
cJSON *cli_json_message(const gbx_message_t *m);
/* Prints a received message for humans on out. */
void cli_print_message(FILE *out, const gbx_message_t *m);
/* Formats epoch milliseconds as ISO 8601 UTC ("2024-05-01T12:00:00.123Z"). */
void cli_format_ms(uint64_t ms, char *buf, size_t cap);

#endif
