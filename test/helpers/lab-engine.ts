/**
 * Lab engines: Docker Engines of a test's (or a bench's) own, to stop, start, crash and remove
 * without touching the machine's engine. A lab is a small host:
 *
 * - a network namespace (`ip netns add depad-lab-<pid>-<n>`), loopback up, and a veth pair to the
 *   root namespace: `dlab<i>` 10.250.<i>.1/30 in the root namespace, `eth0` 10.250.<i>.2/30 in the
 *   lab, the lab's default route via the root side (so the lab reaches the root namespace's own
 *   addresses; nothing is forwarded beyond it);
 * - a containerd and a dockerd of its own, started with `nsenter --net=…` (not `ip netns exec`,
 *   which remounts /sys and hides the cgroups), sharing the machine's mount namespace. containerd
 *   is started by this helper, not managed by dockerd: dockerd 20.10 silently uses the system
 *   containerd whenever /run/containerd/containerd.sock exists. Paths: /run/depad-lab/NAME
 *   (sockets, pid files, exec-root, logs) and /tmp/depad-lab/NAME (data roots); its own
 *   daemon.json (the machine's /etc/docker/daemon.json is not read) and key.json (its own engine
 *   ID); containers under the cgroup parent /depad-lab/NAME; networks from 10.(220+i).0.0/16 in
 *   /24s. Otherwise dockerd's defaults, which are per namespace here: its own docker0, iptables
 *   on (the rules are in the namespace's own tables and go with it), the userland proxy (ports
 *   published on the lab's 127.0.0.1 answer there).
 *
 * Reachability (why the agent runs in the lab): containers publish ports in the lab's namespace.
 * depad routes a service to `upstreamHost`:<host port>, where upstreamHost is `x-depad.host_ip`
 * of the deployment (default 0.0.0.0 → 127.0.0.1; no environment variable or option changes it),
 * so an agent in the root namespace would reach the machine's loopback, not the lab's. Rather than
 * rewriting depad's addresses, the lab is treated as what it models, a host: depad's agent and CLI
 * run *in* it (`spawn`/`exec`, with DOCKER_HOST set to the lab's engine), and clients in the root
 * namespace reach its listeners — and ports its containers publish on 0.0.0.0 — at `address`.
 * (An agent outside would need `host_ip: <address>` in every deployment file, and its port probe
 * would still look at the machine's ports, not the lab's.)
 *
 * remove() takes everything of a lab off the machine, processes spawned in it included; a run
 * that dies first leaves its labs to the sweep the next startLabEngine does.
 *
 * A lab can also be one host of a cluster (startLabHost, used by lab-cluster.ts): then its veth's
 * root end is a port of the cluster's bridge instead of a /30 of its own, its name, directories
 * and pool are the cluster's choice, and it holds no slot.
 *
 * Images: a lab cannot pull; `images` are copied in from the machine's engine (`docker save`,
 * cached per image ID under $TMPDIR/depad-lab-images, then `docker load`).
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs/promises';
import { openSync, closeSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { savedImage } from './lab-images.ts';
import { canConnect, ping } from './lab-proc.ts';
import { claimSlot, destroyLab, labPaths, LAB_PREFIX, must, ownerStamp, run, sweepDeadLabs, type LabPlace, type Ran } from './lab-host.ts';

/** How a lab engine is made. */
export interface LabEngineOptions {
  /** Suffix of the lab's name (`depad-lab-<pid>-<name>`); default a counter. Lowercase letters, digits, '-'. */
  name?: string;
  /** Images of the machine's engine to load into the lab (e.g. 'depad-example/app:1'). */
  images?: string[];
  /** Receives dockerd's and containerd's log lines as they are written. */
  log?: (line: string) => void;
  /** How long a start may take before it fails with the log's tail; default 60 s. */
  startTimeoutMs?: number;
}

