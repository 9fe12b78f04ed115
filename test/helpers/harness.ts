/**
 * Gives an engine test its own depad: a temporary DEPAD_HOME, its own port range, a unique name
 * prefix, a way to run the real CLI (bin/depad) as a child process, and a teardown that always
 * removes what the test made — only engine objects with depad's labels and this test's prefix.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { Engine } from '../../src/engine/engine.ts';
import { LABELS } from '../../src/engine/types.ts';

/** The repository root. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The depad command. */
export const DEPAD = path.join(ROOT, 'bin/depad');
/** The bundled examples. */
export const EXAMPLES = path.join(ROOT, 'examples');

/** A finished CLI run. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** One test's depad. */
export interface Harness {
  home: string;
  /** Prefix of every deployment name this test uses. */
  prefix: string;
  engine: Engine;
  /** A deployment name unique to this test. */
  name(base: string): string;
  /** Runs `depad args…` with this test's home; never throws on a non-zero exit. */
  run(args: readonly string[], options?: { env?: Record<string, string>; timeoutMs?: number }): Promise<Run>;
  /** Runs with --json, fails the test unless it exits 0, returns the parsed stdout. */
  json<T = unknown>(args: readonly string[]): Promise<T>;
  /** A scratch directory for config files. */
  dir: string;
  /** The DEPAD_PORT_RANGE this test's runs use (`MIN-MAX`). */
  portRange: string;
  /** The DEPAD_SUBNET_POOL this test's runs use: a /15 of its own (two /16 subnets), so parallel tests never race for one. */
  subnetPool: string;
  /** Starts `depad args…` held at a step (DEPAD_TEST_PAUSE_AT); resolves once it is waiting there. */
  startPaused(args: readonly string[], step: string): Promise<Paused>;
}

/** A depad process held at a step by DEPAD_TEST_PAUSE_AT. */
export interface Paused {
  pid: number;
  /** Sends a signal to the process. */
  kill(signal: NodeJS.Signals): void;
  /** Lets it go on past the step. */
  resume(): Promise<void>;
  /** Its exit code, once it ends. */
  exited: Promise<number>;
  /** What it wrote to stderr so far. */
  stderr(): string;
}

/** Sets up a harness for `t`; everything is removed in `t.teardown`, pass or fail. */
export async function harness(t: ExecutionContext): Promise<Harness> {
  const { h, cleanup } = await createHarness(t.title, (message) => t.fail(message));
  t.teardown(cleanup);
  return h;
}

/** A harness shared by several tests; the caller runs `cleanup` (e.g. in `test.after.always`). */
export async function createHarness(title: string, fail: (message: string) => void): Promise<{ h: Harness; cleanup: () => Promise<void> }> {
  const prefix = `t${randomBytes(3).toString('hex')}`;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `depad-${prefix}-`));
  const home = path.join(dir, 'home');
  const slot = await claimSlot(title);
  const portRange = `${SLOT_BASE + slot.index * SLOT_SIZE}-${SLOT_BASE + slot.index * SLOT_SIZE + SLOT_SIZE - 1}`;
  const subnetPool = `10.${(2 * slot.index) % 200}.0.0/15`;
  const engine = new Engine();
  // Every depad process this test started: killed before cleaning up, so that one still running
  // (the test timed out or failed half way) cannot make something after the cleanup.
  const children = new Set<ChildProcess>();
  const track = <C extends ChildProcess>(child: C): C => {
    children.add(child);
    child.once('exit', () => children.delete(child));
    return child;
  };
  const cleanup = async () => {
    for (const child of children) child.kill('SIGKILL');
    await Promise.all([...children].map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(undefined) : c.once('exit', r)))));
    // Detached ones too (a daemonized agent, the new process of `depad agent restart`): whatever names this test's directory.
    await killProcessesNaming(dir);
    await removeEngineObjects(engine, prefix);
    await fs.rm(dir, { recursive: true, force: true });
    await slot.release();
  };
  const run: Harness['run'] = (args, options = {}) =>
    new Promise((resolve) => {
      const child = execFile(
        DEPAD,
        [...args],
        {
          env: { ...process.env, DEPAD_HOME: home, DEPAD_PORT_RANGE: portRange, DEPAD_SUBNET_POOL: subnetPool, ...options.env },
          timeout: options.timeoutMs ?? 120_000,
          maxBuffer: 16 * 1024 * 1024,
        },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === 'number' ? error.code : error.signal ? 128 : 1) : 0;
          resolve({ code, stdout, stderr });
        },
      );
      track(child);
    });
  const h: Harness = {
    home,
    prefix,
    engine,
    dir,
    portRange,
    subnetPool,
    name: (base) => `${prefix}-${base}`,
    run,
    async startPaused(args, step) {
      const child = track(spawn(DEPAD, [...args], { env: { ...process.env, DEPAD_HOME: home, DEPAD_PORT_RANGE: portRange, DEPAD_SUBNET_POOL: subnetPool, DEPAD_TEST_PAUSE_AT: step } }));
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
      const marker = path.join(home, `paused-${step.replace(/[^a-z0-9-]/gi, '_')}`);
      for (let i = 0; i < 400 && !(await fs.stat(marker).catch(() => undefined)); i++) {
        if (child.exitCode !== null) break;
        await sleep(50);
      }
      return {
        pid: child.pid!,
        kill: (signal) => child.kill(signal),
        resume: () => fs.rm(marker, { force: true }),
        exited,
        stderr: () => stderr,
      };
    },
    async json<T>(args: readonly string[]) {
      const result = await run([...args, '--json']);
      if (result.code !== 0) fail(`depad ${args.join(' ')} exited ${result.code}:\n${result.stderr}`);
      return JSON.parse(result.stdout) as T;
    },
  };
  return { h, cleanup };
}

