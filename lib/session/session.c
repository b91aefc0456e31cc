#include "session/session.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "sasl/sasl.h"
#include "sasl/scram.h"
#include "session/stream_error.h"
#include "util/ns.h"
#include "xml/redact.h"
#include "xml/serialize.h"


/* Room for any channel-binding value (tls-unique 12, tls-exporter 32). */
#define CB_MAX 64

/* The largest password we ask the app for (PRECIS has no limit; servers
 * do: 1 KiB is far above any of theirs). */
#define PASSWORD_MAX 1024

typedef enum {
  ST_IDLE,
  ST_OPENING,        /* header sent, waiting for the server's */
  ST_FEATURES,       /* header received, waiting for features */
  ST_STARTTLS,       /* <starttls/> sent */
  ST_TLS,            /* the driver runs the TLS handshake */
  ST_SASL,           /* <auth/> sent */
  ST_AUTHENTICATED,  /* features of the authenticated stream read */
  ST_BINDING,        /* bind iq sent */
  ST_LEGACY_SESSION, /* RFC 3921 session iq sent */
  ST_STREAMING,
  ST_FAILED
} state_t;

typedef enum { RESTART_NONE, RESTART_TLS, RESTART_SASL } restart_t;

struct xmppuv__session {
  xmppuv__session_config_t cfg; /* strings owned */
  xmppuv__session_events_t ev;
  void *ud;
  const xmppuv__log_t *log;
  xmppuv__parser_t *parser;

  state_t state;
  int fail_code; /* why the session failed */
  int tls;
  int authenticated;
  int closing;
  int stream_open;
  restart_t restart; /* pending at the end of the current feed */

  /* SASL */
  xmppuv__mech_t mech;
  xmppuv__scram_t *scram;
  int scram_verified;
  int client_final_sent;

  /* what the authenticated stream's features said */
  int session_required;
  size_t peer_max_bytes; /* XEP-0478 max-bytes of the last features, 0 = none */
  unsigned bind_seq;
  char bind_id[24];
  char *bound_jid;

  xmppuv__buf_t out; /* scratch for building elements */
};

/* ---- small helpers -------------------------------------------------------- */

static int write_raw(xmppuv__session_t *s, const char *data, size_t len) {
  return s->ev.write(s->ud, data, len);
}

static void trace_out(xmppuv__session_t *s, const char *what) {
  xmppuv__logf(s->log, XMPPUV_LOG_TRACE, "wire-out", "%s", what);
}

/* Fail once: tell the driver, which drops the connection. */
static void session_fail(xmppuv__session_t *s, int code, const char *condition,
                         const char *text, const xmppuv_stanza_t *el, int fatal,
                         const char *see_other_host) {
  if (s->state == ST_FAILED) return;
  s->state = ST_FAILED;
  s->fail_code = code;
  xmppuv_error_t err = {code, condition, text, el, fatal};
  xmppuv__logf(s->log, fatal ? XMPPUV_LOG_ERROR : XMPPUV_LOG_WARN, "session",
               "%s%s%s%s%s", xmppuv_strerror(code), condition ? ": " : "",
               condition ? condition : "", text ? " - " : "", text ? text : "");
  if (s->ev.failed != NULL) s->ev.failed(s->ud, &err, see_other_host);
}

/* We end the stream with an error of our own (RFC 6120 §4.9). */
static void send_stream_error(xmppuv__session_t *s, const char *condition) {
  xmppuv__buf_t b = XMPPUV__BUF_INIT;
  if (xmppuv__buf_append_str(&b, "<stream:error><") == 0 &&
      xmppuv__buf_append_str(&b, condition) == 0 &&
      xmppuv__buf_append_str(&b, " xmlns='" XMPPUV__NS_STREAM_ERRORS "'/></stream:error></stream:stream>") == 0) {
    trace_out(s, b.data);
    write_raw(s, b.data, b.len);
  }
  xmppuv__buf_free(&b);
}

