/* DNS: finding the XMPP server through c-ares on the loop (RFC 6120 §3.2,
 * XEP-0368, RFC 2782, RFC 8305 §4), against a real dnsmasq on loopback. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "check_main.h"
#include "dnsmasq.h"
#include "failalloc.h"
#include "transport/dns.h"
#include "xmppuv.h"

/* One zone for every test; each test starts its own server with it. */
static const char *const zone[] = {
    /* Priorities given out of order. */
    "--srv-host=_xmpp-client._tcp.prio.test,c.prio.test,5223,30,0",
    "--srv-host=_xmpp-client._tcp.prio.test,a.prio.test,5221,10,0",
    "--srv-host=_xmpp-client._tcp.prio.test,b.prio.test,5222,20,0",
    /* Weights 30 and 10 at one priority, a backup after them. */
    "--srv-host=_xmpp-client._tcp.weights.test,heavy.weights.test,5222,10,30",
    "--srv-host=_xmpp-client._tcp.weights.test,light.weights.test,5222,10,10",
    "--srv-host=_xmpp-client._tcp.weights.test,backup.weights.test,5222,20,0",
    /* No target: dnsmasq answers with the root, ".". */
    "--srv-host=_xmpps-client._tcp.dot.test",
    "--srv-host=_xmpp-client._tcp.dot.test",
    "--host-record=dot.test,192.0.2.50",
    "--srv-host=_xmpps-client._tcp.dotonly.test",
    "--host-record=dotonly.test,192.0.2.51",
    "--srv-host=_xmpps-client._tcp.dotxmpps.test",
    "--srv-host=_xmpp-client._tcp.dotxmpps.test,x.dotxmpps.test,5222,10,0",
    /* Both services, priorities interleaved. */
    "--srv-host=_xmpps-client._tcp.mixed.test,tls.mixed.test,443,5,0",
    "--srv-host=_xmpp-client._tcp.mixed.test,plain.mixed.test,5222,10,0",
    "--srv-host=_xmpps-client._tcp.mixed.test,tls2.mixed.test,5223,20,0",
    /* No SRV records at all. */
    "--host-record=nosrv.test,192.0.2.60",
    /* Three IPv4 and two IPv6 addresses. */
    "--host-record=dual.test,192.0.2.1,2001:db8::1",
    "--host-record=dual.test,192.0.2.2,2001:db8::2",
    "--host-record=dual.test,192.0.2.3",
    "--host-record=v4only.test,192.0.2.9",
    "--host-record=one.test,192.0.2.10,2001:db8::10",
    NULL};

static dnsmasq_t *server;

static void start_server(void) { server = dnsmasq_start(zone); }

static void stop_server(void) {
  dnsmasq_stop(server);
  server = NULL;
}

/* ---- Helpers -------------------------------------------------------------- */

typedef struct outcome {
  uv_loop_t *loop;
  int calls;
  int status;
  xmppuv__target_list_t *targets;
  xmppuv__addr_list_t *addrs;
  uint64_t start;      /* loop time when the query was started */
  uint64_t at;         /* loop time of the callback */
  uv_timer_t *ticker;  /* closed by the callback when set */
} outcome_t;

static void on_targets(void *user_data, int status,
                       xmppuv__target_list_t *targets) {
  outcome_t *o = user_data;
  o->calls++;
  o->status = status;
  o->targets = targets;
  o->at = uv_now(o->loop);
  if (o->ticker != NULL) uv_close((uv_handle_t *)o->ticker, NULL);
}

static void on_addrs(void *user_data, int status, xmppuv__addr_list_t *addrs) {
  outcome_t *o = user_data;
  o->calls++;
  o->status = status;
  o->addrs = addrs;
  o->at = uv_now(o->loop);
  if (o->ticker != NULL) uv_close((uv_handle_t *)o->ticker, NULL);
}

static xmppuv__dns_options_t server_opts(void) {
  xmppuv__dns_options_t opts;
  memset(&opts, 0, sizeof opts);
  opts.servers = dnsmasq_servers(server);
  opts.timeout_ms = 5000;
  return opts;
}

/* One find_targets on a fresh loop, run to the end. */
static outcome_t find_targets_with(const char *domain,
                                   const xmppuv__dns_options_t *opts) {
  uv_loop_t loop;
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  outcome_t o;
  memset(&o, 0, sizeof o);
  o.loop = &loop;
  uv_update_time(&loop);
  o.start = uv_now(&loop);
  ck_assert_int_eq(
      xmppuv__dns_find_targets(&loop, domain, opts, on_targets, &o, NULL), 0);
  ck_assert_int_eq(o.calls, 0); /* never from inside the starting call */
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(o.calls, 1);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  o.loop = NULL;
  return o;
}

static outcome_t find_targets(const char *domain) {
  xmppuv__dns_options_t opts = server_opts();
  return find_targets_with(domain, &opts);
}

static outcome_t resolve_with(const char *host, uint16_t port,
                              const xmppuv__dns_options_t *opts) {
  uv_loop_t loop;
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  outcome_t o;
  memset(&o, 0, sizeof o);
  o.loop = &loop;
  uv_update_time(&loop);
  o.start = uv_now(&loop);
  ck_assert_int_eq(
      xmppuv__dns_resolve(&loop, host, port, opts, on_addrs, &o, NULL), 0);
  ck_assert_int_eq(o.calls, 0);
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(o.calls, 1);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  o.loop = NULL;
  return o;
}

