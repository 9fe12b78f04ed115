/**
 * A CLI whose agent goes away in the middle of an operation is told so (issue 11, point 8): the
 * real agent is killed (SIGKILL, at a step of a create) while the real CLI waits on its socket;
 * the CLI says what happened and what to run, exits 12, and the agent's next start undoes the
 * half-made create. Everything the test made is removed by the harness, pass or fail.
 */
import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { startAgent } from './helpers/agent-process.ts';
import { EXAMPLES, harness, testPorts } from './helpers/harness.ts';
import { LABELS } from '../src/engine/types.ts';

test('the agent killed during a create: the CLI says it went away and how to see the outcome, exit 12; the next start undoes it', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  const name = h.name('gone');
  // The agent kills itself (SIGKILL) once the create has made its networks.
  const first = await startAgent(t, h, port, [], { DEPAD_TEST_CRASH_AT: 'networks' });
  const create = await h.run(['create', '-n', name, '-f', path.join(EXAMPLES, 'clinic/depad.yml'), '--env', 'CLINIC=Gone']);
  t.is(await first.exited, null, 'the agent was killed');
  t.is(create.code, 12, create.stderr);
  t.regex(create.stderr, /the agent at .*agent\.sock went away during the operation/);
  t.regex(create.stderr, /completes or undoes an interrupted operation when it starts again/);
  t.regex(create.stderr, /depad ls or depad inspect/);
  t.notRegex(create.stderr, /unsettled top-level await/);
  t.log(create.stderr.trim().split('\n').slice(-3).join('\n'));

  // Started again, the agent undoes the half-made create: nothing of it is left.
  const second = await startAgent(t, h, port);
  const list = await h.json<{ name: string }[]>(['ls']);
  t.false(list.some((d) => d.name === name), JSON.stringify(list));
  t.deepEqual(await h.engine.listNetworks({ [LABELS.deployment]: name }), [], 'its networks were removed');
  second.child.kill('SIGTERM');
  t.is(await second.exited, 0);
});

test('the agent killed while the CLI follows logs: the CLI says so and exits 12', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  const name = h.name('logs');
  const agent = await startAgent(t, h, port);
  const created = await h.run(['create', '-n', name, '-f', path.join(EXAMPLES, 'hello/depad.yml')]);
  t.is(created.code, 0, created.stderr);
  t.teardown(async () => {
    // The harness removes the engine objects; a fresh agent would, too: none runs now.
    await h.run(['destroy', name]);
  });
  const following = h.run(['logs', name, '-f', '--tail', '1'], { timeoutMs: 60_000 });
  // The CLI reads the deployment (audited when answered), then follows: kill the agent once it follows.
  const audit = path.join(h.home, 'audit.log');
  for (let i = 0; i < 300; i++) {
    const text = await fs.readFile(audit, 'utf8').catch(() => '');
    if (text.split('\n').some((l) => l.includes('"inspect"') && l.includes(name))) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await new Promise((resolve) => setTimeout(resolve, 1000));
  agent.child.kill('SIGKILL');
  const logs = await following;
  t.is(logs.code, 12, logs.stderr);
  t.regex(logs.stderr, /went away while the logs were followed/);
  t.notRegex(logs.stderr, /unsettled top-level await/);
});

test('the agent killed during a create by a remote CLI over HTTPS: the same message and exit 12', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  const name = h.name('remote');
  const first = await startAgent(t, h, port, [], { DEPAD_TEST_CRASH_AT: 'networks' });
  const token = (await h.run(['token', 'create', '--name', 'ci', '--scope', 'admin'])).stdout.trim();
  const remote = { DEPAD_HOST: `https://127.0.0.1:${first.facts.apiPort}`, DEPAD_TOKEN: token, DEPAD_CA_FINGERPRINT: first.facts.fingerprint };
  const create = await h.run(['create', '-n', name, '-f', path.join(EXAMPLES, 'hello/depad.yml')], { env: remote });
  t.is(await first.exited, null, 'the agent was killed');
  t.is(create.code, 12, create.stderr);
  t.regex(create.stderr, /went away during the operation/);
  t.regex(create.stderr, /completes or undoes an interrupted operation when it starts again/);
  t.notRegex(create.stderr, /unsettled top-level await/);
  const second = await startAgent(t, h, port);
  t.false((await h.json<{ name: string }[]>(['ls'])).some((d) => d.name === name), 'the next start undid it');
  second.child.kill('SIGTERM');
  t.is(await second.exited, 0);
});
