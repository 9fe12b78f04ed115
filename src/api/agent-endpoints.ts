/**
 * The agent's endpoints about itself: its status (`depad agent status`, `depad version`) and a
 * graceful stop (`depad agent stop`), which, like a restart, only the local administrator asks
 * for, over the agent's socket (or through SSH to it), never over HTTPS.
 */
import { DepadError } from '../errors.ts';
import { readOptionalJsonObject, onlyFields } from './body.ts';
import type { Endpoint } from './call.ts';

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
      if (!call.local) throw new DepadError('DEPAD_FORBIDDEN', 'the agent stops only on a request over its local socket', { hint: 'run depad agent stop on its host, or through SSH (depad --host ssh://user@host agent stop)' });
      if (call.stop === undefined) throw new DepadError('DEPAD_AGENT_UNAVAILABLE', 'only a running agent stops', { hint: 'nothing to stop' });
      onlyFields(await readOptionalJsonObject(call.req), []);
      call.stop();
      return { body: { pid: process.pid } };
    },
  },
];
