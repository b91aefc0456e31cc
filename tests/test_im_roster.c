/* The roster (RFC 6121 §2-3) and presence (RFC 6121 §4) modules of the
 * chat layer against the scripted server (client_world.h): the fetch with
 * and without roster versioning, pushes applied and acknowledged, pushes
 * from anyone but our account ignored, a fetch on every new session and
 * none after a resumption; initial presence on `online` only, contacts'
 * resources tracked, the best one by priority. Real servers:
 * test_im_roster_servers.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "check_main.h"
#include "client_world.h"
#include "login_script.h"
#include "xmppuv.h"

#define NS_R "jabber:iq:roster"
#define FEATURES_BIND_VER                                                    \
  "<stream:features><bind xmlns='" NS_BIND "'/>"                             \
  "<ver xmlns='urn:xmpp:features:rosterver'/></stream:features>"
#define FEATURES_BIND_PRE                                                    \
  "<stream:features><bind xmlns='" NS_BIND "'/>"                             \
  "<sub xmlns='urn:xmpp:features:pre-approval'/></stream:features>"
#define LOGIN_WITH(features) UNTIL_AUTH, UNTIL_BIND(features), SCRIPT_SEND(BIND_RESULT)
/* The answer to the roster get just received: bob and carol, version v1. */
#define ROSTER_RESULT                                                        \
  "<iq type='result' id='{id}'><query xmlns='" NS_R "' ver='v1'>"            \
  "<item jid='bob@example.com' name='Bob' subscription='both'><group>Friends</group>" \
  "<group>Work</group></item>"                                               \
  "<item jid='Carol@Example.com' subscription='to' ask='subscribe'/></query></iq>"
#define EMPTY_RESULT "<iq type='result' id='{id}'/>"
#define PUSH(attrs, id, item)                                                \
  "<iq type='set' id='" id "'" attrs "><query xmlns='" NS_R "' ver='v2'>" item "</query></iq>"
#define DAVE_ITEM "<item jid='dave@example.com' subscription='none' name='Dave'/>"

/* ---- what the app saw of the modules ---------------------------------- */

typedef struct app {
  xmppuv_roster_t *r;
  xmppuv_presence_t *p;
  unsigned loaded, from_cache, load_errors;
  int last_load_status;
  unsigned items, versions, spoofed, requests, answers, approved_answers;
  char item_log[2048];
  char version[64];
  unsigned changes, errors;
  char presence_log[2048];
  char last_error_cond[64];
} app_t;

/* Append "a:b " (b NULL: "a ") to buf. */
static void logf_(char *buf, size_t size, const char *a, const char *b) {
  size_t len = strlen(buf);
  if (b != NULL) snprintf(buf + len, size - len, "%s:%s ", a, b);
  else snprintf(buf + len, size - len, "%s ", a);
}

static void on_loaded(xmppuv_roster_t *r, int status, int from_cache, xmppuv_stanza_t *reply,
                      void *ud) {
  app_t *a = ud;
  (void)r;
  (void)reply;
  a->last_load_status = status;
  if (status != 0) {
    a->load_errors++;
    return;
  }
  a->loaded++;
  a->from_cache += from_cache != 0;
}

static void on_item(xmppuv_roster_t *r, const xmppuv_roster_item_t *it, void *ud) {
  app_t *a = ud;
  (void)r;
  a->items++;
  logf_(a->item_log, sizeof a->item_log, it->jid,
        xmppuv_subscription_name(it->subscription));
}

static void on_version(xmppuv_roster_t *r, const char *ver, void *ud) {
  app_t *a = ud;
  (void)r;
  a->versions++;
  snprintf(a->version, sizeof a->version, "%s", ver);
}

static void on_spoofed(xmppuv_roster_t *r, xmppuv_stanza_t *push, void *ud) {
  app_t *a = ud;
  (void)r;
  (void)push;
  a->spoofed++;
}

static void on_request(xmppuv_roster_t *r, const char *from, xmppuv_stanza_t *p, void *ud) {
  app_t *a = ud;
  (void)r;
  (void)p;
  a->requests++;
  logf_(a->item_log, sizeof a->item_log, "request", from);
}

static void on_answer(xmppuv_roster_t *r, const char *from, int approved, xmppuv_stanza_t *p,
                      void *ud) {
  app_t *a = ud;
  (void)r;
  (void)p;
  a->answers++;
  a->approved_answers += approved != 0;
  char who[128];
  snprintf(who, sizeof who, "answer:%s", from);
  logf_(a->item_log, sizeof a->item_log, who, approved ? "yes" : "no");
}

static void on_changed(xmppuv_presence_t *p, const xmppuv_presence_info_t *info, void *ud) {
  app_t *a = ud;
  (void)p;
  a->changes++;
  logf_(a->presence_log, sizeof a->presence_log, info->jid,
        info->available ? xmppuv_show_name(info->show) : "gone");
}

