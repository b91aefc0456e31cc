/* The element tree: building, reading, copying, references, input checks. */
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "failalloc.h"
#include "xmppuv.h"

static char *to_string(const xmppuv_stanza_t *s) {
  char *xml = NULL;
  ck_assert_int_eq(xmppuv_stanza_to_string(s, &xml, NULL), 0);
  return xml;
}

#define ck_assert_xml(s, expected)              \
  do {                                          \
    char *xml_ = to_string(s);                  \
    ck_assert_str_eq(xml_, expected);           \
    xmppuv_free(xml_);                          \
  } while (0)

START_TEST(build_a_message_and_read_it_back) {
  xmppuv_stanza_t *msg, *body;
  ck_assert_int_eq(xmppuv_stanza_new("message", NULL, &msg), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(msg, "to", "juliet@example.com"), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(msg, "type", "chat"), 0);
  ck_assert_int_eq(xmppuv_stanza_new_child(msg, "body", NULL, &body), 0);
  ck_assert_int_eq(xmppuv_stanza_set_text(body, "Wherefore art thou?"), 0);

  ck_assert_str_eq(xmppuv_stanza_name(msg), "message");
  ck_assert_ptr_null(xmppuv_stanza_ns(msg));
  ck_assert_str_eq(xmppuv_stanza_attr(msg, "to"), "juliet@example.com");
  ck_assert_ptr_null(xmppuv_stanza_attr(msg, "from"));
  ck_assert_uint_eq(xmppuv_stanza_attr_count(msg), 2);
  const char *n, *v;
  ck_assert_int_eq(xmppuv_stanza_attr_at(msg, 1, &n, &v), 0);
  ck_assert_str_eq(n, "type");
  ck_assert_str_eq(v, "chat");
  ck_assert_int_eq(xmppuv_stanza_attr_at(msg, 2, &n, &v), XMPPUV_EINVAL);
  ck_assert_ptr_eq(xmppuv_stanza_child(msg, "body", NULL), body);
  ck_assert_ptr_eq(xmppuv_stanza_parent(body), msg);
  ck_assert_str_eq(xmppuv_stanza_child_text(msg, "body", NULL), "Wherefore art thou?");
  ck_assert_xml(msg, "<message to='juliet@example.com' type='chat'>"
                     "<body>Wherefore art thou?</body></message>");
  xmppuv_stanza_unref(msg);
}
END_TEST

START_TEST(attributes_are_replaced_and_removed) {
  xmppuv_stanza_t *s;
  ck_assert_int_eq(xmppuv_stanza_new("iq", NULL, &s), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(s, "id", "1"), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(s, "type", "get"), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(s, "id", "2"), 0);
  ck_assert_str_eq(xmppuv_stanza_attr(s, "id"), "2");
  ck_assert_uint_eq(xmppuv_stanza_attr_count(s), 2);
  ck_assert_int_eq(xmppuv_stanza_set_attr(s, "id", NULL), 0);
  ck_assert_ptr_null(xmppuv_stanza_attr(s, "id"));
  ck_assert_uint_eq(xmppuv_stanza_attr_count(s), 1);
  ck_assert_int_eq(xmppuv_stanza_set_attr(s, "absent", NULL), 0);
  ck_assert_xml(s, "<iq type='get'/>");
  xmppuv_stanza_unref(s);
}
END_TEST

