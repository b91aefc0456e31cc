/* Fuzz target: JID parsing and preparation (lib/jid.c: PRECIS, IDNA2008
 * through libidn2, IP literals).
 *
 * Input: 1 header byte, then text.
 *   bit 0 clear: the text (up to the first NUL) goes to xmppuv_jid_parse();
 *   bit 0 set: three NUL-separated parts go to xmppuv_jid_new() (an empty
 *     local or resource part is passed as NULL when bit 1 is set).
 * For every JID accepted: the canonical string parses again to an equal JID
 * with the same string (preparation is idempotent), the parts rebuild it
 * through xmppuv_jid_new(), copy and bare agree, and the ASCII domain
 * parses to the same domain. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "jid_int.h"
#include "xmppuv.h"

static int known_error(int rc) {
  return rc == XMPPUV_EJID || rc == XMPPUV_EJIDLOCAL || rc == XMPPUV_EJIDDOMAIN ||
         rc == XMPPUV_EJIDRESOURCE;
}

static void check_parts(const xmppuv_jid_t *j) {
  const char *full = xmppuv_jid_string(j);
  const char *bare = xmppuv_jid_bare_string(j);
  const char *local = xmppuv_jid_local(j);
  const char *domain = xmppuv_jid_domain(j);
  const char *resource = xmppuv_jid_resource(j);
  const char *ascii = xmppuv_jid_domain_ascii(j);
  FZ_CHECK(full && bare && domain && ascii, "missing part");
  FZ_CHECK(domain[0] != '\0' && (local == NULL || local[0] != '\0') &&
               (resource == NULL || resource[0] != '\0'),
           "empty part in %s", full);
  FZ_CHECK(strlen(domain) <= 1023 && (!local || strlen(local) <= 1023) &&
               (!resource || strlen(resource) <= 1023),
           "part too long");
  FZ_CHECK(xmppuv_jid_is_bare(j) == (resource == NULL), "is_bare");
  for (const char *c = ascii; *c; c++)
    FZ_CHECK((unsigned char)*c < 0x80, "non-ASCII in the ASCII domain %s", ascii);

  /* Idempotent: the canonical form is its own canonical form. */
  xmppuv_jid_t *again = NULL;
  int rc = xmppuv_jid_parse(full, &again);
  FZ_CHECK(rc == 0, "canonical form '%s' does not parse: %s", full, xmppuv_err_name(rc));
  FZ_CHECK(strcmp(xmppuv_jid_string(again), full) == 0,
           "preparation is not idempotent: '%s' -> '%s'", full, xmppuv_jid_string(again));
  FZ_CHECK(xmppuv_jid_equal(j, again) && xmppuv_jid_bare_equal(j, again), "equal");
  xmppuv_jid_free(again);

  xmppuv_jid_t *built = NULL;
  rc = xmppuv_jid_new(local, domain, resource, &built);
  FZ_CHECK(rc == 0, "parts of '%s' do not build: %s", full, xmppuv_err_name(rc));
  FZ_CHECK(xmppuv_jid_equal(j, built), "built from parts differs: '%s' '%s'", full,
           xmppuv_jid_string(built));
  xmppuv_jid_free(built);

  xmppuv_jid_t *copy = NULL, *b = NULL;
  FZ_CHECK(xmppuv_jid_copy(j, &copy) == 0 && xmppuv_jid_equal(j, copy), "copy");
  FZ_CHECK(xmppuv_jid_bare(j, &b) == 0, "bare");
  FZ_CHECK(xmppuv_jid_is_bare(b) && xmppuv_jid_bare_equal(j, b) &&
               strcmp(xmppuv_jid_string(b), bare) == 0,
           "bare of '%s' is '%s'", full, xmppuv_jid_string(b));
  FZ_CHECK(xmppuv_jid_equal(j, b) == (resource == NULL), "equal to its bare JID");
  xmppuv_jid_free(copy);
  xmppuv_jid_free(b);

  /* A-labels and U-labels compare equal (IP literals are kept as given). */
  xmppuv_jid_t *d = NULL;
  rc = xmppuv_jid_new(NULL, ascii, NULL, &d);
  FZ_CHECK(rc == 0, "ASCII domain '%s' does not parse: %s", ascii, xmppuv_err_name(rc));
  FZ_CHECK(strcmp(xmppuv_jid_domain(d), domain) == 0, "ASCII domain '%s' gives '%s', not '%s'",
           ascii, xmppuv_jid_domain(d), domain);
  xmppuv_jid_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0 || size > 8192) return 0;
  uint8_t flags = data[0];
  char *text = malloc(size);
  FZ_CHECK(text != NULL, "oom");
  memcpy(text, data + 1, size - 1);
  text[size - 1] = '\0';
  xmppuv_jid_t *j = NULL;
  int rc;
  if (flags & 1) {
    const char *end = text + size - 1;
    const char *parts[3] = {text, "", ""};
    const char *p = text;
    for (int i = 1; i < 3; i++) {
      p += strlen(p);
      if (p >= end) break;
      parts[i] = ++p;
    }
    const char *local = parts[0], *resource = parts[2];
    if ((flags & 2) && local[0] == '\0') local = NULL;
    if ((flags & 2) && resource[0] == '\0') resource = NULL;
    rc = xmppuv_jid_new(local, parts[1], resource, &j);
  } else {
    rc = xmppuv_jid_parse(text, &j);
    /* The builders' allocation-free check says what the parse says. */
    int quick = xmppuv__jid_check(text);
    FZ_CHECK(quick == rc, "check %s, parse %s", xmppuv_err_name(quick), xmppuv_err_name(rc));
  }
  if (rc == 0) {
    check_parts(j);
    xmppuv_jid_free(j);
  } else {
    FZ_CHECK(j == NULL, "error with a result");
    FZ_CHECK(known_error(rc), "unexpected error %s", xmppuv_err_name(rc));
  }
  free(text);
  return 0;
}
