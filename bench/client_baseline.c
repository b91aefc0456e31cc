/* The baseline clients: the least work a client can do for each workload,
 * so the library's cost can be given as a ratio to a limit measured in the
 * same run.
 *
 *   bench-baseline --parser expat|raw --workload W --port P [--n N] [--m M]
 *                  [--tls CA_FILE] [--settle-ms T]
 *
 * Both negotiate the stream from a script (header, [STARTTLS with mbedTLS],
 * SASL PLAIN, bind, SM enable or resume) by waiting for fixed strings, then:
 *   expat  parses the stream with expat (namespace processing on, as XMPP
 *          needs) and handlers that only count top-level elements and
 *          answer <r/>, read an <a/>'s h: the parsing limit;
 *   raw    reads and discards, finding <r/> and <a h/> with memmem: the
 *          loopback limit.
 * burst writes prebuilt messages (a template with a counter patched into
 * its id) with <r/> every 256 and at most 4096 unacked, as xmppuv's
 * defaults do. resume reconnects at once after the reset and sends
 * <resume/>. The RESULT line has the same fields as bench-xmppuv's. */
#include <expat.h>
#include <inttypes.h>
#include <uv.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "common.h"

#define NS_SM "urn:xmpp:sm:3"
#define R_EVERY 256u
#define WINDOW 4096u
#define HEADER                                                                                 \
  "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "                               \
  "xmlns:stream='http://etherx.jabber.org/streams' version='1.0' to='" BENCH_DOMAIN "'>"

typedef enum {
  S_FEATURES1,  /* header sent, waiting for the first features */
  S_PROCEED,    /* <starttls/> sent */
  S_TLS,        /* handshake */
  S_FEATURES1T, /* after TLS: features with mechanisms */
  S_SUCCESS,    /* <auth/> sent */
  S_FEATURES2,  /* new stream after SASL */
  S_BOUND,      /* bind iq sent */
  S_ENABLED,    /* <enable/> or <resume/> sent */
  S_RUNNING
} state_t;

typedef struct conn {
  uv_tcp_t tcp;
  uv_connect_t creq;
  state_t st;
  int closing;
  char *hs; /* handshake input not yet matched */
  size_t hs_len, hs_cap;
  XML_Parser xp;
  unsigned depth;
  uint64_t count; /* top-level stanzas received (h) */
  uint64_t r_seen;
  uint32_t acked;
  char tail[64]; /* raw mode: the end of the previous chunk */
  size_t tail_len;
  /* TLS */
  int tls_on, tls_done;
  mbedtls_ssl_context ssl;
  char *tin;
  size_t tin_len, tin_off, tin_cap;
  char *tout;
  size_t tout_len, tout_cap;
} conn_t;

typedef struct wreq {
  uv_write_t req;
  char *data;
} wreq_t;

static struct {
  uv_loop_t *loop;
  const char *workload;
  int expat, tls, burst, firehose, idle, resume;
  int port;
  uint64_t n;
  unsigned m, settle_ms, parallel;
  const char *ca_file;
  mbedtls_ssl_config conf;
  mbedtls_x509_crt ca;
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  conn_t **conns;
  unsigned started, online;
  double t0, t1, cpu0, cpu1;
  long rss0, rss1;
  double heap0, heap1, setup_cpu;
  int done;
  uv_timer_t timer;
  /* burst */
  uint64_t sent;
  char *msg;
  size_t msg_len, id_off;
  /* resume */
  char sm_id[64];
  uint32_t h_out; /* resume: messages sent */
  uint64_t resumes;
  double lost_at;
  double *resume_ms;
} G;

static void start_conn(void);
static void conn_close(conn_t *c);

/* ---- output --------------------------------------------------------------- */

static void on_written(uv_write_t *req, int status) {
  wreq_t *w = (wreq_t *)req;
  (void)status;
  free(w->data);
  free(w);
}

static void sock_write(conn_t *c, const char *d, size_t n) {
  if (c->closing || n == 0) return;
  uv_buf_t b = uv_buf_init((char *)d, (unsigned)n);
  int k = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (k == (int)n) return;
  if (k < 0) k = 0;
  wreq_t *w = malloc(sizeof *w);
  w->data = malloc(n - (size_t)k);
  memcpy(w->data, d + k, n - (size_t)k);
  b = uv_buf_init(w->data, (unsigned)(n - (size_t)k));
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
    free(w->data);
    free(w);
  }
}

