/* The chat layer: presence (RFC 6121 §4). Public API only (<xmppuv.h>);
 * memory from the C library (the public API exposes no allocator). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <xmppuv.h>

#include "common.h"

/* Presence tracked at most: contacts, and resources of one contact. */
#define MAX_CONTACTS 20000
#define MAX_RESOURCES 64

typedef struct res {
  xmppuv_presence_info_t v; /* strings owned; stanza referenced */
  uint64_t seq;             /* when it was heard from (a counter) */
} res_t;

typedef struct contact {
  char *bare;
  res_t *res;
  size_t n, cap;
} contact_t;

struct xmppuv_presence {
  xmppuv_client_t *c;
  xmppuv_presence_callbacks_t cbs;
  void *ud;
  uint64_t listener_id, handler_id;
  int initial;
  xmppuv_show_t show;
  char *status;
  int priority;
  xmppuv_disco_t *disco;
  int dirty; /* changed while not online: send after a resumption */
  contact_t *contacts;
  size_t n, cap;
  uint64_t seq;
};

static const char *const show_names[] = {"online", "chat", "away", "xa", "dnd"};

const char *xmppuv_show_name(xmppuv_show_t show) {
  if ((unsigned)show > XMPPUV_SHOW_DND) return NULL;
  return show_names[show];
}

void xmppuv_presence_options_init_sized(xmppuv_presence_options_t *opts, size_t struct_size) {
  if (opts == NULL || struct_size < sizeof(size_t)) return;
  xmppuv_presence_options_t d;
  memset(&d, 0, sizeof d);
  d.struct_size = struct_size;
  d.initial = 1;
  memcpy(opts, &d, struct_size < sizeof d ? struct_size : sizeof d);
}


static int valid_show(xmppuv_show_t show) { return (unsigned)show <= XMPPUV_SHOW_DND; }
static int valid_priority(int prio) { return prio >= -128 && prio <= 127; }

/* ---- tracked state ------------------------------------------------------ */

static void info_clear(xmppuv_presence_info_t *v) {
  free((char *)v->jid);
  free((char *)v->bare);
  free((char *)v->resource);
  free((char *)v->status);
  xmppuv_stanza_unref(v->stanza);
  memset(v, 0, sizeof *v);
}

static int info_copy(xmppuv_presence_info_t *dst, const xmppuv_presence_info_t *src) {
  *dst = *src;
  dst->jid = xmppuv__im_strdup(src->jid);
  dst->bare = xmppuv__im_strdup(src->bare);
  dst->resource = xmppuv__im_strdup(src->resource);
  dst->status = xmppuv__im_strdup(src->status);
  dst->stanza = xmppuv_stanza_ref(src->stanza);
  if (dst->jid == NULL || dst->bare == NULL || (src->resource != NULL && dst->resource == NULL) ||
      (src->status != NULL && dst->status == NULL)) {
    info_clear(dst);
    return -1;
  }
  return 0;
}

static long find_contact(const xmppuv_presence_t *p, const char *bare) {
  for (size_t i = 0; i < p->n; i++)
    if (strcmp(p->contacts[i].bare, bare) == 0) return (long)i;
  return -1;
}

static long find_res(const contact_t *k, const char *full) {
  for (size_t i = 0; i < k->n; i++)
    if (strcmp(k->res[i].v.jid, full) == 0) return (long)i;
  return -1;
}

static void contact_del(xmppuv_presence_t *p, size_t at) {
  contact_t *k = &p->contacts[at];
  for (size_t i = 0; i < k->n; i++) info_clear(&k->res[i].v);
  free(k->res);
  free(k->bare);
  p->contacts[at] = p->contacts[--p->n];
}

/* The changes of one event, raised after the state is final. */
typedef struct changes {
  xmppuv_presence_info_t *v;
  size_t n, cap;
} changes_t;

