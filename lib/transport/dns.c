/* c-ares on the libuv loop: SRV targets (RFC 6120 §3.2, XEP-0368) and
 * addresses (RFC 8305 §4 order). See dns.h for the contract.
 *
 * Life of a query: start (channel, timer, c-ares queries launched) -> the
 * timer fires at once, then at c-ares's next timeout or our deadline; poll
 * events feed ares_process_fd -> after each ares_process_fd (never inside a
 * c-ares callback, where destroying the channel is forbidden) the query
 * checks whether it is done -> finish: the channel is destroyed (c-ares tells
 * us to stop polling each socket), every handle closed -> the last close
 * callback frees the query and runs the user's callback. */
#include "transport/dns.h"

#include <ares.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"

#define AREA "dns"

typedef enum { KIND_TARGETS, KIND_RESOLVE } query_kind_t;

/* The two SRV services of XEP-0368 §3, looked up side by side. */
enum { SVC_XMPPS, SVC_XMPP, SVC_COUNT };
static const char *const service_prefix[SVC_COUNT] = {"_xmpps-client._tcp.",
                                                      "_xmpp-client._tcp."};

typedef struct srv_lookup {
  xmppuv__dns_query_t *q;
  int done;
  int ares_status;              /* ARES_SUCCESS once parsed */
  struct ares_srv_reply *reply; /* c-ares's list, freed with ares_free_data */
} srv_lookup_t;

/* One c-ares socket being watched. Freed in its close callback, as the
 * handle may be closed from inside its own poll callback. */
typedef struct dns_poll {
  uv_poll_t handle;
  ares_socket_t fd;
  xmppuv__dns_query_t *q;
  struct dns_poll *next;
} dns_poll_t;

struct xmppuv__dns_query {
  uv_loop_t *loop;
  query_kind_t kind;
  ares_channel channel; /* NULL for an IP literal and once destroyed */
  uv_timer_t timer;     /* c-ares timeouts, our deadline, the first tick */
  dns_poll_t *polls;
  uint64_t deadline; /* loop time (ms) */

  int finishing;     /* the result is decided; handles are closing */
  unsigned closing;  /* handles whose close callback is still due */
  int error;         /* set when a socket could not be watched */
  int status;        /* the result, once finishing */
  void *result;      /* xmppuv__target_list_t * or xmppuv__addr_list_t * */

  xmppuv__dns_targets_cb targets_cb;
  xmppuv__dns_addrs_cb addrs_cb;
  void *user_data;
  const xmppuv__log_t *log;
  xmppuv__dns_random_fn random;
  void *random_user_data;
  uint64_t prng; /* state of the internal PRNG */

  char *name; /* the domain (targets) or host (resolve) */
  uint16_t port;

  srv_lookup_t srv[SVC_COUNT]; /* KIND_TARGETS */
  int addr_done;               /* KIND_RESOLVE */
  int addr_status;
  struct ares_addrinfo *addrinfo;
};

/* ---- c-ares library setup ---------------------------------------------- */

static uv_once_t ares_once = UV_ONCE_INIT;
static int ares_init_status;

static void *ares_alloc(size_t size) { return xmppuv__malloc(size); }
static void *ares_realloc(void *ptr, size_t size) {
  return xmppuv__realloc(ptr, size);
}
static void ares_dealloc(void *ptr) { xmppuv__free(ptr); }

static void init_ares(void) {
  /* If the application initialised c-ares first, this only counts a
   * reference and c-ares keeps the application's allocator. */
  ares_init_status =
      ares_library_init_mem(ARES_LIB_INIT_ALL, ares_alloc, ares_dealloc,
                            ares_realloc);
}

/* c-ares status -> xmppuv code, at the boundary; the original goes to the
 * log. */
static int from_ares(int status) {
  switch (status) {
    case ARES_SUCCESS: return 0;
    case ARES_ENODATA:
    case ARES_ENOTFOUND:
    case ARES_ENONAME: return XMPPUV_ENOTFOUND;
    case ARES_ETIMEOUT: return XMPPUV_ETIMEDOUT;
    case ARES_ENOMEM: return XMPPUV_ENOMEM;
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION: return XMPPUV_ECANCELED;
    default: return XMPPUV_EDNS;
  }
}