START_TEST(children_are_found_by_name_and_namespace) {
  xmppuv_stanza_t *iq, *query, *a, *b, *c;
  ck_assert_int_eq(xmppuv_stanza_new("iq", NULL, &iq), 0);
  ck_assert_int_eq(xmppuv_stanza_new_child(iq, "query", "jabber:iq:roster", &query), 0);
  ck_assert_int_eq(xmppuv_stanza_new_child(query, "item", NULL, &a), 0);
  ck_assert_int_eq(xmppuv_stanza_new_child(query, "group", NULL, &b), 0);
  ck_assert_int_eq(xmppuv_stanza_new_child(query, "item", NULL, &c), 0);
  ck_assert_int_eq(xmppuv_stanza_add_text(query, "x", 1), 0);

  ck_assert_ptr_eq(xmppuv_stanza_child(iq, "query", "jabber:iq:roster"), query);
  ck_assert_ptr_null(xmppuv_stanza_child(iq, "query", "jabber:iq:version"));
  ck_assert_ptr_eq(xmppuv_stanza_child(iq, NULL, "jabber:iq:roster"), query);
  /* Children inherit the namespace. */
  ck_assert_str_eq(xmppuv_stanza_ns(a), "jabber:iq:roster");
  ck_assert_ptr_eq(xmppuv_stanza_child(query, "item", "jabber:iq:roster"), a);
  ck_assert_ptr_eq(xmppuv_stanza_next(a, "item", NULL), c);
  ck_assert_ptr_null(xmppuv_stanza_next(c, "item", NULL));
  ck_assert_ptr_eq(xmppuv_stanza_next(a, NULL, NULL), b);

  int nodes = 0, texts = 0;
  for (xmppuv_stanza_t *n = xmppuv_stanza_first_node(query); n;
       n = xmppuv_stanza_next_node(n)) {
    nodes++;
    texts += xmppuv_stanza_is_text(n);
  }
  ck_assert_int_eq(nodes, 4);
  ck_assert_int_eq(texts, 1);
  xmppuv_stanza_unref(iq);
}
END_TEST

START_TEST(adjacent_text_is_merged_and_split_text_is_joined) {
  xmppuv_stanza_t *p, *br;
  ck_assert_int_eq(xmppuv_stanza_new("p", NULL, &p), 0);
  ck_assert_int_eq(xmppuv_stanza_add_text(p, "Hello, ", 7), 0);
  ck_assert_int_eq(xmppuv_stanza_add_text(p, "world", 5), 0);
  ck_assert_ptr_nonnull(xmppuv_stanza_first_node(p));
  ck_assert_ptr_null(xmppuv_stanza_next_node(xmppuv_stanza_first_node(p)));
  ck_assert_int_eq(xmppuv_stanza_new_child(p, "br", NULL, &br), 0);
  ck_assert_int_eq(xmppuv_stanza_add_text(p, "!", 1), 0);
  size_t len;
  ck_assert_str_eq(xmppuv_stanza_text(p, &len), "Hello, world!");
  ck_assert_uint_eq(len, 13);
  /* The join is cached but follows changes. */
  ck_assert_int_eq(xmppuv_stanza_add_text(p, "?", 1), 0);
  ck_assert_str_eq(xmppuv_stanza_text(p, NULL), "Hello, world!?");
  ck_assert_str_eq(xmppuv_stanza_text(br, NULL), "");
  ck_assert_xml(p, "<p>Hello, world<br/>!?</p>");
  xmppuv_stanza_unref(p);
}
END_TEST

START_TEST(text_may_hold_any_bytes_up_to_len) {
  xmppuv_stanza_t *s;
  ck_assert_int_eq(xmppuv_stanza_new("body", NULL, &s), 0);
  ck_assert_int_eq(xmppuv_stanza_add_text(s, "abcdef", 3), 0);
  ck_assert_str_eq(xmppuv_stanza_text(s, NULL), "abc");
  ck_assert_int_eq(xmppuv_stanza_add_text(s, NULL, 0), 0);
  ck_assert_int_eq(xmppuv_stanza_add_text(s, NULL, 3), XMPPUV_EINVAL);
  xmppuv_stanza_unref(s);
}
END_TEST

START_TEST(long_text_accumulates_in_linear_time) {
  /* 200k appends of 8 bytes: quadratic copying would take minutes. */
  xmppuv_stanza_t *s;
  ck_assert_int_eq(xmppuv_stanza_new("body", NULL, &s), 0);
  for (int i = 0; i < 200000; i++)
    ck_assert_int_eq(xmppuv_stanza_add_text(s, "abcdefgh", 8), 0);
  size_t len;
  const char *t = xmppuv_stanza_text(s, &len);
  ck_assert_uint_eq(len, 1600000);
  ck_assert_int_eq(memcmp(t + 1599992, "abcdefgh", 8), 0);
  xmppuv_stanza_unref(s);
}
END_TEST

