/**
 * `external:` of a top-level network or volume (compose's semantics: the object exists already on
 * the engine, under `name:` or else its key; it is never created and never removed). Such an object
 * is shared with whatever else on the host uses it, so it is host access (src/config/host-access.ts):
 * refused unless the host's policy allows `external-network:NAME` / `external-volume:NAME`.
 */
import type { Collector, LEntry } from './nodes.ts';
import { entryPos, keyPath } from './nodes.ts';
import { mapEntries, readBool, readString } from './read.ts';
import { EXTERNAL_NAME, hostAccessProblem } from './host-access.ts';

/**
 * Reads `external:` among an object's checked `keys`: undefined when it is absent or false (an
 * object of the deployment's own), the engine-side name when the policy allows it, `false` when
 * something is wrong (the issue is reported).
 */
export function readExternal(c: Collector, keys: ReadonlyMap<string, LEntry>, key: string, path: string, what: 'network' | 'volume'): string | false | undefined {
  const entry = keys.get('external');
  if (entry === undefined) return undefined;
  const externalPath = keyPath(path, 'external');
  let legacyName: string | undefined;
  if (entry.value.kind === 'map') {
    // The old form `external: {name: NAME}` (deprecated in compose in favour of `external: true` and `name:`).
    for (const e of mapEntries(c, entry.value, externalPath) ?? []) {
      if (e.key === 'name') legacyName = readString(c, e.value, keyPath(externalPath, 'name'));
      else c.issue(keyPath(externalPath, e.key), e.keyPos, `unknown key '${e.key}' in ${externalPath}; write external: true and the name under name:`);
    }
    if (legacyName === undefined) return false;
    c.warning(externalPath, entry.keyPos, `external: {name: ${legacyName}} is deprecated in compose; write external: true and name: ${legacyName}`);
  } else {
    const on = readBool(c, entry.value, externalPath);
    if (on === undefined) return false;
    if (!on) return undefined;
  }
  let ok = true;
  for (const [k, e] of keys) {
    if (k === 'external' || k === 'name') continue;
    c.issue(keyPath(path, k), e.keyPos, `${k} does not apply to an external ${what}: depad neither creates nor changes it; remove ${k} (or external: true)`);
    ok = false;
  }
  const nameEntry = keys.get('name');
  const given = nameEntry === undefined ? undefined : readString(c, nameEntry.value, keyPath(path, 'name'));
  if (nameEntry !== undefined && given === undefined) return false;
  if (given !== undefined && legacyName !== undefined && given !== legacyName) {
    c.issue(keyPath(path, 'name'), entryPos(nameEntry!), `name: ${given} and external.name: ${legacyName} differ; keep one of them`);
    return false;
  }
  const name = given ?? legacyName ?? key;
  if (!EXTERNAL_NAME.test(name)) {
    c.issue(nameEntry ? keyPath(path, 'name') : path, nameEntry ? entryPos(nameEntry) : entry.keyPos, `"${name}" is not a ${what} name the engine takes: letters, digits, _ . - (starting with a letter or digit)`);
    return false;
  }
  const problem = hostAccessProblem({ key: `${what}s.external`, value: name });
  if (problem !== undefined) {
    c.issue(externalPath, entry.keyPos, problem);
    return false;
  }
  return ok ? name : false;
}
