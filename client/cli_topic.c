/* cli_topic.c - the topic commands of the gearbox CLI: "topic create|list|
 * stats|delete", subscribe, unsubscribe, subscriptions, publish. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* A publish body read from stdin: SNS's message size limit, which the
 * server enforces on body plus attributes; reading more would only be
 * refused. */
#define PUBLISH_STDIN_MAX (256u * 1024u)
/* Width of the name column of "topic stats": the longest attribute name,
 * SubscriptionsConfirmed, and room to spare. */
#define NAME_COLUMN 24

/* ---- topic create / delete ------------------------------------------------------- */

static const cli_optspec_t CREATE_OPTS[] = {
    {"display-name", 1, 0}, {"policy", 1, 0}, {"tag", 1, 1}, {NULL, 0, 0}};

static int cmd_create(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  static cli_tags_t ts;
  gbx_topic_attrs_t ta = {0};
  gbx_error_t err;
  int created = 0, rc;

  if ((rc = cli_npos(cmd, a, 1, 1)))
    return rc;
  if ((ta.display_name = cli_args_get(a, "display-name")))
    ta.set |= GBX_TA_DISPLAY_NAME;
  if ((ta.policy = cli_args_get(a, "policy")))
    ta.set |= GBX_TA_POLICY;
  if ((rc = cli_parse_tag_opts(cmd, a, &ts)) || (rc = cli_connect(cli)))
    return rc;
  if (gbx_topic_create(cli->c, a->pos[0], &ta, ts.tags, ts.n, &created, &err))
    return cli_fail(&err);
  return cli_print_created(cli, "topic", a->pos[0], created);
}

static int cmd_delete(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  return cli_run_delete(cli, cmd, a, "topic", gbx_topic_delete);
}

/* ---- topic list ------------------------------------------------------------------ */

static int cmd_list(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  int rc;
  if ((rc = cli_npos(cmd, a, 0, 1)) || (rc = cli_connect(cli)))
    return rc;
  return cli_print_names(cli, "topics", a->npos ? a->pos[0] : NULL, gbx_topic_list);
}

/* ---- topic stats ------------------------------------------------------------------ */

static int cmd_stats(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  gbx_error_t err;
  gbx_topic_info_t info;
  int rc;
  if ((rc = cli_npos(cmd, a, 1, 1)) || (rc = cli_connect(cli)))
    return rc;
  if (gbx_topic_get_attrs(cli->c, a->pos[0], &info, &err))
    return cli_fail(&err);
  rc = cli_print_attrs(cli, "topic", a->pos[0], info.all, info.nall, info.tags, info.ntags,
                       NAME_COLUMN);
  gbx_topic_info_free(&info);
  return rc;
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
  return cli_print_done(cli, "subscription", a->pos[0], "unsubscribed", line);
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

/* What subs_page lists: the --topic and --queue filters. */
typedef struct subs_ctx {
  const char *topic, *queue;
} subs_ctx_t;

/* A cli_page_fn for subscriptions. */
static int subs_page(cli_t *cli, void *ctx, const char *token, cJSON *arr, char **next,
                     gbx_error_t *err) {
  const subs_ctx_t *sc = ctx;
  gbx_sub_list_t l;
  int rc = CLI_OK;
  *next = NULL;
  if (gbx_sub_list(cli->c, sc->topic, sc->queue, token, &l, err))
    return CLI_ERR;
  for (size_t i = 0; i < l.count && rc == CLI_OK; i++)
    if (print_sub(cli, arr, &l.subs[i]))
      rc = -1;
  if (rc == CLI_OK && l.next && !(*next = strdup(l.next)))
    rc = -1;
  gbx_sub_list_free(&l);
  return rc;
}

static int cmd_subscriptions(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  subs_ctx_t sc = {cli_args_get(a, "topic"), cli_args_get(a, "queue")};
  int rc;
  if ((rc = cli_npos(cmd, a, 0, 0)) || (rc = cli_connect(cli)))
    return rc;
  return cli_print_pages(cli, "subscriptions", subs_page, &sc);
}

/* ---- publish ------------------------------------------------------------------------ */

static const cli_optspec_t PUBLISH_OPTS[] = {{"attr", 1, 1}, {"subject", 1, 0}, {NULL, 0, 0}};

static int cmd_publish(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  cli_msg_t m;
  char mid[GBX_MID_BUFSZ];
  uint32_t delivered = 0;
  gbx_error_t err;
  int rc;

  if ((rc = cli_npos(cmd, a, 1, 2)) || (rc = cli_msg_parse(cmd, a, PUBLISH_STDIN_MAX, &m)))
    return rc;
  if ((rc = cli_connect(cli)))
    goto done;
  if (gbx_publish(cli->c, a->pos[0], m.body, m.len, m.attrs, m.nattrs, cli_args_get(a, "subject"),
                  mid, &delivered, &err)) {
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
  cli_msg_free(&m);
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
