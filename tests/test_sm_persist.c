/* Saving and restoring Stream Management state (lib/sm/persist.c and
 * xmppuv__sm_export/import): a restarted process resumes the old session
 * and resends what was unacked; damaged or foreign blobs are refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "failalloc.h"
#include "sm/persist.h"
#include "sm/queue.h"
#include "sm/sm.h"
#include "sm_harness.h"
#include "xmppuv.h"

#define R "<r xmlns='urn:xmpp:sm:3'/>"
#define A(n) "<a xmlns='urn:xmpp:sm:3' h='" #n "'/>"
#define ENABLE "<enable xmlns='urn:xmpp:sm:3' resume='true'/>"
#define MSG(id) "<message to='romeo@example.net' id='" id "'><body>hi</body></message>"
#define STAMPED(id, stamp)                                              \
  "<message to='romeo@example.net' id='" id "'><body>hi</body>"         \
  "<delay xmlns='urn:xmpp:delay' from='" SMH_JID "' stamp='" stamp "'/>" \
  "</message>"
#define IQ(id) "<iq type='get' id='" id "'><ping xmlns='urn:xmpp:ping'/></iq>"
#define IN_MSG "<message from='romeo@example.net/x'><body>yo</body></message>"
#define LOCATION "xmpp2.example.com:5222"

/* A session worth saving: enabled with resumption, m1 acked, q1 sent and
 * unacked, two stanzas received, then the connection lost and m2 sent
 * while offline (held), one second later. */
static void saved_state(xmppuv__buf_t *blob) {
  smh_t h;
  smh_init(&h, NULL);
  smh_authenticated(&h);
  ck_assert_int_eq(smh_enable(&h, 1), 0);
  ck_assert_int_eq(smh_in(&h, "<enabled xmlns='urn:xmpp:sm:3' id='sm-1' "
                              "resume='true' max='300' location='" LOCATION
                              "'/>"),
                   1);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  ck_assert_int_eq(smh_send(&h, IQ("q1")), 0);
  ck_assert_int_eq(smh_in(&h, A(1)), 1);
  ck_assert_int_eq(smh_in(&h, IN_MSG), 0);
  ck_assert_int_eq(smh_in(&h, IN_MSG), 0);
  smh_disconnect(&h);
  smh_advance(&h, 1000);
  ck_assert_int_eq(smh_send(&h, MSG("m2")), 0);
  smh_advance(&h, 5000);
  ck_assert_int_eq(xmppuv__sm_export(h.sm, h.now, blob), 0);
  /* The process "exits" without reporting (as a crash would). */
  smh_free(&h);
}

static void put_le32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void fix_crc(unsigned char *b, size_t len) {
  put_le32(b + len - 4, xmppuv__crc32(0, b, len - 4));
}

START_TEST(export_import_round_trip_keeps_counters_queue_and_session) {
  xmppuv__buf_t blob = XMPPUV__BUF_INIT;
  saved_state(&blob);
  smh_t h;
  smh_init(&h, NULL);
  char *jid = NULL;
  ck_assert_int_eq(xmppuv__sm_import(h.sm, blob.data, blob.len, NULL, &jid), 0);
  ck_assert_str_eq(jid, SMH_JID);
  xmppuv_free(jid);
  ck_assert_uint_eq(xmppuv__sm_queued(h.sm), 2);
  ck_assert_uint_eq(xmppuv__sm_unacked(h.sm), 1);
  ck_assert_uint_eq(xmppuv__sm_inbound_count(h.sm), 2);
  ck_assert_uint_eq(xmppuv__sm_outbound_count(h.sm), 2);
  ck_assert_str_eq(xmppuv__sm_id(h.sm), "sm-1");
  ck_assert_str_eq(xmppuv__sm_location(h.sm), LOCATION);
  ck_assert_int_eq(xmppuv__sm_resumable(h.sm), 1);
  /* Export again: the same bytes (nothing was lost or invented). */
  xmppuv__buf_t again = XMPPUV__BUF_INIT;
  ck_assert_int_eq(xmppuv__sm_export(h.sm, h.now, &again), 0);
  ck_assert_uint_eq(again.len, blob.len);
  ck_assert_int_eq(memcmp(again.data, blob.data, blob.len), 0);
  xmppuv__buf_free(&again);
  xmppuv__buf_free(&blob);
  smh_free(&h);
}
END_TEST

