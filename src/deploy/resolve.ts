/** Deployment names, and finding a deployment by name, ID or ID prefix. */
import { DEPLOYMENT_NAME } from '../config/top-level.ts';
import { DepadError } from '../errors.ts';
import type { DeploymentRecord } from '../store/records.ts';
import type { Store } from '../store/store.ts';

/** Deployment names: lowercase letters, digits and `-`, starting and ending with a letter or digit, ≤ 63 chars. */
export const NAME_PATTERN = DEPLOYMENT_NAME;

/** Throws DEPAD_NAME_INVALID unless `name` is a valid deployment name. */
export function assertValidName(name: string): void {
  if (NAME_PATTERN.test(name)) return;
  const why =
    name.length === 0 ? 'it is empty' : name.length > 63 ? `it has ${name.length} characters (at most 63)` : 'it has characters other than a-z, 0-9 and -, or starts or ends with -';
  throw new DepadError('DEPAD_NAME_INVALID', `invalid deployment name ${JSON.stringify(name)}: ${why}`, {
    hint: 'use lowercase letters, digits and -, e.g. mercy-hospital',
  });
}

/** Finds a deployment by exact name, exact ID, or unambiguous ID prefix. */
export async function resolveDeployment(store: Store, ref: string): Promise<DeploymentRecord> {
  const byName = await store.idForName(ref);
  if (byName) {
    const record = await store.getDeployment(byName);
    if (record) return record;
  }
  if (/^[0-9a-f]+$/.test(ref)) {
    const matches = (await store.listDeployments()).filter((d) => d.id.startsWith(ref));
    if (matches.length === 1) return matches[0]!;
    if (matches.length > 1) {
      throw new DepadError('DEPAD_AMBIGUOUS', `ID prefix ${ref} matches ${matches.length} deployments: ${matches.map((d) => `${d.name} (${d.id.slice(0, 12)})`).join(', ')}`, {
        hint: 'give more characters of the ID, or the name',
      });
    }
  }
  throw new DepadError('DEPAD_NOT_FOUND', `no deployment named or with ID ${JSON.stringify(ref)}`, {
    hint: 'list deployments with: depad ls',
  });
}

/** Checks that every named service exists in the deployment's rendered plan. */
export function assertServices(record: DeploymentRecord, known: readonly string[], wanted: readonly string[]): void {
  const unknown = wanted.filter((s) => !known.includes(s));
  if (unknown.length) {
    // `stop -s 'web[2]'`: these verbs act on whole services; a replica alone is not theirs.
    const replica = unknown.map((s) => /^(.+)\[\d+\]$/.exec(s)?.[1]).find((s) => s !== undefined && known.includes(s));
    throw new DepadError('DEPAD_SERVICE_NOT_FOUND', `deployment ${record.name} has no service ${unknown.map((s) => JSON.stringify(s)).join(', ')}`, {
      hint: replica !== undefined ? `stop, start and restart act on whole services (-s ${replica}, every replica); to run fewer replicas: depad scale ${record.name} ${replica}=N` : `its services are: ${known.join(', ')}`,
    });
  }
}
