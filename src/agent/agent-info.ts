/** What a running agent says about itself (`GET /v1/agent`, `depad agent status`). */
import type { EngineStatus } from './observed.ts';

/** A running agent's facts: process, version, where it listens, its CA, the engine as it sees it. */
export interface AgentInfo {
  pid: number;
  /** When this process started serving (a restart makes a new process: a new time). */
  startedAt: string;
  /** depad's version (package.json) and Node's, of the code this process runs. */
  version: string;
  node: string;
  home: string;
  /** The HTTPS management API. */
  api: { host: string; port: number };
  /** The local API socket (acting as the local administrator). */
  socket: string;
  /** The proxy's listeners and its control socket. */
  proxy: { httpHost: string; httpPort: number; httpsPort?: number; tcpHost: string; control: string };
  /** SHA-256 fingerprint of the agent's CA, what remote clients pin. */
  fingerprint: string;
  /** Whether the agent reaches the Docker Engine (GET /v1/engine), with its version when it answers. */
  engine: EngineStatus & { version?: string; apiVersion?: string };
}
