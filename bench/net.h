/* net.h - the few socket helpers the benchmark needs: connect, listen on a
 * loopback port, find a free port for a peer broker. */
#ifndef BENCH_NET_H
#define BENCH_NET_H

#include <stddef.h>
#include <stdint.h>

/* Connects to host:port with TCP_NODELAY, blocking; the socket is left
 * non-blocking if nonblock. Returns the fd, or -1 with err filled. */
int net_connect(const char *host, uint16_t port, int nonblock, char *err, size_t errcap);
/* Listens on 127.0.0.1 port 0; returns the fd and the port in *port, or -1. */
int net_listen_loopback(uint16_t *port);
/* A loopback port free right now (bound, read, closed), for servers that
 * cannot listen on port 0 and report it: 0 on failure. Another program may
 * take it before the server binds it; the server then fails to start and
 * the caller retries with another port. */
uint16_t net_free_port(void);
/* 1 if something accepts connections on host:port. */
int net_port_open(const char *host, uint16_t port);

#endif
