#!/usr/bin/env python3
"""Reproduces the Prosody 13 fault behind the soak's smacks queue setting
(tests/soak/soak.c, tests/servers/prosody.sh).

When a <resume/> fails on a session the server still holds (its queue of
unacknowledged stanzas overflowed smacks_max_queue_size: resource-constraint;
or the client's h is out of range), mod_smacks 13.0.1 (do_resume) has
already cancelled that session's hibernation watchdog, and it neither
resumes nor closes it. The session stays bound, available and hibernating
for good: it never expires, what it queued is never delivered, and messages
to the bare JID keep going into it. Prosody 0.12.3 (handle_resume) closed
it, so its queue went to offline storage (or bounced) and reached the
client's next session. In both, a hibernating session's queue is a ring
(util.smqueue over util.queue with wrapping): beyond the limit, the oldest
stanzas are overwritten, acknowledged to their senders and never delivered.

  tests/servers/prosody.sh start DIR PORT PORT+1 5
  tests/soak/prosody_orphaned_session.py DIR PORT     # prints BUG or OK
  tests/servers/prosody.sh stop DIR

alice enables resumption and goes away; bob sends N messages (default 510;
--count N) to her bare JID; alice's <resume/> fails; she starts a new
session. The script then waits past the hibernation time (5 s above) and
checks whether the old session still exists: bob sends one message to its
full JID, which reaches the new session only if the old one is gone.
Exits 1 (BUG) if the old session outlived its hibernation time, 0 if not.
Prints how many of the N messages reached the new session. Debian's
prosody 13.0.1 prints BUG.
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


def login(port, ctx, user):
    """STARTTLS and SASL PLAIN; returns the TLS socket, stream open."""
    raw = socket.create_connection(("127.0.0.1", port))
    raw.sendall(HEADER)
    recv_until(raw, b"</stream:features>")
    raw.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    recv_until(raw, b"proceed")
    sock = ctx.wrap_socket(raw, server_hostname="localhost")
    sock.sendall(HEADER)
    recv_until(sock, b"</stream:features>")
    creds = base64.b64encode(b"\0" + user + b"\0" + user + b"-secret")
    sock.sendall(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
                 creds + b"</auth>")
    if b"success" not in recv_until(sock, b"success|failure"):
        sys.exit("authentication failed")
    sock.sendall(HEADER)
    recv_until(sock, b"</stream:features>")
    return sock


def bind(sock):
    sock.sendall(b"<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
    match = re.search(rb"<jid>([^<]+)</jid>", recv_until(sock, b"</iq>"))
    if match is None:
        sys.exit("bind failed")
    return match.group(1)


def fence(sock, ident):
    """An iq ping: the server handled everything sent before when it answers."""
    sock.sendall(b"<iq type='get' to='localhost' id='" + ident +
                 b"'><ping xmlns='urn:xmpp:ping'/></iq>")
    return recv_until(sock, b"id=['\"]" + ident + b"['\"]", 10)


def main():
    args = sys.argv[1:]
    count = 510
    if "--count" in args:
        i = args.index("--count")
        count = int(args[i + 1])
        del args[i:i + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    directory, port = args[0], int(args[1])
    ctx = ssl.create_default_context(cafile=directory + "/ca.pem")
    hibernation = 5
    match = re.search(r"smacks_hibernation_time\s*=\s*(\d+)",
                      open(directory + "/prosody.cfg.lua").read())
    if match:
        hibernation = int(match.group(1))

    # alice: available, resumable, then gone (the server hibernates her session).
    alice = login(port, ctx, b"alice")
    old_jid = bind(alice)
    alice.sendall(b"<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
    match = re.search(rb"<enabled[^>]* id=['\"]([^'\"]+)", recv_until(alice, b"<enabled[^>]*>"))
    if match is None:
        sys.exit("stream management was not enabled")
    sm_id = match.group(1)
    alice.sendall(b"<presence/>")
    recv_until(alice, b"<presence")
    alice.close()
    time.sleep(0.5)

    # bob: N messages to alice's bare JID, all handled when the ping returns.
    bob = login(port, ctx, b"bob")
    bind(bob)
    for i in range(count):
        bob.sendall(b"<message to='alice@localhost' type='chat' id='o-%d'><body>o-%d</body>"
                    b"</message>" % (i, i))
    fence(bob, b"f1")

    # alice again: the resumption fails; a new session, available.
    alice = login(port, ctx, b"alice")
    alice.sendall(b"<resume xmlns='urn:xmpp:sm:3' h='0' previd='" + sm_id + b"'/>")
    answer = recv_until(alice, b"<resumed|</failed>|<failed[^>]*/>")
    if b"<failed" not in answer:
        sys.exit("the resumption did not fail (count too small for smacks_max_queue_size?)")
    cond = re.search(rb"<failed.*?<([a-z-]+) xmlns=['\"]urn:ietf:params:xml:ns:xmpp-stanzas",
                     answer, re.S)
    new_jid = bind(alice)
    alice.sendall(b"<presence/>")
    got = fence(alice, b"f2")
    time.sleep(1)
    got += recv_until(alice, b"$^", 1)

    # Past the hibernation time: is the old session still there?
    time.sleep(hibernation + 2)
    bob.sendall(b"<message to='" + old_jid + b"' type='chat' id='probe'><body>probe</body>"
                b"</message>")
    fence(bob, b"f3")
    got += recv_until(alice, b"id=['\"]probe['\"]", 3)

    delivered = len(set(re.findall(rb"<body>(o-\d+)</body>", got)))
    old_presence = b"from='" + old_jid + b"'" in got or b'from="' + old_jid + b'"' in got
    print("resumption failed: %s; old session %s, new session %s" %
          (cond.group(1).decode() if cond else "no condition", old_jid.decode(),
           new_jid.decode()))
    print("the new session saw the old one available: %s" % ("yes" if old_presence else "no"))
    print("messages sent to the bare JID while away: %d, delivered to the new session: %d" %
          (count, delivered))
    if b"id='probe'" in got or b'id="probe"' in got:
        print("OK: the old session is gone (a message to its full JID reached the new session)")
        return 0
    print("BUG: %d s after the failed resumption (hibernation time %d s) the old session "
          "still exists: a message to its full JID went into it, not to the new session" %
          (hibernation + 3, hibernation))
    return 1


if __name__ == "__main__":
    sys.exit(main())
