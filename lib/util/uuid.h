/* A random (version 4) UUID, RFC 9562 §5.4: SASL2's user-agent id when the
 * app gives none (XEP-0388 §2.3.1 asks for a stable UUID per install; the
 * app reads it back to keep it). */
#ifndef XMPPUV_UUID_H
#define XMPPUV_UUID_H

/* 36 characters and a NUL: "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx". */
#define XMPPUV__UUID_LEN 36

/* 0, or XMPPUV_ECRYPTO when the kernel's random source fails. */
int xmppuv__uuid_v4(char out[XMPPUV__UUID_LEN + 1]);

#endif
