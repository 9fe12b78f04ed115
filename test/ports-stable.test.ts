/**
 * Published ports do not move: not across update, restart or rollback. Ports an update gives up
 * stay the deployment's (spares) and are never handed to another deployment while it exists; a
 * routed service's instances alternate between its ports, the route being the stable endpoint.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import type { DeploymentView } from '../src/deploy/status.ts';
import type { PortRecord } from '../src/store/records.ts';
import { Store } from '../src/store/store.ts';
import { EXAMPLES, harness, httpGet, type Harness } from './helpers/harness.ts';

const clinic = path.join(EXAMPLES, 'clinic/depad.yml');

/** service:target → host port of the published ports a deployment's services bind now. */
function published(view: DeploymentView): Record<string, number> {
  return Object.fromEntries(view.services.flatMap((s) => s.ports.filter((p) => p.role === 'published').map((p) => [`${s.name}:${p.target}`, p.host])));
}

async function registry(h: Harness): Promise<PortRecord[]> {
  const store = await Store.open(h.home, { command: 'test' });
  try {
    return await store.listPorts();
  } finally {
    await store.close();
  }
}

/** The registry holds exactly what the record lists, for this deployment. */
async function consistent(t: ExecutionContext, h: Harness, view: DeploymentView): Promise<void> {
  const held = (await registry(h)).filter((p) => p.deploymentId === view.id).map((p) => `${p.host}/${p.role}`).sort();
  t.deepEqual(held, view.ports.map((p) => `${p.host}/${p.role}`).sort(), 'registry = record');
}

test('published ports stay across update, restart and rollback; given-up ones are never handed to another deployment', async (t) => {
  const h = await harness(t);
  const a = h.name('keep');
  // web also publishes 9090 at first; revision 3 drops it, revision 4 publishes it again.
  const two = path.join(h.dir, 'two-ports.yml');
  await fs.writeFile(two, (await fs.readFile(clinic, 'utf8')).replace('    ports:\n      - "8080"\n', '    ports:\n      - "8080"\n      - "9090"\n'));
  await fs.cp(path.join(EXAMPLES, 'clinic/static'), path.join(h.dir, 'static'), { recursive: true });
  const one = path.join(h.dir, 'one-port.yml');
  await fs.copyFile(clinic, one);

  t.is((await h.run(['create', '-n', a, '-f', two])).code, 0);
  const v1 = await h.json<DeploymentView>(['inspect', a]);
  const ports = published(v1);
  t.deepEqual(Object.keys(ports).sort(), ['db:5432', 'web:8080', 'web:9090']);

  const up = await h.run(['update', a, '-s', 'web', '--image', 'depad-example/app:2']);
  t.is(up.code, 0, up.stderr);
  const v2 = await h.json<DeploymentView>(['inspect', a]);
  t.deepEqual(published(v2), ports, 'an update keeps every published port');
  t.regex((await httpGet(ports['web:8080']!, '/cgi-bin/info')).body, /"version":"2"/, 'the new instance answers on the old port');
  await consistent(t, h, v2);

  t.is((await h.run(['restart', a])).code, 0);
  t.deepEqual(published(await h.json<DeploymentView>(['inspect', a])), ports, 'a restart keeps them');
  t.is((await h.run(['stop', a])).code, 0);
  t.is((await h.run(['start', a])).code, 0);
  t.deepEqual(published(await h.json<DeploymentView>(['inspect', a])), ports, 'stop and start keep them');

  const back = await h.run(['rollback', a]);
  t.is(back.code, 0, back.stderr);
  const v3 = await h.json<DeploymentView>(['inspect', a]);
  t.deepEqual(published(v3), ports, 'a rollback keeps them');
  t.regex((await httpGet(ports['web:8080']!, '/cgi-bin/info')).body, /"version":"1"/);

  // Drop 9090: it stays reserved for this deployment.
  const dropped = await h.run(['update', a, '-f', one]);
  t.is(dropped.code, 0, dropped.stderr);
  const v4 = await h.json<DeploymentView>(['inspect', a]);
  t.deepEqual(published(v4), { 'db:5432': ports['db:5432'], 'web:8080': ports['web:8080'] });
  t.true(v4.ports.some((p) => p.host === ports['web:9090'] && p.role === 'spare'), 'the dropped port is a spare of the deployment');
  await consistent(t, h, v4);

  // Another deployment never gets any of them.
  const b = h.name('other');
  t.is((await h.run(['create', '-n', b, '-f', one])).code, 0);
  const vb = await h.json<DeploymentView>(['inspect', b]);
  const mine = new Set(v4.ports.map((p) => p.host));
  t.deepEqual(vb.ports.filter((p) => mine.has(p.host)), [], 'no port of the first deployment goes to the second');

  // Publishing 9090 again takes the spare back.
  const again = await h.run(['update', a, '-f', two]);
  t.is(again.code, 0, again.stderr);
  t.deepEqual(published(await h.json<DeploymentView>(['inspect', a])), ports);

  // Destroy releases them all.
  t.is((await h.run(['destroy', a])).code, 0);
  t.deepEqual((await registry(h)).filter((p) => mine.has(p.host)), []);
});

test('a routed service starts its new instance beside the old one; instances alternate between two ports', async (t) => {
  const h = await harness(t);
  const name = h.name('alt');
  const config = path.join(EXAMPLES, 'webapp/depad.yml');
  t.is((await h.run(['create', '-n', name, '-f', config])).code, 0);
  const upstream = async () => (await h.json<DeploymentView>(['inspect', name])).services.find((s) => s.name === 'web')!.ports.find((p) => p.role === 'instance')!.host;
  const p1 = await upstream();
  const r2 = await h.run(['update', name, '-s', 'web', '--image', 'depad-example/node-app:2']);
  t.is(r2.code, 0, r2.stderr);
  t.regex(r2.stderr, /starting the new web[\s\S]*stopping the old web/, 'start-first: no published port to hand over');
  const p2 = await upstream();
  t.not(p2, p1, 'the new instance has its own port');
  const r3 = await h.run(['update', name, '-s', 'web', '--image', 'depad-example/node-app:1']);
  t.is(r3.code, 0, r3.stderr);
  t.is(await upstream(), p1, "the third instance takes the first one's port, a spare of the deployment");
  const view = await h.json<DeploymentView>(['inspect', name]);
  t.is(view.ports.filter((p) => p.role === 'spare').map((p) => p.host).join(), String(p2));
  await consistent(t, h, view);
});
