#!/usr/bin/env python3
"""Run the xmppuv benchmarks and print one markdown table.

Every run starts a fresh bench-server, runs one client to the end, measures
the client process (os.wait4: user+sys CPU, peak RSS; the client also
reports the CPU of its measured phase), stops the server (SIGTERM: it
prints its own CPU time and what it verified) and checks the result.
Clients of one repetition run back to back (paired with the expat baseline
of the same repetition); figures are medians over the repetitions, and
ratios are medians of the per-repetition ratios.

    bench/run.py --build build-bench            # the full run (README table)
    bench/run.py --build build-bench --smoke    # every workload once, small N
    bench/run.py --build build-bench --ws --workloads firehose,burst --no-tls
                                                # xmppuv over TCP vs WebSocket

Exit status: 0, or 1 if a run failed or a verification did not hold (xmpp.js'
known h miscount is reported, not fatal)."""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

failures = []


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---- processes ----------------------------------------------------------------


def start_server(build, mode, certs, n=None, extra=(), ws=False):
    args = [os.path.join(build, "bench", "bench-server"), "--mode", mode]
    if n is not None:
        args += ["--n", str(n)]
    if certs:
        args += ["--tls", certs["cert"], certs["key"]]
    if ws:
        args += ["--ws"]
    args += list(extra)
    err = tempfile.TemporaryFile()
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True)
    line = p.stdout.readline()
    m = re.match(r"PORT (\d+)", line)
    if not m:
        p.kill()
        p.wait()
        err.seek(0)
        raise RuntimeError("bench-server did not start: " + err.read().decode(errors="replace"))
    return p, int(m.group(1)), err


def stop_server(p, err):
    p.send_signal(signal.SIGTERM)
    try:
        out, _ = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    err.close()
    m = re.search(r"^SERVER (.*)$", out or "", re.M)
    return parse_kv(m.group(1)) if m else {}


def parse_kv(text):
    out = {}
    for tok in text.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = v
    return out


def run_client(argv, env=None, timeout=600):
    """Run to the end; return (RESULT fields, rusage, stderr text)."""
    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    p = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
    deadline = time.monotonic() + timeout
    status, ru = None, None
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            break
        if time.monotonic() > deadline:
            p.kill()
            _, status, ru = os.wait4(p.pid, 0)
            break
        time.sleep(0.005)
    p.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    err.seek(0)
    text = out.read().decode(errors="replace")
    etext = err.read().decode(errors="replace")
    out.close()
    err.close()
    m = re.search(r"^(RESULT|SKIP) (.*)$", text, re.M)
    res = parse_kv(m.group(2)) if m else None
    if res is not None and m.group(1) == "SKIP":
        res["skip"] = 1
    if p.returncode != 0:
        res = None
    return res, ru, etext.strip()


# ---- clients ------------------------------------------------------------------


def client_argv(build, client, workload, port, tls_ca, n=None, m=None, settle_ms=None, ws=False,
                parallel=None):
    bench = os.path.join(build, "bench")
    if client in ("expat", "raw"):
        argv = [os.path.join(bench, "bench-baseline"), "--parser", client]
    elif client == "xmppuv":
        argv = [os.path.join(bench, "bench-xmppuv")]
    elif client == "strophe":
        argv = [os.path.join(bench, "bench-strophe")]
    elif client == "xmppjs":
        argv = ["node", os.path.join(HERE, "xmppjs", "bench.mjs")]
    else:
        raise ValueError(client)
    if ws:
        if client != "xmppuv":
            raise ValueError(f"{client}: no WebSocket client")
        argv += ["--workload", workload, "--url", f"ws://127.0.0.1:{port}/ws"]
    else:
        argv += ["--workload", workload, "--port", str(port)]
    if n is not None:
        argv += ["--n", str(n)]
    if m is not None:
        argv += ["--m", str(m)]
    if settle_ms is not None:
        argv += ["--settle-ms", str(settle_ms)]
    if parallel is not None:
        argv += ["--parallel", str(parallel)]
    if client == "xmppuv" and workload == "idle":
        # Memory and set-up cost, not the time-out policy: 10,000 STARTTLS
        # handshakes at once take the one-thread bench server longer than
        # the library's 30 s negotiation time-out (bench/README.md).
        argv += ["--timeouts-ms", "600000"]
    if tls_ca:
        argv += ["--tls", tls_ca]
    return argv


def available_clients(build, want_peers):
    clients = ["expat", "raw", "xmppuv"]
    notes = []
    if want_peers:
        if os.path.exists(os.path.join(build, "bench", "bench-strophe")):
            clients.append("strophe")
        else:
            notes.append("libstrophe: not measured (libstrophe-dev was not installed at configure time)")
        if shutil.which("node") and os.path.isdir(
                os.path.join(HERE, "xmppjs", "node_modules", "@xmpp", "client")):
            clients.append("xmppjs")
        else:
            notes.append("xmpp.js: not measured (needs node and `npm ci` in bench/xmppjs)")
    return clients, notes


# ---- certificates -----------------------------------------------------------------


