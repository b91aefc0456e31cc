/* Fuzz target: what we do with DNS answers ourselves (lib/transport/dns.c).
 * c-ares parses the wire format; our code orders the SRV records (RFC 2782
 * priorities and weights, XEP-0368 mixing both services), turns them into
 * targets, and interleaves addresses for Happy Eyeballs. Those steps are
 * pure functions, fuzzed here with records decoded from the input; the
 * second mode also runs c-ares's SRV parser on the input as a DNS reply
 * and hands its records over the same way the query code does.
 *
 * Input: 4 header bytes (mode, random seed), then:
 *   mode 0: records, each 7 bytes (priority, weight, port: 16-bit big
 *     endian; flags: bit 0 direct TLS, bits 1-5 target length) and the
 *     target's bytes;
 *   mode 1: a DNS reply for ares_parse_srv_reply();
 *   mode 2: addresses for xmppuv__dns_interleave() (a family byte and 8
 *     address bytes each).
 * Checks: the order is a permutation sorted by priority and the same for
 * the same random numbers; the targets are exactly the non-root records in
 * that order, hosts without the final dot; no records gives the fallback
 * {domain, 5222}; only root targets give XMPPUV_ENOSERVICE; interleaving
 * keeps every address, alternates IPv6 and IPv4 while both last, and keeps
 * each family's order. */
#include <ares.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fuzz_input.h"
#include "transport/dns.h"
#include "xmppuv.h"

#define DOMAIN "example.net"
#define MAX_RECORDS 64

static uint32_t next_random(void *ud) { return fz_rng_next(ud); }

static int same_record(const xmppuv__srv_record_t *a, const xmppuv__srv_record_t *b) {
  return a->priority == b->priority && a->weight == b->weight && a->port == b->port &&
         a->direct_tls == b->direct_tls && a->target == b->target;
}

static int is_root(const char *t) { return t[0] == '\0' || strcmp(t, ".") == 0; }

static void check_records(xmppuv__srv_record_t *recs, size_t n, uint32_t seed) {
  xmppuv__srv_record_t orig[MAX_RECORDS], a[MAX_RECORDS], b[MAX_RECORDS];
  memcpy(orig, recs, n * sizeof *recs);
  memcpy(a, recs, n * sizeof *recs);
  memcpy(b, recs, n * sizeof *recs);
  fz_rng_t r1, r2;
  fz_rng_seed(&r1, seed);
  fz_rng_seed(&r2, seed);
  xmppuv__dns_order_srv(a, n, next_random, &r1);
  xmppuv__dns_order_srv(b, n, next_random, &r2);
  /* Same random numbers, same order. */
  for (size_t i = 0; i < n; i++) FZ_CHECK(same_record(&a[i], &b[i]), "not deterministic");
  /* Sorted by priority, and a permutation (targets are distinct pointers). */
  int used[MAX_RECORDS] = {0};
  for (size_t i = 0; i < n; i++) {
    if (i > 0) FZ_CHECK(a[i - 1].priority <= a[i].priority, "priorities out of order");
    size_t j = 0;
    while (j < n && (used[j] || !same_record(&a[i], &orig[j]))) j++;
    FZ_CHECK(j < n, "record %zu is not one of the input", i);
    used[j] = 1;
  }

  xmppuv__target_list_t *tl = NULL;
  fz_rng_t r3;
  fz_rng_seed(&r3, seed);
  memcpy(b, orig, n * sizeof *orig);
  int rc = xmppuv__dns_targets_from_srv(b, n, DOMAIN, next_random, &r3, &tl);
  size_t usable = 0;
  for (size_t i = 0; i < n; i++) usable += !is_root(orig[i].target);
  if (n == 0) {
    FZ_CHECK(rc == 0 && tl->count == 1 && strcmp(tl->items[0].host, DOMAIN) == 0 &&
                 tl->items[0].port == XMPPUV__XMPP_CLIENT_PORT && !tl->items[0].direct_tls,
             "no records: not the fallback");
  } else if (usable == 0) {
    FZ_CHECK(rc == XMPPUV_ENOSERVICE && tl == NULL, "only root targets: %s",
             xmppuv_err_name(rc));
  } else {
    FZ_CHECK(rc == 0 && tl != NULL && tl->count == usable, "targets: %s, %zu of %zu",
             xmppuv_err_name(rc), tl ? tl->count : 0, usable);
    /* The non-root records in the order the same numbers give. */
    xmppuv__srv_record_t c[MAX_RECORDS];
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
      if (!is_root(orig[i].target)) c[m++] = orig[i];
    fz_rng_t r4;
    fz_rng_seed(&r4, seed);
    xmppuv__dns_order_srv(c, m, next_random, &r4);
    for (size_t i = 0; i < m; i++) {
      const xmppuv__target_t *t = &tl->items[i];
      size_t len = strlen(c[i].target);
      if (len > 1 && c[i].target[len - 1] == '.') len--;
      FZ_CHECK(strlen(t->host) == len && memcmp(t->host, c[i].target, len) == 0,
               "target %zu is '%s', not '%s'", i, t->host, c[i].target);
      FZ_CHECK(t->port == c[i].port && t->direct_tls == (c[i].direct_tls != 0),
               "target %zu port or service", i);
    }
  }
  xmppuv__target_list_free(tl);
}

