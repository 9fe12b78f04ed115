/** Config-level tests (no engine) for include, extends, profiles, name:, version:, did-you-mean, anchors and unset variables. */
import test from 'ava';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '../src/errors.ts';
import { loadConfig, parseConfig } from '../src/config/index.ts';
import type { ConfigWarning } from '../src/config/index.ts';
import { deploymentNameFromFile } from '../src/config/top-level.ts';
import { packBundle, unpackBundle } from '../src/deploy/bundle.ts';

/** Writes `files` (relative path → text) into a fresh directory, removed after the test. */
async function project(t: import('ava').ExecutionContext, files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'depad-compose-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), text);
  }
  return dir;
}

function issuesOf(t: import('ava').ExecutionContext, run: () => unknown): string[] {
  const error = t.throws(run);
  t.true(error instanceof ConfigError, String(error));
  return (error as ConfigError).issues.map((i) => `${path.basename(i.file)}:${i.line}:${i.column} ${i.path}: ${i.message}`);
}

test('include: short and long syntax, paths relative to the included file, kept with the revision', async (t) => {
  const dir = await project(t, {
    'compose.yaml': 'include:\n  - db/compose.yaml\n  - path: cache.yaml\n    env_file: cache.env\nservices:\n  web:\n    image: nginx\n    depends_on: [db, cache]\n',
    'db/compose.yaml': 'services:\n  db:\n    image: postgres\n    volumes: ["./data:/var/lib/postgresql/data"]\n    env_file: db.env\nvolumes:\n  pg: {}\n',
    'db/db.env': 'POSTGRES_PASSWORD=x\n',
    'cache.yaml': 'services:\n  cache:\n    image: "redis:${REDIS_TAG}"\n',
    'cache.env': 'REDIS_TAG=7\n',
  });
  const spec = await loadConfig(path.join(dir, 'compose.yaml'), {});
  t.deepEqual(Object.keys(spec.services), ['cache', 'db', 'web']);
  t.is(spec.services.cache!.image, 'redis:7');
  t.deepEqual(spec.services.db!.volumes, [{ type: 'bind', source: 'db/data', target: '/var/lib/postgresql/data', readOnly: false }]);
  t.deepEqual(spec.services.db!.environment, { POSTGRES_PASSWORD: 'x' });
  t.deepEqual(Object.keys(spec.volumes), ['pg']);
  t.deepEqual(spec.files, ['cache.env', 'cache.yaml', 'db/compose.yaml']);
});

test('include: a missing file, a conflict and a problem in the included file are reported where they are', async (t) => {
  const dir = await project(t, {
    'compose.yaml': 'include:\n  - other.yaml\n  - missing.yaml\nservices:\n  web:\n    image: nginx\n',
    'other.yaml': 'services:\n  web:\n    image: nginx\n  db:\n    imgae: postgres\n',
  });
  const error = await t.throwsAsync(loadConfig(path.join(dir, 'compose.yaml'), {}));
  const lines = (error as ConfigError).issues.map((i) => `${path.basename(i.file)}:${i.line}:${i.column} ${i.path}: ${i.message}`);
  t.true(lines.some((l) => /^compose\.yaml:3:5 include\[1\]: included file .*missing\.yaml is missing/.test(l)), lines.join('\n'));
  t.true(lines.some((l) => /^compose\.yaml:2:5 services\.web: service 'web' is defined both here and in the included file/.test(l)), lines.join('\n'));
  t.true(lines.some((l) => /^other\.yaml:5:5 services\.db\.imgae: unknown key 'imgae' in services\.db; did you mean 'image'\?/.test(l)), lines.join('\n'));
});

