/* The stream parser: events, chunking, restricted XML, limits, restarts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "check_main.h"
#include "failalloc.h"
#include "xml/parser.h"
#include "xml/stanza.h"
#include "xml/serialize.h"
#include "xmppuv.h"

/* Every event, written down as text, so runs can be compared. */
typedef struct {
  xmppuv__buf_t events;
  int pause_after; /* pause after the n-th element (1-based), 0 = never */
  int elements;
  xmppuv__parser_t *parser;
} recorder_t;

static int on_open(void *ud, const xmppuv_stanza_t *header) {
  recorder_t *r = ud;
  xmppuv__buf_append_str(&r->events, "open");
  for (size_t i = 0; i < xmppuv_stanza_attr_count(header); i++) {
    const char *n, *v;
    xmppuv_stanza_attr_at(header, i, &n, &v);
    xmppuv__buf_append_str(&r->events, " ");
    xmppuv__buf_append_str(&r->events, n);
    xmppuv__buf_append_str(&r->events, "=");
    xmppuv__buf_append_str(&r->events, v);
  }
  xmppuv__buf_append_str(&r->events, "\n");
  return 0;
}

static int on_element(void *ud, xmppuv_stanza_t *el) {
  recorder_t *r = ud;
  xmppuv__buf_append_str(&r->events, "element ");
  xmppuv__buf_append_str(&r->events, xmppuv_stanza_ns(el) ? xmppuv_stanza_ns(el) : "-");
  xmppuv__buf_append_str(&r->events, " ");
  xmppuv__serialize(&r->events, el, XMPPUV_NS_CLIENT, 0);
  xmppuv__buf_append_str(&r->events, "\n");
  xmppuv_stanza_unref(el);
  if (++r->elements == r->pause_after) xmppuv__parser_pause(r->parser);
  return 0;
}

static int on_close(void *ud) {
  recorder_t *r = ud;
  xmppuv__buf_append_str(&r->events, "close\n");
  return 0;
}

static const xmppuv__parser_callbacks_t callbacks = {on_open, on_element, on_close};

static xmppuv__parser_t *new_parser(recorder_t *r, const xmppuv__xml_limits_t *limits) {
  memset(r, 0, sizeof *r);
  ck_assert_int_eq(xmppuv__parser_new(XMPPUV__PARSE_STREAM, limits, &callbacks, r,
                                      &r->parser), 0);
  return r->parser;
}

static void free_parser(recorder_t *r) {
  xmppuv__parser_free(r->parser);
  xmppuv__buf_free(&r->events);
}

/* Feed in chunks of `chunk` bytes (0 = whole); returns the first error. */
static int feed(recorder_t *r, const char *data, size_t chunk) {
  size_t len = strlen(data);
  if (chunk == 0) chunk = len ? len : 1;
  for (size_t i = 0; i < len; i += chunk) {
    size_t n = len - i < chunk ? len - i : chunk;
    int rc = xmppuv__parser_feed(r->parser, data + i, n, NULL);
    if (rc != 0) return rc;
  }
  return 0;
}

static const char *session =
    "<?xml version='1.0'?>"
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
    "id='s1' from='example.com' version='1.0' xml:lang='en'>"
    "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
    "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism>"
    "</mechanisms></stream:features>\n  \t\r\n "
    "<message from='a@example.com/r' to='b@example.com' type='chat' id='m1'>"
    "<body>caf\xc3\xa9 &amp; &lt;tea&gt; &#x263A;</body><active xmlns='http://jabber.org/protocol/chatstates'/>"
    "</message> "
    "<r xmlns='urn:xmpp:sm:3'/>"
    "<iq type='result' id='p'/>"
    "<presence><![CDATA[<not a tag>]]></presence>"
    "</stream:stream>";

static const char *expected_events =
    "open id=s1 from=example.com version=1.0 xml:lang=en\n"
    "element http://etherx.jabber.org/streams <features xmlns='http://etherx.jabber.org/streams'>"
    "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
    "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism>"
    "</mechanisms></features>\n"
    "element jabber:client <message from='a@example.com/r' to='b@example.com' type='chat' id='m1'>"
    "<body>caf\xc3\xa9 &amp; &lt;tea&gt; \xe2\x98\xba</body>"
    "<active xmlns='http://jabber.org/protocol/chatstates'/></message>\n"
    "element urn:xmpp:sm:3 <r xmlns='urn:xmpp:sm:3'/>\n"
    "element jabber:client <iq type='result' id='p'/>\n"
    "element jabber:client <presence>&lt;not a tag&gt;</presence>\n"
    "close\n";

START_TEST(a_whole_stream_gives_header_elements_and_close) {
  recorder_t r;
  new_parser(&r, NULL);
  ck_assert_int_eq(feed(&r, session, 0), 0);
  ck_assert_str_eq(r.events.data, expected_events);
  free_parser(&r);
}
END_TEST

START_TEST(byte_at_a_time_gives_identical_events) {
  for (size_t chunk = 1; chunk <= 7; chunk++) {
    recorder_t r;
    new_parser(&r, NULL);
    ck_assert_int_eq(feed(&r, session, chunk), 0);
    ck_assert_str_eq(r.events.data, expected_events);
    free_parser(&r);
  }
}
END_TEST

