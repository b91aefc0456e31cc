#include "client_rec.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#include "text.h"

void client_rec_init(client_rec_t *r, client_rec_clock_fn clock, void *clock_arg) {
  memset(r, 0, sizeof *r);
  r->clock = clock;
  r->clock_arg = clock_arg;
}

void client_rec_free(client_rec_t *r) {
  for (size_t i = 0; i < r->nslots; i++) {
    xmppuv_stanza_unref(r->slots[i].s);
    r->slots[i].s = NULL;
  }
}

static uint64_t now(const client_rec_t *r) { return r->clock != NULL ? r->clock(r->clock_arg) : 0; }

void client_rec_note(client_rec_t *r, const char *what, int code) {
  text_append(r->seq, sizeof r->seq, &r->seq_len, "%s%s%s%s", r->seq_len ? " " : "", what,
              code ? ":" : "", code ? xmppuv_err_name(code) : "");
}

/* The start of every event: the rules it may break. */
static void begin(client_rec_t *r) {
  if (r->closed) r->after_close = 1;
  if (r->in_call) r->event_in_call = 1;
}

/* The end of every event: the test's hook, then close_on/stop_on, the
 * first time the event comes. */
static void end(client_rec_t *r, xmppuv_client_t *c, const char *event) {
  if (r->on_event != NULL) r->on_event(r, c, event);
  if (r->stop_on != NULL && !r->stop_called && strcmp(r->stop_on, event) == 0) {
    ck_assert_msg(c != NULL, "stop_on needs a client");
    r->stop_called = 1;
    r->stop_rc = xmppuv_client_stop(c);
  }
  if (r->close_on != NULL && !r->close_called && strcmp(r->close_on, event) == 0) {
    ck_assert_msg(c != NULL, "close_on needs a client");
    r->close_called = 1;
    xmppuv_client_close(c, client_rec_close_cb);
  }
}

int client_rec_valid_transition(xmppuv_status_t from, xmppuv_status_t to) {
  switch (from) {
    case XMPPUV_STATUS_OFFLINE: return to == XMPPUV_STATUS_CONNECTING;
    case XMPPUV_STATUS_CONNECTING:
      return to == XMPPUV_STATUS_CONNECT || to == XMPPUV_STATUS_DISCONNECTING ||
             to == XMPPUV_STATUS_DISCONNECT || to == XMPPUV_STATUS_OFFLINE;
    case XMPPUV_STATUS_CONNECT:
      return to == XMPPUV_STATUS_OPENING || to == XMPPUV_STATUS_DISCONNECTING;
    case XMPPUV_STATUS_OPENING:
      return to == XMPPUV_STATUS_OPEN || to == XMPPUV_STATUS_CLOSING ||
             to == XMPPUV_STATUS_DISCONNECTING;
    case XMPPUV_STATUS_OPEN:
      return to == XMPPUV_STATUS_OPENING || to == XMPPUV_STATUS_ONLINE ||
             to == XMPPUV_STATUS_CLOSING || to == XMPPUV_STATUS_CLOSE ||
             to == XMPPUV_STATUS_DISCONNECTING;
    case XMPPUV_STATUS_ONLINE:
      return to == XMPPUV_STATUS_CLOSING || to == XMPPUV_STATUS_CLOSE ||
             to == XMPPUV_STATUS_DISCONNECTING;
    case XMPPUV_STATUS_CLOSING:
      return to == XMPPUV_STATUS_CLOSE || to == XMPPUV_STATUS_DISCONNECTING;
    case XMPPUV_STATUS_CLOSE: return to == XMPPUV_STATUS_DISCONNECTING;
    case XMPPUV_STATUS_DISCONNECTING: return to == XMPPUV_STATUS_DISCONNECT;
    case XMPPUV_STATUS_DISCONNECT:
      return to == XMPPUV_STATUS_CONNECTING || to == XMPPUV_STATUS_OFFLINE;
  }
  return 0;
}

