/* cli_args.c - argument helpers of the gearbox CLI (see cli_args.h). */
#include "cli_args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- options ------------------------------------------------------------- */

static const cli_optspec_t *spec_find(const cli_optspec_t *specs, const char *name, size_t len) {
  for (const cli_optspec_t *s = specs; s && s->name; s++)
    if (strlen(s->name) == len && memcmp(s->name, name, len) == 0)
      return s;
  return NULL;
}

int cli_args_parse(int argc, char **argv, const cli_optspec_t *specs, cli_args_t *out, char *why,
                   size_t whycap) {
  int only_pos = 0;
  memset(out, 0, sizeof *out);
  if (argc < 0)
    argc = 0;
  /* At most one entry per argument, so these never grow. */
  out->pos = calloc((size_t)argc + 1, sizeof *out->pos);
  out->opts = calloc((size_t)argc + 1, sizeof *out->opts);
  if (!out->pos || !out->opts) {
    snprintf(why, whycap, "out of memory");
    goto fail;
  }
  for (int i = 0; i < argc; i++) {
    const char *arg = argv[i];
    if (only_pos || arg[0] != '-' || strcmp(arg, "-") == 0) {
      out->pos[out->npos++] = arg;
      continue;
    }
    if (strcmp(arg, "--") == 0) {
      only_pos = 1;
      continue;
    }
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      out->help = 1;
      continue;
    }
    if (arg[1] != '-') {
      snprintf(why, whycap, "unknown option '%s'", arg);
      goto fail;
    }
    const char *name = arg + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const cli_optspec_t *s = spec_find(specs, name, len);
    if (!s) {
      snprintf(why, whycap, "unknown option '--%.*s'", (int)len, name);
      goto fail;
    }
    const char *value = "";
    if (s->has_arg) {
      if (eq) {
        value = eq + 1;
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        snprintf(why, whycap, "option '--%s' needs a value", s->name);
        goto fail;
      }
    } else if (eq) {
      snprintf(why, whycap, "option '--%s' takes no value", s->name);
      goto fail;
    }
    if (!s->repeatable && cli_args_get(out, s->name)) {
      snprintf(why, whycap, "option '--%s' given twice", s->name);
      goto fail;
    }
    out->opts[out->nopts++] = (cli_opt_t){.name = s->name, .value = value};
  }
  return 0;

fail:
  cli_args_free(out);
  return -1;
}

const char *cli_args_get(const cli_args_t *a, const char *name) {
  const char *v = NULL;
  for (size_t i = 0; i < a->nopts; i++)
    if (strcmp(a->opts[i].name, name) == 0)
      v = a->opts[i].value;
  return v;
}

size_t cli_args_all(const cli_args_t *a, const char *name, const char **out, size_t cap) {
  size_t n = 0;
  for (size_t i = 0; i < a->nopts; i++) {
    if (strcmp(a->opts[i].name, name) != 0)
      continue;
    if (n < cap)
      out[n] = a->opts[i].value;
    n++;
  }
  return n;
}

void cli_args_free(cli_args_t *a) {
  free(a->pos);
  free(a->opts);
  memset(a, 0, sizeof *a);
}

/* ---- values --------------------------------------------------------------- */

int cli_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out) {
  uint64_t v = 0;
  if (!s || !*s)
    return -1;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9')
      return -1;
    v = v * 10 + (uint64_t)(*p - '0');
    if (v > UINT32_MAX)
      return -1;
  }
  if (v < min || v > max)
    return -1;
  *out = (uint32_t)v;
  return 0;
}

int cli_parse_kv(const char *s, char *key, size_t keycap, const char **value) {
  const char *eq = s ? strchr(s, '=') : NULL;
  if (!eq || eq == s || (size_t)(eq - s) >= keycap)
    return -1;
  memcpy(key, s, (size_t)(eq - s));
  key[eq - s] = '\0';
  *value = eq + 1;
  return 0;
}

/* The base type is what precedes the first '.' of the type. */
static int is_binary_type(const char *type) {
  return strncmp(type, "Binary", 6) == 0 && (type[6] == '\0' || type[6] == '.');
}

