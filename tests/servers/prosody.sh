#!/bin/bash
# A throwaway Prosody 13 (Debian bookworm-backports package: prosody) for tests and examples.
#   prosody.sh start DIR C2S_PORT DIRECT_TLS_PORT [RESUME_SECONDS]
#   prosody.sh stop|kill|status DIR
# Domain localhost on 127.0.0.1 only; config, data, logs, pid and certificate
# all inside DIR. STARTTLS required on C2S_PORT, XEP-0368 direct TLS on
# DIRECT_TLS_PORT, XEP-0198 with a RESUME_SECONDS (default 5) resumption
# window. Users alice, bob, carol, dave with passwords NAME-secret.
# RFC 7395 WebSocket (path /xmpp-websocket, subprotocol xmpp) and XEP-0156
# host-meta (/.well-known/host-meta and host-meta.json) on HTTP_PORT =
# DIRECT_TLS_PORT+1 (plain: ws://127.0.0.1:HTTP_PORT/xmpp-websocket) and
# HTTPS_PORT = DIRECT_TLS_PORT+2 (wss://localhost:HTTPS_PORT/xmpp-websocket,
# same certificate). host-meta names the wss:// URL.
# `start` returns when the server answers a stream header with its features,
# and prints "ca_file=DIR/ca.pem": trust that file as the CA. A restart (stop,
# then start with the same DIR) keeps the users and the certificate.
# XMPPUV_SERVER_DEBUG=1 logs at debug level (the wire) to DIR/prosody.log.
# XMPPUV_SERVER_MAM=1 archives every message (XEP-0313, the users' and the
# rooms'): off by default, as archiving slows each stanza down and so
# widens a server-side race that Stream Management tests would see (README,
# "WebSocket" and "Guarantees").
# XMPPUV_SERVER_MAX_STANZA=N takes stanzas of at most N bytes (c2s_stanza_size_limit,
# at least 10000; default 262144).
# XMPPUV_SERVER_SM_QUEUE=N queues at most N unacknowledged stanzas per XEP-0198
# session (smacks_max_queue_size; default Prosody's, 500). Beyond it Prosody
# overwrites the oldest and refuses the session's resumption; 13.0.1 then
# keeps the session bound, available and hibernating for good, and what it
# queued is never delivered (tests/soak/prosody_orphaned_session.py).
# XMPPUV_PROSODY and XMPPUV_PROSODYCTL override the programs' paths.
set -u
SERVER_KIND=prosody

PROSODY=${XMPPUV_PROSODY:-prosody}
PROSODYCTL=${XMPPUV_PROSODYCTL:-prosodyctl}
# How the server logs that it could not bind a port.
PORT_IN_USE_PATTERN='Failed to open server port|address already in use'
STOP_TIMEOUT_MS=10000
READY_TIMEOUT_MS=10000
# shellcheck source=common.sh
. "$(dirname -- "$0")/common.sh"

write_config() {
  local level=info
  [ "${XMPPUV_SERVER_DEBUG:-}" = 1 ] && level=debug
  cat >"$DIR/prosody.cfg.lua" <<EOF
-- Written by tests/servers/prosody.sh; rewritten at every start.
run_as_root = true            -- CI and containers run as root
daemonize = false
pidfile = "$DIR/prosody.pid"
data_path = "$DIR/data"
certificates = "$DIR/certs"
log = { $level = "$DIR/prosody.log" }

interfaces = { "127.0.0.1" }
c2s_interfaces = { "127.0.0.1" }
c2s_ports = { $C2S_PORT }
c2s_direct_tls_ports = { $TLS_PORT }   -- XEP-0368
c2s_require_encryption = true
legacy_ssl_ports = {}
s2s_ports = {}
component_ports = {}
-- RFC 7395 WebSocket and XEP-0156 host-meta: plain on DIRECT_TLS_PORT+1,
-- TLS on DIRECT_TLS_PORT+2. mod_http_altconnect builds its links from the
-- first https port, so host-meta names wss://localhost:$HTTPS_PORT/.
http_ports = { $HTTP_PORT }
http_interfaces = { "127.0.0.1" }
https_ports = { $HTTPS_PORT }
https_interfaces = { "127.0.0.1" }
https_ssl = { certificate = "$DIR/certs/localhost.crt"; key = "$DIR/certs/localhost.key" }
-- A request to http://127.0.0.1:PORT/ (Host is not a VirtualHost) is served
-- as if for localhost.
http_default_host = "localhost"
-- With c2s_require_encryption, a WebSocket session that is not over TLS gets
-- a stream error at once ("No stream features to proceed with"). Tests use
-- ws:// on loopback only, so a plain WebSocket counts as secure here (never
-- on a real server). SASL2, Bind2, SM and FAST are then offered as on
-- c2s, minus what needs TLS (-PLUS, FAST -EXPR).
consider_websocket_secure = true
-- Without this, two back-to-back small writes stall 40 ms on delayed ACKs.
network_settings = { nagle = false }

-- Plain storage offers SCRAM-SHA-1, SCRAM-SHA-256 (and -PLUS on TLS 1.2) and PLAIN.
authentication = "internal_plain"
storage = "internal"
allow_registration = false

