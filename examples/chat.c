/* examples/chat: a small chat client on the chat layer. It logs in, shows
 * the roster with presence, chats (every device of the account sees the
 * conversation: carbons; receipts asked and answered), catches up on what
 * arrived while it was away (the server's archive), and joins group chats.
 * Commands on standard input, one line per event on standard output:
 *
 *   XMPPUV_PASSWORD=... chat --jid alice@example.org [--state FILE]
 *   /msg JID TEXT...   /add JID [NAME]   /remove JID   /roster
 *   /join ROOM NICK    /say ROOM TEXT... /leave ROOM   /quit
 *
 * Public API only, like any app. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <xmppuv.h>

#include "common.h"

static const char usage[] =
    "usage: XMPPUV_PASSWORD=... chat --jid JID [options]\n"
    "  --jid, --host, --port, --url, --discover, --tls, --ca-file, --insecure,\n"
    "  --resource, --no-sasl2, -v: as for echo (see echo --help)\n"
    "  --state FILE       keep the session, the login token and the last archive id\n"
    "                     (FILE.mam) across runs: a restart catches up from there\n"
    "Commands (standard input):\n"
    "  /msg JID TEXT...   a chat message, with a delivery receipt asked for\n"
    "  /add JID [NAME]    into the roster, and ask to see their presence\n"
    "  /remove JID        out of the roster\n"
    "  /roster            the roster with everyone's presence\n"
    "  /join ROOM NICK    enter a group chat\n"
    "  /say ROOM TEXT...  say something there\n"
    "  /leave ROOM        leave it\n"
    "  /quit\n"
    "Prints: online JID | resumed | roster JID SUBSCRIPTION [NAME] | presence JID SHOW [STATUS]\n"
    "        | gone JID | request JID | msg FROM TEXT | carbon sent|received JID TEXT\n"
    "        | receipt FROM ID | history FROM TEXT | caught-up N | room ROOM ...\n"
    "        | error ...\n";

typedef struct chat {
  uv_loop_t *loop;
  xmppuv_client_t *client;
  xmppuv_disco_t *disco;
  xmppuv_roster_t *roster;
  xmppuv_presence_t *presence;
  xmppuv_carbons_t *carbons;
  xmppuv_receipts_t *receipts;
  xmppuv_mam_t *mam;
  xmppuv_muc_t *muc;
  const char *state_file;
  char last_archive_id[256];
  uv_pipe_t in;
  uv_signal_t sigint;
  char line[4096];
  size_t line_len;
  int quitting;
} chat_t;

static void out(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
static void out(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

/* ---- the archive id kept across runs (FILE.mam) ---------------------------- */

static void load_last_id(chat_t *ch) {
  if (ch->state_file == NULL) return;
  char path[1024];
  snprintf(path, sizeof path, "%s.mam", ch->state_file);
  FILE *f = fopen(path, "r");
  if (f == NULL) return;
  if (fgets(ch->last_archive_id, sizeof ch->last_archive_id, f) != NULL)
    ch->last_archive_id[strcspn(ch->last_archive_id, "\r\n")] = '\0';
  fclose(f);
}

static void save_last_id(chat_t *ch) {
  if (ch->state_file == NULL || ch->last_archive_id[0] == '\0') return;
  char path[1024];
  snprintf(path, sizeof path, "%s.mam", ch->state_file);
  FILE *f = fopen(path, "w");
  if (f == NULL) return;
  fprintf(f, "%s\n", ch->last_archive_id);
  fclose(f);
}

/* Every message with an archive id moves the mark: what comes live now is
 * in the archive too, and a restart starts after it. */
static void note_archive_id(chat_t *ch, const xmppuv_stanza_t *message) {
  const xmppuv_jid_t *me = xmppuv_client_jid(ch->client);
  const char *id = me != NULL ? xmppuv_stanza_id_of(message, xmppuv_jid_bare_string(me)) : NULL;
  if (id == NULL) return;
  snprintf(ch->last_archive_id, sizeof ch->last_archive_id, "%s", id);
  save_last_id(ch);
}

/* ---- events ---------------------------------------------------------------- */

static void on_history(xmppuv_mam_t *m, const xmppuv_mam_message_t *msg, void *ud) {
  (void)m;
  chat_t *ch = ud;
  const char *body = xmppuv_stanza_child_text(msg->message, "body", NULL);
  const char *from = xmppuv_stanza_attr(msg->message, "from");
  if (body != NULL) out("history %s %s", from != NULL ? from : "-", body);
  snprintf(ch->last_archive_id, sizeof ch->last_archive_id, "%s", msg->id);
}

