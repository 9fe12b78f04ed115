/**
 * The cluster lab (test/helpers/lab-cluster.ts, scripts/lab): three hosts, each its own engine
 * and agent on one bridge; hosts reach each other; a deployment created on host-2 through its
 * agent from the root namespace answers at host-2's proxy; `scripts/lab status` sees a killed
 * agent down and, once started again, every host up; `up` over a running lab is refused, `down` leaves nothing — also after an `up` that was
 * killed. The machine's engine is not touched: a sentinel container on it keeps running,
 * unrestarted. Tests run on cluster ids of their own (1–9), never on scripts/lab's 0.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEPAD, ROOT } from './helpers/harness.ts';
import { claimLabClusterId, clientEnv, clusterLayout, clusterLeftovers, hostEngine, hostLayout, readState, startHostAgent, startLabCluster, stopHostAgent } from './helpers/lab-cluster.ts';
import { labPaths, labProcesses } from './helpers/lab-host.ts';
import { must, run } from './helpers/lab-proc.ts';

const APP = 'depad-example/app:1';
const LAB = path.join(ROOT, 'scripts/lab');

/** GET over node:http (fetch would not send a Host header of its own). */
function get(host: string, hostHeader: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port: 80, path: '/', headers: { host: hostHeader, connection: 'close' }, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET http://${host}/: timeout`)));
    req.on('error', reject);
  });
}

/** Connects to address:port from a host's namespace: 'open', 'timeout' (2 s) or the error's code. */
async function connectFrom(netns: string, address: string, port: number): Promise<string> {
  const script = `const s = require('node:net').connect(${port}, ${JSON.stringify(address)}); s.setTimeout(2000, () => (console.log('timeout'), process.exit(0))); s.on('connect', () => (console.log('open'), process.exit(0))); s.on('error', (e) => (console.log(e.code), process.exit(0)));`;
  const r = await run('nsenter', [`--net=${netns}`, '--', process.execPath, '-e', script]);
  return r.stdout.trim() || `exit ${r.code}: ${r.stderr}`;
}

