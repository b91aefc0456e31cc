/* JIDs (RFC 7622): splitting, PRECIS preparation of the localpart and
 * resourcepart, IDNA2008 and IP literals in the domainpart, limits, equality,
 * copies, and allocation failures. */
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "failalloc.h"
#include "jid_int.h"
#include "xmppuv.h"

static xmppuv_jid_t *parse_ok(const char *text) {
  xmppuv_jid_t *jid = NULL;
  int rc = xmppuv_jid_parse(text, &jid);
  ck_assert_msg(rc == 0, "parsing \"%s\" gave %s", text, xmppuv_err_name(rc));
  ck_assert_ptr_nonnull(jid);
  return jid;
}

static void parse_fails(const char *text, int expected) {
  xmppuv_jid_t *jid = (xmppuv_jid_t *)&jid; /* must be reset to NULL */
  int rc = xmppuv_jid_parse(text, &jid);
  ck_assert_msg(rc == expected, "parsing \"%s\" gave %s, not %s", text,
                xmppuv_err_name(rc), xmppuv_err_name(expected));
  ck_assert_ptr_null(jid);
}

/* Parses text and checks its canonical full form. */
static void parses_as(const char *text, const char *canonical) {
  xmppuv_jid_t *jid = parse_ok(text);
  ck_assert_str_eq(xmppuv_jid_string(jid), canonical);
  xmppuv_jid_free(jid);
}

static int same_jid(const char *a, const char *b) {
  xmppuv_jid_t *ja = parse_ok(a), *jb = parse_ok(b);
  int equal = xmppuv_jid_equal(ja, jb);
  xmppuv_jid_free(ja);
  xmppuv_jid_free(jb);
  return equal;
}

static char *repeat(const char *unit, size_t count, const char *prefix,
                    const char *suffix) {
  size_t ulen = strlen(unit), plen = strlen(prefix), slen = strlen(suffix);
  char *s = malloc(plen + ulen * count + slen + 1);
  ck_assert_ptr_nonnull(s);
  memcpy(s, prefix, plen);
  for (size_t i = 0; i < count; i++) memcpy(s + plen + i * ulen, unit, ulen);
  memcpy(s + plen + ulen * count, suffix, slen + 1);
  return s;
}

/* "bücher": the U-label of "xn--bcher-kva" */
#define BUECHER "b\xc3\xbc" "cher"

/* ---- splitting ---------------------------------------------------------- */

START_TEST(full_jid_is_split_into_its_three_parts) {
  xmppuv_jid_t *jid = parse_ok("juliet@example.com/balcony");
  ck_assert_str_eq(xmppuv_jid_local(jid), "juliet");
  ck_assert_str_eq(xmppuv_jid_domain(jid), "example.com");
  ck_assert_str_eq(xmppuv_jid_domain_ascii(jid), "example.com");
  ck_assert_str_eq(xmppuv_jid_resource(jid), "balcony");
  ck_assert_str_eq(xmppuv_jid_string(jid), "juliet@example.com/balcony");
  ck_assert_str_eq(xmppuv_jid_bare_string(jid), "juliet@example.com");
  ck_assert_int_eq(xmppuv_jid_is_bare(jid), 0);
  xmppuv_jid_free(jid);
}
END_TEST

START_TEST(bare_jid_has_no_resource) {
  xmppuv_jid_t *jid = parse_ok("juliet@example.com");
  ck_assert_str_eq(xmppuv_jid_local(jid), "juliet");
  ck_assert_str_eq(xmppuv_jid_domain(jid), "example.com");
  ck_assert_ptr_null(xmppuv_jid_resource(jid));
  ck_assert_int_ne(xmppuv_jid_is_bare(jid), 0);
  ck_assert_str_eq(xmppuv_jid_string(jid), "juliet@example.com");
  ck_assert_str_eq(xmppuv_jid_bare_string(jid), "juliet@example.com");
  xmppuv_jid_free(jid);
}
END_TEST

START_TEST(domain_only_jid_has_no_localpart) {
  xmppuv_jid_t *jid = parse_ok("example.com");
  ck_assert_ptr_null(xmppuv_jid_local(jid));
  ck_assert_str_eq(xmppuv_jid_domain(jid), "example.com");
  ck_assert_ptr_null(xmppuv_jid_resource(jid));
  ck_assert_str_eq(xmppuv_jid_string(jid), "example.com");
  xmppuv_jid_free(jid);

  jid = parse_ok("example.com/desk");
  ck_assert_ptr_null(xmppuv_jid_local(jid));
  ck_assert_str_eq(xmppuv_jid_domain(jid), "example.com");
  ck_assert_str_eq(xmppuv_jid_resource(jid), "desk");
  ck_assert_str_eq(xmppuv_jid_bare_string(jid), "example.com");
  xmppuv_jid_free(jid);
}
END_TEST

START_TEST(resource_may_contain_at_and_slash) {
  xmppuv_jid_t *jid = parse_ok("juliet@example.com/foo@bar/baz");
  ck_assert_str_eq(xmppuv_jid_local(jid), "juliet");
  ck_assert_str_eq(xmppuv_jid_resource(jid), "foo@bar/baz");
  xmppuv_jid_free(jid);

  /* An '@' after the first '/' belongs to the resource, not the localpart. */
  jid = parse_ok("example.com/juliet@example.net");
  ck_assert_ptr_null(xmppuv_jid_local(jid));
  ck_assert_str_eq(xmppuv_jid_domain(jid), "example.com");
  ck_assert_str_eq(xmppuv_jid_resource(jid), "juliet@example.net");
  xmppuv_jid_free(jid);
}
END_TEST

