/* RFC 6120 §4.9.3 stream error conditions: what the client does about each.
 * One table (stream_error.c), mirrored in the README's guarantees section. No
 * I/O. */
#ifndef XMPPUV_STREAM_ERROR_H
#define XMPPUV_STREAM_ERROR_H

typedef enum {
  /* Reconnect with backoff and resume: the cause is on the server's side or
   * passing, or lies in one stanza (which the poison rule then fails). */
  XMPPUV__SERR_RETRY,
  /* Reconnect at once to the host named (see-other-host). */
  XMPPUV__SERR_REDIRECT,
  /* Give up: another attempt would get the same answer (credentials, the
   * account's domain, our fixed stream header), or would fight another
   * client for the resource. */
  XMPPUV__SERR_FATAL
} xmppuv__serr_action_t;

typedef struct xmppuv__stream_error_class {
  const char *condition;
  xmppuv__serr_action_t action;
  /* The server may have ended the stream because of a stanza we wrote: the
   * stanza that was unhandled each time counts toward the poison rule
   * (sm.h: a stanza the server ended the stream on three times in a row
   * fails alone with XMPPUV_EREJECTED). */
  int stanza_may_cause;
  const char *why; /* the reason, for the log and the README */
} xmppuv__stream_error_class_t;

/* The class of a condition. An unknown or missing condition is treated as
 * undefined-condition (RFC 6120 §4.9.3.21: retry). Never NULL. */
const xmppuv__stream_error_class_t *xmppuv__stream_error_class(
    const char *condition);

/* The whole table, in RFC order (for tests and documentation). */
const xmppuv__stream_error_class_t *xmppuv__stream_error_table(
    unsigned *count);

#endif
