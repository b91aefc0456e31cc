/* xmppuv: JIDs (RFC 7622).
 * Included by <xmppuv.h>; do not include this file directly.
 *
 * A JID is parsed once into its canonical form and is immutable after that:
 *   localpart   PRECIS UsernameCaseMapped (RFC 8265): width-mapped, lowercased,
 *               NFC; characters " & ' / : < > @, spaces and controls refused.
 *   domainpart  IDNA2008 (libidn2): lowercase U-labels, trailing dot removed;
 *               A-labels ("xn--...") and U-labels compare equal. IPv4 and
 *               bracketed IPv6 literals are accepted and kept as given
 *               (IPv6 in canonical form).
 *   resourcepart PRECIS OpaqueString: NFC, otherwise kept as is.
 * Each part is 1 to 1023 bytes after preparation; empty parts are refused.
 * A domain name's ASCII form must also fit DNS: labels of 1 to 63 letters,
 * digits and hyphens, at most 253 characters in all. */
#ifndef XMPPUV_JID_H
#define XMPPUV_JID_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xmppuv_jid xmppuv_jid_t;

/* Parse "[local@]domain[/resource]". Errors: XMPPUV_EINVAL (NULL argument),
 * XMPPUV_EJIDLOCAL, XMPPUV_EJIDDOMAIN, XMPPUV_EJIDRESOURCE (the part that is
 * invalid or too long), XMPPUV_EJID (empty input, or empty part around '@' or
 * '/'), XMPPUV_ENOMEM. */
XMPPUV_EXTERN int xmppuv_jid_parse(const char *text, xmppuv_jid_t **out);

/* Build from parts; local and resource may be NULL. Same errors. */
XMPPUV_EXTERN int xmppuv_jid_new(const char *local, const char *domain,
                                 const char *resource, xmppuv_jid_t **out);

/* A copy; xmppuv_jid_bare() is a copy without the resource. XMPPUV_EINVAL
 * (jid or out NULL), XMPPUV_ENOMEM. */
XMPPUV_EXTERN int xmppuv_jid_copy(const xmppuv_jid_t *jid, xmppuv_jid_t **out);
XMPPUV_EXTERN int xmppuv_jid_bare(const xmppuv_jid_t *jid, xmppuv_jid_t **out);

/* NULL is a no-op. */
XMPPUV_EXTERN void xmppuv_jid_free(xmppuv_jid_t *jid);

/* Canonical parts, borrowed for the JID's lifetime. local and resource are
 * NULL when absent; a JID always has a domain. Every reader below returns
 * NULL (or 0) for a NULL jid. */
XMPPUV_EXTERN const char *xmppuv_jid_local(const xmppuv_jid_t *jid);
XMPPUV_EXTERN const char *xmppuv_jid_domain(const xmppuv_jid_t *jid);
XMPPUV_EXTERN const char *xmppuv_jid_resource(const xmppuv_jid_t *jid);
/* The domain as an ASCII (A-label) name for DNS and TLS: "xn--...". */
XMPPUV_EXTERN const char *xmppuv_jid_domain_ascii(const xmppuv_jid_t *jid);

/* Canonical text forms, borrowed for the JID's lifetime. */
XMPPUV_EXTERN const char *xmppuv_jid_string(const xmppuv_jid_t *jid);
XMPPUV_EXTERN const char *xmppuv_jid_bare_string(const xmppuv_jid_t *jid);

/* Non-zero if the JID has no resource. */
XMPPUV_EXTERN int xmppuv_jid_is_bare(const xmppuv_jid_t *jid);

/* Non-zero if equal after canonicalization (all parts / local and domain). */
XMPPUV_EXTERN int xmppuv_jid_equal(const xmppuv_jid_t *a,
                                   const xmppuv_jid_t *b);
XMPPUV_EXTERN int xmppuv_jid_bare_equal(const xmppuv_jid_t *a,
                                        const xmppuv_jid_t *b);

#ifdef __cplusplus
}
#endif
#endif
