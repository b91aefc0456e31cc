/* The chat layer: the roster and presence subscriptions (RFC 6121 §2-3).
 * Public API only (<xmppuv.h>); memory from the C library (the public API
 * exposes no allocator but xmppuv_free for what it hands out). */
#include <stdlib.h>
#include <string.h>

#include <xmppuv.h>

#include "common.h"

/* Pending subscription requests remembered at most. */
#define MAX_REQUESTS 1000

typedef struct op op_t;

struct xmppuv_roster {
  xmppuv_client_t *c;
  xmppuv_roster_callbacks_t cbs;
  void *ud;
  uint64_t listener_id, push_id, pres_id;

  xmppuv_roster_item_t *items; /* strings owned (cast back to free) */
  size_t n, cap;
  char *ver;

  int rosterver, preapproval; /* from the features of the last `online` */
  int loaded;
  unsigned fetch_gen; /* a fetch's op carries the generation it belongs to */
  unsigned spoofed;

  char **requests; /* bare JIDs that asked and were not answered */
  size_t nrequests;

  op_t *ops; /* iq requests waiting: detached on free */
};

/* One iq request of ours waiting for its reply. r NULL: the roster was
 * freed meanwhile (the callback then only frees the op). */
struct op {
  op_t *next;
  xmppuv_roster_t *r;
  unsigned gen;  /* fetch: the generation; 0 for set/remove */
  int fetch;
  xmppuv_roster_done_cb cb;
  void *ud;
};

static const char *const sub_names[] = {"none", "to", "from", "both", "remove"};

const char *xmppuv_subscription_name(xmppuv_subscription_t sub) {
  if ((unsigned)sub > XMPPUV_SUB_REMOVE) return NULL;
  return sub_names[sub];
}

static int sub_parse(const char *s, xmppuv_subscription_t *out) {
  if (s == NULL) {
    *out = XMPPUV_SUB_NONE; /* RFC 6121 §2.1.2.5: absent means none */
    return 0;
  }
  for (unsigned i = 0; i <= XMPPUV_SUB_REMOVE; i++) {
    if (strcmp(s, sub_names[i]) == 0) {
      *out = (xmppuv_subscription_t)i;
      return 0;
    }
  }
  return -1;
}


/* ---- items -------------------------------------------------------------- */

static void item_clear(xmppuv_roster_item_t *it) {
  free((char *)it->jid);
  free((char *)it->name);
  for (size_t i = 0; i < it->ngroups; i++) free((char *)it->groups[i]);
  free((void *)it->groups);
  memset(it, 0, sizeof *it);
}

/* A deep copy (jid already canonical, or canon given). 0 or -1. */
static int item_copy(xmppuv_roster_item_t *dst, const xmppuv_roster_item_t *src,
                     const char *canon) {
  memset(dst, 0, sizeof *dst);
  dst->jid = xmppuv__im_strdup(canon != NULL ? canon : src->jid);
  dst->name = xmppuv__im_strdup(src->name);
  dst->subscription = src->subscription;
  dst->ask = src->ask != 0;
  dst->approved = src->approved != 0;
  if (dst->jid == NULL || (src->name != NULL && dst->name == NULL)) goto fail;
  if (src->ngroups > 0) {
    char **g = calloc(src->ngroups, sizeof *g);
    if (g == NULL) goto fail;
    dst->groups = (const char *const *)g;
    for (size_t i = 0; i < src->ngroups; i++) {
      g[i] = xmppuv__im_strdup(src->groups[i]);
      if (g[i] == NULL) goto fail;
      dst->ngroups = i + 1;
    }
  }
  return 0;
fail:
  item_clear(dst);
  return -1;
}

static int str_same(const char *a, const char *b) {
  if (a == NULL || b == NULL) return a == b;
  return strcmp(a, b) == 0;
}

static int item_equal(const xmppuv_roster_item_t *a, const xmppuv_roster_item_t *b) {
  if (!str_same(a->jid, b->jid) || !str_same(a->name, b->name)) return 0;
  if (a->subscription != b->subscription || a->ask != b->ask || a->approved != b->approved)
    return 0;
  if (a->ngroups != b->ngroups) return 0;
  for (size_t i = 0; i < a->ngroups; i++)
    if (!str_same(a->groups[i], b->groups[i])) return 0;
  return 1;
}