static void records_mode(fz_in_t *in, uint32_t seed) {
  xmppuv__srv_record_t recs[MAX_RECORDS];
  char names[MAX_RECORDS][33];
  size_t n = 0;
  while (in->n >= 7 && n < MAX_RECORDS) {
    xmppuv__srv_record_t *r = &recs[n];
    r->priority = (uint16_t)(fz_u8(in) << 8 | fz_u8(in));
    r->weight = (uint16_t)(fz_u8(in) << 8 | fz_u8(in));
    r->port = (uint16_t)(fz_u8(in) << 8 | fz_u8(in));
    uint8_t f = fz_u8(in);
    r->direct_tls = f & 1;
    size_t len = (f >> 1) & 31u;
    size_t i = 0;
    for (; i < len && in->n > 0; i++) names[n][i] = (char)fz_u8(in);
    names[n][i] = '\0';
    r->target = names[n];
    n++;
  }
  check_records(recs, n, seed);
}

static void reply_mode(fz_in_t *in, uint32_t seed, int direct) {
  struct ares_srv_reply *reply = NULL;
  if (in->n > INT32_MAX) return;
  int st = ares_parse_srv_reply(in->p, (int)in->n, &reply);
  if (st != ARES_SUCCESS) return;
  xmppuv__srv_record_t recs[MAX_RECORDS];
  size_t n = 0;
  for (struct ares_srv_reply *r = reply; r != NULL && n < MAX_RECORDS; r = r->next, n++) {
    recs[n].target = r->host;
    recs[n].priority = r->priority;
    recs[n].weight = r->weight;
    recs[n].port = r->port;
    recs[n].direct_tls = direct;
  }
  check_records(recs, n, seed);
  ares_free_data(reply);
}

static int family_of(uint8_t b) {
  return (b & 3u) == 0 ? AF_INET6 : (b & 3u) == 1 ? AF_INET : (b & 3u) == 2 ? AF_UNIX : AF_INET6;
}

static void interleave_mode(fz_in_t *in) {
  struct sockaddr_storage src[MAX_RECORDS], dst[MAX_RECORDS];
  size_t n = 0;
  memset(src, 0, sizeof src);
  while (in->n >= 9 && n < MAX_RECORDS) {
    src[n].ss_family = (sa_family_t)family_of(fz_u8(in));
    for (size_t i = 0; i < 8; i++) ((unsigned char *)&src[n])[8 + i] = fz_u8(in);
    n++;
  }
  memset(dst, 0xAA, sizeof dst);
  xmppuv__dns_interleave(src, n, dst);
  size_t i6 = 0, i4 = 0, io = 0, n6 = 0, n4 = 0;
  for (size_t i = 0; i < n; i++) {
    n6 += src[i].ss_family == AF_INET6;
    n4 += src[i].ss_family == AF_INET;
  }
  /* Expected: v6, v4, v6, v4 ... while both last, then the rest, then
   * other families; each family in input order. */
  size_t k = 0;
  for (size_t round = 0; k < n6 + n4; round++) {
    for (int fam = 0; fam < 2; fam++) {
      int want = fam == 0 ? AF_INET6 : AF_INET;
      size_t *idx = fam == 0 ? &i6 : &i4;
      while (*idx < n && src[*idx].ss_family != want) (*idx)++;
      if (*idx == n) continue;
      FZ_CHECK(memcmp(&dst[k], &src[*idx], sizeof dst[k]) == 0, "address %zu misplaced", k);
      (*idx)++;
      k++;
    }
    FZ_CHECK(round <= n, "interleave check does not end");
  }
  for (size_t i = 0; i < n; i++) {
    if (src[i].ss_family == AF_INET6 || src[i].ss_family == AF_INET) continue;
    FZ_CHECK(memcmp(&dst[k], &src[i], sizeof dst[k]) == 0, "other family misplaced");
    k++;
    io++;
  }
  FZ_CHECK(k == n, "interleave lost addresses");
  (void)io;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in_t in = {data, size};
  uint8_t mode = fz_u8(&in);
  uint32_t seed = (uint32_t)fz_u8(&in) << 16 | (uint32_t)fz_u8(&in) << 8 | fz_u8(&in);
  switch (mode % 3u) {
    case 0: records_mode(&in, seed); break;
    case 1: reply_mode(&in, seed, (mode >> 2) & 1); break;
    default: interleave_mode(&in); break;
  }
  return 0;
}
