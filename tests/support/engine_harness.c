/* The engine on a fake clock and a memory transport: see engine_harness.h. */
#include "engine_harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sasl/sasl.h"
#include "sasl/scram.h"
#include "util/alloc.h"

/* A run that never settles is a bug in the engine or the test: stop it. */
#define MAX_ROUNDS 10000000u

typedef enum { LINK_CONNECTING, LINK_OPEN, LINK_CLOSED } link_state_t;

/* One connection the engine opened. */
typedef struct mem_link {
  xmppuv_test_engine_t *h;
  uint64_t id; /* the engine's link id */
  xmppuv_test_script_conn_t *conn;
  link_state_t state; /* our (the client's) side */
  int server_closed;  /* the server ended it: the end is on its way to us */
  int delay_armed;
  uint64_t delay_due;
} mem_link_t;

/* What the loop would hand the engine next. */
typedef enum { IN_CONNECTED, IN_DATA, IN_TLS_READY, IN_ERROR, IN_CLOSED, IN_DERIVE } in_kind_t;

typedef struct in_item {
  struct in_item *next;
  in_kind_t kind;
  uint64_t link;
  int status;
  /* DERIVE */
  xmppuv__mech_t mech;
  unsigned iterations;
  size_t off, len;
  char data[]; /* DATA: the bytes; DERIVE: the salt */
} in_item_t;

struct xmppuv_test_engine {
  xmppuv__engine_t *engine;
  xmppuv__time_t now;
  char *password;
  const xmppuv_test_step_t *const *scripts;
  size_t n_scripts;
  const xmppuv_test_step_t *next_script;
  int starttls;
  unsigned max_derive_iterations;
  mem_link_t **links;
  size_t n_links, links_cap;
  uint64_t current; /* the link the engine uses now, 0 if none */
  in_item_t *in_head, *in_tail;
  unsigned refuse;
  int fail_next_write;
  unsigned derivations;
  xmppuv_test_script_fn on_data;
  void *on_data_arg;
  size_t (*chunk)(void *arg, size_t left);
  void *chunk_arg;
  void (*on_write)(void *arg, const char *data, size_t len);
  void *on_write_arg;
};

static const xmppuv_test_step_t silent[] = {SCRIPT_END};

/* ---- the queue of what happens next ----------------------------------------- */

static in_item_t *push_in(xmppuv_test_engine_t *h, in_kind_t kind, uint64_t link,
                          const void *data, size_t len) {
  in_item_t *it = calloc(1, sizeof *it + len + 1);
  if (it == NULL) abort(); /* test support: out of memory is the end */
  it->kind = kind;
  it->link = link;
  it->len = len;
  if (len > 0) memcpy(it->data, data, len);
  if (h->in_tail != NULL)
    h->in_tail->next = it;
  else
    h->in_head = it;
  h->in_tail = it;
  return it;
}

static void pop_in(xmppuv_test_engine_t *h) {
  in_item_t *it = h->in_head;
  h->in_head = it->next;
  if (h->in_head == NULL) h->in_tail = NULL;
  free(it);
}

/* A connection our side closed delivers nothing more (what the server sent
 * or did after is lost with it), but the close itself. */
static void drop_pending_of(xmppuv_test_engine_t *h, uint64_t link) {
  in_item_t **p = &h->in_head;
  h->in_tail = NULL;
  while (*p != NULL) {
    in_item_t *it = *p;
    if (it->link == link && it->kind != IN_DERIVE) {
      *p = it->next;
      free(it);
      continue;
    }
    h->in_tail = it;
    p = &it->next;
  }
}

static mem_link_t *find_link(const xmppuv_test_engine_t *h, uint64_t id) {
  for (size_t i = 0; i < h->n_links; i++)
    if (h->links[i]->id == id) return h->links[i];
  return NULL;
}

/* ---- the io of a scripted connection in memory --------------------------------- */

static int io_send(void *io, const char *data, size_t len) {
  mem_link_t *l = io;
  if (l->state == LINK_CLOSED || l->server_closed || xmppuv_test_script_conn_shut(l->conn))
    return -EPIPE;
  push_in(l->h, IN_DATA, l->id, data, len);
  return 0;
}

/* The server ends the connection: the client reads an end of stream (or a
 * reset) after what came before, and its transport closes itself then;
 * unless it closes its side first. */