static long find_item(const xmppuv_roster_item_t *items, size_t n, const char *bare) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(items[i].jid, bare) == 0) return (long)i;
  return -1;
}

/* The canonical bare JID of text, or NULL when it is not a JID (or with a
 * resource and !allow_resource). Free with free(). */
static char *canon_bare(const char *text, int allow_resource) {
  if (text == NULL) return NULL;
  xmppuv_jid_t *j;
  if (xmppuv_jid_parse(text, &j) != 0) return NULL;
  char *s = NULL;
  if (allow_resource || xmppuv_jid_is_bare(j)) s = xmppuv__im_strdup(xmppuv_jid_bare_string(j));
  xmppuv_jid_free(j);
  return s;
}

/* Take it (moved) into the list, replacing one of the same jid. 0 or -1. */
static int items_put(xmppuv_roster_t *r, xmppuv_roster_item_t *it) {
  long at = find_item(r->items, r->n, it->jid);
  if (at >= 0) {
    item_clear(&r->items[at]);
    r->items[at] = *it;
    return 0;
  }
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 16;
    xmppuv_roster_item_t *ni = realloc(r->items, cap * sizeof *ni);
    if (ni == NULL) return -1;
    r->items = ni;
    r->cap = cap;
  }
  r->items[r->n++] = *it;
  return 0;
}

static void items_del(xmppuv_roster_t *r, const char *bare) {
  long at = find_item(r->items, r->n, bare);
  if (at < 0) return;
  item_clear(&r->items[at]);
  r->items[at] = r->items[--r->n];
}

/* An <item/> of a result or push, parsed into *out (strings owned).
 * 0, -1 (malformed: no or bad jid, unknown subscription), -2 (no memory). */
static int item_parse(const xmppuv_stanza_t *el, xmppuv_roster_item_t *out) {
  memset(out, 0, sizeof *out);
  xmppuv_roster_item_t v;
  memset(&v, 0, sizeof v);
  char *bare = canon_bare(xmppuv_stanza_attr(el, "jid"), 0);
  if (bare == NULL) return -1;
  if (sub_parse(xmppuv_stanza_attr(el, "subscription"), &v.subscription) != 0) {
    free(bare);
    return -1;
  }
  const char *ask = xmppuv_stanza_attr(el, "ask");
  const char *approved = xmppuv_stanza_attr(el, "approved");
  v.ask = ask != NULL && strcmp(ask, "subscribe") == 0;
  v.approved = approved != NULL && (strcmp(approved, "true") == 0 || strcmp(approved, "1") == 0);
  v.name = xmppuv_stanza_attr(el, "name");
  if (v.name != NULL && v.name[0] == '\0') v.name = NULL;
  size_t ng = 0;
  for (xmppuv_stanza_t *g = xmppuv_stanza_child(el, "group", XMPPUV_NS_ROSTER); g != NULL;
       g = xmppuv_stanza_next(g, "group", XMPPUV_NS_ROSTER))
    ng++;
  const char **groups = NULL;
  if (ng > 0) {
    groups = calloc(ng, sizeof *groups);
    if (groups == NULL) {
      free(bare);
      return -2;
    }
    size_t i = 0;
    for (xmppuv_stanza_t *g = xmppuv_stanza_child(el, "group", XMPPUV_NS_ROSTER); g != NULL;
         g = xmppuv_stanza_next(g, "group", XMPPUV_NS_ROSTER)) {
      const char *t = xmppuv_stanza_text(g, NULL);
      if (t == NULL || t[0] == '\0') continue; /* RFC 6121 §2.1.2.4: empty groups mean nothing */
      groups[i++] = t;
    }
    v.ngroups = i;
  }
  v.groups = groups;
  int rc = item_copy(out, &v, bare);
  free(groups);
  free(bare);
  return rc == 0 ? 0 : -2;
}

/* ---- events ------------------------------------------------------------- */

/* Outcomes collected while the state changes, raised once it is final
 * (STYLE: events from a consistent state). */
typedef struct pending_events {
  xmppuv_roster_item_t *items; /* owned copies */
  size_t n, cap;
} pending_events_t;

