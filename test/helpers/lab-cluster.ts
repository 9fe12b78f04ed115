/**
 * The cluster lab (issue 15): N hosts on this machine, each a network namespace on one bridge with
 * its own containerd, dockerd (test/helpers/lab-engine.ts, startLabHost) and depad agent. Shared by
 * `scripts/lab` (lab-cluster-cli.ts) and tests (startLabCluster).
 *
 * Layout of cluster `id` (0 is `scripts/lab`'s, the one of /work/notes/cluster-design.md; tests
 * claim 1…9 so that they never meet a developer's lab or each other):
 * - bridge `depadlab<id>` with 10.251.<id>.1/24 in the root namespace; rules at the top of the
 *   root namespace's FORWARD and INPUT chains (comment `depad-lab-cluster-<id>`): frames between
 *   the bridge's ports are accepted (with br_netfilter loaded, bridged frames pass FORWARD, whose
 *   policy the machine's Docker sets to DROP), anything the hosts send beyond the bridge is
 *   dropped, and so is what they send to the root namespace's other addresses: lab traffic stays
 *   on the /24;
 * - host i (1…16): namespace `depad-host-<i>` (`depad-c<id>-host-<i>` for id > 0), veth
 *   `dlc<id>h<i>` on the bridge, eth0 10.251.<id>.<10+i>/24, default route via the bridge; files in
 *   /run/depad-lab/cluster[-<id>]/host-<i> and /tmp/depad-lab/cluster[-<id>]/host-<i> (DEPAD_HOME
 *   is its home/); the agent (API 0.0.0.0:8443 with the address in its certificate, proxy HTTP on
 *   0.0.0.0:80, TCP routes on 0.0.0.0, DEPAD_PORT_RANGE 20000-29999) started detached through
 *   nsenter, its output in <run>/agent.log; an admin token made with `depad token create` there;
 * - state: /run/depad-lab/cluster[-<id>]/cluster.json (mode 0600: it holds the tokens).
 *
 * The lab is owned by its state file, not by a process: `down` removes what the state names and,
 * by name, whatever a killed or failed `up` left (namespaces with the prefix, veths, the bridge,
 * the rules, the directories). The machine's engine and its containers are never touched.
 */
import type { ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEPAD } from './harness.ts';
import { startLabHost, type LabEngine } from './lab-engine.ts';
import { DATA_ROOT, destroyLab, labPaths, labProcesses, RUN_ROOT, type LabPlace } from './lab-host.ts';
import { must, ownerStamp, ping, run, stampAlive } from './lab-proc.ts';

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

/** The depad-example/* images of the machine's engine. */
export async function defaultImages(): Promise<string[]> {
  const out = await must('docker', ['images', '--format', '{{.Repository}}:{{.Tag}}', 'depad-example/*']);
  return [...new Set(out.split('\n').filter((l) => l && !l.endsWith(':<none>')))].sort();
}