static void io_close(void *io, int how) {
  mem_link_t *l = io;
  if (l->state == LINK_CLOSED || l->server_closed) return;
  l->server_closed = 1;
  l->delay_armed = 0;
  push_in(l->h, IN_ERROR, l->id, NULL, 0)->status =
      how == XMPPUV_TEST_IO_RESET ? -ECONNRESET : XMPPUV_EEOF;
  push_in(l->h, IN_CLOSED, l->id, NULL, 0);
  xmppuv_test_script_conn_set_peer(l->conn, how == XMPPUV_TEST_IO_RESET
                                                ? XMPPUV_TEST_PEER_ERROR
                                                : XMPPUV_TEST_PEER_EOF);
  xmppuv_test_script_conn_set_closed(l->conn);
}

static void io_delay(void *io, unsigned ms) {
  mem_link_t *l = io;
  l->delay_armed = 1;
  l->delay_due = l->h->now.mono_ms + ms;
}

static const xmppuv_test_script_io_t mem_io = {io_send, io_close, io_delay, NULL};

/* ---- the engine's actions --------------------------------------------------------- */

static void do_connect(xmppuv_test_engine_t *h, const xmppuv__action_t *a) {
  h->current = a->link;
  if (h->refuse > 0) {
    h->refuse--;
    push_in(h, IN_ERROR, a->link, NULL, 0)->status = -ECONNREFUSED;
    push_in(h, IN_CLOSED, a->link, NULL, 0);
    return;
  }
  if (h->n_links == h->links_cap) {
    size_t cap = h->links_cap * 2 + 8;
    mem_link_t **bigger = realloc(h->links, cap * sizeof *bigger);
    if (bigger == NULL) abort();
    h->links = bigger;
    h->links_cap = cap;
  }
  mem_link_t *l = calloc(1, sizeof *l);
  if (l == NULL) abort();
  size_t index = h->n_links;
  const xmppuv_test_step_t *script = silent;
  if (h->next_script != NULL) {
    script = h->next_script;
    h->next_script = NULL;
  } else if (h->scripts != NULL) {
    script = h->scripts[index < h->n_scripts ? index : h->n_scripts - 1];
  }
  l->h = h;
  l->id = a->link;
  l->state = LINK_CONNECTING;
  l->conn = xmppuv_test_script_conn_new(script, index, 0, &mem_io, l, h->now.mono_ms);
  if (l->conn == NULL) abort();
  h->links[h->n_links++] = l;
  push_in(h, IN_CONNECTED, a->link, NULL, 0);
}

/* Our side closes (graceful: after a FIN the server reads an end). */
static void close_link(xmppuv_test_engine_t *h, mem_link_t *l, int graceful) {
  if (l->state == LINK_CLOSED) return;
  l->state = LINK_CLOSED;
  l->delay_armed = 0;
  drop_pending_of(h, l->id);
  xmppuv_test_script_conn_set_peer(l->conn, graceful ? XMPPUV_TEST_PEER_EOF
                                                     : XMPPUV_TEST_PEER_ERROR);
  xmppuv_test_script_conn_set_closed(l->conn);
  push_in(h, IN_CLOSED, l->id, NULL, 0);
}

static void give_password(xmppuv_test_engine_t *h, const xmppuv__action_t *a) {
  xmppuv__engine_password(h->engine, a->link, h->password != NULL ? 0 : XMPPUV_EAUTH,
                          h->password, h->now);
}

static void queue_derive(xmppuv_test_engine_t *h, const xmppuv__action_t *a) {
  in_item_t *it = push_in(h, IN_DERIVE, a->link, a->salt, a->salt_len);
  it->mech = a->mech;
  it->iterations = a->iterations;
}

/* As the driver's thread pool would, without the thread. */
static void derive(xmppuv_test_engine_t *h, const in_item_t *it) {
  unsigned char ck[XMPPUV__SCRAM_KEY_MAX], sk[XMPPUV__SCRAM_KEY_MAX];
  size_t key_len = 0;
  int rc = h->password != NULL ? 0 : XMPPUV_EAUTH;
  if (rc == 0 && h->max_derive_iterations > 0 && it->iterations > h->max_derive_iterations) {
    key_len = it->mech == XMPPUV__MECH_SCRAM_SHA_1 || it->mech == XMPPUV__MECH_SCRAM_SHA_1_PLUS
                  ? 20
                  : it->mech == XMPPUV__MECH_SCRAM_SHA_512 ||
                            it->mech == XMPPUV__MECH_SCRAM_SHA_512_PLUS
                        ? 64
                        : 32;
    memset(ck, 0x5a, sizeof ck);
    memset(sk, 0xa5, sizeof sk);
  } else if (rc == 0) {
    char *prepared = NULL;
    size_t prepared_len = 0;
    rc = xmppuv__sasl_prep(h->password, 1, &prepared, &prepared_len);
    if (rc == 0) {
      h->derivations++;
      rc = xmppuv__scram_derive(it->mech, prepared, prepared_len,
                                (const unsigned char *)it->data, it->len, it->iterations, ck,
                                sk, &key_len);
      xmppuv__secure_zero(prepared, prepared_len);
      xmppuv__free(prepared);
    }
  }
  xmppuv__scram_keys_t *keys = NULL;
  if (rc == 0)
    rc = xmppuv__scram_keys_new(it->mech, (const unsigned char *)it->data, it->len,
                                it->iterations, ck, sk, key_len, &keys);
  xmppuv__engine_keys(h->engine, it->link, rc, keys, h->now);
  xmppuv__scram_keys_free(keys);
}