static int pending_add(pending_events_t *pe, const xmppuv_roster_item_t *it) {
  if (pe->n == pe->cap) {
    size_t cap = pe->cap ? pe->cap * 2 : 8;
    xmppuv_roster_item_t *ni = realloc(pe->items, cap * sizeof *ni);
    if (ni == NULL) return -1;
    pe->items = ni;
    pe->cap = cap;
  }
  if (item_copy(&pe->items[pe->n], it, NULL) != 0) return -1;
  pe->n++;
  return 0;
}

static void pending_raise(xmppuv_roster_t *r, pending_events_t *pe) {
  for (size_t i = 0; i < pe->n; i++) {
    if (r->cbs.item != NULL) r->cbs.item(r, &pe->items[i], r->ud);
    item_clear(&pe->items[i]);
  }
  free(pe->items);
  memset(pe, 0, sizeof *pe);
}

/* Take a new version; 1 if it changed (the event is the caller's). */
static int take_version(xmppuv_roster_t *r, const char *ver) {
  if (ver == NULL || str_same(ver, r->ver)) return 0;
  char *v = xmppuv__im_strdup(ver);
  if (v == NULL) return 0;
  free(r->ver);
  r->ver = v;
  return 1;
}

static void raise_version(xmppuv_roster_t *r) {
  if (r->cbs.version != NULL && r->ver != NULL) r->cbs.version(r, r->ver, r->ud);
}

/* ---- requests from the app ------------------------------------------------ */

static op_t *op_new(xmppuv_roster_t *r, int fetch, xmppuv_roster_done_cb cb, void *ud) {
  op_t *o = calloc(1, sizeof *o);
  if (o == NULL) return NULL;
  o->r = r;
  o->fetch = fetch;
  o->gen = fetch ? r->fetch_gen : 0;
  o->cb = cb;
  o->ud = ud;
  o->next = r->ops;
  r->ops = o;
  return o;
}

static void op_unlink(op_t *o) {
  if (o->r == NULL) return;
  for (op_t **pp = &o->r->ops; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == o) {
      *pp = o->next;
      break;
    }
  }
  o->r = NULL;
}

static void fetch_done(xmppuv_roster_t *r, int status, xmppuv_stanza_t *reply) {
  if (status != 0) {
    if (r->cbs.loaded != NULL) r->cbs.loaded(r, status, 0, reply, r->ud);
    return;
  }
  xmppuv_stanza_t *q = xmppuv_stanza_child(reply, "query", XMPPUV_NS_ROSTER);
  if (q == NULL) {
    /* RFC 6121 §2.6.3: an empty result: the version we gave is current;
     * what we hold stands, and changes follow as pushes. */
    r->loaded = 1;
    if (r->cbs.loaded != NULL) r->cbs.loaded(r, 0, 1, reply, r->ud);
    return;
  }
  /* The whole roster: it replaces what we hold; the differences are the
   * `item` events. */
  xmppuv_roster_item_t *ni = NULL;
  size_t nn = 0, ncap = 0;
  int oom = 0;
  for (xmppuv_stanza_t *el = xmppuv_stanza_child(q, "item", XMPPUV_NS_ROSTER); el != NULL;
       el = xmppuv_stanza_next(el, "item", XMPPUV_NS_ROSTER)) {
    xmppuv_roster_item_t it;
    int rc = item_parse(el, &it);
    if (rc == -2) {
      oom = 1;
      break;
    }
    if (rc != 0 || it.subscription == XMPPUV_SUB_REMOVE) {
      if (rc == 0) item_clear(&it);
      continue; /* a malformed item is skipped, the rest taken */
    }
    long dup = find_item(ni, nn, it.jid);
    if (dup >= 0) {
      item_clear(&ni[dup]);
      ni[dup] = it;
      continue;
    }
    if (nn == ncap) {
      size_t cap = ncap ? ncap * 2 : 16;
      xmppuv_roster_item_t *g = realloc(ni, cap * sizeof *g);
      if (g == NULL) {
        item_clear(&it);
        oom = 1;
        break;
      }
      ni = g;
      ncap = cap;
    }
    ni[nn++] = it;
  }
  pending_events_t pe;
  memset(&pe, 0, sizeof pe);
  if (!oom) {
    for (size_t i = 0; i < nn && !oom; i++) {
      long at = find_item(r->items, r->n, ni[i].jid);
      if (at < 0 || !item_equal(&r->items[at], &ni[i])) oom = pending_add(&pe, &ni[i]) != 0;
    }
    for (size_t i = 0; i < r->n && !oom; i++) {
      if (find_item(ni, nn, r->items[i].jid) >= 0) continue;
      xmppuv_roster_item_t gone = r->items[i];
      gone.subscription = XMPPUV_SUB_REMOVE;
      oom = pending_add(&pe, &gone) != 0;
    }
  }
  if (oom) {
    for (size_t i = 0; i < nn; i++) item_clear(&ni[i]);
    free(ni);
    for (size_t i = 0; i < pe.n; i++) item_clear(&pe.items[i]);
    free(pe.items);
    if (r->cbs.loaded != NULL) r->cbs.loaded(r, XMPPUV_ENOMEM, 0, reply, r->ud);
    return;
  }
  for (size_t i = 0; i < r->n; i++) item_clear(&r->items[i]);
  free(r->items);
  r->items = ni;
  r->n = nn;
  r->cap = ncap;
  r->loaded = 1;
  int ver_changed = take_version(r, xmppuv_stanza_attr(q, "ver"));
  pending_raise(r, &pe);
  if (ver_changed) raise_version(r);
  if (r->cbs.loaded != NULL) r->cbs.loaded(r, 0, 0, reply, r->ud);
}

