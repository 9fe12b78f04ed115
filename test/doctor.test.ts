/**
 * `depad doctor` against the real engine: orphans of a wiped store are listed and removed (their
 * volume only with --volumes), while objects without depad's labels and another home's deployment
 * on the same engine are never listed nor touched; a container removed behind depad's back, a
 * stray one, a leaked port and an interrupted create are found and put right; --fix without
 * --yes on a non-terminal stdin is refused; the same through the agent, admin tokens only.
 * Objects the test makes without depad's labels are removed in t.teardown; the harness removes
 * depad's (both homes use the test's name prefix).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import type { Diagnosis, Finding, FixOutcome } from '../src/deploy/doctor.ts';
import type { DeploymentView } from '../src/deploy/status.ts';
import { Store } from '../src/store/store.ts';
import { until } from './helpers/agent-api.ts';
import { startAgent } from './helpers/agent-process.ts';
import { EXAMPLES, engineObjects, harness, httpGet, testPorts, type Harness } from './helpers/harness.ts';

const clinic = path.join(EXAMPLES, 'clinic/depad.yml');
const hello = path.join(EXAMPLES, 'hello/depad.yml');
const docker = (...args: string[]) => execFileSync('docker', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
const exists = (kind: 'container' | 'network', id: string) => {
  try {
    docker(kind, 'inspect', id);
    return true;
  } catch {
    return false;
  }
};

/** The diagnosis (exit code checked), its findings reduced to this test's deployments. */
async function doctor(t: Parameters<typeof harness>[0], h: Harness, code: number, args: string[] = []): Promise<{ d: Diagnosis; mine: Array<[Finding['kind'], string]> }> {
  const r = await h.run(['doctor', '--json', ...args]);
  t.is(r.code, code, r.stderr);
  const d = JSON.parse(r.stdout) as Diagnosis;
  const mine = d.findings.filter((f) => f.deployment?.name?.startsWith(h.prefix) ?? true).map((f) => [f.kind, f.object] as [Finding['kind'], string]);
  return { d, mine: mine.sort((a, b) => `${a[0]} ${a[1]}`.localeCompare(`${b[0]} ${b[1]}`)) };
}

