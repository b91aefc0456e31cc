/* The chat layer's archive module (lib/im/mam.c) against a scripted
 * server: paging with RSM until complete, the last id kept for catching
 * up, and results that are not results (a stranger's, a full JID's, an
 * unknown query's) kept out of the history. */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>
#include <xmppuv.h>

#include "check_main.h"
#include "client_world.h"
#include "login_script.h"

/* A result from sender (NULL: no from) for query qid, archive id aid. */
#define RESULT(from_attr, qid, aid, body)                                                 \
  "<message to='alice@localhost/r0'" from_attr "><result xmlns='urn:xmpp:mam:2' queryid='" \
  qid "' id='" aid "'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' " \
  "stamp='2026-12-07T08:00:00Z'/><message xmlns='jabber:client' from='bob@localhost/b' "   \
  "to='alice@localhost' type='chat'><body>" body "</body></message></forwarded></result>"   \
  "</message>"
#define FIN(complete, last) FIN_FROM("", complete, last)
/* The reply to a query sent to a room comes from the room (the client
 * matches replies by sender too). */
#define FIN_FROM(from_attr, complete, last)                                           \
  "<iq type='result' id='{id}'" from_attr "><fin xmlns='urn:xmpp:mam:2' complete='" complete "'>"  \
  "<set xmlns='http://jabber.org/protocol/rsm'><last>" last "</last></set></fin></iq>"

typedef struct seen {
  char bodies[512];
  char ids[256];
  int done, status, complete;
  unsigned count;
  char last[32];
  int spoofed;
} seen_t;

static void on_msg(xmppuv_mam_t *m, const xmppuv_mam_message_t *r, void *ud) {
  (void)m;
  seen_t *s = ud;
  const char *body = xmppuv_stanza_child_text(r->message, "body", NULL);
  size_t n = strlen(s->bodies);
  snprintf(s->bodies + n, sizeof s->bodies - n, "%s ", body != NULL ? body : "?");
  n = strlen(s->ids);
  snprintf(s->ids + n, sizeof s->ids - n, "%s ", r->id);
  ck_assert_str_eq(r->archive, "alice@localhost");
  ck_assert_str_eq(r->stamp, "2026-12-07T08:00:00Z");
}

static void on_done(xmppuv_mam_t *m, int status, int complete, const char *last,
                    unsigned count, void *ud) {
  (void)m;
  seen_t *s = ud;
  s->done++;
  s->status = status;
  s->complete = complete;
  s->count = count;
  snprintf(s->last, sizeof s->last, "%s", last != NULL ? last : "");
}

static void on_spoofed(xmppuv_mam_t *m, xmppuv_stanza_t *msg, void *ud) {
  (void)m, (void)msg;
  ((seen_t *)ud)->spoofed++;
}

/* Three pages of two: the second asks after the first's last id, the
 * third after the second's; the archive says complete on the third.
 * Mixed in: a result from a stranger, one from our own full JID, and one
 * for a query that does not exist: none of them in the history. */
START_TEST(pages_are_read_to_the_end_and_forged_results_are_dropped) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN,
      SCRIPT_EXPECT("<max>2</max></set></query></iq>"),
      SCRIPT_SEND(RESULT("", "mam-1", "a1", "one")),
      SCRIPT_SEND(RESULT(" from='mallory@evil.example'", "mam-1", "x1", "forged")),
      SCRIPT_SEND(RESULT(" from='alice@localhost'", "mam-1", "a2", "two")),
      SCRIPT_SEND(FIN("false", "a2")),
      SCRIPT_EXPECT("<after>a2</after>"), SCRIPT_EXPECT("</iq>"),
      SCRIPT_SEND(RESULT(" from='alice@localhost/r0'", "mam-1", "x2", "forged-full")),
      SCRIPT_SEND(RESULT("", "mam-9", "x3", "no-such-query")),
      SCRIPT_SEND(RESULT("", "mam-1", "a3", "three")),
      SCRIPT_SEND(RESULT("", "mam-1", "a4", "four")),
      SCRIPT_SEND(FIN("false", "a4")),
      SCRIPT_EXPECT("<after>a4</after>"), SCRIPT_EXPECT("</iq>"),
      SCRIPT_SEND(RESULT("", "mam-1", "a5", "five")),
      SCRIPT_SEND(FIN("true", "a5")),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  world_client_new(&w, &o);
  seen_t s;
  memset(&s, 0, sizeof s);
  xmppuv_mam_callbacks_t cbs = {sizeof cbs, on_spoofed};
  xmppuv_mam_t *m = NULL;
  ck_assert_int_eq(xmppuv_mam_new(w.c, NULL, &cbs, &s, &m), 0);
  ck_assert_int_eq(xmppuv_client_start(w.c), 0);
  RUN_UNTIL(&w, w.app.onlines >= 1, 10000);
  xmppuv_mam_filter_t f;
  memset(&f, 0, sizeof f);
  f.page_size = 2;
  ck_assert_int_eq(xmppuv_mam_query(m, &f, on_msg, on_done, &s), 0);
  RUN_UNTIL(&w, s.done == 1, 10000);
  ck_assert_int_eq(s.done, 1);
  ck_assert_int_eq(s.status, 0);
  ck_assert_int_eq(s.complete, 1);
  ck_assert_uint_eq(s.count, 5);
  ck_assert_str_eq(s.bodies, "one two three four five ");
  ck_assert_str_eq(s.ids, "a1 a2 a3 a4 a5 ");
  ck_assert_str_eq(s.last, "a5");
  ck_assert_int_eq(s.spoofed, 3);
  /* The forged ones reached no handler of the app either. */
  ck_assert_uint_eq(w.app.errors, 0);
  const char *got = world_received(&w, 0, 0);
  /* Our own archive: no 'to'. */
  ck_assert_ptr_nonnull(strstr(got, "<iq type='set'"));
  ck_assert_ptr_null(strstr(got, "<iq type='set' to="));
  world_finish(&w);
}
END_TEST