static void on_iq_reply(xmppuv_client_t *c, int status, xmppuv_stanza_t *reply, void *ud) {
  (void)c;
  op_t *o = ud;
  xmppuv_roster_t *r = o->r;
  op_unlink(o);
  if (r != NULL) {
    if (o->fetch) {
      /* A fetch of an earlier session that a newer one replaced: its
       * outcome is nobody's. */
      if (o->gen == r->fetch_gen) fetch_done(r, status, reply);
    } else if (o->cb != NULL) {
      o->cb(r, status, reply, o->ud);
    }
  }
  free(o);
}

static int send_iq(xmppuv_roster_t *r, xmppuv_stanza_t *iq, int fetch, xmppuv_roster_done_cb cb,
                   void *ud) {
  op_t *o = op_new(r, fetch, cb, ud);
  if (o == NULL) return XMPPUV_ENOMEM;
  int rc = xmppuv_client_send_iq(r->c, iq, 0, on_iq_reply, o, NULL);
  if (rc != 0) {
    op_unlink(o);
    free(o);
  }
  return rc;
}

static int iq_query(const char *type, xmppuv_stanza_t **iq, xmppuv_stanza_t **query) {
  int rc = xmppuv_stanza_new("iq", NULL, iq);
  if (rc != 0) return rc;
  if ((rc = xmppuv_stanza_set_attr(*iq, "type", type)) != 0 ||
      (rc = xmppuv_stanza_new_child(*iq, "query", XMPPUV_NS_ROSTER, query)) != 0) {
    xmppuv_stanza_unref(*iq);
    *iq = NULL;
  }
  return rc;
}

/* report 0: from inside xmppuv_roster_new(), where no callback may run
 * (the caller gets no `loaded` for a fetch that could not start there; the
 * next session fetches again). */
static void fetch(xmppuv_roster_t *r, int report) {
  xmppuv_stanza_t *iq, *q;
  r->fetch_gen++;
  if (iq_query("get", &iq, &q) != 0) goto fail;
  /* RFC 6121 §2.6.3: with versioning, always a ver: "" bootstraps it. */
  if (r->rosterver && xmppuv_stanza_set_attr(q, "ver", r->ver != NULL ? r->ver : "") != 0) {
    xmppuv_stanza_unref(iq);
    goto fail;
  }
  int rc = send_iq(r, iq, 1, NULL, NULL);
  xmppuv_stanza_unref(iq);
  if (rc == 0) return;
  if (report && r->cbs.loaded != NULL) r->cbs.loaded(r, rc, 0, NULL, r->ud);
  return;
fail:
  if (report && r->cbs.loaded != NULL) r->cbs.loaded(r, XMPPUV_ENOMEM, 0, NULL, r->ud);
}

