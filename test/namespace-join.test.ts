/**
 * `network_mode: service:<name>` against the real engine and the real proxy: the joiner runs in
 * its owner's network stack (reaching the owner's store on 127.0.0.1, serving the owner's route);
 * an update of the owner replaces both, start-first, with no failed request; an update of the
 * joiner alone replaces it stop-first with the owner's route paused; restart of the owner
 * restarts the joiner; the dry run says so; the agent restarts the joiner when the owner was
 * restarted or stopped behind its back.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import type { DeploymentView } from '../src/deploy/status.ts';
import { agentSocketPath } from '../src/home.ts';
import { agentEvents, proxyGet, until } from './helpers/agent-api.ts';
import { startAgent } from './helpers/agent-process.ts';
import { harness, testPorts, type Harness } from './helpers/harness.ts';
import { getVia, jsonVia, startLoad } from './helpers/load.ts';
import { startProxyProcess } from './helpers/proxy-process.ts';

const run = promisify(execFile);

const file = `services:
  gate:
    image: depad-example/node-app:\${GATE_VERSION:-1}
    environment:
      MODE: tcp
    x-depad:
      expose: http
      port: 8080
      health: { http: /health, status: 200 }
  web:
    image: depad-example/node-app:\${WEB_VERSION:-1}
    network_mode: service:gate
    environment:
      DB_HOST: 127.0.0.1
      DB_PORT: "5432"
`;

/** The container's HostConfig.NetworkMode, as the engine has it (`container:<owner's ID>`). */
async function networkMode(container: string): Promise<string> {
  return (await run('docker', ['inspect', '-f', '{{.HostConfig.NetworkMode}}', container])).stdout.trim();
}

/** `container:<full ID of container>`, as the engine writes a joined network mode. */
async function joined(container: string): Promise<string> {
  return `container:${(await run('docker', ['inspect', '-f', '{{.Id}}', container])).stdout.trim()}`;
}

async function containers(h: Harness, name: string): Promise<Record<string, { container: string; startedAt: string | undefined }>> {
  const view = await h.json<DeploymentView>(['inspect', name]);
  const out: Record<string, { container: string; startedAt: string | undefined }> = {};
  for (const s of view.services) {
    const current = s.instances.find((i) => i.state === 'running');
    if (current) out[s.name] = { container: current.container, startedAt: current.startedAt };
  }
  return out;
}

