/* One TCP connection on libuv: connect with a timeout, an ordered write path
 * that never drops data, a read path that hands bytes up.
 *
 * Writes are coalesced: bytes appended during one loop iteration go out in
 * one uv_write just before the loop next polls (a uv_prepare handle), so a
 * burst of small stanzas costs one system call, not one each. Reads land in
 * a per-thread buffer shared by all connections (the read callback consumes
 * them at once), so an idle connection holds no read buffer.
 *
 * Closing is asynchronous and complete: closed_cb runs after every handle
 * is closed, and then the object is gone. */
#ifndef XMPPUV_TRANSPORT_TCP_H
#define XMPPUV_TRANSPORT_TCP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/buf.h"
#include "util/log.h"

typedef struct xmppuv__tcp xmppuv__tcp_t;

typedef struct xmppuv__tcp_events {
  /* The connect finished: status 0, or a libuv error / XMPPUV_ETIMEDOUT.
   * After an error the object closes itself (closed follows). */
  void (*connected)(void *ud, int status);
  /* Bytes read; valid for the call only. */
  void (*data)(void *ud, const char *data, size_t len);
  /* The connection failed after connecting: XMPPUV_EEOF (the peer closed)
   * or a libuv code. The object closes itself (closed follows). */
  void (*error)(void *ud, int status);
  /* Every handle is closed; the object has been freed. */
  void (*closed)(void *ud);
  /* May be NULL. Called once per loop iteration, just before queued bytes
   * go to the kernel, after xmppuv__tcp_wake(): a producer (the TLS layer)
   * can turn what it gathered during the iteration into bytes then. */
  void (*before_flush)(void *ud);
} xmppuv__tcp_events_t;

/* Start connecting to addr. timeout_ms 0 = none. On success closed will
 * eventually run exactly once. Errors: a libuv code, XMPPUV_ENOMEM. */
int xmppuv__tcp_connect(uv_loop_t *loop, const struct sockaddr *addr,
                        uint64_t timeout_ms, const xmppuv__tcp_events_t *ev,
                        void *ud, const xmppuv__log_t *log,
                        xmppuv__tcp_t **out);

/* Queue bytes (copied). 0, XMPPUV_ENOMEM, XMPPUV_ESTATE (closing). */
int xmppuv__tcp_write(xmppuv__tcp_t *t, const char *data, size_t len);
/* Queue b's bytes and leave b empty: when nothing else is queued, b's
 * storage is taken as it is (no copy) and b gets the transport's empty one.
 * Errors as xmppuv__tcp_write (b is then left as it was). */
int xmppuv__tcp_write_buf(xmppuv__tcp_t *t, xmppuv__buf_t *b);
/* The pending-output buffer itself, for producers that can write into it
 * directly (the TLS filter); call xmppuv__tcp_flush_soon() after. */
xmppuv__buf_t *xmppuv__tcp_out(xmppuv__tcp_t *t);
void xmppuv__tcp_flush_soon(xmppuv__tcp_t *t);
/* Ask for before_flush at the end of this loop iteration. */
void xmppuv__tcp_wake(xmppuv__tcp_t *t);
/* Bytes queued and not yet handed to the kernel. */
size_t xmppuv__tcp_pending(const xmppuv__tcp_t *t);

/* graceful: write what is queued, shut down the sending side, then close.
 * Otherwise close at once, dropping queued bytes, and reset (RST) the
 * connection. No events but closed follow. Idempotent. */
void xmppuv__tcp_close(xmppuv__tcp_t *t, int graceful);
/* Stop reading (paused) until the reader can take more, or read again: the
 * kernel holds what comes meanwhile, and TCP slows the sender down. */
void xmppuv__tcp_pause(xmppuv__tcp_t *t, int paused);

/* "ip:port" of the peer, for logs. */
const char *xmppuv__tcp_peer(const xmppuv__tcp_t *t);

#endif
