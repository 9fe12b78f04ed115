/**
 * The cluster lab's names, addresses and state file (see lab-cluster.ts); pure but for reading and
 * writing the state file.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DATA_ROOT, RUN_ROOT, type LabPlace } from './lab-host.ts';

/** The most hosts one cluster has (their addresses are .11 to .26). */
export const MAX_HOSTS = 16;

/** One host as the state file records it. */
export interface ClusterHost {
  /** host-<i>. */
  name: string;
  /** /var/run/netns/<namespace>. */
  netns: string;
  /** Its address on the bridge. */
  address: string;
  /** DOCKER_HOST of its engine (a unix socket). */
  dockerHost: string;
  /** Its DEPAD_HOME. */
  home: string;
  /** The agent's pid. */
  agentPid: number;
  /** https://<address>:8443. */
  apiUrl: string;
  /** The agent's CA fingerprint (SHA-256), for --ca-fingerprint. */
  fingerprint: string;
  /** An admin token of that host's agent. */
  token: string;
  /** Labels given to `up` for this host. */
  labels: Record<string, string>;
  /** The agent's arguments after `depad` (startHostAgent starts it again with them). */
  agentArgs: string[];
}

/** The state file. */
export interface ClusterState {
  /** 0 for scripts/lab; 1…9 for tests. */
  id: number;
  bridge: string;
  subnet: string;
  /** The bridge's address in the root namespace. */
  gateway: string;
  /** ISO time `up` finished. */
  createdAt: string;
  hosts: ClusterHost[];
}

/** How a cluster is made. */
export interface LabClusterOptions {
  /** Labels per host, in host order (fewer entries than hosts: the rest have none). */
  labels?: Record<string, string>[];
  /** Images of the machine's engine to load into every host; default every depad-example/* image. */
  images?: string[];
  /** Progress lines. */
  log?: (line: string) => void;
  /** More arguments for each host's agent (after the lab's own), by host number (1…n). */
  agentArgs?: (i: number) => string[];
}

/** Names and addresses of cluster `id`; pure. */
export function clusterLayout(id: number) {
  const base = id === 0 ? 'cluster' : `cluster-${id}`;
  const runDir = path.join(RUN_ROOT, base);
  return {
    id,
    bridge: `depadlab${id}`,
    subnet: `10.251.${id}.0/24`,
    gateway: `10.251.${id}.1`,
    run: runDir,
    data: path.join(DATA_ROOT, base),
    stateFile: path.join(runDir, 'cluster.json'),
    netnsPrefix: id === 0 ? 'depad-host-' : `depad-c${id}-host-`,
    vethPrefix: `dlc${id}h`,
    rule: `depad-lab-cluster-${id}`,
  };
}

/** Host i of cluster `id`; pure. */
export function hostLayout(id: number, i: number) {
  const c = clusterLayout(id);
  const place: LabPlace = { run: path.join(c.run, `host-${i}`), data: path.join(c.data, `host-${i}`) };
  const k = i - 1;
  return {
    name: `host-${i}`,
    netnsName: `${c.netnsPrefix}${i}`,
    address: `10.251.${id}.${10 + i}`,
    veth: `${c.vethPrefix}${i}`,
    place,
    home: path.join(place.data, 'home'),
    // Inside the host's own namespace; distinct per host all the same, for readable `docker network inspect`s.
    pool: `base=10.${252 + Math.floor(k / 4)}.${(k % 4) * 64}.0/18,size=24`,
  };
}

/** Parses `--labels 'k=v,k=v;k=v'`: one `;`-separated group per host. */
export function parseLabels(text: string): Record<string, string>[] {
  return text.split(';').map((group, index) => {
    const labels: Record<string, string> = {};
    for (const pair of group.split(',').map((p) => p.trim()).filter(Boolean)) {
      const m = /^([A-Za-z0-9][A-Za-z0-9._/-]*)=([A-Za-z0-9._-]*)$/.exec(pair);
      if (!m) throw new Error(`--labels: host ${index + 1}: "${pair}" is not key=value (letters, digits, . _ - /)`);
      labels[m[1]!] = m[2]!;
    }
    return labels;
  });
}

/** Reads a cluster's state file, or undefined when there is none. */
export async function readState(id: number): Promise<ClusterState | undefined> {
  const text = await fs.readFile(clusterLayout(id).stateFile, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : (JSON.parse(text) as ClusterState);
}

/** Writes a cluster's state file (mode 0600: it holds tokens), whole or not at all. */
export async function writeState(state: ClusterState): Promise<void> {
  const file = clusterLayout(state.id).stateFile;
  await fs.writeFile(`${file}.tmp`, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  await fs.rename(`${file}.tmp`, file);
}

/** Polls `probe` until it gives a value; throws at the deadline. */
export async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}
