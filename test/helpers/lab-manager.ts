/**
 * A cluster manager over a lab cluster (lab-cluster.ts): `depad manager` in the root namespace on
 * the bridge's address, an admin token of its own, and every lab host's agent started again with
 * `--join` (a one-time token each, its lab labels, `--capacity` if given). After that the agents
 * rejoin by themselves: `startHostAgent` restarts one without `--join`.
 */
import type { ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { DEPAD, type Run } from './harness.ts';
import { spawnAgent, stopHostAgent } from './lab-cluster-agent.ts';
import { clusterLayout, until, writeState, type ClusterState } from './lab-cluster-layout.ts';
import { processStart, run } from './lab-proc.ts';

/** The manager of a lab cluster. */
export interface LabManager {
  home: string;
  url: string;
  fingerprint: string;
  token: string;
  child: ChildProcess;
  /** The CLI in the root namespace against the manager (its admin token unless `token`). */
  run(args: readonly string[], options?: { token?: string; timeoutMs?: number }): Promise<Run>;
  /** Kills the manager (SIGKILL) and starts it again on the same home and port. */
  restart(): Promise<void>;
  kill(): Promise<void>;
}

const PORT = 9443;

/** `depad manager` for a lab: its own home, on the bridge's address (also in its certificate). */
function managerArgs(home: string, address: string): string[] {
  return ['--json', '--home', home, 'manager', '--api-port', String(PORT), '--api-host', address, '--hostname', address];
}

async function startManagerProcess(t: ExecutionContext, home: string, address: string): Promise<{ child: ChildProcess; fingerprint: string }> {
  const child = spawn(DEPAD, managerArgs(home, address), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DEPAD_HOME: home } });
  t.teardown(() => void (child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')));
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const fingerprint = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{"listening"'));
      if (line) resolve((JSON.parse(line) as { listening: { fingerprint: string } }).listening.fingerprint);
    });
    child.once('exit', (code) => reject(new Error(`manager exited ${code}: ${err}`)));
  });
  return { child, fingerprint };
}

/** An admin token of the manager at `home` (through `local`), then every lab host's agent started again joined to `url`. */
async function joinHosts(state: ClusterState, local: (args: readonly string[]) => Promise<Run>, url: string, capacity: (string | undefined)[] = [], count = state.hosts.length): Promise<string> {
  const token = (JSON.parse((await local(['token', 'create', '--name', 'admin', '--scope', 'admin'])).stdout) as { token: string }).token;
  for (const [i, host] of state.hosts.slice(0, count).entries()) {
    const join = (JSON.parse((await local(['manager', 'join-token'])).stdout) as { token: string }).token;
    await stopHostAgent(host);
    const labels = Object.entries(host.labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]);
    const offer = capacity[i];
    const { pid } = await spawnAgent(state.id, i + 1, host.dockerHost, [...host.agentArgs, '--join', url, '--join-token', join, '--name', host.name, '--advertise-address', host.address, ...labels, ...(offer ? ['--capacity', offer] : [])]);
    host.agentPid = pid;
  }
  return token;
}

/** Where `scripts/lab manager` keeps the detached manager's pid, log and admin token. */
export function labManagerFiles(id: number): { pid: string; log: string; token: string; home: string } {
  const c = clusterLayout(id);
  return { pid: path.join(c.run, 'manager.pid'), log: path.join(c.run, 'manager.log'), token: path.join(c.data, 'manager-token'), home: path.join(c.data, 'manager') };
}

/**
 * `scripts/lab manager`: a manager for the lab that outlives the command (detached; its log in the
 * lab's run directory; `scripts/lab down` stops it), every host's agent joined to it, the state file
 * updated with the agents' new pids; host i offers `capacity[i]` (`cpus=1,memory=1g`) where given.
 * Returns its URL, CA fingerprint and admin token (also kept, 0600).
 */