/* ---- pushes ------------------------------------------------------------- */

/* RFC 6121 §2.1.6: a push counts only without 'from' or from our bare JID
 * (compared as JIDs); our full JID is not the bare JID and is refused too,
 * as the RFC words it. */

static void reply_error(xmppuv_roster_t *r, xmppuv_stanza_t *req, const char *type,
                        const char *cond) {
  xmppuv_stanza_t *e;
  if (xmppuv_iq_error_new(req, type, cond, &e) != 0) return;
  (void)xmppuv_client_send(r->c, e);
  xmppuv_stanza_unref(e);
}

static int on_push(xmppuv_client_t *c, xmppuv_stanza_t *iq, void *ud) {
  xmppuv_roster_t *r = ud;
  (void)c;
  if (!xmppuv__im_from_account(r->c, xmppuv_stanza_attr(iq, "from"), 1)) {
    /* Ignored: nothing changes. The reply is what an entity that serves no
     * roster says (RFC 6120 §8.2.3), so a prober learns nothing. */
    r->spoofed++;
    reply_error(r, iq, "cancel", "service-unavailable");
    if (r->cbs.spoofed != NULL) r->cbs.spoofed(r, iq, r->ud);
    return XMPPUV_HANDLED;
  }
  xmppuv_stanza_t *q = xmppuv_stanza_child(iq, "query", XMPPUV_NS_ROSTER);
  xmppuv_stanza_t *el = xmppuv_stanza_child(q, "item", XMPPUV_NS_ROSTER);
  xmppuv_roster_item_t it;
  /* RFC 6121 §2.1.6: a push has exactly one item. */
  if (el == NULL || xmppuv_stanza_next(el, "item", XMPPUV_NS_ROSTER) != NULL ||
      item_parse(el, &it) != 0) {
    reply_error(r, iq, "modify", "bad-request");
    return XMPPUV_HANDLED;
  }
  pending_events_t pe;
  memset(&pe, 0, sizeof pe);
  int oom = pending_add(&pe, &it) != 0;
  if (it.subscription == XMPPUV_SUB_REMOVE) {
    items_del(r, it.jid);
    item_clear(&it);
  } else if (!oom && items_put(r, &it) != 0) {
    oom = 1;
  }
  if (oom) {
    item_clear(&it);
    for (size_t i = 0; i < pe.n; i++) item_clear(&pe.items[i]);
    free(pe.items);
    reply_error(r, iq, "wait", "resource-constraint");
    return XMPPUV_HANDLED;
  }
  int ver_changed = take_version(r, xmppuv_stanza_attr(q, "ver"));
  xmppuv_stanza_t *res;
  if (xmppuv_iq_result_new(iq, &res) == 0) {
    (void)xmppuv_client_send(r->c, res);
    xmppuv_stanza_unref(res);
  }
  pending_raise(r, &pe);
  if (ver_changed) raise_version(r);
  return XMPPUV_HANDLED;
}

/* ---- subscriptions ---------------------------------------------------------- */

static long find_request(const xmppuv_roster_t *r, const char *bare) {
  for (size_t i = 0; i < r->nrequests; i++)
    if (strcmp(r->requests[i], bare) == 0) return (long)i;
  return -1;
}

static void requests_clear(xmppuv_roster_t *r) {
  for (size_t i = 0; i < r->nrequests; i++) free(r->requests[i]);
  free(r->requests);
  r->requests = NULL;
  r->nrequests = 0;
}

static void request_drop(xmppuv_roster_t *r, const char *bare) {
  long at = find_request(r, bare);
  if (at < 0) return;
  free(r->requests[at]);
  r->requests[at] = r->requests[--r->nrequests];
}

