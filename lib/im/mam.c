/* The chat layer: Message Archive Management (XEP-0313) with RSM paging
 * (XEP-0059). Public API only; memory from libc.
 *
 * A query is an iq set carrying a data form (the filter) and an RSM <set/>;
 * the results come as messages before the iq's result, which carries
 * <fin complete><set><last/></set></fin>. Each page is a new iq with
 * <after>last</after>, until complete='true' or the page limit. Results
 * are matched to the query in flight by queryid and by sender (XEP-0313
 * §"Security"); anything else is dropped. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xmppuv.h>

#include "common.h"

#define DEFAULT_PAGE 50

typedef struct query {
  struct query *next;
  xmppuv_mam_t *m; /* NULL once the module is gone */
  char queryid[32];
  char *archive;  /* NULL: our own */
  char *with, *start, *end;
  char *after;    /* the next page starts after this */
  char *page_after; /* what the page in flight was asked after */
  unsigned page_size, max_pages, pages, count;
  xmppuv_mam_message_cb on_message;
  xmppuv_mam_done_cb done;
  void *ud;
  uint64_t iq_id;
} query_t;

struct xmppuv_mam {
  xmppuv_client_t *c;
  xmppuv_mam_callbacks_t cbs;
  void *ud;
  uint64_t listener, handler;
  query_t *queries;
  unsigned next_query;
  int freeing;
};


static void query_free(query_t *q) {
  free(q->archive);
  free(q->with);
  free(q->start);
  free(q->end);
  free(q->after);
  free(q->page_after);
  free(q);
}

static void unlink_query(xmppuv_mam_t *m, query_t *q) {
  for (query_t **pp = &m->queries; *pp != NULL; pp = &(*pp)->next)
    if (*pp == q) {
      *pp = q->next;
      return;
    }
}

/* Is from the archive q asked? Our own: no from, or our bare JID; a room:
 * its bare JID. Compared as JIDs (normalized). */
static int from_archive(xmppuv_mam_t *m, const query_t *q, const char *from) {
  if (q->archive == NULL) return xmppuv__im_from_account(m->c, from, 1);
  xmppuv_jid_t *f = NULL, *a = NULL;
  int ok = from != NULL && xmppuv_jid_parse(from, &f) == 0 && xmppuv_jid_is_bare(f) &&
           xmppuv_jid_parse(q->archive, &a) == 0 && xmppuv_jid_equal(f, a);
  xmppuv_jid_free(f);
  xmppuv_jid_free(a);
  return ok;
}

/* ---- results -------------------------------------------------------------- */

static int on_message(xmppuv_client_t *c, xmppuv_stanza_t *msg, void *ud) {
  (void)c;
  xmppuv_mam_t *m = ud;
  xmppuv_stanza_t *result = xmppuv_stanza_child(msg, "result", XMPPUV_NS_MAM);
  if (result == NULL) return XMPPUV_PASS;
  const char *qid = xmppuv_stanza_attr(result, "queryid");
  const char *from = xmppuv_stanza_attr(msg, "from");
  query_t *q = NULL;
  for (query_t *p = m->queries; p != NULL && qid != NULL; p = p->next)
    if (strcmp(p->queryid, qid) == 0) q = p;
  xmppuv_stanza_t *fwd = xmppuv_stanza_child(result, "forwarded", "urn:xmpp:forward:0");
  xmppuv_stanza_t *inner = xmppuv_stanza_child(fwd, "message", NULL);
  const char *id = xmppuv_stanza_attr(result, "id");
  if (q == NULL || !from_archive(m, q, from) || inner == NULL || id == NULL) {
    /* Not a result of ours: never part of the history shown. */
    if (m->cbs.spoofed != NULL) m->cbs.spoofed(m, msg, m->ud);
    return XMPPUV_HANDLED;
  }
  q->count++;
  free(q->after);
  int failed = 0;
  q->after = xmppuv__im_strdup_opt(id, &failed);
  if (q->on_message != NULL) {
    const xmppuv_jid_t *me = xmppuv_client_jid(m->c);
    xmppuv_mam_message_t r = {q->archive != NULL ? q->archive
                              : me != NULL      ? xmppuv_jid_bare_string(me)
                                                : "",
                              id,
                              xmppuv_stanza_attr(xmppuv_stanza_child(fwd, "delay", "urn:xmpp:delay"),
                                                 "stamp"),
                              inner};
    q->on_message(m, &r, q->ud);
  }
  return XMPPUV_HANDLED;
}

/* ---- pages ------------------------------------------------------------------- */

