/**
 * `depad config` (no engine, no state) and one real create from a project that uses include,
 * extends, profiles and a .env file: what reached the engine is inspected.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { harness } from './helpers/harness.ts';

const run = promisify(execFile);

async function write(dir: string, files: Record<string, string>): Promise<void> {
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), text);
  }
}

const PROJECT = {
  'compose.yaml': [
    'name: shopdemo',
    'include:',
    '  - parts/db.yaml',
    'x-base: &base',
    '  image: ${IMAGE}',
    'services:',
    '  web:',
    '    <<: *base',
    '    extends: { file: parts/common.yaml, service: app }',
    '    environment: { ROLE: web }',
    '    depends_on: [db]',
    '  debug:',
    '    <<: *base',
    '    profiles: [debug]',
    '',
  ].join('\n'),
  'parts/common.yaml': 'services:\n  app:\n    command: [sleep, "3600"]\n    environment: [GREETING=hello, ROLE=none]\n',
  'parts/db.yaml': 'services:\n  db:\n    image: ${IMAGE}\n    command: [sleep, "3600"]\n    volumes: ["./dbdata:/data", "pg.data:/pg"]\nvolumes:\n  pg.data: {}\n',
  '.env': 'IMAGE=depad-example/app:1\n',
};

test('depad config prints the normalized file, --json the same, exit 3 listing every problem, and touches no state', async (t) => {
  const h = await harness(t);
  await write(h.dir, PROJECT);
  const file = path.join(h.dir, 'compose.yaml');
  const yaml = await h.run(['config', '-f', file]);
  t.is(yaml.code, 0, yaml.stderr);
  t.regex(yaml.stdout, /^name: shopdemo$/m);
  t.regex(yaml.stdout, /image: depad-example\/app:1/);
  t.regex(yaml.stdout, /source: \.\/parts\/dbdata/);
  t.notRegex(yaml.stdout, /debug:/);
  const json = await h.json<{ services: Record<string, { environment?: Record<string, string>; command?: string[] }> }>(['config', '-f', file, '--profile', 'debug']);
  t.deepEqual(Object.keys(json.services), ['db', 'debug', 'web']);
  t.deepEqual(json.services.web!.environment, { GREETING: 'hello', ROLE: 'web' });
  t.deepEqual(json.services.web!.command, ['sleep', '3600']);
  const services = await h.run(['config', '-f', file, '--services'], { env: { COMPOSE_PROFILES: 'debug' } });
  t.is(services.stdout, 'db\ndebug\nweb\n');
  await write(h.dir, { 'bad.yaml': 'services:\n  web:\n    imgae: x\n    image: ${NOPE}\n  db:\n    image: x\n    restart: sometimes\n' });
  const bad = await h.run(['config', '-f', path.join(h.dir, 'bad.yaml')]);
  t.is(bad.code, 3);
  t.regex(bad.stderr, /bad\.yaml:3:5 services\.web\.imgae: unknown key 'imgae' in services\.web; did you mean 'image'\?/);
  t.regex(bad.stderr, /bad\.yaml:4:12 services\.web\.image: .*empty because variable NOPE is not set/);
  t.regex(bad.stderr, /bad\.yaml:7:\d+ services\.db\.restart/);
  t.false(existsSync(path.join(h.home, 'state')), 'depad config opened no state');
  t.deepEqual((await h.run(['config', '-f', file, '-q'])).stdout, '');
  await write(h.dir, { 'other.env': 'UNRELATED=1\n' });
  const replaced = await h.run(['config', '-f', file, '--env-file', path.join(h.dir, 'other.env')]);
  t.is(replaced.code, 3, '--env-file replaces the .env beside the file');
  t.regex(replaced.stderr, /empty because variable IMAGE is not set/);
  const wins = await h.json<{ services: Record<string, { image: string }> }>(['config', '-f', file, '-e', 'IMAGE=depad-example/app:2']);
  t.is(wins.services.web!.image, 'depad-example/app:2', '--env wins over .env');
});

test('create from include + extends + profiles + .env: the engine gets the merged services; the included files are kept', async (t) => {
  const h = await harness(t);
  await write(h.dir, { ...PROJECT, 'compose.yaml': PROJECT['compose.yaml'].replace('name: shopdemo', `name: ${h.name('inc')}`) });
  const created = await h.run(['create', '-f', path.join(h.dir, 'compose.yaml'), '--no-wait', '--profile', 'debug']);
  t.is(created.code, 0, created.stderr);
  const name = h.name('inc');
  const view = await h.json<{ id: string; services: { name: string }[] }>(['inspect', name]);
  t.deepEqual(view.services.map((s) => s.name).sort(), ['db', 'debug', 'web']);
  const { stdout } = await run('docker', ['inspect', `depad-${name}-web-1`, '--format', '{{json .Config}}']);
  const config = JSON.parse(stdout) as { Env: string[]; Cmd: string[]; Image: string };
  t.is(config.Image, 'depad-example/app:1');
  t.deepEqual(config.Cmd, ['sleep', '3600']);
  t.true(config.Env.includes('GREETING=hello') && config.Env.includes('ROLE=web'), config.Env.join(' '));
  const { stdout: mounts } = await run('docker', ['inspect', `depad-${name}-db-1`, '--format', '{{range .Mounts}}{{.Name}} {{end}}']);
  t.regex(mounts, new RegExp(`depad-${name}_pg\\.data`));
  const home = h.home;
  const { stdout: found } = await run('find', [home, '-path', '*parts/db.yaml']);
  t.true(found.trim().length > 0, 'the included file is kept in the root');
  const env = await run('sh', ['-c', `cat ${home}/deployments/*/revisions/1/env.json`]);
  t.regex(env.stdout, /"COMPOSE_PROFILES": "debug"/);
  t.regex(env.stdout, /"IMAGE": "depad-example\/app:1"/);
});

test('update keeps the revision\'s profiles and re-reads included files from the root when the file changed', async (t) => {
  const h = await harness(t);
  const name = h.name('prof');
  await write(h.dir, { ...PROJECT, 'compose.yaml': PROJECT['compose.yaml'].replace('name: shopdemo', `name: ${name}`) });
  const file = path.join(h.dir, 'compose.yaml');
  t.is((await h.run(['create', '-f', file, '--no-wait', '--profile', 'debug'])).code, 0);
  await writeFile(file, '# changed on disk since\n');
  const kept = await h.run(['update', name, '-e', 'EXTRA=1']);
  t.is(kept.code, 0, kept.stderr);
  const services = async () => (await h.json<{ services: { name: string }[] }>(['inspect', name])).services.map((s) => s.name).sort();
  t.deepEqual(await services(), ['db', 'debug', 'web']);
  const off = await h.run(['update', name, '-e', 'COMPOSE_PROFILES=']);
  t.is(off.code, 0, off.stderr);
  t.deepEqual(await services(), ['db', 'web']);
});
