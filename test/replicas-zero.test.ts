/**
 * `replicas: 0` (and `scale: 0`): a service that runs no container until scaled. Its route stays
 * (the proxy answers 503 with no upstream), its dependants start without it, a scale to N starts
 * N replicas and a scale back to 0 drains and removes them, their ports returning as spares; a
 * change while it runs nothing is recorded, and the next scale starts the new version.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { parseConfig } from '../src/config/index.ts';
import type { DeploymentView } from '../src/deploy/status.ts';
import { problems } from './helpers/config-problems.ts';
import { harness } from './helpers/harness.ts';
import { getVia, jsonVia } from './helpers/load.ts';
import { startProxyProcess } from './helpers/proxy-process.ts';

test('replicas: 0 and scale: 0 are read as 0; a service joining the namespaces of one at 0 is refused', (t) => {
  const spec = parseConfig('services:\n  web:\n    image: a:1\n    deploy: {replicas: 0}\n  api:\n    image: a:1\n    scale: 0\n', 'cfg.yml', {});
  t.is(spec.services['web']!.replicas, 0);
  t.is(spec.services['api']!.replicas, 0);
  t.regex(problems('services:\n  web:\n    image: a:1\n    deploy: {replicas: 0}\n  side:\n    image: a:1\n    network_mode: "service:web"\n'), /web runs 0 replicas, and side can join the namespaces of a running container only/);
});

test('replicas: 0: created with no container, its dependant starts, the proxy answers 503; scale 0 → 2 → 0', async (t) => {
  const h = await harness(t);
  const proxy = await startProxyProcess(t, h);
  const name = h.name('zero');
  const config = path.join(h.dir, 'compose.yaml');
  await fs.writeFile(config, `services:
  web:
    image: depad-example/node-app:1
    deploy:
      replicas: 0
    x-depad:
      expose: http
      port: 8080
      drain_timeout: 2s
  worker:
    image: depad-example/app:1
    command: ["sleep", "3600"]
    depends_on: [web]
`);
  const created = await h.run(['create', '-n', name, '-f', config]);
  t.is(created.code, 0, created.stderr);
  const webOf = (v: DeploymentView) => v.services.find((s) => s.name === 'web')!;
  let view = await h.json<DeploymentView>(['inspect', name]);
  t.is(webOf(view).instances.length, 0);
  t.is(webOf(view).replicas, 0);
  t.regex(view.status, /^running/);
  t.regex((await h.run(['ps', name])).stdout, /web\s+-\s+0 replicas/);
  const host = `web.${name}.localhost`;
  t.is((await getVia(proxy.port, host)).status, 503, 'a route with no replica answers 503');

  const up = await h.run(['scale', name, 'web=2']);
  t.is(up.code, 0, up.stderr);
  view = await h.json<DeploymentView>(['inspect', name]);
  t.deepEqual(webOf(view).instances.map((i) => i.container).sort(), [1, 2].map((n) => `depad-${name}-web-${n}`));
  t.is((await getVia(proxy.port, host)).status, 200);
  const portsUp = view.ports.filter((p) => p.service === 'web' && p.role === 'instance').map((p) => p.host);
  t.is(portsUp.length, 2);
  t.regex((await h.run(['history', name])).stdout, /^\*2\s+\S+ \S+\s+scale\s+web\s/m, 'a scale is recorded as one');

  const down = await h.run(['scale', name, 'web=0']);
  t.is(down.code, 0, down.stderr);
  view = await h.json<DeploymentView>(['inspect', name]);
  t.is(webOf(view).instances.length, 0);
  t.is(view.revision, 3);
  t.is((await getVia(proxy.port, host)).status, 503);
  t.deepEqual(view.ports.filter((p) => portsUp.includes(p.host)).map((p) => p.role), ['spare', 'spare'], 'the ports return to the deployment as spares');
  t.is(view.services.find((s) => s.name === 'worker')!.instances[0]!.state, 'running', 'the worker was never touched');
  // A change to the service while it runs nothing is an update of its own: the next scale starts the new version.
  const v2 = path.join(h.dir, 'compose-v2.yaml');
  await fs.writeFile(v2, (await fs.readFile(config, 'utf8')).replace('node-app:1', 'node-app:2'));
  const changed = await h.run(['update', name, '-f', v2]);
  t.is(changed.code, 0, changed.stderr);
  t.regex(changed.stderr, /web: its config changed; it runs no container \(replicas: 0\), so a scale starts the new one/);
  t.is((await h.json<DeploymentView>(['inspect', name])).revision, 4);
  t.regex((await h.run(['update', name, '-f', v2])).stdout, /no changes/, 'the same file again changes nothing');
  t.is((await h.run(['scale', name, 'web=1'])).code, 0);
  t.is((await jsonVia<{ version: string }>(proxy.port, host)).version, '2');
  // Rollback restores the 2 replicas of revision 2.
  const back = await h.run(['rollback', name, '--to', '2']);
  t.is(back.code, 0, back.stderr);
  t.is(webOf(await h.json<DeploymentView>(['inspect', name])).instances.length, 2);
});

test('a deployment whose every service is at replicas: 0 is running (nothing to run), and stopped once stopped', async (t) => {
  const h = await harness(t);
  const name = h.name('none');
  const config = path.join(h.dir, 'none.yaml');
  await fs.writeFile(config, 'services:\n  web:\n    image: depad-example/app:1\n    scale: 0\n');
  t.is((await h.run(['create', '-n', name, '-f', config])).code, 0);
  const status = async () => (await h.json<DeploymentView[]>(['ls'])).find((v) => v.name === name)!.status;
  t.is(await status(), 'running');
  t.is((await h.run(['stop', name])).code, 0);
  t.is(await status(), 'stopped');
});
