/* The chat layer: Multi-User Chat (XEP-0045), occupant side, with
 * self-ping (XEP-0410). Public API only (include/ is this file's whole
 * include path, <uv.h> for the self-ping timer); memory from libc.
 *
 * A room is a presence session: our presence to room/nick joins, the room
 * answers with every occupant's presence, then ours (status 110), then the
 * discussion history, then the subject (XEP-0045 §7.2.2-§7.2.15). Events
 * are raised from the handlers of the stanzas that cause them, never from
 * inside an API call; the app may free the module or forget a room from a
 * callback: the memory goes when the outermost callback returns (depth). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>
#include <xmppuv.h>

#include "common.h"
#include <xmppuv/im/muc.h>

#define NS_PING "urn:xmpp:ping"
#define NS_DELAY "urn:xmpp:delay"
#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define NS_DATA "jabber:x:data"
#define SEEN_IDS 256 /* stanza-ids remembered per room for de-duplication */

typedef struct occupant {
  struct occupant *next;
  char *nick, *role, *affiliation, *jid;
  int stale; /* a rejoin is in progress and the room has not listed it again */
} occupant_t;

struct xmppuv_muc_room {
  xmppuv_muc_room_t *next;
  xmppuv_muc_t *muc;
  unsigned serial;          /* for the self-ping's callback, which may outlive us */
  xmppuv_jid_t *jid;        /* bare */
  char *nick;               /* canonical resourcepart */
  char *password;           /* NULL: none */
  int h_maxstanzas;         /* the history the app asked for on the first join */
  unsigned h_seconds;
  char *h_since;
  xmppuv_muc_room_state_t state;
  int held;       /* the join went out while offline: it goes with the next session */
  int rejoining;  /* the join in progress is a rejoin */
  int was_joined; /* joined at least once */
  int in_history; /* joined, the subject (end of history) not seen yet */
  int pinging;    /* a self-ping is in flight */
  int forgotten;  /* xmppuv_muc_forget() inside a callback: freed afterwards */
  uint64_t last_seen_ms;    /* uv_now of the last message (or of the join) */
  uint64_t last_traffic_ms; /* uv_now of the last stanza from the room */
  char *subject;
  occupant_t *occupants;
  char *seen[SEEN_IDS]; /* ring of delivered stanza-ids */
  size_t seen_next;
  void *ud;
};

typedef struct ping {
  struct ping *next;
  xmppuv_muc_t *muc; /* NULL once the module is gone */
  unsigned serial;
  uint64_t iq_id;
} ping_t;

struct xmppuv_muc {
  xmppuv_client_t *c;
  xmppuv_muc_options_t opts;
  xmppuv_muc_callbacks_t cbs;
  void *ud;
  uint64_t listener, h_presence, h_message;
  uv_timer_t *timer;
  xmppuv_muc_room_t *rooms;
  ping_t *pings;
  unsigned next_serial;
  unsigned depth; /* inside one of the app's callbacks */
  int doomed;     /* freed inside one: free when it returns */
  int client_gone;
};

#define OPTIONS_MIN_SIZE (offsetof(xmppuv_muc_options_t, create_instant) + sizeof(int))
#define CALLBACKS_MIN_SIZE (offsetof(xmppuv_muc_callbacks_t, left) + sizeof(void (*)(void)))

void xmppuv_muc_options_init_sized(xmppuv_muc_options_t *opts, size_t struct_size) {
  if (opts == NULL || struct_size < sizeof opts->struct_size) return;
  xmppuv_muc_options_t full;
  memset(&full, 0, sizeof full);
  full.self_ping_interval_ms = 300000;
  full.rejoin_history = XMPPUV_MUC_REJOIN_SINCE_LAST;
  full.create_instant = 1;
  memset(opts, 0, struct_size);
  memcpy(opts, &full, struct_size < sizeof full ? struct_size : sizeof full);
  opts->struct_size = struct_size;
}

void xmppuv_muc_callbacks_init_sized(xmppuv_muc_callbacks_t *cbs, size_t struct_size) {
  if (cbs == NULL || struct_size < sizeof cbs->struct_size) return;
  memset(cbs, 0, struct_size);
  cbs->struct_size = struct_size;
}

/* ---- small things ---------------------------------------------------------------- */


/* Replace *dst by a copy of s; 0 or XMPPUV_ENOMEM (then *dst is unchanged). */
static int set_str(char **dst, const char *s) {
  char *p = NULL;
  if (s != NULL && (p = xmppuv__im_strdup(s)) == NULL) return XMPPUV_ENOMEM;
  free(*dst);
  *dst = p;
  return 0;
}

static int eq(const char *a, const char *b) {
  return a != NULL && b != NULL && strcmp(a, b) == 0;
}

static uint64_t now_ms(const xmppuv_muc_t *m) { return uv_now(xmppuv_client_loop(m->c)); }

static int online(const xmppuv_muc_t *m) {
  return xmppuv_client_status(m->c) == XMPPUV_STATUS_ONLINE;
}

/* The outcome of the module's own stanzas is nobody's business but ours:
 * the app keeps its `ack` and `fail` events for its own. */
static void on_sent(xmppuv_client_t *c, xmppuv_stanza_t *s, int status, void *ud) {
  (void)c, (void)s, (void)status, (void)ud;
}

static void on_iq_ignored(xmppuv_client_t *c, int status, xmppuv_stanza_t *reply, void *ud) {
  (void)c, (void)status, (void)reply, (void)ud;
}

/* The stanza error condition of an error stanza, and its text. */
static const char *error_condition(const xmppuv_stanza_t *s, const char **text) {
  const xmppuv_stanza_t *err = xmppuv_stanza_child(s, "error", NULL);
  if (text != NULL) *text = xmppuv_stanza_child_text(err, "text", NS_STANZAS);
  for (xmppuv_stanza_t *c = xmppuv_stanza_child(err, NULL, NS_STANZAS); c != NULL;
       c = xmppuv_stanza_next(c, NULL, NS_STANZAS))
    if (!eq(xmppuv_stanza_name(c), "text")) return xmppuv_stanza_name(c);
  return "undefined-condition";
}