static int is_no_records(int ares_status) {
  return ares_status == ARES_ENODATA || ares_status == ARES_ENOTFOUND;
}

/* ---- Pure steps ---------------------------------------------------------- */

static int is_root(const char *target) {
  return target == NULL || target[0] == '\0' || strcmp(target, ".") == 0;
}

/* Uniform in [0, max]. */
static uint64_t uniform(xmppuv__dns_random_fn random, void *user_data,
                        uint64_t max) {
  if (max < UINT32_MAX) /* span <= 2^32: multiply-shift, no modulo bias */
    return ((uint64_t)random(user_data) * (max + 1)) >> 32;
  uint64_t r = (uint64_t)random(user_data) << 32;
  r |= random(user_data);
  return max == UINT64_MAX ? r : r % (max + 1);
}

static int by_priority(const void *a, const void *b) {
  const xmppuv__srv_record_t *ra = a, *rb = b;
  return (ra->priority > rb->priority) - (ra->priority < rb->priority);
}

/* Move records[from] to records[to] (to <= from), shifting the ones between
 * up by one so their relative order holds. */
static void move_down(xmppuv__srv_record_t *records, size_t to, size_t from) {
  xmppuv__srv_record_t picked = records[from];
  memmove(&records[to + 1], &records[to], (from - to) * sizeof *records);
  records[to] = picked;
}

/* RFC 2782 "Usage rules", within one priority. */
static void order_by_weight(xmppuv__srv_record_t *group, size_t n,
                            xmppuv__dns_random_fn random, void *user_data) {
  /* Weight-0 records go first, each set keeping its order. */
  size_t zeros = 0;
  for (size_t i = 0; i < n; i++)
    if (group[i].weight == 0) move_down(group, zeros++, i);
  for (size_t k = 0; k + 1 < n; k++) {
    uint64_t sum = 0;
    for (size_t i = k; i < n; i++) sum += group[i].weight;
    uint64_t pick = uniform(random, user_data, sum);
    uint64_t running = 0;
    size_t chosen = k;
    for (size_t i = k; i < n; i++) {
      running += group[i].weight;
      if (running >= pick) {
        chosen = i;
        break;
      }
    }
    move_down(group, k, chosen);
  }
}

void xmppuv__dns_order_srv(xmppuv__srv_record_t *records, size_t count,
                           xmppuv__dns_random_fn random, void *user_data) {
  if (count == 0) return;
  qsort(records, count, sizeof *records, by_priority);
  size_t start = 0;
  while (start < count) {
    size_t end = start + 1;
    while (end < count && records[end].priority == records[start].priority)
      end++;
    order_by_weight(&records[start], end - start, random, user_data);
    start = end;
  }
}

void xmppuv__target_list_free(xmppuv__target_list_t *l) {
  if (l == NULL) return;
  for (size_t i = 0; i < l->count; i++) xmppuv__free(l->items[i].host);
  xmppuv__free(l->items);
  xmppuv__free(l);
}

void xmppuv__addr_list_free(xmppuv__addr_list_t *l) {
  if (l == NULL) return;
  xmppuv__free(l->items);
  xmppuv__free(l);
}

/* A list of n targets whose hosts are all NULL, so it can be freed while
 * being filled. */
static xmppuv__target_list_t *target_list_new(size_t n) {
  xmppuv__target_list_t *l = xmppuv__calloc(1, sizeof *l);
  if (l == NULL) return NULL;
  l->items = xmppuv__calloc(n, sizeof *l->items);
  if (l->items == NULL) {
    xmppuv__free(l);
    return NULL;
  }
  l->count = n;
  return l;
}

static char *host_copy(const char *name) {
  /* One spelling for hosts ("a.example", not "a.example."): they end up in
   * logs and comparisons, and c-ares resolves both alike. */
  size_t len = strlen(name);
  if (len > 1 && name[len - 1] == '.') len--;
  return xmppuv__strndup(name, len);
}

