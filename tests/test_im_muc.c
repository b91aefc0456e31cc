/* The chat layer's group chat module (lib/im/muc.c) against a scripted
 * server: joining (the occupants, then our own presence with 110, the nick
 * the room gives us), refusals, room messages and who may send them,
 * history, kicks, and keeping rooms joined across connections: nothing
 * after a resumption, a rejoin after a new session without the history
 * seen twice, and a rejoin when a self-ping (XEP-0410) says we are out. */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>
#include <xmppuv.h>
#include <xmppuv/im/muc.h>

#include "check_main.h"
#include "client_world.h"
#include "login_script.h"

#define ROOM "room@conference.localhost"
#define NS_MUC_USER "http://jabber.org/protocol/muc#user"
#define JOIN_SENT "http://jabber.org/protocol/muc'"

/* An occupant's presence (available) with status codes (a string of
 * <status/> elements). */
#define OCCUPANT(nick, role, codes)                                                      \
  "<presence from='" ROOM "/" nick "' to='alice@localhost/r{n}'><x xmlns='" NS_MUC_USER \
  "'><item affiliation='none' role='" role "'/>" codes "</x></presence>"
#define STATUS(code) "<status code='" code "'/>"
#define SELF(nick, codes) OCCUPANT(nick, "participant", STATUS("110") codes)
#define GROUPCHAT(from, extra, body)                                                  \
  "<message from='" from "' to='alice@localhost/r{n}' type='groupchat'><body>" body \
  "</body>" extra "</message>"
#define SID(id) "<stanza-id xmlns='urn:xmpp:sid:0' id='" id "' by='" ROOM "'/>"
#define DELAY "<delay xmlns='urn:xmpp:delay' from='" ROOM "' stamp='2026-12-07T08:00:00Z'/>"
#define SUBJECT(text)                                                                   \
  "<message from='" ROOM "' to='alice@localhost/r{n}' type='groupchat'><subject>" text \
  "</subject></message>"
#define JOIN_ERROR(room, cond)                                                           \
  "<presence from='" room "/Alice' to='alice@localhost/r{n}' type='error'><x xmlns='"   \
  "http://jabber.org/protocol/muc'/><error type='cancel'><" cond " xmlns='" NS_STANZAS \
  "'/><text xmlns='" NS_STANZAS "'>no</text></error></presence>"

typedef struct seen {
  char log[2048];
  int joins, fails, lefts, messages;
  xmppuv_muc_left_reason_t reason;
  char cond[64], text[128], nick[64];
  int forget_on_left; /* forget the room inside `left` */
  int free_on_joined; /* free the module inside `joined` */
  xmppuv_muc_t *m;
} seen_t;

static void note(seen_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(seen_t *s, const char *fmt, ...) {
  size_t n = strlen(s->log);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->log + n, sizeof s->log - n, fmt, ap);
  va_end(ap);
}

static void on_joined(xmppuv_muc_t *m, xmppuv_muc_room_t *r, const char *nick, void *ud) {
  (void)m;
  seen_t *s = ud;
  s->joins++;
  snprintf(s->nick, sizeof s->nick, "%s", nick);
  ck_assert_int_eq(xmppuv_muc_room_state(r), XMPPUV_MUC_ROOM_JOINED);
  note(s, "joined:%s ", nick);
  if (s->free_on_joined) xmppuv_muc_free(m);
}

static void on_join_failed(xmppuv_muc_t *m, xmppuv_muc_room_t *r, const char *cond,
                           const char *text, void *ud) {
  (void)m;
  seen_t *s = ud;
  s->fails++;
  snprintf(s->cond, sizeof s->cond, "%s", cond);
  snprintf(s->text, sizeof s->text, "%s", text != NULL ? text : "");
  ck_assert_int_eq(xmppuv_muc_room_state(r), XMPPUV_MUC_ROOM_OUT);
}

static void on_occupant(xmppuv_muc_t *m, xmppuv_muc_room_t *r, const xmppuv_muc_occupant_t *o,
                        void *ud) {
  (void)m, (void)r;
  note(ud, "occ:%s:%s%s ", o->nick, o->available ? "in" : "out", o->is_self ? ":self" : "");
}

