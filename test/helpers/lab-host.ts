/**
 * The host-level side of lab engines (see lab-engine.ts): where a lab's files live, which
 * addresses it gets (one slot per running lab, claimed across processes), and tearing down
 * everything a lab may have left on the machine — processes, mounts, veth, network namespace,
 * cgroups, files — for a lab being removed or one whose owner process is gone.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import { statSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ownerStamp, processStart, run, stampAlive } from './lab-proc.ts';

export { must, ownerStamp, run, type Ran } from './lab-proc.ts';

/** Every lab's name starts with this, then the owner's pid: `depad-lab-<pid>-<suffix>`. */
export const LAB_PREFIX = 'depad-lab-';
/** Sockets, pid files, logs, exec-roots: /run/depad-lab/NAME (short: unix socket paths ≤ 108 bytes). */
export const RUN_ROOT = '/run/depad-lab';
/** Data roots (images, containers): /tmp/depad-lab/NAME. */
export const DATA_ROOT = '/tmp/depad-lab';
const SLOT_DIR = path.join(RUN_ROOT, '.slots');
/** Slot i: address pool 10.(220+i).0.0/16, veth 10.250.i.0/30; above the main engine's usual pools. */
const SLOTS = 30;
const CONTAINERD_SHIM_SOCKETS = '/run/containerd/s';

/** Where a lab's run and data directories are when not under RUN_ROOT/NAME and DATA_ROOT/NAME (a cluster's hosts). */
export interface LabPlace {
  /** Sockets, pid files, logs, exec-root. */
  run: string;
  /** Data roots. */
  data: string;
}

/** A lab's paths, all derived from its name (the network namespace's and the cgroup's) and its place. */
export function labPaths(name: string, place?: LabPlace) {
  const run = place?.run ?? path.join(RUN_ROOT, name);
  const data = place?.data ?? path.join(DATA_ROOT, name);
  return {
    run,
    data,
    netns: `/var/run/netns/${name}`,
    owner: path.join(run, 'owner'),
    socket: path.join(run, 'docker.sock'),
    pidfile: path.join(run, 'docker.pid'),
    daemonJson: path.join(run, 'daemon.json'),
    execRoot: path.join(run, 'x'),
    dockerLog: path.join(run, 'dockerd.log'),
    containerdToml: path.join(run, 'containerd.toml'),
    containerdSocket: path.join(run, 'containerd.sock'),
    containerdState: path.join(run, 'containerd'),
    containerdLog: path.join(run, 'containerd.log'),
    dataRoot: path.join(data, 'docker'),
    containerdRoot: path.join(data, 'containerd'),
    cgroupParent: `/depad-lab/${name}`,
  };
}

/** What labPaths returns. */
export type LabPathSet = ReturnType<typeof labPaths>;

/** A claimed slot and what it gives the lab. */
export interface Slot {
  index: number;
  /** The lab's end of the veth (eth0 in the lab). */
  address: string;
  /** The root namespace's end (dlab<i>). */
  rootAddress: string;
  /** The root namespace's veth interface. */
  veth: string;
  /** dockerd's --default-address-pool. */
  pool: string;
}

/** The slot's addresses; pure. */
export function slotFacts(index: number): Slot {
  return {
    index,
    address: `10.250.${index}.2`,
    rootAddress: `10.250.${index}.1`,
    veth: `dlab${index}`,
    pool: `base=10.${220 + index}.0.0/16,size=24`,
  };
}

/**
 * Claims a free slot: a file made exclusively, holding the owner's stamp and the lab's name. A slot
 * whose owner is gone is left to sweepLabEngines; one whose ranges some route on the machine
 * overlaps is skipped.
 */
