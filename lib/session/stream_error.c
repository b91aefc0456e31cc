/* The stream error table (see stream_error.h). The README's "Stream errors"
 * table says the same, condition by condition: change both together. */
#include "session/stream_error.h"

#include <string.h>

#define RETRY XMPPUV__SERR_RETRY
#define FATAL XMPPUV__SERR_FATAL

/* Our own output is well-formed, namespace-correct XML by construction (the
 * serializer escapes everything and declares nothing the stream does not),
 * so a server that calls it malformed is wrong or was handed something else
 * (a proxy, a parser left dirty by a previous connection: Prosody's
 * resumed-parser fault): those conditions retry, and the poison rule stops a
 * stanza that trips the server every time. */
static const xmppuv__stream_error_class_t table[] = {
    {"bad-format", RETRY, 1, "our XML is well-formed by construction: a server or proxy fault, or one stanza it rejects"},
    {"bad-namespace-prefix", RETRY, 1, "we use only the stream's declared prefixes: a server fault, or one stanza it rejects"},
    {"conflict", FATAL, 0, "another client took over this resource: reconnecting would throw it out in turn"},
    {"connection-timeout", RETRY, 0, "the server found the stream idle: a new connection is fine"},
    {"host-gone", FATAL, 0, "the server no longer serves the account's domain"},
    {"host-unknown", FATAL, 0, "the server does not serve the account's domain"},
    {"improper-addressing", RETRY, 1, "an addressing fault in one stanza, not in the stream"},
    {"internal-server-error", RETRY, 1, "a server fault: passing, or tripped by one stanza"},
    {"invalid-from", FATAL, 0, "the server refuses the identity our stream header claims: it will again"},
    {"invalid-namespace", FATAL, 0, "our stream header is fixed: the server will refuse it again"},
    {"invalid-xml", RETRY, 1, "our XML is valid by construction: a server fault, or one stanza it rejects"},
    {"not-authorized", FATAL, 0, "the server refuses our credentials or this stream: it will again"},
    {"not-well-formed", RETRY, 1, "our XML is well-formed by construction: a server fault (Prosody's resumed parser), or one stanza it rejects"},
    {"policy-violation", RETRY, 1, "a local policy, usually about one stanza (too big, rate): the poison rule fails that one"},
    {"remote-connection-failed", RETRY, 0, "the server could not reach a back end: passing"},
    {"reset", RETRY, 0, "the server asks for a new stream (new features or credentials changed)"},
    {"resource-constraint", RETRY, 1, "the server lacks resources now: passing, or one stanza too costly"},
    {"restricted-xml", RETRY, 1, "we never send comments, PIs, DTDs or entities: a server or proxy fault"},
    {"see-other-host", XMPPUV__SERR_REDIRECT, 0, "the server sends us elsewhere (at most 5 times in a row)"},
    {"system-shutdown", RETRY, 0, "the server is going down: it or a sibling will be back"},
    {"undefined-condition", RETRY, 1, "the server did not say: retrying is the safe guess"},
    {"unsupported-encoding", FATAL, 0, "we always send UTF-8: the server will refuse it again"},
    {"unsupported-feature", FATAL, 0, "the server requires a feature we do not have: it will again"},
    {"unsupported-stanza-type", RETRY, 1, "one stanza of a kind the server does not take"},
    {"unsupported-version", FATAL, 0, "the server does not speak XMPP 1.0"},
};

static const xmppuv__stream_error_class_t *find(const char *condition) {
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (strcmp(condition, table[i].condition) == 0) return &table[i];
  return NULL;
}

const xmppuv__stream_error_class_t *xmppuv__stream_error_class(
    const char *condition) {
  const xmppuv__stream_error_class_t *c = condition ? find(condition) : NULL;
  /* RFC 6120 §4.9.3.21: what is not defined is undefined-condition. */
  return c != NULL ? c : find("undefined-condition");
}

const xmppuv__stream_error_class_t *xmppuv__stream_error_table(
    unsigned *count) {
  *count = (unsigned)(sizeof table / sizeof table[0]);
  return table;
}