static outcome_t resolve(const char *host, uint16_t port) {
  xmppuv__dns_options_t opts = server_opts();
  return resolve_with(host, port, &opts);
}

static void assert_target(const xmppuv__target_list_t *l, size_t i,
                          const char *host, unsigned port, int direct_tls) {
  ck_assert_msg(i < l->count, "only %zu targets", l->count);
  ck_assert_str_eq(l->items[i].host, host);
  ck_assert_uint_eq(l->items[i].port, port);
  ck_assert_int_eq(l->items[i].direct_tls, direct_tls);
}

/* "2001:db8::1" / "192.0.2.1", port checked separately. */
static const char *addr_text(const struct sockaddr_storage *ss, char *buf,
                             size_t len) {
  if (ss->ss_family == AF_INET6)
    uv_ip6_name((const struct sockaddr_in6 *)ss, buf, len);
  else if (ss->ss_family == AF_INET)
    uv_ip4_name((const struct sockaddr_in *)ss, buf, len);
  else
    snprintf(buf, len, "family %d", ss->ss_family);
  return buf;
}

static unsigned addr_port(const struct sockaddr_storage *ss) {
  if (ss->ss_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
  return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

static int list_has(const xmppuv__addr_list_t *l, const char *text) {
  char buf[64];
  for (size_t i = 0; i < l->count; i++)
    if (strcmp(addr_text(&l->items[i], buf, sizeof buf), text) == 0) return 1;
  return 0;
}

/* A DNS "server" that never answers: a bound UDP socket nobody reads. */
static int silent_server(char *servers, size_t len) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  ck_assert_int_ge(fd, 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t salen = sizeof sa;
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &salen), 0);
  snprintf(servers, len, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
  return fd;
}

static int datagrams_received(int fd) {
  int n = 0;
  char buf[512];
  while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) >= 0) n++;
  return n;
}

/* xorshift64*: a seeded, reproducible source for the weight tests. */
static uint32_t seeded_random(void *user_data) {
  uint64_t *s = user_data;
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return (uint32_t)((*s * 0x2545f4914f6cdd1dull) >> 32);
}

/* ---- SRV targets against dnsmasq ------------------------------------------ */

START_TEST(srv_targets_come_in_priority_order) {
  outcome_t o = find_targets("prio.test");
  ck_assert_int_eq(o.status, 0);
  ck_assert_uint_eq(o.targets->count, 3);
  assert_target(o.targets, 0, "a.prio.test", 5221, 0);
  assert_target(o.targets, 1, "b.prio.test", 5222, 0);
  assert_target(o.targets, 2, "c.prio.test", 5223, 0);
  xmppuv__target_list_free(o.targets);
}
END_TEST

START_TEST(srv_weights_pick_targets_in_proportion) {
  /* RFC 2782: weight 30 against 10 comes first about 3 times in 4 (30/41 or
   * 31/41 with the inclusive sum). 300 lookups with the internal PRNG: the
   * bounds are more than 6 standard deviations away. */
  int heavy_first = 0, light_first = 0;
  const int runs = 300;
  for (int i = 0; i < runs; i++) {
    outcome_t o = find_targets("weights.test");
    ck_assert_int_eq(o.status, 0);
    ck_assert_uint_eq(o.targets->count, 3);
    if (strcmp(o.targets->items[0].host, "heavy.weights.test") == 0)
      heavy_first++;
    else if (strcmp(o.targets->items[0].host, "light.weights.test") == 0)
      light_first++;
    assert_target(o.targets, 2, "backup.weights.test", 5222, 0);
    xmppuv__target_list_free(o.targets);
  }
  ck_assert_int_eq(heavy_first + light_first, runs);
  ck_assert_msg(heavy_first >= runs * 55 / 100 && heavy_first <= runs * 92 / 100,
                "weight 30 came first %d times in %d", heavy_first, runs);
}
END_TEST

START_TEST(dot_targets_mean_no_service_with_ENOSERVICE) {
  /* Both services ".": the domain says it offers no XMPP client service. */
  outcome_t o = find_targets("dot.test");
  ck_assert_int_eq(o.status, XMPPUV_ENOSERVICE);
  ck_assert_ptr_null(o.targets);
  /* "." for xmpps and nothing for xmpp: still no A/AAAA fallback
   * (XEP-0368 §3.1), although the domain has an address. */
  o = find_targets("dotonly.test");
  ck_assert_int_eq(o.status, XMPPUV_ENOSERVICE);
  ck_assert_ptr_null(o.targets);
}
END_TEST

START_TEST(dot_xmpps_target_leaves_the_xmpp_client_records) {
  outcome_t o = find_targets("dotxmpps.test");
  ck_assert_int_eq(o.status, 0);
  ck_assert_uint_eq(o.targets->count, 1);
  assert_target(o.targets, 0, "x.dotxmpps.test", 5222, 0);
  xmppuv__target_list_free(o.targets);
}
END_TEST

START_TEST(xmpps_and_xmpp_records_are_mixed_with_direct_tls_set) {
  /* XEP-0368 §3: one record set; xmpps- targets use direct TLS. */
  outcome_t o = find_targets("mixed.test");
  ck_assert_int_eq(o.status, 0);
  ck_assert_uint_eq(o.targets->count, 3);
  assert_target(o.targets, 0, "tls.mixed.test", 443, 1);
  assert_target(o.targets, 1, "plain.mixed.test", 5222, 0);
  assert_target(o.targets, 2, "tls2.mixed.test", 5223, 1);
  xmppuv__target_list_free(o.targets);
}
END_TEST

