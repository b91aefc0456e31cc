#include "client_world.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void world_init(world_t *w) {
  memset(w, 0, sizeof *w);
  ck_assert_int_eq(uv_loop_init(&w->loop), 0);
  run_guard_init(&w->guard, &w->loop);
  client_rec_init(&w->app, run_clock, &w->loop);
}

void world_server(world_t *w, int i, const xmppuv_test_step_t *const *scripts, size_t n) {
  ck_assert_int_eq(xmppuv_test_script_server_start(&w->loop, scripts, n, &w->srv[i]), 0);
}

unsigned short world_port(const world_t *w, int i) {
  return xmppuv_test_script_server_port(w->srv[i]);
}

size_t world_connections(const world_t *w, int i) {
  return w->srv[i] != NULL ? xmppuv_test_script_server_connections(w->srv[i]) : 0;
}

const char *world_received(const world_t *w, int i, size_t conn) {
  xmppuv_test_script_conn_t *k = xmppuv_test_script_server_conn(w->srv[i], conn);
  ck_assert_msg(k != NULL, "no connection %zu on server %d", conn, i);
  return xmppuv_test_script_conn_received(k, NULL);
}

int world_script_done(const world_t *w, int i, size_t conn) {
  xmppuv_test_script_conn_t *k = xmppuv_test_script_server_conn(w->srv[i], conn);
  return k != NULL && xmppuv_test_script_conn_done(k);
}

void world_log(void *ud, xmppuv_log_level_t level, const char *area, const char *msg) {
  (void)ud;
  fprintf(stderr, "# [%s] %s: %s\n", xmppuv_log_level_name(level), area, msg);
}

void world_opts(xmppuv_client_options_t *o, unsigned short port) {
  xmppuv_client_options_init(o);
  o->jid = "alice@localhost";
  o->password = "alice-secret";
  o->host = "127.0.0.1";
  o->port = port;
  o->tls = XMPPUV_TLS_DISABLED_INSECURE;
  o->reconnect_delay_ms = 50;
  o->reconnect_max_delay_ms = 200;
  o->close_timeout_ms = 1000;
  if (getenv("XMPPUV_TEST_LOG") != NULL) {
    o->log_cb = world_log;
    o->log_level = XMPPUV_LOG_TRACE;
  } else {
    o->log_level = XMPPUV_LOG_NONE;
  }
}

void world_client_new(world_t *w, const xmppuv_client_options_t *o) {
  ck_assert_int_eq(xmppuv_client_new(&w->loop, o, &client_rec_callbacks, &w->app, &w->c), 0);
}

void world_start(world_t *w, const xmppuv_client_options_t *o) {
  world_client_new(w, o);
  ck_assert_int_eq(xmppuv_client_start(w->c), 0);
}

void world_finish(world_t *w) {
  if (w->c != NULL && !w->app.close_called) xmppuv_client_close(w->c, client_rec_close_cb);
  for (int i = 0; i < 2; i++) xmppuv_test_script_server_close(w->srv[i], NULL, NULL);
  run_guard_close(&w->guard);
  uv_run(&w->loop, UV_RUN_DEFAULT);
  if (w->c != NULL) ck_assert_msg(w->app.closed, "close_cb did not run");
  ck_assert_int_eq(uv_loop_close(&w->loop), 0);
  ck_assert_msg(w->app.wordless_errors == 0, "%u error(s) without a text or condition",
                w->app.wordless_errors);
}

int world_count(const char *text, const char *needle) {
  int n = 0;
  for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle)) n++;
  return n;
}
