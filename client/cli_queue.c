/* cli_queue.c - the "gearbox queue ..." commands: create, list, stats,
 * set, purge, delete, tag, untag, dlq-sources. */
#include <stddef.h>
#include <string.h>

#include "cli.h"

/* Width of the name column of "queue stats": the longest attribute name,
 * ApproximateNumberOfMessagesNotVisible, plus one. */
#define NAME_COLUMN 38

/* The queue attribute options shared by "queue create" and "queue set". */
static const struct {
  const char *opt;
  unsigned flag;
  size_t off;
  int is_str;
} QOPTS[] = {
    {"visibility", GBX_QA_VISIBILITY, offsetof(gbx_queue_attrs_t, visibility_timeout), 0},
    {"delay", GBX_QA_DELAY, offsetof(gbx_queue_attrs_t, delay_seconds), 0},
    {"retention", GBX_QA_RETENTION, offsetof(gbx_queue_attrs_t, retention_period), 0},
    {"max-size", GBX_QA_MAX_SIZE, offsetof(gbx_queue_attrs_t, max_message_size), 0},
    {"wait", GBX_QA_WAIT, offsetof(gbx_queue_attrs_t, receive_wait), 0},
    {"dlq", GBX_QA_DLQ, offsetof(gbx_queue_attrs_t, dead_letter_queue), 1},
    {"max-receives", GBX_QA_MAX_RECEIVES, offsetof(gbx_queue_attrs_t, max_receive_count), 0},
    {"policy", GBX_QA_POLICY, offsetof(gbx_queue_attrs_t, policy), 1},
    {"redrive-allow", GBX_QA_REDRIVE_ALLOW, offsetof(gbx_queue_attrs_t, redrive_allow_policy), 1},
};

#define QOPT_SPECS                                                                                 \
  {"visibility", 1, 0}, {"delay", 1, 0}, {"retention", 1, 0}, {"max-size", 1, 0}, {"wait", 1, 0},  \
      {"dlq", 1, 0}, {"max-receives", 1, 0}, {"policy", 1, 0}, {                                   \
    "redrive-allow", 1, 0                                                                          \
  }

#define QOPT_HELP                                                                                  \
  "  --visibility S      VisibilityTimeout, 0-43200 s (default 30)\n"                              \
  "  --delay S           DelaySeconds, 0-900 (default 0)\n"                                        \
  "  --retention S       MessageRetentionPeriod, 60-1209600 s (default 345600)\n"                  \
  "  --max-size B        MaximumMessageSize, 1024-1048576 bytes (default 1048576)\n"               \
  "  --wait S            ReceiveMessageWaitTimeSeconds, 0-20 (default 0)\n"                        \
  "  --dlq NAME          DeadLetterQueue (\"\" for none)\n"                                        \
  "  --max-receives N    MaxReceiveCount before dead-lettering, 1-1000 (default 10)\n"             \
  "  --policy JSON       Policy document\n"                                                        \
  "  --redrive-allow JSON  RedriveAllowPolicy document\n"

/* Fills qa from the attribute options given. Ranges are the server's to
 * judge (its message names the attribute); here a value must be a number. */
static int parse_qattrs(const cli_cmd_t *cmd, const cli_args_t *a, gbx_queue_attrs_t *qa) {
  memset(qa, 0, sizeof *qa);
  for (size_t i = 0; i < sizeof QOPTS / sizeof QOPTS[0]; i++) {
    const char *v = cli_args_get(a, QOPTS[i].opt);
    char *field = (char *)qa + QOPTS[i].off;
    if (!v)
      continue;
    if (QOPTS[i].is_str) {
      *(const char **)field = v;
    } else if (cli_parse_u32(v, 0, UINT32_MAX, (uint32_t *)field)) {
      return cli_usage(cmd, "--%s needs a whole number, not '%s'", QOPTS[i].opt, v);
    }
    qa->set |= QOPTS[i].flag;
  }
  return CLI_OK;
}

/* ---- create / set ---------------------------------------------------------------- */

static const cli_optspec_t CREATE_OPTS[] = {QOPT_SPECS, {"tag", 1, 1}, {NULL, 0, 0}};
static int cmd_create(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a);
static const cli_optspec_t SET_OPTS[] = {QOPT_SPECS, {NULL, 0, 0}};
static int cmd_set(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a);

static int cmd_create(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  gbx_queue_attrs_t qa;
  static cli_tags_t ts;
  gbx_error_t err;
  int created = 0, rc;

  if ((rc = cli_npos(cmd, a, 1, 1)) || (rc = parse_qattrs(cmd, a, &qa)) ||
      (rc = cli_parse_tag_opts(cmd, a, &ts)) || (rc = cli_connect(cli)))
    return rc;
  if (gbx_queue_create(cli->c, a->pos[0], &qa, ts.tags, ts.n, &created, &err))
    return cli_fail(&err);
  return cli_print_created(cli, "queue", a->pos[0], created);
}

static int cmd_set(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  gbx_queue_attrs_t qa;
  gbx_error_t err;
  char line[160];
  int rc;
  if ((rc = cli_npos(cmd, a, 1, 1)) || (rc = parse_qattrs(cmd, a, &qa)))
    return rc;
  if (!qa.set)
    return cli_usage(cmd, "give at least one attribute to set");
  if ((rc = cli_connect(cli)))
    return rc;
  if (gbx_queue_set_attrs(cli->c, a->pos[0], &qa, &err))
    return cli_fail(&err);
  snprintf(line, sizeof line, "updated queue %s", a->pos[0]);
  return cli_print_done(cli, "queue", a->pos[0], "updated", line);
}

/* ---- list / dlq-sources ------------------------------------------------------------ */