test('a wiped store: orphans listed, removed by --fix --yes (the volume with --volumes); unlabelled objects and another home untouched', async (t) => {
  const h = await harness(t);
  const name = h.name('orph');
  const created = await h.run(['create', '-n', name, '-f', clinic]);
  t.is(created.code, 0, created.stderr);
  const id = (await h.json<DeploymentView>(['inspect', name])).id;
  // Objects without depad's labels (only this test's own), and a deployment of another home.
  const plainContainer = docker('create', '--label', `depad-test.doctor=${h.prefix}`, '--name', `${h.prefix}-plain`, 'depad-example/app:1');
  t.teardown(() => void (exists('container', plainContainer) && docker('rm', '-f', plainContainer)));
  const plainNetwork = docker('network', 'create', '--label', `depad-test.doctor=${h.prefix}`, `${h.prefix}-plain`);
  t.teardown(() => void (exists('network', plainNetwork) && docker('network', 'rm', plainNetwork)));
  const otherHome = { DEPAD_HOME: path.join(h.dir, 'other-home') };
  const other = h.name('other');
  t.is((await h.run(['create', '-n', other, '-f', hello], { env: otherHome })).code, 0);

  t.is((await doctor(t, h, 0)).mine.length, 0, 'clean before');
  await fs.rm(path.join(h.home, 'state'), { recursive: true, force: true });

  const { d, mine } = await doctor(t, h, 14);
  const root = path.join(h.home, 'deployments', id);
  t.deepEqual(mine, [
    ['orphan-container', `depad-${name}-db-1`],
    ['orphan-container', `depad-${name}-web-1`],
    ['orphan-container', `depad-${name}-worker-1`],
    ['orphan-network', `depad-${name}_default`],
    ['orphan-root', root],
    ['orphan-volume', `depad-${name}_data`],
  ]);
  t.true(d.findings.every((f) => f.deployment?.id === id), 'nothing else of this engine is an orphan here');
  t.is(d.findings.find((f) => f.kind === 'orphan-volume')!.fix.action, 'keep');
  const named = JSON.stringify(d);
  t.false(named.includes(`${h.prefix}-plain`), 'objects without depad labels are not even listed');
  t.false(named.includes(other), "another home's deployment is neither an orphan nor unattributed");
  t.true(d.otherHomes >= 2, 'it is counted as another home\'s');
  const human = await h.run(['doctor']);
  t.is(human.code, 14);
  t.regex(human.stdout, /^KIND\s+OBJECT\s+DEPLOYMENT\s+FIX\n/);
  t.regex(human.stdout, new RegExp(`orphan-container\\s+depad-${name}-db-1\\s+${name} \\(${id.slice(0, 12)}\\)\\s+remove`));
  t.regex(human.stderr, /depad: 6 findings\n\s+hint: depad doctor --fix/);

  // A new deployment of the same name meets the orphan network, and is told what to run.
  const again = await h.run(['create', '-n', name, '-f', clinic]);
  t.is(again.code, 5, again.stderr);
  t.regex(again.stderr, /network depad-\S+_default exists[\s\S]*hint: .*depad doctor --fix removes it/);
  t.is((await doctor(t, h, 14)).mine.length, 6, 'the failed create left nothing and took nothing');

  // --fix asks first; with stdin not a terminal it needs --yes.
  const refused = await h.run(['doctor', '--fix']);
  t.is(refused.code, 2);
  t.regex(refused.stderr, /stdin is not a terminal[\s\S]*hint: .*depad doctor --fix --yes/);
  t.is((await engineObjects(h.engine, h.prefix)).containers.length, 4, 'nothing was changed');

  const fixed = await h.run(['doctor', '--fix', '--yes']);
  t.is(fixed.code, 14, 'the volume and the root directory are kept, so findings are left');
  t.regex(fixed.stdout, new RegExp(`fixed\\s+orphan-container\\s+depad-${name}-web-1\\s+removed`));
  t.regex(fixed.stderr, /2 findings left/);
  t.deepEqual(await engineObjects(h.engine, h.prefix), { containers: [`depad-${other}-web-1`], networks: [`depad-${other}_default`], volumes: [`depad-${name}_data`] });
  t.deepEqual((await doctor(t, h, 14)).mine, [['orphan-root', root], ['orphan-volume', `depad-${name}_data`]]);
  t.is((await doctor(t, h, 14, ['--volumes'])).d.findings.find((f) => f.kind === 'orphan-volume')!.fix.action, 'remove');

  const all = await h.run(['doctor', '--fix', '--yes', '--volumes', '--json']);
  t.is(all.code, 0, all.stderr);
  const outcome = JSON.parse(all.stdout) as FixOutcome & { found: Diagnosis };
  t.deepEqual(outcome.results.map((r) => [r.kind, r.result]).sort(), [['orphan-root', 'fixed'], ['orphan-volume', 'fixed']]);
  t.deepEqual(outcome.after.findings, []);
  await t.throwsAsync(fs.stat(root));
  t.deepEqual(await engineObjects(h.engine, h.prefix), { containers: [`depad-${other}-web-1`], networks: [`depad-${other}_default`], volumes: [] });
  const clean = await h.run(['doctor']);
  t.is(clean.code, 0, clean.stderr);
  t.regex(clean.stdout, /no findings/);

  t.true(exists('container', plainContainer) && exists('network', plainNetwork), 'objects without depad labels untouched');
  const otherView = JSON.parse((await h.run(['inspect', other, '--json'], { env: otherHome })).stdout) as DeploymentView;
  t.is(otherView.status, 'running', "the other home's deployment still runs");
  t.is((await h.run(['doctor'], { env: otherHome })).code, 0, 'and its own doctor finds nothing');
  t.is((await h.run(['destroy', other], { env: otherHome })).code, 0);
});