static int changes_add(changes_t *ch, const xmppuv_presence_info_t *v, int available,
                       int keep_stanza) {
  if (ch->n == ch->cap) {
    size_t cap = ch->cap ? ch->cap * 2 : 4;
    xmppuv_presence_info_t *nv = realloc(ch->v, cap * sizeof *nv);
    if (nv == NULL) return -1;
    ch->v = nv;
    ch->cap = cap;
  }
  xmppuv_presence_info_t tmp = *v;
  if (!keep_stanza) tmp.stanza = NULL;
  if (info_copy(&ch->v[ch->n], &tmp) != 0) return -1;
  ch->v[ch->n].available = available;
  ch->n++;
  return 0;
}

static void changes_raise(xmppuv_presence_t *p, changes_t *ch) {
  for (size_t i = 0; i < ch->n; i++) {
    if (p->cbs.changed != NULL) p->cbs.changed(p, &ch->v[i], p->ud);
    info_clear(&ch->v[i]);
  }
  free(ch->v);
  memset(ch, 0, sizeof *ch);
}

/* Everything tracked is dropped (a new session): a `changed` (gone) for
 * each resource. */
static void drop_all(xmppuv_presence_t *p) {
  changes_t ch;
  memset(&ch, 0, sizeof ch);
  for (size_t i = 0; i < p->n; i++)
    for (size_t j = 0; j < p->contacts[i].n; j++)
      (void)changes_add(&ch, &p->contacts[i].res[j].v, 0, 0); /* out of memory: no event */
  while (p->n > 0) contact_del(p, p->n - 1);
  changes_raise(p, &ch);
}

/* ---- inbound ---------------------------------------------------------- */

static xmppuv_show_t parse_show(const char *s) {
  if (s == NULL) return XMPPUV_SHOW_ONLINE;
  for (unsigned i = 1; i <= XMPPUV_SHOW_DND; i++)
    if (strcmp(s, show_names[i]) == 0) return (xmppuv_show_t)i;
  return XMPPUV_SHOW_ONLINE; /* unknown: plain available */
}

/* RFC 6121 §4.7.2.3: an integer -128..127, absent means 0. */
static int parse_priority(const char *s) {
  if (s == NULL) return 0;
  char *end;
  long v = strtol(s, &end, 10);
  if (end == s || *end != '\0') return 0;
  if (v < -128) v = -128;
  if (v > 127) v = 127;
  return (int)v;
}

static void on_error_presence(xmppuv_presence_t *p, xmppuv_stanza_t *s) {
  if (p->cbs.error == NULL) return;
  const char *cond = NULL;
  xmppuv_stanza_t *err = xmppuv_stanza_child(s, "error", NULL);
  for (xmppuv_stanza_t *e = xmppuv_stanza_child(err, NULL, "urn:ietf:params:xml:ns:xmpp-stanzas");
       e != NULL; e = xmppuv_stanza_next(e, NULL, "urn:ietf:params:xml:ns:xmpp-stanzas")) {
    if (strcmp(xmppuv_stanza_name(e), "text") != 0) {
      cond = xmppuv_stanza_name(e);
      break;
    }
  }
  p->cbs.error(p, xmppuv_stanza_attr(s, "from"), cond, s, p->ud);
}

static void on_unavailable(xmppuv_presence_t *p, const xmppuv_jid_t *from, xmppuv_stanza_t *s) {
  long at = find_contact(p, xmppuv_jid_bare_string(from));
  if (at < 0) return;
  contact_t *k = &p->contacts[at];
  changes_t ch;
  memset(&ch, 0, sizeof ch);
  const char *status = xmppuv_stanza_child_text(s, "status", NULL);
  if (xmppuv_jid_is_bare(from)) {
    /* From the bare JID: every resource is gone. */
    for (size_t i = 0; i < k->n; i++) {
      xmppuv_presence_info_t v = k->res[i].v;
      v.stanza = s;
      v.status = status;
      (void)changes_add(&ch, &v, 0, 1);
    }
    contact_del(p, (size_t)at);
  } else {
    long r = find_res(k, xmppuv_jid_string(from));
    if (r < 0) return;
    xmppuv_presence_info_t v = k->res[r].v;
    v.stanza = s;
    v.status = status;
    (void)changes_add(&ch, &v, 0, 1);
    info_clear(&k->res[r].v);
    k->res[r] = k->res[--k->n];
    if (k->n == 0) contact_del(p, (size_t)at);
  }
  changes_raise(p, &ch);
}

