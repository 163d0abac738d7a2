/* cli_queue.c - the "gearbox queue ..." commands: create, list, stats,
 * set, purge, delete, tag, untag, dlq-sources. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

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

/* Tags given as k=v arguments (options or positionals), with their keys
 * copied out of the arguments. */
typedef struct tagset {
  gbx_tag_t tags[GBX_MAX_TAGS];
  char keys[GBX_MAX_TAGS][GBX_MAX_TAG_KEY + 1];
  size_t n;
} tagset_t;

static int parse_tags(const cli_cmd_t *cmd, const char *const *args, size_t nargs, tagset_t *ts) {
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

/* Prints {"queue": name, key: true} or the human line, for simple commands. */
static int done_json(cli_t *cli, const char *name, const char *key, const char *human) {
  if (!cli->json) {
    puts(human);
    return CLI_OK;
  }
  cJSON *j = cJSON_CreateObject();
  if (j && (!cJSON_AddStringToObject(j, "queue", name) || !cJSON_AddTrueToObject(j, key))) {
    cJSON_Delete(j);
    j = NULL;
  }
  return cli_json_print(j);
}

/* ---- create / set ---------------------------------------------------------------- */

static const cli_optspec_t CREATE_OPTS[] = {QOPT_SPECS, {"tag", 1, 1}, {NULL, 0, 0}};
static int cmd_create(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a);
static const cli_optspec_t SET_OPTS[] = {QOPT_SPECS, {NULL, 0, 0}};
static int cmd_set(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a);

static int cmd_create(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  gbx_queue_attrs_t qa;
  static tagset_t ts;
  const char *tagargs[GBX_MAX_TAGS + 1];
  gbx_error_t err;
  int created = 0, rc;
  char line[160];

  if ((rc = cli_npos(cmd, a, 1, 1)) || (rc = parse_qattrs(cmd, a, &qa)))
    return rc;
  size_t ntags = cli_args_all(a, "tag", tagargs, GBX_MAX_TAGS + 1);
  if (ntags > GBX_MAX_TAGS + 1)
    ntags = GBX_MAX_TAGS + 1;
  if ((rc = parse_tags(cmd, tagargs, ntags, &ts)) || (rc = cli_connect(cli)))
    return rc;
  if (gbx_queue_create(cli->c, a->pos[0], &qa, ts.tags, ts.n, &created, &err))
    return cli_fail(&err);
  if (cli->json) {
    cJSON *j = cJSON_CreateObject();
    if (j && (!cJSON_AddStringToObject(j, "queue", a->pos[0]) ||
              !cJSON_AddBoolToObject(j, "created", created))) {
      cJSON_Delete(j);
      j = NULL;
    }
    return cli_json_print(j);
  }
  snprintf(line, sizeof line,
           created ? "created queue %s" : "queue %s already exists with these attributes",
           a->pos[0]);
  puts(line);
  return CLI_OK;
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
  return done_json(cli, a->pos[0], "updated", line);
}

/* ---- list / dlq-sources ------------------------------------------------------------ */

/* Prints names (JSON: {"queues": [...]}) and frees the list. */
static int print_names(cli_t *cli, cJSON *arr, gbx_queue_list_t *l) {
  for (size_t i = 0; i < l->count; i++) {
    if (!cli->json)
      puts(l->names[i]);
    else if (!cJSON_AddItemToArray(arr, cJSON_CreateString(l->names[i])))
      return -1;
  }
  return 0;
}

static int cmd_list(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  gbx_error_t err;
  gbx_queue_list_t l;
  char *next = NULL;
  cJSON *j = NULL, *arr = NULL;
  int rc;
  if ((rc = cli_npos(cmd, a, 0, 1)) || (rc = cli_connect(cli)))
    return rc;
  if (cli->json && (!(j = cJSON_CreateObject()) || !(arr = cJSON_AddArrayToObject(j, "queues")))) {
    cJSON_Delete(j);
    return cli_json_print(NULL);
  }
  /* Page through: each reply's token continues after its last name. */
  do {
    if (gbx_queue_list(cli->c, a->npos ? a->pos[0] : NULL, 0, next, &l, &err)) {
      free(next);
      cJSON_Delete(j);
      return cli_fail(&err);
    }
    free(next);
    next = l.next ? strdup(l.next) : NULL;
    rc = print_names(cli, arr, &l);
    gbx_queue_list_free(&l);
    if (rc) {
      free(next);
      cJSON_Delete(j);
      return cli_json_print(NULL);
    }
  } while (next);
  return cli->json ? cli_json_print(j) : CLI_OK;
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
  rc = print_names(cli, arr, &l);
  gbx_queue_list_free(&l);
  if (rc) {
    cJSON_Delete(j);
    j = NULL;
  }
  return cli->json ? cli_json_print(j) : CLI_OK;
}

/* ---- stats (attributes) --------------------------------------------------------------- */

static int stats_json(const char *name, const gbx_queue_info_t *info) {
  cJSON *j = cJSON_CreateObject(), *attrs = NULL, *tags = NULL;
  if (!j || !cJSON_AddStringToObject(j, "queue", name) ||
      !(attrs = cJSON_AddObjectToObject(j, "attributes")) ||
      !(tags = cJSON_AddObjectToObject(j, "tags")))
    goto fail;
  for (size_t i = 0; i < info->nall; i++) {
    const gbx_queue_attr_t *qa = &info->all[i];
    if (qa->str ? !cJSON_AddStringToObject(attrs, qa->name, qa->str)
                : !cJSON_AddNumberToObject(attrs, qa->name, (double)qa->num))
      goto fail;
  }
  for (size_t i = 0; i < info->ntags; i++)
    if (!cJSON_AddStringToObject(tags, info->tags[i].key, info->tags[i].value))
      goto fail;
  return cli_json_print(j);

fail:
  cJSON_Delete(j);
  return cli_json_print(NULL);
}

static int cmd_stats(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  gbx_error_t err;
  gbx_queue_info_t info;
  int rc;
  if ((rc = cli_npos(cmd, a, 1, 1)) || (rc = cli_connect(cli)))
    return rc;
  if (gbx_queue_get_attrs(cli->c, a->pos[0], &info, &err))
    return cli_fail(&err);
  if (cli->json) {
    rc = stats_json(a->pos[0], &info);
    gbx_queue_info_free(&info);
    return rc;
  }
  printf("queue %s\n", a->pos[0]);
  for (size_t i = 0; i < info.nall; i++) {
    const gbx_queue_attr_t *qa = &info.all[i];
    size_t len = strlen(qa->name);
    if (qa->str) {
      printf("  %-38s %s\n", qa->name, qa->str[0] ? qa->str : "\"\"");
    } else if (len > 9 && strcmp(qa->name + len - 9, "Timestamp") == 0) {
      char when[48];
      cli_format_ms(qa->num * 1000, when, sizeof when);
      printf("  %-38s %llu (%s)\n", qa->name, (unsigned long long)qa->num, when);
    } else {
      printf("  %-38s %llu\n", qa->name, (unsigned long long)qa->num);
    }
  }
  if (info.ntags)
    puts("tags");
  for (size_t i = 0; i < info.ntags; i++)
    printf("  %s = %s\n", info.tags[i].key, info.tags[i].value);
  gbx_queue_info_free(&info);
  return CLI_OK;
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
  gbx_error_t err;
  char line[160];
  int rc;
  if ((rc = cli_npos(cmd, a, 1, 1)) || (rc = cli_connect(cli)))
    return rc;
  if (gbx_queue_delete(cli->c, a->pos[0], &err))
    return cli_fail(&err);
  snprintf(line, sizeof line, "deleted queue %s", a->pos[0]);
  return done_json(cli, a->pos[0], "deleted", line);
}

static int cmd_tag(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  static tagset_t ts;
  gbx_error_t err;
  char line[160];
  int rc;
  if ((rc = cli_npos(cmd, a, 2, GBX_MAX_TAGS + 1)) ||
      (rc = parse_tags(cmd, a->pos + 1, a->npos - 1, &ts)) || (rc = cli_connect(cli)))
    return rc;
  if (gbx_queue_tag(cli->c, a->pos[0], ts.tags, ts.n, &err))
    return cli_fail(&err);
  snprintf(line, sizeof line, "tagged queue %s", a->pos[0]);
  return done_json(cli, a->pos[0], "tagged", line);
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
  return done_json(cli, a->pos[0], "untagged", line);
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
