/* examples/echo: an echo bot. It answers every chat message with the same
 * body and prints one line per library event. A newcomer runs this first:
 *
 *   XMPPUV_PASSWORD=secret examples/echo --jid bot@example.org
 *
 * SIGINT or SIGTERM stops it gracefully. With --state FILE it instead saves
 * its Stream Management session to FILE and exits without closing the
 * stream, and the next run with the same --state resumes that session:
 * with the FAST token and user-agent id it keeps in FILE.login, in one
 * round trip and without the password, where the server offers FAST. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <xmppuv.h>

#include "common.h"

static const char usage[] =
    "usage: XMPPUV_PASSWORD=... echo --jid JID [options]\n"
    "  --jid JID          the bot's account (required)\n"
    "  --host HOST        connect here instead of looking up the domain's SRV records\n"
    "  --port PORT        with --host (default 5222, or 5223 with --tls direct)\n"
    "  --url URL          connect to this WebSocket (wss://host[:port]/path) instead\n"
    "  --discover MODE    without --host and --url, find a WebSocket in the domain's\n"
    "                     host-meta (XEP-0156): auto (after SRV and TCP fail) or\n"
    "                     websocket (before them)\n"
    "  --tls MODE         starttls or direct (default: whatever SRV says, else starttls)\n"
    "  --ca-file FILE     trust the CA certificates in FILE (default: the system's)\n"
    "  --insecure         do not verify the server certificate (warns every time)\n"
    "  --resource NAME    ask for this resource\n"
    "  --state FILE       keep the Stream Management session in FILE across restarts, and\n"
    "                     the user-agent id and FAST token in FILE.login (a restart then\n"
    "                     logs in with the token and resumes in the same round trip)\n"
    "  --no-sasl2         log in the RFC 6120 way (no SASL2, Bind2, inline resumption, FAST)\n"
    "  -v                 log everything to stderr, wire XML included (credentials redacted)\n"
    "  --help             this text\n"
    "Prints: status NAME | online JID | resumed | recv FROM ID | ack ID | fail ID REASON\n"
    "        | error CODE ... | reconnecting ATTEMPT DELAY_MS | token MECHANISM EXPIRY\n"
    "        | subscribed JID\n"
    "        | token none | saved FILE ok\n";

typedef struct {
  uv_signal_t sigint, sigterm;
  xmppuv_client_t *client;
  const char *state_file;
  example_login_t login; /* with --state: kept in FILE.login */
  xmppuv_disco_t *disco;  /* answers disco#info; its caps go in our presence */
  xmppuv_roster_t *roster; /* accepts whoever asks to see its presence */
  int exit_code;
} bot_t;

/* A new FAST token (or none): kept next to the SM state at once, so a
 * crash loses nothing the server will still take. */
static void on_fast_token(xmppuv_client_t *c, const xmppuv_fast_token_t *t, void *ud) {
  example_print_fast_token(c, t, ud);
  bot_t *bot = ud;
  if (bot->state_file == NULL) return;
  snprintf(bot->login.mechanism, sizeof bot->login.mechanism, "%s", t ? t->mechanism : "");
  snprintf(bot->login.token, sizeof bot->login.token, "%s", t ? t->token : "");
  if (example_save_login(bot->state_file, &bot->login) != 0)
    printf("error could not save %s.login\n", bot->state_file);
}

static int on_message(xmppuv_client_t *c, xmppuv_stanza_t *msg, void *ud) {
  (void)ud;
  const char *from = xmppuv_stanza_attr(msg, "from");
  const char *id = xmppuv_stanza_attr(msg, "id");
  const char *body = xmppuv_stanza_child_text(msg, "body", NULL);
  printf("recv %s %s\n", from ? from : "-", id ? id : "-");
  fflush(stdout);
  if (from == NULL || body == NULL) return XMPPUV_PASS;
  xmppuv_stanza_t *reply;
  if (xmppuv_message_new(from, "chat", body, &reply) == 0) {
    int rc = xmppuv_client_send(c, reply);
    if (rc != 0) printf("error %s could not send the reply\n", xmppuv_err_name(rc));
    xmppuv_stanza_unref(reply);
  }
  return XMPPUV_HANDLED;
}

/* Someone wants to see the bot's presence (RFC 6121 §3): yes, and the bot
 * asks for theirs back, so they become a contact both ways. */
static void on_subscription_request(xmppuv_roster_t *r, const char *from,
                                    xmppuv_stanza_t *presence, void *ud) {
  (void)presence, (void)ud;
  if (xmppuv_roster_approve(r, from) == 0) printf("subscribed %s\n", from);
  const xmppuv_roster_item_t *item = xmppuv_roster_get(r, from);
  if (item == NULL || (item->subscription != XMPPUV_SUB_TO &&
                       item->subscription != XMPPUV_SUB_BOTH && !item->ask))
    xmppuv_roster_subscribe(r, from);
  fflush(stdout);
}

static void on_online(xmppuv_client_t *c, const xmppuv_jid_t *jid, void *ud) {
  example_print_online(c, jid, ud);
  /* A new session: tell the server we are available (a resumed session
   * keeps its presence, so this is not done on `resumed`). */
  bot_t *bot = ud;
  xmppuv_stanza_t *presence;
  if (xmppuv_stanza_new("presence", NULL, &presence) == 0) {
    /* XEP-0115: what we support, for whoever sees our presence. */
    xmppuv_disco_add_caps(bot->disco, presence);
    xmppuv_client_send(c, presence);
    xmppuv_stanza_unref(presence);
  }
}

