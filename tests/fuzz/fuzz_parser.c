/* Fuzz target: the XML stream parser (lib/xml/parser.c), bytes -> events.
 *
 * Input: 4 header bytes, then the XML.
 *   [0] bit 0: document mode (else stream mode); bits 1-2: chunking style
 *       (whole, byte at a time, small, mixed); bits 3-4: limits preset
 *   [1..3] seed for the chunk sizes
 *
 * Each input is parsed twice, once in a single feed and once in the chosen
 * chunking, and the two transcripts of events (each element serialized)
 * must be identical: a stream parser that answers differently depending on
 * how TCP cut the bytes is a bug. Every element is also serialized, parsed
 * back and serialized again: the serializer's output must always parse and
 * be a fixed point. Elements named <proceed/> or <success/> pause the parser
 * as the session does, and the harness resets it and feeds the rest. */
#include <stdint.h>
#include <string.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "fuzz_input.h"
#include "xml/parser.h"
#include "xmppuv.h"

typedef struct run {
  xmppuv__parser_t *p;
  xmppuv__buf_t log;
  int paused;
  int roundtrip; /* check each element's serialization */
} run_t;

static void log_str(run_t *r, const char *tag, const char *s, size_t len) {
  FZ_CHECK(xmppuv__buf_append_str(&r->log, tag) == 0, "oom");
  FZ_CHECK(xmppuv__buf_append(&r->log, s, len) == 0, "oom");
  FZ_CHECK(xmppuv__buf_append_char(&r->log, '\n') == 0, "oom");
}

/* The serializer's output parses, and serializing that again changes
 * nothing. */
static void check_roundtrip(const char *text, size_t len) {
  xmppuv_stanza_t *a = NULL, *b = NULL;
  int rc = xmppuv_stanza_parse(text, len, &a);
  FZ_CHECK(rc == 0, "serializer output does not parse (%s): %.*s",
           xmppuv_err_name(rc), (int)len, text);
  char *t2 = NULL, *t3 = NULL;
  size_t l2 = 0, l3 = 0;
  FZ_CHECK(xmppuv_stanza_to_string(a, &t2, &l2) == 0, "to_string");
  rc = xmppuv_stanza_parse(t2, l2, &b);
  FZ_CHECK(rc == 0, "second serialization does not parse (%s)", xmppuv_err_name(rc));
  FZ_CHECK(xmppuv_stanza_to_string(b, &t3, &l3) == 0, "to_string");
  FZ_CHECK(l2 == l3 && memcmp(t2, t3, l2) == 0,
           "serialization is not a fixed point:\n%.*s\n%.*s", (int)l2, t2, (int)l3, t3);
  xmppuv__free(t2);
  xmppuv__free(t3);
  xmppuv_stanza_unref(a);
  xmppuv_stanza_unref(b);
}

static void log_element(run_t *r, const char *tag, const xmppuv_stanza_t *el,
                        int roundtrip) {
  char *text = NULL;
  size_t len = 0;
  FZ_CHECK(xmppuv_stanza_to_string(el, &text, &len) == 0, "to_string");
  log_str(r, tag, text, len);
  if (roundtrip) check_roundtrip(text, len);
  xmppuv__free(text);
}

static int on_open(void *ud, const xmppuv_stanza_t *header) {
  log_element(ud, "O ", header, 0);
  return 0;
}

static int on_element(void *ud, xmppuv_stanza_t *el) {
  run_t *r = ud;
  log_element(r, "E ", el, r->roundtrip);
  const char *name = xmppuv_stanza_name(el);
  if (strcmp(name, "proceed") == 0 || strcmp(name, "success") == 0) {
    xmppuv__parser_pause(r->p);
    r->paused = 1;
  }
  xmppuv_stanza_unref(el);
  return 0;
}

static int on_close(void *ud) {
  log_str(ud, "C", "", 0);
  return 0;
}

static const xmppuv__parser_callbacks_t callbacks = {on_open, on_element, on_close};

static int known_error(int rc) {
  return rc == XMPPUV_EXML || rc == XMPPUV_ERESTRICTED || rc == XMPPUV_ELIMIT ||
         rc == XMPPUV_ENAMESPACE;
}

