/* Stream negotiation, driven as a scripted server would: server bytes in,
 * client bytes out, no sockets (the session core does no I/O). These are the
 * cases a real server will not produce: no STARTTLS, a wrong SCRAM
 * signature, too few iterations, a stripped -PLUS, bind errors, stream
 * errors, see-other-host, bad XML. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/base64.h>

#include "util/buf.h"
#include "check_main.h"
#include "failalloc.h"
#include "scram_server.h"
#include "session/session.h"
#include "util/alloc.h"
#include "xmppuv.h"

#define SERVER_HEADER                                                        \
  "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "               \
  "xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='localhost' " \
  "version='1.0'>"
#define FEATURES_STARTTLS                                                    \
  "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"      \
  "<required/></starttls></stream:features>"
#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define FEATURES_BIND                                                        \
  "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"        \
  "<sm xmlns='urn:xmpp:sm:3'/></stream:features>"

static const unsigned char fake_tls_unique[12] = "0123456789ab";

typedef struct {
  xmppuv__session_t *s;
  xmppuv__buf_t out;
  size_t seen;
  xmppuv__buf_t events;
  int has_cb;
  int starttls;
  int authenticated;
  int sm_offered;
  char bound[256];
  int failed;
  int fail_code;
  int fail_fatal;
  char fail_condition[64];
  char see_other[128];
  int closed;
  int elements;
  const char *password;
  xmppuv__buf_t log;
} h_t;

/* What the connection gives the session for channel binding. */
static xmppuv__channel_binding_t binding_of(const h_t *h) {
  xmppuv__channel_binding_t cb;
  memset(&cb, 0, sizeof cb);
  if (h->has_cb) {
    cb.n = 1;
    snprintf(cb.b[0].type, sizeof cb.b[0].type, "tls-unique");
    memcpy(cb.b[0].data, fake_tls_unique, 12);
    cb.b[0].len = 12;
  }
  return cb;
}

/* The credentials the session asks for, as the engine gives them: the
 * password, or SCRAM keys derived from it. */
static void answer_credentials(h_t *h, const xmppuv__sasl_need_t *need) {
  if (need->kind == XMPPUV__SASL_NEED_PASSWORD) {
    xmppuv__session_password(h->s, h->password);
    return;
  }
  char *prepared;
  size_t plen, klen;
  unsigned char ck[XMPPUV__SCRAM_KEY_MAX], sk[XMPPUV__SCRAM_KEY_MAX];
  xmppuv__scram_keys_t *keys = NULL;
  int rc = xmppuv__sasl_prep(h->password, 1, &prepared, &plen);
  if (rc == 0) {
    rc = xmppuv__scram_derive(need->mech, prepared, plen, need->salt, need->salt_len,
                              need->iterations, ck, sk, &klen);
    xmppuv__free(prepared);
  }
  if (rc == 0)
    rc = xmppuv__scram_keys_new(need->mech, need->salt, need->salt_len, need->iterations, ck, sk,
                                klen, &keys);
  if (rc == 0)
    xmppuv__session_keys(h->s, keys);
  else
    xmppuv__session_no_credentials(h->s, rc);
  xmppuv__scram_keys_free(keys);
}

/* Run the session's steps until it has nothing queued, recording events as
 * the engine would see them. */
static void drain(h_t *h) {
  xmppuv__session_event_t ev;
  while (xmppuv__session_step(h->s, &ev)) {
    switch (ev.kind) {
      case XMPPUV__SESS_NOTHING: break;
      case XMPPUV__SESS_OPEN: xmppuv__buf_append_str(&h->events, "open "); break;
      case XMPPUV__SESS_RESTART: xmppuv__buf_append_str(&h->events, "opening "); break;
      case XMPPUV__SESS_STARTTLS:
        ck_assert_uint_eq(ev.rest_len, 0);
        h->starttls++;
        break;
      case XMPPUV__SESS_CREDENTIALS: answer_credentials(h, &ev.need); break;
      case XMPPUV__SESS_AUTHENTICATED:
        h->authenticated++;
        h->sm_offered = ev.sm_offered;
        break;
      case XMPPUV__SESS_BOUND: snprintf(h->bound, sizeof h->bound, "%s", ev.full_jid); break;
      case XMPPUV__SESS_ELEMENT: h->elements++; break;
      case XMPPUV__SESS_FAILED:
        h->failed++;
        h->fail_code = ev.error.code;
        h->fail_fatal = ev.error.fatal;
        snprintf(h->fail_condition, sizeof h->fail_condition, "%s",
                 ev.error.condition ? ev.error.condition : "");
        snprintf(h->see_other, sizeof h->see_other, "%s", ev.see_other ? ev.see_other : "");
        break;
      case XMPPUV__SESS_CLOSED: h->closed++; break;
      case XMPPUV__SESS_TOKEN_REJECTED: xmppuv__buf_append_str(&h->events, "token-rejected "); break;
    }
  }
}

