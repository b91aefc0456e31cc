/* The chat layer: Message Carbons (XEP-0280). Public API only (include/ is
 * this file's whole include path); memory from libc, as an app's would be.
 *
 * The enable request is sent on every `online` without asking the server's
 * disco#info first: a server without carbons answers with an error, which
 * says the same thing one round trip sooner. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <xmppuv.h>

#include "common.h"

/* The enable request in flight. It outlives the module if the module is
 * freed first (the client still calls back, with XMPPUV_ECANCELED). */
typedef struct enable_req {
  xmppuv_carbons_t *cb; /* NULL once the module is gone or moved on */
  uint64_t iq_id;
} enable_req_t;

struct xmppuv_carbons {
  xmppuv_client_t *c;
  xmppuv_carbons_callbacks_t cbs;
  void *ud;
  uint64_t listener, handler;
  enable_req_t *pending;
  int enabled;
  unsigned depth; /* inside one of the app's callbacks */
  int doomed;     /* freed from inside one: free when it returns */
};

/* The first layout: everything up to `spoofed`. */
#define CALLBACKS_MIN_SIZE \
  (offsetof(xmppuv_carbons_callbacks_t, spoofed) + sizeof(void (*)(void)))

void xmppuv_carbons_callbacks_init_sized(xmppuv_carbons_callbacks_t *cbs, size_t struct_size) {
  if (cbs == NULL || struct_size < sizeof cbs->struct_size) return;
  memset(cbs, 0, struct_size);
  cbs->struct_size = struct_size;
}

/* ---- lifetime ---------------------------------------------------------------- */

static void detach_pending(xmppuv_carbons_t *cb, int cancel) {
  enable_req_t *p = cb->pending;
  if (p == NULL) return;
  cb->pending = NULL;
  p->cb = NULL; /* its callback frees it */
  if (cancel) (void)xmppuv_client_iq_cancel(cb->c, p->iq_id);
}

static void destroy(xmppuv_carbons_t *cb) {
  if (cb->pending != NULL) cb->pending->cb = NULL;
  free(cb);
}

/* The app's callbacks are run between these: a free from inside one waits
 * for it to return. */
static void enter(xmppuv_carbons_t *cb) { cb->depth++; }
static int leave(xmppuv_carbons_t *cb) {
  cb->depth--;
  if (cb->depth == 0 && cb->doomed) {
    destroy(cb);
    return 1;
  }
  return 0;
}

void xmppuv_carbons_free(xmppuv_carbons_t *cb) {
  if (cb == NULL || cb->doomed) return;
  if (cb->handler != 0) (void)xmppuv_client_handler_remove(cb->c, cb->handler);
  if (cb->listener != 0) (void)xmppuv_client_listener_remove(cb->c, cb->listener);
  cb->handler = cb->listener = 0;
  detach_pending(cb, 1);
  if (cb->depth > 0) {
    cb->doomed = 1;
    return;
  }
  destroy(cb);
}

/* ---- enabling (XEP-0280 §4) -------------------------------------------------- */

static void on_enable_result(xmppuv_client_t *c, int status, xmppuv_stanza_t *reply, void *ud) {
  enable_req_t *p = ud;
  xmppuv_carbons_t *cb = p->cb;
  free(p);
  if (cb == NULL) return; /* cancelled, or the module is gone */
  cb->pending = NULL;
  /* Lost with its session: the next session's request will report. */
  if (status == XMPPUV_ESMFAILED) return;
  cb->enabled = status == 0;
  if (cb->cbs.enabled != NULL) {
    enter(cb);
    cb->cbs.enabled(cb, status, status == XMPPUV_EIQERROR ? reply : NULL, cb->ud);
    leave(cb);
  }
}

static int send_enable(xmppuv_carbons_t *cb) {
  detach_pending(cb, 1);
  cb->enabled = 0;
  xmppuv_stanza_t *iq = NULL, *child;
  int rc = xmppuv_stanza_new("iq", NULL, &iq);
  if (rc == 0) rc = xmppuv_stanza_set_attr(iq, "type", "set");
  if (rc == 0) rc = xmppuv_stanza_new_child(iq, "enable", XMPPUV_NS_CARBONS, &child);
  enable_req_t *p = NULL;
  if (rc == 0 && (p = malloc(sizeof *p)) == NULL) rc = XMPPUV_ENOMEM;
  if (rc == 0) {
    p->cb = cb;
    p->iq_id = 0;
    rc = xmppuv_client_send_iq(cb->c, iq, 0, on_enable_result, p, &p->iq_id);
    if (rc == 0) cb->pending = p;
    else free(p);
  }
  xmppuv_stanza_unref(iq);
  return rc;
}

static void on_online(xmppuv_client_t *c, const xmppuv_jid_t *jid, void *ud) {
  xmppuv_carbons_t *cb = ud;
  int rc = send_enable(cb);
  /* The request could not even be made (out of memory): say so now, as
   * its outcome. */
  if (rc != 0 && cb->cbs.enabled != NULL) {
    enter(cb);
    cb->cbs.enabled(cb, rc, NULL, cb->ud);
    leave(cb);
  }
}

/* A resumed session kept carbons as they were: nothing to redo. */
static void on_resumed(xmppuv_client_t *c, void *ud) { (void)ud; }

static void on_closed(xmppuv_client_t *c, void *ud) {
  xmppuv_carbons_t *cb = ud;
  /* The client is gone: nothing to remove from it. */
  cb->handler = cb->listener = 0;
  detach_pending(cb, 0);
  if (cb->depth > 0) cb->doomed = 1;
  else destroy(cb);
}

int xmppuv_carbons_enabled(const xmppuv_carbons_t *cb) { return cb != NULL && cb->enabled; }

