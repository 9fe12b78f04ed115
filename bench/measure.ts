/** Reading what processes cost, for the benchmarks. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

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
