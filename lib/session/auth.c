/* SASL around the exchange (sasl/exchange.h), in either wrapping: RFC 6120
 * §6 (<auth/>, <challenge/>, <response/>, <success/>, <failure/>, then a
 * stream restart) or XEP-0388 SASL2 when the server offers it and the app
 * allows it (<authenticate/> with <initial-response/> and <user-agent/>,
 * the same challenges and responses in the SASL2 namespace, <success/>
 * with additional data and the authorization identifier, no restart).
 * Base64 in between. The payloads never reach a log line. */
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "sasl/ht.h"
#include "session/session_int.h"
#include "util/alloc.h"
#include "util/ns.h"
#include "xml/redact.h"
#include "xml/serialize.h"

#define MAX_LISTED 32

/* SASL2's <user-agent id='...'><software>...</software></user-agent>. */
static int append_user_agent(xmppuv__session_t *s, xmppuv__buf_t *b) {
  const char *id = s->cfg.user_agent_id;
  if (id == NULL) return 0;
  int rc = xmppuv__buf_append_str(b, "<user-agent id='");
  if (rc == 0) rc = xmppuv__escape_attr(b, id, strlen(id));
  if (rc == 0) rc = xmppuv__buf_append_str(b, "'>");
  if (rc == 0 && s->cfg.software != NULL) {
    rc = xmppuv__buf_append_str(b, "<software>");
    if (rc == 0) rc = xmppuv__escape_text(b, s->cfg.software, strlen(s->cfg.software));
    if (rc == 0) rc = xmppuv__buf_append_str(b, "</software>");
  }
  if (rc == 0) rc = xmppuv__buf_append_str(b, "</user-agent>");
  return rc;
}

/* XEP-0386: <bind xmlns='urn:xmpp:bind:0'><tag>...</tag><enable/></bind>
 * inside the <authenticate/>, when the login may bind (see auth_start). */
static int append_bind2(xmppuv__session_t *s, xmppuv__buf_t *b) {
  xmppuv__session_conn_t *c = &s->c;
  if (!c->bind2) return 0;
  int rc = xmppuv__buf_append_str(b, "<bind xmlns='" XMPPUV__NS_BIND2 "'>");
  const char *tag = s->cfg.software != NULL ? s->cfg.software : "xmppuv";
  if (rc == 0) rc = xmppuv__buf_append_str(b, "<tag>");
  if (rc == 0) rc = xmppuv__escape_text(b, tag, strlen(tag));
  if (rc == 0) rc = xmppuv__buf_append_str(b, "</tag>");
  if (rc == 0 && c->bind2 == 2) rc = xmppuv__buf_append_str(b, c->bind2_sm_enable);
  if (rc == 0) rc = xmppuv__buf_append_str(b, "</bind>");
  return rc;
}

/* The first message of an exchange (<auth/>, or SASL2's <authenticate/>
 * with <initial-response/>), or a <response/>: base64 content that never
 * reaches a log line. */
static int send_sasl(xmppuv__session_t *s, const char *name, const char *mech,
                     const void *data, size_t len, int empty_marker) {
  xmppuv__session_conn_t *c = &s->c;
  int v2 = c->sasl2;
  int initial = mech != NULL;
  if (v2 && initial) name = "authenticate";
  xmppuv__buf_t *b = &s->scratch;
  xmppuv__buf_clear(b);
  int rc = xmppuv__buf_append_char(b, '<');
  if (rc == 0) rc = xmppuv__buf_append_str(b, name);
  if (rc == 0)
    rc = xmppuv__buf_append_str(b, v2 ? " xmlns='" XMPPUV__NS_SASL2 "'"
                                      : " xmlns='" XMPPUV__NS_SASL "'");
  if (rc == 0 && mech != NULL) {
    rc = xmppuv__buf_append_str(b, " mechanism='");
    if (rc == 0) rc = xmppuv__buf_append_str(b, mech);
    if (rc == 0) rc = xmppuv__buf_append_char(b, '\'');
  }
  if (rc == 0) rc = xmppuv__buf_append_char(b, '>');
  int wrapped = v2 && initial && (len > 0 || empty_marker);
  if (rc == 0 && wrapped) rc = xmppuv__buf_append_str(b, "<initial-response>");
  size_t content_at = b->len;
  if (rc == 0 && (len > 0 || empty_marker))
    rc = xmppuv__sasl_payload_encode(data, len, b);
  size_t content_end = b->len;
  if (rc == 0 && wrapped) rc = xmppuv__buf_append_str(b, "</initial-response>");
  if (rc == 0 && v2 && initial) rc = append_user_agent(s, b);
  if (rc == 0 && v2 && initial && c->fast_used)
    rc = xmppuv__buf_append_str(b, c->fast_invalidate
                                       ? "<fast xmlns='" XMPPUV__NS_FAST "' invalidate='true'/>"
                                       : "<fast xmlns='" XMPPUV__NS_FAST "'/>");
  if (rc == 0 && v2 && initial && c->fast_requested != NULL) {
    rc = xmppuv__buf_append_str(b, "<request-token xmlns='" XMPPUV__NS_FAST "' mechanism='");
    if (rc == 0) rc = xmppuv__buf_append_str(b, c->fast_requested);
    if (rc == 0) rc = xmppuv__buf_append_str(b, "'/>");
  }
  if (rc == 0 && v2 && initial && c->resume_sent)
    rc = xmppuv__buf_append_str(b, c->inline_resume);
  if (rc == 0 && v2 && initial) rc = append_bind2(s, b);
  if (rc == 0) rc = xmppuv__buf_append_str(b, "</");
  if (rc == 0) rc = xmppuv__buf_append_str(b, name);
  if (rc == 0) rc = xmppuv__buf_append_char(b, '>');
  if (rc == 0) {
    if (XMPPUV__LOG_ON(s->log, XMPPUV_LOG_TRACE))
      xmppuv__log_emit(s->log, XMPPUV_LOG_TRACE, "wire-out", "%.*s%s%s",
                       (int)content_at, b->data,
                       content_end > content_at ? XMPPUV__REDACTED : "",
                       b->data + content_end);
    rc = xmppuv__session_write(s, b->data, b->len);
  }
  /* The buffer held a secret (PLAIN carries the password). */
  xmppuv__secure_zero(b->data, b->cap);
  xmppuv__buf_clear(b);
  return rc;
}

