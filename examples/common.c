#include "common.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

static void usage_exit(const char *usage, int code) {
  fputs(usage, code == 0 ? stdout : stderr);
  exit(code);
}

static void bad_value(const char *option, const char *value, const char *usage) {
  fprintf(stderr, "bad value for %s: %s\n", option, value);
  usage_exit(usage, 2);
}

static const char *need_value(int argc, char **argv, int *i, const char *usage) {
  if (*i + 1 >= argc) {
    fprintf(stderr, "%s needs a value\n", argv[*i]);
    usage_exit(usage, 2);
  }
  return argv[++*i];
}

void example_parse_args(int argc, char **argv, example_args_t *a, const char *usage,
                        int with_send_options) {
  memset(a, 0, sizeof *a);
  /* A write to a connection the server closed must be an error, not the
   * end of the program (README, "Embedding"). */
  signal(SIGPIPE, SIG_IGN);
  xmppuv_client_options_init(&a->opts);
  a->rate = 0;
  int i;
  for (i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "--") == 0) {
      i++;
      break;
    }
    if (arg[0] != '-') break;
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      usage_exit(usage, 0);
    } else if (strcmp(arg, "--jid") == 0) {
      a->opts.jid = need_value(argc, argv, &i, usage);
    } else if (strcmp(arg, "--host") == 0) {
      a->opts.host = need_value(argc, argv, &i, usage);
    } else if (strcmp(arg, "--url") == 0) {
      a->opts.url = need_value(argc, argv, &i, usage);
    } else if (strcmp(arg, "--discover") == 0) {
      const char *mode = need_value(argc, argv, &i, usage);
      if (strcmp(mode, "auto") == 0)
        a->opts.discovery = XMPPUV_DISCOVERY_AUTO;
      else if (strcmp(mode, "websocket") == 0)
        a->opts.discovery = XMPPUV_DISCOVERY_WEBSOCKET_FIRST;
      else
        bad_value(arg, mode, usage);
    } else if (strcmp(arg, "--port") == 0) {
      const char *v = need_value(argc, argv, &i, usage);
      long p = strtol(v, NULL, 10);
      if (p <= 0 || p > 65535) bad_value(arg, v, usage);
      a->opts.port = (unsigned short)p;
    } else if (strcmp(arg, "--tls") == 0) {
      const char *mode = need_value(argc, argv, &i, usage);
      if (strcmp(mode, "starttls") == 0)
        a->opts.tls = XMPPUV_TLS_STARTTLS;
      else if (strcmp(mode, "direct") == 0)
        a->opts.tls = XMPPUV_TLS_DIRECT;
      else
        bad_value(arg, mode, usage);
    } else if (strcmp(arg, "--ca-file") == 0) {
      a->opts.ca_file = need_value(argc, argv, &i, usage);
    } else if (strcmp(arg, "--insecure") == 0) {
      a->opts.tls_insecure = 1;
    } else if (strcmp(arg, "--resource") == 0) {
      a->opts.resource = need_value(argc, argv, &i, usage);
    } else if (strcmp(arg, "--state") == 0) {
      a->state_file = need_value(argc, argv, &i, usage);
    } else if (strcmp(arg, "--no-sasl2") == 0) {
      a->opts.sasl2 = 0;
    } else if (strcmp(arg, "-v") == 0) {
      a->verbose = 1;
    } else if (with_send_options && strcmp(arg, "--to") == 0) {
      a->to = need_value(argc, argv, &i, usage);
    } else if (with_send_options && strcmp(arg, "--count") == 0) {
      const char *v = need_value(argc, argv, &i, usage);
      a->count = strtol(v, NULL, 10);
      if (a->count <= 0) bad_value(arg, v, usage);
    } else if (with_send_options && strcmp(arg, "--rate") == 0) {
      const char *v = need_value(argc, argv, &i, usage);
      a->rate = strtod(v, NULL);
      if (a->rate <= 0) bad_value(arg, v, usage);
    } else if (with_send_options && strcmp(arg, "--wait-reply") == 0) {
      const char *v = need_value(argc, argv, &i, usage);
      a->wait_reply = strtod(v, NULL);
      if (a->wait_reply <= 0) bad_value(arg, v, usage);
    } else {
      fprintf(stderr, "unknown option %s\n", arg);
      usage_exit(usage, 2);
    }
  }
  a->first_free = i;
  if (a->opts.jid == NULL) {
    fprintf(stderr, "--jid is required\n");
    usage_exit(usage, 2);
  }
  /* Never on the command line: other users can read it from the process
   * list. */
  a->opts.password = getenv("XMPPUV_PASSWORD");
  if (a->opts.password == NULL) {
    fprintf(stderr, "set XMPPUV_PASSWORD in the environment\n");
    exit(2);
  }
  if (a->verbose) {
    a->opts.log_cb = example_log;
    a->opts.log_level = XMPPUV_LOG_TRACE;
  }
  if (a->state_file != NULL && example_load_login(a->state_file, &a->login) == 0) {
    a->opts.user_agent_id = a->login.user_agent_id[0] ? a->login.user_agent_id : NULL;
    if (a->login.token[0] != '\0' && a->login.mechanism[0] != '\0') {
      a->opts.fast_token = a->login.token;
      a->opts.fast_mechanism = a->login.mechanism;
    }
  }
}

void example_print_fast_token(xmppuv_client_t *c, const xmppuv_fast_token_t *t, void *ud) {
  (void)c, (void)ud;
  if (t != NULL)
    printf("token %s %s\n", t->mechanism, t->expiry[0] ? t->expiry : "-");
  else
    printf("token none\n");
  fflush(stdout);
}