static void do_action(xmppuv_test_engine_t *h, const xmppuv__action_t *a) {
  mem_link_t *l = find_link(h, a->link);
  int open = l != NULL && l->state != LINK_CLOSED;
  switch (a->kind) {
    case XMPPUV__ACT_CONNECT: do_connect(h, a); break;
    case XMPPUV__ACT_STARTTLS:
      if (open) push_in(h, IN_TLS_READY, a->link, NULL, 0);
      break;
    case XMPPUV__ACT_CLOSE:
      if (open) close_link(h, l, a->graceful);
      break;
    case XMPPUV__ACT_PASSWORD: give_password(h, a); break;
    case XMPPUV__ACT_DERIVE: queue_derive(h, a); break;
    case XMPPUV__ACT_NONE: break;
  }
}

/* ---- the pump ---------------------------------------------------------------------- */

/* Fixed channel-binding data: the engine only needs something to bind to. */
static void fake_binding(xmppuv__channel_binding_t *cb) {
  memset(cb, 0, sizeof *cb);
  static const char *const types[] = {"tls-exporter", "tls-server-end-point"};
  cb->n = 2;
  for (size_t i = 0; i < 2; i++) {
    strcpy(cb->b[i].type, types[i]);
    for (size_t k = 0; k < 32; k++) cb->b[i].data[k] = (unsigned char)(k * 7u + i + 1u);
    cb->b[i].len = 32;
  }
}

static void write_output(xmppuv_test_engine_t *h) {
  xmppuv__buf_t *out = xmppuv__engine_output(h->engine);
  if (out->len == 0) return;
  if (h->on_write != NULL) h->on_write(h->on_write_arg, out->data, out->len);
  mem_link_t *l = find_link(h, h->current);
  if (l != NULL && l->state == LINK_OPEN && !l->server_closed) {
    if (h->fail_next_write != 0) {
      int status = h->fail_next_write;
      h->fail_next_write = 0;
      xmppuv__engine_transport_error(h->engine, l->id, status, "the write failed (test)",
                                     h->now);
      close_link(h, l, 0);
    } else {
      if (xmppuv_test_script_conn_received_bytes(l->conn, out->data, out->len) != 0) abort();
      if (h->on_data != NULL && !xmppuv_test_script_conn_closing(l->conn) &&
          h->on_data(l->conn, h->on_data_arg) < 0)
        xmppuv_test_script_conn_close(l->conn, 1);
    }
  }
  xmppuv__buf_clear(out);
}

