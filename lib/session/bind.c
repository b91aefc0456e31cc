/* RFC 6120 §7 resource binding, and the RFC 3921 session iq where a server
 * still requires it (RFC 6121 §A). */
#include <stdio.h>
#include <string.h>

#include "session/session_int.h"
#include "util/alloc.h"
#include "util/ns.h"
#include "xml/serialize.h"

int xmppuv__bind_send(xmppuv__session_t *s) {
  xmppuv__session_conn_t *c = &s->c;
  xmppuv__buf_t *b = &s->scratch;
  xmppuv__buf_clear(b);
  snprintf(c->bind_id, sizeof c->bind_id, "bind-%u", ++c->bind_seq);
  int rc = xmppuv__buf_append_str(b, "<iq type='set' id='");
  if (rc == 0) rc = xmppuv__buf_append_str(b, c->bind_id);
  if (rc == 0) rc = xmppuv__buf_append_str(b, "'><bind xmlns='" XMPPUV__NS_BIND "'");
  if (rc == 0 && s->cfg.resource != NULL) {
    rc = xmppuv__buf_append_str(b, "><resource>");
    if (rc == 0) rc = xmppuv__escape_text(b, s->cfg.resource, strlen(s->cfg.resource));
    if (rc == 0) rc = xmppuv__buf_append_str(b, "</resource></bind></iq>");
  } else if (rc == 0) {
    rc = xmppuv__buf_append_str(b, "/></iq>");
  }
  if (rc != 0) return rc;
  xmppuv__session_trace_out(s, b->data);
  return xmppuv__session_write(s, b->data, b->len);
}

static int send_legacy_session(xmppuv__session_t *s) {
  xmppuv__session_conn_t *c = &s->c;
  snprintf(c->bind_id, sizeof c->bind_id, "sess-%u", ++c->bind_seq);
  xmppuv__buf_t *b = &s->scratch;
  xmppuv__buf_clear(b);
  int rc = xmppuv__buf_append_str(b, "<iq type='set' id='");
  if (rc == 0) rc = xmppuv__buf_append_str(b, c->bind_id);
  if (rc == 0) rc = xmppuv__buf_append_str(b, "'><session xmlns='" XMPPUV__NS_SESSION "'/></iq>");
  if (rc != 0) return rc;
  xmppuv__session_trace_out(s, b->data);
  return xmppuv__session_write(s, b->data, b->len);
}

int xmppuv__bind_is_reply(const xmppuv__session_t *s, const xmppuv_stanza_t *el) {
  const char *id = xmppuv_stanza_attr(el, "id");
  const char *type = xmppuv_stanza_attr(el, "type");
  return strcmp(xmppuv_stanza_name(el), "iq") == 0 && id != NULL &&
         strcmp(id, s->c.bind_id) == 0 && type != NULL &&
         (strcmp(type, "result") == 0 || strcmp(type, "error") == 0);
}

/* RFC 6120 §8.3.2: the condition is the child of <error/> in the stanzas
 * namespace. */
static const char *stanza_error_condition(const xmppuv_stanza_t *iq) {
  const xmppuv_stanza_t *e = xmppuv_stanza_child(iq, "error", NULL);
  for (xmppuv_stanza_t *c = xmppuv_stanza_child(e, NULL, XMPPUV__NS_STANZAS); c != NULL;
       c = xmppuv_stanza_next(c, NULL, XMPPUV__NS_STANZAS))
    if (strcmp(xmppuv_stanza_name(c), "text") != 0) return xmppuv_stanza_name(c);
  return NULL;
}

int xmppuv__bind_reply(xmppuv__session_t *s, const xmppuv_stanza_t *el,
                       const char **full_jid) {
  xmppuv__session_conn_t *c = &s->c;
  const char *type = xmppuv_stanza_attr(el, "type");
  if (strcmp(type, "error") == 0) {
    const char *condition = stanza_error_condition(el);
    const char *etype = xmppuv_stanza_attr(xmppuv_stanza_child(el, "error", NULL), "type");
    /* Only a "wait" error (try later) is worth reconnecting for. */
    int fatal = etype == NULL || strcmp(etype, "wait") != 0;
    xmppuv__session_fail(s, XMPPUV_EBIND, condition,
                         c->state == ST_BINDING ? "the server refused to bind a resource"
                                                : "the server refused the session",
                         el, fatal, NULL);
    return 0;
  }
  if (c->state == ST_BINDING) {
    const char *jid =
        xmppuv_stanza_child_text(xmppuv_stanza_child(el, "bind", XMPPUV__NS_BIND), "jid", NULL);
    if (jid == NULL || jid[0] == '\0') {
      xmppuv__session_fail(s, XMPPUV_EBIND, "bad-request", "bind result without a JID", el, 0,
                           NULL);
      return 0;
    }
    xmppuv__free(c->bound_jid);
    c->bound_jid = xmppuv__strdup(jid);
    if (c->bound_jid == NULL) {
      xmppuv__session_fail(s, XMPPUV_ENOMEM, NULL, NULL, NULL, 0, NULL);
      return 0;
    }
    if (c->session_required) {
      c->state = ST_LEGACY_SESSION;
      int rc = send_legacy_session(s);
      if (rc != 0) xmppuv__session_fail(s, rc, NULL, NULL, NULL, 0, NULL);
      return 0;
    }
  }
  c->state = ST_STREAMING;
  xmppuv__logf(s->log, XMPPUV_LOG_INFO, "session", "bound as %s", c->bound_jid);
  *full_jid = c->bound_jid;
  return 1;
}
