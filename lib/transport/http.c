#include "transport/http.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "xmppuv.h"

_Static_assert(XMPPUV__HTTP_HEAD_MAX <= 65535, "field offsets are 16-bit");

/* The longest piece of the server's words a sentence quotes. */
#define QUOTE_MAX 100
/* The longest chunk-size line (size and extensions): RFC 9112 §7.1.1 sets
 * no bound; ours is generous for a size and a few extensions. */
#define CHUNK_LINE_MAX 1024

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int say(int rc, char *why, size_t why_size, const char *fmt, ...) {
  if (why_size > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_size, fmt, ap);
    va_end(ap);
  }
  return rc;
}

char *xmppuv__http_quote(char *out, size_t out_size, const char *s, size_t len, size_t max) {
  static const char hex[] = "0123456789abcdef";
  if (out_size == 0) return out;
  size_t o = 0, i = 0;
  size_t n = len < max ? len : max;
  for (; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    int plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
    size_t need = plain ? 1 : 4;
    /* Room for this byte, and for "..." and the NUL should it be the last. */
    if (o + need + 4 > out_size) break;
    if (plain) {
      out[o++] = (char)c;
    } else {
      out[o++] = '\\';
      out[o++] = 'x';
      out[o++] = hex[c >> 4];
      out[o++] = hex[c & 15];
    }
  }
  if (i < len && o + 4 <= out_size) {
    memcpy(out + o, "...", 3);
    o += 3;
  }
  out[o] = '\0';
  return out;
}

/* ---- the head ------------------------------------------------------------ */