static void on_message(xmppuv_muc_t *m, xmppuv_muc_room_t *r, const xmppuv_muc_message_t *msg,
                       void *ud) {
  (void)m, (void)r;
  seen_t *s = ud;
  s->messages++;
  char what[96];
  snprintf(what, sizeof what, "%s:%s", msg->stanza_id != NULL ? msg->stanza_id : "-",
           msg->is_history ? "hist" : "live");
  note(s, "msg:%s:%s:%s ", msg->from_nick != NULL ? msg->from_nick : "(room)",
       xmppuv_stanza_child_text(msg->message, "body", NULL), what);
}

static void on_subject(xmppuv_muc_t *m, xmppuv_muc_room_t *r, const char *nick,
                       const char *subject, void *ud) {
  (void)m, (void)r;
  note(ud, "subject:%s:%s ", nick != NULL ? nick : "(room)", subject);
}

static void on_left(xmppuv_muc_t *m, xmppuv_muc_room_t *r, xmppuv_muc_left_reason_t reason,
                    const char *text, void *ud) {
  (void)m, (void)r;
  seen_t *s = ud;
  s->lefts++;
  s->reason = reason;
  snprintf(s->text, sizeof s->text, "%s", text != NULL ? text : "");
  if (s->forget_on_left) xmppuv_muc_forget(r);
}

static const xmppuv_muc_callbacks_t cbs = {sizeof(xmppuv_muc_callbacks_t),
                                           on_joined,
                                           on_join_failed,
                                           on_occupant,
                                           on_message,
                                           on_subject,
                                           on_left};

/* A world with one server following scripts, a client and its muc module
 * (options opts, NULL: the defaults), started. */
static xmppuv_muc_t *setup(world_t *w, const xmppuv_test_step_t *const *scripts, size_t n,
                           const xmppuv_muc_options_t *opts, seen_t *s) {
  memset(s, 0, sizeof *s);
  world_init(w);
  world_server(w, 0, scripts, n);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(w, 0));
  world_client_new(w, &o);
  xmppuv_muc_t *m = NULL;
  ck_assert_int_eq(xmppuv_muc_new(w->c, NULL, opts, &cbs, s, &m), 0);
  ck_assert_int_eq(xmppuv_client_start(w->c), 0);
  RUN_UNTIL(w, w->app.onlines >= 1, 10000);
  ck_assert_uint_eq(w->app.onlines, 1);
  return m;
}

static int got(const world_t *w, size_t conn, const char *text) {
  return world_connections(w, 0) > conn && strstr(world_received(w, 0, conn), text) != NULL;
}

/* XEP-0045 §7.2.2-§7.2.15: the occupants, then ours with 110 (and 210:
 * the room changed our nick), then the subject; a room message comes with
 * its sender's nick and the room's stanza-id; a groupchat from a room we
 * are not in is nobody's room message. */
