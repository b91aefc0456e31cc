/* The chat layer: service discovery (XEP-0030) and entity capabilities
 * (XEP-0115). Public API only (include/ is this file's whole include path);
 * memory from libc, as an app's would be.
 *
 * The verification string (XEP-0115 §5.1) is computed over identities and
 * features sorted by octets, and over data forms (XEP-0128) sorted by
 * FORM_TYPE, their fields by var and the values: what a peer announces is
 * checked the same way before its answer is cached (§5.4). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/base64.h>
#include <mbedtls/sha1.h>
#include <mbedtls/version.h>

#include <xmppuv.h>

#include "common.h"

#define DEFAULT_NODE "https://xmppuv.org"
#define CACHE_MAX 256 /* verified capabilities kept; the oldest goes first */

typedef struct strv {
  char **v;
  size_t n, cap;
} strv_t;

/* A disco#info answer kept or being handed over. */
typedef struct info {
  char *ver; /* the verified verification string (cache entries) */
  xmppuv_disco_identity_t *ids;
  size_t nids;
  strv_t features;
} info_t;

/* A query in flight: it outlives the module if the module is freed first. */
typedef struct query {
  struct query *next;
  xmppuv_disco_t *d; /* NULL once the module is gone */
  xmppuv_disco_info_cb cb;
  void *ud;
  uint64_t iq_id;
  char *jid, *node;
  char *ver; /* to verify, sha-1 only; NULL: none */
} query_t;

struct xmppuv_disco {
  xmppuv_client_t *c;
  uint64_t listener, info_handler, items_handler;
  xmppuv_disco_identity_t identity;
  char *node;
  strv_t features; /* sorted, unique */
  char ver[32];    /* "" until computed */
  info_t cache[CACHE_MAX];
  size_t ncache, cache_next;
  query_t *queries;
};

/* ---- small helpers -------------------------------------------------------- */


static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void strv_free(strv_t *v) {
  for (size_t i = 0; i < v->n; i++) free(v->v[i]);
  free(v->v);
  memset(v, 0, sizeof *v);
}

static int strv_push(strv_t *v, const char *s) {
  if (v->n == v->cap) {
    size_t cap = v->cap ? v->cap * 2 : 8;
    char **p = realloc(v->v, cap * sizeof *p);
    if (p == NULL) return XMPPUV_ENOMEM;
    v->v = p;
    v->cap = cap;
  }
  int failed = 0;
  v->v[v->n] = xmppuv__im_strdup_opt(s, &failed);
  if (failed) return XMPPUV_ENOMEM;
  v->n++;
  return 0;
}

static void identity_free(xmppuv_disco_identity_t *id) {
  free((char *)(uintptr_t)id->category);
  free((char *)(uintptr_t)id->type);
  free((char *)(uintptr_t)id->name);
  free((char *)(uintptr_t)id->lang);
  memset(id, 0, sizeof *id);
}

static int identity_copy(xmppuv_disco_identity_t *to, const xmppuv_disco_identity_t *from) {
  int failed = 0;
  to->category = xmppuv__im_strdup_opt(from->category, &failed);
  to->type = xmppuv__im_strdup_opt(from->type, &failed);
  to->name = xmppuv__im_strdup_opt(from->name, &failed);
  to->lang = xmppuv__im_strdup_opt(from->lang, &failed);
  if (failed) identity_free(to);
  return failed ? XMPPUV_ENOMEM : 0;
}

static void info_free(info_t *in) {
  for (size_t i = 0; i < in->nids; i++) identity_free(&in->ids[i]);
  free(in->ids);
  strv_free(&in->features);
  free(in->ver);
  memset(in, 0, sizeof *in);
}

/* ---- the verification string (XEP-0115 §5.1) ------------------------------- */

typedef struct sbuf {
  char *p;
  size_t len, cap;
  int failed;
} sbuf_t;