START_TEST(second_at_sign_lands_in_the_domain_and_is_refused) {
  parse_fails("a@b@example.com", XMPPUV_EJIDDOMAIN);
}
END_TEST

START_TEST(empty_parts_are_refused_with_EJID) {
  parse_fails("", XMPPUV_EJID);
  parse_fails("@example.com", XMPPUV_EJID);
  parse_fails("juliet@", XMPPUV_EJID);
  parse_fails("example.com/", XMPPUV_EJID);
  parse_fails("juliet@example.com/", XMPPUV_EJID);
  parse_fails("/balcony", XMPPUV_EJID);
  parse_fails("juliet@/balcony", XMPPUV_EJID);
  parse_fails("@/", XMPPUV_EJID);
  xmppuv_jid_t *jid = NULL;
  ck_assert_int_eq(xmppuv_jid_new("", "example.com", NULL, &jid), XMPPUV_EJID);
  ck_assert_int_eq(xmppuv_jid_new(NULL, "", NULL, &jid), XMPPUV_EJID);
  ck_assert_int_eq(xmppuv_jid_new(NULL, "example.com", "", &jid), XMPPUV_EJID);
  ck_assert_ptr_null(jid);
}
END_TEST

START_TEST(null_arguments_are_refused_with_EINVAL) {
  xmppuv_jid_t *jid = NULL;
  ck_assert_int_eq(xmppuv_jid_parse(NULL, &jid), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_jid_parse("example.com", NULL), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_jid_new("a", NULL, "r", &jid), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_jid_new("a", "example.com", "r", NULL),
                   XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_jid_copy(NULL, &jid), XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv_jid_bare(NULL, &jid), XMPPUV_EINVAL);
  ck_assert_ptr_null(jid);
  xmppuv_jid_free(NULL);
}
END_TEST

/* ---- localpart ---------------------------------------------------------- */

START_TEST(each_forbidden_localpart_character_is_refused_with_EJIDLOCAL) {
  /* RFC 7622 §3.3.1: " & ' / : < > @ */
  static const char forbidden[] = "\"&'/:<>@";
  for (const char *c = forbidden; *c != '\0'; c++) {
    char local[8] = {'a', *c, 'b', '\0'};
    xmppuv_jid_t *jid = NULL;
    int rc = xmppuv_jid_new(local, "example.com", NULL, &jid);
    ck_assert_msg(rc == XMPPUV_EJIDLOCAL, "'%c' gave %s", *c,
                  xmppuv_err_name(rc));
    ck_assert_ptr_null(jid);
    if (*c != '/' && *c != '@') { /* those two split a parsed JID instead */
      char text[32];
      strcpy(text, local);
      strcat(text, "@example.com");
      parse_fails(text, XMPPUV_EJIDLOCAL);
    }
  }
  /* Reached through width mapping: FULLWIDTH COMMERCIAL AT becomes '@'. */
  parse_fails("a\xef\xbc\xa0" "b@example.com", XMPPUV_EJIDLOCAL);
}
END_TEST

START_TEST(other_ascii_punctuation_is_allowed_in_localpart) {
  parses_as("o?#$%*+=!~{}|^`.-_@example.com", "o?#$%*+=!~{}|^`.-_@example.com");
}
END_TEST

START_TEST(space_in_localpart_is_refused) {
  parse_fails("juliet capulet@example.com", XMPPUV_EJIDLOCAL);
  parse_fails("juliet\xc2\xa0" "capulet@example.com", XMPPUV_EJIDLOCAL);
  parse_fails("juliet\xe3\x80\x80" "capulet@example.com", XMPPUV_EJIDLOCAL);
}
END_TEST

START_TEST(control_characters_are_refused_in_localpart_and_resource) {
  parse_fails("jul\tiet@example.com", XMPPUV_EJIDLOCAL);
  parse_fails("jul\x7fiet@example.com", XMPPUV_EJIDLOCAL);
  parse_fails("juliet@example.com/bal\ncony", XMPPUV_EJIDRESOURCE);
  parse_fails("juliet@example.com/bal\x01" "cony", XMPPUV_EJIDRESOURCE);
  parse_fails("juliet@example.com/bal\x7f" "cony", XMPPUV_EJIDRESOURCE);
  parse_fails("juliet@example.com/bal\xc2\x85" "cony", XMPPUV_EJIDRESOURCE);
  /* Default-ignorable format characters too (RFC 8264 §9.13). */
  parse_fails("juliet@example.com/bal\xe2\x80\x8b" "cony", XMPPUV_EJIDRESOURCE);
}
END_TEST

START_TEST(localpart_is_lowercased) {
  parses_as("Juliet@example.com", "juliet@example.com");
  parses_as("JULIET@example.com/Balcony", "juliet@example.com/Balcony");
  ck_assert(same_jid("Juliet@example.com", "juliet@example.com"));
}
END_TEST

START_TEST(non_ascii_uppercase_localpart_is_lowercased) {
  /* Unicode toLowerCase turns a word-final capital sigma into ς. */
  /* ΣΑΣ becomes σας */
  xmppuv_jid_t *jid = parse_ok("\xce\xa3\xce\x91\xce\xa3@example.com");
  ck_assert_str_eq(xmppuv_jid_local(jid), "\xcf\x83\xce\xb1\xcf\x82");
  xmppuv_jid_free(jid);
  ck_assert(same_jid("\xce\xa3\xce\x91\xce\xa3@example.com",
                     "\xcf\x83\xce\xb1\xcf\x82@example.com"));
  parses_as("\xc3\x89LODIE@example.com", "\xc3\xa9lodie@example.com"); /* É */
}
END_TEST

