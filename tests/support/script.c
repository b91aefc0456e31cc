/* A scripted connection, whatever carries it: see script.h. */
#include "script.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

struct xmppuv_test_script_conn {
  const xmppuv_test_step_t *script;
  size_t step;
  size_t index;
  unsigned port;
  const xmppuv_test_script_io_t *io;
  void *io_ud;
  int waiting; /* a DELAY is running */
  int closing; /* our side is closing or closed */
  int shut;    /* SCRIPT_CLOSE: FIN sent (or queued) */
  int closed;  /* the transport is gone */
  xmppuv_test_peer_t peer;
  char *rx; /* everything received, NUL-terminated */
  size_t rx_len, rx_cap;
  size_t cursor; /* the next EXPECT searches from here */
  uint64_t accepted_at;
};

xmppuv_test_script_conn_t *xmppuv_test_script_conn_new(const xmppuv_test_step_t *script,
                                                       size_t index, unsigned port,
                                                       const xmppuv_test_script_io_t *io,
                                                       void *io_ud, uint64_t accepted_at) {
  xmppuv_test_script_conn_t *conn = calloc(1, sizeof *conn);
  if (conn == NULL) return NULL;
  conn->rx = malloc(4096);
  if (conn->rx == NULL) {
    free(conn);
    return NULL;
  }
  conn->rx[0] = '\0';
  conn->rx_cap = 4096;
  conn->script = script;
  conn->index = index;
  conn->port = port;
  conn->io = io;
  conn->io_ud = io_ud;
  conn->accepted_at = accepted_at;
  return conn;
}

void xmppuv_test_script_conn_free(xmppuv_test_script_conn_t *conn) {
  if (conn == NULL) return;
  free(conn->rx);
  free(conn);
}

static void close_conn(xmppuv_test_script_conn_t *conn, int reset) {
  if (conn->closing) return;
  conn->closing = 1;
  conn->io->close(conn->io_ud, reset ? XMPPUV_TEST_IO_RESET : XMPPUV_TEST_IO_CLOSE);
}

/* The value of the last id attribute before the end of the last match. */
static size_t last_id(const xmppuv_test_script_conn_t *conn, const char **value) {
  const char *rx = conn->rx;
  for (size_t i = conn->cursor; i-- > 0;) {
    if (strncmp(rx + i, "id=", 3) != 0 || i == 0) continue;
    char before = rx[i - 1];
    char quote = rx[i + 3];
    if ((before != ' ' && before != '\t' && before != '\n' && before != '\r') ||
        (quote != '\'' && quote != '"'))
      continue;
    const char *start = rx + i + 4;
    const char *end = strchr(start, quote);
    if (end == NULL) continue;
    *value = start;
    return (size_t)(end - start);
  }
  *value = "";
  return 0;
}

/* text with {id}, {port} and {n} replaced; malloc'd, NULL if out of memory. */
static char *expand(const xmppuv_test_script_conn_t *conn, const char *text, size_t *out_len) {
  size_t cap = strlen(text) + 64, len = 0;
  char *out = malloc(cap);
  if (out == NULL) return NULL;
  for (const char *p = text; *p != '\0';) {
    char num[32];
    const char *piece = p;
    size_t piece_len = 1, skip = 1;
    if (strncmp(p, "{id}", 4) == 0) {
      piece_len = last_id(conn, &piece);
      skip = 4;
    } else if (strncmp(p, "{port}", 6) == 0) {
      piece_len = (size_t)snprintf(num, sizeof num, "%u", conn->port);
      piece = num;
      skip = 6;
    } else if (strncmp(p, "{n}", 3) == 0) {
      piece_len = (size_t)snprintf(num, sizeof num, "%zu", conn->index);
      piece = num;
      skip = 3;
    }
    if (len + piece_len + 1 > cap) {
      cap = (len + piece_len + 1) * 2;
      char *bigger = realloc(out, cap);
      if (bigger == NULL) {
        free(out);
        return NULL;
      }
      out = bigger;
    }
    memcpy(out + len, piece, piece_len);
    len += piece_len;
    p += skip;
  }
  out[len] = '\0';
  *out_len = len;
  return out;
}

