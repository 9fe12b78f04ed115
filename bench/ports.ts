/**
 * Port allocation benchmark: 600 deployments × 5 ports, allocated one create after another the
 * way depad does (allocate, persist the ports in the registry and the cursor), with the real host
 * probe and an in-memory reserved set standing in for the registry. Run beside it with a probe
 * that always says "free", which is the allocator's own cost. A third run does what create does:
 * the registry and cursor in depad's LevelDB store, read before and written (one batch) after
 * each allocation. Exits 1 if a port is handed out twice.
 * Run: scripts/node bench/ports.ts [deployments] [ports-per-deployment]
 */
import fs from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { DEFAULT_PORT_RANGE, allocatePorts, isPortOpenOnHost } from '../src/ports/index.ts';
import { Store } from '../src/store/store.ts';

const deployments = Number(process.argv[2] ?? 600);
const perDeployment = Number(process.argv[3] ?? 5);

interface RunResult {
  totalMs: number;
  probes: number;
  handedOut: number;
  unique: boolean;
  cursor: number;
}

async function run(probe: (port: number) => Promise<boolean>): Promise<RunResult> {
  const reserved = new Set<number>();
  const handed: number[] = [];
  let cursor = DEFAULT_PORT_RANGE.min;
  let probes = 0;
  const counted = (port: number) => {
    probes++;
    return probe(port);
  };
  const start = performance.now();
  for (let i = 0; i < deployments; i++) {
    const a = await allocatePorts({ count: perDeployment, cursor, isReserved: (p) => reserved.has(p), isOpenOnHost: counted });
    for (const p of a.ports) {
      reserved.add(p);
      handed.push(p);
    }
    cursor = a.nextCursor;
  }
  const totalMs = performance.now() - start;
  return { totalMs, probes, handedOut: handed.length, unique: new Set(handed).size === handed.length, cursor };
}

/** As create does it: registry and cursor read from the store, the allocation committed in one batch. */
async function runWithStore(): Promise<RunResult> {
  const home = await fs.mkdtemp(path.join(tmpdir(), 'depad-bench-ports-'));
  const store = await Store.open(home, { command: 'bench' });
  const handed: number[] = [];
  let probes = 0;
  try {
    const start = performance.now();
    for (let i = 0; i < deployments; i++) {
      const reserved = await store.reservedPorts();
      const cursor = await store.getCursor();
      const a = await allocatePorts({
        count: perDeployment,
        cursor,
        isReserved: (p) => reserved.has(p),
        isOpenOnHost: (p) => (probes++, isPortOpenOnHost(p)),
      });
      const id = String(i).padStart(32, '0');
      await store
        .batch()
        .putPorts(a.ports.map((host) => ({ deploymentId: id, service: 'web', target: 80, protocol: 'tcp' as const, host, role: 'instance' as const, instance: 1 })))
        .setCursor(a.nextCursor)
        .write();
      handed.push(...a.ports);
    }
    const totalMs = performance.now() - start;
    return { totalMs, probes, handedOut: handed.length, unique: new Set(handed).size === handed.length, cursor: await store.getCursor() };
  } finally {
    await store.close();
    await fs.rm(home, { recursive: true, force: true });
  }
}

function report(label: string, r: RunResult): void {
  console.log(`${label}: total ${r.totalMs.toFixed(1)} ms`);
  console.log(`${label}: per deployment ${(r.totalMs / deployments).toFixed(3)} ms`);
  console.log(`${label}: ports handed out ${r.handedOut}, host probes ${r.probes}, final cursor ${r.cursor}`);
  console.log(`${label}: no port handed out twice: ${r.unique ? 'yes' : 'no'}`);
}

console.log(`ports bench: ${deployments} deployments x ${perDeployment} ports, node ${process.version}, ${cpus().length} CPUs`);
const real = await run(isPortOpenOnHost);
const free = await run(async () => false);
const stored = await runWithStore();
report('real probe', real);
report('always-free probe', free);
report('real probe + LevelDB registry', stored);
const ok = stored.unique && stored.handedOut === deployments * perDeployment && real.unique && free.unique && real.handedOut === deployments * perDeployment && free.handedOut === deployments * perDeployment;
if (!ok) {
  console.log('FAILED: a port was handed out twice or an allocation came up short');
  process.exitCode = 1;
}