START_TEST(an_element_is_reported_as_soon_as_it_is_complete) {
  recorder_t r;
  new_parser(&r, NULL);
  ck_assert_int_eq(feed(&r, "<stream:stream xmlns='jabber:client' "
                            "xmlns:stream='http://etherx.jabber.org/streams'>", 0), 0);
  ck_assert_int_eq(feed(&r, "<message><body>x</body>", 0), 0);
  ck_assert_int_eq(r.elements, 0);
  ck_assert_int_eq(feed(&r, "</message>", 0), 0);
  ck_assert_int_eq(r.elements, 1);
  free_parser(&r);
}
END_TEST

static void expect_error(const char *input, const xmppuv__xml_limits_t *limits,
                         int code, const char *condition) {
  for (size_t chunk = 0; chunk <= 1; chunk++) {
    recorder_t r;
    new_parser(&r, limits);
    ck_assert_int_eq(feed(&r, input, chunk), code);
    ck_assert_str_eq(xmppuv__parser_condition(r.parser), condition);
    ck_assert_ptr_nonnull(xmppuv__parser_detail(r.parser));
    /* The error sticks until reset. */
    ck_assert_int_eq(xmppuv__parser_feed(r.parser, " ", 1, NULL), code);
    free_parser(&r);
  }
}

#define HEADER "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"

START_TEST(doctype_is_restricted_xml) {
  expect_error("<?xml version='1.0'?><!DOCTYPE stream:stream>" HEADER,
               NULL, XMPPUV_ERESTRICTED, "restricted-xml");
}
END_TEST

START_TEST(entity_declarations_are_restricted_xml_no_billion_laughs) {
  expect_error("<!DOCTYPE s [<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;&lol;'>]>"
               HEADER "<message><body>&lol2;</body></message>",
               NULL, XMPPUV_ERESTRICTED, "restricted-xml");
}
END_TEST

START_TEST(comments_are_restricted_xml) {
  expect_error(HEADER "<message><!-- hi --></message>", NULL, XMPPUV_ERESTRICTED,
               "restricted-xml");
  expect_error(HEADER "<!-- between stanzas -->", NULL, XMPPUV_ERESTRICTED,
               "restricted-xml");
}
END_TEST

START_TEST(processing_instructions_are_restricted_xml) {
  expect_error(HEADER "<message><?php echo 1 ?></message>", NULL, XMPPUV_ERESTRICTED,
               "restricted-xml");
  expect_error("<?xml version='1.0'?><?pi x?>" HEADER, NULL, XMPPUV_ERESTRICTED,
               "restricted-xml");
}
END_TEST

START_TEST(undeclared_entities_are_not_well_formed) {
  expect_error(HEADER "<message><body>&nbsp;</body></message>", NULL, XMPPUV_EXML,
               "not-well-formed");
}
END_TEST

START_TEST(malformed_xml_is_not_well_formed) {
  expect_error(HEADER "<message></presence>", NULL, XMPPUV_EXML, "not-well-formed");
  expect_error(HEADER "<message a='1' a='2'/>", NULL, XMPPUV_EXML, "not-well-formed");
  expect_error(HEADER "<message>\x01</message>", NULL, XMPPUV_EXML, "not-well-formed");
}
END_TEST

/* Found by fuzzing (tests/fuzz/fuzz_parser): expat takes a stream that
 * starts with one byte and a NUL for UTF-16 and waits, when both come in
 * one read, so the same bytes were "not-well-formed" byte by byte but
 * "policy-violation" (at the size limit) whole. */
START_TEST(a_nul_byte_is_not_well_formed_in_any_chunking) {
  static const char input[] = "\t\0kkkkkkkrrrrrrrrrrrrrrrrrrrrrrrrrr";
  static const char after_a_stanza[] = HEADER "<presence/> \0<message/>";
  xmppuv__xml_limits_t small = {256, 4, 3};
  const struct {
    const char *data;
    size_t len;
    int elements;
  } cases[] = {{input, sizeof input - 1, 0}, {after_a_stanza, sizeof after_a_stanza - 1, 1}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    for (size_t chunk = 0; chunk <= 1; chunk++) {
      recorder_t r;
      new_parser(&r, &small);
      size_t step = chunk ? 1 : cases[c].len;
      int rc = 0;
      for (size_t i = 0; i < cases[c].len && rc == 0; i += step)
        rc = xmppuv__parser_feed(r.parser, cases[c].data + i, step, NULL);
      ck_assert_int_eq(rc, XMPPUV_EXML);
      ck_assert_str_eq(xmppuv__parser_condition(r.parser), "not-well-formed");
      /* What came before the NUL was still delivered. */
      ck_assert_int_eq(r.elements, cases[c].elements);
      free_parser(&r);
    }
  }
}
END_TEST

START_TEST(invalid_utf8_is_not_well_formed) {
  expect_error(HEADER "<message><body>\xc3\x28</body></message>", NULL, XMPPUV_EXML,
               "not-well-formed");
  expect_error(HEADER "<message><body>\xed\xa0\x80</body></message>", NULL, XMPPUV_EXML,
               "not-well-formed");
}
END_TEST

