#include "engine/iq.h"

#include <string.h>

#include "util/alloc.h"

struct xmppuv__iq_pending {
  xmppuv__iq_pending_t *next;
  uint64_t handle;
  uint64_t deadline; /* 0: cancelled, due at once */
  xmppuv_iq_cb cb;
  void *user_data;
  char *id;
  xmppuv_jid_t *to; /* NULL: our own account */
};

void xmppuv__iq_init(xmppuv__iq_tracker_t *t, xmppuv__iq_cb done, void *owner) {
  memset(t, 0, sizeof *t);
  t->next_handle = 1;
  t->done = done;
  t->owner = owner;
}

static void free_pending(xmppuv__iq_pending_t *p) {
  xmppuv__free(p->id);
  xmppuv_jid_free(p->to);
  xmppuv__free(p);
}

size_t xmppuv__iq_count(const xmppuv__iq_tracker_t *t) {
  size_t n = 0;
  for (const xmppuv__iq_pending_t *p = t->head; p != NULL; p = p->next) n++;
  return n;
}

void xmppuv__iq_free(xmppuv__iq_tracker_t *t) {
  while (t->head != NULL) {
    xmppuv__iq_pending_t *p = t->head;
    t->head = p->next;
    free_pending(p);
  }
  t->tail = NULL;
}

int xmppuv__iq_track(xmppuv__iq_tracker_t *t, const char *id, const char *to,
                     uint64_t deadline, xmppuv_iq_cb cb, void *user_data,
                     uint64_t *handle) {
  xmppuv__iq_pending_t *p = xmppuv__calloc(1, sizeof *p);
  if (p == NULL) return XMPPUV_ENOMEM;
  p->id = xmppuv__strdup(id);
  if (p->id == NULL) {
    free_pending(p);
    return XMPPUV_ENOMEM;
  }
  if (to != NULL) {
    int rc = xmppuv_jid_parse(to, &p->to);
    if (rc != 0) {
      free_pending(p);
      return rc == XMPPUV_ENOMEM ? rc : XMPPUV_EINVAL;
    }
  }
  p->handle = t->next_handle++;
  p->deadline = deadline;
  p->cb = cb;
  p->user_data = user_data;
  if (t->tail != NULL)
    t->tail->next = p;
  else
    t->head = p;
  t->tail = p;
  if (handle != NULL) *handle = p->handle;
  return 0;
}

static void unlink_pending(xmppuv__iq_tracker_t *t, xmppuv__iq_pending_t *prev,
                           xmppuv__iq_pending_t *p) {
  if (prev != NULL)
    prev->next = p->next;
  else
    t->head = p->next;
  if (t->tail == p) t->tail = prev;
  p->next = NULL;
}

/* Unlink first, then call: the callback may track, cancel or fail others. */
static void complete(xmppuv__iq_tracker_t *t, xmppuv__iq_pending_t *prev,
                     xmppuv__iq_pending_t *p, int status, xmppuv_stanza_t *reply) {
  unlink_pending(t, prev, p);
  xmppuv_iq_cb cb = p->cb;
  void *ud = p->user_data;
  free_pending(p);
  t->done(t->owner, cb, ud, status, reply);
}

void xmppuv__iq_untrack(xmppuv__iq_tracker_t *t, uint64_t handle) {
  xmppuv__iq_pending_t *prev = NULL;
  for (xmppuv__iq_pending_t *p = t->head; p != NULL; prev = p, p = p->next) {
    if (p->handle != handle) continue;
    unlink_pending(t, prev, p);
    free_pending(p);
    return;
  }
}

/* RFC 6120 §8.1.2.1 and §10.1: a reply counts only from the entity asked;
 * a request without 'to' went to our own account, which may answer with no
 * 'from', or from our bare JID, full JID or domain. */