static const char *child_text(const xmppuv_stanza_t *el) {
  const char *t = xmppuv_stanza_text(el, NULL);
  return t ? t : "";
}

/* Why an exchange step failed, for the app. */
static const char *why(const xmppuv__session_t *s, int rc) {
  switch (rc) {
    case XMPPUV_EAUTHSERVER: return "the server could not prove it knows the password";
    case XMPPUV_EAUTHITER: return "the server asked for too few SCRAM iterations";
    case XMPPUV_EDOWNGRADE: return "the server's channel-binding offer looks tampered with";
    case XMPPUV_ENOMECH: return "no SASL mechanism both sides accept";
    case XMPPUV_EAUTH: {
      const char *text = xmppuv__sasl_exchange_error_text(s->c.sasl);
      return text != NULL ? text : "authentication failed";
    }
    default: return "bad SASL exchange";
  }
}

static void exchange_failed(xmppuv__session_t *s, int rc, const xmppuv_stanza_t *el) {
  xmppuv__session_fail(s, rc, NULL, why(s, rc), el, rc != XMPPUV_ENOMEM, NULL);
}

/* The channel-binding data of a type, from what the connection gave. */
static int cb_data(void *ud, const char *type, unsigned char *out, size_t *len) {
  const xmppuv__channel_binding_t *cb = ud;
  for (size_t i = 0; i < cb->n; i++) {
    if (strcmp(cb->b[i].type, type) != 0) continue;
    if (*len < cb->b[i].len) return XMPPUV_ETOOBIG;
    memcpy(out, cb->b[i].data, cb->b[i].len);
    *len = cb->b[i].len;
    return 0;
  }
  return XMPPUV_ESTATE;
}

/* A login weaker than an earlier one: warn, or with downgrade_fatal refuse
 * (1: the session failed). */
static int downgraded(xmppuv__session_t *s, const char *what, const xmppuv_stanza_t *features) {
  if (!s->c.downgrade_fatal) {
    xmppuv__logf(s->log, XMPPUV_LOG_WARN, "sasl", "possible downgrade: %s", what);
    return 0;
  }
  char text[200];
  snprintf(text, sizeof text, "%s: refusing to log in (downgrade_fatal)", what);
  xmppuv__session_fail(s, XMPPUV_EDOWNGRADED, NULL, text, features, 1, NULL);
  return 1;
}

static int have_cb(void *ud, const char *type) {
  const xmppuv__channel_binding_t *cb = ud;
  for (size_t i = 0; cb != NULL && i < cb->n; i++)
    if (strcmp(cb->b[i].type, type) == 0) return 1;
  return 0;
}

/* Does the server bind type on this connection? Its XEP-0440 list says so;
 * without one, a -PLUS mechanism on offer does. ejabberd 24.12 over a
 * WebSocket lists HT -UNIQ/-EXPR/-ENDP for FAST but cannot bind (its
 * session does not see the HTTP layer's TLS; no -PLUS, no list there). */
