/**
 * Failure injection against the real engine: a missing image, a service that crashes at start,
 * a port taken between probe and bind, depad killed at chosen steps of create, a dead engine,
 * a locked state. Each leaves no container, network, volume, directory or port behind.
 */
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import type { DeploymentView } from '../src/deploy/status.ts';
import { EXAMPLES, engineObjects, harness, type Harness } from './helpers/harness.ts';

const clinic = path.join(EXAMPLES, 'clinic/depad.yml');
const hello = path.join(EXAMPLES, 'hello/depad.yml');

/** Asserts that nothing of the test's deployments is left: engine, root dirs, registry. */
async function assertClean(t: ExecutionContext, h: Harness): Promise<void> {
  t.deepEqual(await engineObjects(h.engine, h.prefix), { containers: [], networks: [], volumes: [] });
  const roots = await fs.readdir(path.join(h.home, 'deployments')).catch(() => []);
  t.deepEqual(roots, [], 'no root directory left');
  t.deepEqual(await h.json(['ls']), []);
}

/** The first port a fresh home hands out is its range's first; proves the cursor and registry were restored. */
async function assertPortsFree(t: ExecutionContext, h: Harness): Promise<void> {
  const name = h.name('probe');
  const r = await h.run(['create', '-n', name, '-f', hello, '--no-wait']);
  t.is(r.code, 0, r.stderr);
  const view = await h.json<DeploymentView>(['inspect', name]);
  const range = Number(h.portRange.split('-')[0]);
  t.is(view.ports[0]!.host, range, 'the first block was handed out again: nothing leaked');
  t.is((await h.run(['destroy', name])).code, 0);
}

async function writeConfig(h: Harness, name: string, text: string): Promise<string> {
  const file = path.join(h.dir, name);
  await fs.writeFile(file, text);
  return file;
}

test('a missing image fails before anything is made', async (t) => {
  const h = await harness(t);
  const file = await writeConfig(h, 'missing.yml', 'services:\n  web:\n    image: depad-test/does-not-exist:1\n    ports: ["80"]\n');
  const r = await h.run(['create', '-n', h.name('noimg'), '-f', file]);
  t.is(r.code, 6);
  t.regex(r.stderr, /missing\.yml:3:12 services\.web\.image: image depad-test\/does-not-exist:1 is not on this host/);
  t.regex(r.stderr, /hint: build or load the image first/);
  await assertClean(t, h);
  await assertPortsFree(t, h);
});

test('a service that crashes at start undoes the whole create', async (t) => {
  const h = await harness(t);
  const file = await writeConfig(
    h,
    'crash.yml',
    [
      'services:',
      '  db:',
      '    image: depad-example/app:1',
      '    command: ["/app/bin/db"]',
      '    ports: ["5432"]',
      '    volumes: ["data:/data"]',
      '  broken:',
      '    image: depad-example/app:1',
      '    command: ["sh", "-c", "echo cannot open /etc/app.conf >&2; exit 3"]',
      '    depends_on: [db]',
      'volumes:',
      '  data:',
      '',
    ].join('\n'),
  );
  const r = await h.run(['create', '-n', h.name('crash'), '-f', file]);
  t.is(r.code, 10, r.stderr);
  t.regex(r.stderr, /service broken stopped right after it started \(exit code 3[,)]/);
  t.regex(r.stderr, /cannot open \/etc\/app\.conf/, 'the error quotes the service log');
  t.regex(r.stderr, /create failed; removing what it made/);
  await assertClean(t, h);
  await assertPortsFree(t, h);
});

test('a failed create quotes the last 20 log lines of the failing service (it removes them with it), and points nowhere else', async (t) => {
  const h = await harness(t);
  const file = await writeConfig(
    h,
    'noisy.yml',
    ['services:', '  web:', '    image: depad-example/app:1', '    command: ["sh", "-c", "for i in $$(seq 1 25); do echo line $$i; done; exit 1"]', ''].join('\n'),
  );
  const r = await h.run(['create', '-n', h.name('noisy'), '-f', file]);
  t.is(r.code, 10, r.stderr);
  t.regex(r.stderr, /last 20 log lines of \S+-web-1:\n {4}line 6\n[\s\S]* {4}line 25\n/);
  t.notRegex(r.stderr, /line 5\n/, 'only the last 20');
  t.regex(r.stderr, /hint: fix the service \(its last log lines are quoted above\)/);
  t.notRegex(r.stderr, /depad logs/, 'no pointer to logs the undo removed');
  const json = await h.run(['create', '-n', h.name('noisy'), '-f', file, '--json']);
  const error = (JSON.parse(json.stderr.trim().split('\n').pop() as string) as { error: { logs: string[] } }).error;
  t.deepEqual(error.logs, Array.from({ length: 20 }, (_, i) => `line ${i + 6}`));
  await assertClean(t, h);
});

