/* testserver.c - runs the real gearboxd for integration tests: temp dir,
 * spawn, ready line, stop/kill/restart, sanitizer checks, raw sockets and the
 * CLI. See testserver.h for the contract and the failure policy. */
#define _GNU_SOURCE
#include "testserver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#ifndef GBX_GEARBOXD_PATH
#define GBX_GEARBOXD_PATH "gearboxd"
#endif
#ifndef GBX_CLI_PATH
#define GBX_CLI_PATH ""
#endif

/* The ready line is short ("gearboxd ready port=N data=DIR sync=P"); DIR is
 * at most PATH_MAX, so one PATH_MAX plus room for the rest holds any line. */
#define READY_LINE_MAX (PATH_MAX + 256)
/* Bytes of log printed when a test fails: enough for a sanitizer report
 * with its stack traces, short enough to read in ctest output. */
#define LOG_TAIL_BYTES (16 * 1024)
/* Bytes of a failed start's stderr carried in its error message. */
#define ERR_TAIL_BYTES 1024
/* How often a wait for a child's exit checks it: short against any timeout,
 * long enough not to spin a core. */
#define REAP_POLL_NS (2 * 1000 * 1000)

/* The temp dir's path leaves room below PATH_MAX for the names the harness
 * and the server put inside it (data/, gearboxd.log, RocksDB's files). */
#define DIR_MAX (PATH_MAX - 256)

struct gbx_testserver {
  char dir[DIR_MAX];
  char data_dir[PATH_MAX];
  char log_path[PATH_MAX];
  char *extra_args; /* owned; "" when none */
  pid_t pid;        /* -1 when not running */
  int out_fd;       /* read end of the server's stdout, -1 when not running */
  uint16_t port;
  off_t log_start;             /* log size when the current (or last) run started */
  int have_status;             /* last_status is set */
  int last_status;             /* waitpid status of the last run */
  struct gbx_testserver *next; /* registry of live servers */
};

static gbx_testserver_t *registry;
static int atexit_done;

/* ---- small helpers ------------------------------------------------------ */

__attribute__((noreturn, format(printf, 1, 2))) static void ts_fail(const char *fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fail_msg("%s", msg);
  abort(); /* fail_msg does not return inside a cmocka test */
}

static int64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int remaining_ms(int64_t deadline) {
  int64_t r = deadline - now_ms();
  return r < 0 ? 0 : (int)r;
}

/* Exit code of a waitpid status, 128+signal for a signal (as shells do). */
static int status_code(int status) {
  if (status == -1)
    return -1;
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return -1;
}

