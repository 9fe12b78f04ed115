/**
 * A unix socket that relays to the machine's Docker Engine, for tests that cut an agent's link to
 * the engine without touching the engine: `cut()` drops every connection (the agent's event
 * stream breaks) and refuses new ones until `restore()`. Point the agent at `dockerHost`.
 */
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** A relay to the engine. */
export interface EngineRelay {
  /** `unix://…` for DOCKER_HOST. */
  dockerHost: string;
  /** Drops every connection and refuses new ones. */
  cut(): Promise<void>;
  /** Accepts connections again. */
  restore(): Promise<void>;
  /** Stops it and removes its socket. */
  close(): Promise<void>;
}

/** Starts a relay to `target` (default the machine's engine socket). */
export async function startEngineRelay(target = '/var/run/docker.sock'): Promise<EngineRelay> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'depad-relay-'));
  const socketPath = path.join(dir, 'docker.sock');
  const open = new Set<net.Socket>();
  let server: net.Server | undefined;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = net.createServer((client) => {
        const upstream = net.connect(target);
        open.add(client).add(upstream);
        const end = () => (client.destroy(), upstream.destroy(), open.delete(client), open.delete(upstream));
        client.on('error', end).on('close', end);
        upstream.on('error', end).on('close', end);
        client.pipe(upstream).pipe(client);
      });
      s.once('error', reject);
      s.listen(socketPath, () => resolve());
      server = s;
    });
  const stop = async () => {
    const s = server;
    server = undefined;
    for (const socket of open) socket.destroy();
    open.clear();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
    await fs.rm(socketPath, { force: true });
  };
  await listen();
  return {
    dockerHost: `unix://${socketPath}`,
    cut: stop,
    restore: listen,
    close: async () => {
      await stop();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
