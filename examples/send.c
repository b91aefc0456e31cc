/* examples/send: send messages and exit 0 only when the server has
 * acknowledged every one of them (XEP-0198 Stream Management).
 *
 *   XMPPUV_PASSWORD=secret send --jid me@example.org --to you@example.org hello there
 *   printf 'one\ntwo\n' | XMPPUV_PASSWORD=secret send --jid me@example.org --to you@example.org
 *   XMPPUV_PASSWORD=secret send --jid me@example.org --to you@example.org --count 1000 --rate 50
 *
 * Prints the same event lines as examples/echo, and "recv FROM ID BODY" for
 * messages that arrive (see --wait-reply). SIGINT or SIGTERM stops it
 * gracefully (a second one closes at once); what was not acknowledged is
 * listed as always. Exit status: 0 all acknowledged; 1 some failed, could
 * not be confirmed or were never sent (they are listed); 2 bad usage. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <xmppuv.h>

#include "common.h"

static const char usage[] =
    "usage: XMPPUV_PASSWORD=... send --jid JID --to JID [options] [WORDS...]\n"
    "  --to JID           the recipient (required)\n"
    "  --count N          send N numbered messages (\"message 1\" ...)\n"
    "  --rate R           at most R messages per second (default: as fast as acks allow)\n"
    "  --wait-reply SECS  after the acks, wait up to SECS for as many replies as messages\n"
    "  WORDS...           one message made of the words; without words or --count,\n"
    "                     each line of standard input is a message\n"
    "  --jid, --host, --port, --url, --discover, --tls, --ca-file, --insecure,\n"
    "  --resource, --no-sasl2, -v:\n"
    "                     as for echo (see echo --help)\n";

typedef struct {
  xmppuv_client_t *client;
  uv_timer_t timer;
  uv_signal_t sigint, sigterm;
  int interrupted;
  char **bodies;
  size_t total, next, acked, failed, unconfirmed, replies;
  double rate;
  double wait_reply;
  const char *to;
  int started_sending;
  int waiting_replies;
  char **failed_ids;
} sender_t;

static void finish(sender_t *s);
static void pump(sender_t *s);

static void on_sent(xmppuv_client_t *c, xmppuv_stanza_t *stanza, int status, void *ud) {
  sender_t *s = ud;
  /* A tracked stanza's outcome comes here only, not to the ack/fail events. */
  if (status == 0)
    example_print_ack(c, stanza, NULL);
  else
    example_print_fail(c, stanza, status, NULL);
  if (status == 0) {
    s->acked++;
  } else {
    const char *id = xmppuv_stanza_attr(stanza, "id");
    s->failed_ids[s->failed + s->unconfirmed] = strdup(id ? id : "-");
    if (status == XMPPUV_ESMOFF)
      s->unconfirmed++;
    else
      s->failed++;
  }
  if (s->next < s->total && s->rate <= 0) pump(s); /* room in the queue again */
  if (s->acked + s->failed + s->unconfirmed == s->total) finish(s);
}

static void on_timer(uv_timer_t *t) { pump(t->data); }

/* Send what the rate and the queue allow. */
static void pump(sender_t *s) {
  while (s->next < s->total) {
    xmppuv_stanza_t *msg;
    /* A body that cannot be a message (a control character, bad UTF-8) is
     * a failure of that message, reported below, not a stop. */
    int rc = xmppuv_message_new(s->to, "chat", s->bodies[s->next], &msg);
    if (rc == 0) {
      rc = xmppuv_client_send_tracked(s->client, msg, on_sent, s);
      xmppuv_stanza_unref(msg);
      if (rc == XMPPUV_ENOBUFS) return; /* back-pressure: on_sent calls again */
    }
    if (rc != 0) {
      printf("error %s could not send message %zu\n", xmppuv_err_name(rc), s->next + 1);
      s->failed_ids[s->failed + s->unconfirmed] = strdup("(not sent)");
      s->failed++;
      s->next++;
      if (s->acked + s->failed + s->unconfirmed == s->total) finish(s);
      continue;
    }
    s->next++;
    if (s->rate > 0) {
      if (s->next < s->total)
        uv_timer_start(&s->timer, on_timer, (uint64_t)(1000.0 / s->rate), 0);
      return;
    }
  }
}