static void on_presence_error(xmppuv_presence_t *p, const char *from, const char *cond,
                              xmppuv_stanza_t *s, void *ud) {
  app_t *a = ud;
  (void)p;
  (void)from;
  (void)s;
  a->errors++;
  snprintf(a->last_error_cond, sizeof a->last_error_cond, "%s", cond ? cond : "");
}

static const xmppuv_roster_callbacks_t roster_cbs = {
    .struct_size = sizeof(xmppuv_roster_callbacks_t),
    .loaded = on_loaded,
    .item = on_item,
    .version = on_version,
    .subscription_request = on_request,
    .subscription_answer = on_answer,
    .spoofed = on_spoofed,
};

static const xmppuv_presence_callbacks_t presence_cbs = {
    .struct_size = sizeof(xmppuv_presence_callbacks_t),
    .changed = on_changed,
    .error = on_presence_error,
};

/* The world with scripts on server 0, the client made, the roster (and,
 * with presence, the presence module with priority prio) attached; not
 * started. */
static void setup(world_t *w, app_t *a, const xmppuv_test_step_t *const *scripts, size_t n,
                  int presence, int prio) {
  memset(a, 0, sizeof *a);
  world_init(w);
  world_server(w, 0, scripts, n);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(w, 0));
  world_client_new(w, &o);
  ck_assert_int_eq(xmppuv_roster_new(w->c, &roster_cbs, a, &a->r), 0);
  if (presence) {
    xmppuv_presence_options_t po;
    xmppuv_presence_options_init(&po);
    po.priority = prio;
    po.status = "here";
    ck_assert_int_eq(xmppuv_presence_new(w->c, &po, &presence_cbs, a, &a->p), 0);
  }
}

static void start(world_t *w) { ck_assert_int_eq(xmppuv_client_start(w->c), 0); }

static void finish(world_t *w) {
  world_finish(w);
  client_rec_assert_nothing_after_close(&w->app);
}

static void import(app_t *a, const char *jid, xmppuv_subscription_t sub) {
  xmppuv_roster_item_t it;
  memset(&it, 0, sizeof it);
  it.jid = jid;
  it.subscription = sub;
  ck_assert_int_eq(xmppuv_roster_import_item(a->r, &it), 0);
}

/* ---- the fetch ------------------------------------------------------------ */

