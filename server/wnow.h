/* wnow.h - a reply buffer's first write attempt, shared by net.c and
 * http.c: what the socket takes now goes out without a write request, its
 * callback and libuv's epoll_ctl; only the rest is queued with uv_write. */
#ifndef GBX_WNOW_H
#define GBX_WNOW_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <uv.h>

#include "gbx_codec.h"

/* Writes what the socket takes of b now. All of it: b is emptied and kept
 * for the next replies (freed if its capacity exceeds keep), *data is NULL.
 * Part or none (the socket is full, or writes are queued and order must be
 * kept): the unwritten rest moves to *data (malloc'd, the caller's to queue
 * and free) and *len, and b is reset. Returns 0, or a negative libuv error
 * (b unchanged). */
static inline int stream_write_now(uv_stream_t *s, gbx_buf_t *b, size_t keep, uint8_t **data,
                                   size_t *len) {
  uv_buf_t buf = uv_buf_init((char *)b->data, (unsigned)(b->len > INT_MAX ? INT_MAX : b->len));
  int n = uv_try_write(s, &buf, 1);
  if (n == UV_EAGAIN || n == UV_ENOSYS)
    n = 0;
  if (n < 0)
    return n;
  *data = NULL;
  *len = 0;
  if ((size_t)n == b->len) {
    b->len = 0;
    if (b->cap > keep)
      gbx_buf_free(b);
    return 0;
  }
  *data = b->data;
  *len = b->len - (size_t)n;
  if (n > 0)
    memmove(*data, *data + n, *len);
  gbx_buf_init(b); /* the write request owns the bytes now */
  return 0;
}

#endif
