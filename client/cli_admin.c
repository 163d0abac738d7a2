/* cli_admin.c - the broker-level commands of the gearbox CLI: redrive,
 * stats, backup, ping, principals. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* How often "redrive" asks for progress: often enough for a live progress
 * line, rare enough to cost the server nothing (a status is one lookup). */
#define REDRIVE_POLL_MS 250

static void sleep_ms(unsigned ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- redrive ---------------------------------------------------------------- */

static const cli_optspec_t REDRIVE_OPTS[] = {{"to", 1, 0}, {"rate", 1, 0}, {NULL, 0, 0}};

static int redrive_json(const char *dlq, const gbx_redrive_status_t *st) {
  cJSON *j = cJSON_CreateObject();
  if (j && (!cJSON_AddStringToObject(j, "queue", dlq) ||
            !cJSON_AddStringToObject(j, "state", st->state) ||
            !cJSON_AddNumberToObject(j, "moved", (double)st->moved) ||
            !cJSON_AddNumberToObject(j, "total", (double)st->total) ||
            (st->dst[0] && !cJSON_AddStringToObject(j, "dst", st->dst)) ||
            (st->message[0] && !cJSON_AddStringToObject(j, "message", st->message)))) {
    cJSON_Delete(j);
    j = NULL;
  }
  return cli_json_print(j);
}

static int cmd_redrive(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  const char *rv = cli_args_get(a, "rate");
  uint32_t rate = 0;
  gbx_redrive_status_t st;
  gbx_error_t err;
  char *task = NULL;
  int tty = isatty(STDOUT_FILENO) && !cli->json, rc;

  if ((rc = cli_npos(cmd, a, 1, 1)))
    return rc;
  if (rv && cli_parse_u32(rv, 1, UINT32_MAX, &rate))
    return cli_usage(cmd, "--rate needs a whole number of messages per second, not '%s'", rv);
  if ((rc = cli_connect(cli)))
    return rc;
  if (gbx_redrive_start(cli->c, a->pos[0], cli_args_get(a, "to"), rate, &task, &err))
    return cli_fail(&err);
  if (tty)
    printf("redrive task %s started\n", task);
  gbx_free(task);
  /* Poll until the task leaves "running". The task lives in the server:
   * interrupting this command does not stop it (redrive-cancel does). */
  for (;;) {
    if (gbx_redrive_status(cli->c, a->pos[0], &st, &err)) {
      if (tty)
        putchar('\n');
      return cli_fail(&err);
    }
    if (strcmp(st.state, "running") != 0)
      break;
    if (tty) {
      printf("\rmoved %llu / %llu", (unsigned long long)st.moved, (unsigned long long)st.total);
      fflush(stdout);
    }
    sleep_ms(REDRIVE_POLL_MS);
  }
  if (tty)
    putchar('\r');
  if (cli->json) {
    rc = redrive_json(a->pos[0], &st);
    return rc ? rc : strcmp(st.state, "completed") == 0 ? CLI_OK : CLI_ERR;
  }
  if (strcmp(st.state, "completed") == 0) {
    printf("redrive completed: moved %llu / %llu\n", (unsigned long long)st.moved,
           (unsigned long long)st.total);
    return CLI_OK;
  }
  fprintf(stderr, "error: redrive %s after moving %llu / %llu%s%s\n", st.state,
          (unsigned long long)st.moved, (unsigned long long)st.total, st.message[0] ? ": " : "",
          st.message);
  return CLI_ERR;
}

static int cmd_redrive_status(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  gbx_redrive_status_t st;
  gbx_error_t err;
  int rc;
  if ((rc = cli_npos(cmd, a, 1, 1)) || (rc = cli_connect(cli)))
    return rc;
  if (gbx_redrive_status(cli->c, a->pos[0], &st, &err))
    return cli_fail(&err);
  if (cli->json)
    return redrive_json(a->pos[0], &st);
  printf("%s: moved %llu / %llu", st.state, (unsigned long long)st.moved,
         (unsigned long long)st.total);
  if (st.dst[0])
    printf(" to %s", st.dst);
  if (st.message[0])
    printf(" (%s)", st.message);
  putchar('\n');
  return CLI_OK;
}

static int cmd_redrive_cancel(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  gbx_error_t err;
  uint64_t moved = 0;
  int rc;
  if ((rc = cli_npos(cmd, a, 1, 1)) || (rc = cli_connect(cli)))
    return rc;
  if (gbx_redrive_cancel(cli->c, a->pos[0], &moved, &err))
    return cli_fail(&err);
  if (!cli->json) {
    printf("redrive cancelled after moving %llu\n", (unsigned long long)moved);
    return CLI_OK;
  }
  cJSON *j = cJSON_CreateObject();
  if (j && (!cJSON_AddStringToObject(j, "queue", a->pos[0]) ||
            !cJSON_AddNumberToObject(j, "moved", (double)moved))) {
    cJSON_Delete(j);
    j = NULL;
  }
  return cli_json_print(j);
}

/* ---- stats -------------------------------------------------------------------- */

static int stats_json(const gbx_stats_t *s) {
  const gbx_broker_stats_t *b = &s->broker;
  cJSON *j = cJSON_CreateObject(), *bj = NULL, *qs = NULL;
  if (!j || !(bj = cJSON_AddObjectToObject(j, "broker")) ||
      !(qs = cJSON_AddArrayToObject(j, "queues")))
    goto fail;
#define NUM(obj, key, v)                                                                           \
  if (!cJSON_AddNumberToObject(obj, key, (double)(v)))                                             \
  goto fail
  NUM(bj, "messages", b->messages);
  NUM(bj, "bytes", b->bytes);
  NUM(bj, "queues", b->queues);
  NUM(bj, "connections", b->connections);
  NUM(bj, "batches", b->batches);
  NUM(bj, "synced_mutations", b->synced_mutations);
  NUM(bj, "msgs_per_sync", b->msgs_per_sync);
  NUM(bj, "commit_p50_us", b->commit_p50_us);
  NUM(bj, "commit_p99_us", b->commit_p99_us);
  NUM(bj, "index_bytes_per_msg", b->index_bytes_per_msg);
  NUM(bj, "body_cache_bytes", b->body_cache_bytes);
  NUM(bj, "uptime_s", b->uptime_s);
  for (size_t i = 0; i < s->nqueues; i++) {
    const gbx_queue_stats_t *q = &s->queues[i];
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(qs, o)) {
      cJSON_Delete(o);
      goto fail;
    }
    if (!cJSON_AddStringToObject(o, "queue", q->name))
      goto fail;
    NUM(o, "visible", q->visible);
    NUM(o, "inflight", q->inflight);
    NUM(o, "delayed", q->delayed);
    NUM(o, "oldest_age_s", q->oldest_age_s);
    NUM(o, "bytes", q->bytes);
  }
#undef NUM
  return cli_json_print(j);

fail:
  cJSON_Delete(j);
  return cli_json_print(NULL);
}

