/* What examples/echo and examples/send share: connection options from the
 * command line, the password from the environment, one line per event. */
#ifndef XMPPUV_EXAMPLES_COMMON_H
#define XMPPUV_EXAMPLES_COMMON_H

#include <uv.h>
#include <xmppuv.h>

/* What a restarted app needs besides the SM state for a FAST login with
 * inline resumption: the user-agent id and the last FAST token (--state
 * FILE keeps them in FILE.login, readable by the owner only). */
typedef struct example_login {
  char user_agent_id[130];
  char mechanism[64];
  char token[1024]; /* "" for none */
} example_login_t;

typedef struct example_args {
  xmppuv_client_options_t opts;
  int verbose;
  const char *to;         /* send: --to */
  long count;             /* send: --count */
  double rate;            /* send: --rate */
  double wait_reply;      /* send: --wait-reply seconds */
  const char *state_file; /* --state FILE: keep the SM session across runs */
  example_login_t login;  /* with --state: FILE.login, loaded into opts */
  int first_free;         /* index of the first argument not an option */
} example_args_t;

/* Parse the options shared by the examples (and send's own when
 * with_send_options). Prints usage and exits on --help or a bad option. */
void example_parse_args(int argc, char **argv, example_args_t *args, const char *usage,
                        int with_send_options);

/* Callbacks that print one line per event: status, online, resumed, ack,
 * fail, error, reconnecting. The app's own callbacks can call them. */
void example_print_status(xmppuv_client_t *c, xmppuv_status_t status, void *ud);
void example_print_online(xmppuv_client_t *c, const xmppuv_jid_t *jid, void *ud);
void example_print_resumed(xmppuv_client_t *c, void *ud);
void example_print_error(xmppuv_client_t *c, const xmppuv_error_t *err, void *ud);
void example_print_ack(xmppuv_client_t *c, xmppuv_stanza_t *s, void *ud);
void example_print_fail(xmppuv_client_t *c, xmppuv_stanza_t *s, int reason, void *ud);
void example_print_reconnecting(xmppuv_client_t *c, unsigned attempt, uint64_t delay_ms,
                                void *ud);

/* The fast_token event: "token MECHANISM EXPIRY" (never the token itself),
 * or "token none". */
void example_print_fast_token(xmppuv_client_t *c, const xmppuv_fast_token_t *t, void *ud);

/* The log hook for -v: every line to stderr (wire XML at trace level, with
 * credentials already redacted by the library). */
void example_log(void *ud, xmppuv_log_level_t level, const char *area, const char *msg);

/* At the end of main, once uv_run has returned: close a signal handle that
 * was started with uv_signal_start (and kept, unreferenced, until then) and
 * ignore its signal from then on, so a late one (a second ^C) cannot kill
 * the program while it prints its last lines and exits. Run the loop once
 * more afterwards to finish the close. */
void example_signal_close(uv_signal_t *sig);

/* Save / load the SM state (--state). */
int example_save_state(xmppuv_client_t *c, const char *path);
int example_load_state(xmppuv_client_t *c, const char *path);

/* 0 (loaded), 1 (nothing saved yet) or -1. */
int example_load_login(const char *state_path, example_login_t *login);
int example_save_login(const char *state_path, const example_login_t *login);

#endif