int xmppuv__dns_targets_from_srv(xmppuv__srv_record_t *records, size_t count,
                                 const char *domain,
                                 xmppuv__dns_random_fn random, void *user_data,
                                 xmppuv__target_list_t **out) {
  *out = NULL;
  /* RFC 2782: "." means decidedly not available; XEP-0368 §3.1: such a
   * service is skipped, the other one still counts. */
  size_t usable = 0;
  for (size_t i = 0; i < count; i++) {
    if (!is_root(records[i].target)) records[usable++] = records[i];
  }
  if (usable == 0 && count > 0) return XMPPUV_ENOSERVICE;

  xmppuv__target_list_t *l = target_list_new(usable > 0 ? usable : 1);
  if (l == NULL) return XMPPUV_ENOMEM;
  if (usable == 0) {
    /* RFC 6120 §3.2.2: no SRV records, the domain itself on 5222. */
    l->items[0].host = host_copy(domain);
    l->items[0].port = XMPPUV__XMPP_CLIENT_PORT;
    l->items[0].direct_tls = 0;
    if (l->items[0].host == NULL) goto nomem;
    *out = l;
    return 0;
  }
  /* XEP-0368 §3: both services are one record set for the ordering. */
  xmppuv__dns_order_srv(records, usable, random, user_data);
  for (size_t i = 0; i < usable; i++) {
    l->items[i].host = host_copy(records[i].target);
    if (l->items[i].host == NULL) goto nomem;
    l->items[i].port = records[i].port;
    l->items[i].direct_tls = records[i].direct_tls ? 1 : 0;
  }
  *out = l;
  return 0;
nomem:
  xmppuv__target_list_free(l);
  return XMPPUV_ENOMEM;
}

void xmppuv__dns_interleave(const struct sockaddr_storage *in, size_t count,
                            struct sockaddr_storage *out) {
  size_t n = 0, i6 = 0, i4 = 0;
  for (;;) {
    while (i6 < count && in[i6].ss_family != AF_INET6) i6++;
    while (i4 < count && in[i4].ss_family != AF_INET) i4++;
    if (i6 == count && i4 == count) break;
    if (i6 < count) out[n++] = in[i6++];
    if (i4 < count) out[n++] = in[i4++];
  }
  for (size_t i = 0; i < count; i++)
    if (in[i].ss_family != AF_INET6 && in[i].ss_family != AF_INET)
      out[n++] = in[i];
}

/* ---- Internal PRNG (only for RFC 2782 weights, not for security) -------- */

