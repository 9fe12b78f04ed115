/**
 * External networks and volumes (src/config/external.ts) must exist before a create, an update or
 * a start makes anything: depad never creates them, so a missing one is an error naming it and the
 * command that makes it, with nothing made.
 */
import { DepadError } from '../errors.ts';
import type { ExternalObjects } from '../render/external.ts';
import type { OpContext } from './context.ts';

/**
 * Fails with DEPAD_NOT_FOUND, naming the objects and `docker network create` / `docker volume create`,
 * when an external network or volume of `wanted` (`externalObjects(spec)`, a stored plan's `external`) does not exist.
 */
export async function assertExternalsExist(ctx: Pick<OpContext, 'engine'>, wanted: ExternalObjects | undefined): Promise<void> {
  if (wanted === undefined) return;
  const missing: string[] = [];
  const fixes: string[] = [];
  for (const name of wanted.networks) {
    if ((await ctx.engine.listNetworks({}, name)).length > 0) continue;
    missing.push(`network ${name}`);
    fixes.push(`docker network create ${name}`);
  }
  for (const name of wanted.volumes) {
    if ((await ctx.engine.volumeLabels(name)) !== undefined) continue;
    missing.push(`volume ${name}`);
    fixes.push(`docker volume create ${name}`);
  }
  if (missing.length === 0) return;
  throw new DepadError('DEPAD_NOT_FOUND', `the external ${missing.join(' and the external ')} ${missing.length === 1 ? 'does' : 'do'} not exist on the engine: depad uses an external object and never creates it`, {
    hint: `create it first (${fixes.join('; ')}), or remove external: true to let depad make the deployment's own; nothing was made`,
    details: { missing },
  });
}
