/* cli.c - the gearbox command line tool: global options, command lookup,
 * help, and the helpers every command shares. The commands themselves are
 * in cli_queue.c, cli_msg.c, cli_topic.c and cli_admin.c. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* A CLI call gives up after this long without progress: far above any
 * healthy reply, so only a hung server or network trips it. Long-poll
 * receives get their wait on top (libgearbox adds it). */
#define CLI_DEFAULT_TIMEOUT_MS 30000u
/* Options every command accepts, before or after its words. */
#define GLOBAL_OPTS                                                                                \
  {"host", 1, 0}, {"port", 1, 0}, {"json", 0, 0}, {                                                \
    "timeout", 1, 0                                                                                \
  }
/* Room for a command's own options plus the global ones. */
#define MAX_OPTS 32

static const char *const TOP_HELP =
    "usage: gearbox [--host H] [--port P] [--json] [--timeout MS] <command> [args]\n"
    "\n"
    "Talks to a gearboxd broker (default 127.0.0.1:7411).\n"
    "  --host H       server host name or address\n"
    "  --port P       server port\n"
    "  --json         print results as JSON on stdout (bodies that are not\n"
    "                 UTF-8 text appear as \"body_base64\" instead of \"body\")\n"
    "  --timeout MS   give up on a silent server after MS ms (default 30000; 0: never)\n"
    "Global options may also follow the command.\n"
    "With GEARBOX_ACCESS_KEY_ID and GEARBOX_SECRET_ACCESS_KEY in the environment the\n"
    "connection authenticates first (servers started with --credentials need it).\n"
    "Exit status: 0 ok, 1 server or connection error, 2 usage error.\n"
    "\n"
    "commands (gearbox <command> --help for details):\n";

static const cli_cmd_t *const TABLES[] = {cli_queue_cmds, cli_msg_cmds, cli_topic_cmds,
                                          cli_admin_cmds};

/* ---- shared helpers -------------------------------------------------------- */

int cli_fail(const gbx_error_t *err) {
  fprintf(stderr, "error: %s: %s\n", gbx_errname(err->code),
          err->message[0] ? err->message : gbx_strerror(err->code));
  return CLI_ERR;
}

/* The first line of a command's help is its synopsis. */
static void print_synopsis(FILE *out, const cli_cmd_t *cmd) {
  const char *nl = strchr(cmd->help, '\n');
  fprintf(out, "%.*s\n", nl ? (int)(nl - cmd->help) : (int)strlen(cmd->help), cmd->help);
}

