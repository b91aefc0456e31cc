/* The XEP-0198 Stream Management engine (lib/sm), driven by a fake driver
 * with a fake clock (support/sm_harness.h). One test per rule of the issue,
 * named after the behaviour; transcripts are compared byte for byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "failalloc.h"
#include "sm/delay.h"
#include "sm/persist.h"
#include "sm/queue.h"
#include "sm/sm.h"
#include "sm_harness.h"
#include "xml/serialize.h"
#include "xmppuv.h"

#define R "<r xmlns='urn:xmpp:sm:3'/>"
#define A(n) "<a xmlns='urn:xmpp:sm:3' h='" #n "'/>"
#define ENABLE "<enable xmlns='urn:xmpp:sm:3' resume='true'/>"
#define ENABLED "<enabled xmlns='urn:xmpp:sm:3' id='sm-1' resume='true'/>"
#define RESUME(h) "<resume xmlns='urn:xmpp:sm:3' h='" #h "' previd='sm-1'/>"
#define RESUMED(h) "<resumed xmlns='urn:xmpp:sm:3' h='" #h "' previd='sm-1'/>"
#define FAILED(cond)                                 \
  "<failed xmlns='urn:xmpp:sm:3'><" cond             \
  " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"
#define MSG(id) "<message to='romeo@example.net' id='" id "'><body>hi</body></message>"
/* A message as written later than sent: stamped with our JID and the send
 * time, before the end tag (XEP-0203, XEP-0082). */
#define STAMPED(id, stamp)                                              \
  "<message to='romeo@example.net' id='" id "'><body>hi</body>"         \
  "<delay xmlns='urn:xmpp:delay' from='" SMH_JID "' stamp='" stamp "'/>" \
  "</message>"
#define T0 "2023-11-14T22:13:20.000Z" /* SMH_START_WALL */
#define IQ(id) "<iq type='get' id='" id "'><ping xmlns='urn:xmpp:ping'/></iq>"
#define PRES(id) "<presence id='" id "'></presence>"
#define IN_MSG "<message from='romeo@example.net/x' to='" SMH_JID "'><body>yo</body></message>"
#define TOO_HIGH(h, sent)                                                  \
  "<stream:error><undefined-condition "                                    \
  "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><handled-count-too-high "  \
  "xmlns='urn:xmpp:sm:3' h='" #h "' send-count='" #sent                    \
  "'/></stream:error></stream:stream>"

static size_t count_of(const char *hay, const char *needle) {
  size_t n = 0;
  for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
  return n;
}

/* A blob with the given counters and no stanzas, made by the real encoder,
 * so a test can start an engine near 2^32 through the real import path. */
static void import_counters(smh_t *h, uint32_t out_count, uint32_t in_h) {
  xmppuv__smp_header_t hdr;
  memset(&hdr, 0, sizeof hdr);
  hdr.sm_id = "sm-1";
  hdr.sm_id_len = 4;
  hdr.resumable = 1;
  hdr.full_jid = SMH_JID;
  hdr.full_jid_len = strlen(SMH_JID);
  hdr.out_count = out_count;
  hdr.in_h = in_h;
  hdr.lost_wall_ms = h->now.wall_ms;
  xmppuv__smq_t q;
  xmppuv__smq_init(&q, 1);
  xmppuv__buf_t blob = XMPPUV__BUF_INIT;
  ck_assert_int_eq(xmppuv__smp_encode(&blob, &hdr, &q, 0), 0);
  ck_assert_int_eq(xmppuv__sm_import(h->sm, blob.data, blob.len, NULL, NULL), 0);
  xmppuv__buf_free(&blob);
  xmppuv__smq_free(&q);
}

/* ---- 1. enable ------------------------------------------------------------ */

START_TEST(enable_is_written_after_bind_with_resume_and_max) {
  xmppuv__sm_config_t cfg;
  xmppuv__sm_config_defaults(&cfg);
  cfg.max_resume_s = 300;
  smh_t h;
  smh_init(&h, &cfg);
  smh_authenticated(&h);
  ck_assert_str_eq(smh_take(&h), "");
  ck_assert_int_eq(smh_enable(&h, 1), 0);
  ck_assert_str_eq(smh_take(&h),
                   "<enable xmlns='urn:xmpp:sm:3' resume='true' max='300'/>");
  ck_assert_int_eq(xmppuv__sm_active(h.sm), 0);
  smh_free(&h);
}
END_TEST

START_TEST(online_is_raised_only_after_enabled_arrives) {
  smh_t h;
  smh_init(&h, NULL);
  smh_authenticated(&h);
  ck_assert_int_eq(smh_enable(&h, 1), 0);
  smh_advance(&h, 1000);
  ck_assert_str_eq(smh_take(&h), ENABLE);
  ck_assert_int_eq(h.enable_results, 0);
  ck_assert_int_eq(smh_in(&h, ENABLED), 1);
  ck_assert_str_eq(smh_take(&h), "[enabled]");
  ck_assert_int_eq(xmppuv__sm_active(h.sm), 1);
  ck_assert_int_eq(xmppuv__sm_resumable(h.sm), 1);
  ck_assert_str_eq(xmppuv__sm_id(h.sm), "sm-1");
  smh_free(&h);
}
END_TEST

static void send_initial_presence(smh_t *h, int enabled) {
  (void)enabled;
  ck_assert_int_eq(smh_send(h, "<presence id='p1'/>"), 0);
}

START_TEST(online_handler_sends_are_counted_and_protected) {
  smh_t h;
  smh_init(&h, NULL);
  h.on_enable_result = send_initial_presence;
  smh_authenticated(&h);
  ck_assert_int_eq(smh_enable(&h, 1), 0);
  ck_assert_int_eq(smh_in(&h, ENABLED), 1);
  ck_assert_str_eq(smh_take(&h), ENABLE "[enabled]" PRES("p1"));
  ck_assert_uint_eq(xmppuv__sm_unacked(h.sm), 1);
  ck_assert_uint_eq(xmppuv__sm_outbound_count(h.sm), 1);
  smh_advance(&h, 250);
  ck_assert_str_eq(smh_take(&h), R);
  ck_assert_int_eq(smh_in(&h, A(1)), 1);
  ck_assert_str_eq(smh_take(&h), "[done p1 OK]");
  smh_assert_each_done_once(&h);
  smh_free(&h);
}
END_TEST