static uint32_t internal_random(void *user_data) {
  /* splitmix64 */
  uint64_t *state = user_data;
  uint64_t z = (*state += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return (uint32_t)((z ^ (z >> 31)) >> 32);
}

/* ---- Finishing ----------------------------------------------------------- */

static void free_query(xmppuv__dns_query_t *q) {
  for (int s = 0; s < SVC_COUNT; s++)
    if (q->srv[s].reply != NULL) ares_free_data(q->srv[s].reply);
  if (q->addrinfo != NULL) ares_freeaddrinfo(q->addrinfo);
  xmppuv__free(q->name);
  xmppuv__free(q);
}

static void free_result(query_kind_t kind, void *result) {
  if (kind == KIND_TARGETS)
    xmppuv__target_list_free(result);
  else
    xmppuv__addr_list_free(result);
}

/* The last close callback: free everything, then tell the user. */
static void maybe_deliver(xmppuv__dns_query_t *q) {
  if (!q->finishing || q->closing > 0) return;
  query_kind_t kind = q->kind;
  xmppuv__dns_targets_cb targets_cb = q->targets_cb;
  xmppuv__dns_addrs_cb addrs_cb = q->addrs_cb;
  void *user_data = q->user_data;
  int status = q->status;
  void *result = q->result;
  free_query(q);
  if (kind == KIND_TARGETS)
    targets_cb(user_data, status, result);
  else
    addrs_cb(user_data, status, result);
}

static void on_handle_closed(uv_handle_t *h) {
  xmppuv__dns_query_t *q = h->data;
  q->closing--;
  maybe_deliver(q);
}

static void on_poll_closed(uv_handle_t *h) {
  dns_poll_t *p = h->data;
  xmppuv__dns_query_t *q = p->q;
  xmppuv__free(p);
  q->closing--;
  maybe_deliver(q);
}

static void close_poll(xmppuv__dns_query_t *q, dns_poll_t *p) {
  q->closing++;
  uv_close((uv_handle_t *)&p->handle, on_poll_closed);
}

/* Decide the result and start closing. Never called from inside a c-ares
 * callback (ares_destroy is not allowed there). result is taken. */
static void finish(xmppuv__dns_query_t *q, int status, void *result) {
  if (q->finishing) { /* a cancel came first; its ECANCELED stands */
    free_result(q->kind, result);
    return;
  }
  q->finishing = 1;
  q->status = status;
  q->result = result;
  if (q->channel != NULL) {
    /* Ends c-ares's queries (their callbacks see finishing and return) and
     * closes its sockets, telling sock_state_cb to stop each poll. */
    ares_channel channel = q->channel;
    q->channel = NULL;
    ares_destroy(channel);
  }
  while (q->polls != NULL) {
    dns_poll_t *p = q->polls;
    q->polls = p->next;
    close_poll(q, p);
  }
  q->closing++;
  uv_close((uv_handle_t *)&q->timer, on_handle_closed);
}

static const char *srv_outcome(const srv_lookup_t *lk) {
  if (!lk->done) return "no answer before the deadline";
  if (lk->ares_status == ARES_SUCCESS) return "records";
  return ares_strerror(lk->ares_status);
}

/* XEP-0368 §3 and RFC 6120 §3.2: combine what both services gave. */
static void finish_targets(xmppuv__dns_query_t *q) {
  size_t count = 0, usable = 0;
  int failure = 0;
  for (int s = 0; s < SVC_COUNT; s++) {
    srv_lookup_t *lk = &q->srv[s];
    xmppuv__logf(q->log, XMPPUV_LOG_DEBUG, AREA, "SRV %s%s: %s",
                 service_prefix[s], q->name, srv_outcome(lk));
    if (!lk->done) {
      if (failure == 0) failure = XMPPUV_ETIMEDOUT;
    } else if (lk->ares_status == ARES_SUCCESS) {
      for (struct ares_srv_reply *r = lk->reply; r != NULL; r = r->next) {
        count++;
        if (!is_root(r->host)) usable++;
      }
    } else if (!is_no_records(lk->ares_status)) {
      int err = from_ares(lk->ares_status);
      if (failure == 0 || err == XMPPUV_ENOMEM) failure = err;
    }
  }
  /* A failed lookup might have held the records that matter: with nothing
   * usable from the other, report it instead of guessing a fallback. Out of
   * memory is ours, not the network's: never hidden behind a partial list. */
  if ((usable == 0 && failure != 0) || failure == XMPPUV_ENOMEM) {
    finish(q, failure, NULL);
    return;
  }
  xmppuv__srv_record_t *records = NULL;
  if (count > 0) {
    records = xmppuv__calloc(count, sizeof *records);
    if (records == NULL) {
      finish(q, XMPPUV_ENOMEM, NULL);
      return;
    }
  }
  size_t n = 0;
  for (int s = 0; s < SVC_COUNT; s++) {
    if (!q->srv[s].done || q->srv[s].ares_status != ARES_SUCCESS) continue;
    for (struct ares_srv_reply *r = q->srv[s].reply; r != NULL; r = r->next) {
      records[n].target = r->host;
      records[n].priority = r->priority;
      records[n].weight = r->weight;
      records[n].port = r->port;
      records[n].direct_tls = s == SVC_XMPPS;
      n++;
    }
  }
  xmppuv__target_list_t *targets = NULL;
  int rc = xmppuv__dns_targets_from_srv(records, n, q->name, q->random,
                                        q->random_user_data, &targets);
  xmppuv__free(records);
  if (rc == 0 && n == 0)
    xmppuv__logf(q->log, XMPPUV_LOG_DEBUG, AREA,
                 "no SRV records for %s: falling back to %s:%u", q->name,
                 q->name, XMPPUV__XMPP_CLIENT_PORT);
  finish(q, rc, targets);
}

static int same_addr(const struct sockaddr_storage *a,
                     const struct sockaddr_storage *b) {
  return memcmp(a, b, sizeof *a) == 0;
}

/* Network byte order without the sockets API. */
static void set_port(void *field, uint16_t port) {
  unsigned char *b = field;
  b[0] = (unsigned char)(port >> 8);
  b[1] = (unsigned char)(port & 0xffu);
}

static void finish_resolve(xmppuv__dns_query_t *q) {
  if (q->addr_status != ARES_SUCCESS) {
    xmppuv__logf(q->log, XMPPUV_LOG_DEBUG, AREA, "addresses of %s: %s",
                 q->name, ares_strerror(q->addr_status));
    finish(q, from_ares(q->addr_status), NULL);
    return;
  }
  size_t n = 0;
  for (struct ares_addrinfo_node *a = q->addrinfo ? q->addrinfo->nodes : NULL;
       a != NULL; a = a->ai_next)
    n++;
  struct sockaddr_storage *found = n ? xmppuv__calloc(n, sizeof *found) : NULL;
  if (n > 0 && found == NULL) {
    finish(q, XMPPUV_ENOMEM, NULL);
    return;
  }
  size_t unique = 0;
  for (struct ares_addrinfo_node *a = q->addrinfo ? q->addrinfo->nodes : NULL;
       a != NULL; a = a->ai_next) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (a->ai_family == AF_INET6 &&
        a->ai_addrlen >= sizeof(struct sockaddr_in6)) {
      memcpy(&ss, a->ai_addr, sizeof(struct sockaddr_in6));
      set_port(&((struct sockaddr_in6 *)&ss)->sin6_port, q->port);
    } else if (a->ai_family == AF_INET &&
               a->ai_addrlen >= sizeof(struct sockaddr_in)) {
      memcpy(&ss, a->ai_addr, sizeof(struct sockaddr_in));
      set_port(&((struct sockaddr_in *)&ss)->sin_port, q->port);
    } else {
      continue;
    }
    size_t i;
    for (i = 0; i < unique; i++)
      if (same_addr(&found[i], &ss)) break;
    if (i == unique) found[unique++] = ss;
  }
  xmppuv__logf(q->log, XMPPUV_LOG_DEBUG, AREA, "addresses of %s: %zu",
               q->name, unique);
  if (unique == 0) {
    xmppuv__free(found);
    finish(q, XMPPUV_ENOTFOUND, NULL);
    return;
  }
  xmppuv__addr_list_t *l = xmppuv__calloc(1, sizeof *l);
  struct sockaddr_storage *items =
      l ? xmppuv__calloc(unique, sizeof *items) : NULL;
  if (items == NULL) {
    xmppuv__free(l);
    xmppuv__free(found);
    finish(q, XMPPUV_ENOMEM, NULL);
    return;
  }
  xmppuv__dns_interleave(found, unique, items);
  xmppuv__free(found);
  l->items = items;
  l->count = unique;
  finish(q, 0, l);
}

