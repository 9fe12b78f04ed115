/** How a service's `secrets:` and `configs:` reach the engine: read-only bind mounts of their copies under `<root>/secrets/`. */
import path from 'node:path';
import type { DeploymentSpec, ServiceSpec } from '../config/spec.ts';
import { secretFileName } from '../config/secrets.ts';

/** One mount of a secret's or config's host copy. */
export interface SecretMountPlan {
  /** `secret db_password` or `config app.conf`: what diff names. */
  readonly label: string;
  /** The host copy's file name under `<root>/secrets/` (digest, owner, mode; never the value). */
  readonly file: string;
  readonly source: string;
  readonly target: string;
}

/** The secret and config mounts of `s`. */
export function secretMountPlans(spec: DeploymentSpec, s: ServiceSpec, rootDir: string): SecretMountPlan[] {
  return (s.secretMounts ?? []).flatMap((m) => {
    const def = (m.kind === 'secret' ? spec.secrets : spec.configs)?.[m.source];
    if (def === undefined) return [];
    const file = secretFileName(def, m);
    return [{ label: `${m.kind} ${m.source}`, file, source: path.join(rootDir, 'secrets', file), target: m.target }];
  });
}

/** Whether an engine mount's source is a secret's or config's host copy (diff reports those by name). */
export function isSecretSource(source: string): boolean {
  return /\/deployments\/[0-9a-f]{32}\/secrets\/[^/]+$/.test(source);
}