static void on_online(xmppuv_client_t *c, const xmppuv_jid_t *jid, void *ud) {
  example_print_online(c, jid, ud);
  sender_t *s = ud;
  if (!s->started_sending) {
    s->started_sending = 1;
    if (s->wait_reply > 0) {
      /* Available, so replies to our bare JID reach us. */
      xmppuv_stanza_t *presence;
      if (xmppuv_stanza_new("presence", NULL, &presence) == 0) {
        xmppuv_client_send(c, presence);
        xmppuv_stanza_unref(presence);
      }
    }
    pump(s);
  }
}

static int on_message(xmppuv_client_t *c, xmppuv_stanza_t *msg, void *ud) {
  (void)c;
  sender_t *s = ud;
  const char *from = xmppuv_stanza_attr(msg, "from");
  const char *id = xmppuv_stanza_attr(msg, "id");
  const char *body = xmppuv_stanza_child_text(msg, "body", NULL);
  if (body == NULL) return XMPPUV_PASS;
  printf("recv %s %s %s\n", from ? from : "-", id ? id : "-", body);
  fflush(stdout);
  s->replies++;
  if (s->waiting_replies && s->replies >= s->total) {
    s->waiting_replies = 0;
    uv_timer_stop(&s->timer);
    xmppuv_client_stop(s->client);
  }
  return XMPPUV_HANDLED;
}

static void on_wait_over(uv_timer_t *t) {
  sender_t *s = t->data;
  s->waiting_replies = 0;
  xmppuv_client_stop(s->client);
}

/* Every message has its outcome. */
static void finish(sender_t *s) {
  if (s->interrupted || s->client == NULL) return; /* stopping already */
  if (s->wait_reply > 0 && s->replies < s->total) {
    s->waiting_replies = 1;
    uv_timer_start(&s->timer, on_wait_over, (uint64_t)(s->wait_reply * 1000), 0);
    return;
  }
  xmppuv_client_stop(s->client);
}

static void on_closed(xmppuv_client_t *c, void *ud) {
  (void)c;
  sender_t *s = ud;
  uv_close((uv_handle_t *)&s->timer, NULL);
  /* The signal handles stay until main's end, so a late signal is still
   * caught, but they no longer keep uv_run going. */
  uv_unref((uv_handle_t *)&s->sigint);
  uv_unref((uv_handle_t *)&s->sigterm);
}

/* The first signal stops gracefully (what is unacknowledged fails with
 * ECANCELED after a last <a/>); a second one closes at once. */
static void on_signal(uv_signal_t *sig, int signum) {
  sender_t *s = sig->data;
  printf("interrupted by signal %d\n", signum);
  fflush(stdout);
  if (s->client == NULL) return; /* already closing */
  if (s->interrupted++ == 0) {
    uv_timer_stop(&s->timer);
    s->waiting_replies = 0;
    s->next = s->total; /* send nothing more */
    xmppuv_client_stop(s->client);
  } else {
    xmppuv_client_t *c = s->client;
    s->client = NULL;
    xmppuv_client_close(c, on_closed);
  }
}

static void on_status(xmppuv_client_t *c, xmppuv_status_t status, void *ud) {
  example_print_status(c, status, ud);
  sender_t *s = ud;
  if (status == XMPPUV_STATUS_OFFLINE && s->client != NULL) {
    s->client = NULL;
    xmppuv_client_close(c, on_closed);
  }
}

