/* The chat layer: Message Delivery Receipts (XEP-0184) and Unique and
 * Stable Stanza IDs (XEP-0359). Public API only (include/ is this file's
 * whole include path); memory from libc, as an app's would be. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h> /* getentropy */

#include <xmppuv.h>

struct xmppuv_receipts {
  xmppuv_client_t *c;
  xmppuv_receipts_options_t opts;
  xmppuv_receipts_callbacks_t cbs;
  void *ud;
  uint64_t listener, handler;
  unsigned depth; /* inside one of the app's callbacks */
  int doomed;     /* freed from inside one: free when it returns */
};

/* The first layouts. */
#define OPTIONS_MIN_SIZE \
  (offsetof(xmppuv_receipts_options_t, request_receipts) + sizeof(int))
#define CALLBACKS_MIN_SIZE \
  (offsetof(xmppuv_receipts_callbacks_t, answer_filter) + sizeof(void (*)(void)))

void xmppuv_receipts_options_init_sized(xmppuv_receipts_options_t *opts, size_t struct_size) {
  if (opts == NULL || struct_size < sizeof opts->struct_size) return;
  xmppuv_receipts_options_t full;
  memset(&full, 0, sizeof full);
  full.answer_requests = 1;
  full.request_receipts = 0;
  size_t n = struct_size < sizeof full ? struct_size : sizeof full;
  memset(opts, 0, struct_size);
  memcpy(opts, &full, n);
  opts->struct_size = struct_size;
}

void xmppuv_receipts_callbacks_init_sized(xmppuv_receipts_callbacks_t *cbs, size_t struct_size) {
  if (cbs == NULL || struct_size < sizeof cbs->struct_size) return;
  memset(cbs, 0, struct_size);
  cbs->struct_size = struct_size;
}

/* ---- ids ------------------------------------------------------------------------ */

#define UUID_LEN 36

/* A random (version 4) UUID, RFC 9562 §5.4: unpredictable, as XEP-0359 §3
 * asks of ids. 0 or XMPPUV_ECRYPTO. */
static int uuid_v4(char out[UUID_LEN + 1]) {
  unsigned char b[16];
  if (getentropy(b, sizeof b) != 0) return XMPPUV_ECRYPTO;
  b[6] = (unsigned char)((b[6] & 0x0F) | 0x40); /* version 4 */
  b[8] = (unsigned char)((b[8] & 0x3F) | 0x80); /* variant 10 */
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  for (size_t i = 0; i < sizeof b; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = hex[b[i] >> 4];
    out[o++] = hex[b[i] & 0x0F];
  }
  out[o] = '\0';
  return 0;
}

static int is_message(const xmppuv_stanza_t *s) {
  const char *name = xmppuv_stanza_name(s);
  return name != NULL && strcmp(name, "message") == 0;
}

static int type_is(const xmppuv_stanza_t *s, const char *type) {
  const char *t = xmppuv_stanza_attr(s, "type");
  return t != NULL && strcmp(t, type) == 0;
}

/* ---- lifetime ---------------------------------------------------------------- */

static void enter(xmppuv_receipts_t *r) { r->depth++; }
static void leave(xmppuv_receipts_t *r) {
  if (--r->depth == 0 && r->doomed) free(r);
}

void xmppuv_receipts_free(xmppuv_receipts_t *r) {
  if (r == NULL || r->doomed) return;
  if (r->handler != 0) (void)xmppuv_client_handler_remove(r->c, r->handler);
  if (r->listener != 0) (void)xmppuv_client_listener_remove(r->c, r->listener);
  r->handler = r->listener = 0;
  if (r->depth > 0) r->doomed = 1;
  else free(r);
}

static void on_closed(xmppuv_client_t *c, void *ud) {
  xmppuv_receipts_t *r = ud;
  r->handler = r->listener = 0; /* the client is gone: nothing to remove */
  if (r->depth > 0) r->doomed = 1;
  else free(r);
}

/* ---- incoming ---------------------------------------------------------------- */

/* The ack's outcome is nobody's business but the sender's: it keeps the
 * app's `ack` and `fail` events for the app's own stanzas. */
static void on_ack_sent(xmppuv_client_t *c, xmppuv_stanza_t *s, int status, void *ud) {
  (void)status;
  (void)ud;
}

/* <message to id type><received xmlns='urn:xmpp:receipts' id/><store/></message>
 * (XEP-0184 §7: the same type as the request is good practice; the store
 * hint, XEP-0334, lets an ack to an offline sender wait for it). */
