/**
 * The cluster manager's calls to its agents: HTTPS to the address the agent joined with, the
 * agent's own CA pinned (the one it sent at join), the manager's client certificate presented
 * instead of a token. Answers, progress and errors are the agent's own (AgentClient).
 */
import { AgentClient, type AgentRequest } from '../cli/agent-client.ts';
import { DepadError } from '../errors.ts';
import type { HostRecord } from '../store/records.ts';

/** The manager's client certificate and key (PEM). */
export interface ManagerIdentity {
  cert: string;
  key: string;
}

/** An AgentClient for `host`, as the manager. */
export function hostClient(host: HostRecord, identity: ManagerIdentity): AgentClient {
  return new AgentClient({ kind: 'https', url: new URL(host.apiUrl), ca: host.agentCa, token: '', clientCert: identity, pinnedCaOnly: true });
}

/**
 * Sends `req` to `host` as the manager. An agent that does not answer becomes
 * DEPAD_HOST_DOWN naming the host; the agent's own errors pass through as they are.
 */
export async function callHost<T>(host: HostRecord, identity: ManagerIdentity, req: AgentRequest): Promise<T> {
  try {
    return await hostClient(host, identity).request<T>({ ...req, relay: true });
  } catch (error) {
    if (error instanceof DepadError && (error.code === 'DEPAD_AGENT_UNAVAILABLE' || error.code === 'DEPAD_TLS_INVALID')) {
      throw new DepadError('DEPAD_HOST_DOWN', `host ${host.name} (${host.apiUrl}) did not answer: ${error.message}`, {
        cause: error,
        hint: `its deployments are left where they are; see depad hosts inspect ${host.name}, and start its agent again`,
      });
    }
    throw error;
  }
}