START_TEST(fullwidth_localpart_is_mapped_to_its_narrow_form) {
  /* ＪＵＬＩＥＴ: fullwidth, then lowercased */
  parses_as("\xef\xbc\xaa\xef\xbc\xb5\xef\xbc\xac\xef\xbc\xa9\xef\xbc\xa5"
            "\xef\xbc\xb4@example.com",
            "juliet@example.com");
  /* Halfwidth katakana ｱ becomes ア. */
  parses_as("\xef\xbd\xb1@example.com", "\xe3\x82\xa2@example.com");
}
END_TEST

START_TEST(localpart_is_normalized_to_nfc) {
  parses_as("rene\xcc\x81@example.com", "ren\xc3\xa9@example.com");
}
END_TEST

START_TEST(symbols_and_compatibility_characters_are_refused_in_localpart) {
  parse_fails("\xe2\x99\x9a@example.com", XMPPUV_EJIDLOCAL);    /* ♚ So */
  parse_fails("\xef\xac\x81@example.com", XMPPUV_EJIDLOCAL);    /* ﬁ compat */
  parse_fails("x\xc2\xb2@example.com", XMPPUV_EJIDLOCAL);       /* ² compat */
  parse_fails("a\xe2\x80\x94" "b@example.com", XMPPUV_EJIDLOCAL); /* — Pd */
  parse_fails("\xf0\x9f\x98\x80@example.com", XMPPUV_EJIDLOCAL); /* 😀 */
}
END_TEST

START_TEST(unassigned_code_points_are_refused) {
  /* U+0378 is unassigned in Unicode 14. */
  parse_fails("a\xcd\xb8" "b@example.com", XMPPUV_EJIDLOCAL);
  parse_fails("a@example.com/a\xcd\xb8" "b", XMPPUV_EJIDRESOURCE);
  /* Noncharacters and private use too. */
  parse_fails("a@example.com/a\xef\xbf\xbe", XMPPUV_EJIDRESOURCE);
  parse_fails("a@example.com/a\xee\x80\x80", XMPPUV_EJIDRESOURCE);
}
END_TEST

START_TEST(contextual_rules_apply_to_localpart) {
  /* RFC 5892 A.3: a middle dot only between two 'l' (Catalan). */
  parses_as("col\xc2\xb7legi@example.com", "col\xc2\xb7legi@example.com");
  parse_fails("a\xc2\xb7" "b@example.com", XMPPUV_EJIDLOCAL);
  /* A.7: KATAKANA MIDDLE DOT needs kana or Han in the string. */
  parses_as("\xe3\x82\xa2\xe3\x83\xbb\xe3\x82\xa4@example.com",
            "\xe3\x82\xa2\xe3\x83\xbb\xe3\x82\xa4@example.com");
  parse_fails("a\xe3\x83\xbb" "b@example.com", XMPPUV_EJIDLOCAL);
  /* A.4: GREEK LOWER NUMERAL SIGN before a Greek letter only. */
  parses_as("\xcd\xb5\xce\xb1@example.com", "\xcd\xb5\xce\xb1@example.com");
  parse_fails("\xcd\xb5" "a@example.com", XMPPUV_EJIDLOCAL);
  /* A.2: ZERO WIDTH JOINER only after a virama. */
  parses_as("\xe0\xa4\x95\xe0\xa5\x8d\xe2\x80\x8d\xe0\xa4\xb7@example.com",
            "\xe0\xa4\x95\xe0\xa5\x8d\xe2\x80\x8d\xe0\xa4\xb7@example.com");
  parse_fails("a\xe2\x80\x8d" "b@example.com", XMPPUV_EJIDLOCAL);
}
END_TEST

START_TEST(bidi_rule_applies_to_localpart) {
  /* Hebrew alone is a right-to-left string that satisfies RFC 5893. */
  parses_as("\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d@example.com",
            "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d@example.com");
  /* Left-to-right first, then a right-to-left letter: rule 5. */
  parse_fails("a\xd7\xa9@example.com", XMPPUV_EJIDLOCAL);
  /* Right-to-left first, then a left-to-right letter: rule 2. */
  parse_fails("\xd7\xa9" "a@example.com", XMPPUV_EJIDLOCAL);
  /* The resource (OpaqueString) has no directionality rule. */
  parses_as("a@example.com/a\xd7\xa9", "a@example.com/a\xd7\xa9");
}
END_TEST

/* ---- resourcepart ------------------------------------------------------- */

START_TEST(resource_case_is_preserved) {
  xmppuv_jid_t *jid = parse_ok("juliet@example.com/Balcony");
  ck_assert_str_eq(xmppuv_jid_resource(jid), "Balcony");
  xmppuv_jid_free(jid);
  ck_assert(!same_jid("juliet@example.com/Balcony",
                      "juliet@example.com/balcony"));
  parses_as("a@example.com/\xce\xa3\xce\x91\xce\xa3",
            "a@example.com/\xce\xa3\xce\x91\xce\xa3");
}
END_TEST

START_TEST(resource_is_normalized_to_nfc) {
  xmppuv_jid_t *jid = parse_ok("juliet@example.com/cafe\xcc\x81");
  ck_assert_str_eq(xmppuv_jid_resource(jid), "caf\xc3\xa9");
  xmppuv_jid_free(jid);
  ck_assert(same_jid("juliet@example.com/cafe\xcc\x81",
                     "juliet@example.com/caf\xc3\xa9"));
}
END_TEST