void xmppuv_test_script_conn_advance(xmppuv_test_script_conn_t *conn) {
  while (!conn->closing && !conn->waiting) {
    const xmppuv_test_step_t *s = &conn->script[conn->step];
    switch (s->op) {
      case XMPPUV_TEST_STEP_END:
        return;
      case XMPPUV_TEST_STEP_EXPECT: {
        const char *found = strstr(conn->rx + conn->cursor, s->text);
        if (found == NULL) return; /* wait for more */
        conn->cursor = (size_t)(found - conn->rx) + strlen(s->text);
        conn->step++;
        break;
      }
      case XMPPUV_TEST_STEP_SEND: {
        size_t len;
        char *data = expand(conn, s->text, &len);
        conn->step++;
        if (data == NULL || xmppuv_test_script_conn_send(conn, data, len) != 0) {
          free(data);
          close_conn(conn, 1);
          return;
        }
        free(data);
        break;
      }
      case XMPPUV_TEST_STEP_DELAY:
        conn->step++;
        conn->waiting = 1;
        conn->io->delay(conn->io_ud, s->ms);
        return;
      case XMPPUV_TEST_STEP_CALL:
        conn->step++;
        if (s->fn(conn, s->arg) < 0) close_conn(conn, 1);
        break;
      case XMPPUV_TEST_STEP_CLOSE:
        conn->step++;
        if (!conn->shut) {
          conn->shut = 1;
          conn->io->close(conn->io_ud, XMPPUV_TEST_IO_SHUTDOWN);
        }
        break;
      case XMPPUV_TEST_STEP_RESET:
        conn->step++;
        close_conn(conn, 1);
        return;
    }
  }
}

int xmppuv_test_script_conn_received_bytes(xmppuv_test_script_conn_t *conn, const char *data,
                                           size_t len) {
  if (conn->rx_cap - conn->rx_len < len + 1) {
    size_t cap = (conn->rx_len + len + 1) * 2;
    char *bigger = realloc(conn->rx, cap);
    if (bigger == NULL) return -1;
    conn->rx = bigger;
    conn->rx_cap = cap;
  }
  memcpy(conn->rx + conn->rx_len, data, len);
  conn->rx_len += len;
  conn->rx[conn->rx_len] = '\0';
  xmppuv_test_script_conn_advance(conn);
  return 0;
}

void xmppuv_test_script_conn_delay_over(xmppuv_test_script_conn_t *conn) {
  conn->waiting = 0;
  xmppuv_test_script_conn_advance(conn);
}

void xmppuv_test_script_conn_set_peer(xmppuv_test_script_conn_t *conn, xmppuv_test_peer_t peer) {
  conn->peer = peer;
}

void xmppuv_test_script_conn_set_closed(xmppuv_test_script_conn_t *conn) {
  conn->closing = 1;
  conn->closed = 1;
}

int xmppuv_test_script_conn_closing(const xmppuv_test_script_conn_t *conn) {
  return conn->closing;
}

int xmppuv_test_script_conn_shut(const xmppuv_test_script_conn_t *conn) { return conn->shut; }

void *xmppuv_test_script_conn_io(const xmppuv_test_script_conn_t *conn) { return conn->io_ud; }

size_t xmppuv_test_script_conn_index(const xmppuv_test_script_conn_t *conn) {
  return conn->index;
}

const char *xmppuv_test_script_conn_received(const xmppuv_test_script_conn_t *conn,
                                             size_t *len) {
  if (len != NULL) *len = conn->rx_len;
  return conn->rx;
}

const char *xmppuv_test_script_conn_unmatched(const xmppuv_test_script_conn_t *conn) {
  return conn->rx + conn->cursor;
}

size_t xmppuv_test_script_conn_step(const xmppuv_test_script_conn_t *conn) {
  return conn->step;
}

int xmppuv_test_script_conn_done(const xmppuv_test_script_conn_t *conn) {
  return conn->script[conn->step].op == XMPPUV_TEST_STEP_END;
}

xmppuv_test_peer_t xmppuv_test_script_conn_peer(const xmppuv_test_script_conn_t *conn) {
  return conn->peer;
}

int xmppuv_test_script_conn_closed(const xmppuv_test_script_conn_t *conn) {
  return conn->closed;
}

uint64_t xmppuv_test_script_conn_accepted_at(const xmppuv_test_script_conn_t *conn) {
  return conn->accepted_at;
}

int xmppuv_test_script_conn_send(xmppuv_test_script_conn_t *conn, const char *data,
                                 size_t len) {
  if (conn->closing || conn->shut) return -EPIPE;
  return conn->io->send(conn->io_ud, data, len);
}

void xmppuv_test_script_conn_close(xmppuv_test_script_conn_t *conn, int reset) {
  close_conn(conn, reset);
}

size_t xmppuv_test_script_conn_write_queue(const xmppuv_test_script_conn_t *conn) {
  if (conn->closing || conn->io->write_queue == NULL) return 0;
  return conn->io->write_queue(conn->io_ud);
}
