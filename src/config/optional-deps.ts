/** `depends_on.<svc>.required: false`: a dependency that may be absent from the file. */
import type { Collector } from './nodes.ts';
import type { ServiceDraft } from './service.ts';
import { sortedRecord } from './freeze.ts';

/** Drops optional dependencies on services the file does not have (with a warning), in place. */
export function dropAbsentOptional(c: Collector, services: Map<string, ServiceDraft>): void {
  for (const [name, draft] of services) {
    const absent = draft.dependencies.filter((d) => d.optional === true && !services.has(d.service));
    if (absent.length === 0) continue;
    for (const d of absent) c.warn(d.path, d.pos, `depends_on ${d.service} (required: false): there is no such service; ${name} starts without it`);
    const gone = new Set(absent.map((d) => d.service));
    services.set(name, {
      ...draft,
      dependencies: draft.dependencies.filter((d) => !gone.has(d.service)),
      spec: { ...draft.spec, dependsOn: sortedRecord(Object.entries(draft.spec.dependsOn).filter(([k]) => !gone.has(k))) },
    });
  }
}
