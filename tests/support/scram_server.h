/* The server side of SCRAM (RFC 5802), written independently of lib/sasl/scram.c
 * for scripted-server tests: it checks the client's proof and produces a
 * real (or deliberately wrong) server signature. */
#ifndef XMPPUV_TEST_SCRAM_SERVER_H
#define XMPPUV_TEST_SCRAM_SERVER_H

#include <stddef.h>

typedef struct scram_server scram_server_t;

/* hash: "SHA-1", "SHA-256" or "SHA-512". */
scram_server_t *scram_server_new(const char *hash, const char *password,
                                 unsigned iterations);
void scram_server_free(scram_server_t *s);
/* client_first: the decoded client-first-message (gs2 header included).
 * Returns the server-first-message (static inside s). */
const char *scram_server_first(scram_server_t *s, const char *client_first);
/* The gs2 header the client sent ("n,,", "y,,", "p=tls-unique,,"). */
const char *scram_server_gs2_header(const scram_server_t *s);
/* client_final: decoded. Returns the server-final-message "v=..." if the
 * proof is right, else NULL. cb_data: the channel binding expected (for
 * "p=" headers), may be NULL. */
const char *scram_server_final(scram_server_t *s, const char *client_final,
                               const unsigned char *cb_data, size_t cb_len);

/* base64 helpers for the scripts. Results static inside s. */
const char *scram_b64(scram_server_t *s, const void *data, size_t len);
const char *scram_unb64(scram_server_t *s, const char *text);

#endif
