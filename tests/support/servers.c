/* Real XMPP servers for integration tests: runs tests/servers/<kind>.sh.
 * Test support code, so plain POSIX and the C library's malloc-free style:
 * nothing here goes through xmppuv's replaceable allocator, so a test that
 * counts the library's allocations does not count these. */
#include "servers.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

/* Script exit codes (tests/servers/common.sh). */
enum { SCRIPT_PORT_IN_USE = 3, SCRIPT_NOT_INSTALLED = 5 };

/* Ports come from below Linux's ephemeral range (32768-60999), so they do
 * not collide with the local ends of outgoing connections. */
enum { PORT_LOW = 20000, PORT_HIGH = 32000, START_ATTEMPTS = 5 };

static const struct {
  const char *user;
  const char *password;
} users[] = {
    {"alice", "alice-secret"},
    {"bob", "bob-secret"},
    {"carol", "carol-secret"},
    {"dave", "dave-secret"},
};

const char *xmppuv_test_password(const char *user) {
  if (user == NULL) return NULL;
  for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++)
    if (strcmp(users[i].user, user) == 0) return users[i].password;
  return NULL;
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int known_kind(const char *kind) {
  return kind != NULL &&
         (strcmp(kind, "prosody") == 0 || strcmp(kind, "ejabberd") == 0);
}

static void script_path(const char *kind, char *path, size_t size) {
  const char *root = getenv("XMPPUV_SOURCE_ROOT");
  if (root == NULL || root[0] == '\0')
    ck_abort_msg("XMPPUV_SOURCE_ROOT is not set: run the tests with meson test");
  if (strchr(root, '\'') != NULL)
    ck_abort_msg("XMPPUV_SOURCE_ROOT must not contain a quote: %s", root);
  int n = snprintf(path, size, "%s/tests/servers/%s.sh", root, kind);
  ck_assert_msg(n > 0 && (size_t)n < size, "source root path too long");
  if (access(path, R_OK) != 0)
    ck_abort_msg("server script %s is missing: %s", path, strerror(errno));
}

/* Run "<kind>.sh ARGS" with stdout and stderr captured into out (the last
 * out_size-1 bytes). Returns the script's exit code, or -1 if it could not
 * run or died of a signal. */
static int run_script(const char *kind, const char *args, char *out,
                      size_t out_size) {
  char path[1024];
  char command[2048];
  char pid[32];
  script_path(kind, path, sizeof(path));
  int n = snprintf(command, sizeof(command), "/bin/bash '%s' %s 2>&1", path, args);
  ck_assert_msg(n > 0 && (size_t)n < sizeof(command), "command too long");
  /* The script's watcher kills the server if this process goes away. */
  snprintf(pid, sizeof(pid), "%ld", (long)getpid());
  setenv("XMPPUV_SERVER_OWNER_PID", pid, 1);
  fflush(NULL);
  FILE *f = popen(command, "r");
  if (f == NULL) {
    snprintf(out, out_size, "popen: %s", strerror(errno));
    return -1;
  }
  size_t len = 0;
  char chunk[512];
  size_t got;
  ck_assert_uint_gt(out_size, sizeof(chunk) + 1);
  while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
    if (len + got > out_size - 1) {  /* keep the tail: errors come last */
      size_t drop = len + got - (out_size - 1);
      memmove(out, out + drop, len - drop);
      len -= drop;
    }
    memcpy(out + len, chunk, got);
    len += got;
  }
  out[len] = '\0';
  int status = pclose(f);
  if (status == -1 || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

/* 1 if a listening socket could be bound to 127.0.0.1:port right now (with
 * SO_REUSEADDR, as the servers bind). */
static int port_is_free(unsigned short port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
  close(fd);
  return ok;
}

static unsigned random_u32(void) {
  unsigned r = 0;
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (read(fd, &r, sizeof(r)) != (ssize_t)sizeof(r)) r = 0;
    close(fd);
  }
  if (r == 0) r = (unsigned)getpid() * 2654435761u ^ (unsigned)now_ms();
  return r;
}

/* Four consecutive free ports: base for c2s, base + 1 for direct TLS,
 * base + 2 for HTTP (ws://) and base + 3 for HTTPS (wss://). The scripts
 * take only c2s and direct TLS and derive the other two from the latter. */
static int pick_ports(xmppuv_test_server_t *s) {
  for (int i = 0; i < 200; i++) {
    unsigned base = PORT_LOW + random_u32() % (PORT_HIGH - PORT_LOW - 3);
    int ok = 1;
    for (unsigned k = 0; k < 4 && ok; k++)
      ok = port_is_free((unsigned short)(base + k));
    if (ok) {
      s->port = (unsigned short)base;
      s->direct_tls_port = (unsigned short)(base + 1);
      s->http_port = (unsigned short)(base + 2);
      s->https_port = (unsigned short)(base + 3);
      return 0;
    }
  }
  return UV_EADDRINUSE;
}