START_TEST(enable_failed_goes_on_without_sm_and_says_so) {
  smh_t h;
  smh_init(&h, NULL);
  smh_authenticated(&h);
  ck_assert_int_eq(smh_enable(&h, 1), 0);
  smh_take(&h);
  ck_assert_int_eq(smh_in(&h, FAILED("feature-not-implemented")), 1);
  ck_assert_str_eq(smh_take(&h), "[not-enabled feature-not-implemented]");
  ck_assert_int_eq(xmppuv__sm_active(h.sm), 0);
  ck_assert_int_eq(xmppuv__sm_resumable(h.sm), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  ck_assert_str_eq(smh_take(&h), MSG("m1") "[done m1 ESMOFF]");
  /* No SM: <r/> is not answered, nothing is counted or requested. */
  ck_assert_int_eq(smh_in(&h, R), 1);
  ck_assert_int_eq(smh_in(&h, IN_MSG), 0);
  smh_advance(&h, 120000);
  ck_assert_str_eq(smh_take(&h), "");
  ck_assert_uint_eq(xmppuv__sm_deadline(h.sm), XMPPUV__NO_DEADLINE);
  smh_assert_each_done_once(&h);
  smh_free(&h);
}
END_TEST

START_TEST(server_without_sm_gets_online_at_once) {
  smh_t h;
  smh_init(&h, NULL);
  smh_authenticated(&h);
  ck_assert_int_eq(smh_enable(&h, 0), 0);
  ck_assert_str_eq(smh_take(&h), "[not-enabled -]");
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  ck_assert_str_eq(smh_take(&h), MSG("m1") "[done m1 ESMOFF]");
  ck_assert_uint_eq(xmppuv__sm_queued(h.sm), 0);
  smh_free(&h);
}
END_TEST

START_TEST(sm_turned_off_never_enables) {
  xmppuv__sm_config_t cfg;
  xmppuv__sm_config_defaults(&cfg);
  cfg.enabled = 0;
  smh_t h;
  smh_init(&h, &cfg);
  smh_authenticated(&h);
  ck_assert_int_eq(smh_enable(&h, 1), 0);
  ck_assert_str_eq(smh_take(&h), "[not-enabled -]");
  ck_assert_int_eq(xmppuv__sm_active(h.sm), 0);
  smh_free(&h);
}
END_TEST

START_TEST(resume_turned_off_enables_without_resumption) {
  xmppuv__sm_config_t cfg;
  xmppuv__sm_config_defaults(&cfg);
  cfg.resume = 0;
  cfg.max_resume_s = 300; /* meaningless without resumption: not sent */
  smh_t h;
  smh_init(&h, &cfg);
  smh_authenticated(&h);
  ck_assert_int_eq(smh_enable(&h, 1), 0);
  ck_assert_str_eq(smh_take(&h), "<enable xmlns='urn:xmpp:sm:3'/>");
  ck_assert_int_eq(smh_in(&h, ENABLED), 1);
  ck_assert_int_eq(xmppuv__sm_active(h.sm), 1);
  ck_assert_int_eq(xmppuv__sm_resumable(h.sm), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  smh_disconnect(&h);
  smh_authenticated(&h);
  ck_assert_int_eq(xmppuv__sm_can_resume(h.sm, h.now), 0);
  ck_assert_int_eq(xmppuv__sm_resume(h.sm, h.now), XMPPUV_ESTATE);
  smh_take(&h);
  ck_assert_int_eq(smh_enable(&h, 1), 0);
  ck_assert_str_eq(smh_take(&h),
                   "[done m1 ESMFAILED]<enable xmlns='urn:xmpp:sm:3'/>");
  smh_free(&h);
}
END_TEST

START_TEST(sm_reoffered_after_enable_is_ignored) {
  smh_t h;
  smh_init(&h, NULL);
  smh_authenticated(&h);
  ck_assert_int_eq(smh_enable(&h, 1), 0);
  smh_take(&h);
  /* <sm/> seen again while <enable/> is pending, then once SM is on. */
  ck_assert_int_eq(smh_enable(&h, 1), XMPPUV_ESTATE);
  ck_assert_int_eq(smh_in(&h, ENABLED), 1);
  ck_assert_int_eq(smh_enable(&h, 1), XMPPUV_ESTATE);
  ck_assert_str_eq(smh_take(&h), "[enabled]");
  ck_assert_int_eq(h.enable_results, 1);
  ck_assert_int_eq(xmppuv__sm_active(h.sm), 1);
  smh_free(&h);
}
END_TEST

START_TEST(stanzas_sent_between_enable_and_enabled_are_counted_and_kept) {
  smh_t h;
  smh_init(&h, NULL);
  smh_authenticated(&h);
  ck_assert_int_eq(smh_enable(&h, 1), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  ck_assert_int_eq(smh_send(&h, IQ("q1")), 0);
  /* Written at once (the count started with <enable/>), no <r/> yet. */
  ck_assert_str_eq(smh_take(&h), ENABLE MSG("m1") IQ("q1"));
  ck_assert_int_eq(smh_in(&h, ENABLED), 1);
  ck_assert_str_eq(smh_take(&h), "[enabled]");
  ck_assert_uint_eq(xmppuv__sm_unacked(h.sm), 2);
  smh_advance(&h, 250);
  ck_assert_str_eq(smh_take(&h), R);
  ck_assert_int_eq(smh_in(&h, A(2)), 1);
  ck_assert_str_eq(smh_take(&h), "[done m1 OK][done q1 OK]");
  smh_free(&h);
}
END_TEST

START_TEST(stanzas_sent_between_enable_and_failed_are_done_with_ESMOFF) {
  smh_t h;
  smh_init(&h, NULL);
  smh_authenticated(&h);
  ck_assert_int_eq(smh_enable(&h, 1), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  smh_take(&h);
  ck_assert_int_eq(smh_in(&h, FAILED("unexpected-request")), 1);
  ck_assert_str_eq(smh_take(&h),
                   "[done m1 ESMOFF][not-enabled unexpected-request]");
  ck_assert_uint_eq(xmppuv__sm_queued(h.sm), 0);
  smh_assert_each_done_once(&h);
  smh_free(&h);
}
END_TEST

START_TEST(stanzas_received_before_enabled_are_not_counted) {
  smh_t h;
  smh_init(&h, NULL);
  smh_authenticated(&h);
  ck_assert_int_eq(smh_enable(&h, 1), 0);
  ck_assert_int_eq(smh_in(&h, "<iq type='result' id='bind2'/>"), 0);
  ck_assert_int_eq(smh_in(&h, ENABLED), 1);
  ck_assert_int_eq(smh_in(&h, IN_MSG), 0);
  smh_take(&h);
  ck_assert_int_eq(smh_in(&h, R), 1);
  ck_assert_str_eq(smh_take(&h), A(1));
  smh_free(&h);
}
END_TEST

/* ---- 2. counting ------------------------------------------------------------ */

START_TEST(every_inbound_stanza_counts_before_dispatch) {
  static const char *in[] = {
      IN_MSG,
      "<presence from='romeo@example.net/x'/>",
      /* an iq result the iq tracker consumes */
      "<iq type='result' id='q1' from='example.com'/>",
      /* a stanza no handler wants */
      "<iq type='set' id='z' from='example.com'><x xmlns='urn:nobody'/></iq>",
      "<message type='error' from='nowhere'/>",
  };
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
    /* 0: the driver dispatches it; h already counts it. */
    ck_assert_int_eq(smh_in(&h, in[i]), 0);
    ck_assert_uint_eq(xmppuv__sm_inbound_count(h.sm), i + 1);
  }
  ck_assert_int_eq(smh_in(&h, R), 1);
  ck_assert_str_eq(smh_take(&h), A(5));
  smh_free(&h);
}
END_TEST

START_TEST(nonzas_are_never_counted) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_in(&h, A(0)), 1);
  ck_assert_int_eq(smh_in(&h, "<active xmlns='urn:xmpp:csi:0'/>"), 0);
  ck_assert_int_eq(smh_in(&h, "<message xmlns='urn:not-a-stanza'/>"), 0);
  ck_assert_int_eq(smh_in(&h, "<unknown xmlns='urn:xmpp:sm:3'/>"), 0);
  ck_assert_int_eq(smh_in(&h, R), 1);
  ck_assert_uint_eq(xmppuv__sm_inbound_count(h.sm), 0);
  ck_assert_str_eq(smh_take(&h), A(0));
  smh_free(&h);
}
END_TEST

START_TEST(h_wraps_from_2_32_minus_1_to_0_inbound) {
  smh_t h;
  smh_init(&h, NULL);
  import_counters(&h, 0, 4294967290u);
  smh_resume(&h);
  ck_assert_str_eq(smh_take(&h), "<resume xmlns='urn:xmpp:sm:3' h='4294967290' "
                                 "previd='sm-1'/>");
  ck_assert_int_eq(smh_in(&h, RESUMED(0)), 1);
  ck_assert_str_eq(smh_take(&h), "[resumed]");
  for (int i = 0; i < 5; i++) ck_assert_int_eq(smh_in(&h, IN_MSG), 0);
  ck_assert_int_eq(smh_in(&h, R), 1);
  ck_assert_str_eq(smh_take(&h), A(4294967295));
  ck_assert_int_eq(smh_in(&h, IN_MSG), 0);
  ck_assert_int_eq(smh_in(&h, R), 1);
  ck_assert_str_eq(smh_take(&h), A(0));
  for (int i = 0; i < 4; i++) ck_assert_int_eq(smh_in(&h, IN_MSG), 0);
  ck_assert_int_eq(smh_in(&h, R), 1);
  ck_assert_str_eq(smh_take(&h), A(4));
  smh_free(&h);
}
END_TEST

START_TEST(h_wraps_from_2_32_minus_1_to_0_outbound) {
  xmppuv__sm_config_t cfg;
  xmppuv__sm_config_defaults(&cfg);
  cfg.ack_debounce_ms = 0;
  smh_t h;
  smh_init(&h, &cfg);
  import_counters(&h, 4294967290u, 0);
  smh_resume(&h);
  ck_assert_int_eq(smh_in(&h, "<resumed xmlns='urn:xmpp:sm:3' h='4294967290' "
                              "previd='sm-1'/>"),
                   1);
  smh_take(&h);
  char id[8];
  for (int i = 0; i < 10; i++) {
    char xml[128];
    snprintf(id, sizeof id, "w%d", i);
    snprintf(xml, sizeof xml, "<message id='%s'><body>x</body></message>", id);
    ck_assert_int_eq(smh_send(&h, xml), 0);
  }
  ck_assert_uint_eq(xmppuv__sm_outbound_count(h.sm), 4u);
  smh_take(&h);
  ck_assert_int_eq(smh_in(&h, A(4294967295)), 1);
  ck_assert_str_eq(smh_take(&h), "[done w0 OK][done w1 OK][done w2 OK]"
                                 "[done w3 OK][done w4 OK]");
  ck_assert_int_eq(smh_in(&h, A(4)), 1);
  ck_assert_str_eq(smh_take(&h), "[done w5 OK][done w6 OK][done w7 OK]"
                                 "[done w8 OK][done w9 OK]");
  /* And one past what was sent, across the wrap, is too high. */
  ck_assert_int_eq(smh_in(&h, A(5)), 1);
  ck_assert_str_eq(smh_take(&h), TOO_HIGH(5, 4) "[abort ESMHIGH]");
  smh_assert_each_done_once(&h);
  smh_free(&h);
}
END_TEST

/* ---- 3. answering --------------------------------------------------------------- */

START_TEST(r_is_answered_at_once_with_h) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  for (int i = 0; i < 3; i++) ck_assert_int_eq(smh_in(&h, IN_MSG), 0);
  ck_assert_int_eq(smh_in(&h, R), 1);
  ck_assert_str_eq(smh_take(&h), "<a xmlns='urn:xmpp:sm:3' h='3'/>");
  smh_free(&h);
}
END_TEST

START_TEST(graceful_stop_sends_a_first) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_in(&h, IN_MSG), 0);
  ck_assert_int_eq(smh_in(&h, IN_MSG), 0);
  ck_assert_int_eq(xmppuv__sm_stop(h.sm, h.now), 0);
  ck_assert_str_eq(smh_take(&h), A(2));
  ck_assert_int_eq(xmppuv__sm_drained(h.sm, h.now), 1);
  smh_free(&h);
}
END_TEST

/* ---- 4. the queue ------------------------------------------------------------------ */

START_TEST(a_acks_covered_stanzas_in_order) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  ck_assert_int_eq(smh_send(&h, IQ("q2")), 0);
  ck_assert_int_eq(smh_send(&h, "<presence id='p3'/>"), 0);
  ck_assert_str_eq(smh_take(&h), MSG("m1") IQ("q2") PRES("p3"));
  ck_assert_int_eq(smh_in(&h, A(0)), 1);
  ck_assert_str_eq(smh_take(&h), "");
  ck_assert_int_eq(smh_in(&h, A(2)), 1);
  ck_assert_str_eq(smh_take(&h), "[done m1 OK][done q2 OK]");
  ck_assert_uint_eq(xmppuv__sm_queued(h.sm), 1);
  ck_assert_int_eq(smh_in(&h, A(2)), 1); /* the same h again: nothing */
  ck_assert_int_eq(smh_in(&h, A(3)), 1);
  ck_assert_str_eq(smh_take(&h), "[done p3 OK]");
  ck_assert_uint_eq(xmppuv__sm_queued(h.sm), 0);
  smh_assert_each_done_once(&h);
  smh_free(&h);
}
END_TEST

START_TEST(a_with_h_too_high_writes_stream_error_and_corrupts_nothing) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m2")), 0);
  ck_assert_int_eq(smh_in(&h, A(1)), 1);
  smh_take(&h);
  ck_assert_int_eq(smh_in(&h, A(5)), 1);
  ck_assert_str_eq(smh_take(&h), TOO_HIGH(5, 2) "[abort ESMHIGH]");
  /* The queue is as it was; the corrupt session is never resumed. */
  ck_assert_uint_eq(xmppuv__sm_queued(h.sm), 1);
  ck_assert_uint_eq(xmppuv__sm_unacked(h.sm), 1);
  ck_assert_ptr_null(xmppuv__sm_id(h.sm));
  ck_assert_int_eq(xmppuv__sm_resumable(h.sm), 0);
  /* Nothing more goes on the dead stream; a send is held. */
  ck_assert_int_eq(smh_in(&h, R), 1);
  ck_assert_int_eq(smh_send(&h, MSG("m3")), 0);
  ck_assert_str_eq(smh_take(&h), "");
  smh_disconnect(&h);
  smh_authenticated(&h);
  ck_assert_int_eq(xmppuv__sm_can_resume(h.sm, h.now), 0);
  ck_assert_int_eq(smh_enable(&h, 1), 0);
  ck_assert_str_eq(smh_take(&h), "[done m2 ESMFAILED]" ENABLE STAMPED("m3", T0));
  ck_assert_int_eq(smh_in(&h, ENABLED), 1);
  ck_assert_int_eq(smh_in(&h, A(1)), 1);
  ck_assert_str_eq(smh_take(&h), "[enabled][done m3 OK]");
  smh_assert_each_done_once(&h);
  smh_free(&h);
}
END_TEST

START_TEST(a_below_the_last_ack_is_outside_the_window) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m2")), 0);
  ck_assert_int_eq(smh_in(&h, A(2)), 1);
  smh_take(&h);
  ck_assert_int_eq(smh_in(&h, A(1)), 1);
  ck_assert_str_eq(smh_take(&h), TOO_HIGH(1, 2) "[abort ESMHIGH]");
  smh_free(&h);
}
END_TEST

START_TEST(a_without_a_valid_h_is_a_protocol_error) {
  static const char *bad[] = {
      "<a xmlns='urn:xmpp:sm:3'/>",
      "<a xmlns='urn:xmpp:sm:3' h=''/>",
      "<a xmlns='urn:xmpp:sm:3' h='abc'/>",
      "<a xmlns='urn:xmpp:sm:3' h='-1'/>",
      "<a xmlns='urn:xmpp:sm:3' h='+1'/>",
      "<a xmlns='urn:xmpp:sm:3' h='1.0'/>",
      "<a xmlns='urn:xmpp:sm:3' h='4294967296'/>",
      "<a xmlns='urn:xmpp:sm:3' h='99999999999999999999999'/>",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    smh_t h;
    smh_init(&h, NULL);
    smh_online(&h, 0);
    ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
    smh_take(&h);
    ck_assert_int_eq(smh_in(&h, bad[i]), 1);
    ck_assert_str_eq(smh_take(&h), "[abort EPROTO]");
    /* Nothing changed: the stanza is still owed, the session resumable. */
    ck_assert_uint_eq(xmppuv__sm_unacked(h.sm), 1);
    ck_assert_int_eq(xmppuv__sm_resumable(h.sm), 1);
    smh_disconnect(&h);
    smh_resume(&h);
    ck_assert_int_eq(smh_in(&h, RESUMED(1)), 1);
    ck_assert_str_eq(smh_take(&h), RESUME(0) "[done m1 OK][resumed]");
    smh_free(&h);
  }
}
END_TEST