static void on_available(xmppuv_presence_t *p, const xmppuv_jid_t *from, xmppuv_stanza_t *s) {
  xmppuv_presence_info_t v;
  memset(&v, 0, sizeof v);
  v.jid = xmppuv_jid_string(from);
  v.bare = xmppuv_jid_bare_string(from);
  v.resource = xmppuv_jid_resource(from);
  v.available = 1;
  v.show = parse_show(xmppuv_stanza_child_text(s, "show", NULL));
  v.status = xmppuv_stanza_child_text(s, "status", NULL);
  v.priority = parse_priority(xmppuv_stanza_child_text(s, "priority", NULL));
  v.stanza = s;
  res_t nr;
  memset(&nr, 0, sizeof nr);
  if (info_copy(&nr.v, &v) != 0) return;
  nr.seq = ++p->seq;
  long at = find_contact(p, v.bare);
  /* Bounded: presence may come from anyone (directed presence, a hostile
   * server with endless JIDs); beyond these limits it is not tracked. */
  if ((at < 0 && p->n >= MAX_CONTACTS) ||
      (at >= 0 && p->contacts[at].n >= MAX_RESOURCES &&
       find_res(&p->contacts[at], v.jid) < 0))
    goto oom;
  if (at < 0) {
    if (p->n == p->cap) {
      size_t cap = p->cap ? p->cap * 2 : 16;
      contact_t *nc = realloc(p->contacts, cap * sizeof *nc);
      if (nc == NULL) goto oom;
      p->contacts = nc;
      p->cap = cap;
    }
    contact_t k;
    memset(&k, 0, sizeof k);
    if ((k.bare = xmppuv__im_strdup(v.bare)) == NULL) goto oom;
    p->contacts[p->n] = k;
    at = (long)p->n++;
  }
  contact_t *k = &p->contacts[at];
  long r = find_res(k, v.jid);
  if (r >= 0) {
    info_clear(&k->res[r].v);
    k->res[r] = nr;
  } else {
    if (k->n == k->cap) {
      size_t cap = k->cap ? k->cap * 2 : 2;
      res_t *rs = realloc(k->res, cap * sizeof *rs);
      if (rs == NULL) {
        if (k->n == 0) contact_del(p, (size_t)at);
        goto oom;
      }
      k->res = rs;
      k->cap = cap;
    }
    k->res[k->n++] = nr;
  }
  changes_t ch;
  memset(&ch, 0, sizeof ch);
  (void)changes_add(&ch, &v, 1, 1);
  changes_raise(p, &ch);
  return;
oom:
  info_clear(&nr.v);
}

/* Every resource of bare is gone (with status and stanza NULL). */
static void drop_contact(xmppuv_presence_t *p, const char *bare) {
  long at = find_contact(p, bare);
  if (at < 0) return;
  changes_t ch;
  memset(&ch, 0, sizeof ch);
  contact_t *k = &p->contacts[at];
  for (size_t i = 0; i < k->n; i++) (void)changes_add(&ch, &k->res[i].v, 0, 0);
  contact_del(p, (size_t)at);
  changes_raise(p, &ch);
}

/* A roster push (seen through the client's `stanza` event, after the
 * roster module, if any, took it) that leaves us without a subscription to
 * the contact's presence ('none', 'from', 'remove'): what we tracked of it
 * will not be updated any more, so it is dropped. Not every server sends
 * the unavailable presence RFC 6121 §3.2.2 implies when an item is
 * removed (Prosody does not). Only pushes from our own account count
 * (RFC 6121 §2.1.6). */