static int on_presence(xmppuv_client_t *c, xmppuv_stanza_t *p, void *ud) {
  xmppuv_roster_t *r = ud;
  (void)c;
  const char *type = xmppuv_stanza_attr(p, "type");
  if (type == NULL) return XMPPUV_PASS;
  int kind;
  if (strcmp(type, "subscribe") == 0) kind = 0;
  else if (strcmp(type, "subscribed") == 0) kind = 1;
  else if (strcmp(type, "unsubscribed") == 0) kind = 2;
  else if (strcmp(type, "unsubscribe") == 0) kind = 3;
  else return XMPPUV_PASS;
  char *from = canon_bare(xmppuv_stanza_attr(p, "from"), 1);
  if (from == NULL) return XMPPUV_PASS;
  if (kind == 3) {
    /* A request withdrawn (or their subscription ended; the roster push
     * says so): nothing left to answer. */
    request_drop(r, from);
    free(from);
    return XMPPUV_PASS;
  }
  /* Bounded: anyone may ask; past this many unanswered requests a new
   * one is not remembered (its event still comes). */
  if (kind == 0 && find_request(r, from) < 0 && r->nrequests < MAX_REQUESTS) {
    char *keep = xmppuv__im_strdup(from);
    char **nr = keep != NULL ? realloc(r->requests, (r->nrequests + 1) * sizeof *nr) : NULL;
    if (nr != NULL) {
      r->requests = nr;
      r->requests[r->nrequests++] = keep;
    } else {
      free(keep);
    }
  }
  /* Observers only: the app's own handlers see these stanzas too. */
  if (kind == 0 && r->cbs.subscription_request != NULL)
    r->cbs.subscription_request(r, from, p, r->ud);
  else if (kind != 0 && r->cbs.subscription_answer != NULL)
    r->cbs.subscription_answer(r, from, kind == 1, p, r->ud);
  free(from);
  return XMPPUV_PASS;
}

static int send_presence(xmppuv_roster_t *r, const char *jid, const char *type) {
  char *bare = canon_bare(jid, 0);
  if (bare == NULL) return XMPPUV_EINVAL;
  xmppuv_stanza_t *p;
  int rc = xmppuv_stanza_new("presence", NULL, &p);
  if (rc == 0) {
    if ((rc = xmppuv_stanza_set_attr(p, "to", bare)) == 0 &&
        (rc = xmppuv_stanza_set_attr(p, "type", type)) == 0)
      rc = xmppuv_client_send(r->c, p);
    xmppuv_stanza_unref(p);
  }
  if (rc == 0 && (strcmp(type, "subscribed") == 0 || strcmp(type, "unsubscribed") == 0))
    request_drop(r, bare);
  free(bare);
  return rc;
}

int xmppuv_roster_subscribe(xmppuv_roster_t *r, const char *jid) {
  if (r == NULL || jid == NULL) return XMPPUV_EINVAL;
  return send_presence(r, jid, "subscribe");
}

int xmppuv_roster_approve(xmppuv_roster_t *r, const char *jid) {
  if (r == NULL || jid == NULL) return XMPPUV_EINVAL;
  char *bare = canon_bare(jid, 0);
  if (bare == NULL) return XMPPUV_EINVAL;
  /* RFC 6121 §3.4: approving before being asked is a pre-approval, which
   * only a server that offers it takes. */
  int asked = find_request(r, bare) >= 0;
  free(bare);
  if (!asked && !r->preapproval) return XMPPUV_ESTATE;
  return send_presence(r, jid, "subscribed");
}

int xmppuv_roster_deny(xmppuv_roster_t *r, const char *jid) {
  if (r == NULL || jid == NULL) return XMPPUV_EINVAL;
  return send_presence(r, jid, "unsubscribed");
}

int xmppuv_roster_unsubscribe(xmppuv_roster_t *r, const char *jid) {
  if (r == NULL || jid == NULL) return XMPPUV_EINVAL;
  return send_presence(r, jid, "unsubscribe");
}

int xmppuv_roster_has_request(const xmppuv_roster_t *r, const char *jid) {
  if (r == NULL || jid == NULL) return 0;
  char *bare = canon_bare(jid, 0);
  if (bare == NULL) return 0;
  int has = find_request(r, bare) >= 0;
  free(bare);
  return has;
}

/* ---- the client's events ---------------------------------------------------- */

static int has_feature(const xmppuv_stanza_t *features, const char *name, const char *ns) {
  return features != NULL && xmppuv_stanza_child(features, name, ns) != NULL;
}

