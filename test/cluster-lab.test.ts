/**
 * The cluster on real hosts (the lab: three network namespaces, each with its own Docker Engine
 * and agent, joined to a manager): placement by constraint, by capacity (the fourth big
 * deployment goes to the only host with room, the fifth is refused naming each host's reason),
 * by spread; the same commands through the manager as straight to the host's agent; each
 * deployment only on its host's engine.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import type { DeploymentView } from '../src/deploy/status.ts';
import { clientEnv, hostEngine, parseLabels, startLabCluster } from './helpers/lab-cluster.ts';
import { joinLabCluster } from './helpers/lab-manager.ts';
import { run } from './helpers/lab-proc.ts';
import { DEPAD } from './helpers/harness.ts';

const LABELS = 'region=eu,zone=a;region=eu,zone=b;region=us,zone=a';

test('cluster lab: placement by constraint, capacity and spread on three hosts; the same ps through the manager as on the host', async (t) => {
  t.timeout(360_000); // many steps, each a CLI call through the manager
  const state = await startLabCluster(t, 3, { labels: parseLabels(LABELS), images: ['depad-example/app:1'] });
  const m = await joinLabCluster(t, state, { capacity: ['cpus=1,memory=4g', 'cpus=1,memory=4g', 'cpus=2,memory=4g'] });
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'depad-cluster-lab-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const file = async (name: string, cpus: string, xdepad: string) => {
    const f = path.join(dir, `${name}.yaml`);
    await fs.writeFile(f, `${xdepad ? `x-depad:\n${xdepad}` : ''}services:\n  web:\n    image: depad-example/app:1\n    command: ["/app/bin/web"]\n    deploy: {resources: {limits: {cpus: "${cpus}", memory: 32m}}}\n`);
    return f;
  };
  const hostOf = async (name: string) => (JSON.parse((await m.run(['--json', 'inspect', name])).stdout) as DeploymentView & { host: string }).host;

  // Constraint: region==us is host-3 only.
  const us = await m.run(['create', '-n', 'us-1', '-f', await file('us', '0.1', '  placement: {constraints: ["region==us"]}\n')]);
  t.is(us.code, 0, us.stderr);
  t.is(await hostOf('us-1'), 'host-3');
  t.is((await m.run(['destroy', 'us-1'])).code, 0);

  // Capacity: 1, 1 and 2 CPUs; four deployments of 1 CPU fill them (the least loaded first, ties by name), the fifth fits nowhere.
  const big = await file('big', '1', '');
  const placed: string[] = [];
  for (let i = 1; i <= 4; i++) {
    const r = await m.run(['create', '-n', `big-${i}`, '-f', big]);
    t.is(r.code, 0, r.stderr);
    placed.push(await hostOf(`big-${i}`));
  }
  t.deepEqual(placed, ['host-3', 'host-1', 'host-2', 'host-3'], 'the fourth went to the only host with room');
  const fifth = await m.run(['create', '-n', 'big-5', '-f', big]);
  t.is(fifth.code, 18, fifth.stderr);
  for (const h of ['host-1', 'host-2', 'host-3']) t.regex(fifth.stderr, new RegExp(`${h}: needs 1 CPU.*0 of \\d free`));
  // Each deployment runs on its host's own engine, and only there.
  const onEngine = async (i: number) => (await run('docker', ['-H', state.hosts[i]!.dockerHost, 'ps', '--format', '{{.Names}}'])).stdout.split('\n').filter((n) => n.startsWith('depad-big-')).sort();
  t.deepEqual(await onEngine(0), ['depad-big-2-web-1']);
  t.deepEqual(await onEngine(1), ['depad-big-3-web-1']);
  t.deepEqual(await onEngine(2), ['depad-big-1-web-1', 'depad-big-4-web-1']);

  // The same command through the manager and straight to the host's agent print the same.
  const direct = await run(DEPAD, ['ps', 'big-2'], { env: clientEnv(state.hosts[0]!) });
  t.is((await m.run(['ps', 'big-2'])).stdout, direct.stdout);
  for (let i = 1; i <= 4; i++) t.is((await m.run(['destroy', `big-${i}`])).code, 0);

  // Spread: class web over zone: the second goes to the other zone.
  const web = await file('web', '0.1', '  class: web\n  placement: {spread: zone}\n');
  for (let i = 1; i <= 3; i++) t.is((await m.run(['create', '-n', `web-${i}`, '-f', web])).code, 0);
  const hostsOfWeb = await Promise.all([1, 2, 3].map((i) => hostOf(`web-${i}`)));
  const zoneOf = (host: string) => state.hosts.find((h) => h.name === host)!.labels.zone;
  t.not(zoneOf(hostsOfWeb[0]!), zoneOf(hostsOfWeb[1]!), `spread over zones: ${hostsOfWeb.join(', ')}`);
  t.is(new Set(hostsOfWeb).size, 3, 'three hosts for three, least loaded among the zone with fewest');
});

test('cluster lab: a host whose engine stops is down (its agent says so), verbs on its deployments are refused; the engine back, it serves again', async (t) => {
  t.timeout(360_000);
  const state = await startLabCluster(t, 2, { labels: parseLabels('zone=a;zone=b'), images: ['depad-example/app:1'] });
  const m = await joinLabCluster(t, state);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'depad-cluster-lab-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const f = path.join(dir, 'e.yaml');
  await fs.writeFile(f, 'services:\n  web:\n    image: depad-example/app:1\n    command: ["/app/bin/web"]\n');
  t.is((await m.run(['create', '-n', 'eng', '-f', f, '--on-host', 'host-2'])).code, 0);
  const stateOf = async () => (JSON.parse((await m.run(['--json', 'hosts'])).stdout) as Array<{ name: string; state: string; engine?: { state: string } }>).find((h) => h.name === 'host-2');
  const engine = hostEngine(state.hosts[1]!);
  await engine.stop();
  let seen: Awaited<ReturnType<typeof stateOf>>;
  for (let i = 0; i < 150 && (seen = await stateOf())?.state !== 'down'; i++) await new Promise((r) => setTimeout(r, 200));
  t.is(seen?.state, 'down');
  t.is(seen?.engine?.state, 'down', 'down because its engine is');
  const refused = await m.run(['restart', 'eng']);
  t.is(refused.code, 19, refused.stderr);
  t.regex(refused.stderr, /which is down \(its agent does not reach its engine/);
  await engine.start();
  for (let i = 0; i < 150 && (seen = await stateOf())?.state !== 'ready'; i++) await new Promise((r) => setTimeout(r, 200));
  t.is(seen?.state, 'ready');
  t.is((await m.run(['restart', 'eng'])).code, 0);
  t.regex((await m.run(['ls'])).stdout, /eng\s+host-2\s+\S+\s+running/);
});