static void sb_add(sbuf_t *b, const char *s) {
  size_t n = s != NULL ? strlen(s) : 0;
  if (b->failed) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = (b->len + n + 1) * 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
      b->failed = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s != NULL ? s : "", n);
  b->len += n;
  b->p[b->len] = '\0';
}

static int cmp_identity(const void *a, const void *b) {
  const xmppuv_disco_identity_t *x = a, *y = b;
  int r = strcmp(x->category, y->category);
  if (r == 0) r = strcmp(x->type, y->type);
  if (r == 0) r = strcmp(x->lang ? x->lang : "", y->lang ? y->lang : "");
  if (r == 0) r = strcmp(x->name ? x->name : "", y->name ? y->name : "");
  return r;
}

/* "category/type/lang/name<" for each identity, "feature<" for each
 * feature (both sorted). */
static void sb_identities_features(sbuf_t *b, xmppuv_disco_identity_t *ids, size_t nids,
                                   char **features, size_t nfeatures) {
  qsort(ids, nids, sizeof *ids, cmp_identity);
  for (size_t i = 0; i < nids; i++) {
    sb_add(b, ids[i].category);
    sb_add(b, "/");
    sb_add(b, ids[i].type);
    sb_add(b, "/");
    sb_add(b, ids[i].lang);
    sb_add(b, "/");
    sb_add(b, ids[i].name);
    sb_add(b, "<");
  }
  for (size_t i = 0; i < nfeatures; i++) {
    sb_add(b, features[i]);
    sb_add(b, "<");
  }
}

/* base64(SHA-1(s)) into out (29 bytes with the NUL). */
static int sha1_b64(const char *s, size_t len, char out[32]) {
  unsigned char d[20];
#if MBEDTLS_VERSION_MAJOR >= 3
  if (mbedtls_sha1((const unsigned char *)s, len, d) != 0) return XMPPUV_ECRYPTO;
#else
  if (mbedtls_sha1_ret((const unsigned char *)s, len, d) != 0) return XMPPUV_ECRYPTO;
#endif
  size_t olen = 0;
  if (mbedtls_base64_encode((unsigned char *)out, 32, &olen, d, sizeof d) != 0)
    return XMPPUV_ECRYPTO;
  out[olen] = '\0';
  return 0;
}

/* A data form (XEP-0004) as XEP-0115 §5.4 step 3.7 hashes it. */
typedef struct field {
  const char *var;
  strv_t values;
} field_t;

static int cmp_field(const void *a, const void *b) {
  return strcmp(((const field_t *)a)->var, ((const field_t *)b)->var);
}

typedef struct form {
  const char *form_type;
  const xmppuv_stanza_t *x;
} form_t;

static int cmp_form(const void *a, const void *b) {
  return strcmp(((const form_t *)a)->form_type, ((const form_t *)b)->form_type);
}

static const char *form_type_of(const xmppuv_stanza_t *x) {
  for (xmppuv_stanza_t *f = xmppuv_stanza_child(x, "field", NULL); f != NULL;
       f = xmppuv_stanza_next(f, "field", NULL)) {
    const char *var = xmppuv_stanza_attr(f, "var");
    if (var != NULL && strcmp(var, "FORM_TYPE") == 0)
      return xmppuv_stanza_child_text(f, "value", NULL);
  }
  return NULL;
}

/* The forms part of S; -1: a form to refuse (§5.4: two forms with one
 * FORM_TYPE, or a FORM_TYPE that is not hidden... kept simple: a
 * duplicate FORM_TYPE). */
