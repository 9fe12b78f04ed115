/**
 * The API's doctor endpoints (depad doctor, depad doctor --fix): admin tokens only, since they
 * look at every deployment and at objects that belong to none. Both run in the agent's operation
 * queue, so no operation is half done while the engine and the store are compared.
 */
import { diagnose, doctorFix } from '../deploy/doctor.ts';
import { booleanField, booleanQuery, onlyFields, readOptionalJsonObject, stringsField } from './body.ts';
import type { Endpoint } from './call.ts';

/** The doctor endpoints, listed after the others in the OpenAPI document. */
export const DOCTOR_ENDPOINTS: Endpoint[] = [
  {
    method: 'GET',
    path: '/v1/doctor',
    action: 'doctor',
    queued: true,
    summary: "Engine objects, ports, routes and directories that disagree with the state: {home, findings, unattributed, otherHomes} (depad doctor); query: volumes=true (what --fix --volumes would do)",
    run: async (call) => {
      return { body: await diagnose(call.ctx, { volumes: booleanQuery(call.url, 'volumes') }) };
    },
  },
  {
    method: 'POST',
    path: '/v1/doctor/fix',
    action: 'doctor',
    mutates: true,
    summary: 'Fix the findings named by key that are still there (all when findings is absent) and diagnose again: {results, after} (depad doctor --fix); body: {volumes?, findings?}',
    run: async (call) => {
      const body = await readOptionalJsonObject(call.req);
      onlyFields(body, ['volumes', 'findings']);
      const volumes = booleanField(body, 'volumes');
      const keys = body.findings === undefined ? undefined : stringsField(body, 'findings');
      return { body: await doctorFix(call.ctx, { volumes }, keys) };
    },
  },
];
