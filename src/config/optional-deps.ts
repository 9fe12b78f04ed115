/** Post-processing of the services read: optional dependencies (`required: false`) and anonymous volumes. */
import type { Collector } from './nodes.ts';
import { keyPath } from './nodes.ts';
import type { VolumeSpec } from './spec.ts';
import type { ServiceDraft } from './service.ts';
import { sortedRecord } from './freeze.ts';

/** Drops optional dependencies on services the file does not have (with a warning), in place. */
export function dropAbsentOptional(c: Collector, services: Map<string, ServiceDraft>): void {
  for (const [name, draft] of services) {
    const absent = draft.dependencies.filter((d) => d.optional === true && !services.has(d.service));
    if (absent.length === 0) continue;
    for (const d of absent) c.warning(d.path, d.pos, `depends_on ${d.service} (required: false): there is no such service; ${name} starts without it`);
    const gone = new Set(absent.map((d) => d.service));
    services.set(name, {
      ...draft,
      dependencies: draft.dependencies.filter((d) => !gone.has(d.service)),
      spec: { ...draft.spec, dependsOn: sortedRecord(Object.entries(draft.spec.dependsOn).filter(([k]) => !gone.has(k))) },
    });
  }
}

/** The top-level volumes plus one local volume per anonymous mount of the services (labelled with the deployment by render, removed by destroy). */
export function withAnonymousVolumes(declared: Readonly<Record<string, VolumeSpec>>, drafts: readonly ServiceDraft[]): Record<string, VolumeSpec> {
  const keys = drafts.flatMap((d) => d.anonymous ?? []);
  if (keys.length === 0) return { ...declared };
  return sortedRecord([...Object.entries(declared), ...keys.map((name): [string, VolumeSpec] => [name, { name, driver: 'local', driverOpts: {}, labels: {} }])]);
}

/** An env file in compose's `format: raw`: `KEY=VALUE` lines taken as written; blank lines and `#` comment lines skipped. */
export function parseRawEnv(text: string): { values: Record<string, string>; issues: [] } {
  const values: Record<string, string> = {};
  for (const line of text.replace(/^\uFEFF/, '').split(/\r?\n/)) {
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq > 0) values[line.slice(0, eq).trim()] = line.slice(eq + 1);
  }
  return { values, issues: [] };
}

/** `container_name`s (network aliases in depad) must be unique and must not be another service's name, as in compose. */
export function checkContainerNames(c: Collector, services: ReadonlyMap<string, ServiceDraft>): void {
  const owner = new Map<string, string>();
  for (const [name, draft] of services) {
    for (const alias of draft.spec.engine?.aliases ?? []) {
      const path = keyPath(keyPath('services', name), 'container_name');
      const other = owner.get(alias);
      if (other !== undefined) c.issue(path, draft.keyPos, `container_name ${alias} is given to services ${other} and ${name}; give each its own`);
      else if (services.has(alias) && alias !== name) c.issue(path, draft.keyPos, `container_name ${alias} is the name of another service; choose another`);
      owner.set(alias, name);
    }
  }
}
