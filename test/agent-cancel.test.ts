/**
 * Ctrl-C of an operation run by the agent (issue 12, point 3): the real CLI talks to a real agent
 * on its socket; SIGINT to the CLI while a service waits to be healthy makes the agent stop the
 * operation and undo it, and the CLI exits 130 once the agent says it has. A create leaves nothing
 * (containers, networks, root, ports); an update leaves the deployment at its revision with the
 * old instance serving; a destroy interrupted in its before-destroy workflow leaves it whole. A
 * client that goes away (SIGKILL) stops its operation too, and a remote CLI over HTTPS cancels
 * with its own (deploy) token. The harness removes what is left.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { DeploymentView } from '../src/deploy/status.ts';
import { startAgent } from './helpers/agent-process.ts';
import { until } from './helpers/agent-api.ts';
import { DEPAD, EXAMPLES, engineObjects, harness, httpGet, testPorts, type Harness } from './helpers/harness.ts';

/** web is healthy unless SLOW=1: then its health check never passes (it waits up to the start timeout, 2 min). */
const CONFIG = [
  'services:',
  '  web:',
  '    image: depad-example/app:1',
  '    environment: { APP_NAME: cancel, SLOW: "${SLOW:-0}" }',
  '    ports: ["8080"]',
  '    healthcheck:',
  '      test: ["CMD-SHELL", "test \\"$$SLOW\\" != 1"]',
  '      interval: 1s',
  '      retries: 1000',
  'x-depad:',
  '  workflows:',
  '    guard:',
  '      hooks: [before-destroy]',
  '      steps:',
  '        - run: test "$$SLOW_DESTROY" != 1 || sleep 60',
  '',
].join('\n');