/* ---- lifetime ------------------------------------------------------------------- */

static void occupants_clear(xmppuv_muc_room_t *r) {
  while (r->occupants != NULL) {
    occupant_t *o = r->occupants;
    r->occupants = o->next;
    free(o->nick);
    free(o->role);
    free(o->affiliation);
    free(o->jid);
    free(o);
  }
}

static void room_free(xmppuv_muc_room_t *r) {
  occupants_clear(r);
  for (size_t i = 0; i < SEEN_IDS; i++) free(r->seen[i]);
  xmppuv_jid_free(r->jid);
  free(r->nick);
  free(r->password);
  free(r->h_since);
  free(r->subject);
  free(r);
}

static void on_timer_closed(uv_handle_t *h) { free(h); }

static void free_all(xmppuv_muc_t *m) {
  for (ping_t *p = m->pings; p != NULL;) {
    ping_t *next = p->next;
    /* Its iq's callback comes later (cancelled) and frees it. */
    p->muc = NULL;
    p->next = NULL;
    if (!m->client_gone) (void)xmppuv_client_iq_cancel(m->c, p->iq_id);
    p = next;
  }
  m->pings = NULL;
  while (m->rooms != NULL) {
    xmppuv_muc_room_t *r = m->rooms;
    m->rooms = r->next;
    room_free(r);
  }
  if (m->timer != NULL) uv_close((uv_handle_t *)m->timer, on_timer_closed);
  free(m);
}

/* Rooms forgotten inside a callback go now. */
static void sweep(xmppuv_muc_t *m) {
  for (xmppuv_muc_room_t **pp = &m->rooms; *pp != NULL;) {
    xmppuv_muc_room_t *r = *pp;
    if (r->forgotten) {
      *pp = r->next;
      room_free(r);
    } else {
      pp = &r->next;
    }
  }
}

static void enter(xmppuv_muc_t *m) { m->depth++; }

/* 0 if the module is still there when the outermost callback returned. */
static int leave(xmppuv_muc_t *m) {
  if (--m->depth > 0) return m->doomed;
  if (m->doomed) {
    free_all(m);
    return 1;
  }
  sweep(m);
  return 0;
}

static void detach(xmppuv_muc_t *m) {
  if (!m->client_gone) {
    if (m->h_presence != 0) (void)xmppuv_client_handler_remove(m->c, m->h_presence);
    if (m->h_message != 0) (void)xmppuv_client_handler_remove(m->c, m->h_message);
    if (m->listener != 0) (void)xmppuv_client_listener_remove(m->c, m->listener);
  }
  m->h_presence = m->h_message = m->listener = 0;
}

void xmppuv_muc_free(xmppuv_muc_t *m) {
  if (m == NULL || m->doomed) return;
  detach(m);
  if (m->timer != NULL) uv_timer_stop(m->timer);
  if (m->depth > 0) m->doomed = 1;
  else free_all(m);
}

static void on_closed(xmppuv_client_t *c, void *ud) {
  (void)c;
  xmppuv_muc_t *m = ud;
  m->client_gone = 1;
  xmppuv_muc_free(m);
}

/* ---- events --------------------------------------------------------------------- */

/* Each returns non-zero if the app made the room (or the module) go. */
static int gone(const xmppuv_muc_room_t *r) { return r->forgotten || r->muc->doomed; }

static int emit_occupant(xmppuv_muc_room_t *r, const occupant_t *o, int available, int is_self,
                         xmppuv_stanza_t *presence) {
  xmppuv_muc_t *m = r->muc;
  if (m->cbs.occupant == NULL) return 0;
  xmppuv_muc_occupant_t occ = {o->nick,
                               available,
                               o->role != NULL ? o->role : "none",
                               o->affiliation != NULL ? o->affiliation : "none",
                               o->jid,
                               is_self,
                               presence};
  m->cbs.occupant(m, r, &occ, m->ud);
  return gone(r);
}

static int emit_joined(xmppuv_muc_room_t *r) {
  if (r->muc->cbs.joined != NULL) r->muc->cbs.joined(r->muc, r, r->nick, r->muc->ud);
  return gone(r);
}

static int emit_join_failed(xmppuv_muc_room_t *r, const char *cond, const char *text) {
  if (r->muc->cbs.join_failed != NULL) r->muc->cbs.join_failed(r->muc, r, cond, text, r->muc->ud);
  return gone(r);
}

static int emit_left(xmppuv_muc_room_t *r, xmppuv_muc_left_reason_t reason, const char *text) {
  if (r->muc->cbs.left != NULL) r->muc->cbs.left(r->muc, r, reason, text, r->muc->ud);
  return gone(r);
}

/* ---- rooms ---------------------------------------------------------------------- */

static xmppuv_muc_room_t *find_room(const xmppuv_muc_t *m, const xmppuv_jid_t *j) {
  for (xmppuv_muc_room_t *r = m->rooms; r != NULL; r = r->next)
    if (!r->forgotten && xmppuv_jid_bare_equal(r->jid, j)) return r;
  return NULL;
}

/* The room `from` belongs to, and the nick (canonical resource, or NULL
 * for the room itself). The JID is parsed into *jid (free it). */
static xmppuv_muc_room_t *room_of(const xmppuv_muc_t *m, const char *from, xmppuv_jid_t **jid,
                                  const char **nick) {
  *jid = NULL;
  *nick = NULL;
  if (from == NULL || m->rooms == NULL || xmppuv_jid_parse(from, jid) != 0) return NULL;
  xmppuv_muc_room_t *r = find_room(m, *jid);
  if (r != NULL) *nick = xmppuv_jid_resource(*jid);
  return r;
}