START_TEST(stanza_changed_after_send_goes_out_as_it_was_sent) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  xmppuv_stanza_t *s;
  const char *xml = MSG("m1");
  ck_assert_int_eq(xmppuv_stanza_parse(xml, strlen(xml), &s), 0);
  ck_assert_int_eq(xmppuv__sm_send(h.sm, s, h.now, NULL, NULL), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(s, "to", "mallory@example.org"), 0);
  smh_take(&h);
  smh_disconnect(&h);
  smh_resume(&h);
  ck_assert_int_eq(smh_in(&h, RESUMED(0)), 1);
  ck_assert_str_eq(smh_take(&h), RESUME(0) STAMPED("m1", T0) "[resumed]");
  /* The app's stanza got no <delay/>. */
  ck_assert_ptr_null(xmppuv_stanza_child(s, "delay", NULL));
  xmppuv_stanza_unref(s);
  smh_free(&h);
}
END_TEST

/* ---- 5. requesting acks ----------------------------------------------------------------- */

START_TEST(debounce_folds_a_burst_into_one_r) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  for (int i = 0; i < 5; i++) {
    ck_assert_int_eq(smh_send(&h, MSG("m")), 0);
    smh_advance(&h, 100);
  }
  /* 100 ms after the last send: not yet. */
  smh_advance(&h, 149);
  ck_assert_uint_eq(count_of(smh_take(&h), R), 0);
  smh_advance(&h, 1);
  ck_assert_str_eq(smh_take(&h), R);
  smh_advance(&h, 1000);
  ck_assert_str_eq(smh_take(&h), "");
  smh_free(&h);
}
END_TEST

START_TEST(threshold_requests_an_ack_at_once) {
  xmppuv__sm_config_t cfg;
  xmppuv__sm_config_defaults(&cfg);
  cfg.ack_threshold = 3;
  smh_t h;
  smh_init(&h, &cfg);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m2")), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m3")), 0);
  ck_assert_str_eq(smh_take(&h), MSG("m1") MSG("m2") MSG("m3") R);
  /* The debounce was folded into it. */
  smh_advance(&h, 250);
  ck_assert_str_eq(smh_take(&h), "");
  ck_assert_int_eq(smh_send(&h, MSG("m4")), 0);
  smh_advance(&h, 250);
  ck_assert_str_eq(smh_take(&h), MSG("m4") R);
  smh_free(&h);
}
END_TEST

START_TEST(periodic_r_when_idle) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  smh_advance(&h, 29999);
  ck_assert_str_eq(smh_take(&h), "");
  smh_advance(&h, 1);
  ck_assert_str_eq(smh_take(&h), R);
  ck_assert_int_eq(smh_in(&h, A(0)), 1);
  smh_advance(&h, 30000);
  ck_assert_str_eq(smh_take(&h), R);
  smh_free(&h);
}
END_TEST

START_TEST(ack_timeout_drops_the_connection_without_closing_the_stream) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  smh_advance(&h, 250);
  ck_assert_str_eq(smh_take(&h), MSG("m1") R);
  smh_advance(&h, 59999);
  ck_assert_int_eq(h.aborts, 0);
  smh_advance(&h, 1);
  /* No </stream:stream>: the server keeps the session for resumption. */
  ck_assert_str_eq(smh_take(&h), R "[abort ETIMEDOUT]");
  ck_assert_uint_eq(xmppuv__sm_deadline(h.sm), XMPPUV__NO_DEADLINE);
  smh_disconnect(&h);
  smh_advance(&h, 1000);
  smh_resume(&h);
  ck_assert_int_eq(smh_in(&h, RESUMED(1)), 1);
  ck_assert_str_eq(smh_take(&h), RESUME(0) "[done m1 OK][resumed]");
  smh_free(&h);
}
END_TEST

START_TEST(periodic_r_does_not_postpone_the_ack_timeout) {
  smh_t h;
  smh_init(&h, NULL); /* periodic 30 s, ack timeout 60 s */
  smh_online(&h, 0);
  smh_advance(&h, 30000); /* first <r/>: deadline at 90 s */
  smh_advance(&h, 30000); /* second <r/> at 60 s must not move it */
  ck_assert_str_eq(smh_take(&h), R R);
  smh_advance(&h, 29999);
  ck_assert_int_eq(h.aborts, 0);
  smh_advance(&h, 1);
  ck_assert_str_eq(smh_take(&h), "[abort ETIMEDOUT]");
  ck_assert_int_eq(h.last_abort, XMPPUV_ETIMEDOUT);
  smh_free(&h);
}
END_TEST

START_TEST(any_inbound_data_clears_the_ack_timeout) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  smh_advance(&h, 30000); /* <r/>: deadline at 90 s */
  smh_advance(&h, 20000);
  /* A whitespace keepalive: bytes, no element. */
  xmppuv__sm_inbound_data(h.sm, h.now);
  smh_advance(&h, 10000); /* <r/> at 60 s: deadline 120 s */
  smh_advance(&h, 59999); /* <r/> at 90 s leaves it there */
  ck_assert_int_eq(h.aborts, 0);
  smh_advance(&h, 1);
  ck_assert_int_eq(h.aborts, 1);
  ck_assert_str_eq(smh_take(&h), R R R "[abort ETIMEDOUT]");
  smh_free(&h);
}
END_TEST

START_TEST(zero_turns_off_debounce_threshold_periodic_and_ack_timeout) {
  xmppuv__sm_config_t cfg;
  xmppuv__sm_config_defaults(&cfg);
  cfg.ack_debounce_ms = 0;
  cfg.ack_threshold = 0;
  cfg.idle_request_ms = 0;
  cfg.ack_timeout_ms = 0;
  smh_t h;
  smh_init(&h, &cfg);
  smh_online(&h, 0);
  for (int i = 0; i < 300; i++) ck_assert_int_eq(smh_send(&h, IQ("q")), 0);
  ck_assert_uint_eq(xmppuv__sm_deadline(h.sm), XMPPUV__NO_DEADLINE);
  smh_advance(&h, 3600000);
  ck_assert_uint_eq(count_of(smh_take(&h), R), 0);
  ck_assert_int_eq(h.aborts, 0);
  smh_free(&h);
}
END_TEST

/* ---- 6. resumption ------------------------------------------------------------------------ */

START_TEST(resume_is_offered_only_within_the_server_max) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 60);
  smh_disconnect(&h);
  smh_advance(&h, 59999);
  smh_authenticated(&h);
  ck_assert_int_eq(xmppuv__sm_can_resume(h.sm, h.now), 1);
  smh_disconnect(&h); /* never attached: the loss time stays */
  smh_advance(&h, 1);
  smh_authenticated(&h);
  ck_assert_int_eq(xmppuv__sm_can_resume(h.sm, h.now), 0);
  ck_assert_int_eq(xmppuv__sm_resume(h.sm, h.now), XMPPUV_ESTATE);
  smh_free(&h);

  /* No max from the server: ask it, however long it has been. */
  smh_init(&h, NULL);
  smh_online(&h, 0);
  smh_disconnect(&h);
  smh_advance(&h, 86400000);
  smh_authenticated(&h);
  ck_assert_int_eq(xmppuv__sm_can_resume(h.sm, h.now), 1);
  smh_free(&h);
}
END_TEST

START_TEST(location_is_kept_for_reconnection) {
  smh_t h;
  smh_init(&h, NULL);
  smh_authenticated(&h);
  ck_assert_int_eq(smh_enable(&h, 1), 0);
  ck_assert_ptr_null(xmppuv__sm_location(h.sm));
  ck_assert_int_eq(smh_in(&h, "<enabled xmlns='urn:xmpp:sm:3' id='sm-1' "
                              "location='[2001:db8::1]:5223' resume='1'/>"),
                   1);
  ck_assert_str_eq(xmppuv__sm_location(h.sm), "[2001:db8::1]:5223");
  smh_disconnect(&h);
  ck_assert_str_eq(xmppuv__sm_location(h.sm), "[2001:db8::1]:5223");
  smh_free(&h);
}
END_TEST

START_TEST(resumed_acks_then_resends_in_order_then_emits_resumed) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  ck_assert_int_eq(smh_send(&h, IQ("q2")), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m3")), 0);
  ck_assert_int_eq(smh_in(&h, IN_MSG), 0);
  smh_take(&h);
  smh_disconnect(&h);
  smh_advance(&h, 5000);
  smh_resume(&h);
  ck_assert_str_eq(smh_take(&h), RESUME(1));
  ck_assert_int_eq(smh_in(&h, RESUMED(1)), 1);
  ck_assert_str_eq(smh_take(&h), "[done m1 OK]" IQ("q2") STAMPED("m3", T0)
                                 "[resumed]");
  /* Online still; `online` was not raised again. */
  ck_assert_int_eq(xmppuv__sm_active(h.sm), 1);
  ck_assert_int_eq(h.enable_results, 1);
  ck_assert_int_eq(h.resumed_events, 1);
  ck_assert_int_eq(smh_send(&h, MSG("m4")), 0);
  ck_assert_str_eq(smh_take(&h), MSG("m4"));
  smh_advance(&h, 250);
  ck_assert_int_eq(smh_in(&h, A(4)), 1);
  ck_assert_str_eq(smh_take(&h), R "[done q2 OK][done m3 OK][done m4 OK]");
  smh_assert_each_done_once(&h);
  smh_free(&h);
}
END_TEST

START_TEST(resent_message_carries_one_delay_stamp_from_our_jid) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  h.now.wall_ms += 123; /* stamp: the send call's wall time, to the ms */
  xmppuv_stanza_t *s;
  const char *xml = MSG("m1");
  ck_assert_int_eq(xmppuv_stanza_parse(xml, strlen(xml), &s), 0);
  ck_assert_int_eq(xmppuv__sm_send(h.sm, s, h.now, NULL, NULL), 0);
  ck_assert_int_eq(xmppuv__sm_send(h.sm, s, h.now, NULL, NULL), 0);
  ck_assert_int_eq(smh_send(&h, PRES("p1")), 0);
  ck_assert_int_eq(smh_send(&h, IQ("q1")), 0);
  smh_take(&h);
  /* Resent twice (a disconnect during the first resumption): one stamp
   * each time, never two, and iq/presence are never stamped. */
  for (int round = 0; round < 2; round++) {
    smh_disconnect(&h);
    smh_advance(&h, 7000);
    smh_resume(&h);
    ck_assert_int_eq(smh_in(&h, RESUMED(0)), 1);
    ck_assert_str_eq(smh_take(&h),
                     RESUME(0) STAMPED("m1", "2023-11-14T22:13:20.123Z")
                         STAMPED("m1", "2023-11-14T22:13:20.123Z")
                             PRES("p1") IQ("q1") "[resumed]");
  }
  ck_assert_ptr_null(xmppuv_stanza_child(s, "delay", NULL));
  xmppuv_stanza_unref(s);
  smh_free(&h);
}
END_TEST

