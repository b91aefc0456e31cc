#include "transport/ws_codec.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h> /* getentropy */

#include <wslay/wslay.h>

#include "util/alloc.h"
#include "xmppuv.h"

/* Where the scan of our outgoing XML is (see split()). */
enum { S_TEXT, S_LT, S_TAG, S_QUOTE };

struct xmppuv__ws_codec {
  wslay_event_context_ptr ctx;
  size_t max_message;
  /* Set for the duration of a call: what wslay's callbacks read from and
   * append to. */
  const char *in;
  size_t in_len;
  xmppuv__buf_t *msgs;
  xmppuv__buf_t *out;
  int out_failed; /* ENOMEM while appending to out */
  int binary;     /* the server sent a binary message */
  /* Masking keys (RFC 6455 §5.3: unpredictable): one getentropy() per 64
   * frames, not one per frame. */
  unsigned char pool[256];
  size_t pool_used;
  /* The top-level element being split out of our XML. */
  xmppuv__buf_t pending; /* its start, when it came in an earlier write */
  int in_element;
  int state;
  unsigned depth;
  int end_tag;
  char last; /* the last non-space character of the tag */
  char quote;
  /* The element's own start tag: where its name ends (from the '<'),
   * whether it declares its default namespace, the attribute name read. */
  size_t name_end;
  int in_root_tag;
  int has_ns;        /* xmlns= */
  int has_stream_ns; /* xmlns:stream= */
  int after_space;
  char word[16];
  size_t word_len;
};

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *ud) {
  (void)flags;
  xmppuv__ws_codec_t *c = ud;
  if (c->in_len == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  size_t n = len < c->in_len ? len : c->in_len;
  memcpy(buf, c->in, n);
  c->in += n;
  c->in_len -= n;
  return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *ud) {
  (void)flags;
  xmppuv__ws_codec_t *c = ud;
  if (c->out == NULL || xmppuv__buf_append(c->out, data, len) != 0) {
    c->out_failed = 1;
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  return (ssize_t)len;
}

static int next_key(xmppuv__ws_codec_t *c, unsigned char key[4]);

static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *ud) {
  (void)ctx;
  return len == 4 && next_key(ud, buf) == 0 ? 0 : -1;
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *ud) {
  xmppuv__ws_codec_t *c = ud;
  if (c->binary) return;
  if (arg->opcode == WSLAY_TEXT_FRAME) {
    if (c->msgs == NULL || xmppuv__buf_append(c->msgs, arg->msg, arg->msg_length) != 0) {
      c->out_failed = 1;
      wslay_event_shutdown_read(ctx);
    }
  } else if (arg->opcode == WSLAY_BINARY_FRAME) {
    /* RFC 7395 §3.2: XMPP goes in text messages. */
    static const char reason[] = "binary frames are not XMPP";
    c->binary = 1;
    wslay_event_queue_close(ctx, XMPPUV__WS_UNSUPPORTED_DATA, (const uint8_t *)reason,
                            sizeof reason - 1);
    wslay_event_shutdown_read(ctx);
  }
  /* Pings, pongs and Close: wslay answers them. */
}

int xmppuv__ws_codec_new(size_t max_message, xmppuv__ws_codec_t **out) {
  *out = NULL;
  xmppuv__ws_codec_t *c = xmppuv__calloc(1, sizeof *c);
  if (c == NULL) return XMPPUV_ENOMEM;
  struct wslay_event_callbacks cbs = {recv_cb, send_cb, genmask_cb, NULL, NULL, NULL, on_msg};
  if (wslay_event_context_client_init(&c->ctx, &cbs, c) != 0) {
    xmppuv__free(c);
    return XMPPUV_ENOMEM;
  }
  c->max_message = max_message;
  c->pool_used = sizeof c->pool;
  wslay_event_config_set_max_recv_msg_length(c->ctx, max_message);
  *out = c;
  return 0;
}

void xmppuv__ws_codec_free(xmppuv__ws_codec_t *c) {
  if (c == NULL) return;
  wslay_event_context_free(c->ctx);
  xmppuv__buf_free(&c->pending);
  xmppuv__secure_zero(c->pool, sizeof c->pool);
  xmppuv__free(c);
}

/* Hand what wslay queued to out. */
static int flush(xmppuv__ws_codec_t *c, xmppuv__buf_t *out) {
  c->out = out;
  c->out_failed = 0;
  int r = wslay_event_send(c->ctx);
  c->out = NULL;
  if (c->out_failed) return XMPPUV_ENOMEM;
  if (r == WSLAY_ERR_NOMEM) return XMPPUV_ENOMEM;
  /* The mask callback failed: wslay says so only as a callback failure. */
  if (r == WSLAY_ERR_CALLBACK_FAILURE) return XMPPUV_ECRYPTO;
  return 0;
}

const char *xmppuv__ws_close_name(uint16_t code) {
  switch (code) {
    case 1000: return "1000 (normal closure)";
    case 1001: return "1001 (going away)";
    case 1002: return "1002 (protocol error)";
    case 1003: return "1003 (unsupported data)";
    case 1005: return "no code";
    case 1006: return "1006 (abnormal closure)";
    case 1007: return "1007 (invalid data)";
    case 1008: return "1008 (policy violation)";
    case 1009: return "1009 (message too big)";
    case 1011: return "1011 (internal error)";
    case 1012: return "1012 (service restart)";
    case 1013: return "1013 (try again later)";
    default: return code >= 3000 && code < 5000 ? "an application-defined code" : "an unknown code";
  }
}

int xmppuv__ws_codec_read(xmppuv__ws_codec_t *c, const char *data, size_t len,
                          xmppuv__buf_t *msgs, xmppuv__buf_t *out, uint16_t *code, char *why,
                          size_t why_size) {
  *code = 0;
  if (why_size > 0) why[0] = '\0';
  c->in = data;
  c->in_len = len;
  c->msgs = msgs;
  c->out_failed = 0;
  int r = wslay_event_recv(c->ctx);
  int nomem = c->out_failed || r == WSLAY_ERR_NOMEM;
  c->in = NULL;
  c->in_len = 0;
  c->msgs = NULL;
  int rc = flush(c, out);
  if (nomem || rc == XMPPUV_ENOMEM) return XMPPUV_ENOMEM;
  if (c->binary) {
    *code = XMPPUV__WS_UNSUPPORTED_DATA;
    snprintf(why, why_size,
             "the server sent a binary WebSocket message (XMPP uses text ones, RFC 7395); "
             "closed with 1003");
    return XMPPUV_EPROTO;
  }
  if (wslay_event_get_close_received(c->ctx)) {
    *code = wslay_event_get_status_code_received(c->ctx);
    return 1;
  }
  if (r == 0 && wslay_event_get_read_enabled(c->ctx)) return 0;
  *code = wslay_event_get_status_code_sent(c->ctx);
  if (*code == XMPPUV__WS_TOO_BIG) {
    snprintf(why, why_size, "the server sent a WebSocket message over %zu bytes; closed with 1009",
             c->max_message);
    return XMPPUV_ELIMIT;
  }
  if (*code == XMPPUV__WS_INVALID_DATA)
    snprintf(why, why_size,
             "the server sent a WebSocket text message that is not UTF-8; closed with 1007");
  else
    snprintf(why, why_size, "the server broke the WebSocket framing (RFC 6455); closed with %s",
             xmppuv__ws_close_name(*code != 0 ? *code : XMPPUV__WS_PROTOCOL_ERROR));
  return XMPPUV_EPROTO;
}

static int is_space(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; }

/* A masking key (RFC 6455 §5.3: unpredictable): one getentropy() per 64
 * frames, not one per frame. */
static int next_key(xmppuv__ws_codec_t *c, unsigned char key[4]) {
  if (c->pool_used + 4 > sizeof c->pool) {
    if (getentropy(c->pool, sizeof c->pool) != 0) return XMPPUV_ECRYPTO;
    c->pool_used = 0;
  }
  memcpy(key, c->pool + c->pool_used, 4);
  memset(c->pool + c->pool_used, 0, 4); /* a key is used once */
  c->pool_used += 4;
  return 0;
}

/* p[0..n) masked onto dst, the key's phase given by at (bytes already
 * masked in this frame); four bytes at a time. */
static void mask_copy(unsigned char *dst, const char *p, size_t n, const unsigned char key[4],
                      size_t at) {
  unsigned char k[4];
  for (size_t i = 0; i < 4; i++) k[i] = key[(at + i) & 3];
  uint32_t k32;
  memcpy(&k32, k, 4);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    uint32_t v;
    memcpy(&v, p + i, 4);
    v ^= k32;
    memcpy(dst + i, &v, 4);
  }
  for (; i < n; i++) dst[i] = (unsigned char)(p[i] ^ k[i & 3]);
}

