#include "transport/ws_handshake.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <mbedtls/sha1.h>

#include "sasl/sasl.h"
#include "xmppuv.h"

/* RFC 6455 §1.3: the GUID the accept value is made with. */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static int host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_';
}

int xmppuv__ws_url_parse(const char *url, xmppuv__ws_url_t *out, const char **why) {
  memset(out, 0, sizeof *out);
  *why = NULL;
  const char *p;
  if (url == NULL) {
    *why = "no URL";
    return XMPPUV_EINVAL;
  }
  if (strncmp(url, "wss://", 6) == 0) {
    out->tls = 1;
    p = url + 6;
  } else if (strncmp(url, "ws://", 5) == 0) {
    p = url + 5;
  } else {
    *why = "not a ws:// or wss:// URL";
    return XMPPUV_EINVAL;
  }
  const char *host = p, *host_end;
  if (*p == '[') {
    host = ++p;
    while (*p != '\0' && *p != ']') {
      char c = *p;
      if (!((c >= '0' && c <= '9') || (lower(c) >= 'a' && lower(c) <= 'f') || c == ':' ||
            c == '.')) {
        *why = "a bad character in the IPv6 address";
        return XMPPUV_EINVAL;
      }
      p++;
    }
    if (*p != ']') {
      *why = "an IPv6 address without its closing bracket";
      return XMPPUV_EINVAL;
    }
    host_end = p++;
    out->ipv6 = 1;
  } else {
    while (host_char(*p)) p++;
    host_end = p;
  }
  size_t hlen = (size_t)(host_end - host);
  if (hlen == 0 || hlen >= sizeof out->host) {
    *why = hlen == 0 ? "no host" : "a host name too long";
    return XMPPUV_EINVAL;
  }
  memcpy(out->host, host, hlen);
  out->port = out->tls ? 443 : 80;
  if (*p == ':') {
    p++;
    unsigned long port = 0;
    const char *digits = p;
    while (*p >= '0' && *p <= '9' && port <= 65535) port = port * 10 + (unsigned long)(*p++ - '0');
    if (p == digits || port == 0 || port > 65535) {
      *why = "a bad port";
      return XMPPUV_EINVAL;
    }
    out->port = (uint16_t)port;
  }
  if (*p != '\0' && *p != '/' && *p != '?') {
    *why = *p == '@' ? "user information in the URL" : "a bad character after the host";
    return XMPPUV_EINVAL;
  }
  const char *path = *p != '\0' ? p : "/";
  size_t plen = strlen(path);
  if (strchr(path, '#') != NULL) {
    *why = "a fragment in the URL";
    return XMPPUV_EINVAL;
  }
  for (size_t i = 0; i < plen; i++) {
    unsigned char c = (unsigned char)path[i];
    if (c <= ' ' || c >= 0x7f) {
      *why = "a space or a control or non-ASCII character in the path";
      return XMPPUV_EINVAL;
    }
  }
  if (plen + 2 > sizeof out->path) {
    *why = "a path too long";
    return XMPPUV_EINVAL;
  }
  out->path[0] = '/';
  memcpy(out->path + (path[0] == '/' ? 0 : 1), path, plen + 1);
  return 0;
}

/* base64(SHA-1(key || GUID)), RFC 6455 §4.2.2. */
static int accept_of(const char *key, char out[29]) {
  unsigned char digest[20];
  char input[24 + sizeof WS_GUID];
  snprintf(input, sizeof input, "%s%s", key, WS_GUID);
#if MBEDTLS_VERSION_MAJOR >= 3
  int ret = mbedtls_sha1((const unsigned char *)input, strlen(input), digest);
#else
  int ret = mbedtls_sha1_ret((const unsigned char *)input, strlen(input), digest);
#endif
  if (ret != 0) return XMPPUV_ECRYPTO;
  xmppuv__buf_t b = XMPPUV__BUF_INIT;
  int rc = xmppuv__base64_encode(digest, sizeof digest, &b);
  if (rc == 0 && b.len == 28) memcpy(out, b.data, 29);
  else if (rc == 0) rc = XMPPUV_ECRYPTO;
  xmppuv__buf_free(&b);
  return rc;
}

