/* cli_out.c - output of the gearbox CLI: JSON documents (cJSON), the
 * outcome lines and documents the queue and topic commands share (done,
 * created, stats, paged listings), and the human-readable rendering of
 * received messages.
 *
 * Bytes that are UTF-8 text without NUL bytes are printed as they are (in
 * JSON as a string, escaped by cJSON); anything else is printed as base64,
 * in JSON under the key "<name>_base64", so a script always knows which it
 * got and never receives a lossy rendering. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

int cli_json_print(cJSON *j) {
  char *s = j ? cJSON_Print(j) : NULL;
  cJSON_Delete(j);
  if (!s) {
    fputs("error: nomem: out of memory building JSON\n", stderr);
    return CLI_ERR;
  }
  puts(s);
  cJSON_free(s);
  return CLI_OK;
}

int cli_print_done(cli_t *cli, const char *field, const char *name, const char *key,
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

int cli_print_created(cli_t *cli, const char *kind, const char *name, int created) {
  char line[160];
  if (cli->json) {
    cJSON *j = cJSON_CreateObject();
    if (j && (!cJSON_AddStringToObject(j, kind, name) ||
              !cJSON_AddBoolToObject(j, "created", created))) {
      cJSON_Delete(j);
      j = NULL;
    }
    return cli_json_print(j);
  }
  if (created)
    snprintf(line, sizeof line, "created %s %s", kind, name);
  else
    snprintf(line, sizeof line, "%s %s already exists with these attributes", kind, name);
  puts(line);
  return CLI_OK;
}

static int attrs_json(const char *kind, const char *name, const gbx_queue_attr_t *all, size_t nall,
                      const gbx_tag_t *tags, size_t ntags) {
  cJSON *j = cJSON_CreateObject(), *jattrs = NULL, *jtags = NULL;
  if (!j || !cJSON_AddStringToObject(j, kind, name) ||
      !(jattrs = cJSON_AddObjectToObject(j, "attributes")) ||
      !(jtags = cJSON_AddObjectToObject(j, "tags")))
    goto fail;
  for (size_t i = 0; i < nall; i++) {
    const gbx_queue_attr_t *a = &all[i];
    if (a->str ? !cJSON_AddStringToObject(jattrs, a->name, a->str)
               : !cJSON_AddNumberToObject(jattrs, a->name, (double)a->num))
      goto fail;
  }
  for (size_t i = 0; i < ntags; i++)
    if (!cJSON_AddStringToObject(jtags, tags[i].key, tags[i].value))
      goto fail;
  return cli_json_print(j);

fail:
  cJSON_Delete(j);
  return cli_json_print(NULL);
}

int cli_print_attrs(cli_t *cli, const char *kind, const char *name, const gbx_queue_attr_t *all,
                    size_t nall, const gbx_tag_t *tags, size_t ntags, int width) {
  if (cli->json)
    return attrs_json(kind, name, all, nall, tags, ntags);
  printf("%s %s\n", kind, name);
  for (size_t i = 0; i < nall; i++) {
    const gbx_queue_attr_t *a = &all[i];
    size_t len = strlen(a->name);
    if (a->str) {
      printf("  %-*s %s\n", width, a->name, a->str[0] ? a->str : "\"\"");
    } else if (len > 9 && strcmp(a->name + len - 9, "Timestamp") == 0) {
      char when[48];
      cli_format_ms(a->num * 1000, when, sizeof when);
      printf("  %-*s %llu (%s)\n", width, a->name, (unsigned long long)a->num, when);
    } else {
      printf("  %-*s %llu\n", width, a->name, (unsigned long long)a->num);
    }
  }
  if (ntags)
    puts("tags");
  for (size_t i = 0; i < ntags; i++)
    printf("  %s = %s\n", tags[i].key, tags[i].value);
  return CLI_OK;
}

int cli_print_pages(cli_t *cli, const char *key, cli_page_fn page, void *ctx) {
  cJSON *j = NULL, *arr = NULL;
  char *token = NULL, *next = NULL;
  gbx_error_t err;
  int rc;
  if (cli->json && (!(j = cJSON_CreateObject()) || !(arr = cJSON_AddArrayToObject(j, key))))
    goto nomem;
  /* Page through: each reply's token continues after its last entry. */
  do {
    rc = page(cli, ctx, token, arr, &next, &err);
    free(token);
    token = next;
    if (rc == CLI_ERR) {
      free(token);
      cJSON_Delete(j);
      return cli_fail(&err);
    }
    if (rc != CLI_OK) {
      free(token);
      goto nomem;
    }
  } while (token);
  return cli->json ? cli_json_print(j) : CLI_OK;

nomem:
  cJSON_Delete(j);
  return cli_json_print(NULL);
}

int cli_add_names(cli_t *cli, cJSON *arr, const gbx_queue_list_t *l) {
  for (size_t i = 0; i < l->count; i++) {
    if (!cli->json)
      puts(l->names[i]);
    else if (!cJSON_AddItemToArray(arr, cJSON_CreateString(l->names[i])))
      return -1;
  }
  return 0;
}