START_TEST(set_text_replaces_all_children) {
  xmppuv_stanza_t *s, *c;
  ck_assert_int_eq(xmppuv_stanza_new("body", NULL, &s), 0);
  ck_assert_int_eq(xmppuv_stanza_new_child(s, "x", NULL, &c), 0);
  ck_assert_int_eq(xmppuv_stanza_add_text(s, "old", 3), 0);
  ck_assert_int_eq(xmppuv_stanza_set_text(s, "new"), 0);
  ck_assert_xml(s, "<body>new</body>");
  ck_assert_ptr_null(xmppuv_stanza_parent(c));
  ck_assert_int_eq(xmppuv_stanza_set_text(s, ""), 0);
  ck_assert_xml(s, "<body/>");
  xmppuv_stanza_unref(s);
}
END_TEST

START_TEST(remove_detaches_a_child) {
  xmppuv_stanza_t *s, *a, *b, *c;
  ck_assert_int_eq(xmppuv_stanza_new("r", NULL, &s), 0);
  ck_assert_int_eq(xmppuv_stanza_new_child(s, "a", NULL, &a), 0);
  ck_assert_int_eq(xmppuv_stanza_new_child(s, "b", NULL, &b), 0);
  ck_assert_int_eq(xmppuv_stanza_new_child(s, "c", NULL, &c), 0);
  ck_assert_int_eq(xmppuv_stanza_remove(b), 0);
  ck_assert_xml(s, "<r><a/><c/></r>");
  ck_assert_int_eq(xmppuv_stanza_remove(c), 0);
  ck_assert_int_eq(xmppuv_stanza_remove(a), 0);
  ck_assert_xml(s, "<r/>");
  ck_assert_int_eq(xmppuv_stanza_remove(a), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_stanza_remove(s), XMPPUV_EINVAL);
  /* A removed node stays usable while the tree lives. */
  ck_assert_str_eq(xmppuv_stanza_name(b), "b");
  xmppuv_stanza_unref(s);
}
END_TEST

START_TEST(a_reference_to_a_child_keeps_the_tree) {
  xmppuv_stanza_t *s, *body;
  ck_assert_int_eq(xmppuv_stanza_parse("<message><body>kept</body></message>", 36, &s), 0);
  body = xmppuv_stanza_ref(xmppuv_stanza_child(s, "body", NULL));
  xmppuv_stanza_unref(s);
  ck_assert_str_eq(xmppuv_stanza_text(body, NULL), "kept");
  ck_assert_str_eq(xmppuv_stanza_name(xmppuv_stanza_parent(body)), "message");
  xmppuv_stanza_unref(body);
  ck_assert_ptr_null(xmppuv_stanza_ref(NULL));
  xmppuv_stanza_unref(NULL);
}
END_TEST

START_TEST(copy_is_deep_and_independent) {
  const char *xml = "<iq type='set' id='a1'><query xmlns='jabber:iq:roster'>"
                    "<item jid='romeo@example.net' name='R'><group>Friends</group></item>"
                    "<item jid='nurse@example.com'/></query></iq>";
  xmppuv_stanza_t *s, *copy;
  ck_assert_int_eq(xmppuv_stanza_parse(xml, strlen(xml), &s), 0);
  ck_assert_int_eq(xmppuv_stanza_copy(s, &copy), 0);
  ck_assert_xml(copy, xml);
  ck_assert_int_eq(xmppuv_stanza_set_attr(s, "id", "changed"), 0);
  xmppuv_stanza_unref(s);
  ck_assert_xml(copy, xml);
  /* A copy of a child keeps the namespace it inherited. */
  xmppuv_stanza_t *item = xmppuv_stanza_child(
      xmppuv_stanza_child(copy, "query", NULL), "item", NULL), *item_copy;
  ck_assert_int_eq(xmppuv_stanza_copy(item, &item_copy), 0);
  ck_assert_str_eq(xmppuv_stanza_ns(item_copy), "jabber:iq:roster");
  ck_assert_xml(item_copy, "<item xmlns='jabber:iq:roster' jid='romeo@example.net' "
                           "name='R'><group>Friends</group></item>");
  xmppuv_stanza_unref(item_copy);
  xmppuv_stanza_unref(copy);
}
END_TEST

