/* srvproc.c - see srvproc.h. */
#define _GNU_SOURCE
#include "srvproc.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The ready line holds the data dir path and a few words. */
#define READY_LINE_MAX (PATH_MAX + 256)
/* How often a wait for an exit checks the child. */
#define REAP_POLL_MS 2
/* Room for argv: binary, --listen X, --data X, the extra args, NULL. */
#define ARGV_MAX (8 + SRV_MAX_ARGS)
/* Room for envp additions: LD_PRELOAD plus cfg->env. */
#define ENV_ADD_MAX (2 + SRV_MAX_ENV)

struct srv {
  char *binary, *data_dir, *log_path;
  char *args[SRV_MAX_ARGS + 1];
  char *env[SRV_MAX_ENV + 1];
  char preload[4 * PATH_MAX]; /* the LD_PRELOAD value, "" for none */
  int ready_timeout_ms;
  pid_t pid;
  int out_fd;
  _Atomic uint16_t port;
  _Atomic uint16_t http_port; /* 0: the run has no HTTP face */
  unsigned starts;
  off_t log_start;
  char err[1024];
};

static void set_err(srv_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(srv_t *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->err, sizeof s->err, fmt, ap);
  va_end(ap);
}

int64_t srv_now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

void srv_sleep_ms(unsigned ms) {
  struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&t, &t) != 0 && errno == EINTR) {
  }
}

static char *dup_or_null(const char *s) {
  return s ? strdup(s) : NULL;
}

int srv_asan_runtime(const char *binary, char *out, size_t cap) {
  char cmd[PATH_MAX + 32];
  if (snprintf(cmd, sizeof cmd, "ldd '%s' 2>/dev/null", binary) >= (int)sizeof cmd)
    return -1;
  FILE *p = popen(cmd, "r");
  if (!p)
    return -1;
  char line[PATH_MAX + 128];
  int found = 0;
  while (fgets(line, sizeof line, p)) {
    /* "\tlibasan.so.8 => /lib/x86_64-linux-gnu/libasan.so.8 (0x...)" */
    if (!strstr(line, "libasan.so"))
      continue;
    char *arrow = strstr(line, "=> ");
    if (!arrow)
      continue;
    char *path = arrow + 3;
    path[strcspn(path, " \t\n")] = '\0';
    if (*path == '/' && strlen(path) < cap) {
      strcpy(out, path);
      found = 1;
    }
  }
  int st = pclose(p);
  if (st == -1)
    return -1;
  return found;
}

srv_t *srv_new(const srv_cfg_t *cfg) {
  srv_t *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->pid = -1;
  s->out_fd = -1;
  s->ready_timeout_ms = cfg->ready_timeout_ms > 0 ? cfg->ready_timeout_ms : SRV_READY_TIMEOUT_MS;
  s->binary = dup_or_null(cfg->binary);
  s->data_dir = dup_or_null(cfg->data_dir);
  s->log_path = dup_or_null(cfg->log_path);
  if (!s->binary || !s->data_dir || !s->log_path)
    goto fail;
  for (int i = 0; i < SRV_MAX_ARGS && cfg->args[i]; i++)
    if (!(s->args[i] = strdup(cfg->args[i])))
      goto fail;
  for (int i = 0; i < SRV_MAX_ENV && cfg->env[i]; i++)
    if (!(s->env[i] = strdup(cfg->env[i])))
      goto fail;
  if (cfg->preload[0]) {
    /* Under gcc's ASan the runtime must be the first library loaded, or it
     * refuses to start ("ASan runtime does not come first"). */
    char asan[PATH_MAX];
    int a = srv_asan_runtime(s->binary, asan, sizeof asan);
    size_t used = 0;
    if (a == 1)
      used += (size_t)snprintf(s->preload, sizeof s->preload, "%s", asan);
    for (int i = 0; i < SRV_MAX_PRELOAD && cfg->preload[i]; i++) {
      int n = snprintf(s->preload + used, sizeof s->preload - used, "%s%s", used ? ":" : "",
                       cfg->preload[i]);
      if (n < 0 || (size_t)n >= sizeof s->preload - used)
        goto fail;
      used += (size_t)n;
    }
  }
  return s;
fail:
  srv_free(s);
  return NULL;
}

static int reap(pid_t pid, int *status, int timeout_ms) {
  int64_t deadline = srv_now_us() + (int64_t)timeout_ms * 1000;
  for (;;) {
    pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid)
      return 1;
    if (r < 0 && errno != EINTR) {
      *status = -1;
      return 1;
    }
    if (srv_now_us() >= deadline)
      return 0;
    srv_sleep_ms(REAP_POLL_MS);
  }
}