START_TEST(non_utf8_encoding_is_refused) {
  expect_error("<?xml version='1.0' encoding='ISO-8859-1'?>" HEADER, NULL, XMPPUV_EXML,
               "unsupported-encoding");
}
END_TEST

START_TEST(unbound_prefix_is_bad_namespace_prefix) {
  expect_error(HEADER "<foo:message/>", NULL, XMPPUV_EXML, "bad-namespace-prefix");
}
END_TEST

/* Found by fuzzing (tests/fuzz/fuzz_stanza): <xml:langr/> was taken as an
 * element in the XML namespace, which serializes to
 * <langr xmlns='http://www.w3.org/XML/1998/namespace'/>, XML no parser
 * reads. */
START_TEST(an_element_in_the_xml_namespace_is_bad_namespace_prefix) {
  expect_error(HEADER "<xml:langr xmlns='urn:xmpp:sm:3'/>", NULL, XMPPUV_EXML,
               "bad-namespace-prefix");
  expect_error(HEADER "<message><xml:x/></message>", NULL, XMPPUV_EXML,
               "bad-namespace-prefix");
  static const char doc[] = "<xml:langr xmlns='urn:xmpp:sm:3'/>";
  xmppuv_stanza_t *s = NULL;
  ck_assert_int_eq(xmppuv_stanza_parse(doc, sizeof doc - 1, &s), XMPPUV_EXML);
  ck_assert_ptr_null(s);
  /* xml: attributes are as welcome as ever. */
  static const char ok[] = "<message xml:lang='en'/>";
  ck_assert_int_eq(xmppuv_stanza_parse(ok, sizeof ok - 1, &s), 0);
  xmppuv_stanza_unref(s);
}
END_TEST

START_TEST(wrong_root_is_invalid_namespace) {
  expect_error("<stream:stream xmlns:stream='urn:wrong'>", NULL, XMPPUV_ENAMESPACE,
               "invalid-namespace");
  expect_error("<stream xmlns='jabber:client'>", NULL, XMPPUV_ENAMESPACE,
               "invalid-namespace");
}
END_TEST

START_TEST(text_between_stanzas_is_bad_format) {
  expect_error(HEADER "hello", NULL, XMPPUV_EXML, "bad-format");
}
END_TEST

START_TEST(whitespace_keepalives_are_ignored) {
  recorder_t r;
  new_parser(&r, NULL);
  ck_assert_int_eq(feed(&r, HEADER, 0), 0);
  for (int i = 0; i < 10000; i++) ck_assert_int_eq(feed(&r, " \n\t\r", 0), 0);
  ck_assert_int_eq(feed(&r, "<iq/>", 0), 0);
  ck_assert_int_eq(r.elements, 1);
  free_parser(&r);
}
END_TEST

static const xmppuv__xml_limits_t small = {1024, 8, 4};

START_TEST(stanza_over_the_size_limit_is_policy_violation) {
  char big[4096];
  snprintf(big, sizeof big, HEADER "<message><body>%0*d</body></message>", 1100, 0);
  expect_error(big, &small, XMPPUV_ELIMIT, "policy-violation");
  /* A stanza just under the limit passes, and the limit is per stanza. */
  char ok[8192];
  int n = snprintf(ok, sizeof ok, HEADER);
  for (int i = 0; i < 4; i++)
    n += snprintf(ok + n, sizeof ok - (size_t)n, "<message><body>%0*d</body></message>", 900, i);
  recorder_t r;
  new_parser(&r, &small);
  ck_assert_int_eq(feed(&r, ok, 0), 0);
  ck_assert_int_eq(r.elements, 4);
  free_parser(&r);
}
END_TEST

START_TEST(a_never_ending_text_node_is_bounded) {
  recorder_t r;
  new_parser(&r, &small);
  ck_assert_int_eq(feed(&r, HEADER "<message><body>", 0), 0);
  int rc = 0;
  char chunk[100];
  memset(chunk, 'a', sizeof chunk);
  int fed = 0;
  for (; fed < 1000 && rc == 0; fed++)
    rc = xmppuv__parser_feed(r.parser, chunk, sizeof chunk, NULL);
  ck_assert_int_eq(rc, XMPPUV_ELIMIT);
  ck_assert_int_le(fed, 11); /* stopped right after 1024 bytes */
  free_parser(&r);
}
END_TEST

START_TEST(a_never_ending_attribute_value_is_bounded) {
  /* Expat buffers an unfinished token without any callback: the byte count
   * must still stop it. */
  recorder_t r;
  new_parser(&r, &small);
  ck_assert_int_eq(feed(&r, HEADER "<message to='", 0), 0);
  int rc = 0, fed = 0;
  char chunk[100];
  memset(chunk, 'a', sizeof chunk);
  for (; fed < 1000 && rc == 0; fed++)
    rc = xmppuv__parser_feed(r.parser, chunk, sizeof chunk, NULL);
  ck_assert_int_eq(rc, XMPPUV_ELIMIT);
  ck_assert_int_le(fed, 11);
  free_parser(&r);
}
END_TEST