export async function startDetachedLabManager(state: ClusterState, capacity: (string | undefined)[] = []): Promise<{ url: string; fingerprint: string; token: string }> {
  const files = labManagerFiles(state.id);
  const address = clusterLayout(state.id).gateway;
  await fs.mkdir(files.home, { recursive: true, mode: 0o700 });
  const from = (await fs.stat(files.log).catch(() => undefined))?.size ?? 0;
  const fd = openSync(files.log, 'a', 0o600);
  try {
    const child = spawn(DEPAD, managerArgs(files.home, address), { env: { ...process.env, DEPAD_HOME: files.home }, stdio: ['ignore', fd, fd], detached: true });
    child.on('error', () => undefined);
    child.unref();
    await fs.writeFile(files.pid, `${child.pid}\n`, { mode: 0o600 });
  } finally {
    closeSync(fd);
  }
  const fingerprint = await until(`the manager to listen (log ${files.log})`, 60_000, async () => {
    const line = (await fs.readFile(files.log)).subarray(from).toString('utf8').split('\n').find((l) => l.startsWith('{"listening"'));
    return line ? (JSON.parse(line) as { listening: { fingerprint: string } }).listening.fingerprint : undefined;
  });
  const url = `https://${address}:${PORT}`;
  const local = (args: readonly string[]) => run(DEPAD, ['--json', ...args], { env: { ...process.env, DEPAD_HOME: files.home }, timeoutMs: 60_000 });
  const token = await joinHosts(state, local, url, capacity);
  await writeState(state);
  await fs.writeFile(files.token, `${token}\n`, { mode: 0o600 });
  return { url, fingerprint, token };
}

/** Stops the manager `scripts/lab manager` started for cluster `id`, if one runs (SIGTERM, then SIGKILL after 10 s). */
export async function stopDetachedLabManager(id: number): Promise<boolean> {
  const pid = Number((await fs.readFile(labManagerFiles(id).pid, 'utf8').catch(() => '')).trim());
  if (!(pid > 0)) return false;
  // Only a depad manager of this lab (the pid may have been reused since).
  const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  if (!cmdline.includes(labManagerFiles(id).home)) return false;
  process.kill(pid, 'SIGTERM');
  for (let waited = 0; waited < 10_000 && processStart(pid) !== undefined; waited += 200) await new Promise((r) => setTimeout(r, 200));
  if (processStart(pid) !== undefined) process.kill(pid, 'SIGKILL');
  return true;
}

/**
 * Starts a manager for `state` and joins its hosts to it: every one, or the first `hosts` (the
 * others keep standalone agents); `capacity[i]` (`cpus=2,memory=4g`) declares what host i offers.
 */
export async function joinLabCluster(t: ExecutionContext, state: ClusterState, options: { capacity?: (string | undefined)[]; hosts?: number } = {}): Promise<LabManager> {
  const address = clusterLayout(state.id).gateway;
  const home = path.join(clusterLayout(state.id).data, 'manager');
  await fs.mkdir(home, { recursive: true, mode: 0o700 });
  let { child, fingerprint } = await startManagerProcess(t, home, address);
  const url = `https://${address}:${PORT}`;
  const local = (args: readonly string[]) => run(DEPAD, ['--json', ...args], { env: { ...process.env, DEPAD_HOME: home }, timeoutMs: 60_000 });
  const joined = options.hosts ?? state.hosts.length;
  const token = await joinHosts(state, local, url, options.capacity, joined);
  const manager: LabManager = {
    home,
    url,
    fingerprint,
    token,
    child,
    run: (args, o = {}) => run(DEPAD, [...args], { env: { ...process.env, DEPAD_HOME: path.join(home, '..', 'client'), DEPAD_HOST: url, DEPAD_TOKEN: o.token ?? token, DEPAD_CA_FINGERPRINT: fingerprint }, timeoutMs: o.timeoutMs ?? 180_000 }),
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      await new Promise((resolve) => (child.once('exit', resolve), child.kill('SIGKILL')));
    },
    restart: async () => {
      await manager.kill();
      ({ child, fingerprint } = await startManagerProcess(t, home, address));
      manager.child = child;
    },
  };
  await until('every host to be ready at the manager', 60_000, async () => {
    const r = await manager.run(['--json', 'hosts']);
    const hosts = r.code === 0 ? (JSON.parse(r.stdout) as Array<{ state: string }>) : [];
    return hosts.length === joined && hosts.every((h) => h.state === 'ready') ? true : undefined;
  });
  return manager;
}
