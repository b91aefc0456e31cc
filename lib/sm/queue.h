/* The Stream Management queue: every stanza the engine still answers for,
 * in send order. A prefix of it is "unacked" (written on the SM session and
 * counted; sm.c keeps that count), the rest is "held" (waiting for a
 * stream). Owned by the engine (sm.c); no I/O.
 *
 * Entries live in a ring buffer that starts empty, grows by doubling up to
 * the queue's maximum and is given back when the queue empties, so an idle
 * client costs a few hundred bytes at most. Serialized bytes are copied
 * into shared slabs (a few KiB each, freed when the last of their entries
 * is released), so a send costs no allocation of its own in a burst; a
 * large stanza gets a slab to itself. Push and pop are O(1). */
#ifndef XMPPUV_SM_QUEUE_H
#define XMPPUV_SM_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "sm/sm.h"

typedef struct xmppuv__smq_slab xmppuv__smq_slab_t;

enum {
  XMPPUV__SMQ_MESSAGE = 1u << 0,   /* the root is <message/> */
  XMPPUV__SMQ_HAS_DELAY = 1u << 1, /* already carries a XEP-0203 <delay/> */
  XMPPUV__SMQ_STAMP = 1u << 2,     /* add our <delay/> whenever written */
};

typedef struct xmppuv__smq_entry {
  xmppuv_stanza_t *stanza; /* one reference, held by the queue */
  xmppuv__sm_done_cb cb;
  void *cb_data;
  const char *bytes; /* the stanza serialized at send time (in slab) */
  xmppuv__smq_slab_t *slab;
  int64_t sent_wall_ms; /* wall time of the send() call: the delay stamp */
  uint32_t len;
  uint32_t end_tag_at; /* offset of the root's end tag in bytes */
  uint32_t stream_no;  /* the stream it was last written on (sm.c) */
  uint8_t flags;       /* XMPPUV__SMQ_* */
  uint8_t strikes;     /* streams in a row that a stream error ended while
                          it was written and unhandled (sm.c, poison rule) */
} xmppuv__smq_entry_t;

typedef struct xmppuv__smq {
  xmppuv__smq_entry_t *ring; /* NULL while empty */
  size_t cap;                /* a power of two, or 0 */
  size_t head;
  size_t len;
  size_t max;
  xmppuv__smq_slab_t *slabs; /* shared slabs, oldest first */
  xmppuv__smq_slab_t *tail;  /* the newest: where bytes are appended */
} xmppuv__smq_t;

void xmppuv__smq_init(xmppuv__smq_t *q, size_t max);
/* Releases every entry (stanza references, bytes) without any event. */
void xmppuv__smq_free(xmppuv__smq_t *q);

static inline size_t xmppuv__smq_len(const xmppuv__smq_t *q) { return q->len; }
/* The i-th entry from the oldest; valid until the next push or pop. */
static inline xmppuv__smq_entry_t *xmppuv__smq_at(const xmppuv__smq_t *q,
                                                  size_t i) {
  return &q->ring[(q->head + i) & (q->cap - 1)];
}

/* Append an entry: e's fields are copied, bytes[0..len) are copied into
 * the queue (e->bytes and e->slab are ignored), and a reference to
 * e->stanza is taken. Errors: XMPPUV_ENOBUFS (max reached),
 * XMPPUV_ENOMEM; the queue is then unchanged. */
int xmppuv__smq_push(xmppuv__smq_t *q, const xmppuv__smq_entry_t *e,
                     const char *bytes, size_t len);
/* Remove the oldest entry (the queue must not be empty) into *out. Its
 * stanza reference and bytes stay valid until xmppuv__smq_release(), so
 * an event can be raised with them while the queue is consistent. */
void xmppuv__smq_pop(xmppuv__smq_t *q, xmppuv__smq_entry_t *out);
/* Remove the i-th entry from the oldest (i < len), as pop does; the later
 * ones move up. O(len - i): for the rare stanza failed out of order. */
void xmppuv__smq_take(xmppuv__smq_t *q, size_t i, xmppuv__smq_entry_t *out);
/* Drop a popped entry's stanza reference and bytes. */
void xmppuv__smq_release(xmppuv__smq_t *q, xmppuv__smq_entry_t *e);

#endif
