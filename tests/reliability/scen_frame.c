/* scen_frame.c - the frame-size cap, the bad-input case a broken build
 * (NO_FRAME_CAP) must fail: a frame header declaring 100 MB must get one
 * reply with id 0 and error frame_too_large, then a closed connection,
 * without the server waiting for (or allocating) the payload; other clients
 * are served meanwhile. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gbx_codec.h"
#include "gearbox.h"
#include "run.h"

/* The declared frame: 50 times the default limit, far above the hard cap. */
#define HUGE_FRAME (100u * 1000u * 1000u)
/* Payload bytes sent after the header, as a client streaming it would. */
#define SENT_PAYLOAD 4096
/* How long the reply and the close may take: a correct server answers at
 * once (it has the header); a server without the cap waits forever. */
#define REPLY_WAIT_MS 5000
/* Largest reply frame we read (an error reply is small). */
#define REPLY_MAX 4096

/* Reads exactly n bytes within the deadline: 1, 0 on EOF, -1 on timeout or
 * error. */
static int read_exact(int fd, uint8_t *buf, size_t n, int64_t deadline_us) {
  while (n) {
    int left = (int)((deadline_us - srv_now_us()) / 1000);
    if (left <= 0)
      return -1;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int pr = poll(&p, 1, left);
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr <= 0)
      return -1;
    ssize_t got = recv(fd, buf, n, 0);
    if (got < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (got < 0)
      return errno == ECONNRESET ? 0 : -1;
    if (got == 0)
      return 0;
    buf += got;
    n -= (size_t)got;
  }
  return 1;
}

int scen_frame_cap(run_t *r) {
  int res = RUN_ERROR, fd = -1;
  srv_cfg_t cfg;
  run_srv_cfg(r, &cfg);
  srv_t *s = srv_new(&cfg);
  if (!s || srv_start(s) != 0) {
    run_log(r, "error: cannot start gearboxd: %s", s ? srv_error(s) : "out of memory");
    goto done;
  }
  if ((fd = srv_connect_port(srv_port_now(s))) < 0) {
    run_log(r, "error: cannot connect: %s", strerror(errno));
    goto done;
  }
  uint8_t msg[GBX_FRAME_HDR + SENT_PAYLOAD];
  gbx_frame_put_len(msg, HUGE_FRAME);
  memset(msg + GBX_FRAME_HDR, 0x90, SENT_PAYLOAD); /* fixarray(0)s: valid msgpack bytes */
  if (send(fd, msg, sizeof msg, MSG_NOSIGNAL) != (ssize_t)sizeof msg) {
    run_log(r, "error: send: %s", strerror(errno));
    goto done;
  }
  run_log(r, "sent a frame header declaring %u bytes and %u bytes of it", HUGE_FRAME, SENT_PAYLOAD);
  int64_t deadline = srv_now_us() + (int64_t)REPLY_WAIT_MS * 1000;
  uint8_t hdr[GBX_FRAME_HDR], body[REPLY_MAX];
  uint32_t len = 0;
  int got = read_exact(fd, hdr, sizeof hdr, deadline);
  if (got == 1)
    gbx_frame_peek(hdr, sizeof hdr, &len);
  if (got != 1 || len == 0 || len > REPLY_MAX || read_exact(fd, body, len, deadline) != 1) {
    run_log(r, "no error reply within %d ms (%s): the server is waiting for the payload",
            REPLY_WAIT_MS, got == 0 ? "the connection closed without one" : "silence");
    run_found(r, "frame-cap", 1);
  } else {
    gbx_doc_t doc;
    gbx_errbuf_t eb;
    uint64_t id = 1, err = 0;
    if (gbx_doc_parse(&doc, body, len, &eb) != GBX_E_OK) {
      run_log(r, "the reply is not a valid msgpack map: %s", eb.msg);
      run_found(r, "frame-cap", 1);
    } else {
      gbx_get_u64(&doc.root, "id", 1, 0, UINT64_MAX, &id, NULL, &eb);
      gbx_get_u64(&doc.root, "err", 1, 0, UINT64_MAX, &err, NULL, &eb);
      gbx_doc_free(&doc);
      if (id != 0 || err != GBX_E_FRAME_TOO_LARGE) {
        run_log(r, "reply id %llu err %llu, want id 0 err %d (frame_too_large)",
                (unsigned long long)id, (unsigned long long)err, GBX_E_FRAME_TOO_LARGE);
        run_found(r, "frame-cap", 1);
      } else {
        uint8_t more;
        if (read_exact(fd, &more, 1, srv_now_us() + (int64_t)REPLY_WAIT_MS * 1000) != 0) {
          run_log(r, "the connection stayed open after frame_too_large");
          run_found(r, "frame-cap", 1);
        } else {
          run_log(r, "got frame_too_large with id 0, then the connection closed");
        }
      }
    }
  }
  /* the server keeps serving others */
  gbx_error_t e;
  gbx_client_t *c = gbx_connect("127.0.0.1", srv_port_now(s), &e);
  if (c)
    gbx_set_timeout(c, REPLY_WAIT_MS);
  if (!c || gbx_ping(c, &e) != GBX_E_OK) {
    run_log(r, "another client was not served: %s", e.message);
    run_found(r, "frame-cap", 1);
  }
  gbx_close(c);
  close(fd);
  fd = -1;
  run_stop_clean(r, s);
  res = RUN_PASS;
done:
  if (fd >= 0)
    close(fd);
  if (s)
    run_check_sanitizers(r, s);
  srv_free(s);
  return res;
}