START_TEST(resource_keeps_spaces_symbols_and_compatibility_characters) {
  parses_as("a@example.com/The Balcony", "a@example.com/The Balcony");
  parses_as("a@example.com/\xe2\x99\x9a \xef\xac\x81",
            "a@example.com/\xe2\x99\x9a \xef\xac\x81"); /* ♚ ﬁ */
  /* Fullwidth forms are not width-mapped in an OpaqueString. */
  parses_as("a@example.com/\xef\xbc\xaa", "a@example.com/\xef\xbc\xaa");
}
END_TEST

START_TEST(non_ascii_spaces_in_resource_become_ascii_spaces) {
  parses_as("a@example.com/The\xc2\xa0" "Balcony", "a@example.com/The Balcony");
  parses_as("a@example.com/The\xe3\x80\x80" "Balcony",
            "a@example.com/The Balcony");
}
END_TEST

/* ---- domainpart --------------------------------------------------------- */

START_TEST(idn_u_label_and_a_label_domains_are_equal) {
  xmppuv_jid_t *u = parse_ok("juliet@B\xc3\xbc" "cher.example/balcony");
  xmppuv_jid_t *a = parse_ok("juliet@xn--bcher-kva.example/balcony");
  xmppuv_jid_t *upper = parse_ok("juliet@XN--BCHER-KVA.EXAMPLE/balcony");
  ck_assert_str_eq(xmppuv_jid_domain(u), BUECHER ".example");
  ck_assert_str_eq(xmppuv_jid_domain(a), BUECHER ".example");
  ck_assert_str_eq(xmppuv_jid_domain_ascii(u), "xn--bcher-kva.example");
  ck_assert_str_eq(xmppuv_jid_domain_ascii(a), "xn--bcher-kva.example");
  ck_assert_str_eq(xmppuv_jid_string(u), "juliet@" BUECHER ".example/balcony");
  ck_assert(xmppuv_jid_equal(u, a));
  ck_assert(xmppuv_jid_equal(u, upper));
  xmppuv_jid_free(u);
  xmppuv_jid_free(a);
  xmppuv_jid_free(upper);
}
END_TEST

START_TEST(uppercase_domain_is_lowercased) {
  xmppuv_jid_t *jid = parse_ok("juliet@EXAMPLE.Com/Balcony");
  ck_assert_str_eq(xmppuv_jid_domain(jid), "example.com");
  ck_assert_str_eq(xmppuv_jid_domain_ascii(jid), "example.com");
  ck_assert_str_eq(xmppuv_jid_string(jid), "juliet@example.com/Balcony");
  xmppuv_jid_free(jid);
  /* Fullwidth letters and the ideographic full stop are mapped (UTS #46). */
  parses_as("\xef\xbc\xa5\xef\xbc\xb8.com", "ex.com");
  parses_as(BUECHER "\xe3\x80\x82" "example", BUECHER ".example");
}
END_TEST

START_TEST(trailing_dot_in_domain_is_removed) {
  parses_as("juliet@example.com./balcony", "juliet@example.com/balcony");
  parses_as("B\xc3\xbc" "cher.example.", BUECHER ".example");
  ck_assert(same_jid("example.com.", "example.com"));
  parse_fails("example.com..", XMPPUV_EJIDDOMAIN);
  parse_fails(".", XMPPUV_EJIDDOMAIN);
  parse_fails("a@.", XMPPUV_EJIDDOMAIN);
}
END_TEST

START_TEST(single_label_domain_is_accepted) {
  parses_as("juliet@localhost/balcony", "juliet@localhost/balcony");
  parses_as("LocalHost", "localhost");
}
END_TEST

START_TEST(non_hostname_domains_are_refused_with_EJIDDOMAIN) {
  parse_fails("a@under_score.example", XMPPUV_EJIDDOMAIN);
  parse_fails("a@exa mple.com", XMPPUV_EJIDDOMAIN);
  parse_fails("a@-example.com", XMPPUV_EJIDDOMAIN);
  parse_fails("a@example-.com", XMPPUV_EJIDDOMAIN);
  parse_fails("a@example..com", XMPPUV_EJIDDOMAIN);
  parse_fails("a@.example.com", XMPPUV_EJIDDOMAIN);
  parse_fails("a@exam:ple.com", XMPPUV_EJIDDOMAIN);
  parse_fails("a@b\xc3\xbc" "cher_x.example", XMPPUV_EJIDDOMAIN);
  parse_fails("a@\xf0\x9f\x98\x80.example", XMPPUV_EJIDDOMAIN); /* 😀 */
  parse_fails("a@example.123", XMPPUV_EJIDDOMAIN);
}
END_TEST

START_TEST(invalid_a_labels_are_refused) {
  parse_fails("a@xn--zz.example", XMPPUV_EJIDDOMAIN);
  parse_fails("a@xn--a.example", XMPPUV_EJIDDOMAIN);
  parse_fails("a@xn--.example", XMPPUV_EJIDDOMAIN);
}
END_TEST

/* Found by fuzzing (tests/fuzz/fuzz_jid): libidn2 passes A-labels through
 * unchecked; this one decodes to a U-label holding U+00B4, which IDNA2008
 * disallows, so the JID's canonical form "cbhr-eva-cb\u00b4hr.es" did not
 * parse again. RFC 5891 §5.4: the U-label must be valid and convert back. */