static int server_binds(const xmppuv_stanza_t *features, const char *type) {
  const xmppuv_stanza_t *list =
      xmppuv_stanza_child(features, "sasl-channel-binding", XMPPUV__NS_SASL_CB);
  if (list != NULL) {
    for (xmppuv_stanza_t *e = xmppuv_stanza_child(list, "channel-binding", NULL); e != NULL;
         e = xmppuv_stanza_next(e, "channel-binding", NULL)) {
      const char *t = xmppuv_stanza_attr(e, "type");
      if (t != NULL && strcmp(t, type) == 0) return 1;
    }
    return 0;
  }
  const xmppuv_stanza_t *lists[2] = {
      xmppuv_stanza_child(features, "authentication", XMPPUV__NS_SASL2),
      xmppuv_stanza_child(features, "mechanisms", XMPPUV__NS_SASL)};
  for (size_t i = 0; i < 2; i++)
    for (xmppuv_stanza_t *m = xmppuv_stanza_child(lists[i], "mechanism", NULL); m != NULL;
         m = xmppuv_stanza_next(m, "mechanism", NULL)) {
      const char *name = child_text(m);
      size_t n = strlen(name);
      if (n > 5 && strcmp(name + n - 5, "-PLUS") == 0) return 1;
    }
  return 0;
}

/* Both ends can bind type: for the choice of an HT mechanism. */
typedef struct {
  const xmppuv__channel_binding_t *cb;
  const xmppuv_stanza_t *features;
} ht_binds_t;

static int both_bind(void *ud, const char *type) {
  const ht_binds_t *b = ud;
  return have_cb((void *)(uintptr_t)b->cb, type) && server_binds(b->features, type);
}

/* The channel-binding data an HT mechanism needs (none for -NONE). */
static int ht_binding(const xmppuv__session_conn_t *c, const xmppuv__ht_t *ht,
                      unsigned char data[XMPPUV__CB_MAX_DATA], size_t *len) {
  *len = 0;
  if (ht->cb_type == NULL) return 0;
  *len = XMPPUV__CB_MAX_DATA;
  return c->cb != NULL ? cb_data(c->cb, ht->cb_type, data, len) : XMPPUV_ESTATE;
}

/* XEP-0484 §"Using a token": one message, the token's HMAC. 1 if the login
 * went out (or failed: the failure is set), 0 if the token cannot be used
 * here (not offered with its mechanism, no such binding). */
static int fast_login(xmppuv__session_t *s, const xmppuv_stanza_t *features,
                      const char *const *offered, size_t n) {
  xmppuv__session_conn_t *c = &s->c;
  xmppuv__ht_t ht;
  if (c->fast_token == NULL || c->fast_rejected || s->cfg.username == NULL ||
      xmppuv__ht_parse(c->fast_token_mech, &ht) != 0)
    return 0;
  int listed = 0;
  for (size_t i = 0; i < n && !listed; i++) listed = strcmp(offered[i], c->fast_token_mech) == 0;
  ht_binds_t binds = {c->cb, features};
  if (!listed || (ht.cb_type != NULL && !both_bind(&binds, ht.cb_type))) {
    xmppuv__logf(s->log, XMPPUV_LOG_DEBUG, "sasl",
                 "the FAST token's mechanism %s cannot be used on this connection",
                 c->fast_token_mech);
    return 0;
  }
  unsigned char cb[XMPPUV__CB_MAX_DATA];
  size_t cb_len = 0;
  xmppuv__buf_t msg = XMPPUV__BUF_INIT;
  int rc = ht_binding(c, &ht, cb, &cb_len);
  if (rc == 0) rc = xmppuv__ht_initial(&ht, s->cfg.username, c->fast_token, cb, cb_len, &msg);
  c->fast_used = 1;
  c->fast_cb = ht.cb_type != NULL;
  c->state = ST_SASL;
  xmppuv__logf(s->log, XMPPUV_LOG_DEBUG, "sasl", "using %s with the FAST token",
               c->fast_token_mech);
  if (rc == 0) rc = send_sasl(s, "auth", c->fast_token_mech, msg.data, msg.len, 1);
  xmppuv__sasl_buf_wipe(&msg);
  xmppuv__secure_zero(cb, sizeof cb);
  if (rc != 0) xmppuv__session_fail(s, rc, NULL, NULL, NULL, 0, NULL);
  return 1;
}

