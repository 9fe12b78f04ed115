/**
 * An engine restart, on a lab host of the test's own (test/helpers/lab-engine.ts; the machine's
 * engine is never stopped): with the agent running, under load, deployments serve again within a
 * bound, a stopped one stays stopped, nothing is duplicated; and a reboot without the agent (the
 * engine restarted while no agent runs) brings default services back by their restart policy,
 * then the agent started afterwards restores the rest.
 */
import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { agentSocketPath } from '../src/home.ts';
import { agentEvents, proxyGetAt, until } from './helpers/agent-api.ts';
import { harness } from './helpers/harness.ts';
import type { Harness } from './helpers/harness.ts';
import { labEngine } from './helpers/lab-engine-ava.ts';
import type { LabEngine } from './helpers/lab-engine.ts';
import { labRun, startLabAgent } from './helpers/lab-agent.ts';

const APP = 'depad-example/app:1';
/** How long after the engine answers again every route must serve (the README states it). */
const BACK_WITHIN_MS = 15_000;

async function config(h: Harness, file: string, extra: string[] = []): Promise<string> {
  const p = path.join(h.dir, file);
  await fs.writeFile(p, ['services:', '  web:', `    image: ${APP}`, '    ports: ["8080"]', ...extra, '    x-depad:', '      expose: http', '      health: { http: /cgi-bin/health, status: 200 }', ''].join('\n'));
  return p;
}

async function containersOf(lab: LabEngine, name: string): Promise<string[]> {
  const out = await lab.docker(['ps', '-a', '--filter', `label=depad.deployment=${name}`, '--format', '{{.Names}} {{.State}}']);
  return out === '' ? [] : out.split('\n').sort();
}

test('the engine restarted under load with the agent running: every route serves again within the bound, a stopped deployment stays stopped, nothing duplicated', async (t) => {
  const h = await harness(t);
  const lab = await labEngine(t, { images: [APP] });
  const agent = await startLabAgent(t, lab, h);
  const socket = agentSocketPath(h.home);
  const names = [h.name('a'), h.name('b'), h.name('c')];
  const file = await config(h, 'web.yml');
  for (const name of names) t.is((await labRun(lab, h, ['create', '-n', name, '-f', file])).code, 0);
  const stopped = h.name('off');
  t.is((await labRun(lab, h, ['create', '-n', stopped, '-f', file])).code, 0);
  t.is((await labRun(lab, h, ['stop', stopped])).code, 0);
  const get = (name: string) => proxyGetAt(lab.address, 80, `web.${name}.localhost`, '/cgi-bin/health', 2000);
  for (const name of names) t.is(await get(name), 200);

  // Load: each route asked in a loop; what it answers is counted.
  let loading = true;
  const statuses = new Map<number, number>();
  const loops = names.map(async (name) => {
    while (loading) {
      const status = await get(name);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
  });
  await new Promise((resolve) => setTimeout(resolve, 500));
  await lab.restart();
  const back = Date.now();
  await until('every route to serve again', async () => (await Promise.all(names.map(get))).every((s) => s === 200), BACK_WITHIN_MS);
  const tookMs = Date.now() - back;
  loading = false;
  await Promise.all(loops);
  t.log(`every route served again ${tookMs} ms after the engine answered; answers during the test: ${JSON.stringify(Object.fromEntries(statuses))}`);
  t.true((statuses.get(200) ?? 0) > 0);

  const events = await agentEvents(socket);
  t.true(events.some((e) => e.kind === 'engine-lost'), 'the agent said it lost the engine');
  t.true(events.some((e) => e.kind === 'engine-back'));
  for (const name of names) t.deepEqual(await containersOf(lab, name), [`depad-${name}-web-1 running`], `${name}: one container, running`);
  t.deepEqual(await containersOf(lab, stopped), [`depad-${stopped}-web-1 exited`], 'the stopped deployment stays stopped');
  const listed = JSON.parse((await labRun(lab, h, ['ls', '--json'])).stdout) as { name: string; status: string }[];
  t.deepEqual(listed.map((d) => [d.name, d.status]).sort(), [...names.map((n) => [n, 'running']), [stopped, 'stopped']].sort());
  t.is(await agent.stop(), 0, agent.output());
});

test('a reboot without the agent: default services come back by their restart policy; the agent started afterwards restores one whose file says restart: "no"', async (t) => {
  const h = await harness(t);
  const lab = await labEngine(t, { images: [APP] });
  const byPolicy = h.name('dflt');
  const manual = h.name('manual');
  t.is((await labRun(lab, h, ['create', '-n', byPolicy, '-f', await config(h, 'default.yml')])).code, 0);
  t.is((await labRun(lab, h, ['create', '-n', manual, '-f', await config(h, 'no.yml', ['    restart: "no"'])])).code, 0);
  await lab.restart();
  await until('the default service to be back', async () => (await containersOf(lab, byPolicy)).join() === `depad-${byPolicy}-web-1 running`, 20_000);
  t.deepEqual(await containersOf(lab, manual), [`depad-${manual}-web-1 exited`], 'restart: "no" stays down without the agent');

  const agent = await startLabAgent(t, lab, h);
  await until('the agent to restore it', async () => (await containersOf(lab, manual)).join() === `depad-${manual}-web-1 running`, 30_000);
  await until('its route to serve', async () => (await proxyGetAt(lab.address, 80, `web.${manual}.localhost`, '/cgi-bin/health', 2000)) === 200, 20_000);
  t.is(await proxyGetAt(lab.address, 80, `web.${byPolicy}.localhost`, '/cgi-bin/health', 2000), 200);
  t.true((await agentEvents(agentSocketPath(h.home))).some((e) => e.kind === 'instance-restarted' && e.deployment === manual));
  t.is(await agent.stop(), 0, agent.output());
});