static void session_start(xmppuv_roster_t *r, xmppuv_client_t *c, int report) {
  const xmppuv_stanza_t *f = xmppuv_client_stream_features(c);
  r->rosterver = has_feature(f, "ver", XMPPUV_NS_ROSTERVER);
  r->preapproval = has_feature(f, "sub", XMPPUV_NS_PREAPPROVAL);
  r->loaded = 0;
  /* The server repeats pending requests on the new session. */
  requests_clear(r);
  fetch(r, report);
}

static void on_online(xmppuv_client_t *c, const xmppuv_jid_t *jid, void *ud) {
  (void)jid;
  session_start(ud, c, 1);
}

static void destroy(xmppuv_roster_t *r) {
  for (op_t *o = r->ops; o != NULL; o = o->next) o->r = NULL;
  for (size_t i = 0; i < r->n; i++) item_clear(&r->items[i]);
  free(r->items);
  free(r->ver);
  requests_clear(r);
  free(r);
}

static void on_closed(xmppuv_client_t *c, void *ud) {
  (void)c;
  /* The client may only be read now: its handlers and listeners go with it. */
  destroy(ud);
}

/* ---- lifetime and reading --------------------------------------------------- */

int xmppuv_roster_new(xmppuv_client_t *c, const xmppuv_roster_callbacks_t *cbs, void *ud,
                      xmppuv_roster_t **out) {
  if (out != NULL) *out = NULL;
  if (c == NULL || out == NULL) return XMPPUV_EINVAL;
  if (cbs != NULL && cbs->struct_size < sizeof(size_t)) return XMPPUV_EINVAL;
  xmppuv_roster_t *r = calloc(1, sizeof *r);
  if (r == NULL) return XMPPUV_ENOMEM;
  r->c = c;
  r->ud = ud;
  if (cbs != NULL) {
    size_t n = cbs->struct_size < sizeof r->cbs ? cbs->struct_size : sizeof r->cbs;
    memcpy(&r->cbs, cbs, n);
  }
  xmppuv_client_callbacks_t lc;
  xmppuv_client_callbacks_init(&lc);
  lc.online = on_online;
  lc.closed = on_closed;
  int rc = xmppuv_client_iq_handler_add(c, "query", XMPPUV_NS_ROSTER, "set", on_push, r, &r->push_id);
  if (rc != 0) goto fail;
  rc = xmppuv_client_handler_add(c, "presence", NULL, NULL, on_presence, r, &r->pres_id);
  if (rc != 0) {
    xmppuv_client_iq_handler_remove(c, r->push_id);
    goto fail;
  }
  rc = xmppuv_client_listener_add(c, &lc, r, &r->listener_id);
  if (rc != 0) {
    xmppuv_client_iq_handler_remove(c, r->push_id);
    xmppuv_client_handler_remove(c, r->pres_id);
    goto fail;
  }
  /* Attached to a client that is online already: fetch now, as `online`
   * would have. */
  if (xmppuv_client_status(c) == XMPPUV_STATUS_ONLINE) session_start(r, c, 0);
  *out = r;
  return 0;
fail:
  free(r);
  return rc;
}

void xmppuv_roster_free(xmppuv_roster_t *r) {
  if (r == NULL) return;
  (void)xmppuv_client_listener_remove(r->c, r->listener_id);
  (void)xmppuv_client_iq_handler_remove(r->c, r->push_id);
  (void)xmppuv_client_handler_remove(r->c, r->pres_id);
  destroy(r);
}

int xmppuv_roster_set_version(xmppuv_roster_t *r, const char *ver) {
  if (r == NULL) return XMPPUV_EINVAL;
  char *v = NULL;
  if (ver != NULL && (v = xmppuv__im_strdup(ver)) == NULL) return XMPPUV_ENOMEM;
  free(r->ver);
  r->ver = v;
  return 0;
}

const char *xmppuv_roster_version(const xmppuv_roster_t *r) { return r != NULL ? r->ver : NULL; }

