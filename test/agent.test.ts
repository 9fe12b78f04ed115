/**
 * `depad agent` as a real process on a test home: it prints its CA fingerprint, serves the API
 * over HTTPS (the client pins that fingerprint) and over its unix socket, the CLI refuses at once
 * while it owns the state, SIGTERM stops it cleanly, and after SIGKILL it starts again with the
 * same CA and nothing lost. Processes are killed and the deployment removed in t.teardown.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { fetchPinnedCa } from '../certs/pin.ts';
import { agentSocketPath } from '../src/home.ts';
import { startAgent } from './helpers/agent-process.ts';
import { EXAMPLES, harness, testPorts } from './helpers/harness.ts';

function httpsGet(port: number, ca: string, pathname: string, token: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    https
      .get({ host: '127.0.0.1', port, path: pathname, servername: 'localhost', ca, headers: { authorization: `Bearer ${token}` }, agent: false }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      })
      .on('error', reject);
  });
}

function socketGet(socketPath: string, pathname: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    http
      .get({ socketPath, path: pathname, agent: false }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      })
      .on('error', reject);
  });
}

test('depad agent: pinned HTTPS API, local socket, the CLI through it, graceful stop, restart after SIGKILL', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  const name = h.name('ag');
  t.is((await h.run(['create', '-n', name, '-f', path.join(EXAMPLES, 'hello', 'depad.yml')])).code, 0);
  const token = (await h.run(['token', 'create', '--name', 'ci', '--scope', 'deploy', '-d', name])).stdout.trim();

  const first = await startAgent(t, h, port);
  t.true(first.facts.newCa);
  const ca = await fetchPinnedCa('127.0.0.1', first.facts.apiPort, first.facts.fingerprint, { servername: 'localhost' });
  const listed = await httpsGet(first.facts.apiPort, ca, '/v1/deployments', token);
  t.is(listed.status, 200);
  t.deepEqual(listed.body.map((d: { name: string }) => d.name), [name]);
  const local = await socketGet(agentSocketPath(h.home), `/v1/deployments/${name}`);
  t.is(local.status, 200, 'the unix socket acts as the local administrator');
  t.is(local.body.status, 'running');

  const started = Date.now();
  const viaAgent = await h.run(['ls', '--json']);
  t.is(viaAgent.code, 0, viaAgent.stderr);
  t.deepEqual((JSON.parse(viaAgent.stdout) as { name: string }[]).map((d) => d.name), [name]);
  // Waiting for the lock would take DEPAD_LOCK_WAIT_MS (10 s) and then fail; under a loaded suite one CLI run can take several seconds.
  t.true(Date.now() - started < 9000, `the CLI goes through the agent: no wait for the lock it holds (${Date.now() - started} ms)`);

  first.child.kill('SIGTERM');
  t.is(await first.exited, 0);
  const after = await h.run(['ls', '--json']);
  t.is(after.code, 0, after.stderr);

  const second = await startAgent(t, h, port);
  t.false(second.facts.newCa);
  t.is(second.facts.fingerprint, first.facts.fingerprint, 'the same CA: clients keep their pin');
  second.child.kill('SIGKILL');
  await second.exited;
  const third = await startAgent(t, h, port);
  t.is((await httpsGet(third.facts.apiPort, ca, `/v1/deployments/${name}`, token)).body.status, 'running', 'nothing lost after SIGKILL');
  third.child.kill('SIGTERM');
  t.is(await third.exited, 0);
  t.is((await h.run(['destroy', name])).code, 0);
});

test('with an agent running, the CLI goes through it: same output and exit codes, progress on stderr', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  const name = h.name('via');
  t.is((await h.run(['create', '-n', name, '-f', path.join(EXAMPLES, 'hello', 'depad.yml')])).code, 0);
  t.is((await h.run(['token', 'create', '--name', 'ci', '--scope', 'admin'])).code, 0);
  const local = {
    inspect: await h.json<Record<string, unknown>>(['inspect', name]),
    ps: (await h.run(['ps', name])).stdout,
    tokens: (await h.run(['token', 'ls'])).stdout,
    logs: (await h.run(['logs', name, '--tail', '3'])).stdout,
  };

  const agent = await startAgent(t, h, port);
  t.deepEqual(await h.json<Record<string, unknown>>(['inspect', name]), local.inspect);
  t.is((await h.run(['ps', name])).stdout, local.ps);
  t.is((await h.run(['token', 'ls'])).stdout, local.tokens);
  t.deepEqual((await h.json<{ name: string }[]>(['ls'])).map((d) => d.name), [name]);

  const agentLogs = await h.run(['logs', name, '--tail', '3']);
  t.is(agentLogs.code, 0, agentLogs.stderr);
  t.is(agentLogs.stdout.split('\n').filter(Boolean).length, local.logs.split('\n').filter(Boolean).length);
  for (const line of agentLogs.stdout.split('\n').filter(Boolean)) t.regex(line, /^web {6}\| /, 'prefixed by service, padded as locally');
  const stopped = await h.run(['stop', name]);
  t.is(stopped.code, 0, stopped.stderr);
  t.regex(stopped.stderr, /^\s+\d+\.\ds {2}\S/m, 'progress lines, as locally');
  t.regex(stopped.stdout, /stopped/);
  const started = await h.run(['start', name]);
  t.is(started.code, 0, started.stderr);
  t.regex(started.stdout, /running/);
  const missing = await h.run(['stop', `${h.prefix}nothing`]);
  t.is(missing.code, 4, 'the agent’s error keeps its exit code');

  // create, update, diff, history, rollback through the agent.
  const other = h.name('other');
  const made = await h.run(['create', '-n', other, '-f', path.join(EXAMPLES, 'hello', 'depad.yml'), '-e', 'APP_VERSION=1']);
  t.is(made.code, 0, made.stderr);
  t.regex(made.stdout, /running/);
  t.regex(made.stderr, /^\s+\d+\.\ds {2}\S/m, 'create progress streamed');
  const diff = await h.run(['diff', other, '-s', 'web', '--image', 'depad-example/app:2']);
  t.is(diff.code, 0, diff.stderr);
  t.regex(diff.stdout, /~ web: new instance/);
  const updated = await h.run(['update', other, '-s', 'web', '--image', 'depad-example/app:2']);
  t.is(updated.code, 0, updated.stderr);
  t.regex(updated.stdout, /changes against revision 1/);
  const same = await h.run(['update', other, '-f', path.join(EXAMPLES, 'hello', 'depad.yml'), '-e', 'APP_VERSION=2']);
  t.is(same.code, 0, same.stderr);
  t.regex(same.stdout, /no changes/);
  const rolled = await h.run(['rollback', other]);
  t.is(rolled.code, 0, rolled.stderr);
  const history = await h.json<{ number: number; current: boolean; source: string }[]>(['history', other]);
  t.deepEqual(history.map((r) => [r.number, r.source, r.current]), [[1, 'create', false], [2, 'update', false], [3, 'rollback', true]]);
  const badConfig = await h.run(['update', other, '-f', path.join(h.dir, 'missing.yml')]);
  t.is(badConfig.code, 3, 'config errors read the same through the agent');
  t.is((await h.run(['destroy', other])).code, 0);

  const destroyed = await h.run(['destroy', name]);
  t.is(destroyed.code, 0, destroyed.stderr);
  t.regex(destroyed.stdout, new RegExp(`destroyed ${name}`));
  t.deepEqual(await h.json<unknown[]>(['ls']), []);
  agent.child.kill('SIGTERM');
  t.is(await agent.exited, 0);
});

test('agent reconciler: routes restored at start; an instance killed behind its back is reported, and its restart too', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  const name = h.name('rec');
  t.is((await h.run(['create', '-n', name, '-f', path.join(EXAMPLES, 'hello', 'depad.yml')])).code, 0);
  const agent = await startAgent(t, h, port);
  const socket = agentSocketPath(h.home);
  type Ev = { kind: string; deployment?: string; service?: string; exitCode?: number };
  const events = async () => (await socketGet(socket, '/v1/events')).body as Ev[];
  t.true((await events()).some((e) => e.kind === 'routes-restored'));

  const container = `depad-${name}-web-1`;
  execFileSync('docker', ['kill', container], { stdio: 'ignore' });
  const died = await waitFor(async () => (await events()).find((e) => e.kind === 'instance-died' && e.deployment === name));
  t.is(died.service, 'web');
  t.is(died.exitCode, 137);
  execFileSync('docker', ['start', container], { stdio: 'ignore' });
  await waitFor(async () => (await events()).find((e) => e.kind === 'instance-started' && e.deployment === name));
  t.false((await events()).some((e) => e.kind === 'instance-died' && e.deployment !== name), 'nothing else reported');

  // A stop through the agent is not a death.
  t.is((await h.run(['stop', name])).code, 0);
  t.is((await events()).filter((e) => e.kind === 'instance-died').length, 1);
  t.is((await h.run(['destroy', name])).code, 0);
  agent.child.kill('SIGTERM');
  t.is(await agent.exited, 0);
});

async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out waiting for an agent event');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test('depad agent --daemon returns once the agent listens; SIGTERM to its pid file stops it', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  const started = await h.run(['agent', '--daemon', '--api-port', String(port()), '--api-host', '127.0.0.1', '--http-port', String(port()), '--http-host', '127.0.0.1', '--tcp-host', '127.0.0.1']);
  t.is(started.code, 0, started.stderr);
  t.regex(started.stdout, /running in the background, pid (\d+)/);
  const pid = Number(await fs.readFile(path.join(h.home, 'agent.pid'), 'utf8'));
  t.teardown(() => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  });
  t.is(Number(/pid (\d+)/.exec(started.stdout)?.[1]), pid);
  t.is((await socketGet(agentSocketPath(h.home), '/v1/deployments')).status, 200);
  t.is(((await fs.stat(path.join(h.home, 'agent.log'))).mode & 0o777), 0o600);
  process.kill(pid, 'SIGTERM');
  await waitFor(async () => {
    try {
      process.kill(pid, 0);
      return undefined;
    } catch {
      return true;
    }
  });
  t.regex(await fs.readFile(path.join(h.home, 'agent.log'), 'utf8'), /depad agent: stopped/);
  await t.throwsAsync(fs.access(path.join(h.home, 'agent.pid')), undefined, 'pid file removed');
});
