/* The pieces of a scripted server's side of a login (script.h), for the
 * scripted server on loopback (script_server.h) and the engine harness
 * (engine_harness.h) alike: what the server sends, and runs of steps up to
 * the points where tests branch. One meaning each:
 *
 *   UNTIL_AUTH          header and PLAIN offered, up to the client's <auth/>
 *   UNTIL_BIND(feat)    SASL success, the new stream with feat, up to the
 *                       client's bind request
 *   LOGIN               a whole login without SM: online after this
 *   UNTIL_ENABLE        a login with SM offered, up to the client's <enable/>
 *                       (held stanzas follow it); the caller answers
 *   LOGIN_SM            UNTIL_ENABLE and SM enabled as session 'sm-N', N the
 *                       connection's index (resumable, no max)
 *   LOGIN_SM_ID(id)     the same with the session id given, on every
 *                       connection
 *   UNTIL_RESUME        SASL done and SM offered on the new stream, up to the
 *                       client's <resume/>
 *
 * Also the SCRAM server's answers as SCRIPT_CALL functions. Every text is a
 * string literal (steps borrow their texts). */
#ifndef XMPPUV_TEST_LOGIN_SCRIPT_H
#define XMPPUV_TEST_LOGIN_SCRIPT_H

#include <stddef.h>

#include "scram_server.h"
#include "script.h"

#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_STREAM_ERRORS "urn:ietf:params:xml:ns:xmpp-streams"
#define NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"
#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define NS_SM "urn:xmpp:sm:3"

/* ---- what the server sends ------------------------------------------------ */

/* The server's stream header; stream id 's' and the connection's index. */
#define HDR                                                                  \
  "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "               \
  "xmlns:stream='http://etherx.jabber.org/streams' id='s{n}' "                \
  "from='localhost' version='1.0'>"
#define FEATURES_PLAIN                                                       \
  "<stream:features><mechanisms xmlns='" NS_SASL "'>"                        \
  "<mechanism>PLAIN</mechanism></mechanisms></stream:features>"
#define FEATURES_SCRAM                                                       \
  "<stream:features><mechanisms xmlns='" NS_SASL "'>"                        \
  "<mechanism>SCRAM-SHA-256</mechanism></mechanisms></stream:features>"
#define FEATURES_BIND "<stream:features><bind xmlns='" NS_BIND "'/></stream:features>"
#define FEATURES_BIND_SM                                                     \
  "<stream:features><bind xmlns='" NS_BIND "'/>"                             \
  "<sm xmlns='" NS_SM "'/></stream:features>"
#define SASL_SUCCESS "<success xmlns='" NS_SASL "'/>"
#define SASL_FAILURE(cond) "<failure xmlns='" NS_SASL "'><" cond "/></failure>"
/* The bind result for the request just received: alice@localhost/rN, N the
 * connection's index. */
#define BIND_RESULT                                                          \
  "<iq type='result' id='{id}'><bind xmlns='" NS_BIND "'>"                   \
  "<jid>alice@localhost/r{n}</jid></bind></iq>"
#define BIND_ERROR(type, cond)                                               \
  "<iq type='error' id='{id}'><error type='" type "'><" cond " xmlns='"      \
  NS_STANZAS "'/></error></iq>"
/* A stream error, and the end of the stream. */
#define STREAM_ERROR(cond)                                                   \
  "<stream:error><" cond " xmlns='" NS_STREAM_ERRORS "'/></stream:error>"    \
  "</stream:stream>"

/* Stream Management (XEP-0198). */
#define SM_ENABLED "<enabled xmlns='" NS_SM "' id='sm-{n}' resume='true'/>"
#define SM_ENABLED_ID(id) "<enabled xmlns='" NS_SM "' id='" id "' resume='true'/>"
#define SM_RESUMED(previd, h) "<resumed xmlns='" NS_SM "' previd='" previd "' h='" h "'/>"
#define SM_R "<r xmlns='" NS_SM "'/>"
#define SM_A(h) "<a xmlns='" NS_SM "' h='" h "'/>"

/* ---- runs of steps ---------------------------------------------------------- */

#define UNTIL_AUTH                                                           \
  SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_PLAIN),          \
      SCRIPT_EXPECT("</auth>")
#define UNTIL_BIND(features)                                                 \
  SCRIPT_SEND(SASL_SUCCESS), SCRIPT_EXPECT("<stream:stream"),                \
      SCRIPT_SEND(HDR features), SCRIPT_EXPECT(NS_BIND)
#define LOGIN UNTIL_AUTH, UNTIL_BIND(FEATURES_BIND), SCRIPT_SEND(BIND_RESULT)
#define UNTIL_ENABLE                                                         \
  UNTIL_AUTH, UNTIL_BIND(FEATURES_BIND_SM), SCRIPT_SEND(BIND_RESULT),        \
      SCRIPT_EXPECT("<enable ")
#define LOGIN_SM UNTIL_ENABLE, SCRIPT_SEND(SM_ENABLED)
#define LOGIN_SM_ID(id) UNTIL_ENABLE, SCRIPT_SEND(SM_ENABLED_ID(id))
#define UNTIL_RESUME                                                         \
  UNTIL_AUTH, SCRIPT_SEND(SASL_SUCCESS), SCRIPT_EXPECT("<stream:stream"),    \
      SCRIPT_SEND(HDR FEATURES_BIND_SM), SCRIPT_EXPECT("<resume ")

/* ---- SCRAM (RFC 5802) through SCRIPT_CALL --------------------------------- */

/* The argument of the SCRAM calls: the server (scram_server.h) and
 * whether its signature is to be wrong. */
typedef struct scram_script {
  scram_server_t *s;
  int corrupt_signature; /* flip a character of the server signature */
} scram_script_t;

/* The base64 payload of the last <tag ...>payload</tag> the client sent:
 * 0, or -1 if there is none or it does not fit in size. */
int script_last_payload(xmppuv_test_script_conn_t *conn, const char *tag, char *out,
                        size_t size);

/* SCRIPT_CALL(scram_challenge, &ss): the server-first challenge answering
 * the client's <auth/>. */
int scram_challenge(xmppuv_test_script_conn_t *conn, void *arg);
/* SCRIPT_CALL(scram_outcome, &ss): <success/> with the server signature if
 * the client's <response/> proves the password, else <failure> with
 * not-authorized. */
int scram_outcome(xmppuv_test_script_conn_t *conn, void *arg);

/* The whole SCRAM-SHA-256 login without SM through these (ss: a
 * scram_script_t *): online after this. */
#define LOGIN_SCRAM(ss)                                                      \
  SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_SCRAM),          \
      SCRIPT_EXPECT("</auth>"), SCRIPT_CALL(scram_challenge, (ss)),          \
      SCRIPT_EXPECT("</response>"), SCRIPT_CALL(scram_outcome, (ss)),        \
      SCRIPT_EXPECT("<stream:stream"), SCRIPT_SEND(HDR FEATURES_BIND),       \
      SCRIPT_EXPECT(NS_BIND), SCRIPT_SEND(BIND_RESULT)

#endif