static void on_stanza(xmppuv_client_t *c, xmppuv_stanza_t *s, int handled, void *ud) {
  xmppuv_presence_t *p = ud;
  (void)handled;
  if (strcmp(xmppuv_stanza_name(s), "iq") != 0) return;
  const char *type = xmppuv_stanza_attr(s, "type");
  if (type == NULL || strcmp(type, "set") != 0) return;
  xmppuv_stanza_t *q = xmppuv_stanza_child(s, "query", "jabber:iq:roster");
  xmppuv_stanza_t *item = xmppuv_stanza_child(q, "item", "jabber:iq:roster");
  if (item == NULL) return;
  /* The roster module's rule for pushes; one it refused (handled by
   * nobody else either) changes nothing here. */
  if (!xmppuv__im_from_account(c, xmppuv_stanza_attr(s, "from"), 1)) return;
  const char *sub = xmppuv_stanza_attr(item, "subscription");
  if (sub != NULL && (strcmp(sub, "to") == 0 || strcmp(sub, "both") == 0)) return;
  if (sub != NULL && strcmp(sub, "none") != 0 && strcmp(sub, "from") != 0 &&
      strcmp(sub, "remove") != 0)
    return;
  const char *ij = xmppuv_stanza_attr(item, "jid");
  xmppuv_jid_t *j;
  if (ij == NULL || xmppuv_jid_parse(ij, &j) != 0) return;
  drop_contact(p, xmppuv_jid_bare_string(j));
  xmppuv_jid_free(j);
}

static int on_presence(xmppuv_client_t *c, xmppuv_stanza_t *s, void *ud) {
  xmppuv_presence_t *p = ud;
  (void)c;
  const char *type = xmppuv_stanza_attr(s, "type");
  if (type != NULL && strcmp(type, "error") == 0) {
    on_error_presence(p, s);
    return XMPPUV_PASS;
  }
  if (type != NULL && strcmp(type, "unsubscribed") == 0) {
    /* RFC 6121 §3.2: our subscription to them is cancelled (or refused):
     * no more presence from them. */
    xmppuv_jid_t *j;
    const char *f = xmppuv_stanza_attr(s, "from");
    if (f != NULL && xmppuv_jid_parse(f, &j) == 0) {
      drop_contact(p, xmppuv_jid_bare_string(j));
      xmppuv_jid_free(j);
    }
    return XMPPUV_PASS;
  }
  if (type != NULL && strcmp(type, "unavailable") != 0) return XMPPUV_PASS; /* subscriptions */
  /* A room occupant's presence (XEP-0045) is the group chat module's: a
   * room is not a contact with resources. */
  if (xmppuv_stanza_child(s, "x", "http://jabber.org/protocol/muc#user") != NULL)
    return XMPPUV_PASS;
  const char *f = xmppuv_stanza_attr(s, "from");
  xmppuv_jid_t *from;
  if (f == NULL || xmppuv_jid_parse(f, &from) != 0) return XMPPUV_PASS;
  if (type == NULL) on_available(p, from, s);
  else on_unavailable(p, from, s);
  xmppuv_jid_free(from);
  /* Observers only: the app's own handlers (MUC, ...) see it too. */
  return XMPPUV_PASS;
}

/* ---- outbound --------------------------------------------------------- */

static int build(xmppuv_presence_t *p, const char *to, int available, const xmppuv_stanza_t *extra,
                 xmppuv_stanza_t **out) {
  xmppuv_stanza_t *s, *ch;
  int rc = xmppuv_stanza_new("presence", NULL, &s);
  if (rc != 0) return rc;
  if (to != NULL && (rc = xmppuv_stanza_set_attr(s, "to", to)) != 0) goto fail;
  if (!available) {
    if ((rc = xmppuv_stanza_set_attr(s, "type", "unavailable")) != 0) goto fail;
  } else {
    if (p->show != XMPPUV_SHOW_ONLINE &&
        ((rc = xmppuv_stanza_new_child(s, "show", NULL, &ch)) != 0 ||
         (rc = xmppuv_stanza_set_text(ch, show_names[p->show])) != 0))
      goto fail;
    if (p->status != NULL && ((rc = xmppuv_stanza_new_child(s, "status", NULL, &ch)) != 0 ||
                              (rc = xmppuv_stanza_set_text(ch, p->status)) != 0))
      goto fail;
    if (p->priority != 0) {
      char num[8];
      int prio = p->priority, i = (int)sizeof num - 1, neg = prio < 0;
      unsigned u = (unsigned)(neg ? -prio : prio);
      num[i] = '\0';
      do {
        num[--i] = (char)('0' + u % 10);
        u /= 10;
      } while (u != 0);
      if (neg) num[--i] = '-';
      if ((rc = xmppuv_stanza_new_child(s, "priority", NULL, &ch)) != 0 ||
          (rc = xmppuv_stanza_set_text(ch, num + i)) != 0)
        goto fail;
    }
    /* XEP-0115 §4: caps in every available presence we send. */
    if (p->disco != NULL && (rc = xmppuv_disco_add_caps(p->disco, s)) != 0) goto fail;
  }
  if (extra != NULL && (rc = xmppuv_stanza_add_child(s, extra)) != 0) goto fail;
  *out = s;
  return 0;
fail:
  xmppuv_stanza_unref(s);
  return rc;
}