static int add_field(xmppuv_stanza_t *x, const char *var, const char *value, const char *type) {
  if (value == NULL) return 0;
  xmppuv_stanza_t *f = NULL, *v = NULL;
  int rc = xmppuv_stanza_new_child(x, "field", NULL, &f);
  if (rc == 0) rc = xmppuv_stanza_set_attr(f, "var", var);
  if (rc == 0 && type != NULL) rc = xmppuv_stanza_set_attr(f, "type", type);
  if (rc == 0) rc = xmppuv_stanza_new_child(f, "value", NULL, &v);
  if (rc == 0) rc = xmppuv_stanza_add_text(v, value, strlen(value));
  return rc;
}

static void on_page(xmppuv_client_t *c, int status, xmppuv_stanza_t *reply, void *ud);

static int send_page(query_t *q) {
  xmppuv_mam_t *m = q->m;
  xmppuv_stanza_t *iq = NULL, *qe = NULL, *x = NULL, *set = NULL, *max = NULL, *after = NULL;
  char n[16];
  snprintf(n, sizeof n, "%u", q->page_size);
  int rc = xmppuv_stanza_new("iq", NULL, &iq);
  if (rc == 0) rc = xmppuv_stanza_set_attr(iq, "type", "set");
  if (rc == 0 && q->archive != NULL) rc = xmppuv_stanza_set_attr(iq, "to", q->archive);
  if (rc == 0) rc = xmppuv_stanza_new_child(iq, "query", XMPPUV_NS_MAM, &qe);
  if (rc == 0) rc = xmppuv_stanza_set_attr(qe, "queryid", q->queryid);
  if (rc == 0 && (q->with != NULL || q->start != NULL || q->end != NULL)) {
    rc = xmppuv_stanza_new_child(qe, "x", "jabber:x:data", &x);
    if (rc == 0) rc = xmppuv_stanza_set_attr(x, "type", "submit");
    if (rc == 0) rc = add_field(x, "FORM_TYPE", XMPPUV_NS_MAM, "hidden");
    if (rc == 0) rc = add_field(x, "with", q->with, NULL);
    if (rc == 0) rc = add_field(x, "start", q->start, NULL);
    if (rc == 0) rc = add_field(x, "end", q->end, NULL);
  }
  if (rc == 0) rc = xmppuv_stanza_new_child(qe, "set", XMPPUV_NS_RSM, &set);
  if (rc == 0) rc = xmppuv_stanza_new_child(set, "max", NULL, &max);
  if (rc == 0) rc = xmppuv_stanza_add_text(max, n, strlen(n));
  if (rc == 0 && q->after != NULL) {
    rc = xmppuv_stanza_new_child(set, "after", NULL, &after);
    if (rc == 0) rc = xmppuv_stanza_add_text(after, q->after, strlen(q->after));
  }
  if (rc == 0) rc = xmppuv_client_send_iq(m->c, iq, 0, on_page, q, &q->iq_id);
  xmppuv_stanza_unref(iq);
  return rc;
}

static void finish(query_t *q, int status, int complete) {
  xmppuv_mam_t *m = q->m;
  unlink_query(m, q);
  if (q->done != NULL) q->done(m, status, complete, q->after, q->count, q->ud);
  query_free(q);
}

static void on_page(xmppuv_client_t *c, int status, xmppuv_stanza_t *reply, void *ud) {
  (void)c;
  query_t *q = ud;
  if (q->m == NULL) {
    query_free(q);
    return;
  }
  if (status != 0) {
    finish(q, status, 0);
    return;
  }
  const xmppuv_stanza_t *fin = xmppuv_stanza_child(reply, "fin", XMPPUV_NS_MAM);
  if (fin == NULL) {
    finish(q, XMPPUV_EPROTO, 0);
    return;
  }
  q->pages++;
  const char *complete = xmppuv_stanza_attr(fin, "complete");
  int done = complete != NULL && (strcmp(complete, "true") == 0 || strcmp(complete, "1") == 0);
  /* The page's last id, when the results did not give it (an empty page). */
  const xmppuv_stanza_t *set = xmppuv_stanza_child(fin, "set", XMPPUV_NS_RSM);
  const char *last = xmppuv_stanza_child_text(set, "last", XMPPUV_NS_RSM);
  /* A page that ends where the one before did (an archive that says
   * "not complete" and gives nothing new) would be asked for for ever. */
  int stuck = last != NULL && q->page_after != NULL && strcmp(q->page_after, last) == 0;
  free(q->page_after);
  q->page_after = NULL;
  if (last != NULL && (q->after == NULL || strcmp(q->after, last) != 0)) {
    int failed = 0;
    char *copy = xmppuv__im_strdup_opt(last, &failed);
    if (!failed) {
      free(q->after);
      q->after = copy;
    }
  }
  /* An empty page that is not the end would ask the same page again. */
  if (done || last == NULL || stuck || (q->max_pages != 0 && q->pages >= q->max_pages)) {
    finish(q, stuck ? XMPPUV_EPROTO : 0, done || last == NULL);
    return;
  }
  int failed = 0;
  q->page_after = xmppuv__im_strdup_opt(q->after, &failed);
  int rc = send_page(q);
  if (rc != 0) finish(q, rc, 0);
}