static int bio_send(void *ctx, const unsigned char *d, size_t n) {
  conn_t *c = ctx;
  if (c->tout_len + n > c->tout_cap) {
    c->tout_cap = (c->tout_len + n) * 2;
    c->tout = realloc(c->tout, c->tout_cap);
  }
  memcpy(c->tout + c->tout_len, d, n);
  c->tout_len += n;
  return (int)n;
}

static int bio_recv(void *ctx, unsigned char *d, size_t n) {
  conn_t *c = ctx;
  size_t avail = c->tin_len - c->tin_off;
  if (avail == 0) return MBEDTLS_ERR_SSL_WANT_READ;
  if (n > avail) n = avail;
  memcpy(d, c->tin + c->tin_off, n);
  c->tin_off += n;
  if (c->tin_off == c->tin_len) c->tin_len = c->tin_off = 0;
  return (int)n;
}

static void tls_flush(conn_t *c) {
  sock_write(c, c->tout, c->tout_len);
  c->tout_len = 0;
}

static void send_bytes(conn_t *c, const char *d, size_t n) {
  if (!c->tls_on) {
    sock_write(c, d, n);
    return;
  }
  while (n > 0) {
    int ret = mbedtls_ssl_write(&c->ssl, (const unsigned char *)d, n);
    if (ret <= 0) bench_die("mbedtls_ssl_write");
    d += ret;
    n -= (size_t)ret;
  }
  tls_flush(c);
}

static void send_str(conn_t *c, const char *s) { send_bytes(c, s, strlen(s)); }

/* ---- the workloads once online ------------------------------------------------ */

static void mark_start(void) {
  G.t0 = bench_now();
  G.cpu0 = bench_cpu();
}

static void mark_end(void) {
  G.t1 = bench_now();
  G.cpu1 = bench_cpu();
  G.done = 1;
}

static void send_a(conn_t *c, uint64_t h) {
  char a[80];
  int k = snprintf(a, sizeof a, "<a xmlns='" NS_SM "' h='%" PRIu32 "'/>", (uint32_t)h);
  send_bytes(c, a, (size_t)k);
}

static void finish(conn_t *c) {
  mark_end();
  send_str(c, "</stream:stream>");
  conn_close(c);
}

static void build_template(void) {
  char m[512];
  int k = snprintf(m, sizeof m,
                   "<message to='" BENCH_PEER "' type='chat' id='b-0000000000'><body>" BENCH_BODY
                   "</body></message>");
  G.msg = malloc((size_t)k);
  memcpy(G.msg, m, (size_t)k);
  G.msg_len = (size_t)k;
  G.id_off = (size_t)(strstr(m, "b-") - m) + 2;
}

/* Write as many messages as the window allows, in one buffer. */
static void burst_fill(conn_t *c) {
  uint64_t limit = (uint64_t)c->acked + WINDOW;
  if (limit > G.n) limit = G.n;
  if (G.sent >= limit) return;
  size_t cap = (size_t)(limit - G.sent) * (G.msg_len + 32) + 64;
  char *out = malloc(cap), *p = out;
  static const char r[] = "<r xmlns='" NS_SM "'/>";
  while (G.sent < limit) {
    memcpy(p, G.msg, G.msg_len);
    uint64_t v = ++G.sent;
    for (int j = 9; j >= 0; j--) {
      p[G.id_off + (size_t)j] = (char)('0' + v % 10);
      v /= 10;
    }
    p += G.msg_len;
    if (G.sent % R_EVERY == 0 || G.sent == G.n) {
      memcpy(p, r, sizeof r - 1);
      p += sizeof r - 1;
    }
  }
  send_bytes(c, out, (size_t)(p - out));
  free(out);
}

static void on_ack(conn_t *c, uint32_t h) {
  if (G.resume) return;
  c->acked = h;
  if (G.burst) {
    if (h >= G.n) {
      finish(c);
      return;
    }
    burst_fill(c);
  }
}

static void on_r(conn_t *c) {
  send_a(c, c->count);
  if (G.firehose && c->count >= G.n) finish(c);
}

/* expat handlers: count, answer <r/>, read <a h/>. */
static void XMLCALL x_start(void *ud, const XML_Char *name, const XML_Char **atts) {
  conn_t *c = ud;
  if (c->depth++ != 1) return;
  if (strncmp(name, NS_SM "\x01", sizeof NS_SM) == 0) {
    const char *local = name + sizeof NS_SM;
    if (strcmp(local, "r") == 0) {
      c->r_seen = 1;
    } else if (strcmp(local, "a") == 0) {
      for (int i = 0; atts[i]; i += 2)
        if (strcmp(atts[i], "h") == 0) on_ack(c, (uint32_t)strtoul(atts[i + 1], NULL, 10));
    }
    return;
  }
  c->count++;
}

