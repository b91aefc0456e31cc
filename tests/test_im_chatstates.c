/* Chat states (XEP-0085, lib/im/chatstates.c): in and out of a message. */
#include <check.h>
#include <string.h>
#include <xmppuv.h>

#include "check_main.h"

START_TEST(a_state_goes_in_once_and_comes_out) {
  xmppuv_stanza_t *m = NULL;
  ck_assert_int_eq(xmppuv_message_new("bob@example.org", "chat", NULL, &m), 0);
  ck_assert_int_eq(xmppuv_chatstate_of(m), XMPPUV_CHATSTATE_NONE);
  ck_assert_int_eq(xmppuv_chatstate_set(m, XMPPUV_CHATSTATE_COMPOSING), 0);
  ck_assert_int_eq(xmppuv_chatstate_set(m, XMPPUV_CHATSTATE_PAUSED), 0);
  ck_assert_int_eq(xmppuv_chatstate_of(m), XMPPUV_CHATSTATE_PAUSED);
  char *xml = NULL;
  size_t len = 0;
  ck_assert_int_eq(xmppuv_stanza_to_string(m, &xml, &len), 0);
  ck_assert_ptr_nonnull(strstr(xml, "<paused xmlns='http://jabber.org/protocol/chatstates'/>"));
  ck_assert_ptr_null(strstr(xml, "composing"));
  xmppuv_free(xml);
  ck_assert_int_eq(xmppuv_chatstate_set(m, XMPPUV_CHATSTATE_NONE), 0);
  ck_assert_int_eq(xmppuv_chatstate_of(m), XMPPUV_CHATSTATE_NONE);
  ck_assert_int_eq(xmppuv_chatstate_set(m, (xmppuv_chatstate_t)99), XMPPUV_EINVAL);
  ck_assert_str_eq(xmppuv_chatstate_name(XMPPUV_CHATSTATE_GONE), "gone");
  ck_assert_ptr_null(xmppuv_chatstate_name(XMPPUV_CHATSTATE_NONE));
  xmppuv_stanza_unref(m);
  /* Read from the wire; a presence is not a message. */
  static const char wire[] =
      "<message><body>hi</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>";
  ck_assert_int_eq(xmppuv_stanza_parse(wire, strlen(wire), &m), 0);
  ck_assert_int_eq(xmppuv_chatstate_of(m), XMPPUV_CHATSTATE_ACTIVE);
  xmppuv_stanza_unref(m);
  ck_assert_int_eq(xmppuv_stanza_new("presence", NULL, &m), 0);
  ck_assert_int_eq(xmppuv_chatstate_set(m, XMPPUV_CHATSTATE_ACTIVE), XMPPUV_EINVAL);
  xmppuv_stanza_unref(m);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("im_chatstates");
  TCase *tc = tcase_create("chatstates");
  tcase_add_test(tc, a_state_goes_in_once_and_comes_out);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