static void on_status(xmppuv_client_t *c, xmppuv_status_t st, void *ud) {
  client_rec_t *r = ud;
  begin(r);
  if (!client_rec_valid_transition(r->status, st) && r->bad_transition[0] == '\0')
    snprintf(r->bad_transition, sizeof r->bad_transition, "%s -> %s", xmppuv_status_name(r->status),
             xmppuv_status_name(st));
  r->status = st;
  const char *name = xmppuv_status_name(st);
  text_append(r->statuses, sizeof r->statuses, &r->st_len, "%s%s", r->st_len ? " " : "", name);
  if (st == XMPPUV_STATUS_CONNECTING) r->connecting++;
  if (st == XMPPUV_STATUS_CONNECT && r->connects < CLIENT_REC_MAX)
    r->connect_at[r->connects++] = now(r);
  if (st == XMPPUV_STATUS_OFFLINE) {
    r->offlines++;
    client_rec_note(r, "offline", 0);
  }
  end(r, c, name);
}

static void on_online(xmppuv_client_t *c, const xmppuv_jid_t *jid, void *ud) {
  client_rec_t *r = ud;
  begin(r);
  r->onlines++;
  r->online_at = now(r);
  snprintf(r->bound, sizeof r->bound, "%s", jid ? xmppuv_jid_string(jid) : "(null)");
  client_rec_note(r, "online", 0);
  end(r, c, "online-event");
}

static void on_resumed(xmppuv_client_t *c, void *ud) {
  client_rec_t *r = ud;
  begin(r);
  r->resumes++;
  client_rec_note(r, "resumed", 0);
  end(r, c, "resumed");
}

static void on_error(xmppuv_client_t *c, const xmppuv_error_t *e, void *ud) {
  client_rec_t *r = ud;
  begin(r);
  if (r->errors < CLIENT_REC_MAX) {
    r->err_code[r->errors] = e->code;
    r->err_fatal[r->errors] = e->fatal;
    snprintf(r->err_cond[r->errors], sizeof r->err_cond[0], "%s", e->condition ? e->condition : "");
    snprintf(r->err_text[r->errors], sizeof r->err_text[0], "%s", e->text ? e->text : "");
    r->err_at[r->errors] = now(r);
  }
  if ((e->text == NULL || e->text[0] == '\0') && (e->condition == NULL || e->condition[0] == '\0')) {
    r->wordless_errors++;
    fprintf(stderr, "# an error without words: %s\n", xmppuv_err_name(e->code));
  }
  r->errors++;
  r->last_err_code = e->code;
  client_rec_note(r, "error", e->code);
  end(r, c, "error");
}

static void on_reconnecting(xmppuv_client_t *c, unsigned attempt, uint64_t delay_ms, void *ud) {
  client_rec_t *r = ud;
  begin(r);
  if (r->reconnectings < CLIENT_REC_MAX) {
    r->attempt[r->reconnectings] = attempt;
    r->delay[r->reconnectings] = delay_ms;
    r->reconnecting_at[r->reconnectings] = now(r);
  }
  r->reconnectings++;
  if (r->seq_reconnecting) client_rec_note(r, "reconnecting", 0);
  end(r, c, "reconnecting");
}

client_rec_slot_t *client_rec_slot_of(client_rec_t *r, const xmppuv_stanza_t *stanza) {
  for (size_t i = 0; i < r->nslots; i++)
    if (r->slots[i].s == stanza) return &r->slots[i];
  return NULL;
}

static void on_ack(xmppuv_client_t *c, xmppuv_stanza_t *s, void *ud) {
  client_rec_t *r = ud;
  begin(r);
  r->acks++;
  r->acked = s;
  client_rec_slot_t *k = client_rec_slot_of(r, s);
  if (k != NULL)
    k->acks++;
  else
    r->stray++;
  client_rec_note(r, "ack", 0);
  end(r, c, "ack");
}

static void on_fail(xmppuv_client_t *c, xmppuv_stanza_t *s, int reason, void *ud) {
  client_rec_t *r = ud;
  begin(r);
  if (r->fails < CLIENT_REC_MAX) r->fail_reason[r->fails] = reason;
  r->fails++;
  client_rec_slot_t *k = client_rec_slot_of(r, s);
  if (k != NULL) {
    k->fails++;
    k->reason = reason;
  } else {
    r->stray++;
  }
  client_rec_note(r, "fail", reason);
  end(r, c, "fail");
}

static void on_stanza(xmppuv_client_t *c, xmppuv_stanza_t *s, int handled, void *ud) {
  client_rec_t *r = ud;
  (void)s;
  (void)handled;
  begin(r);
  r->inbound++;
  end(r, c, "stanza");
}

