/**
 * `depad events` through the real CLI and a real agent: one line per event (time, deployment,
 * kind, detail), `--json`, `--since`; `-f` prints the past events and then each new one as it
 * happens (an instance killed behind depad's back), over the socket and over pinned HTTPS with a
 * deploy token, and goes on across `depad agent restart`; a token sees only the events of the
 * deployments it selects; unauthenticated, the follow stream answers 401 like every endpoint.
 * Followers and the agent are killed in teardown; the harness removes the deployment.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import type { AgentEvent } from '../src/agent/reconciler.ts';
import { until } from './helpers/agent-api.ts';
import { startAgent } from './helpers/agent-process.ts';
import { DEPAD, EXAMPLES, alive, harness, testPorts, type Harness } from './helpers/harness.ts';

/** `depad events -f …` in the background: what it printed so far. */
function follower(t: ExecutionContext, h: Harness, args: string[], env: Record<string, string> = {}): () => string {
  const child = spawn(DEPAD, ['--home', h.home, 'events', '-f', ...args], { env: { ...process.env, DEPAD_HOME: h.home, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => void (child.exitCode === null && child.kill('SIGKILL')));
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return () => out;
}

/** Lines of `text` that mention `kind`. */
function count(text: string, kind: string): number {
  return text.split('\n').filter((l) => l.includes(kind)).length;
}

test('depad events: lines, --json, --since; -f follows new events over the socket and HTTPS, within the token scope, across an agent restart', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  const name = h.name('ev');
  const ci = (await h.run(['token', 'create', '--name', 'ci', '--scope', 'deploy', '-d', name])).stdout.trim();
  const stranger = (await h.run(['token', 'create', '--name', 'other', '--scope', 'deploy', '-d', h.name('other')])).stdout.trim();
  const agent = await startAgent(t, h, port);
  const remote = (token: string) => ['--host', `https://127.0.0.1:${agent.facts.apiPort}`, '--ca-fingerprint', agent.facts.fingerprint, '--token', token];
  t.is((await h.run(['create', '-n', name, '-f', path.join(EXAMPLES, 'hello/depad.yml')])).code, 0);
  const container = `depad-${name}-web-1`;
  const kill = () => execFileSync('docker', ['kill', container], { stdio: 'ignore' });
  const restarts = async (n: number) => until(`restart ${n} of web`, async () => (await h.json<AgentEvent[]>(['events'])).filter((e) => e.kind === 'instance-restarted').length >= n || undefined, 60_000);
  kill();
  await restarts(1);

  // One line per event: time, deployment, kind, detail.
  const listed = await h.run(['events']);
  t.is(listed.code, 0, listed.stderr);
  t.regex(listed.stdout, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d {2}- +routes-restored +0 deployment\(s\)$/m);
  t.regex(listed.stdout, new RegExp(`^\\S+ \\S+  ${name} +instance-died +web ${container}: exit 137$`, 'm'));
  t.regex(listed.stdout, new RegExp(`^\\S+ \\S+  ${name} +instance-restarted +web ${container}: `, 'm'));
  const all = await h.json<AgentEvent[]>(['events']);
  t.true(all.some((e) => e.kind === 'instance-died' && e.deployment === name && e.exitCode === 137));
  const died = all.find((e) => e.kind === 'instance-died') as AgentEvent;
  t.true((await h.json<AgentEvent[]>(['events', '--since', died.time])).every((e) => e.time >= died.time && e.kind !== 'routes-restored'), '--since a time');
  t.true((await h.json<AgentEvent[]>(['events', '--since', '10m'])).length >= all.length, '--since a duration ago: all of them');
  t.deepEqual(await h.json<AgentEvent[]>(['events', '--since', new Date(Date.now() + 60_000).toISOString()]), [], 'none from the future');
  t.is((await h.run(['events', '--since', 'yesterday'])).code, 2, 'a --since that is neither');

  // Scopes: a deploy token sees its deployment's events, not the agent's own nor others'.
  const seen = JSON.parse((await h.run([...remote(ci), '--json', 'events'])).stdout) as AgentEvent[];
  t.true(seen.length > 0 && seen.every((e) => e.deployment === name));
  t.deepEqual(JSON.parse((await h.run([...remote(stranger), '--json', 'events'])).stdout), []);

  // Followers: the past events first, then the new ones.
  const local = follower(t, h, []);
  const far = follower(t, h, ['--json', ...remote(ci)]);
  await until('the followers print the past', async () => (count(local(), 'instance-died') === 1 && count(far(), 'instance-died') === 1) || undefined);
  kill();
  await until('the followers print the new death', async () => (count(local(), 'instance-died') === 2 && count(far(), 'instance-died') === 2) || undefined, 30_000);
  for (const line of far().trim().split('\n')) t.is((JSON.parse(line) as AgentEvent).deployment, name, 'JSON lines, within the scope');
  await restarts(2);

  // Across a restart of the agent: the follower reconnects, and prints nothing twice.
  const restarted = await h.run(['agent', 'restart', '--json']);
  t.is(restarted.code, 0, restarted.stderr);
  const newPid = (JSON.parse(restarted.stdout) as { newPid: number }).newPid;
  t.teardown(() => void (alive(newPid) && process.kill(newPid, 'SIGKILL')));
  await until('the new agent watches the engine', async () => (await h.json<AgentEvent[]>(['events'])).some((e) => e.kind === 'routes-restored') || undefined);
  kill();
  await until('the follower prints a death the new agent saw', async () => count(local(), 'instance-died') === 3 || undefined, 30_000);
  t.is(count(local(), 'instance-died'), 3, local());
  t.is(count(local(), 'routes-restored'), 2, 'each agent restored routes once');
});

test('GET /v1/events?follow=true: 401 without a token, like every endpoint', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  const agent = await startAgent(t, h, port);
  const ca = await fs.readFile(path.join(h.home, 'certs/agent/ca.crt'), 'utf8');
  const status = await new Promise<number>((resolve, reject) => {
    https
      .get({ host: '127.0.0.1', port: agent.facts.apiPort, path: '/v1/events?follow=true', servername: 'localhost', ca, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on('error', reject);
  });
  t.is(status, 401);
});
