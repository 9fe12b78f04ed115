/**
 * bench/placement: the manager's placement decision (src/cluster/placement.ts `place`) with many
 * simulated hosts, no engine and no network. 100 hosts (regions eu/us/ap, zones a–c, disks ssd/hdd,
 * 32–96 CPUs, 64–256 GiB; 3 cordoned, 2 down) take 10,000 deployments placed one after another
 * (needs 0.1–1 CPUs and 128 MiB–4 GiB, 20 classes and some without, constraints on region and
 * disk, spread over zone for half), each committed to its host as the manager would.
 * Prints p50/p99/max of one `place()` call (ms), the balance reached on the ready hosts
 * (max/min reserved share of CPU, of memory, and of the larger of the two: what placement evens
 * out) and how many were refused, by reason.
 *   scripts/node bench/placement.ts [--hosts 100] [--deployments 10000] [--seed 1]
 */
import { performance } from 'node:perf_hooks';
import { place } from '../src/cluster/placement.ts';
import type { HostView, PlacementRequest } from '../src/cluster/placement.ts';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const hostCount = flag('--hosts', 100);
const deploymentCount = flag('--deployments', 10_000);
let seed = flag('--seed', 1) >>> 0 || 1;
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

/** xorshift32: the same run for the same seed. */
function random(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 0x1_0000_0000;
}
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;

type MutableHost = { -readonly [K in keyof HostView]: HostView[K] } & { capacity: { cpus: number; memoryBytes: number; freePorts?: number }; reserved: { cpus: number; memoryBytes: number }; deployments: { name: string; class?: string; labels: Record<string, string> }[] };
const regions = ['eu', 'eu', 'us', 'us', 'ap'];
const hosts: MutableHost[] = Array.from({ length: hostCount }, (_, i) => ({
  name: `host-${String(i + 1).padStart(3, '0')}`,
  state: i % 37 === 5 ? 'cordoned' : i % 47 === 11 ? 'down' : 'ready',
  labels: { region: regions[i % regions.length] as string, zone: 'abc'[Math.floor(i / 5) % 3] as string, disk: i % 4 === 3 ? 'hdd' : 'ssd' },
  capacity: { cpus: pick([32, 48, 64, 96]), memoryBytes: pick([64, 128, 192, 256]) * GiB, freePorts: 6000 },
  reserved: { cpus: 0, memoryBytes: 0 },
  deployments: [],
}));

function request(n: number): PlacementRequest {
  const cls = random() < 0.8 ? `class-${Math.floor(random() * 20)}` : undefined;
  const constraints: PlacementRequest['constraints'][number][] = [];
  const r = random();
  if (r < 0.3) constraints.push({ label: 'region', op: '==', value: pick(['eu', 'us', 'ap']) });
  else if (r < 0.4) constraints.push({ label: 'region', op: '!=', value: 'ap' });
  if (random() < 0.15) constraints.push({ label: 'disk', op: '!=', value: 'hdd' });
  return {
    name: `${cls ?? 'app'}-${n}`,
    ...(cls === undefined ? {} : { class: cls }),
    labels: cls === undefined ? {} : { class: cls },
    need: { cpus: pick([0.1, 0.1, 0.25, 0.25, 0.25, 0.5, 0.5, 1]), memoryBytes: pick([128, 256, 256, 512, 512, 1024, 2048, 4096]) * MiB, ports: pick([1, 2, 3, 6]) },
    constraints,
    ...(random() < 0.5 ? { spread: 'zone' } : {}),
  };
}

const times: number[] = [];
const refused = new Map<string, number>();
const started = performance.now();
const cpuStart = process.cpuUsage();
for (let n = 1; n <= deploymentCount; n++) {
  const req = request(n);
  const t0 = performance.now();
  const result = place(req, hosts);
  times.push(performance.now() - t0);
  const h = hosts.find((x) => x.name === result.chosen);
  if (h === undefined) {
    const kinds = [...new Set(result.candidates.flatMap((c) => c.kinds ?? []).filter((k) => k === 'capacity' || k === 'constraint'))].sort().join('+') || 'none';
    refused.set(kinds, (refused.get(kinds) ?? 0) + 1);
    continue;
  }
  h.reserved.cpus = Math.round((h.reserved.cpus + req.need.cpus) * 1000) / 1000;
  h.reserved.memoryBytes += req.need.memoryBytes;
  h.capacity.freePorts = (h.capacity.freePorts ?? 0) - (req.need.ports ?? 0);
  h.deployments.push({ name: req.name, labels: { ...req.labels }, ...(req.class === undefined ? {} : { class: req.class }) });
}
const total = performance.now() - started;
const cpuUsed = process.cpuUsage(cpuStart);

const sorted = [...times].sort((a, b) => a - b);
const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
const ready = hosts.filter((h) => h.state === 'ready');
const shares = (of: (h: MutableHost) => number) => ready.map(of);
const cpu = shares((h) => h.reserved.cpus / h.capacity.cpus);
const mem = shares((h) => h.reserved.memoryBytes / h.capacity.memoryBytes);
const load = cpu.map((c, i) => Math.max(c, mem[i] ?? 0));
const ratio = (xs: number[]) => (Math.min(...xs) > 0 ? (Math.max(...xs) / Math.min(...xs)).toFixed(2) : '∞');
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const placed = deploymentCount - [...refused.values()].reduce((a, b) => a + b, 0);
const zones = new Map<string, number>();
for (const h of hosts) for (const d of h.deployments) if (d.class === 'class-0') zones.set(h.labels.zone ?? '-', (zones.get(h.labels.zone ?? '-') ?? 0) + 1);

console.log(`placement: ${hostCount} hosts (${ready.length} ready), ${deploymentCount} deployments, seed ${flag('--seed', 1)}`);
console.log(`place(): p50 ${q(0.5).toFixed(3)} ms, p99 ${q(0.99).toFixed(3)} ms, max ${(sorted.at(-1) ?? 0).toFixed(3)} ms; all ${(total / 1000).toFixed(2)} s (CPU ${((cpuUsed.user + cpuUsed.system) / 1000 / deploymentCount).toFixed(3)} ms per call, mean)`);
console.log(`placed ${placed}, refused ${deploymentCount - placed}${refused.size > 0 ? ` (${[...refused].map(([k, v]) => `${k}: ${v}`).join(', ')})` : ''}`);
console.log(`balance on ready hosts: cpu reserved ${pct(Math.min(...cpu))}–${pct(Math.max(...cpu))} (max/min ${ratio(cpu)}), memory ${pct(Math.min(...mem))}–${pct(Math.max(...mem))} (max/min ${ratio(mem)}); load (the larger share) ${pct(Math.min(...load))}–${pct(Math.max(...load))} (max/min ${ratio(load)})`);
console.log(`spread of class-0 over zones: ${[...zones].sort().map(([z, n]) => `${z}=${n}`).join(', ')}`);