START_TEST(no_srv_records_fall_back_to_the_domain_on_5222) {
  /* RFC 6120 §3.2.2, with STARTTLS. */
  outcome_t o = find_targets("nosrv.test");
  ck_assert_int_eq(o.status, 0);
  ck_assert_uint_eq(o.targets->count, 1);
  assert_target(o.targets, 0, "nosrv.test", 5222, 0);
  xmppuv__target_list_free(o.targets);
  /* A trailing dot does not end up in the host. */
  o = find_targets("nosrv.test.");
  ck_assert_int_eq(o.status, 0);
  assert_target(o.targets, 0, "nosrv.test", 5222, 0);
  xmppuv__target_list_free(o.targets);
}
END_TEST

START_TEST(many_lookups_share_one_loop) {
  enum { N = 40 };
  uv_loop_t loop;
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  xmppuv__dns_options_t opts = server_opts();
  outcome_t o[N];
  memset(o, 0, sizeof o);
  for (int i = 0; i < N; i++) {
    o[i].loop = &loop;
    if (i % 2 == 0)
      ck_assert_int_eq(xmppuv__dns_find_targets(&loop, "prio.test", &opts,
                                                on_targets, &o[i], NULL),
                       0);
    else
      ck_assert_int_eq(xmppuv__dns_resolve(&loop, "dual.test", 5222, &opts,
                                           on_addrs, &o[i], NULL),
                       0);
  }
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(o[i].calls, 1);
    ck_assert_int_eq(o[i].status, 0);
    if (i % 2 == 0) {
      assert_target(o[i].targets, 0, "a.prio.test", 5221, 0);
      xmppuv__target_list_free(o[i].targets);
    } else {
      ck_assert_uint_eq(o[i].addrs->count, 5);
      xmppuv__addr_list_free(o[i].addrs);
    }
  }
  ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* ---- Addresses against dnsmasq ------------------------------------------- */

START_TEST(a_and_aaaa_are_interleaved_ipv6_first) {
  outcome_t o = resolve("dual.test", 5222);
  ck_assert_int_eq(o.status, 0);
  ck_assert_uint_eq(o.addrs->count, 5);
  /* RFC 8305 §4: alternate families, IPv6 first, the rest of IPv4 last. */
  static const int families[5] = {AF_INET6, AF_INET, AF_INET6, AF_INET,
                                  AF_INET};
  for (size_t i = 0; i < 5; i++) {
    ck_assert_int_eq(o.addrs->items[i].ss_family, families[i]);
    ck_assert_uint_eq(addr_port(&o.addrs->items[i]), 5222);
  }
  ck_assert(list_has(o.addrs, "2001:db8::1"));
  ck_assert(list_has(o.addrs, "2001:db8::2"));
  ck_assert(list_has(o.addrs, "192.0.2.1"));
  ck_assert(list_has(o.addrs, "192.0.2.2"));
  ck_assert(list_has(o.addrs, "192.0.2.3"));
  xmppuv__addr_list_free(o.addrs);

  o = resolve("v4only.test", 443);
  ck_assert_int_eq(o.status, 0);
  ck_assert_uint_eq(o.addrs->count, 1);
  ck_assert(list_has(o.addrs, "192.0.2.9"));
  ck_assert_uint_eq(addr_port(&o.addrs->items[0]), 443);
  xmppuv__addr_list_free(o.addrs);
}
END_TEST

START_TEST(name_without_address_is_ENOTFOUND) {
  outcome_t o = resolve("missing.test", 5222); /* NXDOMAIN */
  ck_assert_int_eq(o.status, XMPPUV_ENOTFOUND);
  ck_assert_ptr_null(o.addrs);
  o = resolve("_xmpp-client._tcp.prio.test", 5222); /* SRV only, no A */
  ck_assert_int_eq(o.status, XMPPUV_ENOTFOUND);
  ck_assert_ptr_null(o.addrs);
}
END_TEST

typedef struct log_capture {
  int lines;
  int saw_status;
} log_capture_t;

static void capture_log(void *user_data, xmppuv_log_level_t level,
                        const char *area, const char *message) {
  log_capture_t *c = user_data;
  ck_assert_str_eq(area, "dns");
  ck_assert_int_eq(level, XMPPUV_LOG_DEBUG);
  c->lines++;
  /* c-ares's own text for ARES_ENOTFOUND. */
  if (strstr(message, "missing.test") != NULL &&
      strstr(message, "Domain name not found") != NULL)
    c->saw_status = 1;
}

START_TEST(the_c_ares_status_goes_to_the_debug_log) {
  log_capture_t c = {0, 0};
  xmppuv__log_t log = {capture_log, &c, XMPPUV_LOG_DEBUG};
  xmppuv__dns_options_t opts = server_opts();
  opts.log = &log;
  outcome_t o = resolve_with("missing.test", 5222, &opts);
  ck_assert_int_eq(o.status, XMPPUV_ENOTFOUND);
  ck_assert_int_ge(c.lines, 1);
  ck_assert(c.saw_status);
}
END_TEST

/* ---- No DNS needed ---------------------------------------------------------- */

