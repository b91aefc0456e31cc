#!/usr/bin/env python3
"""Reproduces the Prosody 0.12 fault the soak excuses (tests/soak/soak.c).

After <resume/>, mod_smacks (handle_resume) moves the new connection to the
old session, and mod_c2s then feeds the new connection's bytes to that
session's data handler, which still parses with the parser of the session's
first connection. If a connection of the session died with part of a stanza
in that parser, the next well-formed stanza on the resumed stream is
"not-well-formed" and the server ends the session.

  tests/servers/prosody.sh start DIR PORT PORT+1 60
  tests/soak/prosody_resume_parser.py DIR PORT        # prints BUG or OK
  tests/servers/prosody.sh stop DIR

Exits 1 if the server answered the resumed stream with not-well-formed (the
bug), 0 if it accepted the stanza. --control sends no partial stanza first
(expected: accepted). Debian 12's prosody 0.12.3 prints BUG.
"""
import base64
import re
import socket
import ssl
import sys
import time

HEADER = (b"<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client'"
          b" xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>")


def recv_until(sock, pattern, seconds=5.0):
    buf = b""
    end = time.time() + seconds
    sock.settimeout(0.3)
    while time.time() < end:
        try:
            data = sock.recv(65536)
            if not data:
                break
            buf += data
        except (socket.timeout, ssl.SSLWantReadError):
            pass
        if re.search(pattern, buf):
            break
    return buf


def login(port, ctx):
    """STARTTLS and SASL PLAIN as alice; returns the TLS socket, stream open."""
    raw = socket.create_connection(("127.0.0.1", port))
    raw.sendall(HEADER)
    recv_until(raw, b"</stream:features>")
    raw.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    recv_until(raw, b"proceed")
    sock = ctx.wrap_socket(raw, server_hostname="localhost")
    sock.sendall(HEADER)
    recv_until(sock, b"</stream:features>")
    creds = base64.b64encode(b"\0alice\0alice-secret")
    sock.sendall(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
                 creds + b"</auth>")
    if b"success" not in recv_until(sock, b"success|failure"):
        sys.exit("authentication failed")
    sock.sendall(HEADER)
    recv_until(sock, b"</stream:features>")
    return sock


def main():
    args = [a for a in sys.argv[1:] if a != "--control"]
    control = "--control" in sys.argv
    if len(args) != 2:
        sys.exit(__doc__)
    directory, port = args[0], int(args[1])
    ctx = ssl.create_default_context(cafile=directory + "/ca.pem")

    first = login(port, ctx)
    first.sendall(b"<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
    recv_until(first, b"</iq>")
    first.sendall(b"<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
    match = re.search(rb"<enabled[^>]* id=['\"]([^'\"]+)", recv_until(first, b"<enabled[^>]*>"))
    if match is None:
        sys.exit("stream management was not enabled")
    sm_id = match.group(1)
    if not control:
        # The connection dies with part of a stanza at the server.
        first.sendall(b"<message to='bob@localhost' id='cut")
    time.sleep(0.5)
    first.close()
    time.sleep(0.5)

    second = login(port, ctx)
    second.sendall(b"<resume xmlns='urn:xmpp:sm:3' h='0' previd='" + sm_id + b"'/>")
    if b"<resumed" not in recv_until(second, b"resumed|failed"):
        sys.exit("the session was not resumed")
    second.sendall(b"<message to='bob@localhost' id='whole'><body>well-formed</body></message>"
                   b"<r xmlns='urn:xmpp:sm:3'/>")
    answer = recv_until(second, b"</stream:stream>|<a [^>]*h='1'", 3)
    if b"not-well-formed" in answer:
        print("BUG: a well-formed stanza on the resumed stream got not-well-formed")
        return 1
    print("OK: the resumed stream accepted the stanza")
    return 0


if __name__ == "__main__":
    sys.exit(main())