void xmppuv__auth_start(xmppuv__session_t *s, const xmppuv_stanza_t *features) {
  xmppuv__session_conn_t *c = &s->c;
  const xmppuv_stanza_t *mechs_el = NULL;
  /* XEP-0388: SASL2 where offered and allowed; its mechanisms are listed
   * in <authentication/>. */
  const xmppuv_stanza_t *sasl2 =
      s->cfg.sasl2 && !c->sasl2_unusable
          ? xmppuv_stanza_child(features, "authentication", XMPPUV__NS_SASL2)
          : NULL;
  c->sasl2 = sasl2 != NULL;
  /* Kept for the next connection's one-flight login (session.h). */
  if (c->sasl2 && c->auth_features == NULL && c->features_text != NULL) {
    c->auth_features = xmppuv__strndup(c->features_text, c->features_len);
    c->auth_features_len = c->auth_features != NULL ? c->features_len : 0;
  }
  /* XEP-0386: bind in the login when the server offers it there and the
   * engine allows it (no session to resume); 2: with SM enabled inline
   * too, when Bind2 lists it and SM is on. */
  const xmppuv_stanza_t *inline_el = xmppuv_stanza_child(sasl2, "inline", XMPPUV__NS_SASL2);
  const xmppuv_stanza_t *bind2 = xmppuv_stanza_child(inline_el, "bind", XMPPUV__NS_BIND2);
  c->bind2 = 0;
  /* XEP-0198 inline resumption where SASL2 lists SM among its inline
   * features. */
  c->resume_sent = c->sasl2 && c->inline_resume != NULL &&
                   xmppuv_stanza_child(inline_el, "sm", XMPPUV__NS_SM) != NULL;
  /* A resource the app asked for is bound the RFC 6120 way: Bind2 lets the
   * server choose it. With a session to resume, Bind2 only as the inline
   * resumption's fallback. */
  if (bind2 != NULL && s->cfg.resource == NULL && !c->fast_invalidate &&
      (c->inline_resume == NULL || c->resume_sent)) {
    c->bind2 = 1;
    const xmppuv_stanza_t *feats = xmppuv_stanza_child(bind2, "inline", XMPPUV__NS_BIND2);
    for (xmppuv_stanza_t *f = xmppuv_stanza_child(feats, "feature", XMPPUV__NS_BIND2); f != NULL;
         f = xmppuv_stanza_next(f, "feature", XMPPUV__NS_BIND2)) {
      const char *var = xmppuv_stanza_attr(f, "var");
      if (var != NULL && strcmp(var, XMPPUV__NS_SM) == 0 && c->bind2_sm_enable != NULL)
        c->bind2 = 2;
    }
  }
  /* XEP-0484: FAST, listed among SASL2's inline features with its HT
   * mechanisms. The token, where it can be used; else a token is asked
   * for in the password login. */
  const xmppuv_stanza_t *fast = xmppuv_stanza_child(inline_el, "fast", XMPPUV__NS_FAST);
  c->fast_requested = NULL;
  /* XEP-0484 §8: FAST only over TLS (loopback tests aside, as for PLAIN). */
  if (fast != NULL && !c->tls && !s->cfg.allow_plain_insecure) fast = NULL;
  const char *fast_mechs[MAX_LISTED];
  size_t n_fast = 0;
  for (xmppuv_stanza_t *m = xmppuv_stanza_child(fast, "mechanism", NULL);
       m != NULL && n_fast < MAX_LISTED; m = xmppuv_stanza_next(m, "mechanism", NULL))
    fast_mechs[n_fast++] = child_text(m);
  if (fast != NULL && fast_login(s, features, fast_mechs, n_fast)) return;
  if (c->fast_invalidate) {
    /* Only the token may log in to invalidate it. */
    xmppuv__session_fail(s, XMPPUV_ETOKEN, NULL,
                         "the server offers no FAST login for this token, so it cannot be "
                         "invalidated there; it is forgotten here",
                         features, 1, NULL);
    return;
  }
  ht_binds_t binds = {c->cb, features};
  const char *want = fast != NULL && c->fast_request && s->cfg.username != NULL
                         ? xmppuv__ht_choose(fast_mechs, n_fast, both_bind, &binds)
                         : NULL;
  if (want != NULL && strlen(want) < sizeof c->fast_requested_buf) {
    memcpy(c->fast_requested_buf, want, strlen(want) + 1);
    c->fast_requested = c->fast_requested_buf;
  }
  if (sasl2 != NULL)
    mechs_el = sasl2;
  else
    mechs_el = xmppuv_stanza_child(features, "mechanisms", XMPPUV__NS_SASL);
  if (mechs_el == NULL) {
    xmppuv__session_fail(s, XMPPUV_ENOMECH, NULL, "the server offers no SASL mechanisms",
                         features, 1, NULL);
    return;
  }
  const char *offered[MAX_LISTED];
  size_t n_offered = 0;
  for (xmppuv_stanza_t *m = xmppuv_stanza_child(mechs_el, "mechanism", NULL);
       m != NULL && n_offered < MAX_LISTED; m = xmppuv_stanza_next(m, "mechanism", NULL))
    offered[n_offered++] = child_text(m);
  if (c->sasl2)
    xmppuv__logf(s->log, XMPPUV_LOG_DEBUG, "sasl", "the server offers SASL2 (XEP-0388)");

  /* XEP-0440: the channel-binding types the server supports. */
  const char *server_cb[16];
  size_t n_server_cb = 0;
  const xmppuv_stanza_t *cb_el =
      xmppuv_stanza_child(features, "sasl-channel-binding", XMPPUV__NS_SASL_CB);
  for (xmppuv_stanza_t *e = xmppuv_stanza_child(cb_el, "channel-binding", NULL);
       e != NULL && n_server_cb < 16; e = xmppuv_stanza_next(e, "channel-binding", NULL)) {
    const char *type = xmppuv_stanza_attr(e, "type");
    if (type != NULL) server_cb[n_server_cb++] = type;
  }
  const char *ours[XMPPUV__CB_MAX_TYPES];
  size_t n_ours = c->cb != NULL ? c->cb->n : 0;
  for (size_t i = 0; i < n_ours; i++) ours[i] = c->cb->b[i].type;

  /* Downgrade protection across connections (the XEP-0474 hash protects
   * one exchange; this, what an earlier login of this client used). */
  int cb_offered = 0;
  for (size_t i = 0; i < n_offered && !cb_offered; i++)
    cb_offered = xmppuv__mech_is_plus(xmppuv__mech_from_name(offered[i]));
  if (c->was_sasl2 && s->cfg.sasl2 && !c->sasl2 &&
      downgraded(s, "the server offered SASL2 before and no longer does", features))
    return;
  if (c->was_cb && n_ours > 0 && !cb_offered &&
      downgraded(s, "the server offered channel binding before and no longer does", features))
    return;

  xmppuv__sasl_exchange_config_t xc;
  memset(&xc, 0, sizeof xc);
  xc.username = s->cfg.username;
  xc.have_credentials = s->cfg.have_credentials;
  xc.allow_anonymous = s->cfg.allow_anonymous;
  xc.allow_external = s->cfg.allow_external;
  xc.allow_plain_insecure = s->cfg.allow_plain_insecure;
  xc.mechanisms = s->cfg.mechanisms;
  int rc = xmppuv__sasl_exchange_new(&xc, &c->sasl);
  for (size_t i = 0; rc == 0 && i < s->n_offered; i++)
    rc = xmppuv__sasl_exchange_offer_keys(c->sasl, s->offered[i]);
  if (rc != 0) {
    xmppuv__session_fail(s, rc, NULL, NULL, NULL, 0, NULL);
    return;
  }
  xmppuv__sasl_context_t ctx = {offered, n_offered, cb_el != NULL, server_cb, n_server_cb,
                                c->tls, ours, n_ours, cb_data, c->cb};
  xmppuv__buf_t initial = XMPPUV__BUF_INIT;
  rc = xmppuv__sasl_exchange_begin(c->sasl, &ctx, &initial);
  if (rc == XMPPUV_ENOMECH && c->sasl2 && !c->quick &&
      xmppuv_stanza_child(features, "mechanisms", XMPPUV__NS_SASL) != NULL) {
    /* Nothing usable in SASL2's list, but RFC 6120 SASL is offered too:
     * log in that way (and do not start the next connection's login from
     * these features). */
    xmppuv__logf(s->log, XMPPUV_LOG_INFO, "sasl",
                 "no SASL2 mechanism both sides accept: using RFC 6120 SASL");
    xmppuv__sasl_buf_wipe(&initial);
    xmppuv__sasl_exchange_free(c->sasl);
    c->sasl = NULL;
    xmppuv__free(c->auth_features);
    c->auth_features = NULL;
    c->auth_features_len = 0;
    c->sasl2_unusable = 1;
    xmppuv__auth_start(s, features);
    return;
  }
  xmppuv__mech_t mech = xmppuv__sasl_exchange_mech(c->sasl);
  if (c->quick && !c->quick_checked && (mech == XMPPUV__MECH_PLAIN || rc < 0)) {
    /* A one-flight login sends before the server's features are seen: not
     * the password itself (PLAIN), only proofs that are worthless to
     * anyone else (FAST, SCRAM). Wait for the features instead. */
    xmppuv__sasl_buf_wipe(&initial);
    xmppuv__sasl_exchange_free(c->sasl);
    c->sasl = NULL;
    c->quick = 0;
    xmppuv__logf(s->log, XMPPUV_LOG_DEBUG, "sasl",
                 "no one-flight login with %s: waiting for the server's features",
                 mech != XMPPUV__MECH_NONE ? xmppuv__mech_name(mech) : "no mechanism");
    return;
  }
  c->mech = mech;
  if (mech == XMPPUV__MECH_PLAIN && c->was_strong &&
      downgraded(s, "only PLAIN is left of what the server offered, after a stronger "
                    "login before", features)) {
    xmppuv__sasl_buf_wipe(&initial);
    return;
  }
  if (mech != XMPPUV__MECH_NONE) {
    const char *cbt = xmppuv__sasl_exchange_cb_type(c->sasl);
    xmppuv__logf(s->log, XMPPUV_LOG_DEBUG, "sasl", "using %s%s%s", xmppuv__mech_name(mech),
                 cbt[0] ? " with " : "", cbt);
  }
  c->state = ST_SASL;
  if (rc == XMPPUV__SASL_WAIT) {
    xmppuv__session_wait_credentials(s);
  } else if (rc == 0) {
    /* An empty initial response is sent as "=" (RFC 6120 §6.4.2). */
    rc = send_sasl(s, "auth", xmppuv__mech_name(mech), initial.data, initial.len, 1);
    if (rc != 0) xmppuv__session_fail(s, rc, NULL, NULL, NULL, 0, NULL);
  } else {
    exchange_failed(s, rc, features);
  }
  xmppuv__sasl_buf_wipe(&initial);
}

