#!/usr/bin/env python3
"""A TLS server peer for tests/test_tls.c, on Python's ssl module (OpenSSL).

It listens on 127.0.0.1 on a port the kernel picks, prints "PORT <n>" on
stdout, then serves --accept connections one after the other:

  1. with --starttls, a plaintext exchange first: it sends "HELLO plaintext\\n",
     expects "STARTTLS\\n", answers "PROCEED\\n", then starts TLS on the same
     connection (as XMPP does, RFC 6120 §5.4);
  2. the TLS handshake (server side), TLS 1.2 at most so that tls-unique is
     defined;
  3. it reports, over TLS, what the server side sees:
       "sni <name>"                   the SNI the client sent ("-" if none)
       "tls-unique <hex>"             RFC 5929, the server's view
       "exporter <hex>"               RFC 9266 tls-exporter (zero-length
                                      context), computed here from the key
                                      log, or "exporter -" without the
                                      extended master secret
       "exporter-nocontext <hex>"     the same without a context (RFC 5705)
  4. then echoes: each line L comes back as "echo L"; "BYE" gets a
     close_notify; with --truncate, the first line gets half a TLS record and
     the connection is closed.

With --close-early it closes the connection after reading the ClientHello,
without answering. --no-ems turns the extended master secret off.
Errors in a connection (the client refusing the certificate, for example)
are printed on stderr and the next connection is served.
"""

import argparse
import hmac
import socket
import ssl
import sys

# OpenSSL 3.0: SSL_OP_NO_EXTENDED_MASTER_SECRET is SSL_OP_BIT(0).
OP_NO_EXTENDED_MASTER_SECRET = 0x1


def p_hash(hash_name, secret, seed, length):
    """RFC 5246 §5: P_hash(secret, seed)."""
    out = b""
    a = seed
    while len(out) < length:
        a = hmac.new(secret, a, hash_name).digest()
        out += hmac.new(secret, a + seed, hash_name).digest()
    return out[:length]


def exporter(hash_name, master, client_random, server_random, context):
    """RFC 5705 §4: PRF(master, label, client_random + server_random
    [+ context_length + context])."""
    seed = client_random + server_random
    if context is not None:
        seed += len(context).to_bytes(2, "big") + context
    return p_hash(hash_name, master, b"EXPORTER-Channel-Binding" + seed, 32)


class Conn:
    def __init__(self, sock, ctx):
        self.sock = sock
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.first_flight = b""
        self.first_in = b""
        self.buf = b""

    def flush(self):
        data = self.outgoing.read()
        if data:
            if not self.first_flight:
                self.first_flight = data
            self.sock.sendall(data)

    def fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("client closed the connection")
        if len(self.first_in) < 43:
            self.first_in += chunk
        self.incoming.write(chunk)

    def handshake(self):
        while True:
            try:
                self.tls.do_handshake()
                self.flush()
                return
            except ssl.SSLWantReadError:
                self.flush()
                self.fill()

    def send(self, data):
        self.tls.write(data)
        self.flush()

    def readline(self):
        while b"\n" not in self.buf:
            try:
                self.buf += self.tls.read(65536)
            except ssl.SSLWantReadError:
                self.flush()
                self.fill()
            except ssl.SSLZeroReturnError:
                return None
        line, self.buf = self.buf.split(b"\n", 1)
        return line


def plain_readline(sock):
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise EOFError("client closed during the plaintext exchange")
        data += chunk
    return data


def hello_random(flight, msg_type):
    # RFC 5246: record header (5), handshake header (4), version (2), then
    # the 32-byte random of the ClientHello (1) or ServerHello (2).
    if len(flight) < 43 or flight[0] != 22 or flight[5] != msg_type:
        raise ValueError("first flight is not a hello")
    return flight[11:43]


def keylog_master(path, client_random_hex):
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "CLIENT_RANDOM":
                if parts[1].lower() == client_random_hex:
                    return bytes.fromhex(parts[2])
    return None


def serve(conn_sock, ctx, args, sni):
    conn_sock.settimeout(20)
    if args.starttls:
        conn_sock.sendall(b"HELLO plaintext\n")
        if plain_readline(conn_sock) != b"STARTTLS\n":
            raise ValueError("expected STARTTLS")
        conn_sock.sendall(b"PROCEED\n")
    if args.close_early:
        conn_sock.recv(65536)
        return
    c = Conn(conn_sock, ctx)
    c.handshake()

    cb = c.tls.get_channel_binding("tls-unique")
    lines = [b"sni " + (sni[0] or "-").encode()]
    lines.append(b"tls-unique " + cb.hex().encode())
    exp, exp_nc = b"-", b"-"
    if not args.no_ems:
        # The key log names each master secret by the client random.
        client_random = hello_random(c.first_in, 1)
        srv = hello_random(c.first_flight, 2)
        hash_name = "sha384" if c.tls.cipher()[0].endswith("SHA384") else "sha256"
        master = keylog_master(args.keylog, client_random.hex())
        if master is None:
            raise ValueError("no key log entry for this connection")
        exp = exporter(hash_name, master, client_random, srv, b"").hex().encode()
        exp_nc = exporter(hash_name, master, client_random, srv, None).hex().encode()
    lines.append(b"exporter " + exp)
    lines.append(b"exporter-nocontext " + exp_nc)
    c.send(b"".join(l + b"\n" for l in lines))

    while True:
        line = c.readline()
        if line is None:
            return
        if args.truncate:
            c.tls.write(b"x" * 200)
            record = c.outgoing.read()
            conn_sock.sendall(record[: len(record) // 2])
            return
        if line == b"BYE":
            try:
                c.tls.unwrap()
            except ssl.SSLWantReadError:
                pass
            c.flush()
            return
        c.send(b"echo " + line + b"\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--keylog", required=True)
    ap.add_argument("--accept", type=int, default=1)
    ap.add_argument("--starttls", action="store_true")
    ap.add_argument("--no-ems", action="store_true")
    ap.add_argument("--truncate", action="store_true")
    ap.add_argument("--close-early", action="store_true")
    args = ap.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.keylog_filename = args.keylog
    if args.no_ems:
        ctx.options |= OP_NO_EXTENDED_MASTER_SECRET
    sni = [None]

    def on_sni(sslobj, name, sslctx):
        sni[0] = name

    ctx.sni_callback = on_sni

    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    print("PORT", srv.getsockname()[1], flush=True)
    for _ in range(args.accept):
        conn_sock, _ = srv.accept()
        sni[0] = None
        try:
            serve(conn_sock, ctx, args, sni)
        except (OSError, EOFError, ValueError, ssl.SSLError) as e:
            print("tls_peer: connection failed:", e, file=sys.stderr, flush=True)
        finally:
            conn_sock.close()
    srv.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