static int sb_forms(sbuf_t *b, const xmppuv_stanza_t *query) {
  form_t forms[16];
  size_t nforms = 0;
  for (xmppuv_stanza_t *x = xmppuv_stanza_child(query, "x", "jabber:x:data"); x != NULL;
       x = xmppuv_stanza_next(x, "x", "jabber:x:data")) {
    const char *ft = form_type_of(x);
    if (ft == NULL) continue; /* §5.4: forms without FORM_TYPE are ignored */
    if (nforms == sizeof forms / sizeof forms[0]) return -1;
    forms[nforms].form_type = ft;
    forms[nforms].x = x;
    nforms++;
  }
  qsort(forms, nforms, sizeof *forms, cmp_form);
  for (size_t i = 0; i + 1 < nforms; i++)
    if (strcmp(forms[i].form_type, forms[i + 1].form_type) == 0) return -1;
  for (size_t i = 0; i < nforms; i++) {
    sb_add(b, forms[i].form_type);
    sb_add(b, "<");
    field_t fields[64];
    size_t nf = 0;
    for (xmppuv_stanza_t *f = xmppuv_stanza_child(forms[i].x, "field", NULL);
         f != NULL && nf < 64; f = xmppuv_stanza_next(f, "field", NULL)) {
      const char *var = xmppuv_stanza_attr(f, "var");
      if (var == NULL || strcmp(var, "FORM_TYPE") == 0) continue;
      fields[nf].var = var;
      memset(&fields[nf].values, 0, sizeof fields[nf].values);
      for (xmppuv_stanza_t *v = xmppuv_stanza_child(f, "value", NULL); v != NULL;
           v = xmppuv_stanza_next(v, "value", NULL)) {
        const xmppuv_stanza_t *tn = xmppuv_stanza_first_node(v);
        const char *text = tn != NULL && xmppuv_stanza_is_text(tn) ? xmppuv_stanza_text(tn, NULL)
                                                                    : "";
        if (strv_push(&fields[nf].values, text) != 0) b->failed = 1;
      }
      qsort(fields[nf].values.v, fields[nf].values.n, sizeof(char *), cmp_str);
      nf++;
    }
    qsort(fields, nf, sizeof *fields, cmp_field);
    for (size_t k = 0; k < nf; k++) {
      sb_add(b, fields[k].var);
      sb_add(b, "<");
      for (size_t j = 0; j < fields[k].values.n; j++) {
        sb_add(b, fields[k].values.v[j]);
        sb_add(b, "<");
      }
      strv_free(&fields[k].values);
    }
  }
  return 0;
}

const char *xmppuv_disco_caps_ver(xmppuv_disco_t *d) {
  if (d == NULL) return NULL;
  if (d->ver[0] != '\0') return d->ver;
  sbuf_t b = {NULL, 0, 0, 0};
  xmppuv_disco_identity_t id = d->identity;
  sb_identities_features(&b, &id, 1, d->features.v, d->features.n);
  if (b.failed || sha1_b64(b.p != NULL ? b.p : "", b.len, d->ver) != 0) d->ver[0] = '\0';
  free(b.p);
  return d->ver[0] != '\0' ? d->ver : NULL;
}

const char *xmppuv_disco_caps_node(const xmppuv_disco_t *d) {
  return d != NULL ? d->node : NULL;
}

/* ---- the registry ----------------------------------------------------------- */

static size_t find_feature(const xmppuv_disco_t *d, const char *var, int *found) {
  size_t lo = 0, hi = d->features.n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int r = strcmp(d->features.v[mid], var);
    if (r == 0) {
      *found = 1;
      return mid;
    }
    if (r < 0) lo = mid + 1;
    else hi = mid;
  }
  *found = 0;
  return lo;
}

int xmppuv_disco_add_feature(xmppuv_disco_t *d, const char *var) {
  if (d == NULL || var == NULL || var[0] == '\0') return XMPPUV_EINVAL;
  int found;
  size_t at = find_feature(d, var, &found);
  if (found) return 0;
  int rc = strv_push(&d->features, var);
  if (rc != 0) return rc;
  char *s = d->features.v[d->features.n - 1];
  memmove(d->features.v + at + 1, d->features.v + at,
          (d->features.n - 1 - at) * sizeof(char *));
  d->features.v[at] = s;
  d->ver[0] = '\0';
  return 0;
}