START_TEST(ip_literals_resolve_without_dns) {
  char servers[64];
  int silent = silent_server(servers, sizeof servers);
  xmppuv__dns_options_t opts;
  memset(&opts, 0, sizeof opts);
  opts.servers = servers;
  opts.timeout_ms = 5000;

  outcome_t o = resolve_with("192.0.2.7", 5223, &opts);
  ck_assert_int_eq(o.status, 0);
  ck_assert_uint_eq(o.addrs->count, 1);
  ck_assert(list_has(o.addrs, "192.0.2.7"));
  ck_assert_uint_eq(addr_port(&o.addrs->items[0]), 5223);
  xmppuv__addr_list_free(o.addrs);

  o = resolve_with("2001:db8::7", 5222, &opts);
  ck_assert_int_eq(o.status, 0);
  ck_assert_uint_eq(o.addrs->count, 1);
  ck_assert(list_has(o.addrs, "2001:db8::7"));
  ck_assert_uint_eq(addr_port(&o.addrs->items[0]), 5222);
  xmppuv__addr_list_free(o.addrs);

  o = resolve_with("::1", 5222, &opts);
  ck_assert_int_eq(o.status, 0);
  ck_assert(list_has(o.addrs, "::1"));
  xmppuv__addr_list_free(o.addrs);

  /* The answers came at once, not after the 5 s a DNS query to this
   * server would take, and no query reached it. */
  ck_assert_uint_lt(o.at - o.start, 1000);
  ck_assert_int_eq(datagrams_received(silent), 0);
  close(silent);
}
END_TEST

static void on_tick(uv_timer_t *t) {
  int *ticks = t->data;
  (*ticks)++;
}

START_TEST(unanswered_lookup_times_out_with_ETIMEDOUT_without_blocking) {
  char servers[64];
  int silent = silent_server(servers, sizeof servers);
  xmppuv__dns_options_t opts;
  memset(&opts, 0, sizeof opts);
  opts.servers = servers;
  opts.timeout_ms = 300;

  for (int kind = 0; kind < 2; kind++) {
    uv_loop_t loop;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    uv_timer_t ticker;
    int ticks = 0;
    ck_assert_int_eq(uv_timer_init(&loop, &ticker), 0);
    ticker.data = &ticks;
    ck_assert_int_eq(uv_timer_start(&ticker, on_tick, 10, 10), 0);
    outcome_t o;
    memset(&o, 0, sizeof o);
    o.loop = &loop;
    o.ticker = &ticker;
    uv_update_time(&loop);
    uint64_t start = uv_now(&loop);
    if (kind == 0)
      ck_assert_int_eq(xmppuv__dns_find_targets(&loop, "example.test", &opts,
                                                on_targets, &o, NULL),
                       0);
    else
      ck_assert_int_eq(xmppuv__dns_resolve(&loop, "example.test", 5222, &opts,
                                           on_addrs, &o, NULL),
                       0);
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(o.calls, 1);
    ck_assert_int_eq(o.status, XMPPUV_ETIMEDOUT);
    ck_assert_ptr_null(o.targets);
    ck_assert_ptr_null(o.addrs);
    uint64_t took = o.at - start;
    ck_assert_msg(took >= 300 && took < 2000, "timed out after %llu ms",
                  (unsigned long long)took);
    /* The 10 ms timer went on firing while DNS waited: about 30 times. */
    ck_assert_msg(ticks >= 10, "the loop ran the 10 ms timer %d times", ticks);
    ck_assert_int_ge(datagrams_received(silent), 1);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
  }
  close(silent);
}
END_TEST

START_TEST(one_failed_service_leaves_the_other_services_records) {
  /* dnsmasq forwards these names to a server that never answers. */
  char silent_servers[64], partial[128], broken_xmpps[128], broken_xmpp[128];
  int silent = silent_server(silent_servers, sizeof silent_servers);
  const char *port = strchr(silent_servers, ':') + 1;
  snprintf(partial, sizeof partial,
           "--server=/_xmpps-client._tcp.partial.test/127.0.0.1#%s", port);
  snprintf(broken_xmpps, sizeof broken_xmpps,
           "--server=/_xmpps-client._tcp.broken.test/127.0.0.1#%s", port);
  snprintf(broken_xmpp, sizeof broken_xmpp,
           "--server=/_xmpp-client._tcp.broken.test/127.0.0.1#%s", port);
  const char *const records[] = {
      partial, broken_xmpps, broken_xmpp,
      "--srv-host=_xmpp-client._tcp.partial.test,plain.partial.test,5222,10,0",
      "--host-record=broken.test,192.0.2.70", NULL};
  dnsmasq_t *forwarder = dnsmasq_start(records);
  xmppuv__dns_options_t opts;
  memset(&opts, 0, sizeof opts);
  opts.servers = dnsmasq_servers(forwarder);
  opts.timeout_ms = 500;

  /* The xmpps lookup never ends; the xmpp-client records are used. */
  outcome_t o = find_targets_with("partial.test", &opts);
  ck_assert_int_eq(o.status, 0);
  ck_assert_uint_eq(o.targets->count, 1);
  assert_target(o.targets, 0, "plain.partial.test", 5222, 0);
  xmppuv__target_list_free(o.targets);

  /* Neither lookup ends: the timeout is reported, not an A/AAAA fallback
   * (broken.test has an address). */
  o = find_targets_with("broken.test", &opts);
  ck_assert_int_eq(o.status, XMPPUV_ETIMEDOUT);
  ck_assert_ptr_null(o.targets);

  ck_assert_int_ge(datagrams_received(silent), 2);
  dnsmasq_stop(forwarder);
  close(silent);
}
END_TEST