test('network_mode: service:gate — shared stack, owner update start-first with no failed request, joiner update stop-first, restart follows', async (t) => {
  const h = await harness(t);
  const proxy = await startProxyProcess(t, h);
  const name = h.name('netns');
  const config = path.join(h.dir, 'compose.yaml');
  await fs.writeFile(config, file);
  const host = `gate.${name}.localhost`;

  const created = await h.run(['create', '-n', name, '-f', config]);
  t.is(created.code, 0, created.stderr);
  let c = await containers(h, name);
  t.is(await networkMode(c.web!.container), await joined(c.gate!.container), 'the joiner runs in the owner container\'s network stack');
  t.is((await jsonVia(proxy.port, host)).service, 'web', "gate's route is served by web, which listens in gate's stack");
  t.is((await getVia(proxy.port, host, '/count')).status, 200, "web reaches gate's store on 127.0.0.1");

  // The dry run names the joiner as replaced with its owner.
  const dry = await h.run(['update', name, '-e', 'GATE_VERSION=2', '--dry-run']);
  t.is(dry.code, 0, dry.stderr);
  t.regex(dry.stdout, /web.*replaced with gate, whose namespaces it shares/);
  t.regex(dry.stdout, /gate: start .* beside .* with web \(started in its new namespaces right after it/);

  // The owner changes: both are replaced, start-first, under load.
  let load = startLoad({ port: proxy.port, host, keepAliveClients: 2, newConnectionClients: 2 });
  const ownerUpdate = await h.run(['update', name, '-e', 'GATE_VERSION=2']);
  let stats = await load.stop();
  t.is(ownerUpdate.code, 0, ownerUpdate.stderr);
  t.is(stats.failed, 0, `failed requests during the owner's update: ${stats.failures.join('; ')}`);
  t.true(stats.ok > 0);
  const before = c;
  c = await containers(h, name);
  t.not(c.gate!.container, before.gate!.container, 'a new gate');
  t.not(c.web!.container, before.web!.container, 'and a new web with it');
  t.is(await networkMode(c.web!.container), await joined(c.gate!.container), 'the new joiner is in the new owner\'s stack');
  t.is((await getVia(proxy.port, host, '/count')).status, 200);

  // The joiner alone changes: it is replaced stop-first, the owner's route pauses meanwhile.
  load = startLoad({ port: proxy.port, host, keepAliveClients: 2, newConnectionClients: 2 });
  const joinerUpdate = await h.run(['update', name, '-e', 'WEB_VERSION=2']);
  stats = await load.stop();
  t.is(joinerUpdate.code, 0, joinerUpdate.stderr);
  t.regex(joinerUpdate.stderr, /pausing the route of gate \(web: it shares the namespaces of gate, which stays, with its old instance\)/);
  t.is(stats.failed, 0, `failed requests during the joiner's update: ${stats.failures.join('; ')}`);
  t.true((stats.versions['2'] ?? 0) > 0, 'the new web answered');
  const afterJoiner = await containers(h, name);
  t.is(afterJoiner.gate!.container, c.gate!.container, 'gate stayed');
  t.is(await networkMode(afterJoiner.web!.container), await joined(c.gate!.container));

  // Restarting the owner restarts the joiner (its stack is the owner's).
  const restarted = await h.run(['restart', name, '-s', 'gate']);
  t.is(restarted.code, 0, restarted.stderr);
  const afterRestart = await containers(h, name);
  t.true(Date.parse(afterRestart.web!.startedAt!) >= Date.parse(afterRestart.gate!.startedAt!), 'web started after gate');
  t.is((await getVia(proxy.port, host, '/count')).status, 200, 'and reaches its store again');
});

test('the agent restarts a joiner whose owner was restarted behind its back, and its route answers again', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  const agent = await startAgent(t, h, port);
  const name = h.name('netns-agent');
  const config = path.join(h.dir, 'compose.yaml');
  await fs.writeFile(config, file);
  const created = await h.run(['create', '-n', name, '-f', config]);
  t.is(created.code, 0, created.stderr);
  const host = `gate.${name}.localhost`;
  t.is(await proxyGet(agent.facts.httpPort, host, '/count'), 200);
  const before = await containers(h, name);

  await run('docker', ['restart', '-t', '1', before.gate!.container]); // behind depad's back: web is left in namespaces that are gone
  let seen = '';
  await until('the agent to restart web', async () => {
    const now = await containers(h, name);
    seen = `gate started ${now.gate?.startedAt}, web started ${now.web?.startedAt}`;
    return now.web !== undefined && now.gate !== undefined && Date.parse(now.web.startedAt!) > Date.parse(now.gate.startedAt!);
  }, 30_000).catch(async (error: Error) => {
    // What the agent saw and did, to tell a missed event from a slow restart.
    const events = await agentEvents(agentSocketPath(h.home)).catch(() => []);
    throw new Error(`${error.message}; ${seen}; the agent's events: ${JSON.stringify(events.slice(-12))}`);
  });
  await until('the route to answer again', async () => (await proxyGet(agent.facts.httpPort, host, '/count').catch(() => 0)) === 200, 20_000);
  const events = await agentEvents(agentSocketPath(h.home));
  // Either reason: the agent saw gate started again, or met the docker restart halfway (gate stopped) and started both.
  t.true(events.some((e) => e.kind === 'instance-restarted' && e.service === 'web' && /(started after it|is started again), and it shares/.test(e.detail ?? '')), `the restart is reported with its reason: ${JSON.stringify(events.slice(-8))}`);
  t.false(events.some((e) => e.kind === 'instance-died' && e.service === 'web'), 'the agent\'s own stop is not a death');
  t.is(await networkMode(before.web!.container), await joined(before.gate!.container), 'the same containers, rejoined');

  // The owner stopped behind depad's back: the agent starts it again, and the joiner after it in the
  // same pass (web answers gate's health check: waiting for gate's health first would never end).
  await run('docker', ['stop', '-t', '1', before.gate!.container]);
  await until('the route to answer after the owner was stopped', async () => (await proxyGet(agent.facts.httpPort, host, '/count').catch(() => 0)) === 200, 30_000).catch(async (error: Error) => {
    throw new Error(`${error.message}; the agent's events: ${JSON.stringify((await agentEvents(agentSocketPath(h.home)).catch(() => [])).slice(-8))}`);
  });
  const later = await agentEvents(agentSocketPath(h.home));
  t.true(later.some((e) => e.kind === 'instance-restarted' && e.service === 'web' && /is started again, and it shares/.test(e.detail ?? '')), 'the joiner restarted with its owner');
});
