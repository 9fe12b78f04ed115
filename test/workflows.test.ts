/**
 * Workflows against the real engine: an after-create `run` step on the host (in the deployment's
 * root), a migration-like before-update `exec` step in a one-off container of the new revision's
 * image and environment whose failure aborts the update with the old revision still serving, the
 * same update succeeding once the migration passes (the run kept with the revision, its log on
 * disk), and a workflow run by hand. Remote configs may not carry host steps. The harness removes
 * everything afterwards.
 */
import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseRemoteConfig } from '../src/deploy/update.ts';
import { isDepadError } from '../src/errors.ts';
import { EXAMPLES, ROOT, harness, httpGet } from './helpers/harness.ts';

const CONFIG = [
  'services:',
  '  web:',
  '    image: depad-example/app:${APP_VERSION:-1}',
  '    environment: { APP_NAME: wf, MIGRATION: "${MIGRATION:-ok}" }',
  '    ports: ["8080"]',
  'x-depad:',
  '  workflows:',
  '    migrate:',
  '      hooks: [before-update]',
  '      timeout: 30s',
  '      steps:',
  '        - exec: [sh, -c, "echo migrating to version $$(cat /app/VERSION); test \\"$$MIGRATION\\" != fail"]',
  '          service: web',
  '    guard:',
  '      hooks: [before-destroy]',
  '      steps:',
  '        - run: test ! -f keep',
  '    seed:',
  '      hooks: [after-create]',
  '      steps:',
  '        - run: echo seeded > seeded.txt && echo "seeded $$DEPAD_DEPLOYMENT"',
  '',
].join('\n');

test('remote configs may not carry run: steps (they would run on the agent\'s host)', (t) => {
  const error = t.throws(() => parseRemoteConfig({ text: CONFIG, name: 'depad.yml' }, {}));
  t.true(isDepadError(error, 'DEPAD_CONFIG_INVALID'));
  t.regex(error?.message ?? '', /workflow guard, seed has run: steps/);
  t.notThrows(() => parseRemoteConfig({ text: CONFIG.replace(/    guard:[\s\S]*$/, ''), name: 'depad.yml' }, {}));
});

test('workflows: after-create on the host, a failing before-update migration aborts the update, by hand', async (t) => {
  const h = await harness(t);
  const name = h.name('wf');
  const config = path.join(h.dir, 'wf.yml');
  await fs.writeFile(config, CONFIG);
  const created = await h.run(['create', '-n', name, '-f', config]);
  t.is(created.code, 0, created.stderr);
  t.regex(created.stderr, /seed: +seeded/);
  const inspect = async () => JSON.parse((await h.run(['inspect', name, '--json'])).stdout) as { rootDir: string; revision: number; services: { instances: { ports: { host: number; target: number }[] }[] }[] };
  const first = await inspect();
  t.is((await fs.readFile(path.join(first.rootDir, 'seeded.txt'), 'utf8')).trim(), 'seeded', 'the run step ran in the root directory');

  const failed = await h.run(['update', name, '-f', config, '-e', 'APP_VERSION=2', '-e', 'MIGRATION=fail']);
  t.is(failed.code, 10, failed.stderr);
  t.regex(failed.stderr, /migrate: +migrating to version 2/, 'the step ran with the new image');
  t.regex(failed.stderr, /workflow migrate failed at step 1 exec in web/);
  const after = await inspect();
  t.is(after.revision, 1, 'the update was aborted');
  const port = after.services[0]?.instances[0]?.ports.find((p) => p.target === 8080)?.host as number;
  t.regex((await httpGet(port, '/cgi-bin/info')).body, /"version":"1"/, 'the old revision still serves');

  const ok = await h.run(['update', name, '-f', config, '-e', 'APP_VERSION=2']);
  t.is(ok.code, 0, ok.stderr);
  const history = JSON.parse((await h.run(['history', name, '--json'])).stdout) as { number: number; workflows?: { workflow: string; trigger: string; ok: boolean; log: string }[] }[];
  t.deepEqual(history[0]?.workflows?.map((w) => [w.workflow, w.trigger, w.ok]), [['seed', 'after-create', true]]);
  const migrate = history[1]?.workflows?.[0];
  t.deepEqual([migrate?.workflow, migrate?.trigger, migrate?.ok], ['migrate', 'before-update', true]);
  t.regex(await fs.readFile(migrate?.log as string, 'utf8'), /migrating to version 2/, 'the output is kept');
  t.is((await fs.stat(migrate?.log as string)).mode & 0o777, 0o600);

  const manual = await h.run(['workflow', 'run', name, 'seed']);
  t.is(manual.code, 0, manual.stderr);
  t.regex(manual.stdout, /workflow seed: done/);
  const listed = await h.run(['workflow', 'ls', name]);
  t.regex(listed.stdout, /migrate\s+before-update\s+30s\s+exec\(web\)/);
  const missing = await h.run(['workflow', 'run', name, 'nope']);
  t.is(missing.code, 4);
  t.regex(missing.stderr, /its workflows: guard, migrate, seed/);
  const leftovers = (JSON.parse((await h.run(['ps', name, '--json'])).stdout) as { container: string }[]).filter((i) => /-wf-(migrate|seed)-/.test(i.container));
  t.deepEqual(leftovers, [], 'one-off containers are removed');
  t.is((JSON.parse((await h.run(['ps', name, '--json'])).stdout) as unknown[]).length, 1, 'only the web instance runs');

  // A failing before-destroy workflow stops the destroy before anything is removed.
  await fs.writeFile(path.join(first.rootDir, 'keep'), '');
  const kept = await h.run(['destroy', name]);
  t.is(kept.code, 10, kept.stderr);
  t.regex(kept.stderr, /workflow guard failed/);
  t.is((await inspect()).revision, 2, 'still there');
  await fs.rm(path.join(first.rootDir, 'keep'));
  t.is((await h.run(['destroy', name])).code, 0);
});