static void on_caught_up(xmppuv_mam_t *m, int status, int complete, const char *last_id,
                         unsigned count, void *ud) {
  (void)m, (void)complete, (void)last_id;
  chat_t *ch = ud;
  if (status != 0) out("error archive %s", xmppuv_err_name(status));
  else out("caught-up %u", count);
  save_last_id(ch);
}

static void on_online(xmppuv_client_t *c, const xmppuv_jid_t *jid, void *ud) {
  chat_t *ch = ud;
  example_print_online(c, jid, ud);
  /* A new session: what arrived while we were away. Only from a mark kept
   * by an earlier run: without one, the archive's whole past is not news. */
  if (ch->last_archive_id[0] != '\0')
    xmppuv_mam_catch_up(ch->mam, ch->last_archive_id, on_history, on_caught_up, ch);
}

static int on_message(xmppuv_client_t *c, xmppuv_stanza_t *msg, void *ud) {
  (void)c;
  chat_t *ch = ud;
  const char *body = xmppuv_stanza_child_text(msg, "body", NULL);
  const char *type = xmppuv_stanza_attr(msg, "type");
  if (type != NULL && strcmp(type, "groupchat") == 0) return XMPPUV_PASS; /* the room's */
  if (body != NULL) out("msg %s %s", xmppuv_stanza_attr(msg, "from"), body);
  note_archive_id(ch, msg);
  return XMPPUV_HANDLED;
}

static void on_carbon(xmppuv_carbons_t *cb, const xmppuv_carbon_t *copy, void *ud) {
  (void)cb;
  chat_t *ch = ud;
  const char *body = xmppuv_stanza_child_text(copy->message, "body", NULL);
  if (body == NULL) return;
  int sent = copy->direction == XMPPUV_CARBON_SENT;
  out("carbon %s %s %s", sent ? "sent" : "received",
      xmppuv_stanza_attr(copy->message, sent ? "to" : "from"), body);
  note_archive_id(ch, copy->message);
}

static void on_receipt(xmppuv_receipts_t *r, const char *from, const char *id,
                       const xmppuv_stanza_t *message, void *ud) {
  (void)r, (void)message, (void)ud;
  out("receipt %s %s", from, id);
}

static void on_item(xmppuv_roster_t *r, const xmppuv_roster_item_t *item, void *ud) {
  (void)r, (void)ud;
  out("roster %s %s%s%s", item->jid, xmppuv_subscription_name(item->subscription),
      item->name != NULL ? " " : "", item->name != NULL ? item->name : "");
}

static void on_request(xmppuv_roster_t *r, const char *from, xmppuv_stanza_t *p, void *ud) {
  (void)r, (void)p, (void)ud;
  /* A newcomer's client answers what its user says; this one says yes to
   * whoever is in the roster already and prints the rest. */
  if (xmppuv_roster_get(r, from) != NULL) xmppuv_roster_approve(r, from);
  else out("request %s", from);
}

static void on_presence(xmppuv_presence_t *p, const xmppuv_presence_info_t *info, void *ud) {
  (void)p;
  chat_t *ch = ud;
  /* Contacts only: a room announces itself too (ejabberd sends its
   * capabilities from the room's JID), and its occupants are the group
   * chat's business. */
  if (xmppuv_roster_get(ch->roster, info->bare) == NULL) return;
  if (!info->available) out("gone %s", info->jid);
  else
    out("presence %s %s%s%s", info->jid, xmppuv_show_name(info->show),
        info->status != NULL ? " " : "", info->status != NULL ? info->status : "");
}

/* ---- group chat ---------------------------------------------------------- */

static void on_room_joined(xmppuv_muc_t *m, xmppuv_muc_room_t *room, const char *nick,
                           void *ud) {
  (void)m, (void)ud;
  out("room %s joined %s", xmppuv_muc_room_jid(room), nick);
}

static void on_room_failed(xmppuv_muc_t *m, xmppuv_muc_room_t *room, const char *condition,
                           const char *text, void *ud) {
  (void)m, (void)ud;
  out("room %s failed %s%s%s", xmppuv_muc_room_jid(room), condition != NULL ? condition : "-",
      text != NULL ? " " : "", text != NULL ? text : "");
}

static void on_room_message(xmppuv_muc_t *m, xmppuv_muc_room_t *room,
                            const xmppuv_muc_message_t *msg, void *ud) {
  (void)m, (void)ud;
  const char *body = xmppuv_stanza_child_text(msg->message, "body", NULL);
  if (body != NULL)
    out("room %s %s%s: %s", xmppuv_muc_room_jid(room), msg->is_history ? "(history) " : "",
        msg->from_nick != NULL ? msg->from_nick : "-", body);
}

