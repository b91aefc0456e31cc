/* Which content is a credential and never reaches a log line: the one
 * place the rule lives (the serializer applies it for logs; the session
 * and the SM engine write some elements by hand and ask it too). */
#ifndef XMPPUV_REDACT_H
#define XMPPUV_REDACT_H

/* What replaces a redacted value in a log line. */
#define XMPPUV__REDACTED "[redacted]"

/* Non-zero if the text content of an element with this name and namespace
 * must never be logged: SASL payloads (auth, challenge, response, success
 * in RFC 6120 SASL, and initial-response, additional-data too in XEP-0388
 * SASL2), and any element named "password" or "token". */
int xmppuv__redact_element(const char *name, const char *ns);
/* Non-zero if an attribute's value must never be logged ("password",
 * "token"). */
int xmppuv__redact_attr(const char *name);

#endif