START_TEST(an_a_label_whose_u_label_is_invalid_is_refused) {
  parse_fails("xn--cbhr-eva-cbhr-eva.es", XMPPUV_EJIDDOMAIN);
  parse_fails("a@xn--cbhr-eva-cbhr-eva.es/r", XMPPUV_EJIDDOMAIN);
  xmppuv_jid_t *j = NULL;
  ck_assert_int_eq(xmppuv_jid_parse("a@XN--BCHER-KVA.example", &j), 0);
  ck_assert_str_eq(xmppuv_jid_domain(j), "b\xc3\xbc" "cher.example");
  xmppuv_jid_t *again = NULL;
  ck_assert_int_eq(xmppuv_jid_parse(xmppuv_jid_string(j), &again), 0);
  ck_assert(xmppuv_jid_equal(j, again));
  xmppuv_jid_free(again);
  xmppuv_jid_free(j);
}
END_TEST

START_TEST(plain_ascii_labels_with_double_hyphen_are_accepted) {
  /* libidn2 refuses these as reserved labels; DNS has them (RFC 1123). */
  parses_as("a@R3--sn.example", "a@r3--sn.example");
}
END_TEST

START_TEST(ipv4_literal_domain_is_accepted) {
  xmppuv_jid_t *jid = parse_ok("juliet@192.0.2.1/balcony");
  ck_assert_str_eq(xmppuv_jid_domain(jid), "192.0.2.1");
  ck_assert_str_eq(xmppuv_jid_domain_ascii(jid), "192.0.2.1");
  xmppuv_jid_free(jid);
  parse_fails("juliet@192.0.2.256", XMPPUV_EJIDDOMAIN);
  parse_fails("juliet@192.0.2", XMPPUV_EJIDDOMAIN);
  parse_fails("juliet@192.0.02.1", XMPPUV_EJIDDOMAIN);
  parse_fails("juliet@192.0.2.1.", XMPPUV_EJIDDOMAIN);
}
END_TEST

START_TEST(ipv6_literal_domain_in_brackets_is_accepted_in_canonical_form) {
  xmppuv_jid_t *jid = parse_ok("juliet@[::1]/balcony");
  ck_assert_str_eq(xmppuv_jid_domain(jid), "[::1]");
  ck_assert_str_eq(xmppuv_jid_domain_ascii(jid), "[::1]");
  ck_assert_str_eq(xmppuv_jid_string(jid), "juliet@[::1]/balcony");
  xmppuv_jid_free(jid);
  parses_as("[0:0::1]", "[::1]");
  parses_as("[2001:DB8:0:0:0:0:0:1]", "[2001:db8::1]");
  ck_assert(same_jid("a@[0:0:0:0:0:0:0:1]", "a@[::1]"));
}
END_TEST

START_TEST(malformed_ipv6_literal_is_refused) {
  parse_fails("a@[::1", XMPPUV_EJIDDOMAIN);
  parse_fails("a@::1]", XMPPUV_EJIDDOMAIN);
  parse_fails("a@::1", XMPPUV_EJIDDOMAIN);
  parse_fails("a@[]", XMPPUV_EJIDDOMAIN);
  parse_fails("a@[:::1]", XMPPUV_EJIDDOMAIN);
  parse_fails("a@[1::2::3]", XMPPUV_EJIDDOMAIN);
  parse_fails("a@[12345::1]", XMPPUV_EJIDDOMAIN);
  parse_fails("a@[fe80::1%25eth0]", XMPPUV_EJIDDOMAIN);
  parse_fails("a@[example.com]", XMPPUV_EJIDDOMAIN);
  parse_fails("a@[192.0.2.1]", XMPPUV_EJIDDOMAIN);
}
END_TEST

/* ---- lengths ------------------------------------------------------------ */

START_TEST(parts_of_1023_bytes_are_accepted_and_1024_refused) {
  char *text = repeat("a", 1023, "", "@example.com");
  xmppuv_jid_t *jid = parse_ok(text);
  ck_assert_uint_eq(strlen(xmppuv_jid_local(jid)), 1023);
  xmppuv_jid_free(jid);
  free(text);
  text = repeat("a", 1024, "", "@example.com");
  parse_fails(text, XMPPUV_EJIDLOCAL);
  free(text);

  text = repeat("r", 1023, "a@example.com/", "");
  jid = parse_ok(text);
  ck_assert_uint_eq(strlen(xmppuv_jid_resource(jid)), 1023);
  xmppuv_jid_free(jid);
  free(text);
  text = repeat("r", 1024, "a@example.com/", "");
  parse_fails(text, XMPPUV_EJIDRESOURCE);
  free(text);
}
END_TEST

START_TEST(length_limit_applies_after_preparation) {
  /* 1023 fullwidth letters (3069 bytes) prepare to 1023 ASCII bytes. */
  char *text = repeat("\xef\xbd\x81", 1023, "", "@example.com");
  xmppuv_jid_t *jid = parse_ok(text);
  ck_assert_uint_eq(strlen(xmppuv_jid_local(jid)), 1023);
  xmppuv_jid_free(jid);
  free(text);
  text = repeat("\xef\xbd\x81", 1024, "", "@example.com");
  parse_fails(text, XMPPUV_EJIDLOCAL);
  free(text);
  /* 511 × é (decomposed in the input) + "ab" = 1024 bytes once NFC. */
  text = repeat("e\xcc\x81", 511, "a@example.com/a", "");
  jid = parse_ok(text);
  ck_assert_uint_eq(strlen(xmppuv_jid_resource(jid)), 1023);
  xmppuv_jid_free(jid);
  free(text);
  text = repeat("e\xcc\x81", 511, "a@example.com/ab", "");
  parse_fails(text, XMPPUV_EJIDRESOURCE);
  free(text);
}
END_TEST

