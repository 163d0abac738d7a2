/* cli_msg.c - the message commands of the gearbox CLI: send, receive,
 * delete, visibility. */

#include "cli.h"

/* ---- send ------------------------------------------------------------------ */

static const cli_optspec_t SEND_OPTS[] = {{"attr", 1, 1}, {"delay", 1, 0}, {NULL, 0, 0}};

static int cmd_send(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  const char *dv = cli_args_get(a, "delay");
  uint32_t delay = 0;
  cli_msg_t m;
  char mid[GBX_MID_BUFSZ];
  gbx_error_t err;
  int rc;

  if ((rc = cli_npos(cmd, a, 1, 2)))
    return rc;
  if (dv && cli_parse_u32(dv, 0, UINT32_MAX, &delay))
    return cli_usage(cmd, "--delay needs a whole number of seconds, not '%s'", dv);
  if ((rc = cli_msg_parse(cmd, a, GBX_MAX_MESSAGE_SIZE, &m)))
    return rc;
  if ((rc = cli_connect(cli)))
    goto done;
  if (gbx_queue_send(cli->c, a->pos[0], m.body, m.len, m.attrs, m.nattrs, dv ? (int)delay : -1, mid,
                     &err)) {
    rc = cli_fail(&err);
    goto done;
  }
  if (cli->json) {
    cJSON *j = cJSON_CreateObject();
    if (j && !cJSON_AddStringToObject(j, "mid", mid)) {
      cJSON_Delete(j);
      j = NULL;
    }
    rc = cli_json_print(j);
  } else {
    puts(mid);
    rc = CLI_OK;
  }

done:
  cli_msg_free(&m);
  return rc;
}

/* ---- receive --------------------------------------------------------------- */

static const cli_optspec_t RECEIVE_OPTS[] = {
    {"max", 1, 0}, {"wait", 1, 0}, {"visibility", 1, 0}, {"delete", 0, 0}, {NULL, 0, 0}};

/* Parses an optional numeric option into *out (-1 when absent). */
static int opt_num(const cli_cmd_t *cmd, const cli_args_t *a, const char *name, int *out) {
  const char *v = cli_args_get(a, name);
  uint32_t n;
  *out = -1;
  if (!v)
    return CLI_OK;
  if (cli_parse_u32(v, 0, INT32_MAX, &n))
    return cli_usage(cmd, "--%s needs a whole number, not '%s'", name, v);
  *out = (int)n;
  return CLI_OK;
}

static int cmd_receive(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  int max, wait, vis, del = cli_args_get(a, "delete") != NULL, rc;
  gbx_message_t *msgs = NULL;
  size_t n = 0;
  gbx_error_t err;

  if ((rc = cli_npos(cmd, a, 1, 1)) || (rc = opt_num(cmd, a, "max", &max)) ||
      (rc = opt_num(cmd, a, "wait", &wait)) || (rc = opt_num(cmd, a, "visibility", &vis)))
    return rc;
  if (max == 0)
    return cli_usage(cmd, "--max must be at least 1");
  if ((rc = cli_connect(cli)))
    return rc;
  if (gbx_queue_receive(cli->c, a->pos[0], max < 0 ? 0 : (uint32_t)max, vis, wait, &msgs, &n, &err))
    return cli_fail(&err);

  if (cli->json) {
    cJSON *j = cJSON_CreateObject(), *arr = j ? cJSON_AddArrayToObject(j, "messages") : NULL;
    for (size_t i = 0; arr && i < n; i++)
      if (!cJSON_AddItemToArray(arr, cli_json_message(&msgs[i])))
        arr = NULL;
    if (!arr) {
      cJSON_Delete(j);
      j = NULL;
    }
    rc = cli_json_print(j);
  } else {
    if (n == 0)
      fputs("no messages\n", stderr);
    for (size_t i = 0; i < n; i++)
      cli_print_message(stdout, &msgs[i]);
    rc = CLI_OK;
  }
  /* Delete only what was printed: a failure to print keeps the messages. */
  fflush(stdout);
  for (size_t i = 0; del && rc == CLI_OK && i < n; i++)
    if (gbx_message_delete(cli->c, a->pos[0], msgs[i].receipt, &err))
      rc = cli_fail(&err);
  gbx_messages_free(msgs);
  return rc;
}

/* ---- delete / visibility ---------------------------------------------------------- */

static int cmd_delete(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  gbx_error_t err;
  int rc;
  if ((rc = cli_npos(cmd, a, 2, 2)) || (rc = cli_connect(cli)))
    return rc;
  if (gbx_message_delete(cli->c, a->pos[0], a->pos[1], &err))
    return cli_fail(&err);
  if (!cli->json) {
    puts("deleted");
    return CLI_OK;
  }
  cJSON *j = cJSON_CreateObject();
  if (j && !cJSON_AddTrueToObject(j, "deleted")) {
    cJSON_Delete(j);
    j = NULL;
  }
  return cli_json_print(j);
}

static int cmd_visibility(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  gbx_error_t err;
  uint32_t vis;
  int rc;
  if ((rc = cli_npos(cmd, a, 3, 3)))
    return rc;
  if (cli_parse_u32(a->pos[2], 0, UINT32_MAX, &vis))
    return cli_usage(cmd, "SECONDS must be a whole number, not '%s'", a->pos[2]);
  if ((rc = cli_connect(cli)))
    return rc;
  if (gbx_message_change_vis(cli->c, a->pos[0], a->pos[1], vis, &err))
    return cli_fail(&err);
  if (!cli->json) {
    printf("visible again in %u s\n", vis);
    return CLI_OK;
  }
  cJSON *j = cJSON_CreateObject();
  if (j && !cJSON_AddNumberToObject(j, "visibility", vis)) {
    cJSON_Delete(j);
    j = NULL;
  }
  return cli_json_print(j);
}

const cli_cmd_t cli_msg_cmds[] = {
    {"send", NULL, SEND_OPTS,
     "send QUEUE [BODY] [--attr NAME=TYPE:VALUE ...] [--delay S]\n"
     "Sends one message and prints its id. Without BODY, or with BODY \"-\",\n"
     "the body is read from stdin (any bytes, at most 1 MiB).\n"
     "  --attr NAME=TYPE:VALUE  a message attribute (repeatable, at most 10); TYPE is\n"
     "                          String, Number or Binary (optionally .label); a Binary\n"
     "                          VALUE is given in base64\n"
     "  --delay S               delay delivery by S seconds (0-900; default: the queue's)\n",
     cmd_send},
    {"receive", NULL, RECEIVE_OPTS,
     "receive QUEUE [--max N] [--wait S] [--visibility S] [--delete]\n"
     "Receives messages and prints them. Text bodies print as they are, other\n"
     "bodies in base64 (with --json: \"body\" for UTF-8 text, else \"body_base64\").\n"
     "  --max N          up to N messages (1-100, default 1)\n"
     "  --wait S         wait up to S seconds for a message (0-20; default: the queue's)\n"
     "  --visibility S   hide them for S seconds (default: the queue's)\n"
     "  --delete         delete each message after printing it\n",
     cmd_receive},
    {"delete", NULL, NULL,
     "delete QUEUE RECEIPT\nDeletes the message a receipt handle (from receive) refers to.\n",
     cmd_delete},
    {"visibility", NULL, NULL,
     "visibility QUEUE RECEIPT SECONDS\n"
     "Makes a received message visible again SECONDS from now (0: at once).\n",
     cmd_visibility},
    {NULL, NULL, NULL, NULL, NULL},
};