static int send_header(xmppuv__session_t *s) {
  xmppuv__buf_t *b = &s->out;
  xmppuv__buf_clear(b);
  int rc = xmppuv__buf_append_str(b,
      "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
      "xmlns:stream='http://etherx.jabber.org/streams' version='1.0' to='");
  if (rc == 0) rc = xmppuv__escape_attr(b, s->cfg.domain, strlen(s->cfg.domain));
  if (rc == 0) rc = xmppuv__buf_append_char(b, '\'');
  if (rc == 0 && s->tls && s->cfg.bare_jid != NULL) {
    rc = xmppuv__buf_append_str(b, " from='");
    if (rc == 0) rc = xmppuv__escape_attr(b, s->cfg.bare_jid, strlen(s->cfg.bare_jid));
    if (rc == 0) rc = xmppuv__buf_append_char(b, '\'');
  }
  if (rc == 0 && s->cfg.lang != NULL) {
    rc = xmppuv__buf_append_str(b, " xml:lang='");
    if (rc == 0) rc = xmppuv__escape_attr(b, s->cfg.lang, strlen(s->cfg.lang));
    if (rc == 0) rc = xmppuv__buf_append_char(b, '\'');
  }
  if (rc == 0) rc = xmppuv__buf_append_char(b, '>');
  if (rc != 0) return rc;
  trace_out(s, b->data);
  rc = write_raw(s, b->data, b->len);
  if (rc != 0) return rc;
  s->state = ST_OPENING;
  s->stream_open = 0;
  if (s->ev.status != NULL) s->ev.status(s->ud, XMPPUV_STATUS_OPENING);
  return 0;
}

/* ---- SASL ------------------------------------------------------------------ */

/* <auth/> or <response/> with base64 content; the content never reaches a
 * log line. */