START_TEST(joining_reports_occupants_then_us_under_the_nick_the_room_gave) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN,
      SCRIPT_EXPECT("to='" ROOM "/Alice'"),
      SCRIPT_EXPECT(JOIN_SENT),
      SCRIPT_SEND(OCCUPANT("bob", "moderator", "") OCCUPANT("carol", "participant", "")
                      SELF("Alice (2)", STATUS("210") STATUS("100"))),
      SCRIPT_SEND(SUBJECT("Topic")),
      SCRIPT_SEND(GROUPCHAT(ROOM "/bob", SID("s1"), "hello")),
      SCRIPT_SEND(GROUPCHAT("other@conference.localhost/mallory", SID("x1"), "stray")),
      SCRIPT_SEND(GROUPCHAT(ROOM "/carol", "", "bye")),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  seen_t s;
  xmppuv_muc_t *m = setup(&w, scripts, 1, NULL, &s);
  xmppuv_muc_room_t *room = NULL;
  ck_assert_int_eq(xmppuv_muc_join(m, ROOM, "Alice", NULL, NULL, &room), 0);
  ck_assert_int_eq(xmppuv_muc_room_state(room), XMPPUV_MUC_ROOM_JOINING);
  ck_assert_int_eq(xmppuv_muc_join(m, ROOM, "Alice", NULL, NULL, NULL), XMPPUV_ESTATE);
  ck_assert_int_eq(xmppuv_muc_send(room, "too early"), XMPPUV_ESTATE);
  RUN_UNTIL(&w, s.messages >= 2, 10000);
  ck_assert_str_eq(s.log, "occ:bob:in occ:carol:in occ:Alice (2):in:self joined:Alice (2) "
                          "subject:(room):Topic msg:bob:hello:s1:live msg:carol:bye:-:live ");
  ck_assert_str_eq(xmppuv_muc_room_nick(room), "Alice (2)");
  ck_assert_str_eq(xmppuv_muc_room_subject(room), "Topic");
  ck_assert_uint_eq(xmppuv_muc_room_occupant_count(room), 3);
  ck_assert_ptr_eq(xmppuv_muc_room_find(m, "ROOM@conference.localhost"), room);
  /* The join: presence to room/nick with the MUC <x/>, no history asked. */
  ck_assert_ptr_null(strstr(world_received(&w, 0, 0), "<history"));
  /* Sending: type groupchat, to the room's bare JID. */
  ck_assert_int_eq(xmppuv_muc_send(room, "hi all"), 0);
  RUN_UNTIL(&w, got(&w, 0, "hi all</body>"), 10000);
  const char *sent = strstr(world_received(&w, 0, 0), "<message");
  ck_assert_ptr_nonnull(sent);
  ck_assert_ptr_nonnull(strstr(sent, "to='" ROOM "'"));
  ck_assert_ptr_nonnull(strstr(sent, "type='groupchat'"));
  ck_assert_int_eq(xmppuv_muc_set_subject(room, "New"), 0);
  RUN_UNTIL(&w, got(&w, 0, "<subject>New</subject>"), 10000);
  ck_assert(got(&w, 0, "<subject>New</subject>"));
  world_finish(&w);
}
END_TEST

/* §7.2.9 and §7.2.6: a nick in use and a wrong password end the join with
 * the server's condition; the password went in the join. */
START_TEST(a_nick_in_use_and_a_wrong_password_fail_the_join) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN,
      SCRIPT_EXPECT("to='one@conference.localhost/Alice'"),
      SCRIPT_EXPECT("</presence>"),
      SCRIPT_SEND(JOIN_ERROR("one@conference.localhost", "conflict")),
      SCRIPT_EXPECT("<password>secret</password>"),
      SCRIPT_SEND(JOIN_ERROR("two@conference.localhost", "not-authorized")),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  seen_t s;
  xmppuv_muc_t *m = setup(&w, scripts, 1, NULL, &s);
  xmppuv_muc_room_t *one = NULL, *two = NULL;
  ck_assert_int_eq(xmppuv_muc_join(m, "one@conference.localhost", "Alice", NULL, NULL, &one), 0);
  RUN_UNTIL(&w, s.fails == 1, 10000);
  ck_assert_int_eq(s.fails, 1);
  ck_assert_str_eq(s.cond, "conflict");
  ck_assert_str_eq(s.text, "no");
  ck_assert_int_eq(xmppuv_muc_join(m, "two@conference.localhost", "Alice", "secret", NULL, &two),
                   0);
  RUN_UNTIL(&w, s.fails == 2, 10000);
  ck_assert_str_eq(s.cond, "not-authorized");
  ck_assert_int_eq(s.joins, 0);
  ck_assert_int_eq(xmppuv_muc_room_state(two), XMPPUV_MUC_ROOM_OUT);
  /* Bad arguments. */
  ck_assert_int_eq(xmppuv_muc_join(m, ROOM "/nick", "Alice", NULL, NULL, NULL), XMPPUV_EJID);
  ck_assert_int_eq(xmppuv_muc_join(m, ROOM, NULL, NULL, NULL, NULL), XMPPUV_EINVAL);
  xmppuv_muc_forget(one);
  ck_assert_ptr_null(xmppuv_muc_room_find(m, "one@conference.localhost"));
  world_finish(&w);
}
END_TEST

/* History (with <delay/>, before the subject) is marked as such; the
 * history asked for goes in the join; a kick (307) ends with `left`,
 * reason and text. */