START_TEST(a_stream_header_that_never_ends_is_bounded) {
  recorder_t r;
  new_parser(&r, &small);
  ck_assert_int_eq(feed(&r, "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' ", 0), 0);
  int rc = 0, fed = 0;
  for (; fed < 1000 && rc == 0; fed++)
    rc = feed(&r, "a0='x' a1='x' a2='x' a3='x' a4='x' a5='x' a6='x' a7='x' a8='x' ", 0);
  ck_assert_int_eq(rc, XMPPUV_ELIMIT);
  free_parser(&r);
}
END_TEST

START_TEST(nesting_over_the_depth_limit_is_policy_violation) {
  char deep[512] = HEADER "<message>";
  for (int i = 0; i < 8; i++) strcat(deep, "<x>");
  expect_error(deep, &small, XMPPUV_ELIMIT, "policy-violation");
  char ok[512] = HEADER "<message>";
  for (int i = 0; i < 7; i++) strcat(ok, "<x>");
  for (int i = 0; i < 7; i++) strcat(ok, "</x>");
  strcat(ok, "</message>");
  recorder_t r;
  new_parser(&r, &small);
  ck_assert_int_eq(feed(&r, ok, 0), 0);
  ck_assert_int_eq(r.elements, 1);
  free_parser(&r);
}
END_TEST

START_TEST(too_many_attributes_is_policy_violation) {
  expect_error(HEADER "<message a='1' b='2' c='3' d='4' e='5'/>", &small, XMPPUV_ELIMIT,
               "policy-violation");
  recorder_t r;
  new_parser(&r, &small);
  ck_assert_int_eq(feed(&r, HEADER "<message a='1' b='2' c='3' d='4'/>", 0), 0);
  ck_assert_int_eq(r.elements, 1);
  free_parser(&r);
}
END_TEST

START_TEST(pause_stops_right_after_the_element_for_a_restart) {
  /* STARTTLS: whatever follows <proceed/> is not XML of this stream. */
  const char *in = HEADER "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\x16\x03\x01 binary";
  recorder_t r;
  new_parser(&r, NULL);
  r.pause_after = 1;
  size_t consumed = 0;
  ck_assert_int_eq(xmppuv__parser_feed(r.parser, in, strlen(in), &consumed), 0);
  ck_assert_uint_eq(consumed, strlen(in) - strlen("\x16\x03\x01 binary"));
  ck_assert_int_eq(r.elements, 1);
  /* Until reset, more input is refused rather than misread. */
  ck_assert_int_eq(xmppuv__parser_feed(r.parser, "x", 1, NULL), XMPPUV_ESTATE);
  ck_assert_int_eq(xmppuv__parser_reset(r.parser), 0);
  xmppuv__buf_clear(&r.events);
  ck_assert_int_eq(feed(&r, HEADER "<iq/>", 0), 0);
  ck_assert_str_eq(r.events.data, "open\nelement jabber:client <iq/>\n");
  free_parser(&r);
}
END_TEST

START_TEST(reset_starts_a_new_stream_after_an_error) {
  recorder_t r;
  new_parser(&r, NULL);
  ck_assert_int_eq(feed(&r, HEADER "<message><body>half", 0), 0);
  ck_assert_int_eq(xmppuv__parser_reset(r.parser), 0);
  ck_assert_int_eq(feed(&r, HEADER "<iq/>", 0), 0);
  ck_assert_int_eq(feed(&r, "<!-- x -->", 0), XMPPUV_ERESTRICTED);
  ck_assert_int_eq(xmppuv__parser_reset(r.parser), 0);
  ck_assert_ptr_null(xmppuv__parser_condition(r.parser));
  xmppuv__buf_clear(&r.events);
  ck_assert_int_eq(feed(&r, "<?xml version='1.0'?>" HEADER "<iq/>", 0), 0);
  ck_assert_str_eq(r.events.data, "open\nelement jabber:client <iq/>\n");
  free_parser(&r);
}
END_TEST

START_TEST(release_between_stanzas_is_invisible_to_the_events) {
  /* The same stream, with the expat parser released wherever it can be:
   * the events are the same. A header with its own prefixes, to show they
   * come back. */
  const char *hdr = "<s:stream xmlns='jabber:client' xmlns:s='http://etherx.jabber.org/streams' "
                    "xmlns:x='urn:x' version='1.0'>";
  const char *parts[] = {"<message><body>a</body></message>", "<s:features><x:y/></s:features>",
                         "<iq type='get'/> ", "<presence><x:p/></presence>"};
  recorder_t plain, released;
  new_parser(&plain, NULL);
  new_parser(&released, NULL);
  ck_assert_int_eq(feed(&plain, hdr, 0), 0);
  ck_assert_int_eq(feed(&released, hdr, 0), 0);
  int releases = 0;
  for (size_t i = 0; i < 4; i++) {
    ck_assert_int_eq(feed(&plain, parts[i], 0), 0);
    ck_assert_int_eq(feed(&released, parts[i], 0), 0);
    releases += xmppuv__parser_release(released.parser);
    ck_assert_int_eq(xmppuv__parser_release(released.parser), 0); /* once */
  }
  ck_assert_int_eq(releases, 4);
  ck_assert_str_eq(released.events.data, plain.events.data);
  ck_assert_ptr_nonnull(strstr(released.events.data, "<features xmlns='http://etherx.jabber.org/streams'>"
                                                     "<y xmlns='urn:x'/></features>"));
  ck_assert_int_eq(feed(&released, "</s:stream>", 0), 0);
  ck_assert_ptr_nonnull(strstr(released.events.data, "close\n"));
  free_parser(&plain);
  free_parser(&released);
}
END_TEST