test('extends: same file and file:, merged as compose-go merges', async (t) => {
  const dir = await project(t, {
    'compose.yaml': [
      'services:',
      '  base:',
      '    image: busybox',
      '    command: [sleep, "10"]',
      '    environment: { A: "1", B: "1" }',
      '    labels: [x=1]',
      '    volumes: ["./a:/data", "./b:/other"]',
      '  web:',
      '    extends: base',
      '    command: [sleep, "20"]',
      '    environment: [B=2, C=3]',
      '    volumes: ["./c:/data"]',
      '  worker:',
      '    extends: { file: common/base.yaml, service: job }',
      '',
    ].join('\n'),
    'common/base.yaml': 'services:\n  job:\n    image: alpine\n    volumes: ["./jobs:/jobs"]\n    expose: ["80"]\n',
  });
  const spec = await loadConfig(path.join(dir, 'compose.yaml'), {});
  const web = spec.services.web!;
  t.deepEqual(web.command, ['sleep', '20']);
  t.deepEqual(web.environment, { A: '1', B: '2', C: '3' });
  t.deepEqual(web.labels, { x: '1' });
  t.deepEqual(web.volumes.map((v) => `${v.source}:${v.target}`), ['b:/other', 'c:/data']);
  t.is(spec.services.worker!.image, 'alpine');
  t.deepEqual(spec.services.worker!.volumes.map((v) => v.source), ['common/jobs']);
  t.true(spec.files.includes('common/base.yaml'));
});

test('extends: an unknown service and a cycle are issues at the extends', (t) => {
  const lines = issuesOf(t, () => parseConfig('services:\n  a:\n    image: x\n    extends: b\n  b:\n    image: x\n    extends: a\n  c:\n    image: x\n    extends: nope\n', 'c.yml', {}));
  t.true(lines.some((l) => /extends cycle: a -> b -> a|extends cycle: b -> a -> b/.test(l)), lines.join('\n'));
  t.true(lines.some((l) => /c\.yml:10:14 services\.c\.extends: extends names service 'nope', which is not a service/.test(l)), lines.join('\n'));
});

test('profiles: a service with profiles runs only when one is active; * activates all', (t) => {
  const text = 'services:\n  web:\n    image: nginx\n  debug:\n    image: busybox\n    profiles: [debug, tools]\n';
  t.deepEqual(Object.keys(parseConfig(text, 'c.yml', {}).services), ['web']);
  t.deepEqual(Object.keys(parseConfig(text, 'c.yml', { COMPOSE_PROFILES: 'other,tools' }).services), ['debug', 'web']);
  t.deepEqual(Object.keys(parseConfig(text, 'c.yml', { COMPOSE_PROFILES: '*' }).services), ['debug', 'web']);
  const none = issuesOf(t, () => parseConfig('services:\n  debug:\n    image: busybox\n    profiles: [debug]\n', 'c.yml', {}));
  t.deepEqual(none, ['c.yml:1:1 services: no service runs with the active profiles (none); activate one with --profile NAME or COMPOSE_PROFILES']);
});

test('profiles: a service that does not run is still checked', (t) => {
  const lines = issuesOf(t, () => parseConfig('services:\n  web:\n    image: nginx\n  debug:\n    image: busybox\n    profiles: [debug]\n    comand: [sh]\n', 'c.yml', {}));
  t.deepEqual(lines, ["c.yml:7:5 services.debug.comand: unknown key 'comand' in services.debug; did you mean 'command'?"]);
});

test('profiles: depends_on an inactive service is an issue unless required: false', (t) => {
  const lines = issuesOf(t, () => parseConfig('services:\n  web:\n    image: nginx\n    depends_on: [db]\n  db:\n    image: postgres\n    profiles: [db]\n', 'c.yml', {}));
  t.deepEqual(lines, ["c.yml:4:18 services.web.depends_on[0]: service 'web' depends on 'db', which is not enabled by the active profiles; activate a profile of 'db' (--profile or COMPOSE_PROFILES), give both services a common profile, or mark the dependency required: false"]);
  const spec = parseConfig('services:\n  web:\n    image: nginx\n    depends_on:\n      db: { condition: service_started, required: false }\n  db:\n    image: postgres\n    profiles: [db]\n', 'c.yml', {});
  t.deepEqual(spec.services.web!.dependsOn, {});
});

