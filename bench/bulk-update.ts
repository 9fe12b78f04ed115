/**
 * Bulk-update benchmark: `depad agent` with N deployments (default 20) of one web service exposed
 * through the proxy, class `bench`; a load generator keeps C keep-alive clients (default 16)
 * requesting every deployment's hostname in turn while `depad update -l class=bench -s web
 * --image …` rolls a new image through all of them with --max-parallel 1, then back with 4. Prints
 * each roll's total time and the requests that failed meanwhile (goal 0). Everything it made is
 * destroyed at the end.
 * Run: scripts/node bench/bulk-update.ts [deployments] [clients]   (on a temporary DEPAD_HOME)
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEPAD = path.join(ROOT, 'bin/depad');
const COUNT = Number(process.argv[2] ?? 20);
const CLIENTS = Number(process.argv[3] ?? 16);
const HTTP_PORT = 18981;
const home = await fs.mkdtemp(path.join(tmpdir(), 'depad-bench-bulk-'));
const env = { ...process.env, DEPAD_HOME: home, DEPAD_PORT_RANGE: '30000-59999', XDG_CONFIG_HOME: path.join(home, 'config') };
const depad = (args: string[]) => execFileSync(DEPAD, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const depadAsync = promisify(execFile);

const config = path.join(home, 'bench.yml');
await fs.writeFile(
  config,
  ['services:', '  web:', '    image: depad-example/app:1', '    ports: ["8080"]', '    x-depad: { expose: http, health: { http: /cgi-bin/health }, drain_timeout: 5s }', 'x-depad: { class: bench }', ''].join('\n'),
);
const agent = spawn(DEPAD, ['--json', 'agent', '--api-port', '18944', '--api-host', '127.0.0.1', '--http-port', String(HTTP_PORT), '--http-host', '127.0.0.1', '--tcp-host', '127.0.0.1'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
await new Promise<void>((resolve) => agent.stdout.on('data', (d: Buffer) => d.toString().includes('{"listening"') && resolve()));
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
  for (const name of names) {
    try {
      depad(['destroy', name]);
    } catch {
      // not created
    }
  }
  agent.kill('SIGTERM');
  await new Promise((resolve) => agent.once('exit', resolve));
  await fs.rm(home, { recursive: true, force: true });
}