static int from_matches(const xmppuv__iq_pending_t *p, const char *from,
                        const xmppuv_jid_t *own) {
  if (p->to == NULL || (own != NULL && xmppuv_jid_equal(p->to, own) &&
                        xmppuv_jid_is_bare(p->to))) {
    if (from == NULL) return 1;
    xmppuv_jid_t *f;
    if (xmppuv_jid_parse(from, &f) != 0) return 0;
    int ok = own != NULL &&
             (xmppuv_jid_bare_equal(f, own) ||
              (xmppuv_jid_local(f) == NULL && xmppuv_jid_resource(f) == NULL &&
               strcmp(xmppuv_jid_domain(f), xmppuv_jid_domain(own)) == 0));
    xmppuv_jid_free(f);
    return ok;
  }
  if (from == NULL) {
    /* A request to our own bare JID may be answered without 'from'. */
    return own != NULL && xmppuv_jid_is_bare(p->to) && xmppuv_jid_bare_equal(p->to, own);
  }
  xmppuv_jid_t *f;
  if (xmppuv_jid_parse(from, &f) != 0) return 0;
  int ok = xmppuv_jid_equal(f, p->to);
  xmppuv_jid_free(f);
  return ok;
}

int xmppuv__iq_match(xmppuv__iq_tracker_t *t, xmppuv_stanza_t *reply,
                     const xmppuv_jid_t *own_jid) {
  const char *id = xmppuv_stanza_attr(reply, "id");
  const char *type = xmppuv_stanza_attr(reply, "type");
  if (id == NULL || type == NULL) return 0;
  int is_error = strcmp(type, "error") == 0;
  if (!is_error && strcmp(type, "result") != 0) return 0;
  const char *from = xmppuv_stanza_attr(reply, "from");
  xmppuv__iq_pending_t *prev = NULL;
  for (xmppuv__iq_pending_t *p = t->head; p != NULL; prev = p, p = p->next) {
    if (p->deadline == 0 || strcmp(p->id, id) != 0) continue;
    if (!from_matches(p, from, own_jid)) continue;
    complete(t, prev, p, is_error ? XMPPUV_EIQERROR : 0, reply);
    return 1;
  }
  return 0;
}

int xmppuv__iq_cancel(xmppuv__iq_tracker_t *t, uint64_t handle) {
  for (xmppuv__iq_pending_t *p = t->head; p != NULL; p = p->next) {
    if (p->handle == handle && p->deadline != 0) {
      p->deadline = 0;
      return 0;
    }
  }
  return XMPPUV_EINVAL;
}

void xmppuv__iq_expire(xmppuv__iq_tracker_t *t, uint64_t now) {
  /* Restart from the head after each call: callbacks may change the list. */
  for (;;) {
    xmppuv__iq_pending_t *prev = NULL, *p = t->head;
    while (p != NULL && !(p->deadline == 0 || p->deadline <= now)) {
      prev = p;
      p = p->next;
    }
    if (p == NULL) return;
    complete(t, prev, p, p->deadline == 0 ? XMPPUV_ECANCELED : XMPPUV_ETIMEDOUT, NULL);
  }
}

uint64_t xmppuv__iq_deadline(const xmppuv__iq_tracker_t *t) {
  uint64_t d = XMPPUV__NO_DEADLINE;
  for (const xmppuv__iq_pending_t *p = t->head; p != NULL; p = p->next)
    if (p->deadline < d) d = p->deadline;
  return d;
}

void xmppuv__iq_fail_all(xmppuv__iq_tracker_t *t, int status) {
  /* Only those pending now: a callback that sends a new request keeps it. */
  xmppuv__iq_fail_before(t, t->next_handle, status);
}

void xmppuv__iq_fail_before(xmppuv__iq_tracker_t *t, uint64_t bound, int status) {
  /* Handles grow in list order: the ones below bound are a prefix. */
  while (t->head != NULL && t->head->handle < bound)
    complete(t, NULL, t->head, status, NULL);
}
