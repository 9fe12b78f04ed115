/** Reading what processes cost (CPU time, resident memory, children), and finding ports, for the benchmarks. */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** CPU time (ms, user + system) used so far by the processes `pids` (gone ones count 0). */
export function cpuMs(pids: number[]): number {
  const tick = 1000 / Number(execFileSync('getconf', ['CLK_TCK']).toString().trim() || 100);
  let total = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      total += (Number(fields[11]) + Number(fields[12])) * tick;
    } catch {
      // gone
    }
  }
  return total;
}

/** Resident memory of the processes `pids` (bytes, VmRSS; gone ones count 0). */
export function rss(pids: number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      total += Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
    } catch {
      // gone
    }
  }
  return total;
}

/** The child processes of `pid` (e.g. nginx's workers); none once it is gone. */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** A port free on 127.0.0.1 just now. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves once something accepts connections on 127.0.0.1:`port` (fails after `timeoutMs`). */
export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port}`);
    await sleep(50);
  }
}

/** What one `hey` run reports. */
export interface HeyResult {
  requests: number;
  failed: number;
  slowestMs: number;
  rps: number;
  statuses: string;
  errors: string;
}

/** Starts hey with `concurrency` clients for a long time; `stop()` interrupts it and parses its report. */
export function hey(url: string, concurrency: number, host?: string): { stop: () => Promise<HeyResult> } {
  const args = ['-z', '600s', '-c', String(concurrency), ...(host ? ['-host', host] : []), url];
  const child = spawn('hey', args);
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const done = new Promise((r) => child.on('close', r));
  return {
    stop: async () => {
      child.kill('SIGINT');
      await done;
      const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
      const statuses = [...out.matchAll(/\[(\d{3})\]\s+(\d+) responses/g)];
      const ok = statuses.filter((m) => m[1] === '200').reduce((a, m) => a + Number(m[2]), 0);
      const bad = statuses.filter((m) => m[1] !== '200').reduce((a, m) => a + Number(m[2]), 0);
      const errorLines = /Error distribution:\n([\s\S]*)$/.exec(out)?.[1] ?? '';
      const errors = [...errorLines.matchAll(/\[(\d+)\]\s+(.*)/g)];
      const errorCount = errors.reduce((a, m) => a + Number(m[1]), 0);
      return {
        requests: ok + bad + errorCount,
        failed: bad + errorCount,
        slowestMs: num(/Slowest:\s+([\d.]+) secs/) * 1000,
        rps: num(/Requests\/sec:\s+([\d.]+)/),
        statuses: statuses.map((m) => `${m[1]}×${m[2]}`).join(' '),
        errors: errors.slice(0, 3).map((m) => `${m[1]}× ${m[2]!.replace(/^Get "[^"]*": /, '').slice(0, 60)}`).join('; '),
      };
    },
  };
}
