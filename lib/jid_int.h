/* What the library asks of JIDs beyond the public API (jid.c). */
#ifndef XMPPUV_JID_INT_H
#define XMPPUV_JID_INT_H

/* 0 if text is a valid JID (RFC 7622), else the error xmppuv_jid_parse()
 * would give (XMPPUV_EINVAL for NULL). Without allocating for the usual
 * ASCII address: for a builder that only needs to know (every message a
 * client sends has one). */
int xmppuv__jid_check(const char *text);

#endif