/* A connection is up: the stream opens. */
static int start_session(h_t *h, int tls) {
  xmppuv__channel_binding_t cb = binding_of(h);
  int rc = xmppuv__session_start(h->s, XMPPUV__FRAMING_STREAM, tls, tls ? &cb : NULL);
  if (rc == 0) xmppuv__buf_append_str(&h->events, "opening ");
  return rc;
}

static int tls_ready(h_t *h) {
  xmppuv__channel_binding_t cb = binding_of(h);
  int rc = xmppuv__session_tls_ready(h->s, &cb);
  if (rc == 0) xmppuv__buf_append_str(&h->events, "opening ");
  return rc;
}

static void log_cb(void *ud, xmppuv_log_level_t level, const char *area, const char *msg) {
  h_t *h = ud;
  (void)level;
  xmppuv__buf_append_str(&h->log, area);
  xmppuv__buf_append_str(&h->log, ": ");
  xmppuv__buf_append_str(&h->log, msg);
  xmppuv__buf_append_str(&h->log, "\n");
}

static xmppuv__log_t trace_log;

static void setup_h(h_t *h, const char *resource, int tls_required) {
  memset(h, 0, sizeof *h);
  h->password = "pencil";
  trace_log.cb = log_cb;
  trace_log.user_data = h;
  trace_log.level = XMPPUV_LOG_TRACE;
  xmppuv__session_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.domain = "localhost";
  cfg.bare_jid = "user@localhost";
  cfg.username = "user";
  cfg.resource = resource;
  cfg.tls_required = tls_required;
  cfg.have_credentials = 1;
  cfg.log = &trace_log;
  cfg.out = &h->out;
  ck_assert_int_eq(xmppuv__session_new(&cfg, &h->s), 0);
}

static void teardown_h(h_t *h) {
  xmppuv__session_free(h->s);
  xmppuv__buf_free(&h->out);
  xmppuv__buf_free(&h->events);
  xmppuv__buf_free(&h->log);
}

/* What the client wrote since the last call. */
static const char *said(h_t *h) {
  static char copy[8192];
  size_t n = h->out.len - h->seen;
  if (n >= sizeof copy) n = sizeof copy - 1;
  memcpy(copy, h->out.data ? h->out.data + h->seen : "", n);
  copy[n] = '\0';
  h->seen = h->out.len;
  return copy;
}

static void server(h_t *h, const char *xml) {
  xmppuv__session_feed(h->s, xml, strlen(xml));
  drain(h);
}

/* The content of the first <name>...</name> in text. */
static const char *content_of(const char *text, const char *name) {
  static char buf[4096];
  char open[64];
  snprintf(open, sizeof open, "<%s", name);
  const char *p = strstr(text, open);
  ck_assert_ptr_nonnull(p);
  p = strchr(p, '>') + 1;
  const char *end = strstr(p, "</");
  ck_assert_ptr_nonnull(end);
  size_t n = (size_t)(end - p);
  memcpy(buf, p, n);
  buf[n] = '\0';
  return buf;
}

