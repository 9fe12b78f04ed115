/** depad's data directory (`DEPAD_HOME`) and the paths inside it. */
import os from 'node:os';
import path from 'node:path';

/** The home of a depad run as root (a system agent): `/var/lib/depad`. */
export const SYSTEM_HOME = '/var/lib/depad';

/** Where depad keeps its state: `DEPAD_HOME`, else /var/lib/depad for root, else ~/.local/share/depad. */
export function resolveHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DEPAD_HOME) return path.resolve(env.DEPAD_HOME);
  if (process.getuid?.() === 0) return SYSTEM_HOME;
  const dataHome = env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
  return path.join(dataHome, 'depad');
}

/**
 * What the `depad.home` label of a home's engine objects holds: its absolute path. Two homes on
 * one engine tell their objects apart by it, and a wiped or restored home at the same path
 * recognises the objects it made before.
 */
export function homeIdentity(home: string): string {
  return path.resolve(home);
}

/** The LevelDB directory under a home. */
export function stateDir(home: string): string {
  return path.join(home, 'state');
}

/** The built-in proxy's own directory (route snapshot and control socket): `<home>/proxy`. */
export function proxyStateDir(home: string): string {
  return path.join(home, 'proxy');
}

/** The cluster manager's unix socket in its home (`depad manager`; the local administrator). */
export function managerSocketPath(home: string): string {
  return path.join(home, 'manager.sock');
}

/** The agent's unix socket (its API for local clients): `<home>/agent.sock`. */
export function agentSocketPath(home: string): string {
  return path.join(home, 'agent.sock');
}

/** The file the running agent writes its pid to. */
export function agentPidPath(home: string): string {
  return path.join(home, 'agent.pid');
}

/** The agent's TLS material (local CA, server certificate): `<home>/certs/agent`. */
export function agentTlsDir(home: string): string {
  return path.join(home, 'certs', 'agent');
}

/** The ACME account keys and the certificates the proxy serves over HTTPS. */
export function acmeDir(home: string): string {
  return path.join(home, 'certs', 'acme');
}

/** The root directory of one deployment: `<home>/deployments/<id>`. `id` is depad-generated hex. */
export function deploymentRoot(home: string, id: string): string {
  if (!/^[0-9a-f]{32}$/.test(id)) throw new Error(`not a deployment id: ${id}`);
  return path.join(home, 'deployments', id);
}