static int send_now(xmppuv_presence_t *p) {
  xmppuv_stanza_t *s;
  int rc = build(p, NULL, 1, NULL, &s);
  if (rc != 0) return rc;
  rc = xmppuv_client_send(p->c, s);
  xmppuv_stanza_unref(s);
  if (rc == 0) p->dirty = 0;
  return rc;
}

/* ---- the client's events ---------------------------------------------- */

static void on_online(xmppuv_client_t *c, const xmppuv_jid_t *jid, void *ud) {
  xmppuv_presence_t *p = ud;
  (void)c;
  (void)jid;
  drop_all(p);
  if (p->initial) (void)send_now(p); /* an error here is the client's own event */
  p->dirty = 0;
}

static void on_resumed(xmppuv_client_t *c, void *ud) {
  xmppuv_presence_t *p = ud;
  (void)c;
  /* The server kept our presence; only a change made meanwhile goes out. */
  if (p->dirty) (void)send_now(p);
}

static void destroy(xmppuv_presence_t *p) {
  while (p->n > 0) contact_del(p, p->n - 1);
  free(p->contacts);
  free(p->status);
  free(p);
}

static void on_closed(xmppuv_client_t *c, void *ud) {
  (void)c;
  destroy(ud);
}

/* ---- the API ------------------------------------------------------------ */

int xmppuv_presence_new(xmppuv_client_t *c, const xmppuv_presence_options_t *opts,
                        const xmppuv_presence_callbacks_t *cbs, void *user_data,
                        xmppuv_presence_t **out) {
  if (out != NULL) *out = NULL;
  if (c == NULL || out == NULL) return XMPPUV_EINVAL;
  xmppuv_presence_options_t o;
  xmppuv_presence_options_init(&o);
  if (opts != NULL) {
    if (opts->struct_size < sizeof(size_t)) return XMPPUV_EINVAL;
    memcpy(&o, opts, opts->struct_size < sizeof o ? opts->struct_size : sizeof o);
  }
  if (!valid_show(o.show) || !valid_priority(o.priority)) return XMPPUV_EINVAL;
  if (cbs != NULL && cbs->struct_size < sizeof(size_t)) return XMPPUV_EINVAL;
  xmppuv_presence_t *p = calloc(1, sizeof *p);
  if (p == NULL) return XMPPUV_ENOMEM;
  p->c = c;
  p->ud = user_data;
  p->initial = o.initial;
  p->show = o.show;
  p->priority = o.priority;
  p->disco = o.disco;
  if (o.status != NULL && (p->status = xmppuv__im_strdup(o.status)) == NULL) {
    free(p);
    return XMPPUV_ENOMEM;
  }
  if (cbs != NULL)
    memcpy(&p->cbs, cbs, cbs->struct_size < sizeof p->cbs ? cbs->struct_size : sizeof p->cbs);
  int rc = xmppuv_client_handler_add(c, "presence", NULL, NULL, on_presence, p, &p->handler_id);
  if (rc != 0) goto fail;
  xmppuv_client_callbacks_t lc;
  xmppuv_client_callbacks_init(&lc);
  lc.online = on_online;
  lc.resumed = on_resumed;
  lc.stanza = on_stanza;
  lc.closed = on_closed;
  rc = xmppuv_client_listener_add(c, &lc, p, &p->listener_id);
  if (rc != 0) {
    xmppuv_client_handler_remove(c, p->handler_id);
    goto fail;
  }
  if (p->initial && xmppuv_client_status(c) == XMPPUV_STATUS_ONLINE) (void)send_now(p);
  *out = p;
  return 0;
fail:
  free(p->status);
  free(p);
  return rc;
}

