/* xmppuv chat layer: Multi-User Chat (XEP-0045) occupant side, with
 * self-ping (XEP-0410) and history de-duplication by stanza-id (XEP-0359).
 * Included by <xmppuv.h>; do not include this file directly.
 *
 * A room is joined by sending presence to room@service/nick; the module
 * follows the room's presence (occupants, our own nick as the room gives
 * it, kicks and bans) and its groupchat messages, and keeps the rooms
 * joined across connections:
 *   - after a new session (`online`) every room joined (or being joined)
 *     is joined again: the server forgot us with the old session. History
 *     is asked for from the last message seen in the room on (as
 *     <history seconds/>, counted on the loop's monotonic clock, so the
 *     clocks of client and server need not agree), or none if the options
 *     say so; a history message whose stanza-id (by the room) was already
 *     delivered is not delivered again. After a resumption (`resumed`)
 *     nothing is sent: the session and its rooms continued. The app does
 *     not join again itself (a join of a room joined is XMPPUV_ESTATE).
 *   - XEP-0410: a room silent for self_ping_interval_ms is pinged at our
 *     own occupant JID; an answer that says we are no longer in the room
 *     makes the module join it again (§"Interpreting responses").
 *
 * Security: only messages of type groupchat whose sender's bare JID is a
 * room this module has joined are room messages; others are left to the
 * app's handlers, never reported as a room's. A message's stanza-id (by
 * the room) and its history mark are the room's word: a room that does
 * not strip what occupants put in their messages (one that does not
 * announce urn:xmpp:sid:0, XEP-0359 §6) lets an occupant forge them; the
 * worst they do then is hide their own message as a duplicate.
 *
 * Rooms (xmppuv_muc_room_t) belong to the module: valid until
 * xmppuv_muc_forget() or until the module is freed, also after `left` and
 * `join_failed` (such a room may be joined again with xmppuv_muc_join()).
 *
 * Released with its client (the `closed` event), or earlier with
 * xmppuv_muc_free(). Everything runs on the client's loop. */
#ifndef XMPPUV_IM_MUC_H
#define XMPPUV_IM_MUC_H

#include <stddef.h>

#include "../client.h"
#include "disco.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XMPPUV_NS_MUC "http://jabber.org/protocol/muc"
#define XMPPUV_NS_MUC_USER "http://jabber.org/protocol/muc#user"
#define XMPPUV_NS_MUC_OWNER "http://jabber.org/protocol/muc#owner"

typedef struct xmppuv_muc xmppuv_muc_t;
typedef struct xmppuv_muc_room xmppuv_muc_room_t;

/* ---- options and callbacks ------------------------------------------------ */

/* What a rejoin asks the room for. */
typedef enum {
  XMPPUV_MUC_REJOIN_SINCE_LAST = 0, /* everything since the last message seen */
  XMPPUV_MUC_REJOIN_NO_HISTORY      /* none (<history maxstanzas='0'/>) */
} xmppuv_muc_rejoin_history_t;

/* Initialize with xmppuv_muc_options_init(); defaults in brackets. New
 * fields are only ever added at the end. */
typedef struct xmppuv_muc_options {
  size_t struct_size; /* set by the init */
  /* XEP-0410 self-ping after this long without a stanza from a joined
   * room [300000]; 0 = off. */
  unsigned self_ping_interval_ms;
  xmppuv_muc_rejoin_history_t rejoin_history; /* [XMPPUV_MUC_REJOIN_SINCE_LAST] */
  /* A room our join created (status 201) is accepted as an instant room
   * (XEP-0045 §10.1.2: an empty submitted form), so it unlocks [1]. */
  int create_instant;
} xmppuv_muc_options_t;

#define xmppuv_muc_options_init(opts) \
  xmppuv_muc_options_init_sized((opts), sizeof(xmppuv_muc_options_t))
XMPPUV_EXTERN void xmppuv_muc_options_init_sized(xmppuv_muc_options_t *opts, size_t struct_size);

