/**
 * The agent keeps deployments in their desired state (real engine, real agent and proxy): the
 * link to the engine cut while an instance dies (a relay socket between agent and engine), a crash
 * loop that backs off and is given up on without holding up a create beside it, and an agent
 * started where everything is exited behind its back (what a reboot without the agent leaves when
 * restart policies do not bring containers back).
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { agentSocketPath } from '../src/home.ts';
import { agentEvents, proxyGet, socketGet, until } from './helpers/agent-api.ts';
import { startAgent } from './helpers/agent-process.ts';
import { startEngineRelay } from './helpers/engine-relay.ts';
import { EXAMPLES, harness, testPorts } from './helpers/harness.ts';
import type { Harness } from './helpers/harness.ts';

/** A routed web service (depad-example/app:1 serves HTTP on 8080). */
async function webConfig(h: Harness, file = 'web.yml', extra: string[] = []): Promise<string> {
  const config = path.join(h.dir, file);
  await fs.writeFile(config, ['services:', '  web:', '    image: depad-example/app:1', '    ports: ["8080"]', '    x-depad:', '      expose: http', ...extra, ''].join('\n'));
  return config;
}

const docker = (...args: string[]) => execFileSync('docker', args, { encoding: 'utf8' }).trim();
const stateOf = (container: string) => docker('inspect', '-f', '{{.State.Status}}', container);

test('the link to the engine cut while an instance dies: engine shown down, the death found after reconnect, the instance restarted, the route serves', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  const relay = await startEngineRelay();
  t.teardown(() => relay.close());
  const agent = await startAgent(t, h, port, [], { DOCKER_HOST: relay.dockerHost });
  const socket = agentSocketPath(h.home);
  const name = h.name('cut');
  t.is((await h.run(['create', '-n', name, '-f', await webConfig(h)])).code, 0);
  const host = `web.${name}.localhost`;
  t.is(await proxyGet(agent.facts.httpPort, host), 200);
  t.is((await socketGet(socket, '/v1/engine')).body.state, 'up');

  await relay.cut();
  await until('the agent to see the engine down', async () => (await socketGet(socket, '/v1/engine')).body.state === 'down', 15_000);
  t.true((await agentEvents(socket)).some((e) => e.kind === 'engine-lost'));
  const listed = await h.json<{ name: string; status: string }[]>(['ls']);
  t.regex(listed.find((d) => d.name === name)?.status ?? '', /unknown/, 'ls through the agent says the state is unknown');
  const health = await h.run(['health']);
  t.regex(health.stdout, /engine: DOWN since/);
  const container = `depad-${name}-web-1`;
  docker('kill', container);

  await relay.restore();
  const died = await until('the death to be noticed after reconnect', async () => (await agentEvents(socket)).find((e) => e.kind === 'instance-died' && e.deployment === name), 20_000);
  t.regex(died.detail ?? '', /not watching/);
  t.true((await agentEvents(socket)).some((e) => e.kind === 'engine-back'));
  await until('the instance to run again', async () => stateOf(container) === 'running', 20_000);
  t.true((await agentEvents(socket)).some((e) => e.kind === 'instance-restarted' && e.deployment === name));
  await until('the route to serve again', async () => (await proxyGet(agent.facts.httpPort, host)) === 200, 20_000);
  t.is(docker('ps', '-a', '-q', '--filter', `label=depad.deployment=${name}`).split('\n').length, 1, 'no duplicate container');
  t.is((await h.run(['destroy', name])).code, 0);
});

test('a crash loop backs off and is given up on (restart policy no, an event, ps says so) without holding up a create beside it', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  const agent = await startAgent(t, h, port, ['--restart-limit', '3']);
  const socket = agentSocketPath(h.home);
  const crashy = h.name('crashy');
  const config = path.join(h.dir, 'crashy.yml');
  // Lives past create's settle check, then dies: a crash loop once it runs.
  await fs.writeFile(config, ['services:', '  job:', '    image: depad-example/app:1', '    command: ["sh", "-c", "sleep 1.5; exit 3"]', ''].join('\n'));
  t.is((await h.run(['create', '-n', crashy, '-f', config])).code, 0);
  const beside = h.name('beside');
  const started = Date.now();
  const created = await h.run(['create', '-n', beside, '-f', await webConfig(h)]);
  t.is(created.code, 0, created.stderr);
  t.log(`a create beside the crash loop took ${Date.now() - started} ms`);
  t.true(Date.now() - started < 30_000, 'the create was not held up');

  const gaveUp = await until('the agent to give up', async () => (await agentEvents(socket)).find((e) => e.kind === 'instance-gave-up' && e.deployment === crashy), 60_000);
  t.regex(gaveUp.detail ?? '', /died 3 times/);
  const container = `depad-${crashy}-job-1`;
  await until('the instance to stay stopped', async () => stateOf(container) === 'exited', 15_000);
  t.is(docker('inspect', '-f', '{{.HostConfig.RestartPolicy.Name}}', container), 'no');
  const ps = (await h.run(['ps', crashy])).stdout;
  t.regex(ps, /gave up/);
  const [instance] = await h.json<{ restarts: number; crashLoop?: { state: string } }[]>(['ps', crashy]);
  t.is(instance?.crashLoop?.state, 'given-up');
  t.true((instance?.restarts ?? 0) >= 2, `restarts counted (${instance?.restarts})`);
  await new Promise((resolve) => setTimeout(resolve, 3000));
  t.is(stateOf(container), 'exited', 'nothing restarts it after the give-up');

  // depad start runs it again with the plan's restart policy.
  await h.run(['start', crashy, '--no-wait']);
  t.is(docker('inspect', '-f', '{{.HostConfig.RestartPolicy.Name}}', container), 'unless-stopped');
  t.is(await proxyGet(agent.facts.httpPort, `web.${beside}.localhost`), 200);
  t.is((await h.run(['destroy', crashy])).code, 0);
  t.is((await h.run(['destroy', beside])).code, 0);
});

test('an agent started where instances were stopped behind its back starts them in dependency order and serves; a stopped deployment stays stopped', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  const clinic = h.name('clinic');
  const idle = h.name('idle');
  t.is((await h.run(['create', '-n', clinic, '-f', path.join(EXAMPLES, 'clinic', 'depad.yml')])).code, 0);
  t.is((await h.run(['create', '-n', idle, '-f', await webConfig(h)])).code, 0);
  t.is((await h.run(['stop', idle])).code, 0);
  // What a reboot leaves when nothing brings containers back: every instance exited.
  const containers = docker('ps', '-q', '--filter', `label=depad.deployment=${clinic}`).split('\n');
  docker('stop', '-t', '1', ...containers);

  const agent = await startAgent(t, h, port);
  const socket = agentSocketPath(h.home);
  await until('clinic to run again', async () => (await h.json<{ name: string; status: string }[]>(['ls'])).find((d) => d.name === clinic)?.status === 'running', 60_000);
  const restarted = (await agentEvents(socket)).filter((e) => e.kind === 'instance-restarted' && e.deployment === clinic).map((e) => e.service);
  t.deepEqual(restarted, ['db', 'web', 'worker'], 'started in dependency order (web waits for db to be healthy)');
  t.is(stateOf(`depad-${idle}-web-1`), 'exited', 'the stopped deployment stays stopped');
  t.is((await h.json<{ name: string; status: string }[]>(['ls'])).find((d) => d.name === idle)?.status, 'stopped');
  void agent;
  t.is((await h.run(['destroy', clinic])).code, 0);
  t.is((await h.run(['destroy', idle])).code, 0);
});
