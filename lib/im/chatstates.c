/* The chat layer: chat states (XEP-0085). Public API only. */
#include <string.h>

#include <xmppuv.h>

static const char *const names[] = {NULL, "active", "composing", "paused", "inactive", "gone"};
#define NSTATES (sizeof names / sizeof names[0])

const char *xmppuv_chatstate_name(xmppuv_chatstate_t state) {
  return (size_t)state < NSTATES ? names[state] : NULL;
}

xmppuv_chatstate_t xmppuv_chatstate_of(const xmppuv_stanza_t *message) {
  if (message == NULL) return XMPPUV_CHATSTATE_NONE;
  for (xmppuv_stanza_t *c = xmppuv_stanza_child(message, NULL, XMPPUV_NS_CHATSTATES); c != NULL;
       c = xmppuv_stanza_next(c, NULL, XMPPUV_NS_CHATSTATES))
    for (size_t i = 1; i < NSTATES; i++)
      if (strcmp(xmppuv_stanza_name(c), names[i]) == 0) return (xmppuv_chatstate_t)i;
  return XMPPUV_CHATSTATE_NONE;
}

int xmppuv_chatstate_set(xmppuv_stanza_t *message, xmppuv_chatstate_t state) {
  if (message == NULL || xmppuv_stanza_is_text(message) ||
      strcmp(xmppuv_stanza_name(message), "message") != 0 ||
      (size_t)state >= NSTATES)
    return XMPPUV_EINVAL;
  /* One state per message (XEP-0085 §5.2): the old one goes. */
  xmppuv_stanza_t *old;
  while ((old = xmppuv_stanza_child(message, NULL, XMPPUV_NS_CHATSTATES)) != NULL) {
    int rc = xmppuv_stanza_remove(old);
    if (rc != 0) return rc;
  }
  if (state == XMPPUV_CHATSTATE_NONE) return 0;
  xmppuv_stanza_t *el = NULL;
  return xmppuv_stanza_new_child(message, names[state], XMPPUV_NS_CHATSTATES, &el);
}
