/**
 * Fixtures for the proxy tests: HTTP upstreams on loopback, a proxy on a temporary state
 * directory, routes, and a request helper. Everything started here is closed in t.teardown.
 */
import type { ExecutionContext } from 'ava';
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger } from '../../src/logger.ts';
import { testPorts } from './harness.ts';
import { ProxyClient, proxyPaths, startProxy } from '../../proxy/index.ts';
import type { ProxyHandle, ProxyLimits, ProxyOptions, Route } from '../../proxy/index.ts';

/** An upstream started by `upstream()`. */
export interface Upstream {
  port: number;
  /** Connections accepted so far. */
  connections: () => number;
  /** Headers of every request received. */
  seen: http.IncomingHttpHeaders[];
  server: http.Server;
}

/** An HTTP upstream on loopback; `handler` defaults to answering its `name`. */
export async function upstream(t: ExecutionContext, name: string, handler?: http.RequestListener): Promise<Upstream> {
  const seen: http.IncomingHttpHeaders[] = [];
  let connections = 0;
  const server = http.createServer((req, res) => {
    seen.push(req.headers);
    if (handler) return handler(req, res);
    res.setHeader('x-upstream', name);
    res.end(name);
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))));
  return { port: (server.address() as net.AddressInfo).port, connections: () => connections, seen, server };
}

/** A proxy started by `proxy()`, with a control-channel client. */
export interface Proxy extends ProxyHandle {
  stateDir: string;
  client: ProxyClient;
}

/** A temporary state directory, removed afterwards. */
export async function stateDir(t: ExecutionContext): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'depad-proxy-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A proxy on loopback (port picked by the system). */
export async function proxy(t: ExecutionContext, dir?: string, options: Partial<Pick<ProxyOptions, keyof ProxyLimits | 'https' | 'challenges'>> = {}): Promise<Proxy> {
  const state = dir ?? (await stateDir(t));
  const handle = await startProxy({ stateDir: state, httpPort: 0, httpHost: '127.0.0.1', tcpHost: '127.0.0.1', logger: silentLogger, closeTimeoutMs: 2000, ...options });
  t.teardown(() => handle.close());
  return { ...handle, stateDir: state, client: new ProxyClient(proxyPaths(state)) };
}

/** An HTTP route to upstreams on loopback. */
export function httpRoute(deployment: string, service: string, hosts: string[], ports: number[], extra: Partial<Route> = {}): Route {
  return {
    id: `${deployment}/${service}`,
    deployment,
    service,
    kind: 'http',
    hosts,
    upstreams: ports.map((port) => ({ host: '127.0.0.1', port, instance: `${deployment}-${service}-${port}` })),
    ...extra,
  };
}

/** A TCP route to upstreams on loopback. */
export function tcpRoute(deployment: string, service: string, listenPort: number, ports: number[], extra: Partial<Route> = {}): Route {
  return { ...httpRoute(deployment, service, [], ports, extra), kind: 'tcp', hosts: [], listenPort };
}

/** A response read whole. */
export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  reused: boolean;
}

/** One request to the proxy with a Host header. */
export function request(p: Proxy, host: string, options: { path?: string; method?: string; headers?: http.OutgoingHttpHeaders; body?: Buffer; agent?: http.Agent } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: p.httpPort, path: options.path ?? '/', method: options.method ?? 'GET', headers: { host, ...options.headers }, agent: options.agent ?? false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), reused: req.reusedSocket }));
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Resolves once `condition()` holds (polled every 10 ms; fails after 5 s). */
export async function until(condition: () => boolean, what = 'condition'): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/**
 * A port nothing listens on: one of the test's own slot (below the ephemeral range, which
 * listeners on port 0 and outgoing connections of other tests use), never bound.
 */
export async function deadPort(t: ExecutionContext): Promise<number> {
  return (await testPorts(t))();
}

/** A keep-alive agent with one socket, destroyed afterwards. */
export function keepAliveAgent(t: ExecutionContext): http.Agent {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  return agent;
}

