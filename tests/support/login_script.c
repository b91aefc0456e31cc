#include "login_script.h"

#include <stdio.h>
#include <string.h>

int script_last_payload(xmppuv_test_script_conn_t *conn, const char *tag, char *out, size_t size) {
  const char *rx = xmppuv_test_script_conn_received(conn, NULL);
  char open[32], close[32];
  snprintf(open, sizeof open, "<%s ", tag);
  snprintf(close, sizeof close, "</%s>", tag);
  const char *start = NULL;
  for (const char *p = strstr(rx, open); p != NULL; p = strstr(p + 1, open)) start = p;
  if (start == NULL || (start = strchr(start, '>')) == NULL) return -1;
  start++;
  const char *end = strstr(start, close);
  if (end == NULL || (size_t)(end - start) >= size) return -1;
  memcpy(out, start, (size_t)(end - start));
  out[end - start] = '\0';
  return 0;
}

static int send_text(xmppuv_test_script_conn_t *conn, const char *text) {
  return xmppuv_test_script_conn_send(conn, text, strlen(text));
}

int scram_challenge(xmppuv_test_script_conn_t *conn, void *arg) {
  scram_script_t *ss = arg;
  char b64[1024], msg[2048];
  if (script_last_payload(conn, "auth", b64, sizeof b64) != 0) return -1;
  const char *client_first = scram_unb64(ss->s, b64);
  const char *server_first = client_first ? scram_server_first(ss->s, client_first) : NULL;
  if (server_first == NULL) return -1;
  snprintf(msg, sizeof msg, "<challenge xmlns='" NS_SASL "'>%s</challenge>",
           scram_b64(ss->s, server_first, strlen(server_first)));
  return send_text(conn, msg);
}

int scram_outcome(xmppuv_test_script_conn_t *conn, void *arg) {
  scram_script_t *ss = arg;
  char b64[1024], final[256], msg[1024];
  if (script_last_payload(conn, "response", b64, sizeof b64) != 0) return -1;
  const char *client_final = scram_unb64(ss->s, b64);
  const char *server_final = client_final ? scram_server_final(ss->s, client_final, NULL, 0) : NULL;
  if (server_final == NULL) return send_text(conn, SASL_FAILURE("not-authorized"));
  snprintf(final, sizeof final, "%s", server_final);
  if (ss->corrupt_signature) final[2] = final[2] == 'A' ? 'B' : 'A'; /* "v=" + sig */
  snprintf(msg, sizeof msg, "<success xmlns='" NS_SASL "'>%s</success>",
           scram_b64(ss->s, final, strlen(final)));
  return send_text(conn, msg);
}