// Below the kernel's ephemeral range (32768–60999), where outgoing connections and port-0
// listeners (the tests' proxies) take their ports.
const SLOT_BASE = 10000;
const SLOT_SIZE = 400;
const SLOTS = 55;
const SLOT_DIR = path.join(os.tmpdir(), 'depad-test-port-slots');

/**
 * Claims a port range no other running test holds (tests run in parallel processes): one file
 * per slot, created exclusively; a slot whose owner process is gone is taken over.
 */
async function claimSlot(title: string): Promise<{ index: number; release: () => Promise<void> }> {
  await fs.mkdir(SLOT_DIR, { recursive: true });
  const start = createHash('sha256').update(`${title}|${process.pid}`).digest().readUInt16BE(0) % SLOTS;
  for (let i = 0; i < SLOTS; i++) {
    const index = (start + i) % SLOTS;
    const file = path.join(SLOT_DIR, String(index));
    try {
      await fs.writeFile(file, String(process.pid), { flag: 'wx' });
      return { index, release: () => fs.rm(file, { force: true }) };
    } catch {
      const owner = Number(await fs.readFile(file, 'utf8').catch(() => '0'));
      if (owner && !alive(owner)) {
        await fs.rm(file, { force: true });
        i--; // the owner is gone: try this slot again
      }
    }
  }
  throw new Error('no free test port slot');
}

/** True while process `pid` exists (signal 0). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Ports a test may listen on without racing other tests or outgoing connections: a claimed slot
 * below the kernel's ephemeral range, handed out one by one; released in teardown.
 */
export async function testPorts(t: ExecutionContext): Promise<() => number> {
  const slot = await claimSlot(`${t.title}|ports`);
  t.teardown(slot.release);
  let next = SLOT_BASE + slot.index * SLOT_SIZE;
  const last = next + SLOT_SIZE - 1;
  return () => {
    if (next > last) throw new Error('test used up its port slot');
    return next++;
  };
}

function readFileSafe(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** SIGKILLs every process whose command line names `dir` (a test's own directory: its home, its config copies). */
async function killProcessesNaming(dir: string): Promise<void> {
  const pids: number[] = [];
  for (const entry of await fs.readdir('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(dir)) pids.push(pid);
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const running = (pid: number) => {
    const stat = readFileSafe(`/proc/${pid}/stat`);
    return stat !== undefined && !/^\d+ \(.*\) Z/.test(stat);
  };
  for (let i = 0; i < 50 && pids.some(running); i++) await sleep(100);
}

/** Removes containers, networks and volumes whose depad.deployment label starts with `prefix-`. */
export async function removeEngineObjects(engine: Engine, prefix: string): Promise<void> {
  const mine = (labels: Record<string, string>) => (labels[LABELS.deployment] ?? '').startsWith(`${prefix}-`);
  const any = { [LABELS.deployment]: null };
  for (const c of await engine.listContainers(any)) if (mine(c.labels)) await engine.removeContainer(c.id);
  for (const n of await engine.listNetworks(any)) if (mine(n.labels)) await engine.removeNetwork(n.id);
  for (const v of await engine.listVolumes(any)) if (mine(v.labels)) await engine.removeVolume(v.name);
}

/** What the engine holds for a test prefix: counts of containers, networks, volumes. */
export async function engineObjects(engine: Engine, prefix: string): Promise<{ containers: string[]; networks: string[]; volumes: string[] }> {
  const mine = (labels: Record<string, string>) => (labels[LABELS.deployment] ?? '').startsWith(`${prefix}-`);
  const any = { [LABELS.deployment]: null };
  return {
    containers: (await engine.listContainers(any)).filter((c) => mine(c.labels)).map((c) => c.name),
    networks: (await engine.listNetworks(any)).filter((n) => mine(n.labels)).map((n) => n.name),
    volumes: (await engine.listVolumes(any)).filter((v) => mine(v.labels)).map((v) => v.name),
  };
}

/** GET http://127.0.0.1:port/path → status and body (no keep-alive). */
export async function httpGet(port: number, pathname: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${pathname}`, { headers: { connection: 'close' }, signal: AbortSignal.timeout(10_000) });
  return { status: response.status, body: await response.text() };
}

/** Sends one line to a TCP port and returns the first line answered. */
export async function tcpRequest(port: number, line: string): Promise<string> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let data = '';
    socket.setTimeout(10_000, () => socket.destroy(new Error('timeout')));
    socket.on('connect', () => socket.write(line + '\n'));
    socket.on('data', (chunk) => {
      data += chunk.toString();
      if (data.includes('\n')) {
        socket.end();
        resolve(data.split('\n')[0]!);
      }
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(data.split('\n')[0] ?? ''));
  });
}
