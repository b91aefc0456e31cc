// The xmpp.js peer: the same workloads through @xmpp/client (our own small
// script). Prints one RESULT line like the C clients.
//
//   node bench.mjs --workload firehose|burst|idle|resume --port P [--n N]
//                  [--m M] [--tls CA_FILE] [--settle-ms T]
//
// @xmpp/stream-management answers <r/>, and requests an ack 250 ms after the
// last of a run of sends (debounced, no threshold); it has no queue limit,
// so burst hands it messages in batches of 1000 and waits for each batch to
// be written. With --tls the CA must be given to node itself
// (NODE_EXTRA_CA_CERTS, set by the runner); the flag marks the result.
import { client, xml } from "@xmpp/client";

const BODY = "The quick brown fox jumps over the lazy dog; 0123456789 ok.";
const PEER = "alice@bench.example/phone";

const opts = { workload: "firehose", port: 0, n: 100000, m: 1, tls: null, settleMs: 2500, parallel: 0 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const v = argv[i + 1];
  if (a === "--workload") opts.workload = v;
  else if (a === "--port") opts.port = Number(v);
  else if (a === "--n") opts.n = Number(v);
  else if (a === "--m") opts.m = Number(v);
  else if (a === "--tls") opts.tls = v;
  else if (a === "--settle-ms") opts.settleMs = Number(v);
  else if (a === "--parallel") opts.parallel = Number(v);
  else {
    console.error(`bench.mjs: unknown argument ${a}`);
    process.exit(2);
  }
  i++;
}

const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const now = () => Number(process.hrtime.bigint()) / 1e9;
const tls = opts.tls ? 1 : 0;
let t0 = 0, t1 = 0, cpu0 = 0, cpu1 = 0;
const markStart = () => { t0 = now(); cpu0 = cpu(); };
const markEnd = () => { t1 = now(); cpu1 = cpu(); };

function newClient() {
  const xmpp = client({
    service: `xmpp://127.0.0.1:${opts.port}`,
    domain: "bench.example",
    resource: "bench",
    // xmpp.js keeps PLAIN off plaintext streams unless the app picks it, as
    // xmppuv does outside XMPPUV_TLS_DISABLED_INSECURE: pick it here.
    credentials: async (authenticate, mechanisms) => {
      if (!mechanisms.includes("PLAIN")) throw new Error("PLAIN not offered");
      await authenticate({ username: "bench", password: "bench-password" }, "PLAIN");
    },
  });
  xmpp.on("error", (err) => {
    if (opts.workload !== "resume") console.error(`bench.mjs: ${err.message || err}`);
  });
  return xmpp;
}

async function waitFor(cond) {
  for (let k = 0; k < 5000 && !cond(); k++) await new Promise((r) => setTimeout(r, 1));
  if (!cond()) die("timed out waiting for SM");
}

function die(msg) {
  console.error(`bench.mjs: ${msg}`);
  process.exit(1);
}

async function firehose() {
  const xmpp = newClient();
  let received = 0;
  const done = new Promise((resolve) => {
    xmpp.on("stanza", (s) => {
      if (s.is("message") && ++received === opts.n) resolve();
    });
  });
  xmpp.on("online", markStart);
  await xmpp.start();
  await done;
  markEnd();
  xmpp.reconnect.stop();
  await xmpp.stop();
  return `n=${received}`;
}

async function burst() {
  const xmpp = newClient();
  let acked = 0;
  const done = new Promise((resolve) => {
    xmpp.streamManagement.on("ack", () => {
      if (++acked === opts.n) resolve();
    });
  });
  await xmpp.start();
  // `online` comes before the <enable/> round trip is over; stanzas sent
  // before <enabled/> would not be tracked.
  await waitFor(() => xmpp.streamManagement.enabled);
  markStart();
  for (let sent = 0; sent < opts.n; ) {
    const batch = [];
    for (let k = 0; k < 1000 && sent < opts.n; k++, sent++)
      batch.push(xmpp.send(xml("message", { to: PEER, type: "chat" }, xml("body", {}, BODY))));
    await Promise.all(batch);
  }
  await done;
  markEnd();
  xmpp.reconnect.stop();
  await xmpp.stop();
  return `n=${acked}`;
}

async function idle() {
  const rss0 = process.memoryUsage().rss;
  markStart();
  const clients = [];
  let started = 0;
  // --parallel 0: all M at once; else at most P negotiating at a time, as
  // the other clients do.
  async function worker() {
    while (started < opts.m) {
      started++;
      const xmpp = newClient();
      clients.push(xmpp);
      await xmpp.start();
    }
  }
  const window = opts.parallel > 0 ? Math.min(opts.parallel, opts.m) : opts.m;
  await Promise.all(Array.from({ length: window }, worker));
  const setupCpu = cpu() - cpu0;
  await new Promise((r) => setTimeout(r, opts.settleMs));
  markEnd();
  const rss1 = process.memoryUsage().rss;
  const kb = (rss1 - rss0) / 1024;
  for (const x of clients) x.reconnect.stop();
  await Promise.all(clients.map((x) => x.stop().catch(() => {})));
  return `m=${opts.m} online=${clients.length} rss_delta_kb=${Math.round(kb)} ` +
    `kb_per_conn=${(kb / opts.m).toFixed(2)} cpu_ms_per_conn=${((cpu1 - cpu0) * 1000 / opts.m).toFixed(3)} ` +
    `setup_cpu_ms_per_conn=${(setupCpu * 1000 / opts.m).toFixed(3)} parallel=${opts.parallel}`;
}

async function resume() {
  const xmpp = newClient();
  xmpp.reconnect.delay = 1;
  const times = [];
  let lostAt = 0;
  let resumes = 0;
  const sendOne = () =>
    xmpp.send(xml("message", { to: PEER, type: "chat" }, xml("body", {}, BODY))).catch(() => {});
  const done = new Promise((resolve) => {
    xmpp.on("disconnect", () => { if (!lostAt) lostAt = now(); });
    xmpp.streamManagement.on("resumed", () => {
      times.push((now() - lostAt - xmpp.reconnect.delay / 1000) * 1000);
      lostAt = 0;
      if (++resumes === opts.n) resolve();
      else sendOne();
    });
  });
  xmpp.on("online", () => {
    if (resumes > 0) die("a new session instead of a resumption");
  });
  await xmpp.start();
  await waitFor(() => xmpp.streamManagement.enabled);
  markStart();
  sendOne();
  await done;
  markEnd();
  xmpp.reconnect.stop();
  await xmpp.stop().catch(() => {});
  times.sort((a, b) => a - b);
  const k = times.length;
  return `n=${k} resume_ms_median=${times[k >> 1].toFixed(3)} resume_ms_min=${times[0].toFixed(3)} ` +
    `resume_ms_max=${times[k - 1].toFixed(3)} cpu_ms_per_resume=${((cpu1 - cpu0) * 1000 / k).toFixed(3)}`;
}

const workloads = { firehose, burst, idle, resume };
if (!workloads[opts.workload]) die(`unknown workload ${opts.workload}`);
if (!opts.port) die("--port is required");
const extra = await workloads[opts.workload]();
console.log(`RESULT client=xmppjs workload=${opts.workload} tls=${tls} ${extra} ` +
  `wall_s=${(t1 - t0).toFixed(4)} cpu_s=${(cpu1 - cpu0).toFixed(4)}`);
process.exit(0);
