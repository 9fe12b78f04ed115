/**
 * Processes for the lab helpers (lab-host.ts, lab-engine.ts, lab-cluster.ts): running a command
 * to its end, and stamps naming an owner process (pid and kernel start time, so a reused pid is
 * not taken for the owner).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';

/** A finished command. */
export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command; never throws on a non-zero exit (code 127 when it cannot start, 124 on timeout). */
export function run(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(command, [...args], { env: options.env ?? process.env, timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const e = error as (NodeJS.ErrnoException & { killed?: boolean; code?: number | string }) | null;
      const code = !e ? 0 : e.killed ? 124 : typeof e.code === 'number' ? e.code : 127;
      resolve({ code, stdout, stderr: stderr || (e && code === 127 ? e.message : '') });
    });
  });
}

/** Runs a command and throws, with its stderr, unless it exits 0; returns stdout. */
export async function must(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<string> {
  const r = await run(command, args, options);
  if (r.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** The kernel's start time of a process (field 22 of /proc/PID/stat), or undefined when there is none. */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** `pid start` of this process, as written to owner and slot files. */
export function ownerStamp(): string {
  return `${process.pid} ${processStart(process.pid) ?? ''}`;
}

/** Whether the process a stamp names still runs (same pid, same start time). */
export function stampAlive(stamp: string): boolean {
  const [pid, start] = stamp.trim().split(/\s+/);
  const now = processStart(Number(pid));
  return now !== undefined && (!start || now === start);
}

/** Whether a unix socket accepts a connection. */
export function canConnect(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath);
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

/** Whether the engine at `socketPath` answers GET /_ping with OK. */
export function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath, path: '/_ping', timeout: 2000, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(res.statusCode === 200 && body === 'OK'));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}