START_TEST(history_is_marked_and_a_kick_is_reported_with_its_reason) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN,
      SCRIPT_EXPECT("<history maxstanzas='5'/>"),
      SCRIPT_SEND(OCCUPANT("bob", "moderator", "") SELF("Alice", "")),
      SCRIPT_SEND(GROUPCHAT(ROOM "/bob", DELAY SID("h1"), "old")),
      SCRIPT_SEND(SUBJECT("")),
      SCRIPT_SEND(GROUPCHAT(ROOM "/bob", SID("l1"), "new")),
      SCRIPT_SEND("<presence from='" ROOM "/bob' type='unavailable'><x xmlns='" NS_MUC_USER
                  "'><item affiliation='none' role='none'/></x></presence>"),
      SCRIPT_SEND("<presence from='" ROOM "/Alice' type='unavailable'><x xmlns='" NS_MUC_USER
                  "'><item affiliation='none' role='none'><actor nick='bob'/><reason>spam"
                  "</reason></item>" STATUS("307") STATUS("110") "</x></presence>"),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  seen_t s;
  xmppuv_muc_t *m = setup(&w, scripts, 1, NULL, &s);
  xmppuv_muc_history_t h = {5, 0, NULL};
  xmppuv_muc_room_t *room = NULL;
  ck_assert_int_eq(xmppuv_muc_join(m, ROOM, "Alice", NULL, &h, &room), 0);
  RUN_UNTIL(&w, s.lefts == 1, 10000);
  ck_assert_str_eq(s.log, "occ:bob:in occ:Alice:in:self joined:Alice msg:bob:old:h1:hist "
                          "subject:(room): msg:bob:new:l1:live occ:bob:out ");
  ck_assert_int_eq(s.lefts, 1);
  ck_assert_int_eq(s.reason, XMPPUV_MUC_LEFT_KICKED);
  ck_assert_str_eq(s.text, "spam");
  ck_assert_int_eq(xmppuv_muc_room_state(room), XMPPUV_MUC_ROOM_OUT);
  ck_assert_uint_eq(xmppuv_muc_room_occupant_count(room), 0);
  ck_assert_int_eq(xmppuv_muc_send(room, "x"), XMPPUV_ESTATE);
  world_finish(&w);
}
END_TEST

/* XEP-0198 resumption: the session went on, so did the room: nothing is
 * sent to it again, and its messages keep coming. */
START_TEST(after_a_resumption_the_room_is_not_joined_again) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN_SM,       SCRIPT_EXPECT(JOIN_SENT), SCRIPT_SEND(SELF("Alice", "")),
      SCRIPT_SEND(SUBJECT("T")), SCRIPT_SEND(GROUPCHAT(ROOM "/bob", SID("a"), "before")),
      SCRIPT_DELAY(100), SCRIPT_CLOSE,          SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {
      UNTIL_RESUME, SCRIPT_SEND(SM_RESUMED("sm-0", "1")),
      SCRIPT_SEND(GROUPCHAT(ROOM "/bob", SID("b"), "after")), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_t w;
  seen_t s;
  xmppuv_muc_t *m = setup(&w, scripts, 2, NULL, &s);
  ck_assert_int_eq(xmppuv_muc_join(m, ROOM, "Alice", NULL, NULL, NULL), 0);
  RUN_UNTIL(&w, w.app.resumes >= 1 && s.messages >= 2, 10000);
  ck_assert_uint_eq(w.app.resumes, 1);
  ck_assert_uint_eq(w.app.onlines, 1);
  ck_assert_str_eq(s.log, "occ:Alice:in:self joined:Alice subject:(room):T "
                          "msg:bob:before:a:live msg:bob:after:b:live ");
  RUN_FOR(&w, 200);
  ck_assert_ptr_null(strstr(world_received(&w, 0, 1), JOIN_SENT));
  ck_assert_int_eq(s.joins, 1);
  world_finish(&w);
}
END_TEST

/* A new session (the resumption failed): the room forgot us, so it is
 * joined again, asking for the history since the last message seen; the
 * history repeats a message already delivered (same stanza-id): not
 * delivered twice. */
