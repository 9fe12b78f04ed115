/**
 * Bulk verbs through the cluster manager, in the lab (three hosts, each its own engine, agent and
 * proxy; a manager with every host joined): three deployments of class web, one per host
 * (--on-host). `update -l class=web --max-parallel 2` through the manager rolls all three under load
 * through each host's own proxy with no failed request, the summary naming each one's host; a
 * bulk update whose second deployment fails stops there (the first updated, the failed one rolled
 * back and still serving, the third not run); a check refused on a host changes nothing; a deploy
 * token scoped to team=a sees and updates web-1 (host-1) and web-3 (host-3) only (a selection
 * reaching beyond its scope changes nothing), rolls them back and restarts them, each on its own
 * host; a host whose agent is down fails its deployment with DEPAD_HOST_DOWN and nothing runs.
 * What reached each host is read from its own engine.
 */
import test from 'ava';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BulkOutcome } from '../src/deploy/bulk.ts';
import { startLabCluster, stopHostAgent, type ClusterHost } from './helpers/lab-cluster.ts';
import { joinLabCluster } from './helpers/lab-manager.ts';
import { startLoad } from './helpers/load.ts';
import { must } from './helpers/lab-proc.ts';

const V1 = 'depad-example/node-app:1';
const V2 = 'depad-example/node-app:2';

/** The deployment file: class web, an HTTP route; APP_NAME and UNHEALTHY from variables (cfg `b` reads FAULT). */
const config = (unhealthy: string, image = V1) => `x-depad:
  class: web
  start_timeout: 15s
services:
  web:
    image: ${image}
    environment:
      APP_NAME: "\${APP_NAME:-web}"
      UNHEALTHY: "${unhealthy}"
    stop_grace_period: 5s
    x-depad:
      expose: http
      port: 8080
      health: { http: /health, status: 200 }
      drain_timeout: 5s
`;

