/* The app's stanza handlers: a list matched in the order of registration,
 * removable by id at any time (even from inside a handler). */
#ifndef XMPPUV_HANDLERS_H
#define XMPPUV_HANDLERS_H

#include <stdint.h>

#include "xmppuv.h"

typedef struct xmppuv__handler xmppuv__handler_t;

typedef struct xmppuv__handlers {
  xmppuv__handler_t *head;
  xmppuv__handler_t *tail;
  uint64_t next_id;
  unsigned dispatching; /* nesting depth; removal is deferred meanwhile */
  int dirty;            /* removed entries wait to be freed */
} xmppuv__handlers_t;

void xmppuv__handlers_init(xmppuv__handlers_t *h, uint64_t first_id);
void xmppuv__handlers_free(xmppuv__handlers_t *h);

/* name, ns, type may be NULL (any). For iq handlers: name/ns are the
 * request's child, type "get", "set" or NULL. Copies the strings. */
int xmppuv__handlers_add(xmppuv__handlers_t *h, const char *name, const char *ns,
                         const char *type, int match_child, xmppuv_handler_cb cb,
                         void *user_data, uint64_t *id);
/* 0, or XMPPUV_EINVAL if no such handler. */
int xmppuv__handlers_remove(xmppuv__handlers_t *h, uint64_t id);

/* Run the matching handlers in order until one returns XMPPUV_HANDLED.
 * Returns non-zero if one did. stop(c, stop_ud) is asked between handlers
 * whether to stop early (the client is closing). */
int xmppuv__handlers_dispatch(xmppuv__handlers_t *h, xmppuv_client_t *c,
                              xmppuv_stanza_t *stanza,
                              int (*stop)(xmppuv_client_t *c, void *stop_ud), void *stop_ud);

#endif