-- Carbons (XEP-0280) for the chat layer's tests, and MAM (XEP-0313) with
-- XMPPUV_SERVER_MAM=1: a client that uses neither sees no difference but a
-- <stanza-id/> in what it receives. No registration. Offline storage is on
-- all the same:
-- Prosody loads mod_offline without being asked (core/modulemanager.lua,
-- autoload_modules), so a message to a user with no available resource is
-- stored and delivered at the user's next initial presence, and mod_smacks
-- stores there what a lost session held for its user's last resource.
modules_enabled = {
  "roster"; "saslauth"; "tls"; "disco"; "ping"; "smacks"; "posix"; "carbons";$( [ "${XMPPUV_SERVER_MAM:-}" = 1 ] && echo ' "mam";' )
  -- XEP-0352: holds presence for an inactive client (csi_simple loads csi).
  "csi_simple";
  -- XEP-0388 SASL2 with Bind2, inline SM and FAST (XEP-0484), from
  -- prosody-modules. FAST is offered only to a stream header with from=.
  "sasl2"; "sasl2_bind2"; "sasl2_sm"; "sasl2_fast";
  -- RFC 7395 on the HTTP ports above (same modules, SASL2 and all), and
  -- XEP-0156 /.well-known/host-meta(.json) naming it.
  "websocket"; "http_altconnect";
}
modules_disabled = { "s2s" }

default_archive_policy = true -- with MAM: archive every conversation

-- The largest stanza taken (XEP-0478 advertises it); XMPPUV_SERVER_MAX_STANZA.
c2s_stanza_size_limit = ${XMPPUV_SERVER_MAX_STANZA:-262144}

-- XEP-0352: mod_csi_simple gives out what it held whenever the client sends
-- anything, then stays active for this long (5 s by default) before holding
-- again; at once here, so a test need not wait.
csi_resume_inactive_delay = 0

-- XEP-0198: short so tests can let a session expire and see a failed resume.
smacks_hibernation_time = $RESUME
$( [ -n "${XMPPUV_SERVER_SM_QUEUE:-}" ] && echo "smacks_max_queue_size = $XMPPUV_SERVER_SM_QUEUE -- XMPPUV_SERVER_SM_QUEUE" )

VirtualHost "localhost"

-- XEP-0045 group chat (with its archive, XEP-0313) for the chat layer's
-- tests; rooms are created by their first occupant and kept.
Component "conference.localhost" "muc"
  $( [ "${XMPPUV_SERVER_MAM:-}" = 1 ] && echo 'modules_enabled = { "muc_mam" }' )
  muc_room_default_persistent = true
  muc_room_locking = false
EOF
}

# One prosodyctl per user, in parallel (each writes its own account file);
# a restart finds the accounts and skips this.
register_users() {
  local u pids="" failed=""
  for u in $XMPPUV_USERS; do
    [ -s "$DIR/data/localhost/accounts/$u.dat" ] && continue
    "$PROSODYCTL" --config "$DIR/prosody.cfg.lua" register "$u" localhost "$u-secret" \
      >"$DIR/prosodyctl-$u.log" 2>&1 &
    pids="$pids $!"
  done
  for u in $pids; do wait "$u" || failed=1; done
  for u in $XMPPUV_USERS; do
    [ -s "$DIR/data/localhost/accounts/$u.dat" ] || failed=1
  done
  if [ -n "$failed" ]; then
    print_log_tail "$DIR"/prosodyctl-*.log
    die "prosodyctl could not register the users"
  fi
}

cmd_start() {
  local pid
  parse_start_args "$@"
  set_dir "$1" create
  SERVER_MATCH="$DIR/prosody.cfg.lua"
  START_MS=$(now_ms)
  if ! command -v "$PROSODY" >/dev/null 2>&1 || ! command -v "$PROSODYCTL" >/dev/null 2>&1; then
    echo "prosody is not installed: apt-get install prosody" >&2
    exit 5
  fi
  check_can_start
  make_certificate
  mkdir -p "$DIR/data"
  write_config
  register_users
  write_ports
  rotate_logs "$DIR/prosody.log" "$DIR/prosody.out"
  # Foreground (-F) in the background: $! is prosody itself. Its output goes
  # to a file so it never holds the caller's stdout open.
  cd "$DIR" || die "cannot enter $DIR"
  "$PROSODY" --config "$DIR/prosody.cfg.lua" -F </dev/null >"$DIR/prosody.out" 2>&1 &
  pid=$!
  echo "$pid" >"$DIR/server.pid"
  start_watcher "$pid"
  wait_ready "$pid" "$READY_TIMEOUT_MS" "" "$DIR/prosody.out" "$DIR/prosody.log"
  report_ready "$pid"
}

COMMAND=${1:-}
case $COMMAND in
  start) shift; cmd_start "$@" ;;
  stop | kill | status)
    [ $# -eq 2 ] || usage
    set_dir "$2"
    SERVER_MATCH="$DIR/prosody.cfg.lua"
    "cmd_$COMMAND" ;;
  *) usage ;;
esac