/* Hand the engine the next thing that happened: 1 if there was one. */
static int next_input(xmppuv_test_engine_t *h) {
  in_item_t *it = h->in_head;
  if (it == NULL) return 0;
  mem_link_t *l = find_link(h, it->link);
  switch (it->kind) {
    case IN_CONNECTED: {
      if (l != NULL && l->state == LINK_CONNECTING) {
        l->state = LINK_OPEN;
        xmppuv__channel_binding_t cb;
        fake_binding(&cb);
        xmppuv__engine_connected(h->engine, it->link, XMPPUV__FRAMING_STREAM, !h->starttls,
                                 h->starttls ? NULL : &cb, h->now);
        xmppuv_test_script_conn_advance(l->conn);
      }
      pop_in(h);
      return 1;
    }
    case IN_DATA: {
      if (!xmppuv__engine_wants_input(h->engine)) return 0; /* reading paused */
      size_t left = it->len - it->off;
      size_t n = h->chunk != NULL ? h->chunk(h->chunk_arg, left) : left;
      if (n == 0 || n > left) n = left;
      it->off += n;
      xmppuv__engine_feed(h->engine, it->link, it->data + it->off - n, n, h->now);
      if (it->off == it->len) pop_in(h);
      return 1;
    }
    case IN_TLS_READY: {
      xmppuv__channel_binding_t cb;
      fake_binding(&cb);
      pop_in(h);
      xmppuv__engine_tls_ready(h->engine, l != NULL ? l->id : 0, &cb, h->now);
      return 1;
    }
    case IN_ERROR: {
      uint64_t link = it->link;
      int status = it->status;
      pop_in(h);
      if (l != NULL) l->state = LINK_CLOSED;
      xmppuv__engine_transport_error(h->engine, link, status,
                                     status == XMPPUV_EEOF ? "the server closed the connection"
                                                           : "the connection broke",
                                     h->now);
      return 1;
    }
    case IN_CLOSED: {
      uint64_t link = it->link;
      pop_in(h);
      if (link == h->current) h->current = 0;
      xmppuv__engine_transport_closed(h->engine, link, h->now);
      return 1;
    }
    case IN_DERIVE:
      derive(h, it);
      pop_in(h);
      return 1;
  }
  return 0;
}

void xmppuv_test_engine_run(xmppuv_test_engine_t *h) {
  unsigned idle_ticks = 0; /* ticks in a row with nothing else to do */
  for (unsigned rounds = 0;; rounds++) {
    if (rounds == MAX_ROUNDS) abort(); /* it never settles */
    write_output(h);
    xmppuv__action_t a;
    if (xmppuv__engine_action(h->engine, &a)) {
      do_action(h, &a);
      continue;
    }
    if (xmppuv__engine_deliver(h->engine, h->now)) continue;
    if (xmppuv__engine_step(h->engine, h->now)) continue;
    if (next_input(h)) {
      idle_ticks = 0;
      continue;
    }
    /* A deadline due now (a timer armed at 0): the loop runs it next. */
    if (xmppuv__engine_deadline(h->engine) <= h->now.mono_ms) {
      if (++idle_ticks == 1000) {
        fprintf(stderr, "engine harness: a tick leaves its deadline due: the loop would spin\n");
        abort();
      }
      xmppuv__engine_tick(h->engine, h->now);
      continue;
    }
    break;
  }
}

/* ---- time ---------------------------------------------------------------------------- */

static uint64_t next_due(const xmppuv_test_engine_t *h) {
  uint64_t due = xmppuv__engine_deadline(h->engine);
  for (size_t i = 0; i < h->n_links; i++)
    if (h->links[i]->delay_armed && h->links[i]->delay_due < due) due = h->links[i]->delay_due;
  return due;
}

static void move_to(xmppuv_test_engine_t *h, uint64_t mono) {
  if (mono <= h->now.mono_ms) return;
  h->now.wall_ms += (int64_t)(mono - h->now.mono_ms);
  h->now.mono_ms = mono;
}

/* Everything due by now. */
static void fire(xmppuv_test_engine_t *h) {
  if (xmppuv__engine_deadline(h->engine) <= h->now.mono_ms)
    xmppuv__engine_tick(h->engine, h->now);
  for (size_t i = 0; i < h->n_links; i++) {
    mem_link_t *l = h->links[i];
    if (l->delay_armed && l->delay_due <= h->now.mono_ms) {
      l->delay_armed = 0;
      xmppuv_test_script_conn_delay_over(l->conn);
    }
  }
  xmppuv_test_engine_run(h);
}

void xmppuv_test_engine_advance(xmppuv_test_engine_t *h, uint64_t ms) {
  uint64_t target = h->now.mono_ms + ms;
  xmppuv_test_engine_run(h);
  for (unsigned rounds = 0;; rounds++) {
    if (rounds == MAX_ROUNDS) abort();
    uint64_t due = next_due(h);
    if (due == XMPPUV__NO_DEADLINE || due > target) break;
    move_to(h, due);
    fire(h);
  }
  move_to(h, target);
}

int xmppuv_test_engine_run_until(xmppuv_test_engine_t *h, int (*done)(void *arg), void *arg,
                                 uint64_t max_ms) {
  uint64_t limit = h->now.mono_ms + max_ms;
  xmppuv_test_engine_run(h);
  for (unsigned rounds = 0;; rounds++) {
    if (done(arg)) return 1;
    if (rounds == MAX_ROUNDS) abort();
    uint64_t due = next_due(h);
    if (due == XMPPUV__NO_DEADLINE || due > limit) return 0;
    move_to(h, due);
    fire(h);
  }
}

