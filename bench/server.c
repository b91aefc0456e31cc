/* The benchmark XMPP server: scripted, fast, on libuv (and mbedTLS for
 * STARTTLS). It speaks a minimal but spec-correct client-to-server stream:
 *
 *   stream header + features (STARTTLS in --tls mode, else SASL PLAIN)
 *   [<starttls/> -> <proceed/>, TLS handshake, new stream]
 *   <auth mechanism='PLAIN'> -> <success/>, new stream (RFC 6120 §6.4.6)
 *   features: bind + XEP-0198 sm; bind iq -> result with the full JID;
 *   other iq get/set -> an empty result
 *   <enable resume='true'/> -> <enabled id resume max/>; <resume/> ->
 *   <resumed previd h/> (or <failed/>); <r/> -> <a h/>; <a h/> recorded
 *
 * and then runs one workload (--mode):
 *   firehose  N messages to the client, <r/> after every 1000, from
 *             prebuilt blocks; verified when the client's <a/> reaches N
 *   burst     counts the client's messages (answers its <r/>)
 *   idle      every --idle-r-ms, an <r/> to every connection; counts the
 *             connections that answered
 *   resume    resets (RST) the connection when a message arrives on an SM
 *             stream; the client resumes, and so on
 *   storm     once N sessions are online (new or resumed) at the same time,
 *             resets every connection at once; --storms K times
 *
 * --ws speaks XMPP over WebSocket (RFC 7395, plain ws:// only) instead: the
 * HTTP/1.1 Upgrade (Sec-WebSocket-Accept from mbedTLS' SHA-1, protocol
 * xmpp), then one unmasked text frame per element it writes (<open/>
 * instead of the stream header, namespaces declared on every element, the
 * firehose from prebuilt blocks of framed messages); the client's masked
 * frames are unmasked and reassembled, each message is one element (pings
 * answered, a Close answered with a Close). The protocol above is the same.
 *
 * --scram ITERATIONS offers SCRAM-SHA-256 (RFC 5802/7677) instead of PLAIN,
 * with one salt for the bench account and its keys derived once at start:
 * each login costs the server two HMACs and a hash, the client its PBKDF2
 * unless it kept the keys.
 *
 * It never parses more than it needs: a byte scanner finds element
 * boundaries (the client side of an XMPP stream has no comments, CDATA or
 * DTD: RFC 6120 §11.1) and only top-level elements are looked at. Blocks of
 * messages are written without copying (plain TCP) or encrypted in 16 KiB
 * records (TLS). At SIGTERM it prints one SERVER line (its own CPU time,
 * what it counted and verified) and exits.
 *
 *   bench-server --mode M [--n N] [--port P] [--tls CERT KEY] [--idle-r-ms T]
 *                [--scram ITERATIONS] [--storms K] [--ws]
 * prints "PORT p" once listening. */
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <strings.h>
#include <uv.h>

#include <mbedtls/base64.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/md.h>
#include <mbedtls/pkcs5.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "common.h"

#define NS_SM "urn:xmpp:sm:3"
#define BLOCK_MSGS 1000u
#define FH_BLOCKS 4u      /* block buffers in rotation */
#define FH_INFLIGHT 2u    /* firehose writes in flight per connection */
#define ELEM_CAP 8192u    /* bytes of a top-level element kept for reading */

typedef enum { MODE_FIREHOSE, MODE_BURST, MODE_IDLE, MODE_RESUME, MODE_STORM } mode_t_;

typedef struct buf {
  char *data;
  size_t len, cap;
} buf_t;

static void buf_add(buf_t *b, const void *d, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) cap *= 2;
    b->data = realloc(b->data, cap);
    if (b->data == NULL) bench_die("out of memory");
    b->cap = cap;
  }
  memcpy(b->data + b->len, d, n);
  b->len += n;
}

typedef struct session {
  char id[24];
  uint32_t h_in; /* stanzas the server handled from the client */
  struct session *next;
} session_t;

typedef struct conn conn_t;

typedef struct server {
  uv_loop_t *loop;
  uv_tcp_t listener;
  uv_timer_t idle_timer;
  uv_signal_t sigterm, sigint;
  mode_t_ mode;
  uint64_t n;
  unsigned idle_r_ms;
  int tls;
  int ws; /* --ws: RFC 7395 framing */
  char r_el[64]; /* <r/> as written in the firehose (framed with --ws) */
  size_t r_el_len;
  mbedtls_ssl_config conf;
  mbedtls_x509_crt cert;
  mbedtls_pk_context key;
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;

  char *blocks[FH_BLOCKS];
  size_t msg_len;
  size_t id_off; /* offset of the 10 id digits inside a message */

  conn_t *conns; /* every open connection */
  session_t *sessions;
  unsigned next_session;
  /* counters for the summary */
  uint64_t accepted, online, stanzas_in, resets, resumed, resume_failed;
  uint64_t fh_verified, fh_bad_h, idle_r_sent, answered, max_a_h;
  /* SCRAM-SHA-256 (--scram): the account's keys, derived once */
  unsigned scram_iterations; /* 0: PLAIN */
  unsigned char salt[16];
  unsigned char stored_key[32], server_key[32];
  uint64_t scram_ok, scram_bad;
  /* storm */
  uint64_t live, storms, storms_max;
  double cpu_start;
} server_t;

struct conn {
  uv_tcp_t tcp;
  server_t *srv;
  conn_t *next, *prev;
  int closing;

  /* scanner */
  int depth;
  int in_tag;
  char quote;
  char tag_first;
  char last;
  size_t tag_len;
  int capturing;
  buf_t elem;

  /* protocol */
  int authed;
  int live; /* counted in S.live (online on this connection) */
  char *scram_first; /* client-first-message-bare "," server-first-message */
  int sm_on;
  session_t *sess;
  uint64_t a_answers;
  buf_t out; /* pending bytes for the socket (ciphertext when TLS is on) */

