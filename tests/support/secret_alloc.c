/* The secret-scanning allocator: see secret_alloc.h. */
#include "secret_alloc.h"

#include <stdlib.h>
#include <string.h>

#include "xmppuv.h"

#define MAX_WATCHED 8

typedef struct hdr {
  size_t size;
  struct hdr *next, *prev; /* live blocks */
  size_t pad;              /* keeps the block 16-byte aligned */
} hdr_t;

static hdr_t live = {0, &live, &live, 0};
static struct {
  const void *p;
  size_t len;
} watched[MAX_WATCHED];
static size_t n_watched;
static int freed_secret;

static int holds(const void *p, size_t n, const void *needle, size_t len) {
  const unsigned char *b = p;
  for (size_t i = 0; i + len <= n; i++)
    if (memcmp(b + i, needle, len) == 0) return 1;
  return 0;
}

static int holds_watched(const void *p, size_t n) {
  for (size_t i = 0; i < n_watched; i++)
    if (holds(p, n, watched[i].p, watched[i].len)) return 1;
  return 0;
}

static void *sa_malloc(size_t n) {
  hdr_t *h = malloc(sizeof *h + n);
  if (h == NULL) return NULL;
  memset(h + 1, 0xA5, n);
  h->size = n;
  h->next = live.next;
  h->prev = &live;
  live.next->prev = h;
  live.next = h;
  return h + 1;
}

static void sa_free(void *p) {
  if (p == NULL) return;
  hdr_t *h = (hdr_t *)p - 1;
  if (holds_watched(p, h->size)) freed_secret = 1;
  h->prev->next = h->next;
  h->next->prev = h->prev;
  free(h);
}

/* Always a new block: the old one is scanned as it is freed. */
static void *sa_realloc(void *p, size_t n) {
  if (p == NULL) return sa_malloc(n);
  void *q = sa_malloc(n);
  if (q == NULL) return NULL;
  size_t old = ((hdr_t *)p - 1)->size;
  memcpy(q, p, old < n ? old : n);
  sa_free(p);
  return q;
}

void secret_alloc_install(void) {
  secret_alloc_unwatch_all();
  freed_secret = 0;
  xmppuv_replace_allocator(sa_malloc, sa_realloc, sa_free);
}

void secret_alloc_uninstall(void) {
  xmppuv_replace_allocator(NULL, NULL, NULL);
  secret_alloc_unwatch_all();
}

void secret_alloc_watch(const void *secret, size_t len) {
  if (n_watched == MAX_WATCHED || len == 0) abort(); /* a test bug */
  watched[n_watched].p = secret;
  watched[n_watched].len = len;
  n_watched++;
}

void secret_alloc_watch_str(const char *secret) { secret_alloc_watch(secret, strlen(secret)); }

void secret_alloc_unwatch_all(void) { n_watched = 0; }

int secret_alloc_freed_secret(void) { return freed_secret; }

void secret_alloc_reset(void) { freed_secret = 0; }

int secret_alloc_live_holds(const void *needle, size_t len) {
  for (hdr_t *h = live.next; h != &live; h = h->next)
    if (holds(h + 1, h->size, needle, len)) return 1;
  return 0;
}

size_t secret_alloc_live_blocks(void) {
  size_t n = 0;
  for (hdr_t *h = live.next; h != &live; h = h->next) n++;
  return n;
}