/* ---- API ------------------------------------------------------------------------------- */

int xmppuv_test_engine_new(const xmppuv_test_engine_config_t *cfg, xmppuv_test_engine_t **out) {
  *out = NULL;
  xmppuv_test_engine_t *h = calloc(1, sizeof *h);
  if (h == NULL) return XMPPUV_ENOMEM;
  h->now.mono_ms = 1000000;
  h->now.wall_ms = INT64_C(1700000000000);
  h->scripts = cfg->scripts;
  h->n_scripts = cfg->n_scripts;
  h->starttls = cfg->starttls;
  h->max_derive_iterations = cfg->max_derive_iterations;
  if (cfg->opts->password != NULL) {
    h->password = strdup(cfg->opts->password);
    if (h->password == NULL) {
      free(h);
      return XMPPUV_ENOMEM;
    }
  }
  int rc = xmppuv__engine_new(cfg->opts, cfg->callbacks, cfg->user_data, NULL, cfg->seed,
                              &h->engine);
  if (rc != 0) {
    free(h->password);
    free(h);
    return rc;
  }
  *out = h;
  return 0;
}

void xmppuv_test_engine_free(xmppuv_test_engine_t *h) {
  if (h == NULL) return;
  xmppuv__engine_free(h->engine);
  while (h->in_head != NULL) pop_in(h);
  for (size_t i = 0; i < h->n_links; i++) {
    xmppuv_test_script_conn_free(h->links[i]->conn);
    free(h->links[i]);
  }
  free(h->links);
  free(h->password);
  free(h);
}

xmppuv__engine_t *xmppuv_test_engine_get(const xmppuv_test_engine_t *h) { return h->engine; }

xmppuv__time_t xmppuv_test_engine_now(const xmppuv_test_engine_t *h) { return h->now; }

int xmppuv_test_engine_start(xmppuv_test_engine_t *h) {
  return xmppuv__engine_start(h->engine, h->now);
}

int xmppuv_test_engine_stop(xmppuv_test_engine_t *h) {
  return xmppuv__engine_stop(h->engine, h->now);
}

int xmppuv_test_engine_send(xmppuv_test_engine_t *h, xmppuv_stanza_t *stanza,
                            xmppuv_send_done_cb cb, void *user_data) {
  return xmppuv__engine_send(h->engine, stanza, cb, user_data, h->now);
}

size_t xmppuv_test_engine_connections(const xmppuv_test_engine_t *h) { return h->n_links; }

xmppuv_test_script_conn_t *xmppuv_test_engine_conn(const xmppuv_test_engine_t *h, size_t i) {
  return i < h->n_links ? h->links[i]->conn : NULL;
}

xmppuv_test_script_conn_t *xmppuv_test_engine_current(const xmppuv_test_engine_t *h) {
  mem_link_t *l = find_link(h, h->current);
  return l != NULL && l->state == LINK_OPEN && !l->server_closed ? l->conn : NULL;
}

void xmppuv_test_engine_cut(xmppuv_test_engine_t *h) {
  mem_link_t *l = find_link(h, h->current);
  if (l == NULL || l->state == LINK_CLOSED || l->server_closed) return;
  drop_pending_of(h, l->id); /* a reset loses what was in flight */
  io_close(l, XMPPUV_TEST_IO_RESET);
}

void xmppuv_test_engine_refuse(xmppuv_test_engine_t *h, unsigned n) { h->refuse = n; }

void xmppuv_test_engine_fail_next_write(xmppuv_test_engine_t *h, int status) {
  h->fail_next_write = status;
}

void xmppuv_test_engine_next_script(xmppuv_test_engine_t *h, const xmppuv_test_step_t *steps) {
  h->next_script = steps;
}

void xmppuv_test_engine_on_data(xmppuv_test_engine_t *h, xmppuv_test_script_fn fn, void *arg) {
  h->on_data = fn;
  h->on_data_arg = arg;
}

void xmppuv_test_engine_chunker(xmppuv_test_engine_t *h, size_t (*chunk)(void *arg, size_t left),
                                void *arg) {
  h->chunk = chunk;
  h->chunk_arg = arg;
}

void xmppuv_test_engine_on_write(xmppuv_test_engine_t *h,
                                 void (*fn)(void *arg, const char *data, size_t len),
                                 void *arg) {
  h->on_write = fn;
  h->on_write_arg = arg;
}

unsigned xmppuv_test_engine_derivations(const xmppuv_test_engine_t *h) {
  return h->derivations;
}
