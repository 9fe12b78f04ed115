/** Logs (-s, --tail, -f) and one-shot services (depends_on: service_completed_successfully). */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import type { DeploymentView } from '../src/deploy/status.ts';
import { until } from './helpers/agent-api.ts';
import { DEPAD, EXAMPLES, engineObjects, harness } from './helpers/harness.ts';

const clinic = path.join(EXAMPLES, 'clinic/depad.yml');

const withMigration = (exit: number) =>
  [
    'services:',
    '  migrate:',
    '    image: depad-example/app:1',
    `    command: ["sh", "-c", "echo applying migration 42; exit ${exit}"]`,
    '  web:',
    '    image: depad-example/app:1',
    '    ports: ["8080"]',
    '    depends_on:',
    '      migrate:',
    '        condition: service_completed_successfully',
    '',
  ].join('\n');

test('logs: per service, --tail, and -f until Ctrl-C, following a replica a scale adds', async (t) => {
  const h = await harness(t);
  const name = h.name('logs');
  t.is((await h.run(['deployment', 'create', '-n', name, '-f', clinic])).code, 0);
  await new Promise((r) => setTimeout(r, 3500)); // the worker logs every 3 s
  const tail = await h.run(['deployment', 'logs', name, '-s', 'worker', '--tail', '1']);
  t.is(tail.code, 0, tail.stderr);
  t.regex(tail.stdout, /^worker\s+\| worker: job \d+\n$/);
  const json = await h.run(['logs', name, '-s', 'worker', '--json']);
  const first = JSON.parse(json.stdout.split('\n')[0]!) as { service: string; stream: string; text: string };
  t.like(first, { service: 'worker', stream: 'stdout' });

  const follow = spawn(DEPAD, ['logs', name, '-f', '--tail', '0'], { env: { ...process.env, DEPAD_HOME: h.home } });
  let out = '';
  const seen = new Promise<void>((resolve) => follow.stdout.on('data', (d) => { out += d; if (/worker: job/.test(out)) resolve(); }));
  const exited = new Promise<number | null>((resolve) => follow.on('close', resolve));
  await seen;
  // Following does not hold the state: other commands run meanwhile.
  t.is((await h.run(['ps', name])).code, 0);
  // A replica a scale adds is followed too, from its first line.
  const scaled = await h.run(['scale', name, 'worker=2']);
  t.is(scaled.code, 0, scaled.stderr);
  await until('a line of the new replica while following', async () => /worker\[2\]\s+\| worker: job \d+\n/.test(out), 20_000).catch((error: Error) => t.fail(`${error.message}:\n${out}`));
  follow.kill('SIGINT');
  t.is(await exited, 0);
  t.regex(out, /worker\s+\| worker: job \d+/);
});

test('a one-shot service runs to completion before its dependants start', async (t) => {
  const h = await harness(t);
  const file = path.join(h.dir, 'migrate.yml');
  await fs.writeFile(file, withMigration(0));
  const name = h.name('migrate');
  const r = await h.run(['create', '-n', name, '-f', file]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /waiting for migrate to be completed[\s\S]*starting web/);
  const view = await h.json<DeploymentView>(['inspect', name]);
  t.like(view.services.find((s) => s.name === 'migrate')!.instances[0], { state: 'exited', exitCode: 0 });
  t.is(view.services.find((s) => s.name === 'web')!.instances[0]!.state, 'running');
  t.regex((await h.run(['logs', name, '-s', 'migrate'])).stdout, /migrate\s+\| applying migration 42/);
  t.is((await h.run(['destroy', name])).code, 0);
});

test('a failed one-shot service fails the create and nothing stays', async (t) => {
  const h = await harness(t);
  const file = path.join(h.dir, 'migrate.yml');
  await fs.writeFile(file, withMigration(5));
  const r = await h.run(['create', '-n', h.name('migrate'), '-f', file]);
  t.is(r.code, 10);
  t.regex(r.stderr, /service migrate did not complete successfully \(exit code 5\)[\s\S]*applying migration 42/);
  t.deepEqual(await engineObjects(h.engine, h.prefix), { containers: [], networks: [], volumes: [] });
  t.deepEqual(await h.json(['ls']), []);
});