/** GET /info at a host's proxy with the route's Host header: status and body. */
function info(address: string, hostHeader: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: address, port: 80, path: '/info', headers: { host: hostHeader, connection: 'close' }, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** What runs for `deployment` on `host`'s own engine: image and APP_NAME of each container. */
async function onEngine(host: ClusterHost, deployment: string): Promise<string[]> {
  const ids = (await must('docker', ['-H', host.dockerHost, 'ps', '-q', '--filter', `label=depad.deployment=${deployment}`])).trim().split('\n').filter(Boolean);
  if (ids.length === 0) return [];
  const out = await must('docker', ['-H', host.dockerHost, 'inspect', '--format', '{{.Config.Image}} {{json .Config.Env}}', ...ids]);
  return out.trim().split('\n').map((line) => `${line.split(' ')[0]} ${/"APP_NAME=([^"]*)"/.exec(line)?.[1] ?? '?'}`).sort();
}

const rows = (stdout: string) => stdout.trim().split('\n').slice(1).map((l) => l.split(/\s{2,}/));

test('bulk verbs through the manager across three hosts: one roll, under load, stop at a failure, a token\'s scope, a host down', async (t) => {
  const state = await startLabCluster(t, 3, { labels: [{ zone: 'a' }, { zone: 'b' }, { zone: 'c' }], images: [V1, V2] });
  const m = await joinLabCluster(t, state);
  const [h1, h2, h3] = state.hosts;
  if (!h1 || !h2 || !h3) return t.fail('three hosts');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'depad-cluster-bulk-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const a = path.join(dir, 'a.yml');
  const b = path.join(dir, 'b.yml');
  await fs.writeFile(a, config('0'));
  await fs.writeFile(b, config('${FAULT:-0}'));

  // web-1 on host-1, web-2 on host-2, web-3 on host-3; web-2 carries FAULT=1, which file b reads.
  for (const [i, host] of state.hosts.entries()) {
    const name = `web-${i + 1}`;
    const made = await m.run(['create', '-n', name, '-f', a, '--on-host', host.name, '--label', `team=${i === 1 ? 'b' : 'a'}`, ...(i === 1 ? ['-e', 'FAULT=1'] : [])]);
    t.is(made.code, 0, `${name}: ${made.stderr}`);
  }
  for (const [i, host] of state.hosts.entries()) t.deepEqual(await onEngine(host, `web-${i + 1}`), [`${V1} web`], `web-${i + 1} runs on ${host.name}'s engine`);

  // The dry run through the manager: each one's host, nothing changed.
  const image = ['-s', 'web', '--image', V2];
  const dry = await m.run(['--json', 'update', '-l', 'class=web', ...image, '--dry-run']);
  t.is(dry.code, 0, dry.stderr);
  t.deepEqual((JSON.parse(dry.stdout) as BulkOutcome).items.map((i) => [i.deployment, i.host, i.from, i.to, i.result]), [1, 2, 3].map((i) => [`web-${i}`, `host-${i}`, V1, V2, 'would update']));

  // The roll, under load through each host's own proxy.
  const loads = state.hosts.map((host, i) => startLoad({ address: host.address, port: 80, host: `web.web-${i + 1}.localhost`, keepAliveClients: 2, newConnectionClients: 1 }));
  await sleep(1000);
  let started = Date.now();
  const rolled = await m.run(['update', '-l', 'class=web', ...image, '--max-parallel', '2']);
  t.log(`update -l class=web --max-parallel 2 across 3 hosts: ${Date.now() - started} ms`);
  await sleep(1000);
  const stats = await Promise.all(loads.map((l) => l.stop()));
  t.is(rolled.code, 0, rolled.stderr);
  t.deepEqual(rows(rolled.stdout).map((r) => r.slice(0, 5)), [1, 2, 3].map((i) => [`web-${i}`, `host-${i}`, V1, V2, 'updated']), rolled.stdout);
  t.regex(rolled.stdout, /^DEPLOYMENT\s+HOST\s+FROM\s+TO\s+RESULT\s+TIME/);
  for (const i of [1, 2, 3]) t.regex(rolled.stderr, new RegExp(`^\\s*[\\d.]+s  web-${i}: `, 'm'), `web-${i}'s progress streamed with its name`);
  // One --max-parallel for the whole roll: web-1 and web-2 together, web-3 only once one of them is done.
  const at = (text: string) => rolled.stderr.indexOf(text);
  const firstDone = Math.min(at('web-1: deployment web-1 is at revision 2'), at('web-2: deployment web-2 is at revision 2'));
  t.true(at('web-2: ') < firstDone, 'web-2 started before web-1 was done');
  t.true(at('web-3: ') > firstDone, 'web-3 waited for a free slot');
  t.regex(rolled.stderr, /update -l class=web: 3 updated/);
  for (const [i, s] of stats.entries()) {
    t.log(`web-${i + 1} on host-${i + 1}: ${s.ok} ok, ${s.failed} failed, versions ${JSON.stringify(s.versions)}, max ${s.maxLatencyMs} ms`);
    t.is(s.failed, 0, `host-${i + 1}: ${s.failures.join('; ')}`);
    t.true((s.versions['1'] ?? 0) > 0 && (s.versions['2'] ?? 0) > 0, `host-${i + 1} served both versions`);
  }
  for (const [i, host] of state.hosts.entries()) t.deepEqual(await onEngine(host, `web-${i + 1}`), [`${V2} web`], `web-${i + 1} on ${host.name} runs ${V2}`);

  // Stop at the first failure: web-2 (FAULT=1) fails its health check and is rolled back; web-3 is not run.
  started = Date.now();
  const failing = await m.run(['--json', 'update', '-l', 'class=web', '-f', b, '--max-parallel', '1']);
  t.log(`the failing roll: ${Date.now() - started} ms`);
  t.is(failing.code, 10, failing.stderr);
  t.regex(failing.stderr, /update stopped at web-2/);
  t.regex(failing.stderr, /1 deployment was not touched; fix \S+ and run the command again .*or narrow -l to leave it out/);
  const items = (JSON.parse(failing.stdout) as BulkOutcome).items;
  t.deepEqual(items.map((i) => [i.deployment, i.host, i.result]), [['web-1', 'host-1', 'updated'], ['web-2', 'host-2', 'failed'], ['web-3', 'host-3', 'skipped']]);
  t.deepEqual([await onEngine(h1, 'web-1'), await onEngine(h2, 'web-2'), await onEngine(h3, 'web-3')], [[`${V1} web`], [`${V2} web`], [`${V2} web`]], 'web-1 updated; web-2 rolled back; web-3 untouched');
  const still = await info(h2.address, 'web.web-2.localhost');
  t.is(still.status, 200);
  t.is((JSON.parse(still.body) as { version: string }).version, '2', 'web-2 still serves its version after the failed update');

  // Checked on every host before anything changes: a service none of them has refuses the whole roll.
  const refused = await m.run(['update', '-l', 'class=web', '-s', 'nosuch', '--image', V1]);
  t.is(refused.code, 4, refused.stderr);
  t.regex(refused.stderr, /web-1: .*nosuch.*; nothing was updated/);
  t.deepEqual([await onEngine(h1, 'web-1'), await onEngine(h3, 'web-3')], [[`${V1} web`], [`${V2} web`]], 'a refused roll changed nothing');

  // A deploy token scoped to team=a: web-1 (host-1) and web-3 (host-3), across hosts; nothing of web-2.
  const made = await m.run(['--json', 'token', 'create', '--name', 'team-a', '--scope', 'deploy', '-l', 'team=a']);
  t.is(made.code, 0, made.stderr);
  const teamA = (JSON.parse(made.stdout) as { token: string }).token;
  const ls = await m.run(['--json', 'ls'], { token: teamA });
  t.deepEqual((JSON.parse(ls.stdout) as Array<{ name: string; host: string }>).map((v) => [v.name, v.host]), [['web-1', 'host-1'], ['web-3', 'host-3']]);
  const beyond = await m.run(['update', '-l', 'class=web', '-e', 'APP_NAME=team-a'], { token: teamA });
  t.is(beyond.code, 13, `a selection with a deployment outside the token's scope: 403, nothing runs: ${beyond.stderr}`);
  const scoped = await m.run(['update', '-l', 'team=a', '-e', 'APP_NAME=team-a', ...image, '--max-parallel', '2'], { token: teamA });
  t.is(scoped.code, 0, scoped.stderr);
  t.deepEqual(rows(scoped.stdout).map((r) => [r[0], r[1], r[4]]), [['web-1', 'host-1', 'updated'], ['web-3', 'host-3', 'updated']]);
  t.deepEqual([await onEngine(h1, 'web-1'), await onEngine(h2, 'web-2'), await onEngine(h3, 'web-3')], [[`${V2} team-a`], [`${V2} web`], [`${V2} team-a`]], 'team=a only, on host-1 and host-3');
  t.is((JSON.parse((await info(h3.address, 'web.web-3.localhost')).body) as { app: string }).app, 'team-a');

  // rollback -l through the manager: each to its previous revision on its own host (web-1: rev 3, file b; web-3: rev 2).
  const back = await m.run(['--json', 'rollback', '-l', 'team=a', '--dry-run'], { token: teamA });
  t.is(back.code, 0, back.stderr);
  t.deepEqual((JSON.parse(back.stdout) as BulkOutcome).items.map((i) => [i.deployment, i.host, i.from, i.to, i.result]), [['web-1', 'host-1', 'rev 4', 'rev 5 (= rev 3)', 'would update'], ['web-3', 'host-3', 'rev 3', 'rev 4 (= rev 2)', 'would update']]);
  const rolledBack = await m.run(['--json', 'rollback', '-l', 'team=a', '--max-parallel', '2'], { token: teamA });
  t.is(rolledBack.code, 0, rolledBack.stderr);
  t.deepEqual((JSON.parse(rolledBack.stdout) as BulkOutcome).items.map((i) => [i.deployment, i.to, i.result]), [['web-1', 'rev 5 (= rev 3)', 'updated'], ['web-3', 'rev 4 (= rev 2)', 'updated']]);
  t.deepEqual([await onEngine(h1, 'web-1'), await onEngine(h3, 'web-3')], [[`${V1} web`], [`${V2} web`]]);

  const restarted = await m.run(['restart', '-l', 'team=a', '--max-parallel', '2'], { token: teamA });
  t.is(restarted.code, 0, restarted.stderr);
  t.deepEqual(rows(restarted.stdout).map((r) => r.slice(0, 5)), [['web-1', 'host-1', 'running', 'running', 'done'], ['web-3', 'host-3', 'running', 'running', 'done']]);

  // host-3's agent down: web-3 fails with DEPAD_HOST_DOWN, web-1 is not run either.
  await stopHostAgent(h3);
  const down = await m.run(['--json', 'restart', '-l', 'team=a']);
  t.is(down.code, 19, down.stderr);
  t.deepEqual((JSON.parse(down.stdout) as BulkOutcome).items.map((i) => [i.deployment, i.host, i.result, i.code]), [['web-1', 'host-1', 'skipped', undefined], ['web-3', 'host-3', 'failed', 'DEPAD_HOST_DOWN']]);
  t.regex(down.stderr, /restart stopped at web-3: .*host-3/);
});