static int is_tchar(unsigned char c) {
  /* RFC 9110 §5.6.2 */
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int is_ctl(unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; }

void xmppuv__http_head_init(xmppuv__http_head_t *h) {
  h->len = 0;
  h->max = XMPPUV__HTTP_HEAD_MAX;
  h->line = 0;
  h->cr = 0;
  h->status = 0;
  h->status_len = 0;
  h->nfields = 0;
  h->state = 0;
  h->buf[0] = '\0';
}

static int head_refuse(xmppuv__http_head_t *h, int rc) {
  h->state = rc;
  return rc;
}

/* A first line that does not start as "HTTP/1.": quote what came of it,
 * the rest of this input's line included. */
static int not_http(xmppuv__http_head_t *h, const char *rest, size_t rest_len, char *why,
                    size_t why_size) {
  char line[QUOTE_MAX + 1], q[4 * QUOTE_MAX + 8];
  size_t n = h->len - h->line;
  if (n > QUOTE_MAX) n = QUOTE_MAX;
  memcpy(line, h->buf + h->line, n);
  for (size_t i = 0; i < rest_len && n < sizeof line && rest[i] != '\r' && rest[i] != '\n'; i++)
    line[n++] = rest[i];
  xmppuv__http_quote(q, sizeof q, line, n, QUOTE_MAX);
  return head_refuse(h, say(XMPPUV_EPROTO, why, why_size,
                            "the server did not answer in HTTP/1.1 (it said \"%s\")", q));
}

/* The line buf[h->line .. end) (a CRLF after it) as a quote. */
static const char *quote_line(const xmppuv__http_head_t *h, size_t end, char *q, size_t q_size) {
  return xmppuv__http_quote(q, q_size, h->buf + h->line, end - h->line, QUOTE_MAX);
}

/* RFC 9112 §4: HTTP-version SP 3DIGIT SP [ reason-phrase ]; a missing SP
 * after the code is taken too ("HTTP/1.1 200"), as most readers do. */
static int status_line(xmppuv__http_head_t *h, size_t end, char *why, size_t why_size) {
  const char *b = h->buf;
  char q[4 * QUOTE_MAX + 8];
  if (end < 8 || memcmp(b, "HTTP/1.", 7) != 0)
    return head_refuse(h, say(XMPPUV_EPROTO, why, why_size,
                              "the server did not answer in HTTP/1.1 (it said \"%s\")",
                              quote_line(h, end, q, sizeof q)));
  int ok = end >= 12 && b[7] >= '0' && b[7] <= '9' && b[8] == ' ' && b[9] >= '1' && b[9] <= '5' &&
           b[10] >= '0' && b[10] <= '9' && b[11] >= '0' && b[11] <= '9' &&
           (end == 12 || b[12] == ' ');
  if (!ok)
    return head_refuse(h, say(XMPPUV_EPROTO, why, why_size,
                              "the server's HTTP status line is malformed (\"%s\")",
                              quote_line(h, end, q, sizeof q)));
  h->status = (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
  h->status_len = end;
  h->buf[end] = '\0';
  return 0;
}

/* RFC 9112 §5: field-name ":" OWS field-value OWS, no folding (§5.2), no
 * space before the colon (§5.1). */
static int field_line(xmppuv__http_head_t *h, size_t end, char *why, size_t why_size) {
  char *b = h->buf;
  size_t s = h->line;
  char q[4 * QUOTE_MAX + 8];
  if (b[s] == ' ' || b[s] == '\t')
    return head_refuse(h, say(XMPPUV_EPROTO, why, why_size,
                              "the server's answer folds a header line (\"%s\")",
                              quote_line(h, end, q, sizeof q)));
  const char *colon = memchr(b + s, ':', end - s);
  size_t nlen = colon != NULL ? (size_t)(colon - (b + s)) : 0;
  int ok = nlen > 0;
  for (size_t i = 0; ok && i < nlen; i++) ok = is_tchar((unsigned char)b[s + i]);
  if (!ok)
    return head_refuse(h, say(XMPPUV_EPROTO, why, why_size,
                              "the server's answer has a line that is no header field (\"%s\")",
                              quote_line(h, end, q, sizeof q)));
  if (h->nfields == XMPPUV__HTTP_FIELDS_MAX)
    return head_refuse(h, say(XMPPUV_ETOOBIG, why, why_size,
                              "the server's answer has over %u header fields",
                              (unsigned)XMPPUV__HTTP_FIELDS_MAX));
  size_t v = s + nlen + 1, ve = end;
  while (v < ve && (b[v] == ' ' || b[v] == '\t')) v++;
  while (ve > v && (b[ve - 1] == ' ' || b[ve - 1] == '\t')) ve--;
  xmppuv__http_field_t *f = &h->fields[h->nfields++];
  f->name = (uint16_t)s;
  f->name_len = (uint16_t)nlen;
  f->value = (uint16_t)v;
  f->value_len = (uint16_t)(ve - v);
  b[s + nlen] = '\0';
  b[ve] = '\0';
  return 0;
}

/* A line is complete: buf[h->line .. end), then CRLF. 1 at the blank line. */
static int end_of_line(xmppuv__http_head_t *h, size_t end, char *why, size_t why_size) {
  h->buf[end] = '\0';
  if (h->status == 0) return status_line(h, end, why, why_size);
  if (end == h->line) return 1;
  return field_line(h, end, why, why_size);
}

int xmppuv__http_head_feed(xmppuv__http_head_t *h, const char *data, size_t len, size_t *used,
                           char *why, size_t why_size) {
  *used = 0;
  if (why_size > 0) why[0] = '\0';
  if (h->state != 0)
    return say(XMPPUV_ESTATE, why, why_size, "the HTTP head was already read to its end");
  /* A zeroed head is one with the default bound. */
  if (h->max == 0 || h->max > XMPPUV__HTTP_HEAD_MAX) h->max = XMPPUV__HTTP_HEAD_MAX;
  char q[4 * QUOTE_MAX + 8];
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)data[i];
    *used = i + 1;
    h->buf[h->len++] = (char)c;
    if (h->cr) {
      h->cr = 0;
      if (c != '\n')
        return head_refuse(h, say(XMPPUV_EPROTO, why, why_size,
                                  "the server's answer has a bare CR in a line (\"%s\")",
                                  quote_line(h, h->len, q, sizeof q)));
      int rc = end_of_line(h, h->len - 2, why, why_size);
      if (rc != 0) {
        if (rc == 1) h->state = 1;
        return rc;
      }
      h->line = h->len;
    } else if (c == '\r') {
      h->cr = 1;
    } else if (c == '\n') {
      return head_refuse(h, say(XMPPUV_EPROTO, why, why_size,
                                "the server's answer ends a line with a bare LF, not CRLF "
                                "(\"%s\")",
                                quote_line(h, h->len - 1, q, sizeof q)));
    } else if (h->status == 0 && h->len <= 7 && c != (unsigned char)"HTTP/1."[h->len - 1]) {
      return not_http(h, data + i + 1, len - i - 1, why, why_size);
    } else if (is_ctl(c)) {
      return head_refuse(h, say(XMPPUV_EPROTO, why, why_size,
                                "the server's answer has a control character in %s (\"%s\")",
                                h->status == 0 ? "its status line" : "a header line",
                                quote_line(h, h->len, q, sizeof q)));
    }
    if (h->len >= h->max)
      return head_refuse(h, say(XMPPUV_ETOOBIG, why, why_size,
                                "the server's HTTP header is over %u KB",
                                (unsigned)(XMPPUV__HTTP_HEAD_MAX / 1024)));
  }
  return 0;
}