static int send_sasl(xmppuv__session_t *s, const char *name, const char *mech,
                     const void *data, size_t len, int empty_marker) {
  xmppuv__buf_t *b = &s->out;
  xmppuv__buf_clear(b);
  int rc = xmppuv__buf_append_char(b, '<');
  if (rc == 0) rc = xmppuv__buf_append_str(b, name);
  if (rc == 0) rc = xmppuv__buf_append_str(b, " xmlns='" XMPPUV__NS_SASL "'");
  if (rc == 0 && mech != NULL) {
    rc = xmppuv__buf_append_str(b, " mechanism='");
    if (rc == 0) rc = xmppuv__buf_append_str(b, mech);
    if (rc == 0) rc = xmppuv__buf_append_char(b, '\'');
  }
  if (rc == 0) rc = xmppuv__buf_append_char(b, '>');
  size_t content_at = b->len;
  if (rc == 0 && (len > 0 || empty_marker))
    rc = xmppuv__sasl_payload_encode(data, len, b);
  size_t content_end = b->len;
  if (rc == 0) rc = xmppuv__buf_append_str(b, "</");
  if (rc == 0) rc = xmppuv__buf_append_str(b, name);
  if (rc == 0) rc = xmppuv__buf_append_char(b, '>');
  if (rc == 0) {
    if (XMPPUV__LOG_ON(s->log, XMPPUV_LOG_TRACE))
      xmppuv__log_emit(s->log, XMPPUV_LOG_TRACE, "wire-out", "%.*s%s%s",
                       (int)content_at, b->data,
                       content_end > content_at ? XMPPUV__REDACTED : "",
                       b->data + content_end);
    rc = write_raw(s, b->data, b->len);
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

/* RFC 6120 §6.5: <failure><condition/><text/></failure>. */
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
  /* Only a temporary failure or an abort is worth another try. */
  int fatal = condition == NULL || (strcmp(condition, "temporary-auth-failure") != 0 &&
                                    strcmp(condition, "aborted") != 0);
  session_fail(s, XMPPUV_EAUTH, condition ? condition : "not-authorized", text, el,
               fatal, NULL);
}

static int get_password(xmppuv__session_t *s, char *buf) {
  buf[0] = '\0';
  if (s->ev.password == NULL) return XMPPUV_EAUTH;
  int rc = s->ev.password(s->ud, buf, PASSWORD_MAX);
  buf[PASSWORD_MAX - 1] = '\0';
  return rc;
}

/* Split "A,B,C" (the app's allow-list) into pointers into a copy. */
static size_t split_list(char *copy, const char **items, size_t max) {
  size_t n = 0;
  char *p = copy;
  while (p != NULL && *p != '\0' && n < max) {
    char *comma = strchr(p, ',');
    if (comma != NULL) *comma = '\0';
    while (*p == ' ') p++;
    if (*p != '\0') items[n++] = p;
    p = comma ? comma + 1 : NULL;
  }
  return n;
}

static void start_sasl(xmppuv__session_t *s, const xmppuv_stanza_t *features) {
  const xmppuv_stanza_t *mechs_el = xmppuv_stanza_child(features, "mechanisms", XMPPUV__NS_SASL);
  if (mechs_el == NULL) {
    session_fail(s, XMPPUV_ENOMECH, NULL, "the server offers no SASL mechanisms",
                 features, 1, NULL);
    return;
  }
  const char *offered[32];
  size_t n_offered = 0;
  for (xmppuv_stanza_t *m = xmppuv_stanza_child(mechs_el, "mechanism", NULL);
       m != NULL && n_offered < 32; m = xmppuv_stanza_next(m, "mechanism", NULL))
    offered[n_offered++] = child_text(m);

  /* XEP-0440: the channel-binding types the server supports. */
  const char *server_cb[16];
  size_t n_server_cb = 0;
  const xmppuv_stanza_t *cb_el = xmppuv_stanza_child(features, "sasl-channel-binding", XMPPUV__NS_SASL_CB);
  for (xmppuv_stanza_t *c = xmppuv_stanza_child(cb_el, "channel-binding", NULL);
       c != NULL && n_server_cb < 16; c = xmppuv_stanza_next(c, "channel-binding", NULL)) {
    const char *type = xmppuv_stanza_attr(c, "type");
    if (type != NULL) server_cb[n_server_cb++] = type;
  }

  const char *ours[4];
  size_t n_ours = 0;
  if (s->tls && s->ev.cb_types != NULL) n_ours = s->ev.cb_types(s->ud, ours, 4);

  char *allowed_copy = NULL;
  const char *allowed[32];
  size_t n_allowed = 0;
  if (s->cfg.mechanisms != NULL) {
    allowed_copy = xmppuv__strdup(s->cfg.mechanisms);
    if (allowed_copy == NULL) {
      session_fail(s, XMPPUV_ENOMEM, NULL, NULL, NULL, 0, NULL);
      return;
    }
    n_allowed = split_list(allowed_copy, allowed, 32);
  }

  xmppuv__sasl_offer_t offer = {offered, n_offered, cb_el != NULL, server_cb, n_server_cb};
  xmppuv__sasl_policy_t policy;
  memset(&policy, 0, sizeof policy);
  policy.tls_active = s->tls;
  policy.allow_plain_insecure = s->cfg.allow_plain_insecure;
  policy.have_password = s->ev.password != NULL && s->cfg.username != NULL;
  policy.allow_anonymous = s->cfg.allow_anonymous;
  policy.allowed = s->cfg.mechanisms != NULL ? allowed : NULL;
  policy.n_allowed = n_allowed;
  xmppuv__sasl_choice_t choice;
  int rc = xmppuv__sasl_choose(&offer, ours, n_ours, &policy, &choice);
  xmppuv__free(allowed_copy);
  if (rc != 0) {
    session_fail(s, rc, NULL,
                 rc == XMPPUV_EDOWNGRADE
                     ? "the server's channel-binding offer looks tampered with"
                     : "no SASL mechanism both sides accept",
                 features, 1, NULL);
    return;
  }
  s->mech = choice.mech;
  const char *mech_name = xmppuv__mech_name(choice.mech);
  xmppuv__logf(s->log, XMPPUV_LOG_DEBUG, "sasl", "using %s%s%s", mech_name,
               choice.cb_type[0] ? " with " : "", choice.cb_type);

  xmppuv__buf_t initial = XMPPUV__BUF_INIT;
  char password[PASSWORD_MAX];
  password[0] = '\0';
  if (xmppuv__mech_is_scram(choice.mech)) {
    unsigned char cb[CB_MAX];
    size_t cb_len = 0;
    if (xmppuv__mech_is_plus(choice.mech)) {
      cb_len = sizeof cb;
      rc = s->ev.cb_data(s->ud, choice.cb_type, cb, &cb_len);
    }
    if (rc == 0) rc = get_password(s, password);
    if (rc == 0)
      rc = xmppuv__scram_new(choice.mech, s->cfg.username, password, choice.gs2_cb_flag,
                             cb_len ? cb : NULL, cb_len, NULL, &s->scram);
    xmppuv__secure_zero(password, sizeof password);
    if (rc == 0) rc = xmppuv__scram_client_first(s->scram, &initial);
  } else if (choice.mech == XMPPUV__MECH_PLAIN) {
    rc = get_password(s, password);
    if (rc == 0) rc = xmppuv__sasl_plain(NULL, s->cfg.username, password, &initial);
    xmppuv__secure_zero(password, sizeof password);
  } else if (choice.mech == XMPPUV__MECH_ANONYMOUS) {
    rc = xmppuv__sasl_anonymous(NULL, &initial);
  } else if (choice.mech == XMPPUV__MECH_EXTERNAL) {
    rc = xmppuv__sasl_external(NULL, &initial);
  } else {
    rc = XMPPUV_ENOMECH;
  }
  if (rc == 0) {
    s->state = ST_SASL;
    /* An empty initial response is sent as "=" (RFC 6120 §6.4.2). */
    rc = send_sasl(s, "auth", mech_name, initial.data, initial.len, 1);
  }
  xmppuv__sasl_buf_wipe(&initial);
  if (rc != 0) session_fail(s, rc, NULL, "could not start authentication", NULL, rc != XMPPUV_ENOMEM, NULL);
}

static void sasl_challenge(xmppuv__session_t *s, const xmppuv_stanza_t *el) {
  xmppuv__buf_t data = XMPPUV__BUF_INIT, reply = XMPPUV__BUF_INIT;
  const char *text = child_text(el);
  int rc = xmppuv__sasl_payload_decode(text, strlen(text), &data);
  if (rc == 0) {
    if (s->scram == NULL) {
      rc = XMPPUV_EPROTO; /* PLAIN/ANONYMOUS/EXTERNAL take no challenge */
    } else if (!s->client_final_sent) {
      rc = xmppuv__scram_server_first(s->scram, data.data ? data.data : "", data.len, &reply);
      if (rc == 0) {
        s->client_final_sent = 1;
        rc = send_sasl(s, "response", NULL, reply.data, reply.len, 0);
      }
    } else {
      /* RFC 6120 §6.3.10 allows the server-final message in a challenge,
       * answered by an empty response. */
      rc = xmppuv__scram_server_final(s->scram, data.data ? data.data : "", data.len);
      if (rc == 0) {
        s->scram_verified = 1;
        rc = send_sasl(s, "response", NULL, NULL, 0, 0);
      }
    }
  }
  xmppuv__sasl_buf_wipe(&data);
  xmppuv__sasl_buf_wipe(&reply);
  if (rc == 0) return;
  const char *why = rc == XMPPUV_EAUTHSERVER ? "the server could not prove it knows the password"
                    : rc == XMPPUV_EAUTHITER ? "the server asked for too few SCRAM iterations"
                    : rc == XMPPUV_EAUTH && s->scram ? xmppuv__scram_error_text(s->scram)
                                                     : "bad SASL challenge";
  session_fail(s, rc, NULL, why, el, rc != XMPPUV_ENOMEM, NULL);
}

static void sasl_success(xmppuv__session_t *s, const xmppuv_stanza_t *el) {
  int rc = 0;
  if (s->scram != NULL && !s->scram_verified) {
    /* RFC 5802 §9: authentication is complete only when the server's
     * signature checks out; <success/> without it proves nothing. */
    xmppuv__buf_t data = XMPPUV__BUF_INIT;
    const char *text = child_text(el);
    if (text[0] == '\0') {
      rc = XMPPUV_EAUTHSERVER;
    } else {
      rc = xmppuv__sasl_payload_decode(text, strlen(text), &data);
      if (rc == 0) rc = xmppuv__scram_server_final(s->scram, data.data ? data.data : "", data.len);
    }
    xmppuv__sasl_buf_wipe(&data);
  }
  if (rc != 0) {
    session_fail(s, rc, NULL,
                 rc == XMPPUV_EAUTHSERVER ? "the server could not prove it knows the password"
                                          : "bad SASL success data",
                 el, rc != XMPPUV_ENOMEM, NULL);
    return;
  }
  xmppuv__logf(s->log, XMPPUV_LOG_INFO, "sasl", "authenticated with %s",
               xmppuv__mech_name(s->mech));
  xmppuv__scram_free(s->scram);
  s->scram = NULL;
  s->authenticated = 1;
  s->restart = RESTART_SASL; /* RFC 6120 §6.4.6: a new stream */
  xmppuv__parser_pause(s->parser);
}

/* ---- binding --------------------------------------------------------------- */

static int send_bind(xmppuv__session_t *s) {
  xmppuv__buf_t *b = &s->out;
  xmppuv__buf_clear(b);
  snprintf(s->bind_id, sizeof s->bind_id, "bind-%u", ++s->bind_seq);
  int rc = xmppuv__buf_append_str(b, "<iq type='set' id='");
  if (rc == 0) rc = xmppuv__buf_append_str(b, s->bind_id);
  if (rc == 0) rc = xmppuv__buf_append_str(b, "'><bind xmlns='" XMPPUV__NS_BIND "'");
  if (rc == 0 && s->cfg.resource != NULL) {
    rc = xmppuv__buf_append_str(b, "><resource>");
    if (rc == 0) rc = xmppuv__escape_text(b, s->cfg.resource, strlen(s->cfg.resource));
    if (rc == 0) rc = xmppuv__buf_append_str(b, "</resource></bind></iq>");
  } else if (rc == 0) {
    rc = xmppuv__buf_append_str(b, "/></iq>");
  }
  if (rc != 0) return rc;
  trace_out(s, b->data);
  return write_raw(s, b->data, b->len);
}

static int send_legacy_session(xmppuv__session_t *s) {
  snprintf(s->bind_id, sizeof s->bind_id, "sess-%u", ++s->bind_seq);
  xmppuv__buf_t *b = &s->out;
  xmppuv__buf_clear(b);
  int rc = xmppuv__buf_append_str(b, "<iq type='set' id='");
  if (rc == 0) rc = xmppuv__buf_append_str(b, s->bind_id);
  if (rc == 0) rc = xmppuv__buf_append_str(b, "'><session xmlns='" XMPPUV__NS_SESSION "'/></iq>");
  if (rc != 0) return rc;
  trace_out(s, b->data);
  return write_raw(s, b->data, b->len);
}

/* RFC 6120 §8.3.2: the condition is the child of <error/> in the stanzas
 * namespace. */
static const char *stanza_error_condition(const xmppuv_stanza_t *iq) {
  const xmppuv_stanza_t *e = xmppuv_stanza_child(iq, "error", NULL);
  for (xmppuv_stanza_t *c = xmppuv_stanza_child(e, NULL, "urn:ietf:params:xml:ns:xmpp-stanzas");
       c != NULL; c = xmppuv_stanza_next(c, NULL, "urn:ietf:params:xml:ns:xmpp-stanzas"))
    if (strcmp(xmppuv_stanza_name(c), "text") != 0) return xmppuv_stanza_name(c);
  return NULL;
}

static int is_reply_to_bind(const xmppuv__session_t *s, const xmppuv_stanza_t *el) {
  const char *id = xmppuv_stanza_attr(el, "id");
  const char *type = xmppuv_stanza_attr(el, "type");
  return strcmp(xmppuv_stanza_name(el), "iq") == 0 && id != NULL &&
         strcmp(id, s->bind_id) == 0 && type != NULL &&
         (strcmp(type, "result") == 0 || strcmp(type, "error") == 0);
}

static void bind_reply(xmppuv__session_t *s, const xmppuv_stanza_t *el) {
  const char *type = xmppuv_stanza_attr(el, "type");
  if (strcmp(type, "error") == 0) {
    const char *condition = stanza_error_condition(el);
    const char *etype = xmppuv_stanza_attr(xmppuv_stanza_child(el, "error", NULL), "type");
    /* Only a "wait" error (try later) is worth reconnecting for. */
    int fatal = etype == NULL || strcmp(etype, "wait") != 0;
    session_fail(s, XMPPUV_EBIND, condition,
                 s->state == ST_BINDING ? "the server refused to bind a resource"
                                        : "the server refused the session",
                 el, fatal, NULL);
    return;
  }
  if (s->state == ST_BINDING) {
    const char *jid = xmppuv_stanza_child_text(xmppuv_stanza_child(el, "bind", XMPPUV__NS_BIND), "jid", NULL);
    if (jid == NULL || jid[0] == '\0') {
      session_fail(s, XMPPUV_EBIND, "bad-request", "bind result without a JID", el, 0, NULL);
      return;
    }
    xmppuv__free(s->bound_jid);
    s->bound_jid = xmppuv__strdup(jid);
    if (s->bound_jid == NULL) {
      session_fail(s, XMPPUV_ENOMEM, NULL, NULL, NULL, 0, NULL);
      return;
    }
    if (s->session_required) {
      s->state = ST_LEGACY_SESSION;
      int rc = send_legacy_session(s);
      if (rc != 0) session_fail(s, rc, NULL, NULL, NULL, 0, NULL);
      return;
    }
  }
  s->state = ST_STREAMING;
  xmppuv__logf(s->log, XMPPUV_LOG_INFO, "session", "bound as %s", s->bound_jid);
  if (s->ev.bound != NULL) s->ev.bound(s->ud, s->bound_jid);
}

/* ---- features and stream errors ---------------------------------------------- */

/* XEP-0478: <limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>N. Anything
 * that is not a plain positive decimal is no limit we can use. */
static size_t advertised_max_bytes(const xmppuv_stanza_t *features) {
  const xmppuv_stanza_t *limits = xmppuv_stanza_child(features, "limits", XMPPUV__NS_STREAM_LIMITS);
  const char *text = xmppuv_stanza_child_text(limits, "max-bytes", NULL);
  if (text == NULL || *text == '\0') return 0;
  size_t v = 0;
  for (; *text != '\0'; text++) {
    if (*text < '0' || *text > '9' || v > (SIZE_MAX - 9) / 10) return 0;
    v = v * 10 + (size_t)(*text - '0');
  }
  return v;
}

static void on_features(xmppuv__session_t *s, const xmppuv_stanza_t *features) {
  s->peer_max_bytes = advertised_max_bytes(features);
  if (!s->tls) {
    const xmppuv_stanza_t *starttls = xmppuv_stanza_child(features, "starttls", XMPPUV__NS_TLS);
    if (starttls != NULL && s->cfg.tls_required) {
      s->state = ST_STARTTLS;
      static const char req[] = "<starttls xmlns='" XMPPUV__NS_TLS "'/>";
      trace_out(s, req);
      int rc = write_raw(s, req, sizeof req - 1);
      if (rc != 0) session_fail(s, rc, NULL, NULL, NULL, 0, NULL);
      return;
    }
    if (s->cfg.tls_required) {
      /* No downgrade: a server (or someone in between) that does not offer
       * STARTTLS gets no credentials. */
      session_fail(s, XMPPUV_ETLSREQUIRED, NULL,
                   "the server does not offer STARTTLS and TLS is required", features,
                   1, NULL);
      return;
    }
  }
  if (!s->authenticated) {
    start_sasl(s, features);
    return;
  }
  /* The authenticated stream: binding must be offered (RFC 6120 §7.2). */
  if (xmppuv_stanza_child(features, "bind", XMPPUV__NS_BIND) == NULL) {
    session_fail(s, XMPPUV_EBIND, NULL, "the server offers no resource binding", features,
                 0, NULL);
    return;
  }
  /* RFC 6121 §A: the session iq only where it is not marked optional. */
  const xmppuv_stanza_t *sess = xmppuv_stanza_child(features, "session", XMPPUV__NS_SESSION);
  s->session_required = sess != NULL && xmppuv_stanza_child(sess, "optional", NULL) == NULL;
  s->state = ST_AUTHENTICATED;
  int sm = xmppuv_stanza_child(features, "sm", XMPPUV__NS_SM) != NULL;
  if (s->ev.authenticated != NULL) s->ev.authenticated(s->ud, sm);
}

static void on_stream_error(xmppuv__session_t *s, const xmppuv_stanza_t *el) {
  const char *condition = NULL;
  const char *see_other = NULL;
  for (xmppuv_stanza_t *c = xmppuv_stanza_child(el, NULL, XMPPUV__NS_STREAM_ERRORS); c != NULL;
       c = xmppuv_stanza_next(c, NULL, XMPPUV__NS_STREAM_ERRORS)) {
    if (strcmp(xmppuv_stanza_name(c), "text") == 0) continue;
    condition = xmppuv_stanza_name(c);
    if (strcmp(condition, "see-other-host") == 0) see_other = child_text(c);
    break;
  }
  const char *text = xmppuv_stanza_child_text(el, "text", XMPPUV__NS_STREAM_ERRORS);
  const xmppuv__stream_error_class_t *cls = xmppuv__stream_error_class(condition);
  session_fail(s, XMPPUV_ESTREAM, condition ? condition : "undefined-condition", text, el,
               cls->action == XMPPUV__SERR_FATAL, see_other);
}

/* ---- parser callbacks --------------------------------------------------------- */

static int on_stream_open(void *ud, const xmppuv_stanza_t *header) {
  xmppuv__session_t *s = ud;
  const char *version = xmppuv_stanza_attr(header, "version");
  /* RFC 6120 §4.7.5: no version means a pre-1.0 server. */
  if (version == NULL || strncmp(version, "1.", 2) != 0) {
    send_stream_error(s, "unsupported-version");
    session_fail(s, XMPPUV_EPROTO, "unsupported-version",
                 "the server does not speak XMPP 1.0", header, 1, NULL);
    return XMPPUV_EPROTO;
  }
  const char *id = xmppuv_stanza_attr(header, "id");
  s->stream_open = 1;
  if (s->state == ST_OPENING) s->state = ST_FEATURES;
  xmppuv__logf(s->log, XMPPUV_LOG_TRACE, "wire-in", "<stream:stream id='%s' version='%s'>",
               id ? id : "", version);
  if (s->ev.status != NULL) s->ev.status(s->ud, XMPPUV_STATUS_OPEN);
  return 0;
}

static int is_in(const xmppuv_stanza_t *el, const char *name, const char *ns) {
  const char *n = xmppuv_stanza_ns(el);
  return strcmp(xmppuv_stanza_name(el), name) == 0 && n != NULL && strcmp(n, ns) == 0;
}

static int on_element(void *ud, xmppuv_stanza_t *el) {
  xmppuv__session_t *s = ud;
  xmppuv__log_stanza(s->log, "in", el);
  if (is_in(el, "error", XMPPUV_NS_STREAMS)) {
    on_stream_error(s, el);
  } else if (s->closing && s->state != ST_STREAMING) {
    /* RFC 6120 §4.4: nothing more goes out after our </stream:stream>, so
     * a negotiation step (features, SASL, bind) is left unanswered. */
    xmppuv__logf(s->log, XMPPUV_LOG_DEBUG, "session", "ignored <%s/> after closing the stream",
                 xmppuv_stanza_name(el));
  } else if (s->state == ST_FEATURES) {
    if (is_in(el, "features", XMPPUV_NS_STREAMS))
      on_features(s, el);
    else
      xmppuv__logf(s->log, XMPPUV_LOG_DEBUG, "session", "ignored <%s/> before features",
                   xmppuv_stanza_name(el));
  } else if (s->state == ST_STARTTLS) {
    if (is_in(el, "proceed", XMPPUV__NS_TLS)) {
      s->state = ST_TLS;
      s->restart = RESTART_TLS;
      xmppuv__parser_pause(s->parser);
    } else if (is_in(el, "failure", XMPPUV__NS_TLS)) {
      session_fail(s, XMPPUV_ETLS, "failure", "the server refused STARTTLS", el, 0, NULL);
    }
  } else if (s->state == ST_SASL) {
    if (is_in(el, "challenge", XMPPUV__NS_SASL))
      sasl_challenge(s, el);
    else if (is_in(el, "success", XMPPUV__NS_SASL))
      sasl_success(s, el);
    else if (is_in(el, "failure", XMPPUV__NS_SASL))
      sasl_failure(s, el);
  } else if ((s->state == ST_BINDING || s->state == ST_LEGACY_SESSION) &&
             is_reply_to_bind(s, el)) {
    bind_reply(s, el);
  } else if (s->state == ST_AUTHENTICATED || s->state == ST_BINDING ||
             s->state == ST_LEGACY_SESSION || s->state == ST_STREAMING) {
    if (is_in(el, "features", XMPPUV_NS_STREAMS)) {
      /* Features again on a live stream (some servers re-send them):
       * nothing to negotiate twice. */
      xmppuv__logf(s->log, XMPPUV_LOG_DEBUG, "session", "ignored repeated stream features");
    } else if (s->ev.element != NULL) {
      s->ev.element(s->ud, el);
    }
  }
  xmppuv_stanza_unref(el);
  /* Stop parsing a stream that has failed. */
  return s->state == ST_FAILED ? XMPPUV_ECANCELED : 0;
}

static int on_stream_close(void *ud) {
  xmppuv__session_t *s = ud;
  xmppuv__logf(s->log, XMPPUV_LOG_TRACE, "wire-in", "</stream:stream>");
  s->stream_open = 0;
  if (s->state != ST_FAILED && s->ev.closed != NULL) s->ev.closed(s->ud);
  return 0;
}

static const xmppuv__parser_callbacks_t parser_callbacks = {on_stream_open, on_element,
                                                            on_stream_close};

/* ---- API ------------------------------------------------------------------------ */

static void free_cfg(xmppuv__session_config_t *c) {
  xmppuv__free((void *)(uintptr_t)c->domain);
  xmppuv__free((void *)(uintptr_t)c->bare_jid);
  xmppuv__free((void *)(uintptr_t)c->username);
  xmppuv__free((void *)(uintptr_t)c->resource);
  xmppuv__free((void *)(uintptr_t)c->lang);
  xmppuv__free((void *)(uintptr_t)c->mechanisms);
}

int xmppuv__session_new(const xmppuv__session_config_t *cfg,
                        const xmppuv__session_events_t *ev, void *ud,
                        xmppuv__session_t **out) {
  *out = NULL;
  if (cfg->domain == NULL || ev->write == NULL) return XMPPUV_EINVAL;
  xmppuv__session_t *s = xmppuv__calloc(1, sizeof *s);
  if (s == NULL) return XMPPUV_ENOMEM;
  s->cfg = *cfg;
  /* The copies replace the caller's pointers (a failed one leaves NULL, so
   * nothing of the caller's is freed on the way out). */
  int rc = 0;
  s->cfg.domain = xmppuv__strdup_opt(cfg->domain, &rc);
  s->cfg.bare_jid = xmppuv__strdup_opt(cfg->bare_jid, &rc);
  s->cfg.username = xmppuv__strdup_opt(cfg->username, &rc);
  s->cfg.resource = xmppuv__strdup_opt(cfg->resource, &rc);
  s->cfg.lang = xmppuv__strdup_opt(cfg->lang, &rc);
  s->cfg.mechanisms = xmppuv__strdup_opt(cfg->mechanisms, &rc);
  if (rc == 0)
    rc = xmppuv__parser_new(XMPPUV__PARSE_STREAM, &cfg->limits, &parser_callbacks, s,
                            &s->parser);
  if (rc != 0) {
    free_cfg(&s->cfg);
    xmppuv__free(s);
    return rc;
  }
  s->ev = *ev;
  s->ud = ud;
  s->log = cfg->log;
  *out = s;
  return 0;
}

void xmppuv__session_free(xmppuv__session_t *s) {
  if (s == NULL) return;
  xmppuv__parser_free(s->parser);
  xmppuv__scram_free(s->scram);
  xmppuv__free(s->bound_jid);
  xmppuv__sasl_buf_wipe(&s->out);
  free_cfg(&s->cfg);
  xmppuv__free(s);
}

int xmppuv__session_start(xmppuv__session_t *s, int tls) {
  xmppuv__scram_free(s->scram);
  s->scram = NULL;
  s->scram_verified = s->client_final_sent = 0;
  s->mech = XMPPUV__MECH_NONE;
  s->tls = tls;
  s->authenticated = 0;
  s->closing = 0;
  s->restart = RESTART_NONE;
  s->session_required = 0;
  s->peer_max_bytes = 0;
  s->bind_id[0] = '\0';
  int rc = xmppuv__parser_reset(s->parser);
  if (rc == 0) rc = send_header(s);
  return rc;
}

int xmppuv__session_tls_ready(xmppuv__session_t *s) {
  if (s->state != ST_TLS) return XMPPUV_ESTATE;
  s->tls = 1;
  int rc = xmppuv__parser_reset(s->parser);
  if (rc == 0) rc = send_header(s);
  return rc;
}

int xmppuv__session_feed(xmppuv__session_t *s, const char *data, size_t len) {
  while (len > 0) {
    if (s->state == ST_FAILED || s->state == ST_IDLE) return XMPPUV_ESTATE;
    size_t used = 0;
    int rc = xmppuv__parser_feed(s->parser, data, len, &used);
    if (rc != 0) {
      if (s->state == ST_FAILED) return s->fail_code; /* a handler failed */
      const char *condition = xmppuv__parser_condition(s->parser);
      const char *detail = xmppuv__parser_detail(s->parser);
      /* RFC 6120 §4.9.1: tell the server what was wrong with its XML. */
      if (condition != NULL && rc != XMPPUV_ENOMEM) send_stream_error(s, condition);
      session_fail(s, rc, condition, detail, NULL, 0, NULL);
      return rc;
    }
    data += used;
    len -= used;
    restart_t restart = s->restart;
    s->restart = RESTART_NONE;
    if (restart == RESTART_TLS) {
      /* What follows <proceed/> is TLS, not XML of this stream. */
      rc = s->ev.starttls(s->ud, data, len);
      if (rc != 0) session_fail(s, rc, NULL, "could not start TLS", NULL, 0, NULL);
      return rc;
    }
    if (restart == RESTART_SASL) {
      rc = xmppuv__parser_reset(s->parser);
      if (rc == 0) rc = send_header(s);
      if (rc != 0) {
        session_fail(s, rc, NULL, NULL, NULL, 0, NULL);
        return rc;
      }
    }
  }
  /* Idle between stanzas: give expat's ~12 KB back until the next input
   * (thousands of mostly idle connections per process are the norm). */
  if (s->state == ST_STREAMING) xmppuv__parser_release(s->parser);
  return 0;
}

int xmppuv__session_bind(xmppuv__session_t *s) {
  if (s->state != ST_AUTHENTICATED) return XMPPUV_ESTATE;
  s->state = ST_BINDING;
  int rc = send_bind(s);
  if (rc != 0) session_fail(s, rc, NULL, NULL, NULL, 0, NULL);
  return rc;
}

int xmppuv__session_close(xmppuv__session_t *s) {
  if (s->closing) return 0;
  s->closing = 1;
  static const char end[] = "</stream:stream>";
  trace_out(s, end);
  return write_raw(s, end, sizeof end - 1);
}

int xmppuv__session_is_open(const xmppuv__session_t *s) { return s->stream_open; }


size_t xmppuv__session_peer_max_bytes(const xmppuv__session_t *s) {
  return s->peer_max_bytes;
}

const char *xmppuv__session_mechanism(const xmppuv__session_t *s) {
  return s->mech != XMPPUV__MECH_NONE ? xmppuv__mech_name(s->mech) : NULL;
}