  /* TLS */
  int tls_on;   /* records from now on */
  int tls_done; /* handshake complete */
  mbedtls_ssl_context ssl;
  buf_t tin;
  size_t tin_off;

  /* WebSocket (--ws) */
  int ws_up;   /* handshake answered: frames from now on */
  buf_t wsin;  /* unparsed bytes from the client (HTTP request, then frames) */
  int ws_frag; /* inside a fragmented message (c->elem holds its start) */

  /* firehose */
  uint64_t fh_next;
  unsigned fh_inflight;
  unsigned fh_block_no;
};

typedef struct wreq {
  uv_write_t req;
  conn_t *c;
  char *owned; /* freed when done, or NULL */
  int firehose;
} wreq_t;

static server_t S;
static const char R_EL[] = "<r xmlns='" NS_SM "'/>";

/* ---- writing ---------------------------------------------------------- */

static void conn_close(conn_t *c, int reset);

static void on_written(uv_write_t *req, int status) {
  wreq_t *w = (wreq_t *)req;
  conn_t *c = w->c;
  free(w->owned);
  int fh = w->firehose;
  free(w);
  (void)status;
  if (fh) {
    c->fh_inflight--;
    if (!c->closing) {
      extern void pump_firehose(conn_t *);
      pump_firehose(c);
    }
  }
}

/* Hand the pending bytes to the socket (no copy: the buffer moves to the
 * write request). */
static void flush(conn_t *c, int firehose) {
  if (c->closing || c->out.len == 0) return;
  if (!firehose) {
    uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == (int)c->out.len) {
      c->out.len = 0;
      return;
    }
    if (n > 0) {
      memmove(c->out.data, c->out.data + n, c->out.len - (size_t)n);
      c->out.len -= (size_t)n;
    }
  }
  wreq_t *w = calloc(1, sizeof *w);
  w->c = c;
  w->owned = c->out.data;
  w->firehose = firehose;
  uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
  c->out.data = NULL;
  c->out.len = c->out.cap = 0;
  if (firehose) c->fh_inflight++;
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
    if (firehose) c->fh_inflight--;
    free(w->owned);
    free(w);
    conn_close(c, 1);
  }
}

/* Queue plaintext: through TLS when it is on. */
static size_t ws_hdr(unsigned char *h, unsigned op, size_t n) {
  h[0] = (unsigned char)(0x80u | op);
  if (n < 126) {
    h[1] = (unsigned char)n;
    return 2;
  }
  if (n < 65536) {
    h[1] = 126;
    h[2] = (unsigned char)(n >> 8);
    h[3] = (unsigned char)n;
    return 4;
  }
  h[1] = 127;
  for (int i = 0; i < 8; i++) h[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
  return 10;
}

/* One unmasked frame (server to client). */
static void ws_frame(conn_t *c, unsigned op, const char *d, size_t n) {
  unsigned char h[10];
  buf_add(&c->out, h, ws_hdr(h, op, n));
  buf_add(&c->out, d, n);
}

static void send_bytes(conn_t *c, const char *d, size_t n) {
  if (c->closing) return;
  if (c->ws_up) { /* every call writes one element: one text message */
    ws_frame(c, 0x1, d, n);
    return;
  }
  if (!c->tls_on) {
    buf_add(&c->out, d, n);
    return;
  }
  while (n > 0) {
    int ret = mbedtls_ssl_write(&c->ssl, (const unsigned char *)d, n);
    if (ret <= 0) {
      conn_close(c, 1);
      return;
    }
    d += ret;
    n -= (size_t)ret;
  }
}

static void send_str(conn_t *c, const char *s) { send_bytes(c, s, strlen(s)); }

/* ---- the firehose ------------------------------------------------------- */

/* <message from to type id xml:lang><body>~60 bytes</body></message> with a
 * 10-digit id patched in per message. */
static void build_blocks(server_t *s) {
  char msg[512];
  /* With --ws each message is a text frame (header first) declaring its
   * namespace; the id is at the same place in every message. */
  size_t hl = s->ws ? 4 : 0;
  int n = snprintf(msg + hl, sizeof msg - hl,
                   "<message %sfrom='" BENCH_PEER "' to='" BENCH_USER "@" BENCH_DOMAIN
                   "/bench' type='chat' id='fh-0000000000' xml:lang='en'><body>" BENCH_BODY
                   "</body></message>",
                   s->ws ? "xmlns='jabber:client' " : "");
  if (s->ws && ws_hdr((unsigned char *)msg, 0x1, (size_t)n) != hl) bench_die("frame header");
  s->msg_len = hl + (size_t)n;
  s->id_off = (size_t)(strstr(msg + hl, "fh-") - msg) + 3;
  s->r_el_len = 0;
  if (s->ws) s->r_el_len = ws_hdr((unsigned char *)s->r_el, 0x1, sizeof R_EL - 1);
  memcpy(s->r_el + s->r_el_len, R_EL, sizeof R_EL - 1);
  s->r_el_len += sizeof R_EL - 1;
  for (unsigned b = 0; b < FH_BLOCKS; b++) {
    s->blocks[b] = malloc(s->msg_len * BLOCK_MSGS);
    for (unsigned i = 0; i < BLOCK_MSGS; i++)
      memcpy(s->blocks[b] + i * s->msg_len, msg, s->msg_len);
  }
}

static void patch_ids(char *block, uint64_t first, unsigned k) {
  for (unsigned i = 0; i < k; i++) {
    char *d = block + i * S.msg_len + S.id_off;
    uint64_t v = first + i + 1;
    for (int j = 9; j >= 0; j--) {
      d[j] = (char)('0' + v % 10);
      v /= 10;
    }
  }
}

void pump_firehose(conn_t *c);
void pump_firehose(conn_t *c) {
  while (!c->closing && c->fh_inflight < FH_INFLIGHT && c->fh_next < S.n) {
    uint64_t left = S.n - c->fh_next;
    unsigned k = left < BLOCK_MSGS ? (unsigned)left : BLOCK_MSGS;
    char *block = S.blocks[c->fh_block_no++ % FH_BLOCKS];
    patch_ids(block, c->fh_next, k);
    c->fh_next += k;
    size_t len = (size_t)k * S.msg_len;
    if (c->tls_on) {
      send_bytes(c, block, len); /* (never with --ws: no TLS there) */
      send_bytes(c, R_EL, sizeof R_EL - 1);
      flush(c, 1);
      continue;
    }
    /* Plain: straight from the block, no copy. */
    flush(c, 0);
    wreq_t *w = calloc(1, sizeof *w);
    w->c = c;
    w->firehose = 1;
    uv_buf_t bufs[2] = {uv_buf_init(block, (unsigned)len),
                        uv_buf_init(S.r_el, (unsigned)S.r_el_len)};
    c->fh_inflight++;
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, bufs, 2, on_written) != 0) {
      c->fh_inflight--;
      free(w);
      conn_close(c, 1);
    }
  }
}

