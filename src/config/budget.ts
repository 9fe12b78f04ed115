/**
 * A deployment's resource budget (`x-depad.resources`: cpus, memory, pids): the most its services'
 * limits (`deploy.resources.limits`) may add up to, every replica counted. With a budget for a resource, every service
 * must declare a limit for it (an unlimited service would make the budget meaningless), and the
 * sum must fit. Checked at load, so create and update refuse a config that breaks it, naming the
 * budget's line and each service's share.
 */
import type { ResourceLimits } from './spec.ts';
import type { Collector } from './nodes.ts';

const KEYS = [
  { key: 'cpus', text: (n: number) => `${n / 1000} CPUs`, of: (l: ResourceLimits) => (l.cpus === undefined ? undefined : Math.round(l.cpus * 1000)) },
  { key: 'memory', text: bytesText, of: (l: ResourceLimits) => l.memoryBytes },
  { key: 'pids', text: (n: number) => `${n} processes`, of: (l: ResourceLimits) => l.pids },
] as const;

/** A CPU count for people: `1 CPU`, `0.5 CPUs`. */
export function cpusText(cpus: number): string {
  return `${cpus} ${cpus === 1 ? 'CPU' : 'CPUs'}`;
}

/** A byte count for people: `512 MiB`, `1.5 GiB`. */
export function bytesText(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let n = bytes;
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${Number.isInteger(n) ? n : n.toFixed(1)} ${units[i]}`;
}

/**
 * Records an issue at the budget's key for each resource the services' limits do not fit: every
 * replica counts (`replicas`, default 1), plus the largest `surge` of one service (the replicas a
 * start-first rolling batch runs beside the old ones; services are rolled one at a time).
 */
export function checkBudget(c: { readonly positions: ReadonlyMap<string, { line: number; column: number }>; issue: Collector['issue'] }, budget: ResourceLimits | undefined, services: ReadonlyArray<{ name: string; limits: ResourceLimits; replicas?: number; surge?: number }>): void {
  if (budget === undefined) return;
  for (const { key, text, of } of KEYS) {
    const cap = of(budget);
    if (cap === undefined) continue;
    const path = `x-depad.resources.${key}`;
    const pos = c.positions.get(path) ?? { line: 1, column: 1 };
    const unlimited = services.filter((s) => of(s.limits) === undefined).map((s) => s.name);
    if (unlimited.length > 0) {
      c.issue(path, pos, `with a ${key} budget every service needs deploy.resources.limits.${key}; ${unlimited.join(', ')} ${unlimited.length === 1 ? 'has' : 'have'} none`);
      continue;
    }
    const { shares, peak, total } = limitsTotal(services, (l) => of(l) as number);
    if (total > cap) {
      const parts = shares.map((s) => `${s.name} ${s.count > 1 ? `${s.count} × ${text(s.each)}` : text(s.each)}`);
      if (peak.s !== undefined) parts.push(`and ${peak.s.surge} × ${text(peak.s.each)} while ${peak.s.name} rolls start-first`);
      c.issue(path, pos, `the services' ${key} limits add up to ${text(total)} (${parts.join(', ')}), over the budget of ${text(cap)}; ${services.some((s) => (s.replicas ?? 1) > 1) ? 'raise the budget, lower a limit, run fewer replicas or roll fewer at a time (update_config.parallelism)' : 'raise the budget or lower a limit'}`);
    }
  }
}

/**
 * What services' limits of one resource add up to (`of` gives a service's, per replica): every
 * replica (`replicas`, default 1), plus the largest start-first `surge` of one service (services
 * roll one at a time). The budget check and cluster placement (src/cluster/need.ts) count alike.
 */
export function limitsTotal<S extends { name: string; limits: ResourceLimits; replicas?: number; surge?: number }>(services: readonly S[], of: (limits: ResourceLimits, service: S) => number) {
  const shares = services.map((s) => ({ name: s.name, each: of(s.limits, s), count: s.replicas ?? 1, surge: s.surge ?? 0 }));
  const steady = shares.reduce((sum, s) => sum + s.each * s.count, 0);
  const peak = shares.reduce((best, s) => (s.each * s.surge > best.n ? { n: s.each * s.surge, s } : best), { n: 0, s: undefined as (typeof shares)[number] | undefined });
  return { shares, steady, peak, total: steady + peak.n };
}
