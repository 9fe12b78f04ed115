/**
 * Clashes are found before anything is made (issue 12, point 5): a create, or an update, that
 * would route a hostname another deployment of the home routes fails at once (exit 5), naming the
 * other deployment and the file, line and key, with no container made and nothing waited for;
 * so does a create whose container name is taken on the engine. Real CLI, real engine; the
 * harness removes everything.
 */
import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { DeploymentView } from '../src/deploy/status.ts';
import { LABELS } from '../src/engine/types.ts';
import { engineObjects, harness, type Harness } from './helpers/harness.ts';

/** web routes `hostnames` and has a health check (first run after 4 s): a clash found late would wait for it. */
const config = (hostnames: string) =>
  [
    'services:',
    '  web:',
    '    image: depad-example/app:1',
    '    environment: { APP_NAME: pre }',
    '    ports: ["8080"]',
    '    healthcheck:',
    '      test: ["CMD", "/app/bin/probe", "http", "8080", "/cgi-bin/health"]',
    '      interval: 4s',
    '      retries: 10',
    '    x-depad:',
    '      expose: http',
    '      port: 8080',
    `      hostnames: [${hostnames}]`,
    '',
  ].join('\n');

async function write(h: Harness, file: string, text: string): Promise<string> {
  const full = path.join(h.dir, file);
  await fs.writeFile(full, text);
  return full;
}

test('a hostname another deployment routes: create and update fail at once, naming it and the line, nothing made', async (t) => {
  const h = await harness(t);
  const owner = h.name('owner');
  const routed = await write(h, 'routed.yml', config('www.other.test, myapp.test'));
  t.is((await h.run(['create', '-n', owner, '-f', routed])).code, 0);
  const before = (await engineObjects(h.engine, h.prefix)).containers;

  const second = h.name('second');
  const started = Date.now();
  const create = await h.run(['create', '-n', second, '-f', routed]);
  const took = Date.now() - started;
  t.is(create.code, 5, create.stderr);
  // At once: no start and no wait (asserted below); the bound only catches a command that hangs (a loaded machine takes seconds to start the CLI).
  t.true(took < 10_000, `it failed after ${took} ms`);
  t.regex(create.stderr, new RegExp(`routed\\.yml:13:35 services\\.web\\.x-depad\\.hostnames\\[1\\]: host myapp\\.test is already routed to deployment ${owner} \\(service web\\)`));
  t.regex(create.stderr, /nothing was made/);
  t.notRegex(create.stderr, /starting|waiting/, 'nothing was started or waited for');
  t.deepEqual((await engineObjects(h.engine, h.prefix)).containers, before, 'no container was made');
  t.false((await h.json<{ name: string }[]>(['ls'])).some((d) => d.name === second));

  // An update that adds the hostname: refused before anything is made, the revision unchanged.
  const plain = h.name('plain');
  t.is((await h.run(['create', '-n', plain, '-f', await write(h, 'plain.yml', config('plain.test'))])).code, 0);
  const made = (await engineObjects(h.engine, h.prefix)).containers;
  const upStarted = Date.now();
  const update = await h.run(['update', plain, '-f', await write(h, 'more.yml', config('plain.test, MyApp.test'))]);
  const upTook = Date.now() - upStarted;
  t.is(update.code, 5, update.stderr);
  t.true(upTook < 10_000, `it failed after ${upTook} ms`);
  t.regex(update.stderr, new RegExp(`more\\.yml:13:\\d+ services\\.web\\.x-depad\\.hostnames\\[1\\]: host myapp\\.test is already routed to deployment ${owner}`));
  t.deepEqual((await engineObjects(h.engine, h.prefix)).containers, made, 'no new instance');
  t.is((await h.json<DeploymentView>(['inspect', plain])).revision, 1);
});

test('a container name taken on the engine: the create fails before anything is made', async (t) => {
  const h = await harness(t);
  const name = h.name('taken');
  // Someone else's container with the name the create would give web (labelled so the harness removes it).
  const other = await h.engine.createContainer({
    name: `depad-${name}-web-1`,
    service: 'web',
    body: { Image: 'depad-example/app:1', Labels: { [LABELS.deployment]: `${h.prefix}-someone` }, HostConfig: { RestartPolicy: { Name: 'no' } } } as never,
    endpoints: [],
    dependsOn: {},
  });
  const r = await h.run(['create', '-n', name, '-f', await write(h, 'c.yml', config('taken.test'))]);
  t.is(r.code, 5, r.stderr);
  t.regex(r.stderr, new RegExp(`container depad-${name}-web-1 exists and does not belong to a deployment ${name} of this home`));
  t.regex(r.stderr, /nothing was made/);
  const left = await engineObjects(h.engine, h.prefix);
  t.deepEqual(left.networks, [], 'no network was made');
  t.deepEqual(left.containers, [`depad-${name}-web-1`]);
  t.truthy(await h.engine.inspectContainer(other), 'the other container is untouched');
});