START_TEST(dns_labels_over_63_octets_are_refused) {
  char *text = repeat("a", 63, "juliet@", ".example");
  xmppuv_jid_free(parse_ok(text));
  free(text);
  text = repeat("a", 64, "juliet@", ".example");
  parse_fails(text, XMPPUV_EJIDDOMAIN);
  free(text);
  /* Measured on the A-label: 60 × ü is 5 bytes of punycode over 63. */
  text = repeat("\xc3\xbc", 60, "juliet@", ".example");
  parse_fails(text, XMPPUV_EJIDDOMAIN);
  free(text);
}
END_TEST

START_TEST(domain_names_over_253_characters_are_refused) {
  /* 3 × (63 + 1) + 61 = 253 */
  char *label = repeat("a", 63, "", ".");
  char *three = repeat(label, 3, "", "");
  char *text = repeat("b", 61, three, "");
  ck_assert_uint_eq(strlen(text), 253);
  xmppuv_jid_t *jid = parse_ok(text);
  ck_assert_uint_eq(strlen(xmppuv_jid_domain_ascii(jid)), 253);
  xmppuv_jid_free(jid);
  free(text);
  /* A trailing dot does not count. */
  text = repeat("b", 61, three, ".");
  xmppuv_jid_free(parse_ok(text));
  free(text);
  text = repeat("b", 62, three, "");
  parse_fails(text, XMPPUV_EJIDDOMAIN);
  free(text);
  free(three);
  free(label);
}
END_TEST

/* ---- UTF-8 -------------------------------------------------------------- */

START_TEST(invalid_utf8_is_refused_in_each_part) {
  parse_fails("\xff@example.com", XMPPUV_EJIDLOCAL);
  parse_fails("jul\xc3(iet@example.com", XMPPUV_EJIDLOCAL);
  parse_fails("\xc0\xaf@example.com", XMPPUV_EJIDLOCAL); /* overlong '/' */
  parse_fails("a@exam\xc3(ple.com", XMPPUV_EJIDDOMAIN);
  parse_fails("a@example.com\x80", XMPPUV_EJIDDOMAIN);
  /* A surrogate, then a code point above U+10FFFF. */
  parse_fails("a@example.com/\xed\xa0\x80", XMPPUV_EJIDRESOURCE);
  parse_fails("a@example.com/r\xf4\x90\x80\x80", XMPPUV_EJIDRESOURCE);
  parse_fails("a@example.com/r\xe2\x82", XMPPUV_EJIDRESOURCE); /* truncated */
}
END_TEST

/* ---- comparison, construction, copies ----------------------------------- */

START_TEST(equal_compares_all_parts_and_bare_equal_ignores_the_resource) {
  xmppuv_jid_t *a = parse_ok("Juliet@Example.com/balcony");
  xmppuv_jid_t *b = parse_ok("juliet@example.com/balcony");
  xmppuv_jid_t *c = parse_ok("juliet@example.com/garden");
  xmppuv_jid_t *d = parse_ok("juliet@example.com");
  xmppuv_jid_t *e = parse_ok("romeo@example.com/balcony");
  xmppuv_jid_t *f = parse_ok("example.com/balcony");
  ck_assert(xmppuv_jid_equal(a, b));
  ck_assert(xmppuv_jid_bare_equal(a, b));
  ck_assert(!xmppuv_jid_equal(a, c));
  ck_assert(xmppuv_jid_bare_equal(a, c));
  ck_assert(!xmppuv_jid_equal(a, d));
  ck_assert(xmppuv_jid_bare_equal(a, d));
  ck_assert(!xmppuv_jid_equal(a, e));
  ck_assert(!xmppuv_jid_bare_equal(a, e));
  ck_assert(!xmppuv_jid_bare_equal(a, f));
  ck_assert(!xmppuv_jid_equal(a, NULL));
  ck_assert(!xmppuv_jid_bare_equal(NULL, a));
  xmppuv_jid_free(a);
  xmppuv_jid_free(b);
  xmppuv_jid_free(c);
  xmppuv_jid_free(d);
  xmppuv_jid_free(e);
  xmppuv_jid_free(f);
}
END_TEST

START_TEST(jid_new_prepares_each_part) {
  xmppuv_jid_t *jid = NULL;
  ck_assert_int_eq(
      xmppuv_jid_new("Juliet", "B\xc3\xbc" "cher.example.", "Balcony", &jid),
      0);
  ck_assert_str_eq(xmppuv_jid_string(jid),
                   "juliet@" BUECHER ".example/Balcony");
  ck_assert_str_eq(xmppuv_jid_domain_ascii(jid), "xn--bcher-kva.example");
  xmppuv_jid_t *parsed = parse_ok("juliet@xn--bcher-kva.example/Balcony");
  ck_assert(xmppuv_jid_equal(jid, parsed));
  xmppuv_jid_free(parsed);
  xmppuv_jid_free(jid);

  ck_assert_int_eq(xmppuv_jid_new(NULL, "example.com", NULL, &jid), 0);
  ck_assert_str_eq(xmppuv_jid_string(jid), "example.com");
  xmppuv_jid_free(jid);

  /* The resource may hold '/' and '@'; the domain may not. */
  ck_assert_int_eq(xmppuv_jid_new("a", "example.com", "x/y@z", &jid), 0);
  ck_assert_str_eq(xmppuv_jid_resource(jid), "x/y@z");
  xmppuv_jid_free(jid);
  ck_assert_int_eq(xmppuv_jid_new("a", "exa/mple.com", NULL, &jid),
                   XMPPUV_EJIDDOMAIN);
  ck_assert_int_eq(xmppuv_jid_new("a", "b@example.com", NULL, &jid),
                   XMPPUV_EJIDDOMAIN);
  ck_assert_int_eq(xmppuv_jid_new("a", "example.com", "r\n", &jid),
                   XMPPUV_EJIDRESOURCE);
  ck_assert_ptr_null(jid);
}
END_TEST

