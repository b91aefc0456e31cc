# shellcheck shell=bash
# Shared by prosody.sh and ejabberd.sh (sourced, never run): argument checks,
# the certificate, the readiness probe, and stop/kill/status on a pid file.
# Every file a server uses lives in its DIR; nothing goes to /etc or a service.
#
# Exit codes of the scripts:
#   0 ok   1 failed (server did not become ready, bad usage ...)
#   3 a port is already in use (the caller may retry with other ports)
#   5 the server software is not installed (the message names the package)
# status: 0 running and answering, 3 not running, 4 running but not answering.
#
# Environment:
#   XMPPUV_SERVER_OWNER_PID=PID  when PID exits, a watcher kills the server
#       with SIGKILL and removes DIR (tests set it so a crashed or timed-out
#       test leaves no server behind).

# The users every server has, with their passwords (the C helper
# xmppuv_test_password() in tests/support/servers.c repeats this table).
XMPPUV_USERS="alice bob carol dave"

die() {
  echo "$SERVER_KIND: $*" >&2
  exit 1
}

usage() {
  cat >&2 <<EOF
usage: $0 start DIR C2S_PORT DIRECT_TLS_PORT [RESUME_SECONDS]
           also listens on DIRECT_TLS_PORT+1 (HTTP: ws://, host-meta) and
           DIRECT_TLS_PORT+2 (HTTPS: wss://, host-meta); all four must be free
       $0 stop DIR      graceful stop; waits until the process and its ports are gone
       $0 kill DIR      SIGKILL; waits the same way
       $0 status DIR    0 running, 3 not running, 4 running but not answering
Domain localhost on 127.0.0.1; users $XMPPUV_USERS (password: NAME-secret).
EOF
  exit 1
}

is_port() {
  case $1 in '' | *[!0-9]*) return 1 ;; esac
  [ "$1" -ge 1 ] && [ "$1" -le 65535 ]
}

# A listener answers on 127.0.0.1:PORT.
port_in_use() {
  { exec 8<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
  exec 8>&-
  return 0
}

now_ms() {
  local s=${EPOCHREALTIME/[.,]/}
  echo $((s / 1000))
}

# RFC 6120 §4.2/§4.3.2: open a stream to localhost and wait for the server's
# <stream:features>. A TCP accept is not enough: Prosody accepts before the
# virtual host is loaded. Prints what the server sent; 0 when the features
# arrived within 2 s.
probe_features() {
  local port=$1 buf="" chunk="" rc end
  { exec 9<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
  printf "%s" "<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>" >&9 2>/dev/null
  end=$((SECONDS + 2))
  while [ "$SECONDS" -le "$end" ]; do
    chunk=""
    IFS= read -r -t 0.5 -d '>' chunk <&9
    rc=$?
    if [ "$rc" -eq 0 ]; then
      buf+="$chunk>"
    elif [ "$rc" -gt 128 ]; then
      buf+="$chunk"     # timed out: keep the partial read and go on
    else
      break             # EOF or error
    fi
    case $buf in
      *"</stream:features>"* | *"<stream:features/>"*)
        exec 9>&-
        printf '%s\n' "$buf"
        return 0 ;;
    esac
  done
  exec 9>&-
  return 1
}

# A self-signed certificate for localhost, made once per DIR (a restart keeps
# it). EC P-256 because it is made in milliseconds; clients trust DIR/ca.pem
# (the certificate itself) as their CA file and verify the name localhost.
make_certificate() {
  [ -s "$DIR/ca.pem" ] && [ -s "$DIR/certs/localhost.key" ] && return 0
  command -v openssl >/dev/null 2>&1 || { echo "openssl is not installed: apt-get install openssl" >&2; exit 5; }
  mkdir -p "$DIR/certs"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$DIR/certs/localhost.key" -out "$DIR/certs/localhost.crt" \
    -days 3650 -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    >"$DIR/openssl.log" 2>&1 || { cat "$DIR/openssl.log" >&2; die "openssl could not make the certificate"; }
  chmod 600 "$DIR/certs/localhost.key"
  cp "$DIR/certs/localhost.crt" "$DIR/ca.pem"
}

# PID runs (a zombie does not: a killed server stays one until its parent,
# often init, reaps it, and that can take seconds in some containers).
alive() {
  local stat
  kill -0 "$1" 2>/dev/null || return 1
  if [ -r "/proc/$1/stat" ]; then
    read -r stat <"/proc/$1/stat" 2>/dev/null || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ] || return 1
  fi
  return 0
}

# The pid in DIR/server.pid, if that process is alive and is our server
# (the pid file may be stale after a reboot or a SIGKILL).
server_pid() {
  local pid
  [ -f "$DIR/server.pid" ] || return 1
  read -r pid <"$DIR/server.pid" || return 1
  case $pid in '' | *[!0-9]*) return 1 ;; esac
  alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$SERVER_MATCH" || return 1
  echo "$pid"
}

