/* The real servers of tests/servers/ through tests/support/servers.h:
 * Prosody and ejabberd start on loopback ready to serve, with STARTTLS on
 * the c2s port, direct TLS, the four users, XEP-0198, a certificate that
 * verifies as localhost, and they restart, run side by side, and stop.
 * TLS is checked with `openssl s_client` (package openssl), so these tests
 * do not depend on the library's own TLS code. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "check_main.h"
#include "servers.h"

static const char *const kinds[] = {"prosody", "ejabberd"};

#define STREAM_HEADER                                                     \
  "<?xml version='1.0'?><stream:stream to='localhost' version='1.0' "    \
  "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- plain TCP ---------------------------------------------------------- */

/* A blocking TCP connection to 127.0.0.1:port; -errno on failure. */
static int tcp_connect(unsigned short port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(fd, 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    int err = -errno;
    close(fd);
    return err;
  }
  return fd;
}

static void write_all(int fd, const char *data) {
  size_t len = strlen(data);
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    ck_assert_msg(n > 0, "write: %s", strerror(errno));
    data += n;
    len -= (size_t)n;
  }
}

/* Read from fd into buf until `until` or `or_until` (either may be NULL)
 * appears after offset `from`, EOF, or timeout_ms. Returns 1 if found. */
static int read_until2(int fd, char *buf, size_t size, size_t *len, size_t from,
                       const char *until, const char *or_until, long timeout_ms) {
  long deadline = now_ms() + timeout_ms;
  for (;;) {
    buf[*len] = '\0';
    if (until != NULL && strstr(buf + from, until) != NULL) return 1;
    if (or_until != NULL && strstr(buf + from, or_until) != NULL) return 1;
    long left = deadline - now_ms();
    if (left <= 0 || *len + 1 >= size) return 0;
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, (int)left) <= 0) return 0;
    ssize_t n = read(fd, buf + *len, size - 1 - *len);
    if (n <= 0) return 0;
    *len += (size_t)n;
  }
}

static int read_until(int fd, char *buf, size_t size, size_t *len,
                      const char *until, long timeout_ms) {
  return read_until2(fd, buf, size, len, 0, until, NULL, timeout_ms);
}

/* Send a stream header on the plain c2s port; return what came back up to
 * the end of the features. */
static void plain_features(unsigned short port, char *buf, size_t size) {
  int fd = tcp_connect(port);
  ck_assert_msg(fd >= 0, "connect to %u: %s", port, strerror(-fd));
  write_all(fd, STREAM_HEADER);
  size_t len = 0;
  int found = read_until(fd, buf, size, &len, "</stream:features>", 5000);
  close(fd);
  ck_assert_msg(found, "no stream features on port %u; got: %s", port, buf);
}

/* ---- TLS through openssl s_client ---------------------------------------- */

typedef struct tls_session {
  pid_t pid;
  int in;   /* s_client's stdin */
  int out;  /* s_client's stdout and stderr */
  char buf[16384];
  size_t len;
} tls_session_t;

/* Run s_client to the server, verifying the certificate against its
 * ca_file and the name localhost: direct TLS, or STARTTLS on the c2s port. */
