/* tests/sm_restart_helper: "process B" of test_sm_servers.c's export ->
 * new process -> import -> resume test. It loads a saved Stream
 * Management session (xmppuv_client_sm_import), starts, waits until
 * everything it loaded has its outcome, stops gracefully and exits.
 *
 *   XMPPUV_PASSWORD=... sm_restart_helper STATE_FILE HOST PORT CA_FILE JID
 *
 * One line per event on stdout: "loaded N" (stanzas queued from the
 * file), "online JID", "resumed", "ack ID", "fail ID REASON",
 * "error NAME [fatal]". Exit status: 0 after a clean stop; 1 bad usage or
 * setup; 3 nothing settled within 60 s; 4 `resumed` came with the status
 * not online. Uses the public API only, as an application would. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <xmppuv.h>

typedef struct helper {
  xmppuv_client_t *client;
  uv_timer_t deadline;
  int ready; /* online or resumed */
  int stopping;
  int exit_code;
} helper_t;

static void print_id(const char *what, xmppuv_stanza_t *s) {
  const char *id = xmppuv_stanza_attr(s, "id");
  printf("%s %s", what, id ? id : "-");
}

static void maybe_stop(helper_t *h) {
  if (h->ready && !h->stopping && xmppuv_client_sm_queued(h->client) == 0) {
    h->stopping = 1;
    xmppuv_client_stop(h->client);
  }
}

static void on_online(xmppuv_client_t *c, const xmppuv_jid_t *jid, void *ud) {
  (void)c;
  helper_t *h = ud;
  printf("online %s\n", xmppuv_jid_string(jid));
  fflush(stdout);
  h->ready = 1;
  maybe_stop(h);
}

static void on_resumed(xmppuv_client_t *c, void *ud) {
  helper_t *h = ud;
  printf("resumed\n");
  fflush(stdout);
  if (xmppuv_client_status(c) != XMPPUV_STATUS_ONLINE) h->exit_code = 4;
  h->ready = 1;
  maybe_stop(h);
}

static void on_ack(xmppuv_client_t *c, xmppuv_stanza_t *s, void *ud) {
  (void)c;
  print_id("ack", s);
  printf("\n");
  fflush(stdout);
  maybe_stop(ud);
}

static void on_fail(xmppuv_client_t *c, xmppuv_stanza_t *s, int reason, void *ud) {
  (void)c;
  print_id("fail", s);
  printf(" %s\n", xmppuv_err_name(reason));
  fflush(stdout);
  maybe_stop(ud);
}

static void on_error(xmppuv_client_t *c, const xmppuv_error_t *err, void *ud) {
  (void)c, (void)ud;
  printf("error %s%s\n", xmppuv_err_name(err->code), err->fatal ? " fatal" : "");
  fflush(stdout);
}

static void on_closed(xmppuv_client_t *c, void *ud) {
  (void)c;
  helper_t *h = ud;
  uv_close((uv_handle_t *)&h->deadline, NULL);
}

static void on_status(xmppuv_client_t *c, xmppuv_status_t status, void *ud) {
  helper_t *h = ud;
  if (status == XMPPUV_STATUS_OFFLINE && h->client != NULL) {
    h->client = NULL;
    xmppuv_client_close(c, on_closed);
  }
}

static void on_deadline(uv_timer_t *t) {
  helper_t *h = t->data;
  printf("timeout\n");
  fflush(stdout);
  h->exit_code = 3;
  if (h->client != NULL) {
    xmppuv_client_t *c = h->client;
    h->client = NULL;
    xmppuv_client_close(c, on_closed);
  }
}

static int load(xmppuv_client_t *c, const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return -1;
  char *data = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len == cap) {
      cap = cap ? cap * 2 : 65536;
      char *grown = realloc(data, cap);
      if (grown == NULL) break;
      data = grown;
    }
    size_t n = fread(data + len, 1, cap - len, f);
    if (n == 0) break;
    len += n;
  }
  fclose(f);
  int rc = data != NULL ? xmppuv_client_sm_import(c, data, len) : -1;
  free(data);
  return rc;
}

int main(int argc, char **argv) {
  if (argc != 6 || getenv("XMPPUV_PASSWORD") == NULL) {
    fprintf(stderr,
            "usage: XMPPUV_PASSWORD=... sm_restart_helper STATE HOST PORT CA_FILE JID\n");
    return 1;
  }
  uv_loop_t *loop = uv_default_loop();
  helper_t h;
  memset(&h, 0, sizeof h);
  xmppuv_client_options_t o;
  xmppuv_client_options_init(&o);
  o.jid = argv[5];
  o.password = getenv("XMPPUV_PASSWORD");
  o.host = argv[2];
  o.port = (unsigned short)strtoul(argv[3], NULL, 10);
  o.tls = XMPPUV_TLS_STARTTLS;
  o.ca_file = argv[4];
  o.reconnect_delay_ms = 100;
  o.reconnect_max_delay_ms = 1000;
  o.sm_ack_debounce_ms = 50;
  o.sm_drain_timeout_ms = 10000;
  xmppuv_client_callbacks_t cbs;
  xmppuv_client_callbacks_init(&cbs);
  cbs.status = on_status;
  cbs.online = on_online;
  cbs.resumed = on_resumed;
  cbs.error = on_error;
  cbs.ack = on_ack;
  cbs.fail = on_fail;
  int rc = xmppuv_client_new(loop, &o, &cbs, &h, &h.client);
  if (rc != 0) {
    fprintf(stderr, "sm_restart_helper: %s\n", xmppuv_strerror(rc));
    return 1;
  }
  rc = load(h.client, argv[1]);
  if (rc != 0) {
    fprintf(stderr, "sm_restart_helper: cannot load %s: %s\n", argv[1],
            rc < 0 ? xmppuv_strerror(rc) : "?");
    return 1;
  }
  printf("loaded %zu\n", xmppuv_client_sm_queued(h.client));
  fflush(stdout);
  uv_timer_init(loop, &h.deadline);
  h.deadline.data = &h;
  uv_timer_start(&h.deadline, on_deadline, 60000, 0);
  rc = xmppuv_client_start(h.client);
  if (rc != 0) {
    fprintf(stderr, "sm_restart_helper: %s\n", xmppuv_strerror(rc));
    return 1;
  }
  uv_run(loop, UV_RUN_DEFAULT);
  return uv_loop_close(loop) == 0 ? h.exit_code : 1;
}