int cli_usage(const cli_cmd_t *cmd, const char *fmt, ...) {
  va_list ap;
  fputs("usage error: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  if (cmd)
    print_synopsis(stderr, cmd);
  return CLI_USAGE;
}

int cli_npos(const cli_cmd_t *cmd, const cli_args_t *a, size_t min, size_t max) {
  if (a->npos < min)
    return cli_usage(cmd, "missing argument");
  if (a->npos > max)
    return cli_usage(cmd, "unexpected argument '%s'", a->pos[max]);
  return CLI_OK;
}

uint8_t *cli_read_stdin(size_t limit, size_t *n, int *too_long) {
  size_t cap = 64 * 1024, len = 0;
  uint8_t *buf = malloc(cap);
  *too_long = 0;
  while (buf) {
    if (len == cap) {
      /* Read one byte past the limit to tell "exactly limit" from "more". */
      size_t ncap = cap * 2 > limit + 1 ? limit + 1 : cap * 2;
      if (ncap <= cap) {
        *too_long = 1;
        break;
      }
      uint8_t *p = realloc(buf, ncap);
      if (!p)
        break;
      buf = p;
      cap = ncap;
    }
    ssize_t k = read(STDIN_FILENO, buf + len, cap - len);
    if (k < 0)
      break;
    if (k == 0) {
      *n = len;
      return buf;
    }
    len += (size_t)k;
    if (len > limit) {
      *too_long = 1;
      break;
    }
  }
  free(buf);
  return NULL;
}

int cli_parse_tags(const cli_cmd_t *cmd, const char *const *args, size_t nargs, cli_tags_t *ts) {
  ts->n = 0;
  if (nargs > GBX_MAX_TAGS)
    return cli_usage(cmd, "at most %u tags", GBX_MAX_TAGS);
  for (size_t i = 0; i < nargs; i++) {
    const char *v;
    if (cli_parse_kv(args[i], ts->keys[i], sizeof ts->keys[i], &v))
      return cli_usage(cmd, "tag '%s' is not KEY=VALUE (key 1-%u characters)", args[i],
                       GBX_MAX_TAG_KEY);
    ts->tags[i] = (gbx_tag_t){ts->keys[i], v};
  }
  ts->n = nargs;
  return CLI_OK;
}

int cli_parse_tag_opts(const cli_cmd_t *cmd, const cli_args_t *a, cli_tags_t *ts) {
  const char *args[GBX_MAX_TAGS + 1];
  size_t n = cli_args_all(a, "tag", args, GBX_MAX_TAGS + 1);
  /* More than args holds: one past the limit is enough for the refusal. */
  if (n > GBX_MAX_TAGS + 1)
    n = GBX_MAX_TAGS + 1;
  return cli_parse_tags(cmd, args, n, ts);
}

int cli_msg_parse(const cli_cmd_t *cmd, const cli_args_t *a, size_t limit, cli_msg_t *m) {
  const char *specs[GBX_MAX_ATTRS + 1];
  int rc, too_long;

  memset(m, 0, sizeof *m);
  size_t given = cli_args_all(a, "attr", specs, GBX_MAX_ATTRS + 1);
  if (given > GBX_MAX_ATTRS)
    return cli_usage(cmd, "at most %u attributes (--attr) per message", GBX_MAX_ATTRS);
  for (; m->nattrs < given; m->nattrs++) {
    cli_attr_t *p = &m->parsed_[m->nattrs];
    if (cli_parse_attr(specs[m->nattrs], p)) {
      rc = cli_usage(cmd, "--attr '%s' is not NAME=TYPE:VALUE (Binary values in base64)",
                     specs[m->nattrs]);
      goto fail;
    }
    m->attrs[m->nattrs] = (gbx_msg_attr_t){p->name, p->type, p->value, p->value_len};
  }
  if (a->npos == 2 && strcmp(a->pos[1], "-") != 0) {
    m->body = (const uint8_t *)a->pos[1];
    m->len = strlen(a->pos[1]);
    return CLI_OK;
  }
  m->owned_ = cli_read_stdin(limit, &m->len, &too_long);
  if (!m->owned_) {
    gbx_error_t e = {GBX_E_IO, "cannot read the body from stdin"};
    if (too_long) {
      e.code = GBX_E_MESSAGE_TOO_LONG;
      snprintf(e.message, sizeof e.message, "the body on stdin exceeds %zu bytes", limit);
    }
    rc = cli_fail(&e);
    goto fail;
  }
  m->body = m->owned_;
  return CLI_OK;

fail:
  cli_msg_free(m);
  return rc;
}

void cli_msg_free(cli_msg_t *m) {
  for (size_t i = 0; i < m->nattrs; i++)
    cli_attr_free(&m->parsed_[i]);
  m->nattrs = 0;
  free(m->owned_);
  m->owned_ = NULL;
}

int cli_run_delete(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a, const char *kind,
                   int (*del)(gbx_client_t *c, const char *name, gbx_error_t *err)) {
  gbx_error_t err;
  char line[160];
  int rc;
  if ((rc = cli_npos(cmd, a, 1, 1)) || (rc = cli_connect(cli)))
    return rc;
  if (del(cli->c, a->pos[0], &err))
    return cli_fail(&err);
  snprintf(line, sizeof line, "deleted %s %s", kind, a->pos[0]);
  return cli_print_done(cli, kind, a->pos[0], "deleted", line);
}

int cli_connect(cli_t *cli) {
  gbx_error_t err;
  if (cli->c)
    return CLI_OK;
  cli->c = gbx_connect(cli->host, cli->port, &err);
  if (!cli->c)
    return cli_fail(&err);
  gbx_set_timeout(cli->c, cli->timeout_ms);
  /* credentials come from the environment, never from argv (which other
   * users can read in the process list) */
  const char *key = getenv("GEARBOX_ACCESS_KEY_ID"), *secret = getenv("GEARBOX_SECRET_ACCESS_KEY");
  if (key && key[0]) {
    if (!secret || !secret[0]) {
      fprintf(stderr, "error: GEARBOX_ACCESS_KEY_ID is set but GEARBOX_SECRET_ACCESS_KEY is not\n");
      return CLI_ERR;
    }
    if (gbx_auth(cli->c, key, secret, NULL, &err))
      return cli_fail(&err);
  }
  return CLI_OK;
}

/* ---- dispatch ------------------------------------------------------------------ */

static void print_top_help(FILE *out) {
  fputs(TOP_HELP, out);
  for (size_t t = 0; t < sizeof TABLES / sizeof TABLES[0]; t++)
    for (const cli_cmd_t *c = TABLES[t]; c->word1; c++) {
      fputs("  ", out);
      print_synopsis(out, c);
    }
}

/* Finds the command named by argv[0] (and argv[1] for two-word commands).
 * Sets *used to the number of words consumed. */
static const cli_cmd_t *find_cmd(int argc, char **argv, int *used) {
  for (size_t t = 0; t < sizeof TABLES / sizeof TABLES[0]; t++)
    for (const cli_cmd_t *c = TABLES[t]; c->word1; c++) {
      if (strcmp(c->word1, argv[0]) != 0)
        continue;
      if (!c->word2) {
        *used = 1;
        return c;
      }
      if (argc > 1 && strcmp(c->word2, argv[1]) == 0) {
        *used = 2;
        return c;
      }
    }
  return NULL;
}

/* For "gearbox queue" without a valid subcommand: lists the subcommands
 * of that word on stderr. Returns 1 if word names a family of commands. */
static int print_family(const char *word) {
  int found = 0;
  for (size_t t = 0; t < sizeof TABLES / sizeof TABLES[0]; t++)
    for (const cli_cmd_t *c = TABLES[t]; c->word1; c++) {
      if (!c->word2 || strcmp(c->word1, word) != 0)
        continue;
      if (!found)
        fprintf(stderr, "usage error: '%s' needs one of these subcommands:\n", word);
      found = 1;
      fputs("  ", stderr);
      print_synopsis(stderr, c);
    }
  return found;
}

/* Applies a global option; returns CLI_OK or a usage error. */
static int apply_global(cli_t *cli, const cli_cmd_t *cmd, const char *name, const char *value) {
  uint32_t v;
  if (strcmp(name, "json") == 0) {
    cli->json = 1;
  } else if (strcmp(name, "host") == 0) {
    cli->host = value;
  } else if (strcmp(name, "port") == 0) {
    if (cli_parse_u32(value, 1, 65535, &v))
      return cli_usage(cmd, "bad port '%s'", value);
    cli->port = (uint16_t)v;
  } else if (strcmp(name, "timeout") == 0) {
    if (cli_parse_u32(value, 0, UINT32_MAX, &v))
      return cli_usage(cmd, "bad timeout '%s'", value);
    cli->timeout_ms = v;
  }
  return CLI_OK;
}

/* Runs one command with the arguments after its words. */
static int run_cmd(cli_t *cli, const cli_cmd_t *cmd, int argc, char **argv) {
  static const cli_optspec_t globals[] = {GLOBAL_OPTS};
  cli_optspec_t specs[MAX_OPTS];
  size_t n = 0;
  cli_args_t a;
  char why[160];
  int rc;

  for (const cli_optspec_t *s = cmd->opts; s && s->name && n < MAX_OPTS - 5; s++)
    specs[n++] = *s;
  for (size_t i = 0; i < sizeof globals / sizeof globals[0]; i++)
    specs[n++] = globals[i];
  specs[n] = (cli_optspec_t){NULL, 0, 0};
  if (cli_args_parse(argc, argv, specs, &a, why, sizeof why))
    return cli_usage(cmd, "%s", why);
  if (a.help) {
    fputs(cmd->help, stdout);
    cli_args_free(&a);
    return CLI_OK;
  }
  rc = CLI_OK;
  for (size_t i = 0; i < a.nopts && rc == CLI_OK; i++)
    for (size_t g = 0; g < sizeof globals / sizeof globals[0]; g++)
      if (strcmp(a.opts[i].name, globals[g].name) == 0)
        rc = apply_global(cli, cmd, a.opts[i].name, a.opts[i].value);
  if (rc == CLI_OK)
    rc = cmd->run(cli, cmd, &a);
  cli_args_free(&a);
  return rc;
}

int main(int argc, char **argv) {
  static const cli_optspec_t globals[] = {GLOBAL_OPTS, {NULL, 0, 0}};
  cli_t cli = {
      .host = GBX_DEFAULT_HOST, .port = GBX_DEFAULT_PORT, .timeout_ms = CLI_DEFAULT_TIMEOUT_MS};
  const cli_cmd_t *cmd;
  int i = 1, used = 0, rc;

  /* Global options before the command. */
  while (i < argc && argv[i][0] == '-') {
    const char *arg = argv[i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      print_top_help(stdout);
      return CLI_OK;
    }
    const char *name = arg + 2, *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const cli_optspec_t *s = NULL;
    for (const cli_optspec_t *g = globals; g->name && arg[1] == '-'; g++)
      if (strlen(g->name) == len && strncmp(g->name, name, len) == 0)
        s = g;
    if (!s) {
      cli_usage(NULL, "unknown option '%s'", arg);
      fputs("run 'gearbox --help' for the commands\n", stderr);
      return CLI_USAGE;
    }
    const char *value = "";
    if (s->has_arg) {
      if (eq)
        value = eq + 1;
      else if (i + 1 < argc)
        value = argv[++i];
      else
        return cli_usage(NULL, "option '--%s' needs a value", s->name);
    }
    rc = apply_global(&cli, NULL, s->name, value);
    if (rc)
      return rc;
    i++;
  }
  if (i >= argc) {
    print_top_help(stderr);
    return CLI_USAGE;
  }
  cmd = find_cmd(argc - i, argv + i, &used);
  if (!cmd) {
    if (print_family(argv[i]))
      return CLI_USAGE;
    cli_usage(NULL, "unknown command '%s'", argv[i]);
    fputs("run 'gearbox --help' for the commands\n", stderr);
    return CLI_USAGE;
  }
  rc = run_cmd(&cli, cmd, argc - i - used, argv + i + used);
  gbx_close(cli.c);
  return rc;
}