static void XMLCALL x_end(void *ud, const XML_Char *name) {
  conn_t *c = ud;
  (void)name;
  if (--c->depth == 1 && c->r_seen) {
    c->r_seen = 0;
    on_r(c);
  }
}

static void raw_input(conn_t *c, const char *d, size_t n) {
  /* Find <r/> (firehose) or <a h/> (burst) with memmem, across chunk
   * boundaries: an unfinished candidate at the end is kept for the next. */
  static const char r_el[] = "<r xmlns='" NS_SM "'/>";
  static char joined[sizeof c->tail + 64 * 1024];
  const char *p = d;
  size_t len = n;
  if (c->tail_len > 0) {
    memcpy(joined, c->tail, c->tail_len);
    memcpy(joined + c->tail_len, d, n);
    p = joined;
    len = n + c->tail_len;
  }
  const char *end = p + len, *q = p, *done = p;
  const char *needle = G.burst ? "<a " : r_el;
  size_t nlen = G.burst ? 3 : sizeof r_el - 1;
  while ((q = memmem(q, (size_t)(end - q), needle, nlen)) != NULL) {
    if (!G.burst) {
      c->r_seen++;
      uint64_t h = c->r_seen * 1000;
      c->count = h > G.n ? G.n : h;
      q += nlen;
      done = q;
      on_r(c);
      if (c->closing) return;
      continue;
    }
    const char *close = memmem(q, (size_t)(end - q), "/>", 2);
    if (close == NULL) break;
    const char *hq = memmem(q, (size_t)(close - q), "h='", 3);
    q = done = close + 2;
    if (hq != NULL) {
      on_ack(c, (uint32_t)strtoul(hq + 3, NULL, 10));
      if (c->closing) return;
    }
  }
  /* Keep what could still start a match. */
  const char *from = end - (len < sizeof c->tail ? len : sizeof c->tail);
  if (from < done) from = done;
  if (q != NULL && q < from) from = q; /* an unfinished <a ... */
  c->tail_len = (size_t)(end - from);
  if (c->tail_len > sizeof c->tail) c->tail_len = 0;
  memmove(c->tail, from, c->tail_len);
}

static void stream_input(conn_t *c, const char *d, size_t n) {
  if (n == 0 || c->closing) return;
  if (!G.expat) {
    raw_input(c, d, n);
    return;
  }
  if (XML_Parse(c->xp, d, (int)n, XML_FALSE) == XML_STATUS_ERROR && !c->closing)
    bench_die("expat: %s", XML_ErrorString(XML_GetErrorCode(c->xp)));
}

static void on_settled(uv_timer_t *t) {
  (void)t;
  mark_end();
  G.rss1 = bench_rss_kb();
  G.heap1 = bench_heap_kb();
  for (unsigned i = 0; i < G.started; i++) conn_close(G.conns[i]);
}

static void go_online(conn_t *c, const char *rest, size_t rest_len) {
  c->st = S_RUNNING;
  if (G.expat) {
    c->xp = XML_ParserCreateNS(NULL, '\x01');
    XML_SetUserData(c->xp, c);
    XML_SetElementHandler(c->xp, x_start, x_end);
    static const char fake[] = "<stream:stream xmlns='jabber:client' "
                               "xmlns:stream='http://etherx.jabber.org/streams'>";
    c->depth = 0;
    XML_Parse(c->xp, fake, sizeof fake - 1, XML_FALSE);
  }
  /* rest points into the handshake buffer: keep it until it is parsed. */
  char *hs = c->hs;
  c->hs = NULL;
  c->hs_len = c->hs_cap = 0;
  if (G.resume) {
    if (G.resumes > 0) G.resume_ms[G.resumes - 1] = (bench_now() - G.lost_at) * 1000.0;
    if (G.resumes == G.n) {
      finish(c);
      free(hs);
      return;
    }
    G.resumes++;
    if (G.resumes == 1) mark_start();
    G.h_out++;
    send_str(c, "<message to='" BENCH_PEER "' type='chat'><body>" BENCH_BODY "</body></message>");
    free(hs);
    return;
  }
  G.online++;
  if (G.idle) {
    if (G.online == G.m) {
      G.setup_cpu = bench_cpu() - G.cpu0;
      uv_timer_start(&G.timer, on_settled, G.settle_ms, 0);
    } else if (G.started < G.m) {
      start_conn();
    }
  } else {
    mark_start();
    if (G.burst) burst_fill(c);
  }
  stream_input(c, rest, rest_len);
  free(hs);
}

