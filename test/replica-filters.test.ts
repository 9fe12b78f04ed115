/**
 * Replicas in ps, logs, stats and health, against the real engine through bin/depad: a service of
 * three replicas prints `web[2] | …` lines (the plain `worker` prefix for one replica), stats and
 * health show a row per replica, `-s web --replica 2` and `-s 'web[2]'` pick one, and a bad
 * `--replica` is refused saying what exists. One test does the same through the agent (its API's
 * service and replica query parameters).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import type { DeploymentView } from '../src/deploy/status.ts';
import { agentSocketPath } from '../src/home.ts';
import { socketGet } from './helpers/agent-api.ts';
import { startAgent } from './helpers/agent-process.ts';
import { createHarness, harness, testPorts, type Harness } from './helpers/harness.ts';

const run = promisify(execFile);

const CONFIG = `services:
  web:
    image: depad-example/app:1
    command: ["sh", "-c", "echo hello from $$(hostname); exec sleep 3600"]
    stop_grace_period: 1s
    deploy:
      replicas: 3
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
      retries: 3
  worker:
    image: depad-example/app:1
    command: ["sh", "-c", "echo worker up; exec sleep 3600"]
    stop_grace_period: 1s
`;

let h: Harness;
let cleanup: () => Promise<void>;
let name: string;

/** replica number → the hostname of that replica's container, from the engine. */
async function hostnames(h: Harness, deployment: string): Promise<Map<number, string>> {
  const view = await h.json<DeploymentView>(['inspect', deployment]);
  const web = view.services.find((s) => s.name === 'web')!;
  const pairs = await Promise.all(
    web.instances.map(async (i) => (await run('docker', ['inspect', '-f', '{{index .Config.Labels "depad.replica"}} {{.Config.Hostname}}', i.container])).stdout.trim().split(' ')),
  );
  return new Map(pairs.map(([replica, host]) => [Number(replica), host ?? '']));
}

async function write(h: Harness): Promise<string> {
  const file = path.join(h.dir, 'compose.yaml');
  await fs.writeFile(file, CONFIG);
  return file;
}

test.before(async () => {
  ({ h, cleanup } = await createHarness('replica-filters', (m) => {
    throw new Error(m);
  }));
  name = h.name('rf');
  const r = await h.run(['create', '-n', name, '-f', await write(h)]);
  if (r.code !== 0) throw new Error(r.stderr);
});
test.after.always(async () => cleanup?.());

test.serial('logs: each line names its replica (web[2] | …), a service of one keeps its plain prefix; --json has replica', async (t) => {
  const hosts = await hostnames(h, name);
  t.is(hosts.size, 3);
  const r = await h.run(['logs', name]);
  t.is(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n').filter(Boolean);
  for (const [replica, host] of hosts) t.true(lines.includes(`web[${replica}]   | hello from ${host}`), `web[${replica}] printed its own hostname ${host}:\n${r.stdout}`);
  t.true(lines.some((l) => /^worker {3,}\| worker up$/.test(l)), r.stdout);
  t.false(lines.some((l) => l.startsWith('worker[')), 'one replica: no number');
  const json = (await h.run(['--json', 'logs', name, '-s', 'web'])).stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { service: string; replica: number; text: string });
  t.deepEqual(json.map((l) => l.replica).sort(), [1, 2, 3]);
  for (const l of json) t.is(l.text, `hello from ${hosts.get(l.replica)}`);
});

test.serial('logs --replica, -s web[n] and service logs --replica: only that replica', async (t) => {
  const hosts = await hostnames(h, name);
  const only = async (args: string[]) => {
    const r = await h.run(args);
    t.is(r.code, 0, r.stderr);
    return r.stdout.split('\n').filter(Boolean);
  };
  t.deepEqual(await only(['logs', name, '-s', 'web', '--replica', '2']), [`web[2]   | hello from ${hosts.get(2)}`]);
  t.deepEqual(await only(['logs', name, '-s', 'web[3]']), [`web[3]   | hello from ${hosts.get(3)}`]);
  t.deepEqual(await only(['service', 'logs', name, 'web', '--replica', '1']), [`web[1]   | hello from ${hosts.get(1)}`]);
  t.deepEqual(await only(['logs', name, '-s', 'web[1]', '-s', 'web[3]', '-s', 'worker']), [`web[1]   | hello from ${hosts.get(1)}`, `web[3]   | hello from ${hosts.get(3)}`, 'worker   | worker up']);
});