/* Bytes of xmppuv's (and expat's) memory live, and the peak. */
static size_t live_bytes, peak_bytes;
static void *count_malloc(size_t n) {
  size_t *b = malloc(sizeof(size_t) * 2 + n);
  if (b == NULL) return NULL;
  b[0] = n;
  live_bytes += n;
  if (live_bytes > peak_bytes) peak_bytes = live_bytes;
  return b + 2;
}
static size_t frees;
static void count_free(void *ptr) {
  if (ptr == NULL) return;
  frees++;
  size_t *b = (size_t *)ptr - 2;
  live_bytes -= b[0];
  free(b);
}
static size_t mallocs; /* new blocks: malloc, and realloc of NULL */
static void *count_realloc(void *ptr, size_t n) {
  if (ptr == NULL) {
    mallocs++;
    return count_malloc(n);
  }
  size_t *b = (size_t *)ptr - 2;
  size_t old = b[0];
  size_t *nb = realloc(b, sizeof(size_t) * 2 + n);
  if (nb == NULL) return NULL;
  nb[0] = n;
  live_bytes = live_bytes - old + n;
  if (live_bytes > peak_bytes) peak_bytes = live_bytes;
  return nb + 2;
}

START_TEST(new_names_in_every_stanza_do_not_grow_memory) {
  /* expat keeps every element and attribute name it has seen for the life
   * of its parser. A server that sends new names in every stanza, and never
   * lets a read end between stanzas (so the parser is never released while
   * idle), must not make that grow without bound; and replacing the parser
   * to prevent it must not change a single event. */
  ck_assert_int_eq(xmppuv_replace_allocator(count_malloc, count_realloc, count_free), 0);
  live_bytes = peak_bytes = 0;
  recorder_t r;
  new_parser(&r, NULL);
  ck_assert_int_eq(feed(&r, "<stream:stream xmlns='jabber:client' "
                            "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>", 0),
                   0);
  xmppuv__buf_clear(&r.events);
  char stanza[512];
  char carry[512] = "";
  char expected[1024] = "";
  size_t after_1000 = 0;
  const int n = 20000;
  for (int i = 0; i < n; i++) {
    int len = snprintf(stanza, sizeof stanza,
                       "<message id='m%d'><el%d xmlns='urn:n%d' a%d='1' b%d='2' c%d='3' "
                       "d%d='4' e%d='5' f%d='6'/></message>",
                       i, i, i, i, i, i, i, i, i);
    /* Each read ends in the middle of a stanza. */
    char chunk[1024];
    int half = len / 2;
    int clen = snprintf(chunk, sizeof chunk, "%s%.*s", carry, half, stanza);
    snprintf(carry, sizeof carry, "%s", stanza + half);
    ck_assert_int_eq(xmppuv__parser_feed(r.parser, chunk, (size_t)clen, NULL), 0);
    ck_assert_int_eq(xmppuv__parser_release(r.parser), 0);
    /* The stanza that ended in this read, exactly as parsed alone. */
    ck_assert_str_eq(r.events.len ? r.events.data : "", expected);
    xmppuv__buf_clear(&r.events);
    xmppuv_stanza_t *alone = NULL;
    ck_assert_int_eq(xmppuv_stanza_parse(stanza, (size_t)len, &alone), 0);
    xmppuv__buf_t ser = XMPPUV__BUF_INIT;
    ck_assert_int_eq(xmppuv__serialize(&ser, alone, XMPPUV_NS_CLIENT, 0), 0);
    snprintf(expected, sizeof expected, "element jabber:client %.*s\n", (int)ser.len, ser.data);
    xmppuv__buf_free(&ser);
    xmppuv_stanza_unref(alone);
    if (i == 1000) after_1000 = live_bytes;
  }
  ck_assert_int_eq(xmppuv__parser_feed(r.parser, carry, strlen(carry), NULL), 0);
  ck_assert_str_eq(r.events.data, expected);
  ck_assert_int_eq(r.elements, n);
  fprintf(stderr, "# new names: live %zu bytes after 1000 stanzas, %zu after %d, peak %zu\n",
          after_1000, live_bytes, n, peak_bytes);
  /* Kept, these names would take about 9 MB. */
  ck_assert_msg(peak_bytes < 512 * 1024, "memory grew to %zu bytes", peak_bytes);
  free_parser(&r);
  ck_assert_int_eq(xmppuv_replace_allocator(NULL, NULL, NULL), 0);
}
END_TEST

static void *counted_malloc(size_t n) {
  mallocs++;
  return count_malloc(n);
}

typedef struct {
  xmppuv_stanza_t *kept[64];
  size_t nkept, keep, seen;
} keeper_t;

static int keep_cb(void *ud, xmppuv_stanza_t *el) {
  keeper_t *k = ud;
  k->seen++;
  if (k->nkept < k->keep)
    k->kept[k->nkept++] = el;
  else
    xmppuv_stanza_unref(el);
  return 0;
}