static int cmd_stats(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  gbx_stats_t s;
  gbx_error_t err;
  int rc;
  if ((rc = cli_npos(cmd, a, 0, 1)) || (rc = cli_connect(cli)))
    return rc;
  if (gbx_stats(cli->c, a->npos ? a->pos[0] : NULL, &s, &err))
    return cli_fail(&err);
  if (cli->json) {
    rc = stats_json(&s);
    gbx_stats_free(&s);
    return rc;
  }
  const gbx_broker_stats_t *b = &s.broker;
  printf("broker\n"
         "  messages %llu  bytes %llu  queues %llu  connections %llu  uptime %llu s\n"
         "  commits %llu  synced mutations %llu  requests per commit %.1f\n"
         "  commit latency p50 %llu us  p99 %llu us\n"
         "  index bytes per message %.1f  body cache %llu bytes\n",
         (unsigned long long)b->messages, (unsigned long long)b->bytes,
         (unsigned long long)b->queues, (unsigned long long)b->connections,
         (unsigned long long)b->uptime_s, (unsigned long long)b->batches,
         (unsigned long long)b->synced_mutations, b->msgs_per_sync,
         (unsigned long long)b->commit_p50_us, (unsigned long long)b->commit_p99_us,
         b->index_bytes_per_msg, (unsigned long long)b->body_cache_bytes);
  if (s.nqueues)
    printf("%-32s %10s %10s %10s %10s %12s\n", "QUEUE", "VISIBLE", "INFLIGHT", "DELAYED",
           "OLDEST_S", "BYTES");
  for (size_t i = 0; i < s.nqueues; i++) {
    const gbx_queue_stats_t *q = &s.queues[i];
    printf("%-32s %10llu %10llu %10llu %10llu %12llu\n", q->name, (unsigned long long)q->visible,
           (unsigned long long)q->inflight, (unsigned long long)q->delayed,
           (unsigned long long)q->oldest_age_s, (unsigned long long)q->bytes);
  }
  gbx_stats_free(&s);
  return CLI_OK;
}