static int status_code(int st) {
  if (st == -1)
    return -1;
  if (WIFEXITED(st))
    return WEXITSTATUS(st);
  if (WIFSIGNALED(st))
    return 128 + WTERMSIG(st);
  return -1;
}

static void run_ended(srv_t *s) {
  s->pid = -1;
  atomic_store(&s->port, 0);
  atomic_store(&s->http_port, 0);
  if (s->out_fd >= 0)
    close(s->out_fd);
  s->out_fd = -1;
}

void srv_free(srv_t *s) {
  if (!s)
    return;
  if (s->pid > 0) {
    int st;
    kill(s->pid, SIGKILL);
    reap(s->pid, &st, SRV_STOP_TIMEOUT_MS);
  }
  run_ended(s);
  free(s->binary);
  free(s->data_dir);
  free(s->log_path);
  for (int i = 0; i < SRV_MAX_ARGS; i++)
    free(s->args[i]);
  for (int i = 0; i < SRV_MAX_ENV; i++)
    free(s->env[i]);
  free(s);
}

/* The HTTP face's port in a ready line (" http=N"), or 0. */
static uint16_t parse_http_port(const char *line) {
  const char *p = strstr(line, " http=");
  if (!p)
    return 0;
  char *end;
  unsigned long v = strtoul(p + 6, &end, 10);
  return end == p + 6 || v > 65535 ? 0 : (uint16_t)v;
}

static int parse_ready(const char *line, uint16_t *port) {
  static const char prefix[] = "gearboxd ready ";
  if (strncmp(line, prefix, sizeof prefix - 1) != 0)
    return 0;
  const char *p = strstr(line, " port=");
  if (!p)
    return 0;
  char *end;
  unsigned long v = strtoul(p + 6, &end, 10);
  if (end == p + 6 || v == 0 || v > 65535)
    return 0;
  *port = (uint16_t)v;
  return 1;
}

