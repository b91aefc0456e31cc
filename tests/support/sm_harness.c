#include "sm_harness.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void append(smh_t *h, const char *data, size_t len) {
  if (h->len + len + 1 > h->cap) {
    size_t cap = h->cap ? h->cap : 256;
    while (cap < h->len + len + 1) cap *= 2;
    h->log = realloc(h->log, cap);
    ck_assert_ptr_nonnull(h->log);
    h->cap = cap;
  }
  memcpy(h->log + h->len, data, len);
  h->len += len;
  h->log[h->len] = '\0';
}

static void appendf(smh_t *h, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  ck_assert_int_ge(n, 0);
  append(h, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static const char *status_name(int status) {
  return status == 0 ? "OK" : xmppuv_err_name(status);
}

static int ev_write(void *ud, const char *data, size_t len) {
  smh_t *h = ud;
  if (h->write_rc != 0) return h->write_rc;
  append(h, data, len);
  if (h->on_write != NULL) h->on_write(h);
  return 0;
}

static void ev_enable_result(void *ud, int enabled, const char *condition) {
  smh_t *h = ud;
  h->enable_results++;
  if (enabled)
    appendf(h, "[enabled]");
  else
    appendf(h, "[not-enabled %s]", condition ? condition : "-");
  if (h->on_enable_result != NULL) h->on_enable_result(h, enabled);
}

static void ev_resumed(void *ud) {
  smh_t *h = ud;
  h->resumed_events++;
  appendf(h, "[resumed]");
  if (h->on_resumed != NULL) h->on_resumed(h);
}

static void ev_resume_failed(void *ud, const char *condition) {
  smh_t *h = ud;
  h->resume_failed_events++;
  appendf(h, "[resume-failed %s]", condition ? condition : "-");
  if (h->on_resume_failed != NULL) h->on_resume_failed(h);
}

/* The per-stanza callback the driver calls for `done` (smh_send's). */
static void stanza_done(void *cb_data, xmppuv_stanza_t *stanza, int status) {
  (void)stanza;
  smh_sent_t *s = cb_data;
  s->dones++;
  s->status = status;
}

static void ev_done(void *ud, xmppuv_stanza_t *stanza, int status,
                    xmppuv__sm_done_cb cb, void *cb_data) {
  smh_t *h = ud;
  const char *id = xmppuv_stanza_attr(stanza, "id");
  appendf(h, "[done %s %s]", id ? id : "-", status_name(status));
  if (cb != NULL) {
    /* smh_send passes an index + 1 into h->sent as cb_data (the array may
     * move); the callback gets the record. */
    size_t i = (size_t)(uintptr_t)cb_data - 1;
    ck_assert_uint_lt(i, h->nsent);
    cb(&h->sent[i], stanza, status);
  }
  if (h->on_done != NULL) h->on_done(h, stanza, status);
  xmppuv_stanza_unref(stanza); /* done events pass their reference */
}

static void ev_abort(void *ud, int reason, const char *why) {
  smh_t *h = ud;
  /* Every abort says why (it becomes the app's error text). */
  ck_assert_msg(why != NULL && why[0] != '\0', "an abort (%s) without a reason",
                xmppuv_err_name(reason));
  h->aborts++;
  h->last_abort = reason;
  appendf(h, "[abort %s]", xmppuv_err_name(reason));
  if (h->on_abort != NULL) h->on_abort(h, reason);
}

int smh_open(smh_t *h, const xmppuv__sm_config_t *cfg) {
  memset(h, 0, sizeof *h);
  if (cfg != NULL)
    h->cfg = *cfg;
  else
    xmppuv__sm_config_defaults(&h->cfg);
  h->now.mono_ms = SMH_START_MONO;
  h->now.wall_ms = SMH_START_WALL;
  xmppuv__sm_events_t ev = {
      .write = ev_write,
      .enable_result = ev_enable_result,
      .resumed = ev_resumed,
      .resume_failed = ev_resume_failed,
      .done = ev_done,
      .abort = ev_abort,
  };
  return xmppuv__sm_new(&h->cfg, &ev, h, &h->sm);
}

void smh_init(smh_t *h, const xmppuv__sm_config_t *cfg) {
  ck_assert_int_eq(smh_open(h, cfg), 0);
}

void smh_free(smh_t *h) {
  xmppuv__sm_free(h->sm);
  h->sm = NULL;
  free(h->log);
  free(h->taken);
  free(h->sent);
  h->log = h->taken = NULL;
  h->sent = NULL;
  h->len = h->cap = h->nsent = h->sent_cap = 0;
}

int smh_send(smh_t *h, const char *xml) {
  xmppuv_stanza_t *s;
  int rc = xmppuv_stanza_parse(xml, strlen(xml), &s);
  if (rc != 0) return rc;
  if (h->nsent == h->sent_cap) {
    h->sent_cap = h->sent_cap ? h->sent_cap * 2 : 16;
    h->sent = realloc(h->sent, h->sent_cap * sizeof *h->sent);
    ck_assert_ptr_nonnull(h->sent);
  }
  /* Record first: done may be raised from inside the send. */
  size_t i = h->nsent++;
  smh_sent_t *rec = &h->sent[i];
  memset(rec, 0, sizeof *rec);
  const char *id = xmppuv_stanza_attr(s, "id");
  snprintf(rec->id, sizeof rec->id, "%s", id ? id : "-");
  rec->status = 1; /* no status yet */
  rc = xmppuv__sm_send(h->sm, s, h->now, stanza_done,
                       (void *)(uintptr_t)(i + 1));
  if (rc != 0) {
    ck_assert_int_eq(h->sent[i].dones, 0);
    /* Forget it: no event will come. Only the last record can go. */
    if (i == h->nsent - 1) h->nsent--;
  }
  xmppuv_stanza_unref(s);
  return rc;
}

int smh_in(smh_t *h, const char *xml) {
  xmppuv_stanza_t *s;
  int rc = xmppuv_stanza_parse(xml, strlen(xml), &s);
  if (rc != 0) return rc;
  xmppuv__sm_inbound_data(h->sm, h->now);
  rc = xmppuv__sm_inbound(h->sm, s, h->now);
  xmppuv_stanza_unref(s);
  return rc;
}

void smh_advance(smh_t *h, uint64_t ms) {
  uint64_t target = h->now.mono_ms + ms;
  for (;;) {
    uint64_t d = xmppuv__sm_deadline(h->sm);
    if (d == XMPPUV__NO_DEADLINE || d > target) break;
    /* A deadline already past fires now, like a timer armed in the past. */
    if (d > h->now.mono_ms) {
      h->now.wall_ms += (int64_t)(d - h->now.mono_ms);
      h->now.mono_ms = d;
    }
    xmppuv__sm_tick(h->sm, h->now);
    ck_assert_msg(xmppuv__sm_deadline(h->sm) > h->now.mono_ms,
                  "tick left a deadline due: the driver would spin");
  }
  h->now.wall_ms += (int64_t)(target - h->now.mono_ms);
  h->now.mono_ms = target;
}

const char *smh_take(smh_t *h) {
  free(h->taken);
  h->taken = strdup(h->log ? h->log : "");
  ck_assert_ptr_nonnull(h->taken);
  h->len = 0;
  if (h->log != NULL) h->log[0] = '\0';
  return h->taken;
}

void smh_authenticated(smh_t *h) {
  xmppuv__sm_stream_authenticated(h->sm, h->now);
}

int smh_enable(smh_t *h, int server_offers) {
  return xmppuv__sm_enable(h->sm, SMH_JID, server_offers, h->now);
}

void smh_disconnect(smh_t *h) { xmppuv__sm_disconnected(h->sm, h->now); }

void smh_online(smh_t *h, unsigned max_s) {
  smh_authenticated(h);
  ck_assert_int_eq(smh_enable(h, 1), 0);
  char enabled[160];
  if (max_s)
    snprintf(enabled, sizeof enabled,
             "<enabled xmlns='urn:xmpp:sm:3' id='sm-1' resume='true' "
             "max='%u'/>",
             max_s);
  else
    snprintf(enabled, sizeof enabled,
             "<enabled xmlns='urn:xmpp:sm:3' id='sm-1' resume='true'/>");
  ck_assert_int_eq(smh_in(h, enabled), 1);
  const char *t = smh_take(h);
  ck_assert_msg(strstr(t, "<enable xmlns='urn:xmpp:sm:3' resume='true'") == t,
                "transcript: %s", t);
  ck_assert_msg(strstr(t, "[enabled]") != NULL, "transcript: %s", t);
  ck_assert_int_eq(xmppuv__sm_active(h->sm), 1);
}

void smh_resume(smh_t *h) {
  smh_authenticated(h);
  ck_assert_int_eq(xmppuv__sm_can_resume(h->sm, h->now), 1);
  ck_assert_int_eq(xmppuv__sm_resume(h->sm, h->now), 0);
}

const smh_sent_t *smh_sent(const smh_t *h, size_t i) {
  ck_assert_uint_lt(i, h->nsent);
  return &h->sent[i];
}

void smh_assert_each_done_once(const smh_t *h) {
  for (size_t i = 0; i < h->nsent; i++)
    ck_assert_msg(h->sent[i].dones == 1, "stanza %s got %d done events",
                  h->sent[i].id, h->sent[i].dones);
}
