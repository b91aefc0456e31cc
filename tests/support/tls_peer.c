#include "tls_peer.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char certs_dir[512];
static int certs_made;
static unsigned peer_counter;

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static char *read_all(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  size_t cap = 4096, len = 0;
  char *data = malloc(cap);
  while (data != NULL) {
    size_t n = fread(data + len, 1, cap - len - 1, f);
    len += n;
    if (n == 0) break;
    if (cap - len < 1024) {
      char *bigger = realloc(data, cap * 2);
      if (bigger == NULL) {
        free(data);
        data = NULL;
        break;
      }
      data = bigger;
      cap *= 2;
    }
  }
  fclose(f);
  if (data != NULL) data[len] = '\0';
  return data;
}

static void dump_output(const char *what, const char *path) {
  char *text = read_all(path);
  fprintf(stderr, "%s; its output (%s):\n%s\n", what, path,
          text != NULL ? text : "(unreadable)");
  free(text);
}

/* fork/exec argv with stdout+stderr to out_path and stdin from a pipe
 * (*stdin_fd gets the write end) or /dev/null (stdin_fd NULL). */
static pid_t spawn(char *const argv[], const char *out_path, int *stdin_fd) {
  int in[2] = {-1, -1};
  if (stdin_fd != NULL && pipe2(in, O_CLOEXEC) != 0) return -1;
  int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0) {
    if (stdin_fd != NULL) {
      close(in[0]);
      close(in[1]);
    }
    return -1;
  }
  pid_t pid = fork();
  if (pid == 0) {
    int src = stdin_fd != NULL ? in[0] : open("/dev/null", O_RDONLY);
    if (src < 0 || dup2(src, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
      _exit(126);
    execvp(argv[0], argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(out);
  if (stdin_fd != NULL) {
    close(in[0]);
    if (pid < 0)
      close(in[1]);
    else
      *stdin_fd = in[1];
  }
  return pid;
}

const char *tls_certs_dir(void) {
  if (certs_made) return certs_dir;
  const char *root = getenv("XMPPUV_SOURCE_ROOT");
  if (root == NULL) {
    fprintf(stderr, "XMPPUV_SOURCE_ROOT is not set (run through meson test)\n");
    return NULL;
  }
  const char *tmp = getenv("TMPDIR");
  snprintf(certs_dir, sizeof certs_dir, "%s/xmppuv-tls-XXXXXX",
           tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
  if (mkdtemp(certs_dir) == NULL) {
    perror("mkdtemp");
    return NULL;
  }
  char script[600], log[600];
  snprintf(script, sizeof script, "%s/tests/support/make-certs.sh", root);
  snprintf(log, sizeof log, "%s/make-certs.out", certs_dir);
  char *argv[] = {"sh", script, certs_dir, NULL};
  pid_t pid = spawn(argv, log, NULL);
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0) {
    dump_output("make-certs.sh failed", log);
    return NULL;
  }
  certs_made = 1;
  return certs_dir;
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw) {
  return remove(path);
}

void tls_certs_cleanup(void) {
  if (!certs_made) return;
  nftw(certs_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  certs_made = 0;
}

const char *tls_cert_path(int slot, const char *name) {
  static char paths[4][600];
  snprintf(paths[slot & 3], sizeof paths[0], "%s/%s", certs_dir, name);
  return paths[slot & 3];
}

const char *tls_cert_line(const char *name) {
  static char line[256];
  line[0] = '\0';
  FILE *f = fopen(tls_cert_path(3, name), "r");
  if (f == NULL) return line;
  if (fgets(line, sizeof line, f) == NULL) line[0] = '\0';
  fclose(f);
  line[strcspn(line, "\r\n")] = '\0';
  return line;
}

char *tls_peer_wait_output(tls_peer_t *p, const char *needle, int timeout_ms) {
  for (int waited = 0;; waited += 20) {
    char *text = read_all(p->out_path);
    char *at = text != NULL ? strstr(text, needle) : NULL;
    if (at != NULL) {
      at += strlen(needle);
      size_t len = strcspn(at, "\r\n");
      char *rest = malloc(len + 1);
      if (rest != NULL) {
        memcpy(rest, at, len);
        rest[len] = '\0';
      }
      free(text);
      return rest;
    }
    free(text);
    if (waited >= timeout_ms) return NULL;
    sleep_ms(20);
  }
}

/* Start argv, then wait for "<port_prefix>...<port>" in its output. */
static int start(tls_peer_t *p, char *const argv[], const char *port_prefix,
                 int with_stdin) {
  p->stdin_fd = -1;
  p->port = 0;
  p->pid = spawn(argv, p->out_path, with_stdin ? &p->stdin_fd : NULL);
  if (p->pid < 0) {
    fprintf(stderr, "cannot start %s: %s\n", argv[0], strerror(errno));
    return -1;
  }
  for (int waited = 0; waited < 10000; waited += 20) {
    char *rest = tls_peer_wait_output(p, port_prefix, 0);
    if (rest != NULL) {
      /* "127.0.0.1:43567" (s_server) or "43567" (tls_peer.py) */
      const char *colon = strrchr(rest, ':');
      p->port = atoi(colon != NULL ? colon + 1 : rest);
      free(rest);
      if (p->port > 0) return 0;
    }
    int status;
    if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
      p->pid = 0;
      dump_output("the TLS peer exited before listening", p->out_path);
      return -1;
    }
    sleep_ms(20);
  }
  dump_output("the TLS peer did not start listening in 10 s", p->out_path);
  tls_peer_stop(p);
  return -1;
}

static void peer_out_path(tls_peer_t *p, const char *kind) {
  snprintf(p->out_path, sizeof p->out_path, "%s/%s-%ld-%u.out", certs_dir,
           kind, (long)getpid(), peer_counter++);
}

#define MAX_ARGS 40

int tls_peer_start_s_server(tls_peer_t *p, const char *name,
                            const char *const *extra) {
  char cert[600], key[600];
  snprintf(cert, sizeof cert, "%s/%s.pem", certs_dir, name);
  snprintf(key, sizeof key, "%s/%s.key", certs_dir, name);
  char *argv[MAX_ARGS] = {"openssl", "s_server", "-accept", "127.0.0.1:0",
                          "-cert",   cert,       "-key",    key};
  int n = 8;
  for (; extra != NULL && *extra != NULL && n < MAX_ARGS - 1; extra++)
    argv[n++] = (char *)*extra;
  argv[n] = NULL;
  peer_out_path(p, "s_server");
  return start(p, argv, "ACCEPT ", 1);
}

int tls_peer_start_python(tls_peer_t *p, const char *name,
                          const char *const *extra) {
  const char *root = getenv("XMPPUV_SOURCE_ROOT");
  char script[600], cert[600], key[600], keylog[700];
  snprintf(script, sizeof script, "%s/tests/support/tls_peer.py",
           root != NULL ? root : ".");
  snprintf(cert, sizeof cert, "%s/%s.pem", certs_dir, name);
  snprintf(key, sizeof key, "%s/%s.key", certs_dir, name);
  peer_out_path(p, "tls_peer");
  snprintf(keylog, sizeof keylog, "%s.keylog", p->out_path);
  /* Debian's interpreter when present: it starts fastest. */
  char *python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3"
                                                        : "python3";
  char *argv[MAX_ARGS] = {python,   script, "--cert",   cert,
                          "--key",  key,    "--keylog", keylog};
  int n = 8;
  for (; extra != NULL && *extra != NULL && n < MAX_ARGS - 1; extra++)
    argv[n++] = (char *)*extra;
  argv[n] = NULL;
  return start(p, argv, "PORT ", 0);
}

void tls_peer_stop(tls_peer_t *p) {
  if (p->stdin_fd >= 0) {
    close(p->stdin_fd);
    p->stdin_fd = -1;
  }
  if (p->pid <= 0) return;
  kill(p->pid, SIGTERM);
  int status;
  for (int waited = 0; waited < 2000; waited += 10) {
    if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
      p->pid = 0;
      return;
    }
    sleep_ms(10);
  }
  kill(p->pid, SIGKILL);
  waitpid(p->pid, &status, 0);
  p->pid = 0;
}