export async function claimSlot(name: string): Promise<Slot> {
  await fs.mkdir(SLOT_DIR, { recursive: true });
  for (let index = 0; index < SLOTS; index++) {
    const file = path.join(SLOT_DIR, String(index));
    try {
      await fs.writeFile(file, `${ownerStamp()} ${name}\n`, { flag: 'wx' });
    } catch {
      continue;
    }
    const slot = slotFacts(index);
    await run('ip', ['link', 'del', slot.veth]); // a leftover of a lab whose slot file is gone
    const used = await routedPrefixes();
    const mine: Prefix[] = [prefix(`10.${220 + index}.0.0/16`), prefix(`10.250.${index}.0/30`)];
    if (used.some((u) => mine.some((m) => overlaps(u, m)))) {
      await fs.rm(file, { force: true });
      continue;
    }
    return slot;
  }
  throw new Error(`no free lab engine slot (all ${SLOTS} taken or overlapping routes) in ${SLOT_DIR}`);
}

type Prefix = { base: number; bits: number };

function prefix(text: string): Prefix {
  const [ip, bits] = text.split('/');
  const base = (ip ?? '').split('.').reduce((n, o) => n * 256 + Number(o), 0);
  return { base, bits: bits === undefined ? 32 : Number(bits) };
}

function overlaps(a: Prefix, b: Prefix): boolean {
  const bits = Math.min(a.bits, b.bits);
  const mask = bits === 0 ? 0 : Number((0xffffffffn << BigInt(32 - bits)) & 0xffffffffn);
  return ((a.base & mask) >>> 0) === ((b.base & mask) >>> 0);
}

/** IPv4 destinations of every route in every table of the root namespace (not the default). */
async function routedPrefixes(): Promise<Prefix[]> {
  const out = (await run('ip', ['-4', '-o', 'route', 'show', 'table', 'all'])).stdout;
  const types = new Set(['unicast', 'local', 'broadcast', 'multicast', 'anycast', 'blackhole', 'unreachable', 'prohibit', 'throw', 'nat']);
  return out
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .map((t) => (types.has(t[0] ?? '') ? t[1] : t[0]) ?? '')
    .filter((d) => /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(d))
    .map(prefix);
}

/** Removes the slot file of a lab whose owner is gone, if it still names that lab. */
async function releaseStaleSlot(file: string, text: string): Promise<void> {
  if ((await fs.readFile(file, 'utf8').catch(() => '')) === text) await fs.rm(file, { force: true });
}

/** Releases a slot this lab holds (only when the file still names this lab). */
async function releaseSlot(name: string): Promise<void> {
  for (const entry of await fs.readdir(SLOT_DIR).catch(() => [] as string[])) {
    const file = path.join(SLOT_DIR, entry);
    const text = await fs.readFile(file, 'utf8').catch(() => '');
    if (text.trim().split(/\s+/)[2] === name) await fs.rm(file, { force: true });
  }
}

/** The slot a lab holds, from the slot files. */
async function slotOf(name: string): Promise<number | undefined> {
  for (const entry of await fs.readdir(SLOT_DIR).catch(() => [] as string[])) {
    const text = await fs.readFile(path.join(SLOT_DIR, entry), 'utf8').catch(() => '');
    if (text.trim().split(/\s+/)[2] === name) return Number(entry);
  }
  return undefined;
}