/* ---- commands -------------------------------------------------------------- */

static void command(chat_t *ch, char *line) {
  char *cmd = strtok(line, " ");
  if (cmd == NULL) return;
  char *arg = strtok(NULL, " ");
  char *rest = strtok(NULL, "");
  int rc = 0;
  if (strcmp(cmd, "/quit") == 0) {
    ch->quitting = 1;
    xmppuv_client_stop(ch->client);
    return;
  } else if (strcmp(cmd, "/msg") == 0 && arg != NULL && rest != NULL) {
    xmppuv_stanza_t *m = NULL;
    rc = xmppuv_message_new(arg, "chat", rest, &m);
    if (rc == 0) rc = xmppuv_receipts_prepare(ch->receipts, m, XMPPUV_RECEIPTS_REQUEST);
    if (rc == 0) rc = xmppuv_client_send(ch->client, m);
    if (rc == 0) out("sent %s", xmppuv_stanza_attr(m, "id"));
    xmppuv_stanza_unref(m);
  } else if (strcmp(cmd, "/add") == 0 && arg != NULL) {
    rc = xmppuv_roster_set(ch->roster, arg, rest, NULL, 0, NULL, NULL);
    if (rc == 0) rc = xmppuv_roster_subscribe(ch->roster, arg);
  } else if (strcmp(cmd, "/remove") == 0 && arg != NULL) {
    rc = xmppuv_roster_remove(ch->roster, arg, NULL, NULL);
  } else if (strcmp(cmd, "/roster") == 0) {
    for (size_t i = 0; i < xmppuv_roster_count(ch->roster); i++) {
      const xmppuv_roster_item_t *it = xmppuv_roster_item_at(ch->roster, i);
      const xmppuv_presence_info_t *best = xmppuv_presence_best(ch->presence, it->jid);
      out("roster %s %s %s", it->jid, xmppuv_subscription_name(it->subscription),
          best != NULL ? xmppuv_show_name(best->show) : "offline");
    }
  } else if (strcmp(cmd, "/join") == 0 && arg != NULL && rest != NULL) {
    rc = xmppuv_muc_join(ch->muc, arg, rest, NULL, NULL, NULL);
  } else if (strcmp(cmd, "/say") == 0 && arg != NULL && rest != NULL) {
    xmppuv_muc_room_t *room = xmppuv_muc_room_find(ch->muc, arg);
    rc = room != NULL ? xmppuv_muc_send(room, rest) : XMPPUV_EINVAL;
  } else if (strcmp(cmd, "/leave") == 0 && arg != NULL) {
    xmppuv_muc_room_t *room = xmppuv_muc_room_find(ch->muc, arg);
    rc = room != NULL ? xmppuv_muc_leave(room, NULL) : XMPPUV_EINVAL;
  } else {
    out("error unknown command (see --help)");
    return;
  }
  if (rc != 0) out("error %s %s", cmd, xmppuv_err_name(rc));
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  (void)h;
  static char b[4096];
  (void)size;
  *buf = uv_buf_init(b, sizeof b);
}

static void on_stdin(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  chat_t *ch = s->data;
  if (n < 0) {
    /* End of input: the same as /quit. */
    uv_close((uv_handle_t *)s, NULL);
    if (!ch->quitting) {
      ch->quitting = 1;
      xmppuv_client_stop(ch->client);
    }
    return;
  }
  for (ssize_t i = 0; i < n; i++) {
    char c = buf->base[i];
    if (c == '\n' || ch->line_len == sizeof ch->line - 1) {
      ch->line[ch->line_len] = '\0';
      if (ch->line_len > 0 && ch->line[ch->line_len - 1] == '\r') ch->line[--ch->line_len] = '\0';
      command(ch, ch->line);
      ch->line_len = 0;
    } else {
      ch->line[ch->line_len++] = c;
    }
  }
}

static void on_status(xmppuv_client_t *c, xmppuv_status_t status, void *ud) {
  chat_t *ch = ud;
  example_print_status(c, status, ud);
  if (status == XMPPUV_STATUS_OFFLINE && ch->quitting) {
    if (ch->state_file != NULL) example_save_state(c, ch->state_file);
    xmppuv_client_close(c, NULL);
    uv_close((uv_handle_t *)&ch->sigint, NULL);
    if (!uv_is_closing((uv_handle_t *)&ch->in)) uv_close((uv_handle_t *)&ch->in, NULL);
  }
}