/* ---- negotiation ----------------------------------------------------------------- */

static void hs_add(conn_t *c, const char *d, size_t n) {
  if (c->hs_len + n + 1 > c->hs_cap) {
    c->hs_cap = (c->hs_len + n + 1) * 2;
    c->hs = realloc(c->hs, c->hs_cap);
  }
  memcpy(c->hs + c->hs_len, d, n);
  c->hs_len += n;
  c->hs[c->hs_len] = '\0';
}

/* Drop the matched handshake input up to and including the end of what was
 * found. */
static void hs_drop(conn_t *c, const char *upto) {
  size_t k = (size_t)(upto - c->hs);
  memmove(c->hs, c->hs + k, c->hs_len - k + 1);
  c->hs_len -= k;
}

static void tls_start(conn_t *c);

static void plain_input(conn_t *c, const char *d, size_t n) {
  if (c->st == S_RUNNING) {
    stream_input(c, d, n);
    return;
  }
  hs_add(c, d, n);
  for (;;) {
    char *e;
    switch (c->st) {
      case S_FEATURES1:
      case S_FEATURES1T:
        if ((e = strstr(c->hs, "</stream:features>")) == NULL) return;
        hs_drop(c, e + 18);
        if (G.tls && c->st == S_FEATURES1) {
          c->st = S_PROCEED;
          send_str(c, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        } else {
          c->st = S_SUCCESS;
          /* base64("\0bench\0bench-password") */
          send_str(c, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                      "AGJlbmNoAGJlbmNoLXBhc3N3b3Jk</auth>");
        }
        break;
      case S_PROCEED:
        if ((e = strstr(c->hs, "<proceed")) == NULL) return;
        c->hs_len = 0;
        tls_start(c);
        return;
      case S_SUCCESS:
        if ((e = strstr(c->hs, "<success")) == NULL) return;
        c->hs_len = 0;
        c->st = S_FEATURES2;
        send_str(c, HEADER);
        return;
      case S_FEATURES2:
        if ((e = strstr(c->hs, "</stream:features>")) == NULL) return;
        hs_drop(c, e + 18);
        if (G.resume && G.sm_id[0] != '\0') {
          char r[160];
          snprintf(r, sizeof r, "<resume xmlns='" NS_SM "' previd='%s' h='0'/>", G.sm_id);
          c->st = S_ENABLED;
          send_str(c, r);
        } else {
          c->st = S_BOUND;
          send_str(c, "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                      "<resource>bench</resource></bind></iq>");
        }
        break;
      case S_BOUND:
        if ((e = strstr(c->hs, "</iq>")) == NULL) return;
        hs_drop(c, e + 5);
        c->st = S_ENABLED;
        send_str(c, "<enable xmlns='" NS_SM "' resume='true'/>");
        break;
      case S_ENABLED: {
        char *en = strstr(c->hs, "<enabled");
        if (en == NULL) en = strstr(c->hs, "<resumed");
        if (en == NULL) {
          if (strstr(c->hs, "<failed")) bench_die("SM enable/resume failed");
          return;
        }
        if ((e = strstr(en, "/>")) == NULL) return;
        if (G.sm_id[0] == '\0') {
          char *id = strstr(en, "id='");
          if (id != NULL) {
            char *q = strchr(id + 4, '\'');
            size_t k = (size_t)(q - id - 4);
            if (k >= sizeof G.sm_id) k = sizeof G.sm_id - 1;
            memcpy(G.sm_id, id + 4, k);
            G.sm_id[k] = '\0';
          }
        }
        e += 2;
        go_online(c, e, c->hs_len - (size_t)(e - c->hs));
        return;
      }
      default:
        return;
    }
  }
}

static void tls_start(conn_t *c) {
  mbedtls_ssl_init(&c->ssl);
  if (mbedtls_ssl_setup(&c->ssl, &G.conf) != 0) bench_die("ssl_setup");
  mbedtls_ssl_set_hostname(&c->ssl, BENCH_DOMAIN);
  mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
  c->tls_on = 1;
  c->st = S_TLS;
  int ret = mbedtls_ssl_handshake(&c->ssl);
  if (ret != MBEDTLS_ERR_SSL_WANT_READ) bench_die("handshake start: %d", ret);
  tls_flush(c);
}

static unsigned char plain_buf[64 * 1024];

static void tls_input(conn_t *c, const char *d, size_t n) {
  if (c->tin_len + n > c->tin_cap) {
    c->tin_cap = (c->tin_len + n) * 2;
    c->tin = realloc(c->tin, c->tin_cap);
  }
  memcpy(c->tin + c->tin_len, d, n);
  c->tin_len += n;
  if (!c->tls_done) {
    int ret = mbedtls_ssl_handshake(&c->ssl);
    tls_flush(c);
    if (ret == MBEDTLS_ERR_SSL_WANT_READ) return;
    if (ret != 0) {
      char e[128];
      mbedtls_strerror(ret, e, sizeof e);
      bench_die("TLS handshake: %s", e);
    }
    c->tls_done = 1;
    c->st = S_FEATURES1T;
    send_str(c, HEADER);
  }
  for (;;) {
    int ret = mbedtls_ssl_read(&c->ssl, plain_buf, sizeof plain_buf);
    if (ret == MBEDTLS_ERR_SSL_WANT_READ) break;
    if (ret <= 0) {
      conn_close(c);
      return;
    }
    plain_input(c, (const char *)plain_buf, (size_t)ret);
    if (c->closing) return;
  }
}

/* ---- sockets ------------------------------------------------------------------------ */

static char rbuf[64 * 1024];

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  (void)h, (void)s;
  *b = uv_buf_init(rbuf, sizeof rbuf);
}

static void on_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  if (c->xp) XML_ParserFree(c->xp);
  if (c->tls_on) mbedtls_ssl_free(&c->ssl);
  free(c->hs);
  free(c->tin);
  free(c->tout);
  free(c);
}