/* One occupant as its presence says. Borrowed for the callback. */
typedef struct xmppuv_muc_occupant {
  const char *nick;        /* the occupant's nick (the resource of its JID) */
  int available;           /* 1: present (joined or updated); 0: gone */
  const char *role;        /* "moderator", "participant", "visitor", "none" */
  const char *affiliation; /* "owner", "admin", "member", "outcast", "none" */
  const char *jid;         /* the real JID when the room shows it, else NULL */
  int is_self;             /* this is us */
  xmppuv_stanza_t *presence; /* the presence itself (NULL for an occupant
                                dropped because a rejoin did not list it) */
} xmppuv_muc_occupant_t;

/* One room message. Borrowed for the callback (take a reference to keep
 * the stanza). */
typedef struct xmppuv_muc_message {
  const char *from_nick;     /* the sender's nick; NULL: the room itself */
  xmppuv_stanza_t *message;  /* the message */
  int is_history;            /* discussion history sent on joining: it has a
                                <delay/> (XEP-0203) and came before the
                                room's subject, or its delay is the room's */
  const char *stanza_id;     /* <stanza-id by=room> (XEP-0359), or NULL */
  const char *stamp;         /* the delay's stamp, or NULL */
} xmppuv_muc_message_t;

/* Why we are out of a room. */
typedef enum {
  XMPPUV_MUC_LEFT_SELF = 0,    /* we left (xmppuv_muc_leave) */
  XMPPUV_MUC_LEFT_KICKED,      /* 307 */
  XMPPUV_MUC_LEFT_BANNED,      /* 301 */
  XMPPUV_MUC_LEFT_AFFILIATION, /* 321: affiliation changed */
  XMPPUV_MUC_LEFT_MEMBERS_ONLY,/* 322: the room became members-only */
  XMPPUV_MUC_LEFT_SHUTDOWN,    /* 332: the service is shutting down */
  XMPPUV_MUC_LEFT_ERROR,       /* 333 (a technical problem), or another
                                  removal the room did not explain */
  XMPPUV_MUC_LEFT_DESTROYED    /* the room was destroyed (<destroy/>) */
} xmppuv_muc_left_reason_t;

/* Every callback may be NULL. Initialize with xmppuv_muc_callbacks_init(),
 * or statically with .struct_size = sizeof(xmppuv_muc_callbacks_t). New
 * callbacks are only ever added at the end. Strings are borrowed for the
 * call. */
typedef struct xmppuv_muc_callbacks {
  size_t struct_size;
  /* We are in the room, as nick (the room's choice: it may differ from the
   * one asked for, XEP-0045 status 210). Also after every rejoin. */
  void (*joined)(xmppuv_muc_t *muc, xmppuv_muc_room_t *room, const char *nick, void *user_data);
  /* The room refused the join (or a rejoin): condition is the stanza error
   * ("conflict": nick in use; "not-authorized": password;
   * "registration-required": members only; "forbidden": banned;
   * "item-not-found" / "not-allowed": locked or not created; ...), text
   * the server's text or NULL. The room is out (it is not retried). */
  void (*join_failed)(xmppuv_muc_t *muc, xmppuv_muc_room_t *room, const char *condition,
                      const char *text, void *user_data);
  /* An occupant came, changed (role, affiliation, status) or went. Our own
   * presence included (is_self). */
  void (*occupant)(xmppuv_muc_t *muc, xmppuv_muc_room_t *room,
                   const xmppuv_muc_occupant_t *occupant, void *user_data);
  void (*message)(xmppuv_muc_t *muc, xmppuv_muc_room_t *room, const xmppuv_muc_message_t *msg,
                  void *user_data);
  /* The subject, as the room sends it on joining and on every change;
   * nick NULL when the room itself set it, subject "" when cleared. */
  void (*subject)(xmppuv_muc_t *muc, xmppuv_muc_room_t *room, const char *nick,
                  const char *subject, void *user_data);
  /* We are out of the room; reason says why, text is the <reason/> the
   * room gave (or NULL). Not rejoined. */
  void (*left)(xmppuv_muc_t *muc, xmppuv_muc_room_t *room, xmppuv_muc_left_reason_t reason,
               const char *text, void *user_data);
} xmppuv_muc_callbacks_t;