static int cmd_list(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  int rc;
  if ((rc = cli_npos(cmd, a, 0, 1)) || (rc = cli_connect(cli)))
    return rc;
  return cli_print_names(cli, "queues", a->npos ? a->pos[0] : NULL, gbx_queue_list);
}

static int cmd_dlq_sources(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  gbx_error_t err;
  gbx_queue_list_t l;
  cJSON *j = NULL, *arr = NULL;
  int rc;
  if ((rc = cli_npos(cmd, a, 1, 1)) || (rc = cli_connect(cli)))
    return rc;
  if (gbx_queue_dlq_sources(cli->c, a->pos[0], &l, &err))
    return cli_fail(&err);
  if (cli->json && (!(j = cJSON_CreateObject()) || !(arr = cJSON_AddArrayToObject(j, "queues")))) {
    gbx_queue_list_free(&l);
    cJSON_Delete(j);
    return cli_json_print(NULL);
  }
  rc = cli_add_names(cli, arr, &l);
  gbx_queue_list_free(&l);
  if (rc) {
    cJSON_Delete(j);
    j = NULL;
  }
  return cli->json ? cli_json_print(j) : CLI_OK;
}

/* ---- stats (attributes) --------------------------------------------------------------- */

static int cmd_stats(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  gbx_error_t err;
  gbx_queue_info_t info;
  int rc;
  if ((rc = cli_npos(cmd, a, 1, 1)) || (rc = cli_connect(cli)))
    return rc;
  if (gbx_queue_get_attrs(cli->c, a->pos[0], &info, &err))
    return cli_fail(&err);
  rc = cli_print_attrs(cli, "queue", a->pos[0], info.all, info.nall, info.tags, info.ntags,
                       NAME_COLUMN);
  gbx_queue_info_free(&info);
  return rc;
}

/* ---- purge / delete / tag / untag ----------------------------------------------------- */

static int cmd_purge(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  gbx_error_t err;
  uint64_t n = 0;
  int rc;
  if ((rc = cli_npos(cmd, a, 1, 1)) || (rc = cli_connect(cli)))
    return rc;
  if (gbx_queue_purge(cli->c, a->pos[0], &n, &err))
    return cli_fail(&err);
  if (!cli->json) {
    printf("purged %llu message%s from %s\n", (unsigned long long)n, n == 1 ? "" : "s", a->pos[0]);
    return CLI_OK;
  }
  cJSON *j = cJSON_CreateObject();
  if (j && (!cJSON_AddStringToObject(j, "queue", a->pos[0]) ||
            !cJSON_AddNumberToObject(j, "purged", (double)n))) {
    cJSON_Delete(j);
    j = NULL;
  }
  return cli_json_print(j);
}

static int cmd_delete(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  return cli_run_delete(cli, cmd, a, "queue", gbx_queue_delete);
}

static int cmd_tag(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  static cli_tags_t ts;
  gbx_error_t err;
  char line[160];
  int rc;
  if ((rc = cli_npos(cmd, a, 2, GBX_MAX_TAGS + 1)) ||
      (rc = cli_parse_tags(cmd, a->pos + 1, a->npos - 1, &ts)) || (rc = cli_connect(cli)))
    return rc;
  if (gbx_queue_tag(cli->c, a->pos[0], ts.tags, ts.n, &err))
    return cli_fail(&err);
  snprintf(line, sizeof line, "tagged queue %s", a->pos[0]);
  return cli_print_done(cli, "queue", a->pos[0], "tagged", line);
}

static int cmd_untag(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  gbx_error_t err;
  char line[160];
  int rc;
  if ((rc = cli_npos(cmd, a, 2, (size_t)-1)) || (rc = cli_connect(cli)))
    return rc;
  if (gbx_queue_untag(cli->c, a->pos[0], a->pos + 1, a->npos - 1, &err))
    return cli_fail(&err);
  snprintf(line, sizeof line, "untagged queue %s", a->pos[0]);
  return cli_print_done(cli, "queue", a->pos[0], "untagged", line);
}

const cli_cmd_t cli_queue_cmds[] = {
    {"queue", "create", CREATE_OPTS,
     "queue create NAME [attribute options] [--tag KEY=VALUE ...]\n"
     "Creates a queue. Creating an existing queue with the same attributes\n"
     "succeeds and reports that it existed.\n" QOPT_HELP
     "  --tag KEY=VALUE     a tag (repeatable)\n",
     cmd_create},
    {"queue", "list", NULL,
     "queue list [PREFIX]\n"
     "Lists the queues (whose names start with PREFIX), one per line, sorted.\n",
     cmd_list},
    {"queue", "stats", NULL,
     "queue stats NAME\n"
     "Shows every attribute of a queue (settable ones and read-only counters) and its tags.\n",
     cmd_stats},
    {"queue", "set", SET_OPTS,
     "queue set NAME attribute options...\n"
     "Changes attributes of a queue.\n" QOPT_HELP,
     cmd_set},
    {"queue", "purge", NULL, "queue purge NAME\nDeletes every message of a queue.\n", cmd_purge},
    {"queue", "delete", NULL, "queue delete NAME\nDeletes a queue and its messages.\n", cmd_delete},
    {"queue", "tag", NULL, "queue tag NAME KEY=VALUE...\nAdds or replaces tags of a queue.\n",
     cmd_tag},
    {"queue", "untag", NULL, "queue untag NAME KEY...\nRemoves tags from a queue.\n", cmd_untag},
    {"queue", "dlq-sources", NULL,
     "queue dlq-sources NAME\nLists the queues whose dead-letter queue is NAME.\n",
     cmd_dlq_sources},
    {NULL, NULL, NULL, NULL, NULL},
};