/* What cli_print_names pages through. */
typedef struct names_ctx {
  const char *prefix;
  cli_list_fn list;
} names_ctx_t;

/* A cli_page_fn for lists of names. */
static int names_page(cli_t *cli, void *ctx, const char *token, cJSON *arr, char **next,
                      gbx_error_t *err) {
  const names_ctx_t *nc = ctx;
  gbx_queue_list_t l;
  *next = NULL;
  if (nc->list(cli->c, nc->prefix, 0, token, &l, err))
    return CLI_ERR;
  int rc = cli_add_names(cli, arr, &l);
  if (rc == 0 && l.next && !(*next = strdup(l.next)))
    rc = -1;
  gbx_queue_list_free(&l);
  return rc;
}

int cli_print_names(cli_t *cli, const char *key, const char *prefix, cli_list_fn list) {
  names_ctx_t nc = {prefix, list};
  return cli_print_pages(cli, key, names_page, &nc);
}

/* base64 of p[0..n) in a new string (NULL out of memory). */
static char *b64_dup(const uint8_t *p, size_t n) {
  size_t cap = cli_base64_size(n);
  char *s = malloc(cap);
  if (s)
    cli_base64_encode(p, n, s, cap);
  return s;
}

int cli_json_add_bytes(cJSON *obj, const char *key, const uint8_t *p, size_t n) {
  char k[96];
  if (cli_utf8_text(p, n)) {
    /* The bytes are NUL-free, so as a C string they are complete; copy to
     * add the terminator cJSON needs. */
    char *s = strndup((const char *)p, n);
    cJSON *v = s ? cJSON_AddStringToObject(obj, key, s) : NULL;
    free(s);
    return v ? 0 : -1;
  }
  char *s = b64_dup(p, n);
  snprintf(k, sizeof k, "%s_base64", key);
  cJSON *v = s ? cJSON_AddStringToObject(obj, k, s) : NULL;
  free(s);
  return v ? 0 : -1;
}

cJSON *cli_json_message(const gbx_message_t *m) {
  cJSON *o = cJSON_CreateObject(), *attrs;
  if (!o)
    return NULL;
  if (!cJSON_AddStringToObject(o, "mid", m->mid) ||
      !cJSON_AddStringToObject(o, "receipt", m->receipt) ||
      !cJSON_AddNumberToObject(o, "receive_count", (double)m->receive_count) ||
      !cJSON_AddNumberToObject(o, "sent_ms", (double)m->sent_ms) ||
      !cJSON_AddNumberToObject(o, "first_receive_ms", (double)m->first_receive_ms) ||
      (m->source_queue && !cJSON_AddStringToObject(o, "source_queue", m->source_queue)) ||
      cli_json_add_bytes(o, "body", m->body, m->body_len) ||
      !(attrs = cJSON_AddObjectToObject(o, "attributes")))
    goto fail;
  for (size_t i = 0; i < m->nattrs; i++) {
    const gbx_msg_attr_t *a = &m->attrs[i];
    cJSON *ao = cJSON_AddObjectToObject(attrs, a->name);
    if (!ao || !cJSON_AddStringToObject(ao, "type", a->type) ||
        cli_json_add_bytes(ao, "value", a->value, a->value_len))
      goto fail;
  }
  return o;

fail:
  cJSON_Delete(o);
  return NULL;
}

void cli_format_ms(uint64_t ms, char *buf, size_t cap) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  char day[32];
  if (!gmtime_r(&t, &tm) || !strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm)) {
    snprintf(buf, cap, "%llu ms", (unsigned long long)ms);
    return;
  }
  snprintf(buf, cap, "%s.%03uZ", day, (unsigned)(ms % 1000));
}

/* Prints bytes as text when they are, else as base64 with a note. */
static void print_bytes(FILE *out, const uint8_t *p, size_t n, int block) {
  if (cli_utf8_text(p, n)) {
    fwrite(p, 1, n, out);
    if (block && n && p[n - 1] != '\n')
      fputc('\n', out);
    if (!block)
      fputc('\n', out);
    return;
  }
  char *s = b64_dup(p, n);
  fprintf(out, "(base64) %s\n", s ? s : "(out of memory)");
  free(s);
}

void cli_print_message(FILE *out, const gbx_message_t *m) {
  char sent[48], first[48];
  cli_format_ms(m->sent_ms, sent, sizeof sent);
  cli_format_ms(m->first_receive_ms, first, sizeof first);
  fprintf(out, "--- message %s\n", m->mid);
  fprintf(out, "receipt:  %s\n", m->receipt);
  fprintf(out, "sent:     %s   first received: %s   receives: %llu\n", sent, first,
          (unsigned long long)m->receive_count);
  if (m->source_queue)
    fprintf(out, "from DLQ source: %s\n", m->source_queue);
  for (size_t i = 0; i < m->nattrs; i++) {
    fprintf(out, "attr %s (%s): ", m->attrs[i].name, m->attrs[i].type);
    print_bytes(out, m->attrs[i].value, m->attrs[i].value_len, 0);
  }
  fprintf(out, "body (%zu bytes):\n", m->body_len);
  print_bytes(out, m->body, m->body_len, 1);
}