/* The occupant JID room/nick as text, in buf; 0 or an error. */
static int occupant_jid(const xmppuv_muc_room_t *r, const char *nick, char **out) {
  xmppuv_jid_t *j = NULL;
  int rc = xmppuv_jid_new(xmppuv_jid_local(r->jid), xmppuv_jid_domain(r->jid), nick, &j);
  if (rc != 0) return rc;
  *out = xmppuv__im_strdup(xmppuv_jid_string(j));
  xmppuv_jid_free(j);
  return *out != NULL ? 0 : XMPPUV_ENOMEM;
}

static int set_uint_attr(xmppuv_stanza_t *s, const char *name, uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
  return xmppuv_stanza_set_attr(s, name, buf);
}

/* <presence to=room/nick><x xmlns=muc><history/><password/></x></presence>
 * and send it. A rejoin asks for what was missed (XEP-0045 §7.2.14). */
static int send_join(xmppuv_muc_room_t *r, int rejoin) {
  xmppuv_muc_t *m = r->muc;
  char *to = NULL;
  int rc = occupant_jid(r, r->nick, &to);
  if (rc != 0) return rc;
  xmppuv_stanza_t *p = NULL, *x = NULL, *h = NULL, *pw = NULL;
  rc = xmppuv_stanza_new("presence", NULL, &p);
  if (rc == 0) rc = xmppuv_stanza_set_attr(p, "to", to);
  if (rc == 0) rc = xmppuv_stanza_new_child(p, "x", XMPPUV_NS_MUC, &x);
  if (rc == 0 && rejoin && r->was_joined) {
    rc = xmppuv_stanza_new_child(x, "history", NULL, &h);
    if (rc == 0 && m->opts.rejoin_history == XMPPUV_MUC_REJOIN_NO_HISTORY) {
      rc = xmppuv_stanza_set_attr(h, "maxstanzas", "0");
    } else if (rc == 0) {
      /* Seconds on the loop's monotonic clock, rounded up with a second
       * to spare: the overlap is removed by stanza-id. */
      uint64_t now = now_ms(m);
      uint64_t ago = now > r->last_seen_ms ? now - r->last_seen_ms : 0;
      rc = set_uint_attr(h, "seconds", ago / 1000 + 2);
    }
  } else if (rc == 0 && (r->h_maxstanzas >= 0 || r->h_seconds > 0 || r->h_since != NULL)) {
    rc = xmppuv_stanza_new_child(x, "history", NULL, &h);
    if (rc == 0 && r->h_maxstanzas >= 0)
      rc = set_uint_attr(h, "maxstanzas", (uint64_t)r->h_maxstanzas);
    if (rc == 0 && r->h_seconds > 0) rc = set_uint_attr(h, "seconds", r->h_seconds);
    if (rc == 0 && r->h_since != NULL) rc = xmppuv_stanza_set_attr(h, "since", r->h_since);
  }
  if (rc == 0 && r->password != NULL) {
    rc = xmppuv_stanza_new_child(x, "password", NULL, &pw);
    if (rc == 0) rc = xmppuv_stanza_add_text(pw, r->password, strlen(r->password));
  }
  int held = !online(m);
  if (rc == 0) {
    rc = xmppuv_client_send_tracked(m->c, p, on_sent, NULL);
    /* Not started (or stopped): nothing is held; the next `online` sends
     * the join, as it does a rejoin. */
    if (rc == XMPPUV_ESTATE && xmppuv_client_status(m->c) == XMPPUV_STATUS_OFFLINE) {
      rc = 0;
      held = 0;
    }
  }
  xmppuv_stanza_unref(p);
  free(to);
  if (rc == 0) {
    r->held = held;
    r->state = XMPPUV_MUC_ROOM_JOINING;
    r->rejoining = rejoin;
    r->in_history = 1;
    r->pinging = 0;
  }
  return rc;
}

static int send_unavailable(xmppuv_muc_room_t *r, const char *status) {
  char *to = NULL;
  int rc = occupant_jid(r, r->nick, &to);
  if (rc != 0) return rc;
  xmppuv_stanza_t *p = NULL, *st = NULL;
  rc = xmppuv_stanza_new("presence", NULL, &p);
  if (rc == 0) rc = xmppuv_stanza_set_attr(p, "to", to);
  if (rc == 0) rc = xmppuv_stanza_set_attr(p, "type", "unavailable");
  if (rc == 0 && status != NULL) {
    rc = xmppuv_stanza_new_child(p, "status", NULL, &st);
    if (rc == 0) rc = xmppuv_stanza_add_text(st, status, strlen(status));
  }
  if (rc == 0) rc = xmppuv_client_send_tracked(r->muc->c, p, on_sent, NULL);
  xmppuv_stanza_unref(p);
  free(to);
  return rc;
}

/* Join again (the room forgot us): the occupants it lists anew replace the
 * ones known; those it does not list are gone once we are in. Returns
 * non-zero if the app made the room go (join_failed). */
static int rejoin(xmppuv_muc_room_t *r) {
  for (occupant_t *o = r->occupants; o != NULL; o = o->next) o->stale = 1;
  int rc = send_join(r, 1);
  if (rc == 0) return 0;
  r->state = XMPPUV_MUC_ROOM_OUT;
  occupants_clear(r);
  return emit_join_failed(r, "undefined-condition", xmppuv_strerror(rc));
}

/* ---- self-ping (XEP-0410) -------------------------------------------------------- */

static void on_tick(uv_timer_t *t);

/* The timer at the earliest moment a joined room is due for a self-ping.
 * Traffic only moves that later, so an early tick just re-arms. */