/* ---- protocol ------------------------------------------------------------- */

static const char *features_sasl(void) {
  return S.scram_iterations
             ? "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
               "<mechanism>SCRAM-SHA-256</mechanism></mechanisms></stream:features>"
             : "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
               "<mechanism>PLAIN</mechanism></mechanisms></stream:features>";
}

static const char *features_pre(void) {
  return S.tls ? "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"
                 "<required/></starttls></stream:features>"
               : features_sasl();
}

/* Features as one WebSocket message: the stream prefix declared on it. */
static void send_features(conn_t *c, const char *f) {
  if (!c->ws_up) {
    send_str(c, f);
    return;
  }
  char el[512];
  snprintf(el, sizeof el,
           "<stream:features xmlns:stream='http://etherx.jabber.org/streams'%s",
           f + strlen("<stream:features"));
  send_str(c, el);
}

static void on_stream_open(conn_t *c) {
  char hdr[512];
  if (c->ws_up) {
    snprintf(hdr, sizeof hdr,
             "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' id='st-%p' from='" BENCH_DOMAIN
             "' version='1.0' xml:lang='en'/>",
             (void *)c);
    send_str(c, hdr);
    send_features(c, c->authed ? "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                                 "<sm xmlns='" NS_SM "'/></stream:features>"
                               : features_sasl());
    return;
  }
  snprintf(hdr, sizeof hdr,
           "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
           "xmlns:stream='http://etherx.jabber.org/streams' id='st-%p' from='" BENCH_DOMAIN
           "' version='1.0' xml:lang='en'>",
           (void *)c);
  send_str(c, hdr);
  if (!c->authed) {
    if (S.tls && c->tls_done)
      send_str(c, features_sasl());
    else
      send_str(c, features_pre());
  } else {
    send_str(c, "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                "<sm xmlns='" NS_SM "'/></stream:features>");
  }
}

/* The value of attribute name in the start tag at el (no entity decoding:
 * the values we read are ids and numbers). */
static int attr(const char *el, size_t len, const char *name, char *out, size_t size) {
  const char *end = memchr(el, '>', len);
  if (end == NULL) end = el + len;
  size_t nl = strlen(name);
  for (const char *p = el; p + nl + 2 < end; p++) {
    if ((p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\n') && memcmp(p, name, nl) == 0 &&
        p[nl] == '=' && (p[nl + 1] == '\'' || p[nl + 1] == '"')) {
      char q = p[nl + 1];
      const char *v = p + nl + 2;
      const char *ve = memchr(v, q, (size_t)(end - v));
      if (ve == NULL) return -1;
      size_t vl = (size_t)(ve - v);
      if (vl >= size) vl = size - 1;
      memcpy(out, v, vl);
      out[vl] = '\0';
      return 0;
    }
  }
  return -1;
}

static session_t *session_new(void) {
  session_t *s = calloc(1, sizeof *s);
  snprintf(s->id, sizeof s->id, "sm-%u", ++S.next_session);
  s->next = S.sessions;
  S.sessions = s;
  return s;
}

static session_t *session_find(const char *id) {
  for (session_t *s = S.sessions; s != NULL; s = s->next)
    if (strcmp(s->id, id) == 0) return s;
  return NULL;
}

static void start_tls(conn_t *c);

/* ---- SCRAM-SHA-256, the server's side ------------------------------------- */

static void hmac256(const unsigned char *key, size_t klen, const void *d, size_t n,
                    unsigned char out[32]) {
  mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), key, klen, d, n, out);
}

/* The bench account's StoredKey and ServerKey (RFC 5802 §3), once. */
static void scram_setup(unsigned iterations) {
  static const char pw[] = BENCH_PASSWORD;
  unsigned char salted[32], client_key[32];
  memcpy(S.salt, "bench-salt-01234", 16);
  S.scram_iterations = iterations;
#if MBEDTLS_VERSION_NUMBER >= 0x03030000
  int rc = mbedtls_pkcs5_pbkdf2_hmac_ext(MBEDTLS_MD_SHA256, (const unsigned char *)pw,
                                         sizeof pw - 1, S.salt, 16, iterations, 32, salted);
#else
  mbedtls_md_context_t md;
  mbedtls_md_init(&md);
  int rc = mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 1);
  if (rc == 0)
    rc = mbedtls_pkcs5_pbkdf2_hmac(&md, (const unsigned char *)pw, sizeof pw - 1, S.salt, 16,
                                   iterations, 32, salted);
  mbedtls_md_free(&md);
#endif
  if (rc != 0) bench_die("pbkdf2");
  hmac256(salted, 32, "Client Key", 10, client_key);
  mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), client_key, 32, S.stored_key);
  hmac256(salted, 32, "Server Key", 10, S.server_key);
}

/* The base64 text content of the element in c->elem, decoded (NUL-terminated)
 * into out. */
