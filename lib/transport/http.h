/* HTTP/1.1 responses without I/O (RFC 9112), for the two places we speak
 * HTTP: the WebSocket opening handshake (ws_handshake.c) and XEP-0156
 * connection discovery (GET /.well-known/host-meta).
 *
 * Two layers:
 *   the head (xmppuv__http_head_*): the status line and the header fields
 *     up to the blank line, checked line by line as bytes arrive and
 *     bounded (XMPPUV__HTTP_HEAD_MAX bytes, XMPPUV__HTTP_FIELDS_MAX
 *     fields); it says how many of the bytes it was given were its own, so
 *     the bytes after it (a body, a WebSocket) stay with the caller;
 *   the response (xmppuv__http_response_*): a head, interim 1xx heads
 *     skipped, and the body framed as RFC 9112 §6.3 says (chunked, else
 *     Content-Length, else until the connection closes), bounded by the
 *     caller's body_max.
 *
 * Lines end with CRLF, as RFC 9112 §2.2 says a sender must: a bare LF or a
 * bare CR anywhere in a head, a chunk-size line or a trailer is refused
 * (the server is not the HTTP server it claims to be, and a lenient reader
 * is one more way to read a message differently from the next hop).
 * Refusals come with a sentence for the app (NUL-terminated, at most
 * why_size bytes) that quotes what the server said, truncated, with bytes
 * that are not printable ASCII written as \xNN.
 *
 * Not thread-safe; objects belong to one thread at a time. */
#ifndef XMPPUV_HTTP_H
#define XMPPUV_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* The most bytes a head may have, its blank line included. A response's
 * interim (1xx) heads count towards the same bound. */
#define XMPPUV__HTTP_HEAD_MAX 8192
/* The most header fields a head may have. */
#define XMPPUV__HTTP_FIELDS_MAX 100

/* Offsets into xmppuv__http_head_t.buf (a head is under 64 KB). */
typedef struct xmppuv__http_field {
  uint16_t name, name_len;
  uint16_t value, value_len; /* trimmed of SP and HTAB */
} xmppuv__http_field_t;

typedef struct xmppuv__http_head {
  char buf[XMPPUV__HTTP_HEAD_MAX]; /* the head as it came; once a line is
                                      complete its CR is a NUL (so are the
                                      byte after each value) */
  size_t len;                      /* bytes taken */
  size_t max;                      /* the bound for this head */
  size_t line;                     /* where the line being read starts */
  int cr;                          /* the last byte taken was a CR */
  int status;                      /* 0 until the status line is read */
  size_t status_len;               /* the status line, without its CRLF */
  xmppuv__http_field_t fields[XMPPUV__HTTP_FIELDS_MAX];
  size_t nfields;
  int state; /* 0 reading, 1 complete, < 0 refused with that code */
} xmppuv__http_head_t;

/* Ready for a head of at most XMPPUV__HTTP_HEAD_MAX bytes. */
void xmppuv__http_head_init(xmppuv__http_head_t *h);

/* Bytes of the head as they arrive. *used says how many of them were taken.
 *   0: more are needed (all taken: *used == len);
 *   1: the head is complete; *used bytes were its last (the rest follows it);
 *   XMPPUV_EPROTO: not an HTTP/1.x response head (not HTTP, a malformed
 *     status line, a folded header line, a line that is no header field, a
 *     control character, a bare CR or LF); why says which, quoting it;
 *   XMPPUV_ETOOBIG: over h->max bytes or over XMPPUV__HTTP_FIELDS_MAX
 *     fields, without the end in sight;
 *   XMPPUV_ESTATE: called again after 1 or a refusal.
 * The status line is checked as soon as it is complete (and a first line
 * that does not start as "HTTP/1." as soon as it differs), each header line
 * when it is complete: a wrong answer is refused at once, not at the end. */
int xmppuv__http_head_feed(xmppuv__http_head_t *h, const char *data, size_t len, size_t *used,
                           char *why, size_t why_size);

/* The status code (100..599) once the status line is read, else 0. */
int xmppuv__http_head_status(const xmppuv__http_head_t *h);
/* The status line without its CRLF ("HTTP/1.1 404 Not Found"),
 * NUL-terminated, once read; else NULL. Borrowed from h. */
const char *xmppuv__http_head_status_line(const xmppuv__http_head_t *h, size_t *len);
/* The number of header fields read so far, and the i-th of them in the order
 * they came: name and trimmed value, each NUL-terminated, borrowed from h.
 * 0, or XMPPUV_EINVAL if i is out of range. */