#define xmppuv_muc_callbacks_init(cbs) \
  xmppuv_muc_callbacks_init_sized((cbs), sizeof(xmppuv_muc_callbacks_t))
XMPPUV_EXTERN void xmppuv_muc_callbacks_init_sized(xmppuv_muc_callbacks_t *cbs, size_t struct_size);

/* ---- the module ------------------------------------------------------------- */

/* Attach to c. disco (may be NULL): "http://jabber.org/protocol/muc" is
 * added to its features. opts (NULL: the defaults) and cbs (NULL: none)
 * are copied. Errors: XMPPUV_EINVAL (c or out NULL, opts or cbs not
 * initialised), XMPPUV_ECLOSED, XMPPUV_ENOMEM, a libuv code (the timer). */
XMPPUV_EXTERN int xmppuv_muc_new(xmppuv_client_t *c, xmppuv_disco_t *disco,
                                 const xmppuv_muc_options_t *opts,
                                 const xmppuv_muc_callbacks_t *cbs, void *user_data,
                                 xmppuv_muc_t **out);
/* Detach and free now, every room with it (nothing is sent to the rooms:
 * leave them first for that). NULL: no-op. May be called from inside the
 * module's callbacks (it takes effect when the callback returns). */
XMPPUV_EXTERN void xmppuv_muc_free(xmppuv_muc_t *muc);

/* ---- rooms ---------------------------------------------------------------- */

/* What history to ask for on joining (XEP-0045 §7.2.14); the room applies
 * every limit given. Note that a zeroed struct asks for no history at all
 * (maxstanzas 0): set maxstanzas to -1 to leave the count to the room. */
typedef struct xmppuv_muc_history {
  int maxstanzas;    /* at most this many messages (0: none); -1: not sent */
  unsigned seconds;  /* sent in the last this many seconds; 0: not sent */
  const char *since; /* XEP-0082 date-time: sent after it; NULL: not sent */
} xmppuv_muc_history_t;

/* Join room (a bare JID, "room@service") as nick: presence to room/nick
 * with <x xmlns='http://jabber.org/protocol/muc'> carrying the history
 * wanted (history NULL: the room's default) and password (NULL: none;
 * copied, kept for rejoins). The outcome is `joined` or `join_failed`.
 * Made while the client is not online, it goes out with the next session
 * (resumed or new); before the client is started (or while it is stopped),
 * with the first `online`.
 * *out (may be NULL) gets the room. A room already known and out (after
 * `left` or `join_failed`) is joined again (the same object). Errors:
 * XMPPUV_EINVAL (NULL muc, room or nick), XMPPUV_EJID* (room is not a bare
 * JID, or nick cannot be a resource), XMPPUV_ESTATE (joined or being
 * joined already), what xmppuv_client_send() returns, XMPPUV_ENOMEM. */
XMPPUV_EXTERN int xmppuv_muc_join(xmppuv_muc_t *muc, const char *room, const char *nick,
                                  const char *password, const xmppuv_muc_history_t *history,
                                  xmppuv_muc_room_t **out);

/* Leave: unavailable presence with status (NULL: none); `left` (reason
 * XMPPUV_MUC_LEFT_SELF) follows when the room confirms it (or, if the
 * client was offline, with the next session). XMPPUV_EINVAL (NULL),
 * XMPPUV_ESTATE (not joined or being joined), what xmppuv_client_send()
 * returns. */
XMPPUV_EXTERN int xmppuv_muc_leave(xmppuv_muc_room_t *room, const char *status);