int xmppuv__auth_password(xmppuv__session_t *s, const char *password) {
  xmppuv__session_conn_t *c = &s->c;
  if (c->state != ST_SASL || c->sasl == NULL) return XMPPUV_ESTATE;
  xmppuv__buf_t initial = XMPPUV__BUF_INIT;
  int rc = xmppuv__sasl_exchange_password(c->sasl, password, &initial);
  if (rc == 0)
    rc = send_sasl(s, "auth", xmppuv__mech_name(xmppuv__sasl_exchange_mech(c->sasl)),
                   initial.data, initial.len, 1);
  xmppuv__sasl_buf_wipe(&initial);
  if (rc != 0) exchange_failed(s, rc, NULL);
  xmppuv__session_credentials_given(s);
  return rc;
}

int xmppuv__auth_keys(xmppuv__session_t *s, const xmppuv__scram_keys_t *keys) {
  xmppuv__session_conn_t *c = &s->c;
  if (c->state != ST_SASL || c->sasl == NULL) return XMPPUV_ESTATE;
  xmppuv__buf_t reply = XMPPUV__BUF_INIT;
  int rc = xmppuv__sasl_exchange_keys(c->sasl, keys, &reply);
  if (rc == 0) rc = send_sasl(s, "response", NULL, reply.data, reply.len, 0);
  xmppuv__sasl_buf_wipe(&reply);
  if (rc == XMPPUV__SASL_WAIT) rc = XMPPUV_EINVAL; /* keys for another salt */
  if (rc != 0) exchange_failed(s, rc, NULL);
  xmppuv__session_credentials_given(s);
  return rc;
}