/* ---- Driving c-ares ------------------------------------------------------ */

static void on_timer(uv_timer_t *t);

static void arm_timer(xmppuv__dns_query_t *q) {
  uint64_t now = uv_now(q->loop);
  uint64_t wait = q->deadline > now ? q->deadline - now : 0;
  struct timeval tv;
  if (q->channel != NULL && ares_timeout(q->channel, NULL, &tv) != NULL) {
    uint64_t ares_ms = (uint64_t)tv.tv_sec * 1000u +
                       ((uint64_t)tv.tv_usec + 999u) / 1000u;
    if (ares_ms < wait) wait = ares_ms;
  }
  uv_timer_start(&q->timer, on_timer, wait, 0);
}

/* After every round of c-ares processing. */
static void check_done(xmppuv__dns_query_t *q) {
  if (q->finishing) return;
  if (q->error != 0) {
    finish(q, q->error, NULL);
  } else if (q->kind == KIND_TARGETS) {
    if (q->srv[SVC_XMPPS].done && q->srv[SVC_XMPP].done) finish_targets(q);
  } else if (q->addr_done) {
    finish_resolve(q);
  }
  if (!q->finishing) arm_timer(q);
}

static void on_timer(uv_timer_t *t) {
  xmppuv__dns_query_t *q = t->data;
  if (q->finishing) return;
  if (q->channel == NULL) { /* an IP literal: the answer was ready */
    void *result = q->result;
    q->result = NULL;
    finish(q, 0, result);
    return;
  }
  if (uv_now(q->loop) >= q->deadline) {
    xmppuv__logf(q->log, XMPPUV_LOG_DEBUG, AREA, "lookup of %s timed out",
                 q->name);
    if (q->kind == KIND_TARGETS)
      finish_targets(q); /* usable records of one service still count */
    else
      finish(q, XMPPUV_ETIMEDOUT, NULL);
    return;
  }
  ares_process_fd(q->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  check_done(q);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  dns_poll_t *p = h->data;
  xmppuv__dns_query_t *q = p->q;
  ares_socket_t fd = p->fd;
  if (q->finishing) return;
  /* p may be closed (not freed) during processing; only q is used after. */
  if (status < 0) /* let c-ares find the error on the socket */
    ares_process_fd(q->channel, fd, fd);
  else
    ares_process_fd(q->channel,
                    (events & UV_READABLE) ? fd : ARES_SOCKET_BAD,
                    (events & UV_WRITABLE) ? fd : ARES_SOCKET_BAD);
  check_done(q);
}

/* ARES_OPT_SOCK_STATE_CB: c-ares opens, watches and closes its sockets. */
static void sock_state_cb(void *data, ares_socket_t fd, int readable,
                          int writable) {
  xmppuv__dns_query_t *q = data;
  dns_poll_t **pp = &q->polls;
  while (*pp != NULL && (*pp)->fd != fd) pp = &(*pp)->next;
  dns_poll_t *p = *pp;
  if (!readable && !writable) {
    /* Stop before c-ares closes the descriptor. */
    if (p != NULL) {
      *pp = p->next;
      close_poll(q, p);
    }
    return;
  }
  if (q->finishing || q->error != 0) return;
  if (p == NULL) {
    p = xmppuv__malloc(sizeof *p);
    if (p == NULL) {
      q->error = XMPPUV_ENOMEM;
      return;
    }
    int rc = uv_poll_init_socket(q->loop, &p->handle, fd);
    if (rc != 0) {
      xmppuv__free(p);
      q->error = rc;
      return;
    }
    p->handle.data = p;
    p->fd = fd;
    p->q = q;
    p->next = q->polls;
    q->polls = p;
  }
  int events = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);
  int rc = uv_poll_start(&p->handle, events, on_poll);
  if (rc != 0) q->error = rc;
}