void xmppuv_presence_free(xmppuv_presence_t *p) {
  if (p == NULL) return;
  (void)xmppuv_client_listener_remove(p->c, p->listener_id);
  (void)xmppuv_client_handler_remove(p->c, p->handler_id);
  destroy(p);
}

int xmppuv_presence_set(xmppuv_presence_t *p, xmppuv_show_t show, const char *status,
                        int priority) {
  if (p == NULL || !valid_show(show) || !valid_priority(priority)) return XMPPUV_EINVAL;
  char *st = NULL;
  if (status != NULL && (st = xmppuv__im_strdup(status)) == NULL) return XMPPUV_ENOMEM;
  free(p->status);
  p->status = st;
  p->show = show;
  p->priority = priority;
  if (xmppuv_client_status(p->c) != XMPPUV_STATUS_ONLINE) {
    p->dirty = 1;
    return 0;
  }
  return send_now(p);
}

int xmppuv_presence_send_to(xmppuv_presence_t *p, const char *jid, int available,
                            const xmppuv_stanza_t *extra) {
  if (p == NULL || jid == NULL) return XMPPUV_EINVAL;
  xmppuv_jid_t *j;
  int rc = xmppuv_jid_parse(jid, &j);
  if (rc != 0) return rc;
  xmppuv_stanza_t *s;
  rc = build(p, xmppuv_jid_string(j), available, extra, &s);
  xmppuv_jid_free(j);
  if (rc != 0) return rc;
  rc = xmppuv_client_send(p->c, s);
  xmppuv_stanza_unref(s);
  return rc;
}

size_t xmppuv_presence_contact_count(const xmppuv_presence_t *p) { return p != NULL ? p->n : 0; }

const char *xmppuv_presence_contact_at(const xmppuv_presence_t *p, size_t i) {
  if (p == NULL || i >= p->n) return NULL;
  return p->contacts[i].bare;
}

static const contact_t *contact_of(const xmppuv_presence_t *p, const char *jid,
                                   xmppuv_jid_t **parsed) {
  *parsed = NULL;
  if (p == NULL || jid == NULL) return NULL;
  if (xmppuv_jid_parse(jid, parsed) != 0) return NULL;
  long at = find_contact(p, xmppuv_jid_bare_string(*parsed));
  return at >= 0 ? &p->contacts[at] : NULL;
}

size_t xmppuv_presence_count(const xmppuv_presence_t *p, const char *jid) {
  xmppuv_jid_t *j;
  const contact_t *k = contact_of(p, jid, &j);
  xmppuv_jid_free(j);
  return k != NULL ? k->n : 0;
}

const xmppuv_presence_info_t *xmppuv_presence_get(const xmppuv_presence_t *p, const char *jid,
                                                  size_t i) {
  xmppuv_jid_t *j;
  const contact_t *k = contact_of(p, jid, &j);
  xmppuv_jid_free(j);
  if (k == NULL || i >= k->n) return NULL;
  return &k->res[i].v;
}

const xmppuv_presence_info_t *xmppuv_presence_best(const xmppuv_presence_t *p, const char *jid) {
  xmppuv_jid_t *j;
  const contact_t *k = contact_of(p, jid, &j);
  const xmppuv_presence_info_t *best = NULL;
  if (k != NULL) {
    if (!xmppuv_jid_is_bare(j)) {
      long r = find_res(k, xmppuv_jid_string(j));
      if (r >= 0) best = &k->res[r].v;
    } else {
      const res_t *b = NULL;
      for (size_t i = 0; i < k->n; i++) {
        const res_t *x = &k->res[i];
        if (b == NULL || x->v.priority > b->v.priority ||
            (x->v.priority == b->v.priority && x->seq > b->seq))
          b = x;
      }
      if (b != NULL) best = &b->v;
    }
  }
  xmppuv_jid_free(j);
  return best;
}
