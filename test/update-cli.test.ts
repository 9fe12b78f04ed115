/**
 * What `update` and `rollback` take from the command line, through the real CLI, locally and
 * through an agent: `--dry-run` on one deployment changes nothing and says what would happen;
 * options a command does not use are refused; variables start from the current revision's.
 */
import test, { type ExecutionContext } from 'ava';
import path from 'node:path';
import type { UpdatePreview } from '../src/deploy/update-preview.ts';
import type { DeploymentView } from '../src/deploy/status.ts';
import { startAgent } from './helpers/agent-process.ts';
import { EXAMPLES, engineObjects, harness, httpGet, testPorts, type Harness } from './helpers/harness.ts';

const clinic = path.join(EXAMPLES, 'clinic/depad.yml');
const webPort = (v: DeploymentView) => v.services.find((s) => s.name === 'web')!.ports[0]!.host;

/** What must not change across a dry run: revision, containers, ports. */
async function snapshot(h: Harness, name: string): Promise<unknown> {
  const view = await h.json<DeploymentView>(['inspect', name]);
  return { revision: view.revision, ports: view.ports, containers: (await engineObjects(h.engine, h.prefix)).containers.sort() };
}

async function dryRuns(t: ExecutionContext, h: Harness, name: string): Promise<void> {
  const before = await snapshot(h, name);
  const dry = await h.run(['update', name, '-s', 'web', '--image', 'depad-example/app:2', '--dry-run']);
  t.is(dry.code, 0, dry.stderr);
  t.regex(dry.stdout, /^dry run: nothing was changed\n/);
  t.regex(dry.stdout, /~ web: new instance: image depad-example\/app:1 → depad-example\/app:2/);
  t.regex(dry.stdout, /would make revision 2:\n\s+1\. web: stop-first \(its published port \d+ passes to the new instance\): stop depad-.*-web-1, start depad-.*-web-2/);
  const json = JSON.parse((await h.run(['update', name, '-e', 'WEB_VERSION=2', '--dry-run', '--json'])).stdout) as UpdatePreview;
  t.is(json.dryRun, true);
  t.is(json.toRevision, 2);
  t.deepEqual(json.diff.services.filter((s) => s.kind !== 'unchanged').map((s) => s.service), ['web']);
  t.deepEqual(json.pull, []);
  const missing = JSON.parse((await h.run(['update', name, '-s', 'web', '--image', 'depad-example/not-here:9', '--dry-run', '--json'])).stdout) as UpdatePreview;
  t.deepEqual(missing.pull, ['depad-example/not-here:9'], 'a dry run lists the image it would pull, and pulls nothing');
  t.deepEqual(await snapshot(h, name), before, 'the dry runs changed nothing');

  t.is((await h.run(['update', name, '-s', 'web', '--image', 'depad-example/app:2'])).code, 0);
  const after = await snapshot(h, name);
  const back = await h.run(['rollback', name, '--dry-run']);
  t.is(back.code, 0, back.stderr);
  t.regex(back.stdout, /~ web: new instance: image depad-example\/app:2 → depad-example\/app:1[\s\S]*would make revision 3/);
  t.deepEqual(await snapshot(h, name), after, 'a dry rollback changes nothing');
  t.is((await h.run(['rollback', name, '--to', '7', '--dry-run'])).code, 4, 'a dry run fails as the real one would');
}

test('update and rollback --dry-run on one deployment change nothing and say what would happen (local)', async (t) => {
  const h = await harness(t);
  const name = h.name('dry');
  t.is((await h.run(['create', '-n', name, '-f', clinic])).code, 0);
  await dryRuns(t, h, name);
});

test('update and rollback --dry-run through the agent', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  const name = h.name('dra');
  t.is((await h.run(['create', '-n', name, '-f', clinic])).code, 0);
  await startAgent(t, h, port);
  await dryRuns(t, h, name);
});

test('options a command does not use are refused, not ignored', async (t) => {
  const h = await harness(t);
  const name = h.name('opt');
  t.is((await h.run(['create', '-n', name, '-f', path.join(EXAMPLES, 'hello/depad.yml')])).code, 0);
  const parallel = await h.run(['update', name, '-s', 'web', '--image', 'depad-example/app:2', '--max-parallel', '3']);
  t.is(parallel.code, 2);
  t.regex(parallel.stderr, /--max-parallel applies to many deployments at once/);
  t.is((await h.run(['rollback', name, '--max-parallel', '2'])).code, 2);
  t.is((await h.run(['restart', name, '--max-parallel', '2'])).code, 2);
  const lonely = await h.run(['update', name, '-f', path.join(EXAMPLES, 'hello/depad.yml'), '-s', 'web']);
  t.is(lonely.code, 2);
  t.regex(lonely.stderr, /-s names the services --image gives a new image to/);
  t.is((await h.json<DeploymentView>(['inspect', name])).revision, 1);
});

test('update -e starts from the current variables; -f keeps them; --reset-env names what it drops', async (t) => {
  const h = await harness(t);
  const name = h.name('env');
  t.is((await h.run(['create', '-n', name, '-f', clinic, '-e', 'CLINIC=Mercy'])).code, 0);
  const port = webPort(await h.json<DeploymentView>(['inspect', name]));

  const bump = await h.run(['update', name, '-e', 'WEB_VERSION=2']);
  t.is(bump.code, 0, bump.stderr);
  t.regex((await httpGet(port, '/cgi-bin/info')).body, /"app":"Mercy".*"version":"2"/, '-e without -f: the current config, CLINIC kept');

  const again = await h.run(['update', name, '-f', clinic, '-e', 'WEB_VERSION=1']);
  t.is(again.code, 0, again.stderr);
  t.regex((await httpGet(port, '/cgi-bin/info')).body, /"app":"Mercy".*"version":"1"/, '-f without repeating -e keeps CLINIC');

  const reset = await h.run(['update', name, '-f', clinic, '--reset-env', '-e', 'WEB_VERSION=2']);
  t.is(reset.code, 0, reset.stderr);
  t.regex(reset.stderr, /warning: variable CLINIC was set for revision 3 and is not set now \(--reset-env\)/);
  t.notRegex(reset.stderr, /variable WEB_VERSION/);
  t.regex((await httpGet(port, '/cgi-bin/info')).body, /"app":"Demo Clinic".*"version":"2"/);
});