def make_certs(d):
    """A CA and a leaf for bench.example (EC P-256), with openssl."""
    def run(*args, **kw):
        subprocess.run(args, cwd=d, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, **kw)
    with open(os.path.join(d, "leaf.ext"), "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:bench.example\n")
    run("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key")
    run("openssl", "req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=xmppuv bench CA",
        "-days", "30", "-sha256", "-out", "ca.pem")
    run("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "leaf.key")
    run("openssl", "req", "-new", "-key", "leaf.key", "-subj", "/CN=bench.example",
        "-out", "leaf.csr")
    run("openssl", "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "30", "-sha256", "-extfile", "leaf.ext", "-out", "leaf.pem")
    return {"ca": os.path.join(d, "ca.pem"), "cert": os.path.join(d, "leaf.pem"),
            "key": os.path.join(d, "leaf.key")}


# ---- one measured run -----------------------------------------------------------------


def one_run(args, client, workload, tls, certs, n=None, m=None, ws=False, parallel=None):
    extra = []
    settle = None
    if workload == "idle":
        extra = ["--idle-r-ms", str(args.idle_r_ms)]
        settle = args.settle_ms
    server, port, serr = start_server(args.build, workload, certs if tls else None,
                                      n if workload == "firehose" else None, extra, ws=ws)
    env = dict(os.environ)
    if tls and client == "xmppjs":
        env["NODE_EXTRA_CA_CERTS"] = certs["ca"]
    try:
        res, ru, etext = run_client(
            client_argv(args.build, client, workload, port, certs["ca"] if tls else None,
                        n=n, m=m, settle_ms=settle, ws=ws, parallel=parallel),
            env=env, timeout=args.timeout)
    finally:
        srv = stop_server(server, serr)
    label = (f"{workload}{' ' + str(m) if m else ''}{' parallel ' + str(parallel) if parallel else ''}"
             f" {'ws' if ws else 'tls' if tls else 'tcp'} {client}")
    if res is None:
        failures.append(f"{label}: the client failed: {etext[-400:]}")
        log(f"  FAILED {label}: {etext[-400:]}")
        return None
    if res.get("skip"):
        return res
    res["peak_rss_kb"] = ru.ru_maxrss
    res["proc_cpu_s"] = ru.ru_utime + ru.ru_stime
    res["server_cpu_s"] = srv.get("cpu_s", float("nan"))
    # Verification: what the server saw must match what the client claims.
    ok, why = True, ""
    if workload == "firehose":
        ok = srv.get("fh_verified", 0) >= 1
        why = f"server saw max <a h='{int(srv.get('max_a_h', 0))}'/>, want {n}"
    elif workload == "burst":
        ok = srv.get("stanzas_in", 0) >= n and res.get("n") == n
        why = f"server counted {int(srv.get('stanzas_in', 0))}, client acks {res.get('n')}"
    elif workload == "idle":
        ok = res.get("online") == m and srv.get("answered", 0) >= m
        why = f"online {res.get('online')}, answered <r/> {int(srv.get('answered', 0))} of {m}"
    elif workload == "resume":
        ok = srv.get("resumed", 0) >= n and res.get("n") == n
        why = f"server resumed {int(srv.get('resumed', 0))} of {n}"
    res["verified"] = ok
    if not ok:
        res["verify_note"] = why
        if client != "xmppjs":
            failures.append(f"{label}: verification failed: {why}")
        log(f"  not verified: {label}: {why}")
    return res


def storm_run(args, build):
    """The reconnect storm (bench-storm against bench-server --mode storm):
    a fresh server offering SCRAM-SHA-256, N clients on one loop."""
    server, port, serr = start_server(
        args.build, "storm", None, args.storm_clients,
        ["--scram", str(args.storm_iterations), "--storms", "1"])
    try:
        res, ru, etext = run_client(
            [os.path.join(build, "bench", "bench-storm"), "--port", str(port),
             "--clients", str(args.storm_clients)], timeout=args.timeout)
    finally:
        srv = stop_server(server, serr)
    label = f"storm {args.storm_clients} ({build})"
    if res is None:
        failures.append(f"{label}: the client failed: {etext[-400:]}")
        log(f"  FAILED {label}: {etext[-400:]}")
        return None
    n = args.storm_clients
    ok = (res.get("resumed", 0) + res.get("online", 0) >= n and srv.get("storms", 0) >= 1 and
          srv.get("scram_bad", 1) == 0 and res.get("fails", 1) == 0)
    res["verified"] = ok
    if not ok:
        why = (f"resumed {res.get('resumed')} + online {res.get('online')} of {n}, "
               f"storms {srv.get('storms')}, bad proofs {srv.get('scram_bad')}")
        res["verify_note"] = why
        failures.append(f"{label}: verification failed: {why}")
    return res


def rtt_run(args):
    """Round trips of the login and of a reconnection against the real
    servers, through a proxy that adds args.rtt_ms (bench-rtt, rtt.c). Built
    only where Check is (it uses the tests' server starter): else skipped."""
    exe = os.path.join(args.build, "bench", "bench-rtt")
    if args.smoke or not os.path.exists(exe):
        log("rtt: skipped" + ("" if args.smoke else " (bench-rtt not built: needs Check)"))
        return []
    log(f"rtt: {args.reps} runs per path, RTT {args.rtt_ms} ms, Prosody and ejabberd")
    env = dict(os.environ, XMPPUV_SOURCE_ROOT=ROOT)
    p = subprocess.run([exe, "--rtt", str(args.rtt_ms), "--runs", str(args.reps)],
                       capture_output=True, text=True, env=env, timeout=args.timeout * 6)
    if p.returncode != 0:
        log(f"rtt: failed: {p.stderr.strip()[-300:]}")
    lines = [l for l in p.stdout.splitlines()]
    return ["Round trips (bench-rtt): " + lines[0]] + lines[1:] if lines else []


def storm_server_run(args):
    """The reconnect storm against a real server (bench-storm-server,
    storm_server.c): 1000 clients over STARTTLS on ejabberd, the server
    killed and started again under them. Built only where Check is; skipped
    in --smoke (a real server and a minute). Writes bench/storm-server.png
    (and its data, bench/storm-server.dat)."""
    exe = os.path.join(args.build, "bench", "bench-storm-server")
    if args.smoke or not os.path.exists(exe):
        log("storm-server: skipped" +
            ("" if args.smoke else " (bench-storm-server not built: needs Check)"))
        return []
    png = os.path.join(HERE, "storm-server.png")
    log(f"storm-server: {args.storm_clients} clients, ejabberd restarted under them")
    env = dict(os.environ, XMPPUV_SOURCE_ROOT=ROOT)
    p = subprocess.run([exe, "--clients", str(args.storm_clients), "--plot", png],
                       capture_output=True, text=True, env=env, timeout=args.timeout * 2)
    line = next((l for l in p.stdout.splitlines() if l.startswith("RESULT")), None)
    if p.returncode != 0 or line is None:
        why = p.stderr.strip()[-400:] or (line or "no RESULT")[:400]
        failures.append(f"storm-server: {why}")
        log(f"  FAILED storm-server: {why}")
        if line is None:
            return []
    r = parse_kv(line)
    n = int(r["clients"])
    gave_up = int(r["gave_up"] + r["fatal"] + r["offline_end"])
    return [
        f"Reconnect storm against a real server (bench-storm-server): {n} clients on one loop, "
        f"{r['server']} over {r['tls'].upper()} with the test CA, the library's defaults "
        f"(SASL2, FAST, SM; reconnect 1 s doubling, ±20 % jitter) and "
        f"sm_resend_on_failed={int(r['resend_on_failed'])}; the server killed at t = 0 and "
        f"answering again at {r['server_ready_s']:.2f} s:",
        "",
        "| clients | s to all online (from the kill / from the server back) | "
        "longest iteration ms (CPU ms) | attempts per 100 ms: max, stddev | "
        "first attempt: mean s, stddev ms | onlines / resumed | acks / fails of sent | "
        "gave up |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {n} | {r['online_s']:.2f} / {r['online_after_ready_s']:.2f} | "
        f"{r['max_iter_ms']:.1f} ({r['max_iter_cpu_ms']:.1f}) | "
        f"{int(r['attempts_bin_max'])}, {r['attempts_bin_sd']:.1f} | "
        f"{r['first_attempt_mean_s']:.2f}, {r['first_attempt_sd_ms']:.0f} | "
        f"{int(r['onlines'])} / {int(r['resumed'])} | "
        f"{int(r['acks'])} / {int(r['fails'])} of {int(r['sent'])} | {gave_up} |",
        "",
        f"Attempts {int(r['attempts'])} (refused {int(r['refused'])}); errors {r['errors']}; "
        f"server CPU {r['server_cpu_s']:.1f} s; plot: "
        f"{os.path.relpath(png, ROOT) if r['plot'] != 'none' else 'none (gnuplot missing?)'}.",
    ]


def storm_table(results):
    lines = ["| library build | clients | first logins: s | longest iteration ms (CPU ms) | "
             "storm: s to all resumed | longest iteration ms (CPU ms) | loop CPU s | verified |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for build, runs in results.items():
        runs = [r for r in runs if r]
        if not runs:
            continue
        ver = "yes" if all(r["verified"] for r in runs) else "no: " + runs[0].get("verify_note", "")
        lines.append(
            f"| {os.path.basename(os.path.normpath(build))} | {int(runs[0]['clients'])} | "
            f"{fmt(med([r['login_s'] for r in runs]), '.2f')} | "
            f"{fmt(med([r['login_max_iter_ms'] for r in runs]), '.1f')} "
            f"({fmt(med([r['login_max_iter_cpu_ms'] for r in runs]), '.1f')}) | "
            f"{fmt(med([r['storm_s'] for r in runs]), '.2f')} | "
            f"{fmt(med([r['storm_max_iter_ms'] for r in runs]), '.1f')} "
            f"({fmt(med([r['storm_max_iter_cpu_ms'] for r in runs]), '.1f')}) | "
            f"{fmt(med([r['loop_cpu_s'] for r in runs]), '.2f')} | {ver} |")
    return lines


# ---- tables ------------------------------------------------------------------------------


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


def stanza_table(results, clients, workloads, tls_modes, n_of):
    lines = ["| workload | transport | client | CPU-s / 100k stanzas | × expat | stanzas/s | "
             "peak RSS (MB) | allocs / stanza | server CPU / client CPU | verified |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for w in workloads:
        for tls in tls_modes:
            reps = results.get((w, tls))
            if not reps:
                continue
            for c in clients:
                runs = [r.get(c) for r in reps]
                runs = [r for r in runs if r]
                if not runs:
                    continue
                n = n_of[w]
                cpu = med([r["cpu_s"] * 100000.0 / n for r in runs])
                rate = med([n / r["wall_s"] if r["wall_s"] > 0 else None for r in runs])
                ratios = []
                for r in reps:
                    if r.get(c) and r.get("expat") and r["expat"]["cpu_s"] > 0:
                        ratios.append(r[c]["cpu_s"] / r["expat"]["cpu_s"])
                ratio = med(ratios)
                rss = med([r["peak_rss_kb"] / 1024.0 for r in runs])
                allocs = med([r.get("allocs_per_stanza") for r in runs])
                srv = med([r["server_cpu_s"] / r["proc_cpu_s"] if r["proc_cpu_s"] > 0 else None
                           for r in runs])
                ver = "yes" if all(r["verified"] for r in runs) else \
                    "no: " + runs[0].get("verify_note", "")
                lines.append(
                    f"| {w} | {'STARTTLS' if tls else 'TCP'} | {c} | {fmt(cpu, '.4f')} | "
                    f"{fmt(ratio, '.2f')} | {fmt(rate, ',.0f')} | {fmt(rss, '.1f')} | "
                    f"{fmt(allocs, '.2f') if allocs is not None else '–'} | {fmt(srv, '.2f')} | {ver} |")
    return lines


def idle_runs(ms, args):
    """(M, parallel) pairs: every M all at once (parallel 0), then below
    10,000 staggered (at most args.idle_staggered negotiating at a time) as
    a second row."""
    out = []
    for m in ms:
        out.append((m, 0))
        if args.idle_staggered > 0 and m < 10000:
            out.append((m, args.idle_staggered))
    return out


def idle_table(results, clients, idle_ms, tls_modes, args):
    lines = ["| idle connections | started | transport | client | RSS KB / connection | × expat | "
             "live heap KB / connection | set-up CPU ms / connection | peak RSS (MB) | verified |",
             "|---:|---|---|---|---:|---:|---:|---:|---:|---|"]
    for m in idle_ms:
        for tls in tls_modes:
            for _, par in idle_runs([m], args):
                reps = results.get((f"idle{m}/{par}", tls))
                if not reps:
                    continue
                how = "all at once" if par == 0 else f"{par} at a time"
                tr = "STARTTLS" if tls else "TCP"
                for c in clients:
                    runs = [r.get(c) for r in reps]
                    skips = [r for r in runs if r and r.get("skip")]
                    runs = [r for r in runs if r and not r.get("skip")]
                    if skips and not runs:
                        lines.append(f"| {m} | {how} | {tr} | {c} | skipped: "
                                     f"{skips[0].get('reason', '')} | | | | | |")
                        continue
                    if not runs:
                        continue
                    kb = med([r["kb_per_conn"] for r in runs])
                    ratios = []
                    for r in reps:
                        x, e = r.get(c), r.get("expat")
                        if x and e and not x.get("skip") and e.get("kb_per_conn", 0) > 0:
                            ratios.append(x["kb_per_conn"] / e["kb_per_conn"])
                    heap = [r["heap_kb_per_conn"] for r in runs if "heap_kb_per_conn" in r]
                    setup = [r["setup_cpu_ms_per_conn"] for r in runs
                             if "setup_cpu_ms_per_conn" in r]
                    rss = med([r["peak_rss_kb"] / 1024.0 for r in runs])
                    ver = "yes" if all(r["verified"] for r in runs) else \
                        "no: " + runs[0].get("verify_note", "")
                    lines.append(f"| {m} | {how} | {tr} | {c} | {fmt(kb, '.2f')} | "
                                 f"{fmt(med(ratios), '.2f')} | "
                                 f"{fmt(med(heap), '.2f') if heap else '–'} | "
                                 f"{fmt(med(setup), '.3f') if setup else '–'} | "
                                 f"{fmt(rss, '.1f')} | {ver} |")
    return lines


def queue_runs(args):
    """Bytes per stanza held in the SM queue (bench-xmppuv --workload queue:
    messages sent while connecting, no server), at a few queue lengths."""
    rows = []
    for n in (256, 4096, 65536):
        reps = []
        for _ in range(args.reps):
            res, ru, etext = run_client(
                [os.path.join(args.build, "bench", "bench-xmppuv"), "--workload", "queue",
                 "--n", str(n)], timeout=args.timeout)
            if res is None:
                failures.append(f"queue {n}: the client failed: {etext[-400:]}")
                return []
            reps.append(res)
        rows.append((n, reps))
    lines = ["| stanzas queued | bytes / stanza (process heap) | of which the library's | "
             "allocations / stanza |", "|---:|---:|---:|---:|"]
    for n, reps in rows:
        lines.append(f"| {n} | {fmt(med([r['bytes_per_stanza'] for r in reps]), '.0f')} | "
                     f"{fmt(med([r['lib_bytes_per_stanza'] for r in reps]), '.0f')} | "
                     f"{fmt(med([r['allocs_per_stanza'] for r in reps]), '.3f')} |")
    return lines


def resume_table(results, clients, tls_modes):
    lines = ["| resume | transport | client | ms reset → resumed (median) | min | max | "
             "CPU ms / resume | verified |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for tls in tls_modes:
        reps = results.get(("resume", tls))
        if not reps:
            continue
        for c in clients:
            runs = [r.get(c) for r in reps]
            runs = [r for r in runs if r]
            if not runs:
                continue
            ver = "yes" if all(r["verified"] for r in runs) else \
                "no: " + runs[0].get("verify_note", "")
            lines.append(
                f"| resume | {'STARTTLS' if tls else 'TCP'} | {c} | "
                f"{fmt(med([r['resume_ms_median'] for r in runs]), '.3f')} | "
                f"{fmt(min(r['resume_ms_min'] for r in runs), '.3f')} | "
                f"{fmt(max(r['resume_ms_max'] for r in runs), '.3f')} | "
                f"{fmt(med([r['cpu_ms_per_resume'] for r in runs]), '.3f')} | {ver} |")
    return lines


def tls_cost_table(results, clients, workloads, n_of):
    lines = ["| workload | client | CPU-s / 100k, TCP | CPU-s / 100k, STARTTLS | TLS cost "
             "(CPU-s / 100k) |", "|---|---|---:|---:|---:|"]
    for w in workloads:
        for c in clients:
            vals = []
            for tls in (False, True):
                runs = [r.get(c) for r in results.get((w, tls), [])]
                runs = [r for r in runs if r]
                vals.append(med([r["cpu_s"] * 100000.0 / n_of[w] for r in runs]))
            if vals[0] is None or vals[1] is None:
                continue
            lines.append(f"| {w} | {c} | {vals[0]:.4f} | {vals[1]:.4f} | {vals[1] - vals[0]:.4f} |")
    return lines


# ---- callgrind -----------------------------------------------------------------------------


def callgrind_ir(args, client, workload, n, outdir, ws=False):
    server, port, serr = start_server(args.build, workload, None,
                                      n if workload == "firehose" else None, ws=ws)
    out = os.path.join(outdir, f"callgrind.{client}.{workload}.{n}{'.ws' if ws else ''}")
    try:
        argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"] + \
            client_argv(args.build, client, workload, port, None, n=n, ws=ws)
        res, _, etext = run_client(argv, timeout=args.timeout * 4)
    finally:
        stop_server(server, serr)
    if res is None:
        failures.append(f"callgrind {client} {workload}: {etext[-300:]}")
        return None, out
    with open(out) as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1]), out
    return None, out


def callgrind_table(args, outdir):
    """Instructions per stanza, from two runs (N1, N2): (Ir2 - Ir1) / (N2 - N1)
    cancels start-up and negotiation."""
    n1, n2 = args.cg_n1, args.cg_n2
    lines = ["| workload | client | instructions / stanza | × expat |", "|---|---|---:|---:|"]
    top = {}
    for w in ("firehose", "burst"):
        per = {}
        for c in ("expat", "xmppuv"):
            a, _ = callgrind_ir(args, c, w, n1, outdir)
            b, out2 = callgrind_ir(args, c, w, n2, outdir)
            if a is None or b is None:
                continue
            per[c] = (b - a) / (n2 - n1)
            if c == "xmppuv":
                top[w] = out2
        for c in ("expat", "xmppuv"):
            if c in per:
                ratio = per[c] / per["expat"] if per.get("expat") else None
                lines.append(f"| {w} | {c} | {per[c]:,.0f} | {fmt(ratio, '.2f')} |")
    return lines, top


def ws_runs(args, workloads):
    """firehose and burst with xmppuv over TCP and over WebSocket (bench-server
    --ws, the client's url ws://127.0.0.1:PORT/ws), back to back in each
    repetition."""
    results, n_of = {}, {}
    for w in workloads:
        if w not in ("firehose", "burst"):
            continue
        n = args.n_firehose if w == "firehose" else args.n_burst
        n_of[w] = n
        results[w] = []
        for rep in range(args.reps):
            row = {}
            for t in ("tcp", "ws"):
                log(f"[{rep + 1}/{args.reps}] {w} {t} xmppuv n={n}")
                r = one_run(args, "xmppuv", w, False, None, n=n, ws=(t == "ws"))
                if r:
                    row[t] = r
            results[w].append(row)
    return results, n_of


def ws_callgrind(args, workloads, outdir):
    """Instructions per stanza of xmppuv over TCP and WebSocket."""
    n1, n2 = args.cg_n1, args.cg_n2
    per = {}
    for w in workloads:
        if w not in ("firehose", "burst"):
            continue
        for t in ("tcp", "ws"):
            log(f"callgrind: {w} {t} xmppuv, N={n1} and N={n2}")
            a, _ = callgrind_ir(args, "xmppuv", w, n1, outdir, ws=(t == "ws"))
            b, _ = callgrind_ir(args, "xmppuv", w, n2, outdir, ws=(t == "ws"))
            if a is not None and b is not None:
                per[(w, t)] = (b - a) / (n2 - n1)
    return per


def ws_table(results, n_of, cg):
    lines = ["| workload | transport | seconds | stanzas/s | CPU-s / 100k stanzas | allocs / stanza | "
             "instructions / stanza | server CPU / client CPU | verified |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for w, reps in results.items():
        base = {}
        for t in ("tcp", "ws"):
            runs = [r.get(t) for r in reps]
            runs = [r for r in runs if r]
            if not runs:
                continue
            n = n_of[w]
            secs = med([r["wall_s"] for r in runs])
            rate = med([n / r["wall_s"] if r["wall_s"] > 0 else None for r in runs])
            cpu = med([r["cpu_s"] * 100000.0 / n for r in runs])
            allocs = med([r.get("allocs_per_stanza") for r in runs])
            srv = med([r["server_cpu_s"] / r["proc_cpu_s"] if r["proc_cpu_s"] > 0 else None
                       for r in runs])
            ir = cg.get((w, t))
            ver = "yes" if all(r["verified"] for r in runs) else \
                "no: " + runs[0].get("verify_note", "")
            lines.append(f"| {w} | {'WebSocket' if t == 'ws' else 'TCP'} | {fmt(secs, '.3f')} | "
                         f"{fmt(rate, ',.0f')} | {fmt(cpu, '.4f')} | {fmt(allocs, '.2f')} | "
                         f"{fmt(ir, ',.0f')} | {fmt(srv, '.2f')} | {ver} |")
            base[t] = (secs, cpu, ir)
        if "tcp" in base and "ws" in base:
            (s0, c0, i0), (s1, c1, i1) = base["tcp"], base["ws"]
            ratio = lambda a, b: fmt(b / a if a and b else None, '.2f') + "×"
            lines.append(f"| {w} | WS / TCP | {ratio(s0, s1)} | | {ratio(c0, c1)} | | "
                         f"{ratio(i0, i1) if i0 and i1 else ''} | | |")
    return lines


def callgrind_top(path, count=15):
    if not shutil.which("callgrind_annotate"):
        return []
    p = subprocess.run(["callgrind_annotate", "--inclusive=no", path], capture_output=True,
                       text=True)
    rows = []
    for line in p.stdout.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+(.*)$", line)
        if m and "PROGRAM TOTALS" not in line:
            fn = m.group(3)
            obj = re.search(r"\[(.*)\]$", fn)
            fn = re.sub(r"\s+\[.*\]$", "", fn)
            if fn.startswith("???") and obj:
                fn += " in " + os.path.basename(obj.group(1))
            rows.append(f"    {m.group(2):>6}%  {fn}")
        if len(rows) >= count:
            break
    return rows


# ---- versions --------------------------------------------------------------------------------


def sh(*argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def versions(build):
    v = {}
    try:
        with open(os.path.join(build, "meson-info", "intro-projectinfo.json")) as f:
            v["xmppuv"] = json.load(f)["version"]
    except OSError:
        v["xmppuv"] = "?"
    try:
        with open(os.path.join(build, "meson-info", "intro-buildoptions.json")) as f:
            opts = {o["name"]: o["value"] for o in json.load(f)}
            v["buildtype"] = opts.get("buildtype", "?")
    except OSError:
        v["buildtype"] = "?"
    v["libuv"] = sh("pkg-config", "--modversion", "libuv")
    v["expat"] = sh("pkg-config", "--modversion", "expat")
    v["mbedTLS"] = sh("dpkg-query", "-W", "-f=${Version}", "libmbedtls-dev")
    v["libstrophe"] = sh("pkg-config", "--modversion", "libstrophe") or "not installed"
    v["node"] = sh("node", "--version") or "not installed"
    try:
        with open(os.path.join(HERE, "xmppjs", "node_modules", "@xmpp", "client",
                               "package.json")) as f:
            v["@xmpp/client"] = json.load(f)["version"]
    except OSError:
        v["@xmpp/client"] = "not installed"
    v["cc"] = sh("cc", "--version").splitlines()[0] if sh("cc", "--version") else "?"
    return v


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs, {model}, Linux {platform.release()}"


# ---- main --------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--smoke", action="store_true",
                    help="every workload once at a small N (CI); no peers, no callgrind")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--workloads",
                    default="firehose,burst,idle,queue,resume,storm,rtt,storm-server")
    ap.add_argument("--rtt-ms", type=int, default=50,
                    help="rtt workload: the round-trip time the proxy adds")
    ap.add_argument("--clients", default=None, help="comma-separated subset")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--no-tls", action="store_true")
    ap.add_argument("--no-callgrind", action="store_true")
    ap.add_argument("--n-firehose", type=int, default=200000)
    ap.add_argument("--n-burst", type=int, default=200000)
    ap.add_argument("--n-peer-burst", type=int, default=50000,
                    help="burst N for libstrophe and xmpp.js (slow)")
    ap.add_argument("--idle-m", default="1000,10000")
    ap.add_argument("--idle-m-tls", default="1000,10000")
    ap.add_argument("--idle-big-reps", type=int, default=1,
                    help="idle: repetitions at M >= 10000 (a STARTTLS run takes minutes)")
    ap.add_argument("--idle-staggered", type=int, default=64,
                    help="idle: the second row's connections negotiating at a time "
                         "(0: no staggered row)")
    ap.add_argument("--n-resume", type=int, default=200)
    ap.add_argument("--settle-ms", type=int, default=2500)
    ap.add_argument("--storm-clients", type=int, default=1000)
    ap.add_argument("--storm-iterations", type=int, default=4096,
                    help="the server's SCRAM iteration count")
    ap.add_argument("--storm-builds", default=None,
                    help="comma-separated build directories whose bench-storm to compare "
                         "(e.g. an older version's); default: --build")
    ap.add_argument("--idle-r-ms", type=int, default=1000)
    ap.add_argument("--cg-n1", type=int, default=20000)
    ap.add_argument("--cg-n2", type=int, default=120000)
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--out", default=None, help="also write the markdown here")
    ap.add_argument("--ws", action="store_true",
                    help="firehose and burst: xmppuv only, over TCP and over WebSocket "
                         "(ws://, bench-server --ws), paired per repetition, instead of the "
                         "client matrix; with callgrind, instructions per stanza of both")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)

    if args.smoke:
        args.reps = 1
        args.no_peers = True
        args.no_callgrind = True
        args.n_firehose = args.n_burst = args.n_peer_burst = 2000
        args.idle_m = "20"
        args.idle_m_tls = "20"
        args.n_resume = 5
        args.storm_clients = 50
        args.settle_ms = 1200
        args.idle_r_ms = 400
        args.timeout = 120

    clients, notes = available_clients(args.build, not args.no_peers)
    if args.clients:
        want = args.clients.split(",")
        clients = [c for c in clients if c in want or c == "expat"]
    workloads = args.workloads.split(",")
    tls_modes = [False] if args.no_tls else [False, True]
    idle_m = [int(x) for x in args.idle_m.split(",") if x]
    idle_m_tls = [int(x) for x in args.idle_m_tls.split(",") if x]
    started = time.time()

    with tempfile.TemporaryDirectory(prefix="xmppuv-bench-") as tmp:
        certs = make_certs(tmp) if not args.no_tls else None
        results = {}
        n_of = {}
        storm_results = {}
        rtt_lines = []
        storm_server_lines = []
        queue_lines = []
        ws_results, ws_n, ws_cg = {}, {}, {}
        if args.ws:
            ws_results, ws_n = ws_runs(args, workloads)
            if not args.no_callgrind and shutil.which("valgrind"):
                ws_cg = ws_callgrind(args, workloads, tmp)
        for w in workloads:
            if args.ws and w in ("firehose", "burst"):
                continue
            if w == "rtt":
                rtt_lines = rtt_run(args)
                continue
            if w == "storm-server":
                storm_server_lines = storm_server_run(args)
                continue
            if w == "queue":
                log("queue: bytes per queued stanza")
                queue_lines = queue_runs(args)
                continue
            if w == "storm":
                builds = args.storm_builds.split(",") if args.storm_builds else [args.build]
                for rep in range(args.reps):
                    for b in builds:
                        log(f"[{rep + 1}/{args.reps}] storm {args.storm_clients} clients {b}")
                        storm_results.setdefault(b, []).append(
                            storm_run(args, os.path.abspath(b)))
                continue
            for tls in tls_modes:
                if w == "idle":
                    for m, par in idle_runs(idle_m_tls if tls else idle_m, args):
                        key = (f"idle{m}/{par}", tls)
                        results[key] = []
                        reps = args.reps if m < 10000 else min(args.reps, args.idle_big_reps)
                        for rep in range(reps):
                            row = {}
                            for c in clients:
                                log(f"[{rep + 1}/{reps}] idle m={m} parallel={par} "
                                    f"{'tls' if tls else 'tcp'} {c}")
                                r = one_run(args, c, "idle", tls, certs, m=m, parallel=par)
                                if r:
                                    if r.get("skip"):
                                        r["reason"] = r.get("reason", "")
                                    row[c] = r
                            results[key].append(row)
                    continue
                if w == "firehose":
                    n = args.n_firehose
                elif w == "burst":
                    n = args.n_burst
                elif w == "resume":
                    n = args.n_resume
                else:
                    raise SystemExit(f"unknown workload {w}")
                results[(w, tls)] = []
                for rep in range(args.reps):
                    row = {}
                    for c in clients:
                        cn = n
                        if w == "burst" and c in ("strophe", "xmppjs"):
                            cn = args.n_peer_burst
                        log(f"[{rep + 1}/{args.reps}] {w} {'tls' if tls else 'tcp'} {c} n={cn}")
                        r = one_run(args, c, w, tls, certs, n=cn)
                        if r:
                            # Per-client N (peers may use a smaller burst).
                            r["_n"] = cn
                            row[c] = r
                    results[(w, tls)].append(row)
                n_of[w] = n

        # Peers with their own N: normalise per stanza with their own N.
        for key, reps in results.items():
            for row in reps:
                for c, r in row.items():
                    if "_n" in r and r["_n"] != n_of.get(key[0], r["_n"]):
                        r["cpu_s"] = r["cpu_s"] * n_of[key[0]] / r["_n"]
                        r["wall_s"] = r["wall_s"] * n_of[key[0]] / r["_n"]

        cg_lines, cg_top = [], {}
        if not args.no_callgrind and not args.ws and shutil.which("valgrind"):
            log("callgrind: instructions per stanza")
            cg_lines, cg_top = callgrind_table(args, tmp)
            cg_top = {w: callgrind_top(p) for w, p in cg_top.items()}

    v = versions(args.build)
    out = []
    out.append(f"Benchmark run of {datetime.date.today().isoformat()} on {machine()}; "
               f"{'smoke run (small N, one repetition)' if args.smoke else f'medians of {args.reps} paired runs'}"
               f" in {time.time() - started:.0f} s.")
    out.append("Versions: " + ", ".join(f"{k} {v[k]}" for k in
                                        ("xmppuv", "buildtype", "libuv", "expat", "mbedTLS",
                                         "libstrophe", "node", "@xmpp/client", "cc")) + ".")
    n_desc = ", ".join(f"{w} N={n} ({'TCP and WebSocket' if w in ws_n else ''})".replace(" ()", "")
                       for w, n in list(ws_n.items()) + list(n_of.items()))
    if "burst" in n_of and any(c in clients for c in ("strophe", "xmppjs")):
        n_desc += f" (libstrophe and xmpp.js burst N={args.n_peer_burst}, scaled per stanza)"
    out.append(f"Workloads: {n_desc}.")
    out.append("")
    if ws_results:
        out.append("xmppuv over TCP and over WebSocket (RFC 7395, ws:// on loopback), "
                   "medians" + (f"; instructions per stanza from callgrind, (Ir at N={args.cg_n2}"
                               f" - Ir at N={args.cg_n1}) / {args.cg_n2 - args.cg_n1}"
                               if ws_cg else "") + ":")
        out.append("")
        out += ws_table(ws_results, ws_n, ws_cg)
        out.append("")
    sw = [w for w in workloads if w in ("firehose", "burst") and not args.ws]
    if sw:
        out += stanza_table(results, clients, sw, tls_modes, n_of)
        out.append("")
    if "idle" in workloads:
        out += idle_table(results, clients, sorted(set(idle_m + idle_m_tls)), tls_modes, args)
        out.append("")
    if queue_lines:
        out.append("The SM queue: bytes per held stanza (a 60-byte-body message, sent while "
                   "connecting; the app keeps no reference):")
        out.append("")
        out += queue_lines
        out.append("")
    if "resume" in workloads:
        out += resume_table(results, clients, tls_modes)
        out.append("")
    if rtt_lines:
        out += rtt_lines
        out.append("")
    if storm_server_lines:
        out += storm_server_lines
        out.append("")
    if storm_results:
        out.append(f"Reconnect storm: {args.storm_clients} clients on one loop, SCRAM-SHA-256 at "
                   f"{args.storm_iterations} iterations, every connection reset at once:")
        out.append("")
        out += storm_table(storm_results)
        out.append("")
    if sw and len(tls_modes) == 2:
        out.append("TLS cost (the same workload with and without STARTTLS):")
        out.append("")
        out += tls_cost_table(results, clients, sw, n_of)
        out.append("")
    if cg_lines:
        out.append(f"Instructions per stanza (valgrind --tool=callgrind, TCP, "
                   f"(Ir at N={args.cg_n2} - Ir at N={args.cg_n1}) / {args.cg_n2 - args.cg_n1}):")
        out.append("")
        out += cg_lines
        out.append("")
        for w, rows in cg_top.items():
            if rows:
                out.append(f"xmppuv {w}, top functions by own instructions (callgrind, "
                           f"N={args.cg_n2}):")
                out.append("")
                out += rows
                out.append("")
    for note in notes:
        out.append(f"Note: {note}.")
    if failures:
        out.append("")
        out.append("FAILURES:")
        out += [f"- {f}" for f in failures]
    text = "\n".join(out)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