/* RFC 6120 §6.5: <failure><condition/><text/></failure>. SASL2's has the
 * same condition (in the RFC 6120 namespace) and its text in its own. */
static void fast_rejected(xmppuv__session_t *s, const char *condition, const char *text);

static void sasl_failure(xmppuv__session_t *s, const xmppuv_stanza_t *el) {
  const char *condition = NULL;
  for (xmppuv_stanza_t *c = xmppuv_stanza_child(el, NULL, XMPPUV__NS_SASL); c != NULL;
       c = xmppuv_stanza_next(c, NULL, XMPPUV__NS_SASL)) {
    if (strcmp(xmppuv_stanza_name(c), "text") != 0) {
      condition = xmppuv_stanza_name(c);
      break;
    }
  }
  const char *text = xmppuv_stanza_child_text(el, "text", XMPPUV__NS_SASL);
  if (text == NULL) text = xmppuv_stanza_child_text(el, "text", XMPPUV__NS_SASL2);
  if (s->c.fast_used) {
    fast_rejected(s, condition, text);
    return;
  }
  /* Only a temporary failure or an abort is worth another try. */
  int fatal = condition == NULL || (strcmp(condition, "temporary-auth-failure") != 0 &&
                                    strcmp(condition, "aborted") != 0);
  xmppuv__session_fail(s, XMPPUV_EAUTH, condition ? condition : "not-authorized", text, el,
                       fatal, NULL);
}

static void sasl_challenge(xmppuv__session_t *s, const xmppuv_stanza_t *el) {
  xmppuv__session_conn_t *c = &s->c;
  if (c->fast_used) {
    xmppuv__session_fail(s, XMPPUV_EPROTO, NULL,
                         "the server sent a SASL challenge to a one-message FAST login", el, 0,
                         NULL);
    return;
  }
  xmppuv__buf_t data = XMPPUV__BUF_INIT, reply = XMPPUV__BUF_INIT;
  const char *text = child_text(el);
  int rc = xmppuv__sasl_payload_decode(text, strlen(text), &data);
  if (rc == 0)
    rc = xmppuv__sasl_exchange_challenge(c->sasl, data.data ? data.data : "", data.len,
                                         &reply);
  if (rc == 0) rc = send_sasl(s, "response", NULL, reply.data, reply.len, 0);
  xmppuv__sasl_buf_wipe(&data);
  xmppuv__sasl_buf_wipe(&reply);
  if (rc == XMPPUV__SASL_WAIT)
    xmppuv__session_wait_credentials(s);
  else if (rc != 0)
    exchange_failed(s, rc, el);
}

/* The server's HT message, from <additional-data/>: it knows the token. */
static int fast_verify(xmppuv__session_t *s, const void *data, size_t len) {
  xmppuv__session_conn_t *c = &s->c;
  xmppuv__ht_t ht;
  if (xmppuv__ht_parse(c->fast_token_mech, &ht) != 0) return XMPPUV_EPROTO;
  unsigned char cb[XMPPUV__CB_MAX_DATA];
  size_t cb_len = 0;
  int rc = ht_binding(c, &ht, cb, &cb_len);
  if (rc == 0) rc = xmppuv__ht_verify(&ht, c->fast_token, cb, cb_len, data, len);
  xmppuv__secure_zero(cb, sizeof cb);
  return rc;
}