static int elem_b64(const conn_t *c, char *out, size_t size) {
  const char *gt = memchr(c->elem.data, '>', c->elem.len);
  const char *end = gt ? strstr(gt, "</") : NULL;
  if (gt == NULL || end == NULL) return -1;
  size_t n = 0;
  if (mbedtls_base64_decode((unsigned char *)out, size - 1, &n, (const unsigned char *)gt + 1,
                            (size_t)(end - gt - 1)) != 0)
    return -1;
  out[n] = '\0';
  return 0;
}

static void send_b64(conn_t *c, const char *tag, const char *msg) {
  unsigned char b64[512];
  size_t n = 0;
  mbedtls_base64_encode(b64, sizeof b64, &n, (const unsigned char *)msg, strlen(msg));
  char el[700];
  snprintf(el, sizeof el, "<%s xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>%.*s</%s>", tag, (int)n,
           (const char *)b64, tag);
  send_str(c, el);
}

static void sasl_failure(conn_t *c) {
  S.scram_bad++;
  send_str(c, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>");
}

/* <auth mechanism='SCRAM-SHA-256'>: client-first "n,,n=user,r=NONCE". */
static void scram_first(conn_t *c) {
  char msg[512];
  if (elem_b64(c, msg, sizeof msg) != 0 || strncmp(msg, "n,,", 3) != 0) {
    sasl_failure(c);
    return;
  }
  const char *bare = msg + 3;
  const char *r = strstr(bare, ",r=");
  if (r == NULL) {
    sasl_failure(c);
    return;
  }
  unsigned char salt_b64[32];
  size_t sn = 0;
  mbedtls_base64_encode(salt_b64, sizeof salt_b64, &sn, S.salt, sizeof S.salt);
  char server_first[400];
  snprintf(server_first, sizeof server_first, "r=%s%p,s=%.*s,i=%u", r + 3, (void *)c, (int)sn,
           (const char *)salt_b64, S.scram_iterations);
  free(c->scram_first);
  size_t len = strlen(bare) + 1 + strlen(server_first) + 1;
  c->scram_first = malloc(len);
  snprintf(c->scram_first, len, "%s,%s", bare, server_first);
  send_b64(c, "challenge", server_first);
}

/* <response>: client-final "c=biws,r=NONCE,p=PROOF"; checks the proof and
 * proves the server. */
static void scram_final(conn_t *c) {
  char msg[512];
  const char *p = NULL;
  if (c->scram_first == NULL || elem_b64(c, msg, sizeof msg) != 0 ||
      (p = strstr(msg, ",p=")) == NULL) {
    sasl_failure(c);
    return;
  }
  char auth[1200];
  snprintf(auth, sizeof auth, "%s,%.*s", c->scram_first, (int)(p - msg), msg);
  unsigned char sig[32], proof[64], key[32], stored[32], server_sig[32];
  size_t pn = 0;
  hmac256(S.stored_key, 32, auth, strlen(auth), sig);
  if (mbedtls_base64_decode(proof, sizeof proof, &pn, (const unsigned char *)p + 3,
                            strlen(p + 3)) != 0 ||
      pn != 32) {
    sasl_failure(c);
    return;
  }
  for (size_t i = 0; i < 32; i++) key[i] = proof[i] ^ sig[i];
  mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), key, 32, stored);
  if (memcmp(stored, S.stored_key, 32) != 0) {
    sasl_failure(c);
    return;
  }
  hmac256(S.server_key, 32, auth, strlen(auth), server_sig);
  unsigned char sig_b64[64];
  size_t sn = 0;
  mbedtls_base64_encode(sig_b64, sizeof sig_b64, &sn, server_sig, 32);
  char final[96];
  snprintf(final, sizeof final, "v=%.*s", (int)sn, (const char *)sig_b64);
  S.scram_ok++;
  c->authed = 1;
  send_b64(c, "success", final);
  c->depth = 0; /* RFC 6120 §6.4.6: the client opens a new stream */
}

/* ---- the storm -------------------------------------------------------------- */

/* A session is online on c; once N are at the same time, every connection
 * is reset at once (the network went away under all of them). */
static void went_online(conn_t *c) {
  if (!c->live) {
    c->live = 1;
    S.live++;
  }
  if (S.mode != MODE_STORM || S.live < S.n || S.storms >= S.storms_max) return;
  S.storms++;
  S.resets += S.live;
  while (S.conns != NULL) conn_close(S.conns, 1);
}

/* A complete top-level element from the client, in c->elem. Returns
 * non-zero to stop scanning this chunk (the stream changed under it). */