START_TEST(restarted_process_resumes_the_old_session_and_resends_unacked) {
  xmppuv__buf_t blob = XMPPUV__BUF_INIT;
  saved_state(&blob);
  smh_t h;
  smh_init(&h, NULL);
  ck_assert_int_eq(xmppuv__sm_import(h.sm, blob.data, blob.len, NULL, NULL), 0);
  smh_advance(&h, 60000); /* the restart took a minute: within max */
  smh_resume(&h);
  ck_assert_str_eq(smh_take(&h),
                   "<resume xmlns='urn:xmpp:sm:3' h='2' previd='sm-1'/>");
  ck_assert_int_eq(
      smh_in(&h, "<resumed xmlns='urn:xmpp:sm:3' h='1' previd='sm-1'/>"), 1);
  /* q1 again, then m2 stamped with the time it was sent before the exit. */
  ck_assert_str_eq(smh_take(&h),
                   IQ("q1") STAMPED("m2", "2023-11-14T22:13:21.000Z") "[resumed]");
  ck_assert_int_eq(smh_in(&h, IN_MSG), 0);
  ck_assert_int_eq(smh_in(&h, R), 1);
  ck_assert_int_eq(smh_in(&h, A(3)), 1);
  ck_assert_str_eq(smh_take(&h), A(3) "[done q1 OK][done m2 OK]");
  ck_assert_uint_eq(xmppuv__sm_queued(h.sm), 0);
  xmppuv__buf_free(&blob);
  smh_free(&h);
}
END_TEST

START_TEST(restored_session_past_its_max_still_asks_and_settles_by_the_servers_h) {
  xmppuv__buf_t blob = XMPPUV__BUF_INIT;
  saved_state(&blob);
  smh_t h;
  smh_init(&h, NULL);
  ck_assert_int_eq(xmppuv__sm_import(h.sm, blob.data, blob.len, NULL, NULL), 0);
  smh_advance(&h, 300000); /* lost at +0 s, saved at +6 s: max is 300 s */
  smh_authenticated(&h);
  /* q1 is unacked: the server's <failed h/> can still say it had it. */
  ck_assert_int_eq(xmppuv__sm_can_resume(h.sm, h.now), 1);
  ck_assert_int_eq(xmppuv__sm_resume(h.sm, h.now), 0);
  smh_take(&h);
  ck_assert_int_eq(smh_in(&h, "<failed xmlns='urn:xmpp:sm:3' h='1'/>"), 1);
  ck_assert_str_eq(smh_take(&h), "[done q1 ESMFAILED][resume-failed -]");
  ck_assert_int_eq(smh_enable(&h, 1), 0);
  ck_assert_str_eq(smh_take(&h), ENABLE STAMPED("m2", "2023-11-14T22:13:21.000Z"));
  xmppuv__buf_free(&blob);
  smh_free(&h);
}
END_TEST

START_TEST(state_without_a_session_keeps_held_stanzas_across_a_restart) {
  xmppuv__sm_config_t cfg;
  xmppuv__sm_config_defaults(&cfg);
  cfg.enabled = 0;
  smh_t h;
  smh_init(&h, &cfg);
  ck_assert_int_eq(smh_send(&h, MSG("m1")), 0);
  xmppuv__buf_t blob = XMPPUV__BUF_INIT;
  ck_assert_int_eq(xmppuv__sm_export(h.sm, h.now, &blob), 0);
  smh_free(&h);

  smh_init(&h, &cfg);
  ck_assert_int_eq(xmppuv__sm_import(h.sm, blob.data, blob.len, NULL, NULL), 0);
  ck_assert_int_eq(xmppuv__sm_resumable(h.sm), 0);
  smh_authenticated(&h);
  ck_assert_int_eq(xmppuv__sm_can_resume(h.sm, h.now), 0);
  ck_assert_int_eq(smh_enable(&h, 1), 0);
  ck_assert_str_eq(smh_take(&h), STAMPED("m1", "2023-11-14T22:13:20.000Z")
                                 "[done m1 ESMOFF][not-enabled -]");
  xmppuv__buf_free(&blob);
  smh_free(&h);
}
END_TEST

