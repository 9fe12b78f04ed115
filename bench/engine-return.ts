/**
 * Engine-return benchmark: on a lab host (a dockerd of its own in a network namespace, see
 * test/helpers/lab-engine.ts; the machine's engine is not touched), an agent with N routed
 * deployments (default 20; depad-example/app:1 with an HTTP health check), then the engine is
 * restarted R times (default 3) and the bench measures, from the moment the engine answers again,
 * how long until every route answers 200 through the agent's proxy (polled every 50 ms).
 * Everything is removed at the end. Run as root: scripts/node bench/engine-return.ts [deployments] [restarts]
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { DEPAD } from './bench-agent.ts';
import { startLabEngine } from '../test/helpers/lab-engine.ts';

const COUNT = Number(process.argv[2] ?? 20);
const RESTARTS = Number(process.argv[3] ?? 3);
const APP = 'depad-example/app:1';

const get = (address: string, host: string) =>
  new Promise<number>((resolve) => {
    const req = http.get({ host: address, port: 80, path: '/cgi-bin/health', headers: { host }, agent: false, timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });

const lab = await startLabEngine({ images: [APP] });
// Interrupted (Ctrl-C, timeout): the lab is removed all the same.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void lab.remove().finally(() => process.exit(130)));
const home = await fs.mkdtemp(path.join(os.tmpdir(), 'depad-bench-return-'));
const env = { ...process.env, DOCKER_HOST: lab.dockerHost, DEPAD_HOME: home, DEPAD_PORT_RANGE: '20000-29999' };
const depad = async (args: string[]) => {
  const r = await lab.exec(DEPAD, args, { env, timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`depad ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
try {
  const log = await fs.open(path.join(os.tmpdir(), 'depad-bench-engine-return.log'), 'w');
  const agent = lab.spawn(DEPAD, ['--json', 'agent', '--api-port', '8443', '--api-host', '127.0.0.1', '--http-port', '80', '--http-host', '0.0.0.0'], { env, stdio: ['ignore', 'pipe', log.fd] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    agent.stdout!.on('data', (d: Buffer) => ((out += d.toString()), out.includes('"listening"') && resolve()));
    agent.once('exit', (code) => reject(new Error(`agent exited ${code}`)));
  });
  const config = path.join(home, 'web.yml');
  await fs.writeFile(config, `services:\n  web:\n    image: ${APP}\n    ports: ["8080"]\n    x-depad:\n      expose: http\n      health: { http: /cgi-bin/health, status: 200 }\n`);
  const names = Array.from({ length: COUNT }, (_, i) => `ret-${String(i).padStart(2, '0')}`);
  const started = Date.now();
  for (const name of names) await depad(['create', '-n', name, '-f', config, '--no-wait']);
  console.log(`created ${COUNT} deployments on the lab host in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const allServe = async () => (await Promise.all(names.map((n) => get(lab.address, `web.${n}.localhost`)))).every((s) => s === 200);
  const deadline = Date.now() + 120_000;
  while (!(await allServe())) {
    if (Date.now() > deadline) throw new Error(`not every route serves after the creates (agent log: ${path.join(os.tmpdir(), 'depad-bench-engine-return.log')})`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const times: number[] = [];
  for (let i = 0; i < RESTARTS; i++) {
    const t0 = Date.now();
    await lab.stop();
    const stopped = Date.now();
    await lab.start();
    const answered = Date.now();
    while (!(await allServe())) await new Promise((resolve) => setTimeout(resolve, 50));
    times.push(Date.now() - answered);
    console.log(`restart ${i + 1}: engine stop ${((stopped - t0) / 1000).toFixed(1)} s, start ${((answered - stopped) / 1000).toFixed(1)} s; every route served ${Date.now() - answered} ms after the engine answered`);
  }
  console.log(`${COUNT} deployments, ${RESTARTS} engine restarts: every route serving again ${Math.min(...times)}–${Math.max(...times)} ms after the engine answered (median ${times.sort((a, b) => a - b)[Math.floor(times.length / 2)]} ms)`);
  for (const name of names) await depad(['destroy', name]).catch((error: Error) => console.error(error.message));
  agent.kill('SIGTERM');
} finally {
  await lab.remove();
  spawnSync('rm', ['-rf', home]);
}