test.serial('ps and inspect with --replica or -s web[2]: the one row of that replica', async (t) => {
  const view = await h.json<DeploymentView>(['inspect', name]);
  const second = view.services.find((s) => s.name === 'web')!.instances.find((i) => i.replica === 2)!;
  const r = await h.run(['ps', name, '-s', 'web', '--replica', '2']);
  t.is(r.code, 0, r.stderr);
  const rows = r.stdout.split('\n').filter(Boolean).slice(1);
  t.is(rows.length, 1, r.stdout);
  t.regex(rows[0]!, new RegExp(`^web\\[2\\]\\s+${second.container}\\s+running\\s+healthy`));
  const json = await h.json<Array<{ replica: number; container: string }>>(['ps', name, '-s', 'web[2]']);
  t.deepEqual(json.map((i) => [i.replica, i.container]), [[2, second.container]]);
  const inspect = await h.json<DeploymentView>(['inspect', name, '-s', 'web', '--replica', '2']);
  t.deepEqual(inspect.services.map((s) => [s.name, s.replicas, s.instances.map((i) => i.container)]), [['web', 3, [second.container]]]);
});

test.serial('stats: a row per replica named web[n] (replica and replicas in --json); --replica keeps one', async (t) => {
  const all = await h.json<Array<{ service: string; replica: number; replicas: number; container: string }>>(['stats', name]);
  t.deepEqual(all.map((u) => `${u.service}:${u.replica}/${u.replicas}`), ['web:1/3', 'web:2/3', 'web:3/3', 'worker:1/1']);
  const table = await h.run(['stats', name]);
  t.is(table.code, 0, table.stderr);
  for (const n of [1, 2, 3]) t.regex(table.stdout, new RegExp(`^${name}\\s+web\\[${n}\\]\\s+depad-${name}-web-\\d+\\s`, 'm'));
  t.regex(table.stdout, new RegExp(`^${name}\\s+worker\\s+depad-${name}-worker-1\\s`, 'm'));
  const one = await h.json<Array<{ replica: number; container: string }>>(['stats', name, '-s', 'web', '--replica', '3']);
  t.deepEqual(one.map((u) => [u.replica, u.container]), [[3, all.find((u) => u.replica === 3 && u.service === 'web')!.container]]);
  const docker = (await run('docker', ['inspect', '-f', '{{index .Config.Labels "depad.replica"}}', one[0]!.container])).stdout.trim();
  t.is(docker, '3', 'the engine says it is replica 3');
});

test.serial('health (no agent: the containers\' own checks): a row per replica, and the filter', async (t) => {
  const r = await h.run(['health', name]);
  t.is(r.code, 0, r.stderr);
  for (const n of [1, 2, 3]) t.regex(r.stdout, new RegExp(`^${name}\\s+web\\[${n}\\]\\s+depad-${name}-web-\\d+\\s+container\\s+healthy`, 'm'));
  const one = await h.json<Array<{ service: string; replica: number; replicas: number }>>(['health', name, '-s', 'web[2]']);
  t.deepEqual(one.map((x) => [x.service, x.replica, x.replicas]), [['web', 2, 3]]);
});

test.serial('a bad --replica is refused, saying what exists (exit 2 usage, exit 4 not found)', async (t) => {
  const cases: Array<[string[], number, RegExp]> = [
    [['logs', name, '--replica', '2'], 2, /--replica 2 needs exactly one service \(-s\/--service\), none was named/],
    [['ps', name, '-s', 'web', '-s', 'worker', '--replica', '2'], 2, /needs exactly one service .*not 2: web, worker/],
    [['stats', name, '-s', 'web', '--replica', '0'], 2, /--replica: "0" is not a replica number/],
    [['ps', name, '-s', 'web[2]', '--replica', '2'], 2, /both name a replica/],
    [['logs', name, '-s', 'web[x]'], 2, /-s\/--service web\[x\]: "x" is not a replica number/],
    [['stats', '-s', 'web', '--replica', '1'], 2, /stats: -s and --replica need a deployment/],
    [['logs', name, '-s', 'web', '--replica', '5'], 4, /service web of deployment \S+ has no replica 5: it has 3 replicas, 1…3 \(web\[1\] … web\[3\]\)/],
    [['health', name, '-s', 'worker[2]'], 4, /service worker of deployment \S+ has no replica 2: it has one replica, 1/],
    [['ps', name, '-s', 'nope', '--replica', '1'], 4, /has no service "nope"/],
  ];
  for (const [args, code, message] of cases) {
    const r = await h.run(args);
    t.is(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, message, args.join(' '));
  }
  const json = await h.run(['--json', 'stats', name, '-s', 'web', '--replica', '7']);
  t.is((JSON.parse(json.stderr) as { error: { code: string } }).error.code, 'DEPAD_NOT_FOUND');
});