START_TEST(unused_engine_exports_an_empty_state) {
  smh_t h;
  smh_init(&h, NULL);
  xmppuv__buf_t blob = XMPPUV__BUF_INIT;
  ck_assert_int_eq(xmppuv__sm_export(h.sm, h.now, &blob), 0);
  smh_free(&h);
  smh_init(&h, NULL);
  char *jid = (char *)"not touched";
  ck_assert_int_eq(xmppuv__sm_import(h.sm, blob.data, blob.len, NULL, &jid), 0);
  ck_assert_ptr_null(jid);
  ck_assert_uint_eq(xmppuv__sm_queued(h.sm), 0);
  ck_assert_ptr_null(xmppuv__sm_id(h.sm));
  smh_authenticated(&h);
  ck_assert_int_eq(xmppuv__sm_can_resume(h.sm, h.now), 0);
  xmppuv__buf_free(&blob);
  smh_free(&h);
}
END_TEST

/* The documented layout, field by field. */
START_TEST(blob_layout_is_the_documented_version_1) {
  ck_assert_uint_eq(xmppuv__crc32(0, "123456789", 9), 0xCBF43926u);
  xmppuv__buf_t blob = XMPPUV__BUF_INIT;
  saved_state(&blob);
  const unsigned char *b = (const unsigned char *)blob.data;
  ck_assert_int_eq(memcmp(b, "XMPPUVSM", 8), 0);
  ck_assert_uint_eq(b[8] | b[9] << 8, 1);   /* version */
  ck_assert_uint_eq(b[10] | b[11] << 8, 1); /* resumable */
  ck_assert_uint_eq(b[12], 2);              /* outbound counter */
  ck_assert_uint_eq(b[16], 2);              /* h */
  ck_assert_uint_eq(b[20] | b[21] << 8, 300);
  int64_t lost = 0;
  for (int i = 7; i >= 0; i--) lost = lost << 8 | b[24 + i];
  ck_assert_int_eq(lost, SMH_START_WALL);
  ck_assert_uint_eq(b[32], 2); /* stanzas */
  const unsigned char *p = b + 36;
  ck_assert_uint_eq(p[0], 4);
  ck_assert_int_eq(memcmp(p + 4, "sm-1", 4), 0);
  p += 8;
  ck_assert_uint_eq(p[0], strlen(LOCATION));
  p += 4 + strlen(LOCATION);
  ck_assert_uint_eq(p[0], strlen(SMH_JID));
  p += 4 + strlen(SMH_JID);
  ck_assert_uint_eq(p[0], 1); /* q1: SENT */
  ck_assert_uint_eq(p[9], strlen(IQ("q1")));
  ck_assert_int_eq(memcmp(p + 13, IQ("q1"), strlen(IQ("q1"))), 0);
  p += 13 + strlen(IQ("q1"));
  ck_assert_uint_eq(p[0], 2); /* m2: held, STAMP */
  p += 13 + strlen(MSG("m2"));
  ck_assert_uint_eq((size_t)(p - b) + 4, blob.len);
  uint32_t crc = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
  ck_assert_uint_eq(crc, xmppuv__crc32(0, b, blob.len - 4));
  xmppuv__buf_free(&blob);
}
END_TEST

static int import_into_fresh(const void *data, size_t len) {
  smh_t h;
  smh_init(&h, NULL);
  int rc = xmppuv__sm_import(h.sm, data, len, NULL, NULL);
  if (rc != 0) {
    /* Refused: the engine is as new. */
    ck_assert_uint_eq(xmppuv__sm_queued(h.sm), 0);
    ck_assert_ptr_null(xmppuv__sm_id(h.sm));
  }
  smh_free(&h);
  return rc;
}

