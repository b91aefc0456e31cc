#!/bin/bash
# A throwaway ejabberd 24.12 (Debian bookworm-backports package: ejabberd) for tests and examples.
#   ejabberd.sh start DIR C2S_PORT DIRECT_TLS_PORT [RESUME_SECONDS]
#   ejabberd.sh stop|kill|status DIR
# Domain localhost on 127.0.0.1 only; config, Mnesia data, logs, pid and
# certificate all inside DIR. STARTTLS required on C2S_PORT, XEP-0368 direct
# TLS on DIRECT_TLS_PORT, XEP-0198 with a RESUME_SECONDS (default 5)
# resumption window. Users alice, bob, carol, dave with passwords NAME-secret.
# RFC 7395 WebSocket (path /ws, subprotocol xmpp) and XEP-0156 host-meta
# (/.well-known/host-meta and host-meta.json) on HTTP_PORT = DIRECT_TLS_PORT+1
# (plain: ws://127.0.0.1:HTTP_PORT/ws) and HTTPS_PORT = DIRECT_TLS_PORT+2
# (wss://localhost:HTTPS_PORT/ws, same certificate). host-meta names the
# wss:// URL and answers only to Host: localhost (the XMPP domain).
# `start` returns when the server answers a stream header with its features
# and the users exist, and prints "ca_file=DIR/ca.pem". A restart keeps the
# users and the certificate.
#
# Debian's ejabberdctl switches to the ejabberd user when run as root and
# needs epmd, so this starts erl directly with the flags ejabberdctl would
# use, as a non-distributed node (nonode@nohost): no epmd, no distribution
# port, no cookie, and two servers cannot see each other. The catch: the
# node cannot be reached by ejabberdctl; users are registered at boot by
# -eval instead, and stop is SIGTERM (OTP runs init:stop() on it).
# XMPPUV_SERVER_DEBUG=1 logs at debug level; XMPPUV_ERL overrides erl's path.
# XMPPUV_SERVER_MAM=1 archives every message (XEP-0313, users and rooms):
# off by default (see prosody.sh).
# XMPPUV_SERVER_MAX_STANZA=N takes stanzas of at most N bytes (max_stanza_size;
# default 262144).
# XMPPUV_SERVER_SM_QUEUE=N queues at most N unacknowledged stanzas per XEP-0198
# session (max_ack_queue; default ejabberd's, 5000).
# XMPPUV_SERVER_CLIENT_CERTS=1 asks every client for a TLS certificate on both
# listeners (tls_verify) and offers SASL EXTERNAL (XEP-0178): DIR/client/
# holds a client CA (ca.pem, the server's c2s_cafile) and alice's
# certificate (alice.pem, alice.key: id-on-xmppAddr alice@localhost),
# and other.pem/other.key from a CA the server does not trust.
set -u
SERVER_KIND=ejabberd
ERL=${XMPPUV_ERL:-erl}
# How the server logs that it could not bind a port.
PORT_IN_USE_PATTERN='eaddrinuse'
STOP_TIMEOUT_MS=15000
READY_TIMEOUT_MS=30000
# shellcheck source=common.sh
. "$(dirname -- "$0")/common.sh"

# The directory that holds ejabberd-VERSION/ebin, for ERL_LIBS.
find_ejabberd_libs() {
  local app
  for app in /usr/lib/*/ejabberd-*/ebin/ejabberd.app /usr/lib/erlang/lib/ejabberd-*/ebin/ejabberd.app; do
    if [ -f "$app" ]; then
      dirname -- "$(dirname -- "$(dirname -- "$app")")"
      return 0
    fi
  done
  return 1
}

