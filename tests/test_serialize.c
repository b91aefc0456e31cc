/* Serialization: escaping, namespaces, round trips, redaction for logs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "failalloc.h"
#include "util/log.h"
#include "xml/redact.h"
#include "xml/serialize.h"
#include "xmppuv.h"

static char *to_string(const xmppuv_stanza_t *s) {
  char *xml = NULL;
  ck_assert_int_eq(xmppuv_stanza_to_string(s, &xml, NULL), 0);
  return xml;
}

START_TEST(text_escaping_covers_all_five_and_cr) {
  xmppuv_stanza_t *s;
  ck_assert_int_eq(xmppuv_stanza_new("body", NULL, &s), 0);
  ck_assert_int_eq(xmppuv_stanza_set_text(s, "a&b<c>d\"e'f\rg\nh\ti"), 0);
  char *xml = to_string(s);
  ck_assert_str_eq(xml, "<body>a&amp;b&lt;c&gt;d&quot;e&apos;f&#13;g\nh\ti</body>");
  xmppuv_free(xml);
  xmppuv_stanza_unref(s);
}
END_TEST

START_TEST(attribute_escaping_keeps_whitespace_exact) {
  xmppuv_stanza_t *s;
  ck_assert_int_eq(xmppuv_stanza_new("x", NULL, &s), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(s, "v", "a&b<c>d\"e'f\rg\nh\ti"), 0);
  char *xml = to_string(s);
  ck_assert_str_eq(xml, "<x v='a&amp;b&lt;c&gt;d&quot;e&apos;f&#13;g&#10;h&#9;i'/>");
  xmppuv_free(xml);
  xmppuv_stanza_unref(s);
}
END_TEST

/* Every value, however nasty, survives serialize -> parse unchanged. */
START_TEST(escaping_round_trips) {
  static const char *values[] = {
      "plain",
      "&amp; is not an entity here",
      "<stream:stream>",
      "]]> and <![CDATA[",
      "quotes \" and ' mixed",
      "\r\n line ends \r and \n and \t tabs  ",
      "&#x26; &lt; &#60;",
      "unicode: \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
      " leading and trailing spaces ",
      "",
  };
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
    xmppuv_stanza_t *s, *back;
    ck_assert_int_eq(xmppuv_stanza_new("m", NULL, &s), 0);
    ck_assert_int_eq(xmppuv_stanza_set_attr(s, "a", values[i]), 0);
    ck_assert_int_eq(xmppuv_stanza_set_text(s, values[i]), 0);
    char *xml = to_string(s);
    ck_assert_int_eq(xmppuv_stanza_parse(xml, strlen(xml), &back), 0);
    ck_assert_str_eq(xmppuv_stanza_attr(back, "a"), values[i]);
    ck_assert_str_eq(xmppuv_stanza_text(back, NULL), values[i]);
    xmppuv_free(xml);
    xmppuv_stanza_unref(back);
    xmppuv_stanza_unref(s);
  }
}
END_TEST

START_TEST(escaping_finds_special_characters_at_every_position) {
  /* The scan takes 16 and 4 bytes per step: a special character must be
   * found wherever it falls, in text and in attribute values. */
  const char specials[] = "&<>\"'\r\n\t";
  for (size_t k = 0; k < sizeof specials - 1; k++) {
    for (size_t pos = 0; pos < 70; pos++) {
      char value[72];
      memset(value, 'a', 70);
      value[70] = '\0';
      value[pos] = specials[k];
      xmppuv_stanza_t *m, *back;
      ck_assert_int_eq(xmppuv_stanza_new("m", NULL, &m), 0);
      ck_assert_int_eq(xmppuv_stanza_set_attr(m, "a", value), 0);
      ck_assert_int_eq(xmppuv_stanza_set_text(m, value), 0);
      char *xml = to_string(m);
      ck_assert_int_eq(xmppuv_stanza_parse(xml, strlen(xml), &back), 0);
      ck_assert_str_eq(xmppuv_stanza_attr(back, "a"), value);
      ck_assert_str_eq(xmppuv_stanza_text(back, NULL), value);
      xmppuv_free(xml);
      xmppuv_stanza_unref(back);
      xmppuv_stanza_unref(m);
    }
  }
}
END_TEST

