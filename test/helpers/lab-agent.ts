/**
 * A depad agent on a lab host (test/helpers/lab-engine.ts): run in the lab's network namespace,
 * against the lab's engine, on the test's home. Its proxy listens on the lab's own ports (80 for
 * HTTP), reached from the test at `lab.address`; `run` is the CLI on that host.
 */
import type { ExecutionContext } from 'ava';
import type { ChildProcess } from 'node:child_process';
import { DEPAD, type Harness, type Run } from './harness.ts';
import type { LabEngine } from './lab-engine.ts';

/** An agent on a lab host. */
export interface LabAgent {
  child: ChildProcess;
  exited: Promise<number | null>;
  /** What it printed so far (stdout and stderr). */
  output(): string;
  /** Stops it with SIGTERM; resolves with its exit code. */
  stop(): Promise<number | null>;
}

/** The environment of depad on the lab host for harness `h`. */
export function labEnv(lab: LabEngine, h: Harness): NodeJS.ProcessEnv {
  return { ...process.env, DOCKER_HOST: lab.dockerHost, DEPAD_HOME: h.home, DEPAD_PORT_RANGE: '20000-29999' };
}

/** Runs `depad args…` on the lab host; never throws on a non-zero exit. */
export async function labRun(lab: LabEngine, h: Harness, args: readonly string[], timeoutMs = 120_000): Promise<Run> {
  const r = await lab.exec(DEPAD, args, { env: labEnv(lab, h), timeoutMs });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

/** Starts `depad agent` on the lab host (HTTP proxy on port 80 of the lab); resolves once it listens. */
export async function startLabAgent(t: ExecutionContext, lab: LabEngine, h: Harness, extra: readonly string[] = []): Promise<LabAgent> {
  const args = ['--json', 'agent', '--api-port', '8443', '--api-host', '127.0.0.1', '--http-port', '80', '--http-host', '0.0.0.0', '--tcp-host', '0.0.0.0', ...extra];
  const child = lab.spawn(DEPAD, args, { env: labEnv(lab, h), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  t.teardown(() => void (child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')));
  const deadline = Date.now() + 60_000;
  while (!out.includes('"listening"')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the lab agent did not start: ${out}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { child, exited, output: () => out, stop: () => (child.kill('SIGTERM'), exited) };
}
