/* dnsmasq as a child process (see dnsmasq.h). POSIX and Linux calls are fine
 * here: this is test support, not the library. */
#include "dnsmasq.h"

#include <arpa/inet.h>
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
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

struct dnsmasq {
  pid_t pid;
  uint16_t port;
  char servers[32];
};

/* A port free for both UDP and TCP on 127.0.0.1 (dnsmasq binds both). The
 * kernel picks it; another process could still take it before dnsmasq binds,
 * which dnsmasq_start() survives by trying again. */
static uint16_t pick_port(void) {
  for (int attempt = 0; attempt < 20; attempt++) {
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    ck_assert_msg(u >= 0, "socket: %s", strerror(errno));
    socklen_t len = sizeof sa;
    if (bind(u, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(u, (struct sockaddr *)&sa, &len) != 0) {
      close(u);
      continue;
    }
    int t = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_msg(t >= 0, "socket: %s", strerror(errno));
    int ok = bind(t, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(t);
    close(u);
    if (ok) return ntohs(sa.sin_port);
  }
  ck_abort_msg("no free loopback port for dnsmasq");
  return 0;
}

static const char *dnsmasq_path(void) {
  const char *env = getenv("DNSMASQ");
  if (env != NULL && env[0] != '\0') return env;
  return "/usr/sbin/dnsmasq";
}

static pid_t spawn(uint16_t port, const char *const *records, int err_fd) {
  static const char *const fixed[] = {
      "--no-daemon",      "--conf-file=/dev/null", "--listen-address=127.0.0.1",
      "--bind-interfaces", "--no-resolv",          "--no-hosts",
      "--pid-file=",      "--local=/test/",
  };
  size_t nfixed = sizeof fixed / sizeof fixed[0];
  size_t nrec = 0;
  while (records != NULL && records[nrec] != NULL) nrec++;
  char port_arg[32];
  snprintf(port_arg, sizeof port_arg, "--port=%u", (unsigned)port);
  const char **argv = calloc(nfixed + nrec + 3, sizeof *argv);
  ck_assert_ptr_nonnull(argv);
  size_t n = 0;
  argv[n++] = dnsmasq_path();
  argv[n++] = port_arg;
  for (size_t i = 0; i < nfixed; i++) argv[n++] = fixed[i];
  for (size_t i = 0; i < nrec; i++) argv[n++] = records[i];
  argv[n] = NULL;

  pid_t parent = getpid();
  pid_t pid = fork();
  ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
  if (pid == 0) {
#ifdef __linux__
    /* Never outlive the test (a failed Check test exits without teardown). */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
    if (getppid() != parent) _exit(1);
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      dup2(devnull, 0);
      dup2(devnull, 1); /* stdout is the TAP stream */
    }
    dup2(err_fd, 2);
    execv(argv[0], (char *const *)argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  free(argv);
  return pid;
}

/* Any answer to a query for ready.test shows dnsmasq is serving. */
static int answers(uint16_t port) {
  static const unsigned char query[] = {
      0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      5,    'r',  'e',  'a',  'd',  'y',  4,    't',  'e',  's',  't',  0,
      0x00, 0x01, 0x00, 0x01};
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  ck_assert_msg(s >= 0, "socket: %s", strerror(errno));
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(port);
  int ok = 0;
  if (connect(s, (struct sockaddr *)&sa, sizeof sa) == 0 &&
      send(s, query, sizeof query, 0) == (ssize_t)sizeof query) {
    struct pollfd pfd = {.fd = s, .events = POLLIN};
    unsigned char reply[512];
    if (poll(&pfd, 1, 50) == 1 && recv(s, reply, sizeof reply, 0) >= 2 &&
        reply[0] == 0x12 && reply[1] == 0x34)
      ok = 1;
  }
  close(s);
  return ok;
}

static void dump_errors(FILE *err) {
  char line[512];
  rewind(err);
  while (fgets(line, sizeof line, err) != NULL) fprintf(stderr, "%s", line);
}

dnsmasq_t *dnsmasq_start(const char *const *records) {
  FILE *err = tmpfile();
  ck_assert_msg(err != NULL, "tmpfile: %s", strerror(errno));
  for (int attempt = 0; attempt < 5; attempt++) {
    uint16_t port = pick_port();
    pid_t pid = spawn(port, records, fileno(err));
    /* Up to about 10 s: slow under valgrind, fast otherwise. */
    for (int tries = 0; tries < 200; tries++) {
      if (tries > 0) {
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
      }
      int wstatus;
      if (waitpid(pid, &wstatus, WNOHANG) == pid) {
        pid = -1; /* exited: the port was taken, or a bad option */
        break;
      }
      if (answers(port)) {
        fclose(err);
        dnsmasq_t *d = calloc(1, sizeof *d);
        ck_assert_ptr_nonnull(d);
        d->pid = pid;
        d->port = port;
        snprintf(d->servers, sizeof d->servers, "127.0.0.1:%u",
                 (unsigned)port);
        return d;
      }
    }
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, NULL, 0);
    }
  }
  dump_errors(err);
  fclose(err);
  ck_abort_msg("dnsmasq (%s, Debian package dnsmasq-base) did not start; "
               "its messages are on stderr",
               dnsmasq_path());
  return NULL;
}

const char *dnsmasq_servers(const dnsmasq_t *d) { return d->servers; }

uint16_t dnsmasq_port(const dnsmasq_t *d) { return d->port; }

void dnsmasq_stop(dnsmasq_t *d) {
  if (d == NULL) return;
  kill(d->pid, SIGTERM);
  int wstatus;
  while (waitpid(d->pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  free(d);
}