START_TEST(unreachable_server_gives_EDNS) {
  /* Nothing listens on this port: c-ares sees "connection refused". */
  char servers[64];
  int closed = silent_server(servers, sizeof servers);
  close(closed);
  xmppuv__dns_options_t opts;
  memset(&opts, 0, sizeof opts);
  opts.servers = servers;
  opts.timeout_ms = 5000;
  outcome_t o = find_targets_with("example.test", &opts);
  ck_assert_int_eq(o.status, XMPPUV_EDNS);
  ck_assert_ptr_null(o.targets);
  o = resolve_with("example.test", 5222, &opts);
  ck_assert_int_eq(o.status, XMPPUV_EDNS);
  ck_assert_ptr_null(o.addrs);
}
END_TEST

typedef struct canceller {
  uv_timer_t timer;
  xmppuv__dns_query_t *query;
} canceller_t;

static void cancel_now(uv_timer_t *t) {
  canceller_t *c = (canceller_t *)t;
  xmppuv__dns_cancel(c->query);
  xmppuv__dns_cancel(c->query); /* a second cancel changes nothing */
  uv_close((uv_handle_t *)t, NULL);
}

START_TEST(cancel_in_flight_reports_ECANCELED_once) {
  char servers[64];
  int silent = silent_server(servers, sizeof servers);
  xmppuv__dns_options_t opts;
  memset(&opts, 0, sizeof opts);
  opts.servers = servers;
  opts.timeout_ms = 10000;

  for (int kind = 0; kind < 2; kind++) {
    uv_loop_t loop;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    outcome_t o;
    memset(&o, 0, sizeof o);
    o.loop = &loop;
    canceller_t c;
    ck_assert_int_eq(uv_timer_init(&loop, &c.timer), 0);
    if (kind == 0)
      ck_assert_int_eq(xmppuv__dns_find_targets(&loop, "example.test", &opts,
                                                on_targets, &o, &c.query),
                       0);
    else
      ck_assert_int_eq(xmppuv__dns_resolve(&loop, "example.test", 5222, &opts,
                                           on_addrs, &o, &c.query),
                       0);
    ck_assert_ptr_nonnull(c.query);
    uv_update_time(&loop);
    o.start = uv_now(&loop);
    ck_assert_int_eq(uv_timer_start(&c.timer, cancel_now, 50, 0), 0);
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(o.calls, 1);
    ck_assert_int_eq(o.status, XMPPUV_ECANCELED);
    ck_assert_ptr_null(o.targets);
    ck_assert_ptr_null(o.addrs);
    ck_assert_uint_lt(o.at - o.start, 5000);
    ck_assert_int_ge(datagrams_received(silent), 1);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
  }
  close(silent);
}
END_TEST

START_TEST(cancel_before_the_loop_runs_still_calls_back_from_the_loop) {
  xmppuv__dns_options_t opts = server_opts();
  failalloc_install(); /* counts live blocks, fails nothing */
  for (int kind = 0; kind < 3; kind++) {
    uv_loop_t loop;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    outcome_t o;
    memset(&o, 0, sizeof o);
    o.loop = &loop;
    xmppuv__dns_query_t *q = NULL;
    if (kind == 0)
      ck_assert_int_eq(xmppuv__dns_find_targets(&loop, "prio.test", &opts,
                                                on_targets, &o, &q),
                       0);
    else if (kind == 1)
      ck_assert_int_eq(xmppuv__dns_resolve(&loop, "dual.test", 5222, &opts,
                                           on_addrs, &o, &q),
                       0);
    else /* an IP literal's answer is ready: cancel still wins */
      ck_assert_int_eq(xmppuv__dns_resolve(&loop, "192.0.2.1", 5222, &opts,
                                           on_addrs, &o, &q),
                       0);
    xmppuv__dns_cancel(q);
    ck_assert_int_eq(o.calls, 0);
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(o.calls, 1);
    ck_assert_int_eq(o.status, XMPPUV_ECANCELED);
    ck_assert_ptr_null(o.targets);
    ck_assert_ptr_null(o.addrs);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    ck_assert_int_eq(failalloc_live(), 0);
  }
  failalloc_uninstall();
}
END_TEST