/* c-ares callbacks only record; the query decides after ares_process_fd. */
static void srv_cb(void *arg, int status, int timeouts, unsigned char *abuf,
                   int alen) {
  srv_lookup_t *lk = arg;
  (void)timeouts;
  if (lk->q->finishing) return;
  if (status == ARES_SUCCESS)
    status = ares_parse_srv_reply(abuf, alen, &lk->reply);
  lk->ares_status = status;
  lk->done = 1;
}

static void addrinfo_cb(void *arg, int status, int timeouts,
                        struct ares_addrinfo *res) {
  xmppuv__dns_query_t *q = arg;
  (void)timeouts;
  if (q->finishing) {
    if (res != NULL) ares_freeaddrinfo(res);
    return;
  }
  q->addrinfo = res;
  q->addr_status = status;
  q->addr_done = 1;
}

/* ---- Starting ------------------------------------------------------------ */

static int check_name(const char *name) {
  if (name == NULL) return XMPPUV_EINVAL;
  size_t len = strlen(name);
  /* RFC 1035 §2.3.4: 253 octets in text form, plus an optional final dot. */
  if (len == 0 || len > 254 || (len == 254 && name[253] != '.'))
    return XMPPUV_EINVAL;
  return 0;
}

static int query_new(uv_loop_t *loop, query_kind_t kind, const char *name,
                     const xmppuv__dns_options_t *opts,
                     xmppuv__dns_query_t **out) {
  *out = NULL;
  uv_once(&ares_once, init_ares);
  if (ares_init_status != ARES_SUCCESS) return from_ares(ares_init_status);
  xmppuv__dns_query_t *q = xmppuv__calloc(1, sizeof *q);
  if (q == NULL) return XMPPUV_ENOMEM;
  q->name = xmppuv__strdup(name);
  if (q->name == NULL) {
    xmppuv__free(q);
    return XMPPUV_ENOMEM;
  }
  q->loop = loop;
  q->kind = kind;
  uint64_t timeout = XMPPUV__DNS_DEFAULT_TIMEOUT_MS;
  if (opts != NULL && opts->timeout_ms != 0) timeout = opts->timeout_ms;
  uint64_t now = uv_now(loop);
  q->deadline = timeout > UINT64_MAX - now ? UINT64_MAX : now + timeout;
  q->log = opts != NULL ? opts->log : NULL;
  if (opts != NULL && opts->random != NULL) {
    q->random = opts->random;
    q->random_user_data = opts->random_user_data;
  } else {
    q->prng = uv_hrtime() ^ (uint64_t)(uintptr_t)q;
    q->random = internal_random;
    q->random_user_data = &q->prng;
  }
  for (int s = 0; s < SVC_COUNT; s++) q->srv[s].q = q;
  *out = q;
  return 0;
}