/* One write per stanza, its stamp included, so a connection cut between
 * writes never leaves part of a stanza at the server (the soak found
 * Prosody 0.12 parsing a resumed stream with the old connection's parser,
 * which such a part breaks with not-well-formed). */
static void note_write_end(smh_t *h) {
  size_t *ends = h->user;
  if (ends[0] < 15) ends[++ends[0]] = h->len;
}

START_TEST(resent_and_held_stamped_messages_are_written_one_piece_each) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m2")), 0);
  smh_disconnect(&h);
  ck_assert_int_eq(smh_send(&h, MSG("m3")), 0); /* held */
  smh_resume(&h);
  smh_take(&h);
  size_t ends[16] = {0};
  h.user = ends;
  h.on_write = note_write_end;
  ck_assert_int_eq(smh_in(&h, RESUMED(0)), 1);
  ck_assert_str_eq(smh_take(&h),
                   STAMPED("m1", T0) STAMPED("m2", T0) STAMPED("m3", T0) "[resumed]");
  size_t one = strlen(STAMPED("m1", T0));
  ck_assert_uint_eq(ends[0], 3);
  ck_assert_uint_eq(ends[1], one);
  ck_assert_uint_eq(ends[2], 2 * one);
  ck_assert_uint_eq(ends[3], 3 * one);
  smh_free(&h);
}
END_TEST

START_TEST(message_with_a_delay_already_is_not_stamped_again) {
#define OWN_DELAY                                                           \
  "<message id='m1'><body>hi</body><delay xmlns='urn:xmpp:delay' from='" \
  SMH_JID "' stamp='2020-01-01T00:00:00Z'/></message>"
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, OWN_DELAY), 0);
  smh_take(&h);
  smh_disconnect(&h);
  smh_resume(&h);
  ck_assert_int_eq(smh_in(&h, RESUMED(0)), 1);
  ck_assert_str_eq(smh_take(&h), RESUME(0) OWN_DELAY "[resumed]");
  smh_free(&h);
#undef OWN_DELAY
}
END_TEST

START_TEST(resume_with_nothing_queued) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  smh_disconnect(&h);
  smh_resume(&h);
  ck_assert_int_eq(smh_in(&h, RESUMED(0)), 1);
  ck_assert_str_eq(smh_take(&h), RESUME(0) "[resumed]");
  ck_assert_int_eq(xmppuv__sm_active(h.sm), 1);
  ck_assert_uint_eq(xmppuv__sm_queued(h.sm), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  ck_assert_str_eq(smh_take(&h), MSG("m1"));
  smh_free(&h);
}
END_TEST

START_TEST(resumed_with_h_too_high) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  smh_disconnect(&h);
  smh_resume(&h);
  smh_take(&h);
  ck_assert_int_eq(smh_in(&h, RESUMED(2)), 1);
  ck_assert_str_eq(smh_take(&h), TOO_HIGH(2, 1) "[abort ESMHIGH]");
  ck_assert_uint_eq(xmppuv__sm_unacked(h.sm), 1);
  ck_assert_int_eq(xmppuv__sm_resumable(h.sm), 0);
  ck_assert_int_eq(h.resumed_events, 0);
  smh_disconnect(&h);
  smh_authenticated(&h);
  ck_assert_int_eq(xmppuv__sm_can_resume(h.sm, h.now), 0);
  ck_assert_int_eq(smh_enable(&h, 1), 0);
  ck_assert_str_eq(smh_take(&h), "[done m1 ESMFAILED]" ENABLE);
  smh_free(&h);
}
END_TEST

/* A <resumed/> naming another session is not a resumption of ours: the
 * connection is dropped and the session given up, so the next connection
 * starts a new session instead of asking again (no reconnect loop). */
START_TEST(resumed_for_another_session_gives_the_session_up_and_a_new_one_starts) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  smh_disconnect(&h);
  smh_resume(&h);
  smh_take(&h);
  ck_assert_int_eq(smh_in(&h, "<resumed xmlns='urn:xmpp:sm:3' h='0' "
                              "previd='sm-2'/>"),
                   1);
  ck_assert_str_eq(smh_take(&h), "[abort EPROTO]");
  ck_assert_int_eq(h.resumed_events, 0);
  ck_assert_uint_eq(xmppuv__sm_unacked(h.sm), 1);
  ck_assert_int_eq(xmppuv__sm_resumable(h.sm), 0);
  smh_disconnect(&h);
  smh_authenticated(&h);
  ck_assert_int_eq(xmppuv__sm_can_resume(h.sm, h.now), 0);
  ck_assert_int_eq(smh_enable(&h, 1), 0);
  ck_assert_str_eq(smh_take(&h), "[done m1 ESMFAILED]" ENABLE);
  smh_free(&h);
}
END_TEST

/* ---- the poison rule ------------------------------------------------------- */

/* One cycle: the stream ends with a stream error a stanza may cause, the
 * next one resumes with h, and the transcript of the resumption is kept. */
static const char *error_then_resume(smh_t *h, const char *resumed) {
  xmppuv__sm_stream_error(h->sm);
  smh_disconnect(h);
  smh_resume(h);
  smh_take(h);
  ck_assert_int_eq(smh_in(h, resumed), 1);
  return smh_take(h);
}

START_TEST(poison_stanza_the_server_ends_the_stream_on_three_times_fails_alone) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("ok1")), 0);
  ck_assert_int_eq(smh_send(&h, MSG("bad")), 0);
  ck_assert_int_eq(smh_send(&h, MSG("ok2")), 0);
  smh_take(&h);
  /* The server handles ok1 and ends the stream on "bad", every time. */
  const char *out = error_then_resume(&h, RESUMED(1));
  ck_assert_msg(strncmp(out, "[done ok1 OK]", 13) == 0, "got %s", out);
  ck_assert_ptr_nonnull(strstr(out, "id='bad'"));
  out = error_then_resume(&h, RESUMED(1));
  ck_assert_ptr_nonnull(strstr(out, "id='bad'"));
  ck_assert_int_eq(smh_sent(&h, 1)->dones, 0);
  /* Third time: failed alone, not resent; ok2 is resent and counted from
   * the server's h, which never included "bad". */
  out = error_then_resume(&h, RESUMED(1));
  ck_assert_msg(strncmp(out, "[done bad EREJECTED]", 20) == 0, "got %s", out);
  ck_assert_ptr_null(strstr(out, "id='bad'"));
  ck_assert_ptr_nonnull(strstr(out, "id='ok2'"));
  ck_assert_uint_eq(xmppuv__sm_unacked(h.sm), 1);
  ck_assert_uint_eq(xmppuv__sm_outbound_count(h.sm), 2);
  ck_assert_int_eq(smh_in(&h, A(2)), 1);
  ck_assert_str_eq(smh_take(&h), "[done ok2 OK]");
  smh_assert_each_done_once(&h);
  ck_assert_int_eq(smh_sent(&h, 1)->status, XMPPUV_EREJECTED);
  smh_free(&h);
}
END_TEST

START_TEST(poison_rule_needs_three_stream_errors_in_a_row) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  smh_take(&h);
  error_then_resume(&h, RESUMED(0));
  error_then_resume(&h, RESUMED(0));
  /* A cut without a stream error (the network, not the stanza) breaks the
   * row: the count starts again. */
  smh_disconnect(&h);
  smh_resume(&h);
  ck_assert_int_eq(smh_in(&h, RESUMED(0)), 1);
  smh_take(&h);
  error_then_resume(&h, RESUMED(0));
  const char *out = error_then_resume(&h, RESUMED(0));
  ck_assert_ptr_nonnull(strstr(out, "id='m1'"));
  ck_assert_int_eq(smh_sent(&h, 0)->dones, 0);
  out = error_then_resume(&h, RESUMED(0));
  ck_assert_msg(strncmp(out, "[done m1 EREJECTED]", 19) == 0, "got %s", out);
  smh_free(&h);
}
END_TEST

START_TEST(poison_rule_does_not_blame_a_stanza_the_server_handled) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m2")), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m3")), 0);
  smh_take(&h);
  /* Each stream error comes after the server handled one more: never the
   * same stanza unhandled twice, so nothing is failed. */
  error_then_resume(&h, RESUMED(1));
  error_then_resume(&h, RESUMED(2));
  error_then_resume(&h, RESUMED(3));
  smh_assert_each_done_once(&h);
  for (size_t i = 0; i < 3; i++) ck_assert_int_eq(smh_sent(&h, i)->status, 0);
  smh_free(&h);
}
END_TEST

START_TEST(poison_rule_holds_with_failed_resumption_and_the_resend_policy) {
  xmppuv__sm_config_t cfg;
  xmppuv__sm_config_defaults(&cfg);
  cfg.resend_on_failed = 1;
  smh_t h;
  smh_init(&h, &cfg);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("bad")), 0);
  smh_take(&h);
  /* The server ends the stream on it and the session with it, each time:
   * <failed h/> says it was never handled, and the policy resends it. */
  for (int round = 0; round < 3; round++) {
    xmppuv__sm_stream_error(h.sm);
    smh_disconnect(&h);
    smh_resume(&h);
    ck_assert_int_eq(smh_in(&h, "<failed xmlns='urn:xmpp:sm:3' h='0'>"
                                "<item-not-found xmlns='urn:ietf:params:xml:ns:"
                                "xmpp-stanzas'/></failed>"), 1);
    ck_assert_int_eq(smh_enable(&h, 1), 0);
    ck_assert_int_eq(smh_in(&h, ENABLED), 1);
    const char *out = smh_take(&h);
    if (round < 2) {
      ck_assert_ptr_nonnull(strstr(out, "id='bad'"));
      ck_assert_int_eq(smh_sent(&h, 0)->dones, 0);
    } else {
      ck_assert_ptr_nonnull(strstr(out, "[done bad EREJECTED]"));
      ck_assert_ptr_null(strstr(out, "id='bad'"));
    }
  }
  smh_assert_each_done_once(&h);
  smh_free(&h);
}
END_TEST

/* The session ends with a stream error and no h says which stanza it was
 * (ejabberd closes the session on a stanza too big, and its <failed/> has
 * no h): with the resend policy, the unacked ones go out one at a time,
 * each with its own <r/>, so the next stream error names its stanza. */
static void lose_session_on_stream_error(smh_t *h) {
  xmppuv__sm_stream_error(h->sm);
  smh_disconnect(h);
  smh_authenticated(h);
  ck_assert_int_eq(smh_enable(h, 1), 0);
}

