/* The incremental XMPP stream parser (expat underneath).
 *
 * Feed it bytes in any chunking; it reports the stream header, each complete
 * top-level element as a tree, and the end of the stream. It enforces
 * RFC 6120 §11.1 restricted XML (no DTD, entity declarations, comments or
 * processing instructions) and hard limits, so memory stays bounded whatever
 * the peer sends: at most max_stanza_bytes of input are ever held for one
 * element (or for the prologue and stream header). No I/O, no clock. */
#ifndef XMPPUV_PARSER_H
#define XMPPUV_PARSER_H

#include <stddef.h>

#include "util/defaults.h"

#include "xmppuv.h"

typedef struct xmppuv__parser xmppuv__parser_t;

typedef struct xmppuv__xml_limits {
  size_t max_stanza_bytes; /* one top-level element, in input bytes */
  unsigned max_depth;      /* element nesting inside a stanza */
  unsigned max_attrs;      /* attributes (and xmlns declarations) per element */
} xmppuv__xml_limits_t;


typedef enum {
  XMPPUV__PARSE_STREAM,  /* <stream:stream> header, then top-level elements */
  XMPPUV__PARSE_DOCUMENT /* one element, reported when complete */
} xmppuv__parse_mode_t;

/* Callbacks return 0 to go on; anything else stops parsing and is returned by
 * xmppuv__parser_feed(). */
typedef struct xmppuv__parser_callbacks {
  /* The stream header, as an element with its attributes and no children
   * (borrowed for the call). */
  int (*stream_open)(void *user_data, const xmppuv_stanza_t *header);
  /* A complete top-level element. The callee takes the reference. */
  int (*element)(void *user_data, xmppuv_stanza_t *element);
  /* </stream:stream>. */
  int (*stream_close)(void *user_data);
} xmppuv__parser_callbacks_t;

/* limits may be NULL for the defaults; a zero field takes its default. */
int xmppuv__parser_new(xmppuv__parse_mode_t mode,
                       const xmppuv__xml_limits_t *limits,
                       const xmppuv__parser_callbacks_t *callbacks,
                       void *user_data, xmppuv__parser_t **out);
void xmppuv__parser_free(xmppuv__parser_t *p);

/* Parse len bytes. *consumed (may be NULL) gets how many were used: all of
 * them, unless a callback called xmppuv__parser_pause(), in which case parsing
 * stopped right after that element (the caller restarts the stream and feeds
 * the rest). Returns 0, a callback's code, or an error: XMPPUV_EXML,
 * XMPPUV_ERESTRICTED, XMPPUV_ELIMIT, XMPPUV_ENAMESPACE, XMPPUV_ENOMEM. After
 * an error the parser refuses input until xmppuv__parser_reset(), and
 * xmppuv__parser_condition() names the RFC 6120 stream error to send. */
int xmppuv__parser_feed(xmppuv__parser_t *p, const char *data, size_t len,
                        size_t *consumed);

/* Free the expat parser while the stream is idle between stanzas with
 * nothing buffered (it costs about 12 KB); the next feed makes a new one,
 * primed with the stream header's namespace declarations, transparently.
 * Returns 1 if it was released, 0 if it cannot be now (mid-stanza, bytes
 * held, not a stream). */
int xmppuv__parser_release(xmppuv__parser_t *p);

/* Give back the memory kept for the stanzas of a busy stream (their pool),
 * whatever else the stream keeps: its burst is over. */
void xmppuv__parser_trim(xmppuv__parser_t *p);

/* In document mode: the input is complete. Returns 0 and the element in
 * *out (caller owns it), or an error as for feed (XMPPUV_EXML if no element
 * or trailing content). */
int xmppuv__parser_finish(xmppuv__parser_t *p, xmppuv_stanza_t **out);

/* Feed a stream header of our own making (RFC 7395 framing has none on the
 * wire: each message is one element, parsed as a child of this header). It
 * is treated as the stream's header in every way but one: stream_open is
 * not called. 0 or an error as for feed. */
int xmppuv__parser_prime(xmppuv__parser_t *p, const char *header, size_t len);

/* From inside the element callback: stop after this element and return
 * from xmppuv__parser_feed() with *consumed up to its end; the caller feeds
 * the rest later and parsing goes on in the same stream (a new expat parser
 * primed with the stream header takes it). For when what follows must wait
 * (the session waits for credentials). No effect before the stream header. */
void xmppuv__parser_yield(xmppuv__parser_t *p);

/* From inside a callback: stop after the current element. */
void xmppuv__parser_pause(xmppuv__parser_t *p);

/* Start over for a new stream (after STARTTLS and SASL success). */
int xmppuv__parser_reset(xmppuv__parser_t *p);

/* After an error: the stream error condition ("not-well-formed",
 * "restricted-xml", "policy-violation", "invalid-namespace", "bad-format",
 * "internal-server-error") and a human-readable detail. NULL if no error. */
const char *xmppuv__parser_condition(const xmppuv__parser_t *p);
const char *xmppuv__parser_detail(const xmppuv__parser_t *p);

#endif