int cli_parse_attr(const char *spec, cli_attr_t *out) {
  const char *eq = spec ? strchr(spec, '=') : NULL;
  const char *colon = eq ? strchr(eq + 1, ':') : NULL;
  size_t nlen, tlen, vlen;
  memset(out, 0, sizeof *out);
  if (!eq || !colon || eq == spec || colon == eq + 1)
    return -1;
  nlen = (size_t)(eq - spec);
  tlen = (size_t)(colon - eq - 1);
  vlen = strlen(colon + 1);
  out->name = strndup(spec, nlen);
  out->type = strndup(eq + 1, tlen);
  out->value = malloc(vlen + 1); /* base64 decodes to fewer bytes */
  if (!out->name || !out->type || !out->value)
    goto fail;
  if (is_binary_type(out->type)) {
    if (cli_base64_decode(colon + 1, out->value, vlen + 1, &out->value_len) != 0)
      goto fail;
  } else {
    memcpy(out->value, colon + 1, vlen);
    out->value_len = vlen;
  }
  out->value[out->value_len] = '\0';
  return 0;

fail:
  cli_attr_free(out);
  return -1;
}

void cli_attr_free(cli_attr_t *a) {
  free(a->name);
  free(a->type);
  free(a->value);
  memset(a, 0, sizeof *a);
}

/* ---- base64 and UTF-8 --------------------------------------------------------- */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t cli_base64_size(size_t n) {
  return (n + 2) / 3 * 4 + 1;
}

int cli_base64_encode(const uint8_t *in, size_t n, char *out, size_t cap) {
  size_t o = 0;
  if (cap < cli_base64_size(n))
    return -1;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16;
    if (i + 1 < n)
      v |= (uint32_t)in[i + 1] << 8;
    if (i + 2 < n)
      v |= in[i + 2];
    out[o++] = B64[(v >> 18) & 63];
    out[o++] = B64[(v >> 12) & 63];
    out[o++] = i + 1 < n ? B64[(v >> 6) & 63] : '=';
    out[o++] = i + 2 < n ? B64[v & 63] : '=';
  }
  out[o] = '\0';
  return 0;
}

static int b64_value(char c) {
  const char *p = c ? strchr(B64, c) : NULL;
  return p ? (int)(p - B64) : -1;
}

int cli_base64_decode(const char *in, uint8_t *out, size_t cap, size_t *n) {
  size_t len = strlen(in), o = 0;
  if (len % 4)
    return -1;
  for (size_t i = 0; i < len; i += 4) {
    int last = i + 4 == len;
    int a = b64_value(in[i]), b = b64_value(in[i + 1]);
    int c = in[i + 2] == '=' && last ? -2 : b64_value(in[i + 2]);
    int d = in[i + 3] == '=' && last ? -2 : b64_value(in[i + 3]);
    if (a < 0 || b < 0 || c == -1 || d == -1 || (c == -2 && d != -2))
      return -1;
    size_t k = c == -2 ? 1 : d == -2 ? 2 : 3;
    if (cap - o < k)
      return -1;
    uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)(c < 0 ? 0 : c) << 6 |
                 (uint32_t)(d < 0 ? 0 : d);
    out[o++] = (uint8_t)(v >> 16);
    if (k > 1)
      out[o++] = (uint8_t)(v >> 8);
    if (k > 2)
      out[o++] = (uint8_t)v;
  }
  *n = o;
  return 0;
}

int cli_utf8_text(const uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = p[i];
    size_t k;
    uint32_t cp;
    if (c == 0)
      return 0;
    if (c < 0x80) {
      i++;
      continue;
    }
    if ((c & 0xe0) == 0xc0) {
      k = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      k = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      k = 3;
      cp = c & 0x07;
    } else {
      return 0;
    }
    if (n - i <= k)
      return 0;
    for (size_t j = 1; j <= k; j++) {
      if ((p[i + j] & 0xc0) != 0x80)
        return 0;
      cp = cp << 6 | (p[i + j] & 0x3f);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
    if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
      return 0;
    i += k + 1;
  }
  return 1;
}