START_TEST(add_child_copies_into_the_parent) {
  xmppuv_stanza_t *msg, *x, *inner;
  ck_assert_int_eq(xmppuv_stanza_new("message", NULL, &msg), 0);
  ck_assert_int_eq(xmppuv_stanza_new("x", "jabber:x:oob", &x), 0);
  ck_assert_int_eq(xmppuv_stanza_new_child(x, "url", NULL, &inner), 0);
  ck_assert_int_eq(xmppuv_stanza_set_text(inner, "https://example.org/"), 0);
  ck_assert_int_eq(xmppuv_stanza_add_child(msg, x), 0);
  ck_assert_int_eq(xmppuv_stanza_set_text(inner, "changed later"), 0);
  xmppuv_stanza_unref(x);
  ck_assert_xml(msg, "<message><x xmlns='jabber:x:oob'><url>https://example.org/"
                     "</url></x></message>");
  /* A node cannot be added under itself. */
  ck_assert_int_eq(xmppuv_stanza_add_child(msg, msg), XMPPUV_EINVAL);
  xmppuv_stanza_t *child = xmppuv_stanza_child(msg, "x", NULL);
  ck_assert_int_eq(xmppuv_stanza_add_child(child, msg), XMPPUV_EINVAL);
  xmppuv_stanza_unref(msg);
}
END_TEST

START_TEST(bad_names_are_refused) {
  xmppuv_stanza_t *s = NULL;
  ck_assert_int_eq(xmppuv_stanza_new("", NULL, &s), XMPPUV_EXMLNAME);
  ck_assert_int_eq(xmppuv_stanza_new("1abc", NULL, &s), XMPPUV_EXMLNAME);
  ck_assert_int_eq(xmppuv_stanza_new("a b", NULL, &s), XMPPUV_EXMLNAME);
  ck_assert_int_eq(xmppuv_stanza_new("a<b", NULL, &s), XMPPUV_EXMLNAME);
  ck_assert_int_eq(xmppuv_stanza_new("stream:stream", NULL, &s), XMPPUV_EXMLNAME);
  ck_assert_int_eq(xmppuv_stanza_new("a\xff", NULL, &s), XMPPUV_EUTF8);
  ck_assert_int_eq(xmppuv_stanza_new(NULL, NULL, &s), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_stanza_new("x", NULL, NULL), XMPPUV_EINVAL);
  ck_assert_ptr_null(s);
  ck_assert_int_eq(xmppuv_stanza_new("caf\xc3\xa9-1.x_y", NULL, &s), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(s, "xmlns", "x"), XMPPUV_EXMLNAME);
  ck_assert_int_eq(xmppuv_stanza_set_attr(s, "a:b:c", "x"), XMPPUV_EXMLNAME);
  ck_assert_int_eq(xmppuv_stanza_set_attr(s, ":a", "x"), XMPPUV_EXMLNAME);
  ck_assert_int_eq(xmppuv_stanza_set_attr(s, "a:", "x"), XMPPUV_EXMLNAME);
  ck_assert_int_eq(xmppuv_stanza_set_attr(s, "a:1", "x"), XMPPUV_EXMLNAME);
  /* A prefix must be bound; xml: always is. */
  ck_assert_int_eq(xmppuv_stanza_set_attr(s, "foo:bar", "x"), XMPPUV_EXMLNAME);
  ck_assert_int_eq(xmppuv_stanza_set_attr(s, "xml:lang", "en"), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(s, "xmlns:foo", "urn:foo"), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(s, "foo:bar", "x"), 0);
  xmppuv_stanza_unref(s);
}
END_TEST

/* Found by fuzzing (tests/fuzz/fuzz_stanza): U+0651 may start a name by the
 * XML 1.0 5th edition rule, but not by the 4th edition tables that expat
 * (ours, Prosody's, ejabberd's) implements, so <\u0651/> was accepted and
 * serialized into XML that no parser on the path would read. */
