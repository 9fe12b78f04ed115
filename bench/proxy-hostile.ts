/**
 * Proxy memory under hostile clients, side by side in one run: `depad proxy` of this tree
 * (bin/depad), optionally of another tree (`--before DIR` runs DIR/bin/depad, e.g. a checkout of
 * an older commit), and nginx (one worker, keep-alive upstream, proxy_http_version 1.1: the shape
 * of bench/proxy.ts's nginx, with worker_connections raised for the idle scenario). Each proxy runs
 * as its own process, started fresh for each scenario; its resident memory (VmRSS of the depad
 * process, of nginx's worker) is read from /proc before the scenario and sampled every 20 ms during
 * it (peak). The upstream is a node:http server in this process, so that it can count what reaches it.
 *   flood  one connection writes BENCH_BATCHES batches of BENCH_FLOOD pipelined GETs (one write each,
 *          200 ms apart) and does not read; answers are BENCH_BODY bytes (16 KiB). Reported: peak RSS
 *          growth, and how many requests the upstream received while the client did not read; then
 *          the client reads, and every answer is checked to come, in order.
 *   big    a client asks for a 64 MiB response (streamed by the upstream with backpressure) and does
 *          not read. Reported: peak RSS growth, how much the upstream could write; then the client
 *          reads and the body is checked whole (SHA-256).
 *   idle   BENCH_IDLE (5,000) connections, each made one request and stays open (opened 250 at a
 *          time). Reported: RSS growth and per connection.
 * In every scenario a normal request on another connection is timed while the hostile client is
 * at work ("probe ms"). Every wait is bounded; the run is stopped after BENCH_MAX_SECONDS (300).
 * The proxies and the sampler of their memory are in bench/hostile-targets.ts; the response reader,
 * the probe and the upstream's streaming are test/helpers/hostile-common.ts's (the test's own).
 * Kills and removes everything it started. Needs nginx (installs nothing); Linux (/proc).
 * Run: scripts/node bench/proxy-hostile.ts [--before /path/to/old/tree]
 *      (env: BENCH_FLOOD=3000 BENCH_BATCHES=3 BENCH_BODY=16384 BENCH_IDLE=5000 BENCH_MAX_SECONDS=300)
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEPAD } from './bench-agent.ts';
import { HOST, depadKind, nginxKind, sampler, stopAll } from './hostile-targets.ts';
import type { Kind, Target } from './hostile-targets.ts';
import { rss } from './measure.ts';
import { ResponseReader, probe, settled, streamChunks } from '../test/helpers/hostile-common.ts';

const FLOOD = Number(process.env.BENCH_FLOOD ?? 3000);
const BATCHES = Number(process.env.BENCH_BATCHES ?? 3);
const BODY = Number(process.env.BENCH_BODY ?? 16 * 1024);
const IDLE = Number(process.env.BENCH_IDLE ?? 5000);
const MAX_SECONDS = Number(process.env.BENCH_MAX_SECONDS ?? 300);
const BIG = 64 * 1024 * 1024;
const CHUNK = 64 * 1024;
const MB = 1024 * 1024;
/** Client sockets open now (destroyed after each scenario). */
const sockets = new Set<net.Socket>();

/** The upstream: counts requests; `/big` streams BIG bytes with backpressure, anything else BODY bytes with X-N: its path. */
async function startUpstream(): Promise<{ port: number; requests: () => number; pushed: () => number; reset(): void; close(): void }> {
  const body = Buffer.alloc(BODY, 0x62);
  const chunks = Array.from({ length: BIG / CHUNK }, (_, i) => Buffer.alloc(CHUNK, i % 251));
  let requests = 0;
  let pushed = 0;
  const server = http.createServer((req, res) => {
    requests++;
    if (req.url !== '/big') return void res.writeHead(200, { 'x-n': (req.url ?? '').slice(1), 'content-length': BODY }).end(body);
    res.writeHead(200, { 'content-length': BIG });
    streamChunks(res, chunks, (bytes) => (pushed += bytes));
  });
  server.keepAliveTimeout = 120_000; // longer than nginx's upstream keepalive_timeout (60 s): no stale reuse
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as net.AddressInfo).port,
    requests: () => requests,
    pushed: () => pushed,
    reset: () => void ((requests = 0), (pushed = 0)),
    close: () => (server.closeAllConnections(), server.close()),
  };
}

