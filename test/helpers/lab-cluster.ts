/**
 * The cluster lab (issue 15): N hosts on this machine, each a network namespace on one bridge with
 * its own containerd, dockerd (test/helpers/lab-engine.ts, startLabHost) and depad agent. Shared by
 * `scripts/lab` (lab-cluster-cli.ts) and tests (startLabCluster). Names, addresses and the state
 * file are in lab-cluster-layout.ts; the agents (start, kill, start again) in lab-cluster-agent.ts.
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
import { stopDetachedLabManager } from './lab-manager.ts';
import type { ExecutionContext } from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { DEPAD } from './harness.ts';
import { agentAnswers, agentArgs, hostEnv, spawnAgent } from './lab-cluster-agent.ts';
import { clusterLayout, hostLayout, MAX_HOSTS, readState, until, writeState, type ClusterHost, type ClusterState, type LabClusterOptions } from './lab-cluster-layout.ts';
import { startLabHost, type LabEngine } from './lab-engine.ts';
import { destroyLab, labPaths, labProcesses, RUN_ROOT } from './lab-host.ts';
import { must, ownerStamp, ping, run, stampAlive } from './lab-proc.ts';

export { agentAnswers, clientEnv, startHostAgent, stopHostAgent } from './lab-cluster-agent.ts';
export { clusterLayout, hostLayout, MAX_HOSTS, parseLabels, readState, type ClusterHost, type ClusterState, type LabClusterOptions } from './lab-cluster-layout.ts';

/** The depad-example/* images of the machine's engine. */
export async function defaultImages(): Promise<string[]> {
  const out = await must('docker', ['images', '--format', '{{.Repository}}:{{.Tag}}', 'depad-example/*']);
  return [...new Set(out.split('\n').filter((l) => l && !l.endsWith(':<none>')))].sort();
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
    for (const image of images) {
      if ((await run('docker', ['image', 'inspect', '--format', '{{.Id}}', image])).code !== 0) throw new Error(`image ${image} is not on the machine's engine (bash scripts/build-images builds depad's)`);
    }
    await fs.mkdir(c.run, { recursive: true, mode: 0o700 });
    await fs.mkdir(c.data, { recursive: true, mode: 0o711 });
    await must('ip', ['link', 'add', c.bridge, 'type', 'bridge']);
    await must('ip', ['addr', 'add', `${c.gateway}/24`, 'dev', c.bridge]);
    await must('ip', ['link', 'set', c.bridge, 'up']);
    const at: Record<string, number> = {};
    for (const [chain, ...rule] of labRules(id)) await must('iptables', ['-I', chain!, String((at[chain!] = (at[chain!] ?? 0) + 1)), ...rule]);
    log(`bridge ${c.bridge} ${c.gateway}/24; starting ${n} hosts (images: ${images.join(', ') || 'none'})`);
    const hosts = await Promise.all(Array.from({ length: n }, (_, k) => startHost(id, k + 1, labels[k] ?? {}, images, options.agentArgs?.(k + 1) ?? [], log)));
    const state: ClusterState = { id, bridge: c.bridge, subnet: c.subnet, gateway: c.gateway, createdAt: new Date().toISOString(), hosts };
    await writeState(state);
    return state;
  } catch (error) {
    log(`up failed; removing what it made`);
    await downCluster(id).catch((e: Error) => log(`removing: ${e.message}`));
    throw error;
  }
}

/** `up` refused: a lab (or its leftovers) is there. */
export class LabUpError extends Error {}

/** The engines this process started, by namespace name (stop, start and kill need the process that started them). */
const engines = new Map<string, LabEngine>();

/**
 * The lab engine of a host this process started (startLabCluster, upCluster): to stop, start or
 * kill its dockerd (LabEngine's stop, start, kill). Not for a lab `scripts/lab up` made.
 */
export function hostEngine(host: Pick<ClusterHost, 'netns' | 'name'>): LabEngine {
  const lab = engines.get(path.basename(host.netns));
  if (!lab) throw new Error(`${host.name}: its engine was not started by this process`);
  return lab;
}

/** One host: its engine, its agent, its token; waits until the agent answers the CLI from the root namespace. */
async function startHost(id: number, i: number, labels: Record<string, string>, images: string[], extra: string[], log: (line: string) => void): Promise<ClusterHost> {
  const c = clusterLayout(id);
  const h = hostLayout(id, i);
  const started = Date.now();
  const lab = await startLabHost({ name: h.netnsName, place: h.place, bridge: c.bridge, veth: h.veth, address: h.address, gateway: c.gateway, prefixLength: 24, pool: h.pool }, { images });
  engines.set(h.netnsName, lab);
  log(`${h.name}: engine up at ${h.address} (${Date.now() - started} ms)`);
  await fs.mkdir(h.home, { recursive: true, mode: 0o700 });
  const env = hostEnv(lab.dockerHost, h.home);
  const args = agentArgs(h.address, extra);
  const listening = await spawnAgent(id, i, lab.dockerHost, args);
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
    agentArgs: args,
  };
  await until(`${h.name}: the agent to answer at ${host.apiUrl}`, 60_000, async () => ((await agentAnswers(host)) ? true : undefined));
  log(`${h.name}: agent answers at ${host.apiUrl} (${Date.now() - started} ms)`);
  return host;
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
  // The manager `scripts/lab manager` started, first: it would see its hosts go down.
  if (await stopDetachedLabManager(id).catch((e: Error) => void problems.push(`the lab's manager: ${e.message}`))) removed.push('manager');
  const indexes = new Set([...(state?.hosts ?? []).map((h) => Number(h.name.slice(5))), ...(await hostIndexes(id))]);
  for (const link of (await run('ip', ['-o', 'link', 'show'])).stdout.split('\n').map((l) => (l.split(': ')[1] ?? '').split('@')[0] ?? '')) {
    if (link.startsWith(c.vethPrefix)) indexes.add(Number(link.slice(c.vethPrefix.length)));
  }
  await Promise.all(
    [...indexes].filter((i) => Number.isInteger(i) && i > 0).map(async (i) => {
      const h = hostLayout(id, i);
      engines.delete(h.netnsName);
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