/* Header, STARTTLS, TLS, second header: ready for SASL features. */
static void through_starttls(h_t *h) {
  h->starttls = 0;
  ck_assert_int_eq(start_session(h, 0), 0);
  const char *hdr = said(h);
  ck_assert_ptr_nonnull(strstr(hdr, "to='localhost'"));
  ck_assert_ptr_nonnull(strstr(hdr, "version='1.0'"));
  ck_assert_ptr_null(strstr(hdr, "from=")); /* not before TLS */
  server(h, SERVER_HEADER FEATURES_STARTTLS);
  ck_assert_str_eq(said(h), "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
  server(h, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
  ck_assert_int_eq(h->starttls, 1);
  ck_assert_int_eq(tls_ready(h), 0);
  hdr = said(h);
  ck_assert_ptr_nonnull(strstr(hdr, "<stream:stream"));
  ck_assert_ptr_nonnull(strstr(hdr, "from='user@localhost'"));
  server(h, SERVER_HEADER);
}

/* A SCRAM exchange with the independent server; returns the server. */
static scram_server_t *scram_exchange(h_t *h, const char *hash, const char *mechs,
                                      unsigned iterations, int tamper_signature) {
  char features[1024];
  snprintf(features, sizeof features,
           "<stream:features><mechanisms xmlns='" NS_SASL "'>%s</mechanisms></stream:features>",
           mechs);
  server(h, features);
  const char *auth = said(h);
  ck_assert_ptr_nonnull(strstr(auth, "<auth xmlns='" NS_SASL "' mechanism='SCRAM-"));
  scram_server_t *ss = scram_server_new(hash, h->password, iterations);
  const char *client_first = scram_unb64(ss, content_of(auth, "auth"));
  ck_assert_ptr_nonnull(client_first);
  char copy[512];
  snprintf(copy, sizeof copy, "%s", client_first);
  const char *server_first = scram_server_first(ss, copy);
  char challenge[1024];
  snprintf(challenge, sizeof challenge, "<challenge xmlns='" NS_SASL "'>%s</challenge>",
           scram_b64(ss, server_first, strlen(server_first)));
  server(h, challenge);
  if (h->failed) return ss;
  const char *response = said(h);
  const char *client_final = scram_unb64(ss, content_of(response, "response"));
  snprintf(copy, sizeof copy, "%s", client_final);
  int plus = strncmp(scram_server_gs2_header(ss), "p=", 2) == 0;
  const char *server_final =
      scram_server_final(ss, copy, plus ? fake_tls_unique : NULL, plus ? 12 : 0);
  ck_assert_msg(server_final != NULL, "the client's proof did not verify");
  char final_copy[256];
  snprintf(final_copy, sizeof final_copy, "%s", server_final);
  if (tamper_signature) final_copy[3] = final_copy[3] == 'A' ? 'B' : 'A';
  char success[1024];
  snprintf(success, sizeof success, "<success xmlns='" NS_SASL "'>%s</success>",
           scram_b64(ss, final_copy, strlen(final_copy)));
  server(h, success);
  return ss;
}

START_TEST(full_negotiation_starttls_scram_plus_and_bind) {
  h_t h;
  setup_h(&h, "laptop", 1);
  h.has_cb = 1;
  through_starttls(&h);
  scram_server_t *ss =
      scram_exchange(&h, "SHA-256",
                     "<mechanism>SCRAM-SHA-1</mechanism><mechanism>SCRAM-SHA-256</mechanism>"
                     "<mechanism>SCRAM-SHA-1-PLUS</mechanism><mechanism>SCRAM-SHA-256-PLUS</mechanism>"
                     "<mechanism>PLAIN</mechanism>",
                     4096, 0);
  ck_assert_str_eq(scram_server_gs2_header(ss), "p=tls-unique,,");
  ck_assert_int_eq(h.failed, 0);
  ck_assert_str_eq(xmppuv__session_mechanism(h.s), "SCRAM-SHA-256-PLUS");
  /* SASL success restarts the stream. */
  ck_assert_ptr_nonnull(strstr(said(&h), "<stream:stream"));
  server(&h, SERVER_HEADER FEATURES_BIND);
  ck_assert_int_eq(h.authenticated, 1);
  ck_assert_int_eq(h.sm_offered, 1);
  ck_assert_int_eq(xmppuv__session_bind(h.s), 0);
  const char *bind = said(&h);
  ck_assert_ptr_nonnull(strstr(bind, "<resource>laptop</resource>"));
  const char *id_at = strstr(bind, "id='");
  char id[32];
  sscanf(id_at + 4, "%31[^']", id);
  char result[512];
  snprintf(result, sizeof result,
           "<iq type='result' id='%s'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
           "<jid>user@localhost/laptop</jid></bind></iq>", id);
  server(&h, result);
  ck_assert_str_eq(h.bound, "user@localhost/laptop");
  ck_assert_str_eq(h.events.data, "opening open opening open opening open ");
  /* Stanzas now flow to the driver; repeated features are ignored. */
  server(&h, "<message from='a@b'><body>x</body></message>" FEATURES_BIND);
  ck_assert_int_eq(h.elements, 1);
  ck_assert_int_eq(h.authenticated, 1);
  scram_server_free(ss);
  teardown_h(&h);
}
END_TEST

START_TEST(starttls_not_offered_is_refused_without_sending_credentials) {
  h_t h;
  setup_h(&h, NULL, 1);
  ck_assert_int_eq(start_session(&h, 0), 0);
  said(&h);
  server(&h, SERVER_HEADER "<stream:features><mechanisms xmlns='" NS_SASL "'>"
                           "<mechanism>PLAIN</mechanism></mechanisms></stream:features>");
  ck_assert_int_eq(h.failed, 1);
  ck_assert_int_eq(h.fail_code, XMPPUV_ETLSREQUIRED);
  ck_assert_int_eq(h.fail_fatal, 1);
  ck_assert_str_eq(said(&h), ""); /* no <auth/>, nothing at all */
  teardown_h(&h);
}
END_TEST

START_TEST(scram_server_signature_mismatch_aborts) {
  h_t h;
  setup_h(&h, NULL, 1);
  through_starttls(&h);
  scram_server_t *ss = scram_exchange(&h, "SHA-1", "<mechanism>SCRAM-SHA-1</mechanism>", 4096, 1);
  ck_assert_int_eq(h.failed, 1);
  ck_assert_int_eq(h.fail_code, XMPPUV_EAUTHSERVER);
  ck_assert_int_eq(h.fail_fatal, 1);
  ck_assert_int_eq(h.authenticated, 0);
  ck_assert_ptr_null(strstr(said(&h), "<stream:stream")); /* no restart */
  scram_server_free(ss);
  teardown_h(&h);
}
END_TEST

START_TEST(scram_success_without_a_signature_is_refused) {
  h_t h;
  setup_h(&h, NULL, 1);
  through_starttls(&h);
  server(&h, "<stream:features><mechanisms xmlns='" NS_SASL "'><mechanism>SCRAM-SHA-1"
             "</mechanism></mechanisms></stream:features>");
  said(&h);
  server(&h, "<success xmlns='" NS_SASL "'/>");
  ck_assert_int_eq(h.fail_code, XMPPUV_EAUTHSERVER);
  ck_assert_int_eq(h.authenticated, 0);
  teardown_h(&h);
}
END_TEST

START_TEST(scram_iteration_count_below_4096_is_refused) {
  h_t h;
  setup_h(&h, NULL, 1);
  through_starttls(&h);
  scram_server_t *ss = scram_exchange(&h, "SHA-256", "<mechanism>SCRAM-SHA-256</mechanism>", 4095, 0);
  ck_assert_int_eq(h.failed, 1);
  ck_assert_int_eq(h.fail_code, XMPPUV_EAUTHITER);
  ck_assert_ptr_null(strstr(said(&h), "<response")); /* no proof sent */
  scram_server_free(ss);
  teardown_h(&h);
}
END_TEST

START_TEST(stripped_plus_offer_makes_the_client_say_y) {
  /* We can bind (TLS with tls-unique) but the offer has no -PLUS: an
   * attacker may have stripped it; "y" lets a binding server notice. */
  h_t h;
  setup_h(&h, NULL, 1);
  h.has_cb = 1;
  through_starttls(&h);
  scram_server_t *ss = scram_exchange(&h, "SHA-1", "<mechanism>SCRAM-SHA-1</mechanism>", 4096, 0);
  ck_assert_str_eq(scram_server_gs2_header(ss), "y,,");
  ck_assert_int_eq(h.failed, 0);
  scram_server_free(ss);
  teardown_h(&h);
}
END_TEST

START_TEST(xep0440_binding_list_without_plus_is_a_downgrade) {
  h_t h;
  setup_h(&h, NULL, 1);
  h.has_cb = 1;
  through_starttls(&h);
  server(&h, "<stream:features><mechanisms xmlns='" NS_SASL "'><mechanism>SCRAM-SHA-1"
             "</mechanism></mechanisms><sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'>"
             "<channel-binding type='tls-unique'/></sasl-channel-binding></stream:features>");
  ck_assert_int_eq(h.fail_code, XMPPUV_EDOWNGRADE);
  ck_assert_ptr_null(strstr(said(&h), "<auth"));
  teardown_h(&h);
}
END_TEST

START_TEST(plain_over_tls_sends_the_credentials_and_logs_none) {
  h_t h;
  setup_h(&h, NULL, 1);
  h.password = "s3cret-pass";
  through_starttls(&h);
  server(&h, "<stream:features><mechanisms xmlns='" NS_SASL "'><mechanism>PLAIN"
             "</mechanism></mechanisms></stream:features>");
  const char *auth = said(&h);
  ck_assert_ptr_nonnull(strstr(auth, "mechanism='PLAIN'"));
  scram_server_t *b = scram_server_new("SHA-1", "", 4096);
  const char *payload = content_of(auth, "auth");
  char payload_copy[256];
  snprintf(payload_copy, sizeof payload_copy, "%s", payload);
  size_t out;
  unsigned char raw[256];
  ck_assert_int_eq(mbedtls_base64_decode(raw, sizeof raw, &out, (const unsigned char *)payload_copy,
                                         strlen(payload_copy)), 0);
  ck_assert_uint_eq(out, 1 + 4 + 1 + 11);
  ck_assert_int_eq(memcmp(raw, "\0user\0s3cret-pass", out), 0);
  /* The trace log saw the element, never the payload or the password. */
  ck_assert_ptr_nonnull(strstr(h.log.data, "mechanism='PLAIN'>[redacted]</auth>"));
  ck_assert_ptr_null(strstr(h.log.data, payload_copy));
  ck_assert_ptr_null(strstr(h.log.data, "s3cret-pass"));
  server(&h, "<success xmlns='" NS_SASL "'/>");
  ck_assert_int_eq(h.failed, 0);
  scram_server_free(b);
  teardown_h(&h);
}
END_TEST

START_TEST(plain_is_never_used_without_tls) {
  h_t h;
  setup_h(&h, NULL, 0); /* TLS not required (explicitly disabled) */
  ck_assert_int_eq(start_session(&h, 0), 0);
  said(&h);
  server(&h, SERVER_HEADER "<stream:features><mechanisms xmlns='" NS_SASL "'>"
                           "<mechanism>PLAIN</mechanism></mechanisms></stream:features>");
  ck_assert_int_eq(h.fail_code, XMPPUV_ENOMECH);
  ck_assert_ptr_null(strstr(said(&h), "<auth"));
  teardown_h(&h);
}
END_TEST

START_TEST(sasl_failure_reaches_the_app_as_condition_and_text) {
  h_t h;
  setup_h(&h, NULL, 1);
  through_starttls(&h);
  server(&h, "<stream:features><mechanisms xmlns='" NS_SASL "'><mechanism>SCRAM-SHA-1"
             "</mechanism></mechanisms></stream:features>");
  server(&h, "<failure xmlns='" NS_SASL "'><not-authorized/><text>Bad password</text></failure>");
  ck_assert_int_eq(h.fail_code, XMPPUV_EAUTH);
  ck_assert_str_eq(h.fail_condition, "not-authorized");
  ck_assert_int_eq(h.fail_fatal, 1);
  teardown_h(&h);
  setup_h(&h, NULL, 1);
  through_starttls(&h);
  server(&h, "<stream:features><mechanisms xmlns='" NS_SASL "'><mechanism>SCRAM-SHA-1"
             "</mechanism></mechanisms></stream:features>");
  server(&h, "<failure xmlns='" NS_SASL "'><temporary-auth-failure/></failure>");
  ck_assert_str_eq(h.fail_condition, "temporary-auth-failure");
  ck_assert_int_eq(h.fail_fatal, 0); /* worth another try later */
  teardown_h(&h);
}
END_TEST

/* Authenticated with PLAIN (simplest), ready for bind features. */
static void through_auth(h_t *h) {
  through_starttls(h);
  server(h, "<stream:features><mechanisms xmlns='" NS_SASL "'><mechanism>PLAIN"
            "</mechanism></mechanisms></stream:features>");
  server(h, "<success xmlns='" NS_SASL "'/>");
  said(h);
}

/* Answer the client's last iq: reply is the answer with "%s" for its id. */
static void bind_reply(h_t *h, const char *reply) {
  const char *bind = said(h);
  const char *id_at = strstr(bind, "id='");
  ck_assert_ptr_nonnull(id_at);
  char id[32], full[512];
  sscanf(id_at + 4, "%31[^']", id);
  const char *hole = strstr(reply, "%s");
  ck_assert_ptr_nonnull(hole);
  snprintf(full, sizeof full, "%.*s%s%s", (int)(hole - reply), reply, id, hole + 2);
  server(h, full);
}

START_TEST(bind_without_resource_takes_the_servers) {
  h_t h;
  setup_h(&h, NULL, 1);
  through_auth(&h);
  server(&h, SERVER_HEADER FEATURES_BIND);
  ck_assert_int_eq(xmppuv__session_bind(h.s), 0);
  bind_reply(&h, "<iq type='result' id='%s'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                 "<jid>user@localhost/r4nd0m</jid></bind></iq>");
  ck_assert_str_eq(h.bound, "user@localhost/r4nd0m");
  teardown_h(&h);
}
END_TEST

START_TEST(bind_errors_are_reported_with_their_condition) {
  h_t h;
  setup_h(&h, "taken", 1);
  through_auth(&h);
  server(&h, SERVER_HEADER FEATURES_BIND);
  xmppuv__session_bind(h.s);
  bind_reply(&h, "<iq type='error' id='%s'><error type='cancel'><conflict "
                 "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
  ck_assert_int_eq(h.fail_code, XMPPUV_EBIND);
  ck_assert_str_eq(h.fail_condition, "conflict");
  ck_assert_int_eq(h.fail_fatal, 1);
  ck_assert_str_eq(h.bound, "");
  teardown_h(&h);
  setup_h(&h, "busy", 1);
  through_auth(&h);
  server(&h, SERVER_HEADER FEATURES_BIND);
  xmppuv__session_bind(h.s);
  bind_reply(&h, "<iq type='error' id='%s'><error type='wait'><resource-constraint "
                 "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
  ck_assert_str_eq(h.fail_condition, "resource-constraint");
  ck_assert_int_eq(h.fail_fatal, 0);
  teardown_h(&h);
}
END_TEST

START_TEST(legacy_session_only_when_required) {
  h_t h;
  setup_h(&h, NULL, 1);
  through_auth(&h);
  server(&h, SERVER_HEADER "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                           "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></stream:features>");
  xmppuv__session_bind(h.s);
  bind_reply(&h, "<iq type='result' id='%s'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                 "<jid>user@localhost/r</jid></bind></iq>");
  ck_assert_str_eq(h.bound, ""); /* not yet: the session iq first */
  bind_reply(&h, "<iq type='result' id='%s'/>");
  ck_assert_str_eq(h.bound, "user@localhost/r");
  teardown_h(&h);

  setup_h(&h, NULL, 1);
  through_auth(&h);
  server(&h, SERVER_HEADER "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                           "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/>"
                           "</session></stream:features>");
  xmppuv__session_bind(h.s);
  bind_reply(&h, "<iq type='result' id='%s'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                 "<jid>user@localhost/r</jid></bind></iq>");
  ck_assert_str_eq(h.bound, "user@localhost/r");
  ck_assert_ptr_null(strstr(said(&h), "xmpp-session"));
  teardown_h(&h);
}
END_TEST

static void through_bind(h_t *h) {
  through_auth(h);
  server(h, SERVER_HEADER FEATURES_BIND);
  xmppuv__session_bind(h->s);
  bind_reply(h, "<iq type='result' id='%s'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                "<jid>user@localhost/r</jid></bind></iq>");
  ck_assert_str_eq(h->bound, "user@localhost/r");
}

START_TEST(stream_error_mid_session_is_reported_and_classified) {
  h_t h;
  setup_h(&h, NULL, 1);
  through_bind(&h);
  server(&h, "<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
             "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>bye</text></stream:error>");
  ck_assert_int_eq(h.fail_code, XMPPUV_ESTREAM);
  ck_assert_str_eq(h.fail_condition, "system-shutdown");
  ck_assert_int_eq(h.fail_fatal, 0);
  teardown_h(&h);
  setup_h(&h, NULL, 1);
  through_bind(&h);
  server(&h, "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>");
  ck_assert_str_eq(h.fail_condition, "conflict");
  ck_assert_int_eq(h.fail_fatal, 1); /* reconnecting would kick the other one */
  teardown_h(&h);
}
END_TEST

START_TEST(see_other_host_names_the_new_host) {
  h_t h;
  setup_h(&h, NULL, 1);
  ck_assert_int_eq(start_session(&h, 0), 0);
  server(&h, SERVER_HEADER "<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:"
                           "xmpp-streams'>other.example:5223</see-other-host></stream:error>");
  ck_assert_str_eq(h.fail_condition, "see-other-host");
  ck_assert_str_eq(h.see_other, "other.example:5223");
  ck_assert_int_eq(h.fail_fatal, 0);
  teardown_h(&h);
}
END_TEST

START_TEST(bad_xml_from_the_server_gets_a_stream_error_back) {
  h_t h;
  setup_h(&h, NULL, 1);
  through_bind(&h);
  said(&h);
  server(&h, "<message><body></message>");
  ck_assert_int_eq(h.fail_code, XMPPUV_EXML);
  ck_assert_str_eq(h.fail_condition, "not-well-formed");
  ck_assert_str_eq(said(&h), "<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:"
                             "xmpp-streams'/></stream:error></stream:stream>");
  teardown_h(&h);
  setup_h(&h, NULL, 1);
  through_bind(&h);
  said(&h);
  server(&h, "<!-- a comment -->");
  ck_assert_str_eq(h.fail_condition, "restricted-xml");
  teardown_h(&h);
}
END_TEST

START_TEST(a_server_without_xmpp_1_0_is_refused) {
  h_t h;
  setup_h(&h, NULL, 1);
  ck_assert_int_eq(start_session(&h, 0), 0);
  said(&h);
  /* What follows the header decides (see the next test): here, features. */
  server(&h, "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='x'>");
  ck_assert_int_eq(h.fail_code, 0);
  server(&h, "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>");
  ck_assert_int_eq(h.fail_code, XMPPUV_EPROTO);
  ck_assert_str_eq(h.fail_condition, "unsupported-version");
  ck_assert_int_eq(h.fail_fatal, 1);
  ck_assert_str_eq(said(&h), "<stream:error><unsupported-version xmlns='urn:ietf:params:xml:ns:"
                             "xmpp-streams'/></stream:error></stream:stream>");
  teardown_h(&h);
}
END_TEST

/* Prosody shutting down answers a connection whose header it has not read
 * with a header without version, then system-shutdown (exactly these bytes,
 * 13.0.1): a server going away, to come back to, not a pre-1.0 server to
 * give up on. */
START_TEST(a_header_without_version_then_a_stream_error_is_that_error) {
  h_t h;
  setup_h(&h, NULL, 1);
  ck_assert_int_eq(start_session(&h, 0), 0);
  said(&h);
  server(&h, "<?xml version='1.0'?><stream:stream xml:lang='en' xmlns:stream="
             "'http://etherx.jabber.org/streams' id='' xmlns='jabber:client'>");
  ck_assert_int_eq(h.fail_code, 0);
  server(&h, "<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
             "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Received SIGTERM</text>"
             "</stream:error></stream:stream>");
  ck_assert_int_eq(h.fail_code, XMPPUV_ESTREAM);
  ck_assert_str_eq(h.fail_condition, "system-shutdown");
  ck_assert_int_eq(h.fail_fatal, 0);
  ck_assert_ptr_null(strstr(said(&h), "unsupported-version"));
  teardown_h(&h);
}
END_TEST

START_TEST(server_closing_the_stream_is_reported) {
  h_t h;
  setup_h(&h, NULL, 1);
  through_bind(&h);
  server(&h, "</stream:stream>");
  ck_assert_int_eq(h.closed, 1);
  ck_assert_int_eq(xmppuv__session_close(h.s), 0);
  ck_assert_str_eq(said(&h), "</stream:stream>");
  teardown_h(&h);
}
END_TEST

START_TEST(one_session_object_serves_a_second_connection) {
  h_t h;
  setup_h(&h, "r", 1);
  through_bind(&h);
  /* Reconnect: everything per connection starts afresh. */
  through_bind(&h);
  ck_assert_int_eq(h.authenticated, 2);
  teardown_h(&h);
}
END_TEST

START_TEST(stream_header_carries_xml_lang_when_set) {
  h_t h;
  memset(&h, 0, sizeof h);
  xmppuv__session_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.domain = "localhost";
  cfg.bare_jid = "user@localhost";
  cfg.username = "user";
  cfg.lang = "de-CH";
  cfg.tls_required = 1;
  cfg.have_credentials = 1;
  cfg.out = &h.out;
  ck_assert_int_eq(xmppuv__session_new(&cfg, &h.s), 0);
  ck_assert_int_eq(start_session(&h, 1), 0);
  const char *hdr = said(&h);
  ck_assert_ptr_nonnull(strstr(hdr, " xml:lang='de-CH'"));
  /* Direct TLS: TLS is up from the start, so 'from' is there at once. */
  ck_assert_ptr_nonnull(strstr(hdr, " from='user@localhost'"));
  teardown_h(&h);
}
END_TEST

static int negotiate_scenario(void *ud) {
  (void)ud;
  h_t h;
  memset(&h, 0, sizeof h);
  h.password = "pencil";
  xmppuv__session_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.domain = "localhost";
  cfg.bare_jid = "user@localhost";
  cfg.username = "user";
  cfg.tls_required = 1;
  cfg.have_credentials = 1;
  cfg.out = &h.out;
  int rc = xmppuv__session_new(&cfg, &h.s);
  if (rc != 0) return rc;
  rc = start_session(&h, 1);
  const char *steps[] = {
      SERVER_HEADER "<stream:features><mechanisms xmlns='" NS_SASL "'><mechanism>PLAIN"
                    "</mechanism></mechanisms></stream:features>",
      "<success xmlns='" NS_SASL "'/>",
      SERVER_HEADER FEATURES_BIND,
  };
  for (size_t i = 0; rc == 0 && i < 3 && !h.failed; i++) {
    rc = xmppuv__session_feed(h.s, steps[i], strlen(steps[i]));
    if (rc == 0) drain(&h);
  }
  if (rc == 0 && h.failed) rc = h.fail_code;
  if (rc == 0 && h.authenticated != 1) rc = XMPPUV_EPROTO;
  xmppuv__session_free(h.s);
  xmppuv__buf_free(&h.out);
  xmppuv__buf_free(&h.events);
  xmppuv__buf_free(&h.log);
  /* A buffer in the harness may have failed, not the session: only the
   * session's own results are judged (ENOMEM or success). */
  return rc;
}

START_TEST(every_allocation_failure_during_negotiation_is_ENOMEM) {
  ck_assert_int_gt(failalloc_sweep(negotiate_scenario, NULL), 10);
}
END_TEST

static Suite *session_suite(void) {
  Suite *s = suite_create("session");
  TCase *tc = tcase_create("session");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, full_negotiation_starttls_scram_plus_and_bind);
  tcase_add_test(tc, starttls_not_offered_is_refused_without_sending_credentials);
  tcase_add_test(tc, scram_server_signature_mismatch_aborts);
  tcase_add_test(tc, scram_success_without_a_signature_is_refused);
  tcase_add_test(tc, scram_iteration_count_below_4096_is_refused);
  tcase_add_test(tc, stripped_plus_offer_makes_the_client_say_y);
  tcase_add_test(tc, xep0440_binding_list_without_plus_is_a_downgrade);
  tcase_add_test(tc, plain_over_tls_sends_the_credentials_and_logs_none);
  tcase_add_test(tc, plain_is_never_used_without_tls);
  tcase_add_test(tc, sasl_failure_reaches_the_app_as_condition_and_text);
  tcase_add_test(tc, bind_without_resource_takes_the_servers);
  tcase_add_test(tc, bind_errors_are_reported_with_their_condition);
  tcase_add_test(tc, legacy_session_only_when_required);
  tcase_add_test(tc, stream_error_mid_session_is_reported_and_classified);
  tcase_add_test(tc, see_other_host_names_the_new_host);
  tcase_add_test(tc, bad_xml_from_the_server_gets_a_stream_error_back);
  tcase_add_test(tc, a_server_without_xmpp_1_0_is_refused);
  tcase_add_test(tc, a_header_without_version_then_a_stream_error_is_that_error);
  tcase_add_test(tc, server_closing_the_stream_is_reported);
  tcase_add_test(tc, one_session_object_serves_a_second_connection);
  tcase_add_test(tc, stream_header_carries_xml_lang_when_set);
  tcase_add_test(tc, every_allocation_failure_during_negotiation_is_ENOMEM);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(session_suite)