int xmppuv_roster_import_item(xmppuv_roster_t *r, const xmppuv_roster_item_t *item) {
  if (r == NULL || item == NULL || item->jid == NULL) return XMPPUV_EINVAL;
  if ((unsigned)item->subscription > XMPPUV_SUB_REMOVE) return XMPPUV_EINVAL;
  if (item->ngroups > 0 && item->groups == NULL) return XMPPUV_EINVAL;
  for (size_t i = 0; i < item->ngroups; i++)
    if (item->groups[i] == NULL) return XMPPUV_EINVAL;
  char *bare = canon_bare(item->jid, 0);
  if (bare == NULL) return XMPPUV_EINVAL;
  if (item->subscription == XMPPUV_SUB_REMOVE) {
    items_del(r, bare);
    free(bare);
    return 0;
  }
  xmppuv_roster_item_t it;
  int rc = item_copy(&it, item, bare);
  free(bare);
  if (rc != 0) return XMPPUV_ENOMEM;
  if (items_put(r, &it) != 0) {
    item_clear(&it);
    return XMPPUV_ENOMEM;
  }
  return 0;
}

size_t xmppuv_roster_count(const xmppuv_roster_t *r) { return r != NULL ? r->n : 0; }

const xmppuv_roster_item_t *xmppuv_roster_item_at(const xmppuv_roster_t *r, size_t i) {
  if (r == NULL || i >= r->n) return NULL;
  return &r->items[i];
}

const xmppuv_roster_item_t *xmppuv_roster_get(const xmppuv_roster_t *r, const char *jid) {
  if (r == NULL || jid == NULL) return NULL;
  char *bare = canon_bare(jid, 1);
  if (bare == NULL) return NULL;
  long at = find_item(r->items, r->n, bare);
  free(bare);
  return at >= 0 ? &r->items[at] : NULL;
}

int xmppuv_roster_loaded(const xmppuv_roster_t *r) { return r != NULL && r->loaded; }
unsigned xmppuv_roster_spoofed_count(const xmppuv_roster_t *r) { return r != NULL ? r->spoofed : 0; }
int xmppuv_roster_preapproval_supported(const xmppuv_roster_t *r) {
  return r != NULL && r->preapproval;
}

/* ---- changing ------------------------------------------------------------- */

static int set_item(xmppuv_roster_t *r, const char *jid, const char *name,
                    const char *const *groups, size_t ngroups, int remove,
                    xmppuv_roster_done_cb cb, void *ud) {
  if (r == NULL || jid == NULL || (ngroups > 0 && groups == NULL)) return XMPPUV_EINVAL;
  for (size_t i = 0; i < ngroups; i++)
    if (groups[i] == NULL || groups[i][0] == '\0') return XMPPUV_EINVAL;
  char *bare = canon_bare(jid, 0);
  if (bare == NULL) return XMPPUV_EINVAL;
  xmppuv_stanza_t *iq, *q, *item;
  int rc = iq_query("set", &iq, &q);
  if (rc != 0) {
    free(bare);
    return rc;
  }
  if ((rc = xmppuv_stanza_new_child(q, "item", NULL, &item)) != 0 ||
      (rc = xmppuv_stanza_set_attr(item, "jid", bare)) != 0)
    goto out;
  if (remove) {
    rc = xmppuv_stanza_set_attr(item, "subscription", "remove");
  } else {
    if (name != NULL && (rc = xmppuv_stanza_set_attr(item, "name", name)) != 0) goto out;
    for (size_t i = 0; i < ngroups; i++) {
      xmppuv_stanza_t *g;
      if ((rc = xmppuv_stanza_new_child(item, "group", NULL, &g)) != 0 ||
          (rc = xmppuv_stanza_set_text(g, groups[i])) != 0)
        goto out;
    }
  }
  if (rc == 0) rc = send_iq(r, iq, 0, cb, ud);
out:
  xmppuv_stanza_unref(iq);
  free(bare);
  return rc;
}

int xmppuv_roster_set(xmppuv_roster_t *r, const char *jid, const char *name,
                      const char *const *groups, size_t ngroups, xmppuv_roster_done_cb cb,
                      void *user_data) {
  return set_item(r, jid, name, groups, ngroups, 0, cb, user_data);
}

int xmppuv_roster_remove(xmppuv_roster_t *r, const char *jid, xmppuv_roster_done_cb cb,
                         void *user_data) {
  return set_item(r, jid, NULL, NULL, 0, 1, cb, user_data);
}