static void login_path(const char *state_path, char *out, size_t size) {
  snprintf(out, size, "%s.login", state_path);
}

int example_load_login(const char *state_path, example_login_t *login) {
  memset(login, 0, sizeof *login);
  char path[4096];
  login_path(state_path, path, sizeof path);
  FILE *f = fopen(path, "r");
  if (f == NULL) return 1;
  char line[1200];
  while (fgets(line, sizeof line, f) != NULL) {
    line[strcspn(line, "\n")] = '\0';
    char *value = strchr(line, ' ');
    if (value == NULL) continue;
    *value++ = '\0';
    if (strcmp(line, "user-agent-id") == 0)
      snprintf(login->user_agent_id, sizeof login->user_agent_id, "%s", value);
    else if (strcmp(line, "fast-mechanism") == 0)
      snprintf(login->mechanism, sizeof login->mechanism, "%s", value);
    else if (strcmp(line, "fast-token") == 0)
      snprintf(login->token, sizeof login->token, "%s", value);
  }
  memset(line, 0, sizeof line);
  fclose(f);
  return 0;
}

int example_save_login(const char *state_path, const example_login_t *login) {
  char path[4096], tmp[4100];
  login_path(state_path, path, sizeof path);
  snprintf(tmp, sizeof tmp, "%s.new", path);
  /* A credential: readable by the owner only, replaced in one step. */
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return -1;
  FILE *f = fdopen(fd, "w");
  if (f == NULL) {
    close(fd);
    return -1;
  }
  fprintf(f, "user-agent-id %s\n", login->user_agent_id);
  if (login->token[0] != '\0')
    fprintf(f, "fast-mechanism %s\nfast-token %s\n", login->mechanism, login->token);
  int ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
  ok = fclose(f) == 0 && ok;
  return ok && rename(tmp, path) == 0 ? 0 : -1;
}

static const char *id_of(const xmppuv_stanza_t *s) {
  const char *id = xmppuv_stanza_attr(s, "id");
  return id ? id : "-";
}

void example_print_status(xmppuv_client_t *c, xmppuv_status_t status, void *ud) {
  (void)c, (void)ud;
  printf("status %s\n", xmppuv_status_name(status));
  fflush(stdout);
}

void example_print_online(xmppuv_client_t *c, const xmppuv_jid_t *jid, void *ud) {
  (void)c, (void)ud;
  printf("online %s\n", xmppuv_jid_string(jid));
  fflush(stdout);
}

void example_print_resumed(xmppuv_client_t *c, void *ud) {
  (void)c, (void)ud;
  printf("resumed\n");
  fflush(stdout);
}

void example_print_error(xmppuv_client_t *c, const xmppuv_error_t *err, void *ud) {
  (void)c, (void)ud;
  printf("error %s %s%s%s%s%s%s\n", xmppuv_err_name(err->code), xmppuv_strerror(err->code),
         err->condition ? " condition=" : "", err->condition ? err->condition : "",
         err->text ? " text=" : "", err->text ? err->text : "", err->fatal ? " (fatal)" : "");
  fflush(stdout);
}

void example_print_ack(xmppuv_client_t *c, xmppuv_stanza_t *s, void *ud) {
  (void)c, (void)ud;
  printf("ack %s\n", id_of(s));
  fflush(stdout);
}

void example_print_fail(xmppuv_client_t *c, xmppuv_stanza_t *s, int reason, void *ud) {
  (void)c, (void)ud;
  printf("fail %s %s\n", id_of(s), xmppuv_err_name(reason));
  fflush(stdout);
}

void example_print_reconnecting(xmppuv_client_t *c, unsigned attempt, uint64_t delay_ms,
                                void *ud) {
  (void)c, (void)ud;
  printf("reconnecting %u %llu\n", attempt, (unsigned long long)delay_ms);
  fflush(stdout);
}

void example_log(void *ud, xmppuv_log_level_t level, const char *area, const char *msg) {
  (void)ud;
  fprintf(stderr, "[%s] %s: %s\n", xmppuv_log_level_name(level), area, msg);
}

int example_save_state(xmppuv_client_t *c, const char *path) {
  char *data;
  size_t len;
  int rc = xmppuv_client_sm_export(c, &data, &len);
  if (rc != 0) return rc;
  FILE *f = fopen(path, "wb");
  if (f == NULL) {
    xmppuv_free(data);
    return -1;
  }
  size_t n = fwrite(data, 1, len, f);
  int closed = fclose(f);
  xmppuv_free(data);
  return n == len && closed == 0 ? 0 : -1;
}

int example_load_state(xmppuv_client_t *c, const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return 1; /* nothing saved yet */
  char *data = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len == cap) {
      cap = cap ? cap * 2 : 65536;
      char *grown = realloc(data, cap);
      if (grown == NULL) {
        free(data);
        fclose(f);
        return -1;
      }
      data = grown;
    }
    size_t n = fread(data + len, 1, cap - len, f);
    if (n == 0) break;
    len += n;
  }
  fclose(f);
  int rc = xmppuv_client_sm_import(c, data, len);
  free(data);
  return rc;
}

void example_signal_close(uv_signal_t *sig) {
  int signum = sig->signum;
  sigset_t one, old;
  sigemptyset(&one);
  sigaddset(&one, signum);
  /* Blocked while libuv puts back the default action (which would kill):
   * one that arrives meanwhile stays pending and SIG_IGN discards it. */
  sigprocmask(SIG_BLOCK, &one, &old);
  uv_close((uv_handle_t *)sig, NULL);
  signal(signum, SIG_IGN);
  sigprocmask(SIG_SETMASK, &old, NULL);
}