size_t xmppuv__http_head_count(const xmppuv__http_head_t *h);
int xmppuv__http_head_field(const xmppuv__http_head_t *h, size_t i, const char **name,
                            size_t *name_len, const char **value, size_t *value_len);
/* The trimmed value of the first field called name (case-insensitive),
 * NUL-terminated and borrowed from h; NULL if there is none. len may be
 * NULL. */
const char *xmppuv__http_head_get(const xmppuv__http_head_t *h, const char *name, size_t *len);

/* s[0..len) for a sentence: at most max bytes of it, printable ASCII as is,
 * '"' and '\\' and other bytes as \xNN, "..." when cut. Written to out
 * (NUL-terminated, at most out_size bytes). Returns out. */
char *xmppuv__http_quote(char *out, size_t out_size, const char *s, size_t len, size_t max);

/* ---- a whole response ---------------------------------------------------- */

typedef struct xmppuv__http_response {
  xmppuv__http_head_t head;
  size_t body_max;
  size_t interim;    /* bytes of the interim heads skipped */
  int state;         /* see http.c */
  uint64_t left;     /* body or chunk bytes still to come */
  size_t line;       /* bytes of the chunk-size line or trailer so far */
  size_t trailer;    /* bytes of trailer so far */
  int digits;        /* hex digits of the chunk size so far */
  int error;         /* the refusal, sticky */
  char why[200];     /* its sentence, for the calls after it */
  xmppuv__buf_t body;
} xmppuv__http_response_t;

/* body_max: the largest body taken; a bigger one is refused with
 * XMPPUV_ETOOBIG, and no more than body_max + 1 bytes are ever allocated
 * for it. */
void xmppuv__http_response_init(xmppuv__http_response_t *r, size_t body_max);
/* Frees the body (what header() and body() returned is no longer valid). */
void xmppuv__http_response_free(xmppuv__http_response_t *r);

/* Bytes of the response as they arrive.
 *   0: more are needed (all taken);
 *   1: the response is complete: status, header fields and body are
 *     available; bytes after it are ignored (and later calls return 1).
 *     If the status is not 2xx, why holds "the server answered \"<status
 *     line>\"" for the caller to use; else why is "".
 *   XMPPUV_ETOOBIG: a head over XMPPUV__HTTP_HEAD_MAX (interim heads
 *     included), or a body over body_max: a Content-Length or chunk size
 *     that announces more is refused at once, before the body comes;
 *   XMPPUV_EPROTO: not HTTP/1.x, a malformed status line, a folded header
 *     line, a line that is no header field, a bad Content-Length, a transfer
 *     coding other than chunked, a bad chunk size or chunk end;
 *   XMPPUV_ENOMEM.
 * why (NUL-terminated, at most why_size) says why in a sentence for the app.
 * A refusal is final: later calls return it again with the same sentence.
 * 1xx answers other than 101 are skipped (RFC 9110 §15.2); 101, 204 and 304
 * have no body. */
int xmppuv__http_response_feed(xmppuv__http_response_t *r, const char *data, size_t len,
                               char *why, size_t why_size);
/* The connection ended. 1 if the response is complete (a body delimited by
 * the close, or one already complete); XMPPUV_EPROTO otherwise ("the server
 * closed the connection in the middle of its answer"), or the earlier
 * refusal. */
int xmppuv__http_response_eof(xmppuv__http_response_t *r, char *why, size_t why_size);
/* 0 until the final head is complete. */
int xmppuv__http_response_status(const xmppuv__http_response_t *r);
/* The value of the first header field called name (case-insensitive),
 * trimmed and NUL-terminated; NULL if none (or the head is not complete).
 * len may be NULL. Valid until free. */
const char *xmppuv__http_response_header(const xmppuv__http_response_t *r, const char *name,
                                         size_t *len);
/* The body so far (complete once feed or eof returned 1), NUL-terminated;
 * "" if none. Valid until free. */
const char *xmppuv__http_response_body(const xmppuv__http_response_t *r, size_t *len);

/* Appends "GET path HTTP/1.1\r\nHost: host\r\nAccept: accept\r\nConnection:
 * close\r\nUser-Agent: xmppuv\r\n\r\n" to out. host is the Host field's value
 * as is (with ":port" when the port is not the scheme's, IPv6 literals in
 * brackets: the caller's job). 0; XMPPUV_EINVAL if one of them is empty or
 * holds a CR, LF or other control character or a byte over 0x7e, host or
 * path a space, or path does not start with '/' (RFC 9112 §3.2.1
 * origin-form); XMPPUV_ENOMEM. On an error nothing is appended. */
int xmppuv__http_get_request(xmppuv__buf_t *out, const char *host, const char *path,
                             const char *accept);

#endif