int xmppuv_disco_remove_feature(xmppuv_disco_t *d, const char *var) {
  if (d == NULL || var == NULL) return XMPPUV_EINVAL;
  int found;
  size_t at = find_feature(d, var, &found);
  if (!found) return XMPPUV_EINVAL;
  free(d->features.v[at]);
  memmove(d->features.v + at, d->features.v + at + 1, (d->features.n - at - 1) * sizeof(char *));
  d->features.n--;
  d->ver[0] = '\0';
  return 0;
}

int xmppuv_disco_has_feature(const xmppuv_disco_t *d, const char *var) {
  if (d == NULL || var == NULL) return 0;
  int found;
  find_feature(d, var, &found);
  return found;
}

int xmppuv_disco_add_caps(xmppuv_disco_t *d, xmppuv_stanza_t *presence) {
  if (d == NULL || presence == NULL || strcmp(xmppuv_stanza_name(presence), "presence") != 0)
    return XMPPUV_EINVAL;
  const char *ver = xmppuv_disco_caps_ver(d);
  if (ver == NULL) return XMPPUV_ENOMEM;
  xmppuv_stanza_t *old = xmppuv_stanza_child(presence, "c", XMPPUV_NS_CAPS);
  if (old != NULL) xmppuv_stanza_remove(old);
  xmppuv_stanza_t *c = NULL;
  int rc = xmppuv_stanza_new_child(presence, "c", XMPPUV_NS_CAPS, &c);
  if (rc == 0) rc = xmppuv_stanza_set_attr(c, "hash", "sha-1");
  if (rc == 0) rc = xmppuv_stanza_set_attr(c, "node", d->node);
  if (rc == 0) rc = xmppuv_stanza_set_attr(c, "ver", ver);
  return rc;
}

/* ---- answering ---------------------------------------------------------------- */

static int add_identity_el(xmppuv_stanza_t *q, const xmppuv_disco_identity_t *id) {
  xmppuv_stanza_t *el = NULL;
  int rc = xmppuv_stanza_new_child(q, "identity", NULL, &el);
  if (rc == 0) rc = xmppuv_stanza_set_attr(el, "category", id->category);
  if (rc == 0) rc = xmppuv_stanza_set_attr(el, "type", id->type);
  if (rc == 0 && id->name != NULL) rc = xmppuv_stanza_set_attr(el, "name", id->name);
  if (rc == 0 && id->lang != NULL) rc = xmppuv_stanza_set_attr(el, "xml:lang", id->lang);
  return rc;
}

static int on_info_request(xmppuv_client_t *c, xmppuv_stanza_t *iq, void *ud) {
  xmppuv_disco_t *d = ud;
  const xmppuv_stanza_t *q = xmppuv_stanza_child(iq, "query", XMPPUV_NS_DISCO_INFO);
  const char *node = xmppuv_stanza_attr(q, "node");
  xmppuv_stanza_t *reply = NULL;
  int rc;
  if (node != NULL) {
    /* Only our capabilities node (XEP-0115 §6.2): node#ver. */
    const char *ver = xmppuv_disco_caps_ver(d);
    size_t nl = strlen(d->node);
    int ours = ver != NULL && strncmp(node, d->node, nl) == 0 && node[nl] == '#' &&
               strcmp(node + nl + 1, ver) == 0;
    if (!ours) {
      if (xmppuv_iq_error_new(iq, "cancel", "item-not-found", &reply) == 0)
        xmppuv_client_send(c, reply);
      xmppuv_stanza_unref(reply);
      return XMPPUV_HANDLED;
    }
  }
  rc = xmppuv_iq_result_new(iq, &reply);
  xmppuv_stanza_t *rq = NULL;
  if (rc == 0) rc = xmppuv_stanza_new_child(reply, "query", XMPPUV_NS_DISCO_INFO, &rq);
  if (rc == 0 && node != NULL) rc = xmppuv_stanza_set_attr(rq, "node", node);
  if (rc == 0) rc = add_identity_el(rq, &d->identity);
  for (size_t i = 0; rc == 0 && i < d->features.n; i++) {
    xmppuv_stanza_t *f = NULL;
    rc = xmppuv_stanza_new_child(rq, "feature", NULL, &f);
    if (rc == 0) rc = xmppuv_stanza_set_attr(f, "var", d->features.v[i]);
  }
  if (rc == 0) {
    xmppuv_client_send(c, reply);
  } else {
    xmppuv_stanza_unref(reply);
    reply = NULL;
    if (xmppuv_iq_error_new(iq, "wait", "internal-server-error", &reply) == 0)
      xmppuv_client_send(c, reply);
  }
  xmppuv_stanza_unref(reply);
  return XMPPUV_HANDLED;
}

