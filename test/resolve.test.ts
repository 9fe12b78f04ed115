/** Deployments are found by name, ID or unambiguous ID prefix (real LevelDB, no engine needed). */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { assertValidName, resolveDeployment } from '../src/deploy/resolve.ts';
import type { DeploymentRecord } from '../src/store/records.ts';
import { Store } from '../src/store/store.ts';

function record(id: string, name: string): DeploymentRecord {
  return { id, name, project: `depad-${name}`, createdAt: '', updatedAt: '', revision: 1, desired: 'running', phase: 'ready', rootDir: '/x', ports: [], volumes: [], instances: {} };
}

test('name, full ID, prefix; ambiguous and unknown references', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'depad-resolve-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const store = await Store.open(dir, { command: 'test' });
  t.teardown(() => store.close());
  const a = record(`abc1${'0'.repeat(28)}`, 'mercy');
  const b = record(`abc2${'0'.repeat(28)}`, 'stluke');
  const c = record(`beef${'0'.repeat(28)}`, 'abc1'); // a name that looks like an ID prefix
  await store.batch().putDeployment(a).putDeployment(b).putDeployment(c).write();
  t.is((await resolveDeployment(store, 'mercy')).id, a.id);
  t.is((await resolveDeployment(store, b.id)).name, 'stluke');
  t.is((await resolveDeployment(store, 'abc2')).name, 'stluke');
  t.is((await resolveDeployment(store, 'abc1')).name, 'abc1', 'an exact name wins over an ID prefix');
  t.is((await resolveDeployment(store, 'bee')).name, 'abc1');
  const ambiguous = await t.throwsAsync(resolveDeployment(store, 'abc'));
  t.is((ambiguous as { code?: string }).code, 'DEPAD_AMBIGUOUS');
  t.regex(ambiguous!.message, /matches 2 deployments: mercy \(abc1.*\), stluke \(abc2/);
  t.is(((await t.throwsAsync(resolveDeployment(store, 'nobody'))) as { code?: string }).code, 'DEPAD_NOT_FOUND');
});

test('deployment names', (t) => {
  for (const ok of ['a', 'mercy-hospital', 'x1', 'a'.repeat(63)]) t.notThrows(() => assertValidName(ok), ok);
  for (const bad of ['', 'A', '-a', 'a-', 'a_b', 'a.b', 'a/b', 'a'.repeat(64), 'ümlaut']) {
    t.is((t.throws(() => assertValidName(bad)) as { code?: string }).code, 'DEPAD_NAME_INVALID', bad);
  }
});

test('a batch commits all its writes together', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'depad-store-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const store = await Store.open(dir, { command: 'test' });
  t.teardown(() => store.close());
  t.is(await store.getCursor(), 3000);
  const r = { ...record('f'.repeat(32), 'one'), ports: [{ service: 'web', target: 80, protocol: 'tcp' as const, host: 3000, role: 'instance' as const, instance: 1 }] };
  await store.batch().putDeployment(r).putPorts([{ ...r.ports[0]!, deploymentId: r.id }]).setCursor(3100).write();
  t.is(await store.idForName('one'), r.id);
  t.deepEqual((await store.listPorts()).map((p) => p.host), [3000]);
  t.is(await store.getCursor(), 3100);
  await store.batch().deleteDeployment(r, []).write();
  t.deepEqual(await store.listDeployments(), []);
  t.deepEqual(await store.listPorts(), [], 'the ports went with the deployment');
  t.is(await store.idForName('one'), undefined);
});
