#include "engine/handlers.h"

#include <string.h>

#include "util/alloc.h"

struct xmppuv__handler {
  xmppuv__handler_t *next;
  uint64_t id;
  char *name;
  char *ns;
  char *type;
  int match_child; /* ns/name are those of the first child element (iq) */
  int removed;
  xmppuv_handler_cb cb;
  void *user_data;
};

void xmppuv__handlers_init(xmppuv__handlers_t *h, uint64_t first_id) {
  memset(h, 0, sizeof *h);
  h->next_id = first_id;
}

static void free_handler(xmppuv__handler_t *e) {
  xmppuv__free(e->name);
  xmppuv__free(e->ns);
  xmppuv__free(e->type);
  xmppuv__free(e);
}

void xmppuv__handlers_free(xmppuv__handlers_t *h) {
  xmppuv__handler_t *e = h->head;
  while (e != NULL) {
    xmppuv__handler_t *next = e->next;
    free_handler(e);
    e = next;
  }
  h->head = h->tail = NULL;
}

int xmppuv__handlers_add(xmppuv__handlers_t *h, const char *name, const char *ns,
                         const char *type, int match_child, xmppuv_handler_cb cb,
                         void *user_data, uint64_t *id) {
  if (cb == NULL) return XMPPUV_EINVAL;
  xmppuv__handler_t *e = xmppuv__calloc(1, sizeof *e);
  if (e == NULL) return XMPPUV_ENOMEM;
  int rc = 0;
  e->name = xmppuv__strdup_opt(name, &rc);
  e->ns = xmppuv__strdup_opt(ns, &rc);
  e->type = xmppuv__strdup_opt(type, &rc);
  if (rc != 0) {
    free_handler(e);
    return XMPPUV_ENOMEM;
  }
  e->id = h->next_id++;
  e->match_child = match_child;
  e->cb = cb;
  e->user_data = user_data;
  if (h->tail != NULL)
    h->tail->next = e;
  else
    h->head = e;
  h->tail = e;
  if (id != NULL) *id = e->id;
  return 0;
}

static void sweep(xmppuv__handlers_t *h) {
  xmppuv__handler_t *prev = NULL, *e = h->head;
  while (e != NULL) {
    xmppuv__handler_t *next = e->next;
    if (e->removed) {
      if (prev != NULL)
        prev->next = next;
      else
        h->head = next;
      if (h->tail == e) h->tail = prev;
      free_handler(e);
    } else {
      prev = e;
    }
    e = next;
  }
  h->dirty = 0;
}

int xmppuv__handlers_remove(xmppuv__handlers_t *h, uint64_t id) {
  for (xmppuv__handler_t *e = h->head; e != NULL; e = e->next) {
    if (e->id != id || e->removed) continue;
    e->removed = 1;
    h->dirty = 1;
    if (h->dispatching == 0) sweep(h);
    return 0;
  }
  return XMPPUV_EINVAL;
}

static int str_eq(const char *a, const char *b) {
  return a != NULL && b != NULL && strcmp(a, b) == 0;
}

static int matches(const xmppuv__handler_t *e, const xmppuv_stanza_t *s) {
  const char *name = xmppuv_stanza_name(s);
  if (e->match_child) {
    /* iq requests: the payload element decides (RFC 6120 §8.2.3). */
    const xmppuv_stanza_t *child = xmppuv_stanza_child(s, NULL, NULL);
    if (child == NULL) return 0;
    if (e->name != NULL && !str_eq(e->name, xmppuv_stanza_name(child))) return 0;
    if (e->ns != NULL && !str_eq(e->ns, xmppuv_stanza_ns(child))) return 0;
  } else {
    if (e->name != NULL && !str_eq(e->name, name)) return 0;
    if (e->ns != NULL && !str_eq(e->ns, xmppuv_stanza_ns(s))) {
      /* ns matches the stanza's own namespace or any child's. */
      const xmppuv_stanza_t *child = xmppuv_stanza_child(s, NULL, e->ns);
      if (child == NULL) return 0;
    }
  }
  if (e->type != NULL) {
    const char *type = xmppuv_stanza_attr(s, "type");
    /* RFC 6121 §5.2.2: a message without type is "normal". */
    if (type == NULL && str_eq(name, "message")) type = "normal";
    if (!str_eq(e->type, type)) return 0;
  }
  return 1;
}

int xmppuv__handlers_dispatch(xmppuv__handlers_t *h, xmppuv_client_t *c,
                              xmppuv_stanza_t *stanza,
                              int (*stop)(xmppuv_client_t *c, void *stop_ud), void *stop_ud) {
  int handled = 0;
  h->dispatching++;
  /* Handlers added during dispatch are appended and may run for this
   * stanza too; removed ones are skipped at once. */
  for (xmppuv__handler_t *e = h->head; e != NULL && !handled; e = e->next) {
    if (e->removed || !matches(e, stanza)) continue;
    if (e->cb(c, stanza, e->user_data) == XMPPUV_HANDLED) handled = 1;
    if (stop != NULL && stop(c, stop_ud)) break;
  }
  if (--h->dispatching == 0 && h->dirty) sweep(h);
  return handled;
}
