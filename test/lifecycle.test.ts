/** stop, start, restart (whole and per service), ID lookup, destroy: ports stay, nothing is left behind. */
import fs from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import type { DeploymentView } from '../src/deploy/status.ts';
import { EXAMPLES, engineObjects, harness, httpGet } from './helpers/harness.ts';

const clinic = path.join(EXAMPLES, 'clinic/depad.yml');
const states = (v: DeploymentView) => Object.fromEntries(v.services.map((s) => [s.name, s.instances[0]?.state]));

test('lifecycle keeps ports and destroy leaves nothing', async (t) => {
  const h = await harness(t);
  const name = h.name('life');
  t.is((await h.run(['create', '-n', name, '-f', clinic])).code, 0);
  const first = await h.json<DeploymentView>(['inspect', name]);
  const webPort = first.ports.find((p) => p.service === 'web')!.host;
  const startedAt = first.services.find((s) => s.name === 'web')!.instances[0]!.startedAt;
  t.is((await httpGet(webPort, '/cgi-bin/info')).status, 200);

  // Per service, by ID prefix.
  const byPrefix = first.id.slice(0, 8);
  t.is((await h.run(['stop', byPrefix, '-s', 'worker'])).code, 0);
  const one = await h.json<DeploymentView>(['inspect', name]);
  t.deepEqual(states(one), { db: 'running', web: 'running', worker: 'exited' });
  t.deepEqual(one.stoppedServices, ['worker'], 'kept down on its own (the agent leaves it so)');
  t.is((await h.run(['deployment', 'start', first.id, '--service', 'worker'])).code, 0);
  t.is(states(await h.json<DeploymentView>(['inspect', name])).worker, 'running');
  t.is((await h.run(['restart', name, '-s', 'web'])).code, 0);
  const restarted = await h.json<DeploymentView>(['inspect', name]);
  t.not(restarted.services.find((s) => s.name === 'web')!.instances[0]!.startedAt, startedAt, 'web was restarted');
  t.is(restarted.services.find((s) => s.name === 'web')!.instances[0]!.health, 'healthy', 'restart waits for health');
  t.is(restarted.stoppedServices, undefined, 'a restarted service is not left marked stopped (the agent would stop it)');

  // Whole deployment: stop keeps the port registry; start brings it back on the same ports.
  const stopped = await h.run(['stop', name]);
  t.is(stopped.code, 0);
  t.regex(stopped.stderr, /stopping worker[\s\S]*stopping web[\s\S]*stopping db/, 'dependants stop first');
  const down = await h.json<DeploymentView>(['inspect', name]);
  t.is(down.status, 'stopped');
  t.is(down.desired, 'stopped');
  t.deepEqual(down.ports, first.ports);
  await t.throwsAsync(httpGet(webPort, '/cgi-bin/info'));
  t.is((await h.run(['start', name])).code, 0);
  t.is((await h.run(['restart', name])).code, 0);
  const up = await h.json<DeploymentView>(['inspect', name]);
  t.is(up.status, 'running');
  t.is(up.desired, 'running', 'a restarted deployment is not left desired stopped (the agent would stop it)');
  t.deepEqual(up.ports, first.ports, 'ports unchanged across stop, start and restart');
  t.is((await httpGet(webPort, '/cgi-bin/visits')).status, 200);

  // Unknown service, unknown deployment.
  const badService = await h.run(['stop', name, '-s', 'nope']);
  t.is(badService.code, 4);
  t.regex(badService.stderr, /has no service "nope"[\s\S]*hint: its services are: db, web, worker/);
  t.is((await h.run(['start', 'no-such-deployment'])).code, 4);

  // destroy: no container, network, volume, port or directory left.
  const destroyed = await h.run(['destroy', name]);
  t.is(destroyed.code, 0, destroyed.stderr);
  t.deepEqual(await engineObjects(h.engine, h.prefix), { containers: [], networks: [], volumes: [] });
  t.deepEqual(await fs.readdir(path.join(h.home, 'deployments')), []);
  t.deepEqual(await h.json(['ls']), []);
  // The ports are free again: a new deployment can be given them (the cursor moved on, so use a full cycle's view).
  t.is((await h.run(['inspect', name])).code, 4);
});

test('destroy --keep-volumes keeps data for the next deployment of that name', async (t) => {
  const h = await harness(t);
  const name = h.name('keep');
  t.is((await h.run(['create', '-n', name, '-f', clinic, '--no-wait'])).code, 0);
  const v1 = await h.json<DeploymentView>(['inspect', name]);
  const web1 = v1.ports.find((p) => p.service === 'web')!.host;
  await httpGet(web1, '/cgi-bin/visits');
  t.regex((await httpGet(web1, '/cgi-bin/visits')).body, /"visits":2,/);
  t.is((await h.run(['destroy', name, '--keep-volumes'])).code, 0);
  t.deepEqual((await engineObjects(h.engine, h.prefix)).volumes, [`depad-${name}_data`]);
  const again = await h.run(['create', '-n', name, '-f', clinic]);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stderr, /reused/);
  const web2 = (await h.json<DeploymentView>(['inspect', name])).ports.find((p) => p.service === 'web')!.host;
  t.regex((await httpGet(web2, '/cgi-bin/visits')).body, /"visits":3,/, 'the kept volume was reused');
  t.is((await h.run(['destroy', name])).code, 0);
  t.deepEqual(await engineObjects(h.engine, h.prefix), { containers: [], networks: [], volumes: [] });
});