static void arm(xmppuv_muc_t *m) {
  if (m->timer == NULL || m->doomed || m->client_gone) return;
  unsigned every = m->opts.self_ping_interval_ms;
  uint64_t due = UINT64_MAX;
  for (xmppuv_muc_room_t *r = m->rooms; r != NULL && every != 0; r = r->next)
    if (!r->forgotten && r->state == XMPPUV_MUC_ROOM_JOINED && !r->pinging &&
        r->last_traffic_ms + every < due)
      due = r->last_traffic_ms + every;
  if (due == UINT64_MAX) {
    uv_timer_stop(m->timer);
    return;
  }
  uint64_t now = now_ms(m);
  (void)uv_timer_start(m->timer, on_tick, due > now ? due - now : 0, 0);
}

static void on_ping(xmppuv_client_t *c, int status, xmppuv_stanza_t *reply, void *ud) {
  (void)c;
  ping_t *p = ud;
  xmppuv_muc_t *m = p->muc;
  if (m == NULL) {
    free(p);
    return;
  }
  for (ping_t **pp = &m->pings; *pp != NULL; pp = &(*pp)->next)
    if (*pp == p) {
      *pp = p->next;
      break;
    }
  xmppuv_muc_room_t *r = m->rooms;
  while (r != NULL && (r->serial != p->serial || r->forgotten)) r = r->next;
  free(p);
  if (r == NULL || !r->pinging || r->state != XMPPUV_MUC_ROOM_JOINED) return;
  r->pinging = 0;
  r->last_traffic_ms = now_ms(m);
  int joined = 1;
  if (status == XMPPUV_EIQERROR) {
    /* XEP-0410 §"Interpreting responses": these errors come from our own
     * client (or another of ours) behind the room, so we are in it. */
    const char *cond = error_condition(reply, NULL);
    if (eq(cond, "service-unavailable") || eq(cond, "feature-not-implemented") ||
        eq(cond, "item-not-found"))
      joined = 1;
    /* No decision possible: as a timeout, ask again later. */
    else if (eq(cond, "remote-server-not-found") || eq(cond, "remote-server-timeout"))
      joined = 1;
    /* not-acceptable (recommended), not-allowed, bad-request, any other:
     * probably not joined any more. */
    else
      joined = 0;
  }
  /* A timeout, or the session going: try later (a new session rejoins). */
  if (!joined) {
    enter(m);
    int stop = rejoin(r);
    if (leave(m) || stop) return;
  }
  arm(m);
}

static int send_ping(xmppuv_muc_room_t *r) {
  xmppuv_muc_t *m = r->muc;
  char *to = NULL;
  int rc = occupant_jid(r, r->nick, &to);
  if (rc != 0) return rc;
  ping_t *p = calloc(1, sizeof *p);
  xmppuv_stanza_t *iq = NULL, *ping = NULL;
  rc = p != NULL ? xmppuv_stanza_new("iq", NULL, &iq) : XMPPUV_ENOMEM;
  if (rc == 0) rc = xmppuv_stanza_set_attr(iq, "type", "get");
  if (rc == 0) rc = xmppuv_stanza_set_attr(iq, "to", to);
  if (rc == 0) rc = xmppuv_stanza_new_child(iq, "ping", NS_PING, &ping);
  if (rc == 0) {
    p->muc = m;
    p->serial = r->serial;
    rc = xmppuv_client_send_iq(m->c, iq, 0, on_ping, p, &p->iq_id);
  }
  xmppuv_stanza_unref(iq);
  free(to);
  if (rc != 0) {
    free(p);
    return rc;
  }
  p->next = m->pings;
  m->pings = p;
  r->pinging = 1;
  return 0;
}

static void on_tick(uv_timer_t *t) {
  xmppuv_muc_t *m = t->data;
  unsigned every = m->opts.self_ping_interval_ms;
  uint64_t now = now_ms(m);
  if (!online(m)) {
    /* Nothing to ask while offline; a new session rejoins anyway. */
    (void)uv_timer_start(m->timer, on_tick, every, 0);
    return;
  }
  for (xmppuv_muc_room_t *r = m->rooms; r != NULL; r = r->next)
    if (!r->forgotten && r->state == XMPPUV_MUC_ROOM_JOINED && !r->pinging &&
        r->last_traffic_ms + every <= now && send_ping(r) != 0)
      r->last_traffic_ms = now; /* could not ask: try again after a while */
  arm(m);
}

/* ---- presence ------------------------------------------------------------------- */

enum {
  ST_110 = 1 << 0, ST_201 = 1 << 1, ST_210 = 1 << 2, ST_301 = 1 << 3, ST_303 = 1 << 4,
  ST_307 = 1 << 5, ST_321 = 1 << 6, ST_322 = 1 << 7, ST_332 = 1 << 8, ST_333 = 1 << 9
};

static unsigned status_codes(const xmppuv_stanza_t *x) {
  static const struct {
    const char *code;
    unsigned bit;
  } known[] = {{"110", ST_110}, {"201", ST_201}, {"210", ST_210}, {"301", ST_301},
               {"303", ST_303}, {"307", ST_307}, {"321", ST_321}, {"322", ST_322},
               {"332", ST_332}, {"333", ST_333}};
  unsigned bits = 0;
  for (xmppuv_stanza_t *s = xmppuv_stanza_child(x, "status", NULL); s != NULL;
       s = xmppuv_stanza_next(s, "status", NULL))
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
      if (eq(xmppuv_stanza_attr(s, "code"), known[i].code)) bits |= known[i].bit;
  return bits;
}

static occupant_t *find_occupant(xmppuv_muc_room_t *r, const char *nick) {
  for (occupant_t *o = r->occupants; o != NULL; o = o->next)
    if (eq(o->nick, nick)) return o;
  return NULL;
}

static void unlink_occupant(xmppuv_muc_room_t *r, occupant_t *o) {
  for (occupant_t **pp = &r->occupants; *pp != NULL; pp = &(*pp)->next)
    if (*pp == o) {
      *pp = o->next;
      break;
    }
  free(o->nick);
  free(o->role);
  free(o->affiliation);
  free(o->jid);
  free(o);
}