/* ---- API ------------------------------------------------------------------------ */

int xmppuv_mam_query(xmppuv_mam_t *m, const xmppuv_mam_filter_t *filter,
                     xmppuv_mam_message_cb on_message_cb, xmppuv_mam_done_cb done,
                     void *user_data) {
  if (m == NULL || filter == NULL || done == NULL || m->freeing) return XMPPUV_EINVAL;
  query_t *q = calloc(1, sizeof *q);
  if (q == NULL) return XMPPUV_ENOMEM;
  int failed = 0;
  q->m = m;
  snprintf(q->queryid, sizeof q->queryid, "mam-%u", ++m->next_query);
  q->archive = xmppuv__im_strdup_opt(filter->archive, &failed);
  q->with = xmppuv__im_strdup_opt(filter->with, &failed);
  q->start = xmppuv__im_strdup_opt(filter->start, &failed);
  q->end = xmppuv__im_strdup_opt(filter->end, &failed);
  q->after = xmppuv__im_strdup_opt(filter->after_id, &failed);
  q->page_size = filter->page_size != 0 ? filter->page_size : DEFAULT_PAGE;
  q->max_pages = filter->max_pages;
  q->on_message = on_message_cb;
  q->done = done;
  q->ud = user_data;
  int rc = failed ? XMPPUV_ENOMEM : send_page(q);
  if (rc != 0) {
    query_free(q);
    return rc;
  }
  q->next = m->queries;
  m->queries = q;
  return 0;
}

int xmppuv_mam_catch_up(xmppuv_mam_t *m, const char *last_id, xmppuv_mam_message_cb on_msg,
                        xmppuv_mam_done_cb done, void *user_data) {
  xmppuv_mam_filter_t f;
  memset(&f, 0, sizeof f);
  f.after_id = last_id;
  return xmppuv_mam_query(m, &f, on_msg, done, user_data);
}

static void free_mam(xmppuv_mam_t *m, int client_gone) {
  /* Detached first: a done callback that calls back into the module finds
   * no query of it (and its own new ones are refused: m->freeing). */
  query_t *queries = m->queries;
  m->queries = NULL;
  m->freeing = 1;
  for (query_t *q = queries; q != NULL;) {
    query_t *next = q->next;
    /* Its iq's callback comes later (cancelled) and frees it. */
    if (!client_gone) {
      if (q->done != NULL) q->done(m, XMPPUV_ECANCELED, 0, q->after, q->count, q->ud);
      q->done = NULL;
      q->m = NULL;
      xmppuv_client_iq_cancel(m->c, q->iq_id);
    } else {
      q->m = NULL;
    }
    q = next;
  }
  if (!client_gone) {
    xmppuv_client_handler_remove(m->c, m->handler);
    xmppuv_client_listener_remove(m->c, m->listener);
  }
  free(m);
}

static void on_closed(xmppuv_client_t *c, void *ud) {
  (void)c;
  free_mam(ud, 1);
}

void xmppuv_mam_free(xmppuv_mam_t *m) {
  if (m != NULL && !m->freeing) free_mam(m, 0);
}

int xmppuv_mam_new(xmppuv_client_t *c, xmppuv_disco_t *disco, const xmppuv_mam_callbacks_t *cbs,
                   void *user_data, xmppuv_mam_t **out) {
  if (out != NULL) *out = NULL;
  if (c == NULL || out == NULL) return XMPPUV_EINVAL;
  if (cbs != NULL && (cbs->struct_size < sizeof(size_t) + sizeof(void (*)(void)) ||
                      cbs->struct_size > sizeof(xmppuv_mam_callbacks_t)))
    return XMPPUV_EINVAL;
  xmppuv_mam_t *m = calloc(1, sizeof *m);
  if (m == NULL) return XMPPUV_ENOMEM;
  m->c = c;
  m->ud = user_data;
  if (cbs != NULL) memcpy(&m->cbs, cbs, cbs->struct_size);
  int rc = xmppuv_client_handler_add(c, "message", XMPPUV_NS_MAM, NULL, on_message, m,
                                     &m->handler);
  if (rc == 0) {
    xmppuv_client_callbacks_t lc;
    xmppuv_client_callbacks_init(&lc);
    lc.closed = on_closed;
    rc = xmppuv_client_listener_add(c, &lc, m, &m->listener);
  }
  if (rc == 0 && disco != NULL) rc = xmppuv_disco_add_feature(disco, XMPPUV_NS_MAM);
  if (rc != 0) {
    free_mam(m, 0);
    return rc;
  }
  *out = m;
  return 0;
}
