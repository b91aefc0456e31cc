/* Builders for the stanzas every app needs. */
#include <string.h>

#include "jid_int.h"
#include "util/ns.h"
#include "util/utf8.h"
#include "xml/stanza_int.h"
#include "xmppuv.h"

/* Attributes with our own (static, valid) names: only the value is the
 * caller's to check. */
static int add_checked_attr(xmppuv_stanza_t *s, const char *name, const char *value) {
  size_t len = strlen(value);
  int rc = xmppuv__xml_text_check(value, len);
  if (rc != 0) return rc;
  char *v = xmppuv__tree_strndup(s->tree, value, len);
  if (v == NULL) return XMPPUV_ENOMEM;
  return xmppuv__node_push_attr(s, name, v);
}

/* The last address found valid, per thread: an app sends to few
 * addresses, and comparing one costs a tenth of checking it (bench/: a
 * burst of messages paid about 470 instructions each for the check). */
static _Thread_local char last_valid_to[128];

static int check_to(const char *to) {
  if (to[0] != '\0' && strcmp(to, last_valid_to) == 0) return 0;
  int rc = xmppuv__jid_check(to);
  size_t len = strlen(to);
  if (rc == 0 && len < sizeof last_valid_to) memcpy(last_valid_to, to, len + 1);
  return rc;
}

int xmppuv_message_new(const char *to, const char *type, const char *body,
                       xmppuv_stanza_t **out) {
  if (out == NULL) return XMPPUV_EINVAL;
  *out = NULL;
  if (to != NULL) {
    /* An address the server would bounce is refused here, with the reason. */
    int jrc = check_to(to);
    if (jrc != 0) return jrc;
  }
  /* Built from the internal pieces: every app sends messages, and the
   * element and attribute names here need no checking. */
  size_t hint = 128 + (to ? strlen(to) : 0) + (type ? strlen(type) : 0) +
                (body ? strlen(body) : 0);
  xmppuv_stanza_t *m = xmppuv__tree_new("message", NULL, hint);
  if (m == NULL) return XMPPUV_ENOMEM;
  int rc = 0;
  if (to != NULL) rc = add_checked_attr(m, "to", to);
  if (rc == 0 && type != NULL) rc = add_checked_attr(m, "type", type);
  if (rc == 0 && body != NULL) {
    size_t len = strlen(body);
    rc = len > 0x7FFFFFFFu ? XMPPUV_ETOOBIG : xmppuv__xml_text_check(body, len);
    xmppuv_stanza_t *b = NULL;
    if (rc == 0) {
      b = xmppuv__node_add_element(m, "body", NULL);
      if (b == NULL) rc = XMPPUV_ENOMEM;
    }
    if (rc == 0) rc = xmppuv__node_add_text(b, body, len);
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
  /* RFC 6120 §8.2.3: only requests are answered (a reply to a result or an
   * error would start a loop), and a reply carries the request's id. */
  const char *rtype = xmppuv_stanza_attr(request, "type");
  if (rtype == NULL || (strcmp(rtype, "get") != 0 && strcmp(rtype, "set") != 0))
    return XMPPUV_EINVAL;
  const char *id = xmppuv_stanza_attr(request, "id");
  if (id == NULL) return XMPPUV_EINVAL;
  const char *from = xmppuv_stanza_attr(request, "from");
  xmppuv_stanza_t *iq;
  int rc = xmppuv_stanza_new("iq", NULL, &iq);
  if (rc != 0) return rc;
  rc = xmppuv_stanza_set_attr(iq, "type", type);
  if (rc == 0 && from != NULL) rc = xmppuv_stanza_set_attr(iq, "to", from);
  if (rc == 0) rc = xmppuv_stanza_set_attr(iq, "id", id);
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

/* RFC 6120 §8.3.2 and §8.3.3. */
static const char *const error_types[] = {"auth", "cancel", "continue", "modify", "wait"};
static const char *const error_conditions[] = {
    "bad-request",      "conflict",          "feature-not-implemented", "forbidden",
    "gone",             "internal-server-error", "item-not-found",      "jid-malformed",
    "not-acceptable",   "not-allowed",       "not-authorized",          "policy-violation",
    "recipient-unavailable", "redirect",     "registration-required",   "remote-server-not-found",
    "remote-server-timeout", "resource-constraint", "service-unavailable",
    "subscription-required", "undefined-condition", "unexpected-request"};

static int in_list(const char *s, const char *const *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(s, list[i]) == 0) return 1;
  return 0;
}

int xmppuv_iq_error_new(const xmppuv_stanza_t *request, const char *type,
                        const char *condition, xmppuv_stanza_t **out) {
  if (out != NULL) *out = NULL;
  if (type == NULL || condition == NULL ||
      !in_list(type, error_types, sizeof error_types / sizeof error_types[0]) ||
      !in_list(condition, error_conditions, sizeof error_conditions / sizeof error_conditions[0]))
    return XMPPUV_EINVAL;
  xmppuv_stanza_t *iq, *err;
  int rc = reply_new(request, "error", &iq);
  if (rc != 0) return rc;
  rc = xmppuv_stanza_new_child(iq, "error", NULL, &err);
  if (rc == 0) rc = xmppuv_stanza_set_attr(err, "type", type);
  if (rc == 0) rc = xmppuv_stanza_new_child(err, condition, XMPPUV__NS_STANZAS, NULL);
  if (rc != 0) {
    xmppuv_stanza_unref(iq);
    return rc;
  }
  *out = iq;
  return 0;
}
