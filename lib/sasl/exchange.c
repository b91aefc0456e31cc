/* One SASL exchange, apart from its wrapping (see exchange.h). */
#include "sasl/exchange.h"

#include <string.h>

#include "util/alloc.h"
#include "xmppuv.h"

/* Room for any channel-binding value (tls-unique 12, tls-exporter 32,
 * tls-server-end-point up to 64). */
#define CB_MAX 64
#define MAX_LISTED 32

typedef enum {
  ST_NEW,
  ST_WAIT_PASSWORD, /* PLAIN: the initial response needs the password */
  ST_STARTED,       /* initial response given */
  ST_WAIT_KEYS,     /* SCRAM: the client-final needs keys */
  ST_FINAL_SENT,    /* SCRAM: client-final given */
  ST_VERIFIED,      /* SCRAM: the server's signature came in a challenge */
  ST_DONE,
  ST_FAILED
} state_t;

struct xmppuv__sasl_exchange {
  char *username;
  char *mechanisms;
  int have_credentials, allow_anonymous, allow_external, allow_plain_insecure;
  state_t state;
  xmppuv__sasl_choice_t choice;
  xmppuv__scram_t *scram;
  xmppuv__scram_keys_t *offered;
};

int xmppuv__sasl_exchange_new(const xmppuv__sasl_exchange_config_t *cfg,
                              xmppuv__sasl_exchange_t **out) {
  *out = NULL;
  xmppuv__sasl_exchange_t *x = xmppuv__calloc(1, sizeof *x);
  if (x == NULL) return XMPPUV_ENOMEM;
  int rc = 0;
  x->username = xmppuv__strdup_opt(cfg->username, &rc);
  x->mechanisms = xmppuv__strdup_opt(cfg->mechanisms, &rc);
  x->have_credentials = cfg->have_credentials;
  x->allow_anonymous = cfg->allow_anonymous;
  x->allow_external = cfg->allow_external;
  x->allow_plain_insecure = cfg->allow_plain_insecure;
  if (rc != 0) {
    xmppuv__sasl_exchange_free(x);
    return rc;
  }
  *out = x;
  return 0;
}

void xmppuv__sasl_exchange_free(xmppuv__sasl_exchange_t *x) {
  if (x == NULL) return;
  xmppuv__scram_free(x->scram);
  xmppuv__scram_keys_free(x->offered);
  xmppuv__free(x->username);
  xmppuv__free(x->mechanisms);
  xmppuv__free(x);
}

int xmppuv__sasl_exchange_offer_keys(xmppuv__sasl_exchange_t *x,
                                     const xmppuv__scram_keys_t *keys) {
  if (x->state != ST_NEW) return XMPPUV_ESTATE;
  xmppuv__scram_keys_t *copy = NULL;
  int rc = xmppuv__scram_keys_copy(keys, &copy);
  if (rc != 0) return rc;
  xmppuv__scram_keys_free(x->offered);
  x->offered = copy;
  return 0;
}

static int fail(xmppuv__sasl_exchange_t *x, int rc) {
  x->state = ST_FAILED;
  return rc;
}

/* Split "A,B,C" (the app's allow-list) into pointers into copy. */
static size_t split_list(char *copy, const char **items, size_t max) {
  size_t n = 0;
  char *p = copy;
  while (p != NULL && *p != '\0' && n < max) {
    char *comma = strchr(p, ',');
    if (comma != NULL) *comma = '\0';
    while (*p == ' ') p++;
    if (*p != '\0') items[n++] = p;
    p = comma ? comma + 1 : NULL;
  }
  return n;
}