static int on_element(conn_t *c) {
  const char *el = c->elem.data;
  size_t len = c->elem.len;
  /* Local name. */
  const char *p = el + 1;
  size_t nl = 0;
  while (nl < len - 1 && p[nl] != ' ' && p[nl] != '/' && p[nl] != '>' && p[nl] != '\t' &&
         p[nl] != '\n' && p[nl] != '\r')
    nl++;
  const char *colon = memchr(p, ':', nl);
  if (colon != NULL) {
    nl -= (size_t)(colon + 1 - p);
    p = colon + 1;
  }
#define IS(lit) (nl == sizeof(lit) - 1 && memcmp(p, lit, nl) == 0)
  if (IS("message") || IS("presence")) {
    S.stanzas_in++;
    if (c->sm_on) c->sess->h_in++;
    if (S.mode == MODE_RESUME && c->sm_on) {
      /* The connection breaks under a live SM session. */
      S.resets++;
      conn_close(c, 1);
      return 1;
    }
    return 0;
  }
  if (IS("r")) {
    char a[96];
    snprintf(a, sizeof a, "<a xmlns='" NS_SM "' h='%" PRIu32 "'/>", c->sess ? c->sess->h_in : 0);
    send_str(c, a);
    return 0;
  }
  if (IS("a")) {
    char hv[16];
    if (c->a_answers++ == 0) S.answered++;
    if (attr(el, len, "h", hv, sizeof hv) == 0) {
      uint64_t h = strtoull(hv, NULL, 10);
      if (h > S.max_a_h) S.max_a_h = h;
      if (getenv("BENCH_SERVER_DEBUG")) fprintf(stderr, "server: <a h='%" PRIu64 "'/>\n", h);
      if (S.mode == MODE_FIREHOSE && h == S.n && c->fh_next == S.n) S.fh_verified++;
      if (h > S.n && S.mode == MODE_FIREHOSE) S.fh_bad_h++;
    }
    return 0;
  }
  if (IS("iq")) {
    char id[64] = "", type[16] = "";
    attr(el, len, "id", id, sizeof id);
    attr(el, len, "type", type, sizeof type);
    if (c->sm_on) c->sess->h_in++;
    S.stanzas_in++;
    char reply[512];
    if (strstr(el, "urn:ietf:params:xml:ns:xmpp-bind") != NULL) {
      snprintf(reply, sizeof reply,
               "<iq %stype='result' id='%s'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
               "<jid>" BENCH_USER "@" BENCH_DOMAIN "/r%p</jid></bind></iq>",
               c->ws_up ? "xmlns='jabber:client' " : "", id, (void *)c);
      send_str(c, reply);
    } else if (strcmp(type, "get") == 0 || strcmp(type, "set") == 0) {
      snprintf(reply, sizeof reply, "<iq %stype='result' id='%s'/>",
               c->ws_up ? "xmlns='jabber:client' " : "", id);
      send_str(c, reply);
    }
    return 0;
  }
  if (IS("enable")) {
    c->sess = session_new();
    c->sm_on = 1;
    S.online++;
    char reply[160];
    snprintf(reply, sizeof reply, "<enabled xmlns='" NS_SM "' id='%s' resume='true' max='300'/>",
             c->sess->id);
    send_str(c, reply);
    if (S.mode == MODE_STORM) {
      flush(c, 0);
      went_online(c);
      return 1;
    }
    if (S.mode == MODE_FIREHOSE) {
      flush(c, 0);
      pump_firehose(c);
    }
    return 0;
  }
  if (IS("resume")) {
    char previd[32] = "";
    attr(el, len, "previd", previd, sizeof previd);
    session_t *s = session_find(previd);
    if (s == NULL) {
      S.resume_failed++;
      send_str(c, "<failed xmlns='" NS_SM "'><item-not-found "
                  "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>");
      return 0;
    }
    c->sess = s;
    c->sm_on = 1;
    S.resumed++;
    char reply[160];
    snprintf(reply, sizeof reply, "<resumed xmlns='" NS_SM "' previd='%s' h='%" PRIu32 "'/>",
             s->id, s->h_in);
    send_str(c, reply);
    if (S.mode == MODE_STORM) {
      flush(c, 0);
      went_online(c);
      return 1;
    }
    return 0;
  }
  if (IS("auth") && S.scram_iterations) {
    scram_first(c);
    return 0;
  }
  if (IS("response")) {
    scram_final(c);
    return 0;
  }
  if (IS("auth")) {
    c->authed = 1;
    send_str(c, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    c->depth = 0; /* RFC 6120 §6.4.6: the client opens a new stream */
    return 0;
  }
  if (IS("starttls")) {
    send_str(c, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    flush(c, 0);
    start_tls(c);
    return 1;
  }
#undef IS
  return 0;
}

static void on_stream_close(conn_t *c) {
  if (c->ws_up) {
    static const unsigned char normal[2] = {0x03, 0xe8}; /* 1000 */
    send_str(c, "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
    ws_frame(c, 0x8, (const char *)normal, 2);
    flush(c, 0);
    conn_close(c, 0);
    return;
  }
  send_str(c, "</stream:stream>");
  flush(c, 0);
  conn_close(c, 0);
}

static void elem_add(conn_t *c, const char *d, size_t n) {
  if (c->elem.len >= ELEM_CAP) return;
  if (c->elem.len + n > ELEM_CAP) n = ELEM_CAP - c->elem.len;
  buf_add(&c->elem, d, n);
}

/* Find element boundaries in plaintext from the client. Returns the bytes
 * used (less than n if the stream switched to TLS). */
static size_t scan(conn_t *c, const char *p, size_t n) {
  size_t i = 0;
  size_t seg = c->capturing ? 0 : SIZE_MAX;
  while (i < n) {
    if (c->closing) return n;
    if (!c->in_tag) {
      const char *lt = memchr(p + i, '<', n - i);
      if (lt == NULL) {
        i = n;
        break;
      }
      i = (size_t)(lt - p);
      c->in_tag = 1;
      c->tag_len = 0;
      c->quote = 0;
      c->last = 0;
      if (c->depth == 1 && !c->capturing) {
        c->capturing = 1;
        c->elem.len = 0;
        seg = i;
      }
      i++;
      continue;
    }
    char ch = p[i];
    if (c->quote) {
      const char *q = memchr(p + i, c->quote, n - i);
      if (q == NULL) {
        i = n;
        break;
      }
      i = (size_t)(q - p) + 1;
      c->quote = 0;
      c->last = 0;
      continue;
    }
    if (c->tag_len++ == 0) c->tag_first = ch;
    if (ch == '\'' || ch == '"') {
      c->quote = ch;
      i++;
      continue;
    }
    if (ch != '>') {
      c->last = ch;
      i++;
      continue;
    }
    i++;
    c->in_tag = 0;
    if (c->tag_first == '?' || c->tag_first == '!') continue;
    int complete = 0;
    if (c->tag_first == '/') {
      c->depth--;
      if (c->depth == 0) {
        c->capturing = 0;
        on_stream_close(c);
        return n;
      }
      complete = c->depth == 1;
    } else if (c->last == '/') {
      complete = c->depth == 1;
    } else if (++c->depth == 1) {
      on_stream_open(c);
      continue;
    }
    if (complete) {
      elem_add(c, p + seg, i - seg);
      c->capturing = 0;
      seg = SIZE_MAX;
      buf_add(&c->elem, "", 1); /* NUL for strstr; elem_add keeps len <= ELEM_CAP */
      c->elem.len--;
      if (on_element(c)) return i;
    }
  }
  if (c->capturing && seg != SIZE_MAX && seg < i) elem_add(c, p + seg, i - seg);
  return i;
}

/* ---- WebSocket (--ws) ----------------------------------------------------- */

/* One whole text message from the client, in c->elem: one element. */
static void ws_message(conn_t *c) {
  const char *el = c->elem.data;
  size_t len = c->elem.len;
  buf_add(&c->elem, "", 1); /* NUL for strstr */
  c->elem.len--;
  if (len > 5 && memcmp(el, "<open", 5) == 0 && (el[5] == ' ' || el[5] == '/' || el[5] == '>')) {
    on_stream_open(c);
    return;
  }
  if (len > 6 && memcmp(el, "<close", 6) == 0 && (el[6] == ' ' || el[6] == '/' || el[6] == '>')) {
    on_stream_close(c);
    return;
  }
  if (len > 1 && el[0] == '<') on_element(c);
}

/* Frames from the client (masked, as RFC 6455 §5.3 requires). Returns the
 * bytes used: whole frames only. */
static size_t ws_frames(conn_t *c, const unsigned char *p, size_t n) {
  size_t i = 0;
  while (!c->closing && n - i >= 2) {
    unsigned fin = p[i] & 0x80u, op = p[i] & 0x0fu;
    if (!(p[i + 1] & 0x80u) || (p[i] & 0x70u)) { /* unmasked, or reserved bits */
      conn_close(c, 1);
      return n;
    }
    uint64_t len = p[i + 1] & 0x7fu;
    size_t h = 2;
    if (len == 126) {
      if (n - i < 4) break;
      len = ((uint64_t)p[i + 2] << 8) | p[i + 3];
      h = 4;
    } else if (len == 127) {
      if (n - i < 10) break;
      len = 0;
      for (size_t k = 0; k < 8; k++) len = (len << 8) | p[i + 2 + k];
      h = 10;
    }
    if (len > 1u << 24) {
      conn_close(c, 1);
      return n;
    }
    if (n - i < h + 4 + len) break;
    const unsigned char *mask = p + i + h, *d = mask + 4;
    i += h + 4 + (size_t)len;
    if (op & 0x8u) { /* control: ping, pong, close (payload at most 125) */
      char pl[128];
      size_t pn = len < sizeof pl ? (size_t)len : sizeof pl;
      for (size_t k = 0; k < pn; k++) pl[k] = (char)(d[k] ^ mask[k & 3]);
      if (op == 0x9) {
        ws_frame(c, 0xA, pl, pn);
      } else if (op == 0x8) {
        ws_frame(c, 0x8, pl, pn >= 2 ? 2 : 0);
        flush(c, 0);
        conn_close(c, 0);
        return n;
      }
      continue;
    }
    if (op == 0x1 || op == 0x2) { /* a new message */
      c->elem.len = 0;
      c->ws_frag = 1;
    } else if (op != 0x0 || !c->ws_frag) {
      conn_close(c, 1);
      return n;
    }
    size_t at = c->elem.len;
    if (at + len <= ELEM_CAP) { /* longer messages are cut (read no further) */
      buf_add(&c->elem, d, (size_t)len);
      unsigned char *o = (unsigned char *)c->elem.data + at;
      for (size_t k = 0; k < len; k++) o[k] ^= mask[k & 3];
    }
    if (fin) {
      c->ws_frag = 0;
      ws_message(c);
    }
  }
  return i;
}

/* The HTTP/1.1 Upgrade (RFC 6455 §4.2): answered with 101 and the accept
 * key, protocol xmpp (RFC 7395 §3.1). Returns the bytes used, 0 while
 * the request is incomplete. */
static size_t ws_handshake(conn_t *c, const char *p, size_t n) {
  const char *end = NULL;
  for (size_t i = 0; i + 3 < n; i++)
    if (memcmp(p + i, "\r\n\r\n", 4) == 0) {
      end = p + i + 4;
      break;
    }
  if (end == NULL) {
    if (n > 16384) conn_close(c, 1);
    return 0;
  }
  char key[64] = "";
  for (const char *l = p; l < end;) {
    const char *nl = memchr(l, '\n', (size_t)(end - l));
    if (nl == NULL) break;
    static const char K[] = "sec-websocket-key:";
    if ((size_t)(nl - l) > sizeof K - 1 && strncasecmp(l, K, sizeof K - 1) == 0) {
      const char *v = l + sizeof K - 1, *ve = nl;
      while (v < ve && (*v == ' ' || *v == '\t')) v++;
      while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ')) ve--;
      size_t vl = (size_t)(ve - v) < sizeof key - 1 ? (size_t)(ve - v) : sizeof key - 1;
      memcpy(key, v, vl);
      key[vl] = '\0';
    }
    l = nl + 1;
  }
  if (key[0] == '\0' || strncmp(p, "GET ", 4) != 0) {
    static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    buf_add(&c->out, bad, sizeof bad - 1);
    flush(c, 0);
    conn_close(c, 0);
    return n;
  }
  char cat[128];
  int cl = snprintf(cat, sizeof cat, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
  unsigned char sha[20], acc[64];
  size_t an = 0;
  mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA1), (const unsigned char *)cat, (size_t)cl,
             sha);
  mbedtls_base64_encode(acc, sizeof acc, &an, sha, sizeof sha);
  char resp[300];
  int rn = snprintf(resp, sizeof resp,
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Accept: %.*s\r\n"
                    "Sec-WebSocket-Protocol: xmpp\r\n\r\n",
                    (int)an, (const char *)acc);
  buf_add(&c->out, resp, (size_t)rn);
  c->ws_up = 1;
  return (size_t)(end - p);
}

/* Bytes from the client in --ws mode: parsed in place when nothing is
 * pending, else after what is. */
static void ws_input(conn_t *c, const char *d, size_t n) {
  const char *p = d;
  size_t len = n;
  if (c->wsin.len > 0) {
    buf_add(&c->wsin, d, n);
    p = c->wsin.data;
    len = c->wsin.len;
  }
  size_t used = 0;
  if (!c->ws_up) used = ws_handshake(c, p, len);
  if (c->ws_up && !c->closing) used += ws_frames(c, (const unsigned char *)p + used, len - used);
  if (c->closing) return;
  size_t rest = len - used;
  if (p == c->wsin.data) {
    memmove(c->wsin.data, p + used, rest);
    c->wsin.len = rest;
  } else if (rest > 0) {
    buf_add(&c->wsin, p + used, rest);
  }
}

/* ---- TLS ------------------------------------------------------------------ */

static int bio_send(void *ctx, const unsigned char *d, size_t n) {
  conn_t *c = ctx;
  buf_add(&c->out, d, n);
  return (int)n;
}

static int bio_recv(void *ctx, unsigned char *d, size_t n) {
  conn_t *c = ctx;
  size_t avail = c->tin.len - c->tin_off;
  if (avail == 0) return MBEDTLS_ERR_SSL_WANT_READ;
  if (n > avail) n = avail;
  memcpy(d, c->tin.data + c->tin_off, n);
  c->tin_off += n;
  if (c->tin_off == c->tin.len) c->tin.len = c->tin_off = 0;
  return (int)n;
}

static void start_tls(conn_t *c) {
  mbedtls_ssl_init(&c->ssl);
  if (mbedtls_ssl_setup(&c->ssl, &S.conf) != 0) bench_die("mbedtls_ssl_setup");
  mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
  c->tls_on = 1;
  c->depth = 0;
  c->in_tag = 0;
  c->capturing = 0;
}

static unsigned char plain[64 * 1024];

static void tls_input(conn_t *c, const char *d, size_t n) {
  buf_add(&c->tin, d, n);
  if (!c->tls_done) {
    int ret = mbedtls_ssl_handshake(&c->ssl);
    if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE) {
      flush(c, 0);
      return;
    }
    if (ret != 0) {
      char e[128];
      mbedtls_strerror(ret, e, sizeof e);
      fprintf(stderr, "bench-server: TLS handshake: %s\n", e);
      conn_close(c, 1);
      return;
    }
    c->tls_done = 1;
    flush(c, 0);
  }
  for (;;) {
    int ret = mbedtls_ssl_read(&c->ssl, plain, sizeof plain);
    if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE) break;
    if (ret <= 0) {
      conn_close(c, 0);
      return;
    }
    scan(c, (const char *)plain, (size_t)ret);
    if (c->closing) return;
  }
}