static int channel_new(xmppuv__dns_query_t *q,
                       const xmppuv__dns_options_t *opts) {
  struct ares_options o;
  memset(&o, 0, sizeof o);
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_DOMAINS;
  o.sock_state_cb = sock_state_cb;
  o.sock_state_cb_data = q;
  /* The names we look up are fully qualified (RFC 6120 §3.2): no search
   * list. */
  o.domains = NULL;
  o.ndomains = 0;
  const char *servers = opts != NULL ? opts->servers : NULL;
  if (servers != NULL) {
    mask |= ARES_OPT_LOOKUPS;
    o.lookups = (char *)"b"; /* DNS only: the servers given are the truth */
  }
  int status = ares_init_options(&q->channel, &o, mask);
  if (status != ARES_SUCCESS) {
    q->channel = NULL;
    xmppuv__logf(q->log, XMPPUV_LOG_DEBUG, AREA, "ares_init_options: %s",
                 ares_strerror(status));
    return status == ARES_ENOMEM ? XMPPUV_ENOMEM : XMPPUV_EDNS;
  }
  if (servers != NULL) {
    status = ares_set_servers_ports_csv(q->channel, servers);
    if (status != ARES_SUCCESS) {
      xmppuv__logf(q->log, XMPPUV_LOG_DEBUG, AREA, "DNS servers \"%s\": %s",
                   servers, ares_strerror(status));
      ares_destroy(q->channel);
      q->channel = NULL;
      return status == ARES_ENOMEM ? XMPPUV_ENOMEM : XMPPUV_EINVAL;
    }
  }
  return 0;
}

/* From here on nothing can fail synchronously: c-ares reports its own
 * failures through the query callbacks, which the first tick collects. */
static void start_timer(xmppuv__dns_query_t *q) {
  uv_timer_init(q->loop, &q->timer);
  q->timer.data = q;
}

