/**
 * The API's volume endpoints (depad volumes ls, depad volumes rm): admin tokens only, since kept
 * volumes belong to no deployment. Both run in the agent's operation queue, so a volume is never
 * judged unused while a create that reuses it is half done.
 */
import { listVolumes, removeVolumes } from '../deploy/volumes.ts';
import { DepadError } from '../errors.ts';
import { booleanField, booleanQuery, onlyFields, readJsonObject, stringsField } from './body.ts';
import type { Endpoint } from './call.ts';

/** A volume name as the engine allows it. */
const VOLUME_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

/** The volume endpoints, listed after the doctor's in the OpenAPI document. */
export const VOLUME_ENDPOINTS: Endpoint[] = [
  {
    method: 'GET',
    path: '/v1/volumes',
    action: 'volumes',
    queued: true,
    summary: "This home's depad volumes: name, deployment that made it, the live deployment that uses it (usedBy) (depad volumes ls); query: size=true (measure them: slow with much data)",
    run: async (call) => {
      return { body: await listVolumes(call.ctx, { size: booleanQuery(call.url, 'size') }) };
    },
  },
  {
    method: 'POST',
    path: '/v1/volumes/remove',
    action: 'volumes',
    mutates: true,
    summary: 'Remove depad volumes no deployment uses, all or none: {removed} (depad volumes rm); body: {names, check? (true: only check them, remove nothing)}',
    run: async (call) => {
      const body = await readJsonObject(call.req);
      onlyFields(body, ['names', 'check']);
      const check = booleanField(body, 'check');
      const names = stringsField(body, 'names');
      if (names.length > 1000) throw new DepadError('DEPAD_USAGE', 'at most 1000 names at once');
      const bad = names.find((n) => !VOLUME_NAME.test(n));
      if (bad !== undefined) throw new DepadError('DEPAD_NAME_INVALID', `not a volume name: ${JSON.stringify(bad.slice(0, 80))}`);
      const removed = await removeVolumes(call.ctx, names, { check });
      return { body: check ? { checked: removed } : { removed } };
    },
  },
];