START_TEST(names_expat_cannot_read_are_refused) {
  xmppuv_stanza_t *s = NULL, *child = NULL;
  ck_assert_int_eq(xmppuv_stanza_new("\xd9\x91", NULL, &s), XMPPUV_EXMLNAME);
  ck_assert_ptr_null(s);
  ck_assert_int_eq(xmppuv_stanza_new("message", NULL, &s), 0);
  ck_assert_int_eq(xmppuv_stanza_new_child(s, "\xd9\x91", NULL, &child), XMPPUV_EXMLNAME);
  ck_assert_int_eq(xmppuv_stanza_set_attr(s, "\xd9\x91", "x"), XMPPUV_EXMLNAME);
  ck_assert_int_eq(xmppuv_stanza_set_attr(s, "xmlns:p", "urn:p"), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(s, "p:\xd9\x91", "x"), XMPPUV_EXMLNAME);
  /* Inside a name it is a combining character, which both editions allow. */
  ck_assert_int_eq(xmppuv_stanza_new_child(s, "a\xd9\x91", NULL, &child), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(s, "p:b\xd9\x91", "x"), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(s, "caf\xc3\xa9", "x"), 0);
  char *text = NULL;
  size_t len = 0;
  ck_assert_int_eq(xmppuv_stanza_to_string(s, &text, &len), 0);
  xmppuv_stanza_t *back = NULL;
  ck_assert_int_eq(xmppuv_stanza_parse(text, len, &back), 0);
  ck_assert_ptr_nonnull(xmppuv_stanza_child(back, "a\xd9\x91", NULL));
  ck_assert_str_eq(xmppuv_stanza_attr(back, "caf\xc3\xa9"), "x");
  xmppuv_stanza_unref(back);
  xmppuv_free(text);
  xmppuv_stanza_unref(s);
}
END_TEST

/* Found by fuzzing (tests/fuzz/fuzz_stanza): set_attr("xmlns:p", "") was
 * accepted and serialized as <iq xmlns:p=''/>, which Namespaces in XML 1.0
 * (and so expat, ours and the servers') refuses; so are the reserved
 * namespaces and prefixes. */
START_TEST(namespace_declarations_xml_forbids_are_refused) {
  xmppuv_stanza_t *s = NULL, *child = NULL;
  ck_assert_int_eq(xmppuv_stanza_new("iq", NULL, &s), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(s, "xmlns:p", ""), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_stanza_set_attr(s, "xmlns:xmlns", "urn:x"), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_stanza_set_attr(s, "xmlns:xml", "urn:x"), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_stanza_set_attr(s, "xmlns:p", XMPPUV_NS_XML), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_stanza_set_attr(s, "xmlns:p", "http://www.w3.org/2000/xmlns/"),
                   XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_stanza_new_child(s, "x", "http://www.w3.org/2000/xmlns/", &child),
                   XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_stanza_new_child(s, "x", XMPPUV_NS_XML, &child), XMPPUV_EINVAL);
  ck_assert_uint_eq(xmppuv_stanza_attr_count(s), 0);
  /* What XML allows still goes, and reads back. */
  ck_assert_int_eq(xmppuv_stanza_set_attr(s, "xmlns:xml", XMPPUV_NS_XML), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(s, "xmlns:p", "urn:p"), 0);
  ck_assert_int_eq(xmppuv_stanza_new_child(s, "x", "", &child), 0);
  char *text = NULL;
  size_t len = 0;
  ck_assert_int_eq(xmppuv_stanza_to_string(s, &text, &len), 0);
  xmppuv_stanza_t *back = NULL;
  ck_assert_int_eq(xmppuv_stanza_parse(text, len, &back), 0);
  xmppuv_stanza_unref(back);
  xmppuv_free(text);
  xmppuv_stanza_unref(s);
}
END_TEST

/* Found by fuzzing (tests/fuzz/fuzz_stanza): a prefixed attribute may use a
 * declaration on an ancestor; a copy of the element (xmppuv_stanza_copy,
 * xmppuv_stanza_add_child elsewhere), or the element removed or cut off by
 * set_text and added elsewhere, lost it and serialized as <u u:p='x'/>,
 * with the prefix unbound. */
