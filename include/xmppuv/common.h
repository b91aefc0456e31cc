/* xmppuv: export macro, allocator, error codes, logging.
 * Included by <xmppuv.h>; do not include this file directly. */
#ifndef XMPPUV_COMMON_H
#define XMPPUV_COMMON_H

#include <stddef.h>
#if defined(_WIN32)
#include <uv.h> /* libuv's own error numbers (see Errors below) */
#else
#include <errno.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#  if defined(XMPPUV_BUILDING_SHARED)
#    define XMPPUV_EXTERN __declspec(dllexport)
#  elif defined(XMPPUV_USING_SHARED)
#    define XMPPUV_EXTERN __declspec(dllimport)
#  else
#    define XMPPUV_EXTERN
#  endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#  define XMPPUV_EXTERN __attribute__((visibility("default")))
#else
#  define XMPPUV_EXTERN
#endif

/* ------------------------------------------------------------------------ */
/* Threads                                                                  */
/* ------------------------------------------------------------------------ */
/* A client and everything reachable from it (stanzas it hands out included)
 * belong to the thread that runs its uv_loop_t. Stanzas and JIDs that are not
 * attached to a client may be used from any one thread at a time. Only
 * xmppuv_version*(), xmppuv_strerror() and xmppuv_err_name() are safe to call
 * from any thread at any time. */

/* ------------------------------------------------------------------------ */
/* Allocator                                                                */
/* ------------------------------------------------------------------------ */
typedef void *(*xmppuv_malloc_func)(size_t size);
typedef void *(*xmppuv_realloc_func)(void *ptr, size_t size);
typedef void (*xmppuv_free_func)(void *ptr);

/* Replace the allocator used for all of xmppuv's own memory (as
 * uv_replace_allocator() does for libuv). Call it before any other xmppuv
 * function, never while objects exist. Passing NULL for all three restores the
 * C library's functions. Returns 0, or XMPPUV_EINVAL if only some are NULL.
 * Not thread-safe. */
XMPPUV_EXTERN int xmppuv_replace_allocator(xmppuv_malloc_func malloc_func,
                                           xmppuv_realloc_func realloc_func,
                                           xmppuv_free_func free_func);

/* Free memory that xmppuv allocated and handed to the caller
 * (xmppuv_stanza_to_string(), ...). NULL is a no-op. */
XMPPUV_EXTERN void xmppuv_free(void *ptr);

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */
/* Functions return 0 on success and a negative code on failure. One code
 * per meaning: where libuv has a code for the same thing (out of memory, an
 * invalid argument, cancelled, timed out, no buffer space, a protocol
 * error), xmppuv's code IS libuv's (XMPPUV_ENOMEM == UV_ENOMEM, a negative
 * errno value on Unix), so `rc == UV_ECANCELED` and `rc == XMPPUV_ECANCELED`
 * are the same test and a log names one code. Everything else has a code
 * of xmppuv's own, in -30999..-30001, named for what it means. libuv's
 * other codes (UV_ECONNREFUSED, ...) pass through unchanged, and
 * xmppuv_strerror() and xmppuv_err_name() describe them too.
 *
 * Errors that come from the XMPP server (stream errors, stanza errors, SASL
 * failures) are reported as data with their condition and text, and carry
 * one of these codes as a summary. */
#if defined(_WIN32)
#define XMPPUV__SYS_ERR(name) UV_##name
#else
#define XMPPUV__SYS_ERR(name) (-(name))
#endif

/* The codes shared with libuv: name, value, text. */
#define XMPPUV_SYS_ERRNO_MAP(XX)                                               \
  XX(ENOMEM, XMPPUV__SYS_ERR(ENOMEM), "out of memory")                         \
  XX(EINVAL, XMPPUV__SYS_ERR(EINVAL), "invalid argument")                      \
  XX(ECANCELED, XMPPUV__SYS_ERR(ECANCELED), "operation canceled")              \
  XX(ETIMEDOUT, XMPPUV__SYS_ERR(ETIMEDOUT), "operation timed out")             \
  XX(ENOBUFS, XMPPUV__SYS_ERR(ENOBUFS),                                        \
     "queue full; try again after acknowledgements")                           \
  XX(EPROTO, XMPPUV__SYS_ERR(EPROTO), "the server violated the XMPP protocol")

