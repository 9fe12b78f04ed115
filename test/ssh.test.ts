/**
 * The CLI reaching an agent through SSH (`--host ssh://user@host:port/home`) against a real
 * OpenSSH server started here on a loopback port (its own host key, authorized key and config):
 * commands go to the agent's unix socket through the SSH session; unknown or changed host keys are
 * refused. sshd, the agent and the deployment are removed afterwards.
 */
import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startAgent } from './helpers/agent-process.ts';
import { EXAMPLES, harness, testPorts } from './helpers/harness.ts';

const SSHD = '/usr/sbin/sshd';

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`sshd does not listen on ${port}`);
}

test('CLI through SSH to the agent socket; unknown and changed host keys refused', async (t) => {
  await fs.access(SSHD).catch(() => t.fail(`${SSHD} is missing: scripts/setup installs openssh-server`));
  const h = await harness(t);
  const port = await testPorts(t);
  const dir = path.join(h.dir, 'ssh');
  await fs.mkdir(dir, { mode: 0o700 });
  const keygen = (file: string) => execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file]);
  keygen(path.join(dir, 'host_key'));
  keygen(path.join(dir, 'other_host_key'));
  keygen(path.join(dir, 'user_key'));
  await fs.copyFile(path.join(dir, 'user_key.pub'), path.join(dir, 'authorized_keys'));
  const sshPort = port();
  await fs.writeFile(
    path.join(dir, 'sshd_config'),
    [
      `Port ${sshPort}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${path.join(dir, 'host_key')}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'StrictModes no',
      'UsePAM no',
      'AllowStreamLocalForwarding yes',
      'LogLevel ERROR',
    ].join('\n') + '\n',
  );
  await fs.mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const sshd = spawn(SSHD, ['-D', '-e', '-f', path.join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  t.teardown(() => void sshd.kill('SIGTERM'));
  await waitForPort(sshPort);
  const knownHosts = path.join(dir, 'known_hosts');
  await fs.writeFile(knownHosts, execFileSync('ssh-keyscan', ['-p', String(sshPort), '-t', 'ed25519', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'ignore'] }));

  const agent = await startAgent(t, h, port);
  const host = `ssh://root@127.0.0.1:${sshPort}${h.home}`;
  const clientEnv = { DEPAD_SSH_KEY: path.join(dir, 'user_key'), DEPAD_KNOWN_HOSTS: knownHosts, SSH_AUTH_SOCK: '', XDG_CONFIG_HOME: path.join(dir, 'config') };
  const client = (args: string[], env: Record<string, string> = {}) => h.run(['--home', path.join(dir, 'client-home'), '--host', host, ...args], { env: { ...clientEnv, ...env } });

  const name = h.name('ssh');
  const created = await client(['create', '-n', name, '-f', path.join(EXAMPLES, 'hello', 'depad.yml')]);
  t.is(created.code, 0, created.stderr);
  t.regex(created.stderr, /^\s+\d+\.\ds {2}\S/m, 'progress through the SSH session');
  const listed = await client(['--json', 'ls']);
  t.is(listed.code, 0, listed.stderr);
  t.deepEqual((JSON.parse(listed.stdout) as { name: string }[]).map((d) => d.name), [name]);

  const unknown = await client(['ls'], { DEPAD_KNOWN_HOSTS: path.join(dir, 'nothing') });
  t.is(unknown.code, 11);
  t.regex(unknown.stderr, /ssh-keyscan/);
  const otherKey = (await fs.readFile(path.join(dir, 'other_host_key.pub'), 'utf8')).split(' ').slice(0, 2).join(' ');
  await fs.writeFile(path.join(dir, 'wrong_known_hosts'), `[127.0.0.1]:${sshPort} ${otherKey}\n`);
  const changed = await client(['ls'], { DEPAD_KNOWN_HOSTS: path.join(dir, 'wrong_known_hosts') });
  t.is(changed.code, 11);
  t.regex(changed.stderr, /does not match/);

  t.is((await client(['destroy', name])).code, 0);
  agent.child.kill('SIGTERM');
  t.is(await agent.exited, 0);
});
