/**
 * A preload for the memory benchmarks: `NODE_OPTIONS="--import <this file>"` with
 * DEPAD_MEM_PROBE_FILE set makes the process append one JSON line of its memory to that file
 * every DEPAD_MEM_PROBE_MS (default 1000) and when it gets SIGUSR2 (with `--heapsnapshot-signal=SIGUSR2`
 * Node writes a heap snapshot on it as well). A line: process.memoryUsage() (MB), V8's heap
 * spaces (used/committed MB), and the kernel's view of the process (smaps_rollup: anonymous and
 * file-backed resident memory; smaps: resident MB of 256 KiB anonymous mappings, V8's pages, of
 * malloc's main arena and of other anonymous mappings). Nothing in src/ depends on it.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import v8 from 'node:v8';

const file = process.env.DEPAD_MEM_PROBE_FILE;
const mb = (n: number) => Math.round((n / 1048576) * 10) / 10;

/** One reading of this process's memory. */
export function memoryReading(): Record<string, unknown> {
  const usage = process.memoryUsage();
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name.replace(/_space$/, ''), [mb(s.space_used_size), mb(s.physical_space_size)]]));
  const kernel: Record<string, number> = {};
  try {
    for (const line of readFileSync('/proc/self/smaps_rollup', 'utf8').split('\n')) {
      const m = /^(Rss|Anonymous|LazyFree|Pss_Anon|Pss_File|Private_Dirty|Shared_Clean|Private_Clean):\s+(\d+) kB/.exec(line);
      if (m) kernel[m[1] as string] = Math.round(Number(m[2]) / 102.4) / 10;
    }
    // Anonymous mappings by kind: V8's heap pages are 256 KiB each; [heap] is malloc's main arena.
    let size = 0;
    let kind = '';
    for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
      if (m) {
        size = (parseInt(m[2] as string, 16) - parseInt(m[1] as string, 16)) / 1024;
        kind = m[4] === '[heap]' ? 'mallocMain' : m[4] !== '' ? '' : size === 256 && m[3] === 'rw-p' ? 'pages256k' : 'anonOther';
      } else if (kind && line.startsWith('Rss:')) {
        kernel[kind] = Math.round(((kernel[kind] ?? 0) + Number(line.split(/\s+/)[1]) / 1024) * 10) / 10;
      }
    }
  } catch {
    // not Linux
  }
  return {
    t: Date.now(),
    rss: mb(usage.rss),
    heapTotal: mb(usage.heapTotal),
    heapUsed: mb(usage.heapUsed),
    external: mb(usage.external),
    arrayBuffers: mb(usage.arrayBuffers),
    malloced: mb(v8.getHeapStatistics().malloced_memory),
    spaces,
    kernel,
  };
}

if (file) {
  const write = (tag: string) => appendFileSync(file, `${JSON.stringify({ tag, ...memoryReading() })}\n`);
  setInterval(() => write('tick'), Number(process.env.DEPAD_MEM_PROBE_MS ?? 1000)).unref();
  process.on('SIGUSR2', () => write('signal'));
}