/* One element as a masked, final text frame, written here rather than
 * through wslay's queue (which would copy it and mask it a byte at a
 * time); wslay's own frames (pongs, Close) are always written out whole
 * before, so the two never interleave. RFC 7395 §3.3.3: every message
 * stands alone, so an element declares the namespaces a <stream:stream>
 * would have declared for it: a stanza jabber:client (where the
 * serializer left it out), a stream error the stream: prefix. */
static int emit(xmppuv__ws_codec_t *c, const char *p, size_t n, xmppuv__buf_t *out) {
  static const char client_ns[] = " xmlns='jabber:client'";
  static const char stream_ns[] = " xmlns:stream='http://etherx.jabber.org/streams'";
  if (wslay_event_get_close_sent(c->ctx) || !wslay_event_get_write_enabled(c->ctx))
    return XMPPUV_ESTATE;
  int stream_prefix = c->name_end > 8 && memcmp(p + 1, "stream:", 7) == 0;
  const char *ns = stream_prefix ? stream_ns : client_ns;
  size_t ns_len = stream_prefix ? sizeof stream_ns - 1 : sizeof client_ns - 1;
  size_t split = n;
  if (!(stream_prefix ? c->has_stream_ns : c->has_ns) && c->name_end <= n)
    split = c->name_end;
  else
    ns_len = 0;
  size_t total = n + ns_len;
  unsigned char head[14];
  size_t hl = 2;
  head[0] = 0x80 | WSLAY_TEXT_FRAME;
  if (total < 126) {
    head[1] = (unsigned char)(0x80 | total);
  } else if (total < 65536) {
    head[1] = 0x80 | 126;
    head[2] = (unsigned char)(total >> 8);
    head[3] = (unsigned char)total;
    hl = 4;
  } else {
    head[1] = 0x80 | 127;
    for (size_t i = 0; i < 8; i++) head[2 + i] = (unsigned char)((uint64_t)total >> (56 - 8 * i));
    hl = 10;
  }
  int rc = next_key(c, head + hl);
  if (rc != 0) return rc;
  const unsigned char *key = head + hl;
  hl += 4;
  rc = xmppuv__buf_reserve(out, hl + total);
  if (rc != 0) return rc;
  unsigned char *dst = (unsigned char *)out->data + out->len;
  memcpy(dst, head, hl);
  dst += hl;
  mask_copy(dst, p, split, key, 0);
  mask_copy(dst + split, ns, ns_len, key, split);
  mask_copy(dst + split + ns_len, p + split, n - split, key, split + ns_len);
  out->len += hl + total;
  out->data[out->len] = '\0';
  return 0;
}