/* Forget a room: its memory is freed (a room still joined or being
 * joined is left quietly first: unavailable presence, no `left` event).
 * The pointer is invalid afterwards. NULL: no-op. Allowed inside a
 * callback of the module (about this very room too): the memory then goes
 * when the callback returns, and no more events come for the room. */
XMPPUV_EXTERN void xmppuv_muc_forget(xmppuv_muc_room_t *room);

/* Send body to the room (<message type='groupchat' to=room>); its outcome
 * is the client's `ack` or `fail` event, as for xmppuv_client_send(). 0;
 * XMPPUV_EINVAL (NULL), XMPPUV_ESTATE (not joined), what
 * xmppuv_client_send() returns. */
XMPPUV_EXTERN int xmppuv_muc_send(xmppuv_muc_room_t *room, const char *body);
/* Send a message the app built: 'to' (the room) and type='groupchat' are
 * set on it, the rest is the app's. The caller keeps its reference.
 * Errors as xmppuv_muc_send(), and XMPPUV_EINVAL for a stanza that is not
 * a <message/>. */
XMPPUV_EXTERN int xmppuv_muc_send_stanza(xmppuv_muc_room_t *room, xmppuv_stanza_t *message);
/* Change the subject (XEP-0045 §8.1; "" clears it). The room answers with
 * the `subject` event, or a message error if we may not. Errors as
 * xmppuv_muc_send(). */
XMPPUV_EXTERN int xmppuv_muc_set_subject(xmppuv_muc_room_t *room, const char *subject);

/* ---- reading a room (borrowed: valid until the room changes or goes) ----- */

typedef enum {
  XMPPUV_MUC_ROOM_JOINING = 0, /* join (or rejoin) sent, not confirmed yet */
  XMPPUV_MUC_ROOM_JOINED,
  XMPPUV_MUC_ROOM_LEAVING,     /* leave sent, not confirmed yet */
  XMPPUV_MUC_ROOM_OUT          /* left, kicked, refused: not joined */
} xmppuv_muc_room_state_t;

/* The room's bare JID (canonical); NULL for NULL. */
XMPPUV_EXTERN const char *xmppuv_muc_room_jid(const xmppuv_muc_room_t *room);
/* Our nick: the room's, once joined; the one asked for before. */
XMPPUV_EXTERN const char *xmppuv_muc_room_nick(const xmppuv_muc_room_t *room);
XMPPUV_EXTERN xmppuv_muc_room_state_t xmppuv_muc_room_state(const xmppuv_muc_room_t *room);
/* The subject last seen (NULL if none yet). */
XMPPUV_EXTERN const char *xmppuv_muc_room_subject(const xmppuv_muc_room_t *room);
/* Occupants present now (ourselves included), and the i-th of them
 * (XMPPUV_EINVAL when out of range); *out's strings are borrowed, its
 * presence is NULL. */
XMPPUV_EXTERN size_t xmppuv_muc_room_occupant_count(const xmppuv_muc_room_t *room);
XMPPUV_EXTERN int xmppuv_muc_room_occupant_at(const xmppuv_muc_room_t *room, size_t i,
                                              xmppuv_muc_occupant_t *out);
/* The app's own pointer for a room [NULL]. */
XMPPUV_EXTERN void xmppuv_muc_room_set_user_data(xmppuv_muc_room_t *room, void *user_data);
XMPPUV_EXTERN void *xmppuv_muc_room_user_data(const xmppuv_muc_room_t *room);
/* The module the room belongs to. */
XMPPUV_EXTERN xmppuv_muc_t *xmppuv_muc_room_module(const xmppuv_muc_room_t *room);
/* The room with this bare JID (compared as JIDs), or NULL. */
XMPPUV_EXTERN xmppuv_muc_room_t *xmppuv_muc_room_find(const xmppuv_muc_t *muc, const char *room);

#ifdef __cplusplus
}
#endif

#endif