test('destroy still cleans up a deployment whose revision files are damaged (no workflow can be read)', async (t) => {
  const h = await harness(t);
  const name = h.name('dmg');
  t.is((await h.run(['create', '-n', name, '-f', path.join(EXAMPLES, 'hello', 'depad.yml')])).code, 0);
  const { rootDir } = JSON.parse((await h.run(['inspect', name, '--json'])).stdout) as { rootDir: string };
  await fs.rm(path.join(rootDir, 'revisions', '1', 'spec.json'));
  const destroyed = await h.run(['destroy', name]);
  t.is(destroyed.code, 0, destroyed.stderr);
  t.is((await h.run(['inspect', name])).code, 4);
});

test("the README's workflow example, verbatim: ./seed.sh beside the config is copied into the root and runs there, also in a rollback once the config's directory is gone", async (t) => {
  const h = await harness(t);
  const name = h.name('readme');
  const readme = await fs.readFile(path.join(ROOT, 'README.md'), 'utf8');
  const example = /\*\*Workflows\.\*\*[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme)?.[1];
  t.truthy(example, 'the README has the example');
  t.regex(example ?? '', /- run: \.\/seed\.sh/);
  const dir = path.join(h.dir, 'app');
  await fs.mkdir(dir);
  const config = path.join(dir, 'depad.yml');
  // A web service with node and /app/migrate.js (bind-mounted from beside the config), then the README's x-depad block as it is.
  await fs.writeFile(config, ['services:', '  web:', '    image: depad-example/node-app:${V:-1}', '    ports: ["8080"]', '    volumes: ["./migrate.js:/app/migrate.js:ro"]', example].join('\n'));
  await fs.writeFile(path.join(dir, 'migrate.js'), "console.log('migrating to ' + process.getBuiltinModule('node:fs').readFileSync('/app/VERSION', 'utf8').trim());\n");
  await fs.writeFile(path.join(dir, 'seed.sh'), '#!/bin/sh\necho "seeding $DEPAD_DEPLOYMENT ($DEPAD_WORKFLOW) in $PWD for V=$V"\necho "$V" >> seeded.txt\n', { mode: 0o755 });
  t.is((await h.run(['create', '-n', name, '-f', config, '-e', 'V=1'])).code, 0);
  const { rootDir } = JSON.parse((await h.run(['inspect', name, '--json'])).stdout) as { rootDir: string };

  const updated = await h.run(['update', name, '-f', config, '-e', 'V=2']);
  t.is(updated.code, 0, updated.stderr);
  t.regex(updated.stderr, /migrate: +migrating to 2/, 'the exec step ran in the new image');
  t.regex(updated.stderr, new RegExp(`migrate: +seeding ${name} \\(migrate\\) in ${rootDir} for V=2`), 'the run step ran in the root, with its variables');
  t.is(await fs.readFile(path.join(rootDir, 'seeded.txt'), 'utf8'), '2\n');

  // Revisions keep working without the files they came from.
  await fs.rm(dir, { recursive: true });
  const rolled = await h.run(['rollback', name]);
  t.is(rolled.code, 0, rolled.stderr);
  t.regex(rolled.stderr, /migrate: +seeding .* for V=1/);
  t.is(await fs.readFile(path.join(rootDir, 'seeded.txt'), 'utf8'), '2\n1\n');
});