read_ports() {
  PORTS=""
  [ -f "$DIR/ports" ] && read -r PORTS <"$DIR/ports"
  return 0
}

print_log_tail() {
  local f
  for f in "$@"; do
    [ -s "$f" ] || continue
    echo "---- last lines of $f ----" >&2
    tail -n 25 "$f" >&2
  done
}

# Wait until PID is gone and nothing listens on our ports any more.
wait_gone() {
  local pid=$1 limit_ms=$2 start p busy
  start=$(now_ms)
  while alive "$pid"; do
    [ $(($(now_ms) - start)) -ge "$limit_ms" ] && return 1
    sleep 0.05
  done
  read_ports
  while :; do
    busy=""
    for p in $PORTS; do port_in_use "$p" && busy=$p; done
    [ -z "$busy" ] && return 0
    if [ $(($(now_ms) - start)) -ge $((limit_ms + 5000)) ]; then
      echo "$SERVER_KIND: port $busy is still in use after the server exited" >&2
      return 1
    fi
    sleep 0.05
  done
}

stop_watcher() {
  local wpid
  if [ -f "$DIR/watcher.pid" ]; then
    read -r wpid <"$DIR/watcher.pid" || wpid=""
    case $wpid in '' | *[!0-9]*) ;; *) kill "$wpid" 2>/dev/null ;; esac
    rm -f "$DIR/watcher.pid"
  fi
}

# When XMPPUV_SERVER_OWNER_PID exits while the server still runs, kill the
# server and remove DIR. Exits by itself once the server is gone.
start_watcher() {
  local pid=$1 owner=${XMPPUV_SERVER_OWNER_PID:-}
  case $owner in '' | *[!0-9]*) return 0 ;; esac
  (
    trap 'exit 0' TERM
    while alive "$pid"; do
      if ! alive "$owner"; then
        kill -9 "$pid" 2>/dev/null
        sleep 0.5
        rm -rf -- "$DIR"
        exit 0
      fi
      sleep 1 &
      wait $!
    done
  ) </dev/null >/dev/null 2>&1 &
  echo $! >"$DIR/watcher.pid"
}

cmd_stop() {
  local pid
  stop_watcher
  if ! pid=$(server_pid); then
    rm -f "$DIR/server.pid"
    echo "$SERVER_KIND: not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null
  if ! wait_gone "$pid" "$STOP_TIMEOUT_MS"; then
    echo "$SERVER_KIND: no exit $((STOP_TIMEOUT_MS / 1000)) s after SIGTERM; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null
    wait_gone "$pid" 5000 || die "pid $pid did not go away"
  fi
  rm -f "$DIR/server.pid"
  echo "$SERVER_KIND: stopped"
}

cmd_kill() {
  local pid
  stop_watcher
  if ! pid=$(server_pid); then
    rm -f "$DIR/server.pid"
    echo "$SERVER_KIND: not running"
    return 0
  fi
  kill -KILL "$pid" 2>/dev/null
  wait_gone "$pid" 5000 || die "pid $pid did not go away after SIGKILL"
  rm -f "$DIR/server.pid"
  echo "$SERVER_KIND: killed"
}

cmd_status() {
  local pid
  if ! pid=$(server_pid); then
    echo "$SERVER_KIND: not running"
    exit 3
  fi
  local c2s tls http https
  read_ports
  read -r c2s tls http https <<<"$PORTS"
  if probe_features "$c2s" >/dev/null; then
    echo "$SERVER_KIND: running pid=$pid c2s=$c2s direct_tls=$tls http=${http:-} https=${https:-}"
    exit 0
  fi
  echo "$SERVER_KIND: pid $pid is alive but does not answer on port $c2s"
  exit 4
}

# Parse "start DIR C2S DIRECT [RESUME]" into DIR C2S_PORT TLS_PORT RESUME,
# and HTTP_PORT (DIRECT+1) and HTTPS_PORT (DIRECT+2). The HTTP ports are
# derived, not arguments, so every caller keeps the three-argument form and
# one number (the direct TLS port) tells a test where everything is.
parse_start_args() {
  if [ $# -lt 3 ] || [ $# -gt 4 ]; then usage; fi
  C2S_PORT=$2
  TLS_PORT=$3
  RESUME=${4:-5}
  is_port "$C2S_PORT" || die "bad C2S_PORT '$C2S_PORT'"
  is_port "$TLS_PORT" || die "bad DIRECT_TLS_PORT '$TLS_PORT'"
  [ "$TLS_PORT" -le 65533 ] || die "DIRECT_TLS_PORT must leave room for +1 and +2 (HTTP, HTTPS)"
  HTTP_PORT=$((TLS_PORT + 1))
  HTTPS_PORT=$((TLS_PORT + 2))
  [ "$C2S_PORT" != "$TLS_PORT" ] || die "C2S_PORT and DIRECT_TLS_PORT must differ"
  if [ "$C2S_PORT" = "$HTTP_PORT" ] || [ "$C2S_PORT" = "$HTTPS_PORT" ]; then
    die "C2S_PORT must not be DIRECT_TLS_PORT+1 or +2 (the HTTP and HTTPS ports)"
  fi
  case $RESUME in '' | *[!0-9]*) die "bad RESUME_SECONDS '$RESUME'" ;; esac
  [ "$RESUME" -ge 1 ] || die "RESUME_SECONDS must be at least 1"
}