test('a port taken between probe and bind fails cleanly', async (t) => {
  const h = await harness(t);
  const create = await h.startPaused(['create', '-n', h.name('race'), '-f', hello], 'networks');
  const port = Number(h.portRange.split('-')[0]);
  const squatter = net.createServer().listen(port, '0.0.0.0');
  await new Promise((resolve) => squatter.once('listening', resolve));
  t.teardown(() => squatter.close());
  await create.resume();
  t.is(await create.exited, 8, create.stderr());
  t.regex(create.stderr(), /address already in use|port is already allocated/);
  t.regex(create.stderr(), /hint: another program took the port after depad checked it/);
  squatter.close();
  await assertClean(t, h);
});

for (const step of ['registered', 'files', 'networks', 'volumes', 'created:web', 'start:web']) {
  test(`depad killed at step ${step} of create: the next command undoes it`, async (t) => {
    const h = await harness(t);
    const killed = await h.run(['create', '-n', h.name('killed'), '-f', clinic], { env: { DEPAD_TEST_CRASH_AT: step } });
    t.not(killed.code, 0);
    const next = await h.run(['ls']);
    t.is(next.code, 0, next.stderr);
    t.regex(next.stderr, new RegExp(`recovered: undid the interrupted create of ${h.name('killed')}`));
    await assertClean(t, h);
    await assertPortsFree(t, h);
  });
}

test('a destroy killed half way is completed by the next command', async (t) => {
  const h = await harness(t);
  const name = h.name('halfgone');
  t.is((await h.run(['create', '-n', name, '-f', hello, '--no-wait'])).code, 0);
  const killed = await h.run(['destroy', name], { env: { DEPAD_TEST_CRASH_AT: 'destroy:engine' } });
  t.not(killed.code, 0);
  const next = await h.run(['ls']);
  t.regex(next.stderr, /recovered: completed the interrupted destroy/);
  await assertClean(t, h);
});

test('a dead engine is a clear error and changes nothing', async (t) => {
  const h = await harness(t);
  const r = await h.run(['create', '-n', h.name('noengine'), '-f', hello], { env: { DOCKER_HOST: `unix://${h.dir}/no-docker.sock` } });
  t.is(r.code, 7);
  t.regex(r.stderr, /cannot reach the Docker Engine at unix:\/\/.*no-docker\.sock/);
  t.regex(r.stderr, /hint: start the engine/);
  await assertClean(t, h);
});

test('a second depad waits for the state, then names the holder', async (t) => {
  const h = await harness(t);
  const holder = await h.startPaused(['create', '-n', h.name('holder'), '-f', hello, '--no-wait'], 'files');
  const blocked = await h.run(['ls'], { env: { DEPAD_LOCK_WAIT_MS: '300' } });
  t.is(blocked.code, 9);
  t.regex(blocked.stderr, new RegExp(`in use by pid ${holder.pid} \\('depad create --name ${h.name('holder')}'`));
  await holder.resume();
  t.is(await holder.exited, 0, holder.stderr());
  t.is((await h.run(['destroy', h.name('holder')])).code, 0);
});

test('Ctrl-C during create undoes what it made', async (t) => {
  const h = await harness(t);
  const create = await h.startPaused(['create', '-n', h.name('ctrlc'), '-f', clinic], 'volumes');
  create.kill('SIGINT');
  await sleep(100);
  await create.resume();
  t.is(await create.exited, 130, create.stderr());
  t.regex(create.stderr(), /SIGINT: stopping; undoing/);
  t.regex(create.stderr(), /interrupted at step/);
  await assertClean(t, h);
});