static void conn_close(conn_t *c) {
  if (c->closing) return;
  c->closing = 1;
  uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  conn_t *c = s->data;
  (void)b;
  if (n < 0) {
    int was_running = c->st == S_RUNNING;
    conn_close(c);
    if (G.resume && !G.done && was_running) {
      /* The reset: reconnect at once and resume. */
      G.lost_at = bench_now();
      start_conn();
    } else if (!G.done) {
      bench_die("connection lost: %s", uv_strerror((int)n));
    }
    return;
  }
  if (c->closing) return;
  if (c->tls_on)
    tls_input(c, rbuf, (size_t)n);
  else
    plain_input(c, rbuf, (size_t)n);
}

static void on_connect(uv_connect_t *req, int status) {
  conn_t *c = req->data;
  if (status != 0) bench_die("connect: %s", uv_strerror(status));
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  c->st = S_FEATURES1;
  send_str(c, HEADER);
}

static void start_conn(void) {
  conn_t *c = calloc(1, sizeof *c);
  if (G.idle) G.conns[G.started] = c;
  G.started++;
  uv_tcp_init(G.loop, &c->tcp);
  c->tcp.data = c;
  c->creq.data = c;
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", G.port, &addr);
  if (uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&addr, on_connect) != 0)
    bench_die("uv_tcp_connect");
}

static void setup_tls(void) {
  mbedtls_ssl_config_init(&G.conf);
  mbedtls_x509_crt_init(&G.ca);
  mbedtls_entropy_init(&G.entropy);
  mbedtls_ctr_drbg_init(&G.drbg);
  if (mbedtls_ctr_drbg_seed(&G.drbg, mbedtls_entropy_func, &G.entropy,
                            (const unsigned char *)"baseline", 8) != 0)
    bench_die("ctr_drbg_seed");
  if (mbedtls_x509_crt_parse_file(&G.ca, G.ca_file) != 0) bench_die("cannot read %s", G.ca_file);
  mbedtls_ssl_config_defaults(&G.conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                              MBEDTLS_SSL_PRESET_DEFAULT);
  mbedtls_ssl_conf_rng(&G.conf, mbedtls_ctr_drbg_random, &G.drbg);
  mbedtls_ssl_conf_authmode(&G.conf, MBEDTLS_SSL_VERIFY_REQUIRED);
  mbedtls_ssl_conf_ca_chain(&G.conf, &G.ca, NULL);
}