static char **read_bodies(int argc, char **argv, const example_args_t *a, size_t *n) {
  char **bodies = NULL;
  *n = 0;
  if (a->count > 0) {
    bodies = calloc((size_t)a->count, sizeof *bodies);
    for (long i = 0; bodies && i < a->count; i++) {
      char text[64];
      snprintf(text, sizeof text, "message %ld", i + 1);
      bodies[(*n)++] = strdup(text);
    }
    return bodies;
  }
  if (a->first_free < argc) {
    size_t len = 1;
    for (int i = a->first_free; i < argc; i++) len += strlen(argv[i]) + 1;
    char *text = calloc(1, len);
    for (int i = a->first_free; text && i < argc; i++) {
      if (i > a->first_free) strcat(text, " ");
      strcat(text, argv[i]);
    }
    bodies = calloc(1, sizeof *bodies);
    if (bodies) bodies[(*n)++] = text;
    return bodies;
  }
  char line[4096];
  size_t cap = 0;
  while (fgets(line, sizeof line, stdin) != NULL) {
    line[strcspn(line, "\r\n")] = '\0';
    if (line[0] == '\0') continue;
    if (*n == cap) {
      cap = cap ? cap * 2 : 16;
      char **grown = realloc(bodies, cap * sizeof *bodies);
      if (grown == NULL) break;
      bodies = grown;
    }
    bodies[(*n)++] = strdup(line);
  }
  return bodies;
}

int main(int argc, char **argv) {
  example_args_t args;
  example_parse_args(argc, argv, &args, usage, 1);
  if (args.to == NULL) {
    fprintf(stderr, "--to is required\n%s", usage);
    return 2;
  }
  if (args.state_file != NULL) {
    fprintf(stderr, "--state is for echo, not send\n%s", usage);
    return 2;
  }
  sender_t s;
  memset(&s, 0, sizeof s);
  s.to = args.to;
  s.rate = args.rate;
  s.wait_reply = args.wait_reply;
  s.bodies = read_bodies(argc, argv, &args, &s.total);
  if (s.total == 0) {
    fprintf(stderr, "nothing to send\n");
    return 2;
  }
  s.failed_ids = calloc(s.total, sizeof *s.failed_ids);

  uv_loop_t *loop = uv_default_loop();
  uv_timer_init(loop, &s.timer);
  s.timer.data = &s;
  uv_signal_init(loop, &s.sigint);
  uv_signal_init(loop, &s.sigterm);
  s.sigint.data = s.sigterm.data = &s;
  uv_signal_start(&s.sigint, on_signal, SIGINT);
  uv_signal_start(&s.sigterm, on_signal, SIGTERM);
  xmppuv_client_callbacks_t cbs;
  xmppuv_client_callbacks_init(&cbs);
  cbs.status = on_status;
  cbs.online = on_online;
  cbs.resumed = example_print_resumed;
  cbs.error = example_print_error;
  /* No ack/fail events: the messages are tracked (on_sent prints their
   * outcomes), and the presence's outcome is of no interest here. */
  cbs.reconnecting = example_print_reconnecting;
  cbs.fast_token = example_print_fast_token;
  int rc = xmppuv_client_new(loop, &args.opts, &cbs, &s, &s.client);
  if (rc != 0) {
    fprintf(stderr, "send: %s\n", xmppuv_strerror(rc));
    return 1;
  }
  xmppuv_client_handler_add(s.client, "message", NULL, NULL, on_message, &s, NULL);
  rc = xmppuv_client_start(s.client);
  if (rc != 0) {
    fprintf(stderr, "send: %s\n", xmppuv_strerror(rc));
    return 1;
  }
  uv_run(loop, UV_RUN_DEFAULT);

  size_t not_acked = s.total - s.acked;
  if (not_acked > 0) {
    printf("not acknowledged: %zu of %zu:", not_acked, s.total);
    for (size_t i = 0; i < s.failed + s.unconfirmed; i++) printf(" %s", s.failed_ids[i]);
    size_t never = s.total - s.acked - s.failed - s.unconfirmed;
    if (never > 0) printf(" (%zu never sent)", never);
    printf("\n");
  } else {
    printf("all %zu acknowledged\n", s.total);
  }
  for (size_t i = 0; i < s.total; i++) free(s.bodies[i]);
  for (size_t i = 0; i < s.failed + s.unconfirmed; i++) free(s.failed_ids[i]);
  free(s.bodies);
  free(s.failed_ids);
  fflush(stdout);
  example_signal_close(&s.sigint);
  example_signal_close(&s.sigterm);
  uv_run(loop, UV_RUN_DEFAULT);
  int loop_ok = uv_loop_close(loop) == 0;
  return not_acked == 0 && loop_ok ? 0 : 1;
}