# DIR must be absolute for the configs. `start` creates it; the other
# commands on a DIR that does not exist report "not running".
set_dir() {
  [ -n "$1" ] || usage
  if [ "${2:-}" = create ]; then
    mkdir -p -- "$1" || die "cannot create $1"
  elif [ ! -d "$1" ]; then
    echo "$SERVER_KIND: not running (no directory $1)"
    [ "$COMMAND" = status ] && exit 3
    exit 0
  fi
  DIR=$(cd -- "$1" && pwd -P) || die "cannot enter $1"
  case $DIR in
    *[\"\'\\\ ]*) die "DIR must not contain quotes, backslashes or spaces: $DIR" ;;
  esac
}

# Before starting: not already running, ports free.
check_can_start() {
  local pid p
  if pid=$(server_pid); then
    die "already running in $DIR (pid $pid); stop it first"
  fi
  for p in "$C2S_PORT" "$TLS_PORT" "$HTTP_PORT" "$HTTPS_PORT"; do
    if port_in_use "$p"; then
      echo "$SERVER_KIND: port $p is already in use" >&2
      exit 3
    fi
  done
}

# Poll until the server answers with stream features (and, if given, a
# marker file exists). On timeout, early exit, or a log line matching
# $PORT_IN_USE_PATTERN: print the logs, kill the server, exit 1 (3 if a port
# was taken).
wait_ready() {
  local pid=$1 limit_ms=$2 marker=${3:-} start elapsed c2s_ok=""
  shift 3
  start=$(now_ms)
  while :; do
    if ! alive "$pid"; then
      echo "$SERVER_KIND: the server exited during startup" >&2
      fail_start "$pid" "$@"
    fi
    if grep -q -E -i -- "$PORT_IN_USE_PATTERN" "$@" 2>/dev/null; then
      echo "$SERVER_KIND: a port is already in use" >&2
      fail_start "$pid" "$@"
    fi
    # Probe c2s until it answers once (each probe is a line in the log).
    if [ -z "$c2s_ok" ] && probe_features "$C2S_PORT" >/dev/null; then
      c2s_ok=1
    fi
    if [ -n "$c2s_ok" ] && { [ -z "$marker" ] || [ -f "$marker" ]; } &&
      probe_other_ports; then
      break
    fi
    elapsed=$(($(now_ms) - start))
    if [ "$elapsed" -ge "$limit_ms" ]; then
      echo "$SERVER_KIND: not ready after $((limit_ms / 1000)) s" >&2
      fail_start "$pid" "$@"
    fi
    sleep 0.05
  done
  READY_MS=$(($(now_ms) - START_MS))
}

# The direct TLS and HTTP(S) ports only have to accept: the handshakes are
# the client's job. ejabberd opens its listeners one after the other, so a
# test that goes straight to wss:// must not find the port closed.
probe_other_ports() {
  port_in_use "$TLS_PORT" && port_in_use "$HTTP_PORT" && port_in_use "$HTTPS_PORT"
}

# DIR/ports: every port the server listens on, for wait_gone and status.
write_ports() {
  echo "$C2S_PORT $TLS_PORT $HTTP_PORT $HTTPS_PORT" >"$DIR/ports"
}

# Keep the previous starts' logs as NAME.1 (the last), NAME.2, ... up to
# NAME.9, so a restart's readiness checks only see its own lines and a kept
# directory (XMPPUV_KEEP_SERVER_DIRS) has the logs of every start of a run.
rotate_logs() {
  local f i
  for f in "$@"; do
    [ -f "$f" ] || continue
    for i in 8 7 6 5 4 3 2 1; do
      [ -f "$f.$i" ] && mv -f -- "$f.$i" "$f.$((i + 1))"
    done
    mv -f -- "$f" "$f.1"
  done
  return 0
}

fail_start() {
  local pid=$1
  shift
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null   # reap it here, without bash's "Killed" notice
  stop_watcher
  rm -f "$DIR/server.pid"
  print_log_tail "$@"
  if grep -q -E -i -- "$PORT_IN_USE_PATTERN" "$@" 2>/dev/null; then
    exit 3
  fi
  exit 1
}

report_ready() {
  echo "$SERVER_KIND ready in $READY_MS ms: pid=$1 c2s=127.0.0.1:$C2S_PORT direct_tls=127.0.0.1:$TLS_PORT http=127.0.0.1:$HTTP_PORT https=127.0.0.1:$HTTPS_PORT resume=${RESUME}s"
  echo "ca_file=$DIR/ca.pem"
}