int xmppuv__sasl_exchange_begin(xmppuv__sasl_exchange_t *x,
                                const xmppuv__sasl_context_t *ctx,
                                xmppuv__buf_t *out) {
  if (x->state != ST_NEW) return XMPPUV_ESTATE;
  char *allowed_copy = NULL;
  const char *allowed[MAX_LISTED];
  size_t n_allowed = 0;
  if (x->mechanisms != NULL) {
    allowed_copy = xmppuv__strdup(x->mechanisms);
    if (allowed_copy == NULL) return fail(x, XMPPUV_ENOMEM);
    n_allowed = split_list(allowed_copy, allowed, MAX_LISTED);
  }
  xmppuv__sasl_offer_t offer = {ctx->mechs, ctx->n_mechs, ctx->cb_advertised,
                                ctx->server_cb_types, ctx->n_server_cb_types};
  xmppuv__sasl_policy_t policy;
  memset(&policy, 0, sizeof policy);
  policy.tls_active = ctx->tls_active;
  policy.allow_plain_insecure = x->allow_plain_insecure;
  policy.have_password = x->have_credentials && x->username != NULL;
  policy.allow_anonymous = x->allow_anonymous;
  policy.allow_external = x->allow_external;
  policy.allowed = x->mechanisms != NULL ? allowed : NULL;
  policy.n_allowed = n_allowed;
  int rc = xmppuv__sasl_choose(&offer, ctx->tls_active ? ctx->our_cb_types : NULL,
                               ctx->tls_active ? ctx->n_our_cb_types : 0, &policy,
                               &x->choice);
  xmppuv__free(allowed_copy);
  if (rc != 0) return fail(x, rc);

  xmppuv__mech_t mech = x->choice.mech;
  if (xmppuv__mech_is_scram(mech)) {
    unsigned char cb[CB_MAX];
    size_t cb_len = 0;
    if (xmppuv__mech_is_plus(mech)) {
      cb_len = sizeof cb;
      rc = ctx->cb_data != NULL ? ctx->cb_data(ctx->cb_ud, x->choice.cb_type, cb, &cb_len)
                                : XMPPUV_ESTATE;
    }
    /* No password here ever: SCRAM asks for keys when it needs them. */
    if (rc == 0)
      rc = xmppuv__scram_new(mech, x->username, NULL, x->choice.gs2_cb_flag,
                             cb_len ? cb : NULL, cb_len, NULL, &x->scram);
    xmppuv__secure_zero(cb, sizeof cb);
    if (rc == 0 && x->offered != NULL) rc = xmppuv__scram_use_keys(x->scram, x->offered);
    if (rc == 0)
      rc = xmppuv__scram_expect_ssdp(x->scram, ctx->mechs, ctx->n_mechs, ctx->cb_advertised,
                                     ctx->server_cb_types, ctx->n_server_cb_types);
    if (rc == 0) rc = xmppuv__scram_client_first(x->scram, out);
    if (rc != 0) return fail(x, rc);
    x->state = ST_STARTED;
    return 0;
  }
  if (mech == XMPPUV__MECH_PLAIN) {
    x->state = ST_WAIT_PASSWORD;
    return XMPPUV__SASL_WAIT;
  }
  if (mech == XMPPUV__MECH_ANONYMOUS)
    rc = xmppuv__sasl_anonymous(NULL, out);
  else if (mech == XMPPUV__MECH_EXTERNAL)
    /* No authzid: the server takes the identity from the certificate
     * (XEP-0178 §2), and the response is empty ("="). */
    rc = xmppuv__sasl_external(NULL, out);
  else
    rc = XMPPUV_ENOMECH;
  if (rc != 0) return fail(x, rc);
  x->state = ST_STARTED;
  return 0;
}

xmppuv__mech_t xmppuv__sasl_exchange_mech(const xmppuv__sasl_exchange_t *x) {
  return x->choice.mech;
}

const char *xmppuv__sasl_exchange_cb_type(const xmppuv__sasl_exchange_t *x) {
  return x->choice.cb_type;
}

void xmppuv__sasl_exchange_need(const xmppuv__sasl_exchange_t *x,
                                xmppuv__sasl_need_t *need) {
  memset(need, 0, sizeof *need);
  if (x->state == ST_WAIT_PASSWORD) {
    need->kind = XMPPUV__SASL_NEED_PASSWORD;
    need->mech = x->choice.mech;
  } else if (x->state == ST_WAIT_KEYS) {
    need->kind = XMPPUV__SASL_NEED_KEYS;
    xmppuv__scram_key_request(x->scram, &need->mech, &need->salt, &need->salt_len,
                              &need->iterations);
  }
}

