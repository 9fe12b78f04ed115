/**
 * Bulk-update benchmark: `depad agent` with N deployments (default 20) of one web service exposed
 * through the proxy, class `bench`; a load generator keeps C keep-alive clients (default 16)
 * requesting every deployment's hostname in turn while `depad update -l class=bench -s web
 * --image …` rolls a new image through all of them with --max-parallel 1, then back with 4. Prints
 * each roll's total time and the requests that failed meanwhile (goal 0). Everything it made is
 * destroyed at the end.
 * Run: scripts/node bench/bulk-update.ts [deployments] [clients]   (on a temporary DEPAD_HOME)
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { DEPAD, startBenchAgent } from './bench-agent.ts';

const COUNT = Number(process.argv[2] ?? 20);
const CLIENTS = Number(process.argv[3] ?? 16);
const HTTP_PORT = 18981;
const { home, env, depad, cleanup } = await startBenchAgent('bulk', 18944, HTTP_PORT);
const depadAsync = promisify(execFile);

const config = path.join(home, 'bench.yml');
await fs.writeFile(
  config,
  ['services:', '  web:', '    image: depad-example/app:1', '    ports: ["8080"]', '    x-depad: { expose: http, health: { http: /cgi-bin/health }, drain_timeout: 5s }', 'x-depad: { class: bench }', ''].join('\n'),
);
const names = Array.from({ length: COUNT }, (_, i) => `bulk-${String(i).padStart(2, '0')}`);

/** Keep-alive clients requesting every deployment in turn until stopped; counts answers. */
function load() {
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
  let running = true;
  let ok = 0;
  let failed = 0;
  const errors = new Map<string, number>();
  let next = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const host = `web.${names[next++ % names.length]}.localhost`;
      const req = http.get({ host: '127.0.0.1', port: HTTP_PORT, path: '/', headers: { host }, agent: keepAlive }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) ok++;
          else {
            failed++;
            errors.set(String(res.statusCode), (errors.get(String(res.statusCode)) ?? 0) + 1);
          }
          resolve();
        });
      });
      req.on('error', (e: NodeJS.ErrnoException) => {
        failed++;
        errors.set(e.code ?? e.message, (errors.get(e.code ?? e.message) ?? 0) + 1);
        resolve();
      });
    });
  const workers = Array.from({ length: CLIENTS }, async () => {
    while (running) await one();
  });
  return {
    counts: () => ({ ok, failed, errors: Object.fromEntries(errors) }),
    reset: () => ((ok = 0), (failed = 0), errors.clear()),
    stop: async () => {
      running = false;
      await Promise.all(workers);
      keepAlive.destroy();
    },
  };
}

try {
  for (const name of names) depad(['create', '-n', name, '-f', config]);
  console.log(`created ${COUNT} deployments (class bench) through the agent`);
  const traffic = load();
  await new Promise((resolve) => setTimeout(resolve, 2000));
  console.log(`warm-up: ${JSON.stringify(traffic.counts())}`);
  for (const [image, parallel] of [['depad-example/app:2', 1], ['depad-example/app:1', 4]] as const) {
    traffic.reset();
    const t0 = Date.now();
    const { stdout } = await depadAsync(DEPAD, ['--json', 'update', '-l', 'class=bench', '-s', 'web', '--image', image, '--max-parallel', String(parallel)], { env, maxBuffer: 16 * 1024 * 1024 });
    const seconds = (Date.now() - t0) / 1000;
    const outcome = JSON.parse(stdout) as { items: { result: string }[] };
    const c = traffic.counts();
    console.log(
      `update -l class=bench -s web --image ${image} --max-parallel ${parallel}: ${seconds.toFixed(1)} s for ${outcome.items.filter((i) => i.result === 'updated').length}/${COUNT} deployments; requests meanwhile: ${c.ok + c.failed}, failed ${c.failed}${c.failed ? ` ${JSON.stringify(c.errors)}` : ''}`,
    );
  }
  await traffic.stop();
} finally {
  await cleanup(names);
}
