/* cli_topic.c - the topic commands of the gearbox CLI: "topic create|list|
 * stats|delete", subscribe, unsubscribe, subscriptions, publish. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* A publish body read from stdin: SNS's message size limit, which the
 * server enforces on body plus attributes; reading more would only be
 * refused. */
#define PUBLISH_STDIN_MAX (256u * 1024u)

/* Prints {"topic": name, key: true} or the human line, for simple commands. */
static int done_json(cli_t *cli, const char *field, const char *name, const char *key,
                     const char *human) {
  if (!cli->json) {
    puts(human);
    return CLI_OK;
  }
  cJSON *j = cJSON_CreateObject();
  if (j && (!cJSON_AddStringToObject(j, field, name) || !cJSON_AddTrueToObject(j, key))) {
    cJSON_Delete(j);
    j = NULL;
  }
  return cli_json_print(j);
}

/* ---- topic create / delete ------------------------------------------------------- */

static const cli_optspec_t CREATE_OPTS[] = {
    {"display-name", 1, 0}, {"policy", 1, 0}, {"tag", 1, 1}, {NULL, 0, 0}};

static int cmd_create(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  static gbx_tag_t tags[GBX_MAX_TAGS];
  static char keys[GBX_MAX_TAGS][GBX_MAX_TAG_KEY + 1];
  const char *tagargs[GBX_MAX_TAGS + 1];
  gbx_topic_attrs_t ta = {0};
  gbx_error_t err;
  int created = 0, rc;
  char line[160];

  if ((rc = cli_npos(cmd, a, 1, 1)))
    return rc;
  if ((ta.display_name = cli_args_get(a, "display-name")))
    ta.set |= GBX_TA_DISPLAY_NAME;
  if ((ta.policy = cli_args_get(a, "policy")))
    ta.set |= GBX_TA_POLICY;
  size_t ntags = cli_args_all(a, "tag", tagargs, GBX_MAX_TAGS + 1);
  if (ntags > GBX_MAX_TAGS)
    return cli_usage(cmd, "at most %u tags", GBX_MAX_TAGS);
  for (size_t i = 0; i < ntags; i++) {
    const char *v;
    if (cli_parse_kv(tagargs[i], keys[i], sizeof keys[i], &v))
      return cli_usage(cmd, "tag '%s' is not KEY=VALUE (key 1-%u characters)", tagargs[i],
                       GBX_MAX_TAG_KEY);
    tags[i] = (gbx_tag_t){keys[i], v};
  }
  if ((rc = cli_connect(cli)))
    return rc;
  if (gbx_topic_create(cli->c, a->pos[0], &ta, tags, ntags, &created, &err))
    return cli_fail(&err);
  if (cli->json) {
    cJSON *j = cJSON_CreateObject();
    if (j && (!cJSON_AddStringToObject(j, "topic", a->pos[0]) ||
              !cJSON_AddBoolToObject(j, "created", created))) {
      cJSON_Delete(j);
      j = NULL;
    }
    return cli_json_print(j);
  }
  snprintf(line, sizeof line,
           created ? "created topic %s" : "topic %s already exists with these attributes",
           a->pos[0]);
  puts(line);
  return CLI_OK;
}

static int cmd_delete(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  gbx_error_t err;
  char line[160];
  int rc;
  if ((rc = cli_npos(cmd, a, 1, 1)) || (rc = cli_connect(cli)))
    return rc;
  if (gbx_topic_delete(cli->c, a->pos[0], &err))
    return cli_fail(&err);
  snprintf(line, sizeof line, "deleted topic %s", a->pos[0]);
  return done_json(cli, "topic", a->pos[0], "deleted", line);
}

/* ---- topic list ------------------------------------------------------------------ */

static int cmd_list(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  gbx_error_t err;
  gbx_topic_list_t l;
  char *next = NULL;
  cJSON *j = NULL, *arr = NULL;
  int rc = CLI_OK;
  if ((rc = cli_npos(cmd, a, 0, 1)) || (rc = cli_connect(cli)))
    return rc;
  if (cli->json && (!(j = cJSON_CreateObject()) || !(arr = cJSON_AddArrayToObject(j, "topics"))))
    goto nomem;
  /* Page through: each reply's token continues after its last name. */
  do {
    if (gbx_topic_list(cli->c, a->npos ? a->pos[0] : NULL, 0, next, &l, &err)) {
      free(next);
      cJSON_Delete(j);
      return cli_fail(&err);
    }
    free(next);
    next = l.next ? strdup(l.next) : NULL;
    for (size_t i = 0; i < l.count && rc == CLI_OK; i++) {
      if (!cli->json)
        puts(l.names[i]);
      else if (!cJSON_AddItemToArray(arr, cJSON_CreateString(l.names[i])))
        rc = CLI_ERR;
    }
    int lost = l.next && !next;
    gbx_queue_list_free(&l);
    if (rc != CLI_OK || lost) {
      free(next);
      goto nomem;
    }
  } while (next);
  return cli->json ? cli_json_print(j) : CLI_OK;

nomem:
  cJSON_Delete(j);
  return cli_json_print(NULL);
}