int xmppuv__sasl_exchange_password(xmppuv__sasl_exchange_t *x,
                                   const char *password, xmppuv__buf_t *out) {
  if (x->state != ST_WAIT_PASSWORD) return XMPPUV_ESTATE;
  if (password == NULL) return XMPPUV_EINVAL;
  int rc = xmppuv__sasl_plain(NULL, x->username, password, out);
  if (rc != 0) return fail(x, rc);
  x->state = ST_STARTED;
  return 0;
}

int xmppuv__sasl_exchange_keys(xmppuv__sasl_exchange_t *x,
                               const xmppuv__scram_keys_t *keys,
                               xmppuv__buf_t *out) {
  if (x->state != ST_WAIT_KEYS) return XMPPUV_ESTATE;
  int rc = xmppuv__scram_use_keys(x->scram, keys);
  if (rc == 0) rc = xmppuv__scram_client_final(x->scram, out);
  if (rc == XMPPUV__SCRAM_NEED_KEYS) return XMPPUV__SASL_WAIT;
  if (rc != 0) return fail(x, rc);
  x->state = ST_FINAL_SENT;
  return 0;
}

int xmppuv__sasl_exchange_challenge(xmppuv__sasl_exchange_t *x, const char *data,
                                    size_t len, xmppuv__buf_t *out) {
  if (x->scram == NULL) {
    /* PLAIN and ANONYMOUS take no challenge. */
    if (x->state == ST_STARTED) return fail(x, XMPPUV_EPROTO);
    return XMPPUV_ESTATE;
  }
  int rc;
  if (x->state == ST_STARTED) {
    rc = xmppuv__scram_server_first(x->scram, data, len, out);
    if (rc == XMPPUV__SCRAM_NEED_KEYS) {
      x->state = ST_WAIT_KEYS;
      return XMPPUV__SASL_WAIT;
    }
    if (rc != 0) return fail(x, rc);
    x->state = ST_FINAL_SENT;
    return 0;
  }
  if (x->state == ST_FINAL_SENT) {
    /* RFC 6120 §6.3.10: the server-final message may come in a challenge,
     * answered by an empty response. */
    rc = xmppuv__scram_server_final(x->scram, data, len);
    if (rc != 0) return fail(x, rc);
    x->state = ST_VERIFIED;
    return 0;
  }
  return fail(x, XMPPUV_EPROTO);
}

int xmppuv__sasl_exchange_success(xmppuv__sasl_exchange_t *x, const char *data,
                                  size_t len) {
  if (x->scram == NULL) {
    if (x->state != ST_STARTED) return fail(x, XMPPUV_EPROTO);
    x->state = ST_DONE;
    return 0;
  }
  if (x->state == ST_VERIFIED) {
    x->state = ST_DONE;
    return 0;
  }
  /* RFC 5802 §9: authentication is complete only when the server's
   * signature checks out; a success without it proves nothing. */
  if (x->state != ST_FINAL_SENT || len == 0) return fail(x, XMPPUV_EAUTHSERVER);
  int rc = xmppuv__scram_server_final(x->scram, data, len);
  if (rc != 0) return fail(x, rc);
  x->state = ST_DONE;
  return 0;
}

int xmppuv__sasl_exchange_export_keys(const xmppuv__sasl_exchange_t *x,
                                      xmppuv__scram_keys_t **out) {
  *out = NULL;
  if (x->state != ST_DONE || x->scram == NULL) return XMPPUV_ESTATE;
  return xmppuv__scram_keys_export(x->scram, out);
}

int xmppuv__sasl_exchange_used_cached_keys(const xmppuv__sasl_exchange_t *x) {
  return x->scram != NULL && xmppuv__scram_used_cached_keys(x->scram);
}

const char *xmppuv__sasl_exchange_error_text(const xmppuv__sasl_exchange_t *x) {
  return x->scram != NULL ? xmppuv__scram_error_text(x->scram) : NULL;
}