/* ---- receiving copies (XEP-0280 §7, §8, §11) -------------------------------- */


static int on_message(xmppuv_client_t *c, xmppuv_stanza_t *msg, void *ud) {
  xmppuv_carbons_t *cb = ud;
  /* A room's message is never a copy (an occupant could put the element
   * in its own message to have it swallowed). */
  const char *type = xmppuv_stanza_attr(msg, "type");
  if (type != NULL && strcmp(type, "groupchat") == 0) return XMPPUV_PASS;
  xmppuv_carbon_direction_t dir = XMPPUV_CARBON_RECEIVED;
  xmppuv_stanza_t *wrap = xmppuv_stanza_child(msg, "received", XMPPUV_NS_CARBONS);
  if (wrap == NULL) {
    wrap = xmppuv_stanza_child(msg, "sent", XMPPUV_NS_CARBONS);
    dir = XMPPUV_CARBON_SENT;
  }
  /* <private/> and the like, in an ordinary message: not a copy. */
  if (wrap == NULL) return XMPPUV_PASS;

  if (!xmppuv__im_from_account(c, xmppuv_stanza_attr(msg, "from"), 0)) {
    /* Dropped whole: its inner message must not reach the app as if its
     * claimed sender had sent it. */
    if (cb->cbs.spoofed != NULL) {
      enter(cb);
      cb->cbs.spoofed(cb, msg, cb->ud);
      leave(cb);
    }
    return XMPPUV_HANDLED;
  }

  xmppuv_stanza_t *fwd = xmppuv_stanza_child(wrap, "forwarded", XMPPUV_NS_FORWARD);
  /* The original is in jabber:client; a server that forgot to say so
   * leaves it in forward:0. The wrapper's sender is checked: take either. */
  xmppuv_stanza_t *inner = fwd != NULL ? xmppuv_stanza_child(fwd, "message", NULL) : NULL;
  /* Both kinds at once, or nothing forwarded: not a copy we understand,
   * and from our own account, so nothing forged either: the app's
   * handlers see it as it is. */
  if (inner == NULL || (dir == XMPPUV_CARBON_RECEIVED &&
                        xmppuv_stanza_child(msg, "sent", XMPPUV_NS_CARBONS) != NULL))
    return XMPPUV_PASS;

  if (cb->cbs.carbon != NULL) {
    xmppuv_carbon_t copy;
    memset(&copy, 0, sizeof copy);
    copy.direction = dir;
    copy.message = inner;
    copy.wrapper = msg;
    copy.stamp = xmppuv_stanza_attr(xmppuv_stanza_child(fwd, "delay", "urn:xmpp:delay"), "stamp");
    enter(cb);
    cb->cbs.carbon(cb, &copy, cb->ud);
    leave(cb);
  }
  return XMPPUV_HANDLED;
}

/* ---- attaching ------------------------------------------------------------------ */

int xmppuv_carbons_new(xmppuv_client_t *c, xmppuv_disco_t *disco,
                       const xmppuv_carbons_callbacks_t *callbacks, void *user_data,
                       xmppuv_carbons_t **out) {
  if (out != NULL) *out = NULL;
  if (c == NULL || out == NULL) return XMPPUV_EINVAL;
  if (callbacks != NULL &&
      (callbacks->struct_size < CALLBACKS_MIN_SIZE ||
       callbacks->struct_size > sizeof(xmppuv_carbons_callbacks_t)))
    return XMPPUV_EINVAL;
  xmppuv_carbons_t *cb = calloc(1, sizeof *cb);
  if (cb == NULL) return XMPPUV_ENOMEM;
  cb->c = c;
  cb->ud = user_data;
  cb->cbs.struct_size = sizeof cb->cbs;
  if (callbacks != NULL) {
    memcpy(&cb->cbs, callbacks, callbacks->struct_size);
    cb->cbs.struct_size = sizeof cb->cbs;
  }

  xmppuv_client_callbacks_t lcbs;
  xmppuv_client_callbacks_init(&lcbs);
  lcbs.online = on_online;
  lcbs.resumed = on_resumed;
  lcbs.closed = on_closed;
  int rc = xmppuv_client_listener_add(c, &lcbs, cb, &cb->listener);
  if (rc == 0)
    rc = xmppuv_client_handler_add(c, "message", XMPPUV_NS_CARBONS, NULL, on_message, cb,
                                   &cb->handler);
  if (rc == 0 && disco != NULL) rc = xmppuv_disco_add_feature(disco, XMPPUV_NS_CARBONS);
  /* Attached to a session already running: it needs carbons too. */
  if (rc == 0 && xmppuv_client_status(c) == XMPPUV_STATUS_ONLINE) rc = send_enable(cb);
  if (rc != 0) {
    xmppuv_carbons_free(cb);
    return rc;
  }
  *out = cb;
  return 0;
}

/* ---- private messages (XEP-0280 §9) ---------------------------------------- */

static int add_once(xmppuv_stanza_t *msg, const char *name, const char *ns) {
  if (xmppuv_stanza_child(msg, name, ns) != NULL) return 0;
  xmppuv_stanza_t *child;
  return xmppuv_stanza_new_child(msg, name, ns, &child);
}

int xmppuv_carbons_mark_private(xmppuv_stanza_t *message) {
  const char *name = xmppuv_stanza_name(message);
  if (name == NULL || strcmp(name, "message") != 0) return XMPPUV_EINVAL;
  int rc = add_once(message, "private", XMPPUV_NS_CARBONS);
  if (rc == 0) rc = add_once(message, "no-copy", XMPPUV_NS_HINTS);
  return rc;
}