START_TEST(a_copy_or_move_keeps_the_prefix_declarations_its_attributes_need) {
  xmppuv_stanza_t *root = NULL, *mid = NULL, *leaf = NULL, *copy = NULL, *other = NULL;
  ck_assert_int_eq(xmppuv_stanza_new("message", NULL, &root), 0);
  ck_assert_int_eq(xmppuv_stanza_new_child(root, "x", "urn:x", &mid), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(mid, "xmlns:u", "urn:u"), 0);
  ck_assert_int_eq(xmppuv_stanza_new_child(mid, "y", NULL, &leaf), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(leaf, "u:p", "x"), 0);
  /* The declaration cannot go while it is in use. */
  ck_assert_int_eq(xmppuv_stanza_set_attr(mid, "xmlns:u", NULL), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_stanza_copy(leaf, &copy), 0);
  ck_assert_str_eq(xmppuv_stanza_attr(copy, "xmlns:u"), "urn:u");
  ck_assert_int_eq(xmppuv_stanza_new("iq", NULL, &other), 0);
  ck_assert_int_eq(xmppuv_stanza_add_child(other, leaf), 0);
  xmppuv_stanza_t *trees[] = {copy, other};
  for (size_t i = 0; i < 2; i++) {
    char *text = NULL;
    size_t len = 0;
    ck_assert_int_eq(xmppuv_stanza_to_string(trees[i], &text, &len), 0);
    xmppuv_stanza_t *back = NULL;
    ck_assert_int_eq(xmppuv_stanza_parse(text, len, &back), 0);
    xmppuv_stanza_unref(back);
    xmppuv_free(text);
  }
  xmppuv_stanza_unref(copy);
  xmppuv_stanza_unref(other);
  /* Moved (removed, then added elsewhere), or cut off by set_text: the
   * same. */
  ck_assert_int_eq(xmppuv_stanza_remove(leaf), 0);
  ck_assert_str_eq(xmppuv_stanza_attr(leaf, "xmlns:u"), "urn:u");
  xmppuv_stanza_t *again = NULL, *leaf2 = NULL;
  ck_assert_int_eq(xmppuv_stanza_new_child(mid, "z", NULL, &leaf2), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(leaf2, "u:q", "y"), 0);
  ck_assert_int_eq(xmppuv_stanza_set_text(mid, "gone"), 0);
  ck_assert_int_eq(xmppuv_stanza_new("iq", NULL, &again), 0);
  ck_assert_int_eq(xmppuv_stanza_add_child(again, leaf), 0);
  ck_assert_int_eq(xmppuv_stanza_add_child(again, leaf2), 0);
  char *text = NULL;
  size_t len = 0;
  ck_assert_int_eq(xmppuv_stanza_to_string(again, &text, &len), 0);
  xmppuv_stanza_t *back = NULL;
  ck_assert_int_eq(xmppuv_stanza_parse(text, len, &back), 0);
  xmppuv_stanza_unref(back);
  xmppuv_free(text);
  xmppuv_stanza_unref(again);
  xmppuv_stanza_unref(root);
}
END_TEST

START_TEST(invalid_utf8_is_refused) {
  xmppuv_stanza_t *s;
  ck_assert_int_eq(xmppuv_stanza_new("body", NULL, &s), 0);
  static const char *bad[] = {
      "\x80",             /* lone continuation byte */
      "\xc3",             /* truncated sequence */
      "\xc0\xaf",         /* overlong '/' */
      "\xe0\x80\xaf",     /* overlong, 3 bytes */
      "\xed\xa0\x80",     /* UTF-16 surrogate */
      "\xf4\x90\x80\x80", /* above U+10FFFF */
      "\xfe",             /* never valid */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ck_assert_int_eq(xmppuv_stanza_add_text(s, bad[i], strlen(bad[i])), XMPPUV_EUTF8);
    ck_assert_int_eq(xmppuv_stanza_set_attr(s, "a", bad[i]), XMPPUV_EUTF8);
  }
  xmppuv_stanza_t *other = s;
  ck_assert_int_eq(xmppuv_stanza_new("body", "urn:\xff", &other), XMPPUV_EUTF8);
  ck_assert_ptr_null(other);
  xmppuv_stanza_unref(s);
}
END_TEST

START_TEST(characters_xml_forbids_are_refused) {
  xmppuv_stanza_t *s;
  ck_assert_int_eq(xmppuv_stanza_new("body", NULL, &s), 0);
  static const char *bad[] = {"\x01", "\x08", "\x0b", "\x1f", "\xef\xbf\xbe", "\xef\xbf\xbf"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ck_assert_int_eq(xmppuv_stanza_add_text(s, bad[i], strlen(bad[i])), XMPPUV_EXMLCHAR);
    ck_assert_int_eq(xmppuv_stanza_set_attr(s, "a", bad[i]), XMPPUV_EXMLCHAR);
  }
  ck_assert_int_eq(xmppuv_stanza_add_text(s, "a\0b", 3), XMPPUV_EXMLCHAR);
  /* Tab, newline, CR and the whole of Unicode otherwise are fine. */
  const char *ok = "\t\n\r \xed\x9f\xbf \xee\x80\x80 \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf";
  ck_assert_int_eq(xmppuv_stanza_add_text(s, ok, strlen(ok)), 0);
  ck_assert_int_eq(xmppuv_stanza_set_attr(s, "a", ok), 0);
  xmppuv_stanza_unref(s);
}
END_TEST

