#include "sm/queue.h"

#include <string.h>

#include "util/alloc.h"

/* Bytes of a shared slab, and the largest stanza that goes into one (a
 * larger one gets a slab of its own, so a shared slab wastes at most a
 * quarter of itself at its end). */
#define SLAB_BYTES 8192u
#define SLAB_SHARE_MAX (SLAB_BYTES / 4u)
/* Ring capacity on first use; a bigger ring is given back when the queue
 * empties, a ring of this size when the last entry leaves. */
#define RING_MIN 8u

struct xmppuv__smq_slab {
  xmppuv__smq_slab_t *next; /* shared slabs only: the next newer one */
  size_t used;
  size_t cap;
  size_t live; /* entries (queued or popped, not yet released) in it */
  int shared;
  char data[];
};

void xmppuv__smq_init(xmppuv__smq_t *q, size_t max) {
  memset(q, 0, sizeof *q);
  q->max = max;
}

static xmppuv__smq_slab_t *slab_new(size_t cap, int shared) {
  if (cap > (size_t)-1 - sizeof(xmppuv__smq_slab_t)) return NULL;
  xmppuv__smq_slab_t *s = xmppuv__malloc(sizeof *s + cap);
  if (s == NULL) return NULL;
  s->next = NULL;
  s->used = 0;
  s->cap = cap;
  s->live = 0;
  s->shared = shared;
  return s;
}

static void slab_unlink(xmppuv__smq_t *q, xmppuv__smq_slab_t *s) {
  xmppuv__smq_slab_t *prev = NULL;
  for (xmppuv__smq_slab_t *it = q->slabs; it != NULL; prev = it, it = it->next) {
    if (it != s) continue;
    if (prev == NULL)
      q->slabs = s->next;
    else
      prev->next = s->next;
    if (q->tail == s) q->tail = prev;
    return;
  }
}

static void slab_put(xmppuv__smq_t *q, xmppuv__smq_slab_t *s) {
  if (--s->live != 0) return;
  if (s->shared) slab_unlink(q, s);
  xmppuv__free(s);
}

static int ring_grow(xmppuv__smq_t *q) {
  size_t cap = q->cap ? q->cap * 2 : RING_MIN;
  if (cap > (size_t)-1 / sizeof(xmppuv__smq_entry_t)) return XMPPUV_ENOMEM;
  xmppuv__smq_entry_t *ring = xmppuv__malloc(cap * sizeof *ring);
  if (ring == NULL) return XMPPUV_ENOMEM;
  for (size_t i = 0; i < q->len; i++) ring[i] = *xmppuv__smq_at(q, i);
  xmppuv__free(q->ring);
  q->ring = ring;
  q->cap = cap;
  q->head = 0;
  return 0;
}

/* Room for len bytes: the end of the newest shared slab, a new shared
 * slab, or (for a large stanza) a slab of its own. */
static char *bytes_reserve(xmppuv__smq_t *q, size_t len,
                           xmppuv__smq_slab_t **slab) {
  xmppuv__smq_slab_t *s;
  if (len > SLAB_SHARE_MAX) {
    s = slab_new(len, 0);
    if (s == NULL) return NULL;
  } else if (q->tail != NULL && q->tail->cap - q->tail->used >= len) {
    s = q->tail;
  } else {
    s = slab_new(SLAB_BYTES, 1);
    if (s == NULL) return NULL;
    if (q->tail != NULL)
      q->tail->next = s;
    else
      q->slabs = s;
    q->tail = s;
  }
  char *at = s->data + s->used;
  s->used += len;
  s->live++;
  *slab = s;
  return at;
}

int xmppuv__smq_push(xmppuv__smq_t *q, const xmppuv__smq_entry_t *e,
                     const char *bytes, size_t len) {
  if (q->len >= q->max) return XMPPUV_ENOBUFS;
  if (len > UINT32_MAX) return XMPPUV_ETOOBIG;
  if (q->len == q->cap && ring_grow(q) != 0) return XMPPUV_ENOMEM;
  xmppuv__smq_slab_t *slab;
  char *at = bytes_reserve(q, len, &slab);
  if (at == NULL) return XMPPUV_ENOMEM;
  if (len > 0) memcpy(at, bytes, len);
  xmppuv__smq_entry_t *dst = &q->ring[(q->head + q->len) & (q->cap - 1)];
  *dst = *e;
  dst->bytes = at;
  dst->slab = slab;
  dst->len = (uint32_t)len;
  xmppuv_stanza_ref(dst->stanza);
  q->len++;
  return 0;
}

void xmppuv__smq_pop(xmppuv__smq_t *q, xmppuv__smq_entry_t *out) {
  *out = q->ring[q->head];
  q->head = (q->head + 1) & (q->cap - 1);
  if (--q->len == 0) {
    q->head = 0;
    if (q->cap > RING_MIN) {
      /* A burst is over: give its ring back. */
      xmppuv__free(q->ring);
      q->ring = NULL;
      q->cap = 0;
    }
  }
}

void xmppuv__smq_take(xmppuv__smq_t *q, size_t i, xmppuv__smq_entry_t *out) {
  if (i == 0) {
    xmppuv__smq_pop(q, out);
    return;
  }
  *out = *xmppuv__smq_at(q, i);
  for (size_t k = i; k + 1 < q->len; k++)
    *xmppuv__smq_at(q, k) = *xmppuv__smq_at(q, k + 1);
  q->len--;
}

void xmppuv__smq_release(xmppuv__smq_t *q, xmppuv__smq_entry_t *e) {
  xmppuv_stanza_unref(e->stanza);
  e->stanza = NULL;
  if (e->slab != NULL) slab_put(q, e->slab);
  e->slab = NULL;
  e->bytes = NULL;
}

void xmppuv__smq_free(xmppuv__smq_t *q) {
  xmppuv__smq_entry_t e;
  while (q->len > 0) {
    xmppuv__smq_pop(q, &e);
    xmppuv__smq_release(q, &e);
  }
  xmppuv__free(q->ring);
  q->ring = NULL;
  q->cap = 0;
  /* Entries popped by the caller and never released would keep slabs;
   * the engine always releases what it pops, so nothing is left here. */
  while (q->slabs != NULL) {
    xmppuv__smq_slab_t *s = q->slabs;
    q->slabs = s->next;
    xmppuv__free(s);
  }
  q->tail = NULL;
}
