import test from 'ava';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseConfig } from '../src/config/index.ts';
import { hostPlatform } from '../src/config/build.ts';
import { ConfigError } from '../src/errors.ts';
import { parseDockerignore } from '../src/deploy/dockerignore.ts';
import { packContext } from '../src/deploy/build-context.ts';
import { assertRemoteConfig, parseRemoteConfig } from '../src/deploy/update-target.ts';

const parse = (text: string, env: Record<string, string> = {}) => parseConfig(text, 'cfg.yml', env);

test('build: the short form is the context; image is then optional', (t) => {
  const spec = parse('services:\n  web:\n    build: ./app\n');
  t.deepEqual(spec.services.web!.build, { context: './app', args: {}, labels: {}, extraHosts: [], cacheFrom: [], noCache: false, pull: false, tags: [] });
  t.is(spec.services.web!.image, '');
  t.deepEqual(spec.positions.get('services.web.build'), { file: 'cfg.yml', line: 3, column: 12 });
});

test('build: the long form, args as a list and a map, interpolated; a bare arg comes from the environment', (t) => {
  const text = [
    'services:',
    '  web:',
    '    image: shop/web:${TAG}',
    '    build:',
    '      context: ../src',
    '      dockerfile: docker/Dockerfile.prod',
    '      args: ["VERSION=${TAG}", FROM_ENV, UNSET_ONE]',
    '      target: final',
    '      labels: {org.example.team: shop}',
    '      network: none',
    '      shm_size: 64m',
    '      extra_hosts: ["mirror.local:10.0.0.9"]',
    '      cache_from: [shop/web:1]',
    '      no_cache: true',
    '      pull: false',
    '      tags: ["shop/web:latest"]',
    `      platforms: [${hostPlatform()}]`,
    '  db:',
    '    build:',
    '      dockerfile_inline: |',
    '        FROM depad-example/app:1',
    '      args: {A: "1", B: 2, FROM_ENV: null}',
  ].join('\n');
  const spec = parse(text, { TAG: '7', FROM_ENV: 'yes' });
  t.is(spec.services.web!.image, 'shop/web:7');
  t.deepEqual(spec.services.web!.build, {
    context: '../src', dockerfile: 'docker/Dockerfile.prod', args: { FROM_ENV: 'yes', VERSION: '7' }, target: 'final', labels: { 'org.example.team': 'shop' },
    network: 'none', shmSizeBytes: 64 * 1024 * 1024, extraHosts: ['mirror.local:10.0.0.9'], cacheFrom: ['shop/web:1'], noCache: true, pull: false, tags: ['shop/web:latest'], platform: hostPlatform(),
  });
  t.deepEqual(spec.services.db!.build, { context: '.', dockerfileInline: 'FROM depad-example/app:1\n', args: { A: '1', B: '2', FROM_ENV: 'yes' }, labels: {}, extraHosts: [], cacheFrom: [], noCache: false, pull: false, tags: [] });
});

test('build: registry caches and reserved labels are refused where they are written', (t) => {
  const error = t.throws(() => parse('services:\n  web:\n    build:\n      cache_from: ["type=registry,ref=x/y"]\n      labels: {depad.x: "1"}\n'), { instanceOf: ConfigError }) as ConfigError;
  t.deepEqual(error.issues.map((i) => `${i.line}:${i.column} ${i.path}`), ['4:20 services.web.build.cache_from[0]', '5:25 services.web.build.labels["depad.x"]']);
  t.regex(error.message, /local images only/);
});