static void answer(xmppuv_receipts_t *r, const xmppuv_stanza_t *msg, const char *from,
                   const char *id) {
  char ack_id[UUID_LEN + 1];
  if (uuid_v4(ack_id) != 0) return;
  xmppuv_stanza_t *m = NULL, *child;
  int rc = xmppuv_stanza_new("message", NULL, &m);
  if (rc == 0) rc = xmppuv_stanza_set_attr(m, "to", from);
  if (rc == 0) rc = xmppuv_stanza_set_attr(m, "id", ack_id);
  const char *type = xmppuv_stanza_attr(msg, "type");
  if (rc == 0 && type != NULL) rc = xmppuv_stanza_set_attr(m, "type", type);
  if (rc == 0) rc = xmppuv_stanza_new_child(m, "received", XMPPUV_NS_RECEIPTS, &child);
  if (rc == 0) rc = xmppuv_stanza_set_attr(child, "id", id);
  if (rc == 0) rc = xmppuv_stanza_new_child(m, "store", "urn:xmpp:hints", &child);
  if (rc == 0) (void)xmppuv_client_send_tracked(r->c, m, on_ack_sent, NULL);
  xmppuv_stanza_unref(m);
}

static int on_message(xmppuv_client_t *c, xmppuv_stanza_t *msg, void *ud) {
  xmppuv_receipts_t *r = ud;
  /* XEP-0184 §5.3: not in groupchats; and an error bounce is no answer. */
  if (type_is(msg, "groupchat") || type_is(msg, "error")) return XMPPUV_PASS;
  const char *from = xmppuv_stanza_attr(msg, "from");
  xmppuv_stanza_t *received = xmppuv_stanza_child(msg, "received", XMPPUV_NS_RECEIPTS);
  if (received != NULL) {
    const char *acked = xmppuv_stanza_attr(received, "id");
    if (acked != NULL && from != NULL && r->cbs.receipt != NULL) {
      enter(r);
      r->cbs.receipt(r, from, acked, msg, r->ud);
      leave(r);
    }
    /* XEP-0184 §5.4: an ack is never answered, whatever else it holds. */
    return XMPPUV_PASS;
  }
  if (!r->opts.answer_requests || r->doomed) return XMPPUV_PASS;
  if (xmppuv_stanza_child(msg, "request", XMPPUV_NS_RECEIPTS) == NULL) return XMPPUV_PASS;
  const char *id = xmppuv_stanza_attr(msg, "id");
  /* Without an id there is nothing to echo (§7); without a from, nobody
   * to send it to. */
  if (id == NULL || *id == '\0' || from == NULL) return XMPPUV_PASS;
  int yes = 1;
  if (r->cbs.answer_filter != NULL) {
    enter(r);
    yes = r->cbs.answer_filter(r, from, msg, r->ud);
    int gone = r->doomed;
    leave(r);
    if (gone) return XMPPUV_PASS;
  }
  if (yes) answer(r, msg, from, id);
  return XMPPUV_PASS;
}

/* ---- attaching ------------------------------------------------------------------ */

int xmppuv_receipts_new(xmppuv_client_t *c, xmppuv_disco_t *disco,
                        const xmppuv_receipts_options_t *opts,
                        const xmppuv_receipts_callbacks_t *callbacks, void *user_data,
                        xmppuv_receipts_t **out) {
  if (out != NULL) *out = NULL;
  if (c == NULL || out == NULL) return XMPPUV_EINVAL;
  if (opts != NULL && (opts->struct_size < OPTIONS_MIN_SIZE ||
                       opts->struct_size > sizeof(xmppuv_receipts_options_t)))
    return XMPPUV_EINVAL;
  if (callbacks != NULL && (callbacks->struct_size < CALLBACKS_MIN_SIZE ||
                            callbacks->struct_size > sizeof(xmppuv_receipts_callbacks_t)))
    return XMPPUV_EINVAL;
  xmppuv_receipts_t *r = calloc(1, sizeof *r);
  if (r == NULL) return XMPPUV_ENOMEM;
  r->c = c;
  r->ud = user_data;
  xmppuv_receipts_options_init(&r->opts);
  if (opts != NULL) memcpy(&r->opts, opts, opts->struct_size);
  r->opts.struct_size = sizeof r->opts;
  r->cbs.struct_size = sizeof r->cbs;
  if (callbacks != NULL) memcpy(&r->cbs, callbacks, callbacks->struct_size);
  r->cbs.struct_size = sizeof r->cbs;

  xmppuv_client_callbacks_t lcbs;
  xmppuv_client_callbacks_init(&lcbs);
  lcbs.closed = on_closed;
  int rc = xmppuv_client_listener_add(c, &lcbs, r, &r->listener);
  if (rc == 0)
    rc = xmppuv_client_handler_add(c, "message", XMPPUV_NS_RECEIPTS, NULL, on_message, r,
                                   &r->handler);
  if (rc == 0 && disco != NULL) rc = xmppuv_disco_add_feature(disco, XMPPUV_NS_RECEIPTS);
  if (rc != 0) {
    xmppuv_receipts_free(r);
    return rc;
  }
  *out = r;
  return 0;
}