/* XEP-0045 §10.1.2: accept the default configuration (an instant room). */
static void create_instant(xmppuv_muc_room_t *r) {
  xmppuv_stanza_t *iq = NULL, *q = NULL, *x = NULL;
  int rc = xmppuv_stanza_new("iq", NULL, &iq);
  if (rc == 0) rc = xmppuv_stanza_set_attr(iq, "type", "set");
  if (rc == 0) rc = xmppuv_stanza_set_attr(iq, "to", xmppuv_jid_string(r->jid));
  if (rc == 0) rc = xmppuv_stanza_new_child(iq, "query", XMPPUV_NS_MUC_OWNER, &q);
  if (rc == 0) rc = xmppuv_stanza_new_child(q, "x", NS_DATA, &x);
  if (rc == 0) rc = xmppuv_stanza_set_attr(x, "type", "submit");
  if (rc == 0) (void)xmppuv_client_send_iq(r->muc->c, iq, 0, on_iq_ignored, NULL, NULL);
  xmppuv_stanza_unref(iq);
}

/* Our own presence, or an occupant's, available. Returns non-zero if the
 * app made the room go. */
static int presence_available(xmppuv_muc_room_t *r, xmppuv_stanza_t *pres, const char *nick,
                              const xmppuv_stanza_t *x, unsigned codes) {
  xmppuv_muc_t *m = r->muc;
  /* 110 marks ours; a server that omits it still sends ours from our nick.
   * 210: the room gave us another nick than asked for: it is ours now. */
  int self = (codes & ST_110) != 0 || eq(nick, r->nick);
  if (self && !eq(nick, r->nick) && set_str(&r->nick, nick) != 0) return 0;
  const xmppuv_stanza_t *item = xmppuv_stanza_child(x, "item", NULL);
  occupant_t *o = find_occupant(r, nick);
  if (o == NULL) {
    o = calloc(1, sizeof *o);
    if (o == NULL || (o->nick = xmppuv__im_strdup(nick)) == NULL) {
      free(o);
      return 0;
    }
    o->next = r->occupants;
    r->occupants = o;
  }
  o->stale = 0;
  (void)set_str(&o->role, xmppuv_stanza_attr(item, "role"));
  (void)set_str(&o->affiliation, xmppuv_stanza_attr(item, "affiliation"));
  (void)set_str(&o->jid, xmppuv_stanza_attr(item, "jid"));
  if (emit_occupant(r, o, 1, self, pres)) return 1;
  if (!self) return 0;
  if ((codes & ST_201) != 0 && m->opts.create_instant) create_instant(r);
  if (r->state != XMPPUV_MUC_ROOM_JOINING) return 0;
  r->state = XMPPUV_MUC_ROOM_JOINED;
  r->was_joined = 1;
  r->held = 0;
  r->last_seen_ms = r->last_traffic_ms = now_ms(m);
  /* A rejoin: whoever the room did not list again has gone meanwhile. */
  for (occupant_t *s = r->occupants; s != NULL;) {
    occupant_t *next = s->next;
    if (s->stale) {
      occupant_t copy = *s;
      copy.next = NULL;
      int stop = emit_occupant(r, &copy, 0, 0, NULL);
      unlink_occupant(r, s);
      if (stop) return 1;
    }
    s = next;
  }
  if (emit_joined(r)) return 1;
  arm(m);
  return 0;
}

static xmppuv_muc_left_reason_t left_reason(const xmppuv_muc_room_t *r, unsigned codes,
                                            int destroyed) {
  if (destroyed) return XMPPUV_MUC_LEFT_DESTROYED;
  if (codes & ST_301) return XMPPUV_MUC_LEFT_BANNED;
  if (codes & ST_333) return XMPPUV_MUC_LEFT_ERROR; /* comes with 307 */
  if (codes & ST_307) return XMPPUV_MUC_LEFT_KICKED;
  if (codes & ST_321) return XMPPUV_MUC_LEFT_AFFILIATION;
  if (codes & ST_322) return XMPPUV_MUC_LEFT_MEMBERS_ONLY;
  if (codes & ST_332) return XMPPUV_MUC_LEFT_SHUTDOWN;
  return r->state == XMPPUV_MUC_ROOM_LEAVING ? XMPPUV_MUC_LEFT_SELF : XMPPUV_MUC_LEFT_ERROR;
}

static int presence_unavailable(xmppuv_muc_room_t *r, xmppuv_stanza_t *pres, const char *nick,
                                const xmppuv_stanza_t *x, unsigned codes) {
  const xmppuv_stanza_t *item = xmppuv_stanza_child(x, "item", NULL);
  const xmppuv_stanza_t *destroy = xmppuv_stanza_child(x, "destroy", NULL);
  int self = (codes & ST_110) != 0 || eq(nick, r->nick);
  occupant_t *o = find_occupant(r, nick);
  occupant_t none = {NULL, (char *)nick, NULL, NULL, NULL, 0};
  if (self && (codes & ST_303) != 0 && xmppuv_stanza_attr(item, "nick") != NULL) {
    /* Our nick changed (§7.6): the presence under the new one follows. */
    int stop = emit_occupant(r, o != NULL ? o : &none, 0, 1, pres);
    if (!gone(r) && o != NULL) unlink_occupant(r, o);
    if (stop) return 1;
    (void)set_str(&r->nick, xmppuv_stanza_attr(item, "nick"));
    return 0;
  }
  if (!self) {
    int stop = emit_occupant(r, o != NULL ? o : &none, 0, 0, pres);
    if (!gone(r) && (o = find_occupant(r, nick)) != NULL) unlink_occupant(r, o);
    return stop;
  }
  xmppuv_muc_left_reason_t why = left_reason(r, codes, destroy != NULL);
  const char *text = destroy != NULL ? xmppuv_stanza_child_text(destroy, "reason", NULL)
                                     : xmppuv_stanza_child_text(item, "reason", NULL);
  r->state = XMPPUV_MUC_ROOM_OUT;
  r->pinging = 0;
  occupants_clear(r);
  return emit_left(r, why, text);
}

