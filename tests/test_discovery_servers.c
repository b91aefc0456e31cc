/* XEP-0156 discovery end to end: the client given only a JID (and the
 * `discovery` option) against real Prosody and ejabberd
 * (tests/support/servers.h), which serve host-meta over HTTPS with their
 * own modules (Prosody's mod_http_altconnect, ejabberd's mod_host_meta,
 * which answers only for "Host: localhost"), and the project's dnsmasq
 * for the domain's SRV records and address. The servers cannot listen on
 * 443: the client is told their HTTPS port (client_hooks.h).
 *
 * Which way the client went is read from its log: "names the WebSocket"
 * (discovery found a link), "WebSocket open" (the transport upgraded),
 * "no WebSocket for" (it fell back to SRV and TCP). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <xmppuv.h>

#include "check_main.h"
#include "client_hooks.h"
#include "client_rec.h"
#include "dnsmasq.h"
#include "run_until.h"
#include "servers.h"

static const char *const kinds[] = {"prosody", "ejabberd"};

typedef struct env {
  uv_loop_t loop;
  run_guard_t guard;
  xmppuv_test_server_t srv;
  dnsmasq_t *dns;
  xmppuv_client_t *c;
  client_rec_t rec;
  char log[32768];
  size_t log_len;
  char jid[80];
} env_t;

static void on_log(void *ud, xmppuv_log_level_t level, const char *area, const char *msg) {
  env_t *e = ud;
  (void)level;
  if (getenv("DISCOVERY_LOG") != NULL) fprintf(stderr, "[%s] %s\n", area, msg);
  int n = snprintf(e->log + e->log_len, sizeof e->log - e->log_len, "%s\n", msg);
  if (n > 0 && (size_t)n < sizeof e->log - e->log_len) e->log_len += (size_t)n;
}

static int logged(const env_t *e, const char *what) { return strstr(e->log, what) != NULL; }

/* The server of kind, and dnsmasq giving the domain's SRV record to
 * srv_port (its STARTTLS port, or a closed one) and its address. */
static void env_start(env_t *e, int kind, int srv_to_closed_port) {
  memset(e, 0, sizeof *e);
  ck_assert_int_eq(uv_loop_init(&e->loop), 0);
  run_guard_init(&e->guard, &e->loop);
  client_rec_init(&e->rec, run_clock, &e->loop);
  int rc = xmppuv_test_server_start(kinds[kind], 30, &e->srv);
  ck_assert_msg(rc == 0, "%s did not start: %s", kinds[kind], uv_strerror(rc));
  /* Port 1: nothing listens there (tcpmux is long gone). */
  char srv[128];
  snprintf(srv, sizeof srv, "--srv-host=_xmpp-client._tcp.localhost,localhost,%u,10,5",
           srv_to_closed_port ? 1u : (unsigned)e->srv.port);
  /* Authoritative for localhost: what no record names is answered, not
   * refused (c-ares takes a refusal for an unreachable server). */
  const char *records[] = {srv, "--host-record=localhost,127.0.0.1", "--local=/localhost/", NULL};
  e->dns = dnsmasq_start(records);
  snprintf(e->jid, sizeof e->jid, "alice@%s", e->srv.domain);
}

static void client_start(env_t *e, xmppuv_discovery_t mode, uint16_t discovery_port) {
  xmppuv_client_options_t o;
  xmppuv_client_options_init(&o);
  o.jid = e->jid;
  o.password = xmppuv_test_password("alice");
  o.ca_file = e->srv.ca_file;
  o.dns_servers = dnsmasq_servers(e->dns);
  o.discovery = mode;
  o.connect_timeout_ms = 5000;
  o.log_cb = on_log;
  o.log_user_data = e;
  o.log_level = XMPPUV_LOG_DEBUG;
  ck_assert_int_eq(xmppuv_client_new(&e->loop, &o, &client_rec_callbacks, &e->rec, &e->c), 0);
  xmppuv__client_set_discovery_port(e->c, discovery_port);
  ck_assert_int_eq(xmppuv_client_start(e->c), 0);
}

static void env_finish(env_t *e) {
  if (e->c != NULL) xmppuv_client_close(e->c, client_rec_close_cb);
  else e->rec.closed = 1;
  run_guard_close(&e->guard);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  ck_assert(e->rec.closed);
  ck_assert_int_eq(uv_loop_close(&e->loop), 0);
  dnsmasq_stop(e->dns);
  xmppuv_test_server_stop(&e->srv);
}

