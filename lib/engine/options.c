/* Options and callbacks in: see options.h. */
#include "engine/options.h"

#include <stdio.h>
#include <string.h>

#include "util/defaults.h"

/* The shortest layout of each struct the library takes (the first that
 * had struct_size: options up to max_send_bytes; tests/abi/layout_0_1.h):
 * a struct_size below this cannot have been written by an _init of any
 * version; between it and today's size it is an older app's. */
#define OPTIONS_MIN_SIZE (offsetof(xmppuv_client_options_t, max_send_bytes) + sizeof(size_t))
#define CALLBACKS_MIN_SIZE \
  (offsetof(xmppuv_client_callbacks_t, stanza) + sizeof(void (*)(void)))

void xmppuv__options_defaults(xmppuv_client_options_t *o) {
  memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->tls = XMPPUV__DEFAULT_TLS;
  o->connect_timeout_ms = XMPPUV__DEFAULT_CONNECT_TIMEOUT_MS;
  o->negotiation_timeout_ms = XMPPUV__DEFAULT_NEGOTIATION_TIMEOUT_MS;
  o->close_timeout_ms = XMPPUV__DEFAULT_CLOSE_TIMEOUT_MS;
  o->iq_timeout_ms = XMPPUV__DEFAULT_IQ_TIMEOUT_MS;
  o->keepalive_ms = XMPPUV__DEFAULT_KEEPALIVE_MS;
  o->keepalive_timeout_ms = XMPPUV__DEFAULT_KEEPALIVE_TIMEOUT_MS;
  o->reconnect = XMPPUV__DEFAULT_RECONNECT;
  o->reconnect_delay_ms = XMPPUV__DEFAULT_RECONNECT_DELAY_MS;
  o->reconnect_max_delay_ms = XMPPUV__DEFAULT_RECONNECT_MAX_DELAY_MS;
  o->sm = XMPPUV__DEFAULT_SM;
  o->sm_resume = XMPPUV__DEFAULT_SM_RESUME;
  o->sm_ack_debounce_ms = XMPPUV__DEFAULT_SM_ACK_DEBOUNCE_MS;
  o->sm_ack_threshold = XMPPUV__DEFAULT_SM_ACK_THRESHOLD;
  o->sm_idle_request_ms = XMPPUV__DEFAULT_SM_IDLE_REQUEST_MS;
  o->sm_ack_timeout_ms = XMPPUV__DEFAULT_SM_ACK_TIMEOUT_MS;
  o->sm_wait_timeout_ms = XMPPUV__DEFAULT_SM_WAIT_TIMEOUT_MS;
  o->sm_queue_max = XMPPUV__DEFAULT_SM_QUEUE_MAX;
  o->max_stanza_bytes = XMPPUV__DEFAULT_MAX_STANZA_BYTES;
  o->max_depth = XMPPUV__DEFAULT_MAX_DEPTH;
  o->max_attrs = XMPPUV__DEFAULT_MAX_ATTRS;
  o->log_level = XMPPUV__DEFAULT_LOG_LEVEL;
  o->max_send_bytes = XMPPUV__DEFAULT_MAX_SEND_BYTES;
  o->sasl2 = XMPPUV__DEFAULT_SASL2;
  o->fast = XMPPUV__DEFAULT_FAST;
  o->one_flight = XMPPUV__DEFAULT_ONE_FLIGHT;
}

void xmppuv_client_options_init_sized(xmppuv_client_options_t *opts, size_t struct_size) {
  if (opts == NULL || struct_size < sizeof opts->struct_size) return;
  xmppuv_client_options_t full;
  xmppuv__options_defaults(&full);
  size_t n = struct_size < sizeof full ? struct_size : sizeof full;
  memset(opts, 0, struct_size);
  memcpy(opts, &full, n);
  opts->struct_size = struct_size;
}

void xmppuv_client_callbacks_init_sized(xmppuv_client_callbacks_t *cbs, size_t struct_size) {
  if (cbs == NULL || struct_size < sizeof cbs->struct_size) return;
  memset(cbs, 0, struct_size);
  cbs->struct_size = struct_size;
}

/* A struct that is zero but for what the app set (`= {0}`) may still name
 * its log callback: say what is wrong there. Anything else is garbage, and
 * nothing more of it is read. */
static void say(const xmppuv_client_options_t *o, const char *what) {
  /* No level check: a struct never initialised has none set. */
  if (o == NULL || o->struct_size != 0 || o->log_cb == NULL) return;
  char msg[256];
  snprintf(msg, sizeof msg, "bad options: %s", what);
  o->log_cb(o->log_user_data, XMPPUV_LOG_ERROR, "client", msg);
}

int xmppuv__options_import(const xmppuv_client_options_t *in, xmppuv_client_options_t *out) {
  xmppuv__options_defaults(out);
  if (in == NULL) return XMPPUV_EINVAL;
  if (in->struct_size == 0) {
    say(in, "the options were not initialised: call xmppuv_client_options_init() first");
    return XMPPUV_EINVAL;
  }
  if (in->struct_size > sizeof *out && in->struct_size < 65536 && in->log_cb != NULL &&
      in->log_level >= XMPPUV_LOG_ERROR)
    in->log_cb(in->log_user_data, XMPPUV_LOG_ERROR, "client",
               "bad options: the app was built against a newer xmppuv than this library");
  /* A size between 0 and the first layout's cannot have come from an
   * _init: the log callback may not even be in the struct, so nothing is
   * read past struct_size (the return code is all there is). */
  if (in->struct_size < OPTIONS_MIN_SIZE || in->struct_size > sizeof *out) return XMPPUV_EINVAL;
  memcpy(out, in, in->struct_size);
  out->struct_size = sizeof *out;
  return 0;
}

int xmppuv__callbacks_import(const xmppuv_client_callbacks_t *in,
                             xmppuv_client_callbacks_t *out,
                             const xmppuv_client_options_t *log_to) {
  memset(out, 0, sizeof *out);
  out->struct_size = sizeof *out;
  if (in == NULL) return 0;
  if (in->struct_size == 0) {
    if (log_to != NULL && log_to->log_cb != NULL && log_to->log_level >= XMPPUV_LOG_ERROR)
      log_to->log_cb(log_to->log_user_data, XMPPUV_LOG_ERROR, "client",
                     "bad callbacks: not initialised: set struct_size (see "
                     "xmppuv_client_callbacks_init())");
    return XMPPUV_EINVAL;
  }
  if (in->struct_size < CALLBACKS_MIN_SIZE || in->struct_size > sizeof *out) {
    if (log_to != NULL && log_to->log_cb != NULL && log_to->log_level >= XMPPUV_LOG_ERROR)
      log_to->log_cb(log_to->log_user_data, XMPPUV_LOG_ERROR, "client",
                     in->struct_size > sizeof *out
                         ? "bad callbacks: the app was built against a newer xmppuv than this "
                           "library"
                         : "bad callbacks: struct_size is not a size of "
                           "xmppuv_client_callbacks_t (use xmppuv_client_callbacks_init())");
    return XMPPUV_EINVAL;
  }
  memcpy(out, in, in->struct_size);
  out->struct_size = sizeof *out;
  return 0;
}