test('through the agent: health, logs and stats per replica, filtered by the API\'s query parameters; a bad replica refused', async (t) => {
  const ha = await harness(t);
  const port = await testPorts(t);
  await startAgent(t, ha, port);
  const dep = ha.name('rfa');
  const created = await ha.run(['create', '-n', dep, '-f', await write(ha)]);
  t.is(created.code, 0, created.stderr);
  const hosts = await hostnames(ha, dep);
  // The agent's monitor finds the replicas' own checks shortly after the create.
  let rows: Array<{ service: string; replica: number; replicas: number; status: string }> = [];
  for (let i = 0; i < 100 && rows.length < 3; i++) {
    rows = await ha.json(['health', dep]);
    if (rows.length < 3) await new Promise((resolve) => setTimeout(resolve, 200));
  }
  t.deepEqual(rows.map((x) => `${x.service}:${x.replica}/${x.replicas}`), ['web:1/3', 'web:2/3', 'web:3/3']);
  const one = await ha.json<Array<{ replica: number }>>(['health', dep, '-s', 'web', '--replica', '2']);
  t.deepEqual(one.map((x) => x.replica), [2]);
  const logs = await ha.run(['logs', dep, '-s', 'web[2]']);
  t.is(logs.code, 0, logs.stderr);
  t.is(logs.stdout, `web[2]   | hello from ${hosts.get(2)}\n`);
  const all = await ha.run(['logs', dep]);
  t.regex(all.stdout, new RegExp(`^web\\[3\\] +\\| hello from ${hosts.get(3)}$`, 'm'));
  const stats = await ha.json<Array<{ service: string; replica: number }>>(['stats', dep, '-s', 'web', '--replica', '1']);
  t.deepEqual(stats.map((u) => [u.service, u.replica]), [['web', 1]]);
  const ps = await ha.run(['ps', dep, '-s', 'web[3]']);
  t.is(ps.stdout.split('\n').filter(Boolean).length, 2, ps.stdout);
  t.regex(ps.stdout, /^web\[3\]\s/m);
  const bad = await ha.run(['health', dep, '-s', 'web', '--replica', '9']);
  t.is(bad.code, 4, bad.stderr);
  t.regex(bad.stderr, /service web of deployment \S+ has no replica 9: it has 3 replicas/);
  // The API itself: the same query parameters, in its OpenAPI document too.
  const socket = agentSocketPath(ha.home);
  const api = await socketGet<Array<{ replica: number }>>(socket, `/v1/deployments/${dep}/stats?service=web%5B3%5D`);
  t.is(api.status, 200);
  t.deepEqual(api.body.map((u) => u.replica), [3]);
  const refused = await socketGet<{ error: { code: string; message: string } }>(socket, `/v1/deployments/${dep}/stats?replica=2`);
  t.is(refused.status, 400);
  t.regex(refused.body.error.message, /query parameter replica 2 needs exactly one service \(query parameter service\)/);
  const doc = await socketGet<{ paths: Record<string, Record<string, { parameters?: Array<{ name: string; in: string }> }>> }>(socket, '/v1/openapi.json');
  t.deepEqual(doc.body.paths['/v1/deployments/{deployment}/logs']!.get!.parameters!.filter((p) => p.in === 'query').map((p) => p.name), ['service', 'replica', 'tail', 'follow', 'timestamps']);
  t.deepEqual(doc.body.paths['/v1/health']!.get!.parameters!.map((p) => p.name), ['deployment', 'service', 'replica']);
});
