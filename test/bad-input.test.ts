/**
 * Bad input through the real CLI: malformed configs and arguments. Each case asserts the exit
 * code, that the message names the place (file:line:column and key, or the argument), and that
 * the state did not change: the deployments, the engine's objects and the root directories.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import type { DeploymentView } from '../src/deploy/status.ts';
import { EXAMPLES, createHarness, engineObjects, type Harness } from './helpers/harness.ts';

const hello = path.join(EXAMPLES, 'hello/depad.yml');
let h: Harness;
let cleanup: () => Promise<void>;
let baseline: string;

/** Everything a failed command must leave as it was. */
async function snapshot(): Promise<string> {
  const ls = await h.run(['ls', '--json']);
  const records = (JSON.parse(ls.stdout) as DeploymentView[]).map(({ id, name, revision, desired, updatedAt, ports, rootDir }) => ({
    id, name, revision, desired, updatedAt, ports, rootDir,
  }));
  const roots = await fs.readdir(path.join(h.home, 'deployments')).catch(() => []);
  return JSON.stringify({ records, engine: await engineObjects(h.engine, h.prefix), roots: roots.sort() });
}

test.before(async () => {
  ({ h, cleanup } = await createHarness('bad-input', (m) => {
    throw new Error(m);
  }));
  const r = await h.run(['create', '-n', h.name('existing'), '-f', hello, '--no-wait']);
  if (r.code !== 0) throw new Error(r.stderr);
  baseline = await snapshot();
});
test.after.always(async () => cleanup?.());

const svc = (extra: string) => `services:\n  web:\n    image: depad-example/app:1\n${extra}`;