static void remove_dir(const char *dir) {
  char command[512];
  if (dir[0] != '/') return;
  snprintf(command, sizeof(command), "rm -rf -- '%s'", dir);
  if (system(command) != 0)
    fprintf(stderr, "# could not remove %s\n", dir);
}

static void print_output(const xmppuv_test_server_t *s, const char *what,
                         const char *output) {
  fprintf(stderr, "# %s %s in %s:\n%s\n", s->kind, what, s->dir, output);
}

/* Run "start" on s->dir and s's ports. */
static int script_start(xmppuv_test_server_t *s, char *out, size_t out_size) {
  char args[512];
  snprintf(args, sizeof(args), "start '%s' %u %u %d", s->dir, s->port,
           s->direct_tls_port, s->resume_seconds);
  long t0 = now_ms();
  int rc = run_script(s->kind, args, out, out_size);
  s->ready_ms = now_ms() - t0;
  if (rc == SCRIPT_NOT_INSTALLED)
    ck_abort_msg("%s is not installed (Debian package: %s): %s", s->kind,
                 s->kind, out);
  return rc;
}

int xmppuv_test_server_start(const char *kind, int resume_seconds,
                             xmppuv_test_server_t *out) {
  char output[8192];
  xmppuv_test_server_t s;
  memset(out, 0, sizeof(*out));
  if (!known_kind(kind)) return UV_EINVAL;
  memset(&s, 0, sizeof(s));
  snprintf(s.kind, sizeof(s.kind), "%s", kind);
  snprintf(s.domain, sizeof(s.domain), "localhost");
  s.resume_seconds = resume_seconds > 0 ? resume_seconds : 5;

  const char *tmp = getenv("TMPDIR");
  if (tmp == NULL || tmp[0] != '/' || strlen(tmp) > 150) tmp = "/tmp";
  snprintf(s.dir, sizeof(s.dir), "%s/xmppuv-%s-XXXXXX", tmp, kind);
  if (mkdtemp(s.dir) == NULL) {
    int err = -errno;
    fprintf(stderr, "# mkdtemp %s: %s\n", s.dir, strerror(errno));
    return err;
  }
  snprintf(s.ca_file, sizeof(s.ca_file), "%s/ca.pem", s.dir);

  int rc = UV_EADDRINUSE;
  for (int attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    if (pick_ports(&s) != 0) break;
    int code = script_start(&s, output, sizeof(output));
    if (code == 0) {
      rc = 0;
      break;
    }
    if (code != SCRIPT_PORT_IN_USE) {
      print_output(&s, "failed to start", output);
      rc = UV_EIO;
      break;
    }
  }
  if (rc != 0) {
    if (rc == UV_EADDRINUSE)
      fprintf(stderr, "# no free ports for %s after %d attempts\n", kind,
              START_ATTEMPTS);
    remove_dir(s.dir);
    return rc;
  }
  if (access(s.ca_file, R_OK) != 0) {
    print_output(&s, "started without a certificate", output);
    xmppuv_test_server_stop(&s);
    return UV_EIO;
  }
  *out = s;
  return 0;
}

static int script_simple(xmppuv_test_server_t *s, const char *command) {
  char args[400];
  char output[8192];
  snprintf(args, sizeof(args), "%s '%s'", command, s->dir);
  int rc = run_script(s->kind, args, output, sizeof(output));
  if (rc != 0) {
    print_output(s, command, output);
    return UV_EIO;
  }
  return 0;
}

int xmppuv_test_server_restart(xmppuv_test_server_t *s) {
  char output[8192];
  if (s == NULL || s->dir[0] == '\0') return UV_EINVAL;
  int rc = script_simple(s, "stop");
  if (rc != 0) return rc;
  int code = script_start(s, output, sizeof(output));
  if (code == 0) return 0;
  print_output(s, "failed to restart", output);
  return code == SCRIPT_PORT_IN_USE ? UV_EADDRINUSE : UV_EIO;
}

int xmppuv_test_server_kill(xmppuv_test_server_t *s) {
  if (s == NULL || s->dir[0] == '\0') return UV_EINVAL;
  return script_simple(s, "kill");
}

void xmppuv_test_server_stop(xmppuv_test_server_t *s) {
  if (s == NULL || s->dir[0] == '\0') return;
  script_simple(s, "stop");
  const char *keep = getenv("XMPPUV_KEEP_SERVER_DIRS");
  if (keep != NULL && keep[0] != '\0' && strcmp(keep, "0") != 0)
    fprintf(stderr, "# kept %s\n", s->dir);
  else
    remove_dir(s->dir);
  memset(s, 0, sizeof(*s));
}