START_TEST(a_new_session_rejoins_and_history_seen_before_is_not_repeated) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN_SM,       SCRIPT_EXPECT(JOIN_SENT), SCRIPT_SEND(SELF("Alice", "")),
      SCRIPT_SEND(SUBJECT("T")), SCRIPT_SEND(GROUPCHAT(ROOM "/bob", SID("m1"), "one")),
      SCRIPT_DELAY(100), SCRIPT_CLOSE,          SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {
      UNTIL_RESUME,
      SCRIPT_SEND("<failed xmlns='" NS_SM "'><item-not-found xmlns='" NS_STANZAS
                  "'/></failed>"),
      SCRIPT_EXPECT(NS_BIND), SCRIPT_SEND(BIND_RESULT), SCRIPT_EXPECT("<enable "),
      SCRIPT_SEND(SM_ENABLED),
      SCRIPT_EXPECT("<history seconds='"),
      SCRIPT_EXPECT("</presence>"),
      SCRIPT_SEND(OCCUPANT("carol", "participant", "") SELF("Alice", "")),
      SCRIPT_SEND(GROUPCHAT(ROOM "/bob", DELAY SID("m1"), "one")),
      SCRIPT_SEND(GROUPCHAT(ROOM "/bob", DELAY SID("m2"), "two")),
      SCRIPT_SEND(SUBJECT("T")),
      SCRIPT_SEND(GROUPCHAT(ROOM "/bob", SID("m3"), "three")),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1};
  world_t w;
  seen_t s;
  xmppuv_muc_t *m = setup(&w, scripts, 2, NULL, &s);
  ck_assert_int_eq(xmppuv_muc_join(m, ROOM, "Alice", NULL, NULL, NULL), 0);
  RUN_UNTIL(&w, s.messages >= 3, 10000);
  ck_assert_uint_eq(w.app.onlines, 2);
  ck_assert_int_eq(s.joins, 2);
  ck_assert_str_eq(s.log, "occ:Alice:in:self joined:Alice subject:(room):T msg:bob:one:m1:live "
                          "occ:carol:in occ:Alice:in:self joined:Alice msg:bob:two:m2:hist "
                          "subject:(room):T msg:bob:three:m3:live ");
  ck_assert_int_eq(world_count(world_received(&w, 0, 1), JOIN_SENT), 1);
  /* The app saw no ack or fail of the module's own stanzas. */
  ck_assert_uint_eq(w.app.fails, 0);
  ck_assert_uint_eq(w.app.acks, 0);
  world_finish(&w);
}
END_TEST

/* XEP-0410: after self_ping_interval_ms of silence the room is pinged at
 * our occupant JID; a result means we are in; not-acceptable means we are
 * not: joined again. */
START_TEST(a_self_ping_answered_not_acceptable_rejoins) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN,
      SCRIPT_EXPECT(JOIN_SENT),
      SCRIPT_SEND(SELF("Alice", "")),
      SCRIPT_SEND(SUBJECT("T")),
      SCRIPT_EXPECT("to='" ROOM "/Alice'"), SCRIPT_EXPECT("urn:xmpp:ping"),
      SCRIPT_SEND("<iq type='result' id='{id}' from='" ROOM "/Alice'/>"),
      SCRIPT_EXPECT("to='" ROOM "/Alice'"), SCRIPT_EXPECT("urn:xmpp:ping"),
      SCRIPT_SEND("<iq type='error' id='{id}' from='" ROOM "/Alice'><error type='cancel'>"
                  "<not-acceptable xmlns='" NS_STANZAS "'/></error></iq>"),
      SCRIPT_EXPECT(JOIN_SENT),
      SCRIPT_SEND(SELF("Alice", "")),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  seen_t s;
  xmppuv_muc_options_t o;
  xmppuv_muc_options_init(&o);
  o.self_ping_interval_ms = 200;
  xmppuv_muc_t *m = setup(&w, scripts, 1, &o, &s);
  ck_assert_int_eq(xmppuv_muc_join(m, ROOM, "Alice", NULL, NULL, NULL), 0);
  RUN_UNTIL(&w, s.joins >= 2, 10000);
  ck_assert_int_eq(s.joins, 2);
  ck_assert_int_eq(world_count(world_received(&w, 0, 0), "urn:xmpp:ping"), 2);
  /* The rejoin asked for the history missed. */
  ck_assert_ptr_nonnull(strstr(world_received(&w, 0, 0), "<history seconds='"));
  world_finish(&w);
}
END_TEST