START_TEST(every_truncation_is_refused_with_ESTATEBLOB) {
  xmppuv__buf_t blob = XMPPUV__BUF_INIT;
  saved_state(&blob);
  for (size_t len = 0; len < blob.len; len++)
    ck_assert_int_eq(import_into_fresh(blob.data, len), XMPPUV_ESTATEBLOB);
  ck_assert_int_eq(import_into_fresh(NULL, 0), XMPPUV_ESTATEBLOB);
  ck_assert_int_eq(import_into_fresh(blob.data, blob.len), 0);
  xmppuv__buf_free(&blob);
}
END_TEST

static uint32_t rng_state = 0x9e3779b9u;
static uint32_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return rng_state;
}

/* Byte flips, half of them with the CRC made right again so the decoder
 * and the content checks behind it are reached: an error or a working
 * import, never a crash (the test would die) or a leak. */
START_TEST(random_byte_flips_give_an_error_or_a_valid_import) {
  xmppuv__buf_t blob = XMPPUV__BUF_INIT;
  saved_state(&blob);
  failalloc_install();
  unsigned char *copy = malloc(blob.len);
  ck_assert_ptr_nonnull(copy);
  int accepted = 0, refused = 0;
  for (int iter = 0; iter < 4000; iter++) {
    memcpy(copy, blob.data, blob.len);
    int flips = 1 + (int)(rng() % 4);
    for (int f = 0; f < flips; f++) {
      size_t at = rng() % blob.len;
      copy[at] ^= (unsigned char)(1 + rng() % 255);
    }
    if (iter % 2) fix_crc(copy, blob.len);
    smh_t h;
    smh_init(&h, NULL);
    int rc = xmppuv__sm_import(h.sm, copy, blob.len, NULL, NULL);
    ck_assert_msg(rc == 0 || rc == XMPPUV_ESTATEBLOB || rc == XMPPUV_ENOBUFS,
                  "import gave %s", xmppuv_err_name(rc));
    if (rc == 0) {
      accepted++;
      /* What was accepted works: it goes on the wire and is reported. */
      smh_authenticated(&h);
      ck_assert_int_eq(smh_enable(&h, 0), 0);
      xmppuv__sm_fail_all(h.sm, XMPPUV_ECANCELED);
    } else {
      refused++;
    }
    smh_free(&h);
    ck_assert_int_eq(failalloc_live(), 0);
  }
  failalloc_uninstall();
  ck_assert_int_gt(refused, 1000);
  ck_assert_int_gt(accepted, 0);
  free(copy);
  xmppuv__buf_free(&blob);
}
END_TEST

/* Blobs made with the real encoder from a hand-built header and queue. */
static void craft(xmppuv__buf_t *out, const xmppuv__smp_header_t *hdr,
                  const char *const *stanzas, size_t n, size_t nsent) {
  xmppuv__smq_t q;
  xmppuv__smq_init(&q, 16);
  for (size_t i = 0; i < n; i++) {
    xmppuv__smq_entry_t e;
    memset(&e, 0, sizeof e);
    e.sent_wall_ms = SMH_START_WALL;
    ck_assert_int_eq(xmppuv__smq_push(&q, &e, stanzas[i], strlen(stanzas[i])), 0);
  }
  xmppuv__buf_clear(out);
  ck_assert_int_eq(xmppuv__smp_encode(out, hdr, &q, nsent), 0);
  xmppuv__smq_free(&q);
}

static xmppuv__smp_header_t plain_header(void) {
  xmppuv__smp_header_t hdr;
  memset(&hdr, 0, sizeof hdr);
  hdr.sm_id = "sm-1";
  hdr.sm_id_len = 4;
  hdr.resumable = 1;
  hdr.full_jid = SMH_JID;
  hdr.full_jid_len = strlen(SMH_JID);
  hdr.lost_wall_ms = SMH_START_WALL;
  return hdr;
}