/** A sentinel on the machine's engine; returns a check that it still runs, unrestarted. */
async function sentinel(t: import('ava').ExecutionContext): Promise<() => Promise<void>> {
  const name = `depad-lab-cluster-sentinel-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  await must('docker', ['run', '-d', '--name', name, '--label', 'depad.test=lab-cluster', APP]);
  t.teardown(() => run('docker', ['rm', '-f', name]).then(() => undefined));
  const inspect = async () => (await must('docker', ['inspect', '--format', '{{.State.Status}} {{.State.StartedAt}}', name])).trim();
  const before = await inspect();
  return async () => {
    t.is(await inspect(), before, "the machine's engine and its containers were not touched");
  };
}

/** What the cluster left, checked one by one (clusterLeftovers is the helper's own view; this is the test's). */
async function leftovers(id: number, hosts: number): Promise<string[]> {
  const c = clusterLayout(id);
  const found: string[] = [];
  const netns = (await run('ip', ['netns', 'list'])).stdout;
  const links = (await run('ip', ['-o', 'link', 'show'])).stdout;
  for (let i = 1; i <= hosts; i++) {
    const h = hostLayout(id, i);
    if (netns.includes(h.netnsName)) found.push(`netns ${h.netnsName}`);
    if (links.includes(`${h.veth}@`) || links.includes(`${h.veth}:`)) found.push(`link ${h.veth}`);
    const pids = await labProcesses(h.netnsName, labPaths(h.netnsName, h.place));
    if (pids.length) found.push(`processes ${pids.join(' ')}`);
    for (const dir of [h.place.run, h.place.data]) if (await fs.lstat(dir).catch(() => undefined)) found.push(dir);
  }
  if (links.includes(`${c.bridge}:`)) found.push(`bridge ${c.bridge}`);
  if ((await must('iptables-save', [])).includes(c.rule)) found.push(`iptables ${c.rule}`);
  for (const dir of [c.run, c.data]) if (await fs.lstat(dir).catch(() => undefined)) found.push(dir);
  for (const root of ['/sys/fs/cgroup', '/sys/fs/cgroup/pids', '/sys/fs/cgroup/memory']) {
    for (const e of await fs.readdir(path.join(root, 'depad-lab')).catch(() => [] as string[])) if (e.startsWith(c.netnsPrefix)) found.push(`cgroup ${root}/depad-lab/${e}`);
  }
  found.push(...(await clusterLeftovers(id)));
  return found;
}

test('three hosts: own engines, reach each other, a deployment on host-2 answers at its proxy; status, up refused, down leaves nothing', async (t) => {
  const untouched = await sentinel(t);
  const mainId = (await must('docker', ['info', '--format', '{{.ID}}'])).trim();
  const labels = [{ region: 'eu', zone: 'a' }, { region: 'eu', zone: 'b' }, { region: 'us', zone: 'a' }];
  let started = Date.now();
  const state = await startLabCluster(t, 3, { labels, images: [APP] });
  t.log(`up 3 hosts: ${Date.now() - started} ms (cluster ${state.id})`);
  const env = { ...process.env, DEPAD_LAB_CLUSTER: String(state.id) };
  const [h1, h2, h3] = state.hosts;
  if (!h1 || !h2 || !h3) return t.fail('three hosts');

  t.deepEqual(state.hosts.map((h) => [h.name, h.address, h.apiUrl, h.labels]), [1, 2, 3].map((i) => [`host-${i}`, `10.251.${state.id}.${10 + i}`, `https://10.251.${state.id}.${10 + i}:8443`, labels[i - 1]]));
  const file = clusterLayout(state.id).stateFile;
  t.is((await fs.stat(file)).mode & 0o777, 0o600, 'the state file holds tokens: 0600');
  t.deepEqual(await readState(state.id), state);
  for (const h of state.hosts) t.regex(h.token, /^depad_/, `${h.name}: an admin token`);

  const ids = await Promise.all(state.hosts.map((h) => must('docker', ['-H', h.dockerHost, 'info', '--format', '{{.ID}}']).then((s) => s.trim())));
  t.is(new Set([...ids, mainId]).size, 4, 'each host its own engine, none the machine’s');

  // host-1 → host-2: the CLI inside host-1's namespace, against host-2's agent (TLS pinned, token checked).
  const across = await run('nsenter', [`--net=${h1.netns}`, '--', DEPAD, '--json', 'ls'], { env: clientEnv(h2) });
  t.is(across.code, 0, `host-1 reaches host-2's agent at ${h2.apiUrl}: ${across.stderr}`);

  // Traffic stays on the lab's /24: the root namespace answers on the bridge's address only, nothing is forwarded beyond it.
  const server = net.createServer((socket) => socket.on('error', () => undefined).end('root\n')).listen(0, '0.0.0.0');
  t.teardown(() => void server.close());
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const machine = /\bsrc (\d+\.\d+\.\d+\.\d+)/.exec((await must('ip', ['-4', 'route', 'get', '1.1.1.1'])))?.[1];
  t.truthy(machine, "the machine's own address");
  t.is(await connectFrom(h1.netns, state.gateway, port), 'open', 'a host reaches the root namespace at the bridge address');
  t.is(await connectFrom(h1.netns, machine!, port), 'timeout', "but not the machine's other addresses");
  t.is(await connectFrom(h1.netns, '1.1.1.1', 80), 'timeout', 'nor anything beyond the machine');

  // A deployment on host-2 through its agent, from the root namespace; served by host-2's proxy.
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'depad-lab-cluster-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const config = path.join(dir, 'depad.yml');
  await fs.writeFile(config, `services:\n  web:\n    image: ${APP}\n    x-depad:\n      expose: http\n      port: 8080\n      health: { http: /cgi-bin/health, status: 200 }\n`);
  started = Date.now();
  const created = await run(DEPAD, ['create', '-n', 'hello', '-f', config], { env: clientEnv(h2) });
  t.is(created.code, 0, created.stderr);
  t.log(`create on host-2 through its agent: ${Date.now() - started} ms`);
  let answer = { status: 0, body: '' };
  for (let tries = 0; tries < 50 && answer.status !== 200; tries++) {
    answer = await get(h2.address, 'web.hello.localhost').catch(() => answer);
    if (answer.status !== 200) await sleep(200);
  }
  t.is(answer.status, 200);
  t.regex(answer.body, /depad demo/, `http://${h2.address}/ with Host web.hello.localhost reaches the deployment on host-2`);
  const on = async (h: typeof h1) => (await must('docker', ['-H', h.dockerHost, 'ps', '-q', '--filter', 'label=depad.deployment=hello'])).trim() !== '';
  t.deepEqual([await on(h1), await on(h2), await on(h3)], [false, true, false], "its container is on host-2's engine alone");
  t.is((await get(h1.address, 'web.hello.localhost')).status, 404, "host-1's proxy has no such route (forwarding between hosts is not the lab's)");

  // An agent killed: status says so (exit 3), the engine still answers; started again, it answers.
  await stopHostAgent(h3);
  const down3 = await run(LAB, ['status', '--json'], { env });
  t.is(down3.code, 3, 'a host whose agent does not answer: exit 3');
  t.deepEqual((JSON.parse(down3.stdout) as { hosts: { name: string; engine: boolean; agent: boolean }[] }).hosts.map((h) => [h.name, h.engine, h.agent]), [['host-1', true, true], ['host-2', true, true], ['host-3', true, false]]);
  const pid = h3.agentPid;
  await startHostAgent(state, 'host-3');
  t.not(h3.agentPid, pid, 'a new agent');
  t.is((await readState(state.id))?.hosts[2]?.agentPid, h3.agentPid, 'its pid in the state file');

  // Its engine stopped (as on a reboot) and started again.
  await hostEngine(h3).stop();
  const engineDown = await run(LAB, ['status', '--json'], { env });
  t.is(engineDown.code, 3);
  t.deepEqual((JSON.parse(engineDown.stdout) as { hosts: { engine: boolean }[] }).hosts.map((h) => h.engine), [true, true, false], "host-3's engine does not answer");
  await hostEngine(h3).start();

  const status = await run(LAB, ['status', '--json'], { env });
  t.is(status.code, 0, status.stderr);
  const shown = JSON.parse(status.stdout) as { up: boolean; hosts: { name: string; engine: boolean; agent: boolean }[] };
  t.true(shown.up);
  t.deepEqual(shown.hosts.map((h) => [h.name, h.engine, h.agent]), [['host-1', true, true], ['host-2', true, true], ['host-3', true, true]]);

  // A manager for the lab, host-1 offering less than the machine has; a bad --capacity is a usage error.
  const badCapacity = await run(LAB, ['manager', '--capacity', 'cpus=lots'], { env });
  t.is(badCapacity.code, 2, badCapacity.stderr);
  t.regex(badCapacity.stderr, /--capacity: "cpus=lots" is not cpus=N,memory=SIZE/);
  const manager = await run(LAB, ['manager', '--capacity', 'cpus=1,memory=1g;;'], { env, timeoutMs: 120_000 });
  t.is(manager.code, 0, manager.stderr);
  const [, url, fingerprint] = /--agent (\S+) --fingerprint (\S+)/.exec(manager.stdout) ?? [];
  const managerToken = (await must(LAB, ['token', 'manager'], { env })).trim();
  const hostsAnswer = await run(DEPAD, ['--json', 'hosts'], { env: { ...process.env, DEPAD_HOME: dir, DEPAD_HOST: url!, DEPAD_TOKEN: managerToken, DEPAD_CA_FINGERPRINT: fingerprint! } });
  t.is(hostsAnswer.code, 0, hostsAnswer.stderr);
  const capacities = (JSON.parse(hostsAnswer.stdout) as { name: string; capacity: { cpus: number; memoryBytes: number } }[]).map((h) => [h.name, h.capacity.cpus]);
  t.deepEqual(capacities.map(([n]) => n), ['host-1', 'host-2', 'host-3']);
  t.is(capacities[0]![1], 1, 'host-1 offers what --capacity said');
  t.true((capacities[1]![1] as number) >= 1, 'the others offer the machine');

  const again = await run(LAB, ['up', '1'], { env });
  t.is(again.code, 1, 'up over a running lab is refused');
  t.regex(again.stderr, /a lab of 3 hosts is up since .*scripts\/lab down first/);

  started = Date.now();
  const down = await run(LAB, ['down'], { env });
  t.is(down.code, 0, down.stderr);
  t.log(`down: ${Date.now() - started} ms`);
  t.deepEqual(await leftovers(state.id, 3), []);
  const twice = await run(LAB, ['down'], { env });
  t.is(twice.code, 0, 'down is idempotent');
  t.is(twice.stdout.trim(), 'nothing to remove');
  const none = await run(LAB, ['status'], { env });
  t.is(none.code, 1);
  t.regex(none.stdout, /no lab is up/);
  await untouched();
});

test('down removes what a killed up left', async (t) => {
  const id = await claimLabClusterId(t);
  const env = { ...process.env, DEPAD_LAB_CLUSTER: String(id) };
  const child = spawn(LAB, ['up', '2', '--images', APP], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => void child.kill('SIGKILL'));
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 60_000;
  while (!/engine up/.test(err) && Date.now() < deadline && child.exitCode === null) await sleep(50);
  t.regex(err, /engine up/, 'killed once an engine runs');
  child.kill('SIGKILL');
  await exited;
  t.not((await clusterLeftovers(id)).length, 0, 'the killed up left namespaces, engines, the bridge');
  const refused = await run(LAB, ['up', '1'], { env });
  t.is(refused.code, 1);
  t.regex(refused.stderr, /leftovers of a lab .*scripts\/lab down first/);
  const down = await run(LAB, ['down'], { env });
  t.is(down.code, 0, down.stderr);
  t.deepEqual(await leftovers(id, 2), []);
});