/** Reads a cluster's state file, or undefined when there is none. */
export async function readState(id: number): Promise<ClusterState | undefined> {
  const text = await fs.readFile(clusterLayout(id).stateFile, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : (JSON.parse(text) as ClusterState);
}

/** What of cluster `id` is on the machine: namespaces, links, rules, directories, processes (empty: nothing). */
export async function clusterLeftovers(id: number): Promise<string[]> {
  const c = clusterLayout(id);
  const found: string[] = [];
  for (const ns of await fs.readdir('/var/run/netns').catch(() => [] as string[])) if (ns.startsWith(c.netnsPrefix)) found.push(`netns ${ns}`);
  const links = (await run('ip', ['-o', 'link', 'show'])).stdout.split('\n').map((l) => (l.split(': ')[1] ?? '').split('@')[0] ?? '');
  for (const link of links) if (link === c.bridge || link.startsWith(c.vethPrefix)) found.push(`link ${link}`);
  if ((await run('iptables-save', [])).stdout.includes(c.rule)) found.push(`iptables rules ${c.rule}`);
  for (const dir of [c.run, c.data]) if (await fs.lstat(dir).catch(() => undefined)) found.push(`dir ${dir}`);
  for (const host of await hostIndexes(id)) {
    const h = hostLayout(id, host);
    const pids = await labProcesses(h.netnsName, labPaths(h.netnsName, h.place));
    if (pids.length) found.push(`processes of ${h.name}: ${pids.join(' ')}`);
  }
  return found;
}

/** Host numbers that left a namespace or a directory. */
async function hostIndexes(id: number): Promise<number[]> {
  const c = clusterLayout(id);
  const found = new Set<number>();
  for (const ns of await fs.readdir('/var/run/netns').catch(() => [] as string[])) if (ns.startsWith(c.netnsPrefix)) found.add(Number(ns.slice(c.netnsPrefix.length)));
  for (const dir of [c.run, c.data]) for (const e of await fs.readdir(dir).catch(() => [] as string[])) if (/^host-\d+$/.test(e)) found.add(Number(e.slice(5)));
  return [...found].filter((n) => Number.isInteger(n) && n > 0).sort((a, b) => a - b);
}

/** The root namespace's rules of a cluster, each [chain, ...spec], inserted in this order at the top of their chain. */
function labRules(id: number): string[][] {
  const c = clusterLayout(id);
  const tag = ['-m', 'comment', '--comment', c.rule];
  return [
    ['FORWARD', '-i', c.bridge, '-o', c.bridge, ...tag, '-j', 'ACCEPT'],
    ['FORWARD', '-i', c.bridge, '!', '-o', c.bridge, ...tag, '-j', 'DROP'],
    ['INPUT', '-i', c.bridge, '!', '-d', c.subnet, ...tag, '-j', 'DROP'],
  ];
}

/**
 * Makes cluster `id` with `n` hosts and writes its state file. Refuses when anything of that
 * cluster is on the machine (a lab is up, or the leftovers of a killed one: `down` first). A
 * failure removes what it made, then throws.
 */
export async function upCluster(id: number, n: number, options: LabClusterOptions = {}): Promise<ClusterState> {
  if (!Number.isInteger(n) || n < 1 || n > MAX_HOSTS) throw new Error(`the number of hosts must be 1 to ${MAX_HOSTS} (got ${n})`);
  const labels = options.labels ?? [];
  if (labels.length > n) throw new Error(`--labels gives ${labels.length} hosts' labels for ${n} hosts`);
  const c = clusterLayout(id);
  const left = await clusterLeftovers(id);
  if (left.length > 0) {
    const state = await readState(id);
    const what = state ? `a lab of ${state.hosts.length} hosts is up since ${state.createdAt}` : `leftovers of a lab are on the machine (${left.slice(0, 3).join(', ')}${left.length > 3 ? ', …' : ''})`;
    throw new LabUpError(`${what}: run scripts/lab down first`);
  }
  const log = options.log ?? (() => undefined);
  try {
    const images = options.images ?? (await defaultImages());
    await fs.mkdir(c.run, { recursive: true, mode: 0o700 });
    await fs.mkdir(c.data, { recursive: true, mode: 0o711 });
    await must('ip', ['link', 'add', c.bridge, 'type', 'bridge']);
    await must('ip', ['addr', 'add', `${c.gateway}/24`, 'dev', c.bridge]);
    await must('ip', ['link', 'set', c.bridge, 'up']);
    const at: Record<string, number> = {};
    for (const [chain, ...rule] of labRules(id)) await must('iptables', ['-I', chain!, String((at[chain!] = (at[chain!] ?? 0) + 1)), ...rule]);
    log(`bridge ${c.bridge} ${c.gateway}/24; starting ${n} hosts (images: ${images.join(', ') || 'none'})`);
    const hosts = await Promise.all(Array.from({ length: n }, (_, k) => startHost(id, k + 1, labels[k] ?? {}, images, log)));
    const state: ClusterState = { id, bridge: c.bridge, subnet: c.subnet, gateway: c.gateway, createdAt: new Date().toISOString(), hosts };
    await fs.writeFile(c.stateFile, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
    return state;
  } catch (error) {
    log(`up failed; removing what it made`);
    await downCluster(id).catch((e: Error) => log(`removing: ${e.message}`));
    throw error;
  }
}

/** `up` refused: a lab (or its leftovers) is there. */
export class LabUpError extends Error {}

/** One host: its engine, its agent, its token; waits until the agent answers the CLI from the root namespace. */
async function startHost(id: number, i: number, labels: Record<string, string>, images: string[], log: (line: string) => void): Promise<ClusterHost> {
  const c = clusterLayout(id);
  const h = hostLayout(id, i);
  const started = Date.now();
  const lab = await startLabHost({ name: h.netnsName, place: h.place, bridge: c.bridge, veth: h.veth, address: h.address, gateway: c.gateway, prefixLength: 24, pool: h.pool }, { images });
  log(`${h.name}: engine up at ${h.address} (${Date.now() - started} ms)`);
  await fs.mkdir(h.home, { recursive: true, mode: 0o700 });
  const env = hostEnv(lab, h.home);
  const agentLog = path.join(h.place.run, 'agent.log');
  const fd = openSync(agentLog, 'a', 0o600);
  try {
    const args = ['--json', 'agent', '--api-port', '8443', '--api-host', '0.0.0.0', '--hostname', h.address, '--http-port', '80', '--http-host', '0.0.0.0', '--tcp-host', '0.0.0.0'];
    const child = spawn('nsenter', [`--net=${lab.netns}`, '--', DEPAD, ...args], { env, stdio: ['ignore', fd, fd], detached: true });
    child.on('error', () => undefined);
    child.unref();
  } finally {
    closeSync(fd);
  }
  const listening = await until(`${h.name}: the agent to listen (log ${agentLog})`, 60_000, async () => {
    const line = (await fs.readFile(agentLog, 'utf8')).split('\n').find((l) => l.startsWith('{"listening"'));
    return line ? (JSON.parse(line) as { listening: { pid: number; fingerprint: string } }).listening : undefined;
  });
  const made = await lab.exec(DEPAD, ['--json', 'token', 'create', '--name', 'lab-admin', '--scope', 'admin'], { env });
  if (made.code !== 0) throw new Error(`${h.name}: depad token create exited ${made.code}: ${made.stderr.trim()}`);
  const token = (JSON.parse(made.stdout) as { token: string }).token;
  const host: ClusterHost = {
    name: h.name,
    netns: lab.netns,
    address: h.address,
    dockerHost: lab.dockerHost,
    home: h.home,
    agentPid: listening.pid,
    apiUrl: `https://${h.address}:8443`,
    fingerprint: listening.fingerprint,
    token,
    labels,
  };
  await until(`${h.name}: the agent to answer at ${host.apiUrl}`, 60_000, async () => ((await agentAnswers(host)) ? true : undefined));
  log(`${h.name}: agent answers at ${host.apiUrl} (${Date.now() - started} ms)`);
  return host;
}

/** depad's environment on a host. */
function hostEnv(lab: Pick<LabEngine, 'dockerHost'>, home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: lab.dockerHost, DEPAD_HOME: home, DEPAD_PORT_RANGE: '20000-29999' };
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

/** Each host of a running cluster: does its engine answer, does its agent? */
export async function clusterStatus(id: number): Promise<{ state: ClusterState | undefined; hosts: (Pick<ClusterHost, 'name' | 'address' | 'apiUrl' | 'labels'> & { engine: boolean; agent: boolean })[] }> {
  const state = await readState(id);
  const hosts = await Promise.all(
    (state?.hosts ?? []).map(async (host) => ({
      name: host.name,
      address: host.address,
      apiUrl: host.apiUrl,
      labels: host.labels,
      engine: await ping(host.dockerHost.replace(/^unix:\/\//, '')),
      agent: await agentAnswers(host),
    })),
  );
  return { state, hosts };
}

/**
 * Removes everything of cluster `id`: each host (processes, containers, mounts, namespace, veth,
 * files), the bridge, the rules, the directories — what the state file names and whatever has
 * the cluster's names. Idempotent; returns what it removed.
 */
export async function downCluster(id: number): Promise<string[]> {
  const c = clusterLayout(id);
  const removed: string[] = [];
  const problems: string[] = [];
  const state = await readState(id).catch(() => undefined);
  const indexes = new Set([...(state?.hosts ?? []).map((h) => Number(h.name.slice(5))), ...(await hostIndexes(id))]);
  for (const link of (await run('ip', ['-o', 'link', 'show'])).stdout.split('\n').map((l) => (l.split(': ')[1] ?? '').split('@')[0] ?? '')) {
    if (link.startsWith(c.vethPrefix)) indexes.add(Number(link.slice(c.vethPrefix.length)));
  }
  await Promise.all(
    [...indexes].filter((i) => Number.isInteger(i) && i > 0).map(async (i) => {
      const h = hostLayout(id, i);
      await destroyLab(h.netnsName, { paths: labPaths(h.netnsName, h.place), veth: h.veth }).then(
        () => removed.push(h.name),
        (e: Error) => problems.push(e.message),
      );
    }),
  );
  for (const [chain, ...rule] of labRules(id)) while ((await run('iptables', ['-D', chain!, ...rule])).code === 0) removed.push(`rule ${chain} ${rule.at(-1)}`);
  if ((await run('ip', ['link', 'del', c.bridge])).code === 0) removed.push(`bridge ${c.bridge}`);
  for (const dir of [c.run, c.data]) {
    if (!(await fs.lstat(dir).catch(() => undefined))) continue;
    await fs.rm(dir, { recursive: true, force: true, maxRetries: 3 }).then(
      () => removed.push(dir),
      (e: Error) => problems.push(e.message),
    );
  }
  const left = await clusterLeftovers(id);
  if (problems.length > 0 || left.length > 0) throw new Error(`lab cluster ${id} not fully removed: ${[...problems, ...left].join('; ')}`);
  return removed.sort();
}

const CLAIMS = path.join(RUN_ROOT, '.clusters');
/** Cluster ids tests claim (0 is scripts/lab's). */
const TEST_IDS = [1, 2, 3, 4, 5, 6, 7, 8, 9];

/**
 * Starts a cluster of `n` hosts for test `t` on a cluster id of its own (claimed across
 * processes; clusters of test processes that died are removed first); `t.teardown` removes it,
 * pass or fail.
 */
export async function startLabCluster(t: ExecutionContext, n: number, options: LabClusterOptions = {}): Promise<ClusterState> {
  const id = await claimLabClusterId(t);
  return upCluster(id, n, { log: (line) => t.log(line), ...options });
}

/**
 * Claims a free test cluster id (1–9) for `t`, after removing the clusters of test processes that
 * died; `t.teardown` removes whatever that cluster has on the machine, then releases the id. For a
 * test that drives `scripts/lab` itself (DEPAD_LAB_CLUSTER=<id>).
 */
export async function claimLabClusterId(t: ExecutionContext): Promise<number> {
  await sweepDeadClusters().catch((e: Error) => t.log(`sweeping lab clusters: ${e.message}`));
  const id = await claimClusterId();
  t.teardown(async () => {
    await downCluster(id);
    await fs.rm(path.join(CLAIMS, String(id)), { force: true });
  });
  return id;
}

async function claimClusterId(): Promise<number> {
  await fs.mkdir(CLAIMS, { recursive: true });
  for (const id of TEST_IDS) {
    try {
      await fs.writeFile(path.join(CLAIMS, String(id)), `${ownerStamp()}\n`, { flag: 'wx' });
      return id;
    } catch {
      continue;
    }
  }
  throw new Error(`no free lab cluster id (1–9 all claimed in ${CLAIMS})`);
}

/** Removes the clusters of test processes that are gone; returns their ids. */
export async function sweepDeadClusters(): Promise<number[]> {
  const swept: number[] = [];
  for (const entry of await fs.readdir(CLAIMS).catch(() => [] as string[])) {
    const file = path.join(CLAIMS, entry);
    const stamp = await fs.readFile(file, 'utf8').catch(() => '');
    if (!stamp || stampAlive(stamp)) continue;
    await downCluster(Number(entry));
    await fs.rm(file, { force: true });
    swept.push(Number(entry));
  }
  return swept;
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}
