/**
 * The agent's periodic health checks against the real engine: an HTTP probe with restart on, a
 * command probe without, and a container's own health check (followed through engine events)
 * with restart on. A service made to fail is reported unhealthy within interval × retries
 * (plus one interval of phase), as an event too; with restart on it is restarted (the container's
 * start time moves) and reported healthy once it passes again; without, it is left alone. The
 * agent and the deployment are removed in t.teardown.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { agentSocketPath } from '../src/home.ts';
import { startAgent } from './helpers/agent-process.ts';
import { harness, testPorts } from './helpers/harness.ts';
import type { Harness } from './helpers/harness.ts';

interface Health { service: string; instance: string; probe: string; status: string; since: string; failures: number; restarts: number; checks: { ok: boolean; output: string }[] }

async function health(h: Harness, name: string): Promise<Health[]> {
  const result = await h.run(['health', name, '--json']);
  if (result.code !== 0) throw new Error(result.stderr);
  return JSON.parse(result.stdout) as Health[];
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function events(socketPath: string): Promise<{ kind: string; service?: string; detail?: string }[]> {
  return new Promise((resolve, reject) => {
    http
      .get({ socketPath, path: '/v1/events', agent: false }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve(JSON.parse(text)));
      })
      .on('error', reject);
  });
}

const startedAt = (container: string) => execFileSync('docker', ['inspect', '--format', '{{.State.StartedAt}}', container], { encoding: 'utf8' }).trim();

test('agent health checks: unhealthy reported within interval × retries; restart on restarts, off leaves it; healthy again', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  const name = h.name('hc');
  const config = path.join(h.dir, 'health.yml');
  await fs.writeFile(
    config,
    [
      'services:',
      '  web:',
      '    image: depad-example/app:1',
      '    ports: ["8080"]',
      '    x-depad:',
      '      expose: http',
      '      health: { http: /cgi-bin/health, interval: 1s, timeout: 1s, retries: 2, restart: true }',
      '  side:',
      '    image: depad-example/app:1',
      '    x-depad:',
      '      health: { command: [sh, -c, "test ! -f /tmp/bad"], interval: 1s, timeout: 2s, retries: 2 }',
      '  own:',
      '    image: depad-example/app:1',
      '    healthcheck: { test: [CMD-SHELL, "test ! -f /tmp/bad"], interval: 1s, timeout: 2s, retries: 1 }',
      '    x-depad: { health: { restart: true } }',
      '',
    ].join('\n'),
  );
  const agent = await startAgent(t, h, port);
  t.teardown(async () => void (await h.run(['destroy', name])));
  const created = await h.run(['create', '-n', name, '-f', config, '--class', name]);
  t.is(created.code, 0, created.stderr);
  const web = `depad-${name}-web-1`;
  const side = `depad-${name}-side-1`;

  const first = await until('both healthy', async () => {
    const list = await health(h, name);
    return list.length === 3 && list.every((i) => i.status === 'healthy') ? list : undefined;
  });
  t.deepEqual(first.map((i) => [i.service, i.probe]).sort(), [['own', 'container'], ['side', 'command'], ['web', 'http']]);

  // The container's own check, followed through engine events; restart on.
  const own = `depad-${name}-own-1`;
  const ownStarted = startedAt(own);
  execFileSync('docker', ['exec', own, 'touch', '/tmp/bad']);
  await until('own restarted', async () => (startedAt(own) !== ownStarted ? true : undefined));
  const ownHealth = (await health(h, name)).find((i) => i.service === 'own');
  t.is(ownHealth?.probe, 'container');
  t.true((ownHealth?.restarts ?? 0) >= 1, JSON.stringify(ownHealth));

  // Command probe, restart off.
  execFileSync('docker', ['exec', side, 'touch', '/tmp/bad']);
  const broke = Date.now();
  const sick = await until('side unhealthy', async () => (await health(h, name)).find((i) => i.service === 'side' && i.status === 'unhealthy'));
  // Measured when the agent saw it (`since`), not when this test's polling through the CLI did.
  const sideDelay = Date.parse(sick.since) - broke;
  t.log(`command probe: unhealthy after ${sideDelay} ms (interval 1 s × retries 2)`);
  t.true(sideDelay <= 3000 + 1500, `reported within interval × (retries + 1) plus slack: ${sideDelay} ms`);
  t.regex(sick.checks.at(-1)?.output ?? '', /exited 1/);
  const sideStarted = startedAt(side);

  // HTTP probe, restart on.
  const webStarted = startedAt(web);
  execFileSync('docker', ['exec', web, 'mv', '/app/www/cgi-bin/health', '/app/www/cgi-bin/health.off']);
  const webBroke = Date.now();
  const webSick = await until('web unhealthy', async () => (await health(h, name)).find((i) => i.service === 'web' && i.status !== 'healthy'));
  const webDelay = Date.parse(webSick.since) - webBroke;
  t.log(`http probe: unhealthy after ${webDelay} ms`);
  t.true(webDelay <= 4500, `${webDelay} ms`);
  await until('web restarted', async () => (startedAt(web) !== webStarted ? true : undefined));
  const restarted = await until('restart counted', async () => (await health(h, name)).find((i) => i.service === 'web' && i.restarts >= 1));
  t.true(restarted.restarts >= 1);
  // The restart does not bring the file back: fix it, and it turns healthy.
  // The monitor may be restarting it again (its backoff ran out on a loaded machine): wait until it runs.
  await until('web running to be fixed', async () => {
    try {
      execFileSync('docker', ['exec', web, 'mv', '/app/www/cgi-bin/health.off', '/app/www/cgi-bin/health'], { stdio: 'ignore' });
      return true;
    } catch {
      return undefined;
    }
  });
  await until('web healthy again', async () => (await health(h, name)).find((i) => i.service === 'web' && i.status === 'healthy'));
  t.is(startedAt(side), sideStarted, 'restart off: the unhealthy side was left alone');
  t.is((await health(h, name)).find((i) => i.service === 'side')?.status, 'unhealthy');
  // Started again by hand: its health is checked from the start (starting, a new since), then healthy.
  const healthySince = (await health(h, name)).find((i) => i.service === 'web')!.since;
  t.is((await h.run(['restart', name, '-s', 'web'])).code, 0);
  const again = await until('web checked again since its restart', async () => (await health(h, name)).find((i) => i.service === 'web' && i.since > healthySince && i.status === 'healthy'));
  t.true(again.since > healthySince, `${again.since} after ${healthySince}`);

  const kinds = (await events(agentSocketPath(h.home))).filter((e) => e.service !== undefined).map((e) => `${e.service}:${e.kind}`);
  for (const kind of ['side:instance-unhealthy', 'web:instance-unhealthy', 'web:instance-restarted', 'web:instance-healthy', 'own:instance-unhealthy', 'own:instance-restarted']) t.true(kinds.includes(kind), `${kind} in ${kinds.join(' ')}`);

  // The newer verbs through the agent's socket: bulk dry run, stats, workflow ls.
  const dry = await h.run(['update', '-l', `class=${name}`, '-s', 'side', '--image', 'depad-example/app:2', '--dry-run', '--json']);
  t.is(dry.code, 0, dry.stderr);
  t.deepEqual((JSON.parse(dry.stdout) as { items: { deployment: string; result: string }[] }).items.map((i) => [i.deployment, i.result]), [[name, 'would update']]);
  // stats samples running instances: own may be between two of the monitor's restarts, so ask until it runs.
  const sampled = await until('stats of all three services', async () => {
    const stats = await h.run(['stats', '-l', `class=${name}`, '--json']);
    t.is(stats.code, 0, stats.stderr);
    const services = (JSON.parse(stats.stdout) as { service: string }[]).map((u) => u.service).sort();
    return services.length === 3 ? services : undefined;
  });
  t.deepEqual(sampled, ['own', 'side', 'web']);
  const workflows = await h.run(['workflow', 'ls', name, '--json']);
  t.is(workflows.code, 0, workflows.stderr);
  t.deepEqual(JSON.parse(workflows.stdout), []);
  agent.child.kill('SIGTERM');
  t.is(await agent.exited, 0);
});