# The client certificates of XMPPUV_SERVER_CLIENT_CERTS, made once per DIR.
make_client_certificates() {
  local c=$DIR/client
  [ -s "$c/alice.pem" ] && [ -s "$c/other.pem" ] && return 0
  mkdir -p "$c"
  (
    cd "$c" || exit 1
    for ca in ca otherca; do
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$ca.key" -out "$ca.pem" -days 3650 -subj "/CN=xmppuv test client CA $ca" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
    done
    # XEP-0178: the JID as id-on-xmppAddr (1.3.6.1.5.5.7.8.5), UTF8String.
    printf '%s\n' 'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature' \
      'extendedKeyUsage=clientAuth' \
      'subjectAltName=otherName:1.3.6.1.5.5.7.8.5;UTF8:alice@localhost' >ext.cnf
    for leaf in alice:ca other:otherca; do
      name=${leaf%%:*} ca=${leaf#*:}
      openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$name.key" -out "$name.csr" -subj /CN=alice@localhost
      openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial \
        -days 3650 -extfile ext.cnf -out "$name.pem"
    done
  ) >"$DIR/openssl-client.log" 2>&1 ||
    { cat "$DIR/openssl-client.log" >&2; die "openssl could not make the client certificates"; }
}

write_config() {
  local level=info verify=""
  [ "${XMPPUV_SERVER_CLIENT_CERTS:-}" = 1 ] && verify="
    tls_verify: true"
  [ "${XMPPUV_SERVER_DEBUG:-}" = 1 ] && level=debug
  cat "$DIR/certs/localhost.crt" "$DIR/certs/localhost.key" >"$DIR/certs/server.pem"
  chmod 600 "$DIR/certs/server.pem"
  cat >"$DIR/ejabberd.yml" <<EOF
# Written by tests/servers/ejabberd.sh; rewritten at every start.
hosts:
  - localhost
loglevel: $level
log_rotate_count: 0
certfiles:
  - "$DIR/certs/server.pem"
$( [ -n "$verify" ] && echo "c2s_cafile: \"$DIR/client/ca.pem\" # XMPPUV_SERVER_CLIENT_CERTS" )
# Plain storage offers PLAIN and SCRAM-SHA-1/256/512 with their -PLUS variants.
auth_method: internal
auth_password_format: plain
disable_sasl_mechanisms:
  - "digest-md5"
  - "X-OAUTH2"
listen:
  -
    port: $C2S_PORT
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls_required: true
    max_stanza_size: ${XMPPUV_SERVER_MAX_STANZA:-262144}
    backlog: 128$verify
  -
    # XEP-0368 direct TLS
    port: $TLS_PORT
    ip: "127.0.0.1"
    module: ejabberd_c2s
    tls: true
    max_stanza_size: ${XMPPUV_SERVER_MAX_STANZA:-262144}
    backlog: 128$verify
  -
    # RFC 7395 WebSocket and XEP-0156 host-meta, plain (ws://)
    port: $HTTP_PORT
    ip: "127.0.0.1"
    module: ejabberd_http
    # The c2s session behind /ws cannot see whether the HTTP connection is
    # TLS (it is not, here; on the https listener it is), and without this
    # it offers no SASL2 (so no Bind2, inline SM or FAST) at all.
    allow_unencrypted_sasl2: true
    request_handlers:
      /ws: ejabberd_http_ws
      /.well-known/host-meta: mod_host_meta
      /.well-known/host-meta.json: mod_host_meta
  -
    # The same over TLS (wss://)
    port: $HTTPS_PORT
    ip: "127.0.0.1"
    module: ejabberd_http
    tls: true
    allow_unencrypted_sasl2: true   # see above: TLS is the HTTP layer's
    request_handlers:
      /ws: ejabberd_http_ws
      /.well-known/host-meta: mod_host_meta
      /.well-known/host-meta.json: mod_host_meta
# No offline storage or registration: a message to a user with no
# available resource bounces (unlike Prosody's, which stores it: prosody.sh).
# Carbons (XEP-0280), roster versioning, and with XMPPUV_SERVER_MAM=1 MAM
# (XEP-0313, every message archived) for the chat layer's tests (a client
# that uses none of them sees no difference but a <stanza-id/> in what it
# receives).
modules:
  mod_disco: {}
  mod_ping: {}
  mod_roster:
    versioning: true
  mod_carboncopy: {}
$( [ "${XMPPUV_SERVER_MAM:-}" = 1 ] && printf '  mod_mam:\n    default: always\n' )
  # XEP-0045 group chat on conference.localhost, rooms kept (and archived
  # with MAM), for the chat layer's tests.
  mod_muc:
    host: "conference.localhost"
    default_room_options:
      mam: $( [ "${XMPPUV_SERVER_MAM:-}" = 1 ] && echo true || echo false )
      persistent: true
  # XEP-0352: holds presence for an inactive client (the defaults).
  mod_client_state: {}
  # XEP-0484 FAST tokens (SASL2, Bind2 and inline SM are built in).
  mod_auth_fast: {}
  # XEP-0156. Its default, auto, takes the first /ws handler, the plain one.
  # It answers only to Host: localhost[:PORT]: any other Host (127.0.0.1)
  # crashes the handler and the connection closes with no reply (24.12
  # accepts the listener option default_host but ignores it).
  # No mod_bosh, so no BOSH link (ejabberd warns at start that mod_bosh
  # is "recommended": harmless).
  mod_host_meta:
    websocket_url: "wss://localhost:$HTTPS_PORT/ws"
  # XEP-0198: short so tests can let a session expire and see a failed resume.
  mod_stream_mgmt:
    resume_timeout: $RESUME
    max_resume_timeout: $RESUME
    max_ack_queue: ${XMPPUV_SERVER_SM_QUEUE:-5000}
EOF
}

# Erlang expression run after ejabberd has started: register the users
# (already there after a restart) and leave a marker that start waits for.
register_eval() {
  local u list=""
  for u in $XMPPUV_USERS; do
    list="$list${list:+,}<<\"$u\">>"
  done
  printf '%s' "lists:foreach(fun(U) -> case ejabberd_auth:try_register(U, <<\"localhost\">>, <<U/binary, \"-secret\">>) of ok -> ok; {ok, _} -> ok; {error, exists} -> ok; E -> erlang:error({register, U, E}) end end, [$list]), ok = file:write_file(\"$DIR/users.ready\", <<>>)."
}

cmd_start() {
  local pid libs
  parse_start_args "$@"
  set_dir "$1" create
  SERVER_MATCH="$DIR/db"
  START_MS=$(now_ms)
  if ! command -v "$ERL" >/dev/null 2>&1 || ! libs=$(find_ejabberd_libs); then
    echo "ejabberd is not installed: apt-get install ejabberd" >&2
    exit 5
  fi
  check_can_start
  make_certificate
  [ "${XMPPUV_SERVER_CLIENT_CERTS:-}" = 1 ] && make_client_certificates
  mkdir -p "$DIR/db"
  write_config
  rm -f "$DIR/users.ready"
  rotate_logs "$DIR/ejabberd.log" "$DIR/error.log" "$DIR/ejabberd.out"
  write_ports
  cd "$DIR" || die "cannot enter $DIR"
  # +sbwt none ...: no scheduler busy-waiting, which would steal CPU from
  # the tests on small machines. $! is beam itself (erl execs it).
  HOME="$DIR" \
  ERL_LIBS="$libs" \
  EJABBERD_CONFIG_PATH="$DIR/ejabberd.yml" \
  EJABBERD_LOG_PATH="$DIR/ejabberd.log" \
  EJABBERD_PID_PATH="$DIR/ejabberd.pid" \
  ERL_CRASH_DUMP="$DIR/erl_crash.dump" \
  ERL_CRASH_DUMP_BYTES=0 \
  "$ERL" +K true +P 250000 +sbwt none +sbwtdcpu none +sbwtdio none -noinput \
    -mnesia dir "\"$DIR/db\"" \
    -s ejabberd \
    -eval "$(register_eval)" \
    </dev/null >"$DIR/ejabberd.out" 2>&1 &
  pid=$!
  echo "$pid" >"$DIR/server.pid"
  start_watcher "$pid"
  wait_ready "$pid" "$READY_TIMEOUT_MS" "$DIR/users.ready" "$DIR/ejabberd.out" "$DIR/ejabberd.log"
  report_ready "$pid"
}

COMMAND=${1:-}
case $COMMAND in
  start) shift; cmd_start "$@" ;;
  stop | kill | status)
    [ $# -eq 2 ] || usage
    set_dir "$2"
    SERVER_MATCH="$DIR/db"
    "cmd_$COMMAND" ;;
  *) usage ;;
esac
