/**
 * Port allocation benchmark: 600 deployments × 5 ports, allocated one create after another the
 * way depad does (allocate, persist the ports in the registry and the cursor), with the real host
 * probe and an in-memory reserved set standing in for the registry. Run beside it with a probe
 * that always says "free", which is the allocator's own cost. Exits 1 if a port is handed out
 * twice. Run: scripts/node bench/ports.ts [deployments] [ports-per-deployment]
 */
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { DEFAULT_PORT_RANGE, allocatePorts, isPortOpenOnHost } from '../src/ports/index.ts';

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

function report(label: string, r: RunResult): void {
  console.log(`${label}: total ${r.totalMs.toFixed(1)} ms`);
  console.log(`${label}: per deployment ${(r.totalMs / deployments).toFixed(3)} ms`);
  console.log(`${label}: ports handed out ${r.handedOut}, host probes ${r.probes}, final cursor ${r.cursor}`);
  console.log(`${label}: no port handed out twice: ${r.unique ? 'yes' : 'no'}`);
}

console.log(`ports bench: ${deployments} deployments x ${perDeployment} ports, node ${process.version}, ${cpus().length} CPUs`);
const real = await run(isPortOpenOnHost);
const free = await run(async () => false);
report('real probe', real);
report('always-free probe', free);
const ok = real.unique && free.unique && real.handedOut === deployments * perDeployment && free.handedOut === deployments * perDeployment;
if (!ok) {
  console.log('FAILED: a port was handed out twice or an allocation came up short');
  process.exitCode = 1;
}
