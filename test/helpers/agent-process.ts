/**
 * A real `depad agent` process on a test's home, for the agent and remote-CLI tests: started with
 * --json, its listening facts parsed from stdout, killed in t.teardown if still running.
 */
import type { ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { DEPAD } from './harness.ts';
import type { Harness } from './harness.ts';

/** A started agent. */
export interface Started {
  child: ChildProcess;
  facts: { apiPort: number; httpPort: number; httpsPort?: number; fingerprint: string; newCa: boolean };
  exited: Promise<number | null>;
}

/**
 * Starts `depad agent` on loopback ports from `port()` (plus `extra` arguments and `env`; `bin`, another
 * copy of the command); resolves once it listens.
 */
export async function startAgent(t: ExecutionContext, h: Harness, port: () => number, extra: string[] = [], env: Record<string, string> = {}, bin = DEPAD): Promise<Started> {
  const args = ['--json', '--home', h.home, 'agent', '--api-port', String(port()), '--api-host', '127.0.0.1', '--http-port', String(port()), '--http-host', '127.0.0.1', '--tcp-host', '127.0.0.1', ...extra];
  const child = spawn(bin, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, DEPAD_HOME: h.home, DEPAD_PORT_RANGE: h.portRange, DEPAD_SUBNET_POOL: h.subnetPool, ...env },
  });
  t.teardown(() => void (child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const facts = await new Promise<Started['facts']>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve((JSON.parse(line) as { listening: Started['facts'] }).listening);
    });
    void exited.then((code) => reject(new Error(`agent exited ${code}: ${stderr}`)));
  });
  return { child, facts, exited };
}