/* xmppuv's own codes. */
#define XMPPUV_ERRNO_MAP(XX)                                                   \
  XX(ESTATE, -30003, "operation not allowed in the current state")             \
  XX(ECLOSED, -30007, "client closed")                                         \
  XX(ETOOBIG, -30008, "value too large")                                       \
  XX(EUTF8, -30010, "invalid UTF-8")                                           \
  XX(EXMLCHAR, -30011, "character not allowed in XML 1.0")                     \
  XX(EXMLNAME, -30012, "invalid XML name")                                     \
  XX(EXML, -30013, "malformed XML")                                            \
  XX(ERESTRICTED, -30014,                                                      \
     "XML feature not allowed in XMPP (DTD, entity, comment or PI)")           \
  XX(ELIMIT, -30015, "XML size, depth or attribute limit exceeded")            \
  XX(ENAMESPACE, -30016, "invalid stream namespace")                           \
  XX(EJID, -30020, "invalid JID")                                              \
  XX(EJIDLOCAL, -30021, "invalid JID localpart")                               \
  XX(EJIDDOMAIN, -30022, "invalid JID domainpart")                             \
  XX(EJIDRESOURCE, -30023, "invalid JID resourcepart")                         \
  XX(EDNS, -30030, "DNS lookup failed")                                        \
  XX(ENOTFOUND, -30031, "domain has no address")                               \
  XX(ENOSERVICE, -30032, "domain does not offer XMPP client service")          \
  XX(ECONNECT, -30033, "could not connect to any address of the server")       \
  XX(EEOF, -30034, "server closed the connection")                             \
  XX(EWRONGSERVER, -30035,                                                     \
     "the server does not speak XMPP the way it was asked to (TLS, port)")     \
  XX(ETLS, -30040, "TLS handshake or record error")                            \
  XX(ECERTNAME, -30041,                                                        \
     "server certificate does not match the XMPP domain")                      \
  XX(ECERTUNTRUSTED, -30042,                                                   \
     "server certificate not signed by a trusted CA")                          \
  XX(ECERTEXPIRED, -30043, "server certificate expired")                       \
  XX(ECERTFUTURE, -30044, "server certificate not yet valid")                  \
  XX(ECERTPIN, -30045, "server certificate does not match the pinned key")     \
  XX(ECERTINVALID, -30046, "server certificate invalid")                       \
  XX(ECAFILE, -30047, "could not load CA certificates")                        \
  XX(ECRYPTO, -30048, "cryptographic library failure (hash or random)")       \
  XX(ECLIENTCERT, -30049,                                                      \
     "could not load the client certificate or key, or they do not match")     \
  XX(ETLSREQUIRED, -30050, "server does not offer TLS, which is required")     \
  XX(ESTREAM, -30051, "stream error from the server")                          \
  XX(EAUTH, -30053, "authentication failed")                                   \
  XX(ENOMECH, -30054, "no acceptable SASL mechanism offered")                  \
  XX(EAUTHSERVER, -30055,                                                      \
     "server failed to prove it knows the password (SCRAM)")                   \
  XX(EAUTHITER, -30056, "SCRAM iteration count too low")                       \
  XX(EDOWNGRADE, -30057, "channel binding downgrade detected")                 \
  XX(EBIND, -30058, "resource binding failed")                                 \
  XX(ESEEOTHERHOST, -30059, "too many see-other-host redirects")               \
  XX(ETOKEN, -30061, "the server rejected the FAST token")                     \
  XX(EDOWNGRADED, -30062,                                                      \
     "the server no longer offers SASL2 or channel binding it offered before") \
  XX(EIQERROR, -30060, "the iq request got an error reply")                    \
  XX(ESMHIGH, -30070, "stream management: server acknowledged more than sent") \
  XX(ESMFAILED, -30071, "stream management: session could not be resumed")    \
  XX(ESMOFF, -30072, "stream management is not enabled")                      \
  XX(ESTATEBLOB, -30073, "corrupt or unsupported saved state")             \
  XX(EREJECTED, -30074,                                                        \
     "the server ended the stream on this stanza three times: not resent")

typedef enum {
#define XMPPUV__ERR_ENUM(name, value, text) XMPPUV_##name = (value),
  XMPPUV_SYS_ERRNO_MAP(XMPPUV__ERR_ENUM)
  XMPPUV_ERRNO_MAP(XMPPUV__ERR_ENUM)
#undef XMPPUV__ERR_ENUM
  XMPPUV_ERRNO_MAX = -30000
} xmppuv_errno_t;

/* A static, human-readable description of err (xmppuv or libuv code).
 * Unknown codes give "unknown error". Thread-safe. */
XMPPUV_EXTERN const char *xmppuv_strerror(int err);
/* The code's name without prefix ("ENOMEM", "ECONNREFUSED", "ESTREAM"), or
 * "UNKNOWN". One name per code, one code per name. */
XMPPUV_EXTERN const char *xmppuv_err_name(int err);

/* ------------------------------------------------------------------------ */
/* Logging                                                                  */
/* ------------------------------------------------------------------------ */
typedef enum {
  XMPPUV_LOG_NONE = 0, /* as a threshold: log nothing */
  XMPPUV_LOG_ERROR = 1,
  XMPPUV_LOG_WARN = 2,
  XMPPUV_LOG_INFO = 3,
  XMPPUV_LOG_DEBUG = 4,
  XMPPUV_LOG_TRACE = 5 /* every XML element on the wire, credentials redacted */
} xmppuv_log_level_t;

/* area is a short static string ("tls", "sasl", "sm", "wire-in", ...);
 * message is valid until the callback returns and has no trailing newline.
 * Passwords, SASL payloads and tokens never reach this callback. */
typedef void (*xmppuv_log_cb)(void *user_data, xmppuv_log_level_t level,
                              const char *area, const char *message);

/* "error", "warn", "info", "debug", "trace" (or "none"). */
XMPPUV_EXTERN const char *xmppuv_log_level_name(xmppuv_log_level_t level);

#ifdef __cplusplus
}
#endif
#endif