START_TEST(without_an_h_the_resend_policy_probes_one_stanza_at_a_time) {
  xmppuv__sm_config_t cfg;
  xmppuv__sm_config_defaults(&cfg);
  cfg.resend_on_failed = 1;
  cfg.ack_debounce_ms = 0;
  smh_t h;
  smh_init(&h, &cfg);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  ck_assert_int_eq(smh_send(&h, MSG("bad")), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m3")), 0);
  smh_take(&h);
  lose_session_on_stream_error(&h);
  /* One stanza, then nothing until <enabled/> and its ack. */
  ck_assert_str_eq(smh_take(&h), ENABLE);
  ck_assert_int_eq(smh_in(&h, ENABLED), 1);
  ck_assert_str_eq(smh_take(&h), STAMPED("m1", T0) R "[enabled]");
  ck_assert_int_eq(smh_send(&h, MSG("new")), 0); /* held behind the probes */
  ck_assert_str_eq(smh_take(&h), "");
  ck_assert_int_eq(smh_in(&h, A(1)), 1);
  ck_assert_str_eq(smh_take(&h), "[done m1 OK]" STAMPED("bad", T0) R);
  /* The stream dies right after "bad", three sessions in a row. */
  for (int round = 0; round < 2; round++) {
    lose_session_on_stream_error(&h);
    ck_assert_int_eq(smh_in(&h, ENABLED), 1);
    ck_assert_str_eq(smh_take(&h), ENABLE STAMPED("bad", T0) R "[enabled]");
  }
  lose_session_on_stream_error(&h);
  const char *out = smh_take(&h);
  ck_assert_msg(strncmp(out, "[done bad EREJECTED]" ENABLE, 20 + strlen(ENABLE)) == 0,
                "got %s", out);
  ck_assert_int_eq(smh_in(&h, ENABLED), 1);
  /* m3 was in flight too: probed alone, then the new one goes. */
  ck_assert_str_eq(smh_take(&h), STAMPED("m3", T0) R "[enabled]");
  ck_assert_int_eq(smh_in(&h, A(1)), 1);
  out = smh_take(&h);
  ck_assert_msg(strncmp(out, "[done m3 OK]", 12) == 0 && strstr(out, "id='new'") != NULL,
                "got %s", out);
  ck_assert_int_eq(smh_in(&h, A(2)), 1);
  ck_assert_str_eq(smh_take(&h), "[done new OK]");
  smh_assert_each_done_once(&h);
  smh_free(&h);
}
END_TEST

START_TEST(send_refuses_a_stanza_over_max_send_bytes_with_ETOOBIG) {
  xmppuv__sm_config_t cfg;
  xmppuv__sm_config_defaults(&cfg);
  cfg.max_send_bytes = 100;
  smh_t h;
  smh_init(&h, &cfg);
  smh_online(&h, 0);
  char big[256];
  snprintf(big, sizeof big, "<message id='big'><body>%0100d</body></message>", 0);
  ck_assert_int_eq(smh_send(&h, big), XMPPUV_ETOOBIG);
  ck_assert_str_eq(smh_take(&h), "");
  ck_assert_uint_eq(xmppuv__sm_queued(h.sm), 0);
  ck_assert_int_eq(smh_send(&h, MSG("small")), 0);
  smh_free(&h);
}
END_TEST

START_TEST(send_refuses_a_stanza_over_the_servers_advertised_limit) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  /* XEP-0478 max-bytes: a message must fit with a delay stamp added. */
  size_t plain = strlen(MSG("m1"));
  xmppuv__sm_set_peer_limit(h.sm, plain + 20);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), XMPPUV_ETOOBIG);
  ck_assert_int_eq(smh_send(&h, PRES("p1")), 0);
  xmppuv__sm_set_peer_limit(h.sm, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  smh_free(&h);
}
END_TEST

START_TEST(held_stanza_over_the_limit_the_server_gives_later_fails_unsent) {
  smh_t h;
  smh_init(&h, NULL);
  /* Sent before any connection: the server's limit is not known yet. */
  char big[512];
  snprintf(big, sizeof big, "<message id='big'><body>%0300d</body></message>", 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  ck_assert_int_eq(smh_send(&h, big), 0);
  ck_assert_int_eq(smh_send(&h, PRES("p1")), 0);
  xmppuv__sm_set_peer_limit(h.sm, 300);
  smh_authenticated(&h);
  ck_assert_int_eq(smh_enable(&h, 1), 0);
  ck_assert_str_eq(smh_take(&h), ENABLE STAMPED("m1", T0) "[done big ETOOBIG]" PRES("p1"));
  ck_assert_int_eq(smh_in(&h, ENABLED), 1);
  smh_take(&h);
  ck_assert_int_eq(smh_in(&h, A(2)), 1);
  ck_assert_str_eq(smh_take(&h), "[done m1 OK][done p1 OK]");
  smh_assert_each_done_once(&h);
  smh_free(&h);
}
END_TEST

/* xmpp.js's own tests answer <resume/> with a <resumed/> that has no
 * previd: it can only answer the one <resume/> outstanding. */
START_TEST(resumed_without_previd_resumes_the_session_asked_for) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m2")), 0);
  smh_disconnect(&h);
  smh_resume(&h);
  smh_take(&h);
  ck_assert_int_eq(smh_in(&h, "<resumed xmlns='urn:xmpp:sm:3' h='1'/>"), 1);
  ck_assert_int_eq(h.resumed_events, 1);
  const char *out = smh_take(&h);
  ck_assert_msg(strncmp(out, "[done m1 OK]", 12) == 0, "got %s", out);
  ck_assert_ptr_nonnull(strstr(out, "id='m2'"));
  ck_assert_ptr_null(strstr(out, "id='m1'"));
  ck_assert_uint_eq(xmppuv__sm_unacked(h.sm), 1);
  ck_assert_int_eq(xmppuv__sm_resumable(h.sm), 1);
  smh_free(&h);
}
END_TEST

START_TEST(unsolicited_enabled_or_resumed_is_a_protocol_error) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_in(&h, ENABLED), 1);
  ck_assert_str_eq(smh_take(&h), "[abort EPROTO]");
  ck_assert_int_eq(h.enable_results, 1);
  smh_free(&h);

  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_in(&h, RESUMED(0)), 1);
  ck_assert_str_eq(smh_take(&h), "[abort EPROTO]");
  ck_assert_int_eq(h.resumed_events, 0);
  smh_free(&h);

  /* <failed/> out of the blue is ignored: nothing was asked. */
  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_in(&h, FAILED("unexpected-request")), 1);
  ck_assert_str_eq(smh_take(&h), "");
  ck_assert_int_eq(xmppuv__sm_active(h.sm), 1);
  smh_free(&h);
}
END_TEST

START_TEST(r_while_resuming_is_answered_with_the_carried_over_h) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  for (int i = 0; i < 3; i++) ck_assert_int_eq(smh_in(&h, IN_MSG), 0);
  smh_disconnect(&h);
  smh_resume(&h);
  ck_assert_int_eq(smh_in(&h, R), 1);
  ck_assert_str_eq(smh_take(&h), RESUME(3) A(3));
  ck_assert_int_eq(smh_in(&h, RESUMED(0)), 1);
  ck_assert_int_eq(smh_in(&h, IN_MSG), 0);
  ck_assert_int_eq(smh_in(&h, R), 1);
  ck_assert_str_eq(smh_take(&h), "[resumed]" A(4));
  smh_free(&h);
}
END_TEST

START_TEST(sends_while_resuming_go_out_after_the_resent_stanzas) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  smh_take(&h);
  smh_disconnect(&h);
  ck_assert_int_eq(smh_send(&h, MSG("m2")), 0); /* offline */
  smh_authenticated(&h);
  ck_assert_int_eq(smh_send(&h, IQ("q3")), 0); /* authenticating */
  ck_assert_int_eq(xmppuv__sm_resume(h.sm, h.now), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m4")), 0); /* resuming */
  ck_assert_str_eq(smh_take(&h), RESUME(0));
  ck_assert_int_eq(smh_in(&h, RESUMED(0)), 1);
  ck_assert_str_eq(smh_take(&h), STAMPED("m1", T0) STAMPED("m2", T0) IQ("q3")
                                     STAMPED("m4", T0) "[resumed]");
  ck_assert_uint_eq(xmppuv__sm_unacked(h.sm), 4);
  ck_assert_int_eq(smh_in(&h, A(4)), 1);
  ck_assert_str_eq(smh_take(&h),
                   "[done m1 OK][done m2 OK][done q3 OK][done m4 OK]");
  smh_free(&h);
}
END_TEST

/* ---- 7. failed resumption ---------------------------------------------------------------- */

START_TEST(failed_resume_fails_unacked_stanzas_then_a_new_session_starts) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m2")), 0);
  smh_disconnect(&h);
  smh_resume(&h);
  smh_take(&h);
  ck_assert_int_eq(smh_in(&h, FAILED("item-not-found")), 1);
  ck_assert_str_eq(smh_take(&h), "[done m1 ESMFAILED][done m2 ESMFAILED]"
                                 "[resume-failed item-not-found]");
  ck_assert_int_eq(xmppuv__sm_resumable(h.sm), 0);
  /* The driver binds a new resource and enables again. */
  ck_assert_int_eq(xmppuv__sm_enable(h.sm, "juliet@example.com/new", 1, h.now),
                   0);
  ck_assert_int_eq(smh_in(&h, ENABLED), 1);
  ck_assert_str_eq(smh_take(&h), ENABLE "[enabled]");
  ck_assert_int_eq(h.resumed_events, 0);
  smh_assert_each_done_once(&h);
  smh_free(&h);
}
END_TEST

START_TEST(failed_h_acks_covered_stanzas_before_failing_the_rest) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m2")), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m3")), 0);
  smh_disconnect(&h);
  smh_resume(&h);
  smh_take(&h);
  ck_assert_int_eq(
      smh_in(&h, "<failed xmlns='urn:xmpp:sm:3' h='2'><item-not-found "
                 "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"),
      1);
  ck_assert_str_eq(smh_take(&h), "[done m1 OK][done m2 OK][done m3 ESMFAILED]"
                                 "[resume-failed item-not-found]");
  smh_assert_each_done_once(&h);
  smh_free(&h);
}
END_TEST

START_TEST(failed_h_too_high_is_handled_like_an_a) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  smh_disconnect(&h);
  smh_resume(&h);
  smh_take(&h);
  ck_assert_int_eq(smh_in(&h, "<failed xmlns='urn:xmpp:sm:3' h='7'/>"), 1);
  ck_assert_str_eq(smh_take(&h), TOO_HIGH(7, 1) "[abort ESMHIGH]");
  ck_assert_uint_eq(xmppuv__sm_unacked(h.sm), 1);
  smh_free(&h);
}
END_TEST

START_TEST(failed_resume_with_resend_policy_resends_stamped_on_the_new_session) {
  xmppuv__sm_config_t cfg;
  xmppuv__sm_config_defaults(&cfg);
  cfg.resend_on_failed = 1;
  smh_t h;
  smh_init(&h, &cfg);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  ck_assert_int_eq(smh_send(&h, IQ("q2")), 0);
  smh_disconnect(&h);
  ck_assert_int_eq(smh_send(&h, MSG("m3")), 0); /* held */
  smh_resume(&h);
  smh_take(&h);
  ck_assert_int_eq(smh_in(&h, FAILED("item-not-found")), 1);
  ck_assert_str_eq(smh_take(&h), "[resume-failed item-not-found]");
  ck_assert_int_eq(smh_enable(&h, 1), 0);
  ck_assert_str_eq(smh_take(&h), ENABLE STAMPED("m1", T0) IQ("q2")
                                     STAMPED("m3", T0));
  ck_assert_int_eq(smh_in(&h, ENABLED), 1);
  ck_assert_int_eq(smh_in(&h, A(3)), 1);
  ck_assert_str_eq(smh_take(&h),
                   "[enabled][done m1 OK][done q2 OK][done m3 OK]");
  smh_assert_each_done_once(&h);
  smh_free(&h);
}
END_TEST

START_TEST(expired_session_settles_at_the_next_enable) {
  /* Past max with nothing unacked there is nothing to learn from the
   * server: no <resume/>, straight to a new session. */
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 10);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  ck_assert_int_eq(smh_in(&h, A(1)), 1);
  smh_disconnect(&h);
  smh_advance(&h, 11000);
  smh_authenticated(&h);
  ck_assert_int_eq(xmppuv__sm_can_resume(h.sm, h.now), 0);
  smh_take(&h);
  ck_assert_int_eq(smh_enable(&h, 1), 0);
  ck_assert_str_eq(smh_take(&h), ENABLE);
  smh_free(&h);
}
END_TEST