START_TEST(text_nodes_refuse_element_operations) {
  xmppuv_stanza_t *s, *c;
  ck_assert_int_eq(xmppuv_stanza_new("body", NULL, &s), 0);
  ck_assert_int_eq(xmppuv_stanza_add_text(s, "t", 1), 0);
  xmppuv_stanza_t *t = xmppuv_stanza_first_node(s);
  ck_assert(xmppuv_stanza_is_text(t));
  ck_assert_ptr_null(xmppuv_stanza_name(t));
  ck_assert_int_eq(xmppuv_stanza_new_child(t, "x", NULL, &c), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_stanza_set_attr(t, "x", "y"), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_stanza_add_text(t, "x", 1), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_stanza_copy(t, &c), XMPPUV_EINVAL);
  ck_assert_str_eq(xmppuv_stanza_text(t, NULL), "t");
  xmppuv_stanza_unref(s);
}
END_TEST

static int build_scenario(void *ud) {
  (void)ud;
  xmppuv_stanza_t *msg = NULL, *body, *copy = NULL;
  char *xml = NULL;
  int rc = xmppuv_stanza_new("message", NULL, &msg);
  if (rc == 0) rc = xmppuv_stanza_set_attr(msg, "to", "juliet@example.com");
  if (rc == 0) rc = xmppuv_stanza_set_attr(msg, "id", "x1");
  if (rc == 0) rc = xmppuv_stanza_new_child(msg, "body", NULL, &body);
  /* Long enough to need more than the first arena chunk. */
  for (int i = 0; rc == 0 && i < 40; i++)
    rc = xmppuv_stanza_add_text(body, "0123456789abcdef0123456789abcdef", 32);
  if (rc == 0) rc = xmppuv_stanza_copy(msg, &copy);
  if (rc == 0) rc = xmppuv_stanza_add_child(copy, msg);
  if (rc == 0) rc = xmppuv_stanza_to_string(copy, &xml, NULL);
  xmppuv_free(xml);
  xmppuv_stanza_unref(copy);
  xmppuv_stanza_unref(msg);
  return rc;
}

START_TEST(every_allocation_failure_gives_ENOMEM_without_leaks) {
  long points = failalloc_sweep(build_scenario, NULL);
  ck_assert_int_gt(points, 5);
}
END_TEST

static Suite *stanza_suite(void) {
  Suite *s = suite_create("stanza");
  TCase *tc = tcase_create("stanza");
  tcase_add_test(tc, build_a_message_and_read_it_back);
  tcase_add_test(tc, attributes_are_replaced_and_removed);
  tcase_add_test(tc, children_are_found_by_name_and_namespace);
  tcase_add_test(tc, adjacent_text_is_merged_and_split_text_is_joined);
  tcase_add_test(tc, text_may_hold_any_bytes_up_to_len);
  tcase_add_test(tc, long_text_accumulates_in_linear_time);
  tcase_add_test(tc, set_text_replaces_all_children);
  tcase_add_test(tc, remove_detaches_a_child);
  tcase_add_test(tc, a_reference_to_a_child_keeps_the_tree);
  tcase_add_test(tc, copy_is_deep_and_independent);
  tcase_add_test(tc, add_child_copies_into_the_parent);
  tcase_add_test(tc, bad_names_are_refused);
  tcase_add_test(tc, names_expat_cannot_read_are_refused);
  tcase_add_test(tc, namespace_declarations_xml_forbids_are_refused);
  tcase_add_test(tc, a_copy_or_move_keeps_the_prefix_declarations_its_attributes_need);
  tcase_add_test(tc, invalid_utf8_is_refused);
  tcase_add_test(tc, characters_xml_forbids_are_refused);
  tcase_add_test(tc, text_nodes_refuse_element_operations);
  tcase_add_test(tc, every_allocation_failure_gives_ENOMEM_without_leaks);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(stanza_suite)