/* Feed data in the given chunking; returns the final code and logs it. */
static void parse(run_t *r, xmppuv__parse_mode_t mode, const xmppuv__xml_limits_t *lim,
                  const char *data, size_t len, unsigned style, uint32_t seed) {
  fz_rng_t rng;
  fz_rng_seed(&rng, seed);
  memset(r, 0, sizeof *r);
  /* Only the first run checks round trips: the same elements come again. */
  r->roundtrip = style == 0;
  FZ_CHECK(xmppuv__parser_new(mode, lim, &callbacks, r, &r->p) == 0, "parser_new");
  int rc = 0;
  size_t off = 0;
  while (off < len) {
    size_t n = fz_chunk(&rng, style, len - off);
    size_t used = 0;
    r->paused = 0;
    rc = xmppuv__parser_feed(r->p, data + off, n, &used);
    if (rc != 0) break;
    FZ_CHECK(used <= n, "consumed %zu of %zu", used, n);
    FZ_CHECK(r->paused || used == n, "consumed %zu of %zu without a pause", used, n);
    off += used;
    if (r->paused) {
      /* The condition is cleared by a reset only. */
      FZ_CHECK(xmppuv__parser_condition(r->p) == NULL, "condition while paused");
      FZ_CHECK(xmppuv__parser_reset(r->p) == 0, "reset");
      log_str(r, "R", "", 0);
    }
  }
  if (rc != 0) {
    FZ_CHECK(known_error(rc), "unexpected error %s", xmppuv_err_name(rc));
    const char *cond = xmppuv__parser_condition(r->p);
    FZ_CHECK(cond != NULL && xmppuv__parser_detail(r->p) != NULL, "error without condition");
    log_str(r, "X ", cond, strlen(cond));
    /* Sticky until reset. */
    FZ_CHECK(xmppuv__parser_feed(r->p, "<a/>", 4, NULL) == rc, "error not sticky");
  } else if (mode == XMPPUV__PARSE_DOCUMENT) {
    xmppuv_stanza_t *doc = NULL;
    rc = xmppuv__parser_finish(r->p, &doc);
    if (rc == 0) {
      FZ_CHECK(doc != NULL, "finish without a document");
      log_element(r, "D ", doc, r->roundtrip);
      xmppuv_stanza_unref(doc);
    } else {
      FZ_CHECK(known_error(rc), "unexpected finish error %s", xmppuv_err_name(rc));
      const char *cond = xmppuv__parser_condition(r->p);
      log_str(r, "X ", cond ? cond : "-", strlen(cond ? cond : "-"));
    }
  }
  xmppuv__parser_free(r->p);
  r->p = NULL;
}

/* Equal, or b is a followed only by an error. Expat itself finds some
 * errors in the prolog (before any element) only when the bad bytes come
 * in a later call than the start of the token ("l\0x" whole is pending,
 * byte by byte an error); that is not ours to change, and the stream is
 * refused either way once the size limit is reached. */
static int same_events(const xmppuv__buf_t *a, const xmppuv__buf_t *b) {
  /* Text between stanzas that is also malformed ("x]]>") is "bad-format"
   * when expat hands over its first bytes before seeing the rest, and
   * "not-well-formed" when it sees the whole token at once: either is
   * right, and the events before it must still agree. */
  static const char bf[] = "X bad-format\n", nwf[] = "X not-well-formed\n";
  size_t la = a->len, lb = b->len;
  if (la >= sizeof bf - 1 && lb >= sizeof nwf - 1 &&
      memcmp(a->data + la - (sizeof bf - 1), bf, sizeof bf - 1) == 0 &&
      memcmp(b->data + lb - (sizeof nwf - 1), nwf, sizeof nwf - 1) == 0)
    return la - (sizeof bf - 1) == lb - (sizeof nwf - 1) &&
           memcmp(a->data, b->data, la - (sizeof bf - 1)) == 0;
  if (a->len > b->len || (a->len > 0 && memcmp(a->data, b->data, a->len) != 0)) return 0;
  if (a->len == b->len) return 1;
  const char *rest = b->data + a->len;
  return rest[0] == 'X' && memchr(rest, '\n', b->len - a->len) == b->data + b->len - 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in_t in = {data, size};
  uint8_t flags = fz_u8(&in);
  uint32_t seed = (uint32_t)fz_u8(&in) << 16 | (uint32_t)fz_u8(&in) << 8 | fz_u8(&in);
  xmppuv__parse_mode_t mode = (flags & 1) ? XMPPUV__PARSE_DOCUMENT : XMPPUV__PARSE_STREAM;
  unsigned style = (flags >> 1) & 3u;
  static const xmppuv__xml_limits_t presets[4] = {
      {0, 0, 0},        /* defaults */
      {256, 4, 3},      /* tight: every limit is reachable */
      {4096, 16, 8},
      {64, 64, 64},
  };
  const xmppuv__xml_limits_t *lim = &presets[(flags >> 3) & 3u];
  const char *xml = (const char *)in.p;
  size_t len = in.n;

  run_t whole, chunked;
  parse(&whole, mode, lim, xml, len, 0, seed);
  parse(&chunked, mode, lim, xml, len, style == 0 ? 1 : style, seed);
  FZ_CHECK(same_events(&whole.log, &chunked.log) || same_events(&chunked.log, &whole.log),
           "chunking changed the events:\n--- whole\n%s\n--- chunked\n%s",
           whole.log.data ? whole.log.data : "", chunked.log.data ? chunked.log.data : "");
  xmppuv__buf_free(&whole.log);
  xmppuv__buf_free(&chunked.log);
  return 0;
}