test('name: is the default deployment name; one depad cannot use says how to fix it; version: warns', (t) => {
  const warnings: ConfigWarning[] = [];
  const spec = parseConfig('version: "3.8"\nname: shop\nservices:\n  web:\n    image: nginx\n', 'c.yml', {}, { warn: (w) => warnings.push(w) });
  t.is(deploymentNameFromFile(spec), 'shop');
  t.regex(warnings[0]!.message, /version is obsolete/);
  const odd = parseConfig('name: my_shop\nservices:\n  web:\n    image: nginx\n', 'c.yml', {});
  const error = t.throws(() => deploymentNameFromFile(odd));
  t.regex(error.message, /the file's name: "my_shop" is not a depad deployment name/);
  t.regex((error as { hint?: string }).hint ?? '', /write name: my-shop/);
  t.throws(() => deploymentNameFromFile(parseConfig('services:\n  web:\n    image: nginx\n', 'c.yml', {}), { COMPOSE_PROJECT_NAME: '' }), { message: /no deployment name: give -n NAME/ });
  t.is(deploymentNameFromFile(spec, { COMPOSE_PROJECT_NAME: 'from-env' }), 'from-env');
});

test('unknown keys: did you mean, and the supported list only once per file', (t) => {
  const lines = issuesOf(t, () => parseConfig('services:\n  web:\n    imgae: nginx\n    image: nginx\n    zzz: 1\n  db:\n    image: x\n    yyy: 2\nservise: {}\n', 'c.yml', {}));
  t.true(lines.some((l) => l === "c.yml:3:5 services.web.imgae: unknown key 'imgae' in services.web; did you mean 'image'?"), lines.join('\n'));
  t.true(lines.some((l) => l === "c.yml:9:1 servise: unknown key 'servise' at the top level; did you mean 'services'?"), lines.join('\n'));
  t.is(lines.filter((l) => l.includes('supported:')).length, 1, lines.join('\n'));
});

test('a problem in a merged anchor is reported once, at the anchor, with the services that use it', (t) => {
  const text = 'x-common: &common\n  restart: sometimes\nservices:\n  web:\n    <<: *common\n    image: nginx\n  worker:\n    <<: *common\n    image: busybox\n';
  const lines = issuesOf(t, () => parseConfig(text, 'c.yml', {}));
  t.is(lines.length, 1, lines.join('\n'));
  t.regex(lines[0]!, /^c\.yml:2:12 services\.web\.restart: .*used by services web, worker/);
});

test('a value empty because a variable is unset names the variable in the error', (t) => {
  const lines = issuesOf(t, () => parseConfig('services:\n  web:\n    image: ${IMAGE}\n', 'c.yml', {}));
  t.is(lines.length, 1);
  t.regex(lines[0]!, /services\.web\.image: image must not be empty.*empty because variable IMAGE is not set: pass --env IMAGE=… or add it to \.env/);
});

test('network and volume names as compose allows them: dots, underscores, uppercase', (t) => {
  const spec = parseConfig('services:\n  web:\n    image: nginx\n    networks: [Front.End]\n    volumes: ["app.data:/data"]\nnetworks:\n  Front.End: {}\nvolumes:\n  app.data: {}\n', 'c.yml', {});
  t.deepEqual(Object.keys(spec.networks), ['Front.End']);
  t.deepEqual(spec.services.web!.volumes, [{ type: 'volume', source: 'app.data', target: '/data', readOnly: false }]);
});

test('include: nested includes rebase paths once per level; an include cycle is an issue', async (t) => {
  const dir = await project(t, {
    'compose.yaml': 'include: [a/x.yaml]\nservices:\n  web:\n    image: nginx\n',
    'a/x.yaml': 'include: [b/y.yaml]\nservices:\n  x:\n    image: nginx\n    volumes: ["./xd:/x"]\n',
    'a/b/y.yaml': 'services:\n  y:\n    image: nginx\n    volumes: ["./yd:/y"]\n',
  });
  const spec = await loadConfig(path.join(dir, 'compose.yaml'), {});
  t.deepEqual(spec.services.x!.volumes.map((v) => v.source), ['a/xd']);
  t.deepEqual(spec.services.y!.volumes.map((v) => v.source), ['a/b/yd']);
  const loop = await project(t, { 'compose.yaml': 'include: [other.yaml]\nservices:\n  web:\n    image: nginx\n', 'other.yaml': 'include: [compose.yaml]\nservices:\n  db:\n    image: x\n' });
  const error = await t.throwsAsync(loadConfig(path.join(loop, 'compose.yaml'), {}));
  t.regex(error!.message, /include cycle: compose\.yaml -> other\.yaml -> compose\.yaml/);
});

test('include: a path list merges the later files over the first, as compose override files', async (t) => {
  const dir = await project(t, {
    'compose.yaml': 'include:\n  - path: [app/base.yaml, app/override.yaml]\nservices:\n  web:\n    image: nginx\n',
    'app/base.yaml': 'services:\n  api:\n    image: busybox\n    command: [sleep, "1"]\n    environment: { A: "1" }\n',
    'app/override.yaml': 'services:\n  api:\n    command: [sleep, "2"]\n    environment: { B: "2" }\n  extra:\n    image: alpine\n',
  });
  const spec = await loadConfig(path.join(dir, 'compose.yaml'), {});
  t.deepEqual(Object.keys(spec.services), ['api', 'extra', 'web']);
  t.deepEqual(spec.services.api!.command, ['sleep', '2']);
  t.deepEqual(spec.services.api!.environment, { A: '1', B: '2' });
  t.true(spec.files.includes('app/override.yaml'));
});

test('a value made invalid by an unset variable names it too', (t) => {
  const lines = issuesOf(t, () => parseConfig('services:\n  web:\n    image: "${REGISTRY}/app:1"\n', 'c.yml', {}));
  t.is(lines.length, 1);
  t.regex(lines[0]!, /services\.web\.image: .*\(variable REGISTRY is not set and became '': pass --env REGISTRY=… or add it to \.env\)/);
});

test('include: an included docker-compose.yml is not copied over the one depad renders into the root', async (t) => {
  const dir = await project(t, {
    'depad.yml': 'include: [docker-compose.yml]\nservices:\n  web:\n    image: nginx\n',
    'docker-compose.yml': 'services:\n  db:\n    image: postgres\n',
  });
  const spec = await loadConfig(path.join(dir, 'depad.yml'), {});
  t.deepEqual(Object.keys(spec.services), ['db', 'web']);
  t.deepEqual(spec.files, []);
});

test('a remote client\'s bundle carries the included and extended files and what they reference', async (t) => {
  const dir = await project(t, {
    'compose.yaml': 'include: [db/compose.yaml]\nservices:\n  web:\n    extends: { file: common.yaml, service: app }\n',
    'common.yaml': 'services:\n  app:\n    image: nginx\n    env_file: app.env\n',
    'app.env': 'A=1\n',
    'db/compose.yaml': 'services:\n  db:\n    image: postgres\n    volumes: ["./seed:/seed"]\n',
    'db/seed/init.sql': 'select 1;\n',
    'unrelated.txt': 'not sent',
  });
  const bundle = await packBundle(path.join(dir, 'compose.yaml'), {});
  t.deepEqual(bundle.files.map((f) => f.path).sort(), ['app.env', 'common.yaml', 'compose.yaml', 'db/compose.yaml', 'db/seed/init.sql']);
  const out = await mkdtemp(path.join(tmpdir(), 'depad-compose-out-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  const unpacked = await unpackBundle(out, bundle);
  const spec = await loadConfig(unpacked.configFile, {});
  t.deepEqual(Object.keys(spec.services), ['db', 'web']);
  t.deepEqual(spec.services.web!.environment, { A: '1' });
});

test('include: project_directory sets what the included file\'s paths are relative to; extends merges depends_on and networks lists with maps', async (t) => {
  const dir = await project(t, {
    'compose.yaml': [
      'include:',
      '  - path: defs/db.yaml',
      '    project_directory: data',
      'services:',
      '  base:',
      '    image: nginx',
      '    depends_on: [db]',
      '    networks: [front]',
      '  web:',
      '    extends: base',
      '    depends_on: { cache: { condition: service_started } }',
      '    networks: { back: { aliases: [w] } }',
      '  cache:',
      '    image: redis',
      '    networks: [back]',
      'networks:',
      '  front: {}',
      '  back: {}',
      '',
    ].join('\n'),
    'defs/db.yaml': 'services:\n  db:\n    image: postgres\n    volumes: ["./pg:/pg"]\n    networks: [front]\n',
  });
  const spec = await loadConfig(path.join(dir, 'compose.yaml'), {});
  t.deepEqual(spec.services.db!.volumes.map((v) => v.source), ['data/pg']);
  t.deepEqual(Object.keys(spec.services.web!.dependsOn).sort(), ['cache', 'db']);
  t.deepEqual(Object.keys(spec.services.web!.networks).sort(), ['back', 'front']);
  t.deepEqual(spec.services.web!.networks.back!.aliases, ['w']);
});
