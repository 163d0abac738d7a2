/* net.c - socket helpers (see net.h). */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int net_connect(const char *host, uint16_t port, int nonblock, char *err, size_t errcap) {
  struct addrinfo hints = {0}, *res = NULL, *ai;
  char ps[8];
  int fd = -1, one = 1;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  snprintf(ps, sizeof(ps), "%u", port);
  int g = getaddrinfo(host, ps, &hints, &res);
  if (g != 0) {
    snprintf(err, errcap, "resolve %s: %s", host, gai_strerror(g));
    return -1;
  }
  for (ai = res; ai; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
      continue;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
      break;
    close(fd);
    fd = -1;
  }
  if (fd < 0) {
    snprintf(err, errcap, "connect %s:%u: %s", host, port, strerror(errno));
    goto fail;
  }
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (nonblock && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
    snprintf(err, errcap, "fcntl: %s", strerror(errno));
    close(fd);
    fd = -1;
  }
fail:
  freeaddrinfo(res);
  return fd;
}

int net_listen_loopback(uint16_t *port) {
  struct sockaddr_in a = {0};
  socklen_t al = sizeof(a);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 16) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &al) != 0) {
    close(fd);
    return -1;
  }
  *port = ntohs(a.sin_port);
  return fd;
}

uint16_t net_free_port(void) {
  uint16_t port = 0;
  int fd = net_listen_loopback(&port);
  if (fd < 0)
    return 0;
  close(fd);
  return port;
}

int net_port_open(const char *host, uint16_t port) {
  char err[128];
  int fd = net_connect(host, port, 0, err, sizeof(err));
  if (fd < 0)
    return 0;
  close(fd);
  return 1;
}