/* ---- outgoing ------------------------------------------------------------------ */

int xmppuv_receipts_prepare(xmppuv_receipts_t *r, xmppuv_stanza_t *message, int request) {
  if (!is_message(message)) return XMPPUV_EINVAL;
  if (request == XMPPUV_RECEIPTS_AS_OPTION) {
    if (r == NULL) return XMPPUV_EINVAL;
    request = r->opts.request_receipts != 0;
  }
  int need_origin = xmppuv_stanza_child(message, "origin-id", XMPPUV_NS_SID) == NULL;
  int need_id = xmppuv_stanza_attr(message, "id") == NULL;
  /* XEP-0184 §5.3 (no requests in groupchats) and §5.4 (none in an ack). */
  int want_request = request != 0 && !type_is(message, "groupchat") &&
                     xmppuv_stanza_child(message, "received", XMPPUV_NS_RECEIPTS) == NULL &&
                     xmppuv_stanza_child(message, "request", XMPPUV_NS_RECEIPTS) == NULL;
  char id[UUID_LEN + 1];
  int rc = 0;
  if (need_origin || need_id) rc = uuid_v4(id);
  xmppuv_stanza_t *child = NULL;
  if (rc == 0 && need_origin) {
    rc = xmppuv_stanza_new_child(message, "origin-id", XMPPUV_NS_SID, &child);
    if (rc == 0) rc = xmppuv_stanza_set_attr(child, "id", id);
    if (rc != 0 && child != NULL) (void)xmppuv_stanza_remove(child);
  }
  if (rc == 0 && need_id) rc = xmppuv_stanza_set_attr(message, "id", id);
  if (rc == 0 && want_request)
    rc = xmppuv_stanza_new_child(message, "request", XMPPUV_NS_RECEIPTS, &child);
  return rc;
}

const char *xmppuv_receipt_id_of(const xmppuv_stanza_t *message) {
  return xmppuv_stanza_attr(xmppuv_stanza_child(message, "received", XMPPUV_NS_RECEIPTS), "id");
}

/* ---- stanza ids (XEP-0359) ------------------------------------------------------- */

const char *xmppuv_stanza_id_of(const xmppuv_stanza_t *message, const char *by) {
  if (message == NULL || by == NULL) return NULL;
  xmppuv_jid_t *want = NULL;
  if (xmppuv_jid_parse(by, &want) != 0) return NULL;
  const char *found = NULL;
  int matches = 0;
  for (xmppuv_stanza_t *s = xmppuv_stanza_child(message, "stanza-id", XMPPUV_NS_SID); s != NULL;
       s = xmppuv_stanza_next(s, "stanza-id", XMPPUV_NS_SID)) {
    xmppuv_jid_t *j = NULL;
    const char *id = xmppuv_stanza_attr(s, "id");
    if (xmppuv_jid_parse(xmppuv_stanza_attr(s, "by"), &j) == 0 && xmppuv_jid_equal(j, want)) {
      matches++;
      found = id;
    }
    xmppuv_jid_free(j);
  }
  xmppuv_jid_free(want);
  /* XEP-0359 §3: at most one per 'by'. Two means one was not put there by
   * `by`, and nothing says which: trust neither. */
  if (matches != 1 || found == NULL || *found == '\0') return NULL;
  return found;
}

const char *xmppuv_origin_id_of(const xmppuv_stanza_t *message) {
  xmppuv_stanza_t *o = xmppuv_stanza_child(message, "origin-id", XMPPUV_NS_SID);
  if (o == NULL || xmppuv_stanza_next(o, "origin-id", XMPPUV_NS_SID) != NULL) return NULL;
  const char *id = xmppuv_stanza_attr(o, "id");
  return id != NULL && *id != '\0' ? id : NULL;
}