START_TEST(past_max_with_unacked_stanzas_still_asks_for_the_servers_count) {
  /* The server may still know how many it handled (<failed h/>): those
   * are acked, not failed; only the rest fail. */
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 10);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m2")), 0);
  smh_disconnect(&h);
  smh_advance(&h, 11000);
  smh_authenticated(&h);
  ck_assert_int_eq(xmppuv__sm_can_resume(h.sm, h.now), 1);
  smh_take(&h);
  ck_assert_int_eq(xmppuv__sm_resume(h.sm, h.now), 0);
  smh_take(&h);
  ck_assert_int_eq(smh_in(&h, "<failed xmlns='urn:xmpp:sm:3' h='1'><item-not-found "
                              "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"),
                   1);
  ck_assert_str_eq(smh_take(&h), "[done m1 OK][done m2 ESMFAILED]"
                                 "[resume-failed item-not-found]");
  smh_assert_each_done_once(&h);
  smh_free(&h);
}
END_TEST

START_TEST(held_stanzas_are_not_failed_when_the_session_is_lost) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  smh_disconnect(&h);
  ck_assert_int_eq(smh_send(&h, MSG("m2")), 0);
  smh_resume(&h);
  smh_take(&h);
  ck_assert_int_eq(smh_in(&h, "<failed xmlns='urn:xmpp:sm:3'/>"), 1);
  ck_assert_str_eq(smh_take(&h), "[done m1 ESMFAILED][resume-failed -]");
  ck_assert_uint_eq(xmppuv__sm_queued(h.sm), 1);
  ck_assert_int_eq(smh_enable(&h, 1), 0);
  ck_assert_int_eq(smh_in(&h, ENABLED), 1);
  ck_assert_int_eq(smh_in(&h, A(1)), 1);
  ck_assert_str_eq(smh_take(&h),
                   ENABLE STAMPED("m2", T0) "[enabled][done m2 OK]");
  smh_assert_each_done_once(&h);
  smh_free(&h);
}
END_TEST

/* ---- 8. waits, timeouts and cancellation --------------------------------------------------- */

START_TEST(waiting_for_enabled_times_out) {
  smh_t h;
  smh_init(&h, NULL);
  smh_authenticated(&h);
  ck_assert_int_eq(smh_enable(&h, 1), 0);
  smh_advance(&h, 29999);
  ck_assert_int_eq(h.aborts, 0);
  smh_advance(&h, 1);
  ck_assert_str_eq(smh_take(&h), ENABLE "[abort ETIMEDOUT]");
  ck_assert_int_eq(h.enable_results, 0);
  smh_free(&h);
}
END_TEST

START_TEST(waiting_for_resumed_times_out) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  smh_disconnect(&h);
  smh_resume(&h);
  smh_advance(&h, 30000);
  ck_assert_str_eq(smh_take(&h), RESUME(0) "[abort ETIMEDOUT]");
  /* A late <resumed/> on that dead stream does nothing. */
  ck_assert_int_eq(smh_in(&h, RESUMED(0)), 1);
  ck_assert_int_eq(h.resumed_events, 0);
  ck_assert_int_eq(xmppuv__sm_resumable(h.sm), 1);
  smh_free(&h);
}
END_TEST

START_TEST(stale_resume_wait_does_not_fire_after_a_disconnect) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  smh_disconnect(&h);
  smh_resume(&h);
  smh_disconnect(&h);
  ck_assert_uint_eq(xmppuv__sm_deadline(h.sm), XMPPUV__NO_DEADLINE);
  smh_advance(&h, 120000);
  ck_assert_str_eq(smh_take(&h), RESUME(0));
  smh_resume(&h);
  smh_advance(&h, 20000);
  ck_assert_int_eq(smh_in(&h, RESUMED(0)), 1);
  smh_advance(&h, 20000);
  ck_assert_str_eq(smh_take(&h), RESUME(0) "[resumed]");
  ck_assert_int_eq(h.resumed_events, 1);
  ck_assert_int_eq(h.aborts, 0);
  smh_free(&h);
}
END_TEST

START_TEST(two_disconnects_before_a_resume_completes) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 60);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  smh_take(&h);
  smh_disconnect(&h);
  smh_advance(&h, 1000);
  smh_resume(&h);
  smh_disconnect(&h); /* before <resumed/> */
  ck_assert_int_eq(smh_send(&h, MSG("m2")), 0);
  smh_advance(&h, 1000);
  smh_resume(&h);
  ck_assert_int_eq(smh_in(&h, RESUMED(0)), 1);
  ck_assert_str_eq(smh_take(&h), RESUME(0) RESUME(0) STAMPED("m1", T0)
                                     STAMPED("m2", "2023-11-14T22:13:21.000Z")
                                         "[resumed]");
  smh_advance(&h, 60000);
  ck_assert_int_eq(h.resumed_events, 1);
  ck_assert_int_eq(smh_in(&h, A(2)), 1);
  ck_assert_uint_eq(xmppuv__sm_queued(h.sm), 0);
  smh_assert_each_done_once(&h);
  smh_free(&h);
}
END_TEST

START_TEST(disconnect_cancels_every_timer) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  smh_advance(&h, 30000); /* <r/> out, ack timeout armed */
  ck_assert_uint_ne(xmppuv__sm_deadline(h.sm), XMPPUV__NO_DEADLINE);
  smh_disconnect(&h);
  ck_assert_uint_eq(xmppuv__sm_deadline(h.sm), XMPPUV__NO_DEADLINE);
  smh_take(&h);
  smh_advance(&h, 600000);
  ck_assert_str_eq(smh_take(&h), "");
  smh_free(&h);
}
END_TEST

/* ---- 9. stop --------------------------------------------------------------------------------- */

START_TEST(stop_with_drain_waits_for_the_final_ack) {
  xmppuv__sm_config_t cfg;
  xmppuv__sm_config_defaults(&cfg);
  cfg.drain_timeout_ms = 2000;
  smh_t h;
  smh_init(&h, &cfg);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m2")), 0);
  ck_assert_int_eq(smh_in(&h, IN_MSG), 0);
  smh_take(&h);
  ck_assert_int_eq(xmppuv__sm_stop(h.sm, h.now), 1);
  ck_assert_str_eq(smh_take(&h), A(1) R);
  ck_assert_int_eq(xmppuv__sm_drained(h.sm, h.now), 0);
  smh_advance(&h, 500);
  ck_assert_int_eq(smh_in(&h, A(2)), 1);
  ck_assert_int_eq(xmppuv__sm_drained(h.sm, h.now), 1);
  xmppuv__sm_fail_all(h.sm, XMPPUV_ECANCELED);
  ck_assert_str_eq(smh_take(&h), "[done m1 OK][done m2 OK]");
  smh_assert_each_done_once(&h);
  smh_free(&h);
}
END_TEST

START_TEST(stop_drain_deadline_passes_then_the_rest_fails_with_ECANCELED) {
  xmppuv__sm_config_t cfg;
  xmppuv__sm_config_defaults(&cfg);
  cfg.drain_timeout_ms = 2000;
  smh_t h;
  smh_init(&h, &cfg);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  ck_assert_int_eq(xmppuv__sm_stop(h.sm, h.now), 1);
  smh_advance(&h, 1999);
  ck_assert_int_eq(xmppuv__sm_drained(h.sm, h.now), 0);
  smh_advance(&h, 1);
  ck_assert_int_eq(xmppuv__sm_drained(h.sm, h.now), 1);
  ck_assert_uint_eq(xmppuv__sm_deadline(h.sm), XMPPUV__NO_DEADLINE);
  xmppuv__sm_fail_all(h.sm, XMPPUV_ECANCELED);
  ck_assert_str_eq(smh_take(&h), MSG("m1") A(0) R "[done m1 ECANCELED]");
  smh_assert_each_done_once(&h);
  smh_free(&h);
}
END_TEST

START_TEST(stop_without_drain_closes_at_once_and_fails_what_is_left) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  smh_take(&h);
  ck_assert_int_eq(xmppuv__sm_stop(h.sm, h.now), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m2")), 0); /* held while closing */
  ck_assert_uint_eq(xmppuv__sm_deadline(h.sm), XMPPUV__NO_DEADLINE);
  xmppuv__sm_fail_all(h.sm, XMPPUV_ECANCELED);
  ck_assert_str_eq(smh_take(&h),
                   A(0) "[done m1 ECANCELED][done m2 ECANCELED]");
  ck_assert_int_eq(xmppuv__sm_resumable(h.sm), 0);
  smh_assert_each_done_once(&h);
  smh_free(&h);
}
END_TEST

/* ---- 10. bounded queue and offline sends ----------------------------------------------------- */

START_TEST(queue_full_send_returns_ENOBUFS_and_drops_nothing) {
  xmppuv__sm_config_t cfg;
  xmppuv__sm_config_defaults(&cfg);
  cfg.queue_max = 3;
  smh_t h;
  smh_init(&h, &cfg);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m2")), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m3")), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m4")), XMPPUV_ENOBUFS);
  ck_assert_str_eq(smh_take(&h), MSG("m1") MSG("m2") MSG("m3"));
  ck_assert_uint_eq(xmppuv__sm_queued(h.sm), 3);
  ck_assert_int_eq(smh_in(&h, A(1)), 1);
  ck_assert_int_eq(smh_send(&h, MSG("m4")), 0);
  ck_assert_int_eq(smh_in(&h, A(4)), 1);
  ck_assert_str_eq(smh_take(&h),
                   "[done m1 OK]" MSG("m4") "[done m2 OK][done m3 OK][done m4 OK]");
  ck_assert_uint_eq(h.nsent, 4);
  smh_assert_each_done_once(&h);
  smh_free(&h);
}
END_TEST