START_TEST(without_versioning_the_fetch_has_no_ver_and_the_result_replaces_the_roster) {
  static const xmppuv_test_step_t s0[] = {LOGIN, SCRIPT_EXPECT(NS_R),
                                          SCRIPT_SEND(ROSTER_RESULT), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  app_t a;
  setup(&w, &a, scripts, 1, 0, 0);
  import(&a, "old@example.com", XMPPUV_SUB_BOTH);
  ck_assert_int_eq(xmppuv_roster_set_version(a.r, "v0"), 0);
  start(&w);
  RUN_UNTIL(&w, a.loaded >= 1, 10000);
  ck_assert_uint_eq(a.loaded, 1);
  ck_assert_uint_eq(a.from_cache, 0);
  const char *got = world_received(&w, 0, 0);
  ck_assert_msg(strstr(got, "<query xmlns='" NS_R "'/>") != NULL, "sent: %s", got);
  ck_assert_ptr_null(strstr(got, "ver="));
  ck_assert_uint_eq(xmppuv_roster_count(a.r), 2);
  const xmppuv_roster_item_t *bob = xmppuv_roster_get(a.r, "bob@example.com");
  ck_assert_ptr_nonnull(bob);
  ck_assert_str_eq(bob->name, "Bob");
  ck_assert_int_eq(bob->subscription, XMPPUV_SUB_BOTH);
  ck_assert_uint_eq(bob->ngroups, 2);
  ck_assert_str_eq(bob->groups[0], "Friends");
  ck_assert_str_eq(bob->groups[1], "Work");
  /* JIDs are kept canonical, and looked up as JIDs. */
  const xmppuv_roster_item_t *carol = xmppuv_roster_get(a.r, "CAROL@example.COM/phone");
  ck_assert_ptr_nonnull(carol);
  ck_assert_str_eq(carol->jid, "carol@example.com");
  ck_assert_int_eq(carol->subscription, XMPPUV_SUB_TO);
  ck_assert_int_eq(carol->ask, 1);
  ck_assert_ptr_null(xmppuv_roster_get(a.r, "old@example.com"));
  /* The differences were events: two new, the imported one removed. */
  ck_assert_uint_eq(a.items, 3);
  ck_assert_ptr_nonnull(strstr(a.item_log, "old@example.com:remove"));
  ck_assert_ptr_nonnull(strstr(a.item_log, "bob@example.com:both"));
  ck_assert_str_eq(xmppuv_roster_version(a.r), "v1");
  ck_assert_uint_eq(a.versions, 1);
  ck_assert(xmppuv_roster_loaded(a.r));
  finish(&w);
}
END_TEST

START_TEST(with_versioning_the_ver_is_sent_and_an_empty_result_keeps_the_imported_items) {
  static const xmppuv_test_step_t s0[] = {LOGIN_WITH(FEATURES_BIND_VER), SCRIPT_EXPECT(NS_R),
                                          SCRIPT_SEND(EMPTY_RESULT),
                                          SCRIPT_SEND(PUSH("", "push1", DAVE_ITEM)),
                                          SCRIPT_EXPECT("push1"), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  app_t a;
  setup(&w, &a, scripts, 1, 0, 0);
  import(&a, "bob@example.com", XMPPUV_SUB_BOTH);
  ck_assert_int_eq(xmppuv_roster_set_version(a.r, "v7"), 0);
  start(&w);
  RUN_UNTIL(&w, a.loaded >= 1 && a.items >= 1 && world_script_done(&w, 0, 0), 10000);
  ck_assert_uint_eq(a.loaded, 1);
  ck_assert_uint_eq(a.from_cache, 1);
  const char *got = world_received(&w, 0, 0);
  ck_assert_msg(strstr(got, "<query xmlns='" NS_R "' ver='v7'/>") != NULL, "sent: %s", got);
  /* The cached item stands, the push added one, and said the version. */
  ck_assert_uint_eq(xmppuv_roster_count(a.r), 2);
  ck_assert_ptr_nonnull(xmppuv_roster_get(a.r, "bob@example.com"));
  ck_assert_ptr_nonnull(xmppuv_roster_get(a.r, "dave@example.com"));
  ck_assert_str_eq(a.item_log, "dave@example.com:none ");
  ck_assert_str_eq(a.version, "v2");
  ck_assert_str_eq(xmppuv_roster_version(a.r), "v2");
  finish(&w);
}
END_TEST

START_TEST(with_versioning_and_no_version_kept_the_fetch_bootstraps_with_an_empty_ver) {
  static const xmppuv_test_step_t s0[] = {LOGIN_WITH(FEATURES_BIND_VER), SCRIPT_EXPECT(NS_R),
                                          SCRIPT_SEND(ROSTER_RESULT), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  app_t a;
  setup(&w, &a, scripts, 1, 0, 0);
  start(&w);
  RUN_UNTIL(&w, a.loaded >= 1, 10000);
  ck_assert_uint_eq(a.loaded, 1);
  ck_assert_uint_eq(a.from_cache, 0);
  const char *got = world_received(&w, 0, 0);
  ck_assert_msg(strstr(got, "<query xmlns='" NS_R "' ver=''/>") != NULL, "sent: %s", got);
  ck_assert_uint_eq(xmppuv_roster_count(a.r), 2);
  ck_assert_str_eq(a.version, "v1");
  finish(&w);
}
END_TEST

START_TEST(a_failed_fetch_is_reported_with_the_error_reply) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN, SCRIPT_EXPECT(NS_R),
      SCRIPT_SEND("<iq type='error' id='{id}'><error type='wait'><internal-server-error xmlns='" NS_STANZAS
                  "'/></error></iq>"),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  app_t a;
  setup(&w, &a, scripts, 1, 0, 0);
  start(&w);
  RUN_UNTIL(&w, a.load_errors >= 1, 10000);
  ck_assert_uint_eq(a.load_errors, 1);
  ck_assert_int_eq(a.last_load_status, XMPPUV_EIQERROR);
  ck_assert(!xmppuv_roster_loaded(a.r));
  finish(&w);
}
END_TEST

/* ---- pushes ---------------------------------------------------------------- */

START_TEST(a_push_is_applied_and_acknowledged_and_a_remove_push_removes) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN, SCRIPT_EXPECT(NS_R), SCRIPT_SEND(ROSTER_RESULT),
      SCRIPT_SEND(PUSH("", "push1", "<item jid='dave@example.com' name='Dave' subscription='none'>"
                                    "<group>Pals</group></item>")),
      SCRIPT_EXPECT("push1"),
      SCRIPT_SEND(PUSH("", "push2", "<item jid='bob@example.com' subscription='remove'/>")),
      SCRIPT_EXPECT("push2"), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  app_t a;
  setup(&w, &a, scripts, 1, 0, 0);
  start(&w);
  RUN_UNTIL(&w, world_script_done(&w, 0, 0) && a.items >= 4, 10000);
  ck_assert_msg(world_script_done(&w, 0, 0), "sent: %s", world_received(&w, 0, 0));
  const char *got = world_received(&w, 0, 0);
  ck_assert_msg(strstr(got, "<iq type='result' id='push1'>") != NULL, "sent: %s", got);
  ck_assert_ptr_nonnull(strstr(got, "<iq type='result' id='push2'>"));
  ck_assert_uint_eq(xmppuv_roster_count(a.r), 2);
  const xmppuv_roster_item_t *dave = xmppuv_roster_get(a.r, "dave@example.com");
  ck_assert_ptr_nonnull(dave);
  ck_assert_str_eq(dave->name, "Dave");
  ck_assert_uint_eq(dave->ngroups, 1);
  ck_assert_str_eq(dave->groups[0], "Pals");
  ck_assert_ptr_null(xmppuv_roster_get(a.r, "bob@example.com"));
  ck_assert_ptr_nonnull(strstr(a.item_log, "dave@example.com:none bob@example.com:remove"));
  ck_assert_str_eq(a.version, "v2");
  finish(&w);
}
END_TEST

/* RFC 6121 §2.1.6: from a stranger, the push is ignored (and answered as
 * a namespace nobody serves); from our bare JID in any case it counts;
 * from our full JID it does not (the RFC allows absent or the bare JID). */
static const struct {
  const char *from;
  int accepted;
} push_froms[] = {
    {"mallory@evil.example", 0},
    {"ALICE@LocalHost", 1},
    {"alice@localhost/r0", 0},
    {"localhost", 0},
    {"not a jid@@", 0},
};

START_TEST(a_push_counts_only_without_from_or_from_our_bare_jid) {
  static char push[512];
  snprintf(push, sizeof push,
           "<iq type='set' id='px' from='%s'><query xmlns='" NS_R "' ver='v9'>" DAVE_ITEM
           "</query></iq>",
           push_froms[_i].from);
  static const xmppuv_test_step_t s0[] = {LOGIN, SCRIPT_EXPECT(NS_R), SCRIPT_SEND(ROSTER_RESULT),
                                          SCRIPT_SEND(push), SCRIPT_EXPECT("'px'"), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  app_t a;
  setup(&w, &a, scripts, 1, 0, 0);
  start(&w);
  RUN_UNTIL(&w, world_script_done(&w, 0, 0), 10000);
  ck_assert_msg(world_script_done(&w, 0, 0), "sent: %s", world_received(&w, 0, 0));
  RUN_FOR(&w, 50);
  const char *got = world_received(&w, 0, 0);
  const char *reply = strstr(got, "'px'");
  ck_assert_ptr_nonnull(reply);
  unsigned items_after_fetch = 2;
  if (push_froms[_i].accepted) {
    ck_assert_ptr_nonnull(xmppuv_roster_get(a.r, "dave@example.com"));
    ck_assert_uint_eq(a.items, items_after_fetch + 1);
    ck_assert_uint_eq(a.spoofed, 0);
    ck_assert_str_eq(a.version, "v9");
    ck_assert_ptr_null(strstr(got, "service-unavailable"));
  } else {
    ck_assert_ptr_null(xmppuv_roster_get(a.r, "dave@example.com"));
    ck_assert_uint_eq(xmppuv_roster_count(a.r), 2);
    ck_assert_uint_eq(a.items, items_after_fetch); /* no item event for it */
    ck_assert_uint_eq(a.spoofed, 1);
    ck_assert_uint_eq(xmppuv_roster_spoofed_count(a.r), 1);
    ck_assert_str_eq(a.version, "v1");
    ck_assert_msg(strstr(got, "type='error'") != NULL && strstr(got, "service-unavailable") != NULL,
                  "sent: %s", got);
  }
  finish(&w);
}
END_TEST

START_TEST(a_push_with_two_items_is_a_bad_request_and_changes_nothing) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN, SCRIPT_EXPECT(NS_R), SCRIPT_SEND(ROSTER_RESULT),
      SCRIPT_SEND(PUSH("", "p2", DAVE_ITEM "<item jid='eve@example.com'/>")),
      SCRIPT_EXPECT("bad-request"), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  app_t a;
  setup(&w, &a, scripts, 1, 0, 0);
  start(&w);
  RUN_UNTIL(&w, world_script_done(&w, 0, 0), 10000);
  ck_assert(world_script_done(&w, 0, 0));
  ck_assert_uint_eq(xmppuv_roster_count(a.r), 2);
  finish(&w);
}
END_TEST

/* ---- sessions ------------------------------------------------------------- */

/* Connection 0: a new session (fetch, initial presence), cut. 1: resumed
 * (nothing is redone), cut. 2: the resumption fails, a new session: fetch
 * and initial presence again. */
START_TEST(resumed_does_not_refetch_or_resend_presence_and_a_new_session_does) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN_SM, SCRIPT_EXPECT(NS_R), SCRIPT_SEND(ROSTER_RESULT),
      SCRIPT_EXPECT("<priority>3</priority>"),
      SCRIPT_SEND("<presence from='bob@example.com/pc'/>"), SCRIPT_DELAY(100), SCRIPT_RESET,
      SCRIPT_END};
  static const xmppuv_test_step_t s1[] = {UNTIL_RESUME, SCRIPT_SEND(SM_RESUMED("sm-0", "2")),
                                          SCRIPT_DELAY(300), SCRIPT_RESET, SCRIPT_END};
  static const xmppuv_test_step_t s2[] = {
      UNTIL_RESUME,
      SCRIPT_SEND("<failed xmlns='urn:xmpp:sm:3'><item-not-found xmlns='" NS_STANZAS
                  "'/></failed>"),
      SCRIPT_EXPECT(NS_BIND), SCRIPT_SEND(BIND_RESULT), SCRIPT_EXPECT("<enable "),
      SCRIPT_SEND(SM_ENABLED), SCRIPT_EXPECT(NS_R), SCRIPT_SEND(EMPTY_RESULT),
      SCRIPT_EXPECT("<priority>3</priority>"), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0, s1, s2};
  world_t w;
  app_t a;
  setup(&w, &a, scripts, 3, 1, 3);
  start(&w);
  RUN_UNTIL(&w, w.app.resumes >= 1, 10000);
  ck_assert_msg(w.app.resumes == 1, "statuses: %s", w.app.statuses);
  ck_assert_uint_eq(a.loaded, 1);
  /* bob's presence stands across the resumption. */
  ck_assert_uint_eq(xmppuv_presence_count(a.p, "bob@example.com"), 1);
  RUN_UNTIL(&w, world_script_done(&w, 0, 2), 10000);
  ck_assert_msg(world_script_done(&w, 0, 2), "sent: %s", world_received(&w, 0, 2));
  RUN_UNTIL(&w, a.loaded >= 2, 5000);
  const char *resumed = world_received(&w, 0, 1);
  ck_assert_int_eq(world_count(resumed, NS_R), 0);
  ck_assert_int_eq(world_count(resumed, "<presence"), 0);
  ck_assert_int_eq(world_count(world_received(&w, 0, 2), NS_R), 1);
  ck_assert_uint_eq(w.app.onlines, 2);
  ck_assert_uint_eq(a.loaded, 2);
  /* The new session dropped what was tracked: bob is gone until the
   * server says otherwise. */
  ck_assert_uint_eq(xmppuv_presence_count(a.p, "bob@example.com"), 0);
  ck_assert_str_eq(a.presence_log, "bob@example.com/pc:online bob@example.com/pc:gone ");
  /* Items kept (the empty result: no version was ever given here, but the
   * server's answer means unchanged). */
  ck_assert_uint_eq(xmppuv_roster_count(a.r), 2);
  finish(&w);
}
END_TEST

