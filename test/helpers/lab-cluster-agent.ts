/**
 * The depad agent of a cluster lab host (see lab-cluster.ts): started detached in the host's
 * namespace through nsenter (it outlives `scripts/lab up`), its output appended to
 * <run>/agent.log; killed and started again for tests of an agent's death; reached from the root
 * namespace by the CLI with the host's API URL, token and CA fingerprint.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { DEPAD } from './harness.ts';
import { hostLayout, readState, until, writeState, type ClusterHost, type ClusterState } from './lab-cluster-layout.ts';
import { processStart, run } from './lab-proc.ts';

/** The agent's arguments on host i: API on 0.0.0.0:8443 (its address in the certificate), proxy HTTP on 80, TCP routes on 0.0.0.0. */
export function agentArgs(address: string, extra: readonly string[] = []): string[] {
  return ['--json', 'agent', '--api-port', '8443', '--api-host', '0.0.0.0', '--hostname', address, '--http-port', '80', '--http-host', '0.0.0.0', '--tcp-host', '0.0.0.0', ...extra];
}

/** Starts `depad <args>` on host i of cluster `id`, detached; resolves with its pid and CA fingerprint once it listens. */
export async function spawnAgent(id: number, i: number, dockerHost: string, args: readonly string[]): Promise<{ pid: number; fingerprint: string }> {
  const h = hostLayout(id, i);
  const agentLog = path.join(h.place.run, 'agent.log');
  const from = (await fs.stat(agentLog).catch(() => undefined))?.size ?? 0;
  const fd = openSync(agentLog, 'a', 0o600);
  try {
    const child = spawn('nsenter', [`--net=/var/run/netns/${h.netnsName}`, '--', DEPAD, ...args], { env: hostEnv(dockerHost, h.home), stdio: ['ignore', fd, fd], detached: true });
    child.on('error', () => undefined);
    child.unref();
  } finally {
    closeSync(fd);
  }
  return until(`${h.name}: the agent to listen (log ${agentLog})`, 60_000, async () => {
    const line = (await fs.readFile(agentLog)).subarray(from).toString('utf8').split('\n').find((l) => l.startsWith('{"listening"'));
    return line ? (JSON.parse(line) as { listening: { pid: number; fingerprint: string } }).listening : undefined;
  });
}

/** Kills a host's agent (SIGKILL: a crash; SIGTERM: a stop) and waits until it is gone (30 s). */
export async function stopHostAgent(host: ClusterHost, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  try {
    process.kill(host.agentPid, signal);
  } catch {
    return; // gone already
  }
  await until(`${host.name}: the agent (pid ${host.agentPid}) to exit`, 30_000, async () => (processStart(host.agentPid) === undefined ? true : undefined));
}

/** Starts a host's agent again with the arguments it had; records the new pid in the state file; returns the host. */
export async function startHostAgent(state: ClusterState, name: string): Promise<ClusterHost> {
  const host = state.hosts.find((h) => h.name === name);
  if (!host) throw new Error(`no host ${name} in the lab`);
  const { pid } = await spawnAgent(state.id, Number(name.slice(5)), host.dockerHost, host.agentArgs);
  host.agentPid = pid;
  const saved = await readState(state.id);
  if (saved) await writeState({ ...saved, hosts: saved.hosts.map((h) => (h.name === name ? { ...h, agentPid: pid } : h)) });
  await until(`${name}: the agent to answer at ${host.apiUrl}`, 60_000, async () => ((await agentAnswers(host)) ? true : undefined));
  return host;
}

/** depad's environment on a host. */
export function hostEnv(dockerHost: string, home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: dockerHost, DEPAD_HOME: home, DEPAD_PORT_RANGE: '20000-29999' };
  for (const k of ['DEPAD_HOST', 'DEPAD_TOKEN', 'DEPAD_CA_FINGERPRINT', 'DEPAD_CONTEXT', 'DOCKER_CONTEXT']) delete env[k];
  return env;
}

/** The environment for the CLI in the root namespace to reach a host's agent (token in the environment, not in ps). */
export function clientEnv(host: ClusterHost): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, DEPAD_HOST: host.apiUrl, DEPAD_TOKEN: host.token, DEPAD_CA_FINGERPRINT: host.fingerprint };
  delete env.DEPAD_CONTEXT;
  return env;
}

/** Whether the host's agent answers `depad ls` over HTTPS from the root namespace. */
export async function agentAnswers(host: ClusterHost): Promise<boolean> {
  return (await run(DEPAD, ['--json', 'ls'], { env: clientEnv(host), timeoutMs: 15_000 })).code === 0;
}