static int on_presence(xmppuv_client_t *c, xmppuv_stanza_t *pres, void *ud) {
  (void)c;
  xmppuv_muc_t *m = ud;
  xmppuv_jid_t *from = NULL;
  const char *nick = NULL;
  xmppuv_muc_room_t *r = room_of(m, xmppuv_stanza_attr(pres, "from"), &from, &nick);
  if (r == NULL || r->state == XMPPUV_MUC_ROOM_OUT) {
    xmppuv_jid_free(from);
    return XMPPUV_PASS;
  }
  r->last_traffic_ms = now_ms(m);
  const char *type = xmppuv_stanza_attr(pres, "type");
  const xmppuv_stanza_t *x = xmppuv_stanza_child(pres, "x", XMPPUV_NS_MUC_USER);
  unsigned codes = status_codes(x);
  enter(m);
  if (eq(type, "error")) {
    /* An error to our join (from room/nick, or the room's bare JID):
     * §7.2.6-§7.2.11. One in a joined room answers something else (a nick
     * change, a presence update): we are still in. */
    if (r->state == XMPPUV_MUC_ROOM_JOINING && (nick == NULL || eq(nick, r->nick))) {
      const char *text = NULL;
      const char *cond = error_condition(pres, &text);
      r->state = XMPPUV_MUC_ROOM_OUT;
      occupants_clear(r);
      (void)emit_join_failed(r, cond, text);
    }
  } else if (nick != NULL && eq(type, "unavailable")) {
    (void)presence_unavailable(r, pres, nick, x, codes);
  } else if (nick != NULL && type == NULL) {
    (void)presence_available(r, pres, nick, x, codes);
  }
  xmppuv_jid_free(from);
  (void)leave(m);
  return XMPPUV_HANDLED;
}

/* ---- messages ------------------------------------------------------------------- */

static int seen_before(const xmppuv_muc_room_t *r, const char *id) {
  for (size_t i = 0; i < SEEN_IDS; i++)
    if (eq(r->seen[i], id)) return 1;
  return 0;
}

static void remember(xmppuv_muc_room_t *r, const char *id) {
  char *copy = xmppuv__im_strdup(id);
  if (copy == NULL) return;
  free(r->seen[r->seen_next]);
  r->seen[r->seen_next] = copy;
  r->seen_next = (r->seen_next + 1) % SEEN_IDS;
}

static int on_message(xmppuv_client_t *c, xmppuv_stanza_t *msg, void *ud) {
  (void)c;
  xmppuv_muc_t *m = ud;
  xmppuv_jid_t *from = NULL;
  const char *nick = NULL;
  xmppuv_muc_room_t *r = room_of(m, xmppuv_stanza_attr(msg, "from"), &from, &nick);
  /* Only a room we are in speaks as a room: anyone can send a groupchat. */
  int in = r != NULL && (r->state == XMPPUV_MUC_ROOM_JOINED ||
                         r->state == XMPPUV_MUC_ROOM_LEAVING ||
                         (r->state == XMPPUV_MUC_ROOM_JOINING && r->rejoining));
  if (!in) {
    xmppuv_jid_free(from);
    return XMPPUV_PASS;
  }
  uint64_t now = now_ms(m);
  r->last_traffic_ms = now;
  enter(m);
  const xmppuv_stanza_t *subject = xmppuv_stanza_child(msg, "subject", NULL);
  if (subject != NULL && xmppuv_stanza_child(msg, "body", NULL) == NULL) {
    /* §8.1: a subject without a body; it ends the history (§7.2.15). */
    const char *text = xmppuv_stanza_text(subject, NULL);
    r->in_history = 0;
    (void)set_str(&r->subject, text != NULL ? text : "");
    if (m->cbs.subject != NULL) m->cbs.subject(m, r, nick, r->subject, m->ud);
  } else {
    const char *room = xmppuv_jid_string(r->jid);
    const xmppuv_stanza_t *delay = xmppuv_stanza_child(msg, "delay", NS_DELAY);
    int history = 0;
    if (delay != NULL) {
      xmppuv_jid_t *by = NULL;
      history = r->in_history ||
                (xmppuv_jid_parse(xmppuv_stanza_attr(delay, "from"), &by) == 0 &&
                 xmppuv_jid_equal(by, r->jid));
      xmppuv_jid_free(by);
    }
    const char *sid = xmppuv_stanza_id_of(msg, room);
    /* Already delivered: history sent again by a rejoin. */
    if (!(history && sid != NULL && seen_before(r, sid))) {
      if (sid != NULL) remember(r, sid);
      r->last_seen_ms = now;
      if (m->cbs.message != NULL) {
        xmppuv_muc_message_t mm = {nick, msg, history, sid,
                                   xmppuv_stanza_attr(delay, "stamp")};
        m->cbs.message(m, r, &mm, m->ud);
      }
    }
  }
  xmppuv_jid_free(from);
  (void)leave(m);
  return XMPPUV_HANDLED;
}

/* ---- sessions ------------------------------------------------------------------- */

/* Any stanza from a room is traffic: no self-ping needed for a while. */
static void on_stanza(xmppuv_client_t *c, xmppuv_stanza_t *s, int handled, void *ud) {
  (void)c, (void)handled;
  xmppuv_muc_t *m = ud;
  xmppuv_jid_t *from = NULL;
  const char *nick = NULL;
  xmppuv_muc_room_t *r = room_of(m, xmppuv_stanza_attr(s, "from"), &from, &nick);
  if (r != NULL) r->last_traffic_ms = now_ms(m);
  xmppuv_jid_free(from);
}

