/**
 * The CLI's side of the proxy's control channel. With a proxy running, every call goes over its
 * unix socket. With none running, route changes are written straight into the snapshot file
 * (atomically, through snapshot-file.ts, with the same validation the proxy applies) so the
 * proxy serves them when it starts, and a drain has nothing to wait for.
 */
import http from 'node:http';
import { DepadError, ERROR_CODES } from '../src/errors.ts';
import type { ErrorCode } from '../src/errors.ts';
import { parseDeploymentRoutes, assertDeploymentName, removeDeployment, replaceDeployment } from './routes.ts';
import { readSnapshotFile, writeSnapshotFile } from './snapshot-file.ts';
import type { DrainResult, Route, RouteSnapshot, Upstream } from './types.ts';
import type { PeerTable } from './peer-routes.ts';

/** Options of a `ProxyClient`. */
export interface ProxyClientOptions {
  /** The proxy's control socket (`proxyPaths(stateDir).socketPath`). */
  socketPath: string;
  /** The proxy's snapshot file (`proxyPaths(stateDir).snapshotFile`), edited when no proxy runs. */
  snapshotFile: string;
  /** Time allowed for one control request other than a drain (default 10 000 ms). */
  timeoutMs?: number;
}

/** What `GET /health` answers. */
export interface ProxyHealth {
  ok: true;
  pid: number;
  version: string;
  routesVersion: number;
  waiting: number;
  upstreams: Record<string, { requests: number; websockets: number; tcp: number }>;
}

/** Result of a route change: the new snapshot version, and whether a running proxy took it. */
export interface RouteChange {
  version: number;
  /** False when no proxy was running and only the snapshot file was written. */
  live: boolean;
}

/** Thrown internally when nothing listens on the socket. */
class NotRunning extends Error {}

const NOT_RUNNING_CODES = new Set(['ENOENT', 'ECONNREFUSED', 'ENOTSOCK']);

/** A client of one proxy (running or not). */
export class ProxyClient {
  readonly socketPath: string;
  readonly snapshotFile: string;
  readonly #timeoutMs: number;

