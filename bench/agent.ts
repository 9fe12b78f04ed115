/**
 * Agent benchmark: `depad agent` with N deployments (default 200: one busybox web service each,
 * without a health check, so that 200 probes a second do not load the host; created through the
 * agent's socket with --no-wait), then the latency of the API's `ls`
 * (GET /v1/deployments over HTTPS with a token, pinned CA; p50 and p99 of R requests, one at a
 * time) and the agent's memory (VmRSS). Everything it made is destroyed at the end.
 * Run: scripts/node bench/agent.ts [deployments] [requests]   (on a temporary DEPAD_HOME)
 */
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import { fetchPinnedCa } from '../certs/pin.ts';
import { startBenchAgent } from './bench-agent.ts';

const COUNT = Number(process.argv[2] ?? 200);
const REQUESTS = Number(process.argv[3] ?? 200);
const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

const { home, depad, agent, facts, cleanup } = await startBenchAgent('agent', 18943, 18980, '40000-49999');
const config = path.join(home, 'bench.yml');
await fs.writeFile(config, 'services:\n  web:\n    image: depad-example/app:1\n    environment:\n      APP_NAME: bench\n    ports:\n      - "8080"\n');
const token = depad(['token', 'create', '--name', 'bench', '--scope', 'admin']).trim();
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
  await cleanup(names);
}