START_TEST(copy_is_equal_and_outlives_the_original) {
  xmppuv_jid_t *jid = parse_ok("juliet@B\xc3\xbc" "cher.example/balcony");
  xmppuv_jid_t *copy = NULL;
  ck_assert_int_eq(xmppuv_jid_copy(jid, &copy), 0);
  ck_assert_ptr_ne(copy, jid);
  ck_assert(xmppuv_jid_equal(jid, copy));
  xmppuv_jid_free(jid);
  ck_assert_str_eq(xmppuv_jid_string(copy),
                   "juliet@" BUECHER ".example/balcony");
  ck_assert_str_eq(xmppuv_jid_bare_string(copy), "juliet@" BUECHER ".example");
  ck_assert_str_eq(xmppuv_jid_local(copy), "juliet");
  ck_assert_str_eq(xmppuv_jid_domain(copy), BUECHER ".example");
  ck_assert_str_eq(xmppuv_jid_domain_ascii(copy), "xn--bcher-kva.example");
  ck_assert_str_eq(xmppuv_jid_resource(copy), "balcony");
  xmppuv_jid_free(copy);
}
END_TEST

START_TEST(bare_drops_the_resource) {
  xmppuv_jid_t *jid = parse_ok("juliet@B\xc3\xbc" "cher.example/balcony");
  xmppuv_jid_t *bare = NULL;
  ck_assert_int_eq(xmppuv_jid_bare(jid, &bare), 0);
  ck_assert_str_eq(xmppuv_jid_string(bare), "juliet@" BUECHER ".example");
  ck_assert_ptr_null(xmppuv_jid_resource(bare));
  ck_assert(xmppuv_jid_is_bare(bare));
  ck_assert_str_eq(xmppuv_jid_domain_ascii(bare), "xn--bcher-kva.example");
  ck_assert(xmppuv_jid_bare_equal(jid, bare));
  ck_assert(!xmppuv_jid_equal(jid, bare));
  xmppuv_jid_free(jid);

  /* The bare form of a bare JID is an equal copy. */
  xmppuv_jid_t *again = NULL;
  ck_assert_int_eq(xmppuv_jid_bare(bare, &again), 0);
  ck_assert(xmppuv_jid_equal(bare, again));
  xmppuv_jid_free(again);
  xmppuv_jid_free(bare);

  jid = parse_ok("example.com/desk");
  ck_assert_int_eq(xmppuv_jid_bare(jid, &bare), 0);
  ck_assert_str_eq(xmppuv_jid_string(bare), "example.com");
  ck_assert_ptr_null(xmppuv_jid_local(bare));
  xmppuv_jid_free(bare);
  xmppuv_jid_free(jid);
}
END_TEST

/* ---- allocation failures ------------------------------------------------ */

static int parse_copy_bare(void *user_data) {
  const char *text = user_data;
  xmppuv_jid_t *jid = NULL, *copy = NULL, *bare = NULL;
  int rc = xmppuv_jid_parse(text, &jid);
  if (rc != 0) {
    ck_assert_ptr_null(jid);
    return rc;
  }
  ck_assert_str_eq(xmppuv_jid_string(jid),
                   "\xc4\xb5uliet@" BUECHER ".example/R\xc3\xa9sum\xc3\xa9");
  rc = xmppuv_jid_copy(jid, &copy);
  if (rc == 0) rc = xmppuv_jid_bare(copy, &bare);
  if (rc == 0)
    ck_assert_str_eq(xmppuv_jid_string(bare),
                     "\xc4\xb5uliet@" BUECHER ".example");
  xmppuv_jid_free(bare);
  xmppuv_jid_free(copy);
  xmppuv_jid_free(jid);
  return rc;
}

START_TEST(allocation_failures_give_ENOMEM_and_leak_nothing) {
  /* Ĵuliet (uppercase, non-ASCII), an IDN domain, a decomposed resource:
   * every preparation step runs. */
  char text[] = "\xc4\xb4uliet@B\xc3\xbc" "cher.example/Re\xcc\x81sume\xcc\x81";
  long points = failalloc_sweep(parse_copy_bare, text);
  /* Localpart and resource scratch, the JID, its copy, the bare JID. */
  ck_assert_int_eq(points, 5);
}
END_TEST

/* The builders' check (no allocation for ASCII) agrees with the parse,
 * code for code, on addresses that take each of its paths. */
