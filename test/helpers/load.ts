/**
 * Continuous HTTP load through the proxy for the zero-downtime tests: clients on keep-alive
 * connections and clients opening a new connection per request, all sending the Host header of
 * a route. Records every failure and which version answered. Bounded: stops when told, or after
 * `maxMs`.
 */
import http from 'node:http';

/** What the load saw. */
export interface LoadStats {
  ok: number;
  failed: number;
  /** The first failures, e.g. `status 502` or `ECONNRESET`. */
  failures: string[];
  /** version → responses. */
  versions: Record<string, number>;
  /** Slowest response, ms. */
  maxLatencyMs: number;
}

/** A running load. */
export interface Load {
  stop(): Promise<LoadStats>;
  stats: LoadStats;
}

/** Options of `startLoad`. */
export interface LoadOptions {
  /** Where the proxy listens (default 127.0.0.1; a lab host's address for the cluster tests). */
  address?: string;
  port: number;
  host: string;
  path?: string;
  keepAliveClients?: number;
  newConnectionClients?: number;
  maxMs?: number;
}

/** Starts the clients; each loops GET `path` until stopped. The body must be JSON with `version`. */
export function startLoad(options: LoadOptions): Load {
  const stats: LoadStats = { ok: 0, failed: 0, failures: [], versions: {}, maxLatencyMs: 0 };
  let running = true;
  const deadline = Date.now() + (options.maxMs ?? 120_000);
  const agents: http.Agent[] = [];
  const one = (agent: http.Agent | false) =>
    new Promise<void>((resolve) => {
      const started = Date.now();
      const fail = (why: string) => {
        stats.failed += 1;
        if (stats.failures.length < 20) stats.failures.push(why);
        resolve();
      };
      const req = http.get(
        { host: options.address ?? '127.0.0.1', port: options.port, path: options.path ?? '/info', headers: { host: options.host }, agent, timeout: 10_000 },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (body += d));
          res.on('end', () => {
            stats.maxLatencyMs = Math.max(stats.maxLatencyMs, Date.now() - started);
            if (res.statusCode !== 200) return fail(`status ${res.statusCode}: ${body.slice(0, 80)}`);
            try {
              const version = String((JSON.parse(body) as { version: unknown }).version);
              stats.versions[version] = (stats.versions[version] ?? 0) + 1;
              stats.ok += 1;
            } catch {
              return fail(`bad body: ${body.slice(0, 80)}`);
            }
            resolve();
          });
          res.on('error', (e) => fail(e.message));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e: NodeJS.ErrnoException) => fail(e.code ?? e.message));
    });
  const loop = async (agent: http.Agent | false) => {
    while (running && Date.now() < deadline) await one(agent);
  };
  const loops: Promise<void>[] = [];
  for (let i = 0; i < (options.keepAliveClients ?? 4); i++) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    agents.push(agent);
    loops.push(loop(agent));
  }
  for (let i = 0; i < (options.newConnectionClients ?? 2); i++) loops.push(loop(false));
  return {
    stats,
    async stop() {
      running = false;
      await Promise.all(loops);
      for (const agent of agents) agent.destroy();
      return stats;
    },
  };
}

/** One GET through the proxy with a Host header, on a new connection. */
export function getVia(port: number, host: string, path = '/info'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers: { host, connection: 'close' }, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** One GET through the proxy, its JSON body; anything but a 200 with JSON throws, naming the status and body. */
export async function jsonVia<T = Record<string, string>>(port: number, host: string, path = '/info'): Promise<T> {
  const { status, body } = await getVia(port, host, path);
  if (status !== 200) throw new Error(`GET ${path} via ${host} answered ${status}: ${body.trim().slice(0, 300)}`);
  try {
    return JSON.parse(body) as T;
  } catch {
    throw new Error(`GET ${path} via ${host} answered 200 with no JSON: ${body.trim().slice(0, 300)}`);
  }
}
