/**
 * The CLI's client of a local agent: when an agent answers on `<home>/agent.sock`, commands go to
 * its API instead of opening the state (which the agent owns). Errors come back as the same
 * DepadErrors (code, message, hint), so output and exit codes are the same either way; progress
 * of long operations is streamed (JSON lines) to the same printer as local progress. Ctrl-C
 * during an operation asks the agent to stop and undo it, and waits for its answer (`#interrupt`).
 */
import { existsSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { socketAnswers } from '../../proxy/listeners.ts';
import type { ProgressEvent } from '../deploy/context.ts';
import { DepadError, ERROR_CODES } from '../errors.ts';
import type { ErrorCode } from '../errors.ts';
import { agentSocketPath, managerSocketPath } from '../home.ts';
import { OPERATION_HEADER } from '../api/operations.ts';
import { openAgentStream } from './ssh-transport.ts';
import type { SshTarget } from './ssh-transport.ts';

/** A request to the agent's API. */
export interface AgentRequest {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  body?: unknown;
  /** Stream progress (long operations): each event goes here as it happens. */
  onProgress?: (event: ProgressEvent) => void;
  /** Other lines of a streamed answer (log lines). */
  onLine?: (line: Record<string, unknown>) => void;
  /** Ends the request early (Ctrl-C while following logs); it then resolves with undefined. */
  signal?: AbortSignal;
  /** A server relaying its client's call (the cluster manager): this process's signals are not the user's Ctrl-C; `signal` cancels. */
  relay?: boolean;
}

function toError(value: unknown, status: number): DepadError {
  const e = (value as { error?: { code?: string; message?: string; hint?: string } } | undefined)?.error;
  const code = (e?.code !== undefined && e.code in ERROR_CODES ? e.code : 'DEPAD_INTERNAL') as ErrorCode;
  return new DepadError(code, e?.message ?? `the agent answered ${status}`, e?.hint === undefined ? {} : { hint: e.hint });
}

/** Where an agent is: its unix socket, an HTTPS address with the pinned CA and a token, or its socket through SSH. */
export type AgentTransport =
  | {
      kind: 'socket';
      socketPath: string;
      /** The cluster manager's socket: it relays to other hosts, so configs are sent, as to a remote agent. */
      relays?: boolean;
    }
  | {
      kind: 'https';
      url: URL;
      /** The pinned CA; unset: the system's trust store (an agent with a public certificate). */
      ca?: string;
      token: string;
      /** A client certificate to present instead of a token (the cluster manager calling its agents). */
      clientCert?: { cert: string; key: string };
      /** The CA is the agent's own, pinned: any certificate it signed is that agent, whatever name it covers (an address the agent was not told). */
      pinnedCaOnly?: boolean;
    }
  | { kind: 'ssh'; target: SshTarget };

/** An agent's API, over its unix socket (local) or HTTPS (remote). */
export class AgentClient {
  readonly transport: AgentTransport;

  constructor(transport: AgentTransport) {
    this.transport = transport;
  }

  /** True for a remote agent: it cannot read files on this machine, so configs are sent. */
  get remote(): boolean {
    return this.transport.kind !== 'socket' || this.transport.relays === true;
  }

  /** Where it is, for messages. */
  get where(): string {
    const t = this.transport;
    return t.kind === 'socket' ? t.socketPath : t.kind === 'https' ? t.url.origin : `ssh://${t.target.username}@${t.target.host}:${t.target.port}`;
  }

  /** Sends one request; resolves with the result, or rejects with the agent's DepadError. */
  async request<T>(req: AgentRequest): Promise<T> {
    const ssh = this.transport.kind === 'ssh' ? await openAgentStream(this.transport.target) : undefined;
    try {
      return await this.#send<T>(req, ssh?.stream);
    } finally {
      ssh?.close();
    }
  }

  /**
   * The agent went away while it worked on `req` (killed, crashed, its host gone): it completes
   * or undoes an interrupted operation when it starts again, so say where to look.
   */
  #gone(req: AgentRequest, cause?: Error): DepadError {
    const what = req.onLine !== undefined ? 'while the logs were followed' : req.method === 'GET' ? 'before it answered' : 'during the operation';
    const hint = req.method === 'GET'
      ? 'start the agent again (depad agent, or systemctl start depad-agent) and repeat the command'
      : 'an agent completes or undoes an interrupted operation when it starts again: start it (depad agent, or systemctl start depad-agent), then see the outcome with depad ls or depad inspect <deployment>';
    return new DepadError('DEPAD_AGENT_UNAVAILABLE', `the agent at ${this.where} went away ${what} (its connection closed before the answer was complete)`, { hint, ...(cause === undefined ? {} : { cause }) });
  }

  /**
   * Ctrl-C (SIGINT, SIGTERM) while the agent runs an operation for this client. The first asks the
   * agent to stop it (POST /v1/operations/{id}/cancel) and keeps reading its answer: the agent
   * undoes what the operation did and ends with DEPAD_INTERRUPTED, which the CLI reports (exit
   * 130). Without an operation ID (the answer has not begun, or an older agent), or when the
   * agent does not take the cancel, the connection is closed instead, which stops the operation
   * too, but then this client cannot know how the undo went, and says so. The second leaves at once.
   */
  #interrupt(request: () => http.ClientRequest | undefined, settled: () => boolean, fail: (error: DepadError) => void): Interrupt {
    let id: string | undefined;
    let count = 0;
    const stopCancel = new AbortController();
    const unseen = (why: string) => {
      request()?.destroy();
      fail(
        new DepadError('DEPAD_INTERRUPTED', `interrupted: ${why}; closing the connection stops the operation on the agent, which undoes what it did, but this client cannot see whether it has finished`, {
          hint: 'see the outcome with depad ls or depad inspect <deployment>',
        }),
      );
    };
    const onSignal = (signal: NodeJS.Signals) => {
      if (settled()) return;
      count += 1;
      if (count > 1) {
        stopCancel.abort();
        request()?.destroy();
        return fail(new DepadError('DEPAD_INTERRUPTED', `${signal} again: not waiting for the agent any more; it may still be undoing the operation`, { hint: 'see the outcome with depad ls or depad inspect <deployment>' }));
      }
      if (id === undefined) return unseen('the agent had not begun the operation, or cannot be asked to stop it (an older agent)');
      process.stderr.write(`\ndepad: ${signal}: asking the agent to stop the operation and undo what it did; waiting for it to finish (${signal === 'SIGINT' ? 'Ctrl-C' : signal} again to leave at once)\n`);
      this.request({ method: 'POST', path: `/v1/operations/${seg(id)}/cancel`, signal: stopCancel.signal }).catch((error: unknown) => {
        // Not found: it has just finished, and its answer is on the way.
        if (settled() || (error instanceof DepadError && error.code === 'DEPAD_NOT_FOUND')) return;
        unseen(`the agent did not take the request to stop (${(error as Error).message})`);
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    return {
      operation(value) {
        if (typeof value === 'string' && /^[0-9a-f]{32}$/.test(value)) id = value;
      },
      get interrupted() {
        return count > 0;
      },
      tooLate: () =>
        new DepadError('DEPAD_INTERRUPTED', 'interrupted too late: the agent had completed the operation before it could stop it', { hint: 'nothing was undone; see the outcome with depad ls or depad inspect <deployment>' }),
      end() {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      },
    };
  }

  #send<T>(req: AgentRequest, tunnel: Duplex | undefined): Promise<T> {
    const body = req.body === undefined ? undefined : JSON.stringify(req.body);
    const headers: Record<string, string | number> = {};
    if (body !== undefined) Object.assign(headers, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    if (req.onProgress) headers.accept = 'application/x-ndjson';
    return new Promise((promiseResolve, promiseReject) => {
      const t = this.transport;
      let settled = false;
      // Ctrl-C during an operation: ask the agent to stop and undo it, and wait for it to say so.
      const interrupt = req.onProgress !== undefined && req.method !== 'GET' && req.relay !== true ? this.#interrupt(() => r, () => settled, (error) => ((settled = true), reject(error))) : undefined;
      const resolve = (value: T) => (interrupt?.end(), interrupt?.interrupted ? promiseReject(interrupt.tooLate()) : promiseResolve(value));
      const reject = (error: unknown) => (interrupt?.end(), promiseReject(error));
      const onResponse = (res: http.IncomingMessage) => {
        interrupt?.operation(res.headers[OPERATION_HEADER]);
        const streamed = String(res.headers['content-type'] ?? '').startsWith('application/x-ndjson');
        let buf = '';
        let final: unknown;
        res.setEncoding('utf8');
        // The agent died (or its connection broke) before the answer ended: no 'end' comes.
        res.on('error', () => {});
        res.on('close', () => {
          if (!res.complete && !settled) {
            settled = true;
            reject(this.#gone(req));
          }
        });
        res.on('data', (chunk: string) => {
          buf += chunk;
          if (!streamed) return;
          for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
            const line = JSON.parse(buf.slice(0, nl)) as { progress?: ProgressEvent; result?: unknown; error?: unknown; status?: number };
            buf = buf.slice(nl + 1);
            if (line.progress) req.onProgress?.(line.progress);
            else if ('result' in line || 'error' in line) final = line;
            else req.onLine?.(line);
          }
        });
        res.on('end', () => {
          settled = true;
          try {
            if (streamed) {
              const last = final as { result?: unknown; error?: unknown; status?: number } | undefined;
              if (last === undefined) return reject(new DepadError('DEPAD_AGENT_UNAVAILABLE', 'the agent ended the answer early'));
              return 'error' in last ? reject(toError(last, last.status ?? 500)) : resolve(last.result as T);
            }
            const value = buf === '' ? undefined : (JSON.parse(buf) as unknown);
            if ((res.statusCode ?? 500) >= 400) reject(toError(value, res.statusCode ?? 500));
            else resolve(value as T);
          } catch (error) {
            reject(new DepadError('DEPAD_AGENT_UNAVAILABLE', `unreadable answer from the agent: ${(error as Error).message}`, { cause: error }));
          }
        });
      };
      let r: http.ClientRequest;
      if (t.kind === 'socket') r = http.request({ socketPath: t.socketPath, method: req.method, path: req.path, headers, agent: false }, onResponse);
      else if (t.kind === 'ssh') r = http.request({ createConnection: () => tunnel as never, method: req.method, path: req.path, headers }, onResponse); // no agent: createConnection is used
      else {
        if (t.clientCert === undefined) headers.authorization = `Bearer ${t.token}`;
        const base = t.url.pathname.replace(/\/$/, '');
        const host = t.url.hostname.replace(/^\[|\]$/g, '');
        const tls = { ...(t.ca === undefined ? {} : { ca: t.ca }), ...(t.clientCert ?? {}), ...(t.pinnedCaOnly ? { checkServerIdentity: () => undefined } : {}) };
        r = https.request({ host, port: Number(t.url.port || 443), ...(net.isIP(host) === 0 ? { servername: host } : {}), ...tls, method: req.method, path: `${base}${req.path}`, headers, agent: false }, onResponse);
      }
      req.signal?.addEventListener('abort', () => {
        settled = true;
        r.destroy();
        resolve(undefined as T);
      });
      r.on('error', (error: NodeJS.ErrnoException) => {
        if (settled) return;
        settled = true;
        // Reset once the request was sent: the agent took it and went away before answering.
        if (error.code === 'ECONNRESET' && r.reusedSocket === false && r.writableFinished) return reject(this.#gone(req, error));
        if (TLS_TRUST_ERRORS.test(error.code ?? '')) {
          return reject(
            new DepadError('DEPAD_TLS_INVALID', `the agent at ${this.where} has a certificate this client does not trust (${error.code}): ${error.message}`, {
              cause: error,
              hint: "pass the agent's CA fingerprint (--ca-fingerprint, DEPAD_CA_FINGERPRINT, or depad context add --fingerprint), or give the agent a public certificate (depad agent --acme --hostname NAME)",
            }),
          );
        }
        reject(new DepadError('DEPAD_AGENT_UNAVAILABLE', `the agent at ${this.where} did not answer: ${error.message}`, { cause: error, hint: 'check that depad agent runs there, and the address' }));
      });
      r.end(body);
    });
  }
}

/** What `#interrupt` gives the request it watches. */
interface Interrupt {
  /** The operation's ID, from the answer's header (an agent before IDs sends none). */
  operation(id: string | string[] | undefined): void;
  /** The user interrupted it. */
  readonly interrupted: boolean;
  /** The error for an operation that completed although the user interrupted it. */
  tooLate(): DepadError;
  /** The request ended: stop listening for signals. */
  end(): void;
}

/** Node's codes for a server certificate that does not verify (chain, name, dates). */
const TLS_TRUST_ERRORS = /^(?:SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(?:_LOCALLY)?|CERT_HAS_EXPIRED|CERT_NOT_YET_VALID|CERT_UNTRUSTED|ERR_TLS_CERT_ALTNAME_INVALID)$/;

/** The client of the agent that owns `home`'s state, when one answers; undefined otherwise. */
export async function localAgent(home: string): Promise<AgentClient | undefined> {
  // A home is an agent's or a cluster manager's (`<home>/manager.sock`): the CLI works with either alike.
  for (const socketPath of [agentSocketPath(home), managerSocketPath(home)]) {
    if (existsSync(socketPath) && (await socketAnswers(socketPath))) return new AgentClient({ kind: 'socket', socketPath, ...(socketPath.endsWith('manager.sock') ? { relays: true } : {}) });
  }
  return undefined;
}

/** A path segment for a deployment or token reference. */
export function seg(ref: string): string {
  return encodeURIComponent(ref);
}