/* ---- subscriptions ---------------------------------------------------------- */

START_TEST(subscription_requests_and_answers_are_reported_and_answered) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN, SCRIPT_EXPECT(NS_R), SCRIPT_SEND(ROSTER_RESULT),
      SCRIPT_SEND("<presence from='eve@example.com/x' type='subscribe'/>"
                  "<presence from='carol@example.com' type='subscribed'/>"
                  "<presence from='frank@example.com' type='unsubscribed'/>"),
      SCRIPT_EXPECT("type='subscribed'"), SCRIPT_EXPECT("type='subscribe'"),
      SCRIPT_EXPECT("type='unsubscribe'"), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  app_t a;
  setup(&w, &a, scripts, 1, 0, 0);
  start(&w);
  RUN_UNTIL(&w, a.answers >= 2, 10000);
  ck_assert_uint_eq(a.requests, 1);
  ck_assert_uint_eq(a.answers, 2);
  ck_assert_uint_eq(a.approved_answers, 1);
  ck_assert_ptr_nonnull(strstr(a.item_log, "request:eve@example.com "));
  ck_assert_ptr_nonnull(strstr(a.item_log, "answer:carol@example.com:yes"));
  ck_assert_ptr_nonnull(strstr(a.item_log, "answer:frank@example.com:no"));
  ck_assert(xmppuv_roster_has_request(a.r, "eve@example.com"));
  /* No pre-approval on this server: approving someone who did not ask is
   * refused without sending. */
  ck_assert_int_eq(xmppuv_roster_approve(a.r, "zed@example.com"), XMPPUV_ESTATE);
  ck_assert_int_eq(xmppuv_roster_approve(a.r, "eve@example.com"), 0);
  ck_assert(!xmppuv_roster_has_request(a.r, "eve@example.com"));
  ck_assert_int_eq(xmppuv_roster_subscribe(a.r, "eve@example.com"), 0);
  ck_assert_int_eq(xmppuv_roster_unsubscribe(a.r, "frank@example.com"), 0);
  ck_assert_int_eq(xmppuv_roster_subscribe(a.r, "eve@example.com/res"), XMPPUV_EINVAL);
  RUN_UNTIL(&w, world_script_done(&w, 0, 0), 10000);
  const char *got = world_received(&w, 0, 0);
  ck_assert_msg(world_script_done(&w, 0, 0), "sent: %s", got);
  ck_assert_ptr_null(strstr(got, "zed@"));
  finish(&w);
}
END_TEST