int main(int argc, char **argv) {
  const char *parser = "expat";
  G.workload = "firehose";
  G.n = 100000;
  G.m = 1;
  G.settle_ms = 2500;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--parser") == 0 && i + 1 < argc) parser = argv[++i];
    else if (strcmp(argv[i], "--workload") == 0 && i + 1 < argc) G.workload = argv[++i];
    else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) G.port = atoi(argv[++i]);
    else if (strcmp(argv[i], "--n") == 0 && i + 1 < argc) G.n = strtoull(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--m") == 0 && i + 1 < argc) G.m = (unsigned)atoi(argv[++i]);
    else if (strcmp(argv[i], "--tls") == 0 && i + 1 < argc) G.ca_file = argv[++i];
    else if (strcmp(argv[i], "--settle-ms") == 0 && i + 1 < argc) G.settle_ms = (unsigned)atoi(argv[++i]);
    else if (strcmp(argv[i], "--parallel") == 0 && i + 1 < argc) G.parallel = (unsigned)atoi(argv[++i]);
    else bench_die("usage: bench-baseline --parser expat|raw --workload W --port P [--n N] "
                   "[--m M] [--tls CA] [--settle-ms T] [--parallel P]");
  }
  G.expat = strcmp(parser, "expat") == 0;
  if (!G.expat && strcmp(parser, "raw") != 0) bench_die("unknown parser %s", parser);
  G.firehose = strcmp(G.workload, "firehose") == 0;
  G.burst = strcmp(G.workload, "burst") == 0;
  G.idle = strcmp(G.workload, "idle") == 0;
  G.resume = strcmp(G.workload, "resume") == 0;
  if (!G.firehose && !G.burst && !G.idle && !G.resume) bench_die("unknown workload");
  if (G.port == 0) bench_die("--port is required");
  if (!G.idle) G.m = 1;
  long nofile = bench_raise_nofile((long)G.m + 64);
  if (G.idle && nofile < (long)G.m + 16)
    bench_die("RLIMIT_NOFILE hard limit %ld is too low for %u connections", nofile, G.m);
  G.tls = G.ca_file != NULL;
  G.loop = uv_default_loop();
  uv_timer_init(G.loop, &G.timer);
  if (G.tls) setup_tls();
  build_template();
  G.conns = calloc(G.m, sizeof *G.conns);
  if (G.resume) G.resume_ms = calloc(G.n + 1, sizeof(double));
  G.rss0 = bench_rss_kb();
  G.heap0 = bench_heap_kb();
  if (G.idle) {
    /* --parallel 0 (the default): all M at once; else at most P
     * negotiating at a time, the next one started as one gets online. */
    unsigned first = G.parallel == 0 || G.parallel > G.m ? G.m : G.parallel;
    mark_start();
    for (unsigned i = 0; i < first; i++) start_conn();
  } else {
    start_conn();
  }
  uv_run(G.loop, UV_RUN_DEFAULT);
  if (!G.done) bench_die("the workload did not finish");
  const char *name = G.expat ? "expat" : "raw";
  double wall = G.t1 - G.t0, cpu = G.cpu1 - G.cpu0;
  if (G.idle) {
    printf("RESULT client=%s workload=idle tls=%d m=%u online=%u wall_s=%.4f cpu_s=%.4f "
           "rss_delta_kb=%ld kb_per_conn=%.2f cpu_ms_per_conn=%.3f heap_kb_per_conn=%.2f "
           "setup_cpu_ms_per_conn=%.3f parallel=%u\n",
           name, G.tls, G.m, G.online, wall, cpu, G.rss1 - G.rss0,
           (double)(G.rss1 - G.rss0) / G.m, cpu * 1000.0 / G.m,
           (G.heap1 - G.heap0) / G.m, G.setup_cpu * 1000.0 / G.m, G.parallel);
  } else if (G.resume) {
    double *v = G.resume_ms;
    size_t k = (size_t)G.resumes;
    for (size_t i = 1; i < k; i++)
      for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
        double x = v[j];
        v[j] = v[j - 1];
        v[j - 1] = x;
      }
    printf("RESULT client=%s workload=resume tls=%d n=%zu wall_s=%.4f cpu_s=%.4f "
           "resume_ms_median=%.3f resume_ms_min=%.3f resume_ms_max=%.3f cpu_ms_per_resume=%.3f\n",
           name, G.tls, k, wall, cpu, k ? v[k / 2] : 0.0, k ? v[0] : 0.0, k ? v[k - 1] : 0.0,
           k ? cpu * 1000.0 / (double)k : 0.0);
  } else {
    printf("RESULT client=%s workload=%s tls=%d n=%" PRIu64 " wall_s=%.4f cpu_s=%.4f\n", name,
           G.workload, G.tls, G.n, wall, cpu);
  }
  return 0;
}