static void drop_kept(keeper_t *k) {
  for (size_t i = 0; i < k->nkept; i++) xmppuv_stanza_unref(k->kept[i]);
  k->nkept = 0;
}

START_TEST(a_busy_stream_reuses_stanza_memory_and_stanzas_outlive_the_parser) {
  ck_assert_int_eq(xmppuv_replace_allocator(counted_malloc, count_realloc, count_free), 0);
  live_bytes = peak_bytes = 0;
  keeper_t k;
  memset(&k, 0, sizeof k);
  const xmppuv__parser_callbacks_t cbs = {NULL, keep_cb, NULL};
  xmppuv__parser_t *p;
  ck_assert_int_eq(xmppuv__parser_new(XMPPUV__PARSE_STREAM, NULL, &cbs, &k, &p), 0);
  ck_assert_int_eq(xmppuv__parser_feed(p, HEADER, strlen(HEADER), NULL), 0);
  const char *msg = "<message from='a@b/c' to='d@e/f' type='chat' id='x1' xml:lang='en'>"
                    "<body>hello</body></message>";
  char two[512]; /* a read of a busy stream: more than one stanza */
  snprintf(two, sizeof two, "%s%s", msg, msg);
  ck_assert_int_eq(xmppuv__parser_feed(p, msg, strlen(msg), NULL), 0);
  ck_assert_int_eq(xmppuv__parser_release(p), 1);
  size_t idle = live_bytes; /* the parser and its header */

  /* A read of one stanza (a negotiation step) makes no pool: the stanza is
   * one allocation, and nothing stays behind it. */
  ck_assert_int_eq(xmppuv__parser_feed(p, msg, strlen(msg), NULL), 0);
  size_t one = mallocs;
  ck_assert_int_eq(xmppuv__parser_feed(p, msg, strlen(msg), NULL), 0);
  ck_assert_uint_eq(mallocs - one, 1);
  ck_assert_int_eq(xmppuv__parser_release(p), 1);
  ck_assert_uint_eq(live_bytes, idle);

  /* A busy stream: stanza after stanza, each handled before the next.
   * Their memory goes round instead of to malloc and back. */
  for (int i = 0; i < 5; i++) /* expat's own parser is made again */
    ck_assert_int_eq(xmppuv__parser_feed(p, two, strlen(two), NULL), 0);
  size_t before = mallocs;
  for (int i = 0; i < 100; i++)
    ck_assert_int_eq(xmppuv__parser_feed(p, two, strlen(two), NULL), 0);
  size_t per_200 = mallocs - before;
  ck_assert_msg(per_200 == 0, "%zu allocations for 200 stanzas", per_200);

  /* The end of a read gives the pool back; the next busy read makes one. */
  xmppuv__parser_trim(p);
  before = mallocs;
  ck_assert_int_eq(xmppuv__parser_feed(p, two, strlen(two), NULL), 0);
  ck_assert_uint_eq(mallocs - before, 3); /* first stanza, pool, second stanza */

  /* More out at once than the pool keeps: all are freed or kept, none
   * lost, and a release (idle) leaves nothing behind. */
  k.keep = 48;
  for (int i = 0; i < 24; i++)
    ck_assert_int_eq(xmppuv__parser_feed(p, two, strlen(two), NULL), 0);
  ck_assert_uint_eq(k.nkept, 48);
  drop_kept(&k);
  ck_assert_int_eq(xmppuv__parser_release(p), 1);
  ck_assert_uint_eq(live_bytes, idle);

  /* Stanzas kept past the parser's end stay whole, and the last one out
   * frees what the parser left behind. */
  k.keep = 53;
  ck_assert_int_eq(xmppuv__parser_feed(p, two, strlen(two), NULL), 0);
  ck_assert_int_eq(xmppuv__parser_feed(p, two, strlen(two), NULL), 0);
  ck_assert_int_eq(xmppuv__parser_feed(p, msg, strlen(msg), NULL), 0);
  ck_assert_uint_eq(k.nkept, 5);
  xmppuv__parser_free(p);
  for (size_t i = 0; i < k.nkept; i++) {
    ck_assert_str_eq(xmppuv_stanza_attr(k.kept[i], "xml:lang"), "en");
    ck_assert_str_eq(xmppuv_stanza_attr(k.kept[i], "from"), "a@b/c");
    ck_assert_str_eq(xmppuv_stanza_child_text(k.kept[i], "body", NULL), "hello");
  }
  drop_kept(&k);
  ck_assert_uint_eq(live_bytes, 0);
  ck_assert_uint_eq(k.seen, 268);
  ck_assert_int_eq(xmppuv_replace_allocator(NULL, NULL, NULL), 0);
}
END_TEST