START_TEST(foreign_newer_and_malformed_blobs_are_refused) {
  static const char *const two[] = {MSG("m1"), MSG("m2")};
  xmppuv__buf_t b = XMPPUV__BUF_INIT;
  xmppuv__smp_header_t hdr = plain_header();
  craft(&b, &hdr, two, 2, 0);
  ck_assert_int_eq(import_into_fresh(b.data, b.len), 0);
  unsigned char *u = (unsigned char *)b.data;
  size_t first = 36 + 4 + 4 + 4 + 4 + strlen(SMH_JID);
  size_t second = first + 13 + strlen(MSG("m1"));

  struct {
    size_t at;
    unsigned char value;
  } edits[] = {
      {0, 'Y'},             /* foreign magic */
      {8, 2},               /* a newer version */
      {10, 4},              /* an unknown header flag */
      {second, 1},          /* SENT after a held one */
      {first, 4},           /* an unknown entry flag */
      {first + 9, 0xff},    /* an entry longer than the blob */
      {36, 0xff},           /* an SM-ID longer than the blob */
      {32, 3},              /* more entries than there are */
  };
  for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
    craft(&b, &hdr, two, 2, 0);
    u = (unsigned char *)b.data;
    u[edits[i].at] = edits[i].value;
    fix_crc(u, b.len);
    ck_assert_msg(import_into_fresh(b.data, b.len) == XMPPUV_ESTATEBLOB,
                  "edit %zu accepted", i);
  }
  /* Trailing bytes after the last entry. */
  craft(&b, &hdr, two, 2, 0);
  ck_assert_int_eq(xmppuv__buf_append(&b, "\0\0\0\0", 4), 0);
  fix_crc((unsigned char *)b.data, b.len);
  ck_assert_int_eq(import_into_fresh(b.data, b.len), XMPPUV_ESTATEBLOB);
  /* A valid CRC is not enough: the CRC itself damaged. */
  craft(&b, &hdr, two, 2, 0);
  b.data[b.len - 1] ^= 1;
  ck_assert_int_eq(import_into_fresh(b.data, b.len), XMPPUV_ESTATEBLOB);

  /* Contents: text that is not UTF-8 or holds a NUL, not a stanza. */
  xmppuv__smp_header_t bad = plain_header();
  bad.sm_id = "\xff\xfe";
  bad.sm_id_len = 2;
  craft(&b, &bad, two, 2, 0);
  ck_assert_int_eq(import_into_fresh(b.data, b.len), XMPPUV_ESTATEBLOB);
  bad = plain_header();
  bad.full_jid = "a\0b";
  bad.full_jid_len = 3;
  craft(&b, &bad, two, 2, 0);
  ck_assert_int_eq(import_into_fresh(b.data, b.len), XMPPUV_ESTATEBLOB);
  static const char *const not_stanzas[][1] = {
      {"<foo/>"},
      {"<message xmlns='urn:other'/>"},
      {"<message>"},
      {"<message/><message/>"},
      {"<!DOCTYPE x><message/>"},
      {"junk"},
  };
  for (size_t i = 0; i < sizeof not_stanzas / sizeof not_stanzas[0]; i++) {
    craft(&b, &hdr, not_stanzas[i], 1, 1);
    ck_assert_msg(import_into_fresh(b.data, b.len) == XMPPUV_ESTATEBLOB,
                  "%s accepted", not_stanzas[i][0]);
  }
  xmppuv__buf_free(&b);
}
END_TEST

START_TEST(import_into_a_used_engine_is_ESTATE) {
  xmppuv__buf_t blob = XMPPUV__BUF_INIT;
  saved_state(&blob);
  smh_t h;
  smh_init(&h, NULL);
  smh_authenticated(&h);
  ck_assert_int_eq(xmppuv__sm_import(h.sm, blob.data, blob.len, NULL, NULL),
                   XMPPUV_ESTATE);
  smh_free(&h);
  smh_init(&h, NULL);
  ck_assert_int_eq(smh_send(&h, MSG("x")), 0);
  ck_assert_int_eq(xmppuv__sm_import(h.sm, blob.data, blob.len, NULL, NULL),
                   XMPPUV_ESTATE);
  smh_free(&h);
  smh_init(&h, NULL);
  ck_assert_int_eq(xmppuv__sm_import(h.sm, blob.data, blob.len, NULL, NULL), 0);
  ck_assert_int_eq(xmppuv__sm_import(h.sm, blob.data, blob.len, NULL, NULL),
                   XMPPUV_ESTATE);
  ck_assert_uint_eq(xmppuv__sm_queued(h.sm), 2);
  smh_free(&h);
  xmppuv__buf_free(&blob);
}
END_TEST