static void on_sigint(uv_signal_t *s, int signum) {
  (void)signum;
  chat_t *ch = s->data;
  if (!ch->quitting) {
    ch->quitting = 1;
    xmppuv_client_stop(ch->client);
  }
}

int main(int argc, char **argv) {
  example_args_t args;
  example_parse_args(argc, argv, &args, usage, 0);
  chat_t ch;
  memset(&ch, 0, sizeof ch);
  ch.loop = uv_default_loop();
  ch.state_file = args.state_file;
  load_last_id(&ch);

  xmppuv_client_callbacks_t cbs;
  xmppuv_client_callbacks_init(&cbs);
  cbs.status = on_status;
  cbs.online = on_online;
  cbs.resumed = example_print_resumed;
  cbs.error = example_print_error;
  cbs.fast_token = example_print_fast_token;
  int rc = xmppuv_client_new(ch.loop, &args.opts, &cbs, &ch, &ch.client);
  if (rc != 0) {
    fprintf(stderr, "chat: %s\n", xmppuv_strerror(rc));
    return 1;
  }
  if (ch.state_file != NULL) example_load_state(ch.client, ch.state_file);

  /* The chat layer: discovery first (the others register their features
   * with it), then the rest. Each goes with the client. */
  const xmppuv_disco_identity_t me = {"client", "pc", "xmppuv chat", NULL};
  rc = xmppuv_disco_new(ch.client, &me, "https://xmppuv.org/chat", &ch.disco);

  xmppuv_roster_callbacks_t rcb;
  memset(&rcb, 0, sizeof rcb);
  rcb.struct_size = sizeof rcb;
  rcb.item = on_item;
  rcb.subscription_request = on_request;
  if (rc == 0) rc = xmppuv_roster_new(ch.client, &rcb, &ch, &ch.roster);

  xmppuv_presence_options_t po;
  xmppuv_presence_options_init(&po);
  po.disco = ch.disco;
  xmppuv_presence_callbacks_t pcb;
  memset(&pcb, 0, sizeof pcb);
  pcb.struct_size = sizeof pcb;
  pcb.changed = on_presence;
  if (rc == 0) rc = xmppuv_presence_new(ch.client, &po, &pcb, &ch, &ch.presence);

  xmppuv_carbons_callbacks_t ccb;
  xmppuv_carbons_callbacks_init(&ccb);
  ccb.carbon = on_carbon;
  if (rc == 0) rc = xmppuv_carbons_new(ch.client, ch.disco, &ccb, &ch, &ch.carbons);

  xmppuv_receipts_callbacks_t rrc;
  xmppuv_receipts_callbacks_init(&rrc);
  rrc.receipt = on_receipt;
  if (rc == 0) rc = xmppuv_receipts_new(ch.client, ch.disco, NULL, &rrc, &ch, &ch.receipts);
  if (rc == 0) rc = xmppuv_mam_new(ch.client, ch.disco, NULL, NULL, &ch.mam);

  xmppuv_muc_callbacks_t mcb;
  xmppuv_muc_callbacks_init(&mcb);
  mcb.joined = on_room_joined;
  mcb.join_failed = on_room_failed;
  mcb.message = on_room_message;
  if (rc == 0) rc = xmppuv_muc_new(ch.client, ch.disco, NULL, &mcb, &ch, &ch.muc);
  /* After the modules: what they do not take is a chat message. */
  if (rc == 0)
    rc = xmppuv_client_handler_add(ch.client, "message", NULL, NULL, on_message, &ch, NULL);
  if (rc != 0) {
    fprintf(stderr, "chat: %s\n", xmppuv_strerror(rc));
    return 1;
  }

  uv_pipe_init(ch.loop, &ch.in, 0);
  ch.in.data = &ch;
  if (uv_pipe_open(&ch.in, 0) == 0) uv_read_start((uv_stream_t *)&ch.in, on_alloc, on_stdin);
  uv_signal_init(ch.loop, &ch.sigint);
  ch.sigint.data = &ch;
  uv_signal_start(&ch.sigint, on_sigint, SIGINT);

  rc = xmppuv_client_start(ch.client);
  if (rc != 0) {
    fprintf(stderr, "chat: %s\n", xmppuv_strerror(rc));
    return 1;
  }
  uv_run(ch.loop, UV_RUN_DEFAULT);
  return uv_loop_close(ch.loop) == 0 ? 0 : 1;
}