/* We have no items (XEP-0030 §4.2: an empty result). */
static int on_items_request(xmppuv_client_t *c, xmppuv_stanza_t *iq, void *ud) {
  (void)ud;
  const xmppuv_stanza_t *q = xmppuv_stanza_child(iq, "query", XMPPUV_NS_DISCO_ITEMS);
  xmppuv_stanza_t *reply = NULL, *rq = NULL;
  int rc = xmppuv_iq_result_new(iq, &reply);
  if (rc == 0) rc = xmppuv_stanza_new_child(reply, "query", XMPPUV_NS_DISCO_ITEMS, &rq);
  const char *node = xmppuv_stanza_attr(q, "node");
  if (rc == 0 && node != NULL) rc = xmppuv_stanza_set_attr(rq, "node", node);
  if (rc == 0) xmppuv_client_send(c, reply);
  xmppuv_stanza_unref(reply);
  return XMPPUV_HANDLED;
}

/* ---- asking ------------------------------------------------------------------- */

static void query_free(query_t *q) {
  free(q->jid);
  free(q->node);
  free(q->ver);
  free(q);
}

static void unlink_query(xmppuv_disco_t *d, query_t *q) {
  for (query_t **pp = &d->queries; *pp != NULL; pp = &(*pp)->next)
    if (*pp == q) {
      *pp = q->next;
      return;
    }
}

/* An answer's identities and features (sorted). 0, XMPPUV_EPROTO. */
static int read_info(const xmppuv_stanza_t *query, info_t *out) {
  memset(out, 0, sizeof *out);
  size_t n = 0;
  for (xmppuv_stanza_t *e = xmppuv_stanza_child(query, "identity", NULL); e != NULL;
       e = xmppuv_stanza_next(e, "identity", NULL))
    n++;
  out->ids = n > 0 ? calloc(n, sizeof *out->ids) : NULL;
  if (n > 0 && out->ids == NULL) return XMPPUV_ENOMEM;
  for (xmppuv_stanza_t *e = xmppuv_stanza_child(query, "identity", NULL); e != NULL;
       e = xmppuv_stanza_next(e, "identity", NULL)) {
    xmppuv_disco_identity_t id = {xmppuv_stanza_attr(e, "category"),
                                  xmppuv_stanza_attr(e, "type"), xmppuv_stanza_attr(e, "name"),
                                  xmppuv_stanza_attr(e, "xml:lang")};
    if (id.category == NULL || id.type == NULL) continue; /* not an identity */
    if (identity_copy(&out->ids[out->nids], &id) != 0) return XMPPUV_ENOMEM;
    out->nids++;
  }
  for (xmppuv_stanza_t *f = xmppuv_stanza_child(query, "feature", NULL); f != NULL;
       f = xmppuv_stanza_next(f, "feature", NULL)) {
    const char *var = xmppuv_stanza_attr(f, "var");
    if (var != NULL && strv_push(&out->features, var) != 0) return XMPPUV_ENOMEM;
  }
  qsort(out->features.v, out->features.n, sizeof(char *), cmp_str);
  return 0;
}

