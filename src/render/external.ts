/**
 * External networks and volumes in the plan (src/config/external.ts): containers join and mount
 * them by their real engine name; they are kept out of the plan's own `networks` and `volumes`, so
 * nothing creates, reuses or removes them, and listed in `Rendered.external` for the check that
 * they exist (src/deploy/externals.ts).
 */
import type { DeploymentSpec } from '../config/spec.ts';
import { scopedName } from './names.ts';

/** The engine names of a plan's external objects. */
export interface ExternalObjects {
  readonly networks: string[];
  readonly volumes: string[];
}

/** The engine name of network `key`: its real name when external, else the deployment's own. */
export function networkEngineName(spec: Pick<DeploymentSpec, 'networks'>, deployment: string, key: string): string {
  return spec.networks[key]?.external ?? scopedName(deployment, key);
}

/** The engine name of volume `key`: its real name when external, else the deployment's own. */
export function volumeEngineName(spec: Pick<DeploymentSpec, 'volumes'>, deployment: string, key: string): string {
  return spec.volumes[key]?.external ?? scopedName(deployment, key);
}

/** The spec's external networks and volumes (engine names, sorted); undefined when it has none. */
export function externalObjects(spec: Pick<DeploymentSpec, 'networks' | 'volumes'>): ExternalObjects | undefined {
  const names = (objects: Readonly<Record<string, { readonly external?: string }>>) => [...new Set(Object.values(objects).flatMap((o) => (o.external === undefined ? [] : [o.external])))].sort();
  const networks = names(spec.networks);
  const volumes = names(spec.volumes);
  return networks.length + volumes.length === 0 ? undefined : { networks, volumes };
}

/** The compose file's entries for the external objects: `{external: true, name}` by key. */
export function composeExternals(objects: Readonly<Record<string, { readonly external?: string }>>): Record<string, { external: true; name: string }> {
  return Object.fromEntries(Object.entries(objects).flatMap(([key, o]) => (o.external === undefined ? [] : [[key, { external: true as const, name: o.external }]])));
}