/* A new session: the server forgot our rooms with the old one. */
static void on_online(xmppuv_client_t *c, const xmppuv_jid_t *jid, void *ud) {
  (void)c, (void)jid;
  xmppuv_muc_t *m = ud;
  enter(m);
  for (xmppuv_muc_room_t *r = m->rooms; r != NULL && !m->doomed; r = r->next) {
    if (r->forgotten) continue;
    if (r->state == XMPPUV_MUC_ROOM_LEAVING) {
      r->state = XMPPUV_MUC_ROOM_OUT;
      occupants_clear(r);
      (void)emit_left(r, XMPPUV_MUC_LEFT_SELF, NULL);
    } else if (r->state == XMPPUV_MUC_ROOM_JOINING && r->held) {
      r->held = 0; /* the join goes out with this session */
    } else if (r->state == XMPPUV_MUC_ROOM_JOINING || r->state == XMPPUV_MUC_ROOM_JOINED) {
      (void)rejoin(r);
    }
  }
  (void)leave(m);
}

/* The session continued: the rooms did too. */
static void on_resumed(xmppuv_client_t *c, void *ud) {
  (void)c;
  xmppuv_muc_t *m = ud;
  for (xmppuv_muc_room_t *r = m->rooms; r != NULL; r = r->next) r->held = 0;
}

/* ---- API -------------------------------------------------------------------------- */

int xmppuv_muc_new(xmppuv_client_t *c, xmppuv_disco_t *disco, const xmppuv_muc_options_t *opts,
                   const xmppuv_muc_callbacks_t *cbs, void *user_data, xmppuv_muc_t **out) {
  if (out != NULL) *out = NULL;
  if (c == NULL || out == NULL) return XMPPUV_EINVAL;
  if (opts != NULL &&
      (opts->struct_size < OPTIONS_MIN_SIZE || opts->struct_size > sizeof(xmppuv_muc_options_t)))
    return XMPPUV_EINVAL;
  if (cbs != NULL &&
      (cbs->struct_size < CALLBACKS_MIN_SIZE || cbs->struct_size > sizeof(xmppuv_muc_callbacks_t)))
    return XMPPUV_EINVAL;
  if (xmppuv_client_loop(c) == NULL) return XMPPUV_EINVAL;
  xmppuv_muc_t *m = calloc(1, sizeof *m);
  if (m == NULL) return XMPPUV_ENOMEM;
  m->c = c;
  m->ud = user_data;
  xmppuv_muc_options_init(&m->opts);
  if (opts != NULL) memcpy(&m->opts, opts, opts->struct_size);
  m->opts.struct_size = sizeof m->opts;
  if (cbs != NULL) memcpy(&m->cbs, cbs, cbs->struct_size);
  m->cbs.struct_size = sizeof m->cbs;
  int rc = 0;
  m->timer = malloc(sizeof *m->timer);
  if (m->timer == NULL) {
    free(m);
    return XMPPUV_ENOMEM;
  }
  rc = uv_timer_init(xmppuv_client_loop(c), m->timer);
  if (rc != 0) {
    free(m->timer);
    free(m);
    return rc;
  }
  m->timer->data = m;
  uv_unref((uv_handle_t *)m->timer); /* never keeps the loop alive alone */

  xmppuv_client_callbacks_t lc;
  xmppuv_client_callbacks_init(&lc);
  lc.online = on_online;
  lc.resumed = on_resumed;
  lc.stanza = on_stanza;
  lc.closed = on_closed;
  rc = xmppuv_client_listener_add(c, &lc, m, &m->listener);
  if (rc == 0)
    rc = xmppuv_client_handler_add(c, "presence", NULL, NULL, on_presence, m, &m->h_presence);
  if (rc == 0)
    rc = xmppuv_client_handler_add(c, "message", NULL, "groupchat", on_message, m,
                                   &m->h_message);
  if (rc == 0 && disco != NULL) rc = xmppuv_disco_add_feature(disco, XMPPUV_NS_MUC);
  if (rc != 0) {
    xmppuv_muc_free(m);
    return rc;
  }
  *out = m;
  return 0;
}

int xmppuv_muc_join(xmppuv_muc_t *m, const char *room, const char *nick, const char *password,
                    const xmppuv_muc_history_t *history, xmppuv_muc_room_t **out) {
  if (out != NULL) *out = NULL;
  if (m == NULL || room == NULL || nick == NULL || m->doomed) return XMPPUV_EINVAL;
  xmppuv_jid_t *j = NULL, *full = NULL;
  int rc = xmppuv_jid_parse(room, &j);
  if (rc != 0) return rc;
  if (!xmppuv_jid_is_bare(j)) {
    xmppuv_jid_free(j);
    return XMPPUV_EJID;
  }
  /* The nick must make a valid occupant JID; keep its canonical form. */
  rc = xmppuv_jid_new(xmppuv_jid_local(j), xmppuv_jid_domain(j), nick, &full);
  if (rc != 0) {
    xmppuv_jid_free(j);
    return rc;
  }
  xmppuv_muc_room_t *r = find_room(m, j);
  int fresh = r == NULL;
  if (r != NULL && r->state != XMPPUV_MUC_ROOM_OUT) {
    xmppuv_jid_free(j);
    xmppuv_jid_free(full);
    return XMPPUV_ESTATE;
  }
  if (fresh) {
    r = calloc(1, sizeof *r);
    if (r == NULL) {
      xmppuv_jid_free(j);
      xmppuv_jid_free(full);
      return XMPPUV_ENOMEM;
    }
    r->muc = m;
    r->serial = ++m->next_serial;
    r->jid = j;
    j = NULL;
  }
  xmppuv_jid_free(j);
  rc = set_str(&r->nick, xmppuv_jid_resource(full));
  xmppuv_jid_free(full);
  if (rc == 0) rc = set_str(&r->password, password);
  r->h_maxstanzas = history != NULL ? history->maxstanzas : -1;
  r->h_seconds = history != NULL ? history->seconds : 0;
  if (rc == 0) rc = set_str(&r->h_since, history != NULL ? history->since : NULL);
  r->was_joined = 0;
  if (rc == 0) rc = send_join(r, 0);
  if (rc != 0) {
    if (fresh) room_free(r);
    return rc;
  }
  if (fresh) {
    r->next = m->rooms;
    m->rooms = r;
  }
  if (out != NULL) *out = r;
  return 0;
}