/** Processes of a lab: in its network namespace, in its cgroups, or with its paths in their command line. */
export async function labProcesses(name: string, p: LabPathSet = labPaths(name)): Promise<number[]> {
  let netns: string | undefined;
  try {
    netns = `net:[${statSync(p.netns).ino}]`;
  } catch {
    netns = undefined;
  }
  const found = new Set<number>();
  for (const entry of await fs.readdir('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    const ns = await fs.readlink(`/proc/${pid}/ns/net`).catch(() => '');
    const cmdline = (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).replaceAll('\0', ' ');
    if ((netns && ns === netns) || cmdline.includes(`${p.run}/`) || cmdline.includes(`${p.data}/`)) found.add(pid);
  }
  for (const dir of await cgroupDirs(name)) {
    for (const file of await findFiles(dir, 'cgroup.procs')) {
      for (const line of (await fs.readFile(file, 'utf8').catch(() => '')).split('\n')) if (Number(line) > 0 && Number(line) !== process.pid) found.add(Number(line));
    }
  }
  return [...found];
}

/** The lab's cgroup directories in every mounted hierarchy (v1 and v2). */
async function cgroupDirs(name: string): Promise<string[]> {
  const roots = ['/sys/fs/cgroup', ...(await fs.readdir('/sys/fs/cgroup').catch(() => [] as string[])).map((h) => path.join('/sys/fs/cgroup', h))];
  const dirs: string[] = [];
  for (const root of roots) {
    const dir = path.join(root, 'depad-lab', name);
    if (await fs.stat(dir).then((s) => s.isDirectory()).catch(() => false)) dirs.push(dir);
  }
  return dirs;
}

async function findFiles(dir: string, base: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await findFiles(full, base)));
    else if (entry.name === base) out.push(full);
  }
  return out;
}