/** A client connection that does not read until `read(sink)`. */
async function connect(port: number, paused: boolean): Promise<{ socket: net.Socket; read(sink: (chunk: Buffer) => void): void }> {
  const socket = net.connect(port, '127.0.0.1');
  sockets.add(socket);
  socket.once('close', () => sockets.delete(socket));
  socket.on('error', () => {});
  if (paused) socket.pause();
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  return { socket, read: (sink) => (socket.on('data', sink), socket.resume()) };
}

async function until(condition: () => boolean, maxMs: number): Promise<boolean> {
  const deadline = Date.now() + maxMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

/** Times a normal GET on a new connection (ms; Infinity without a 200 in 5 s). */
const timeProbe = (port: number): Promise<number> => probe(port, HOST).then(({ status, ms }) => (status === 200 ? ms : Infinity), () => Infinity);

/** One measured scenario on a fresh target. */
interface Row {
  before: number;
  peak: number;
  after: number;
  probeMs: number;
  note: string;
}

const GET = (p: string) => `GET ${p} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`;

/** Warms the target up with `n` pipelined GETs on one connection, read whole. */
async function warmUp(target: Target, n: number): Promise<void> {
  const c = await connect(target.port, false);
  const r = new ResponseReader();
  c.read((chunk) => r.push(chunk));
  c.socket.write(Array.from({ length: n }, (_, i) => GET(`/w${i}`)).join(''));
  await until(() => r.statuses.length >= n, 10_000);
  c.socket.destroy();
  await sleep(300);
}

const scenarios: { name: string; run(target: Target, up: Awaited<ReturnType<typeof startUpstream>>): Promise<Row> }[] = [
  {
    name: `flood: ${BATCHES}×${FLOOD} pipelined GETs, not read (${BODY / 1024} KiB answers)`,
    async run(target, up) {
      await warmUp(target, 200);
      const before = rss(target.pids());
      up.reset();
      const peak = sampler(target);
      const c = await connect(target.port, true);
      for (let b = 0; b < BATCHES; b++) {
        c.socket.write(Array.from({ length: FLOOD }, (_, i) => GET(`/${b * FLOOD + i}`)).join(''));
        await sleep(200);
      }
      const received = await settled(up.requests, 1000, 8000);
      const probeMs = await timeProbe(target.port);
      const top = peak.stop();
      const after = rss(target.pids());
      const total = BATCHES * FLOOD;
      const r = new ResponseReader();
      c.read((chunk) => r.push(chunk));
      await until(() => r.statuses.length >= total, 30_000);
      const inOrder = r.tags.length === total && r.tags.every((tag, i) => tag === String(i)) && r.statuses.every((s) => s === 200);
      c.socket.destroy();
      return { before, peak: top, after, probeMs, note: `upstream got ${received} of ${total} while not read; then ${r.statuses.length} answered${inOrder ? ', in order' : ', NOT all in order'}` };
    },
  },
  {
    name: 'big: a 64 MiB response, not read',
    async run(target, up) {
      await warmUp(target, 20);
      const before = rss(target.pids());
      up.reset();
      const peak = sampler(target);
      const c = await connect(target.port, true);
      c.socket.write(GET('/big'));
      await until(() => up.pushed() > 0, 5000);
      const held = await settled(up.pushed, 1000, 8000);
      const probeMs = await timeProbe(target.port);
      const top = peak.stop();
      const after = rss(target.pids());
      const hash = createHash('sha256');
      const r = new ResponseReader((piece) => hash.update(piece));
      c.read((chunk) => r.push(chunk));
      await until(() => r.bodyBytes >= BIG, 30_000);
      const expected = createHash('sha256');
      for (let i = 0; i < BIG / CHUNK; i++) expected.update(Buffer.alloc(CHUNK, i % 251));
      const intact = r.bodyBytes === BIG && hash.digest('hex') === expected.digest('hex');
      c.socket.destroy();
      return { before, peak: top, after, probeMs, note: `upstream wrote ${(held / MB).toFixed(1)} of 64 MiB while not read; then the body ${intact ? 'arrived whole' : 'did NOT arrive whole'}` };
    },
  },
  {
    name: `idle: ${IDLE} keep-alive connections, one request each`,
    async run(target) {
      await warmUp(target, 20);
      const before = rss(target.pids());
      const peak = sampler(target);
      const open: net.Socket[] = [];
      let answered = 0;
      for (let i = 0; i < IDLE; i += 250) {
        const batch = await Promise.all(Array.from({ length: Math.min(250, IDLE - i) }, () => connect(target.port, false)));
        for (const c of batch) {
          const r = new ResponseReader();
          c.read((chunk) => {
            const had = r.statuses.length;
            r.push(chunk);
            if (had === 0 && r.statuses.length === 1) answered++;
          });
          c.socket.write(GET('/'));
          open.push(c.socket);
        }
        await until(() => answered >= open.length, 10_000);
      }
      await sleep(500);
      const probeMs = await timeProbe(target.port);
      const top = peak.stop();
      const after = rss(target.pids());
      const still = open.filter((s) => !s.destroyed).length;
      for (const s of open) s.destroy();
      return { before, peak: top, after, probeMs, note: `${((after - before) / IDLE / 1024).toFixed(1)} KiB per connection; ${answered} answered, ${still} still open` };
    },
  },
];

async function main(): Promise<number> {
  if (spawnSync('sh', ['-c', 'command -v nginx'], { stdio: 'ignore' }).status !== 0) {
    console.error('bench/proxy-hostile.ts needs nginx; install with: apt-get update && apt-get install -y nginx');
    return 1;
  }
  const beforeAt = process.argv.indexOf('--before');
  const kinds: Kind[] = [depadKind('depad (this tree)', DEPAD)];
  if (beforeAt >= 0) {
    const dir = process.argv[beforeAt + 1];
    if (dir === undefined) throw new Error('--before needs a directory');
    kinds.unshift(depadKind(`depad (${dir})`, path.join(path.resolve(dir), 'bin/depad')));
  }
  kinds.push(nginxKind);
  const dir = await fs.mkdtemp(path.join(tmpdir(), 'depad-bench-hostile-'));
  await fs.chmod(dir, 0o755);
  const up = await startUpstream();
  const cleanup = async () => {
    for (const s of sockets) s.destroy();
    await stopAll();
    up.close();
    await fs.rm(dir, { recursive: true, force: true });
  };
  const guard = setTimeout(() => {
    console.error(`bench/proxy-hostile.ts: stopped after ${MAX_SECONDS} s`);
    void cleanup().then(() => process.exit(2));
  }, MAX_SECONDS * 1000);
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) process.once(signal, () => void cleanup().then(() => process.exit(code)));
  process.stdout.once('error', () => void cleanup().then(() => process.exit(1))); // e.g. piped into head
  try {
    console.log(`proxy memory under hostile clients; node ${process.version}, ${cpus().length} CPUs; RSS of the proxy process (nginx: its worker)`);
    const mb = (bytes: number) => `${(bytes / MB).toFixed(1)}`.padStart(7);
    for (const scenario of scenarios) {
      console.log(`\n${scenario.name}`);
      console.log(`  ${'proxy'.padEnd(30)} ${'RSS MB before'.padStart(13)} ${'peak'.padStart(7)} ${'growth'.padStart(7)} ${'after'.padStart(7)} ${'probe ms'.padStart(9)}  notes`);
      for (const kind of kinds) {
        const target = await kind.start(dir, up.port);
        try {
          const r = await scenario.run(target, up);
          console.log(`  ${kind.label.padEnd(30)} ${mb(r.before).padStart(13)} ${mb(r.peak)} ${mb(r.peak - r.before)} ${mb(r.after)} ${r.probeMs.toFixed(1).padStart(9)}  ${r.note}`);
        } finally {
          for (const s of sockets) s.destroy();
          await target.stop();
        }
      }
    }
    return 0;
  } finally {
    clearTimeout(guard);
    await cleanup();
  }
}

process.exitCode = await main();