/* Reads the current run's stderr (from log_start) into out[0..cap). */
static void read_run_log(const srv_t *s, char *out, size_t cap) {
  if (!cap)
    return;
  out[0] = '\0';
  int fd = open(s->log_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  struct stat st;
  if (fstat(fd, &st) == 0) {
    off_t from = s->log_start;
    if (st.st_size - from > (off_t)cap - 1)
      from = st.st_size - ((off_t)cap - 1);
    ssize_t n = pread(fd, out, cap - 1, from);
    out[n > 0 ? n : 0] = '\0';
  }
  close(fd);
}

/* 1 if the "NAME=value" strings a and b set the same variable. */
static int same_name(const char *a, const char *b) {
  size_t n = strcspn(b, "=");
  return strncmp(a, b, n) == 0 && a[n] == '=';
}

/* Spawns the server. Returns 0 once ready, 1 if it exited first (*status
 * set), -1 on a harness error or a hang. With kill_after_ms >= 0 it does
 * not wait for the ready line: it SIGKILLs the server that long after the
 * exec and returns 2 (or 1 if it had exited on its own). */
static int spawn(srv_t *s, int *status, int kill_after_ms) {
  char *argv[ARGV_MAX];
  size_t argc = 0;
  int out[2] = {-1, -1}, logfd = -1, nullfd = -1;
  char line[READY_LINE_MAX];
  size_t len = 0;
  *status = -1;
  if (s->pid > 0) {
    set_err(s, "srv_start: the server is already running (pid %d)", (int)s->pid);
    return -1;
  }
  argv[argc++] = s->binary;
  argv[argc++] = "--listen";
  argv[argc++] = "127.0.0.1:0";
  argv[argc++] = "--data";
  argv[argc++] = s->data_dir;
  for (int i = 0; i < SRV_MAX_ARGS && s->args[i]; i++)
    argv[argc++] = s->args[i];
  argv[argc] = NULL;

  /* The child's environment: ours, minus LD_PRELOAD, plus the additions. */
  extern char **environ;
  size_t nenv = 0;
  while (environ[nenv])
    nenv++;
  char **envp = calloc(nenv + ENV_ADD_MAX + 1, sizeof *envp);
  char preload_var[sizeof s->preload + 16];
  if (!envp) {
    set_err(s, "out of memory");
    return -1;
  }
  size_t ne = 0;
  for (size_t i = 0; i < nenv; i++) {
    int drop = strncmp(environ[i], "LD_PRELOAD=", 11) == 0;
    for (int k = 0; !drop && k < SRV_MAX_ENV && s->env[k]; k++)
      drop = same_name(environ[i], s->env[k]);
    if (!drop)
      envp[ne++] = environ[i];
  }
  if (s->preload[0]) {
    snprintf(preload_var, sizeof preload_var, "LD_PRELOAD=%s", s->preload);
    envp[ne++] = preload_var;
  }
  for (int i = 0; i < SRV_MAX_ENV && s->env[i]; i++)
    envp[ne++] = s->env[i];
  envp[ne] = NULL;

  if (pipe2(out, O_CLOEXEC) != 0) {
    set_err(s, "pipe: %s", strerror(errno));
    goto fail;
  }
  logfd = open(s->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (logfd < 0 || nullfd < 0) {
    set_err(s, "open %s: %s", s->log_path, strerror(errno));
    goto fail;
  }
  struct stat st;
  s->log_start = fstat(logfd, &st) == 0 ? st.st_size : 0;
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    set_err(s, "fork: %s", strerror(errno));
    goto fail;
  }
  if (pid == 0) {
    /* async-signal-safe calls only until exec; the server dies with us */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(127);
    dup2(nullfd, 0);
    dup2(out[1], 1);
    dup2(logfd, 2);
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(argv[0], argv, envp);
    static const char msg[] = "srvproc: exec of gearboxd failed\n";
    if (write(2, msg, sizeof msg - 1) < 0) {
    }
    _exit(127);
  }
  close(out[1]);
  out[1] = -1;
  close(logfd);
  logfd = -1;
  close(nullfd);
  nullfd = -1;
  free(envp);
  envp = NULL;

  if (kill_after_ms >= 0) {
    srv_sleep_ms((unsigned)kill_after_ms);
    int r = 2;
    if (reap(pid, status, 0)) {
      r = 1;
    } else {
      kill(pid, SIGKILL);
      reap(pid, status, SRV_STOP_TIMEOUT_MS);
    }
    close(out[0]);
    return r;
  }
  int64_t deadline = srv_now_us() + (int64_t)s->ready_timeout_ms * 1000;
  for (;;) {
    int left = (int)((deadline - srv_now_us()) / 1000);
    if (left < 0)
      left = 0;
    struct pollfd pfd = {.fd = out[0], .events = POLLIN};
    int pr = poll(&pfd, 1, left);
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr == 0) {
      kill(pid, SIGKILL);
      reap(pid, status, SRV_STOP_TIMEOUT_MS);
      set_err(s, "gearboxd printed no ready line within %d ms", s->ready_timeout_ms);
      close(out[0]);
      return -1;
    }
    ssize_t n = read(out[0], line + len, sizeof line - 1 - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      if (!reap(pid, status, SRV_STOP_TIMEOUT_MS)) {
        kill(pid, SIGKILL);
        reap(pid, status, SRV_STOP_TIMEOUT_MS);
      }
      close(out[0]);
      return 1;
    }
    len += (size_t)n;
    line[len] = '\0';
    char *nl;
    while ((nl = memchr(line, '\n', len)) != NULL) {
      *nl = '\0';
      uint16_t port;
      if (parse_ready(line, &port)) {
        s->pid = pid;
        s->out_fd = out[0];
        atomic_store(&s->port, port);
        atomic_store(&s->http_port, parse_http_port(line));
        s->starts++;
        return 0;
      }
      size_t used = (size_t)(nl - line) + 1;
      memmove(line, nl + 1, len - used);
      len -= used;
      line[len] = '\0';
    }
    if (len == sizeof line - 1)
      len = 0; /* a junk line: drop it */
  }
fail:
  free(envp);
  if (out[0] >= 0)
    close(out[0]);
  if (out[1] >= 0)
    close(out[1]);
  if (logfd >= 0)
    close(logfd);
  if (nullfd >= 0)
    close(nullfd);
  return -1;
}

int srv_start(srv_t *s) {
  int st;
  int r = spawn(s, &st, -1);
  if (r == 1) {
    char tail[2048];
    read_run_log(s, tail, sizeof tail);
    set_err(s, "gearboxd exited before its ready line (exit code %d); stderr:\n%s", status_code(st),
            tail);
    return -1;
  }
  return r;
}

int srv_try_start(srv_t *s, int *code, char *out, size_t cap) {
  int st;
  int r = spawn(s, &st, -1);
  if (r == 1) {
    *code = status_code(st);
    read_run_log(s, out, cap);
  }
  return r == 1 ? 1 : r;
}

