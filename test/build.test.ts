/**
 * `build:` against the real engine (no registry: the Dockerfiles' FROM is a local image): built at
 * create with its args, target and labels, `.dockerignore` honoured, rebuilt and swapped by an
 * update only when the context changed, reused (never rebuilt) by a rollback, removed by destroy;
 * a failing build makes nothing and says why, with the build's last lines; a rebuilt routed service
 * is swapped with zero downtime through the proxy.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import type { DeploymentView } from '../src/deploy/status.ts';
import type { RevisionRecord } from '../src/store/records.ts';
import { Store } from '../src/store/store.ts';
import { LABELS } from '../src/engine/types.ts';
import { engineObjects, harness, httpGet, removeEngineObjects, testPorts, type Harness } from './helpers/harness.ts';
import { startAgent } from './helpers/agent-process.ts';
import { jsonVia, startLoad } from './helpers/load.ts';
import { startProxyProcess } from './helpers/proxy-process.ts';

const run = promisify(execFile);

const DOCKERFILE = `FROM depad-example/app:1 AS base
ARG GREETING=unset
RUN echo "$GREETING" > /app/www/greeting.txt && grep mirror.local /etc/hosts > /app/www/hosts.txt && df -k /dev/shm | tail -1 > /app/www/shm.txt
FROM base AS final
COPY . /ctx
COPY message.txt /app/www/message.txt
CMD ["/app/bin/web"]
FROM final AS never
RUN echo "the target stops before this stage" && exit 1
`;

/** Writes a build context and a config beside it; returns the config's path. */
async function project(h: Harness, extra: string[] = []): Promise<string> {
  const ctx = path.join(h.dir, 'app');
  await fs.mkdir(path.join(ctx, 'secret'), { recursive: true });
  await fs.writeFile(path.join(ctx, 'Dockerfile'), DOCKERFILE);
  await fs.writeFile(path.join(ctx, 'message.txt'), 'first\n');
  await fs.writeFile(path.join(ctx, 'secret', 'key'), 'do not send\n');
  await fs.writeFile(path.join(ctx, 'debug.log'), 'x\n');
  await fs.writeFile(path.join(ctx, 'keep.log'), 'y\n');
  await fs.writeFile(path.join(ctx, '.dockerignore'), '# not sent\nsecret\n**/*.log\n!keep.log\n');
  const file = path.join(h.dir, 'depad.yml');
  const lines = [
    'services:',
    '  web:',
    '    build:',
    '      context: ./app',
    '      target: final',
    '      args: ["GREETING=${GREETING}"]',
    '      labels: {org.example.built: "by-depad"}',
    '      extra_hosts: ["mirror.local:10.0.0.9"]',
    '      shm_size: 32m',
    '      network: default',
    '    ports: ["8080"]',
    '    stop_grace_period: 2s',
    ...extra,
  ];
  await fs.writeFile(file, `${lines.join('\n')}\n`);
  return file;
}

/** Removes the images this test's deployments built (labelled with their names), pass or fail. */
function removeBuiltImages(t: { teardown(fn: () => Promise<void>): void }, h: Harness): void {
  t.teardown(async () => {
    await removeEngineObjects(h.engine, h.prefix); // the containers first (teardowns run last-registered first)
    for (const image of await h.engine.listImages({ [LABELS.deployment]: null })) {
      if ((image.labels[LABELS.deployment] ?? '').startsWith(`${h.prefix}-`)) await run('docker', ['rmi', '-f', image.id]).catch(() => undefined);
    }
  });
}

async function imagesOf(deploymentId: string): Promise<string[]> {
  const { stdout } = await run('docker', ['images', '-q', '--no-trunc', '--filter', `label=${LABELS.deploymentId}=${deploymentId}`]);
  return [...new Set(stdout.split('\n').filter(Boolean))];
}

async function inspect(container: string): Promise<{ Image: string; Config: { Labels: Record<string, string> } }> {
  const { stdout } = await run('docker', ['inspect', container]);
  return (JSON.parse(stdout) as Array<{ Image: string; Config: { Labels: Record<string, string> } }>)[0]!;
}