static void on_fast_token(xmppuv_client_t *c, const xmppuv_fast_token_t *t, void *ud) {
  client_rec_t *r = ud;
  begin(r);
  r->tokens++;
  snprintf(r->token, sizeof r->token, "%s", t != NULL ? t->token : "");
  snprintf(r->token_mech, sizeof r->token_mech, "%s", t != NULL ? t->mechanism : "");
  snprintf(r->token_expiry, sizeof r->token_expiry, "%s", t != NULL ? t->expiry : "");
  client_rec_note(r, t != NULL ? "token" : "token:none", 0);
  end(r, c, "token");
}

static void on_closed(xmppuv_client_t *c, void *ud) {
  (void)c;
  client_rec_t *r = ud;
  /* The last event, before the close callback, once. */
  if (r->closed) r->after_close = 1;
  r->closed_events++;
}

const xmppuv_client_callbacks_t client_rec_callbacks = {
    sizeof(xmppuv_client_callbacks_t), on_status, on_online, on_resumed, on_error, on_ack, on_fail, on_reconnecting, on_stanza, on_fast_token, on_closed};

void client_rec_close_cb(xmppuv_client_t *c, void *user_data) {
  client_rec_t *r = user_data;
  r->closed = 1;
  if (r->on_event != NULL) r->on_event(r, c, "close");
}

/* A send callback: its count and status (the recorder's, or a slot's). */
static void sent(client_rec_t *r, xmppuv_client_t *c, unsigned *done, int *last, int status) {
  begin(r);
  (*done)++;
  *last = status;
  client_rec_note(r, "sent", status);
  end(r, c, "sent");
}

void client_rec_sent_cb(xmppuv_client_t *c, xmppuv_stanza_t *s, int status, void *user_data) {
  client_rec_t *r = user_data;
  (void)s;
  sent(r, c, &r->sent_done, &r->sent_status, status);
}

client_rec_slot_t *client_rec_slot_add(client_rec_t *r, xmppuv_stanza_t *stanza) {
  ck_assert_uint_lt(r->nslots, CLIENT_REC_SLOTS);
  client_rec_slot_t *k = &r->slots[r->nslots++];
  memset(k, 0, sizeof *k);
  k->rec = r;
  k->s = stanza;
  xmppuv_stanza_ref(stanza);
  return k;
}

/* A stanza sent with a callback reports its outcome there, and only there:
 * the slot counts it as the ack or fail it is. */
void client_rec_slot_sent_cb(xmppuv_client_t *c, xmppuv_stanza_t *s, int status, void *user_data) {
  client_rec_slot_t *k = user_data;
  (void)s;
  if (status == 0) {
    k->acks++;
  } else if (status != XMPPUV_ESMOFF) {
    k->fails++;
    k->reason = status;
  }
  sent(k->rec, c, &k->done, &k->status, status);
}

int client_rec_send(client_rec_t *r, xmppuv_client_t *c, xmppuv_stanza_t *stanza,
                    client_rec_slot_t **out) {
  client_rec_slot_t *k = client_rec_slot_add(r, stanza);
  int rc = xmppuv_client_send_tracked(c, stanza, client_rec_slot_sent_cb, k);
  if (rc != 0) {
    xmppuv_stanza_unref(k->s);
    r->nslots--;
    k = NULL;
  }
  if (out != NULL) *out = k;
  return rc;
}

void client_rec_assert_nothing_after_close(const client_rec_t *r) {
  ck_assert_msg(!r->after_close, "a callback ran after close_cb");
}

void client_rec_assert_transitions(const client_rec_t *r) {
  ck_assert_msg(r->bad_transition[0] == '\0', "status %s; statuses: %s", r->bad_transition,
                r->statuses);
}

void client_rec_assert_no_event_in_call(const client_rec_t *r) {
  ck_assert_msg(!r->event_in_call, "an event came inside an API call; events: %s", r->seq);
}

void client_rec_assert_slots_settled(const client_rec_t *r) {
  for (size_t i = 0; i < r->nslots; i++) {
    const client_rec_slot_t *k = &r->slots[i];
    ck_assert_msg(k->done == 1, "stanza %zu: %u outcomes", i, k->done);
    ck_assert_msg(k->acks + k->fails == 1, "stanza %zu: %u acks, %u fails", i, k->acks, k->fails);
  }
  ck_assert_uint_eq(r->stray, 0);
}
