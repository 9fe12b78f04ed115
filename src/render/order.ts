/** Dependency order of a deployment's services. */
import type { DeploymentSpec } from '../config/spec.ts';

/**
 * Services in start order: every service after the ones it depends on, ties broken by name so
 * the order is deterministic. The config loader has already rejected cycles.
 */
export function startOrder(spec: DeploymentSpec): string[] {
  const remaining = new Map(Object.values(spec.services).map((s) => [s.name, new Set(Object.keys(s.dependsOn))]));
  const order: string[] = [];
  while (remaining.size > 0) {
    const ready = [...remaining].filter(([, deps]) => [...deps].every((d) => !remaining.has(d))).map(([n]) => n).sort();
    if (ready.length === 0) throw new Error(`dependency cycle among: ${[...remaining.keys()].join(', ')}`);
    for (const name of ready) {
      order.push(name);
      remaining.delete(name);
    }
  }
  return order;
}