START_TEST(bad_arguments_fail_at_once_and_never_call_back) {
  uv_loop_t loop;
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  outcome_t o;
  memset(&o, 0, sizeof o);
  o.loop = &loop;
  char long_name[300];
  memset(long_name, 'a', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  xmppuv__dns_query_t *q = (xmppuv__dns_query_t *)&o;
  ck_assert_int_eq(
      xmppuv__dns_find_targets(&loop, NULL, NULL, on_targets, &o, &q),
      XMPPUV_EINVAL);
  ck_assert_ptr_null(q);
  ck_assert_int_eq(
      xmppuv__dns_find_targets(&loop, "", NULL, on_targets, &o, NULL),
      XMPPUV_EINVAL);
  ck_assert_int_eq(
      xmppuv__dns_find_targets(&loop, long_name, NULL, on_targets, &o, NULL),
      XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv__dns_resolve(&loop, "", 5222, NULL, on_addrs, &o,
                                       NULL),
                   XMPPUV_EINVAL);
  xmppuv__dns_options_t opts;
  memset(&opts, 0, sizeof opts);
  opts.servers = "not a server";
  ck_assert_int_eq(xmppuv__dns_find_targets(&loop, "example.test", &opts,
                                            on_targets, &o, NULL),
                   XMPPUV_EINVAL);
  ck_assert_int_eq(xmppuv__dns_resolve(&loop, "example.test", 5222, &opts,
                                       on_addrs, &o, NULL),
                   XMPPUV_EINVAL);
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(o.calls, 0);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* ---- Pure ordering ------------------------------------------------------- */

static uint32_t always_zero(void *user_data) {
  (void)user_data;
  return 0;
}

START_TEST(order_sorts_by_priority_first) {
  xmppuv__srv_record_t r[] = {
      {"p30", 30, 100, 1, 0}, {"p10a", 10, 5, 2, 0}, {"p20", 20, 0, 3, 1},
      {"p10b", 10, 50, 4, 1}, {"p0", 0, 0, 5, 0},
  };
  uint64_t seed = 42;
  xmppuv__dns_order_srv(r, 5, seeded_random, &seed);
  ck_assert_str_eq(r[0].target, "p0");
  ck_assert(strncmp(r[1].target, "p10", 3) == 0);
  ck_assert(strncmp(r[2].target, "p10", 3) == 0);
  ck_assert_str_ne(r[1].target, r[2].target);
  ck_assert_str_eq(r[3].target, "p20");
  ck_assert_uint_eq(r[3].port, 3); /* records move whole */
  ck_assert_int_eq(r[3].direct_tls, 1);
  ck_assert_str_eq(r[4].target, "p30");
}
END_TEST

START_TEST(order_follows_rfc2782_weights) {
  /* RFC 2782: weight-0 records first in the running sum, a uniform number
   * in [0, sum] inclusive picks the first record whose running sum reaches
   * it. With weights 0, 10, 30, 60 the first pick is the weight-0 record
   * 1/101 of the time, then 10/101, 30/101, 60/101. The PRNG is seeded: the
   * outcome is the same on every run. */
  enum { RUNS = 100000 };
  static const char *const names[4] = {"w0", "w10", "w30", "w60"};
  static const double expected_first[4] = {1.0 / 101, 10.0 / 101, 30.0 / 101,
                                           60.0 / 101};
  long first[4] = {0, 0, 0, 0}, zero_last = 0;
  uint64_t seed = 0x5eed5eed5eedull;
  for (int run = 0; run < RUNS; run++) {
    xmppuv__srv_record_t r[4] = {
        {"w60", 5, 60, 5222, 0}, {"w0", 5, 0, 5222, 0},
        {"w30", 5, 30, 5222, 0}, {"w10", 5, 10, 5222, 0}};
    xmppuv__dns_order_srv(r, 4, seeded_random, &seed);
    for (int i = 0; i < 4; i++)
      if (strcmp(r[0].target, names[i]) == 0) first[i]++;
    if (strcmp(r[3].target, "w0") == 0) zero_last++;
  }
  for (int i = 0; i < 4; i++) {
    double got = (double)first[i] / RUNS;
    ck_assert_msg(got > expected_first[i] - 0.01 &&
                      got < expected_first[i] + 0.01,
                  "%s first %.4f of the time, expected %.4f", names[i], got,
                  expected_first[i]);
  }
  /* A weight-0 record has "a very small chance of being selected" early:
   * the same rule puts it last 0.900002 of the time. */
  double last = (double)zero_last / RUNS;
  ck_assert_msg(last > 0.89 && last < 0.91,
                "w0 last %ld times in %d", zero_last, RUNS);
}
END_TEST

START_TEST(order_with_all_weights_zero_keeps_every_record) {
  xmppuv__srv_record_t r[] = {
      {"a", 1, 0, 1, 0}, {"b", 1, 0, 2, 0}, {"c", 1, 0, 3, 0}};
  xmppuv__dns_order_srv(r, 3, always_zero, NULL);
  /* A pick of 0 takes the first record left each time. */
  ck_assert_str_eq(r[0].target, "a");
  ck_assert_str_eq(r[1].target, "b");
  ck_assert_str_eq(r[2].target, "c");
}
END_TEST

START_TEST(targets_from_srv_drop_dots_and_fall_back) {
  xmppuv__target_list_t *l = NULL;
  /* No records: the domain on 5222, STARTTLS. */
  ck_assert_int_eq(xmppuv__dns_targets_from_srv(NULL, 0, "example.test",
                                                always_zero, NULL, &l),
                   0);
  ck_assert_uint_eq(l->count, 1);
  assert_target(l, 0, "example.test", 5222, 0);
  xmppuv__target_list_free(l);

  /* Only roots: no service. */
  xmppuv__srv_record_t roots[] = {{"", 0, 0, 0, 1}, {".", 0, 0, 0, 0}};
  ck_assert_int_eq(xmppuv__dns_targets_from_srv(roots, 2, "example.test",
                                                always_zero, NULL, &l),
                   XMPPUV_ENOSERVICE);
  ck_assert_ptr_null(l);

  /* A root among real targets is dropped; the rest keep their service. */
  xmppuv__srv_record_t mix[] = {{"", 0, 0, 0, 1},
                                {"b.example.test.", 20, 0, 5222, 0},
                                {"a.example.test", 10, 0, 5223, 1}};
  ck_assert_int_eq(xmppuv__dns_targets_from_srv(mix, 3, "example.test",
                                                always_zero, NULL, &l),
                   0);
  ck_assert_uint_eq(l->count, 2);
  assert_target(l, 0, "a.example.test", 5223, 1);
  assert_target(l, 1, "b.example.test", 5222, 0);
  xmppuv__target_list_free(l);
  xmppuv__target_list_free(NULL);
  xmppuv__addr_list_free(NULL);
}
END_TEST

static struct sockaddr_storage v4(const char *ip) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  ck_assert_int_eq(uv_ip4_addr(ip, 1, (struct sockaddr_in *)&ss), 0);
  return ss;
}

static struct sockaddr_storage v6(const char *ip) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  ck_assert_int_eq(uv_ip6_addr(ip, 1, (struct sockaddr_in6 *)&ss), 0);
  return ss;
}

