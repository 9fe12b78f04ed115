/**
 * Agent benchmark: `depad agent` with N deployments (default 200: one busybox web service each,
 * without a health check, so that 200 probes a second do not load the host; created through the
 * agent's socket with --no-wait), then the latency of the API's `ls`
 * (GET /v1/deployments over HTTPS with a token, pinned CA; p50 and p99 of R requests, one at a
 * time) and the agent's memory (VmRSS). Everything it made is destroyed at the end.
 * Run: scripts/node bench/agent.ts [deployments] [requests]   (on a temporary DEPAD_HOME)
 * DEPAD_BENCH_MEM=<file>: the agent runs with bench/mem-probe.ts, which appends its memory (JS heap,
 * external, smaps) to <file> every second; the bench prints the breakdown at each RSS reading.
 * DEPAD_BENCH_BIN=<other tree>/bin/depad runs the same bench against another tree.
 */
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { fetchPinnedCa } from '../certs/pin.ts';
import { DEPAD, startBenchAgent } from './bench-agent.ts';

const COUNT = Number(process.argv[2] ?? 200);
const REQUESTS = Number(process.argv[3] ?? 200);
const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

const memFile = process.env.DEPAD_BENCH_MEM;
const probe = fileURLToPath(new URL('./mem-probe.ts', import.meta.url));
const agentEnv = memFile ? { DEPAD_MEM_PROBE_FILE: memFile, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${probe}`.trim() } : {};
// Host ports below the kernel's ephemeral range (32768-60999; 40000-49999 collided with outgoing
// connections) and above the test harness's slots (10000-31999).
const { home, depad, agent, facts, cleanup } = await startBenchAgent('agent', 18943, 18980, '32000-32699', agentEnv);
/** The agent's RSS now (MB), and with the probe, its breakdown (asked for with SIGUSR2). */
const reading = async (when: string) => {
  const rss = rssMb(agent.pid as number);
  if (memFile) {
    agent.kill('SIGUSR2');
    await sleep(300);
    const last = readFileSync(memFile, 'utf8').trim().split('\n').filter((l) => l.includes('"signal"')).at(-1) ?? '{}';
    const m = JSON.parse(last) as Record<string, unknown>;
    console.log(`agent memory ${when}: ${JSON.stringify({ rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, malloced: m.malloced, kernel: m.kernel })}`);
  }
  return rss;
};
console.log(`bench: ${DEPAD}${process.env.NODE_OPTIONS ? ` NODE_OPTIONS=${process.env.NODE_OPTIONS}` : ''}${process.env.MALLOC_ARENA_MAX ? ` MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX}` : ''}`);
const config = path.join(home, 'bench.yml');
await fs.writeFile(config, 'services:\n  web:\n    image: depad-example/app:1\n    environment:\n      APP_NAME: bench\n    ports:\n      - "8080"\n');
const token = depad(['token', 'create', '--name', 'bench', '--scope', 'admin']).trim();
const names = Array.from({ length: COUNT }, (_, i) => `bench-${String(i).padStart(3, '0')}`);
try {
  const rssIdle = await reading('idle');
  const started = Date.now();
  for (const name of names) {
    try {
      depad(['create', '-n', name, '-f', config, '--no-wait']);
    } catch (error) {
      // Something else took the port between depad's check and docker's bind: as the hint says, once more.
      if (!/DEPAD_PORT_IN_USE|another program took the port/.test(String((error as { stderr?: unknown }).stderr))) throw error;
      depad(['create', '-n', name, '-f', config, '--no-wait']);
    }
  }
  console.log(`created ${COUNT} deployments through the agent in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  await sleep(2000); // the health monitor's refresh after the last create
  const rssCreated = await reading('after the creates');
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
  const rssAfter = await reading('after the requests');
  console.log(`agent RSS: ${rssIdle.toFixed(0)} MB idle with no deployments, ${rssCreated.toFixed(0)} MB after ${COUNT} creates, ${rssAfter.toFixed(0)} MB with ${COUNT} deployments after the requests`);
} finally {
  await cleanup(names);
}