START_TEST(import_of_more_stanzas_than_queue_max_is_ENOBUFS) {
  xmppuv__buf_t blob = XMPPUV__BUF_INIT;
  saved_state(&blob);
  xmppuv__sm_config_t cfg;
  xmppuv__sm_config_defaults(&cfg);
  cfg.queue_max = 1;
  smh_t h;
  smh_init(&h, &cfg);
  ck_assert_int_eq(xmppuv__sm_import(h.sm, blob.data, blob.len, NULL, NULL),
                   XMPPUV_ENOBUFS);
  ck_assert_uint_eq(xmppuv__sm_queued(h.sm), 0);
  smh_free(&h);
  xmppuv__buf_free(&blob);
}
END_TEST

static int persist_scenario(void *ud) {
  (void)ud;
  xmppuv__buf_t blob = XMPPUV__BUF_INIT;
  smh_t a, b;
  int rc = smh_open(&a, NULL);
  if (rc != 0) {
    smh_free(&a);
    return rc;
  }
  smh_authenticated(&a);
  if ((rc = smh_enable(&a, 1)) != 0) goto out_a;
  if ((rc = smh_in(&a, "<enabled xmlns='urn:xmpp:sm:3' id='sm-1' "
                       "resume='true' location='" LOCATION "'/>")) < 0)
    goto out_a;
  if ((rc = smh_send(&a, MSG("m1"))) != 0) goto out_a;
  if ((rc = smh_send(&a, IQ("q1"))) != 0) goto out_a;
  smh_disconnect(&a);
  if ((rc = xmppuv__sm_export(a.sm, a.now, &blob)) != 0) goto out_a;
  rc = 0;
out_a:
  xmppuv__sm_fail_all(a.sm, XMPPUV_ECANCELED);
  smh_free(&a);
  if (rc != 0) {
    xmppuv__buf_free(&blob);
    return rc < 0 ? rc : 0;
  }
  if ((rc = smh_open(&b, NULL)) != 0) {
    smh_free(&b);
    xmppuv__buf_free(&blob);
    return rc;
  }
  char *jid = NULL;
  if ((rc = xmppuv__sm_import(b.sm, blob.data, blob.len, NULL, &jid)) != 0)
    goto out_b;
  xmppuv_free(jid);
  smh_authenticated(&b);
  if (xmppuv__sm_resumable(b.sm)) {
    if ((rc = xmppuv__sm_resume(b.sm, b.now)) != 0) goto out_b;
    if ((rc = smh_in(&b, "<resumed xmlns='urn:xmpp:sm:3' h='1' "
                         "previd='sm-1'/>")) < 0)
      goto out_b;
  }
  rc = 0;
out_b:
  xmppuv__sm_fail_all(b.sm, XMPPUV_ECANCELED);
  smh_free(&b);
  xmppuv__buf_free(&blob);
  return rc < 0 ? rc : 0;
}

START_TEST(export_and_import_under_a_failing_allocator) {
  ck_assert_int_gt(failalloc_sweep(persist_scenario, NULL), 10);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("sm_persist");
  TCase *tc = tcase_create("persist");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, export_import_round_trip_keeps_counters_queue_and_session);
  tcase_add_test(tc, restarted_process_resumes_the_old_session_and_resends_unacked);
  tcase_add_test(tc, restored_session_past_its_max_still_asks_and_settles_by_the_servers_h);
  tcase_add_test(tc, state_without_a_session_keeps_held_stanzas_across_a_restart);
  tcase_add_test(tc, unused_engine_exports_an_empty_state);
  tcase_add_test(tc, blob_layout_is_the_documented_version_1);
  tcase_add_test(tc, every_truncation_is_refused_with_ESTATEBLOB);
  tcase_add_test(tc, random_byte_flips_give_an_error_or_a_valid_import);
  tcase_add_test(tc, foreign_newer_and_malformed_blobs_are_refused);
  tcase_add_test(tc, import_into_a_used_engine_is_ESTATE);
  tcase_add_test(tc, import_of_more_stanzas_than_queue_max_is_ENOBUFS);
  tcase_add_test(tc, export_and_import_under_a_failing_allocator);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