static void on_closed(xmppuv_client_t *c, void *ud) {
  (void)c;
  bot_t *bot = ud;
  /* Kept until main's end (a late signal is still caught), unreferenced so
   * they no longer keep uv_run going. */
  uv_unref((uv_handle_t *)&bot->sigint);
  uv_unref((uv_handle_t *)&bot->sigterm);
}

static void on_status(xmppuv_client_t *c, xmppuv_status_t status, void *ud) {
  example_print_status(c, status, ud);
  bot_t *bot = ud;
  if (status == XMPPUV_STATUS_OFFLINE && bot->client != NULL) {
    bot->client = NULL;
    xmppuv_client_close(c, on_closed);
  }
}

static void on_error(xmppuv_client_t *c, const xmppuv_error_t *err, void *ud) {
  example_print_error(c, err, ud);
  if (err->fatal) ((bot_t *)ud)->exit_code = 1;
}

static void on_signal(uv_signal_t *sig, int signum) {
  (void)signum;
  bot_t *bot = sig->data;
  if (bot->client == NULL) return;
  if (bot->state_file != NULL) {
    /* Leave the stream open on the server side, so it can be resumed. */
    int rc = example_save_state(bot->client, bot->state_file);
    printf("saved %s %s\n", bot->state_file, rc == 0 ? "ok" : "failed");
    fflush(stdout);
    xmppuv_client_t *c = bot->client;
    bot->client = NULL;
    xmppuv_client_close(c, on_closed);
    return;
  }
  xmppuv_client_stop(bot->client);
}

int main(int argc, char **argv) {
  example_args_t args;
  example_parse_args(argc, argv, &args, usage, 0);
  uv_loop_t *loop = uv_default_loop();
  bot_t bot;
  memset(&bot, 0, sizeof bot);
  bot.state_file = args.state_file;

  xmppuv_client_callbacks_t cbs;
  xmppuv_client_callbacks_init(&cbs);
  cbs.status = on_status;
  cbs.online = on_online;
  cbs.resumed = example_print_resumed;
  cbs.error = on_error;
  cbs.ack = example_print_ack;
  cbs.fail = example_print_fail;
  cbs.reconnecting = example_print_reconnecting;
  cbs.fast_token = on_fast_token;
  int rc = xmppuv_client_new(loop, &args.opts, &cbs, &bot, &bot.client);
  if (rc != 0) {
    fprintf(stderr, "echo: %s\n", xmppuv_strerror(rc));
    return 1;
  }
  if (args.state_file != NULL) {
    /* The user-agent id (the library's own if none was kept) goes with the
     * token: the server bound the token to it. */
    bot.login = args.login;
    snprintf(bot.login.user_agent_id, sizeof bot.login.user_agent_id, "%s",
             xmppuv_client_user_agent_id(bot.client));
    if (example_save_login(args.state_file, &bot.login) != 0)
      printf("error could not save %s.login\n", args.state_file);
    rc = example_load_state(bot.client, args.state_file);
    if (rc < 0) printf("error %s could not load %s\n", xmppuv_err_name(rc), args.state_file);
    else if (rc == 0) printf("loaded %s\n", args.state_file);
  }
  xmppuv_client_handler_add(bot.client, "message", NULL, "chat", on_message, &bot, NULL);
  /* The chat layer's discovery (XEP-0030, XEP-0115): a peer asking what
   * this bot is gets an answer, not service-unavailable. It goes with the
   * client. */
  const xmppuv_disco_identity_t identity = {"client", "bot", "xmppuv echo", NULL};
  rc = xmppuv_disco_new(bot.client, &identity, "https://xmppuv.org/echo", &bot.disco);
  /* The roster (RFC 6121): fetched on each new session; subscription
   * requests are accepted. */
  xmppuv_roster_callbacks_t rcb;
  memset(&rcb, 0, sizeof rcb);
  rcb.struct_size = sizeof rcb;
  rcb.subscription_request = on_subscription_request;
  if (rc == 0) rc = xmppuv_roster_new(bot.client, &rcb, &bot, &bot.roster);
  if (rc != 0) {
    fprintf(stderr, "echo: %s\n", xmppuv_strerror(rc));
    return 1;
  }

  uv_signal_init(loop, &bot.sigint);
  uv_signal_init(loop, &bot.sigterm);
  bot.sigint.data = bot.sigterm.data = &bot;
  uv_signal_start(&bot.sigint, on_signal, SIGINT);
  uv_signal_start(&bot.sigterm, on_signal, SIGTERM);

  rc = xmppuv_client_start(bot.client);
  if (rc != 0) {
    fprintf(stderr, "echo: %s\n", xmppuv_strerror(rc));
    return 1;
  }
  uv_run(loop, UV_RUN_DEFAULT);
  fflush(stdout);
  example_signal_close(&bot.sigint);
  example_signal_close(&bot.sigterm);
  uv_run(loop, UV_RUN_DEFAULT);
  return uv_loop_close(loop) == 0 ? bot.exit_code : 1;
}