/** [title, config text (or undefined), extra args, exit code, pattern the stderr must match]. */
const configCases: Array<[string, string, readonly string[], number, RegExp]> = [
  ['tab indentation', 'services:\n\tweb:\n    image: x\n', [], 3, /cfg\.yml:2:1\b.*[Tt]ab/],
  ['duplicate key', svc('    image: depad-example/app:2\n'), [], 3, /cfg\.yml:4:5\b.*[Dd]uplicate/],
  ['unclosed flow list', svc('    ports: ["8080"\n'), [], 3, /cfg\.yml:\d+:\d+/],
  ['top level is a list', '- web\n- db\n', [], 3, /cfg\.yml:1:1/],
  ['empty file', '', [], 3, /cfg\.yml:1:1.*services/],
  ['unknown top-level key', `${svc('')}bogus:\n  a: {}\n`, [], 3, /cfg\.yml:4:1 bogus: unknown key/],
  ['misspelt top-level key', `${svc('')}volume:\n  a: {}\n`, [], 3, /cfg\.yml:4:1 volume: unknown key 'volume' at the top level; did you mean 'volumes'\?/],
  ['unknown service key', svc('    privilegd: true\n'), [], 3, /cfg\.yml:4:5 services\.web\.privilegd: unknown key 'privilegd'/],
  ['host access refused', svc('    privileged: true\n'), [], 3, /cfg\.yml:4:17 services\.web\.privileged: privileged mode .*depad agent --allow privileged, or "allow": \["privileged"\] in .*host-policy\.json/],
  ['build on the host network', 'services:\n  web:\n    build:\n      network: host\n', [], 3, /cfg\.yml:4:16 services\.web\.build\.network: network: host .*depad refuses it/],
  ['host ranges of different lengths', svc('    ports: ["9090-9092:8080-8081"]\n'), [], 3, /cfg\.yml:4:13 services\.web\.ports\[0\]: .*two ranges must be as long/],
  ['port out of range', svc('    ports: ["70000"]\n'), [], 3, /cfg\.yml:4:13 services\.web\.ports\[0\]/],
  ['undeclared named volume', svc('    volumes: ["data:/data"]\n'), [], 3, /cfg\.yml:4:15 services\.web\.volumes\[0\]: .*data/],
  ['absolute bind mount', svc('    volumes: ["/etc:/host-etc"]\n'), [], 3, /cfg\.yml:4:15 services\.web\.volumes\[0\]: .*inside the deployment's root/],
  ['bind mount escaping with ..', svc('    volumes: ["./../../etc:/x"]\n'), [], 3, /cfg\.yml:4:15 services\.web\.volumes\[0\]: "\.\/\.\.\/\.\.\/etc" leaves the config file's directory: .*--allow-host-path \//],
  ['unknown dependency', svc('    depends_on: [db]\n'), [], 3, /cfg\.yml:4:18 services\.web\.depends_on\[0\]: .*db/],
  [
    'dependency cycle',
    'services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n',
    [],
    3,
    /cfg\.yml:\d+:\d+ services\.[ab]\.depends_on.*cycle/,
  ],
  ['bad memory limit', svc('    deploy:\n      resources:\n        limits:\n          memory: lots\n'), [], 3, /cfg\.yml:7:19 services\.web\.deploy\.resources\.limits\.memory/],
  ['bad health interval', svc('    healthcheck:\n      test: ["CMD", "true"]\n      interval: soon\n'), [], 3, /cfg\.yml:6:17 services\.web\.healthcheck\.interval/],
  ['reserved depad label', svc('    labels:\n      depad.service: other\n'), [], 3, /cfg\.yml:5:\d+ services\.web\.labels\["depad\.service"\]: .*reserved/],
  ['external network', `${svc('    networks: [shared]\n')}networks:\n  shared:\n    external: true\n`, [], 3, /cfg\.yml:7:5 networks\.shared\.external: external network shared .*--allow external-network:shared/],
  ['bad service name', 'services:\n  "W b":\n    image: x\n', [], 3, /cfg\.yml:2:3 services\["W b"\]: /],
  ['missing required variable', svc('    environment:\n      DB_PASSWORD: ${DB_PASSWORD:?set the database password}\n'), [], 3, /cfg\.yml:5:20 services\.web\.environment\.DB_PASSWORD: required variable DB_PASSWORD is not set: set the database password/],
  ['unclosed ${', svc('    environment:\n      A: ${OOPS\n'), [], 3, /cfg\.yml:5:10 services\.web\.environment\.A/],
  ['env_file outside the config dir', svc('    env_file: ../secrets.env\n'), [], 3, /cfg\.yml:4:15 services\.web\.env_file/],
  ['bad restart policy', svc('    restart: sometimes\n'), [], 3, /cfg\.yml:4:14 services\.web\.restart/],
  ['missing image on the engine', 'services:\n  web:\n    image: depad-test/not-here:1\n', [], 6, /cfg\.yml:3:12 services\.web\.image: image depad-test\/not-here:1 is not on this host/],
];

for (const [title, text, args, code, pattern] of configCases) {
  test.serial(`config: ${title}`, async (t) => {
    const file = path.join(h.dir, 'cfg.yml');
    await fs.writeFile(file, text);
    const r = await h.run(['create', '-n', h.name('bad'), '-f', file, ...args]);
    t.is(r.code, code, r.stderr);
    t.regex(r.stderr, pattern);
    t.is(await snapshot(), baseline, 'state unchanged');
  });
}

/** [title, args (may use {cfg}, {existing}, {dir}), exit code, pattern]. */
const argCases: Array<[string, readonly string[], number, RegExp]> = [
  ['create without --name or name:', ['create', '-f', '{hello}'], 2, /no deployment name: give -n NAME, or a top-level name: in /],
  ['uppercase name', ['create', '-n', 'Mercy', '-f', '{hello}'], 2, /invalid deployment name "Mercy"/],
  ['name too long', ['create', '-n', 'a'.repeat(64), '-f', '{hello}'], 2, /64 characters \(at most 63\)/],
  ['name with a slash', ['create', '-n', '../etc', '-f', '{hello}'], 2, /invalid deployment name "\.\.\/etc"/],
  ['name taken', ['create', '-n', '{existing}', '-f', '{hello}'], 5, /a deployment named .* already exists/],
  ['config file missing', ['create', '-n', '{new}', '-f', '{dir}/nope.yml'], 3, /nope\.yml/],
  ['--env without =', ['create', '-n', '{new}', '-f', '{hello}', '--env', 'JUSTAKEY'], 2, /--env.*JUSTAKEY/],
  ['--env with a bad key', ['create', '-n', '{new}', '-f', '{hello}', '--env', '1BAD=x'], 2, /1BAD/],
  ['--env-file missing', ['create', '-n', '{new}', '-f', '{hello}', '--env-file', '{dir}/missing.env'], 3, /missing\.env/],
  ['--env-file with a bad line', ['create', '-n', '{new}', '-f', '{hello}', '--env-file', '{dir}/bad.env'], 3, /bad\.env:2:\d+/],
  ['unknown --pull policy', ['create', '-n', '{new}', '-f', '{hello}', '--pull', 'sometimes'], 2, /sometimes/],
  ['unknown deployment', ['start', 'no-such-deployment'], 4, /no deployment named or with ID "no-such-deployment"/],
  ['unknown service', ['restart', '{existing}', '-s', 'nope'], 4, /has no service "nope"/],
  ['logs --tail not a number', ['logs', '{existing}', '--tail', 'lots'], 2, /--tail takes a number/],
  ['unknown command', ['deploy', 'x'], 2, /unknown command 'deploy'/],
  ['unknown option', ['ls', '--everything'], 2, /unknown option '--everything'/],
];

for (const [title, rawArgs, code, pattern] of argCases) {
  test.serial(`arguments: ${title}`, async (t) => {
    await fs.writeFile(path.join(h.dir, 'bad.env'), 'GOOD=1\nthis line is not an assignment\n');
    const args = rawArgs.map((a) =>
      a.replace('{hello}', hello).replace('{existing}', h.name('existing')).replace('{new}', h.name('new')).replace('{dir}', h.dir),
    );
    const r = await h.run(args);
    t.is(r.code, code, r.stderr);
    t.regex(r.stderr, pattern);
    t.is(await snapshot(), baseline, 'state unchanged');
  });
}

test.serial('errors are JSON on stderr with --json', async (t) => {
  const r = await h.run(['start', 'no-such-deployment', '--json']);
  t.is(r.code, 4);
  t.is(r.stdout, '');
  const body = JSON.parse(r.stderr) as { error: { code: string; hint: string } };
  t.is(body.error.code, 'DEPAD_NOT_FOUND');
  t.regex(body.error.hint, /depad ls/);
});