/* ---- backup / ping ----------------------------------------------------------------- */

static int cmd_backup(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  gbx_error_t err;
  char *dir = NULL;
  int rc;
  if ((rc = cli_npos(cmd, a, 1, 1)) || (rc = cli_connect(cli)))
    return rc;
  if (gbx_backup(cli->c, a->pos[0], &dir, &err))
    return cli_fail(&err);
  if (cli->json) {
    cJSON *j = cJSON_CreateObject();
    if (j && !cJSON_AddStringToObject(j, "dir", dir)) {
      cJSON_Delete(j);
      j = NULL;
    }
    rc = cli_json_print(j);
  } else {
    printf("backup written to %s\n", dir);
  }
  gbx_free(dir);
  return rc;
}

static int cmd_ping(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  gbx_error_t err;
  double t0, ms;
  int rc;
  if ((rc = cli_npos(cmd, a, 0, 0)) || (rc = cli_connect(cli)))
    return rc;
  t0 = now_s();
  if (gbx_ping(cli->c, &err))
    return cli_fail(&err);
  ms = (now_s() - t0) * 1000.0;
  if (!cli->json) {
    printf("pong from %s:%u in %.3f ms\n", cli->host, (unsigned)cli->port, ms);
    return CLI_OK;
  }
  cJSON *j = cJSON_CreateObject();
  if (j && (!cJSON_AddTrueToObject(j, "ok") || !cJSON_AddNumberToObject(j, "rtt_ms", ms))) {
    cJSON_Delete(j);
    j = NULL;
  }
  return cli_json_print(j);
}

/* ---- principals ------------------------------------------------------------ */

/* Reads a small file (a secret or a policy) into a NUL-terminated string,
 * without the trailing newline. NULL (message on stderr) on failure. */
static char *slurp(const char *path, size_t max) {
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "error: cannot read %s\n", path);
    return NULL;
  }
  char *b = malloc(max + 2);
  size_t n = b ? fread(b, 1, max + 1, f) : 0;
  fclose(f);
  if (!b || n > max) {
    fprintf(stderr, "error: %s is larger than %zu bytes\n", path, max);
    free(b);
    return NULL;
  }
  while (n && (b[n - 1] == '\n' || b[n - 1] == '\r'))
    n--;
  b[n] = 0;
  return b;
}

static const cli_optspec_t PPUT_OPTS[] = {
    {"key", 1, 0}, {"account", 1, 0}, {"policy-file", 1, 0}, {"secret-file", 1, 0}, {NULL, 0, 0}};

static int cmd_principal_put(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  gbx_error_t err;
  int rc;
  const char *key = cli_args_get(a, "key"), *sf = cli_args_get(a, "secret-file");
  const char *pf = cli_args_get(a, "policy-file");
  if ((rc = cli_npos(cmd, a, 1, 1)))
    return rc;
  if (!key)
    return cli_usage(cmd, "--key ACCESS_KEY_ID is required");
  /* the secret comes from a file or the environment, never from argv */
  char *secret = sf ? slurp(sf, 128) : NULL;
  const char *env = getenv("GEARBOX_PRINCIPAL_SECRET");
  if (!sf && env)
    secret = strdup(env);
  if (!secret) {
    if (!sf)
      return cli_usage(cmd, "give the secret with --secret-file FILE or GEARBOX_PRINCIPAL_SECRET");
    return CLI_ERR;
  }
  char *policy = pf ? slurp(pf, 20480) : NULL;
  if (pf && !policy) {
    free(secret);
    return CLI_ERR;
  }
  if ((rc = cli_connect(cli)) == CLI_OK) {
    if (gbx_principal_put(cli->c, a->pos[0], key, secret, cli_args_get(a, "account"), policy, &err))
      rc = cli_fail(&err);
    else
      rc = cli_print_done(cli, "principal", a->pos[0], "put", "principal put");
  }
  memset(secret, 0, strlen(secret));
  free(secret);
  free(policy);
  return rc;
}