START_TEST(with_pre_approval_offered_approving_first_is_a_pre_approval) {
  static const xmppuv_test_step_t s0[] = {LOGIN_WITH(FEATURES_BIND_PRE), SCRIPT_EXPECT(NS_R),
                                          SCRIPT_SEND(ROSTER_RESULT),
                                          SCRIPT_EXPECT("zed@example.com"), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  app_t a;
  setup(&w, &a, scripts, 1, 0, 0);
  start(&w);
  RUN_UNTIL(&w, a.loaded >= 1, 10000);
  ck_assert(xmppuv_roster_preapproval_supported(a.r));
  ck_assert_int_eq(xmppuv_roster_approve(a.r, "zed@example.com"), 0);
  RUN_UNTIL(&w, world_script_done(&w, 0, 0), 10000);
  const char *got = world_received(&w, 0, 0);
  ck_assert_msg(strstr(got, "<presence to='zed@example.com' type='subscribed'") != NULL ||
                    strstr(got, "type='subscribed'") != NULL,
                "sent: %s", got);
  finish(&w);
}
END_TEST

static void set_done(xmppuv_roster_t *r, int status, xmppuv_stanza_t *reply, void *ud) {
  (void)r;
  (void)reply;
  *(int *)ud = status == 0 ? 1 : status;
}

START_TEST(set_and_remove_send_the_item_and_report_the_outcome) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN, SCRIPT_EXPECT(NS_R), SCRIPT_SEND(ROSTER_RESULT),
      SCRIPT_EXPECT("</item>"), SCRIPT_SEND("<iq type='result' id='{id}'/>"),
      SCRIPT_EXPECT("subscription='remove'"),
      SCRIPT_SEND("<iq type='error' id='{id}'><error type='cancel'><item-not-found xmlns='" NS_STANZAS
                  "'/></error></iq>"),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  app_t a;
  setup(&w, &a, scripts, 1, 0, 0);
  start(&w);
  RUN_UNTIL(&w, a.loaded >= 1, 10000);
  int set = 0, removed = 0;
  const char *groups[] = {"Friends", "A & B"};
  ck_assert_int_eq(xmppuv_roster_set(a.r, "dave@example.com/x", "Dave", groups, 2, set_done, &set),
                   XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_roster_set(a.r, "dave@example.com", "Dave", groups, 2, set_done, &set),
                   0);
  RUN_UNTIL(&w, set != 0, 10000);
  ck_assert_int_eq(set, 1);
  ck_assert_int_eq(xmppuv_roster_remove(a.r, "zed@example.com", set_done, &removed), 0);
  RUN_UNTIL(&w, removed != 0, 10000);
  ck_assert_int_eq(removed, XMPPUV_EIQERROR);
  const char *got = world_received(&w, 0, 0);
  ck_assert_msg(strstr(got, "<item jid='dave@example.com' name='Dave'><group>Friends</group>"
                            "<group>A &amp; B</group></item>") != NULL,
                "sent: %s", got);
  ck_assert_ptr_nonnull(strstr(got, "<item jid='zed@example.com' subscription='remove'/>"));
  finish(&w);
}
END_TEST

