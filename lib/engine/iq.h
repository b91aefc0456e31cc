/* Outstanding iq requests: matching replies to requests (RFC 6120 §8.2.3:
 * by id, and from the entity the request went to), timeouts, cancellation.
 * No I/O: the client passes time in and arms its timer at the deadline. */
#ifndef XMPPUV_IQ_H
#define XMPPUV_IQ_H

#include <stdint.h>

#include "util/clock.h"
#include "xmppuv.h"

typedef struct xmppuv__iq_pending xmppuv__iq_pending_t;

/* Called exactly once per request: status 0 (result), XMPPUV_EIQERROR
 * (error reply), or with reply NULL XMPPUV_ETIMEDOUT, XMPPUV_ECANCELED,
 * XMPPUV_ESMFAILED. */
typedef void (*xmppuv__iq_cb)(void *owner, xmppuv_iq_cb cb, void *user_data,
                              int status, xmppuv_stanza_t *reply);

typedef struct xmppuv__iq_tracker {
  xmppuv__iq_pending_t *head; /* in the order they were sent */
  xmppuv__iq_pending_t *tail;
  uint64_t next_handle;
  xmppuv__iq_cb done;
  void *owner;
} xmppuv__iq_tracker_t;

void xmppuv__iq_init(xmppuv__iq_tracker_t *t, xmppuv__iq_cb done, void *owner);
/* Requests waiting for an answer. */
size_t xmppuv__iq_count(const xmppuv__iq_tracker_t *t);
/* Forget every request without calling any (the owner is being freed). */
void xmppuv__iq_free(xmppuv__iq_tracker_t *t);

/* Track a request. to: the request's 'to' (NULL: our own account, which
 * answers without 'from', or from our bare JID or domain). Copies strings.
 * 0 or XMPPUV_ENOMEM. */
int xmppuv__iq_track(xmppuv__iq_tracker_t *t, const char *id, const char *to,
                     uint64_t deadline, xmppuv_iq_cb cb, void *user_data,
                     uint64_t *handle);
/* Forget a request without calling it (its send failed). */
void xmppuv__iq_untrack(xmppuv__iq_tracker_t *t, uint64_t handle);

/* An inbound iq of type result or error: if it answers a request, the
 * request completes and 1 is returned. own_jid: our bound full JID. */
int xmppuv__iq_match(xmppuv__iq_tracker_t *t, xmppuv_stanza_t *reply,
                     const xmppuv_jid_t *own_jid);

/* Complete (with XMPPUV_ECANCELED) at the next xmppuv__iq_expire(). */
int xmppuv__iq_cancel(xmppuv__iq_tracker_t *t, uint64_t handle);

/* Complete every request whose deadline has passed (XMPPUV_ETIMEDOUT), and
 * cancelled ones. */
void xmppuv__iq_expire(xmppuv__iq_tracker_t *t, uint64_t now);
uint64_t xmppuv__iq_deadline(const xmppuv__iq_tracker_t *t);

/* Complete every request with status. */
void xmppuv__iq_fail_all(xmppuv__iq_tracker_t *t, int status);
/* Complete, with status, every request tracked before t->next_handle was
 * `bound` (those whose handle is below it); later ones stay. */
void xmppuv__iq_fail_before(xmppuv__iq_tracker_t *t, uint64_t bound, int status);

#endif