/** A running (or stopped) lab engine. */
export interface LabEngine {
  /** depad-lab-<pid>-<suffix>. */
  name: string;
  /** /var/run/netns/NAME. */
  netns: string;
  /** dockerd's unix socket. */
  socket: string;
  /** 'unix://' + socket: DOCKER_HOST for a process that should use this engine. */
  dockerHost: string;
  /** The lab's own address (eth0 in the lab), reachable from the root namespace. */
  address: string;
  /** The root namespace's end of the veth, reachable from the lab. */
  rootAddress: string;
  /** dockerd's --default-address-pool. */
  pool: string;
  /** SIGTERM to dockerd (it stops the containers, as on a reboot), then to containerd; waits until both are gone. */
  stop(): Promise<void>;
  /** Starts containerd (unless it runs) and dockerd again on the same data; waits until dockerd answers. */
  start(): Promise<void>;
  /** stop() then start(). */
  restart(): Promise<void>;
  /** SIGKILL to dockerd (a crash); containerd, shims and containers keep running. Waits until it is gone. */
  kill(): Promise<void>;
  /** Removes every container, stops the engine, then removes everything of the lab from the machine. Idempotent. */
  remove(): Promise<void>;
  /** Runs `docker -H <socket> args…`; throws with stderr unless it exits 0; returns stdout, trimmed. */
  docker(args: readonly string[]): Promise<string>;
  /** Loads images of the machine's engine into this lab. */
  loadImages(images: readonly string[]): Promise<void>;
  /** Spawns a process in the lab's network namespace (killed by remove()); DOCKER_HOST is this lab's unless options.env sets one. */
  spawn(command: string, args: readonly string[], options?: SpawnOptions): ChildProcess;
  /** Runs a command in the lab's network namespace to its end (env as for spawn); never throws on a non-zero exit. */
  exec(command: string, args: readonly string[], options?: { env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Ran>;
  /** The last lines of dockerd's and containerd's logs. */
  logTail(lines?: number): Promise<string>;
}

let counter = 0;

/** Starts a dockerd of its own in a new network namespace (sweeping dead labs first); removed by remove(). */
export async function startLabEngine(options: LabEngineOptions = {}): Promise<LabEngine> {
  const suffix = options.name ?? String(++counter);
  if (!/^[a-z0-9][a-z0-9-]{0,15}$/.test(suffix)) throw new Error(`lab engine name "${suffix}": 1–16 of a-z, 0-9, '-'`);
  const name = `${LAB_PREFIX}${process.pid}-${suffix}`;
  await sweepLabEngines().catch((e: Error) => options.log?.(`[lab] ${e.message}`));
  await destroyLab(name); // leftovers of an earlier process with this pid
  const slot = await claimSlot(name);
  const lab = new Lab(name, { veth: slot.veth, address: slot.address, rootAddress: slot.rootAddress, prefixLength: 30, pool: slot.pool }, options);
  try {
    await lab.create();
    await lab.start();
    if (options.images?.length) await lab.loadImages(options.images);
  } catch (error) {
    await lab.remove().catch(() => undefined); // the error already has the logs' tail where they matter
    throw error;
  }
  return lab;
}

/** A lab engine that is one host of a cluster (lab-cluster.ts): on the cluster's bridge, named and placed by it. */
export interface LabHostSpec {
  /** The network namespace's name (and the lab's). */
  name: string;
  /** Its run and data directories. */
  place: LabPlace;
  /** The bridge in the root namespace its veth joins. */
  bridge: string;
  /** The root namespace's end of its veth (≤ 15 characters). */
  veth: string;
  /** Its address on the bridge's subnet. */
  address: string;
  /** The bridge's address: the host's default route. */
  gateway: string;
  /** The subnet's prefix length. */
  prefixLength: number;
  /** dockerd's --default-address-pool. */
  pool: string;
}

/** Starts a lab engine on a cluster's bridge (the bridge must exist); removed by remove(), or by destroyLab with its paths and veth. */
export async function startLabHost(spec: LabHostSpec, options: LabEngineOptions = {}): Promise<LabEngine> {
  const net: LabNet = { veth: spec.veth, address: spec.address, rootAddress: spec.gateway, prefixLength: spec.prefixLength, pool: spec.pool, bridge: spec.bridge };
  const lab = new Lab(spec.name, net, options, spec.place);
  try {
    await lab.create();
    await lab.start();
    if (options.images?.length) await lab.loadImages(options.images);
  } catch (error) {
    await lab.remove().catch(() => undefined);
    throw error;
  }
  return lab;
}

/** How a lab's namespace is linked to the root namespace: a veth whose root end has an address of its own (a slot's /30) or is a bridge's port. */
interface LabNet {
  veth: string;
  address: string;
  rootAddress: string;
  prefixLength: number;
  pool: string;
  /** Set: the root end joins this bridge (whose address is rootAddress) and gets no address. */
  bridge?: string;
}

/** Removes leftovers of lab engines whose process is gone (crashed runs); returns their names. */
export async function sweepLabEngines(): Promise<string[]> {
  return sweepDeadLabs();
}

class Lab implements LabEngine {
  readonly netns: string;
  readonly socket: string;
  readonly dockerHost: string;
  readonly address: string;
  readonly rootAddress: string;
  readonly pool: string;
  readonly name: string;
  readonly options: LabEngineOptions;
  readonly #paths: ReturnType<typeof labPaths>;
  readonly #net: LabNet;
  #dockerd: ChildProcess | undefined;
  #containerd: ChildProcess | undefined;
  #tailer: NodeJS.Timeout | undefined;
  #removing: Promise<void> | undefined;

  constructor(name: string, net: LabNet, options: LabEngineOptions, place?: LabPlace) {
    this.name = name;
    this.options = options;
    this.#paths = labPaths(name, place);
    this.netns = this.#paths.netns;
    this.socket = this.#paths.socket;
    this.dockerHost = `unix://${this.socket}`;
    this.address = net.address;
    this.rootAddress = net.rootAddress;
    this.pool = net.pool;
    this.#net = net;
  }

  /** The namespace, veth, directories and config files. */
  async create(): Promise<void> {
    const p = this.#paths;
    await fs.mkdir(p.run, { recursive: true, mode: 0o711 });
    await fs.writeFile(p.owner, `${ownerStamp()}\n`);
    await fs.mkdir(p.data, { recursive: true, mode: 0o711 });
    await must('ip', ['netns', 'add', this.name]);
    await must('ip', ['-n', this.name, 'link', 'set', 'lo', 'up']);
    const { veth, bridge, prefixLength } = this.#net;
    await must('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', this.name]);
    if (bridge) await must('ip', ['link', 'set', veth, 'master', bridge]);
    else await must('ip', ['addr', 'add', `${this.rootAddress}/${prefixLength}`, 'dev', veth]);
    await must('ip', ['link', 'set', veth, 'up']);
    await must('ip', ['-n', this.name, 'addr', 'add', `${this.address}/${prefixLength}`, 'dev', 'eth0']);
    await must('ip', ['-n', this.name, 'link', 'set', 'eth0', 'up']);
    await must('ip', ['-n', this.name, 'route', 'add', 'default', 'via', this.rootAddress]);
    await fs.writeFile(p.daemonJson, JSON.stringify({ 'deprecated-key-path': path.join(p.run, 'key.json') }) + '\n');
    await fs.writeFile(
      p.containerdToml,
      [
        'version = 2',
        `root = ${JSON.stringify(p.containerdRoot)}`,
        `state = ${JSON.stringify(p.containerdState)}`,
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
        '[grpc]',
        `  address = ${JSON.stringify(p.containerdSocket)}`,
        '',
      ].join('\n'),
    );
    if (this.options.log) this.#tail(this.options.log);
  }

  async start(): Promise<void> {
    const p = this.#paths;
    const deadline = Date.now() + (this.options.startTimeoutMs ?? 60_000);
    if (!running(this.#containerd)) {
      await fs.rm(p.containerdSocket, { force: true });
      this.#containerd = this.#daemon('containerd', ['-c', p.containerdToml], p.containerdLog);
      await this.#until(deadline, 'containerd', this.#containerd, () => canConnect(p.containerdSocket));
    }
    if (running(this.#dockerd)) return;
    await fs.rm(p.pidfile, { force: true }); // ours, from a killed dockerd (it refuses to start while it exists and names a live pid)
    this.#dockerd = this.#daemon(
      'dockerd',
      [
        '--config-file', p.daemonJson,
        '--containerd', p.containerdSocket,
        '--data-root', p.dataRoot,
        '--exec-root', p.execRoot,
        '--pidfile', p.pidfile,
        '-H', this.dockerHost,
        '--default-address-pool', this.pool,
        '--cgroup-parent', p.cgroupParent,
      ],
      p.dockerLog,
    );
    await this.#until(deadline, 'dockerd', this.#dockerd, () => ping(this.socket));
  }

  async stop(): Promise<void> {
    await this.#end(this.#dockerd, 'SIGTERM', 'dockerd');
    await this.#end(this.#containerd, 'SIGTERM', 'containerd');
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async kill(): Promise<void> {
    await this.#end(this.#dockerd, 'SIGKILL', 'dockerd');
  }

  remove(): Promise<void> {
    this.#removing ??= (async () => {
      if (running(this.#dockerd)) {
        const ids = (await this.docker(['ps', '-aq']).catch(() => '')).split('\n').filter(Boolean);
        if (ids.length > 0) await this.docker(['rm', '-f', '-v', ...ids]).catch(() => undefined);
      }
      await this.stop().catch(() => undefined); // destroyLab kills what did not stop
      if (this.#tailer) clearInterval(this.#tailer);
      await destroyLab(this.name, this.#net.bridge ? { paths: this.#paths, veth: this.#net.veth } : {});
    })();
    // A failed removal may be tried again.
    return this.#removing.catch((error: unknown) => {
      this.#removing = undefined;
      throw error;
    });
  }

  async docker(args: readonly string[]): Promise<string> {
    const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: this.dockerHost };
    delete env.DOCKER_CONTEXT;
    return (await must('docker', ['-H', this.dockerHost, ...args], { env, timeoutMs: 120_000 })).trim();
  }

  async loadImages(images: readonly string[]): Promise<void> {
    for (const image of images) {
      // Once more on failure: the saved file may have been dropped by a process that saved a newer build.
      await this.docker(['load', '-q', '-i', await savedImage(image)]).catch(async () => this.docker(['load', '-q', '-i', await savedImage(image)]));
    }
  }

  spawn(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
    return spawn('nsenter', [`--net=${this.netns}`, '--', command, ...args], { ...options, env: this.#env(options.env) });
  }

  exec(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Ran> {
    return run('nsenter', [`--net=${this.netns}`, '--', command, ...args], { env: this.#env(options.env), timeoutMs: options.timeoutMs ?? 120_000 });
  }

  /** A process on this host uses its engine: DOCKER_HOST is the lab's unless `env` sets one. */
  #env(env: NodeJS.ProcessEnv | undefined): NodeJS.ProcessEnv {
    return env ? { DOCKER_HOST: this.dockerHost, ...env } : { ...process.env, DOCKER_HOST: this.dockerHost };
  }

  async logTail(lines = 30): Promise<string> {
    const out: string[] = [];
    for (const [what, file] of [['dockerd', this.#paths.dockerLog], ['containerd', this.#paths.containerdLog]] as const) {
      const text = await fs.readFile(file, 'utf8').catch(() => '');
      if (text) out.push(`--- ${what} log of ${this.name} (last ${lines} lines) ---`, ...text.trimEnd().split('\n').slice(-lines));
    }
    return out.join('\n');
  }

  /** A daemon in the lab's namespace, its output appended to `logFile`; nsenter execs it, so the pid is the daemon's. */
  #daemon(command: string, args: string[], logFile: string): ChildProcess {
    const fd = openSync(logFile, 'a');
    try {
      const child = spawn('nsenter', [`--net=${this.netns}`, '--', command, ...args], { stdio: ['ignore', fd, fd], detached: true });
      child.on('error', () => undefined); // seen as an early exit by #until
      child.unref();
      return child;
    } finally {
      closeSync(fd);
    }
  }

  /** Waits until `ready()`; fails early when the process exits, or at the deadline, with the logs' tail. */
  async #until(deadline: number, what: string, child: ChildProcess, ready: () => Promise<boolean>): Promise<void> {
    while (!(await ready())) {
      if (!running(child)) throw new Error(`lab ${this.name}: ${what} exited (${child.exitCode ?? child.signalCode}) before it answered\n${await this.logTail()}`);
      if (Date.now() > deadline) throw new Error(`lab ${this.name}: ${what} did not answer within ${this.options.startTimeoutMs ?? 60_000} ms\n${await this.logTail()}`);
      await sleep(50);
    }
  }

  /** Signals a daemon and waits for it to exit (60 s for SIGTERM, then SIGKILL and an error). */
  async #end(child: ChildProcess | undefined, signal: NodeJS.Signals, what: string): Promise<void> {
    if (!child || !running(child)) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    const timer = new AbortController();
    const timedOut = await Promise.race([gone.then(() => false), sleep(signal === 'SIGKILL' ? 10_000 : 60_000, true, { signal: timer.signal }).catch(() => false)]);
    timer.abort();
    if (!timedOut) return;
    child.kill('SIGKILL');
    await gone;
    throw new Error(`lab ${this.name}: ${what} did not exit within 60 s of ${signal}; killed\n${await this.logTail()}`);
  }

  /** Passes new log lines to `log`, polling the log files for what was appended. */
  #tail(log: (line: string) => void): void {
    const files = [['dockerd', this.#paths.dockerLog, 0], ['containerd', this.#paths.containerdLog, 0]] as [string, string, number][];
    let busy = false;
    this.#tailer = setInterval(async () => {
      if (busy) return;
      busy = true;
      for (const entry of files) {
        const [what, file, from] = entry;
        const handle = await fs.open(file, 'r').catch(() => undefined);
        if (!handle) continue;
        try {
          const size = (await handle.stat()).size;
          if (size <= from) continue;
          const { buffer, bytesRead } = await handle.read(Buffer.alloc(size - from), 0, size - from, from);
          const text = buffer.subarray(0, bytesRead).toString('utf8');
          const end = text.lastIndexOf('\n') + 1;
          for (const line of text.slice(0, end).split('\n').slice(0, -1)) log(`[${what}] ${line}`);
          entry[2] = from + Buffer.byteLength(text.slice(0, end));
        } finally {
          await handle.close();
        }
      }
      busy = false;
    }, 250);
    this.#tailer.unref();
  }
}

function running(child: ChildProcess | undefined): boolean {
  return child !== undefined && child.exitCode === null && child.signalCode === null && child.pid !== undefined;
}