/* ---- presence ---------------------------------------------------------------- */

START_TEST(contact_resources_are_tracked_with_show_status_and_priority) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN, SCRIPT_EXPECT(NS_R), SCRIPT_SEND(ROSTER_RESULT),
      SCRIPT_EXPECT("<priority>5</priority>"),
      SCRIPT_SEND("<presence from='bob@example.com/phone'><show>away</show><status>out</status>"
                  "<priority>1</priority></presence>"
                  "<presence from='bob@example.com/pc'><priority>10</priority></presence>"
                  "<presence from='carol@example.com/x'><show>dnd</show><priority>-1</priority>"
                  "</presence>"),
      SCRIPT_EXPECT("<show>chat</show>"),
      SCRIPT_SEND("<presence from='bob@example.com/pc' type='unavailable'/>"
                  "<presence from='nobody@example.com' type='error'><error type='cancel'>"
                  "<remote-server-not-found xmlns='" NS_STANZAS "'/></error></presence>"),
      SCRIPT_EXPECT("to='room@muc.example.com/alice'"),
      SCRIPT_SEND("<presence from='carol@example.com' type='unavailable'/>"), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  app_t a;
  setup(&w, &a, scripts, 1, 1, 5);
  start(&w);
  RUN_UNTIL(&w, a.changes >= 3, 10000);
  ck_assert_uint_eq(a.changes, 3);
  const char *got = world_received(&w, 0, 0);
  /* The roster first, then initial presence (RFC 6121 §2.2). */
  ck_assert_ptr_nonnull(strstr(got, "<status>here</status>"));
  ck_assert(strstr(got, NS_R) < strstr(got, "<presence"));
  ck_assert_uint_eq(xmppuv_presence_contact_count(a.p), 2);
  ck_assert_uint_eq(xmppuv_presence_count(a.p, "bob@example.com"), 2);
  const xmppuv_presence_info_t *best = xmppuv_presence_best(a.p, "bob@example.com");
  ck_assert_ptr_nonnull(best);
  ck_assert_str_eq(best->jid, "bob@example.com/pc");
  ck_assert_int_eq(best->priority, 10);
  const xmppuv_presence_info_t *phone = xmppuv_presence_best(a.p, "bob@example.com/phone");
  ck_assert_ptr_nonnull(phone);
  ck_assert_int_eq(phone->show, XMPPUV_SHOW_AWAY);
  ck_assert_str_eq(phone->status, "out");
  ck_assert_str_eq(phone->resource, "phone");
  ck_assert_int_eq(phone->priority, 1);
  ck_assert_int_eq(xmppuv_presence_best(a.p, "carol@example.com")->priority, -1);
  /* Ours changes: sent now, we are online. */
  ck_assert_int_eq(xmppuv_presence_set(a.p, XMPPUV_SHOW_CHAT, "talk to me", 7), 0);
  ck_assert_int_eq(xmppuv_presence_set(a.p, XMPPUV_SHOW_CHAT, NULL, 200), XMPPUV_EINVAL);
  RUN_UNTIL(&w, a.changes >= 4 && a.errors >= 1, 10000);
  ck_assert_uint_eq(a.errors, 1);
  ck_assert_str_eq(a.last_error_cond, "remote-server-not-found");
  best = xmppuv_presence_best(a.p, "bob@example.com");
  ck_assert_ptr_nonnull(best);
  ck_assert_str_eq(best->jid, "bob@example.com/phone");
  ck_assert_uint_eq(xmppuv_presence_count(a.p, "bob@example.com"), 1);
  /* Directed presence. */
  ck_assert_int_eq(xmppuv_presence_send_to(a.p, "room@muc.example.com/alice", 1, NULL), 0);
  /* Unavailable from the bare JID: every resource gone. */
  RUN_UNTIL(&w, a.changes >= 5, 10000);
  ck_assert_uint_eq(xmppuv_presence_count(a.p, "carol@example.com"), 0);
  ck_assert_ptr_null(xmppuv_presence_best(a.p, "carol@example.com"));
  ck_assert_uint_eq(xmppuv_presence_contact_count(a.p), 1);
  ck_assert_str_eq(a.presence_log,
                   "bob@example.com/phone:away bob@example.com/pc:online carol@example.com/x:dnd "
                   "bob@example.com/pc:gone carol@example.com/x:gone ");
  finish(&w);
}
END_TEST