int xmppuv__http_head_status(const xmppuv__http_head_t *h) { return h->status; }

const char *xmppuv__http_head_status_line(const xmppuv__http_head_t *h, size_t *len) {
  if (h->status == 0) return NULL;
  if (len != NULL) *len = h->status_len;
  return h->buf;
}

size_t xmppuv__http_head_count(const xmppuv__http_head_t *h) { return h->nfields; }

int xmppuv__http_head_field(const xmppuv__http_head_t *h, size_t i, const char **name,
                            size_t *name_len, const char **value, size_t *value_len) {
  if (i >= h->nfields) return XMPPUV_EINVAL;
  const xmppuv__http_field_t *f = &h->fields[i];
  if (name != NULL) *name = h->buf + f->name;
  if (name_len != NULL) *name_len = f->name_len;
  if (value != NULL) *value = h->buf + f->value;
  if (value_len != NULL) *value_len = f->value_len;
  return 0;
}

const char *xmppuv__http_head_get(const xmppuv__http_head_t *h, const char *name, size_t *len) {
  size_t nlen = strlen(name);
  for (size_t i = 0; i < h->nfields; i++) {
    const xmppuv__http_field_t *f = &h->fields[i];
    if (f->name_len == nlen && strncasecmp(h->buf + f->name, name, nlen) == 0) {
      if (len != NULL) *len = f->value_len;
      return h->buf + f->value;
    }
  }
  return NULL;
}

/* ---- a response ---------------------------------------------------------- */

enum {
  R_HEAD,      /* reading a head */
  R_LENGTH,    /* a body of Content-Length bytes: left to come */
  R_CLOSE,     /* a body delimited by the close */
  R_SIZE,      /* a chunk size: hex digits */
  R_SIZE_WS,   /* blanks after the size */
  R_EXT,       /* chunk extensions, ignored (RFC 9112 §7.1.1) */
  R_SIZE_LF,   /* the LF of the chunk-size line */
  R_DATA,      /* chunk data: left to come */
  R_DATA_CR,   /* the CRLF after chunk data */
  R_DATA_LF,
  R_TRAILER,   /* trailer fields, skipped (RFC 9112 §7.1.2) */
  R_TRAILER_LF,
  R_DONE,
  R_FAILED
};

void xmppuv__http_response_init(xmppuv__http_response_t *r, size_t body_max) {
  xmppuv__http_head_init(&r->head);
  r->body_max = body_max;
  r->interim = 0;
  r->state = R_HEAD;
  r->left = 0;
  r->line = 0;
  r->trailer = 0;
  r->digits = 0;
  r->error = 0;
  r->why[0] = '\0';
  r->body = (xmppuv__buf_t)XMPPUV__BUF_INIT;
}

