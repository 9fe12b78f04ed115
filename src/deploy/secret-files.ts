/**
 * The host copies of a deployment's secrets and configs: `<root>/secrets/` (0700), one file per
 * value, owner and mode (`<digest>-<uid>-<gid>-<mode>`, see src/config/secrets.ts), bind-mounted
 * read-only into the containers. A copy is written once and never changes, so every revision that
 * uses a value mounts the same file and `rollback` finds the earlier revision's copies in place;
 * copies no revision uses any more are removed with the revision (and all with the root).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { DeploymentSpec } from '../config/spec.ts';
import { secretFileName, secretValue } from '../config/secrets.ts';
import { DepadError } from '../errors.ts';

/** Names of the copies `spec` mounts. */
export function secretFilesOf(spec: Pick<DeploymentSpec, 'services' | 'secrets' | 'configs'>): Map<string, { label: string; digest: string; uid?: number; gid?: number; mode: number }> {
  const out = new Map<string, { label: string; digest: string; uid?: number; gid?: number; mode: number }>();
  for (const s of Object.values(spec.services)) {
    for (const m of s.secretMounts ?? []) {
      const def = (m.kind === 'secret' ? spec.secrets : spec.configs)?.[m.source];
      if (def === undefined) continue;
      out.set(secretFileName(def, m), { label: `${m.kind} ${m.source}`, digest: def.digest, mode: m.mode, ...(m.uid === undefined ? {} : { uid: m.uid }), ...(m.gid === undefined ? {} : { gid: m.gid }) });
    }
  }
  return out;
}

/** Writes the copies `spec` needs that are not there yet (a rollback finds its copies in place). */
export async function writeSecretFiles(rootDir: string, spec: DeploymentSpec): Promise<void> {
  const wanted = secretFilesOf(spec);
  if (wanted.size === 0) return;
  const dir = path.join(rootDir, 'secrets');
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await fs.chmod(dir, 0o700);
  const present = await fs.readdir(dir);
  for (const [file, want] of wanted) {
    if (present.includes(file)) continue;
    // The value: read by this process from the config, or an earlier copy of the same value.
    const twin = present.find((f) => f.startsWith(`${want.digest}-`));
    const value = secretValue(want.digest) ?? (twin ? await fs.readFile(path.join(dir, twin)) : undefined);
    if (value === undefined) {
      throw new DepadError('DEPAD_STATE_CORRUPT', `the value of ${want.label} is not in ${dir} any more`, { hint: 'update the deployment from its config file (depad update -f …), which gives the value again' });
    }
    const tmp = path.join(dir, `.${file}.tmp`);
    await fs.writeFile(tmp, value, { mode: 0o600 });
    try {
      if (want.uid !== undefined || want.gid !== undefined) await fs.chown(tmp, want.uid ?? process.getuid?.() ?? 0, want.gid ?? process.getgid?.() ?? 0);
      await fs.chmod(tmp, want.mode);
    } catch (error) {
      await fs.rm(tmp, { force: true });
      throw new DepadError('DEPAD_CONFIG_INVALID', `cannot give the copy of ${want.label} the owner ${want.uid ?? '-'}:${want.gid ?? '-'} and mode ${want.mode.toString(8)}: ${(error as Error).message}`, {
        hint: 'uid and gid other than your own need depad to run as root (the agent of a system install does); else leave them out',
      });
    }
    await fs.rename(tmp, path.join(dir, file));
  }
}

/** Removes the copies that no revision under `revisions/` uses any more. */
export async function pruneSecretFiles(rootDir: string): Promise<void> {
  const dir = path.join(rootDir, 'secrets');
  const present = await fs.readdir(dir).catch(() => [] as string[]);
  if (present.length === 0) return;
  const used = new Set<string>();
  for (const n of await fs.readdir(path.join(rootDir, 'revisions')).catch(() => [] as string[])) {
    const text = await fs.readFile(path.join(rootDir, 'revisions', n, 'spec.json'), 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    for (const file of secretFilesOf(JSON.parse(text) as DeploymentSpec).keys()) used.add(file);
  }
  for (const f of present) if (!used.has(f)) await fs.rm(path.join(dir, f), { force: true });
}

/** The variables `environment:` secrets and configs read: kept out of the revision's env.json (the copies hold the values). */
export function secretVariables(spec: Pick<DeploymentSpec, 'secrets' | 'configs'>): Set<string> {
  return new Set([...Object.values(spec.secrets ?? {}), ...Object.values(spec.configs ?? {})].flatMap((d) => (d.variable === undefined ? [] : [d.variable])));
}

/**
 * The values of the files `file:` secrets and configs of `spec` name (by their path in the config),
 * from their copies: so that the config kept with a revision can be read again without them.
 */
export async function secretFileValues(rootDir: string, spec: Pick<DeploymentSpec, 'secrets' | 'configs'>): Promise<Record<string, Buffer>> {
  const out: Record<string, Buffer> = {};
  const present = await fs.readdir(path.join(rootDir, 'secrets')).catch(() => [] as string[]);
  for (const d of [...Object.values(spec.secrets ?? {}), ...Object.values(spec.configs ?? {})]) {
    if (d.file === undefined) continue;
    const copy = present.find((f) => f.startsWith(`${d.digest}-`));
    const value = secretValue(d.digest) ?? (copy ? await fs.readFile(path.join(rootDir, 'secrets', copy)) : undefined);
    if (value !== undefined) Object.defineProperty(out, d.file, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * The values of the variables `environment:` secrets and configs of `spec` read, from their copies
 * (env.json leaves them out): so that an update with other variables, or a rollback, has them again.
 */
export async function secretVariableValues(rootDir: string, spec: Pick<DeploymentSpec, 'secrets' | 'configs'>): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const defs = [...Object.values(spec.secrets ?? {}), ...Object.values(spec.configs ?? {})].filter((d) => d.variable !== undefined);
  if (defs.length === 0) return out;
  const dir = path.join(rootDir, 'secrets');
  const present = await fs.readdir(dir).catch(() => [] as string[]);
  for (const d of defs) {
    const copy = present.find((f) => f.startsWith(`${d.digest}-`));
    const value = secretValue(d.digest) ?? (copy ? await fs.readFile(path.join(dir, copy)) : undefined);
    if (value !== undefined) Object.defineProperty(out, d.variable!, { value: value.toString('utf8'), enumerable: true, writable: true, configurable: true });
  }
  return out;
}