START_TEST(interleave_alternates_families_ipv6_first) {
  struct sockaddr_storage in[7] = {v4("192.0.2.1"), v4("192.0.2.2"),
                                   v6("2001:db8::1"), v4("192.0.2.3"),
                                   v6("2001:db8::2"), v6("2001:db8::3"),
                                   v6("2001:db8::4")};
  static const char *const want[7] = {"2001:db8::1", "192.0.2.1",
                                      "2001:db8::2", "192.0.2.2",
                                      "2001:db8::3", "192.0.2.3",
                                      "2001:db8::4"};
  struct sockaddr_storage out[7];
  xmppuv__dns_interleave(in, 7, out);
  char buf[64];
  for (int i = 0; i < 7; i++)
    ck_assert_str_eq(addr_text(&out[i], buf, sizeof buf), want[i]);

  struct sockaddr_storage only4[2] = {v4("192.0.2.1"), v4("192.0.2.2")};
  xmppuv__dns_interleave(only4, 2, out);
  ck_assert_str_eq(addr_text(&out[0], buf, sizeof buf), "192.0.2.1");
  ck_assert_str_eq(addr_text(&out[1], buf, sizeof buf), "192.0.2.2");
}
END_TEST

/* ---- Allocation failures ------------------------------------------------- */

static int build_targets_scenario(void *user_data) {
  (void)user_data;
  xmppuv__srv_record_t r[] = {{"b.example.test", 20, 5, 5222, 0},
                              {"a.example.test", 10, 5, 5223, 1},
                              {".", 10, 0, 0, 1},
                              {"c.example.test", 10, 7, 443, 1}};
  uint64_t seed = 7;
  xmppuv__target_list_t *l = NULL;
  int rc = xmppuv__dns_targets_from_srv(r, 4, "example.test", seeded_random,
                                        &seed, &l);
  if (rc == 0) {
    ck_assert_uint_eq(l->count, 3);
    assert_target(l, 2, "b.example.test", 5222, 0);
  } else {
    ck_assert_ptr_null(l);
  }
  xmppuv__target_list_free(l);
  if (rc != 0) return rc;
  rc = xmppuv__dns_targets_from_srv(NULL, 0, "example.test", seeded_random,
                                    &seed, &l);
  xmppuv__target_list_free(l);
  return rc;
}

START_TEST(building_targets_survives_every_allocation_failure) {
  long points = failalloc_sweep(build_targets_scenario, NULL);
  ck_assert_int_ge(points, 5);
}
END_TEST

/* A whole lookup with the n-th allocation failing, c-ares's own allocations
 * included (they go through xmppuv's allocator). Whatever fails: the start
 * call fails with ENOMEM and never calls back, or the callback runs exactly
 * once; nothing leaks and the loop closes. c-ares 1.18 drops an answer it has
 * no memory to check and waits for another, so some failure points end in
 * ETIMEDOUT, or, for SRV, in the other service's records alone (dns.h: one
 * failed service does not hide the other's records); those lists must still
 * be right. */
typedef struct sweep_stats {
  long points, enomem, timedout, partial;
} sweep_stats_t;