test('build: built at create (args, target, labels, .dockerignore), rebuilt and swapped by an update only when the context changed, reused by rollback, removed by destroy', async (t) => {
  const h = await harness(t);
  removeBuiltImages(t, h);
  const name = h.name('bld');
  const file = await project(h, [`    image: ${name}/web:dev`]);
  const created = await h.run(['create', '-n', name, '-f', file, '-e', 'GREETING=hello-arg', '--pull', 'never']);
  t.is(created.code, 0, created.stderr);
  t.regex(created.stderr, new RegExp(`web: building depad-${name}-web:[0-9a-f]{16} from `), '--pull never does not stop a build');
  t.regex(created.stderr, /web: Step 1\/\d+ : FROM depad-example\/app:1 AS base/);
  t.notRegex(created.stderr, /LABEL depad\./, 'depad\'s own label steps are not shown');
  const v1 = await h.json<DeploymentView & { id: string }>(['inspect', name]);
  const web1 = `depad-${name}-web-1`;
  const c1 = await inspect(web1);
  const tag1 = (await run('docker', ['inspect', '--format', '{{.Config.Image}}', web1])).stdout.trim();
  t.regex(tag1, new RegExp(`^depad-${name}-web:[0-9a-f]{16}$`));
  t.is((await run('docker', ['image', 'inspect', '--format', '{{.Id}}', tag1])).stdout.trim(), c1.Image, 'the container runs the built image');
  t.is(c1.Config.Labels['org.example.built'], 'by-depad', 'build.labels reached the image');
  t.is((await run('docker', ['image', 'inspect', '--format', '{{.Id}}', `${name}/web:dev`])).stdout.trim(), c1.Image, 'image: beside build: is tagged too');
  const port = v1.services[0]!.ports[0]!.host;
  t.is((await httpGet(port, '/greeting.txt')).body.trim(), 'hello-arg', 'the build arg reached the build (interpolated)');
  t.is((await httpGet(port, '/message.txt')).body.trim(), 'first');
  t.regex((await httpGet(port, '/hosts.txt')).body, /^10\.0\.0\.9\s+mirror\.local/, 'build.extra_hosts reached the build');
  t.regex((await httpGet(port, '/shm.txt')).body, /^shm\s+32768\s/, 'build.shm_size reached the build');
  const ctx = (await run('docker', ['exec', web1, 'ls', '-a', '/ctx'])).stdout.split('\n').filter(Boolean).sort();
  t.deepEqual(ctx, ['.', '..', '.dockerignore', 'Dockerfile', 'keep.log', 'message.txt'], '.dockerignore left out secret/ and debug.log, kept !keep.log');

  // Nothing changed: no build runs, nothing is swapped.
  const same = await h.run(['update', name, '-f', file]);
  t.is(same.code, 0, same.stderr);
  t.regex(same.stdout, /no changes: .* stays at revision 1/);
  t.regex(same.stderr, /is up to date/);
  t.notRegex(same.stderr, /Step 1\//);

  // A file of the context changed: rebuilt, a new instance with the new image.
  await fs.writeFile(path.join(h.dir, 'app', 'message.txt'), 'second\n');
  const dry = await h.run(['update', name, '-f', file, '--dry-run']);
  t.is(dry.code, 0, dry.stderr);
  t.regex(dry.stdout, /web/);
  t.notRegex(dry.stderr, /Step 1\//, 'a dry run does not build');
  const preview = await h.run(['diff', name, '-f', file]);
  t.is(preview.code, 0, preview.stderr);
  t.regex(preview.stdout, /~ web: new instance: image/);
  t.regex(preview.stderr, /web: Step 1\//, 'diff builds (it compares image IDs)');
  t.is((await h.json<DeploymentView>(['inspect', name])).revision, 1, 'diff applied nothing');
  const changed = await h.run(['update', name, '-f', file]);
  t.is(changed.code, 0, changed.stderr);
  t.regex(changed.stderr, /is up to date/, 'the image diff built is used');
  t.regex(changed.stdout, new RegExp(`~ web: new instance: image depad-${name}-web:[0-9a-f]{16} → depad-${name}-web:[0-9a-f]{16}`));
  const c2 = await inspect(`depad-${name}-web-2`);
  t.not(c2.Image, c1.Image, 'a new image ID');
  t.is((await httpGet(port, '/message.txt')).body.trim(), 'second', 'the new instance serves the rebuilt content on the same port');

  // Rollback: the image revision 1 recorded, never a build.
  const back = await h.run(['rollback', name]);
  t.is(back.code, 0, back.stderr);
  t.notRegex(back.stderr, /build|Step \d/);
  t.regex(back.stderr, /using the image built before/);
  const c3 = await inspect(`depad-${name}-web-3`);
  t.is(c3.Image, c1.Image, 'rollback runs revision 1\'s image ID');
  const history = await h.json<RevisionRecord[]>(['history', name]);
  t.is(history.find((r) => r.number === 3)!.images.web!.id, c1.Image);
  t.is((await httpGet(port, '/message.txt')).body.trim(), 'first');
  t.is((await imagesOf(v1.id)).length, 2, 'both revisions\' images are kept while their revisions exist');

  // Revision 2's image pruned: a rollback to it says so and how to recover, and changes nothing.
  await run('docker', ['rmi', '-f', c2.Image]);
  const gone = await h.run(['rollback', name, '--to', '2']);
  t.is(gone.code, 6, gone.stderr);
  t.regex(gone.stderr, /the image built for web .* is no longer on this host[\s\S]*depad update/);
  t.is((await h.json<DeploymentView>(['inspect', name])).revision, 3);

  // A failing build in an update: exit 6, the deployment stays as it is.
  await fs.writeFile(path.join(h.dir, 'app', 'Dockerfile'), 'FROM depad-example/app:1 AS final\nRUN echo "update breaks" && false\n');
  const broken = await h.run(['update', name, '-f', file]);
  t.is(broken.code, 6, broken.stderr);
  t.regex(broken.stderr, /services\.web\.build: building the image failed[\s\S]*update breaks/);
  const still = await h.json<DeploymentView>(['inspect', name]);
  t.is(still.revision, 3);
  t.is((await inspect(`depad-${name}-web-3`)).Image, c1.Image);

  t.is((await h.run(['destroy', name])).code, 0);
  t.deepEqual(await imagesOf(v1.id), [], 'destroy removed the built images');
  t.is(await h.engine.imageId(`${name}/web:dev`), undefined, 'with their image: tag');
});

test('build: a failing build is DEPAD_IMAGE_BUILD_FAILED (exit 6) at the build: key, with the build\'s last lines; nothing is made, no port kept', async (t) => {
  const h = await harness(t);
  removeBuiltImages(t, h);
  const name = h.name('bad');
  const file = await project(h, ['  db:', '    image: depad-example/app:1', '    command: ["/app/bin/db"]']);
  await fs.writeFile(path.join(h.dir, 'app', 'Dockerfile'), DOCKERFILE.replace('COPY . /ctx', 'RUN echo "compiling: boom" && exit 3'));
  const r = await h.run(['create', '-n', name, '-f', file, '--json']);
  t.is(r.code, 6, r.stderr);
  const body = JSON.parse(r.stderr.trim().split('\n').pop()!) as { error: { code: string; message: string; log: string[]; service: string } };
  t.is(body.error.code, 'DEPAD_IMAGE_BUILD_FAILED');
  t.is(body.error.service, 'web');
  t.regex(body.error.message, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:5 services\\.web\\.build: building the image failed: .*returned a non-zero code: 3`));
  t.regex(body.error.message, /last lines of the build:[\s\S]*compiling: boom/);
  t.true(body.error.log.some((l) => l.includes('compiling: boom')));
  t.false(body.error.log.some((l) => l.startsWith(' ---> ')), 'the builder\'s bookkeeping is left out');
  t.deepEqual(await engineObjects(h.engine, h.prefix), { containers: [], networks: [], volumes: [] }, 'nothing made');
  t.is((await h.run(['inspect', name])).code, 4, 'no deployment recorded');
  const store = await Store.open(h.home, { command: 'test' });
  try {
    t.deepEqual(await store.listPorts(), [], 'no port registered');
  } finally {
    await store.close();
  }
});

test('build: a rebuilt routed service is swapped with zero downtime through the proxy', async (t) => {
  const h = await harness(t);
  removeBuiltImages(t, h);
  const proxy = await startProxyProcess(t, h);
  const name = h.name('zdt');
  const ctx = path.join(h.dir, 'app');
  await fs.mkdir(ctx, { recursive: true });
  await fs.writeFile(path.join(ctx, 'Dockerfile'), 'FROM depad-example/app:1\nCOPY VERSION /app/VERSION\nCMD ["/app/bin/web"]\n');
  await fs.writeFile(path.join(ctx, 'VERSION'), 'b1\n');
  const file = path.join(h.dir, 'depad.yml');
  await fs.writeFile(file, ['services:', '  web:', '    build: ./app', '    stop_grace_period: 2s', '    x-depad:', '      expose: http', '      port: 8080', '      health: { http: /cgi-bin/health, status: 200 }', '      drain_timeout: 2s', ''].join('\n'));
  const created = await h.run(['create', '-n', name, '-f', file]);
  t.is(created.code, 0, created.stderr);
  const host = `web.${name}.localhost`;
  const load = startLoad({ port: proxy.port, host, path: '/cgi-bin/info', keepAliveClients: 2, newConnectionClients: 1 });
  try {
    await fs.writeFile(path.join(ctx, 'VERSION'), 'b2\n');
    const r = await h.run(['update', name, '-f', file]);
    t.is(r.code, 0, r.stderr);
    t.regex(r.stderr, /web: Step 1\//);
  } finally {
    const stats = await load.stop();
    t.is(stats.failed, 0, stats.failures.join('\n'));
    t.deepEqual(Object.keys(stats.versions).sort(), ['b1', 'b2']);
  }
  t.is((await jsonVia<{ version: string }>(proxy.port, host, '/cgi-bin/info')).version, 'b2');
});

test('build: through the local agent socket the agent builds from the config\'s directory, with the build\'s progress streamed', async (t) => {
  const h = await harness(t);
  removeBuiltImages(t, h);
  const port = await testPorts(t);
  await startAgent(t, h, port);
  const name = h.name('agt');
  const file = await project(h);
  t.teardown(async () => void (await h.run(['destroy', name])));
  const created = await h.run(['create', '-n', name, '-f', file, '-e', 'GREETING=via-agent']);
  t.is(created.code, 0, created.stderr);
  t.regex(created.stderr, /web: Step 1\/\d+ : FROM depad-example\/app:1 AS base/);
  const view = await h.json<DeploymentView>(['inspect', name]);
  t.is((await httpGet(view.services[0]!.ports[0]!.host, '/greeting.txt')).body.trim(), 'via-agent');
});

test('build: update -e with the config gone (a bundle\'s, or moved) keeps the built image when the build is unchanged, and says to give the files when it changes', async (t) => {
  const h = await harness(t);
  removeBuiltImages(t, h);
  const file = await project(h, ['    environment: {NOTE: "${NOTE:-none}"}']);
  const name = h.name('gone');
  const created = await h.run(['create', '-n', name, '-f', file, '-e', 'GREETING=hi']);
  t.is(created.code, 0, created.stderr);
  const before = await h.json<DeploymentView>(['inspect', name]);
  const image = (await inspect(before.services[0]!.instances[0]!.container)).Image;
  await fs.rm(path.join(h.dir, 'app'), { recursive: true });
  await fs.rm(file);

  const noted = await h.run(['update', name, '-e', 'NOTE=changed']);
  t.is(noted.code, 0, noted.stderr);
  t.regex(noted.stderr, /using the image built before/);
  const after = await h.json<DeploymentView>(['inspect', name]);
  const running = after.services[0]!.instances.find((i) => i.state === 'running')!;
  t.is((await inspect(running.container)).Image, image, 'the same built image, with the new variable');

  const greeted = await h.run(['update', name, '-e', 'GREETING=bye']);
  t.is(greeted.code, 2, greeted.stderr);
  t.regex(greeted.stderr, /web's build changes with these variables, and its build context \(.*app\) is not on this host any more/);
  t.regex(greeted.stderr, /depad update .* -f <config file>/);
});
