/**
 * Updates, diff, history and rollback against the real engine: a new instance on the same
 * published ports, the old one retired; a failed health check changes nothing; rollback
 * restores images and config; a kill during an update is rolled back by the next command.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import type { DeploymentView } from '../src/deploy/status.ts';
import type { RevisionRecord } from '../src/store/records.ts';
import { Store } from '../src/store/store.ts';
import { EXAMPLES, engineObjects, harness, httpGet, tcpRequest, type Harness } from './helpers/harness.ts';

const clinic = path.join(EXAMPLES, 'clinic/depad.yml');
const webOf = (v: DeploymentView) => v.services.find((s) => s.name === 'web')!;

/** The port registry holds exactly the deployment's ports, and the engine exactly its instances. */
async function assertConsistent(t: ExecutionContext, h: Harness, name: string): Promise<DeploymentView> {
  const view = await h.json<DeploymentView>(['inspect', name]);
  const store = await Store.open(h.home, { command: 'test' });
  try {
    const registry = (await store.listPorts()).map((p) => p.host).sort();
    t.deepEqual(registry, view.ports.map((p) => p.host).sort(), 'registry = record: no port leaked');
  } finally {
    await store.close();
  }
  const containers = (await engineObjects(h.engine, h.prefix)).containers.sort();
  t.deepEqual(containers, view.services.flatMap((s) => s.instances.map((i) => i.container)).sort(), 'no stray instance');
  return view;
}