test('a config sent as text by a remote client may not build (its context is on the client\'s disk)', (t) => {
  const error = t.throws(() => parseRemoteConfig({ text: 'services:\n  web:\n    build: .\n', name: 'c.yml' }, {}));
  t.is((error as ConfigError).code, 'DEPAD_CONFIG_INVALID');
  t.regex(error!.message, /web has build:.*client's disk.*remote client cannot send/);
  // A bundle's config (unpacked on the agent) likewise: its context path would be read on the agent's host.
  const bundled = t.throws(() => assertRemoteConfig(parse('services:\n  web:\n    build: ../../etc\n'), 'depad.yml'));
  t.regex(bundled!.message, /^depad\.yml: web has build:/);
});

test('.dockerignore: Docker\'s rules (**, !exceptions, last match wins, directories, comments, leading /)', (t) => {
  const m = parseDockerignore(['# comment', '', '*.log', '!keep.log', 'node_modules', '/build/', '**/*.tmp', 'docs/**/draft?.md', 'secret', '!secret/public', ' spaced.txt  ', 'a/*/c'].join('\n'));
  const cases: Array<[string, boolean]> = [
    ['x.log', true], ['keep.log', false], ['sub/x.log', false], // * does not cross /
    ['node_modules', true], ['node_modules/pkg/index.js', true], ['src/node_modules', false],
    ['build/out.js', true], ['a.tmp', true], ['deep/er/b.tmp', true],
    ['docs/draft1.md', true], ['docs/x/y/draft2.md', true], ['docs/final.md', false],
    ['secret/key', true], ['secret/public', false], ['secret/public/x', false],
    ['spaced.txt', true], ['a/b/c', true], ['a/b/d', false], ['a/b/c/d', true], ['Dockerfile', false],
  ];
  for (const [p, ignored] of cases) t.is(m.ignored(p), ignored, p);
  t.true(m.hasExceptions);
});

test('a packed context leaves out what .dockerignore says, keeps the Dockerfile, stores links as links, and hashes the same files the same', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'depad-ctx-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.mkdir(path.join(dir, 'secret'));
  await fs.writeFile(path.join(dir, 'Dockerfile'), 'FROM depad-example/app:1\nCOPY . /src\n');
  await fs.writeFile(path.join(dir, 'secret', 'key'), 'k');
  await fs.writeFile(path.join(dir, 'app.txt'), 'a');
  await fs.writeFile(path.join(dir, `${'n'.repeat(120)}.txt`), 'long name');
  await fs.symlink('/etc/passwd', path.join(dir, 'link'));
  await fs.writeFile(path.join(dir, '.dockerignore'), 'secret\nDockerfile\n');
  const one = await packContext(dir, undefined, undefined);
  const names = tarNames(one.tar);
  t.true(names.includes('app.txt'));
  t.true(names.includes('Dockerfile'), 'the Dockerfile is sent even when ignored');
  t.true(names.includes(`${'n'.repeat(120)}.txt`));
  t.false(names.some((n) => n.startsWith('secret')));
  t.true(names.includes('link'));
  t.is((await packContext(dir, undefined, undefined)).sha256, one.sha256);
  await fs.writeFile(path.join(dir, 'secret', 'key'), 'changed');
  t.is((await packContext(dir, undefined, undefined)).sha256, one.sha256, 'an ignored file does not change the hash');
  await fs.writeFile(path.join(dir, 'app.txt'), 'b');
  t.not((await packContext(dir, undefined, undefined)).sha256, one.sha256);
  const inline = await packContext(dir, undefined, 'FROM x\n');
  t.is(inline.dockerfile, '.depad.Dockerfile');
});

/** The entry names of a tar archive (ustar names and pax paths). */
function tarNames(tar: Buffer): string[] {
  const out: string[] = [];
  let pax: string | undefined;
  for (let off = 0; off + 512 <= tar.length; ) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const name = h.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(h.subarray(124, 136).toString('utf8').replace(/\0.*$/s, ''), 8);
    const type = String.fromCharCode(h[156]!);
    const body = tar.subarray(off + 512, off + 512 + size);
    if (type === 'x') pax = /path=(.*)\n/.exec(body.toString('utf8'))?.[1];
    else {
      out.push((pax ?? name).replace(/\/$/, ''));
      pax = undefined;
    }
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}
