/** Small clients of a test agent: its local API socket, its events, its proxy; and a poll helper. */
import http from 'node:http';

/** GET over the agent's unix socket (the local administrator), JSON body parsed. */
export function socketGet<T = any>(socketPath: string, pathname: string): Promise<{ status: number; body: T }> {
  return new Promise((resolve, reject) => {
    http
      .get({ socketPath, path: pathname, agent: false }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as T }));
      })
      .on('error', reject);
  });
}

/** One of the agent's events (GET /v1/events). */
export interface AgentEventView {
  time: string;
  kind: string;
  deployment?: string;
  service?: string;
  instance?: string;
  exitCode?: number;
  detail?: string;
}

/** The agent's events. */
export async function agentEvents(socketPath: string): Promise<AgentEventView[]> {
  return (await socketGet<AgentEventView[]>(socketPath, '/v1/events')).body;
}

/** A GET through the proxy on 127.0.0.1:`port` for `host`: the status, or 0 when the connection failed. */
export function proxyGet(port: number, host: string, pathname = '/', timeoutMs = 5000): Promise<number> {
  return proxyGetAt('127.0.0.1', port, host, pathname, timeoutMs);
}

/** A GET through the proxy at `address`:`port` for `host`: the status, or 0 when the connection failed or timed out. */
export function proxyGetAt(address: string, port: number, host: string, pathname = '/', timeoutMs = 5000): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: address, port, path: pathname, headers: { host }, agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

/** Polls `probe` every 100 ms until it gives a value; fails after `timeoutMs` naming `what`. */
export async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