int xmppuv_muc_leave(xmppuv_muc_room_t *r, const char *status) {
  if (r == NULL || r->forgotten) return XMPPUV_EINVAL;
  if (r->state != XMPPUV_MUC_ROOM_JOINED && r->state != XMPPUV_MUC_ROOM_JOINING)
    return XMPPUV_ESTATE;
  int rc = send_unavailable(r, status);
  if (rc == 0) r->state = XMPPUV_MUC_ROOM_LEAVING;
  return rc;
}

void xmppuv_muc_forget(xmppuv_muc_room_t *r) {
  if (r == NULL || r->forgotten) return;
  xmppuv_muc_t *m = r->muc;
  if (!m->client_gone &&
      (r->state == XMPPUV_MUC_ROOM_JOINED || r->state == XMPPUV_MUC_ROOM_JOINING))
    (void)send_unavailable(r, NULL);
  r->forgotten = 1;
  r->state = XMPPUV_MUC_ROOM_OUT;
  if (m->depth == 0) sweep(m);
}

static int check_joined(const xmppuv_muc_room_t *r) {
  if (r == NULL || r->forgotten) return XMPPUV_EINVAL;
  return r->state == XMPPUV_MUC_ROOM_JOINED ? 0 : XMPPUV_ESTATE;
}

int xmppuv_muc_send_stanza(xmppuv_muc_room_t *r, xmppuv_stanza_t *message) {
  int rc = check_joined(r);
  if (rc != 0) return rc;
  if (!eq(xmppuv_stanza_name(message), "message")) return XMPPUV_EINVAL;
  rc = xmppuv_stanza_set_attr(message, "to", xmppuv_jid_string(r->jid));
  if (rc == 0) rc = xmppuv_stanza_set_attr(message, "type", "groupchat");
  if (rc == 0) rc = xmppuv_client_send(r->muc->c, message);
  return rc;
}

int xmppuv_muc_send(xmppuv_muc_room_t *r, const char *body) {
  int rc = check_joined(r);
  if (rc != 0) return rc;
  if (body == NULL) return XMPPUV_EINVAL;
  xmppuv_stanza_t *msg = NULL;
  rc = xmppuv_message_new(xmppuv_jid_string(r->jid), "groupchat", body, &msg);
  if (rc == 0) rc = xmppuv_client_send(r->muc->c, msg);
  xmppuv_stanza_unref(msg);
  return rc;
}

int xmppuv_muc_set_subject(xmppuv_muc_room_t *r, const char *subject) {
  int rc = check_joined(r);
  if (rc != 0) return rc;
  if (subject == NULL) return XMPPUV_EINVAL;
  xmppuv_stanza_t *msg = NULL, *s = NULL;
  rc = xmppuv_message_new(xmppuv_jid_string(r->jid), "groupchat", NULL, &msg);
  if (rc == 0) rc = xmppuv_stanza_new_child(msg, "subject", NULL, &s);
  if (rc == 0 && *subject != '\0') rc = xmppuv_stanza_add_text(s, subject, strlen(subject));
  if (rc == 0) rc = xmppuv_client_send_tracked(r->muc->c, msg, on_sent, NULL);
  xmppuv_stanza_unref(msg);
  return rc;
}

const char *xmppuv_muc_room_jid(const xmppuv_muc_room_t *r) {
  return r != NULL ? xmppuv_jid_string(r->jid) : NULL;
}

const char *xmppuv_muc_room_nick(const xmppuv_muc_room_t *r) {
  return r != NULL ? r->nick : NULL;
}

xmppuv_muc_room_state_t xmppuv_muc_room_state(const xmppuv_muc_room_t *r) {
  return r != NULL ? r->state : XMPPUV_MUC_ROOM_OUT;
}

const char *xmppuv_muc_room_subject(const xmppuv_muc_room_t *r) {
  return r != NULL ? r->subject : NULL;
}

size_t xmppuv_muc_room_occupant_count(const xmppuv_muc_room_t *r) {
  size_t n = 0;
  for (const occupant_t *o = r != NULL ? r->occupants : NULL; o != NULL; o = o->next) n++;
  return n;
}

int xmppuv_muc_room_occupant_at(const xmppuv_muc_room_t *r, size_t i, xmppuv_muc_occupant_t *out) {
  if (r == NULL || out == NULL) return XMPPUV_EINVAL;
  const occupant_t *o = r->occupants;
  while (o != NULL && i-- > 0) o = o->next;
  if (o == NULL) return XMPPUV_EINVAL;
  out->nick = o->nick;
  out->available = 1;
  out->role = o->role != NULL ? o->role : "none";
  out->affiliation = o->affiliation != NULL ? o->affiliation : "none";
  out->jid = o->jid;
  out->is_self = eq(o->nick, r->nick);
  out->presence = NULL;
  return 0;
}

void xmppuv_muc_room_set_user_data(xmppuv_muc_room_t *r, void *user_data) {
  if (r != NULL) r->ud = user_data;
}

void *xmppuv_muc_room_user_data(const xmppuv_muc_room_t *r) { return r != NULL ? r->ud : NULL; }

xmppuv_muc_t *xmppuv_muc_room_module(const xmppuv_muc_room_t *r) {
  return r != NULL ? r->muc : NULL;
}

xmppuv_muc_room_t *xmppuv_muc_room_find(const xmppuv_muc_t *m, const char *room) {
  xmppuv_jid_t *j = NULL;
  if (m == NULL || room == NULL || xmppuv_jid_parse(room, &j) != 0) return NULL;
  xmppuv_muc_room_t *r = xmppuv_jid_is_bare(j) ? find_room(m, j) : NULL;
  xmppuv_jid_free(j);
  return r;
}