/* Catching up from the last id kept, with a page limit: after_id goes in
 * the first page's <set/>, and the query stops after max_pages, not
 * complete, with the id to go on from. A room's archive gets 'to' and its
 * results must come from the room. */
START_TEST(a_catch_up_starts_after_the_kept_id_and_a_page_limit_stops_it) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN,
      SCRIPT_EXPECT("<after>k9</after>"), SCRIPT_EXPECT("</iq>"),
      SCRIPT_SEND(RESULT("", "mam-1", "k10", "ten")),
      SCRIPT_SEND(FIN("false", "k10")),
      SCRIPT_EXPECT("to='room@conference.localhost'"), SCRIPT_EXPECT("</iq>"),
      SCRIPT_SEND(RESULT(" from='room@conference.localhost'", "mam-2", "r1", "in-room")),
      SCRIPT_SEND(RESULT("", "mam-2", "r2", "no-from")),
      SCRIPT_SEND(FIN_FROM(" from='room@conference.localhost'", "true", "r1")),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  world_client_new(&w, &o);
  seen_t s;
  memset(&s, 0, sizeof s);
  xmppuv_mam_callbacks_t cbs = {sizeof cbs, on_spoofed};
  xmppuv_mam_t *m = NULL;
  ck_assert_int_eq(xmppuv_mam_new(w.c, NULL, &cbs, &s, &m), 0);
  ck_assert_int_eq(xmppuv_client_start(w.c), 0);
  RUN_UNTIL(&w, w.app.onlines >= 1, 10000);
  xmppuv_mam_filter_t f;
  memset(&f, 0, sizeof f);
  f.after_id = "k9";
  f.page_size = 1;
  f.max_pages = 1;
  ck_assert_int_eq(xmppuv_mam_query(m, &f, on_msg, on_done, &s), 0);
  RUN_UNTIL(&w, s.done == 1, 10000);
  ck_assert_int_eq(s.status, 0);
  ck_assert_int_eq(s.complete, 0);
  ck_assert_str_eq(s.last, "k10");
  ck_assert_str_eq(s.bodies, "ten ");
  /* The room's archive. */
  memset(&s, 0, sizeof s);
  xmppuv_mam_filter_t rf;
  memset(&rf, 0, sizeof rf);
  rf.archive = "room@conference.localhost";
  ck_assert_int_eq(xmppuv_mam_query(m, &rf, NULL, on_done, &s), 0);
  RUN_UNTIL(&w, s.done == 1, 10000);
  ck_assert_int_eq(s.complete, 1);
  ck_assert_uint_eq(s.count, 1);
  ck_assert_int_eq(s.spoofed, 1); /* a result without 'from' is not the room's */
  world_finish(&w);
}
END_TEST

/* An archive that says "not complete" and ends every page where the last
 * one ended would be asked for ever: the query ends, EPROTO. */
START_TEST(an_archive_that_makes_no_progress_ends_the_query) {
  static const xmppuv_test_step_t s0[] = {
      LOGIN,
      SCRIPT_EXPECT("<max>50</max>"), SCRIPT_EXPECT("</iq>"),
      SCRIPT_SEND(RESULT("", "mam-1", "a1", "one")),
      SCRIPT_SEND(FIN("false", "a1")),
      SCRIPT_EXPECT("<after>a1</after>"), SCRIPT_EXPECT("</iq>"),
      SCRIPT_SEND(FIN("false", "a1")),
      SCRIPT_END};
  static const xmppuv_test_step_t *const scripts[] = {s0};
  world_t w;
  world_init(&w);
  world_server(&w, 0, scripts, 1);
  xmppuv_client_options_t o;
  world_opts(&o, world_port(&w, 0));
  world_client_new(&w, &o);
  seen_t s;
  memset(&s, 0, sizeof s);
  xmppuv_mam_t *m = NULL;
  ck_assert_int_eq(xmppuv_mam_new(w.c, NULL, NULL, NULL, &m), 0);
  ck_assert_int_eq(xmppuv_client_start(w.c), 0);
  RUN_UNTIL(&w, w.app.onlines >= 1, 10000);
  xmppuv_mam_filter_t f;
  memset(&f, 0, sizeof f);
  ck_assert_int_eq(xmppuv_mam_query(m, &f, on_msg, on_done, &s), 0);
  RUN_UNTIL(&w, s.done == 1, 10000);
  ck_assert_int_eq(s.done, 1);
  ck_assert_int_eq(s.status, XMPPUV_EPROTO);
  ck_assert_uint_eq(s.count, 1);
  ck_assert_str_eq(s.last, "a1");
  RUN_FOR(&w, 200);
  ck_assert(world_script_done(&w, 0, 0)); /* and no third page was asked for */
  ck_assert_int_eq(world_count(world_received(&w, 0, 0), "urn:xmpp:mam:2"), 2);
  world_finish(&w);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("im_mam");
  TCase *tc = tcase_create("mam");
  tcase_add_test(tc, pages_are_read_to_the_end_and_forged_results_are_dropped);
  tcase_add_test(tc, a_catch_up_starts_after_the_kept_id_and_a_page_limit_stops_it);
  tcase_add_test(tc, an_archive_that_makes_no_progress_ends_the_query);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
