/**
 * Cluster benchmark on a lab cluster (three hosts, each a network namespace with its own engine and
 * agent; host-1 and host-2 joined to a manager, host-3 standalone; test/helpers/lab-cluster.ts,
 * lab-manager.ts). Run as root:
 *   scripts/node bench/cluster.ts [create|down|all] [rounds]
 *   create: `depad create` of examples/clinic through the manager (placed on host-1) against the same
 *           create straight to host-3's standalone agent (a joined agent takes creates from its manager
 *           only; the hosts are alike), alternated in one run, `rounds` each (default 5); prints
 *           the medians and their ratio (the goal: ≤ 1.15×). Each one is destroyed before the next.
 *   down:   the time from host-2's agent being killed to `down` in `depad hosts` (default heartbeat 2 s,
 *           so the bound is 3 × 2 s + 2 s = 8 s), polled every 100 ms, `rounds` times (default 3).
 * Everything is removed at the end (the lab's teardown).
 */
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { clientEnv, startHostAgent, startLabCluster, stopHostAgent } from '../test/helpers/lab-cluster.ts';
import { joinLabCluster } from '../test/helpers/lab-manager.ts';
import { run } from '../test/helpers/lab-proc.ts';
import { DEPAD } from '../test/helpers/harness.ts';

const what = process.argv[2] ?? 'all';
const ROUNDS = Number(process.argv[3] ?? (what === 'down' ? 3 : 5));
const CLINIC = path.resolve(import.meta.dirname, '..', 'examples', 'clinic', 'depad.yml');

// The lab helpers take an ava context for their teardowns: a small one of our own.
const teardowns: Array<() => unknown> = [];
const t = { teardown: (fn: () => unknown) => void teardowns.push(fn), log: (...m: unknown[]) => process.stderr.write(`${m.join(' ')}\n`) } as unknown as ExecutionContext;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function timed(fn: () => Promise<{ code: number; stderr: string }>): Promise<number> {
  const started = performance.now();
  const r = await fn();
  if (r.code !== 0) throw new Error(r.stderr);
  return performance.now() - started;
}

async function main(): Promise<void> {
  // host-3 keeps a standalone agent: a joined agent takes creates from its manager only.
  const state = await startLabCluster(t, 3, { labels: [{ zone: 'a' }, { zone: 'b' }, { zone: 'c' }] });
  const m = await joinLabCluster(t, state, { hosts: 2 });
  const host3 = state.hosts[2]!;
  if (what === 'create' || what === 'all') {
    const viaManager: number[] = [];
    const direct: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      viaManager.push(await timed(() => m.run(['create', '-n', `m${i}`, '-f', CLINIC, '--on-host', 'host-1'])));
      await m.run(['destroy', `m${i}`]);
      direct.push(await timed(() => run(DEPAD, ['create', '-n', `d${i}`, '-f', CLINIC], { env: clientEnv(host3), timeoutMs: 180_000 })));
      await run(DEPAD, ['destroy', `d${i}`], { env: clientEnv(host3), timeoutMs: 180_000 });
    }
    const a = median(viaManager);
    const b = median(direct);
    console.log(`create examples/clinic, ${ROUNDS} each, alternated: through the manager to host-1 median ${a.toFixed(0)} ms (${viaManager.map((x) => x.toFixed(0)).join(', ')}); straight to host-3's standalone agent median ${b.toFixed(0)} ms (${direct.map((x) => x.toFixed(0)).join(', ')}); ratio ${(a / b).toFixed(3)}×`);
  }
  if (what === 'down' || what === 'all') {
    const host2 = state.hosts[1]!;
    const times: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      await stopHostAgent(host2);
      const killed = performance.now();
      for (;;) {
        const r = await m.run(['--json', 'hosts']);
        const state2 = (JSON.parse(r.stdout) as Array<{ name: string; state: string }>).find((h) => h.name === 'host-2')?.state;
        if (state2 === 'down') break;
        if (performance.now() - killed > 30_000) throw new Error('host-2 never went down');
        await new Promise((r2) => setTimeout(r2, 100));
      }
      times.push(performance.now() - killed);
      await startHostAgent(state, 'host-2');
      // Ready again before the next round.
      for (let j = 0; j < 100; j++) {
        const r = await m.run(['--json', 'hosts']);
        if ((JSON.parse(r.stdout) as Array<{ name: string; state: string }>).find((h) => h.name === 'host-2')?.state === 'ready') break;
        await new Promise((r2) => setTimeout(r2, 100));
      }
    }
    console.log(`agent killed → down in depad hosts (heartbeat 2 s, bound 8 s): ${times.map((x) => (x / 1000).toFixed(2)).join(' s, ')} s; median ${(median(times) / 1000).toFixed(2)} s`);
  }
}

try {
  await main();
} finally {
  for (const fn of teardowns.reverse()) await Promise.resolve(fn()).catch((e: Error) => process.stderr.write(`teardown: ${e.message}\n`));
}
