/**
 * bench/create: create + destroy of the three-service clinic example, through depad's CLI
 * versus the same containers made directly through the Engine API (the floor: the plan depad
 * renders, created and started in the same order with the same health waits, then removed).
 * Runs alternate side by side; prints each run, the medians and their ratio.
 *   scripts/node bench/create.ts [runs=5]
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { loadConfig } from '../src/config/index.ts';
import { Engine } from '../src/engine/engine.ts';
import type { ContainerPlan } from '../src/engine/types.ts';
import { render } from '../src/render/render.ts';

const root = path.resolve(import.meta.dirname, '..');
const depad = path.join(root, 'bin/depad');
const config = path.join(root, 'examples/clinic/depad.yml');
const runs = Number(process.argv[2] ?? 5);
const engine = new Engine();
const home = await fs.mkdtemp(path.join(os.tmpdir(), 'depad-bench-'));
const env = { ...process.env, DEPAD_HOME: home, DEPAD_PORT_RANGE: '61000-61999' };

async function viaDepad(i: number): Promise<number> {
  const name = `bench-depad-${i}`;
  const started = performance.now();
  await promisify(execFile)(depad, ['create', '-n', name, '-f', config], { env });
  await promisify(execFile)(depad, ['destroy', name], { env });
  return performance.now() - started;
}

/** The floor: the same plan, straight to the engine, same order and waits, no depad bookkeeping. */
async function direct(i: number): Promise<number> {
  const spec = await loadConfig(config, {});
  const ports = [
    { service: 'db', target: 5432, protocol: 'tcp' as const, host: 62000 + i * 2, role: 'instance' as const, instance: 1 },
    { service: 'web', target: 8080, protocol: 'tcp' as const, host: 62001 + i * 2, role: 'instance' as const, instance: 1 },
  ];
  const id = `${'f'.repeat(24)}${String(i).padStart(8, '0')}`;
  const plan = render(spec, { id, name: `bench-floor-${i}`, revision: 1, rootDir: path.join(home, 'floor'), domain: 'localhost' }, ports);
  const started = performance.now();
  for (const n of plan.networks) await engine.createNetwork(n);
  for (const v of plan.volumes) await engine.createVolume(v);
  const ids = new Map<string, string>();
  const waitHealthy = async (cid: string) => {
    for (;;) {
      if ((await engine.inspectContainer(cid))?.health === 'healthy') return;
      await sleep(50);
    }
  };
  for (const c of plan.containers as ContainerPlan[]) {
    for (const [dep, { condition }] of Object.entries(c.dependsOn)) if (condition === 'service_healthy') await waitHealthy(ids.get(dep)!);
    const cid = await engine.createContainer(c);
    await engine.startContainer(cid);
    ids.set(c.service, cid);
  }
  await waitHealthy(ids.get('web')!);
  for (const cid of ids.values()) await engine.removeContainer(cid);
  for (const n of plan.networks) await engine.removeNetwork(n.name);
  for (const v of plan.volumes) await engine.removeVolume(v.name);
  return performance.now() - started;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const d: number[] = [];
const f: number[] = [];
try {
  await engine.ping();
  await fs.mkdir(path.join(home, 'floor', 'static'), { recursive: true });
  for (let i = 0; i < runs; i++) {
    f.push(await direct(i));
    d.push(await viaDepad(i));
    console.log(`run ${i + 1}: depad ${(d[i]! / 1000).toFixed(2)} s, engine API ${(f[i]! / 1000).toFixed(2)} s`);
  }
  console.log(`create+destroy, clinic example (3 services, 1 network, 1 volume), median of ${runs}:`);
  console.log(`  depad (CLI, 2 processes)  ${(median(d) / 1000).toFixed(2)} s`);
  console.log(`  engine API (the floor)    ${(median(f) / 1000).toFixed(2)} s`);
  console.log(`  ratio                     ${(median(d) / median(f)).toFixed(2)}x  (goal <= 1.2x)`);
} finally {
  await fs.rm(home, { recursive: true, force: true });
}
