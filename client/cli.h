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
  gbx_client_t *c; /* connected by cli_connect */
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

/* Prints j (pretty) on stdout with a newline and frees it. Returns CLI_OK,
 * or CLI_ERR when j is NULL (out of memory). */
int cli_json_print(cJSON *j);
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