/* The attribute names of the element's start tag, read for xmlns=. */
static void root_tag_char(xmppuv__ws_codec_t *c, char ch, size_t offset) {
  if (is_space(ch) || ch == '/' || ch == '>') {
    if (c->name_end == 0) c->name_end = offset;
    c->after_space = 1;
  } else if (ch == '=') {
    c->has_ns |= c->word_len == 5 && memcmp(c->word, "xmlns", 5) == 0;
    c->has_stream_ns |= c->word_len == 12 && memcmp(c->word, "xmlns:stream", 12) == 0;
    c->word_len = 0;
  } else {
    if (c->after_space) c->word_len = 0;
    c->after_space = 0;
    if (c->word_len < sizeof c->word) c->word[c->word_len++] = ch;
    else c->word_len = sizeof c->word; /* longer than "xmlns": never it */
  }
}

/* Split our XML at the ends of top-level elements. It is the serializer's
 * own output: no comments, CDATA or processing instructions, attribute
 * values quoted, '<' always escaped; a '>' may appear in text and in
 * attribute values, so quotes are followed. */
int xmppuv__ws_codec_write(xmppuv__ws_codec_t *c, const char *xml, size_t len,
                           xmppuv__buf_t *out) {
  if (wslay_event_get_close_sent(c->ctx) || !wslay_event_get_write_enabled(c->ctx))
    return XMPPUV_ESTATE;
  size_t start = 0; /* where the current element starts in xml, if in_element */
  for (size_t i = 0; i < len; i++) {
    /* Where nothing can end a tag or an element, jump to where something
     * can (most of a stanza is text and attribute values). */
    if (c->state == S_TEXT && c->in_element) {
      const char *lt = memchr(xml + i, '<', len - i);
      if (lt == NULL) break;
      i = (size_t)(lt - xml);
    } else if (c->state == S_QUOTE) {
      const char *q = memchr(xml + i, c->quote, len - i);
      if (q == NULL) break;
      i = (size_t)(q - xml);
    } else if (c->state == S_TAG && !c->in_root_tag) {
      while (i < len && xml[i] != '>' && xml[i] != '\'' && xml[i] != '"') {
        if (!is_space(xml[i])) c->last = xml[i];
        i++;
      }
      if (i == len) break;
    }
    char ch = xml[i];
    switch (c->state) {
      case S_TEXT:
        if (ch == '<') {
          if (!c->in_element) {
            c->in_element = 1;
            start = i;
          }
          c->state = S_LT;
        } else if (!c->in_element && !is_space(ch)) {
          return XMPPUV_EXML;
        }
        break;
      case S_LT:
        if (ch == '?' || ch == '!') return XMPPUV_EXML;
        c->end_tag = ch == '/';
        c->last = ch;
        c->state = S_TAG;
        if (c->depth == 0 && !c->end_tag) {
          c->in_root_tag = 1;
          c->name_end = 0;
          c->has_ns = c->has_stream_ns = 0;
          c->word_len = 0;
          c->after_space = 0;
          root_tag_char(c, ch, c->pending.len + (i - start));
        }
        break;
      case S_TAG:
        if (c->in_root_tag) root_tag_char(c, ch, c->pending.len + (i - start));
        if (ch == '\'' || ch == '"') {
          c->quote = ch;
          c->state = S_QUOTE;
        } else if (ch == '>') {
          c->state = S_TEXT;
          c->in_root_tag = 0;
          if (c->end_tag && c->depth == 0) {
            /* The end of an RFC 6120 stream (the SM engine's, after a
             * stream error of its own) is <close/> here (RFC 7395 §3.6). */
            static const char end[] = "</stream:stream>";
            static const char close_el[] = "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>";
            size_t tag_len = c->pending.len + (i + 1 - start);
            int rc = tag_len == sizeof end - 1 ? xmppuv__buf_append(&c->pending, xml + start,
                                                                    i + 1 - start)
                                               : XMPPUV_EXML;
            if (rc == 0 && memcmp(c->pending.data, end, tag_len) != 0) rc = XMPPUV_EXML;
            xmppuv__buf_clear(&c->pending);
            c->in_element = 0;
            if (rc == 0) {
              c->has_ns = 1; /* as it is */
              rc = emit(c, close_el, sizeof close_el - 1, out);
            }
            if (rc != 0) return rc;
            continue;
          }
          if (c->end_tag) {
            c->depth--;
          } else if (c->last != '/') {
            c->depth++;
          }
          if (c->depth == 0) {
            int rc;
            c->in_element = 0;
            if (c->pending.len > 0) {
              rc = xmppuv__buf_append(&c->pending, xml + start, i + 1 - start);
              if (rc == 0) rc = emit(c, c->pending.data, c->pending.len, out);
              xmppuv__buf_clear(&c->pending);
            } else {
              rc = emit(c, xml + start, i + 1 - start, out);
            }
            if (rc != 0) return rc;
          }
        } else if (!is_space(ch)) {
          c->last = ch;
        }
        break;
      case S_QUOTE:
        if (ch == c->quote) {
          if (c->in_root_tag) c->after_space = 0;
          c->state = S_TAG;
          c->last = ch;
        }
        break;
    }
  }
  /* An element that goes on in the next write. */
  if (c->in_element) return xmppuv__buf_append(&c->pending, xml + start, len - start);
  return 0;
}

int xmppuv__ws_codec_ping(xmppuv__ws_codec_t *c, xmppuv__buf_t *out) {
  if (wslay_event_get_close_sent(c->ctx)) return XMPPUV_ESTATE;
  struct wslay_event_msg msg = {WSLAY_PING, NULL, 0};
  int r = wslay_event_queue_msg(c->ctx, &msg);
  if (r == WSLAY_ERR_NOMEM) return XMPPUV_ENOMEM;
  if (r != 0) return XMPPUV_ESTATE;
  return flush(c, out);
}

int xmppuv__ws_codec_close(xmppuv__ws_codec_t *c, uint16_t code, xmppuv__buf_t *out) {
  int r = wslay_event_queue_close(c->ctx, code, NULL, 0);
  if (r == WSLAY_ERR_NOMEM) return XMPPUV_ENOMEM;
  /* Already closing: nothing more to say. */
  if (r != 0) return 0;
  return flush(c, out);
}

int xmppuv__ws_codec_close_sent(const xmppuv__ws_codec_t *c) {
  return wslay_event_get_close_sent(c->ctx) || !wslay_event_get_write_enabled(c->ctx);
}