/** Mount points under a lab's directories, in the order to unmount them (last mounted first). */
export async function labMounts(name: string, p: LabPathSet = labPaths(name)): Promise<string[]> {
  const info = await fs.readFile('/proc/self/mountinfo', 'utf8');
  const points = info
    .split('\n')
    .map((line) => (line.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((m) => [p.run, p.data].some((root) => m === root || m.startsWith(`${root}/`)));
  return points.reverse();
}

/** Kills every process of a lab (SIGKILL) and waits until none is left. */
async function killLabProcesses(name: string, p: LabPathSet): Promise<void> {
  for (let round = 0; round < 50; round++) {
    const pids = await labProcesses(name, p);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    await sleep(100);
  }
  throw new Error(`lab ${name}: processes still running after SIGKILL: ${(await labProcesses(name, p)).join(' ')}`);
}

/**
 * Removes everything of a lab from the machine: its processes, mounts, veth, network namespace,
 * containerd shim sockets, files, cgroups and slot. Idempotent; for a lab of this process or a
 * dead one (never call it for a lab another live process owns). A cluster's host passes its paths
 * and the root namespace's end of its veth (it holds no slot).
 */
export async function destroyLab(name: string, options: { paths?: LabPathSet; veth?: string } = {}): Promise<void> {
  const p = options.paths ?? labPaths(name);
  const problems: string[] = [];
  // Each step may race another process sweeping the same dead lab: a failure counts only when
  // what it was to remove is still there afterwards.
  await killLabProcesses(name, p).catch((e: Error) => problems.push(e.message));
  for (let round = 0; round < 5; round++) {
    const mounts = await labMounts(name, p);
    if (mounts.length === 0) break;
    for (const m of mounts) if ((await run('umount', [m])).code !== 0) await run('umount', ['-l', m]);
  }
  const left = await labMounts(name, p);
  if (left.length > 0) problems.push(`mounts left: ${left.join(' ')}`);
  const slot = await slotOf(name);
  if (slot !== undefined) await run('ip', ['link', 'del', slotFacts(slot).veth]);
  if (options.veth) await run('ip', ['link', 'del', options.veth]);
  if (await exists(p.netns)) {
    const r = await run('ip', ['netns', 'del', name]);
    if (r.code !== 0 && (await exists(p.netns))) problems.push(`ip netns del ${name}: ${r.stderr.trim()}`);
  }
  await removeShimSockets(p);
  for (const dir of [p.run, p.data]) {
    await fs.rm(dir, { recursive: true, force: true, maxRetries: 3 }).catch(async (e: Error) => void ((await exists(dir)) && problems.push(e.message)));
  }
  for (const dir of await cgroupDirs(name)) {
    await rmdirTree(dir).catch(async (e: Error) => void ((await exists(dir)) && problems.push(`cgroup ${dir}: ${e.message}`)));
    await fs.rmdir(path.dirname(dir)).catch(() => undefined); // depad-lab/, unless another lab uses it
  }
  await releaseSlot(name);
  if (problems.length > 0) throw new Error(`lab ${name} not fully removed: ${problems.join('; ')}`);
}

/**
 * containerd 1.6 puts a shim's socket at /run/containerd/s/sha256(<containerd address>/<namespace>/<id>);
 * a shim that was killed leaves it there. The lab's container IDs are its data-root's containers/.
 */
async function removeShimSockets(p: LabPathSet): Promise<void> {
  const ids = await fs.readdir(path.join(p.dataRoot, 'containers')).catch(() => [] as string[]);
  for (const id of ids) {
    for (const ns of ['moby', 'plugins.moby']) {
      const hash = createHash('sha256').update(path.join(p.containerdSocket, ns, id)).digest('hex');
      await fs.rm(path.join(CONTAINERD_SHIM_SOCKETS, hash), { force: true });
    }
  }
}

async function rmdirTree(dir: string): Promise<void> {
  for (const entry of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) if (entry.isDirectory()) await rmdirTree(path.join(dir, entry.name));
  await fs.rmdir(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
  });
}

async function exists(file: string): Promise<boolean> {
  return fs.lstat(file).then(
    () => true,
    () => false,
  );
}

/** Whether the lab's owner is gone: the pid in its name is not running, or runs but started later (reused). */
async function ownerGone(name: string): Promise<boolean> {
  const pid = Number(/^depad-lab-(\d+)-/.exec(name)?.[1] ?? 0);
  if (!pid || processStart(pid) === undefined) return true;
  const stamp = await fs.readFile(labPaths(name).owner, 'utf8').catch(() => undefined);
  return stamp !== undefined && !stampAlive(stamp);
}

/** Names of labs that left something on the machine: namespaces, directories, cgroups, slots. */
export async function leftoverLabs(): Promise<string[]> {
  const names = new Set<string>();
  const add = (entries: string[]) => entries.filter((e) => e.startsWith(LAB_PREFIX)).forEach((e) => names.add(e));
  add(await fs.readdir('/var/run/netns').catch(() => []));
  add(await fs.readdir(RUN_ROOT).catch(() => []));
  add(await fs.readdir(DATA_ROOT).catch(() => []));
  for (const root of ['/sys/fs/cgroup', ...(await fs.readdir('/sys/fs/cgroup').catch(() => [] as string[])).map((h) => path.join('/sys/fs/cgroup', h))]) {
    add(await fs.readdir(path.join(root, 'depad-lab')).catch(() => []));
  }
  for (const entry of await fs.readdir(SLOT_DIR).catch(() => [] as string[])) {
    const owner = (await fs.readFile(path.join(SLOT_DIR, entry), 'utf8').catch(() => '')).trim().split(/\s+/)[2];
    if (owner) names.add(owner);
  }
  return [...names].sort();
}

/**
 * Removes every lab whose owner process is gone (a crashed or killed test run), and slot files
 * of gone owners. Labs of running processes, this one included, are left alone. Returns the
 * names removed; throws when one could not be removed entirely.
 */
export async function sweepDeadLabs(): Promise<string[]> {
  const swept: string[] = [];
  const problems: string[] = [];
  for (const name of await leftoverLabs()) {
    if (!(await ownerGone(name))) continue;
    await destroyLab(name).then(
      () => swept.push(name),
      (e: Error) => problems.push(e.message),
    );
  }
  for (const entry of await fs.readdir(SLOT_DIR).catch(() => [] as string[])) {
    const file = path.join(SLOT_DIR, entry);
    const text = await fs.readFile(file, 'utf8').catch(() => '');
    const [pid, start] = text.trim().split(/\s+/);
    if (!text || stampAlive(`${pid} ${start ?? ''}`)) continue;
    await run('ip', ['link', 'del', slotFacts(Number(entry)).veth]);
    await releaseStaleSlot(file, text);
  }
  if (problems.length > 0) throw new Error(`sweeping lab engines: ${problems.join('; ')}`);
  return swept;
}