/** `depad args…` as a child process, its stderr collected; `when(re)` resolves once stderr matches. */
function spawnCli(t: ExecutionContext, h: Harness, args: string[], env: Record<string, string> = {}) {
  const child = spawn(DEPAD, args, { env: { ...process.env, DEPAD_HOME: h.home, DEPAD_PORT_RANGE: h.portRange, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => void (child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')));
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.resume();
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return {
    child,
    exited,
    stderr: () => stderr,
    when: (re: RegExp) => until(`${re} in the CLI's stderr (so far: ${stderr})`, async () => re.test(stderr), 60_000),
  };
}

async function writeConfig(h: Harness): Promise<string> {
  const file = path.join(h.dir, 'cancel.yml');
  await fs.writeFile(file, CONFIG);
  return file;
}

test('Ctrl-C of a create through the agent: the agent undoes it, the CLI says so once done, exit 130, nothing left', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  await startAgent(t, h, port);
  const name = h.name('slow');
  const create = spawnCli(t, h, ['create', '-n', name, '-f', await writeConfig(h), '-e', 'SLOW=1']);
  await create.when(/waiting for web to be healthy/);
  const interrupted = Date.now();
  create.child.kill('SIGINT');
  t.is(await create.exited, 130, create.stderr());
  t.true(Date.now() - interrupted < 15_000, `the undo took ${Date.now() - interrupted} ms`);
  t.regex(create.stderr(), /SIGINT: asking the agent to stop the operation and undo what it did/);
  t.regex(create.stderr(), /create interrupted; removing what it made/, "the agent's undo is streamed");
  t.regex(create.stderr(), /depad: interrupted at step 'wait:web'/);
  t.regex(create.stderr(), /hint: what the operation had done was undone/);

  // The agent undid it before the CLI exited: nothing of it is left, at once.
  t.false((await h.json<{ name: string }[]>(['ls'])).some((d) => d.name === name), 'the deployment does not exist');
  t.deepEqual(await engineObjects(h.engine, h.prefix), { containers: [], networks: [], volumes: [] });
  t.deepEqual(await fs.readdir(path.join(h.home, 'deployments')).catch(() => []), [], 'no root directory left');
  const probe = h.name('probe');
  t.is((await h.run(['create', '-n', probe, '-f', path.join(EXAMPLES, 'hello/depad.yml'), '--no-wait'])).code, 0);
  const view = await h.json<DeploymentView>(['inspect', probe]);
  t.is(view.ports[0]?.host, Number(h.portRange.split('-')[0]), 'its port was given back');
  t.is((await h.run(['destroy', probe])).code, 0);
});

test('Ctrl-C of an update through the agent: the deployment stays at its revision, the old instance serving', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  await startAgent(t, h, port);
  const name = h.name('upd');
  const file = await writeConfig(h);
  const created = await h.run(['create', '-n', name, '-f', file]);
  t.is(created.code, 0, created.stderr);
  const before = await h.json<DeploymentView>(['inspect', name]);
  const oldPort = before.services[0]?.instances[0]?.ports.find((p) => p.target === 8080)?.host as number;

  const update = spawnCli(t, h, ['update', name, '-f', file, '-e', 'SLOW=1']);
  await update.when(/waiting for .*web.* to be healthy/);
  update.child.kill('SIGINT');
  t.is(await update.exited, 130, update.stderr());
  t.regex(update.stderr(), /asking the agent to stop the operation/);
  t.regex(update.stderr(), /stays at revision 1/);
  t.regex(update.stderr(), /depad: interrupted at step/);

  const after = await h.json<DeploymentView & { revisions: unknown[] }>(['inspect', name]);
  t.is(after.revision, 1);
  t.is(after.revisions.length, 1, 'no revision 2 was kept');
  t.is(after.status, 'running');
  t.is((await httpGet(oldPort, '/cgi-bin/info')).status, 200, 'the old instance serves on its port');
  t.deepEqual((await engineObjects(h.engine, h.prefix)).containers, before.services.flatMap((s) => s.instances.map((i) => i.container)), 'the new instance was removed');
  t.is((await h.run(['destroy', name])).code, 0);
});

test('Ctrl-C of a destroy in its before-destroy workflow: nothing removed, the CLI says so; a client gone stops its create', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  await startAgent(t, h, port);
  const name = h.name('keep');
  const file = await writeConfig(h);
  // Its before-destroy step sleeps a minute (the harness removes it in the end).
  t.is((await h.run(['create', '-n', name, '-f', file, '-e', 'SLOW_DESTROY=1'])).code, 0);
  const destroy = spawnCli(t, h, ['destroy', name]);
  await destroy.when(/step 1 run: test/);
  const interrupted = Date.now();
  destroy.child.kill('SIGINT');
  t.is(await destroy.exited, 130, destroy.stderr());
  t.true(Date.now() - interrupted < 10_000, `the step was ended at once (${Date.now() - interrupted} ms), not after its sleep`);
  t.regex(destroy.stderr(), new RegExp(`the destroy of ${name} was interrupted before anything was removed`));
  t.is((await h.json<DeploymentView>(['inspect', name])).status, 'running', 'it is whole');

  // A client killed outright: its connection closes, and the agent stops and undoes its create.
  const gone = h.name('gone');
  const create = spawnCli(t, h, ['create', '-n', gone, '-f', file, '-e', 'SLOW=1']);
  await create.when(/waiting for web to be healthy/);
  create.child.kill('SIGKILL');
  await until('the agent to undo the create of a client that went away', async () => !(await h.json<{ name: string }[]>(['ls'])).some((d) => d.name === gone), 15_000);
  t.deepEqual((await engineObjects(h.engine, h.prefix)).containers.filter((c) => c.includes('-gone-')), []);
});

test('Ctrl-C of a create by a remote CLI over HTTPS, with a deploy token: its cancel is authorized, the create undone, exit 130', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  const agent = await startAgent(t, h, port);
  const name = h.name('remote');
  const token = (await h.run(['token', 'create', '--name', 'ci', '--scope', 'deploy', '-d', `${h.prefix}-*`])).stdout.trim();
  const remote = { DEPAD_HOST: `https://127.0.0.1:${agent.facts.apiPort}`, DEPAD_TOKEN: token, DEPAD_CA_FINGERPRINT: agent.facts.fingerprint };
  // The config travels as text; its run: step (host) is left out, as a remote config must.
  const file = path.join(h.dir, 'remote.yml');
  await fs.writeFile(file, CONFIG.replace(/x-depad:[\s\S]*$/, ''));
  const create = spawnCli(t, h, ['create', '-n', name, '-f', file, '-e', 'SLOW=1'], remote);
  await create.when(/waiting for web to be healthy/);
  create.child.kill('SIGINT');
  t.is(await create.exited, 130, create.stderr());
  t.regex(create.stderr(), /asking the agent to stop the operation/);
  t.regex(create.stderr(), /depad: interrupted at step 'wait:web'/);
  t.false((await h.json<{ name: string }[]>(['ls'])).some((d) => d.name === name));
  t.deepEqual((await engineObjects(h.engine, h.prefix)).containers, []);
});