START_TEST(with_initial_off_no_presence_goes_out_until_set) {
  static const xmppuv_test_step_t s0[] = {LOGIN, SCRIPT_EXPECT("<presence"), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  app_t a;
  memset(&a, 0, sizeof a);
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  world_client_new(&w, &o);
  xmppuv_presence_options_t po;
  xmppuv_presence_options_init(&po);
  ck_assert_int_eq(po.initial, 1);
  po.initial = 0;
  ck_assert_int_eq(xmppuv_presence_new(w.c, &po, &presence_cbs, &a, &a.p), 0);
  /* Remembered while offline, not sent. */
  ck_assert_int_eq(xmppuv_presence_set(a.p, XMPPUV_SHOW_DND, "busy", 0), 0);
  start(&w);
  RUN_UNTIL(&w, w.app.onlines >= 1, 10000);
  RUN_FOR(&w, 200);
  ck_assert_ptr_null(strstr(world_received(&w, 0, 0), "<presence"));
  ck_assert_int_eq(xmppuv_presence_set(a.p, XMPPUV_SHOW_DND, "busy", 0), 0);
  RUN_UNTIL(&w, world_script_done(&w, 0, 0), 10000);
  ck_assert_ptr_nonnull(strstr(world_received(&w, 0, 0), "<show>dnd</show><status>busy</status>"));
  finish(&w);
}
END_TEST

START_TEST(bad_arguments_are_refused_and_free_detaches) {
  world_t w;
  app_t a;
  memset(&a, 0, sizeof a);
  world_init(&w);
  xmppuv_client_options_t o;
  world_opts(&o, 1);
  world_client_new(&w, &o);
  xmppuv_roster_t *r = NULL;
  xmppuv_roster_callbacks_t nocbs;
  memset(&nocbs, 0, sizeof nocbs);
  ck_assert_int_eq(xmppuv_roster_new(NULL, NULL, NULL, &r), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_roster_new(w.c, &nocbs, NULL, &r), XMPPUV_EINVAL);
  ck_assert_ptr_null(r);
  ck_assert_int_eq(xmppuv_roster_new(w.c, NULL, NULL, &r), 0);
  xmppuv_roster_item_t it;
  memset(&it, 0, sizeof it);
  it.jid = "a@@b";
  ck_assert_int_eq(xmppuv_roster_import_item(r, &it), XMPPUV_EINVAL);
  it.jid = "a@b";
  ck_assert_int_eq(xmppuv_roster_import_item(r, &it), 0);
  it.subscription = XMPPUV_SUB_REMOVE;
  ck_assert_int_eq(xmppuv_roster_import_item(r, &it), 0);
  ck_assert_uint_eq(xmppuv_roster_count(r), 0);
  ck_assert_ptr_null(xmppuv_roster_item_at(r, 0));
  xmppuv_roster_free(r);
  xmppuv_roster_free(NULL);
  xmppuv_presence_t *p = NULL;
  xmppuv_presence_options_t po;
  xmppuv_presence_options_init(&po);
  po.priority = 128;
  ck_assert_int_eq(xmppuv_presence_new(w.c, &po, NULL, NULL, &p), XMPPUV_EINVAL);
  po.priority = -128;
  ck_assert_int_eq(xmppuv_presence_new(w.c, &po, NULL, NULL, &p), 0);
  ck_assert_int_eq(xmppuv_presence_send_to(p, "x@@y", 1, NULL) < 0, 1);
  xmppuv_presence_free(p);
  xmppuv_presence_free(NULL);
  ck_assert_str_eq(xmppuv_subscription_name(XMPPUV_SUB_FROM), "from");
  ck_assert_str_eq(xmppuv_show_name(XMPPUV_SHOW_XA), "xa");
  ck_assert_ptr_null(xmppuv_show_name((xmppuv_show_t)9));
  finish(&w);
}
END_TEST

/* A push that ends our subscription to a contact, or their 'unsubscribed',
 * drops what was tracked of them (not every server sends unavailable
 * then). */
START_TEST(losing_the_subscription_drops_the_contacts_presence) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN, SCRIPT_EXPECT(NS_R), SCRIPT_SEND(ROSTER_RESULT), SCRIPT_EXPECT("<presence"),
      SCRIPT_SEND("<presence from='bob@example.com/pc'/><presence from='carol@example.com/x'/>"
                  "<presence from='dave@example.com/y'/>"),
      SCRIPT_DELAY(100),
      SCRIPT_SEND(PUSH(" from='mallory@evil.example'", "p0",
                       "<item jid='dave@example.com' subscription='remove'/>")
                  PUSH("", "p1", "<item jid='bob@example.com' subscription='remove'/>")
                  "<presence from='carol@example.com' type='unsubscribed'/>"),
      SCRIPT_EXPECT("'p1'"), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  app_t a;
  setup(&w, &a, scripts, 1, 1, 0);
  start(&w);
  RUN_UNTIL(&w, a.changes >= 3, 10000);
  ck_assert_uint_eq(xmppuv_presence_contact_count(a.p), 3);
  RUN_UNTIL(&w, a.changes >= 5 && a.answers >= 1, 10000);
  ck_assert_uint_eq(xmppuv_presence_count(a.p, "bob@example.com"), 0);
  ck_assert_uint_eq(xmppuv_presence_count(a.p, "carol@example.com"), 0);
  /* The spoofed push changed nothing here either. */
  ck_assert_uint_eq(xmppuv_presence_count(a.p, "dave@example.com"), 1);
  ck_assert_uint_eq(a.changes, 5);
  finish(&w);
}
END_TEST

