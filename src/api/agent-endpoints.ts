/**
 * The agent's endpoints about itself: its status (`depad agent status`, `depad version`), a
 * graceful stop (`depad agent stop`) and a restart (`depad agent restart`), which only the local
 * administrator asks for, over the agent's socket (or through SSH to it), never over HTTPS.
 */
import { DepadError } from '../errors.ts';
import { readOptionalJsonObject, onlyFields } from './body.ts';
import type { Call, Endpoint } from './call.ts';

/** Stop and restart are the local administrator's: over the agent's socket (or SSH to it), never HTTPS. */
function localOnly(call: Call, verb: 'stop' | 'restart'): void {
  if (!call.local) {
    throw new DepadError('DEPAD_FORBIDDEN', `the agent ${verb}s only on a request over its local socket`, { hint: `run depad agent ${verb} on its host, or through SSH (depad --host ssh://user@host agent ${verb})` });
  }
}

/** The agent endpoints, listed after the core ones in the OpenAPI document. */
export const AGENT_ENDPOINTS: Endpoint[] = [
  {
    method: 'GET',
    path: '/v1/agent',
    action: 'ls',
    summary: 'The agent itself: pid, startedAt, version, node, home, api, socket, proxy, fingerprint (its CA, what clients pin), engine (state, and version when up) (depad agent status)',
    run: async (call) => {
      if (call.agent === undefined) throw new DepadError('DEPAD_AGENT_UNAVAILABLE', 'only a running agent has a status', { hint: 'start it: depad agent --daemon' });
      const info = call.agent();
      if (info.engine.state !== 'up') return { body: info };
      const version = await call.ctx.engine.version(2000).catch(() => undefined);
      return { body: { ...info, engine: { ...info.engine, ...version } } };
    },
  },
  {
    method: 'POST',
    path: '/v1/agent/stop',
    action: 'agent',
    summary: 'Stop the agent gracefully, as SIGTERM does (running operations finish, the proxy drains); answers {pid} at once: poll until it is gone (depad agent stop); local socket only',
    run: async (call) => {
      localOnly(call, 'stop');
      if (call.stop === undefined) throw new DepadError('DEPAD_AGENT_UNAVAILABLE', 'only a running agent stops', { hint: 'nothing to stop' });
      onlyFields(await readOptionalJsonObject(call.req), []);
      call.stop();
      return { body: { pid: process.pid } };
    },
  },
  {
    method: 'POST',
    path: '/v1/agent/restart',
    action: 'agent',
    summary: 'Restart the agent into a new process (the code now on disk) without refusing a connection; answers once the new one is ready: {oldPid, newPid, ms, drainTimeoutMs} (depad agent restart); local socket only; body: {drainTimeoutMs?}',
    run: async (call) => {
      localOnly(call, 'restart');
      if (call.restart === undefined) throw new DepadError('DEPAD_AGENT_UNAVAILABLE', 'only a running agent restarts', { hint: 'start it: depad agent --daemon' });
      const body = await readOptionalJsonObject(call.req);
      onlyFields(body, ['drainTimeoutMs']);
      const drain = body.drainTimeoutMs;
      if (drain !== undefined && (typeof drain !== 'number' || !Number.isInteger(drain) || drain < 0 || drain > 3_600_000)) throw new DepadError('DEPAD_USAGE', 'drainTimeoutMs must be a whole number of ms from 0 to 3600000');
      return { body: await call.restart(drain === undefined ? {} : { drainTimeoutMs: drain }) };
    },
  },
];
