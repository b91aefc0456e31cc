/* Builders for the stanzas every app needs. */
#include <string.h>

#include "xmppuv.h"

#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"

int xmppuv_message_new(const char *to, const char *type, const char *body,
                       xmppuv_stanza_t **out) {
  if (out == NULL) return XMPPUV_EINVAL;
  *out = NULL;
  xmppuv_stanza_t *m, *b;
  int rc = xmppuv_stanza_new("message", NULL, &m);
  if (rc != 0) return rc;
  if (to != NULL) rc = xmppuv_stanza_set_attr(m, "to", to);
  if (rc == 0 && type != NULL) rc = xmppuv_stanza_set_attr(m, "type", type);
  if (rc == 0 && body != NULL) {
    rc = xmppuv_stanza_new_child(m, "body", NULL, &b);
    if (rc == 0) rc = xmppuv_stanza_set_text(b, body);
  }
  if (rc != 0) {
    xmppuv_stanza_unref(m);
    return rc;
  }
  *out = m;
  return 0;
}

static int reply_new(const xmppuv_stanza_t *request, const char *type,
                     xmppuv_stanza_t **out) {
  if (out == NULL) return XMPPUV_EINVAL;
  *out = NULL;
  const char *name = xmppuv_stanza_name(request);
  if (name == NULL || strcmp(name, "iq") != 0) return XMPPUV_EINVAL;
  const char *id = xmppuv_stanza_attr(request, "id");
  const char *from = xmppuv_stanza_attr(request, "from");
  xmppuv_stanza_t *iq;
  int rc = xmppuv_stanza_new("iq", NULL, &iq);
  if (rc != 0) return rc;
  rc = xmppuv_stanza_set_attr(iq, "type", type);
  if (rc == 0 && from != NULL) rc = xmppuv_stanza_set_attr(iq, "to", from);
  if (rc == 0 && id != NULL) rc = xmppuv_stanza_set_attr(iq, "id", id);
  if (rc != 0) {
    xmppuv_stanza_unref(iq);
    return rc;
  }
  *out = iq;
  return 0;
}

int xmppuv_iq_result_new(const xmppuv_stanza_t *request, xmppuv_stanza_t **out) {
  return reply_new(request, "result", out);
}

int xmppuv_iq_error_new(const xmppuv_stanza_t *request, const char *type,
                        const char *condition, xmppuv_stanza_t **out) {
  if (type == NULL || condition == NULL) return XMPPUV_EINVAL;
  xmppuv_stanza_t *iq, *err;
  int rc = reply_new(request, "error", &iq);
  if (rc != 0) return rc;
  rc = xmppuv_stanza_new_child(iq, "error", NULL, &err);
  if (rc == 0) rc = xmppuv_stanza_set_attr(err, "type", type);
  if (rc == 0) rc = xmppuv_stanza_new_child(err, condition, NS_STANZAS, NULL);
  if (rc != 0) {
    xmppuv_stanza_unref(iq);
    return rc;
  }
  *out = iq;
  return 0;
}
