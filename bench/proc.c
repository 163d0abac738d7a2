/* proc.c - child server processes (see proc.h). */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "net.h"

/* How often a starting server is polled for a listening port. */
#define PORT_POLL_MS 10

int proc_spawn(proc_t *p, char *const argv[], const char *log_path, char *err, size_t errcap) {
  int pipefd[2] = {-1, -1}, logfd = -1, execpipe[2] = {-1, -1};
  snprintf(p->log, sizeof(p->log), "%s", log_path);
  p->pid = 0;
  p->out_fd = -1;
  logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (logfd < 0) {
    snprintf(err, errcap, "open %s: %s", log_path, strerror(errno));
    goto fail;
  }
  /* execpipe carries an exec failure's errno back; it closes on success. */
  if (pipe2(pipefd, O_CLOEXEC) != 0 || pipe2(execpipe, O_CLOEXEC) != 0) {
    snprintf(err, errcap, "pipe: %s", strerror(errno));
    goto fail;
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    snprintf(err, errcap, "fork: %s", strerror(errno));
    goto fail;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
      _exit(127);
    dup2(pipefd[1], STDOUT_FILENO);
    dup2(logfd, STDERR_FILENO);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0)
      dup2(devnull, STDIN_FILENO);
    execvp(argv[0], argv);
    int e = errno;
    if (write(execpipe[1], &e, sizeof(e)) < 0)
      _exit(127);
    _exit(127);
  }
  close(pipefd[1]);
  pipefd[1] = -1;
  close(execpipe[1]);
  execpipe[1] = -1;
  int e = 0;
  ssize_t r;
  while ((r = read(execpipe[0], &e, sizeof(e))) < 0 && errno == EINTR) {
  }
  if (r == (ssize_t)sizeof(e)) {
    waitpid(pid, NULL, 0);
    snprintf(err, errcap, "cannot run %s: %s", argv[0], strerror(e));
    goto fail;
  }
  close(execpipe[0]);
  close(logfd);
  p->pid = pid;
  p->out_fd = pipefd[0];
  return 0;
fail:
  for (int i = 0; i < 2; i++) {
    if (pipefd[i] >= 0)
      close(pipefd[i]);
    if (execpipe[i] >= 0)
      close(execpipe[i]);
  }
  if (logfd >= 0)
    close(logfd);
  return -1;
}

int proc_alive(proc_t *p) {
  int st;
  if (!p->pid)
    return 0;
  pid_t r = waitpid(p->pid, &st, WNOHANG);
  if (r == p->pid) {
    p->pid = 0;
    return 0;
  }
  return 1;
}

/* Fills err with why the child is not ready, with its log's tail. */
static void not_ready(proc_t *p, const char *why, char *err, size_t errcap) {
  char tail[512];
  proc_log_tail(p, tail, sizeof(tail));
  snprintf(err, errcap, "%s; log %s ends:\n%s", why, p->log, tail);
}

int proc_wait_line(proc_t *p, const char *prefix, char *line, size_t linecap, int timeout_ms,
                   char *err, size_t errcap) {
  char buf[1024];
  size_t len = 0;
  uint64_t deadline = clock_ns() + (uint64_t)timeout_ms * NS_PER_MS;
  for (;;) {
    char *nl;
    while ((nl = memchr(buf, '\n', len)) != NULL) {
      *nl = 0;
      if (!strncmp(buf, prefix, strlen(prefix))) {
        snprintf(line, linecap, "%s", buf);
        return 0;
      }
      size_t used = (size_t)(nl + 1 - buf);
      memmove(buf, nl + 1, len - used);
      len -= used;
    }
    if (len == sizeof(buf) - 1)
      len = 0; /* an overlong line that is not ours */
    uint64_t now = clock_ns();
    if (now >= deadline) {
      not_ready(p, "no ready line in time", err, errcap);
      return -1;
    }
    struct pollfd pfd = {p->out_fd, POLLIN, 0};
    int left = (int)((deadline - now) / NS_PER_MS) + 1;
    if (poll(&pfd, 1, left) < 0 && errno != EINTR) {
      snprintf(err, errcap, "poll: %s", strerror(errno));
      return -1;
    }
    if (pfd.revents) {
      ssize_t r = read(p->out_fd, buf + len, sizeof(buf) - 1 - len);
      if (r == 0) {
        not_ready(p, "the server exited before it was ready", err, errcap);
        return -1;
      }
      if (r > 0)
        len += (size_t)r;
    }
  }
}

int proc_wait_port(proc_t *p, const char *host, uint16_t port, int timeout_ms, char *err,
                   size_t errcap) {
  uint64_t deadline = clock_ns() + (uint64_t)timeout_ms * NS_PER_MS;
  while (!net_port_open(host, port)) {
    if (!proc_alive(p)) {
      not_ready(p, "the server exited before it was ready", err, errcap);
      return -1;
    }
    if (clock_ns() >= deadline) {
      not_ready(p, "the server did not listen in time", err, errcap);
      return -1;
    }
    usleep(PORT_POLL_MS * 1000);
  }
  return 0;
}

int proc_stop(proc_t *p, int timeout_ms) {
  int st = 0, rc = -1;
  if (!p->pid)
    goto done;
  kill(p->pid, SIGTERM);
  uint64_t deadline = clock_ns() + (uint64_t)timeout_ms * NS_PER_MS;
  for (;;) {
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == p->pid)
      break;
    if (r < 0 && errno != EINTR) {
      st = -1;
      break;
    }
    if (clock_ns() >= deadline) {
      kill(p->pid, SIGKILL);
      waitpid(p->pid, &st, 0);
      break;
    }
    usleep(2000);
  }
  if (st == -1)
    rc = -1;
  else if (WIFEXITED(st))
    rc = WEXITSTATUS(st);
  else if (WIFSIGNALED(st))
    rc = 128 + WTERMSIG(st);
  p->pid = 0;
done:
  if (p->out_fd >= 0)
    close(p->out_fd);
  p->out_fd = -1;
  return rc;
}

uint64_t proc_rss(const proc_t *p) {
  char path[64], line[256];
  uint64_t kb = 0;
  if (!p->pid)
    return 0;
  snprintf(path, sizeof(path), "/proc/%d/status", (int)p->pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return 0;
  while (fgets(line, sizeof(line), f)) {
    unsigned long long v;
    if (sscanf(line, "VmRSS: %llu kB", &v) == 1) {
      kb = v;
      break;
    }
  }
  fclose(f);
  return kb * 1024;
}

double proc_cpu_seconds(const proc_t *p) {
  char path[64], buf[1024];
  if (!p->pid)
    return -1;
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)p->pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = 0;
  /* Fields after the command name (which may hold spaces, so start after
   * its closing parenthesis): state is field 3, utime 14, stime 15. */
  char *s = strrchr(buf, ')');
  unsigned long long ut, st;
  if (!s || sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
    return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

void proc_log_tail(const proc_t *p, char *out, size_t cap) {
  out[0] = 0;
  if (cap < 2)
    return;
  FILE *f = fopen(p->log, "r");
  if (!f)
    return;
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  long from = size > (long)cap - 1 ? size - ((long)cap - 1) : 0;
  fseek(f, from, SEEK_SET);
  size_t n = fread(out, 1, cap - 1, f);
  out[n] = 0;
  fclose(f);
}
