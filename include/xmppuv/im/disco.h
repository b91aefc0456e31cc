/* xmppuv chat layer: service discovery (XEP-0030) and entity
 * capabilities (XEP-0115).
 * Included by <xmppuv.h>; do not include this file directly.
 *
 * Attached to a client, the disco module answers disco#info queries about
 * this client (its identity and the features of every module attached,
 * one registry for all of them) and disco#items (none), and computes the
 * XEP-0115 verification string that other modules (presence) put in
 * outgoing presence. It also asks other entities what they support, and
 * keeps what a capabilities hash announced, once the answer was checked
 * against the hash (an unchecked answer is given to the caller but never
 * cached: a peer cannot poison the cache for others).
 *
 * Released with its client (the `closed` event), or earlier with
 * xmppuv_disco_free(). Everything runs on the client's loop. */
#ifndef XMPPUV_IM_DISCO_H
#define XMPPUV_IM_DISCO_H

#include <stddef.h>

#include "../client.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XMPPUV_NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define XMPPUV_NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define XMPPUV_NS_CAPS "http://jabber.org/protocol/caps"

typedef struct xmppuv_disco xmppuv_disco_t;

typedef struct xmppuv_disco_identity {
  const char *category; /* "client" */
  const char *type;     /* "pc", "bot", "phone", ... */
  const char *name;     /* NULL: none */
  const char *lang;     /* xml:lang, NULL: none */
} xmppuv_disco_identity_t;

/* Attach to c: identity (copied; category and type required) and node,
 * the app's URI for XEP-0115 (NULL: "https://xmppuv.org"). The
 * disco#info feature itself, XEP-0115 and ping (the client answers it)
 * are registered already. Errors: XMPPUV_EINVAL, XMPPUV_ECLOSED,
 * XMPPUV_ENOMEM. */
XMPPUV_EXTERN int xmppuv_disco_new(xmppuv_client_t *c, const xmppuv_disco_identity_t *identity,
                                   const char *node, xmppuv_disco_t **out);
/* Detach and free now (otherwise the client's `closed` does it). NULL: no-op. */
XMPPUV_EXTERN void xmppuv_disco_free(xmppuv_disco_t *d);

/* The feature registry: a module (or the app) adds the namespaces it
 * supports. Added once however often (0 the second time too); the caps
 * string changes with it. Errors: XMPPUV_EINVAL (NULL or empty),
 * XMPPUV_ENOMEM. */
XMPPUV_EXTERN int xmppuv_disco_add_feature(xmppuv_disco_t *d, const char *var);
/* 0, or XMPPUV_EINVAL if it was not there. */
XMPPUV_EXTERN int xmppuv_disco_remove_feature(xmppuv_disco_t *d, const char *var);
XMPPUV_EXTERN int xmppuv_disco_has_feature(const xmppuv_disco_t *d, const char *var);

/* The XEP-0115 verification string of what is registered now (SHA-1,
 * base64), and the node. Borrowed until the next change. */
XMPPUV_EXTERN const char *xmppuv_disco_caps_ver(xmppuv_disco_t *d);
XMPPUV_EXTERN const char *xmppuv_disco_caps_node(const xmppuv_disco_t *d);
/* Add <c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node ver/>
 * to a presence stanza (replacing one there). 0, XMPPUV_EINVAL, XMPPUV_ENOMEM. */
XMPPUV_EXTERN int xmppuv_disco_add_caps(xmppuv_disco_t *d, xmppuv_stanza_t *presence);

/* What an entity said it is and supports. Borrowed for the callback. */
typedef struct xmppuv_disco_info {
  const char *jid;  /* whom it came from */
  const char *node; /* NULL: none */
  size_t nidentities;
  const xmppuv_disco_identity_t *identities;
  size_t nfeatures;
  const char *const *features; /* sorted */
  int verified; /* matched the capabilities hash asked about (and came from the cache, or was cached) */
  int from_cache;
} xmppuv_disco_info_t;

/* status 0 and info; XMPPUV_EIQERROR (the entity answered with an error;
 * info NULL); XMPPUV_EPROTO (an answer that is not disco#info); or an iq
 * outcome (XMPPUV_ETIMEDOUT, XMPPUV_ECANCELED, XMPPUV_ESMFAILED). */
typedef void (*xmppuv_disco_info_cb)(xmppuv_disco_t *d, int status,
                                     const xmppuv_disco_info_t *info, void *user_data);

/* Ask jid (node may be NULL) for its disco#info. Exactly one callback unless
 * this returns an error (XMPPUV_EINVAL, or what xmppuv_client_send_iq()
 * returns). */
XMPPUV_EXTERN int xmppuv_disco_info(xmppuv_disco_t *d, const char *jid, const char *node,
                                    xmppuv_disco_info_cb cb, void *user_data);

/* The same for an entity that announced capabilities (the <c/> of its
 * presence: node, ver, hash): answered from the cache when that ver was
 * verified before; else asked (node#ver), checked against ver (sha-1 only;
 * another hash is asked but not verified), and cached only if it matches. */
XMPPUV_EXTERN int xmppuv_disco_info_caps(xmppuv_disco_t *d, const char *jid, const char *node,
                                         const char *ver, const char *hash,
                                         xmppuv_disco_info_cb cb, void *user_data);

/* How many verified capabilities the cache holds (for tests and stats). */
XMPPUV_EXTERN size_t xmppuv_disco_cache_size(const xmppuv_disco_t *d);

#ifdef __cplusplus
}
#endif

#endif