START_TEST(a_stanza_the_app_keeps_leaves_the_pool) {
  /* The library's last reference to a stanza the app keeps detaches it
   * from the parser's pool: from then on it frees only itself, whenever
   * and wherever the app lets it go. */
  ck_assert_int_eq(xmppuv_replace_allocator(counted_malloc, count_realloc, count_free), 0);
  live_bytes = peak_bytes = 0;
  keeper_t k;
  memset(&k, 0, sizeof k);
  k.keep = 2;
  const xmppuv__parser_callbacks_t cbs = {NULL, keep_cb, NULL};
  xmppuv__parser_t *p;
  ck_assert_int_eq(xmppuv__parser_new(XMPPUV__PARSE_STREAM, NULL, &cbs, &k, &p), 0);
  const char *busy = HEADER "<message id='a'/><message id='b'/>";
  ck_assert_int_eq(xmppuv__parser_feed(p, busy, strlen(busy), NULL), 0);
  ck_assert_uint_eq(k.nkept, 2);
  xmppuv_stanza_t *app = xmppuv_stanza_ref(k.kept[1]); /* the pool's */
  xmppuv__stanza_release(k.kept[1]);
  xmppuv_stanza_unref(k.kept[0]);
  xmppuv__parser_free(p);
  size_t before = frees;
  xmppuv_stanza_unref(app); /* its chunk alone: the pool went with the parser */
  ck_assert_uint_eq(frees - before, 1);
  ck_assert_uint_eq(live_bytes, 0);
  ck_assert_int_eq(xmppuv_replace_allocator(NULL, NULL, NULL), 0);
}
END_TEST

START_TEST(release_is_refused_mid_stanza_and_limits_still_hold_after) {
  recorder_t r;
  new_parser(&r, &small);
  ck_assert_int_eq(feed(&r, HEADER "<message><body>half", 0), 0);
  ck_assert_int_eq(xmppuv__parser_release(r.parser), 0);
  ck_assert_int_eq(feed(&r, "</body></message>", 0), 0);
  ck_assert_int_eq(xmppuv__parser_release(r.parser), 1);
  /* A stanza over the limit after the new parser: still refused. */
  char big[2048];
  snprintf(big, sizeof big, "<message><body>%0*d</body></message>", 1100, 0);
  ck_assert_int_eq(feed(&r, big, 0), XMPPUV_ELIMIT);
  free_parser(&r);
  /* Not in document mode, and not before the header. */
  new_parser(&r, NULL);
  ck_assert_int_eq(xmppuv__parser_release(r.parser), 0);
  free_parser(&r);
}
END_TEST

static int stop_cb(void *ud, xmppuv_stanza_t *el) {
  (void)ud;
  xmppuv_stanza_unref(el);
  return XMPPUV_ECANCELED;
}

START_TEST(a_callback_error_stops_parsing) {
  xmppuv__parser_callbacks_t cbs = {NULL, stop_cb, NULL};
  xmppuv__parser_t *p;
  ck_assert_int_eq(xmppuv__parser_new(XMPPUV__PARSE_STREAM, NULL, &cbs, NULL, &p), 0);
  const char *in = HEADER "<iq/><iq/>";
  ck_assert_int_eq(xmppuv__parser_feed(p, in, strlen(in), NULL), XMPPUV_ECANCELED);
  xmppuv__parser_free(p);
}
END_TEST

START_TEST(stanza_parse_reads_one_element) {
  xmppuv_stanza_t *s;
  const char *in = "<?xml version='1.0'?>\n<message to='x'><body>hi</body></message>\n";
  ck_assert_int_eq(xmppuv_stanza_parse(in, strlen(in), &s), 0);
  ck_assert_str_eq(xmppuv_stanza_name(s), "message");
  ck_assert_ptr_null(xmppuv_stanza_ns(s)); /* inherits jabber:client when sent */
  xmppuv_stanza_unref(s);
  ck_assert_int_eq(xmppuv_stanza_parse("<a/><b/>", 8, &s), XMPPUV_EXML);
  ck_assert_ptr_null(s);
  ck_assert_int_eq(xmppuv_stanza_parse("<a>", 3, &s), XMPPUV_EXML);
  ck_assert_int_eq(xmppuv_stanza_parse("", 0, &s), XMPPUV_EXML);
  ck_assert_int_eq(xmppuv_stanza_parse("<a/>trailing", 12, &s), XMPPUV_EXML);
  ck_assert_int_eq(xmppuv_stanza_parse("<a><!--c--></a>", 15, &s), XMPPUV_ERESTRICTED);
  ck_assert_int_eq(xmppuv_stanza_parse(NULL, 0, &s), XMPPUV_EINVAL);
}
END_TEST

static int parse_scenario(void *ud) {
  (void)ud;
  recorder_t r;
  memset(&r, 0, sizeof r);
  int rc = xmppuv__parser_new(XMPPUV__PARSE_STREAM, NULL, &callbacks, &r, &r.parser);
  if (rc != 0) return rc;
  rc = xmppuv__parser_feed(r.parser, session, strlen(session), NULL);
  xmppuv__parser_free(r.parser);
  /* The recorder's own buffer uses the same allocator: an append may fail
   * quietly there, so only the parser's result is judged. */
  xmppuv__buf_free(&r.events);
  return rc;
}

START_TEST(every_allocation_failure_gives_ENOMEM_without_leaks) {
  ck_assert_int_gt(failalloc_sweep(parse_scenario, NULL), 10);
}
END_TEST

/* A stanza whose start tag alone passes the name budget (64 attributes of
 * 1100 bytes), then two more in the same read: expat's parser is replaced
 * mid-read, after the first. */
