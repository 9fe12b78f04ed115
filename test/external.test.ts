/**
 * External networks and volumes (`external: true`) and bind sources that leave the config's
 * directory (`../dir`): host access, refused by default naming the flag and the policy-file line.
 * Fast config-level checks, then against the real engine through bin/depad: allowed by
 * <home>/host-policy.json or the agent's --allow, the containers join and mount the real objects
 * (docker inspect), destroy leaves them; a missing one fails before anything is made.
 * The external objects are made here with a depad-test label and a unique name, and removed after, pass or fail.
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startAgent } from './helpers/agent-process.ts';
import { engineObjects, harness, testPorts } from './helpers/harness.ts';
import { parseConfig } from '../src/config/index.ts';
import { parseAllowName, policyFromFlags, specHostAccessProblems } from '../src/config/host-access.ts';
import { render } from '../src/render/render.ts';
import { packBundle } from '../src/deploy/bundle.ts';
import { ConfigError } from '../src/errors.ts';
import { normalizedCompose } from '../src/config/normalize.ts';
import { assertRemoteConfig } from '../src/deploy/update-target.ts';

const web = (extra: string) => `services:\n  web:\n    image: depad-example/app:1\n    command: ["sleep", "3600"]\n${extra}`;
const externals = (vol: string, net: string) =>
  web(`    volumes: ["data:/data"]\n    networks:\n      shared:\n        aliases: [api]\n`) + `volumes:\n  data:\n    external: true\n    name: ${vol}\nnetworks:\n  shared:\n    external: true\n    name: ${net}\n`;
const ID = '0123456789abcdef0123456789abcdef';

function docker(args: string[]): string {
  return execFileSync('docker', args, { encoding: 'utf8' }).trim();
}

/** A volume and a network made outside depad (labelled depad-test), removed after the test, pass or fail. Call before harness(t): teardowns run last-in first-out, so this one runs after the deployments are gone. */
function externalObjects(t: ExecutionContext): { volume: string; network: string } {
  const id = randomBytes(4).toString('hex');
  const made = { volume: `depadtest-ext-${id}-vol`, network: `depadtest-ext-${id}-net` };
  t.teardown(() => {
    for (const args of [['volume', 'rm', made.volume], ['network', 'rm', made.network]]) {
      try {
        execFileSync('docker', args, { stdio: 'ignore' });
      } catch {
        // not made, or already gone
      }
    }
  });
  return made;
}

function make(o: { volume: string; network: string }): void {
  docker(['volume', 'create', '--label', 'depad-test=1', o.volume]);
  docker(['network', 'create', '--label', 'depad-test=1', o.network]);
}

