/**
 * What a rolling update does when new replicas fail, as `deploy.update_config` says, against the
 * real engine and proxy: `failure_action: continue` keeps a failed slot's old replica and goes on;
 * `pause` stops the roll there (the revision commits, mixed, and the command exits 17);
 * `max_failure_ratio` tolerates that share of failures before `rollback`; `monitor` catches a new
 * replica that dies after it got ready. The next update rolls a mixed service again.
 *
 * The new version's command fails once per `armedN` file in the deployment's `flags/` directory,
 * from its second new replica on (the first one marks `seen`): deterministic with parallelism 1.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import type { DeploymentView } from '../src/deploy/status.ts';
import { harness, type Harness } from './helpers/harness.ts';
import { jsonVia, startLoad } from './helpers/load.ts';
import { startProxyProcess } from './helpers/proxy-process.ts';

const FAILS_WHEN_ARMED = 'if [ -f /flags/seen ] && (rm /flags/armed1 2>/dev/null || rm /flags/armed2 2>/dev/null); then echo failing on purpose; exit 3; fi; touch /flags/seen; exec /app/bin/web';

/** A 4-replica web service on `image`, with `rollout` as its update_config, run by `command` (default: the plain web server). */
const file = (image: string, rollout: string, command?: string) => `x-depad:
  start_timeout: 8s
services:
  web:
    image: ${image}
    ${command ? `command: ["sh", "-c", ${JSON.stringify(command)}]` : ''}
    restart: "no"
    volumes: ["./flags:/flags"]
    deploy:
      replicas: 4
      update_config: {parallelism: 1, ${rollout}}
    x-depad:
      expose: http
      port: 8080
      health: { http: /cgi-bin/health, status: 200 }
      drain_timeout: 2s
`;

async function write(h: Harness, name: string, text: string): Promise<string> {
  const config = path.join(h.dir, name);
  await fs.writeFile(config, text);
  return config;
}

/** Creates the deployment from `v1`, then arms `n` failures of the next version. */
async function created(h: Harness, name: string, v1: string, armed: number): Promise<DeploymentView> {
  const r = await h.run(['create', '-n', name, '-f', v1]);
  if (r.code !== 0) throw new Error(r.stderr);
  const view = await h.json<DeploymentView>(['inspect', name]);
  for (let i = 1; i <= armed; i++) await fs.writeFile(path.join(view.rootDir, 'flags', `armed${i}`), '');
  return view;
}

const containersOf = (v: DeploymentView) => v.services.find((s) => s.name === 'web')!.instances.map((i) => i.container).sort();
const names = (name: string, list: number[]) => list.map((n) => `depad-${name}-web-${n}`).sort();

test('failure_action: continue: a failed new replica keeps its old container in its slot, the roll goes on; the next update rolls it again', async (t) => {
  const h = await harness(t);
  const proxy = await startProxyProcess(t, h);
  const name = h.name('fcont');
  await created(h, name, await write(h, 'v1.yaml', file('depad-example/app:1', 'failure_action: continue')), 1);
  const v2 = await write(h, 'v2.yaml', file('depad-example/app:2', 'failure_action: continue', FAILS_WHEN_ARMED));
  const host = `web.${name}.localhost`;
  const load = startLoad({ port: proxy.port, host, path: '/cgi-bin/info', keepAliveClients: 2, newConnectionClients: 2 });
  const r = await h.run(['update', name, '-f', v2]);
  const stats = await load.stop();
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /web batch 2\/4: replica 2 keeps its old container depad-\S+-web-2: /);
  t.regex(r.stderr, /web batch 4\/4/, 'the roll went on');
  t.regex(r.stderr, /web: replica 2 still runs revision 1/);
  t.is(stats.failed, 0, `failed: ${stats.failures.join('; ')}`);
  const after = await h.json<DeploymentView>(['inspect', name]);
  t.is(after.revision, 2);
  t.deepEqual(containersOf(after), names(name, [2, 5, 7, 8]));
  t.deepEqual(after.held?.web?.replicas.map((x) => [x.replica, x.instance, x.revision]), [[2, 2, 1]]);
  // The held replica keeps its route port; the failed one's port is a spare.
  const instancePorts = after.ports.filter((p) => p.service === 'web' && p.role === 'instance').map((p) => p.instance).sort();
  t.deepEqual(instancePorts, [2, 5, 7, 8]);
  const versions = new Set<string>();
  for (let i = 0; i < 16; i++) versions.add((await jsonVia<{ version: string }>(proxy.port, host, '/cgi-bin/info')).version);
  t.deepEqual([...versions].sort(), ['1', '2'], 'both versions serve');
  t.regex((await h.run(['inspect', name])).stdout, /held:\s+web: replica 2 still runs revision 1/);
  // A held replica is part of the deployment: stop and start bring it back from its own plan.
  t.is((await h.run(['stop', name])).code, 0);
  t.is((await h.run(['start', name])).code, 0);
  const restarted = await h.json<DeploymentView>(['inspect', name]);
  t.deepEqual(containersOf(restarted), names(name, [2, 5, 7, 8]));
  t.regex(restarted.status, /^running/);
  // Nothing armed any more: the same file again rolls the service, held replica included.
  const dry = await h.run(['update', name, '-f', v2, '--dry-run']);
  t.regex(dry.stdout, /1 of 4 replicas still run an older container/);
  const again = await h.run(['update', name, '-f', v2]);
  t.is(again.code, 0, again.stderr);
  const done = await h.json<DeploymentView>(['inspect', name]);
  t.is(done.revision, 3);
  t.is(done.held, undefined);
  t.deepEqual(containersOf(done), names(name, [9, 10, 11, 12]));
});