static void tls_open(tls_session_t *t, const xmppuv_test_server_t *s, int direct) {
  int in[2], out[2];
  char connect_to[32];
  memset(t, 0, sizeof(*t));
  snprintf(connect_to, sizeof(connect_to), "127.0.0.1:%u",
           direct ? s->direct_tls_port : s->port);
  ck_assert_int_eq(pipe(in), 0);
  ck_assert_int_eq(pipe(out), 0);
  fflush(NULL);
  t->pid = fork();
  ck_assert_int_ge(t->pid, 0);
  if (t->pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(out[1], 2);
    close(in[0]);
    close(in[1]);
    close(out[0]);
    close(out[1]);
    if (direct)
      execlp("openssl", "openssl", "s_client", "-connect", connect_to, "-CAfile",
             s->ca_file, "-verify_return_error", "-verify_hostname", "localhost",
             "-servername", "localhost", "-brief", (char *)NULL);
    else
      execlp("openssl", "openssl", "s_client", "-connect", connect_to, "-CAfile",
             s->ca_file, "-verify_return_error", "-verify_hostname", "localhost",
             "-starttls", "xmpp", "-xmpphost", "localhost", "-brief", (char *)NULL);
    fprintf(stderr, "cannot run openssl (apt-get install openssl): %s\n", strerror(errno));
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  t->in = in[1];
  t->out = out[0];
  signal(SIGPIPE, SIG_IGN);
}

/* Send data (may be NULL), then wait for `until` or `or_until` (may be
 * NULL) in what arrives from now on; 1 if it came. */
static int tls_step2(tls_session_t *t, const char *data, const char *until,
                     const char *or_until) {
  size_t from = t->len;
  if (data != NULL) write_all(t->in, data);
  return read_until2(t->out, t->buf, sizeof(t->buf), &t->len, from, until, or_until,
                     10000);
}

static int tls_step(tls_session_t *t, const char *data, const char *until) {
  return tls_step2(t, data, until, NULL);
}

static void tls_close(tls_session_t *t) {
  int status;
  close(t->in);
  /* s_client quits on EOF on its stdin; make sure it does. */
  long deadline = now_ms() + 3000;
  while (waitpid(t->pid, &status, WNOHANG) == 0) {
    if (now_ms() > deadline) {
      kill(t->pid, SIGKILL);
      waitpid(t->pid, &status, 0);
      break;
    }
    usleep(10000);
  }
  close(t->out);
}

static void base64(const unsigned char *in, size_t len, char *out) {
  static const char table[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t o = 0;
  for (size_t i = 0; i < len; i += 3) {
    unsigned v = (unsigned)in[i] << 16;
    if (i + 1 < len) v |= (unsigned)in[i + 1] << 8;
    if (i + 2 < len) v |= in[i + 2];
    out[o++] = table[(v >> 18) & 63];
    out[o++] = table[(v >> 12) & 63];
    out[o++] = i + 1 < len ? table[(v >> 6) & 63] : '=';
    out[o++] = i + 2 < len ? table[v & 63] : '=';
  }
  out[o] = '\0';
}

/* RFC 6120 §6.4 / RFC 4616: SASL PLAIN for user with password over direct
 * TLS, in a session left open in *t. 1 on <success/>, 0 on <failure/>. */
static int login(const xmppuv_test_server_t *s, const char *user,
                 const char *password, tls_session_t *t) {
  unsigned char raw[128];
  char b64[256], auth[512];
  size_t ulen = strlen(user), plen = strlen(password);
  ck_assert_uint_lt(ulen + plen + 2, sizeof(raw));
  raw[0] = 0;
  memcpy(raw + 1, user, ulen);
  raw[1 + ulen] = 0;
  memcpy(raw + 2 + ulen, password, plen);
  base64(raw, ulen + plen + 2, b64);
  snprintf(auth, sizeof(auth),
           "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>\n",
           b64);
  tls_open(t, s, 1);
  ck_assert_msg(tls_step(t, STREAM_HEADER "\n", "</stream:features>"),
                "%s: no features over direct TLS: %s", s->kind, t->buf);
  size_t mark = t->len;
  ck_assert_msg(tls_step2(t, auth, "<success", "</failure>"),
                "%s: no SASL outcome for %s: %s", s->kind, user, t->buf + mark);
  const char *success = strstr(t->buf + mark, "<success");
  if (success == NULL) return 0;
  /* Read to the end of the element so the next step starts clean. */
  if (strstr(success, "/>") == NULL && strstr(success, "</success>") == NULL)
    tls_step2(t, NULL, "/>", "</success>");
  return 1;
}

/* ---- servers shared by the read-only tests ------------------------------- */

static xmppuv_test_server_t shared[2];

static void start_shared(void) {
  for (int i = 0; i < 2; i++) {
    ck_assert_int_eq(xmppuv_test_server_start(kinds[i], 7, &shared[i]), 0);
    fprintf(stderr, "# %s start-to-ready: %ld ms (ports %u, %u)\n", kinds[i],
            shared[i].ready_ms, shared[i].port, shared[i].direct_tls_port);
  }
}

static void stop_shared(void) {
  for (int i = 0; i < 2; i++) xmppuv_test_server_stop(&shared[i]);
}

START_TEST(started_server_describes_itself) {
  const xmppuv_test_server_t *s = &shared[_i];
  struct stat st;
  ck_assert_str_eq(s->kind, kinds[_i]);
  ck_assert_str_eq(s->domain, "localhost");
  ck_assert_uint_ne(s->port, 0);
  ck_assert_uint_ne(s->direct_tls_port, 0);
  ck_assert_uint_ne(s->port, s->direct_tls_port);
  ck_assert_int_eq(s->resume_seconds, 7);
  ck_assert_int_eq(stat(s->dir, &st), 0);
  ck_assert(S_ISDIR(st.st_mode));
  ck_assert_int_eq(stat(s->ca_file, &st), 0);
  ck_assert(S_ISREG(st.st_mode));
}
END_TEST

START_TEST(c2s_port_requires_starttls) {
  char buf[4096];
  plain_features(shared[_i].port, buf, sizeof(buf));
  ck_assert_msg(strstr(buf, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>") != NULL ||
                    strstr(buf, "<starttls xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\">") != NULL,
                "no <starttls> in %s", buf);
  ck_assert_msg(strstr(buf, "<required/>") != NULL, "STARTTLS not required: %s", buf);
  /* RFC 6120 §6.4.1: no SASL before TLS when TLS is required. */
  ck_assert_ptr_null(strstr(buf, "<mechanisms"));
}
END_TEST

START_TEST(starttls_verifies_against_the_ca_file_and_offers_sasl) {
  tls_session_t t;
  tls_open(&t, &shared[_i], 0);
  int ok = tls_step(&t, STREAM_HEADER "\n", "</stream:features>");
  tls_close(&t);
  ck_assert_msg(ok, "%s: no features after STARTTLS: %s", kinds[_i], t.buf);
  ck_assert_msg(strstr(t.buf, "Verification: OK") != NULL, "not verified: %s", t.buf);
  ck_assert_ptr_nonnull(strstr(t.buf, "<mechanism>PLAIN</mechanism>"));
  ck_assert_ptr_nonnull(strstr(t.buf, "<mechanism>SCRAM-SHA-1</mechanism>"));
  ck_assert_ptr_nonnull(strstr(t.buf, "<mechanism>SCRAM-SHA-256</mechanism>"));
}
END_TEST

START_TEST(direct_tls_port_completes_a_handshake_first) {
  /* XEP-0368: TLS from the first byte (s_client without -starttls), then
   * the stream opens inside it with SASL offered at once. */
  tls_session_t t;
  tls_open(&t, &shared[_i], 1);
  int ok = tls_step(&t, STREAM_HEADER "\n", "</stream:features>");
  tls_close(&t);
  ck_assert_msg(ok, "%s: no features over direct TLS: %s", kinds[_i], t.buf);
  ck_assert_msg(strstr(t.buf, "Verification: OK") != NULL, "not verified: %s", t.buf);
  ck_assert_ptr_nonnull(strstr(t.buf, "<mechanisms"));
  ck_assert_ptr_null(strstr(t.buf, "<starttls"));
}
END_TEST

START_TEST(every_user_logs_in_with_its_password) {
  static const char *const names[] = {"alice", "bob", "carol", "dave"};
  for (size_t u = 0; u < 4; u++) {
    tls_session_t t;
    int ok = login(&shared[_i], names[u], xmppuv_test_password(names[u]), &t);
    tls_close(&t);
    ck_assert_msg(ok, "%s: %s could not log in: %s", kinds[_i], names[u], t.buf);
  }
}
END_TEST

START_TEST(a_wrong_password_is_not_authorized) {
  tls_session_t t;
  int ok = login(&shared[_i], "alice", "bob-secret", &t);
  tls_close(&t);
  ck_assert_msg(!ok, "%s accepted a wrong password", kinds[_i]);
  ck_assert_msg(strstr(t.buf, "<not-authorized/>") != NULL, "%s: %s", kinds[_i], t.buf);
}
END_TEST

START_TEST(stream_management_offers_resumption_for_resume_seconds) {
  /* XEP-0198 §3, §5: bind, enable with resume, and the server's max. */
  tls_session_t t;
  int ok = login(&shared[_i], "bob", "bob-secret", &t);
  ck_assert_msg(ok, "login failed: %s", t.buf);
  size_t mark = t.len;
  ok = tls_step(&t, STREAM_HEADER "\n", "</stream:features>");
  ck_assert_msg(ok, "no features after SASL: %s", t.buf + mark);
  ck_assert_ptr_nonnull(strstr(t.buf + mark, "urn:xmpp:sm:3"));
  ck_assert_ptr_nonnull(strstr(t.buf + mark, "urn:ietf:params:xml:ns:xmpp-bind"));
  mark = t.len;
  ok = tls_step(&t,
                "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                "<resource>test</resource></bind></iq>\n",
                "</iq>");
  ck_assert_msg(ok, "no bind result: %s", t.buf + mark);
  ck_assert_ptr_nonnull(strstr(t.buf + mark, "bob@localhost/test"));
  mark = t.len;
  ok = tls_step(&t, "<enable xmlns='urn:xmpp:sm:3' resume='true' max='7'/>\n", "<enabled");
  if (ok && strstr(strstr(t.buf + mark, "<enabled"), "/>") == NULL) tls_step(&t, NULL, "/>");
  tls_close(&t);
  ck_assert_msg(ok, "%s: SM not enabled: %s", kinds[_i], t.buf + mark);
  const char *enabled = strstr(t.buf + mark, "<enabled");
  ck_assert_msg(strstr(enabled, "resume='true'") != NULL || strstr(enabled, "resume=\"true\"") != NULL,
                "no resumption: %s", enabled);
  ck_assert_msg(strstr(enabled, "max='7'") != NULL || strstr(enabled, "max=\"7\"") != NULL,
                "resume window is not 7 s: %s", enabled);
}
END_TEST

/* ---- lifecycle: each test starts its own --------------------------------- */

START_TEST(restart_keeps_the_ports_and_the_users) {
  xmppuv_test_server_t s;
  char buf[4096];
  ck_assert_int_eq(xmppuv_test_server_start(kinds[_i], 0, &s), 0);
  ck_assert_int_eq(s.resume_seconds, 5);
  unsigned short port = s.port, tls_port = s.direct_tls_port;
  char dir[sizeof(s.dir)];
  memcpy(dir, s.dir, sizeof(dir));
  ck_assert_int_eq(xmppuv_test_server_restart(&s), 0);
  fprintf(stderr, "# %s restart (stop + start): %ld ms for the start\n", kinds[_i], s.ready_ms);
  ck_assert_uint_eq(s.port, port);
  ck_assert_uint_eq(s.direct_tls_port, tls_port);
  ck_assert_str_eq(s.dir, dir);
  plain_features(s.port, buf, sizeof(buf));
  ck_assert_ptr_nonnull(strstr(buf, "<starttls"));
  tls_session_t t;
  int ok = login(&s, "carol", "carol-secret", &t);
  tls_close(&t);
  xmppuv_test_server_stop(&s);
  ck_assert_msg(ok, "%s: carol cannot log in after a restart: %s", kinds[_i], t.buf);
}
END_TEST

START_TEST(two_servers_of_the_same_kind_run_at_once) {
  xmppuv_test_server_t a, b;
  char buf[4096];
  ck_assert_int_eq(xmppuv_test_server_start(kinds[_i], 0, &a), 0);
  ck_assert_int_eq(xmppuv_test_server_start(kinds[_i], 0, &b), 0);
  ck_assert_uint_ne(a.port, b.port);
  ck_assert_uint_ne(a.port, b.direct_tls_port);
  ck_assert_uint_ne(a.direct_tls_port, b.port);
  ck_assert_uint_ne(a.direct_tls_port, b.direct_tls_port);
  ck_assert_str_ne(a.dir, b.dir);
  plain_features(a.port, buf, sizeof(buf));
  plain_features(b.port, buf, sizeof(buf));
  /* Stopping one leaves the other serving. */
  unsigned short a_port = a.port;
  xmppuv_test_server_stop(&a);
  ck_assert_int_eq(tcp_connect(a_port), -ECONNREFUSED);
  plain_features(b.port, buf, sizeof(buf));
  xmppuv_test_server_stop(&b);
}
END_TEST

START_TEST(stop_frees_the_ports_and_removes_the_directory) {
  xmppuv_test_server_t s;
  struct stat st;
  ck_assert_int_eq(xmppuv_test_server_start(kinds[_i], 0, &s), 0);
  unsigned short port = s.port, tls_port = s.direct_tls_port;
  char dir[sizeof(s.dir)];
  memcpy(dir, s.dir, sizeof(dir));
  long t0 = now_ms();
  xmppuv_test_server_stop(&s);
  fprintf(stderr, "# %s stop: %ld ms\n", kinds[_i], now_ms() - t0);
  ck_assert_int_eq(tcp_connect(port), -ECONNREFUSED);
  ck_assert_int_eq(tcp_connect(tls_port), -ECONNREFUSED);
  ck_assert_int_eq(stat(dir, &st), -1);
  ck_assert_int_eq(errno, ENOENT);
  ck_assert_str_eq(s.dir, "");
  xmppuv_test_server_stop(&s);  /* a second stop is harmless */
}
END_TEST

START_TEST(kill_drops_clients_at_once_and_restart_recovers) {
  xmppuv_test_server_t s;
  char buf[4096];
  ck_assert_int_eq(xmppuv_test_server_start(kinds[_i], 0, &s), 0);
  int fd = tcp_connect(s.port);
  ck_assert_int_ge(fd, 0);
  write_all(fd, STREAM_HEADER);
  size_t len = 0;
  ck_assert(read_until(fd, buf, sizeof(buf), &len, "</stream:features>", 5000));
  ck_assert_int_eq(xmppuv_test_server_kill(&s), 0);
  /* No </stream:stream>: the connection just ends. */
  size_t before = len;
  read_until(fd, buf, sizeof(buf), &len, NULL, 2000);
  ck_assert_ptr_null(strstr(buf + before, "</stream:stream>"));
  close(fd);
  ck_assert_int_eq(tcp_connect(s.port), -ECONNREFUSED);
  ck_assert_int_eq(xmppuv_test_server_restart(&s), 0);
  plain_features(s.port, buf, sizeof(buf));
  xmppuv_test_server_stop(&s);
}
END_TEST

START_TEST(unknown_kind_is_EINVAL) {
  xmppuv_test_server_t s;
  ck_assert_int_eq(xmppuv_test_server_start("openfire", 0, &s), UV_EINVAL);
  ck_assert_str_eq(s.dir, "");
  ck_assert_ptr_null(xmppuv_test_password("mallory"));
  ck_assert_str_eq(xmppuv_test_password("dave"), "dave-secret");
}
END_TEST

/* Run a script directly with a shell command line; returns the exit code and
 * the output. */
static int run_shell(const char *command, char *out, size_t size) {
  FILE *f = popen(command, "r");
  ck_assert_ptr_nonnull(f);
  size_t len = fread(out, 1, size - 1, f);
  out[len] = '\0';
  int status = pclose(f);
  ck_assert(WIFEXITED(status));
  return WEXITSTATUS(status);
}

START_TEST(missing_server_software_fails_naming_the_package) {
  static const char *const overrides[] = {"XMPPUV_PROSODY=/nonexistent/prosody",
                                          "XMPPUV_ERL=/nonexistent/erl"};
  static const char *const packages[] = {"apt-get install prosody",
                                         "apt-get install ejabberd"};
  char dir[] = "/tmp/xmppuv-missing-XXXXXX";
  char command[1024], out[2048];
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(command, sizeof(command), "%s /bin/bash '%s/tests/servers/%s.sh' start '%s' 1 2 2>&1",
           overrides[_i], getenv("XMPPUV_SOURCE_ROOT"), kinds[_i], dir);
  int rc = run_shell(command, out, sizeof(out));
  snprintf(command, sizeof(command), "rm -rf '%s'", dir);
  ck_assert_int_eq(system(command), 0);
  ck_assert_int_eq(rc, 5);
  ck_assert_msg(strstr(out, packages[_i]) != NULL, "%s", out);
}
END_TEST

START_TEST(status_reports_running_and_stopped) {
  xmppuv_test_server_t s;
  char command[1024], out[2048];
  ck_assert_int_eq(xmppuv_test_server_start(kinds[_i], 0, &s), 0);
  snprintf(command, sizeof(command), "/bin/bash '%s/tests/servers/%s.sh' status '%s' 2>&1",
           getenv("XMPPUV_SOURCE_ROOT"), kinds[_i], s.dir);
  ck_assert_int_eq(run_shell(command, out, sizeof(out)), 0);
  ck_assert_ptr_nonnull(strstr(out, "running"));
  ck_assert_int_eq(xmppuv_test_server_kill(&s), 0);
  ck_assert_int_eq(run_shell(command, out, sizeof(out)), 3);
  xmppuv_test_server_stop(&s);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("servers");
  TCase *shared_tc = tcase_create("running");
  tcase_add_unchecked_fixture(shared_tc, start_shared, stop_shared);
  tcase_set_timeout(shared_tc, 60);
  tcase_add_loop_test(shared_tc, started_server_describes_itself, 0, 2);
  tcase_add_loop_test(shared_tc, c2s_port_requires_starttls, 0, 2);
  tcase_add_loop_test(shared_tc, starttls_verifies_against_the_ca_file_and_offers_sasl, 0, 2);
  tcase_add_loop_test(shared_tc, direct_tls_port_completes_a_handshake_first, 0, 2);
  tcase_add_loop_test(shared_tc, every_user_logs_in_with_its_password, 0, 2);
  tcase_add_loop_test(shared_tc, a_wrong_password_is_not_authorized, 0, 2);
  tcase_add_loop_test(shared_tc, stream_management_offers_resumption_for_resume_seconds, 0, 2);
  suite_add_tcase(s, shared_tc);

  TCase *life = tcase_create("lifecycle");
  tcase_set_timeout(life, 90);
  tcase_add_loop_test(life, restart_keeps_the_ports_and_the_users, 0, 2);
  tcase_add_loop_test(life, two_servers_of_the_same_kind_run_at_once, 0, 2);
  tcase_add_loop_test(life, stop_frees_the_ports_and_removes_the_directory, 0, 2);
  tcase_add_loop_test(life, kill_drops_clients_at_once_and_restart_recovers, 0, 2);
  tcase_add_loop_test(life, status_reports_running_and_stopped, 0, 2);
  tcase_add_loop_test(life, missing_server_software_fails_naming_the_package, 0, 2);
  tcase_add_test(life, unknown_kind_is_EINVAL);
  suite_add_tcase(s, life);
  return s;
}

XMPPUV_TEST_MAIN(make_suite)