/* With a disco module, our presence carries its capabilities (XEP-0115). */
START_TEST(our_presence_carries_the_disco_modules_caps) {
  static const xmppuv_test_step_t s0[] = {LOGIN, SCRIPT_EXPECT("</presence>"), SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  app_t a;
  memset(&a, 0, sizeof a);
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  world_client_new(&w, &o);
  xmppuv_disco_t *d;
  xmppuv_disco_identity_t id = {"client", "pc", "tests", NULL};
  ck_assert_int_eq(xmppuv_disco_new(w.c, &id, "https://example.org/t", &d), 0);
  xmppuv_presence_options_t po;
  xmppuv_presence_options_init(&po);
  po.disco = d;
  ck_assert_int_eq(xmppuv_presence_new(w.c, &po, &presence_cbs, &a, &a.p), 0);
  start(&w);
  RUN_UNTIL(&w, world_script_done(&w, 0, 0), 10000);
  const char *got = world_received(&w, 0, 0);
  ck_assert_msg(strstr(got, "<c xmlns='http://jabber.org/protocol/caps'") != NULL, "sent: %s", got);
  ck_assert_ptr_nonnull(strstr(got, xmppuv_disco_caps_ver(d)));
  finish(&w);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("im_roster");
  TCase *tc = tcase_create("im_roster");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, without_versioning_the_fetch_has_no_ver_and_the_result_replaces_the_roster);
  tcase_add_test(tc, with_versioning_the_ver_is_sent_and_an_empty_result_keeps_the_imported_items);
  tcase_add_test(tc, with_versioning_and_no_version_kept_the_fetch_bootstraps_with_an_empty_ver);
  tcase_add_test(tc, a_failed_fetch_is_reported_with_the_error_reply);
  tcase_add_test(tc, a_push_is_applied_and_acknowledged_and_a_remove_push_removes);
  tcase_add_loop_test(tc, a_push_counts_only_without_from_or_from_our_bare_jid, 0,
                      (int)(sizeof push_froms / sizeof push_froms[0]));
  tcase_add_test(tc, a_push_with_two_items_is_a_bad_request_and_changes_nothing);
  tcase_add_test(tc, resumed_does_not_refetch_or_resend_presence_and_a_new_session_does);
  tcase_add_test(tc, subscription_requests_and_answers_are_reported_and_answered);
  tcase_add_test(tc, with_pre_approval_offered_approving_first_is_a_pre_approval);
  tcase_add_test(tc, set_and_remove_send_the_item_and_report_the_outcome);
  tcase_add_test(tc, contact_resources_are_tracked_with_show_status_and_priority);
  tcase_add_test(tc, with_initial_off_no_presence_goes_out_until_set);
  tcase_add_test(tc, losing_the_subscription_drops_the_contacts_presence);
  tcase_add_test(tc, our_presence_carries_the_disco_modules_caps);
  tcase_add_test(tc, bad_arguments_are_refused_and_free_detaches);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