test('failure_action: pause: the roll stops at the failed batch, the revision commits with the old replicas serving, exit 17; rollback restores', async (t) => {
  const h = await harness(t);
  const proxy = await startProxyProcess(t, h);
  const name = h.name('fpause');
  const v1 = await write(h, 'v1.yaml', file('depad-example/app:1', 'failure_action: pause'));
  await created(h, name, v1, 1);
  const v2 = await write(h, 'v2.yaml', file('depad-example/app:2', 'failure_action: pause', FAILS_WHEN_ARMED));
  const host = `web.${name}.localhost`;
  const load = startLoad({ port: proxy.port, host, path: '/cgi-bin/info', keepAliveClients: 2, newConnectionClients: 2 });
  const r = await h.run(['update', name, '-f', v2]);
  const stats = await load.stop();
  t.is(r.code, 17, r.stderr);
  t.regex(r.stderr, /DEPAD_UPDATE_PAUSED|paused/);
  t.regex(r.stderr, /failure_action: pause stopped the roll after batch 2\/4/);
  t.notRegex(r.stderr, /web batch 3\/4/);
  t.is(stats.failed, 0, `failed: ${stats.failures.join('; ')}`);
  const after = await h.json<DeploymentView>(['inspect', name]);
  t.is(after.revision, 2);
  t.deepEqual(containersOf(after), names(name, [2, 3, 4, 5]));
  t.deepEqual(after.held?.web?.replicas.map((x) => x.replica), [2, 3, 4]);
  t.regex(after.held?.web?.paused ?? '', /1 of 4 new replicas failed/);
  t.regex(after.status, /^running/);
  const back = await h.run(['rollback', name]);
  t.is(back.code, 0, back.stderr);
  const done = await h.json<DeploymentView>(['inspect', name]);
  t.is(done.revision, 3);
  t.is(done.held, undefined);
  t.deepEqual(containersOf(done), names(name, [9, 10, 11, 12]), "new instance numbers follow the highest one given (the failed 6, unused 7 and 8 included)");
  for (let i = 0; i < 8; i++) t.is((await jsonVia<{ version: string }>(proxy.port, host, '/cgi-bin/info')).version, '1');
});

test('max_failure_ratio: 0.25 of 4 tolerates one failed replica; the second rolls the whole service back', async (t) => {
  const h = await harness(t);
  await startProxyProcess(t, h);
  const name = h.name('fratio');
  await created(h, name, await write(h, 'v1.yaml', file('depad-example/app:1', 'max_failure_ratio: 0.25')), 2);
  const r = await h.run(['update', name, '-f', await write(h, 'v2.yaml', file('depad-example/app:2', 'max_failure_ratio: 0.25', FAILS_WHEN_ARMED))]);
  t.not(r.code, 0);
  t.regex(r.stderr, /web batch 2\/4: replica 2 keeps its old container/, 'the first failure is tolerated');
  t.regex(r.stderr, /web batch 3\/4: starting/);
  t.notRegex(r.stderr, /web batch 4\/4/);
  t.regex(r.stderr, /putting the old web replicas back/);
  const after = await h.json<DeploymentView>(['inspect', name]);
  t.is(after.revision, 1);
  t.is(after.held, undefined);
  t.deepEqual(containersOf(after), names(name, [1, 2, 3, 4]));
});

test('update_config.monitor: a new replica that dies after it got ready fails its batch, and the service rolls back', async (t) => {
  const h = await harness(t);
  await startProxyProcess(t, h);
  const name = h.name('fmon');
  const two = (text: string) => text.replace('replicas: 4', 'replicas: 2');
  await created(h, name, await write(h, 'v1.yaml', two(file('depad-example/app:1', 'monitor: 8s'))), 0);
  const r = await h.run(['update', name, '-f', await write(h, 'v2.yaml', two(file('depad-example/app:2', 'monitor: 8s', '/app/bin/web & sleep 4; exit 4')))]);
  t.not(r.code, 0);
  t.regex(r.stderr, /web batch 1\/2: watching the new replicas for 8 s \(update_config\.monitor\)/);
  t.regex(r.stderr, /stopped right after it started|exit/);
  t.notRegex(r.stderr, /web batch 2\/2/);
  t.regex(r.stderr, /putting the old web replicas back/);
  const after = await h.json<DeploymentView>(['inspect', name]);
  t.is(after.revision, 1);
  t.deepEqual(containersOf(after), names(name, [1, 2]));
});

test('failure_action: continue with order: stop-first: the failed slot\'s old replica is started again and serves', async (t) => {
  const h = await harness(t);
  const proxy = await startProxyProcess(t, h);
  const name = h.name('fstop');
  await created(h, name, await write(h, 'v1.yaml', file('depad-example/app:1', 'failure_action: continue, order: stop-first')), 1);
  const r = await h.run(['update', name, '-f', await write(h, 'v2.yaml', file('depad-example/app:2', 'failure_action: continue, order: stop-first', FAILS_WHEN_ARMED))]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /replica 2 keeps its old container/);
  const after = await h.json<DeploymentView>(['inspect', name]);
  t.deepEqual(containersOf(after), names(name, [2, 5, 7, 8]));
  t.true(after.services.find((s) => s.name === 'web')!.instances.every((i) => i.state === 'running'));
  const versions = new Set<string>();
  for (let i = 0; i < 16; i++) versions.add((await jsonVia<{ version: string }>(proxy.port, `web.${name}.localhost`, '/cgi-bin/info')).version);
  t.deepEqual([...versions].sort(), ['1', '2']);
});