/* XEP-0115 §5.4: an answer whose identities or features repeat, or whose
 * forms break the rules, is not verified whatever its hash. */
/* A string that holds a separator of S could make two different answers
 * hash alike ("a<b" as one feature or two): such an answer proves
 * nothing. */
static int has_sep(const char *s, int slash) {
  return s != NULL && (strchr(s, '<') != NULL || (slash && strchr(s, '/') != NULL));
}

static int ambiguous(const xmppuv_stanza_t *query, const info_t *in) {
  for (size_t i = 0; i < in->nids; i++)
    if (has_sep(in->ids[i].category, 1) || has_sep(in->ids[i].type, 1) ||
        has_sep(in->ids[i].lang, 1) || has_sep(in->ids[i].name, 0))
      return 1;
  for (size_t i = 0; i < in->features.n; i++)
    if (has_sep(in->features.v[i], 0)) return 1;
  for (xmppuv_stanza_t *x = xmppuv_stanza_child(query, "x", "jabber:x:data"); x != NULL;
       x = xmppuv_stanza_next(x, "x", "jabber:x:data"))
    for (xmppuv_stanza_t *f = xmppuv_stanza_child(x, "field", NULL); f != NULL;
         f = xmppuv_stanza_next(f, "field", NULL)) {
      if (has_sep(xmppuv_stanza_attr(f, "var"), 0)) return 1;
      for (xmppuv_stanza_t *v = xmppuv_stanza_child(f, "value", NULL); v != NULL;
           v = xmppuv_stanza_next(v, "value", NULL)) {
        const xmppuv_stanza_t *tn = xmppuv_stanza_first_node(v);
        if (tn != NULL && xmppuv_stanza_is_text(tn) && has_sep(xmppuv_stanza_text(tn, NULL), 0))
          return 1;
      }
    }
  return 0;
}

static int verify(const xmppuv_stanza_t *query, info_t *in, const char *ver) {
  if (ambiguous(query, in)) return 0;
  for (size_t i = 0; i + 1 < in->features.n; i++)
    if (strcmp(in->features.v[i], in->features.v[i + 1]) == 0) return 0;
  sbuf_t b = {NULL, 0, 0, 0};
  sb_identities_features(&b, in->ids, in->nids, in->features.v, in->features.n);
  for (size_t i = 0; i + 1 < in->nids; i++)
    if (cmp_identity(&in->ids[i], &in->ids[i + 1]) == 0) b.failed = 1;
  if (sb_forms(&b, query) != 0) b.failed = 1;
  char got[32];
  int ok = !b.failed && sha1_b64(b.p != NULL ? b.p : "", b.len, got) == 0 &&
           strcmp(got, ver) == 0;
  free(b.p);
  return ok;
}

static const info_t *cache_find(const xmppuv_disco_t *d, const char *ver) {
  for (size_t i = 0; i < d->ncache; i++)
    if (strcmp(d->cache[i].ver, ver) == 0) return &d->cache[i];
  return NULL;
}

static void cache_put(xmppuv_disco_t *d, info_t *in, const char *ver) {
  int failed = 0;
  char *v = xmppuv__im_strdup_opt(ver, &failed);
  if (failed) return;
  size_t at = d->ncache < CACHE_MAX ? d->ncache++ : d->cache_next++ % CACHE_MAX;
  info_free(&d->cache[at]);
  d->cache[at] = *in;
  d->cache[at].ver = v;
  memset(in, 0, sizeof *in);
}

static void give(xmppuv_disco_t *d, xmppuv_disco_info_cb cb, void *ud, const char *jid,
                 const char *node, const info_t *in, int verified, int from_cache) {
  xmppuv_disco_info_t info = {jid,     node, in->nids, in->ids, in->features.n,
                              (const char *const *)in->features.v, verified, from_cache};
  cb(d, 0, &info, ud);
}

