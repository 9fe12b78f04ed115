/**
 * Cross-service checks of `network_mode`, `ipc` and `pid: service:<name>` (read in
 * service-engine.ts; the target's existence, self-reference and cycles are checked with the
 * other dependencies): what the engine needs of the service whose namespace is joined.
 */
import type { Collector } from './nodes.ts';
import type { ServiceDraft } from './service.ts';

/** Reports joins the engine would refuse: an IPC namespace that its owner does not share, an owner with several replicas. */
export function checkNamespaceJoins(c: Collector, services: ReadonlyMap<string, ServiceDraft>): void {
  for (const [name, draft] of services) {
    for (const ref of draft.dependencies.filter((d) => /\.(network_mode|ipc|pid)$/.test(d.path))) {
      const count = services.get(ref.service)?.spec.replicas ?? 1;
      if (count !== 1) c.issue(ref.path, ref.pos, `${ref.service} runs ${count} replicas, and ${name} can join the namespaces of ${count === 0 ? 'a running container' : 'one container'} only; run ${ref.service} as one replica, or put both on a shared network (networks:)`);
    }
    const target = draft.spec.engine?.joins?.ipc;
    if (target === undefined) continue;
    const owner = services.get(target);
    if (owner === undefined || owner.spec.engine?.host.IpcMode === 'shareable') continue;
    const ref = draft.dependencies.find((d) => d.service === target && d.path.endsWith('.ipc'));
    if (ref) c.issue(ref.path, ref.pos, `ipc: service:${target} joins ${target}'s IPC namespace, which the engine shares only when ${target} says ipc: shareable; add that to ${target} (${name} then joins it)`);
  }
}