int srv_start_killed(srv_t *s, unsigned after_ms) {
  int st;
  int r = spawn(s, &st, (int)after_ms);
  if (r == 1) {
    char tail[2048];
    read_run_log(s, tail, sizeof tail);
    set_err(s, "gearboxd exited on its own %u ms into its start (exit code %d); stderr:\n%s",
            after_ms, status_code(st), tail);
    return -1;
  }
  return r == 2 ? 0 : -1;
}

int srv_kill9(srv_t *s) {
  if (s->pid < 0) {
    set_err(s, "srv_kill9: the server is not running");
    return -1;
  }
  int st;
  if (reap(s->pid, &st, 0)) {
    run_ended(s);
    set_err(s, "gearboxd had died before kill -9 (exit code %d)", status_code(st));
    return -1;
  }
  kill(s->pid, SIGKILL);
  if (!reap(s->pid, &st, SRV_STOP_TIMEOUT_MS)) {
    set_err(s, "gearboxd did not die of SIGKILL");
    return -1;
  }
  run_ended(s);
  if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
    set_err(s, "gearboxd did not die of SIGKILL (exit code %d)", status_code(st));
    return -1;
  }
  return 0;
}

int srv_stop(srv_t *s, int *code) {
  if (s->pid < 0) {
    set_err(s, "srv_stop: the server is not running");
    return -1;
  }
  kill(s->pid, SIGTERM);
  int st;
  if (!reap(s->pid, &st, SRV_STOP_TIMEOUT_MS)) {
    kill(s->pid, SIGKILL);
    reap(s->pid, &st, SRV_STOP_TIMEOUT_MS);
    run_ended(s);
    set_err(s, "gearboxd did not exit within %d ms of SIGTERM", SRV_STOP_TIMEOUT_MS);
    return -1;
  }
  run_ended(s);
  *code = status_code(st);
  return 0;
}

int srv_wait_exit(srv_t *s, int timeout_ms, int *code) {
  int st;
  if (s->pid < 0) {
    set_err(s, "srv_wait_exit: the server is not running");
    return -1;
  }
  if (!reap(s->pid, &st, timeout_ms)) {
    set_err(s, "gearboxd still running after %d ms", timeout_ms);
    return -1;
  }
  run_ended(s);
  *code = status_code(st);
  return 0;
}

int srv_set_env(srv_t *s, const char *name_value) {
  int i = 0;
  while (i < SRV_MAX_ENV && s->env[i] && !same_name(s->env[i], name_value))
    i++;
  if (i == SRV_MAX_ENV) {
    set_err(s, "srv_set_env: more than %d variables", SRV_MAX_ENV);
    return -1;
  }
  char *v = strdup(name_value);
  if (!v) {
    set_err(s, "srv_set_env: out of memory");
    return -1;
  }
  free(s->env[i]);
  s->env[i] = v;
  return 0;
}

int srv_running(srv_t *s) {
  if (s->pid < 0)
    return 0;
  int st;
  if (reap(s->pid, &st, 0)) {
    run_ended(s);
    set_err(s, "gearboxd exited on its own (exit code %d)", status_code(st));
    return 0;
  }
  return 1;
}

uint16_t srv_http_port_now(const srv_t *s) {
  return atomic_load(&((srv_t *)s)->http_port);
}

uint16_t srv_port_now(const srv_t *s) {
  return atomic_load(&((srv_t *)s)->port);
}
unsigned srv_starts(const srv_t *s) {
  return s->starts;
}
pid_t srv_pid(const srv_t *s) {
  return s->pid;
}
const char *srv_error(const srv_t *s) {
  return s->err;
}
const char *srv_preload_value(const srv_t *s) {
  return s->preload;
}

const char *srv_sanitizer_report(const srv_t *s, char *buf, size_t cap) {
  static const char *const markers[] = {
      "ERROR: AddressSanitizer",  "ERROR: LeakSanitizer",     "runtime error:",
      "WARNING: ThreadSanitizer", "WARNING: MemorySanitizer",
  };
  FILE *f = fopen(s->log_path, "re");
  if (!f)
    return NULL;
  const char *found = NULL;
  char *line = NULL;
  size_t lcap = 0;
  while (!found && getline(&line, &lcap, f) >= 0) {
    for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++) {
      if (strstr(line, markers[i]) && cap > 0) {
        line[strcspn(line, "\n")] = '\0';
        snprintf(buf, cap, "%s", line);
        found = buf;
        break;
      }
    }
  }
  free(line);
  fclose(f);
  return found;
}

int srv_connect_port(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}
