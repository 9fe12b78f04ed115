/**
 * Reaching a remote agent through SSH (`--host ssh://user@host[:port][/home]`): an SSH connection
 * (ssh2) with the user's keys or ssh-agent, the host key checked against ~/.ssh/known_hosts (an
 * unknown or changed key is refused, as OpenSSH does with StrictHostKeyChecking), then a stream to
 * the agent's unix socket on that host. No port beyond SSH's is needed; whoever may open the
 * agent's socket there acts as its administrator.
 */
import { SYSTEM_HOME, agentSocketPath } from '../home.ts';
import { createHmac } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { DepadError } from '../errors.ts';

/** Where an SSH-reached agent is. */
export interface SshTarget {
  host: string;
  port: number;
  username: string;
  /** The agent's socket on that host. */
  socketPath: string;
}

/** Parses `ssh://user@host[:port][/depad-home]` (home default /var/lib/depad). */
export function parseSshUrl(url: URL): SshTarget {
  if (url.protocol !== 'ssh:' || url.search || url.hash || url.password) throw new DepadError('DEPAD_USAGE', `an SSH agent address is ssh://user@host[:port][/depad-home]: ${url.href}`);
  const home = decodeURIComponent(url.pathname) || SYSTEM_HOME;
  if (!path.isAbsolute(home) || home.split('/').includes('..')) throw new DepadError('DEPAD_USAGE', `the depad home in ${url.href} must be an absolute path`);
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: Number(url.port || 22),
    username: decodeURIComponent(url.username) || os.userInfo().username,
    socketPath: agentSocketPath(home === '/' ? SYSTEM_HOME : home),
  };
}

/** The host key lines of known_hosts that name `host` on `port` (plain or hashed entries). */
export function knownKeys(text: string, host: string, port: number): Buffer[] {
  const name = port === 22 ? host : `[${host}]:${port}`;
  const keys: Buffer[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith('@')) continue;
    const [hosts, , key] = line.split(/\s+/);
    if (hosts === undefined || key === undefined) continue;
    const matches = hosts.split(',').some((h) => {
      if (!h.startsWith('|1|')) return h === name;
      const [, , salt, hash] = h.split('|');
      return salt !== undefined && hash !== undefined && createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
    });
    if (matches) keys.push(Buffer.from(key, 'base64'));
  }
  return keys;
}

/** The private key to offer: DEPAD_SSH_KEY, else the first of ~/.ssh/id_ed25519, id_ecdsa, id_rsa. */
function privateKey(env: NodeJS.ProcessEnv): Buffer | undefined {
  const candidates = env.DEPAD_SSH_KEY ? [env.DEPAD_SSH_KEY] : ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => path.join(os.homedir(), '.ssh', f));
  const file = candidates.find((f) => existsSync(f));
  return file === undefined ? undefined : readFileSync(file);
}

/** Opens an SSH connection to `target` and a stream to its agent socket; `close()` ends both. */
export async function openAgentStream(target: SshTarget, env: NodeJS.ProcessEnv = process.env): Promise<{ stream: Duplex; close: () => void }> {
  const { Client } = await import('ssh2');
  const knownHostsFile = env.DEPAD_KNOWN_HOSTS ?? path.join(os.homedir(), '.ssh', 'known_hosts');
  const known = existsSync(knownHostsFile) ? knownKeys(readFileSync(knownHostsFile, 'utf8'), target.host, target.port) : [];
  const where = `${target.username}@${target.host}:${target.port}`;
  if (known.length === 0) {
    throw new DepadError('DEPAD_TLS_PIN_MISMATCH', `${target.host} (port ${target.port}) is not in ${knownHostsFile}`, {
      hint: `check its host key, then add it: ssh-keyscan -p ${target.port} ${target.host} >> ${knownHostsFile}`,
    });
  }
  const key = privateKey(env);
  const conn = new Client();
  let hostKeyRefused = false;
  await new Promise<void>((resolve, reject) => {
    conn.once('ready', () => resolve());
    conn.once('error', (error) =>
      reject(
        hostKeyRefused
          ? new DepadError('DEPAD_TLS_PIN_MISMATCH', `the host key of ${target.host} does not match ${knownHostsFile}`, { hint: 'someone may be in between; if the host was reinstalled, fix known_hosts' })
          : new DepadError('DEPAD_AGENT_UNAVAILABLE', `no SSH session to ${where}: ${error.message}`, { cause: error, hint: 'check the address, your keys (or ssh-agent) and that the user may log in' }),
      ),
    );
    conn.connect({
      host: target.host,
      port: target.port,
      username: target.username,
      ...(key === undefined ? {} : { privateKey: key }),
      ...(env.SSH_AUTH_SOCK ? { agent: env.SSH_AUTH_SOCK } : {}),
      readyTimeout: 10_000,
      hostVerifier: (presented: Buffer) => {
        const ok = known.some((k) => k.equals(presented));
        hostKeyRefused = !ok;
        return ok;
      },
    });
  });
  const stream = await new Promise<Duplex>((resolve, reject) => {
    conn.openssh_forwardOutStreamLocal(target.socketPath, (error, channel) => {
      if (error) {
        conn.end();
        reject(new DepadError('DEPAD_AGENT_UNAVAILABLE', `no agent answers on ${target.socketPath} at ${where}: ${error.message}`, { cause: error, hint: 'is depad agent running there, and may this user open its socket?' }));
      } else resolve(channel);
    });
  });
  return { stream, close: () => conn.end() };
}