/* ---- topic stats ------------------------------------------------------------------ */

static int stats_json(const char *name, const gbx_topic_info_t *info) {
  cJSON *j = cJSON_CreateObject(), *attrs = NULL, *tags = NULL;
  if (!j || !cJSON_AddStringToObject(j, "topic", name) ||
      !(attrs = cJSON_AddObjectToObject(j, "attributes")) ||
      !(tags = cJSON_AddObjectToObject(j, "tags")))
    goto fail;
  for (size_t i = 0; i < info->nall; i++) {
    const gbx_queue_attr_t *ta = &info->all[i];
    if (ta->str ? !cJSON_AddStringToObject(attrs, ta->name, ta->str)
                : !cJSON_AddNumberToObject(attrs, ta->name, (double)ta->num))
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
  gbx_topic_info_t info;
  int rc;
  if ((rc = cli_npos(cmd, a, 1, 1)) || (rc = cli_connect(cli)))
    return rc;
  if (gbx_topic_get_attrs(cli->c, a->pos[0], &info, &err))
    return cli_fail(&err);
  if (cli->json) {
    rc = stats_json(a->pos[0], &info);
    gbx_topic_info_free(&info);
    return rc;
  }
  printf("topic %s\n", a->pos[0]);
  for (size_t i = 0; i < info.nall; i++) {
    const gbx_queue_attr_t *ta = &info.all[i];
    if (ta->str) {
      printf("  %-24s %s\n", ta->name, ta->str[0] ? ta->str : "\"\"");
    } else if (strcmp(ta->name, "CreatedTimestamp") == 0) {
      char when[48];
      cli_format_ms(ta->num * 1000, when, sizeof when);
      printf("  %-24s %llu (%s)\n", ta->name, (unsigned long long)ta->num, when);
    } else {
      printf("  %-24s %llu\n", ta->name, (unsigned long long)ta->num);
    }
  }
  if (info.ntags)
    puts("tags");
  for (size_t i = 0; i < info.ntags; i++)
    printf("  %s = %s\n", info.tags[i].key, info.tags[i].value);
  gbx_topic_info_free(&info);
  return CLI_OK;
}

/* ---- subscribe / unsubscribe / subscriptions ---------------------------------------- */

static const cli_optspec_t SUBSCRIBE_OPTS[] = {
    {"filter", 1, 0}, {"filter-scope", 1, 0}, {"raw", 0, 0}, {NULL, 0, 0}};

static int cmd_subscribe(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  gbx_sub_attrs_t sa = {0};
  const char *scope = cli_args_get(a, "filter-scope");
  gbx_error_t err;
  char *id = NULL;
  int rc;

  if ((rc = cli_npos(cmd, a, 2, 2)))
    return rc;
  if ((sa.filter_policy = cli_args_get(a, "filter")))
    sa.set |= GBX_SA_FILTER_POLICY;
  if (scope) {
    if (strcmp(scope, "attributes") == 0 || strcmp(scope, "MessageAttributes") == 0)
      sa.filter_scope = GBX_FILTER_SCOPE_ATTRIBUTES;
    else if (strcmp(scope, "body") == 0 || strcmp(scope, "MessageBody") == 0)
      sa.filter_scope = GBX_FILTER_SCOPE_BODY;
    else
      return cli_usage(cmd, "--filter-scope is 'attributes' or 'body', not '%s'", scope);
    sa.set |= GBX_SA_FILTER_SCOPE;
  }
  if (cli_args_get(a, "raw")) {
    sa.raw = 1;
    sa.set |= GBX_SA_RAW;
  }
  if ((rc = cli_connect(cli)))
    return rc;
  if (gbx_subscribe(cli->c, a->pos[0], a->pos[1], &sa, &id, &err))
    return cli_fail(&err);
  if (!cli->json) {
    puts(id);
    gbx_free(id);
    return CLI_OK;
  }
  cJSON *j = cJSON_CreateObject();
  if (j && (!cJSON_AddStringToObject(j, "subscription", id) ||
            !cJSON_AddStringToObject(j, "topic", a->pos[0]) ||
            !cJSON_AddStringToObject(j, "queue", a->pos[1]))) {
    cJSON_Delete(j);
    j = NULL;
  }
  gbx_free(id);
  return cli_json_print(j);
}

static int cmd_unsubscribe(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  gbx_error_t err;
  char line[160];
  int rc;
  if ((rc = cli_npos(cmd, a, 1, 1)) || (rc = cli_connect(cli)))
    return rc;
  if (gbx_unsubscribe(cli->c, a->pos[0], &err))
    return cli_fail(&err);
  snprintf(line, sizeof line, "unsubscribed %s", a->pos[0]);
  return done_json(cli, "subscription", a->pos[0], "unsubscribed", line);
}

static const cli_optspec_t SUBS_OPTS[] = {{"topic", 1, 0}, {"queue", 1, 0}, {NULL, 0, 0}};

/* Adds one subscription to arr, or prints it. Returns 0 or -1 (no memory). */
static int print_sub(cli_t *cli, cJSON *arr, const gbx_sub_t *s) {
  if (!cli->json) {
    printf("%s  %s -> %s\n", s->id, s->topic, s->queue);
    return 0;
  }
  cJSON *o = cJSON_CreateObject();
  if (!o || !cJSON_AddStringToObject(o, "subscription", s->id) ||
      !cJSON_AddStringToObject(o, "topic", s->topic) ||
      !cJSON_AddStringToObject(o, "queue", s->queue) || !cJSON_AddItemToArray(arr, o)) {
    cJSON_Delete(o);
    return -1;
  }
  return 0;
}

static int cmd_subscriptions(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  gbx_error_t err;
  gbx_sub_list_t l;
  char *next = NULL;
  cJSON *j = NULL, *arr = NULL;
  int rc = CLI_OK;
  if ((rc = cli_npos(cmd, a, 0, 0)) || (rc = cli_connect(cli)))
    return rc;
  if (cli->json &&
      (!(j = cJSON_CreateObject()) || !(arr = cJSON_AddArrayToObject(j, "subscriptions"))))
    goto nomem;
  do {
    if (gbx_sub_list(cli->c, cli_args_get(a, "topic"), cli_args_get(a, "queue"), next, &l, &err)) {
      free(next);
      cJSON_Delete(j);
      return cli_fail(&err);
    }
    free(next);
    next = l.next ? strdup(l.next) : NULL;
    for (size_t i = 0; i < l.count && rc == CLI_OK; i++)
      if (print_sub(cli, arr, &l.subs[i]))
        rc = CLI_ERR;
    int lost = l.next && !next;
    gbx_sub_list_free(&l);
    if (rc != CLI_OK || lost) {
      free(next);
      goto nomem;
    }
  } while (next);
  return cli->json ? cli_json_print(j) : CLI_OK;

nomem:
  cJSON_Delete(j);
  return cli_json_print(NULL);
}

/* ---- publish ------------------------------------------------------------------------ */

static const cli_optspec_t PUBLISH_OPTS[] = {{"attr", 1, 1}, {"subject", 1, 0}, {NULL, 0, 0}};

static int cmd_publish(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  const char *specs[GBX_MAX_ATTRS + 1];
  cli_attr_t parsed[GBX_MAX_ATTRS + 1];
  gbx_msg_attr_t attrs[GBX_MAX_ATTRS + 1];
  size_t nattrs = 0, len = 0;
  uint8_t *owned = NULL;
  const uint8_t *body;
  char mid[GBX_MID_BUFSZ];
  uint32_t delivered = 0;
  gbx_error_t err;
  int rc;

  if ((rc = cli_npos(cmd, a, 1, 2)))
    return rc;
  size_t given = cli_args_all(a, "attr", specs, GBX_MAX_ATTRS + 1);
  if (given > GBX_MAX_ATTRS)
    return cli_usage(cmd, "at most %u attributes (--attr) per message", GBX_MAX_ATTRS);
  for (; nattrs < given; nattrs++) {
    if (cli_parse_attr(specs[nattrs], &parsed[nattrs])) {
      rc = cli_usage(cmd, "--attr '%s' is not NAME=TYPE:VALUE (Binary values in base64)",
                     specs[nattrs]);
      goto done;
    }
    attrs[nattrs] = (gbx_msg_attr_t){parsed[nattrs].name, parsed[nattrs].type, parsed[nattrs].value,
                                     parsed[nattrs].value_len};
  }
  if (a->npos == 2 && strcmp(a->pos[1], "-") != 0) {
    body = (const uint8_t *)a->pos[1];
    len = strlen(a->pos[1]);
  } else {
    int too_long;
    owned = cli_read_stdin(PUBLISH_STDIN_MAX, &len, &too_long);
    if (!owned) {
      gbx_error_t e = {GBX_E_IO, "cannot read the body from stdin"};
      if (too_long) {
        e.code = GBX_E_MESSAGE_TOO_LONG;
        snprintf(e.message, sizeof e.message, "the body on stdin exceeds %u bytes",
                 PUBLISH_STDIN_MAX);
      }
      rc = cli_fail(&e);
      goto done;
    }
    body = owned;
  }
  if ((rc = cli_connect(cli)))
    goto done;
  if (gbx_publish(cli->c, a->pos[0], body, len, attrs, nattrs, cli_args_get(a, "subject"), mid,
                  &delivered, &err)) {
    rc = cli_fail(&err);
    goto done;
  }
  if (cli->json) {
    cJSON *j = cJSON_CreateObject();
    if (j && (!cJSON_AddStringToObject(j, "mid", mid) ||
              !cJSON_AddNumberToObject(j, "delivered", delivered))) {
      cJSON_Delete(j);
      j = NULL;
    }
    rc = cli_json_print(j);
  } else {
    /* The id alone on stdout, as "send" prints it, so scripts can take it. */
    puts(mid);
    fprintf(stderr, "delivered to %u queue%s\n", delivered, delivered == 1 ? "" : "s");
    rc = CLI_OK;
  }

done:
  for (size_t i = 0; i < nattrs; i++)
    cli_attr_free(&parsed[i]);
  free(owned);
  return rc;
}

const cli_cmd_t cli_topic_cmds[] = {
    {"topic", "create", CREATE_OPTS,
     "topic create NAME [--display-name TEXT] [--policy JSON] [--tag KEY=VALUE ...]\n"
     "Creates a topic. Creating an existing topic with the same attributes\n"
     "succeeds and reports that it existed.\n"
     "  --display-name TEXT  DisplayName, 0-100 characters\n"
     "  --policy JSON        Policy document, stored verbatim\n"
     "  --tag KEY=VALUE      a tag (repeatable)\n",
     cmd_create},
    {"topic", "list", NULL,
     "topic list [PREFIX]\n"
     "Lists the topics (whose names start with PREFIX), one per line, sorted.\n",
     cmd_list},
    {"topic", "stats", NULL,
     "topic stats NAME\n"
     "Shows the attributes of a topic (DisplayName, Policy, subscription count,\n"
     "creation time) and its tags.\n",
     cmd_stats},
    {"topic", "delete", NULL,
     "topic delete NAME\n"
     "Deletes a topic and its subscriptions. Messages already delivered to\n"
     "queues stay there.\n",
     cmd_delete},
    {"subscribe", NULL, SUBSCRIBE_OPTS,
     "subscribe TOPIC QUEUE [--filter JSON] [--filter-scope attributes|body] [--raw]\n"
     "Subscribes a queue (it need not exist yet) to a topic and prints the\n"
     "subscription id. Subscribing again with the same settings prints the same id.\n"
     "  --filter JSON          an SNS filter policy: only matching publishes reach the queue\n"
     "  --filter-scope SCOPE   what the policy tests: 'attributes' (the message\n"
     "                         attributes, default) or 'body' (the keys of a JSON body)\n"
     "  --raw                  deliver body and attributes as published, instead of\n"
     "                         an SNS JSON envelope\n",
     cmd_subscribe},
    {"unsubscribe", NULL, NULL, "unsubscribe SUB_ID\nRemoves a subscription.\n", cmd_unsubscribe},
    {"subscriptions", NULL, SUBS_OPTS,
     "subscriptions [--topic TOPIC] [--queue QUEUE]\n"
     "Lists subscriptions as \"ID  TOPIC -> QUEUE\", all or those of a topic\n"
     "and/or a queue.\n",
     cmd_subscriptions},
    {"publish", NULL, PUBLISH_OPTS,
     "publish TOPIC [BODY] [--attr NAME=TYPE:VALUE ...] [--subject TEXT]\n"
     "Publishes one message to a topic and prints its id (on stderr: how many\n"
     "queues got a copy). Without BODY, or with BODY \"-\", the body is read from\n"
     "stdin (any bytes, at most 256 KiB).\n"
     "  --attr NAME=TYPE:VALUE  a message attribute (repeatable, at most 10); TYPE is\n"
     "                          String, Number or Binary (optionally .label); a Binary\n"
     "                          VALUE is given in base64\n"
     "  --subject TEXT          the Subject of the SNS envelope (1-100 characters)\n",
     cmd_publish},
    {NULL, NULL, NULL, NULL, NULL},
};
