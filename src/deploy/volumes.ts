/**
 * depad's named volumes of one home (`depad volumes ls|rm`): every volume carrying depad's labels
 * and this home's, with the deployment that made it and the live deployment that uses it, if any
 * (the one that made it, or a later one of its name that reused it after `destroy --keep-volumes`).
 * Only such a volume, used by no deployment, is removed; nothing else on the engine is touched.
 * External volumes deployments use (`external: true`) are listed too, marked external, and never removed.
 */
import { LABELS } from '../engine/types.ts';
import { DepadError } from '../errors.ts';
import { homeIdentity } from '../home.ts';
import type { DeploymentRecord } from '../store/records.ts';
import type { OpContext } from './context.ts';
import { readPlanForView } from './root-dir.ts';

/** One of the home's volumes, as `depad volumes ls` shows it. */
export interface VolumeView {
  name: string;
  /** The deployment that made it (its labels): name and ID. */
  deployment: string;
  deploymentId: string;
  /** Its key in that deployment's config (`data` of `volumes: {data: …}`). */
  key?: string;
  /** The live deployment that uses it; absent for a volume kept by `destroy --keep-volumes`. */
  usedBy?: string;
  /** Bytes on disk, when sizes were asked for (-1: the engine did not measure it). */
  sizeBytes?: number;
  /** An external volume (not made by depad; `deployment` and `deploymentId` are empty): `usedBy` lists the deployments that mount it, comma-separated. */
  external?: true;
}

/** Lists the home's depad volumes, by name; `size` asks the engine to measure them (slow with much data). */
export async function listVolumes(ctx: Pick<OpContext, 'home' | 'engine' | 'store'>, options: { size?: boolean } = {}): Promise<VolumeView[]> {
  const home = homeIdentity(ctx.home);
  const [volumes, records, sizes] = await Promise.all([
    ctx.engine.listVolumes({ [LABELS.deploymentId]: null, [LABELS.home]: home }),
    ctx.store.listDeployments(),
    options.size ? ctx.engine.volumeSizes() : undefined,
  ]);
  const users = volumeUsers(records);
  const external = await externalVolumes(records, sizes);
  const own = volumes
    .filter((v) => v.labels[LABELS.home] === home && v.labels[LABELS.deployment] !== undefined)
    .map((v): VolumeView => {
      const usedBy = users.get(v.name) ?? records.find((r) => r.id === v.labels[LABELS.deploymentId])?.name;
      const key = v.labels[LABELS.volume];
      const size = sizes?.get(v.name);
      return {
        name: v.name,
        deployment: v.labels[LABELS.deployment] as string,
        deploymentId: v.labels[LABELS.deploymentId] as string,
        ...(key === undefined ? {} : { key }),
        ...(usedBy === undefined ? {} : { usedBy }),
        ...(sizes === undefined ? {} : { sizeBytes: size ?? -1 }),
      };
    })
  return [...own, ...external.filter((e) => !own.some((v) => v.name === e.name))].sort((a, b) => a.name.localeCompare(b.name));
}

/** The external volumes the deployments' current plans mount, with who mounts them. */
async function externalVolumes(records: readonly DeploymentRecord[], sizes: Map<string, number> | undefined): Promise<VolumeView[]> {
  const users = new Map<string, string[]>();
  for (const r of records) {
    const plan = await readPlanForView(r.rootDir, r.revision).catch(() => undefined);
    for (const v of plan?.external?.volumes ?? []) users.set(v, [...(users.get(v) ?? []), r.name]);
  }
  return [...users].map(([name, by]) => ({ name, deployment: '', deploymentId: '', usedBy: by.sort().join(','), external: true as const, ...(sizes === undefined ? {} : { sizeBytes: sizes.get(name) ?? -1 }) }));
}

/**
 * Removes the named volumes, all or none: each must be one of the home's depad volumes
 * (DEPAD_NOT_FOUND otherwise) and used by no deployment (DEPAD_ENGINE_CONFLICT), checked for every
 * name before the first is removed. Returns the names removed; `check` only checks (what a
 * confirmation asks about).
 */
export async function removeVolumes(ctx: OpContext, names: readonly string[], options: { check?: boolean } = {}): Promise<string[]> {
  if (names.length === 0) throw new DepadError('DEPAD_USAGE', 'name at least one volume', { hint: 'depad volumes ls lists them' });
  const mine = new Map((await listVolumes(ctx)).map((v) => [v.name, v]));
  const unique = [...new Set(names)];
  for (const name of unique) {
    const volume = mine.get(name);
    if (volume === undefined) {
      const labels = await ctx.engine.volumeLabels(name);
      throw new DepadError('DEPAD_NOT_FOUND', labels === undefined ? `no volume named ${name}` : `volume ${name} was not made by depad for ${ctx.home}: depad removes only its own`, {
        hint: labels === undefined ? 'depad volumes ls lists the volumes depad kept' : `it is left alone; another program's volume is removed with docker volume rm ${name}`,
      });
    }
    if (volume.external) {
      throw new DepadError('DEPAD_ENGINE_CONFLICT', `volume ${name} is external (used by ${volume.usedBy}): depad did not make it and never removes it`, { hint: `it is another program's volume; remove it with docker volume rm ${name} once nothing uses it` });
    }
    if (volume.usedBy !== undefined) {
      throw new DepadError('DEPAD_ENGINE_CONFLICT', `volume ${name} is used by deployment ${volume.usedBy}`, { hint: `it holds ${volume.usedBy}'s data; destroy the deployment first (depad destroy ${volume.usedBy}), which removes it` });
    }
  }
  if (options.check) return unique;
  for (const name of unique) {
    ctx.progress({ step: 'remove', message: `removing volume ${name}` });
    await ctx.engine.removeVolume(name);
  }
  return unique;
}

/** Which deployment uses each volume name (its record lists the volumes it mounts, some kept from an earlier one). */
function volumeUsers(records: readonly DeploymentRecord[]): Map<string, string> {
  const users = new Map<string, string>();
  for (const r of records) for (const v of r.volumes) users.set(v, r.name);
  return users;
}
