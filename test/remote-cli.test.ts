/**
 * The CLI against a remote agent over HTTPS: a context saved with the pinned CA (and a token
 * file readable by its owner only), create with the config sent as text, ls, logs, update;
 * `--host` flags with a deploy token refused outside its scope; a wrong fingerprint; a config
 * with files beside it sent with them (a bundle). The client uses its own home and config directory, so only
 * the remote path can answer. The agent process and deployments are removed afterwards.
 */
import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { startAgent } from './helpers/agent-process.ts';
import { EXAMPLES, harness, testPorts } from './helpers/harness.ts';

test('remote CLI over HTTPS: contexts, config upload, scopes, pinning', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  const admin = (await h.run(['token', 'create', '--name', 'admin', '--scope', 'admin'])).stdout.trim();
  const name = h.name('far');
  const ci = (await h.run(['token', 'create', '--name', 'ci', '--scope', 'deploy', '-d', name])).stdout.trim();
  const agent = await startAgent(t, h, port);
  const url = `https://127.0.0.1:${agent.facts.apiPort}`;

  // The client: its own home (no local agent there) and its own config directory.
  const clientHome = path.join(h.dir, 'client-home');
  const configHome = path.join(h.dir, 'client-config');
  const client = (args: string[], env: Record<string, string> = {}) => h.run(['--home', clientHome, ...args], { env: { XDG_CONFIG_HOME: configHome, ...env } });

  const added = await client(['context', 'add', 'prod', '--agent', url, '--fingerprint', agent.facts.fingerprint, '--use'], { DEPAD_TOKEN: admin });
  t.is(added.code, 0, added.stderr);
  const contextsFile = path.join(configHome, 'depad', 'contexts.json');
  t.is((await fs.stat(contextsFile)).mode & 0o777, 0o600);
  const listed = await client(['context', 'ls']);
  t.regex(listed.stdout, /\*\s+prod\s+https:\/\/127\.0\.0\.1/);
  t.false(listed.stdout.includes(admin.slice(19)), 'no token in listings');

  const created = await client(['create', '-n', name, '-f', path.join(EXAMPLES, 'hello', 'depad.yml')]);
  t.is(created.code, 0, created.stderr);
  t.regex(created.stdout, /running/);
  t.regex(created.stderr, /^\s+\d+\.\ds {2}\S/m, 'progress streamed from the remote agent');
  const inspected = JSON.parse((await client(['--json', 'inspect', name])).stdout) as { revisions: { configFile: string }[] };
  t.is(path.basename(inspected.revisions[0]?.configFile ?? ''), 'depad.yml', 'the config travelled as text, under its name');
  t.deepEqual((JSON.parse((await client(['--json', 'ls'])).stdout) as { name: string }[]).map((d) => d.name), [name]);
  t.is((await client(['logs', name, '--tail', '2'])).code, 0);
  const updated = await client(['update', name, '-s', 'web', '--image', 'depad-example/app:2']);
  t.is(updated.code, 0, updated.stderr);

  // A config with files beside it (a bind mount, an env file) travels with them in a bundle.
  const project = path.join(h.dir, 'project');
  await fs.cp(path.join(EXAMPLES, 'clinic'), project, { recursive: true });
  await fs.writeFile(path.join(project, 'web.env'), 'GREETING=from-the-bundle\n');
  await fs.writeFile(path.join(project, 'depad.yml'), (await fs.readFile(path.join(project, 'depad.yml'), 'utf8')).replace('      DB_HOST: db\n', '      DB_HOST: db\n    env_file: [web.env]\n').replace('  worker:\n    image: depad-example/app:1\n', '  worker:\n    build: ./worker\n'));
  // The worker is built on the agent from a context that came in the bundle (.dockerignore honoured).
  await fs.mkdir(path.join(project, 'worker'));
  await fs.writeFile(path.join(project, 'worker', 'Dockerfile'), 'FROM depad-example/app:1\nCOPY . /bundle/\n');
  await fs.writeFile(path.join(project, 'worker', 'note.txt'), 'built from the bundle');
  await fs.writeFile(path.join(project, 'worker', 'private.key'), 'never sent');
  await fs.writeFile(path.join(project, 'worker', '.dockerignore'), '*.key\n');
  const files = h.name('files');
  const withFiles = await client(['create', '-n', files, '-f', path.join(project, 'depad.yml'), '-e', 'CLINIC=Far']);
  t.is(withFiles.code, 0, withFiles.stderr);
  const fview = JSON.parse((await h.run(['--json', 'inspect', files])).stdout) as { ports: { service: string; host: number }[] };
  const webPort = fview.ports.find((p) => p.service === 'web')!.host;
  const about = await fetch(`http://127.0.0.1:${webPort}/static/about.html`);
  t.regex(await about.text(), /Static files copied into each deployment/, 'the bind source came in the bundle');
  const container = `depad-${files}-web-1`;
  const env = await import('node:child_process').then((cp) => cp.execFileSync('docker', ['inspect', '-f', '{{json .Config.Env}}', container], { encoding: 'utf8' }));
  t.regex(env, /GREETING=from-the-bundle/, 'the env file came in the bundle');
  const built = await import('node:child_process').then((cp) => cp.execFileSync('docker', ['exec', `depad-${files}-worker-1`, 'ls', '/bundle'], { encoding: 'utf8' }));
  t.regex(built, /note\.txt/, 'the build context came in the bundle');
  t.notRegex(built, /private\.key/, 'less what its .dockerignore leaves out');
  t.deepEqual(await fs.readdir(path.join(h.home, 'uploads')).catch(() => []), [], 'the unpacked bundle is removed');
  t.is((await client(['destroy', files])).code, 0);
  // A bundle carries files, never the right to run commands on the agent's host.
  const steps = path.join(project, 'steps.yml');
  await fs.writeFile(steps, 'services:\n  web:\n    image: depad-example/app:1\nx-depad:\n  workflows:\n    seed:\n      steps:\n        - run: ./seed.sh\n');
  await fs.writeFile(path.join(project, 'seed.sh'), '#!/bin/sh\ntouch /tmp/pwned\n', { mode: 0o755 });
  const hostSteps = await client(['create', '-n', h.name('steps'), '-f', steps]);
  t.is(hostSteps.code, 3, hostSteps.stderr);
  t.regex(hostSteps.stderr, /has run: steps, which run commands on the agent's host/);

  // --host with a deploy token: its own deployment only, never destroy.
  const flags = ['--host', url, '--ca-fingerprint', agent.facts.fingerprint];
  t.is((await client([...flags, 'restart', name], { DEPAD_TOKEN: ci })).code, 0);
  const refused = await client([...flags, 'destroy', name], { DEPAD_TOKEN: ci });
  t.is(refused.code, 13);
  t.regex(refused.stderr, /may not destroy/);
  const wrongPin = await client(['--host', url, '--ca-fingerprint', 'AB'.repeat(32), 'ls'], { DEPAD_TOKEN: admin });
  t.is(wrongPin.code, 11);
  const noToken = await client([...flags, 'ls']);
  t.is(noToken.code, 2, 'a host without a token is a usage error');
  const badToken = await client([...flags, 'ls'], { DEPAD_TOKEN: `${ci.slice(0, -1)}x` });
  t.is(badToken.code, 13);

  t.is((await client(['destroy', name])).code, 0);
  t.is((await client(['context', 'use', 'local'])).code, 0);
  const local = await client(['--json', 'ls']);
  t.is(local.code, 0, local.stderr);
  t.deepEqual(JSON.parse(local.stdout), [], 'back on this host: the client home has no deployments');
  agent.child.kill('SIGTERM');
  t.is(await agent.exited, 0);
});

test('--host takes an agent address; a bare host name gets the hint that a cluster host to place on is --on-host', async (t) => {
  const h = await harness(t);
  const bare = await h.run(['create', '-n', h.name('x'), '-f', path.join(EXAMPLES, 'clinic/depad.yml'), '--host', 'eu-1'], { env: { DEPAD_TOKEN: 'unused' } });
  t.is(bare.code, 2, bare.stderr);
  t.regex(bare.stderr, /not an agent address: "eu-1"\n {2}hint: .*to place a create on the cluster host eu-1, pass --on-host eu-1/);
  const noToken = await h.run(['ls', '--host', 'https://127.0.0.1:1']);
  t.is(noToken.code, 2);
  t.regex(noToken.stderr, /--host https:\/\/127\.0\.0\.1:1 needs a token/);
  t.is((await h.run(['ls', '-q'])).stdout, '', 'nothing was made');
});
