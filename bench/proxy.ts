/**
 * Proxy throughput and latency benchmark: `wrk -t1 -c50 -d10s --latency`, run side by side in one
 * go against one nginx upstream (one worker) serving a small static response:
 *   (a) direct to the upstream,
 *   (b) through nginx as a keep-alive reverse proxy (one worker, proxy_http_version 1.1, keepalive),
 *   (c) through depad's proxy: the `depad proxy` command as users run it (bin/depad), route set
 *       over its control channel,
 *   (d) through http-proxy-3 (keep-alive agent, xfwd), the other engine considered, bare,
 *   (e) through node:http + undici Pool, bare (the engine depad uses, without depad's work).
 * Rounds are interleaved (a b c d e, a b c d e, …) so that noise from a shared machine hits every
 * target alike; the median of the rounds is reported. Prints requests/s, p99 latency and CPU µs
 * per request of the proxy process, and depad/nginx ratios (goal: throughput ≥ 0.7×, p99 ≤ 2×).
 * Needs wrk and nginx (installs nothing).
 * Run: scripts/node bench/proxy.ts [--before DIR]   (env: BENCH_SECONDS=10, BENCH_CONNECTIONS=50, BENCH_ROUNDS=3)
 *   --before DIR adds (c0): DIR/bin/depad proxy, another checkout of depad (an earlier commit), in
 *   the same rounds, so that a change to the proxy is measured side by side with what it replaces.
 *   --no-others leaves out (d) and (e) (shorter runs, more rounds for the same time).
 *   --upstreams N: the upstream nginx listens on N ports and depad's route (and nginx's, with
 *   least_conn) has N upstreams, to measure the load-balancing path ((d) and (e) keep one).
 * Also its own runner for (d) and (e): scripts/node bench/proxy.ts --serve <http-proxy-3|undici> …
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEPAD } from './bench-agent.ts';
import { childPids, cpuMs, freePort, waitForPort } from './measure.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const NODE = path.join(ROOT, 'scripts/node');
const SELF = fileURLToPath(import.meta.url);
const HOST = 'bench.local';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const OTHERS = !process.argv.includes('--no-others');
const UPSTREAMS = process.argv.includes('--upstreams') ? Math.max(1, Number(process.argv[process.argv.indexOf('--upstreams') + 1])) : 1;
const BEFORE = process.argv.includes('--before') ? path.resolve(process.argv[process.argv.indexOf('--before') + 1] ?? '') : undefined;

// ---------------------------------------------------------------------------------------------
// Runner mode: one proxy in this process, ready line on stdout.

async function serve(kind: string, args: string[]): Promise<void> {
  const [portText, upstreamText] = args;
  const port = Number(portText);
  const upstreamPort = Number(upstreamText);
  if (kind === 'http-proxy-3') {
    const { createProxyServer } = await import('http-proxy-3');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
    const proxy = createProxyServer({ target: `http://127.0.0.1:${upstreamPort}`, agent, xfwd: true });
    proxy.on('error', (_e, _req, res) => {
      if (res instanceof http.ServerResponse && !res.headersSent) res.writeHead(502).end();
    });
    await listen(http.createServer((req, res) => proxy.web(req, res)), port);
  } else if (kind === 'undici') {
    const { Pool } = await import('undici');
    const pool = new Pool(`http://127.0.0.1:${upstreamPort}`, { connections: null, bodyTimeout: 0 });
    const hop = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization']);
    await listen(
      http.createServer((req, res) => {
        const headers: string[] = [];
        for (let i = 0; i < req.rawHeaders.length; i += 2) {
          const name = req.rawHeaders[i] as string;
          if (!hop.has(name.toLowerCase())) headers.push(name, req.rawHeaders[i + 1] as string);
        }
        headers.push('x-forwarded-for', req.socket.remoteAddress ?? '');
        pool.dispatch(
          { path: req.url ?? '/', method: 'GET', headers, body: null },
          {
            onRequestStart() {},
            onResponseStart(_c, status, h) {
              const out: string[] = [];
              for (const k in h) if (!hop.has(k)) out.push(k, String(h[k]));
              res.writeHead(status, out);
            },
            onResponseData(_c, chunk) {
              res.write(chunk);
            },
            onResponseEnd() {
              res.end();
            },
            onResponseError() {
              if (!res.headersSent) res.writeHead(502);
              res.end();
            },
          },
        );
      }),
      port,
    );
  } else {
    throw new Error(`unknown runner ${kind}`);
  }
  process.stdout.write('ready\n');
}

function listen(server: http.Server, port: number): Promise<void> {
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
}

// ---------------------------------------------------------------------------------------------
// Bench mode.

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function nginxConfig(dir: string, name: string, body: string): string {
  return `worker_processes 1;
daemon off;
pid ${dir}/${name}.pid;
error_log ${dir}/${name}-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/${name}-body; proxy_temp_path ${dir}/${name}-proxy;
  fastcgi_temp_path ${dir}/${name}-fcgi; uwsgi_temp_path ${dir}/${name}-uwsgi; scgi_temp_path ${dir}/${name}-scgi;
  keepalive_requests 1000000;
${body}
}
`;
}

interface Result {
  label: string;
  rps: number;
  p99Ms: number;
  errors: string;
  cpuUsPerReq: number | undefined;
}

function parseLatency(text: string): number {
  const m = /^\s*99%\s+([\d.]+)(us|ms|s)\s*$/m.exec(text);
  if (!m) return Number.NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
}

function wrk(port: number, seconds: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const args = ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', '-H', `Host: ${HOST}`, `http://127.0.0.1:${port}/`];
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`wrk exited ${code}`))));
  });
}

async function measure(label: string, port: number, cpuPids: () => number[]): Promise<Result> {
  await wrk(port, 2); // warm-up: JIT, keep-alive pools
  const before = cpuMs(cpuPids());
  const out = await wrk(port, SECONDS);
  const used = cpuMs(cpuPids()) - before;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN);
  const errors = [/Socket errors:.*$/m.exec(out)?.[0], /Non-2xx or 3xx responses:.*$/m.exec(out)?.[0]].filter(Boolean).join('; ');
  const total = rps * SECONDS;
  return { label, rps, p99Ms: parseLatency(out), errors, cpuUsPerReq: cpuPids().length > 0 && total > 0 ? (used * 1000) / total : undefined };
}

async function bench(): Promise<number> {
  const missing = ['wrk', 'nginx'].filter((cmd) => !have(cmd));
  if (missing.length > 0) {
    console.error(`bench/proxy.ts needs ${missing.join(' and ')}; install with: apt-get update && apt-get install -y wrk nginx`);
    return 1;
  }
  const dir = await fs.mkdtemp(path.join(tmpdir(), 'depad-bench-proxy-'));
  const children: ChildProcess[] = [];
  const stopAll = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  };
  process.once('SIGINT', () => {
    stopAll();
    process.exit(130);
  });
  try {
    const [upPort, nginxPort, depadPort, beforePort, hp3Port, undiciPort] = (await Promise.all(Array.from({ length: 6 }, freePort))) as [number, number, number, number, number, number];
    const startNginx = async (name: string, body: string, port: number): Promise<ChildProcess> => {
      const conf = path.join(dir, `${name}.conf`);
      await fs.writeFile(conf, nginxConfig(dir, name, body));
      const child = spawn('nginx', ['-p', dir, '-c', conf, '-e', path.join(dir, `${name}-error.log`)], { stdio: 'inherit' });
      children.push(child);
      await waitForPort(port);
      return child;
    };
    const upPorts = [upPort, ...(await Promise.all(Array.from({ length: UPSTREAMS - 1 }, freePort)))];
    await startNginx('upstream', `  server { ${upPorts.map((p) => `listen 127.0.0.1:${p};`).join(' ')} location / { default_type text/plain; return 200 "hello from the upstream\\n"; } }`, upPort);
    const nginxProxy = await startNginx(
      'proxy',
      `  upstream app { ${UPSTREAMS > 1 ? 'least_conn; ' : ''}${upPorts.map((p) => `server 127.0.0.1:${p};`).join(' ')} keepalive 64; }
  server { listen 127.0.0.1:${nginxPort}; location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";
    proxy_set_header Host $host; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; proxy_set_header X-Forwarded-Proto $scheme; proxy_set_header X-Forwarded-Host $http_host; } }`,
      nginxPort,
    );
    const runner = async (kind: string, port: number): Promise<ChildProcess> => {
      const child = spawn(NODE, [SELF, '--serve', kind, String(port), String(upPort)], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(child);
      await new Promise<void>((resolve, reject) => {
        child.stdout?.on('data', (c: Buffer) => c.toString().includes('ready') && resolve());
        child.once('exit', (code) => reject(new Error(`${kind} runner exited ${code}`)));
      });
      return child;
    };
    const { ProxyClient, proxyPaths } = await import('../proxy/index.ts');
    const { proxyStateDir } = await import('../src/home.ts');
    const startDepad = async (command: string, name: string, port: number): Promise<ChildProcess> => {
      const home = path.join(dir, name);
      const child = spawn(command, ['--home', home, 'proxy', '--http-port', String(port), '--http-host', '127.0.0.1', '--tcp-host', '127.0.0.1'], { stdio: ['ignore', 'ignore', 'inherit'] });
      children.push(child);
      await waitForPort(port);
      await new ProxyClient(proxyPaths(proxyStateDir(home))).setDeploymentRoutes('bench', [
        { id: 'bench/web', deployment: 'bench', service: 'web', kind: 'http', hosts: [HOST], upstreams: upPorts.map((p) => ({ host: '127.0.0.1', port: p, instance: `nginx-${p}` })) },
      ]);
      return child;
    };
    const depad = await startDepad(DEPAD, 'depad-home', depadPort);
    const before = BEFORE === undefined ? undefined : await startDepad(path.join(BEFORE, 'bin/depad'), 'before-home', beforePort);
    const hp3 = OTHERS ? await runner('http-proxy-3', hp3Port) : undefined;
    const undici = OTHERS ? await runner('undici', undiciPort) : undefined;

    console.log(`proxy bench: wrk -t1 -c${CONNECTIONS} -d${SECONDS}s --latency, median of ${ROUNDS} interleaved round(s), ${UPSTREAMS} upstream(s); node ${process.version}, ${cpus().length} CPUs, ${cpus()[0]?.model ?? ''}`);
    const targets: [string, number, () => number[]][] = [
      ['(a) direct to nginx upstream', upPort, () => []],
      ['(b) nginx reverse proxy', nginxPort, () => childPids(nginxProxy.pid as number)],
      ['(c) depad proxy', depadPort, () => [depad.pid as number]],
    ];
    const beforeLabel = `(c0) depad proxy at ${path.basename(BEFORE ?? '')}`;
    if (before !== undefined) targets.push([beforeLabel, beforePort, () => [before.pid as number]]);
    if (hp3 !== undefined) targets.push(['(d) http-proxy-3, bare', hp3Port, () => [hp3.pid as number]]);
    if (undici !== undefined) targets.push(['(e) node:http + undici Pool, bare', undiciPort, () => [undici.pid as number]]);
    const runs = new Map<string, Result[]>(targets.map(([label]) => [label, []]));
    const ratios: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const [label, port, pids] of targets) (runs.get(label) as Result[]).push(await measure(label, port, pids));
      const [ng, dp] = [runs.get(targets[1]![0])!.at(-1)!, runs.get(targets[2]![0])!.at(-1)!];
      ratios.push(`${(dp.rps / ng.rps).toFixed(2)}x / ${(dp.p99Ms / ng.p99Ms).toFixed(2)}x`);
    }
    const median = (values: number[]) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)] as number;
    const rows: Result[] = targets.map(([label]) => {
      const rs = runs.get(label) as Result[];
      const cpu = rs.map((r) => r.cpuUsPerReq).filter((v): v is number => v !== undefined);
      return { label, rps: median(rs.map((r) => r.rps)), p99Ms: median(rs.map((r) => r.p99Ms)), errors: rs.map((r) => r.errors).filter(Boolean).join('; '), cpuUsPerReq: cpu.length > 0 ? median(cpu) : undefined };
    });
    console.log(`${'target'.padEnd(36)} ${'req/s'.padStart(10)} ${'p99 ms'.padStart(8)} ${'CPU µs/req'.padStart(11)}  errors`);
    for (const r of rows) {
      console.log(`${r.label.padEnd(36)} ${r.rps.toFixed(0).padStart(10)} ${r.p99Ms.toFixed(2).padStart(8)} ${(r.cpuUsPerReq === undefined ? '-' : r.cpuUsPerReq.toFixed(1)).padStart(11)}  ${r.errors || 'none'}`);
    }
    const ng = rows[1] as Result;
    const dp = rows[2] as Result;
    const tput = dp.rps / ng.rps;
    const p99 = dp.p99Ms / ng.p99Ms;
    console.log(`depad/nginx per round (throughput / p99): ${ratios.join(', ')}`);
    if (before !== undefined) {
      const b = rows.find((r) => r.label === beforeLabel) as Result;
      console.log(`depad/before, medians: throughput ${(dp.rps / b.rps).toFixed(2)}x, p99 ${(dp.p99Ms / b.p99Ms).toFixed(2)}x, CPU per request ${((dp.cpuUsPerReq ?? 0) / (b.cpuUsPerReq ?? 1)).toFixed(2)}x`);
    }
    console.log(`depad/nginx, medians: throughput ${tput.toFixed(2)}x (goal >= 0.80), p99 ${p99.toFixed(2)}x (goal <= 1.50): ${tput >= 0.8 && p99 <= 1.5 ? 'goal met' : 'goal NOT met'}`);
    return rows.some((r) => r.errors !== '') ? 1 : 0;
  } finally {
    stopAll();
    await sleep(300);
    await fs.rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--serve') {
  await serve(process.argv[3] as string, process.argv.slice(4));
} else {
  process.exitCode = await bench();
}