test('config: external objects refused by default naming the flag; allowed by name or *; the plan joins and mounts them by their real name', (t) => {
  const text = externals('shared-data', 'shared-net');
  const refused = t.throws(() => parseConfig(text, '/tmp/x/depad.yml', {}, { policy: policyFromFlags([], []) }), { instanceOf: ConfigError });
  t.regex(refused.message, /depad\.yml:\d+:5 volumes\.data\.external: external volume shared-data is not the deployment's own.*depad agent --allow external-volume:shared-data, or "allow": \["external-volume:shared-data"\]/);
  t.regex(refused.message, /networks\.shared\.external: external network shared-net .*--allow external-network:shared-net/);

  for (const allow of [['external-volume:shared-data', 'external-network:shared-net'], ['external-volume:*', 'external-network:*']]) {
    const spec = parseConfig(text, '/tmp/x/depad.yml', {}, { policy: policyFromFlags(allow, []) });
    t.is(spec.volumes.data?.external, 'shared-data');
    t.is(spec.networks.shared?.external, 'shared-net');
    const plan = render(spec, { id: ID, name: 'x', revision: 1, rootDir: '/tmp/x/root', domain: 'localhost' }, []);
    t.deepEqual(plan.volumes, [], 'never created');
    t.deepEqual(plan.networks, [], 'never created');
    t.deepEqual(plan.external, { networks: ['shared-net'], volumes: ['shared-data'] });
    const c = plan.containers[0]!;
    t.deepEqual(c.body.HostConfig.Mounts.map((m) => m.Source), ['shared-data']);
    t.is(c.body.HostConfig.NetworkMode, 'shared-net');
    t.deepEqual(c.endpoints, [{ network: 'shared-net', aliases: ['web', 'api'] }]);
    t.regex(plan.compose, /shared:\n {4}external: true\n {4}name: shared-net/);
    const normal = normalizedCompose(spec) as { volumes: unknown; networks: unknown };
    t.deepEqual([normal.volumes, normal.networks], [{ data: { external: true, name: 'shared-data' } }, { shared: { external: true, name: 'shared-net' } }]);
  }
  // Without name: the key is the engine-side name (as compose has it).
  const byKey = parseConfig(web('    volumes: ["cache:/c"]\n') + 'volumes:\n  cache:\n    external: true\n', '/tmp/x/depad.yml', {}, { policy: policyFromFlags(['external-volume:cache'], []) });
  t.is(byKey.volumes.cache?.external, 'cache');
  // The default network can be external too: every service without networks: joins it.
  const dflt = parseConfig(web('') + 'networks:\n  default:\n    external: true\n    name: lan\n', '/tmp/x/depad.yml', {}, { policy: policyFromFlags(['external-network:lan'], []) });
  const dplan = render(dflt, { id: ID, name: 'x', revision: 1, rootDir: '/tmp/x/root', domain: 'localhost' }, []);
  t.deepEqual([dplan.networks, dplan.containers[0]!.body.HostConfig.NetworkMode], [[], 'lan']);
  // A stored revision under a narrower policy.
  t.deepEqual(specHostAccessProblems(parseConfig(text, '/tmp/x/depad.yml', {}, { policy: policyFromFlags(['external-volume:*', 'external-network:*'], []) }), policyFromFlags(['external-network:shared-net'], [])), [
    'volumes.data: external-volume:shared-data (--allow external-volume:shared-data)',
  ]);
});

test('config: external with keys that do not apply, a bad name, and bad --allow values', (t) => {
  const policy = policyFromFlags(['external-volume:*', 'external-network:*'], []);
  const err = t.throws(() => parseConfig(web('') + 'volumes:\n  data:\n    external: true\n    driver: local\nnetworks:\n  n:\n    external: true\n    name: "bad name"\n', '/tmp/x/depad.yml', {}, { policy }), { instanceOf: ConfigError });
  t.regex(err.message, /depad\.yml:8:5 volumes\.data\.driver: driver does not apply to an external volume: depad neither creates nor changes it/);
  t.regex(err.message, /networks\.n\.name: "bad name" is not a network name the engine takes/);
  t.is(parseAllowName('external-volume:pg_data.1'), 'external-volume:pg_data.1');
  t.is(parseAllowName('EXTERNAL-NETWORK:Front'), 'external-network:Front', 'the name keeps its case');
  t.throws(() => parseAllowName('external-volume:a/b'), { message: /after external-volume: comes the engine-side name/ });
  t.throws(() => parseAllowName('external-volume:'), { message: /after external-volume: comes the engine-side name/ });
  t.throws(() => parseAllowName('everything'), { message: /one of: privileged, .*external-volume:NAME, external-network:NAME/ });
  // The deprecated form external: {name: …}, with a warning, as compose has it.
  const warnings: string[] = [];
  const legacy = parseConfig(web('    volumes: ["data:/d"]\n') + 'volumes:\n  data:\n    external: {name: old-data}\n', '/tmp/x/depad.yml', {}, { policy, warn: (w) => warnings.push(w.message) });
  t.is(legacy.volumes.data?.external, 'old-data');
  t.deepEqual(warnings, ['external: {name: old-data} is deprecated in compose; write external: true and name: old-data']);
  // external: false is a volume of the deployment's own.
  const own = parseConfig(web('    volumes: ["data:/d"]\n') + 'volumes:\n  data:\n    external: false\n', '/tmp/x/depad.yml', {});
  t.is(own.volumes.data?.external, undefined);
});

test('config: ../dir bind sources are host paths resolved against the config file, refused naming the exact flag, never bundled', async (t) => {
  const text = web('    volumes:\n      - ../backend:/srv:ro\n      - type: bind\n        source: ./x/../../other\n        target: /o\n');
  const refused = t.throws(() => parseConfig(text, '/tmp/proj/app/depad.yml', {}, { policy: policyFromFlags([], []) }), { instanceOf: ConfigError });
  t.regex(refused.message, /depad\.yml:6:9 services\.web\.volumes\[0\]: "\.\.\/backend" leaves the config file's directory: it is \/tmp\/proj\/backend, a path on the host.*depad agent --allow-host-path \/tmp\/proj\/backend:ro, or "hostPaths": \["\/tmp\/proj\/backend:ro"\]/);
  t.regex(refused.message, /services\.web\.volumes\[1\]\.source: "\.\/x\/\.\.\/\.\.\/other" leaves .*--allow-host-path \/tmp\/proj\/other[,;]/);

  const spec = parseConfig(text, '/tmp/proj/app/depad.yml', {}, { policy: policyFromFlags([], ['/tmp/proj']) });
  t.deepEqual(spec.services.web?.volumes.map((m) => [m.source, m.type === 'bind' && m.onHost, m.type === 'bind' && m.outside]), [['/tmp/proj/backend', true, '../backend'], ['/tmp/proj/other', true, './x/../../other']]);
  t.deepEqual(spec.files, [], 'nothing copied into the root');
  const plan = render(spec, { id: ID, name: 'x', revision: 1, rootDir: '/tmp/proj/root', domain: 'localhost' }, []);
  t.deepEqual(plan.containers[0]!.body.HostConfig.Mounts.map((m) => [m.Source, m.ReadOnly]), [['/tmp/proj/backend', true], ['/tmp/proj/other', false]]);
  // From a remote client (a bundle unpacked on the agent's host), refused whatever the policy.
  t.throws(() => assertRemoteConfig(spec, 'depad.yml', '/tmp/proj/app'), { message: /depad\.yml: bind mounts leave the config file's directory \(web: \.\.\/backend, web: \.\/x\/\.\.\/\.\.\/other\)/ });

  // A remote client's bundle never carries it.
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'depad-ext-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.mkdir(path.join(dir, 'app'));
  await fs.mkdir(path.join(dir, 'backend'));
  await fs.writeFile(path.join(dir, 'app', 'depad.yml'), web('    volumes: ["../backend:/srv"]\n'));
  await t.throwsAsync(packBundle(path.join(dir, 'app', 'depad.yml'), {}), { message: /bind mounts leave the config file's directory \(services\.web: \.\.\/backend\): a remote agent gets only the files beside the config/ });
});

test('script mode: external volume and network refused, then allowed by host-policy.json; the container uses the real objects; stop, start, update, rollback; destroy leaves them', async (t) => {
  const ext = externalObjects(t);
  const h = await harness(t);
  make(ext);
  docker(['run', '--rm', '-v', `${ext.volume}:/data`, 'depad-example/app:1', 'sh', '-c', 'echo kept > /data/hello.txt']);
  const file = path.join(h.dir, 'depad.yml');
  await fs.writeFile(file, externals(ext.volume, ext.network));
  const name = h.name('ext');

  const refused = await h.run(['create', '-n', name, '-f', file]);
  t.is(refused.code, 3, refused.stderr);
  t.regex(refused.stderr, new RegExp(`volumes\\.data\\.external: external volume ${ext.volume} .*--allow external-volume:${ext.volume}, or "allow": \\["external-volume:${ext.volume}"\\] in .*host-policy\\.json`));
  t.regex(refused.stderr, new RegExp(`networks\\.shared\\.external: .*--allow external-network:${ext.network}`));

  await fs.mkdir(h.home, { recursive: true });
  await fs.writeFile(path.join(h.home, 'host-policy.json'), JSON.stringify({ allow: [`external-volume:${ext.volume}`, `external-network:${ext.network}`] }));
  t.regex((await h.run(['policy', 'show'])).stdout, new RegExp(`allow\\s+external-network:${ext.network}, external-volume:${ext.volume}`));

  const created = await h.run(['create', '-n', name, '-f', file]);
  t.is(created.code, 0, created.stderr);
  const container = `depad-${name}-web-1`;
  const check = () => {
    const mounts = JSON.parse(docker(['inspect', '--format', '{{json .Mounts}}', container])) as { Type: string; Name?: string; Destination: string }[];
    t.deepEqual(mounts.map((m) => [m.Type, m.Name, m.Destination]), [['volume', ext.volume, '/data']]);
    const nets = JSON.parse(docker(['inspect', '--format', '{{json .NetworkSettings.Networks}}', container])) as Record<string, { Aliases: string[] | null }>;
    t.deepEqual(Object.keys(nets), [ext.network]);
    t.true(['web', 'api'].every((a) => nets[ext.network]?.Aliases?.includes(a)), JSON.stringify(nets));
    t.is(docker(['exec', container, 'cat', '/data/hello.txt']), 'kept');
  };
  check();
  const objects = await engineObjects(h.engine, h.prefix);
  t.deepEqual(objects.networks, [], 'no network of its own');
  t.deepEqual(objects.volumes, [], 'no volume of its own');

  const ls = await h.json<{ name: string; external?: boolean; usedBy?: string }[]>(['volumes', 'ls']);
  t.deepEqual(ls.map((v) => [v.name, v.external, v.usedBy]), [[ext.volume, true, name]]);
  t.regex((await h.run(['volumes', 'ls'])).stdout, new RegExp(`${ext.volume}\\s+\\(external\\)`));
  const rm = await h.run(['volumes', 'rm', '--yes', ext.volume]);
  t.not(rm.code, 0);
  t.regex(rm.stderr, new RegExp(`volume ${ext.volume} is external .*never removes it`));

  t.is((await h.run(['stop', name])).code, 0);
  const started = await h.run(['start', name]);
  t.is(started.code, 0, started.stderr);
  check();
  const current = () => docker(['ps', '--filter', `label=depad.deployment=${name}`, '--format', '{{.Names}}']);
  await fs.writeFile(file, externals(ext.volume, ext.network).replace('    command:', '    environment: {X: "1"}\n    command:'));
  const updated = await h.run(['update', name, '-f', file]);
  t.is(updated.code, 0, updated.stderr);
  t.is(docker(['exec', current(), 'sh', '-c', 'echo "x$X"; cat /data/hello.txt']), 'x1\nkept');
  const rolled = await h.run(['rollback', name]);
  t.is(rolled.code, 0, rolled.stderr);
  t.is(docker(['exec', current(), 'sh', '-c', 'echo "x$X"; cat /data/hello.txt']), 'x\nkept');

  const destroyed = await h.run(['destroy', name]);
  t.is(destroyed.code, 0, destroyed.stderr);
  t.is(docker(['volume', 'inspect', '--format', '{{.Name}}', ext.volume]), ext.volume, 'destroy left the volume');
  t.is(docker(['network', 'inspect', '--format', '{{.Name}}', ext.network]), ext.network, 'destroy left the network');
  t.is(docker(['run', '--rm', '-v', `${ext.volume}:/data`, 'depad-example/app:1', 'cat', '/data/hello.txt']), 'kept');
});

test('script mode: a missing external object is an error naming it and the fix, with nothing made', async (t) => {
  const ext = externalObjects(t);
  const h = await harness(t);
  docker(['network', 'create', '--label', 'depad-test=1', ext.network]);
  await fs.mkdir(h.home, { recursive: true });
  await fs.writeFile(path.join(h.home, 'host-policy.json'), JSON.stringify({ allow: ['external-volume:*', 'external-network:*'] }));
  const file = path.join(h.dir, 'depad.yml');
  await fs.writeFile(file, externals(ext.volume, ext.network));
  const name = h.name('miss');
  const failed = await h.run(['create', '-n', name, '-f', file]);
  t.is(failed.code, 4, failed.stderr);
  t.regex(failed.stderr, new RegExp(`the external volume ${ext.volume} does not exist on the engine.*docker volume create ${ext.volume}.*nothing was made`, 's'));
  t.deepEqual(await engineObjects(h.engine, h.prefix), { containers: [], networks: [], volumes: [] });
  t.deepEqual(await h.json(['ls']), []);
  t.throws(() => execFileSync('docker', ['volume', 'inspect', ext.volume], { stdio: 'ignore' }), undefined, 'not created');
});

test('script mode: a ../dir bind mount is refused naming --allow-host-path, then mounted from the host path when allowed', async (t) => {
  const h = await harness(t);
  const app = path.join(h.dir, 'app');
  const backend = path.join(h.dir, 'backend');
  await fs.mkdir(app);
  await fs.mkdir(backend);
  await fs.writeFile(path.join(backend, 'hello.txt'), 'from beside\n');
  const file = path.join(app, 'depad.yml');
  await fs.writeFile(file, web('    volumes: ["../backend:/srv:ro"]\n'));
  const name = h.name('up');
  const refused = await h.run(['create', '-n', name, '-f', file]);
  t.is(refused.code, 3, refused.stderr);
  t.regex(refused.stderr, new RegExp(`depad\\.yml:5:15 services\\.web\\.volumes\\[0\\]: "\\.\\./backend" leaves the config file's directory: it is ${backend}, a path on the host.*--allow-host-path ${backend}:ro`));

  await fs.mkdir(h.home, { recursive: true });
  await fs.writeFile(path.join(h.home, 'host-policy.json'), JSON.stringify({ hostPaths: [`${backend}:ro`] }));
  const created = await h.run(['create', '-n', name, '-f', file]);
  t.is(created.code, 0, created.stderr);
  const container = `depad-${name}-web-1`;
  const mounts = JSON.parse(docker(['inspect', '--format', '{{json .Mounts}}', container])) as { Type: string; Source: string; Destination: string; RW: boolean }[];
  t.deepEqual(mounts.map((m) => [m.Type, m.Source, m.Destination, m.RW]), [['bind', backend, '/srv', false]]);
  t.is(docker(['exec', container, 'cat', '/srv/hello.txt']), 'from beside');
  t.is((await h.run(['destroy', name])).code, 0);
  t.is(await fs.readFile(path.join(backend, 'hello.txt'), 'utf8'), 'from beside\n', 'destroy leaves the host files');
});

test('agent: --allow external-network:NAME holds for a deploy token, which gets no more; a remote ../dir is refused', async (t) => {
  const ext = externalObjects(t);
  const h = await harness(t);
  make(ext);
  const port = await testPorts(t);
  const name = h.name('agt');
  const ci = (await h.run(['token', 'create', '--name', 'ci', '--scope', 'deploy', '-d', name])).stdout.trim();
  const admin = (await h.run(['token', 'create', '--name', 'admin', '--scope', 'admin'])).stdout.trim();
  const agent = await startAgent(t, h, port, ['--allow', `external-network:${ext.network}`]);
  const flags = ['--home', path.join(h.dir, 'client-home'), '--host', `https://127.0.0.1:${agent.facts.apiPort}`, '--ca-fingerprint', agent.facts.fingerprint];
  const client = (args: string[], token = ci) => h.run([...flags, ...args], { env: { DEPAD_TOKEN: token, XDG_CONFIG_HOME: path.join(h.dir, 'client-config') } });

  // The volume is not allowed: refused for the token, naming the flag.
  const both = path.join(h.dir, 'both.yml');
  await fs.writeFile(both, externals(ext.volume, ext.network));
  const refused = await client(['create', '-n', name, '-f', both]);
  t.is(refused.code, 3, refused.stderr);
  t.regex(refused.stderr, new RegExp(`volumes\\.data\\.external: .*depad agent --allow external-volume:${ext.volume}`));
  t.notRegex(refused.stderr, /networks\.shared\.external/);

  const netOnly = path.join(h.dir, 'net.yml');
  await fs.writeFile(netOnly, web('    networks: [shared]\n') + `networks:\n  shared:\n    external: true\n    name: ${ext.network}\n`);
  const created = await client(['create', '-n', name, '-f', netOnly]);
  t.is(created.code, 0, created.stderr);
  const nets = JSON.parse(docker(['inspect', '--format', '{{json .NetworkSettings.Networks}}', `depad-${name}-web-1`])) as Record<string, unknown>;
  t.deepEqual(Object.keys(nets), [ext.network]);
  t.regex((await h.run(['policy', 'show'])).stdout, new RegExp(`allow\\s+external-network:${ext.network}`));

  // ../dir from a remote client: refused by the client before anything is sent (never bundled).
  await fs.mkdir(path.join(h.dir, 'app'));
  await fs.writeFile(path.join(h.dir, 'app', 'depad.yml'), web('    volumes: ["../backend:/srv"]\n'));
  const up = await client(['update', name, '-f', path.join(h.dir, 'app', 'depad.yml')]);
  t.is(up.code, 3, up.stderr);
  t.regex(up.stderr, /bind mounts leave the config file's directory \(services\.web: \.\.\/backend\)/);

  t.is((await client(['destroy', name], admin)).code, 0);
  t.is(docker(['network', 'inspect', '--format', '{{.Name}}', ext.network]), ext.network, 'destroy left the network');
});