static char *budget_stream(void) {
  xmppuv__buf_t b = XMPPUV__BUF_INIT;
  xmppuv__buf_append_str(&b, "<stream:stream xmlns='jabber:client' "
                             "xmlns:stream='http://etherx.jabber.org/streams'><message");
  for (int i = 0; i < 64; i++) {
    char attr[32];
    snprintf(attr, sizeof attr, " a%d='", i);
    xmppuv__buf_append_str(&b, attr);
    for (int j = 0; j < 1100; j++) xmppuv__buf_append_char(&b, 'v');
    xmppuv__buf_append_char(&b, '\'');
  }
  xmppuv__buf_append_str(&b, "/><iq type='get' id='2'><ping xmlns='urn:xmpp:ping'/></iq>"
                             "<presence id='3'/>");
  char *s = strdup(b.data);
  xmppuv__buf_free(&b);
  return s;
}

static int budget_scenario(void *ud) {
  const char *stream = ud;
  recorder_t r;
  memset(&r, 0, sizeof r);
  int rc = xmppuv__parser_new(XMPPUV__PARSE_STREAM, NULL, &callbacks, &r, &r.parser);
  if (rc != 0) return rc;
  rc = xmppuv__parser_feed(r.parser, stream, strlen(stream), NULL);
  if (rc == 0 && r.elements != 3) rc = -1; /* a stanza lost in the replacement */
  xmppuv__parser_free(r.parser);
  xmppuv__buf_free(&r.events);
  return rc;
}

START_TEST(replacing_the_parser_mid_read_survives_every_allocation_failure) {
  char *stream = budget_stream();
  /* Without failures: the three stanzas, the last two as parsed alone. */
  recorder_t r;
  new_parser(&r, NULL);
  ck_assert_int_eq(xmppuv__parser_feed(r.parser, stream, strlen(stream), NULL), 0);
  ck_assert_int_eq(r.elements, 3);
  ck_assert_ptr_nonnull(strstr(r.events.data, "element jabber:client <iq type='get' id='2'>"
                                              "<ping xmlns='urn:xmpp:ping'/></iq>\n"
                                              "element jabber:client <presence id='3'/>\n"));
  free_parser(&r);
  ck_assert_int_gt(failalloc_sweep(budget_scenario, stream), 10);
  free(stream);
}
END_TEST

static Suite *parser_suite(void) {
  Suite *s = suite_create("parser");
  TCase *tc = tcase_create("parser");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, a_whole_stream_gives_header_elements_and_close);
  tcase_add_test(tc, byte_at_a_time_gives_identical_events);
  tcase_add_test(tc, an_element_is_reported_as_soon_as_it_is_complete);
  tcase_add_test(tc, doctype_is_restricted_xml);
  tcase_add_test(tc, entity_declarations_are_restricted_xml_no_billion_laughs);
  tcase_add_test(tc, comments_are_restricted_xml);
  tcase_add_test(tc, processing_instructions_are_restricted_xml);
  tcase_add_test(tc, undeclared_entities_are_not_well_formed);
  tcase_add_test(tc, malformed_xml_is_not_well_formed);
  tcase_add_test(tc, invalid_utf8_is_not_well_formed);
  tcase_add_test(tc, non_utf8_encoding_is_refused);
  tcase_add_test(tc, a_nul_byte_is_not_well_formed_in_any_chunking);
  tcase_add_test(tc, unbound_prefix_is_bad_namespace_prefix);
  tcase_add_test(tc, wrong_root_is_invalid_namespace);
  tcase_add_test(tc, an_element_in_the_xml_namespace_is_bad_namespace_prefix);
  tcase_add_test(tc, text_between_stanzas_is_bad_format);
  tcase_add_test(tc, whitespace_keepalives_are_ignored);
  tcase_add_test(tc, stanza_over_the_size_limit_is_policy_violation);
  tcase_add_test(tc, a_never_ending_text_node_is_bounded);
  tcase_add_test(tc, a_never_ending_attribute_value_is_bounded);
  tcase_add_test(tc, a_stream_header_that_never_ends_is_bounded);
  tcase_add_test(tc, nesting_over_the_depth_limit_is_policy_violation);
  tcase_add_test(tc, too_many_attributes_is_policy_violation);
  tcase_add_test(tc, pause_stops_right_after_the_element_for_a_restart);
  tcase_add_test(tc, reset_starts_a_new_stream_after_an_error);
  tcase_add_test(tc, a_callback_error_stops_parsing);
  tcase_add_test(tc, release_between_stanzas_is_invisible_to_the_events);
  tcase_add_test(tc, release_is_refused_mid_stanza_and_limits_still_hold_after);
  tcase_add_test(tc, new_names_in_every_stanza_do_not_grow_memory);
  tcase_add_test(tc, a_busy_stream_reuses_stanza_memory_and_stanzas_outlive_the_parser);
  tcase_add_test(tc, a_stanza_the_app_keeps_leaves_the_pool);
  tcase_add_test(tc, stanza_parse_reads_one_element);
  tcase_add_test(tc, every_allocation_failure_gives_ENOMEM_without_leaks);
  tcase_add_test(tc, replacing_the_parser_mid_read_survives_every_allocation_failure);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(parser_suite)