START_TEST(held_stanzas_count_against_the_same_bound) {
  xmppuv__sm_config_t cfg;
  xmppuv__sm_config_defaults(&cfg);
  cfg.queue_max = 3;
  smh_t h;
  smh_init(&h, &cfg);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m2")), 0);
  smh_disconnect(&h);
  ck_assert_int_eq(smh_send(&h, MSG("m3")), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m4")), XMPPUV_ENOBUFS);
  ck_assert_uint_eq(xmppuv__sm_queued(h.sm), 3);
  smh_free(&h);
}
END_TEST

START_TEST(sends_before_the_first_connection_go_out_after_enable_stamped) {
  smh_t h;
  smh_init(&h, NULL);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  ck_assert_int_eq(smh_send(&h, "<presence id='p1'/>"), 0);
  smh_advance(&h, 3000);
  smh_authenticated(&h);
  ck_assert_int_eq(smh_send(&h, MSG("m2")), 0);
  ck_assert_str_eq(smh_take(&h), "");
  ck_assert_int_eq(smh_enable(&h, 1), 0);
  ck_assert_str_eq(smh_take(&h), ENABLE STAMPED("m1", T0) PRES("p1")
                                     STAMPED("m2", "2023-11-14T22:13:23.000Z"));
  ck_assert_int_eq(smh_in(&h, ENABLED), 1);
  ck_assert_uint_eq(xmppuv__sm_unacked(h.sm), 3);
  smh_free(&h);
}
END_TEST

START_TEST(held_stanzas_on_a_stream_without_sm_are_sent_and_reported) {
  smh_t h;
  smh_init(&h, NULL);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  smh_authenticated(&h);
  ck_assert_int_eq(smh_enable(&h, 0), 0);
  ck_assert_str_eq(smh_take(&h),
                   STAMPED("m1", T0) "[done m1 ESMOFF][not-enabled -]");
  smh_assert_each_done_once(&h);
  smh_free(&h);
}
END_TEST

/* ---- 11. per-stanza completion ------------------------------------------------------------------ */

START_TEST(per_stanza_callback_is_called_exactly_once) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m2")), 0);
  ck_assert_int_eq(smh_in(&h, A(1)), 1);
  smh_disconnect(&h);
  smh_resume(&h);
  ck_assert_int_eq(smh_in(&h, FAILED("item-not-found")), 1);
  smh_enable(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m3")), 0);
  xmppuv__sm_fail_all(h.sm, XMPPUV_ECANCELED);
  ck_assert_int_eq(smh_sent(&h, 0)->status, 0);
  ck_assert_int_eq(smh_sent(&h, 1)->status, XMPPUV_ESMFAILED);
  ck_assert_int_eq(smh_sent(&h, 2)->status, XMPPUV_ESMOFF);
  smh_assert_each_done_once(&h);
  smh_free(&h);
}
END_TEST

/* ---- re-entrancy ---------------------------------------------------------------------------------- */

static void send_once_from_done(smh_t *h, xmppuv_stanza_t *s, int status) {
  (void)s;
  (void)status;
  if (h->user != NULL) return;
  h->user = h;
  ck_assert_int_eq(smh_send(h, MSG("late")), 0);
}

START_TEST(send_from_an_ack_event_goes_after_everything_sent_before) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m2")), 0);
  smh_take(&h);
  h.on_done = send_once_from_done;
  ck_assert_int_eq(smh_in(&h, A(2)), 1);
  ck_assert_str_eq(smh_take(&h), "[done m1 OK]" MSG("late") "[done m2 OK]");
  ck_assert_int_eq(smh_in(&h, A(3)), 1);
  ck_assert_str_eq(smh_take(&h), "[done late OK]");
  smh_assert_each_done_once(&h);
  smh_free(&h);
}
END_TEST

START_TEST(sends_from_ack_events_during_resumption_wait_for_the_resent) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m2")), 0);
  smh_disconnect(&h);
  smh_resume(&h);
  smh_take(&h);
  h.on_done = send_once_from_done;
  ck_assert_int_eq(smh_in(&h, RESUMED(1)), 1);
  ck_assert_str_eq(smh_take(&h), "[done m1 OK]" STAMPED("m2", T0)
                                     STAMPED("late", T0) "[resumed]");
  smh_free(&h);
}
END_TEST

START_TEST(send_from_a_done_event_while_held_are_flushed_keeps_the_order) {
  smh_t h;
  smh_init(&h, NULL);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m2")), 0);
  smh_authenticated(&h);
  h.on_done = send_once_from_done;
  ck_assert_int_eq(smh_enable(&h, 0), 0);
  /* "late" was sent from m1's event: it goes out after m2, held before. */
  ck_assert_str_eq(smh_take(&h), STAMPED("m1", T0) "[done m1 ESMOFF]"
                                     STAMPED("m2", T0) "[done m2 ESMOFF]"
                                         MSG("late") "[done late ESMOFF]"
                                                     "[not-enabled -]");
  smh_assert_each_done_once(&h);
  smh_free(&h);
}
END_TEST

static void fail_all_from_done(smh_t *h, xmppuv_stanza_t *s, int status) {
  (void)s;
  (void)status;
  if (h->user != NULL) return;
  h->user = h;
  xmppuv__sm_fail_all(h->sm, XMPPUV_ECANCELED);
}

START_TEST(fail_all_from_a_done_event_reports_every_stanza_once) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  for (int i = 0; i < 4; i++) ck_assert_int_eq(smh_send(&h, MSG("m")), 0);
  smh_take(&h);
  h.on_done = fail_all_from_done;
  ck_assert_int_eq(smh_in(&h, A(2)), 1);
  ck_assert_str_eq(smh_take(&h), "[done m OK][done m ECANCELED]"
                                 "[done m ECANCELED][done m ECANCELED]");
  ck_assert_int_eq(smh_in(&h, A(4)), 1); /* SM is off now: ignored */
  ck_assert_str_eq(smh_take(&h), "");
  smh_assert_each_done_once(&h);
  smh_free(&h);
}
END_TEST

static void disconnect_from_abort(smh_t *h, int reason) {
  (void)reason;
  smh_disconnect(h);
}

START_TEST(disconnect_from_an_abort_event_is_safe) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  h.on_abort = disconnect_from_abort;
  ck_assert_int_eq(smh_in(&h, A(9)), 1);
  ck_assert_uint_eq(xmppuv__sm_deadline(h.sm), XMPPUV__NO_DEADLINE);
  smh_authenticated(&h);
  smh_take(&h);
  ck_assert_int_eq(smh_enable(&h, 1), 0);
  ck_assert_str_eq(smh_take(&h), "[done m1 ESMFAILED]" ENABLE);
  smh_free(&h);
}
END_TEST

START_TEST(write_failure_keeps_counted_stanzas_for_resumption) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  h.write_rc = XMPPUV_ENOMEM;
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  ck_assert_int_eq(smh_send(&h, MSG("m2")), 0);
  ck_assert_uint_eq(xmppuv__sm_unacked(h.sm), 1);
  ck_assert_uint_eq(xmppuv__sm_queued(h.sm), 2);
  ck_assert_uint_eq(xmppuv__sm_deadline(h.sm), XMPPUV__NO_DEADLINE);
  h.write_rc = 0;
  smh_disconnect(&h);
  smh_resume(&h);
  ck_assert_int_eq(smh_in(&h, RESUMED(0)), 1);
  ck_assert_str_eq(smh_take(&h), RESUME(0) STAMPED("m1", T0) STAMPED("m2", T0)
                                     "[resumed]");
  smh_free(&h);
}
END_TEST

/* ---- failing allocator ------------------------------------------------------------------------------ */

static int sweep_scenario(void *ud) {
  (void)ud;
  smh_t h;
  int rc = smh_open(&h, NULL);
  if (rc != 0) {
    smh_free(&h);
    return rc;
  }
  smh_authenticated(&h);
  if ((rc = smh_enable(&h, 1)) != 0) goto out;
  if ((rc = smh_send(&h, MSG("m1"))) != 0) goto out;
  if ((rc = smh_in(&h, ENABLED)) < 0) goto out;
  if ((rc = smh_send(&h, IQ("q2"))) != 0) goto out;
  if ((rc = smh_send(&h, MSG("m3"))) != 0) goto out;
  if ((rc = smh_in(&h, IN_MSG)) < 0) goto out;
  if ((rc = smh_in(&h, A(1))) < 0) goto out;
  smh_disconnect(&h);
  if ((rc = smh_send(&h, MSG("m4"))) != 0) goto out;
  smh_authenticated(&h);
  if (xmppuv__sm_can_resume(h.sm, h.now)) {
    if ((rc = xmppuv__sm_resume(h.sm, h.now)) != 0) goto out;
    if ((rc = smh_in(&h, RESUMED(2))) < 0) goto out;
  }
  rc = 0;
out:
  /* Whatever failed, every stanza accepted gets exactly one outcome. */
  xmppuv__sm_fail_all(h.sm, XMPPUV_ECANCELED);
  smh_assert_each_done_once(&h);
  smh_free(&h);
  return rc > 0 ? 0 : rc;
}

START_TEST(failing_allocator_sweep_enable_send_ack_disconnect_resume) {
  long points = failalloc_sweep(sweep_scenario, NULL);
  ck_assert_int_gt(points, 5);
}
END_TEST

/* ---- memory ---------------------------------------------------------------------------------------------- */

START_TEST(an_emptied_queue_gives_its_memory_back) {
  failalloc_install();
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, MSG("m0")), 0);
  ck_assert_int_eq(smh_in(&h, A(1)), 1);
  long idle = failalloc_live();
  char big[6000];
  memset(big, 'x', sizeof big);
  memcpy(big, "<message id='big'><body>", 24);
  memcpy(big + sizeof big - 18, "</body></message>", 18);
  for (int i = 0; i < 1000; i++) ck_assert_int_eq(smh_send(&h, MSG("m")), 0);
  ck_assert_int_eq(smh_send(&h, big), 0);
  ck_assert_int_gt(failalloc_live(), idle);
  ck_assert_int_eq(smh_in(&h, A(1002)), 1);
  ck_assert_uint_eq(xmppuv__sm_queued(h.sm), 0);
  /* Ring and slabs back: an idle client costs no more than before. */
  ck_assert_int_le(failalloc_live(), idle);
  smh_free(&h);
  ck_assert_int_eq(failalloc_live(), 0);
  failalloc_uninstall();
}
END_TEST

START_TEST(queue_ring_wraps_grows_and_keeps_order) {
  xmppuv__smq_t q;
  xmppuv__smq_init(&q, 100);
  xmppuv_stanza_t *s;
  ck_assert_int_eq(xmppuv_stanza_new("message", NULL, &s), 0);
  xmppuv__smq_entry_t e;
  memset(&e, 0, sizeof e);
  e.stanza = s;
  size_t next_in = 0, next_out = 0;
  char buf[32];
  /* Interleave so the ring wraps before it grows, then grows wrapped. */
  for (int round = 0; round < 6; round++) {
    for (int i = 0; i < 7; i++) {
      int n = snprintf(buf, sizeof buf, "%zu", next_in++);
      ck_assert_int_eq(xmppuv__smq_push(&q, &e, buf, (size_t)n), 0);
    }
    for (int i = 0; i < 5; i++) {
      xmppuv__smq_entry_t out;
      xmppuv__smq_pop(&q, &out);
      int n = snprintf(buf, sizeof buf, "%zu", next_out++);
      ck_assert_uint_eq(out.len, (size_t)n);
      ck_assert_int_eq(memcmp(out.bytes, buf, (size_t)n), 0);
      xmppuv__smq_release(&q, &out);
    }
  }
  ck_assert_uint_eq(xmppuv__smq_len(&q), next_in - next_out);
  for (size_t i = 0; i < xmppuv__smq_len(&q); i++) {
    int n = snprintf(buf, sizeof buf, "%zu", next_out + i);
    ck_assert_int_eq(memcmp(xmppuv__smq_at(&q, i)->bytes, buf, (size_t)n), 0);
  }
  /* The bound: back-pressure, nothing changed. */
  while (xmppuv__smq_len(&q) < 100)
    ck_assert_int_eq(xmppuv__smq_push(&q, &e, "x", 1), 0);
  ck_assert_int_eq(xmppuv__smq_push(&q, &e, "x", 1), XMPPUV_ENOBUFS);
  xmppuv__smq_free(&q);
  xmppuv_stanza_unref(s);
}
END_TEST

/* ---- delay stamps (XEP-0203, XEP-0082) ------------------------------------------------------------------ */

