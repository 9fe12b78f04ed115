/**
 * Bundles (a remote client's config with the files it references): what the client packs, and
 * what the agent refuses from a hand-made one, with nothing written. The end-to-end create over
 * HTTPS with a bind mount and an env file is in remote-cli.test.ts.
 */
import test from 'ava';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { packBundle, removeStaleUploads, unpackBundle } from '../src/deploy/bundle.ts';
import { DepadError } from '../src/errors.ts';

async function tmp(t: import('ava').ExecutionContext): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'depad-bundle-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

const config = 'services:\n  web:\n    image: depad-example/app:1\n    env_file: [web.env]\n    volumes:\n      - ./static:/srv:ro\n';

test('the client packs the config, its env files and bind sources, and nothing else', async (t) => {
  const dir = await tmp(t);
  await fs.writeFile(path.join(dir, 'depad.yml'), config);
  await fs.writeFile(path.join(dir, 'web.env'), 'A=1\n');
  await fs.mkdir(path.join(dir, 'static', 'img'), { recursive: true });
  await fs.writeFile(path.join(dir, 'static', 'index.html'), 'hi');
  await fs.writeFile(path.join(dir, 'static', 'img', 'x.png'), Buffer.from([1, 2, 3]));
  await fs.writeFile(path.join(dir, 'private-key.pem'), 'not referenced');
  const bundle = await packBundle(path.join(dir, 'depad.yml'), {});
  t.deepEqual(bundle.files.map((f) => f.path).sort(), ['depad.yml', 'static/img/x.png', 'static/index.html', 'web.env']);
  const out = await tmp(t);
  const unpacked = await unpackBundle(out, bundle);
  t.is(await fs.readFile(path.join(path.dirname(unpacked.configFile), 'static', 'img', 'x.png'), 'hex'), '010203');
  t.is((await fs.stat(path.dirname(unpacked.configFile))).mode & 0o777, 0o700);
  await unpacked.remove();
  t.deepEqual(await fs.readdir(out), []);
});

test('a link out of the config directory is refused by the client', async (t) => {
  const dir = await tmp(t);
  const outside = await tmp(t);
  await fs.writeFile(path.join(outside, 'secret'), 'x');
  await fs.writeFile(path.join(dir, 'depad.yml'), config);
  await fs.writeFile(path.join(dir, 'web.env'), 'A=1\n');
  await fs.symlink(outside, path.join(dir, 'static'));
  const error = await t.throwsAsync(packBundle(path.join(dir, 'depad.yml'), {}));
  t.regex(error!.message, /\.\/static leads outside .* \(through a link\)/);
});

test('hand-made bundles with traversal, absolute paths, clashes or bad data are refused, nothing written', async (t) => {
  const out = await tmp(t);
  const file = (p: string, data = 'eA==') => ({ path: p, mode: 0o644, data });
  const cases: Array<[string, unknown, RegExp]> = [
    ['traversal', { config: 'depad.yml', files: [file('depad.yml'), file('../escape')] }, /"\.\." segment/],
    ['traversal inside', { config: 'depad.yml', files: [file('depad.yml'), file('a/../../b')] }, /"\.\." segment/],
    ['absolute', { config: 'depad.yml', files: [file('depad.yml'), file('/etc/cron.d/x')] }, /is absolute/],
    ['backslash', { config: 'depad.yml', files: [file('depad.yml'), file('..\\x')] }, /backslash/],
    ['file and directory', { config: 'depad.yml', files: [file('depad.yml'), file('a'), file('a/b')] }, /clashes with a/],
    ['twice', { config: 'depad.yml', files: [file('depad.yml'), file('depad.yml')] }, /clashes/],
    ['not base64', { config: 'depad.yml', files: [file('depad.yml', '!!!')] }, /not base64/],
    ['config missing', { config: 'other.yml', files: [file('depad.yml')] }, /is not among its files/],
    ['not a bundle', 'hello', /expected \{config, files\}/],
  ];
  for (const [title, bundle, says] of cases) {
    const error = await t.throwsAsync(unpackBundle(out, bundle), undefined, title);
    t.true(error instanceof DepadError && error.code === 'DEPAD_USAGE', title);
    t.regex(error!.message, says, title);
    t.regex(error!.message, /nothing was written/, title);
  }
  t.deepEqual(await fs.readdir(out), [], 'nothing was written');
});

test('a build context travels less what its .dockerignore leaves out; one outside the config directory does not', async (t) => {
  const dir = await tmp(t);
  await fs.mkdir(path.join(dir, 'app', 'node_modules'), { recursive: true });
  await fs.writeFile(path.join(dir, 'depad.yml'), 'services:\n  web:\n    build: ./app\n  other:\n    build: ../elsewhere\n');
  await fs.writeFile(path.join(dir, 'app', 'Dockerfile'), 'FROM depad-example/app:1\nCOPY . /src\n');
  await fs.writeFile(path.join(dir, 'app', '.dockerignore'), 'node_modules\n*.log\n');
  await fs.writeFile(path.join(dir, 'app', 'main.js'), '1');
  await fs.writeFile(path.join(dir, 'app', 'debug.log'), 'x');
  await fs.writeFile(path.join(dir, 'app', 'node_modules', 'big.js'), 'x');
  const bundle = await packBundle(path.join(dir, 'depad.yml'), {});
  t.deepEqual(bundle.files.map((f) => f.path).sort(), ['app/.dockerignore', 'app/Dockerfile', 'app/main.js', 'depad.yml']);
});

test('bundles left unpacked by a process that is gone (kill -9) are removed; a running one\'s stay', async (t) => {
  const out = await tmp(t);
  const live = await unpackBundle(out, { config: 'depad.yml', files: [{ path: 'depad.yml', mode: 0o644, data: 'eA==' }] });
  const dead = spawnSync('true').pid;
  await fs.mkdir(path.join(out, `${dead}-0123456789abcdef`));
  await fs.writeFile(path.join(out, `${dead}-0123456789abcdef`, 'web.env'), 'A=1\n');
  t.deepEqual(await removeStaleUploads(out), [`${dead}-0123456789abcdef`]);
  t.deepEqual(await fs.readdir(out), [path.basename(path.dirname(live.configFile))], 'this process\'s own bundle stays');
});