/* A join made before the client is online goes out with the first
 * session, once (no rejoin on that `online`). Leaving ends with `left`
 * when the room confirms; the room forgotten inside that callback is gone
 * after it, and a groupchat from it is no room message any more. */
START_TEST(a_join_before_online_goes_once_and_leaving_ends_with_left) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN,
      SCRIPT_EXPECT(JOIN_SENT),
      SCRIPT_SEND(SELF("Alice", "")),
      SCRIPT_EXPECT("type='unavailable'"),
      SCRIPT_EXPECT("<status>gone fishing</status>"),
      SCRIPT_SEND("<presence from='" ROOM "/Alice' type='unavailable'><x xmlns='" NS_MUC_USER
                  "'><item affiliation='none' role='none'/>" STATUS("110") "</x></presence>"),
      SCRIPT_SEND(GROUPCHAT(ROOM "/bob", SID("z"), "late")),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  seen_t s;
  memset(&s, 0, sizeof s);
  s.forget_on_left = 1;
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  world_client_new(&w, &o);
  xmppuv_muc_t *m = NULL;
  ck_assert_int_eq(xmppuv_muc_new(w.c, NULL, NULL, &cbs, &s, &m), 0);
  xmppuv_muc_room_t *room = NULL;
  ck_assert_int_eq(xmppuv_muc_join(m, ROOM, "Alice", NULL, NULL, &room), 0);
  ck_assert_int_eq(xmppuv_client_start(w.c), 0);
  RUN_UNTIL(&w, s.joins == 1, 10000);
  ck_assert_int_eq(s.joins, 1);
  ck_assert_int_eq(xmppuv_muc_leave(room, "gone fishing"), 0);
  ck_assert_int_eq(xmppuv_muc_room_state(room), XMPPUV_MUC_ROOM_LEAVING);
  RUN_UNTIL(&w, s.lefts == 1, 10000);
  ck_assert_int_eq(s.reason, XMPPUV_MUC_LEFT_SELF);
  ck_assert_ptr_null(xmppuv_muc_room_find(m, ROOM));
  RUN_UNTIL(&w, w.app.inbound >= 3, 10000);
  RUN_FOR(&w, 100);
  ck_assert_int_eq(s.messages, 0);
  ck_assert_int_eq(world_count(world_received(&w, 0, 0), JOIN_SENT), 1);
  world_finish(&w);
}
END_TEST

/* XEP-0410 §"Interpreting responses": service-unavailable (the pinged
 * client of ours does not do ping) means joined; remote-server-timeout
 * decides nothing (try later); neither rejoins. */
START_TEST(self_ping_errors_that_mean_joined_or_unknown_do_not_rejoin) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN,
      SCRIPT_EXPECT(JOIN_SENT),
      SCRIPT_SEND(SELF("Alice", "")),
      SCRIPT_EXPECT("urn:xmpp:ping"),
      SCRIPT_SEND("<iq type='error' id='{id}' from='" ROOM "/Alice'><error type='cancel'>"
                  "<service-unavailable xmlns='" NS_STANZAS "'/></error></iq>"),
      SCRIPT_EXPECT("urn:xmpp:ping"),
      SCRIPT_SEND("<iq type='error' id='{id}' from='" ROOM "/Alice'><error type='wait'>"
                  "<remote-server-timeout xmlns='" NS_STANZAS "'/></error></iq>"),
      SCRIPT_EXPECT("urn:xmpp:ping"),
      SCRIPT_SEND("<iq type='error' id='{id}' from='" ROOM "/Alice'><error type='cancel'>"
                  "<item-not-found xmlns='" NS_STANZAS "'/></error></iq>"),
      SCRIPT_EXPECT("urn:xmpp:ping"),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  seen_t s;
  xmppuv_muc_options_t o;
  xmppuv_muc_options_init(&o);
  o.self_ping_interval_ms = 100;
  xmppuv_muc_t *m = setup(&w, scripts, 1, &o, &s);
  ck_assert_int_eq(xmppuv_muc_join(m, ROOM, "Alice", NULL, NULL, NULL), 0);
  RUN_UNTIL(&w, world_script_done(&w, 0, 0), 10000);
  ck_assert(world_script_done(&w, 0, 0));
  ck_assert_int_eq(s.joins, 1);
  ck_assert_int_eq(world_count(world_received(&w, 0, 0), JOIN_SENT), 1);
  world_finish(&w);
}
END_TEST