START_TEST(namespaces_are_declared_where_they_change) {
  xmppuv_stanza_t *iq, *q, *item, *x;
  ck_assert_int_eq(xmppuv_stanza_new("iq", XMPPUV_NS_CLIENT, &iq), 0);
  ck_assert_int_eq(xmppuv_stanza_new_child(iq, "query", "jabber:iq:roster", &q), 0);
  ck_assert_int_eq(xmppuv_stanza_new_child(q, "item", NULL, &item), 0);
  ck_assert_int_eq(xmppuv_stanza_new_child(q, "item", "jabber:iq:roster", NULL), 0);
  ck_assert_int_eq(xmppuv_stanza_new_child(item, "x", "urn:other", &x), 0);
  ck_assert_int_eq(xmppuv_stanza_new_child(x, "y", NULL, NULL), 0);
  char *xml = to_string(iq);
  /* jabber:client is the stream default: not declared. */
  ck_assert_str_eq(xml, "<iq><query xmlns='jabber:iq:roster'><item><x xmlns='urn:other'>"
                        "<y/></x></item><item/></query></iq>");
  xmppuv_free(xml);
  xmppuv_stanza_unref(iq);
}
END_TEST

START_TEST(nonza_namespace_is_declared_on_the_root) {
  xmppuv_stanza_t *r;
  ck_assert_int_eq(xmppuv_stanza_new("r", "urn:xmpp:sm:3", &r), 0);
  char *xml = to_string(r);
  ck_assert_str_eq(xml, "<r xmlns='urn:xmpp:sm:3'/>");
  xmppuv_free(xml);
  xmppuv_stanza_unref(r);
}
END_TEST

START_TEST(no_namespace_inside_a_namespace_is_written_as_empty_xmlns) {
  const char *in = "<a xmlns='urn:a'><b xmlns=''><c/></b></a>";
  xmppuv_stanza_t *s;
  ck_assert_int_eq(xmppuv_stanza_parse(in, strlen(in), &s), 0);
  char *xml = to_string(s);
  ck_assert_str_eq(xml, in);
  xmppuv_free(xml);
  xmppuv_stanza_unref(s);
}
END_TEST

START_TEST(prefixed_attributes_keep_their_declaration) {
  const char *in = "<a xmlns:p='urn:p' p:x='1' xml:lang='en'/>";
  xmppuv_stanza_t *s, *back;
  ck_assert_int_eq(xmppuv_stanza_parse(in, strlen(in), &s), 0);
  ck_assert_str_eq(xmppuv_stanza_attr(s, "p:x"), "1");
  ck_assert_str_eq(xmppuv_stanza_attr(s, "xml:lang"), "en");
  char *xml = to_string(s);
  ck_assert_int_eq(xmppuv_stanza_parse(xml, strlen(xml), &back), 0);
  ck_assert_str_eq(xmppuv_stanza_attr(back, "p:x"), "1");
  xmppuv_free(xml);
  xmppuv_stanza_unref(back);
  xmppuv_stanza_unref(s);
}
END_TEST

START_TEST(deep_trees_serialize_without_recursion) {
  /* Built through the API, so no parser depth limit applies. */
  xmppuv_stanza_t *root, *cur;
  ck_assert_int_eq(xmppuv_stanza_new("d", NULL, &root), 0);
  cur = root;
  for (int i = 0; i < 100000; i++)
    ck_assert_int_eq(xmppuv_stanza_new_child(cur, "d", NULL, &cur), 0);
  ck_assert_int_eq(xmppuv_stanza_add_text(cur, "leaf", 4), 0);
  char *xml;
  size_t len;
  ck_assert_int_eq(xmppuv_stanza_to_string(root, &xml, &len), 0);
  ck_assert_uint_eq(len, 100001 * 7 + 4);
  ck_assert_int_eq(strncmp(xml + 100001 * 3, "leaf</d>", 8), 0);
  xmppuv_free(xml);
  xmppuv_stanza_t *copy;
  ck_assert_int_eq(xmppuv_stanza_copy(root, &copy), 0);
  xmppuv_stanza_unref(copy);
  xmppuv_stanza_unref(root);
}
END_TEST

START_TEST(root_end_tag_offset_allows_inserting_a_child) {
  xmppuv_stanza_t *m;
  ck_assert_int_eq(xmppuv_stanza_new("message", NULL, &m), 0);
  xmppuv__buf_t b = XMPPUV__BUF_INIT;
  size_t at = 0;
  ck_assert_int_eq(xmppuv__serialize_ex(&b, m, XMPPUV_NS_CLIENT,
                                        XMPPUV__SER_ROOT_END_TAG, &at), 0);
  ck_assert_str_eq(b.data, "<message></message>");
  ck_assert_uint_eq(at, 9);
  xmppuv__buf_clear(&b);
  ck_assert_int_eq(xmppuv_stanza_new_child(m, "body", NULL, NULL), 0);
  ck_assert_int_eq(xmppuv__serialize_ex(&b, m, XMPPUV_NS_CLIENT,
                                        XMPPUV__SER_ROOT_END_TAG, &at), 0);
  ck_assert_str_eq(b.data + at, "</message>");
  xmppuv__buf_free(&b);
  xmppuv_stanza_unref(m);
}
END_TEST

