/**
 * Service `profiles` (Compose Specification): a service with profiles runs only when one of them
 * is active. The active profiles come from the `COMPOSE_PROFILES` variable (comma-separated; the
 * CLI's `--profile` sets it); `*` activates every profile.
 */
import { describe, indexPath, keyPath } from './nodes.ts';
import type { Collector, LEntry, LMap, LNode } from './nodes.ts';

/** The variable that names the active profiles, as in docker compose. */
export const PROFILES_VARIABLE = 'COMPOSE_PROFILES';

const PROFILE_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** The active profiles `env` names (`COMPOSE_PROFILES`, comma-separated, blanks dropped). */
export function activeProfiles(env: Readonly<Record<string, string>>): string[] {
  const value = Object.hasOwn(env, PROFILES_VARIABLE) ? env[PROFILES_VARIABLE] : undefined;
  return [...new Set((value ?? '').split(',').map((p) => p.trim()).filter((p) => p !== ''))];
}

/**
 * The entries of `services` that run with `active` profiles, and those that do not (still
 * validated, as compose validates the whole file), each without its `profiles` key.
 * A dependency on a service left out is an issue unless it is `required: false` (then dropped,
 * as compose does).
 */
export function applyProfiles(c: Collector, services: readonly LEntry[], active: readonly string[]): { enabled: LEntry[]; disabled: LEntry[] } {
  const all = active.includes('*');
  const enabled = new Map<string, boolean>();
  const stripped = new Map<string, LEntry>();
  for (const entry of services) {
    if (entry.value.kind !== 'map') {
      enabled.set(entry.key, true);
      stripped.set(entry.key, entry);
      continue;
    }
    const profilesEntry = entry.value.entries.find((e) => e.key === 'profiles');
    const profiles = profilesEntry ? readProfiles(c, profilesEntry.value, keyPath(keyPath('services', entry.key), 'profiles')) : [];
    enabled.set(entry.key, profiles.length === 0 || all || profiles.some((p) => active.includes(p)));
    stripped.set(entry.key, { ...entry, value: { ...entry.value, entries: entry.value.entries.filter((e) => e.key !== 'profiles') } });
  }
  const out: LEntry[] = [];
  const disabled: LEntry[] = [];
  for (const [name, entry] of stripped) {
    if (enabled.get(name) !== true) disabled.push(entry);
    else out.push(entry.value.kind === 'map' ? { ...entry, value: withoutDisabledDeps(c, name, entry.value, enabled) } : entry);
  }
  return { enabled: out, disabled };
}

function readProfiles(c: Collector, node: LNode, path: string): string[] {
  if (node.kind !== 'seq') {
    c.issue(path, node.pos, `expected a list of profile names, found ${describe(node)}`);
    return [];
  }
  const out: string[] = [];
  node.items.forEach((item, i) => {
    const text = item.kind === 'scalar' && item.value !== null ? c.text(item, indexPath(path, i)) : undefined;
    if (text === undefined || !PROFILE_NAME.test(text)) {
      if (text !== undefined || item.kind !== 'scalar') c.issue(indexPath(path, i), item.pos, `a profile name is letters, digits, '_', '.' and '-', starting with a letter or digit; found ${describe(item)}`);
      return;
    }
    out.push(text);
  });
  return out;
}

/** `depends_on` without optional (`required: false`) entries on disabled services; required ones are issues. */
function withoutDisabledDeps(c: Collector, name: string, service: LMap, enabled: ReadonlyMap<string, boolean>): LMap {
  const depends = service.entries.find((e) => e.key === 'depends_on');
  if (!depends) return service;
  const path = keyPath(keyPath('services', name), 'depends_on');
  const off = (target: string) => enabled.get(target) === false;
  const problem = (target: string) =>
    `service '${name}' depends on '${target}', which is not enabled by the active profiles; activate a profile of '${target}' (--profile or COMPOSE_PROFILES), give both services a common profile, or mark the dependency required: false`;
  let value: LNode = depends.value;
  if (value.kind === 'seq') {
    const items = value.items.filter((item, i) => {
      if (!(item.kind === 'scalar' && typeof item.value === 'string' && off(item.value))) return true;
      c.issue(indexPath(path, i), item.pos, problem(item.value));
      return false;
    });
    value = { ...value, items };
  } else if (value.kind === 'map') {
    const kept = value.entries.filter((e) => {
      if (!off(e.key)) return true;
      const required = e.value.kind === 'map' ? e.value.entries.find((x) => x.key === 'required') : undefined;
      const optional = required?.value.kind === 'scalar' && (required.value.value === false || required.value.value === 'false');
      if (!optional) c.issue(keyPath(path, e.key), e.keyPos, problem(e.key));
      return false;
    });
    value = { ...value, entries: kept };
  }
  return { ...service, entries: service.entries.map((e) => (e === depends ? { ...e, value } : e)) };
}
