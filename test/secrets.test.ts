/**
 * secrets: and configs: against the real engine: a secret from a file, one from a variable (long
 * syntax with uid and mode) and a config with content and a target are readable in the container
 * at their paths with their modes; the host copies are 0600 (in a 0700 directory); the values are
 * in no output (create, inspect --json, ps, logs, diff, update, rollback) and in no file of the home
 * but the copies; an update with a changed secret swaps the service and rollback restores the
 * earlier value; destroy removes the copies. Refusals: external:, an undefined secret, a missing file.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { harness } from './helpers/harness.ts';

const FILE_VALUE = 'pw-from-file-7f3a9c';
const ENV_VALUE = 'key-from-env-51be02';
const NEW_VALUE = 'pw-changed-c0ffee';

const CONFIG = `services:
  web:
    image: depad-example/app:1
    command: ["sleep", "3600"]
    secrets:
      - db_password
      - source: api_key
        target: api
        uid: "1000"
        mode: 0400
    configs:
      - source: app_conf
        target: /etc/app.conf
        mode: 0444
secrets:
  db_password:
    file: ./db_password.txt
  api_key:
    environment: API_KEY
configs:
  app_conf:
    content: |
      greeting=\${GREETING}
`;

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(full)));
    else if (e.isFile()) out.push(full);
  }
  return out;
}

const inContainer = (container: string, script: string) => execFileSync('docker', ['exec', container, 'sh', '-c', script], { encoding: 'utf8' });

test('secrets and configs: mounted with their modes, 0600 on the host, never printed, restored by rollback', async (t) => {
  const h = await harness(t);
  const name = h.name('sec');
  const file = path.join(h.dir, 'depad.yml');
  await fs.writeFile(file, CONFIG);
  await fs.writeFile(path.join(h.dir, 'db_password.txt'), FILE_VALUE);
  const vars = ['-e', `API_KEY=${ENV_VALUE}`, '-e', 'GREETING=hello'];
  const outputs: string[] = [];
  const run = async (args: string[]) => {
    const r = await h.run(args);
    outputs.push(r.stdout, r.stderr);
    return r;
  };

  const created = await run(['create', '-n', name, '-f', file, ...vars]);
  t.is(created.code, 0, created.stderr);
  const c1 = `depad-${name}-web-1`;
  t.is(inContainer(c1, 'cat /run/secrets/db_password'), FILE_VALUE);
  t.is(inContainer(c1, 'cat /run/secrets/api'), ENV_VALUE);
  t.is(inContainer(c1, 'cat /etc/app.conf'), 'greeting=hello\n');
  t.is(inContainer(c1, 'stat -c "%a %u" /run/secrets/db_password /run/secrets/api /etc/app.conf'), '600 0\n400 1000\n444 0\n');
  const mounts = JSON.parse(execFileSync('docker', ['inspect', '--format', '{{json .Mounts}}', c1], { encoding: 'utf8' })) as { Destination: string; RW: boolean; Type: string }[];
  t.deepEqual(mounts.filter((m) => m.Type === 'bind').map((m) => [m.Destination, m.RW]).sort(), [['/etc/app.conf', false], ['/run/secrets/api', false], ['/run/secrets/db_password', false]]);

  const [deployment] = await fs.readdir(path.join(h.home, 'deployments'));
  const secretsDir = path.join(h.home, 'deployments', deployment!, 'secrets');
  t.is((await fs.stat(secretsDir)).mode & 0o777, 0o700);
  const copies = await fs.readdir(secretsDir);
  t.is(copies.length, 3);
  const modes = await Promise.all(copies.map(async (f) => (await fs.stat(path.join(secretsDir, f))).mode & 0o777));
  t.deepEqual(modes.sort(), [0o400, 0o444, 0o600]);
  const fromFile = copies.find((f) => f.endsWith('-u-g-0600'))!;
  t.is(await fs.readFile(path.join(secretsDir, fromFile), 'utf8'), FILE_VALUE);

  await run(['inspect', name]);
  await run(['--json', 'inspect', name]);
  await run(['ps', name]);
  await run(['logs', name, '--tail', '5']);

  // A changed secret: diff names it only; update swaps the service.
  await fs.writeFile(path.join(h.dir, 'db_password.txt'), NEW_VALUE);
  const diff = await run(['diff', name, '-f', file, ...vars]);
  t.is(diff.code, 0, diff.stderr);
  t.regex(diff.stdout, /web: new instance: secret db_password changed/);
  const updated = await run(['update', name, '-f', file, ...vars]);
  t.is(updated.code, 0, updated.stderr);
  t.is(inContainer(`depad-${name}-web-2`, 'cat /run/secrets/db_password'), NEW_VALUE);
  await run(['--json', 'history', name]);

  // Rollback: the earlier value, though the variable and the file are not given again.
  const rolled = await run(['rollback', name]);
  t.is(rolled.code, 0, rolled.stderr);
  const c3 = `depad-${name}-web-3`;
  t.is(inContainer(c3, 'cat /run/secrets/db_password'), FILE_VALUE);
  t.is(inContainer(c3, 'cat /run/secrets/api'), ENV_VALUE);

  // Other variables only (the current config): the secret's variable need not be given again.
  const vars2 = await run(['update', name, '-e', 'GREETING=bye']);
  t.is(vars2.code, 0, vars2.stderr);
  t.is(inContainer(`depad-${name}-web-4`, 'cat /run/secrets/api /etc/app.conf'), `${ENV_VALUE}greeting=bye\n`);
  // The config file gone (or changed): the copy kept with the revision is read, with its secrets' copies.
  const kept = inContainer(`depad-${name}-web-4`, 'cat /run/secrets/db_password');
  await fs.rename(file, `${file}.moved`);
  const noFile = await run(['update', name, '-e', 'GREETING=again']);
  await fs.rename(`${file}.moved`, file);
  t.is(noFile.code, 0, noFile.stderr);
  t.is(inContainer(`depad-${name}-web-5`, 'cat /run/secrets/db_password'), kept);

  // No value in any output, nor in any file of the home but the copies.
  for (const value of [FILE_VALUE, ENV_VALUE, NEW_VALUE]) {
    t.false(outputs.some((o) => o.includes(value)), `${value} printed`);
    for (const f of await filesUnder(h.home)) {
      if (path.dirname(f) === secretsDir) continue;
      t.false((await fs.readFile(f)).includes(value), `${value} in ${f}`);
    }
  }
  const rendered = await fs.readFile(path.join(h.home, 'deployments', deployment!, 'docker-compose.yml'), 'utf8');
  t.regex(rendered, /target: \/run\/secrets\/db_password\n\s+read_only: true/);

  t.is((await h.run(['destroy', name])).code, 0);
  t.is(await fs.stat(secretsDir).catch(() => undefined), undefined, 'the copies went with the root');
});

test('secrets: refused with the reason (external, undefined, missing file, content on a secret)', async (t) => {
  const h = await harness(t);
  const cases: [string, string, RegExp][] = [
    ['external', 'secrets:\n  s:\n    external: true\n', /secrets\.s\.external: external secrets are Swarm objects, which depad does not use; give the value with file: \.\/s\.txt or environment: VAR instead/],
    ['undefined', '', /services\.web\.secrets\[0\]: secret 's' is not defined; add it under the top-level secrets: key/],
    ['missing file', 'secrets:\n  s:\n    file: ./nope.txt\n', /secrets\.s\.file: secret file "nope\.txt" is missing or unreadable/],
    ['content on a secret', 'secrets:\n  s:\n    content: x\n', /secrets\.s\.content: unknown key 'content'/],
    ['unset variable', 'secrets:\n  s:\n    environment: NOT_GIVEN_X\n', /secrets\.s\.environment: variable NOT_GIVEN_X is not set/],
  ];
  for (const [what, top, pattern] of cases) {
    const file = path.join(h.dir, `${what.replace(/ /g, '-')}.yml`);
    await fs.writeFile(file, `services:\n  web:\n    image: depad-example/app:1\n    secrets: [s]\n${top}`);
    const r = await h.run(['create', '-n', h.name('bad'), '-f', file]);
    t.is(r.code, 3, `${what}: ${r.stderr}`);
    t.regex(r.stderr, pattern, what);
  }
  // A secret file that is a link out of the config directory.
  const outside = path.join(h.dir, '..', `${path.basename(h.dir)}-outside.txt`);
  await fs.writeFile(outside, 'x');
  t.teardown(() => fs.rm(outside, { force: true }));
  const sub = path.join(h.dir, 'linked');
  await fs.mkdir(sub);
  await fs.symlink(outside, path.join(sub, 's.txt'));
  await fs.writeFile(path.join(sub, 'depad.yml'), 'services:\n  web:\n    image: depad-example/app:1\n    secrets: [s]\nsecrets:\n  s:\n    file: ./s.txt\n');
  const linked = await h.run(['create', '-n', h.name('link'), '-f', path.join(sub, 'depad.yml')]);
  t.is(linked.code, 3, linked.stderr);
  t.regex(linked.stderr, /secrets\.s\.file: secret file "s\.txt": it leads outside .* \(through a link\)/);
});
