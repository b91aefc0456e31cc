/* xmppuv chat layer: Message Archive Management (XEP-0313, urn:xmpp:mam:2)
 * with Result Set Management paging (XEP-0059).
 * Included by <xmppuv.h>; do not include this file directly.
 *
 * A query asks an archive (the account's own, or a room's) for messages by
 * time, by correspondent, or after a known archive id, and goes page by
 * page: one callback per archived message, in archive order, and one at
 * the end saying whether the archive was read to its end and the last id
 * seen (what the app keeps to catch up from next time).
 *
 * Security (XEP-0313 §"Security"): a result is taken only from the archive
 * that was queried (the account's own: no 'from', or its bare JID; a
 * room: the room's bare JID) and only for a query in flight (its
 * queryid). Anything else is not a result: it is dropped and reported to
 * `spoofed` (so a stranger cannot slip messages into the history the app
 * shows). Released with the client, or by xmppuv_mam_free(). */
#ifndef XMPPUV_IM_MAM_H
#define XMPPUV_IM_MAM_H

#include <stddef.h>
#include <stdint.h>

#include "../client.h"
#include "disco.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XMPPUV_NS_MAM "urn:xmpp:mam:2"
#define XMPPUV_NS_RSM "http://jabber.org/protocol/rsm"

typedef struct xmppuv_mam xmppuv_mam_t;

/* One archived message. Borrowed for the callback (take a reference to
 * keep the message). */
typedef struct xmppuv_mam_message {
  const char *archive;       /* the archive's JID (our bare JID for our own) */
  const char *id;            /* its archive id (the stanza-id it had live) */
  const char *stamp;         /* when the archive stored it (XEP-0203), or NULL */
  xmppuv_stanza_t *message;  /* the archived message itself */
} xmppuv_mam_message_t;

typedef struct xmppuv_mam_callbacks {
  size_t struct_size; /* sizeof(xmppuv_mam_callbacks_t) */
  /* A message that claimed to be an archive result and is not (wrong
   * sender, or no such query in flight): dropped. */
  void (*spoofed)(xmppuv_mam_t *m, xmppuv_stanza_t *message, void *user_data);
} xmppuv_mam_callbacks_t;

/* disco (NULL: none) gets urn:xmpp:mam:2 registered. cbs may be NULL.
 * Errors: XMPPUV_EINVAL, XMPPUV_ECLOSED, XMPPUV_ENOMEM. */
XMPPUV_EXTERN int xmppuv_mam_new(xmppuv_client_t *c, xmppuv_disco_t *disco,
                                 const xmppuv_mam_callbacks_t *cbs, void *user_data,
                                 xmppuv_mam_t **out);
/* Queries in flight end with XMPPUV_ECANCELED first. NULL: no-op. */
XMPPUV_EXTERN void xmppuv_mam_free(xmppuv_mam_t *m);

/* What to ask for; every field optional (zero: not used). */
typedef struct xmppuv_mam_filter {
  const char *archive;  /* NULL: the account's own; else a room's bare JID */
  const char *with;     /* messages with this JID only */
  const char *start;    /* XEP-0082 date-time: stored at or after */
  const char *end;      /* stored at or before */
  const char *after_id; /* only messages after this archive id (catching up) */
  unsigned page_size;   /* messages per page (RSM max) [0: 50] */
  unsigned max_pages;   /* stop after this many pages [0: until the end] */
} xmppuv_mam_filter_t;

typedef void (*xmppuv_mam_message_cb)(xmppuv_mam_t *m, const xmppuv_mam_message_t *msg,
                                      void *user_data);
/* The end: status 0 (complete: the archive was read to its end; else
 * max_pages stopped it), or an error (XMPPUV_EIQERROR with the server's
 * condition text in reason, XMPPUV_ETIMEDOUT, XMPPUV_ECANCELED,
 * XMPPUV_ESMFAILED, XMPPUV_EPROTO for an answer that is not MAM's).
 * last_id: the last archive id delivered (NULL if none): catch up from it
 * next time. count: messages delivered. */
typedef void (*xmppuv_mam_done_cb)(xmppuv_mam_t *m, int status, int complete,
                                   const char *last_id, unsigned count, void *user_data);

/* Run a query. Exactly one done callback unless this returns an error
 * (XMPPUV_EINVAL, or what xmppuv_client_send_iq() returns). */
XMPPUV_EXTERN int xmppuv_mam_query(xmppuv_mam_t *m, const xmppuv_mam_filter_t *filter,
                                   xmppuv_mam_message_cb on_message, xmppuv_mam_done_cb done,
                                   void *user_data);

/* Catch up after a new session: the account's archive after last_id (the
 * last id the app kept; NULL: the whole archive), to its end. */
XMPPUV_EXTERN int xmppuv_mam_catch_up(xmppuv_mam_t *m, const char *last_id,
                                      xmppuv_mam_message_cb on_message, xmppuv_mam_done_cb done,
                                      void *user_data);

#ifdef __cplusplus
}
#endif

#endif
