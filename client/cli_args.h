/* cli_args.h - argument helpers of the gearbox CLI, kept free of I/O and of
 * the client so unit tests can drive them: option parsing, numbers, k=v
 * pairs, typed message attributes, base64 and UTF-8 checks. */
#ifndef GBX_CLI_ARGS_H
#define GBX_CLI_ARGS_H

#include <stddef.h>
#include <stdint.h>

/* One option a command accepts: --name (taking a value when has_arg, as
 * "--name VALUE" or "--name=VALUE"), given once unless repeatable. */
typedef struct cli_optspec {
  const char *name;
  int has_arg;
  int repeatable;
} cli_optspec_t;

typedef struct cli_opt {
  const char *name;  /* the spec's name */
  const char *value; /* into argv; "" for a flag */
} cli_opt_t;

/* A parsed command line: positionals and options in order. Strings point
 * into argv. */
typedef struct cli_args {
  const char **pos;
  size_t npos;
  cli_opt_t *opts;
  size_t nopts;
  int help; /* --help or -h was given */
} cli_args_t;

/* Parses argv[0..argc) against specs (terminated by a NULL name). Options
 * and positionals may be mixed; "--" ends options; "-" is a positional.
 * Returns 0, or -1 with the reason in why[0..whycap) (unknown option,
 * missing value, a value given to a flag, a non-repeatable option twice,
 * out of memory). On 0 the caller frees out with cli_args_free(). */
int cli_args_parse(int argc, char **argv, const cli_optspec_t *specs, cli_args_t *out, char *why,
                   size_t whycap);
/* The value of option name (the last one given), or NULL if absent. */
const char *cli_args_get(const cli_args_t *a, const char *name);
/* Stores up to cap values of a repeatable option in out, in order; returns
 * how many were given (may exceed cap). */
size_t cli_args_all(const cli_args_t *a, const char *name, const char **out, size_t cap);
void cli_args_free(cli_args_t *a);

/* Parses a whole decimal number in min..max. Returns 0 or -1. */
int cli_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out);

/* Splits "key=value" at the first '='; key (non-empty) is copied into
 * key[0..keycap), *value points after the '='. Returns 0 or -1. */
int cli_parse_kv(const char *s, char *key, size_t keycap, const char **value);

/* A message attribute given as "name=Type:value". */
typedef struct cli_attr {
  char *name;
  char *type;
  uint8_t *value; /* NUL-terminated, value_len bytes before the NUL */
  size_t value_len;
} cli_attr_t;

/* Parses "name=Type:value": the type runs to the first ':' after the '=',
 * the value is the rest (it may hold ':'). A Binary type's value is base64
 * and stored decoded. Returns 0 (free with cli_attr_free) or -1. */
int cli_parse_attr(const char *spec, cli_attr_t *out);
void cli_attr_free(cli_attr_t *a);

/* Standard base64 with padding. encode writes a NUL-terminated string and
 * returns 0, or -1 when cap < 4*ceil(n/3)+1. decode accepts only canonical
 * padded input, returns 0 with *n bytes in out, or -1 (bad input or cap too
 * small). */
int cli_base64_encode(const uint8_t *in, size_t n, char *out, size_t cap);
int cli_base64_decode(const char *in, uint8_t *out, size_t cap, size_t *n);
/* Bytes needed to base64-encode n bytes, NUL included. */
size_t cli_base64_size(size_t n);

/* 1 if p[0..n) is valid UTF-8 with no NUL byte (printable as a C string). */
int cli_utf8_text(const uint8_t *p, size_t n);

#endif