/* ---- connections ------------------------------------------------------------- */

static void on_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  if (c->tls_on) mbedtls_ssl_free(&c->ssl);
  free(c->elem.data);
  free(c->out.data);
  free(c->tin.data);
  free(c->wsin.data);
  free(c->scram_first);
  free(c);
}

static void conn_close(conn_t *c, int reset) {
  if (c->closing) return;
  c->closing = 1;
  if (c->live) S.live--;
  if (c->prev) c->prev->next = c->next;
  else S.conns = c->next;
  if (c->next) c->next->prev = c->prev;
  uv_read_stop((uv_stream_t *)&c->tcp);
  if (reset && uv_tcp_close_reset(&c->tcp, on_closed) == 0) return;
  uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static char rbuf[64 * 1024];

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  (void)h, (void)s;
  *b = uv_buf_init(rbuf, sizeof rbuf);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  conn_t *c = st->data;
  (void)b;
  if (n < 0) {
    conn_close(c, 0);
    return;
  }
  if (n == 0 || c->closing) return;
  if (S.ws) {
    ws_input(c, rbuf, (size_t)n);
  } else if (c->tls_on) {
    tls_input(c, rbuf, (size_t)n);
  } else {
    size_t used = scan(c, rbuf, (size_t)n);
    if (c->tls_on && !c->closing && used < (size_t)n) tls_input(c, rbuf + used, (size_t)n - used);
  }
  if (!c->closing) flush(c, 0);
}

