/**
 * Agent benchmark: `depad agent` with N deployments (default 200: one busybox web service each,
 * without a health check, so that 200 probes a second do not load the host; created through the
 * agent's socket with --no-wait), then the latency of the API's `ls`
 * (GET /v1/deployments over HTTPS with a token, pinned CA; p50 and p99 of R requests, one at a
 * time) and the agent's memory (VmRSS). Everything it made is destroyed at the end.
 * Run: scripts/node bench/agent.ts [deployments] [requests]   (on a temporary DEPAD_HOME)
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fetchPinnedCa } from '../certs/pin.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEPAD = path.join(ROOT, 'bin/depad');
const COUNT = Number(process.argv[2] ?? 200);
const REQUESTS = Number(process.argv[3] ?? 200);
const home = await fs.mkdtemp(path.join(tmpdir(), 'depad-bench-agent-'));
const env = { ...process.env, DEPAD_HOME: home, DEPAD_PORT_RANGE: '40000-49999', XDG_CONFIG_HOME: path.join(home, 'config') };
const depad = (args: string[]) => execFileSync(DEPAD, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

const config = path.join(home, 'bench.yml');
await fs.writeFile(config, 'services:\n  web:\n    image: depad-example/app:1\n    environment:\n      APP_NAME: bench\n    ports:\n      - "8080"\n');
const token = depad(['token', 'create', '--name', 'bench', '--scope', 'admin']).trim();
const agent = spawn(DEPAD, ['--json', 'agent', '--api-port', '18943', '--api-host', '127.0.0.1', '--http-port', '18980', '--http-host', '127.0.0.1', '--tcp-host', '127.0.0.1'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
const facts = await new Promise<{ fingerprint: string; apiPort: number }>((resolve) => {
  let out = '';
  agent.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    const line = out.split('\n').find((l) => l.startsWith('{'));
    if (line) resolve((JSON.parse(line) as { listening: { fingerprint: string; apiPort: number } }).listening);
  });
});
const names = Array.from({ length: COUNT }, (_, i) => `bench-${String(i).padStart(3, '0')}`);
try {
  const rssIdle = rssMb(agent.pid as number);
  const started = Date.now();
  for (const name of names) depad(['create', '-n', name, '-f', config, '--no-wait']);
  console.log(`created ${COUNT} deployments through the agent in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const ca = await fetchPinnedCa('127.0.0.1', facts.apiPort, facts.fingerprint, { servername: 'localhost' });
  const ls = () =>
    new Promise<number>((resolve, reject) => {
      const t0 = process.hrtime.bigint();
      https
        .get({ host: '127.0.0.1', port: facts.apiPort, path: '/v1/deployments', servername: 'localhost', ca, headers: { authorization: `Bearer ${token}` }, agent: false }, (res) => {
          let n = 0;
          res.on('data', (d: Buffer) => (n += d.length));
          res.on('end', () => (res.statusCode === 200 && n > 0 ? resolve(Number(process.hrtime.bigint() - t0) / 1e6) : reject(new Error(`status ${res.statusCode}`))));
        })
        .on('error', reject);
    });
  for (let i = 0; i < 5; i++) await ls();
  const times: number[] = [];
  for (let i = 0; i < REQUESTS; i++) times.push(await ls());
  times.sort((a, b) => a - b);
  const pct = (p: number) => times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))] as number;
  console.log(`API ls with ${COUNT} deployments, ${REQUESTS} requests one at a time over HTTPS: p50 ${pct(50).toFixed(1)} ms, p99 ${pct(99).toFixed(1)} ms, max ${(times.at(-1) as number).toFixed(1)} ms`);
  console.log(`agent RSS: ${rssIdle.toFixed(0)} MB idle with no deployments, ${rssMb(agent.pid as number).toFixed(0)} MB with ${COUNT} deployments after the requests`);
} finally {
  for (const name of names) {
    try {
      depad(['destroy', name]);
    } catch (error) {
      const text = String((error as { stderr?: unknown }).stderr ?? error);
      if (!text.includes('DEPAD_NOT_FOUND') && !/no deployment named/.test(text)) console.error(`bench: could not destroy ${name}: ${text.trim().split('\n')[0]}`);
    }
  }
  agent.kill('SIGTERM');
  await new Promise((resolve) => agent.once('exit', resolve));
  await fs.rm(home, { recursive: true, force: true });
}
