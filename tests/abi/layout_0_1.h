/* An older, shorter layout of the public structs: the options without the
 * last fields added (the client certificate), the first layout that had
 * struct_size, frozen as an app built against that header has them. Never
 * edit: the library must keep accepting exactly this (the shortest size
 * lib/engine/options.c takes). Today's header may only append fields
 * (test_abi.c checks every offset). */
#ifndef XMPPUV_TEST_LAYOUT_0_1_H
#define XMPPUV_TEST_LAYOUT_0_1_H

#include <stddef.h>

#include "xmppuv.h"

typedef struct options_0_1 {
  size_t struct_size;
  const char *jid;
  const char *password;
  xmppuv_password_cb password_cb;
  void *password_user_data;
  const char *resource;
  const char *lang;
  const char *host;
  unsigned short port;
  xmppuv_tls_mode_t tls;
  const char *ca_file;
  const char *ca_path;
  const char *pin;
  int tls_insecure;
  const char *dns_servers;
  const char *sasl_mechanisms;
  int allow_anonymous;
  unsigned connect_timeout_ms;
  unsigned negotiation_timeout_ms;
  unsigned close_timeout_ms;
  unsigned iq_timeout_ms;
  unsigned keepalive_ms;
  unsigned keepalive_timeout_ms;
  int reconnect;
  unsigned reconnect_delay_ms;
  unsigned reconnect_max_delay_ms;
  int sm;
  int sm_resume;
  unsigned sm_max_resume_s;
  unsigned sm_ack_debounce_ms;
  unsigned sm_ack_threshold;
  unsigned sm_idle_request_ms;
  unsigned sm_ack_timeout_ms;
  unsigned sm_wait_timeout_ms;
  size_t sm_queue_max;
  int sm_resend_on_failed;
  unsigned sm_drain_timeout_ms;
  size_t max_stanza_bytes;
  unsigned max_depth;
  unsigned max_attrs;
  xmppuv_log_cb log_cb;
  void *log_user_data;
  xmppuv_log_level_t log_level;
  size_t max_send_bytes;
} options_0_1_t;

typedef struct callbacks_0_1 {
  size_t struct_size;
  void (*status)(xmppuv_client_t *c, xmppuv_status_t status, void *user_data);
  void (*online)(xmppuv_client_t *c, const xmppuv_jid_t *jid, void *user_data);
  void (*resumed)(xmppuv_client_t *c, void *user_data);
  void (*error)(xmppuv_client_t *c, const xmppuv_error_t *error, void *user_data);
  void (*ack)(xmppuv_client_t *c, xmppuv_stanza_t *stanza, void *user_data);
  void (*fail)(xmppuv_client_t *c, xmppuv_stanza_t *stanza, int reason, void *user_data);
  void (*reconnecting)(xmppuv_client_t *c, unsigned attempt, uint64_t delay_ms, void *user_data);
  void (*stanza)(xmppuv_client_t *c, xmppuv_stanza_t *stanza, int handled, void *user_data);
} callbacks_0_1_t;

#endif
