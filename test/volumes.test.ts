/**
 * `depad volumes ls|rm` against the real engine, through the real CLI, without and with an agent:
 * a volume kept by `destroy --keep-volumes` is listed as kept (with the deployment that made it),
 * one a live deployment uses as used by it; `rm` refuses a used volume, a volume depad did not
 * make and a missing one (all or none: nothing is removed), asks on a terminal, needs --yes
 * without one, and removes a kept volume. Through the agent the same, admin tokens only. The
 * volume made without depad's labels is removed in t.teardown; the harness removes depad's.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import type { VolumeView } from '../src/deploy/volumes.ts';
import { startAgent } from './helpers/agent-process.ts';
import { DEPAD, harness, testPorts, type Harness } from './helpers/harness.ts';

const docker = (...args: string[]) => execFileSync('docker', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
const volumeExists = (name: string) => docker('volume', 'ls', '-q', '--filter', `name=^${name}$`) === name;

/** A one-service config with a named volume (no health check: quick to make). */
async function config(h: Harness): Promise<string> {
  const file = path.join(h.dir, 'depad.yml');
  await fs.writeFile(file, 'services:\n  db:\n    image: depad-example/app:1\n    command: ["/app/bin/db"]\n    volumes:\n      - data:/data\nvolumes:\n  data: {}\n');
  return file;
}

/** Runs `depad` with stdin and stdout on a terminal (script(1)), typing `answer`. */
function onTerminal(h: Harness, args: string[], answer: string): { code: number; out: string } {
  const command = [DEPAD, ...args].map((a) => `'${a}'`).join(' ');
  try {
    const out = execFileSync('script', ['-qec', command, '/dev/null'], { input: `${answer}\n`, encoding: 'utf8', env: { ...process.env, DEPAD_HOME: h.home } });
    return { code: 0, out };
  } catch (error) {
    const e = error as { status: number; stdout: string };
    return { code: e.status, out: e.stdout };
  }
}

test('volumes ls and rm: kept and used volumes, refusals (all or none), confirmation; through the agent too, admin only', async (t) => {
  const h = await harness(t);
  const file = await config(h);
  const [gone, live, later] = [h.name('gone'), h.name('live'), h.name('later')];
  for (const name of [gone, live, later]) t.is((await h.run(['create', '-n', name, '-f', file])).code, 0);
  const goneId = (await h.json<{ id: string }>(['inspect', gone])).id;
  t.is((await h.run(['destroy', gone, '--keep-volumes'])).code, 0);
  t.is((await h.run(['destroy', later, '--keep-volumes'])).code, 0);
  const plain = `${h.prefix}-plain`;
  docker('volume', 'create', '--label', `depad-test.volumes=${h.prefix}`, plain);
  t.teardown(() => void (volumeExists(plain) && docker('volume', 'rm', plain)));

  const listed = await h.json<VolumeView[]>(['volumes', 'ls']);
  t.deepEqual(listed, [
    { name: `depad-${gone}_data`, deployment: gone, deploymentId: goneId, key: 'data' },
    { name: `depad-${later}_data`, deployment: later, deploymentId: listed[1]?.deploymentId as string, key: 'data' },
    { name: `depad-${live}_data`, deployment: live, deploymentId: listed[2]?.deploymentId as string, key: 'data', usedBy: live },
  ]);
  const human = await h.run(['volumes', 'ls']);
  t.regex(human.stdout, /^NAME\s+DEPLOYMENT\s+KEY\s+USED BY\n/);
  t.regex(human.stdout, new RegExp(`depad-${gone}_data\\s+${gone} \\(${goneId.slice(0, 12)}\\)\\s+data\\s+- \\(kept\\)\n`));
  t.regex(human.stdout, new RegExp(`depad-${live}_data\\s+${live} \\(\\w{12}\\)\\s+data\\s+${live}\n`));
  const sized = await h.json<VolumeView[]>(['volumes', 'ls', '--size']);
  t.true(sized.every((v) => typeof v.sizeBytes === 'number'), '--size measures them');

  // Refusals, all or none: a used volume, one depad did not make, a missing one.
  const used = await h.run(['volumes', 'rm', '--yes', `depad-${gone}_data`, `depad-${live}_data`]);
  t.is(used.code, 5, used.stderr);
  t.regex(used.stderr, new RegExp(`volume depad-${live}_data is used by deployment ${live}`));
  const foreign = await h.run(['volumes', 'rm', '--yes', plain]);
  t.is(foreign.code, 4, foreign.stderr);
  t.regex(foreign.stderr, /was not made by depad for .*: depad removes only its own/);
  t.is((await h.run(['volumes', 'rm', '--yes', `${h.prefix}-nothing`])).code, 4);
  const piped = await h.run(['volumes', 'rm', `depad-${gone}_data`]);
  t.is(piped.code, 2, piped.stderr);
  t.regex(piped.stderr, /stdin is not a terminal/);
  t.true(volumeExists(`depad-${gone}_data`) && volumeExists(`depad-${live}_data`) && volumeExists(plain), 'nothing removed');

  // On a terminal it asks: no keeps it, yes removes it.
  const no = onTerminal(h, ['volumes', 'rm', `depad-${gone}_data`], 'n');
  t.is(no.code, 2, no.out);
  t.regex(no.out, new RegExp(`remove volume depad-${gone}_data \\(the data in it is lost\\)\\? \\[y/N\\]`));
  t.true(volumeExists(`depad-${gone}_data`));
  const yes = onTerminal(h, ['volumes', 'rm', `depad-${gone}_data`], 'y');
  t.is(yes.code, 0, yes.out);
  t.regex(yes.out, new RegExp(`removed volume depad-${gone}_data`));
  t.false(volumeExists(`depad-${gone}_data`));

  // Through the agent: the same answers; over HTTPS, admin tokens only.
  const deployer = (await h.run(['token', 'create', '--name', 'ci', '--scope', 'deploy', '-d', live])).stdout.trim();
  const agent = await startAgent(t, h, await testPorts(t));
  const remote = (token: string) => ['--host', `https://127.0.0.1:${agent.facts.apiPort}`, '--ca-fingerprint', agent.facts.fingerprint, '--token', token];
  t.deepEqual((await h.json<VolumeView[]>(['volumes', 'ls'])).map((v) => [v.name, v.usedBy]), [[`depad-${later}_data`, undefined], [`depad-${live}_data`, live]]);
  const forbidden = await h.run([...remote(deployer), 'volumes', 'ls']);
  t.is(forbidden.code, 13, forbidden.stderr);
  t.is((await h.run(['volumes', 'rm', '--yes', `depad-${live}_data`])).code, 5);
  t.is((await h.run(['volumes', 'rm', '--yes', plain])).code, 4);
  t.is((await h.run(['volumes', 'rm', `depad-${later}_data`])).code, 2, 'needs --yes through the agent too');
  const removed = await h.run(['volumes', 'rm', '--yes', '--json', `depad-${later}_data`]);
  t.is(removed.code, 0, removed.stderr);
  t.deepEqual(JSON.parse(removed.stdout), { removed: [`depad-${later}_data`] });
  t.false(volumeExists(`depad-${later}_data`));
  t.true(volumeExists(`depad-${live}_data`) && volumeExists(plain));
});