void xmppuv__http_response_free(xmppuv__http_response_t *r) { xmppuv__buf_free(&r->body); }

/* Record a refusal: it is returned again, with its sentence, by every later
 * call. */
#if defined(__GNUC__)
__attribute__((format(printf, 5, 6)))
#endif
static int fail(xmppuv__http_response_t *r, int rc, char *why, size_t why_size, const char *fmt,
                ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->why, sizeof r->why, fmt, ap);
  va_end(ap);
  r->error = rc;
  r->state = R_FAILED;
  return say(rc, why, why_size, "%s", r->why);
}

/* The body's memory grows by doubling, but never past its bound (body_max,
 * or what a Content-Length announced) + 1 for the NUL: xmppuv__buf_reserve
 * would double past it, so the growth is done here, through the same
 * allocator. The callers have checked that n fits within the bound. */
static int body_append(xmppuv__http_response_t *r, const char *data, size_t n) {
  xmppuv__buf_t *b = &r->body;
  if (n == 0) return 0;
  if (b->cap - b->len <= n) {
    size_t need = b->len + n + 1;
    size_t bound = r->state == R_LENGTH ? b->len + (size_t)r->left : r->body_max;
    size_t cap = b->cap < 128 ? 256 : b->cap > SIZE_MAX / 2 ? SIZE_MAX : b->cap * 2;
    if (cap - 1 > bound) cap = bound + 1;
    if (cap < need) cap = need;
    char *p = xmppuv__realloc(b->data, cap);
    if (p == NULL) return XMPPUV_ENOMEM;
    b->data = p;
    b->cap = cap;
  }
  memcpy(b->data + b->len, data, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

static int too_big(xmppuv__http_response_t *r, char *why, size_t why_size) {
  return fail(r, XMPPUV_ETOOBIG, why, why_size, "the server's answer is over %zu bytes",
              r->body_max);
}

/* A Content-Length field value: 1*DIGIT, or a list of the same number
 * (RFC 9110 §8.6). *v saturates at UINT64_MAX. 0 or -1 (malformed). */
static int content_length(const char *s, size_t len, uint64_t *v, int *seen) {
  size_t i = 0;
  for (;;) {
    while (i < len && (s[i] == ' ' || s[i] == '\t')) i++;
    if (i == len || s[i] < '0' || s[i] > '9') return -1;
    uint64_t n = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
      unsigned d = (unsigned)(s[i++] - '0');
      n = n > (UINT64_MAX - d) / 10 ? UINT64_MAX : n * 10 + d;
    }
    if (*seen && n != *v) return -1;
    *v = n;
    *seen = 1;
    while (i < len && (s[i] == ' ' || s[i] == '\t')) i++;
    if (i == len) return 0;
    if (s[i++] != ',') return -1;
  }
}

/* Is the Transfer-Encoding exactly "chunked" (all its fields together)?
 * 1 yes, 0 there is none, -1 something else (gzip, chunked twice, ...). */
static int transfer_encoding(const xmppuv__http_head_t *h, const char **said, size_t *said_len) {
  int fields = 0, tokens = 0, chunked = 0;
  for (size_t f = 0; f < h->nfields; f++) {
    const char *name, *v;
    size_t nlen, vlen;
    xmppuv__http_head_field(h, f, &name, &nlen, &v, &vlen);
    if (nlen != 17 || strncasecmp(name, "Transfer-Encoding", 17) != 0) continue;
    if (fields++ == 0) *said = v, *said_len = vlen;
    for (size_t i = 0; i < vlen;) {
      while (i < vlen && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
      size_t s = i;
      while (i < vlen && v[i] != ',') i++;
      size_t e = i;
      while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
      if (e == s) continue;
      tokens++;
      if (e - s == 7 && strncasecmp(v + s, "chunked", 7) == 0) chunked++;
    }
  }
  if (fields == 0) return 0;
  return tokens == 1 && chunked == 1 ? 1 : -1;
}

static void answered(const xmppuv__http_response_t *r, char *why, size_t why_size) {
  if (r->head.status >= 200 && r->head.status < 300) return;
  char q[4 * QUOTE_MAX + 8];
  xmppuv__http_quote(q, sizeof q, r->head.buf, r->head.status_len, QUOTE_MAX);
  say(0, why, why_size, "the server answered \"%s\"", q);
}

/* The head is complete: an interim one to skip, or how the body is framed
 * (RFC 9112 §6.3). */
static int head_complete(xmppuv__http_response_t *r, char *why, size_t why_size) {
  xmppuv__http_head_t *h = &r->head;
  int status = h->status;
  char q[4 * QUOTE_MAX + 8];
  if (status >= 100 && status < 200 && status != 101) {
    /* RFC 9110 §15.2: interim; the final answer follows. Every head counts
     * towards one bound. */
    r->interim += h->len;
    if (r->interim >= XMPPUV__HTTP_HEAD_MAX)
      return fail(r, XMPPUV_ETOOBIG, why, why_size, "the server's HTTP header is over %u KB",
                  (unsigned)(XMPPUV__HTTP_HEAD_MAX / 1024));
    xmppuv__http_head_init(h);
    h->max = XMPPUV__HTTP_HEAD_MAX - r->interim;
    return 0;
  }
  /* RFC 9110 §15.2.2, §15.3.5, §15.4.5: no content; after a 101 the bytes
   * are another protocol's. */
  if (status == 101 || status == 204 || status == 304) {
    r->state = R_DONE;
    return 1;
  }
  const char *te = NULL;
  size_t te_len = 0;
  int chunked = transfer_encoding(h, &te, &te_len);
  if (chunked < 0)
    return fail(r, XMPPUV_EPROTO, why, why_size,
                "the server sent its answer in a transfer coding we did not ask for "
                "(Transfer-Encoding: \"%s\")",
                xmppuv__http_quote(q, sizeof q, te, te_len, QUOTE_MAX));
  if (chunked > 0) {
    /* RFC 9112 §6.3: chunked wins over a Content-Length. */
    r->state = R_SIZE;
    return 0;
  }
  uint64_t length = 0;
  int seen = 0;
  for (size_t f = 0; f < h->nfields; f++) {
    const char *name, *v;
    size_t nlen, vlen;
    xmppuv__http_head_field(h, f, &name, &nlen, &v, &vlen);
    if (nlen != 14 || strncasecmp(name, "Content-Length", 14) != 0) continue;
    if (content_length(v, vlen, &length, &seen) != 0)
      return fail(r, XMPPUV_EPROTO, why, why_size,
                  "the server's Content-Length is malformed (\"%s\")",
                  xmppuv__http_quote(q, sizeof q, v, vlen, QUOTE_MAX));
  }
  if (!seen) {
    r->state = R_CLOSE;
    return 0;
  }
  if (length > r->body_max) {
    if (length == UINT64_MAX)
      return too_big(r, why, why_size);
    return fail(r, XMPPUV_ETOOBIG, why, why_size,
                "the server announces an answer of %llu bytes, over the limit of %zu",
                (unsigned long long)length, r->body_max);
  }
  if (length == 0) {
    r->state = R_DONE;
    return 1;
  }
  r->left = length;
  r->state = R_LENGTH;
  return 0;
}

static int hex_digit(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int bad_chunk(xmppuv__http_response_t *r, char *why, size_t why_size, const char *what) {
  return fail(r, XMPPUV_EPROTO, why, why_size, "the server's chunked answer has %s", what);
}

/* One byte of the chunked framing (not chunk data). 0 to go on, 1 at the
 * end of the body, or a refusal. */
static int chunk_byte(xmppuv__http_response_t *r, unsigned char c, char *why, size_t why_size) {
  switch (r->state) {
    case R_SIZE: {
      int d = hex_digit(c);
      if (d >= 0) {
        r->digits++;
        if (r->left > (UINT64_MAX - (unsigned)d) / 16) return too_big(r, why, why_size);
        r->left = r->left * 16 + (unsigned)d;
        /* Refuse at once a chunk that would take the body over its bound. */
        if (r->left > r->body_max - r->body.len) return too_big(r, why, why_size);
        break;
      }
      if (r->digits == 0) return bad_chunk(r, why, why_size, "a bad chunk size");
      if (c == ' ' || c == '\t') r->state = R_SIZE_WS;
      else if (c == ';') r->state = R_EXT;
      else if (c == '\r') r->state = R_SIZE_LF;
      else return bad_chunk(r, why, why_size, "a bad chunk size");
      break;
    }
    case R_SIZE_WS:
      if (c == ';') r->state = R_EXT;
      else if (c == '\r') r->state = R_SIZE_LF;
      else if (c != ' ' && c != '\t') return bad_chunk(r, why, why_size, "a bad chunk size");
      break;
    case R_EXT:
      if (c == '\r') r->state = R_SIZE_LF;
      else if (is_ctl(c)) return bad_chunk(r, why, why_size, "a bad chunk extension");
      break;
    case R_SIZE_LF:
      if (c != '\n') return bad_chunk(r, why, why_size, "a chunk-size line without CRLF");
      r->line = 0;
      r->digits = 0;
      r->state = r->left == 0 ? R_TRAILER : R_DATA;
      return 0;
    case R_DATA_CR:
      if (c != '\r') return bad_chunk(r, why, why_size, "a chunk not followed by CRLF");
      r->state = R_DATA_LF;
      return 0;
    case R_DATA_LF:
      if (c != '\n') return bad_chunk(r, why, why_size, "a chunk not followed by CRLF");
      r->state = R_SIZE;
      r->left = 0;
      return 0;
    case R_TRAILER:
      if (++r->trailer > XMPPUV__HTTP_HEAD_MAX)
        return fail(r, XMPPUV_ETOOBIG, why, why_size, "the server's HTTP trailer is over %u KB",
                    (unsigned)(XMPPUV__HTTP_HEAD_MAX / 1024));
      if (c == '\r') r->state = R_TRAILER_LF;
      else if (is_ctl(c)) return bad_chunk(r, why, why_size, "a bad trailer line");
      else r->line++;
      return 0;
    case R_TRAILER_LF:
      if (c != '\n') return bad_chunk(r, why, why_size, "a trailer line without CRLF");
      if (r->line == 0) {
        r->state = R_DONE;
        return 1;
      }
      r->line = 0;
      r->state = R_TRAILER;
      return 0;
    default:
      return bad_chunk(r, why, why_size, "an error of ours"); /* not reached */
  }
  /* The chunk-size line. */
  if (++r->line > CHUNK_LINE_MAX)
    return fail(r, XMPPUV_ETOOBIG, why, why_size,
                "the server's chunked answer has a chunk-size line over %u bytes",
                (unsigned)CHUNK_LINE_MAX);
  return 0;
}

int xmppuv__http_response_feed(xmppuv__http_response_t *r, const char *data, size_t len,
                               char *why, size_t why_size) {
  if (why_size > 0) why[0] = '\0';
  if (r->state == R_FAILED) return say(r->error, why, why_size, "%s", r->why);
  size_t i = 0;
  while (r->state != R_DONE) {
    if (r->state == R_HEAD) {
      size_t used = 0;
      int rc = xmppuv__http_head_feed(&r->head, data + i, len - i, &used, r->why, sizeof r->why);
      i += used;
      if (rc < 0) {
        r->error = rc;
        r->state = R_FAILED;
        return say(rc, why, why_size, "%s", r->why);
      }
      if (rc == 0) return 0;
      rc = head_complete(r, why, why_size);
      if (rc < 0) return rc;
      continue;
    }
    if (i == len) return 0;
    if (r->state == R_LENGTH || r->state == R_DATA) {
      size_t n = len - i;
      if (n > r->left) n = (size_t)r->left;
      int rc = body_append(r, data + i, n);
      if (rc != 0) return fail(r, rc, why, why_size, "out of memory for the server's answer");
      i += n;
      r->left -= n;
      if (r->left == 0) r->state = r->state == R_LENGTH ? R_DONE : R_DATA_CR;
      continue;
    }
    if (r->state == R_CLOSE) {
      size_t n = len - i;
      if (n > r->body_max - r->body.len) return too_big(r, why, why_size);
      int rc = body_append(r, data + i, n);
      if (rc != 0) return fail(r, rc, why, why_size, "out of memory for the server's answer");
      return 0;
    }
    int rc = chunk_byte(r, (unsigned char)data[i++], why, why_size);
    if (rc < 0) return rc;
  }
  answered(r, why, why_size);
  return 1;
}

int xmppuv__http_response_eof(xmppuv__http_response_t *r, char *why, size_t why_size) {
  if (why_size > 0) why[0] = '\0';
  if (r->state == R_FAILED) return say(r->error, why, why_size, "%s", r->why);
  if (r->state == R_CLOSE) r->state = R_DONE;
  if (r->state == R_DONE) {
    answered(r, why, why_size);
    return 1;
  }
  if (r->state == R_HEAD && r->head.len == 0 && r->interim == 0)
    return fail(r, XMPPUV_EPROTO, why, why_size,
                "the server closed the connection without answering");
  return fail(r, XMPPUV_EPROTO, why, why_size,
              "the server closed the connection in the middle of its answer");
}

int xmppuv__http_response_status(const xmppuv__http_response_t *r) {
  return r->state == R_HEAD || (r->state == R_FAILED && r->head.state != 1)
             ? 0
             : r->head.status;
}

const char *xmppuv__http_response_header(const xmppuv__http_response_t *r, const char *name,
                                         size_t *len) {
  if (xmppuv__http_response_status(r) == 0) return NULL;
  return xmppuv__http_head_get(&r->head, name, len);
}

const char *xmppuv__http_response_body(const xmppuv__http_response_t *r, size_t *len) {
  if (len != NULL) *len = r->body.len;
  return r->body.data != NULL ? r->body.data : "";
}

/* Printable ASCII (and space only where allowed), nothing else. */
static int field_ok(const char *s, int space_ok) {
  if (s == NULL || s[0] == '\0') return 0;
  for (; *s != '\0'; s++) {
    unsigned char c = (unsigned char)*s;
    if (c < 0x20 || c > 0x7e || (c == ' ' && !space_ok)) return 0;
  }
  return 1;
}

int xmppuv__http_get_request(xmppuv__buf_t *out, const char *host, const char *path,
                             const char *accept) {
  if (!field_ok(host, 0) || !field_ok(path, 0) || path[0] != '/' || !field_ok(accept, 1))
    return XMPPUV_EINVAL;
  size_t old = out->len;
  int rc = xmppuv__buf_append_str(out, "GET ");
  if (rc == 0) rc = xmppuv__buf_append_str(out, path);
  if (rc == 0) rc = xmppuv__buf_append_str(out, " HTTP/1.1\r\nHost: ");
  if (rc == 0) rc = xmppuv__buf_append_str(out, host);
  if (rc == 0) rc = xmppuv__buf_append_str(out, "\r\nAccept: ");
  if (rc == 0) rc = xmppuv__buf_append_str(out, accept);
  if (rc == 0)
    rc = xmppuv__buf_append_str(out, "\r\nConnection: close\r\nUser-Agent: xmppuv\r\n\r\n");
  if (rc != 0) {
    out->len = old;
    if (out->data != NULL) out->data[old] = '\0';
  }
  return rc;
}