START_TEST(the_quick_check_agrees_with_the_parse) {
  static const char *const cases[] = {
      "bob@example.org", "Bob@Example.ORG/Phone", "bob@example.org/a@b/c", "example.org",
      "a!b#c$d%e*f+g=h?i^j_k`l{m|n}o~p@x.y", "bob@@example.org", "bob@", "@example.org",
      "bob@example.org/", "b\"ob@example.org", "b&ob@x.y", "b'ob@x.y", "b:ob@x.y", "b<ob@x.y",
      "b>ob@x.y", "bob@exa_mple.org", "bob@-example.org", "bob@example-.org",
      "bob@example.org.", "bob@example..org", "bob@127.0.0.1", "bob@[::1]", "bob@[::1",
      "bob@999.1.1.1", "bob@xn--bcher-kva.example", "bob@xn--zz.example", "bob@Bücher.example",
      "bøb@example.org", "bob@example.org/res with space", "bob@example.org/\x01",
      "bob@a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z",
      "bob@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.org", ""};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    xmppuv_jid_t *j = NULL;
    int parse = xmppuv_jid_parse(cases[i], &j);
    xmppuv_jid_free(j);
    ck_assert_msg(xmppuv__jid_check(cases[i]) == parse, "%s: check %s, parse %s", cases[i],
                  xmppuv_err_name(xmppuv__jid_check(cases[i])), xmppuv_err_name(parse));
  }
  char longlocal[1100];
  memset(longlocal, 'a', 1024);
  strcpy(longlocal + 1024, "@x.y");
  xmppuv_jid_t *j = NULL;
  int parse = xmppuv_jid_parse(longlocal, &j);
  ck_assert_int_ne(parse, 0);
  ck_assert_int_eq(xmppuv__jid_check(longlocal), parse);
  /* A host name of 254 characters, without and with a final dot (found by
   * fuzzing: the check took the first). */
  char longdomain[300] = "a@";
  for (int i = 0; i < 127; i++) strcat(longdomain, i < 126 ? "b." : "bc");
  ck_assert_uint_eq(strlen(longdomain + 2), 254);
  parse = xmppuv_jid_parse(longdomain, &j);
  ck_assert_int_eq(parse, XMPPUV_EJIDDOMAIN);
  ck_assert_int_eq(xmppuv__jid_check(longdomain), parse);
  strcpy(longdomain + strlen(longdomain) - 1, ".");
  parse = xmppuv_jid_parse(longdomain, &j);
  xmppuv_jid_free(j);
  ck_assert_int_eq(xmppuv__jid_check(longdomain), parse);
  ck_assert_int_eq(xmppuv__jid_check(NULL), XMPPUV_EINVAL);
}
END_TEST

static Suite *jid_suite(void) {
  Suite *s = suite_create("jid");
  TCase *tc = tcase_create("jid");
  tcase_add_test(tc, full_jid_is_split_into_its_three_parts);
  tcase_add_test(tc, bare_jid_has_no_resource);
  tcase_add_test(tc, domain_only_jid_has_no_localpart);
  tcase_add_test(tc, resource_may_contain_at_and_slash);
  tcase_add_test(tc, second_at_sign_lands_in_the_domain_and_is_refused);
  tcase_add_test(tc, empty_parts_are_refused_with_EJID);
  tcase_add_test(tc, null_arguments_are_refused_with_EINVAL);
  tcase_add_test(tc, each_forbidden_localpart_character_is_refused_with_EJIDLOCAL);
  tcase_add_test(tc, other_ascii_punctuation_is_allowed_in_localpart);
  tcase_add_test(tc, space_in_localpart_is_refused);
  tcase_add_test(tc, control_characters_are_refused_in_localpart_and_resource);
  tcase_add_test(tc, localpart_is_lowercased);
  tcase_add_test(tc, non_ascii_uppercase_localpart_is_lowercased);
  tcase_add_test(tc, fullwidth_localpart_is_mapped_to_its_narrow_form);
  tcase_add_test(tc, localpart_is_normalized_to_nfc);
  tcase_add_test(tc, symbols_and_compatibility_characters_are_refused_in_localpart);
  tcase_add_test(tc, unassigned_code_points_are_refused);
  tcase_add_test(tc, contextual_rules_apply_to_localpart);
  tcase_add_test(tc, bidi_rule_applies_to_localpart);
  tcase_add_test(tc, resource_case_is_preserved);
  tcase_add_test(tc, resource_is_normalized_to_nfc);
  tcase_add_test(tc, resource_keeps_spaces_symbols_and_compatibility_characters);
  tcase_add_test(tc, non_ascii_spaces_in_resource_become_ascii_spaces);
  tcase_add_test(tc, idn_u_label_and_a_label_domains_are_equal);
  tcase_add_test(tc, uppercase_domain_is_lowercased);
  tcase_add_test(tc, trailing_dot_in_domain_is_removed);
  tcase_add_test(tc, single_label_domain_is_accepted);
  tcase_add_test(tc, non_hostname_domains_are_refused_with_EJIDDOMAIN);
  tcase_add_test(tc, invalid_a_labels_are_refused);
  tcase_add_test(tc, an_a_label_whose_u_label_is_invalid_is_refused);
  tcase_add_test(tc, plain_ascii_labels_with_double_hyphen_are_accepted);
  tcase_add_test(tc, ipv4_literal_domain_is_accepted);
  tcase_add_test(tc, ipv6_literal_domain_in_brackets_is_accepted_in_canonical_form);
  tcase_add_test(tc, malformed_ipv6_literal_is_refused);
  tcase_add_test(tc, parts_of_1023_bytes_are_accepted_and_1024_refused);
  tcase_add_test(tc, length_limit_applies_after_preparation);
  tcase_add_test(tc, dns_labels_over_63_octets_are_refused);
  tcase_add_test(tc, domain_names_over_253_characters_are_refused);
  tcase_add_test(tc, invalid_utf8_is_refused_in_each_part);
  tcase_add_test(tc, equal_compares_all_parts_and_bare_equal_ignores_the_resource);
  tcase_add_test(tc, jid_new_prepares_each_part);
  tcase_add_test(tc, copy_is_equal_and_outlives_the_original);
  tcase_add_test(tc, bare_drops_the_resource);
  tcase_add_test(tc, allocation_failures_give_ENOMEM_and_leak_nothing);
  tcase_add_test(tc, the_quick_check_agrees_with_the_parse);
  suite_add_tcase(s, tc);
  return s;
}

XMPPUV_TEST_MAIN(jid_suite)