static void on_info_reply(xmppuv_client_t *c, int status, xmppuv_stanza_t *reply, void *ud) {
  (void)c;
  query_t *q = ud;
  xmppuv_disco_t *d = q->d;
  if (d == NULL) {
    query_free(q);
    return;
  }
  unlink_query(d, q);
  if (status != 0) {
    q->cb(d, status, NULL, q->ud);
    query_free(q);
    return;
  }
  const xmppuv_stanza_t *query = xmppuv_stanza_child(reply, "query", XMPPUV_NS_DISCO_INFO);
  info_t in;
  int rc = query != NULL ? read_info(query, &in) : XMPPUV_EPROTO;
  if (rc != 0) {
    if (query != NULL) info_free(&in);
    q->cb(d, rc, NULL, q->ud);
    query_free(q);
    return;
  }
  int verified = q->ver != NULL && verify(query, &in, q->ver);
  /* Only what the hash proves is kept: a peer cannot make us believe
   * another peer's capabilities. Kept before the app hears of it (it may
   * free the module in its callback). */
  const info_t *kept = NULL;
  if (verified) {
    kept = cache_find(d, q->ver);
    if (kept == NULL) {
      cache_put(d, &in, q->ver);
      kept = cache_find(d, q->ver);
    }
  }
  give(d, q->cb, q->ud, q->jid, q->node, kept != NULL ? kept : &in, verified, 0);
  info_free(&in);
  query_free(q);
}

static int ask(xmppuv_disco_t *d, const char *jid, const char *node, const char *ver,
               xmppuv_disco_info_cb cb, void *ud) {
  query_t *q = calloc(1, sizeof *q);
  if (q == NULL) return XMPPUV_ENOMEM;
  int failed = 0;
  q->d = d;
  q->cb = cb;
  q->ud = ud;
  q->jid = xmppuv__im_strdup_opt(jid, &failed);
  q->node = xmppuv__im_strdup_opt(node, &failed);
  q->ver = xmppuv__im_strdup_opt(ver, &failed);
  xmppuv_stanza_t *iq = NULL, *qe = NULL;
  int rc = failed ? XMPPUV_ENOMEM : xmppuv_stanza_new("iq", NULL, &iq);
  if (rc == 0) rc = xmppuv_stanza_set_attr(iq, "type", "get");
  if (rc == 0) rc = xmppuv_stanza_set_attr(iq, "to", jid);
  if (rc == 0) rc = xmppuv_stanza_new_child(iq, "query", XMPPUV_NS_DISCO_INFO, &qe);
  if (rc == 0 && node != NULL) rc = xmppuv_stanza_set_attr(qe, "node", node);
  if (rc == 0) rc = xmppuv_client_send_iq(d->c, iq, 0, on_info_reply, q, &q->iq_id);
  xmppuv_stanza_unref(iq);
  if (rc != 0) {
    query_free(q);
    return rc;
  }
  q->next = d->queries;
  d->queries = q;
  return 0;
}

int xmppuv_disco_info(xmppuv_disco_t *d, const char *jid, const char *node,
                      xmppuv_disco_info_cb cb, void *user_data) {
  if (d == NULL || jid == NULL || cb == NULL) return XMPPUV_EINVAL;
  return ask(d, jid, node, NULL, cb, user_data);
}