  constructor(options: ProxyClientOptions) {
    this.socketPath = options.socketPath;
    this.snapshotFile = options.snapshotFile;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** The running proxy's health, or undefined when none answers. */
  async health(): Promise<ProxyHealth | undefined> {
    try {
      return await this.#call<ProxyHealth>('GET', '/health', undefined, Math.min(this.#timeoutMs, 3_000));
    } catch (error) {
      if (error instanceof NotRunning || (error instanceof DepadError && error.code === 'DEPAD_TIMEOUT')) return undefined;
      throw error;
    }
  }

  /** True when a proxy answers on the control socket. */
  async running(): Promise<boolean> {
    return (await this.health()) !== undefined;
  }

  /** The running proxy's routes, or the saved snapshot when none runs. */
  async routes(): Promise<RouteSnapshot> {
    try {
      return await this.#call<RouteSnapshot>('GET', '/routes');
    } catch (error) {
      if (error instanceof NotRunning) return readSnapshotFile(this.snapshotFile);
      throw error;
    }
  }

  /** Replaces every route of deployment `name` (validated here first; 409 DepadError on a conflict). */
  async setDeploymentRoutes(name: string, routes: readonly Route[]): Promise<RouteChange> {
    const parsed = parseDeploymentRoutes(name, { routes });
    return this.#change('PUT', name, { routes: parsed }, (s) => replaceDeployment(s, name, parsed));
  }

  /** Removes every route of deployment `name`. */
  async removeDeployment(name: string): Promise<RouteChange> {
    assertDeploymentName(name);
    return this.#change('DELETE', name, undefined, (s) => removeDeployment(s, name));
  }

  /**
   * Waits until `upstream` has no in-flight work (or `timeoutMs` passes, then what remains is
   * ended). With no proxy running there is nothing in flight: `{ drained: true, remaining: 0 }`.
   */
  async drain(upstream: Pick<Upstream, 'host' | 'port'>, timeoutMs = 30_000): Promise<DrainResult> {
    try {
      return await this.#call<DrainResult>('POST', '/drain', { upstream: { host: upstream.host, port: upstream.port }, timeoutMs }, timeoutMs + this.#timeoutMs);
    } catch (error) {
      if (error instanceof NotRunning) return { drained: true, remaining: 0, waitedMs: 0 };
      throw error;
    }
  }

  /**
   * Hands the running proxy the cluster's peer routes (peer-routes.ts); false when no proxy runs
   * (they are not kept on disk: the agent sends them again after the next heartbeat).
   */
  async setPeers(table: PeerTable): Promise<boolean> {
    try {
      await this.#call<{ hostnames: number }>('PUT', '/peers', table);
      return true;
    } catch (error) {
      if (error instanceof NotRunning) return false;
      throw error;
    }
  }

  /** The hostnames other hosts of the cluster serve (hostname → host), as the running proxy has them; {} outside a cluster or with no proxy. */
  async peerRoutes(): Promise<Record<string, string>> {
    try {
      const table = await this.#call<{ routes?: Record<string, string> }>('GET', '/peers');
      return table.routes ?? {};
    } catch (error) {
      if (error instanceof NotRunning) return {};
      throw error;
    }
  }

  async #change(method: 'PUT' | 'DELETE', name: string, body: unknown, offline: (s: RouteSnapshot) => RouteSnapshot): Promise<RouteChange> {
    const path = `/deployments/${encodeURIComponent(name)}`;
    try {
      const { version } = await this.#call<{ version: number }>(method, path, body);
      return { version, live: true };
    } catch (error) {
      if (!(error instanceof NotRunning)) throw error;
    }
    const current = await readSnapshotFile(this.snapshotFile);
    const next = offline(current);
    // Nothing to change (e.g. removing a deployment that never had routes): no write, no fsync.
    if (JSON.stringify(next.routes) === JSON.stringify(current.routes)) return { version: current.version, live: false };
    await writeSnapshotFile(this.snapshotFile, next);
    // A proxy that started meanwhile may have loaded the file before this write: tell it too.
    try {
      const { version } = await this.#call<{ version: number }>(method, path, body);
      return { version, live: true };
    } catch (error) {
      if (error instanceof NotRunning) return { version: next.version, live: false };
      throw error;
    }
  }

  #call<T>(method: string, path: string, body?: unknown, timeoutMs = this.#timeoutMs): Promise<T> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise<T>((resolve, reject) => {
      const req = http.request(
        {
          socketPath: this.socketPath,
          path,
          method,
          headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
          agent: false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let value: unknown;
            try {
              value = JSON.parse(text);
            } catch {
              reject(new DepadError('DEPAD_INTERNAL', `the proxy answered ${res.statusCode} with a body that is not JSON`));
              return;
            }
            if ((res.statusCode ?? 500) < 400) return resolve(value as T);
            const e = (value as { error?: { code?: string; message?: string; hint?: string } }).error;
            const code: ErrorCode = e?.code !== undefined && e.code in ERROR_CODES ? (e.code as ErrorCode) : 'DEPAD_INTERNAL';
            reject(new DepadError(code, e?.message ?? `the proxy answered ${res.statusCode}`, e?.hint === undefined ? {} : { hint: e.hint }));
          });
        },
      );
      req.setTimeout(timeoutMs, () => {
        req.destroy(new DepadError('DEPAD_TIMEOUT', `the proxy did not answer ${method} ${path} within ${timeoutMs} ms`, { hint: 'check that the proxy process is healthy (depad proxy logs)' }));
      });
      req.on('error', (error: NodeJS.ErrnoException) => {
        if (error instanceof DepadError) reject(error);
        else if (error.code !== undefined && NOT_RUNNING_CODES.has(error.code)) reject(new NotRunning(error.message));
        else reject(new DepadError('DEPAD_INTERNAL', `cannot reach the proxy on ${this.socketPath}: ${error.message}`, { cause: error }));
      });
      req.end(payload);
    });
  }
}
