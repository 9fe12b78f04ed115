/**
 * A small cluster on this machine for the manager's tests: a `depad manager` process and N
 * `depad agent` processes, each with its own home under the test's directory and its own share of
 * the test's port range, joined with one-time tokens and advertising 127.0.0.1. The agents share
 * the machine's engine (the lab, test/helpers/lab-cluster.ts, gives each host its own); what they
 * create is labelled with the test's prefix and removed by the harness.
 */
import type { ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { DEPAD, type Harness, type Run } from './harness.ts';

/** A process of the cluster, restartable with the same arguments. */
export interface ClusterProcess {
  child: ChildProcess;
  home: string;
  /** What it printed as {listening: …}. */
  facts: { apiPort: number; fingerprint: string; httpPort?: number };
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again (same home, ports and options, no --join). */
  restart(): Promise<void>;
}

/** The cluster. */
export interface TestCluster {
  manager: ClusterProcess;
  agents: ClusterProcess[];
  /** Runs the CLI against the manager over HTTPS with an admin token (as a remote user would). */
  run(args: readonly string[], options?: { token?: string; env?: Record<string, string> }): Promise<Run>;
  /** Runs the CLI on the manager's home (its unix socket: the local administrator). */
  local(args: readonly string[]): Promise<Run>;
  /** The admin token made on the manager. */
  token: string;
  /** --host/--ca-fingerprint arguments that reach the manager. */
  remote: string[];
}

async function launch(t: ExecutionContext, h: Harness, home: string, args: string[], env: Record<string, string>): Promise<ClusterProcess> {
  const proc: ClusterProcess = {
    child: undefined as unknown as ChildProcess,
    home,
    facts: { apiPort: 0, fingerprint: '' },
    kill: async (signal = 'SIGKILL') => {
      const c = proc.child;
      if (c.exitCode !== null || c.signalCode !== null) return;
      await new Promise((resolve) => (c.once('exit', resolve), c.kill(signal)));
    },
    restart: async () => {
      await proc.kill();
      await start(args.filter((a, i) => !(a.startsWith('--join') || args[i - 1]?.startsWith('--join'))));
    },
  };
  const start = async (argv: string[]) => {
    const child = spawn(DEPAD, ['--json', '--home', home, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DEPAD_HOME: home, DEPAD_SUBNET_POOL: h.subnetPool, ...env } });
    t.teardown(() => void (child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')));
    proc.child = child;
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    proc.facts = await new Promise((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n').find((l) => l.startsWith('{"listening"'));
        if (line) resolve((JSON.parse(line) as { listening: ClusterProcess['facts'] }).listening);
      });
      child.once('exit', (code) => reject(new Error(`${argv[0]} exited ${code}: ${err}`)));
    });
  };
  await start(args);
  return proc;
}

/** Starts a manager and `labels.length` agents (host-1…), host i with `labels[i]` and `capacity[i]` (`cpus=2,memory=4g`). */
export async function startCluster(t: ExecutionContext, h: Harness, hosts: { labels: Record<string, string>; capacity?: string }[], options: { heartbeatMs?: number } = {}): Promise<TestCluster> {
  const [lo, hi] = h.portRange.split('-').map(Number);
  const base = hi! - 39; // the test's last 40 ports for the processes; the hosts share the others for their deployments
  const managerHome = path.join(h.dir, 'manager');
  const manager = await launch(t, h, managerHome, ['manager', '--api-port', String(base), '--api-host', '127.0.0.1', '--heartbeat', String(options.heartbeatMs ?? 500)], {});
  const local: TestCluster['local'] = (args) => h.run(args, { env: { DEPAD_HOME: managerHome } });
  const made = await local(['--json', 'token', 'create', '--name', 'admin', '--scope', 'admin']);
  const token = (JSON.parse(made.stdout) as { token: string }).token;
  const remote = ['--host', `https://127.0.0.1:${base}`, '--ca-fingerprint', manager.facts.fingerprint];
  const agents: ClusterProcess[] = [];
  const share = Math.floor((hi! - 39 - lo!) / hosts.length / 100) * 100; // whole blocks of 100 ports
  for (const [i, host] of hosts.entries()) {
    const join = (JSON.parse((await local(['--json', 'manager', 'join-token'])).stdout) as { token: string }).token;
    const labels = Object.entries(host.labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]);
    const range = `${lo! + i * share}-${lo! + (i + 1) * share - 1}`;
    agents.push(
      await launch(t, h, path.join(h.dir, `host-${i + 1}`), ['agent', '--api-port', String(base + 1 + 2 * i), '--api-host', '127.0.0.1', '--http-port', String(base + 2 + 2 * i), '--http-host', '127.0.0.1', '--tcp-host', '127.0.0.1', '--join', `https://127.0.0.1:${base}`, '--join-token', join, '--name', `host-${i + 1}`, '--advertise-address', '127.0.0.1', ...labels, ...(host.capacity ? ['--capacity', host.capacity] : [])], { DEPAD_PORT_RANGE: range }),
    );
  }
  const run: TestCluster['run'] = (args, o = {}) => h.run([...remote, '--token', o.token ?? token, ...args], { env: { DEPAD_HOME: path.join(h.dir, 'client'), ...o.env } });
  return { manager, agents, run, local, token, remote };
}
