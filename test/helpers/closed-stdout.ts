/** Runs the real CLI with a stdout whose reader goes away, as `depad … | head -1` does. */
import { spawn } from 'node:child_process';
import { DEPAD } from './harness.ts';

/**
 * Runs `depad --home <home> args…` with stdout a pipe whose reader goes away: at once
 * (`after: 'start'`), or after the first chunk it reads (`after: 'first-chunk'`). Resolves with
 * the exit code and what it wrote to stderr; killed after 30 s.
 */
export function closedStdout(home: string, args: readonly string[], after: 'start' | 'first-chunk', env: Record<string, string> = {}): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(DEPAD, ['--home', home, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DEPAD_HOME: home, ...env } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    if (after === 'start') child.stdout.destroy();
    else child.stdout.once('data', () => child.stdout.destroy());
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}
