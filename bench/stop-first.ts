/**
 * Stop-first gap: how long a published port (a service without a proxy route) answers nothing
 * while an update replaces its instance on the same port, beside the same update of a routed
 * service through the proxy (start-first), in one run. A client polls each every 20 ms with a
 * fresh connection; the figure is the longest run of failed polls, per update.
 * Usage: scripts/node bench/stop-first.ts [updates]   (default 5; uses the machine's engine and
 * depad-example/app:1 and :2; everything it makes is removed at the end)
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { DEPAD } from './bench-agent.ts';

const UPDATES = Number(process.argv[2] ?? 5);
const home = await fs.mkdtemp(path.join(os.tmpdir(), 'depad-bench-stopfirst-'));
const env = { ...process.env, DEPAD_HOME: home, DEPAD_PORT_RANGE: '20000-29999' };
const depad = (args: string[]) => {
  const r = spawnSync(DEPAD, args, { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`depad ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};

const get = (port: number, host?: string) =>
  new Promise<boolean>((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/cgi-bin/health', agent: false, timeout: 1000, ...(host ? { headers: { host } } : {}) }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });

/** Polls until `stop`; returns the longest gap (ms) between two successful polls that had failures between them. */
function poll(port: number, host?: string): { stop: () => Promise<number> } {
  let running = true;
  let worst = 0;
  const done = (async () => {
    let failingSince: number | undefined;
    while (running) {
      const ok = await get(port, host);
      const now = Date.now();
      if (!ok && failingSince === undefined) failingSince = now;
      if (ok && failingSince !== undefined) {
        worst = Math.max(worst, now - failingSince);
        failingSince = undefined;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return { stop: async () => ((running = false), await done, worst) };
}

const health = 'healthcheck:\n      test: ["CMD", "/app/bin/probe", "http", "8080", "/cgi-bin/health"]\n      interval: 1s\n      timeout: 2s\n      retries: 10\n';
const direct = path.join(home, 'direct.yml');
await fs.writeFile(direct, `services:\n  web:\n    image: depad-example/app:1\n    ports: ["8080"]\n    ${health}`);
const routed = path.join(home, 'routed.yml');
await fs.writeFile(routed, `services:\n  web:\n    image: depad-example/app:1\n    x-depad:\n      expose: http\n      port: 8080\n      health: { http: /cgi-bin/health, status: 200 }\n`);
const proxyPort = 20999;
const proxy = spawnSync('sh', ['-c', `DEPAD_HOME=${home} ${DEPAD} proxy --http-port ${proxyPort} --http-host 127.0.0.1 >/dev/null 2>&1 & echo $!`], { encoding: 'utf8' });
const proxyPid = Number(proxy.stdout.trim());
try {
  depad(['create', '-n', 'sf-direct', '-f', direct]);
  depad(['create', '-n', 'sf-routed', '-f', routed]);
  const port = (JSON.parse(depad(['inspect', 'sf-direct', '--json'])) as { ports: { host: number; role: string }[] }).ports.find((p) => p.role === 'published')!.host;
  const gaps = { direct: [] as number[], routed: [] as number[] };
  for (let i = 0; i < UPDATES; i++) {
    const image = `depad-example/app:${i % 2 === 0 ? 2 : 1}`;
    for (const [name, probe] of [['direct', () => poll(port)], ['routed', () => poll(proxyPort, 'web.sf-routed.localhost')]] as const) {
      const p = probe();
      const started = Date.now();
      // Not spawnSync: the poller must run meanwhile.
      await new Promise<void>((resolve, reject) => {
        const child = spawn(DEPAD, ['update', `sf-${name}`, '-s', 'web', '--image', image], { env, stdio: 'ignore' });
        child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`update exited ${code}`))));
      });
      const took = Date.now() - started;
      await new Promise((r) => setTimeout(r, 300));
      const gap = await p.stop();
      gaps[name].push(gap);
      console.log(`update ${i + 1} ${name}: ${took} ms, longest gap ${gap} ms`);
    }
  }
  const max = (xs: number[]) => Math.max(...xs);
  const mean = (xs: number[]) => Math.round(xs.reduce((a, b) => a + b, 0) / xs.length);
  console.log(`stop-first (published port, same port): longest gap mean ${mean(gaps.direct)} ms, max ${max(gaps.direct)} ms`);
  console.log(`start-first (proxy route):               longest gap mean ${mean(gaps.routed)} ms, max ${max(gaps.routed)} ms`);
} finally {
  try {
    depad(['destroy', 'sf-direct']);
  } catch {}
  try {
    depad(['destroy', 'sf-routed']);
  } catch {}
  if (proxyPid) process.kill(proxyPid, 'SIGTERM');
  await fs.rm(home, { recursive: true, force: true });
}