static int lookup_once(int targets, long fail_at, sweep_stats_t *stats) {
  xmppuv__dns_options_t opts = server_opts();
  opts.timeout_ms = 300;
  uv_loop_t loop;
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  outcome_t o;
  memset(&o, 0, sizeof o);
  o.loop = &loop;
  failalloc_fail_at(fail_at);
  int rc = targets ? xmppuv__dns_find_targets(&loop, "mixed.test", &opts,
                                              on_targets, &o, NULL)
                   : xmppuv__dns_resolve(&loop, "one.test", 5222, &opts,
                                         on_addrs, &o, NULL);
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  int failed = failalloc_failed();
  if (rc != 0) {
    ck_assert_int_eq(rc, XMPPUV_ENOMEM);
    ck_assert_int_eq(o.calls, 0);
    stats->enomem++;
  } else {
    ck_assert_int_eq(o.calls, 1);
    if (o.status == XMPPUV_ENOMEM)
      stats->enomem++;
    else if (o.status == XMPPUV_ETIMEDOUT)
      stats->timedout++;
    else
      ck_assert_msg(o.status == 0, "allocation %ld failing gave %s", fail_at,
                    xmppuv_err_name(o.status));
  }
  if (o.status == 0 && o.targets != NULL) {
    /* The full list, or one service's part of it, in order. */
    xmppuv__target_list_t *l = o.targets;
    if (l->count == 3) {
      assert_target(l, 0, "tls.mixed.test", 443, 1);
      assert_target(l, 1, "plain.mixed.test", 5222, 0);
      assert_target(l, 2, "tls2.mixed.test", 5223, 1);
    } else if (l->count == 2) {
      assert_target(l, 0, "tls.mixed.test", 443, 1);
      assert_target(l, 1, "tls2.mixed.test", 5223, 1);
      stats->partial++;
    } else {
      ck_assert_uint_eq(l->count, 1);
      assert_target(l, 0, "plain.mixed.test", 5222, 0);
      stats->partial++;
    }
    ck_assert(failed || l->count == 3);
  }
  if (o.status == 0 && o.addrs != NULL) {
    /* c-ares 1.18 reports success when one of A and AAAA worked. */
    xmppuv__addr_list_t *l = o.addrs;
    if (l->count == 2) {
      ck_assert(list_has(l, "2001:db8::10") && list_has(l, "192.0.2.10"));
      ck_assert_int_eq(l->items[0].ss_family, AF_INET6);
    } else {
      ck_assert_uint_eq(l->count, 1);
      ck_assert(list_has(l, "2001:db8::10") || list_has(l, "192.0.2.10"));
      stats->partial++;
    }
    ck_assert(failed || l->count == 2);
  }
  xmppuv__target_list_free(o.targets);
  xmppuv__addr_list_free(o.addrs);
  ck_assert_msg(failalloc_live() == 0, "allocation %ld failing leaked %ld",
                fail_at, failalloc_live());
  if (failed) stats->points++;
  return failed;
}

START_TEST(a_lookup_survives_every_allocation_failure) {
  for (int targets = 1; targets >= 0; targets--) {
    sweep_stats_t stats = {0, 0, 0, 0};
    failalloc_install();
    long n = 1;
    while (lookup_once(targets, n, &stats)) n++;
    failalloc_uninstall();
    fprintf(stderr, "%s: %ld failure points: %ld ENOMEM, %ld ETIMEDOUT, %ld "
            "partial answers\n", targets ? "targets" : "resolve",
            stats.points, stats.enomem, stats.timedout, stats.partial);
    /* The run with nothing failing gave the full answer (checked above);
     * the failures of our own allocations and most of c-ares's surface as
     * ENOMEM. */
    ck_assert_int_ge(stats.points, 20);
    ck_assert_int_ge(stats.enomem, 10);
  }
}
END_TEST

static Suite *dns_suite(void) {
  Suite *s = suite_create("dns");

  TCase *srv = tcase_create("srv");
  tcase_add_checked_fixture(srv, start_server, stop_server);
  tcase_set_timeout(srv, 60);
  tcase_add_test(srv, srv_targets_come_in_priority_order);
  tcase_add_test(srv, srv_weights_pick_targets_in_proportion);
  tcase_add_test(srv, dot_targets_mean_no_service_with_ENOSERVICE);
  tcase_add_test(srv, dot_xmpps_target_leaves_the_xmpp_client_records);
  tcase_add_test(srv, xmpps_and_xmpp_records_are_mixed_with_direct_tls_set);
  tcase_add_test(srv, no_srv_records_fall_back_to_the_domain_on_5222);
  tcase_add_test(srv, many_lookups_share_one_loop);
  suite_add_tcase(s, srv);

  TCase *addr = tcase_create("addresses");
  tcase_add_checked_fixture(addr, start_server, stop_server);
  tcase_add_test(addr, a_and_aaaa_are_interleaved_ipv6_first);
  tcase_add_test(addr, name_without_address_is_ENOTFOUND);
  tcase_add_test(addr, the_c_ares_status_goes_to_the_debug_log);
  suite_add_tcase(s, addr);

  TCase *loop = tcase_create("loop");
  tcase_add_checked_fixture(loop, start_server, stop_server);
  tcase_add_test(loop, ip_literals_resolve_without_dns);
  tcase_add_test(loop, unanswered_lookup_times_out_with_ETIMEDOUT_without_blocking);
  tcase_add_test(loop, one_failed_service_leaves_the_other_services_records);
  tcase_add_test(loop, unreachable_server_gives_EDNS);
  tcase_add_test(loop, cancel_in_flight_reports_ECANCELED_once);
  tcase_add_test(loop, cancel_before_the_loop_runs_still_calls_back_from_the_loop);
  tcase_add_test(loop, bad_arguments_fail_at_once_and_never_call_back);
  suite_add_tcase(s, loop);

  TCase *pure = tcase_create("ordering");
  tcase_add_test(pure, order_sorts_by_priority_first);
  tcase_add_test(pure, order_follows_rfc2782_weights);
  tcase_add_test(pure, order_with_all_weights_zero_keeps_every_record);
  tcase_add_test(pure, targets_from_srv_drop_dots_and_fall_back);
  tcase_add_test(pure, interleave_alternates_families_ipv6_first);
  tcase_add_test(pure, building_targets_survives_every_allocation_failure);
  suite_add_tcase(s, pure);

  TCase *oom = tcase_create("allocation");
  tcase_add_checked_fixture(oom, start_server, stop_server);
  tcase_set_timeout(oom, 100);
  tcase_add_test(oom, a_lookup_survives_every_allocation_failure);
  suite_add_tcase(s, oom);
  return s;
}

XMPPUV_TEST_MAIN(dns_suite)