int xmppuv__ws_request(xmppuv__ws_handshake_t *hs, const xmppuv__ws_url_t *url,
                       const unsigned char nonce[16], xmppuv__buf_t *out) {
  memset(hs->key, 0, sizeof hs->key);
  memset(hs->accept, 0, sizeof hs->accept);
  hs->done = 0;
  xmppuv__http_head_init(&hs->answer);
  xmppuv__buf_t b = XMPPUV__BUF_INIT;
  int rc = xmppuv__base64_encode(nonce, 16, &b);
  if (rc == 0 && b.len == 24) memcpy(hs->key, b.data, 25);
  xmppuv__buf_free(&b);
  if (rc != 0) return rc;
  rc = accept_of(hs->key, hs->accept);
  if (rc != 0) return rc;
  /* RFC 7230 §5.4: the port only when it is not the scheme's. */
  char host[300];
  const char *lb = url->ipv6 ? "[" : "", *rb = url->ipv6 ? "]" : "";
  if (url->port == (url->tls ? 443 : 80))
    snprintf(host, sizeof host, "%s%s%s", lb, url->host, rb);
  else
    snprintf(host, sizeof host, "%s%s%s:%u", lb, url->host, rb, (unsigned)url->port);
  size_t old = out->len;
  rc = xmppuv__buf_append_str(out, "GET ");
  if (rc == 0) rc = xmppuv__buf_append_str(out, url->path);
  if (rc == 0) rc = xmppuv__buf_append_str(out, " HTTP/1.1\r\nHost: ");
  if (rc == 0) rc = xmppuv__buf_append_str(out, host);
  if (rc == 0)
    rc = xmppuv__buf_append_str(out,
                                "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: xmpp\r\n"
                                "Sec-WebSocket-Key: ");
  if (rc == 0) rc = xmppuv__buf_append_str(out, hs->key);
  if (rc == 0) rc = xmppuv__buf_append_str(out, "\r\n\r\n");
  if (rc != 0) out->len = old;
  return rc;
}

/* Does the comma-separated list value hold token (case-insensitive)? */
static int has_token(const char *v, size_t len, const char *token) {
  size_t tlen = strlen(token), i = 0;
  while (i < len) {
    while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
    size_t start = i;
    while (i < len && v[i] != ',') i++;
    size_t end = i;
    while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t')) end--;
    if (end - start == tlen) {
      size_t k = 0;
      while (k < tlen && lower(v[start + k]) == lower(token[k])) k++;
      if (k == tlen) return 1;
    }
  }
  return 0;
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int refuse(char *why, size_t why_size, const char *fmt, ...) {
  if (why_size > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_size, fmt, ap);
    va_end(ap);
  }
  return XMPPUV_EWRONGSERVER;
}

/* The whole answer's head is read (http.c has checked its form). */
static int check(const xmppuv__ws_handshake_t *hs, char *why, size_t why_size) {
  const xmppuv__http_head_t *h = &hs->answer;
  size_t status_len = 0;
  const char *status_line = xmppuv__http_head_status_line(h, &status_len);
  char quoted[4 * 120 + 8];
  xmppuv__http_quote(quoted, sizeof quoted, status_line, status_len, 120);
  int code = xmppuv__http_head_status(h);
  int upgrade = 0, connection = 0, protocol = 0, accept_ok = 0;
  const char *location = NULL;
  size_t location_len = 0;
  for (size_t i = 0; i < xmppuv__http_head_count(h); i++) {
    const char *name, *v;
    size_t nlen, vlen;
    xmppuv__http_head_field(h, i, &name, &nlen, &v, &vlen);
#define NAME_IS(n) (nlen == sizeof(n) - 1 && strncasecmp(name, n, nlen) == 0)
    if (NAME_IS("Upgrade"))
      upgrade |= has_token(v, vlen, "websocket");
    else if (NAME_IS("Connection"))
      connection |= has_token(v, vlen, "upgrade");
    else if (NAME_IS("Sec-WebSocket-Protocol"))
      protocol = vlen == 4 && memcmp(v, "xmpp", 4) == 0;
    else if (NAME_IS("Sec-WebSocket-Accept"))
      accept_ok = vlen == 28 && memcmp(v, hs->accept, 28) == 0;
    else if (NAME_IS("Location")) {
      location = v;
      location_len = vlen;
    }
#undef NAME_IS
  }
  if (code >= 300 && code < 400 && location != NULL) {
    char where[4 * 200 + 8];
    return refuse(why, why_size,
                  "the server redirects the WebSocket elsewhere (not followed): %s",
                  xmppuv__http_quote(where, sizeof where, location, location_len, 200));
  }
  if (code != 101)
    return refuse(why, why_size, "the server refused the WebSocket: \"%s\"", quoted);
  if (!upgrade || !connection)
    return refuse(why, why_size,
                  "the server's 101 answer does not upgrade to websocket (\"%s\")", quoted);
  if (!accept_ok)
    return refuse(why, why_size, "the server's Sec-WebSocket-Accept does not answer our key");
  if (!protocol)
    return refuse(why, why_size,
                  "the server accepted the WebSocket without the xmpp subprotocol (RFC 7395)");
  return 1;
}

int xmppuv__ws_answer(xmppuv__ws_handshake_t *hs, const char *data, size_t len, size_t *used,
                      char *why, size_t why_size) {
  *used = 0;
  if (why_size > 0) why[0] = '\0';
  if (hs->done) return XMPPUV_ESTATE;
  /* The head reader stops at the blank line: what follows is the
   * WebSocket's, and *used says where that starts. */
  int rc = xmppuv__http_head_feed(&hs->answer, data, len, used, why, why_size);
  if (rc == 0) return 0;
  hs->done = 1;
  if (rc == XMPPUV_ETOOBIG && hs->answer.len >= hs->answer.max)
    return refuse(why, why_size, "the server's answer to the WebSocket request is over %u KB",
                  (unsigned)(XMPPUV__WS_ANSWER_MAX / 1024));
  if (rc < 0) return XMPPUV_EWRONGSERVER; /* why says it in words */
  return check(hs, why, why_size);
}
