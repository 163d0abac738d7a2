/* main.c - gearboxd: parse flags, start the server, run it. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: gearboxd [options]\n"
          "  --listen HOST:PORT    address to listen on (default 127.0.0.1:7411; port 0 picks one)\n"
          "  --data DIR            data directory, the embedded RocksDB store (default ./data)\n"
          "  --sync POLICY         always (default): sync before each acknowledgement;\n"
          "                        interval:MS: acknowledge after the write, sync every MS ms;\n"
          "                        none: never sync (the OS decides)\n"
          "  --max-frame BYTES     largest request frame (default 2097152, at most 8388608)\n"
          "  --max-conns N         connections (default 10000)\n"
          "  --max-waiters N       waiting receives per connection (default 64)\n"
          "  --max-outbuf BYTES    unread replies per connection before it is cut off (default 64 MiB)\n"
          "  --max-bytes BYTES     stored message bytes before sends are refused (default: no limit)\n"
          "  --body-cache BYTES    message bodies kept in memory (default 512 MiB)\n"
          "  --min-free BYTES      refuse sends below this free space on the data disk (default 256 MiB)\n"
          "  --slow-timeout MS     close a connection whose request stays incomplete this long (default 30000)\n"
          "  --region NAME         region in ARNs (default us-east-1)\n"
          "  --account-id ID       account id in ARNs (default 123456789012)\n"
          "  --public-url URL      base of URLs in SNS envelopes (default http://HOST:PORT)\n"
          "  --http HOST:PORT|off  AWS-compatible SQS/SNS HTTP API (default 127.0.0.1:9324;\n"
          "                        port 0 when --listen has port 0)\n"
          "  --test-endpoints      enable POST /moto-api/reset and GET /gearbox/peek/QUEUE\n"
          "  --credentials FILE    principals, secrets and policies (docs/SECURITY.md); reloaded\n"
          "                        on SIGHUP. Without it only loopback addresses may be used\n"
          "  --allow-public-without-auth  listen on a non-loopback address with no credentials\n"
          "  --auth-timeout MS     close connections that do not authenticate in time (default 10000)\n"
          "  --log-level LEVEL     debug, info (default), warn or error\n"
          "  --help                this text\n");
}

static int parse_u64(const char *flag, const char *s, uint64_t lo, uint64_t hi, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi) {
    fprintf(stderr, "gearboxd: %s wants a number in %llu-%llu, not '%s'\n", flag,
            (unsigned long long)lo, (unsigned long long)hi, s);
    return -1;
  }
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"listen", 1, 0, 'l'},    {"data", 1, 0, 'd'},      {"sync", 1, 0, 's'},
      {"max-frame", 1, 0, 'F'}, {"max-conns", 1, 0, 'C'}, {"max-waiters", 1, 0, 'W'},
      {"max-outbuf", 1, 0, 'O'}, {"max-bytes", 1, 0, 'B'}, {"body-cache", 1, 0, 'c'},
      {"log-level", 1, 0, 'v'}, {"help", 0, 0, 'h'},      {"region", 1, 0, 'R'},
      {"account-id", 1, 0, 'A'}, {"public-url", 1, 0, 'U'}, {"min-free", 1, 0, 'M'},
      {"slow-timeout", 1, 0, 'S'}, {"http", 1, 0, 'H'},        {"test-endpoints", 0, 0, 'T'},
      {"credentials", 1, 0, 'K'}, {"allow-public-without-auth", 0, 0, 'P'},
      {"auth-timeout", 1, 0, 'a'}, {0, 0, 0, 0}};
  server_cfg_t cfg;
  uint64_t v;
  int o, http_given = 0;
  server_cfg_defaults(&cfg);
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
    case 'l': {
      const char *colon = strrchr(optarg, ':');
      if (!colon || colon == optarg || (size_t)(colon - optarg) >= sizeof(cfg.host)) {
        fprintf(stderr, "gearboxd: --listen wants HOST:PORT, not '%s'\n", optarg);
        return 2;
      }
      const char *h = optarg;
      size_t hl = (size_t)(colon - optarg);
      if (h[0] == '[' && hl > 1 && h[hl - 1] == ']') { h++; hl -= 2; } /* [::1]:7411 */
      memcpy(cfg.host, h, hl);
      cfg.host[hl] = 0;
      if (parse_u64("--listen port", colon + 1, 0, 65535, &v)) return 2;
      cfg.port = (int)v;
      break;
    }
    case 'H': {
      http_given = 1;
      if (!strcmp(optarg, "off")) {
        cfg.http_port = -1;
        break;
      }
      const char *colon = strrchr(optarg, ':');
      if (!colon || colon == optarg || (size_t)(colon - optarg) >= sizeof(cfg.http_host)) {
        fprintf(stderr, "gearboxd: --http wants HOST:PORT or off, not '%s'\n", optarg);
        return 2;
      }
      const char *h = optarg;
      size_t hl = (size_t)(colon - optarg);
      if (h[0] == '[' && hl > 1 && h[hl - 1] == ']') { h++; hl -= 2; }
      memcpy(cfg.http_host, h, hl);
      cfg.http_host[hl] = 0;
      if (parse_u64("--http port", colon + 1, 0, 65535, &v)) return 2;
      cfg.http_port = (int)v;
      break;
    }
    case 'T':
      cfg.test_endpoints = 1;
      break;
    case 'd':
      if (strlen(optarg) >= sizeof(cfg.data_dir)) {
        fprintf(stderr, "gearboxd: --data path too long\n");
        return 2;
      }
      snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", optarg);
      break;
    case 's':
      if (!strcmp(optarg, "always")) cfg.policy = COMMIT_ALWAYS;
      else if (!strcmp(optarg, "none")) cfg.policy = COMMIT_NONE;
      else if (!strncmp(optarg, "interval:", 9)) {
        if (parse_u64("--sync interval", optarg + 9, 1, 60000, &v)) return 2;
        cfg.policy = COMMIT_INTERVAL;
        cfg.interval_ms = (unsigned)v;
      } else {
        fprintf(stderr, "gearboxd: --sync wants always, interval:MS or none, not '%s'\n", optarg);
        return 2;
      }
      break;
    case 'F':
      /* the frame must hold a full batch: 1 MiB of payload plus overhead */
      if (parse_u64("--max-frame", optarg, GBX_MAX_BATCH_BYTES + 64 * 1024, GBX_HARD_MAX_FRAME, &v)) return 2;
      cfg.max_frame = (uint32_t)v;
      break;
    case 'C':
      if (parse_u64("--max-conns", optarg, 1, 1000000, &v)) return 2;
      cfg.max_conns = (uint32_t)v;
      break;
    case 'W':
      if (parse_u64("--max-waiters", optarg, 1, 100000, &v)) return 2;
      cfg.max_waiters = (uint32_t)v;
      break;
    case 'O':
      /* at least one maximal receive reply, so a healthy consumer is never cut off */
      if (parse_u64("--max-outbuf", optarg, 2 * (uint64_t)GBX_HARD_MAX_FRAME, UINT64_MAX / 2, &v)) return 2;
      cfg.max_outbuf = v;
      break;
    case 'B':
      if (parse_u64("--max-bytes", optarg, 0, UINT64_MAX / 2, &v)) return 2;
      cfg.max_bytes = v;
      break;
    case 'c':
      if (parse_u64("--body-cache", optarg, 0, UINT64_MAX / 2, &v)) return 2;
      cfg.body_cache = v;
      break;
    case 'v':
      if ((o = log_parse_level(optarg)) < 0) {
        fprintf(stderr, "gearboxd: --log-level wants debug, info, warn or error\n");
        return 2;
      }
      log_level = o;
      break;
    case 'M':
      if (parse_u64("--min-free", optarg, 0, UINT64_MAX / 2, &v)) return 2;
      cfg.min_free = v;
      break;
    case 'S':
      if (parse_u64("--slow-timeout", optarg, 100, 3600000, &v)) return 2;
      cfg.slow_ms = (unsigned)v;
      break;
    case 'R':
    case 'A':
    case 'U': {
      char *dst = o == 'R' ? cfg.region : o == 'A' ? cfg.account : cfg.public_url;
      size_t cap = o == 'R' ? sizeof(cfg.region) : o == 'A' ? sizeof(cfg.account) : sizeof(cfg.public_url);
      if (strlen(optarg) >= cap || !optarg[0]) {
        fprintf(stderr, "gearboxd: %s must be 1-%zu characters\n", o == 'R' ? "--region" : o == 'A' ? "--account-id" : "--public-url", cap - 1);
        return 2;
      }
      snprintf(dst, cap, "%s", optarg);
      break;
    }
    case 'K':
      if (!optarg[0] || strlen(optarg) >= sizeof(cfg.credentials)) {
        fprintf(stderr, "gearboxd: --credentials wants a file path\n");
        return 2;
      }
      snprintf(cfg.credentials, sizeof(cfg.credentials), "%s", optarg);
      break;
    case 'P':
      cfg.allow_public_noauth = 1;
      break;
    case 'a':
      if (parse_u64("--auth-timeout", optarg, 100, 600000, &v)) return 2;
      cfg.auth_timeout_ms = (unsigned)v;
      break;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  /* a server whose port is picked (--listen HOST:0, as tests do) picks its
   * HTTP port too, so such servers never collide on the default */
  if (!http_given && cfg.port == 0) cfg.http_port = 0;
  if (optind < argc) {
    fprintf(stderr, "gearboxd: unexpected argument '%s'\n", argv[optind]);
    return 2;
  }
  uv_loop_t *loop = uv_default_loop();
  server_t s;
  if (server_start(&s, &cfg, loop) != 0) {
    server_abort_start(&s);
    return 1;
  }
  return server_run(&s);
}