/* A rejoin with rejoin_history = none asks for no history; the module
 * freed inside `joined` stops cleanly (what comes later is nobody's). */
START_TEST(rejoin_without_history_and_free_inside_a_callback) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN,
      SCRIPT_EXPECT(JOIN_SENT),
      SCRIPT_SEND(SELF("Alice", "")),
      SCRIPT_EXPECT("urn:xmpp:ping"),
      SCRIPT_SEND("<iq type='error' id='{id}' from='" ROOM "/Alice'><error type='modify'>"
                  "<bad-request xmlns='" NS_STANZAS "'/></error></iq>"),
      SCRIPT_EXPECT("<history maxstanzas='0'/>"),
      SCRIPT_SEND(SELF("Alice", "")),
      SCRIPT_SEND(GROUPCHAT(ROOM "/bob", SID("q"), "unheard")),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  seen_t s;
  xmppuv_muc_options_t o;
  xmppuv_muc_options_init(&o);
  o.self_ping_interval_ms = 100;
  o.rejoin_history = XMPPUV_MUC_REJOIN_NO_HISTORY;
  xmppuv_muc_t *m = setup(&w, scripts, 1, &o, &s);
  ck_assert_int_eq(xmppuv_muc_join(m, ROOM, "Alice", NULL, NULL, NULL), 0);
  RUN_UNTIL(&w, s.joins == 1, 10000);
  s.free_on_joined = 1;
  RUN_UNTIL(&w, s.joins == 2, 10000);
  ck_assert_int_eq(s.joins, 2);
  RUN_UNTIL(&w, world_script_done(&w, 0, 0), 10000);
  RUN_FOR(&w, 300);
  ck_assert_int_eq(s.messages, 0);
  world_finish(&w);
}
END_TEST

/* The room destroyed (§10.9): `left` with reason destroyed and its text. */
START_TEST(a_destroyed_room_is_left_with_its_reason) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN,
      SCRIPT_EXPECT(JOIN_SENT),
      SCRIPT_SEND(SELF("Alice", "")),
      SCRIPT_SEND("<presence from='" ROOM "/Alice' type='unavailable'><x xmlns='" NS_MUC_USER
                  "'><item affiliation='none' role='none'/><destroy jid='new@conference."
                  "localhost'><reason>moved</reason></destroy></x></presence>"),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  seen_t s;
  xmppuv_muc_t *m = setup(&w, scripts, 1, NULL, &s);
  xmppuv_muc_room_t *room = NULL;
  ck_assert_int_eq(xmppuv_muc_join(m, ROOM, "Alice", NULL, NULL, &room), 0);
  RUN_UNTIL(&w, s.lefts == 1, 10000);
  ck_assert_int_eq(s.reason, XMPPUV_MUC_LEFT_DESTROYED);
  ck_assert_str_eq(s.text, "moved");
  /* Out: it may be joined again (the same room object). */
  xmppuv_muc_room_t *again = NULL;
  ck_assert_int_eq(xmppuv_muc_join(m, ROOM, "Alice", NULL, NULL, &again), 0);
  ck_assert_ptr_eq(again, room);
  world_finish(&w);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("im_muc");
  TCase *tc = tcase_create("muc");
  tcase_add_test(tc, joining_reports_occupants_then_us_under_the_nick_the_room_gave);
  tcase_add_test(tc, a_nick_in_use_and_a_wrong_password_fail_the_join);
  tcase_add_test(tc, history_is_marked_and_a_kick_is_reported_with_its_reason);
  tcase_add_test(tc, after_a_resumption_the_room_is_not_joined_again);
  tcase_add_test(tc, a_new_session_rejoins_and_history_seen_before_is_not_repeated);
  tcase_add_test(tc, a_self_ping_answered_not_acceptable_rejoins);
  tcase_add_test(tc, a_join_before_online_goes_once_and_leaving_ends_with_left);
  tcase_add_test(tc, self_ping_errors_that_mean_joined_or_unknown_do_not_rejoin);
  tcase_add_test(tc, rejoin_without_history_and_free_inside_a_callback);
  tcase_add_test(tc, a_destroyed_room_is_left_with_its_reason);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