static void describe_status(int status, char *buf, size_t cap) {
  if (status == -1)
    snprintf(buf, cap, "could not be reaped");
  else if (WIFEXITED(status))
    snprintf(buf, cap, "exit status %d", WEXITSTATUS(status));
  else if (WIFSIGNALED(status))
    snprintf(buf, cap, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
  else
    snprintf(buf, cap, "wait status 0x%x", status);
}

/* Splits s on spaces into a NULL-terminated vector appended to *argv (of
 * *argc entries, capacity *cap). '...' and "..." quote words holding spaces.
 * Returns 0, or -1 on allocation failure or an unterminated quote. */
static int split_words(const char *s, char ***argv, size_t *argc, size_t *cap) {
  while (s && *s) {
    while (*s == ' ')
      s++;
    if (!*s)
      break;
    size_t n = strlen(s);
    char *w = malloc(n + 1);
    if (!w)
      return -1;
    size_t wl = 0;
    while (*s && *s != ' ') {
      if (*s == '\'' || *s == '"') {
        char q = *s++;
        while (*s && *s != q)
          w[wl++] = *s++;
        if (*s != q) {
          free(w);
          return -1;
        }
        s++;
      } else {
        w[wl++] = *s++;
      }
    }
    w[wl] = '\0';
    if (*argc + 2 > *cap) {
      size_t ncap = *cap ? *cap * 2 : 16;
      char **nv = realloc(*argv, ncap * sizeof *nv);
      if (!nv) {
        free(w);
        return -1;
      }
      *argv = nv;
      *cap = ncap;
    }
    (*argv)[(*argc)++] = w;
    (*argv)[*argc] = NULL;
  }
  return 0;
}

/* Appends a copy of w to the vector (see split_words). */
static int push_word(char ***argv, size_t *argc, size_t *cap, const char *w) {
  if (*argc + 2 > *cap) {
    size_t ncap = *cap ? *cap * 2 : 16;
    char **nv = realloc(*argv, ncap * sizeof *nv);
    if (!nv)
      return -1;
    *argv = nv;
    *cap = ncap;
  }
  char *c = strdup(w);
  if (!c)
    return -1;
  (*argv)[(*argc)++] = c;
  (*argv)[*argc] = NULL;
  return 0;
}

static void free_words(char **argv, size_t argc) {
  for (size_t i = 0; i < argc; i++)
    free(argv[i]);
  free(argv);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  if (remove(path) != 0 && errno != ENOENT)
    fprintf(stderr, "testserver: cannot remove %s: %s\n", path, strerror(errno));
  return 0;
}

static void rm_rf(const char *dir) {
  if (getenv("GBX_TEST_KEEP") && *getenv("GBX_TEST_KEEP")) {
    fprintf(stderr, "testserver: keeping %s (GBX_TEST_KEEP)\n", dir);
    return;
  }
  nftw(dir, rm_entry, 32, FTW_DEPTH | FTW_PHYS);
}

/* Reads up to cap-1 bytes of the log from max(from, end-cap+1) into buf. */
static void read_log_tail(const gbx_testserver_t *ts, off_t from, char *buf, size_t cap) {
  buf[0] = '\0';
  int fd = open(ts->log_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  struct stat st;
  if (fstat(fd, &st) == 0) {
    off_t start = from;
    if (st.st_size - start > (off_t)(cap - 1))
      start = st.st_size - (off_t)(cap - 1);
    ssize_t n = pread(fd, buf, cap - 1, start < 0 ? 0 : start);
    buf[n > 0 ? n : 0] = '\0';
  }
  close(fd);
}

/* Prints the current run's log tail to stderr, so ctest shows it. */
static void print_log_tail(const gbx_testserver_t *ts, const char *why) {
  static char tail[LOG_TAIL_BYTES];
  read_log_tail(ts, ts->log_start, tail, sizeof tail);
  fprintf(stderr, "---- %s; tail of %s ----\n%s\n---- end of log ----\n", why, ts->log_path, tail);
}

/* Waits up to timeout_ms for pid to exit. Returns 1 with *status set, 0 on
 * timeout. */
static int reap(pid_t pid, int *status, int timeout_ms) {
  int64_t deadline = now_ms() + timeout_ms;
  for (;;) {
    pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid)
      return 1;
    if (r < 0 && errno != EINTR) {
      *status = -1;
      return 1; /* not our child any more: nothing left to wait for */
    }
    if (now_ms() >= deadline)
      return 0;
    struct timespec ts = {0, REAP_POLL_NS};
    nanosleep(&ts, NULL);
  }
}

static void kill_and_reap(pid_t pid, int *status) {
  kill(pid, SIGKILL);
  if (!reap(pid, status, TS_TIMEOUT_MS))
    *status = -1;
}

/* Records the end of the current run. */
static void run_ended(gbx_testserver_t *ts, int status) {
  ts->pid = -1;
  ts->have_status = 1;
  ts->last_status = status;
  if (ts->out_fd >= 0) {
    close(ts->out_fd);
    ts->out_fd = -1;
  }
}

/* Fails the test if the current run's log holds a sanitizer report. */
static void check_sanitizers(gbx_testserver_t *ts, const char *when) {
  char line[512];
  if (ts_sanitizer_report(ts, line, sizeof line)) {
    print_log_tail(ts, "sanitizer report");
    ts_fail("gearboxd (%s) logged a sanitizer report %s: %s", ts->dir, when, line);
  }
}

static void cleanup_at_exit(void) {
  while (registry) {
    gbx_testserver_t *ts = registry;
    registry = ts->next;
    if (ts->pid > 0) {
      int status;
      print_log_tail(ts, "gearboxd still running at exit (the test did not stop it)");
      kill_and_reap(ts->pid, &status);
    }
    if (ts->out_fd >= 0)
      close(ts->out_fd);
    rm_rf(ts->dir);
    free(ts->extra_args);
    free(ts);
  }
}

/* ---- spawning ----------------------------------------------------------- */

/* Parses "gearboxd ready port=<N> ..." into *port; 1 if line is one. */
static int parse_ready(const char *line, uint16_t *port) {
  static const char prefix[] = "gearboxd ready ";
  if (strncmp(line, prefix, sizeof prefix - 1) != 0)
    return 0;
  const char *p = strstr(line, " port=");
  if (!p)
    return 0;
  p += 6;
  char *end;
  errno = 0;
  unsigned long v = strtoul(p, &end, 10);
  if (errno || end == p || (*end != ' ' && *end != '\0') || v == 0 || v > 65535)
    return 0;
  *port = (uint16_t)v;
  return 1;
}

/* Starts gearboxd on ts's dir and waits for its ready line. Returns 0, or -1
 * with a reason (and stderr tail) in err, the child reaped. */
static int spawn_server(gbx_testserver_t *ts, char *err, size_t errcap) {
  char **argv = NULL;
  size_t argc = 0, cap = 0;
  int out[2] = {-1, -1}, logfd = -1, nullfd = -1;
  pid_t pid = -1;
  char line[READY_LINE_MAX];
  size_t line_len = 0;

  if (split_words(getenv("GBX_TEST_WRAPPER"), &argv, &argc, &cap) != 0 ||
      push_word(&argv, &argc, &cap, GBX_GEARBOXD_PATH) != 0 ||
      push_word(&argv, &argc, &cap, "--listen") != 0 ||
      push_word(&argv, &argc, &cap, "127.0.0.1:0") != 0 ||
      push_word(&argv, &argc, &cap, "--data") != 0 ||
      push_word(&argv, &argc, &cap, ts->data_dir) != 0 ||
      split_words(ts->extra_args, &argv, &argc, &cap) != 0) {
    snprintf(err, errcap, "bad arguments (unterminated quote?) or out of memory: '%s'",
             ts->extra_args);
    goto fail;
  }
  if (pipe2(out, O_CLOEXEC) != 0) {
    snprintf(err, errcap, "pipe: %s", strerror(errno));
    goto fail;
  }
  logfd = open(ts->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (logfd < 0 || nullfd < 0) {
    snprintf(err, errcap, "open %s: %s", ts->log_path, strerror(errno));
    goto fail;
  }
  struct stat st;
  ts->log_start = fstat(logfd, &st) == 0 ? st.st_size : 0;

  /* Built before fork: the child may only make async-signal-safe calls. */
  char exec_failed[PATH_MAX + 64];
  int exec_failed_len =
      snprintf(exec_failed, sizeof exec_failed, "testserver: cannot exec %s\n", argv[0]);
  if (exec_failed_len < 0)
    exec_failed_len = 0;
  else if ((size_t)exec_failed_len >= sizeof exec_failed)
    exec_failed_len = (int)sizeof exec_failed - 1; /* truncated, still says why */

  pid_t parent = getpid();
  pid = fork();
  if (pid < 0) {
    snprintf(err, errcap, "fork: %s", strerror(errno));
    goto fail;
  }
  if (pid == 0) {
    /* Child: only async-signal-safe calls until exec. The server dies with
     * the test process, so a crashed test leaves no server behind. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(127);
    dup2(nullfd, 0);
    dup2(out[1], 1);
    dup2(logfd, 2);
    signal(SIGPIPE, SIG_DFL); /* the test ignores it; exec keeps ignored signals */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execvp(argv[0], argv);
    if (write(2, exec_failed, (size_t)exec_failed_len) < 0) {
    }
    _exit(127);
  }
  close(out[1]);
  out[1] = -1;
  close(logfd);
  logfd = -1;
  close(nullfd);
  nullfd = -1;

  /* Read stdout until the ready line, EOF (the server exited) or timeout. */
  int64_t deadline = now_ms() + TS_TIMEOUT_MS;
  for (;;) {
    struct pollfd pfd = {.fd = out[0], .events = POLLIN};
    int pr = poll(&pfd, 1, remaining_ms(deadline));
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr == 0) {
      int status;
      kill_and_reap(pid, &status);
      pid = -1;
      char tail[ERR_TAIL_BYTES];
      read_log_tail(ts, ts->log_start, tail, sizeof tail);
      snprintf(err, errcap, "no ready line within %d ms; stderr tail:\n%s", TS_TIMEOUT_MS, tail);
      goto fail;
    }
    ssize_t n = read(out[0], line + line_len, sizeof line - 1 - line_len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      int status = -1;
      if (!reap(pid, &status, TS_TIMEOUT_MS))
        kill_and_reap(pid, &status);
      pid = -1;
      char how[128], tail[ERR_TAIL_BYTES];
      describe_status(status, how, sizeof how);
      read_log_tail(ts, ts->log_start, tail, sizeof tail);
      snprintf(err, errcap, "gearboxd exited before its ready line (%s); stderr tail:\n%s", how,
               tail);
      ts->have_status = 1;
      ts->last_status = status;
      goto fail;
    }
    line_len += (size_t)n;
    line[line_len] = '\0';
    char *nl;
    while ((nl = memchr(line, '\n', line_len)) != NULL) {
      *nl = '\0';
      uint16_t port;
      if (parse_ready(line, &port)) {
        ts->port = port;
        ts->pid = pid;
        ts->out_fd = out[0];
        ts->have_status = 0;
        free_words(argv, argc);
        return 0;
      }
      size_t used = (size_t)(nl - line) + 1;
      memmove(line, nl + 1, line_len - used);
      line_len -= used;
      line[line_len] = '\0';
    }
    if (line_len == sizeof line - 1) {
      int status;
      kill_and_reap(pid, &status);
      pid = -1;
      snprintf(err, errcap, "gearboxd wrote a %zu-byte line without a newline on stdout", line_len);
      goto fail;
    }
  }

fail:
  if (pid > 0) {
    int status;
    kill_and_reap(pid, &status);
  }
  if (out[0] >= 0)
    close(out[0]);
  if (out[1] >= 0)
    close(out[1]);
  if (logfd >= 0)
    close(logfd);
  if (nullfd >= 0)
    close(nullfd);
  free_words(argv, argc);
  return -1;
}

/* ---- lifecycle ---------------------------------------------------------- */

gbx_testserver_t *ts_try_start(const char *extra_args, char *err, size_t errcap) {
  gbx_testserver_t *ts = NULL;
  if (!atexit_done) {
    /* A test writing to a connection the server closed must see EPIPE, not
     * die of SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    atexit(cleanup_at_exit);
    atexit_done = 1;
  }
  ts = calloc(1, sizeof *ts);
  if (!ts) {
    snprintf(err, errcap, "out of memory");
    return NULL;
  }
  ts->pid = -1;
  ts->out_fd = -1;
  ts->extra_args = strdup(extra_args ? extra_args : "");
  if (!ts->extra_args) {
    snprintf(err, errcap, "out of memory");
    goto fail;
  }
  const char *tmp = getenv("TMPDIR");
  if (!tmp || !*tmp)
    tmp = "/tmp";
  int n = snprintf(ts->dir, sizeof ts->dir, "%s/gbx-test-XXXXXX", tmp);
  if (n < 0 || (size_t)n >= sizeof ts->dir) {
    snprintf(err, errcap, "TMPDIR is too long");
    goto fail;
  }
  if (!mkdtemp(ts->dir)) {
    snprintf(err, errcap, "mkdtemp %s: %s", ts->dir, strerror(errno));
    ts->dir[0] = '\0';
    goto fail;
  }
  snprintf(ts->data_dir, sizeof ts->data_dir, "%s/data", ts->dir);
  snprintf(ts->log_path, sizeof ts->log_path, "%s/gearboxd.log", ts->dir);
  if (spawn_server(ts, err, errcap) != 0)
    goto fail;
  ts->next = registry;
  registry = ts;
  return ts;

fail:
  if (ts->dir[0])
    rm_rf(ts->dir);
  free(ts->extra_args);
  free(ts);
  return NULL;
}

gbx_testserver_t *ts_start(const char *extra_args) {
  char err[ERR_TAIL_BYTES + 256];
  gbx_testserver_t *ts = ts_try_start(extra_args, err, sizeof err);
  if (!ts)
    ts_fail("cannot start gearboxd %s: %s", extra_args ? extra_args : "", err);
  return ts;
}

int ts_stop_with(gbx_testserver_t *ts, int sig) {
  if (ts->pid < 0)
    return -1;
  char why[64];
  snprintf(why, sizeof why, "after signal %d", sig);
  if (kill(ts->pid, sig) != 0)
    ts_fail("kill(%d, %d): %s", (int)ts->pid, sig, strerror(errno));
  int status;
  if (!reap(ts->pid, &status, TS_TIMEOUT_MS)) {
    kill_and_reap(ts->pid, &status);
    run_ended(ts, status);
    print_log_tail(ts, "gearboxd did not exit");
    ts_fail("gearboxd (%s) did not exit within %d ms of signal %d; killed it", ts->dir,
            TS_TIMEOUT_MS, sig);
  }
  run_ended(ts, status);
  check_sanitizers(ts, why);
  return status_code(status);
}

int ts_stop(gbx_testserver_t *ts) {
  return ts_stop_with(ts, SIGTERM);
}

void ts_assert_clean_exit(gbx_testserver_t *ts) {
  if (ts->pid >= 0)
    ts_fail("ts_assert_clean_exit: gearboxd (%s) is still running", ts->dir);
  if (!ts->have_status)
    ts_fail("ts_assert_clean_exit: gearboxd (%s) has not exited", ts->dir);
  if (ts->last_status == -1 || !WIFEXITED(ts->last_status) || WEXITSTATUS(ts->last_status) != 0) {
    char how[128];
    describe_status(ts->last_status, how, sizeof how);
    print_log_tail(ts, "unclean exit");
    ts_fail("gearboxd (%s) did not exit cleanly: %s", ts->dir, how);
  }
}

void ts_kill9(gbx_testserver_t *ts) {
  if (ts->pid < 0)
    ts_fail("ts_kill9: gearboxd (%s) is not running", ts->dir);
  int status;
  if (reap(ts->pid, &status, 0)) {
    char how[128];
    describe_status(status, how, sizeof how);
    run_ended(ts, status);
    print_log_tail(ts, "gearboxd died before kill -9");
    ts_fail("gearboxd (%s) had already exited before kill -9: %s", ts->dir, how);
  }
  kill_and_reap(ts->pid, &status);
  run_ended(ts, status);
  check_sanitizers(ts, "before kill -9");
  if (status == -1 || !WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
    char how[128];
    describe_status(status, how, sizeof how);
    ts_fail("gearboxd (%s) did not die of SIGKILL: %s", ts->dir, how);
  }
}

void ts_start_again_args(gbx_testserver_t *ts, const char *extra_args) {
  if (ts->pid >= 0)
    ts_fail("ts_start_again: gearboxd (%s) is still running", ts->dir);
  if (extra_args) {
    char *copy = strdup(extra_args);
    if (!copy)
      ts_fail("out of memory");
    free(ts->extra_args);
    ts->extra_args = copy;
  }
  char err[ERR_TAIL_BYTES + 256];
  if (spawn_server(ts, err, sizeof err) != 0)
    ts_fail("cannot start gearboxd again on %s: %s", ts->dir, err);
}

void ts_start_again(gbx_testserver_t *ts) {
  ts_start_again_args(ts, NULL);
}

void ts_restart(gbx_testserver_t *ts) {
  ts_stop(ts);
  ts_assert_clean_exit(ts);
  ts_start_again(ts);
}

void ts_free(gbx_testserver_t *ts) {
  if (!ts)
    return;
  if (ts->pid >= 0) {
    ts_stop(ts);
    ts_assert_clean_exit(ts);
  }
  for (gbx_testserver_t **p = &registry; *p; p = &(*p)->next) {
    if (*p == ts) {
      *p = ts->next;
      break;
    }
  }
  rm_rf(ts->dir);
  free(ts->extra_args);
  free(ts);
}

/* ---- accessors ---------------------------------------------------------- */

uint16_t ts_port(const gbx_testserver_t *ts) {
  return ts->port;
}

const char *ts_data_dir(const gbx_testserver_t *ts) {
  return ts->data_dir;
}

const char *ts_dir(const gbx_testserver_t *ts) {
  return ts->dir;
}

const char *ts_log_path(const gbx_testserver_t *ts) {
  return ts->log_path;
}

pid_t ts_pid(const gbx_testserver_t *ts) {
  return ts->pid;
}

const char *ts_sanitizer_report(const gbx_testserver_t *ts, char *buf, size_t cap) {
  static const char *const markers[] = {
      "ERROR: AddressSanitizer",  "ERROR: LeakSanitizer",     "runtime error:",
      "WARNING: ThreadSanitizer", "WARNING: MemorySanitizer",
  };
  FILE *f = fopen(ts->log_path, "re");
  if (!f)
    return NULL;
  const char *found = NULL;
  char *line = NULL;
  size_t linecap = 0;
  if (fseeko(f, ts->log_start, SEEK_SET) == 0) {
    while (!found && getline(&line, &linecap, f) >= 0) {
      for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++) {
        if (strstr(line, markers[i])) {
          line[strcspn(line, "\n")] = '\0';
          if (cap > 0) {
            snprintf(buf, cap, "%s", line);
            found = buf;
          }
          break;
        }
      }
    }
  }
  free(line);
  fclose(f);
  return found;
}

/* ---- clients ------------------------------------------------------------ */

gbx_client_t *ts_connect(gbx_testserver_t *ts) {
  if (ts->pid < 0)
    ts_fail("ts_connect: gearboxd (%s) is not running", ts->dir);
  gbx_error_t err;
  memset(&err, 0, sizeof err);
  gbx_client_t *c = gbx_connect("127.0.0.1", ts->port, &err);
  if (!c)
    ts_fail("gbx_connect 127.0.0.1:%u: %s (%s)", ts->port, err.message, gbx_errname(err.code));
  gbx_set_timeout(c, TS_TIMEOUT_MS);
  return c;
}

int ts_raw_connect(gbx_testserver_t *ts) {
  if (ts->pid < 0)
    ts_fail("ts_raw_connect: gearboxd (%s) is not running", ts->dir);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    ts_fail("socket: %s", strerror(errno));
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(ts->port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc;
  do {
    rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int e = errno;
    close(fd);
    ts_fail("connect 127.0.0.1:%u: %s", ts->port, strerror(e));
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

int ts_raw_send(int fd, const void *buf, size_t len) {
  const uint8_t *p = buf;
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int ts_raw_send_frame(int fd, const void *payload, uint32_t len) {
  uint8_t hdr[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
  if (ts_raw_send(fd, hdr, sizeof hdr) != 0)
    return -1;
  return len ? ts_raw_send(fd, payload, len) : 0;
}

/* Reads exactly len bytes before deadline. Returns 1, 0 on EOF (errno 0), or
 * -1 on error or timeout (errno ETIMEDOUT). */
static int read_exact(int fd, uint8_t *buf, size_t len, int64_t deadline) {
  while (len > 0) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int pr = poll(&pfd, 1, remaining_ms(deadline));
    if (pr < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    if (pr == 0) {
      errno = ETIMEDOUT;
      return -1;
    }
    ssize_t n = recv(fd, buf, len, 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN)
        continue;
      return -1;
    }
    if (n == 0) {
      errno = 0;
      return 0;
    }
    buf += n;
    len -= (size_t)n;
  }
  return 1;
}

long ts_raw_read_frame(int fd, uint8_t *buf, size_t cap, int timeout_ms) {
  int64_t deadline = now_ms() + timeout_ms;
  uint8_t hdr[4];
  if (read_exact(fd, hdr, sizeof hdr, deadline) != 1)
    return -1;
  uint32_t len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
  if (len > cap) {
    errno = EMSGSIZE;
    return -1;
  }
  if (len > 0 && read_exact(fd, buf, len, deadline) != 1)
    return -1;
  return (long)len;
}

int ts_raw_wait_eof(int fd, int timeout_ms) {
  int64_t deadline = now_ms() + timeout_ms;
  uint8_t sink[4096];
  for (;;) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int pr = poll(&pfd, 1, remaining_ms(deadline));
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr <= 0)
      return 0;
    ssize_t n = recv(fd, sink, sizeof sink, 0);
    if (n == 0)
      return 1;
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN)
        continue;
      return errno == ECONNRESET ? 1 : 0;
    }
  }
}

int ts_cli(gbx_testserver_t *ts, const char *args, char *out, size_t cap) {
  if (GBX_CLI_PATH[0] == '\0')
    ts_fail("ts_cli: the gearbox CLI was not built (no gearbox_cli target)");
  char **argv = NULL;
  size_t argc = 0, vcap = 0;
  char port[16];
  snprintf(port, sizeof port, "%u", ts->port);
  if (push_word(&argv, &argc, &vcap, GBX_CLI_PATH) != 0 ||
      push_word(&argv, &argc, &vcap, "--port") != 0 || push_word(&argv, &argc, &vcap, port) != 0 ||
      split_words(args, &argv, &argc, &vcap) != 0) {
    free_words(argv, argc);
    ts_fail("ts_cli: bad arguments (unterminated quote?) or out of memory: '%s'", args);
  }
  int pipefd[2];
  int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (nullfd < 0 || pipe2(pipefd, O_CLOEXEC) != 0) {
    free_words(argv, argc);
    ts_fail("ts_cli: pipe: %s", strerror(errno));
  }
  fflush(stderr);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    free_words(argv, argc);
    ts_fail("ts_cli: fork: %s", strerror(errno));
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(127);
    dup2(nullfd, 0);
    dup2(pipefd[1], 1);
    signal(SIGPIPE, SIG_DFL);
    execv(argv[0], argv);
    _exit(127);
  }
  close(pipefd[1]);
  close(nullfd);
  free_words(argv, argc);

  size_t used = 0;
  int64_t deadline = now_ms() + TS_CLI_TIMEOUT_MS;
  for (;;) {
    struct pollfd pfd = {.fd = pipefd[0], .events = POLLIN};
    int pr = poll(&pfd, 1, remaining_ms(deadline));
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr == 0) {
      int status;
      close(pipefd[0]);
      kill_and_reap(pid, &status);
      ts_fail("ts_cli: '%s' did not finish within %d ms", args, TS_CLI_TIMEOUT_MS);
    }
    char chunk[4096];
    ssize_t n = read(pipefd[0], chunk, sizeof chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    if (cap > 0 && used < cap - 1) {
      size_t take = (size_t)n < cap - 1 - used ? (size_t)n : cap - 1 - used;
      memcpy(out + used, chunk, take);
      used += take;
    }
  }
  close(pipefd[0]);
  if (cap > 0)
    out[used] = '\0';
  int status;
  if (!reap(pid, &status, remaining_ms(deadline))) {
    kill_and_reap(pid, &status);
    ts_fail("ts_cli: '%s' did not exit within %d ms", args, TS_CLI_TIMEOUT_MS);
  }
  return status_code(status);
}