START_TEST(utc_stamp_follows_xep_0082_with_milliseconds) {
  static const struct {
    int64_t ms;
    const char *text;
  } cases[] = {
      {0, "1970-01-01T00:00:00.000Z"},
      {INT64_C(1700000000000), "2023-11-14T22:13:20.000Z"},
      {INT64_C(1700000000123), "2023-11-14T22:13:20.123Z"},
      {INT64_C(951782400000), "2000-02-29T00:00:00.000Z"},
      {INT64_C(4102444799999), "2099-12-31T23:59:59.999Z"},
      {-1, "1969-12-31T23:59:59.999Z"},
      {INT64_MAX, "9999-12-31T23:59:59.999Z"},
      {INT64_MIN, "0000-01-01T00:00:00.000Z"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char out[XMPPUV__DELAY_STAMP_LEN + 1];
    xmppuv__delay_stamp(out, cases[i].ms);
    ck_assert_str_eq(out, cases[i].text);
  }
}
END_TEST

START_TEST(delay_is_inserted_before_the_root_end_tag_of_a_copy) {
  xmppuv_stanza_t *s;
  const char *xml = "<message id='x'><body>a</body></message>";
  ck_assert_int_eq(xmppuv_stanza_parse(xml, strlen(xml), &s), 0);
  xmppuv__buf_t bytes = XMPPUV__BUF_INIT, out = XMPPUV__BUF_INIT;
  size_t end;
  ck_assert_int_eq(xmppuv__serialize_ex(&bytes, s, XMPPUV_NS_CLIENT,
                                        XMPPUV__SER_ROOT_END_TAG, &end),
                   0);
  xmppuv__buf_t prefix = XMPPUV__BUF_INIT, no_from = XMPPUV__BUF_INIT;
  ck_assert_int_eq(xmppuv__delay_prefix(&prefix, "o'brien@example.com/a&b"), 0);
  ck_assert_int_eq(xmppuv__delay_prefix(&no_from, NULL), 0);
  ck_assert_int_eq(xmppuv__delay_insert(&out, bytes.data, bytes.len, end, &prefix,
                                        INT64_C(1700000000123)),
                   0);
  ck_assert_str_eq(out.data,
                   "<message id='x'><body>a</body><delay xmlns='urn:xmpp:delay' "
                   "from='o&apos;brien@example.com/a&amp;b' "
                   "stamp='2023-11-14T22:13:20.123Z'/></message>");
  /* A childless root still gets an end tag to insert before. */
  xmppuv_stanza_t *empty;
  ck_assert_int_eq(xmppuv_stanza_new("message", NULL, &empty), 0);
  xmppuv__buf_clear(&bytes);
  xmppuv__buf_clear(&out);
  ck_assert_int_eq(xmppuv__serialize_ex(&bytes, empty, XMPPUV_NS_CLIENT,
                                        XMPPUV__SER_ROOT_END_TAG, &end),
                   0);
  ck_assert_int_eq(xmppuv__delay_insert(&out, bytes.data, bytes.len, end, &no_from, 0),
                   0);
  ck_assert_str_eq(out.data, "<message><delay xmlns='urn:xmpp:delay' "
                             "stamp='1970-01-01T00:00:00.000Z'/></message>");
  ck_assert_int_eq(xmppuv__delay_insert(&out, bytes.data, bytes.len,
                                        bytes.len + 1, &no_from, 0),
                   XMPPUV_EINVAL);
  xmppuv__buf_free(&prefix);
  xmppuv__buf_free(&no_from);
  ck_assert_int_eq(xmppuv__delay_present(s), 0);
  xmppuv__buf_free(&bytes);
  xmppuv__buf_free(&out);
  xmppuv_stanza_unref(empty);
  xmppuv_stanza_unref(s);
}
END_TEST

START_TEST(send_refuses_what_is_not_a_stanza) {
  smh_t h;
  smh_init(&h, NULL);
  smh_online(&h, 0);
  ck_assert_int_eq(smh_send(&h, "<active xmlns='urn:xmpp:csi:0'/>"),
                   XMPPUV_EINVAL);
  ck_assert_int_eq(smh_send(&h, "<message xmlns='urn:other'/>"), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv__sm_send(h.sm, NULL, h.now, NULL, NULL),
                   XMPPUV_EINVAL);
  ck_assert_str_eq(smh_take(&h), "");
  ck_assert_uint_eq(xmppuv__sm_outbound_count(h.sm), 0);
  smh_free(&h);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("sm");
  TCase *tc = tcase_create("engine");
  tcase_set_timeout(tc, 60);
  /* 1 */
  tcase_add_test(tc, enable_is_written_after_bind_with_resume_and_max);
  tcase_add_test(tc, online_is_raised_only_after_enabled_arrives);
  tcase_add_test(tc, online_handler_sends_are_counted_and_protected);
  tcase_add_test(tc, enable_failed_goes_on_without_sm_and_says_so);
  tcase_add_test(tc, server_without_sm_gets_online_at_once);
  tcase_add_test(tc, sm_turned_off_never_enables);
  tcase_add_test(tc, resume_turned_off_enables_without_resumption);
  tcase_add_test(tc, sm_reoffered_after_enable_is_ignored);
  tcase_add_test(tc, stanzas_sent_between_enable_and_enabled_are_counted_and_kept);
  tcase_add_test(tc, stanzas_sent_between_enable_and_failed_are_done_with_ESMOFF);
  tcase_add_test(tc, stanzas_received_before_enabled_are_not_counted);
  /* 2 */
  tcase_add_test(tc, every_inbound_stanza_counts_before_dispatch);
  tcase_add_test(tc, nonzas_are_never_counted);
  tcase_add_test(tc, h_wraps_from_2_32_minus_1_to_0_inbound);
  tcase_add_test(tc, h_wraps_from_2_32_minus_1_to_0_outbound);
  /* 3 */
  tcase_add_test(tc, r_is_answered_at_once_with_h);
  tcase_add_test(tc, graceful_stop_sends_a_first);
  /* 4 */
  tcase_add_test(tc, a_acks_covered_stanzas_in_order);
  tcase_add_test(tc, a_with_h_too_high_writes_stream_error_and_corrupts_nothing);
  tcase_add_test(tc, a_below_the_last_ack_is_outside_the_window);
  tcase_add_test(tc, a_without_a_valid_h_is_a_protocol_error);
  tcase_add_test(tc, stanza_changed_after_send_goes_out_as_it_was_sent);
  tcase_add_test(tc, send_refuses_what_is_not_a_stanza);
  /* 5 */
  tcase_add_test(tc, debounce_folds_a_burst_into_one_r);
  tcase_add_test(tc, threshold_requests_an_ack_at_once);
  tcase_add_test(tc, periodic_r_when_idle);
  tcase_add_test(tc, ack_timeout_drops_the_connection_without_closing_the_stream);
  tcase_add_test(tc, periodic_r_does_not_postpone_the_ack_timeout);
  tcase_add_test(tc, any_inbound_data_clears_the_ack_timeout);
  tcase_add_test(tc, zero_turns_off_debounce_threshold_periodic_and_ack_timeout);
  /* 6 */
  tcase_add_test(tc, resume_is_offered_only_within_the_server_max);
  tcase_add_test(tc, location_is_kept_for_reconnection);
  tcase_add_test(tc, resumed_acks_then_resends_in_order_then_emits_resumed);
  tcase_add_test(tc, resent_message_carries_one_delay_stamp_from_our_jid);
  tcase_add_test(tc, message_with_a_delay_already_is_not_stamped_again);
  tcase_add_test(tc, resent_and_held_stamped_messages_are_written_one_piece_each);
  tcase_add_test(tc, resume_with_nothing_queued);
  tcase_add_test(tc, resumed_with_h_too_high);
  tcase_add_test(tc, resumed_for_another_session_gives_the_session_up_and_a_new_one_starts);
  tcase_add_test(tc, resumed_without_previd_resumes_the_session_asked_for);
  tcase_add_test(tc, poison_stanza_the_server_ends_the_stream_on_three_times_fails_alone);
  tcase_add_test(tc, poison_rule_needs_three_stream_errors_in_a_row);
  tcase_add_test(tc, poison_rule_does_not_blame_a_stanza_the_server_handled);
  tcase_add_test(tc, poison_rule_holds_with_failed_resumption_and_the_resend_policy);
  tcase_add_test(tc, without_an_h_the_resend_policy_probes_one_stanza_at_a_time);
  tcase_add_test(tc, send_refuses_a_stanza_over_max_send_bytes_with_ETOOBIG);
  tcase_add_test(tc, send_refuses_a_stanza_over_the_servers_advertised_limit);
  tcase_add_test(tc, held_stanza_over_the_limit_the_server_gives_later_fails_unsent);
  tcase_add_test(tc, unsolicited_enabled_or_resumed_is_a_protocol_error);
  tcase_add_test(tc, r_while_resuming_is_answered_with_the_carried_over_h);
  tcase_add_test(tc, sends_while_resuming_go_out_after_the_resent_stanzas);
  /* 7 */
  tcase_add_test(tc, failed_resume_fails_unacked_stanzas_then_a_new_session_starts);
  tcase_add_test(tc, failed_h_acks_covered_stanzas_before_failing_the_rest);
  tcase_add_test(tc, failed_h_too_high_is_handled_like_an_a);
  tcase_add_test(tc, failed_resume_with_resend_policy_resends_stamped_on_the_new_session);
  tcase_add_test(tc, expired_session_settles_at_the_next_enable);
  tcase_add_test(tc, past_max_with_unacked_stanzas_still_asks_for_the_servers_count);
  tcase_add_test(tc, held_stanzas_are_not_failed_when_the_session_is_lost);
  /* 8 */
  tcase_add_test(tc, waiting_for_enabled_times_out);
  tcase_add_test(tc, waiting_for_resumed_times_out);
  tcase_add_test(tc, stale_resume_wait_does_not_fire_after_a_disconnect);
  tcase_add_test(tc, two_disconnects_before_a_resume_completes);
  tcase_add_test(tc, disconnect_cancels_every_timer);
  /* 9 */
  tcase_add_test(tc, stop_with_drain_waits_for_the_final_ack);
  tcase_add_test(tc, stop_drain_deadline_passes_then_the_rest_fails_with_ECANCELED);
  tcase_add_test(tc, stop_without_drain_closes_at_once_and_fails_what_is_left);
  /* 10 */
  tcase_add_test(tc, queue_full_send_returns_ENOBUFS_and_drops_nothing);
  tcase_add_test(tc, held_stanzas_count_against_the_same_bound);
  tcase_add_test(tc, sends_before_the_first_connection_go_out_after_enable_stamped);
  tcase_add_test(tc, held_stanzas_on_a_stream_without_sm_are_sent_and_reported);
  /* 11 */
  tcase_add_test(tc, per_stanza_callback_is_called_exactly_once);
  /* re-entrancy, failures, memory */
  tcase_add_test(tc, send_from_an_ack_event_goes_after_everything_sent_before);
  tcase_add_test(tc, sends_from_ack_events_during_resumption_wait_for_the_resent);
  tcase_add_test(tc, send_from_a_done_event_while_held_are_flushed_keeps_the_order);
  tcase_add_test(tc, fail_all_from_a_done_event_reports_every_stanza_once);
  tcase_add_test(tc, disconnect_from_an_abort_event_is_safe);
  tcase_add_test(tc, write_failure_keeps_counted_stanzas_for_resumption);
  tcase_add_test(tc, failing_allocator_sweep_enable_send_ack_disconnect_resume);
  tcase_add_test(tc, an_emptied_queue_gives_its_memory_back);
  tcase_add_test(tc, queue_ring_wraps_grows_and_keeps_order);
  /* XEP-0203 / XEP-0082 */
  tcase_add_test(tc, utc_stamp_follows_xep_0082_with_milliseconds);
  tcase_add_test(tc, delay_is_inserted_before_the_root_end_tag_of_a_copy);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
