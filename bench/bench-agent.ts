/**
 * What the agent benchmarks share: a temporary DEPAD_HOME, the CLI on it, a `depad agent` on
 * loopback ports, and the cleanup (every deployment destroyed, the agent stopped, the home removed).
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

/** The CLI: this tree's, or DEPAD_BENCH_BIN (e.g. another worktree's bin/depad, to compare two trees with one bench). */
export const DEPAD = process.env.DEPAD_BENCH_BIN ?? path.join(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..'), 'bin/depad');

/** A bench's home and agent. */
export interface BenchAgent {
  home: string;
  env: NodeJS.ProcessEnv;
  /** Runs the CLI on the home; throws on a non-zero exit. */
  depad(args: string[]): string;
  agent: ChildProcessByStdio<null, Readable, null>;
  /** What the agent printed when it listened. */
  facts: { pid: number; apiPort: number; httpPort: number; fingerprint: string };
  /** Destroys `names` (missing ones are fine), stops the agent, removes the home. */
  cleanup(names: readonly string[]): Promise<void>;
}

/**
 * Makes a home under the temp directory and starts `depad agent` on it (API on `apiPort`, proxy HTTP
 * on `httpPort`). The port range stays below the kernel's ephemeral range: hundreds of health probes
 * open outgoing connections, which could take a port between depad's check and docker's bind.
 * `agentEnv` is added to the agent's environment only (not the CLI's), e.g. NODE_OPTIONS for a probe.
 */
export async function startBenchAgent(prefix: string, apiPort: number, httpPort: number, portRange = '20000-29999', agentEnv: NodeJS.ProcessEnv = {}): Promise<BenchAgent> {
  const home = await fs.mkdtemp(path.join(tmpdir(), `depad-bench-${prefix}-`));
  const env = { ...process.env, DEPAD_HOME: home, DEPAD_PORT_RANGE: portRange, XDG_CONFIG_HOME: path.join(home, 'config') };
  const depad = (args: string[]) => execFileSync(DEPAD, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const agent = spawn(DEPAD, ['--json', 'agent', '--api-port', String(apiPort), '--api-host', '127.0.0.1', '--http-port', String(httpPort), '--http-host', '127.0.0.1', '--tcp-host', '127.0.0.1'], {
    env: { ...env, ...agentEnv },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const facts = await new Promise<BenchAgent['facts']>((resolve) => {
    let out = '';
    agent.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{"listening"'));
      if (line) resolve((JSON.parse(line) as { listening: BenchAgent['facts'] }).listening);
    });
  });
  const cleanup = async (names: readonly string[]) => {
    for (const name of names) {
      try {
        depad(['destroy', name]);
      } catch (error) {
        const text = String((error as { stderr?: unknown }).stderr ?? error);
        if (!/no deployment named|DEPAD_NOT_FOUND/.test(text)) console.error(`bench: could not destroy ${name}: ${text.trim().split('\n')[0]}`);
      }
    }
    agent.kill('SIGTERM');
    await new Promise((resolve) => agent.once('exit', resolve));
    await fs.rm(home, { recursive: true, force: true });
  };
  return { home, env, depad, agent, facts, cleanup };
}
