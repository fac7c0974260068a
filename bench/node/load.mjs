// The bench's second load generator: the official socket.io-client (the one browsers and
// the web client use), driven by target/release/bench over stdin/stdout, one JSON object
// per line each way. The Rust bench starts the system, mints tokens, drives the phases and
// reads CPU and memory from /proc; this process only opens sockets and reports times.
//
//   node load.mjs '<config JSON>'
//
// config.mode:
//   "rtt"    {port, tokens[], inflight, stuffId, timeoutMs}: every token gets a socket that
//            keeps `inflight` stuff:get in flight. Commands: "measure" (count from now),
//            "stop" (the window ends, no new requests; when the outstanding ones are answered
//            or timed out, prints {acks, errors, timeouts, latenciesUs[]} of the window).
//   "fanout" {port, viewers, stuffId}: anonymous viewers; for each version of stuffId seen
//            by every viewer prints {version, count, timesUs[], updatedAt} (when each viewer
//            saw it, wall-clock µs; the bench merges several processes' viewers). Command
//            "report <version>" prints what that version has now.
//   "idle"   {port}: command "open <n>" opens n more anonymous sockets and prints {open}.
// Every mode prints {ready: true, connectSeconds} once its sockets are connected, and
// exits on "exit" or when stdin closes.
import { io } from 'socket.io-client';
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';

const config = JSON.parse(process.argv[2] ?? '{}');
const url = `http://127.0.0.1:${config.port}`;
const SOURCE_ADDRESSES = 16;
const sockets = [];

/** Wall-clock microseconds, comparable with the Rust bench's SystemTime. */
const wallUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);
const say = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

/** One socket as the web client opens it, minus reconnection: websocket, `auth: {token}`. */
function open(i, token) {
  return new Promise((resolve, reject) => {
    const socket = io(url, {
      transports: ['websocket'],
      auth: token ? { token } : {},
      reconnection: false,
      forceNew: true,
      timeout: 60_000,
      // Spread over 127.0.0.1-16 as the Rust client does: 19,000 sockets need the ports.
      localAddress: `127.0.0.${1 + (i % SOURCE_ADDRESSES)}`,
    });
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err) => reject(new Error(`socket ${i}: ${err.message}`)));
  });
}

/** Opens `n` more sockets, `parallel` handshakes at a time. */
async function openMany(n, tokenOf, parallel = 128) {
  const start = sockets.length;
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = start + next++;
      sockets[i] = await open(i, tokenOf(i - start));
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, n) }, worker));
}

function rtt() {
  let measuring = false;
  let stopping = false;
  let acks = 0;
  let errors = 0;
  let timeouts = 0;
  let outstanding = 0;
  const latenciesUs = [];
  let finish = () => {};
  const payload = { id: config.stuffId };
  const send = (socket) => {
    outstanding += 1;
    const t0 = performance.now();
    socket.timeout(config.timeoutMs ?? 10_000).emit('stuff:get', payload, (err, ack) => {
      outstanding -= 1;
      if (measuring) {
        if (err) {
          timeouts += 1;
        } else {
          acks += 1;
          latenciesUs.push(Math.round((performance.now() - t0) * 1000));
          if (!ack || typeof ack !== 'object' || !('data' in ack)) errors += 1;
        }
      }
      if (!stopping) send(socket);
      else if (outstanding === 0) finish();
    });
  };
  return {
    start() {
      for (const socket of sockets) for (let k = 0; k < config.inflight; k += 1) send(socket);
    },
    measure() {
      measuring = true;
    },
    stop() {
      // Answers from here on are not counted (the measured window has ended).
      measuring = false;
      stopping = true;
      finish = () => say({ acks, errors, timeouts, latenciesUs });
      if (outstanding === 0) finish();
    },
  };
}

function fanout() {
  const versions = new Map();
  const lastSeen = new Int32Array(config.viewers).fill(-1);
  const report = (version) => {
    const v = versions.get(version);
    if (!v) {
      say({ version, count: 0 });
      return;
    }
    if (v.reported) {
      say({ version, count: v.times.length, reported: true });
      return;
    }
    v.reported = true;
    say({ version, count: v.times.length, timesUs: v.times, updatedAt: v.updatedAt });
    versions.delete(version);
  };
  return {
    watch() {
      sockets.forEach((socket, index) => {
        socket.on('stuff:updated', (stuff) => {
          const at = wallUs();
          if (!stuff || stuff.id !== config.stuffId || lastSeen[index] === stuff.version) return;
          lastSeen[index] = stuff.version;
          let v = versions.get(stuff.version);
          if (!v) {
            v = { times: [], updatedAt: stuff.updatedAt ?? null, reported: false };
            versions.set(stuff.version, v);
          }
          v.times.push(at);
          if (v.times.length === config.viewers) report(stuff.version);
        });
      });
    },
    report,
  };
}

async function main() {
  const started = performance.now();
  const tokens = config.tokens ?? [];
  if (config.mode === 'rtt') await openMany(tokens.length, (i) => tokens[i], 64);
  if (config.mode === 'fanout') await openMany(config.viewers, () => null);
  const load = config.mode === 'rtt' ? rtt() : null;
  const fan = config.mode === 'fanout' ? fanout() : null;
  fan?.watch();
  load?.start();
  say({ ready: true, connectSeconds: (performance.now() - started) / 1000 });
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    const [cmd, arg] = line.trim().split(/\s+/);
    if (cmd === 'measure') load?.measure();
    else if (cmd === 'stop') load?.stop();
    else if (cmd === 'report') fan?.report(Number(arg));
    else if (cmd === 'open') {
      const t0 = performance.now();
      await openMany(Number(arg), () => null);
      say({ open: sockets.length, connectSeconds: (performance.now() - t0) / 1000 });
    } else if (cmd === 'exit') break;
  }
  for (const socket of sockets) socket.disconnect();
  process.exit(0);
}

main().catch((err) => {
  say({ error: String(err?.message ?? err) });
  process.exit(1);
});