int xmppuv__dns_find_targets(uv_loop_t *loop, const char *domain_ascii,
                             const xmppuv__dns_options_t *opts,
                             xmppuv__dns_targets_cb cb, void *user_data,
                             xmppuv__dns_query_t **out) {
  if (out != NULL) *out = NULL;
  if (loop == NULL || cb == NULL) return XMPPUV_EINVAL;
  int rc = check_name(domain_ascii);
  if (rc != 0) return rc;
  size_t len = strlen(domain_ascii);
  char *names[SVC_COUNT];
  for (int s = 0; s < SVC_COUNT; s++) {
    size_t plen = strlen(service_prefix[s]);
    names[s] = xmppuv__malloc(plen + len + 1);
    if (names[s] == NULL) {
      while (s-- > 0) xmppuv__free(names[s]);
      return XMPPUV_ENOMEM;
    }
    memcpy(names[s], service_prefix[s], plen);
    memcpy(names[s] + plen, domain_ascii, len + 1);
  }
  xmppuv__dns_query_t *q;
  rc = query_new(loop, KIND_TARGETS, domain_ascii, opts, &q);
  if (rc == 0) {
    rc = channel_new(q, opts);
    if (rc != 0) free_query(q);
  }
  if (rc != 0) {
    for (int s = 0; s < SVC_COUNT; s++) xmppuv__free(names[s]);
    return rc;
  }
  q->targets_cb = cb;
  q->user_data = user_data;
  start_timer(q);
  for (int s = 0; s < SVC_COUNT; s++) {
    /* ares_query, not ares_search: the SRV owner name is absolute. */
    ares_query(q->channel, names[s], 1 /* C_IN */, 33 /* T_SRV, RFC 2782 */,
               srv_cb, &q->srv[s]);
    xmppuv__free(names[s]);
  }
  uv_timer_start(&q->timer, on_timer, 0, 0);
  if (out != NULL) *out = q;
  return 0;
}

/* An IP literal: the one address, no DNS. Returns 1 if host is one. */
static int parse_literal(const char *host, uint16_t port,
                         struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  /* RFC 6761 §6.3: "localhost" is the loopback address, never a DNS
   * question (c-ares 1.18 asking only the servers given fails on it). */
  if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0)
    host = "127.0.0.1";
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0) return 1;
  memset(ss, 0, sizeof *ss);
  if (strchr(host, ':') != NULL &&
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
    return 1;
  return 0;
}

int xmppuv__dns_resolve(uv_loop_t *loop, const char *host, uint16_t port,
                        const xmppuv__dns_options_t *opts,
                        xmppuv__dns_addrs_cb cb, void *user_data,
                        xmppuv__dns_query_t **out) {
  if (out != NULL) *out = NULL;
  if (loop == NULL || cb == NULL) return XMPPUV_EINVAL;
  int rc = check_name(host);
  if (rc != 0) return rc;
  xmppuv__dns_query_t *q;
  rc = query_new(loop, KIND_RESOLVE, host, opts, &q);
  if (rc != 0) return rc;
  q->port = port;
  q->addrs_cb = cb;
  q->user_data = user_data;

  struct sockaddr_storage literal;
  if (parse_literal(host, port, &literal)) {
    xmppuv__addr_list_t *l = xmppuv__calloc(1, sizeof *l);
    if (l != NULL) l->items = xmppuv__memdup(&literal, sizeof literal);
    if (l == NULL || l->items == NULL) {
      xmppuv__free(l);
      free_query(q);
      return XMPPUV_ENOMEM;
    }
    l->count = 1;
    q->result = l;
    start_timer(q);
    uv_timer_start(&q->timer, on_timer, 0, 0);
    if (out != NULL) *out = q;
    return 0;
  }

  rc = channel_new(q, opts);
  if (rc != 0) {
    free_query(q);
    return rc;
  }
  start_timer(q);
  struct ares_addrinfo_hints hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC; /* A and AAAA */
  hints.ai_socktype = SOCK_STREAM;
  /* May complete at once (hosts file); addrinfo_cb only records. */
  ares_getaddrinfo(q->channel, host, NULL, &hints, addrinfo_cb, q);
  uv_timer_start(&q->timer, on_timer, 0, 0);
  if (out != NULL) *out = q;
  return 0;
}

void xmppuv__dns_cancel(xmppuv__dns_query_t *q) {
  if (q == NULL) return;
  if (q->finishing) {
    /* The answer is decided but not delivered: ECANCELED replaces it. */
    free_result(q->kind, q->result);
    q->result = NULL;
    q->status = XMPPUV_ECANCELED;
    return;
  }
  free_result(q->kind, q->result); /* an IP literal's ready answer */
  q->result = NULL;
  finish(q, XMPPUV_ECANCELED, NULL);
}