/* XEP-0484: <token xmlns='urn:xmpp:fast:0' token='...' expiry='...'/> in
 * <success/>, the one asked for, or a rotation of the token used. 0 or
 * XMPPUV_ENOMEM. */
static int take_token(xmppuv__session_t *s, const xmppuv_stanza_t *success) {
  xmppuv__session_conn_t *c = &s->c;
  const xmppuv_stanza_t *t = xmppuv_stanza_child(success, "token", XMPPUV__NS_FAST);
  const char *token = xmppuv_stanza_attr(t, "token");
  const char *mech = c->fast_used ? c->fast_token_mech : c->fast_requested;
  if (token == NULL || token[0] == '\0' || mech == NULL) {
    if (t != NULL)
      xmppuv__logf(s->log, XMPPUV_LOG_WARN, "sasl", "ignored a FAST token %s",
                   mech == NULL ? "that was not asked for" : "without a value");
    return 0;
  }
  const char *expiry = xmppuv_stanza_attr(t, "expiry");
  int rc = 0;
  c->new_token = xmppuv__strdup_opt(token, &rc);
  c->new_token_mech = xmppuv__strdup_opt(mech, &rc);
  c->new_token_expiry = xmppuv__strdup_opt(expiry != NULL ? expiry : "", &rc);
  if (rc == 0)
    xmppuv__logf(s->log, XMPPUV_LOG_DEBUG, "sasl", "the server gave a FAST token for %s%s%s",
                 mech, expiry != NULL ? ", expiring " : "", expiry != NULL ? expiry : "");
  return rc;
}

/* XEP-0484 §"Security": a rejected token is given up, and the login goes on
 * with the other mechanisms on the same stream (the stream lives on after
 * a SASL failure, RFC 6120 §6.4.5). The engine is told first. */
static void fast_rejected(xmppuv__session_t *s, const char *condition, const char *text) {
  xmppuv__session_conn_t *c = &s->c;
  char why[256];
  snprintf(why, sizeof why, "the server rejected the FAST token (%s%s%s); logging in with the "
           "password", condition ? condition : "no condition", text ? ": " : "",
           text ? text : "");
  xmppuv__free(c->rejected_condition);
  xmppuv__free(c->rejected_text);
  int rc = 0;
  c->rejected_condition = xmppuv__strdup_opt(condition ? condition : "not-authorized", &rc);
  c->rejected_text = xmppuv__strdup_opt(why, &rc);
  if (rc != 0) {
    xmppuv__session_fail(s, rc, NULL, NULL, NULL, 0, NULL);
    return;
  }
  xmppuv__logf(s->log, XMPPUV_LOG_WARN, "sasl", "%s", why);
  if (c->fast_invalidate) {
    /* Invalidating: the server does not take the token anyway. */
    xmppuv__session_fail(s, XMPPUV_ETOKEN, c->rejected_condition,
                         "the server no longer takes the FAST token: it is forgotten here",
                         NULL, 1, NULL);
    return;
  }
  xmppuv__session_push(s, XMPPUV__SESS_TOKEN_REJECTED, NULL);
  c->fast_used = 0;
  c->fast_rejected = 1;
  xmppuv__free_secret(c->fast_token);
  c->fast_token = NULL;
  const xmppuv_stanza_t *features = xmppuv__session_features(s);
  if (features == NULL) {
    xmppuv__session_fail(s, XMPPUV_ENOMEM, NULL, NULL, NULL, 0, NULL);
    return;
  }
  xmppuv__auth_start(s, features);
}