/* A message to ourselves comes back: the session works both ways. */
static int echo_handler(xmppuv_client_t *c, xmppuv_stanza_t *msg, void *ud) {
  (void)c;
  const char *body = xmppuv_stanza_child_text(msg, "body", NULL);
  if (body != NULL && strcmp(body, "over the websocket") == 0) ++*(int *)ud;
  return XMPPUV_HANDLED;
}

static void message_round_trip(env_t *e) {
  int got = 0;
  ck_assert_int_eq(xmppuv_client_handler_add(e->c, "message", NULL, NULL, echo_handler, &got,
                                             NULL),
                   0);
  xmppuv_stanza_t *m;
  ck_assert_int_eq(xmppuv_stanza_new("message", NULL, &m), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(m, "to", xmppuv_jid_string(xmppuv_client_jid(e->c))), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(m, "type", "chat"), 0);
  xmppuv_stanza_t *body;
  ck_assert_int_eq(xmppuv_stanza_new_child(m, "body", NULL, &body), 0);
  ck_assert_int_eq(xmppuv_stanza_add_text(body, "over the websocket", 18), 0);
  ck_assert_int_eq(xmppuv_client_send(e->c, m), 0);
  xmppuv_stanza_unref(m);
  RUN_UNTIL(e, got == 1 && e->rec.acks >= 1, 20000);
  ck_assert_int_eq(got, 1);
}

/* websocket-first: host-meta names the wss:// endpoint; the client logs
 * in over it, and a message goes out and comes back. */
START_TEST(websocket_first_finds_the_servers_websocket_and_logs_in_over_it) {
  env_t *e = malloc(sizeof *e);
  env_start(e, _i, 0);
  client_start(e, XMPPUV_DISCOVERY_WEBSOCKET_FIRST, e->srv.https_port);
  RUN_UNTIL(e, e->rec.onlines == 1, 30000);
  ck_assert_msg(e->rec.onlines == 1, "%s: not online: %s", kinds[_i], e->log);
  char url[128];
  snprintf(url, sizeof url, "names the WebSocket wss://localhost:%u/", e->srv.https_port);
  ck_assert_msg(logged(e, url), "%s", e->log);
  ck_assert(logged(e, "WebSocket open"));
  ck_assert(!logged(e, "no WebSocket for"));
  message_round_trip(e);
  ck_assert_uint_eq(e->rec.errors, 0);
  env_finish(e);
  free(e);
}
END_TEST

/* auto (XEP-0156's order): SRV first; its target does not answer, so the
 * client asks host-meta and goes over the WebSocket instead. */
START_TEST(auto_asks_host_meta_when_no_tcp_connection_can_be_made) {
  env_t *e = malloc(sizeof *e);
  env_start(e, _i, 1);
  client_start(e, XMPPUV_DISCOVERY_AUTO, e->srv.https_port);
  RUN_UNTIL(e, e->rec.onlines == 1, 30000);
  ck_assert_msg(e->rec.onlines == 1, "%s: not online: %s", kinds[_i], e->log);
  ck_assert(logged(e, "names the WebSocket"));
  ck_assert(logged(e, "WebSocket open"));
  /* The TCP failure was not the app's business: the WebSocket worked. */
  ck_assert_uint_eq(e->rec.errors, 0);
  env_finish(e);
  free(e);
}
END_TEST

/* websocket-first with no host-meta to be had (nothing listens where it
 * is asked): SRV and TCP, as if discovery were off. */
START_TEST(websocket_first_without_host_meta_falls_back_to_srv) {
  env_t *e = malloc(sizeof *e);
  env_start(e, _i, 0);
  /* Asked where no HTTPS server is: the c2s port speaks XMPP. */
  client_start(e, XMPPUV_DISCOVERY_WEBSOCKET_FIRST, e->srv.port);
  RUN_UNTIL(e, e->rec.onlines == 1, 30000);
  ck_assert_msg(e->rec.onlines == 1, "%s: not online: %s", kinds[_i], e->log);
  ck_assert_msg(logged(e, "no WebSocket for localhost"), "%s", e->log);
  ck_assert(!logged(e, "WebSocket open"));
  ck_assert_uint_eq(e->rec.errors, 0);
  env_finish(e);
  free(e);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("discovery_servers");
  TCase *tc = tcase_create("xep0156");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, websocket_first_finds_the_servers_websocket_and_logs_in_over_it, 0, 2);
  tcase_add_loop_test(tc, auto_asks_host_meta_when_no_tcp_connection_can_be_made, 0, 2);
  tcase_add_loop_test(tc, websocket_first_without_host_meta_falls_back_to_srv, 0, 2);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