int xmppuv_disco_info_caps(xmppuv_disco_t *d, const char *jid, const char *node,
                           const char *ver, const char *hash, xmppuv_disco_info_cb cb,
                           void *user_data) {
  if (d == NULL || jid == NULL || node == NULL || ver == NULL || cb == NULL)
    return XMPPUV_EINVAL;
  int sha1 = hash == NULL || strcmp(hash, "sha-1") == 0;
  if (sha1) {
    const info_t *hit = cache_find(d, ver);
    if (hit != NULL) {
      /* From the cache: at once, as the caller's own call. */
      give(d, cb, user_data, jid, node, hit, 1, 1);
      return 0;
    }
  }
  size_t n = strlen(node) + 1 + strlen(ver) + 1;
  char *full = malloc(n);
  if (full == NULL) return XMPPUV_ENOMEM;
  memcpy(full, node, strlen(node));
  full[strlen(node)] = '#';
  memcpy(full + strlen(node) + 1, ver, strlen(ver) + 1);
  int rc = ask(d, jid, full, sha1 ? ver : NULL, cb, user_data);
  free(full);
  return rc;
}

size_t xmppuv_disco_cache_size(const xmppuv_disco_t *d) { return d != NULL ? d->ncache : 0; }

/* ---- lifetime -------------------------------------------------------------------- */

static void free_disco(xmppuv_disco_t *d, int client_gone) {
  /* Queries still waiting: their callbacks come later (cancelled), and
   * find no module. */
  for (query_t *q = d->queries; q != NULL;) {
    query_t *next = q->next;
    q->d = NULL;
    if (!client_gone) xmppuv_client_iq_cancel(d->c, q->iq_id);
    q = next;
  }
  if (!client_gone) {
    xmppuv_client_iq_handler_remove(d->c, d->info_handler);
    xmppuv_client_iq_handler_remove(d->c, d->items_handler);
    xmppuv_client_listener_remove(d->c, d->listener);
  }
  for (size_t i = 0; i < d->ncache; i++) info_free(&d->cache[i]);
  identity_free(&d->identity);
  strv_free(&d->features);
  free(d->node);
  free(d);
}

static void on_closed(xmppuv_client_t *c, void *ud) {
  (void)c;
  free_disco(ud, 1);
}

void xmppuv_disco_free(xmppuv_disco_t *d) {
  if (d != NULL) free_disco(d, 0);
}

int xmppuv_disco_new(xmppuv_client_t *c, const xmppuv_disco_identity_t *identity,
                     const char *node, xmppuv_disco_t **out) {
  if (out != NULL) *out = NULL;
  if (c == NULL || out == NULL || identity == NULL || identity->category == NULL ||
      identity->type == NULL || identity->category[0] == '\0' || identity->type[0] == '\0' ||
      (node != NULL && node[0] == '\0'))
    return XMPPUV_EINVAL;
  xmppuv_disco_t *d = calloc(1, sizeof *d);
  if (d == NULL) return XMPPUV_ENOMEM;
  d->c = c;
  int failed = 0;
  d->node = xmppuv__im_strdup_opt(node != NULL ? node : DEFAULT_NODE, &failed);
  int rc = failed ? XMPPUV_ENOMEM : identity_copy(&d->identity, identity);
  static const char *const ours[] = {XMPPUV_NS_DISCO_INFO, XMPPUV_NS_CAPS, "urn:xmpp:ping"};
  for (size_t i = 0; rc == 0 && i < sizeof ours / sizeof ours[0]; i++)
    rc = xmppuv_disco_add_feature(d, ours[i]);
  if (rc == 0)
    rc = xmppuv_client_iq_handler_add(c, "query", XMPPUV_NS_DISCO_INFO, "get", on_info_request,
                                      d, &d->info_handler);
  if (rc == 0)
    rc = xmppuv_client_iq_handler_add(c, "query", XMPPUV_NS_DISCO_ITEMS, "get",
                                      on_items_request, d, &d->items_handler);
  if (rc == 0) {
    xmppuv_client_callbacks_t cbs;
    xmppuv_client_callbacks_init(&cbs);
    cbs.closed = on_closed;
    rc = xmppuv_client_listener_add(c, &cbs, d, &d->listener);
  }
  if (rc != 0) {
    free_disco(d, 0);
    return rc;
  }
  *out = d;
  return 0;
}