static void sasl_success(xmppuv__session_t *s, const xmppuv_stanza_t *el) {
  xmppuv__session_conn_t *c = &s->c;
  xmppuv__buf_t data = XMPPUV__BUF_INIT;
  /* SASL2: the mechanism's last data (SCRAM's server signature) is in
   * <additional-data/>; RFC 6120: the content itself. */
  const char *text = c->sasl2 ? xmppuv_stanza_child_text(el, "additional-data", XMPPUV__NS_SASL2)
                              : child_text(el);
  if (text == NULL) text = "";
  int rc = xmppuv__sasl_payload_decode(text, strlen(text), &data);
  if (rc == 0 && c->fast_used)
    rc = fast_verify(s, data.data ? data.data : "", data.len);
  else if (rc == 0)
    rc = xmppuv__sasl_exchange_success(c->sasl, data.data ? data.data : "", data.len);
  xmppuv__sasl_buf_wipe(&data);
  if (rc != 0) {
    xmppuv__session_fail(s, rc, NULL,
                         rc == XMPPUV_EAUTHSERVER ? why(s, rc) : "bad SASL success data", el,
                         rc != XMPPUV_ENOMEM, NULL);
    return;
  }
  const char *authzid =
      c->sasl2 ? xmppuv_stanza_child_text(el, "authorization-identifier", XMPPUV__NS_SASL2)
               : NULL;
  /* XEP-0198 inline resumption: <resumed/> or <failed/> answers the
   * <resume/>. A server that resumed ignores the bind (XEP-0386): a
   * <bound/> beside <resumed/> is not looked at. */
  int resumed = 0;
  if (c->resume_sent) {
    xmppuv_stanza_t *ans = xmppuv_stanza_child(el, "resumed", XMPPUV__NS_SM);
    resumed = ans != NULL;
    if (ans == NULL) ans = xmppuv_stanza_child(el, "failed", XMPPUV__NS_SM);
    if (ans != NULL) c->resume_answer = xmppuv_stanza_ref(ans);
  }
  /* XEP-0386: <bound/> says the login bound; the authorization identifier
   * is then the full JID, and <bound/> holds the answer to an inline
   * <enable/>. */
  const xmppuv_stanza_t *bound =
      c->bind2 && !resumed ? xmppuv_stanza_child(el, "bound", XMPPUV__NS_BIND2) : NULL;
  if (bound != NULL) {
    if (authzid == NULL || strchr(authzid, '/') == NULL) {
      xmppuv__session_fail(s, XMPPUV_EBIND, NULL,
                           "the server bound a resource (Bind2) without saying the full JID",
                           el, 0, NULL);
      return;
    }
    xmppuv__free(c->bound_jid);
    c->bound_jid = xmppuv__strdup(authzid);
    if (c->bound_jid == NULL) {
      xmppuv__session_fail(s, XMPPUV_ENOMEM, NULL, NULL, NULL, 0, NULL);
      return;
    }
    c->bind2_bound = 1;
    xmppuv_stanza_t *answer = xmppuv_stanza_child(bound, "enabled", XMPPUV__NS_SM);
    if (answer == NULL) answer = xmppuv_stanza_child(bound, "failed", XMPPUV__NS_SM);
    if (answer != NULL && c->bind2 == 2) c->inline_sm = xmppuv_stanza_ref(answer);
  }
  if (take_token(s, el) != 0) {
    xmppuv__session_fail(s, XMPPUV_ENOMEM, NULL, NULL, NULL, 0, NULL);
    return;
  }
  xmppuv__logf(s->log, XMPPUV_LOG_INFO, "sasl", "authenticated with %s%s%s%s%s",
               xmppuv__session_mechanism(s), c->sasl2 ? " (SASL2)" : "",
               c->sasl != NULL && xmppuv__sasl_exchange_used_cached_keys(c->sasl)
                   ? " (cached keys)"
                   : "",
               authzid != NULL ? " as " : "", authzid != NULL ? authzid : "");
  /* RFC 6120 §6.4.6: the stream restarts; SASL2 (XEP-0388 §2.6): it does
   * not, and the authenticated stream's features come next. */
  c->authenticated = 1;
}

/* XEP-0388 §2.5: the server wants tasks done (a second factor, a password
 * change, XEP-0480 upgrades) before it says success. None is supported: the
 * login cannot complete, so say which tasks, and do not retry. */
static void sasl2_continue(xmppuv__session_t *s, const xmppuv_stanza_t *el) {
  char tasks[160] = "";
  size_t len = 0;
  const xmppuv_stanza_t *list = xmppuv_stanza_child(el, "tasks", XMPPUV__NS_SASL2);
  for (xmppuv_stanza_t *t = xmppuv_stanza_child(list, "task", XMPPUV__NS_SASL2);
       t != NULL && len + 2 < sizeof tasks; t = xmppuv_stanza_next(t, "task", XMPPUV__NS_SASL2)) {
    int n = snprintf(tasks + len, sizeof tasks - len, "%s%s", len ? ", " : "", child_text(t));
    if (n < 0) break;
    len += (size_t)n < sizeof tasks - len ? (size_t)n : sizeof tasks - len - 1;
  }
  char text[256];
  snprintf(text, sizeof text,
           "the server asks for SASL2 tasks this client does not support (%s): the login "
           "cannot finish",
           tasks[0] ? tasks : "none named");
  xmppuv__session_fail(s, XMPPUV_EAUTH, "continue", text, el, 1, NULL);
}

int xmppuv__auth_element(xmppuv__session_t *s, const xmppuv_stanza_t *el) {
  const char *ns = s->c.sasl2 ? XMPPUV__NS_SASL2 : XMPPUV__NS_SASL;
  if (xmppuv__session_is_in(el, "challenge", ns))
    sasl_challenge(s, el);
  else if (xmppuv__session_is_in(el, "success", ns))
    sasl_success(s, el);
  else if (xmppuv__session_is_in(el, "failure", ns))
    sasl_failure(s, el);
  else if (s->c.sasl2 && xmppuv__session_is_in(el, "continue", ns))
    sasl2_continue(s, el);
  else
    return 0;
  return 1;
}