test('a container removed by hand, a stray one, a leaked port, an interrupted create: found and put right', async (t) => {
  const h = await harness(t);
  const name = h.name('drift');
  t.is((await h.run(['create', '-n', name, '-f', hello])).code, 0);
  const before = await h.json<DeploymentView>(['inspect', name]);
  const web = `depad-${name}-web-1`;
  // A leftover with the deployment's labels (as a crash in a workflow step would leave), the current instance gone.
  const labels = JSON.parse(docker('inspect', '--format', '{{json .Config.Labels}}', web)) as Record<string, string>;
  docker('create', ...Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]), '--name', `depad-${name}-wf-left`, 'depad-example/app:1');
  docker('rm', '-f', web);
  // A port reserved for a deployment that does not exist.
  const leaked = Number(h.portRange.split('-')[1]);
  const store = await Store.open(h.home, { command: 'test' });
  await store.batch().putPorts([{ service: 'ghost', target: 80, protocol: 'tcp', host: leaked, role: 'instance', instance: 1, deploymentId: 'f'.repeat(32) }]).write();
  await store.close();
  // A create killed half way: its objects are the journal's business, not orphans.
  const crashed = h.name('crashed');
  t.not((await h.run(['create', '-n', crashed, '-f', hello], { env: { DEPAD_TEST_CRASH_AT: 'networks' } })).code, 0);

  const { d, mine } = await doctor(t, h, 14);
  t.deepEqual(mine, [
    ['interrupted-operation', `create ${crashed}`],
    ['missing-container', web],
    ['port-leak', `port ${leaked}`],
    ['stray-container', `depad-${name}-wf-left`],
  ]);
  t.is(d.findings.find((f) => f.kind === 'missing-container')!.fix.action, 'recreate');
  t.deepEqual((await engineObjects(h.engine, h.prefix)).networks.sort(), [`depad-${crashed}_default`, `depad-${name}_default`], 'doctor itself recovered nothing');

  const fixed = await h.run(['doctor', '--fix', '--yes']);
  t.is(fixed.code, 0, fixed.stderr);
  t.regex(fixed.stdout, new RegExp(`fixed\\s+missing-container\\s+${web}\\s+re-created and started`));
  t.regex(fixed.stdout, /fixed\s+interrupted-operation\s+create \S+\s+undone/);
  t.regex(fixed.stdout, /doctor: clean now/);
  const after = await h.json<DeploymentView>(['inspect', name]);
  t.is(after.status, 'running');
  t.deepEqual(after.ports, before.ports, 'the same ports');
  t.is((await httpGet(after.ports[0]!.host, '/cgi-bin/health')).status, 200);
  t.deepEqual(await engineObjects(h.engine, h.prefix), { containers: [web], networks: [`depad-${name}_default`], volumes: [] });
  t.is((await h.run(['doctor'])).code, 0);
  t.is((await h.run(['destroy', name])).code, 0);
});

test('doctor through the agent: the same findings and fix; admin tokens only', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  const agent = await startAgent(t, h, port);
  const name = h.name('viaagent');
  t.is((await h.run(['create', '-n', name, '-f', hello])).code, 0);
  const web = `depad-${name}-web-1`;
  const labels = JSON.parse(docker('inspect', '--format', '{{json .Config.Labels}}', web)) as Record<string, string>;
  docker('rm', '-f', web);
  // The agent itself puts back a container removed by hand (it reconciles to the record)…
  await until('the agent to re-create the container', async () => exists('container', web) && docker('inspect', '-f', '{{.State.Running}}', web) === 'true');
  // …and doctor through it finds what the agent leaves alone: a leftover carrying the deployment's labels.
  const left = `depad-${name}-wf-left`;
  docker('create', ...Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]), '--name', left, 'depad-example/app:1');
  t.deepEqual((await doctor(t, h, 14)).mine, [['stray-container', left]]);
  t.is((await h.run(['doctor', '--fix'])).code, 2, '--yes is needed through the agent too');
  const fixed = await h.run(['doctor', '--fix', '--yes']);
  t.is(fixed.code, 0, fixed.stderr);
  t.regex(fixed.stderr, /removing container/, 'progress streams from the agent');
  t.false(exists('container', left));
  t.is((await h.json<DeploymentView>(['inspect', name])).status, 'running');
  t.is((await doctor(t, h, 0)).mine.length, 0);

  const token = (await h.run(['token', 'create', '--name', 'ci', '--scope', 'deploy', '-d', name])).stdout.trim();
  const remote = { DEPAD_HOST: `https://127.0.0.1:${agent.facts.apiPort}`, DEPAD_TOKEN: token, DEPAD_CA_FINGERPRINT: agent.facts.fingerprint };
  const forbidden = await h.run(['doctor'], { env: remote });
  t.is(forbidden.code, 13, forbidden.stderr);
  t.regex(forbidden.stderr, /may not doctor/);
  t.is((await h.run(['destroy', name])).code, 0);
  agent.child.kill('SIGTERM');
  t.is(await agent.exited, 0);
  const audit = await fs.readFile(path.join(h.home, 'audit.log'), 'utf8');
  t.regex(audit, /"action":"doctor","result":"ok"/);
  t.regex(audit, /"token":"ci","action":"doctor","result":"error","status":403/);
});
