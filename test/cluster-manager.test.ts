/**
 * The cluster manager against real agents and the real engine (agents on this machine, each with
 * its own home and ports; test/helpers/cluster.ts): joining (a wrong or used token refused),
 * hosts, placement by constraint and by capacity with every host's reason, the same CLI verbs
 * through the manager as against one agent, a deploy token's scope across hosts, a host going
 * down and coming back, the manager killed and back.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import { promisify } from 'node:util';
import path from 'node:path';
import test from 'ava';
import type { DeploymentView } from '../src/deploy/status.ts';
import { startCluster } from './helpers/cluster.ts';
import { DEPAD, harness, type Harness } from './helpers/harness.ts';

const docker = async (args: string[]) => (await promisify(execFile)('docker', args)).stdout;
const hostsOf = (stdout: string) => JSON.parse(stdout) as Array<{ name: string; state: string; labels: Record<string, string>; deployments: number }>;

async function config(h: Harness, name: string, extra = ''): Promise<string> {
  const file = path.join(h.dir, `${name}.yaml`);
  await fs.writeFile(file, `${extra}services:\n  web:\n    image: depad-example/app:1\n    command: ["sh", "-c", "echo web-started; exec /app/bin/web"]\n    deploy: {resources: {limits: {cpus: "0.5", memory: 64m}}}\n`);
  return file;
}

test('cluster: join with a wrong or a used token refused; hosts with their labels', async (t) => {
  t.timeout(360_000); // many steps, each a CLI call through the manager
  const h = await harness(t);
  const c = await startCluster(t, h, [{ labels: { zone: 'a' } }, { labels: { zone: 'b' } }]);
  // A wrong token and a used one are refused; nothing joins.
  const wrong = await h.run(['agent', '--api-port', '0', '--http-port', '0', '--join', c.remote[1]!, '--join-token', `DJT1-${c.manager.facts.fingerprint.replace(/:/g, '').toLowerCase()}-000000000000-${'A'.repeat(43)}`], { env: { DEPAD_HOME: path.join(h.dir, 'intruder') } });
  t.is(wrong.code, 13, wrong.stderr);
  t.regex(wrong.stderr, /the join token is not valid/);
  const hosts = hostsOf((await c.run(['--json', 'hosts'])).stdout);
  t.deepEqual(hosts.map((x) => [x.name, x.state, x.labels.zone]), [['host-1', 'ready', 'a'], ['host-2', 'ready', 'b']]);
  // A used token is refused: the first join with it succeeds, the second is refused and changes nothing.
  const once = (JSON.parse((await c.local(['--json', 'manager', 'join-token'])).stdout) as { token: string }).token;
  const joinArgs = (name: string) => ['--json', 'agent', '--api-port', '0', '--api-host', '127.0.0.1', '--http-port', '0', '--http-host', '127.0.0.1', '--join', c.remote[1]!, '--join-token', once, '--name', name, '--advertise-address', '127.0.0.1'];
  const third = spawn(DEPAD, joinArgs('host-3'), { env: { ...process.env, DEPAD_HOME: path.join(h.dir, 'third') }, stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => void third.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    third.stdout!.on('data', (d: Buffer) => ((out += d.toString()), out.includes('"listening"') && resolve()));
    third.once('exit', (code) => reject(new Error(`the first join failed: ${code}`)));
  });
  third.kill('SIGKILL');
  const reused = await h.run(joinArgs('host-4'), { env: { DEPAD_HOME: path.join(h.dir, 'fourth') }, timeoutMs: 60_000 });
  t.is(reused.code, 13, reused.stderr);
  t.regex(reused.stderr, /the join token is not valid \(wrong, already used or expired\)/);
  t.is((await c.run(['hosts', 'rm', 'host-3'])).code, 0);
  t.deepEqual(hostsOf((await c.run(['--json', 'hosts'])).stdout).map((x) => x.name), ['host-1', 'host-2']);

});

test('cluster: placement by constraint, capacity, --on-host and cordon with each host\'s reason; the same verbs through the manager; a deploy token\'s scope', async (t) => {
  t.timeout(360_000);
  const h = await harness(t);
  const c = await startCluster(t, h, [{ labels: { zone: 'a' }, capacity: 'cpus=1,memory=1g' }, { labels: { zone: 'b' }, capacity: 'cpus=1,memory=1g' }]);
  // Placement: a constraint picks host-2; --on-host picks host-1; the dry run shows both.
  const b = h.name('zb');
  const dry = await c.run(['create', '-n', b, '-f', await config(h, 'zb', 'x-depad:\n  placement: {constraints: ["zone==b"]}\n'), '--dry-run']);
  t.is(dry.code, 0, dry.stderr);
  t.regex(dry.stdout, /would place on host-2/);
  t.regex(dry.stdout, /host-1 .*zone==b: its zone is a/);
  t.is((await c.run(['ls', '-q'])).stdout, '', 'a dry run creates nothing');
  const made = await c.run(['create', '-n', b, '-f', await config(h, 'zb', 'x-depad:\n  placement: {constraints: ["zone==b"]}\n')]);
  t.is(made.code, 0, made.stderr);
  t.regex(made.stderr, /placing .* on host host-2/);
  const a = h.name('za');
  t.is((await c.run(['create', '-n', a, '-f', await config(h, 'za'), '--on-host', 'host-1'])).code, 0);
  t.is((await c.run(['ls', '-q', '--on-host', 'host-2'])).stdout, `${b}\n`);
  const perHost = await c.run(['events']);
  t.is(perHost.code, 4, perHost.stderr);
  t.regex(perHost.stderr, /no endpoint GET \/v1\/events on the cluster manager: that is per host[\s\S]*ask the host's agent/);
  const noHost = await c.run(['ls', '--on-host', 'host-9']);
  t.is(noHost.code, 4, noHost.stderr);
  t.regex(noHost.stderr, /the cluster has no host "host-9"[\s\S]*its hosts are: host-1, host-2/);
  t.regex((await c.run(['logs', b, '--tail', '5'])).stdout, /web\s+\| web-started/);
  const stats = await c.run(['--json', 'stats', b]);
  t.is(stats.code, 0, stats.stderr);
  t.true((JSON.parse(stats.stdout) as unknown[]).length > 0, 'stats rows through the manager');
  const health = await c.run(['--json', 'health', b]);
  t.is(health.code, 0, health.stderr);
  const ls = await c.run(['ls']);
  t.regex(ls.stdout, /^NAME\s+HOST\s+ID/);
  t.regex(ls.stdout, new RegExp(`${a}\\s+host-1`));
  t.regex(ls.stdout, new RegExp(`${b}\\s+host-2`));
  // A name is unique across the cluster, and the same name is refused on the other host.
  const again = await c.run(['create', '-n', a, '-f', await config(h, 'za'), '--on-host', 'host-2']);
  t.is(again.code, 5, again.stderr);

  // The verbs relayed: inspect, ps, logs, update, history, stop, start; errors keep their exit codes.
  const view = await c.run(['--json', 'inspect', b]);
  t.is((JSON.parse(view.stdout) as DeploymentView).host, 'host-2');
  t.regex((await c.run(['ps', b])).stdout, new RegExp(`depad-${b}-web-1\\s+running`));
  t.regex((await c.run(['inspect', b])).stdout, /^ {2}host: {5}host-2$/m);
  // host-2 has 1 CPU and b takes 0.5; 2 replicas would take 1.5 (a start-first rolling batch's surge counts): refused there, a dry run too; an update that needs no more goes.
  for (const args of [['scale', b, 'web=2'], ['scale', b, 'web=2', '--dry-run']]) {
    const up = await c.run(args);
    t.is(up.code, 18, up.stderr);
    t.regex(up.stderr, new RegExp(`host host-2 has no room for this change of ${b}: it would need 1\\.5 CPUs \\(0\\.5 now\\), 1 available to it`));
    t.regex(up.stderr, /nothing was changed/);
  }
  t.is((JSON.parse((await c.run(['--json', 'inspect', b])).stdout) as DeploymentView).services[0]!.instances.length, 1);
  const image = await c.run(['update', b, '-s', 'web', '--image', 'depad-example/app:2']);
  t.is(image.code, 0, image.stderr);
  t.regex((await c.run(['history', b])).stdout, /^\*?2\s/m);
  t.is((await c.run(['stop', a])).code, 0);
  t.is((await c.run(['start', a])).code, 0);
  const missing = await c.run(['inspect', 'nope']);
  t.is(missing.code, 4);
  t.regex(missing.stderr, /the cluster has no deployment "nope"/);

  // Capacity: each host has 1 CPU, 0.5 of it reserved; a deployment of 0.75 fits nowhere.
  const big = await c.run(['create', '-n', h.name('big'), '-f', await config(h, 'big', 'x-depad:\n  resources: {cpus: "0.75"}\n')]);
  t.is(big.code, 18, big.stderr);
  t.regex(big.stderr, /host-1: needs 0\.75 CPUs?, 0\.5 of 1 free/);
  t.regex(big.stderr, /host-2: needs 0\.75 CPUs?, 0\.5 of 1 free/, 'the refused scale of b reserved nothing');
  t.is(hostsOf((await c.run(['--json', 'hosts'])).stdout).reduce((n, x) => n + x.deployments, 0), 2, 'the refused create reserved nothing');

  // A create that fails on its host (an image it does not have) leaves no placement and reserves nothing.
  const bad = path.join(h.dir, 'bad.yaml');
  await fs.writeFile(bad, 'services:\n  web:\n    image: depad-example/none:9\n');
  const failed = await c.run(['create', '-n', h.name('bad'), '-f', bad, '--pull', 'never']);
  t.is(failed.code, 6, failed.stderr);
  t.regex(failed.stderr, /hint: build or load the image first .*\(on host host-\d, where the manager placed it; nothing stays placed\)/);
  t.is(hostsOf((await c.run(['--json', 'hosts'])).stdout).reduce((n, x) => n + x.deployments, 0), 2);
  t.notRegex((await c.run(['ls', '-q'])).stdout, /bad/);
  // Cordon: no new placement there.
  t.is((await c.run(['hosts', 'cordon', 'host-1'])).code, 0);
  const cordoned = await c.run(['create', '-n', h.name('cord'), '-f', await config(h, 'cord'), '--on-host', 'host-1']);
  t.is(cordoned.code, 18);
  t.regex(cordoned.stderr, /host-1: cordoned/);
  t.is((await c.run(['hosts', 'uncordon', 'host-1'])).code, 0);

  // A deploy token of one name sees and changes only that deployment.
  const scoped = (JSON.parse((await c.run(['--json', 'token', 'create', '--name', 'ci', '--scope', 'deploy', '-d', a])).stdout) as { token: string }).token;
  t.deepEqual((JSON.parse((await c.run(['--json', 'ls'], { token: scoped })).stdout) as DeploymentView[]).map((v) => v.name), [a]);
  const forbidden = await c.run(['update', b, '-e', 'X=2'], { token: scoped });
  t.is(forbidden.code, 13, forbidden.stderr);
  t.is((await c.run(['restart', a], { token: scoped })).code, 0);

  // Destroy through the manager frees the name and the reservation.
  t.is((await c.run(['destroy', a])).code, 0);
  t.is((await c.run(['destroy', b])).code, 0);
  t.is((await c.run(['ls', '-q'])).stdout, '');
});

test('cluster: two scales relayed at once to a host with room for one: exactly one goes, the other is refused; the host is never overcommitted', async (t) => {
  t.timeout(240_000);
  const h = await harness(t);
  const c = await startCluster(t, h, [{ labels: { zone: 'a' }, capacity: 'cpus=1,memory=1g' }]);
  const small = async (name: string) => {
    const file = path.join(h.dir, `${name}.yaml`);
    await fs.writeFile(file, 'services:\n  web:\n    image: depad-example/app:1\n    deploy: {resources: {limits: {cpus: "0.25", memory: 32m}}}\n    x-depad: {health: {command: ["true"], interval: 1s}}\n');
    t.is((await c.run(['create', '-n', name, '-f', file])).code, 0);
  };
  const [d1, d2] = [h.name('g1'), h.name('g2')];
  await small(d1);
  await small(d2);
  // Each scale to 2 needs 0.75 CPUs (2 × 0.25 and a start-first batch's 0.25): one fits beside the other's 0.25, both do not.
  const both = await Promise.all([c.run(['scale', d1, 'web=2']), c.run(['scale', d2, 'web=2'])]);
  t.deepEqual(both.map((r) => r.code).sort(), [0, 18], both.map((r) => r.stderr).join('\n'));
  const refused = both.find((r) => r.code === 18)!;
  t.regex(refused.stderr, /host host-1 has no room for this change of \S+: it would need 0\.75 CPUs \(0\.25 now\), 0\.25 available to it/);
  const hosts = JSON.parse((await c.run(['--json', 'hosts'])).stdout) as Array<{ reserved: { cpus: number } }>;
  t.is(hosts[0]!.reserved.cpus, 1, 'reserved: the grown one\'s 0.75 and the other\'s 0.25, no more');
  const replicas = await Promise.all([d1, d2].map(async (d) => (JSON.parse((await c.run(['--json', 'inspect', d])).stdout) as DeploymentView).services[0]!.instances.length));
  t.deepEqual(replicas.sort(), [1, 2]);
  // health through the manager: a HOST column, as in ls, for the cluster and for one deployment.
  let rows: Array<{ deployment: string; host?: string; status: string }> = [];
  for (let i = 0; i < 50 && rows.filter((r) => r.status === 'healthy').length < 3; i++) {
    rows = JSON.parse((await c.run(['--json', 'health'])).stdout) as typeof rows;
    await new Promise((r) => setTimeout(r, 200));
  }
  t.deepEqual([...new Set(rows.map((r) => r.host))], ['host-1'], JSON.stringify(rows));
  t.regex((await c.run(['health'])).stdout, /^DEPLOYMENT\s+HOST\s+SERVICE/);
  t.regex((await c.run(['health', d1])).stdout, new RegExp(`^DEPLOYMENT\\s+HOST\\s+SERVICE[\\s\\S]*\\n${d1}\\s+host-1\\s+web`));
  for (const d of [d1, d2]) t.is((await c.run(['destroy', d])).code, 0);
});

test('cluster: a host whose agent dies is down within the bound and its deployments are refused, not moved; back, nothing is duplicated; the manager killed and back keeps everything', async (t) => {
  t.timeout(360_000); // many steps, each a CLI call through the manager
  const h = await harness(t);
  const c = await startCluster(t, h, [{ labels: { zone: 'a' } }, { labels: { zone: 'b' } }], { heartbeatMs: 500 });
  const name = h.name('down');
  t.is((await c.run(['create', '-n', name, '-f', await config(h, 'down'), '--on-host', 'host-2'])).code, 0);
  const killedAt = Date.now();
  await c.agents[1]!.kill();
  // Polled with the CLI: each look takes its own time (more on a loaded machine), which the bound allows for.
  let downAfter = 0;
  let slowest = 0;
  for (;;) {
    const asked = Date.now();
    const hosts = hostsOf((await c.run(['--json', 'hosts'])).stdout);
    slowest = Math.max(slowest, Date.now() - asked);
    if (hosts.find((x) => x.name === 'host-2')?.state === 'down') break;
    if (Date.now() - killedAt > 30_000) return t.fail('host-2 never went down');
    await new Promise((r) => setTimeout(r, 200));
  }
  downAfter = Date.now() - killedAt;
  t.true(downAfter <= 3 * 500 + 2000 + 2 * slowest + 500, `down after ${downAfter} ms (bound: 3 heartbeats + 2 s, + the polls: ${slowest} ms each at most)`);
  t.log(`down ${downAfter} ms after the agent was killed (heartbeat 500 ms)`);
  const refused = await c.run(['restart', name]);
  t.is(refused.code, 19, refused.stderr);
  t.regex(refused.stderr, /runs on host host-2, which is down/);
  t.regex((await c.run(['ls'])).stdout, new RegExp(`${name}\\s+host-2\\s+\\S+\\s+unknown`));
  // The container kept running: the agent died, not the host.
  t.regex(await docker(['inspect', '-f', '{{.State.Running}}', `depad-${name}-web-1`]), /true/);

  // Back: it rejoins by itself (no --join), the deployment answers, nothing was created twice.
  await c.agents[1]!.restart();
  for (let i = 0; i < 50 && hostsOf((await c.run(['--json', 'hosts'])).stdout).find((x) => x.name === 'host-2')?.state !== 'ready'; i++) await new Promise((r) => setTimeout(r, 200));
  t.is((await c.run(['restart', name])).code, 0);
  t.is((await docker(['ps', '-a', '--filter', `name=depad-${name}-`, '--format', '{{.Names}}'])).split('\n').filter(Boolean).length, 1);

  // The manager killed: the deployment keeps running; restarted, hosts and placements are there.
  await c.manager.kill();
  t.regex(await docker(['inspect', '-f', '{{.State.Running}}', `depad-${name}-web-1`]), /true/);
  await c.manager.restart();
  for (let i = 0; i < 30 && hostsOf((await c.run(['--json', 'hosts'])).stdout).some((x) => x.state !== 'ready'); i++) await new Promise((r) => setTimeout(r, 200));
  t.regex((await c.run(['ls'])).stdout, new RegExp(`${name}\\s+host-2\\s+\\S+\\s+running`));
  t.is((await c.run(['destroy', name])).code, 0);
});
