/**
 * Host access by policy, against the real engine: refused by default with the flag and the policy
 * file line that would allow it; allowed by <home>/host-policy.json in script mode (an absolute bind
 * mount of a temp dir and privileged reach the engine: docker inspect); through the agent with
 * --allow / --allow-host-path, a deploy-scoped token gets what the policy allows and no more.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { startAgent } from './helpers/agent-process.ts';
import { harness, testPorts } from './helpers/harness.ts';
import { parseConfig } from '../src/config/index.ts';
import { policyFromFlags } from '../src/config/host-access.ts';
import { render } from '../src/render/render.ts';

const config = (extra: string) => `services:\n  web:\n    image: depad-example/app:1\n    command: ["sleep", "3600"]\n${extra}`;

function hostConfig(container: string): { PidMode: string; Privileged: boolean } {
  return JSON.parse(execFileSync('docker', ['inspect', '--format', '{{json .HostConfig}}', container], { encoding: 'utf8' })) as { PidMode: string; Privileged: boolean };
}

function binds(container: string): { Source: string; Destination: string; RW: boolean }[] {
  const mounts = JSON.parse(execFileSync('docker', ['inspect', '--format', '{{json .Mounts}}', container], { encoding: 'utf8' })) as { Type: string; Source: string; Destination: string; RW: boolean }[];
  return mounts.filter((m) => m.Type === 'bind').map(({ Source, Destination, RW }) => ({ Source, Destination, RW }));
}

test('script mode: refused by default naming the flag; <home>/host-policy.json allows, and it reaches the engine', async (t) => {
  const h = await harness(t);
  const shared = path.join(h.dir, 'shared');
  await fs.mkdir(shared);
  await fs.writeFile(path.join(shared, 'hello.txt'), 'from the host\n');
  const file = path.join(h.dir, 'depad.yml');
  await fs.writeFile(file, config(`    pid: host\n    volumes:\n      - ${shared}:/shared:ro\n`));

  const refused = await h.run(['create', '-n', h.name('no'), '-f', file]);
  t.is(refused.code, 3, refused.stderr);
  t.regex(refused.stderr, /depad\.yml:5:\d+ services\.web\.pid: pid: host shares the host's processes.*depad agent --allow pid:host, or "allow": \["pid:host"\] in .*host-policy\.json/);
  t.regex(refused.stderr, new RegExp(`services\\.web\\.volumes\\[0\\]: "${shared}" is a path on the host: .*--allow-host-path ${shared}:ro, or "hostPaths": \\["${shared}:ro"\\]`));

  await fs.mkdir(h.home, { recursive: true });
  await fs.writeFile(path.join(h.home, 'host-policy.json'), JSON.stringify({ allow: ['pid:host', 'privileged'], hostPaths: [`${shared}:ro`] }));
  const shown = await h.run(['policy', 'show']);
  t.is(shown.code, 0, shown.stderr);
  t.regex(shown.stdout, /allow\s+pid:host, privileged/);
  t.regex(shown.stdout, new RegExp(`host paths\\s+${shared}:ro`));

  const name = h.name('yes');
  const created = await h.run(['create', '-n', name, '-f', file]);
  t.is(created.code, 0, created.stderr);
  const container = `depad-${name}-web-1`;
  t.is(hostConfig(container).PidMode, 'host');
  t.deepEqual(binds(container), [{ Source: shared, Destination: '/shared', RW: false }]);
  t.is(execFileSync('docker', ['exec', container, 'cat', '/shared/hello.txt'], { encoding: 'utf8' }), 'from the host\n');

  // The policy says read-only: a read-write mount of the same path is refused, with what to add.
  await fs.writeFile(file, config(`    volumes:\n      - ${shared}:/shared\n`));
  const rw = await h.run(['update', name, '-f', file]);
  t.is(rw.code, 3, rw.stderr);
  t.regex(rw.stderr, new RegExp(`the host's policy allows ${shared} read-only only; add :ro`));

  // A narrower policy holds for the stored revision too: an image update of it is refused.
  await fs.writeFile(path.join(h.home, 'host-policy.json'), JSON.stringify({ hostPaths: [`${shared}:ro`] }));
  const narrowed = await h.run(['update', name, '-s', 'web', '--image', 'depad-example/app:2']);
  t.is(narrowed.code, 3, narrowed.stderr);
  t.regex(narrowed.stderr, /the host's policy does not allow what this revision uses: web: pid:host \(--allow pid:host\)/);

  // Bad agent flags are usage errors, before anything starts.
  const badFlag = await h.run(['agent', '--allow', 'everything']);
  t.is(badFlag.code, 2, badFlag.stderr);
  t.regex(badFlag.stderr, /unknown host access "everything"; one of: privileged, devices/);
  const relative = await h.run(['agent', '--allow-host-path', 'etc/localtime']);
  t.is(relative.code, 2, relative.stderr);
  t.regex(relative.stderr, /a host path must be absolute/);

  // A broken policy file is an error naming it.
  await fs.writeFile(path.join(h.home, 'host-policy.json'), JSON.stringify({ allow: ['everything'] }));
  const broken = await h.run(['policy', 'show']);
  t.is(broken.code, 3, broken.stderr);
  t.regex(broken.stderr, /host-policy\.json: unknown host access "everything"; one of: privileged, devices/);
});

test('agent: --allow and --allow-host-path hold for every caller; a deploy token gets no more', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  const shared = path.join(h.dir, 'shared');
  await fs.mkdir(shared);
  const name = h.name('pol');
  const ci = (await h.run(['token', 'create', '--name', 'ci', '--scope', 'deploy', '-d', name, '-d', h.name('dev')])).stdout.trim();
  const admin = (await h.run(['token', 'create', '--name', 'admin', '--scope', 'admin'])).stdout.trim();
  const agent = await startAgent(t, h, port, ['--allow', 'pid:host', '--allow', 'privileged', '--allow-host-path', `${shared}:ro`]);
  const clientHome = path.join(h.dir, 'client-home');
  const flags = ['--home', clientHome, '--host', `https://127.0.0.1:${agent.facts.apiPort}`, '--ca-fingerprint', agent.facts.fingerprint];
  const client = (args: string[], token: string) => h.run([...flags, ...args], { env: { DEPAD_TOKEN: token, XDG_CONFIG_HOME: path.join(h.dir, 'client-config') } });

  const file = path.join(h.dir, 'depad.yml');
  await fs.writeFile(file, config(`    pid: host\n    volumes:\n      - ${shared}:/shared:ro\n`));
  const created = await client(['create', '-n', name, '-f', file], ci);
  t.is(created.code, 0, created.stderr);
  const container = `depad-${name}-web-1`;
  t.is(hostConfig(container).PidMode, 'host');
  t.deepEqual(binds(container), [{ Source: shared, Destination: '/shared', RW: false }]);

  // What the policy does not allow is refused for the deploy token — and for an admin token too.
  const devices = path.join(h.dir, 'devices.yml');
  await fs.writeFile(devices, config('    devices: ["/dev/null:/dev/x"]\n'));
  for (const token of [ci, admin]) {
    const refused = await client(['create', '-n', h.name('dev'), '-f', devices], token);
    t.is(refused.code, 3, refused.stderr);
    t.regex(refused.stderr, /services\.web\.devices: .*depad agent --allow devices/);
  }
  const docker = path.join(h.dir, 'docker.yml');
  await fs.writeFile(docker, config('    volumes:\n      - /var/run/docker.sock:/var/run/docker.sock\n'));
  const sock = await client(['create', '-n', h.name('dev'), '-f', docker], ci);
  t.is(sock.code, 3, sock.stderr);
  t.regex(sock.stderr, /"\/var\/run\/docker\.sock" is a path on the host: .*--allow-host-path \/var\/run\/docker\.sock/);

  // A secret's file travels in the remote client's bundle; its value is printed nowhere.
  const withSecret = path.join(h.dir, 'remote-secret');
  await fs.mkdir(withSecret);
  await fs.writeFile(path.join(withSecret, 'pw.txt'), 'remote-value-9d1e');
  await fs.writeFile(path.join(withSecret, 'depad.yml'), config('    secrets: [pw]\n') + 'secrets:\n  pw: {file: ./pw.txt}\n');
  const sec = await client(['create', '-n', h.name('dev'), '-f', path.join(withSecret, 'depad.yml')], ci);
  t.is(sec.code, 0, sec.stderr);
  t.false(`${sec.stdout}${sec.stderr}`.includes('remote-value-9d1e'));
  t.is(execFileSync('docker', ['exec', `depad-${h.name('dev')}-web-1`, 'cat', '/run/secrets/pw'], { encoding: 'utf8' }), 'remote-value-9d1e');
  t.is((await client(['destroy', h.name('dev')], admin)).code, 0);

  // On the agent's host, the CLI applies the same policy (its file and the running agent's flags).
  const shown = await h.run(['policy', 'show']);
  t.regex(shown.stdout, /allow\s+pid:host, privileged/);
  t.is((await client(['destroy', name], admin)).code, 0);
  agent.child.kill('SIGTERM');
  await agent.exited;
  t.regex((await h.run(['policy', 'show'])).stdout, /allow\s+-/, 'the agent\'s flags went with it');
});

// This machine's engine cannot start privileged containers (it runs without every capability), so
// privileged and devices are checked in the plan the engine receives.
test('the plan: privileged, devices, security_opt and an absolute bind as the policy allows them', (t) => {
  const text = config('    privileged: true\n    devices: ["/dev/fuse"]\n    security_opt: ["seccomp:unconfined"]\n    cap_add: [SYS_ADMIN]\n    volumes: ["/etc/localtime:/etc/localtime:ro"]\n');
  const policy = policyFromFlags(['privileged', 'devices', 'security_opt:unconfined', 'cap_add:SYS_ADMIN'], ['/etc/localtime:ro']);
  const spec = parseConfig(text, '/tmp/x/depad.yml', {}, { policy });
  const rootDir = '/tmp/x/home/deployments/0123456789abcdef0123456789abcdef';
  const plan = render(spec, { id: '0123456789abcdef0123456789abcdef', name: 'x', revision: 1, rootDir, domain: 'localhost' }, []).containers[0]!;
  const host = plan.body.HostConfig;
  t.true(host.Privileged);
  t.deepEqual(host.Devices, [{ PathOnHost: '/dev/fuse', PathInContainer: '/dev/fuse', CgroupPermissions: 'rwm' }]);
  t.deepEqual(host.SecurityOpt, ['seccomp:unconfined']);
  t.deepEqual(host.CapAdd, ['SYS_ADMIN']);
  t.deepEqual(host.Mounts, [{ Type: 'bind', Source: '/etc/localtime', Target: '/etc/localtime', ReadOnly: true }]);
  const refused = t.throws(() => parseConfig(text, '/tmp/x/depad.yml', {}, { policy: policyFromFlags([], []) }));
  t.is((refused as unknown as { issues: unknown[] }).issues.length, 5, refused?.message);
});