START_TEST(redaction_hides_sasl_payloads_and_passwords) {
  const char *in[] = {
      "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>",
      "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>Yz1iaXdz</response>",
      "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>dj1ybUY5</success>",
      "<iq><query xmlns='jabber:iq:register'><password>hunter2</password></query></iq>",
      "<x token='abc'/>",
  };
  const char *secret[] = {"AGFsaWNlAHNlY3JldA==", "Yz1iaXdz", "dj1ybUY5", "hunter2", "abc"};
  for (size_t i = 0; i < 5; i++) {
    xmppuv_stanza_t *s;
    ck_assert_int_eq(xmppuv_stanza_parse(in[i], strlen(in[i]), &s), 0);
    xmppuv__buf_t b = XMPPUV__BUF_INIT;
    ck_assert_int_eq(xmppuv__serialize(&b, s, XMPPUV_NS_CLIENT, XMPPUV__SER_REDACT), 0);
    ck_assert_ptr_null(strstr(b.data, secret[i]));
    ck_assert_ptr_nonnull(strstr(b.data, XMPPUV__REDACTED));
    xmppuv__buf_free(&b);
    /* Without the flag nothing is hidden (the wire needs the real bytes). */
    char *xml = to_string(s);
    ck_assert_ptr_nonnull(strstr(xml, secret[i]));
    xmppuv_free(xml);
    xmppuv_stanza_unref(s);
  }
}
END_TEST

static int logged_count;
static char logged[512];
static void capture(void *ud, xmppuv_log_level_t level, const char *area, const char *msg) {
  (void)ud;
  (void)level;
  logged_count++;
  snprintf(logged, sizeof logged, "%s %s", area, msg);
}

START_TEST(wire_log_is_redacted_and_off_below_trace) {
  const char *in = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>c2VjcmV0</auth>";
  xmppuv_stanza_t *s;
  ck_assert_int_eq(xmppuv_stanza_parse(in, strlen(in), &s), 0);
  xmppuv__log_t log = {capture, NULL, XMPPUV_LOG_DEBUG};
  logged_count = 0;
  xmppuv__log_stanza(&log, "out", s);
  ck_assert_int_eq(logged_count, 0);
  log.level = XMPPUV_LOG_TRACE;
  xmppuv__log_stanza(&log, "out", s);
  ck_assert_int_eq(logged_count, 1);
  ck_assert_ptr_null(strstr(logged, "c2VjcmV0"));
  ck_assert_str_eq(logged, "wire-out <auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                           "mechanism='PLAIN'>[redacted]</auth>");
  xmppuv__logf(&log, XMPPUV_LOG_INFO, "test", "n=%d", 42);
  ck_assert_str_eq(logged, "test n=42");
  xmppuv_stanza_unref(s);
}
END_TEST

static int serialize_scenario(void *ud) {
  const char *in = ud;
  xmppuv_stanza_t *s;
  int rc = xmppuv_stanza_parse(in, strlen(in), &s);
  if (rc != 0) return rc;
  char *xml = NULL;
  rc = xmppuv_stanza_to_string(s, &xml, NULL);
  if (rc == 0 && strcmp(xml, in) != 0) rc = XMPPUV_EINVAL;
  xmppuv_free(xml);
  xmppuv_stanza_unref(s);
  return rc;
}

START_TEST(every_allocation_failure_gives_ENOMEM_without_leaks) {
  const char *in = "<message to='a@b' id='1'><body>hi &amp; bye</body>"
                   "<x xmlns='urn:x' xmlns:p='urn:p' p:a='1'><y/></x></message>";
  ck_assert_int_gt(failalloc_sweep(serialize_scenario, (void *)in), 3);
}
END_TEST

static Suite *serialize_suite(void) {
  Suite *s = suite_create("serialize");
  TCase *tc = tcase_create("serialize");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, text_escaping_covers_all_five_and_cr);
  tcase_add_test(tc, attribute_escaping_keeps_whitespace_exact);
  tcase_add_test(tc, escaping_round_trips);
  tcase_add_test(tc, escaping_finds_special_characters_at_every_position);
  tcase_add_test(tc, namespaces_are_declared_where_they_change);
  tcase_add_test(tc, nonza_namespace_is_declared_on_the_root);
  tcase_add_test(tc, no_namespace_inside_a_namespace_is_written_as_empty_xmlns);
  tcase_add_test(tc, prefixed_attributes_keep_their_declaration);
  tcase_add_test(tc, deep_trees_serialize_without_recursion);
  tcase_add_test(tc, root_end_tag_offset_allows_inserting_a_child);
  tcase_add_test(tc, redaction_hides_sasl_payloads_and_passwords);
  tcase_add_test(tc, wire_log_is_redacted_and_off_below_trace);
  tcase_add_test(tc, every_allocation_failure_gives_ENOMEM_without_leaks);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(serialize_suite)