static void on_connection(uv_stream_t *l, int status) {
  if (status != 0) return;
  conn_t *c = calloc(1, sizeof *c);
  c->srv = &S;
  uv_tcp_init(S.loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
    uv_close((uv_handle_t *)&c->tcp, on_closed);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  S.accepted++;
  c->next = S.conns;
  if (S.conns) S.conns->prev = c;
  S.conns = c;
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_idle_timer(uv_timer_t *t) {
  (void)t;
  for (conn_t *c = S.conns; c != NULL; c = c->next) {
    if (!c->sm_on || c->closing) continue;
    send_bytes(c, R_EL, sizeof R_EL - 1);
    flush(c, 0);
    S.idle_r_sent++;
  }
}

static void on_signal(uv_signal_t *sig, int signum) {
  (void)sig, (void)signum;
  uint64_t conns = 0;
  for (conn_t *c = S.conns; c != NULL; c = c->next) conns++;
  printf("SERVER cpu_s=%.4f accepted=%" PRIu64 " online=%" PRIu64 " open=%" PRIu64
         " answered=%" PRIu64 " stanzas_in=%" PRIu64 " fh_verified=%" PRIu64
         " fh_bad_h=%" PRIu64 " resets=%" PRIu64 " resumed=%" PRIu64
         " resume_failed=%" PRIu64 " idle_r_sent=%" PRIu64 " max_a_h=%" PRIu64
         " scram_ok=%" PRIu64 " scram_bad=%" PRIu64 " storms=%" PRIu64 "\n",
         bench_cpu() - S.cpu_start, S.accepted, S.online, conns, S.answered, S.stanzas_in,
         S.fh_verified, S.fh_bad_h, S.resets, S.resumed, S.resume_failed, S.idle_r_sent, S.max_a_h,
         S.scram_ok, S.scram_bad, S.storms);
  fflush(stdout);
  _exit(0);
}

static void setup_tls(const char *cert, const char *key) {
  mbedtls_ssl_config_init(&S.conf);
  mbedtls_x509_crt_init(&S.cert);
  mbedtls_pk_init(&S.key);
  mbedtls_entropy_init(&S.entropy);
  mbedtls_ctr_drbg_init(&S.drbg);
  if (mbedtls_ctr_drbg_seed(&S.drbg, mbedtls_entropy_func, &S.entropy,
                            (const unsigned char *)"bench", 5) != 0)
    bench_die("ctr_drbg_seed");
  if (mbedtls_x509_crt_parse_file(&S.cert, cert) != 0) bench_die("cannot read %s", cert);
#if MBEDTLS_VERSION_MAJOR >= 3
  if (mbedtls_pk_parse_keyfile(&S.key, key, NULL, mbedtls_ctr_drbg_random, &S.drbg) != 0)
#else
  if (mbedtls_pk_parse_keyfile(&S.key, key, NULL) != 0)
#endif
    bench_die("cannot read %s", key);
  if (mbedtls_ssl_config_defaults(&S.conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                  MBEDTLS_SSL_PRESET_DEFAULT) != 0)
    bench_die("ssl_config_defaults");
  mbedtls_ssl_conf_rng(&S.conf, mbedtls_ctr_drbg_random, &S.drbg);
  /* The key exchange groups in the order OpenSSL's default prefers them,
   * which is what Prosody and ejabberd (both on OpenSSL) choose from: the
   * server's preference decides, and mbedTLS's own default list would pick
   * secp521r1, the most expensive, whenever a client offers it. */
  static const mbedtls_ecp_group_id groups[] = {MBEDTLS_ECP_DP_CURVE25519, MBEDTLS_ECP_DP_SECP256R1,
                                                MBEDTLS_ECP_DP_SECP521R1, MBEDTLS_ECP_DP_SECP384R1,
                                                MBEDTLS_ECP_DP_NONE};
  mbedtls_ssl_conf_curves(&S.conf, groups);
  if (mbedtls_ssl_conf_own_cert(&S.conf, &S.cert, &S.key) != 0) bench_die("own_cert");
}

int main(int argc, char **argv) {
  const char *mode = NULL, *cert = NULL, *key = NULL;
  int port = 0;
  unsigned scram = 0;
  S.n = 100000;
  S.storms_max = 1;
  S.idle_r_ms = 1000;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) mode = argv[++i];
    else if (strcmp(argv[i], "--n") == 0 && i + 1 < argc) S.n = strtoull(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) port = atoi(argv[++i]);
    else if (strcmp(argv[i], "--idle-r-ms") == 0 && i + 1 < argc) S.idle_r_ms = (unsigned)atoi(argv[++i]);
    else if (strcmp(argv[i], "--scram") == 0 && i + 1 < argc) scram = (unsigned)atoi(argv[++i]);
    else if (strcmp(argv[i], "--storms") == 0 && i + 1 < argc) S.storms_max = strtoull(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--ws") == 0) S.ws = 1;
    else if (strcmp(argv[i], "--tls") == 0 && i + 2 < argc) {
      cert = argv[++i];
      key = argv[++i];
    } else bench_die("usage: bench-server --mode firehose|burst|idle|resume|storm [--n N] "
                     "[--port P] [--tls CERT KEY] [--idle-r-ms T] [--scram ITERATIONS] "
                     "[--storms K] [--ws]");
  }
  if (mode == NULL) bench_die("--mode is required");
  if (strcmp(mode, "firehose") == 0) S.mode = MODE_FIREHOSE;
  else if (strcmp(mode, "burst") == 0) S.mode = MODE_BURST;
  else if (strcmp(mode, "idle") == 0) S.mode = MODE_IDLE;
  else if (strcmp(mode, "resume") == 0) S.mode = MODE_RESUME;
  else if (strcmp(mode, "storm") == 0) S.mode = MODE_STORM;
  else bench_die("unknown mode %s", mode);
  signal(SIGPIPE, SIG_IGN);
  bench_raise_nofile(1 << 20);
  S.loop = uv_default_loop();
  S.tls = cert != NULL;
  if (S.tls && S.ws) bench_die("--ws is plain ws:// only (no --tls)");
  if (S.tls) setup_tls(cert, key);
  if (scram > 0) scram_setup(scram);
  build_blocks(&S);
  uv_tcp_init(S.loop, &S.listener);
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", port, &addr);
  if (uv_tcp_bind(&S.listener, (const struct sockaddr *)&addr, 0) != 0) bench_die("bind");
  if (uv_listen((uv_stream_t *)&S.listener, 4096, on_connection) != 0) bench_die("listen");
  struct sockaddr_storage name;
  int namelen = sizeof name;
  uv_tcp_getsockname(&S.listener, (struct sockaddr *)&name, &namelen);
  printf("PORT %d\n", ntohs(((struct sockaddr_in *)&name)->sin_port));
  fflush(stdout);
  uv_signal_init(S.loop, &S.sigterm);
  uv_signal_start(&S.sigterm, on_signal, SIGTERM);
  uv_signal_init(S.loop, &S.sigint);
  uv_signal_start(&S.sigint, on_signal, SIGINT);
  if (S.mode == MODE_IDLE) {
    uv_timer_init(S.loop, &S.idle_timer);
    uv_timer_start(&S.idle_timer, on_idle_timer, S.idle_r_ms, S.idle_r_ms);
  }
  S.cpu_start = bench_cpu();
  return uv_run(S.loop, UV_RUN_DEFAULT);
}