static int cmd_principal_delete(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  gbx_error_t err;
  int rc;
  if ((rc = cli_npos(cmd, a, 1, 1)) || (rc = cli_connect(cli)))
    return rc;
  if (gbx_principal_delete(cli->c, a->pos[0], &err))
    return cli_fail(&err);
  return cli_print_done(cli, "principal", a->pos[0], "deleted", "principal deleted");
}

static int cmd_principal_list(cli_t *cli, const cli_cmd_t *cmd, const cli_args_t *a) {
  gbx_error_t err;
  gbx_principal_list_t l;
  int rc;
  if ((rc = cli_npos(cmd, a, 0, 0)) || (rc = cli_connect(cli)))
    return rc;
  if (gbx_principal_list(cli->c, &l, &err))
    return cli_fail(&err);
  if (cli->json) {
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < l.count; i++) {
      cJSON *o = cJSON_CreateObject();
      if (!o)
        break;
      cJSON_AddStringToObject(o, "name", l.v[i].name);
      cJSON_AddStringToObject(o, "key", l.v[i].key);
      cJSON_AddStringToObject(o, "account", l.v[i].account);
      cJSON_AddStringToObject(o, "source", l.v[i].source);
      if (l.v[i].policy)
        cJSON_AddRawToObject(o, "policy", l.v[i].policy);
      cJSON_AddItemToArray(arr, o);
    }
    rc = cli_json_print(arr);
  } else {
    for (size_t i = 0; i < l.count; i++)
      printf("%s\t%s\t%s\t%s\n", l.v[i].name, l.v[i].key, l.v[i].account, l.v[i].source);
  }
  gbx_principal_list_free(&l);
  return rc;
}

const cli_cmd_t cli_admin_cmds[] = {
    {"redrive", NULL, REDRIVE_OPTS,
     "redrive DLQ [--to QUEUE] [--rate N]\n"
     "Moves the messages of dead-letter queue DLQ back to the queues they came\n"
     "from (or to QUEUE) and waits until the task ends, showing \"moved X / Y\"\n"
     "on a terminal. Exits 1 if the task is cancelled or fails. Interrupting\n"
     "this command does not stop the task on the server (redrive-cancel does).\n"
     "  --to QUEUE   move every message to QUEUE instead\n"
     "  --rate N     at most N messages per second (1-500, default 500)\n",
     cmd_redrive},
    {"redrive-status", NULL, NULL,
     "redrive-status DLQ\nShows the state of the redrive task of DLQ.\n", cmd_redrive_status},
    {"redrive-cancel", NULL, NULL, "redrive-cancel DLQ\nCancels the running redrive task of DLQ.\n",
     cmd_redrive_cancel},
    {"stats", NULL, NULL,
     "stats [QUEUE]\n"
     "Shows the broker's figures and the message counts of every queue (or of QUEUE).\n",
     cmd_stats},
    {"backup", NULL, NULL,
     "backup DIR\n"
     "Makes the server write a consistent copy of its store into DIR, a path on\n"
     "the server's machine that must not exist yet.\n",
     cmd_backup},
    {"ping", NULL, NULL, "ping\nChecks that the server answers and shows the round trip time.\n",
     cmd_ping},
    {"principal", "put", PPUT_OPTS,
     "principal put NAME --key ACCESS_KEY_ID [--account ID] [--policy-file FILE]\n"
     "                   [--secret-file FILE]\n"
     "Adds or replaces an admin-defined principal (servers with --credentials; the\n"
     "credentials file wins over it). The secret comes from --secret-file or the\n"
     "environment variable GEARBOX_PRINCIPAL_SECRET, never from the command line.\n"
     "  --policy-file FILE  its identity policy (JSON); without it, nothing is allowed\n",
     cmd_principal_put},
    {"principal", "delete", NULL,
     "principal delete NAME\nRemoves an admin-defined principal; its connections are revoked.\n",
     cmd_principal_delete},
    {"principal", "list", NULL,
     "principal list\nLists every principal: name, access key id, account, source (never "
     "secrets).\n",
     cmd_principal_list},
    {NULL, NULL, NULL, NULL, NULL},
};