test('update -s web --image: a new instance on the same published port (stop-first), old one retired; diff changes nothing', async (t) => {
  const h = await harness(t);
  const name = h.name('upd');
  t.is((await h.run(['create', '-n', name, '-f', clinic])).code, 0);
  const before = await h.json<DeploymentView>(['inspect', name]);
  const diff = await h.run(['diff', name, '-s', 'web', '--image', 'depad-example/app:2']);
  t.is(diff.code, 0, diff.stderr);
  t.regex(diff.stdout, /~ web: new instance: image depad-example\/app:1 → depad-example\/app:2/);
  t.regex(diff.stdout, /= db: unchanged/);
  t.is((await h.json<DeploymentView>(['inspect', name])).revision, 1, 'diff applied nothing');

  const r = await h.run(['deployment', 'update', name, '-s', 'web', '--image', 'depad-example/app:2']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /replacing web stop-first \(its published ports pass to the new instance\)[\s\S]*stopping the old web[\s\S]*starting the new web \(depad-.*-web-2\)/);
  const after = await assertConsistent(t, h, name);
  t.is(after.revision, 2);
  t.is(webOf(after).instances[0]!.container, `depad-${name}-web-2`);
  const oldPort = webOf(before).ports[0]!.host;
  const newPort = webOf(after).ports[0]!.host;
  t.is(newPort, oldPort, 'a published port does not move');
  t.regex((await httpGet(newPort, '/cgi-bin/info')).body, /"version":"2"/);
  t.deepEqual(after.services.find((s) => s.name === 'db')!.instances[0]!.container, `depad-${name}-db-1`, 'unchanged services are left alone');

  const history = await h.json<Array<RevisionRecord & { current: boolean }>>(['history', name]);
  t.deepEqual(history.map((x) => [x.number, x.source, x.changed, x.current]), [[1, 'create', ['db', 'web', 'worker'], false], [2, 'update', ['web'], true]]);
  t.deepEqual(history[1]!.overrides, { web: 'depad-example/app:2' });
  t.regex((await h.run(['update', name, '-s', 'web', '--image', 'depad-example/app:2'])).stdout, /no changes: .* stays at revision 2/);
  // The current config is the file with the image given: new variables keep it; a config file given again does not, and says so.
  const withVars = await h.run(['diff', name, '-e', 'DEPAD_TEST_UNUSED=1']);
  t.is(withVars.code, 0, withVars.stderr);
  t.notRegex(withVars.stdout, /app:2 → depad-example\/app:1/, withVars.stdout);
  const withFile = await h.run(['diff', name, '-f', clinic]);
  t.regex(withFile.stdout, /~ web: new instance: image depad-example\/app:2 → depad-example\/app:1/);
  t.regex(withFile.stderr, /web ran depad-example\/app:2, given with --image for an earlier revision; the new config's image \(depad-example\/app:1\) applies now/);
});

test('a new instance that never becomes healthy changes nothing', async (t) => {
  const h = await harness(t);
  const name = h.name('sick');
  t.is((await h.run(['create', '-n', name, '-f', clinic])).code, 0);
  const before = await h.json<DeploymentView>(['inspect', name]);
  const sick = path.join(h.dir, 'sick.yml');
  const text = (await fs.readFile(clinic, 'utf8')).replace('["CMD", "/app/bin/probe", "http", "8080", "/cgi-bin/health"]', '["CMD", "sh", "-c", "echo not ready; exit 1"]').replace('retries: 10\n    restart: unless-stopped\n    stop_grace_period: 5s', 'retries: 2\n    restart: unless-stopped\n    stop_grace_period: 5s');
  await fs.writeFile(sick, text);
  await fs.cp(path.join(EXAMPLES, 'clinic/static'), path.join(h.dir, 'static'), { recursive: true });
  const r = await h.run(['update', name, '-f', sick]);
  t.is(r.code, 10, r.stderr);
  t.regex(r.stderr, /service web did not become healthy[\s\S]*not ready/);
  t.regex(r.stderr, /stays at revision 1/);
  t.regex(r.stderr, /db \(depad-.*-db-1\) is running: kept serving/, 'the undo does not claim to start what never stopped');
  t.notRegex(r.stderr, /starting db/);
  const after = await assertConsistent(t, h, name);
  t.is(after.revision, 1);
  t.deepEqual(after.ports, before.ports);
  t.is((await httpGet(webOf(after).ports[0]!.host, '/cgi-bin/info')).status, 200, 'the old instance still serves');
  t.is((await h.json<unknown[]>(['history', name])).length, 1);
});

test('rollback restores an earlier revision, as a new revision', async (t) => {
  const h = await harness(t);
  const name = h.name('back');
  t.is((await h.run(['create', '-n', name, '-f', clinic, '--env', 'CLINIC=First'])).code, 0);
  const v1 = await h.json<DeploymentView>(['inspect', name]);
  const config1 = await fs.readFile(path.join(v1.rootDir, 'depad.yml'), 'utf8');
  t.is((await h.run(['update', name, '-f', clinic, '--env', 'CLINIC=Second', '--env', 'WEB_VERSION=2'])).code, 0);
  const v2 = await h.json<DeploymentView>(['inspect', name]);
  t.regex((await httpGet(webOf(v2).ports[0]!.host, '/cgi-bin/info')).body, /"app":"Second","deployment":.*"version":"2"/);
  const r = await h.run(['rollback', name, '--to', '1']);
  t.is(r.code, 0, r.stderr);
  const v3 = await assertConsistent(t, h, name);
  t.is(v3.revision, 3);
  t.regex((await httpGet(webOf(v3).ports[0]!.host, '/cgi-bin/info')).body, /"app":"First","deployment":.*"version":"1"/);
  const web = (await h.engine.listContainers({ 'depad.deployment': name, 'depad.service': 'web' }))[0]!;
  t.is(web.image, 'depad-example/app:1', 'the image of revision 1');
  t.is(await fs.readFile(path.join(v3.rootDir, 'depad.yml'), 'utf8'), config1);
  const compose1 = await fs.readFile(path.join(v3.rootDir, 'revisions/1/docker-compose.yml'), 'utf8');
  t.regex(compose1, /APP_NAME: First/);
  const history = await h.json<Array<RevisionRecord>>(['history', name]);
  t.like(history[2], { source: 'rollback', from: 1, changed: ['web'] });
  t.is((await h.run(['rollback', name, '--to', '3'])).code, 4, 'the current revision is not a rollback target');
});

test('depad killed during an update: the next command rolls it back', async (t) => {
  const h = await harness(t);
  const name = h.name('killupd');
  t.is((await h.run(['create', '-n', name, '-f', clinic])).code, 0);
  const before = await h.json<DeploymentView>(['inspect', name]);
  const killed = await h.run(['update', name, '-s', 'web', '--image', 'depad-example/app:2'], { env: { DEPAD_TEST_CRASH_AT: 'update:switched:web' } });
  t.not(killed.code, 0);
  const next = await h.run(['ls']);
  t.regex(next.stderr, new RegExp(`recovered: rolled back the interrupted update of ${name}`));
  const after = await assertConsistent(t, h, name);
  t.is(after.revision, 1);
  t.deepEqual(after.ports, before.ports);
  t.is(webOf(after).instances[0]!.state, 'running');
  t.regex((await httpGet(webOf(after).ports[0]!.host, '/cgi-bin/info')).body, /"version":"1"/);
  await t.throwsAsync(fs.access(path.join(after.rootDir, 'revisions/2')), undefined, 'the unfinished revision is gone');
});

test('a stateful service is swapped; its dependants keep reaching it by name and its data stays', async (t) => {
  const h = await harness(t);
  const name = h.name('db');
  t.is((await h.run(['create', '-n', name, '-f', clinic])).code, 0);
  const v1 = await h.json<DeploymentView>(['inspect', name]);
  const web = webOf(v1).ports[0]!.host;
  await httpGet(web, '/cgi-bin/visits');
  t.regex((await httpGet(web, '/cgi-bin/visits')).body, /"visits":2,/);
  const r = await h.run(['update', name, '-s', 'db', '--image', 'depad-example/app:2']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /replacing db stop-first \(it has named volumes\)[\s\S]*stopping the old db[\s\S]*starting the new db/);
  const v2 = await assertConsistent(t, h, name);
  t.is(v2.services.find((s) => s.name === 'db')!.instances[0]!.container, `depad-${name}-db-2`);
  t.regex((await httpGet(web, '/cgi-bin/visits')).body, /"visits":3,/, 'web reaches the new db by name; the volume kept the count');
  const dbPort = v2.ports.find((p) => p.service === 'db')!.host;
  t.is(await tcpRequest(dbPort, 'GET visits'), '3');
});
