/**
 * A deployment's resource budget (`x-depad.resources`: cpus, memory, pids): the most its services'
 * limits (`deploy.resources.limits`) may add up to. With a budget for a resource, every service
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

/** Records an issue at the budget's key for each resource the services' limits do not fit. */
export function checkBudget(c: Collector, budget: ResourceLimits | undefined, services: ReadonlyArray<{ name: string; limits: ResourceLimits }>): void {
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
    const shares = services.map((s) => ({ name: s.name, n: of(s.limits) as number }));
    const total = shares.reduce((sum, s) => sum + s.n, 0);
    if (total > cap) {
      c.issue(path, pos, `the services' ${key} limits add up to ${text(total)} (${shares.map((s) => `${s.name} ${text(s.n)}`).join(', ')}), over the budget of ${text(cap)}; raise the budget or lower a limit`);
    }
  }
}
