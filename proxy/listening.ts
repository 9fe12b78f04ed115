/**
 * Where a proxy listens, kept in its state directory (`listening.json`) once it listens, so that
 * depad's views can give a route's address with the port clients use (`http://web.shop.localhost:8080`)
 * whether or not the proxy runs in this process. Its own module: the CLI reads it without loading
 * the proxy.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { writePrivateFile } from '../src/private-file.ts';

/** The ports a proxy listens on. */
export interface ProxyListening {
  pid: number;
  httpPort: number;
  httpsPort?: number;
}

/** The proxy's HTTP port when none is given: 80 as root, else 8080. */
export function defaultHttpPort(): number {
  return process.getuid?.() === 0 ? 80 : 8080;
}

function listeningFile(stateDir: string): string {
  return path.join(stateDir, 'listening.json');
}

/** Records where the proxy on `stateDir` listens (atomically; it stays after the proxy stops: where it will listen again). */
export async function writeListening(stateDir: string, facts: ProxyListening): Promise<void> {
  await writePrivateFile(listeningFile(stateDir), JSON.stringify(facts) + '\n');
}

/** Where the proxy on `stateDir` listens (or last listened); undefined when no proxy ever did. */
export async function readListening(stateDir: string): Promise<ProxyListening | undefined> {
  try {
    const facts = JSON.parse(await fs.readFile(listeningFile(stateDir), 'utf8')) as Partial<ProxyListening>;
    if (typeof facts.httpPort !== 'number' || typeof facts.pid !== 'number') return undefined;
    return { pid: facts.pid, httpPort: facts.httpPort, ...(typeof facts.httpsPort === 'number' ? { httpsPort: facts.httpsPort } : {}) };
  } catch {
    return undefined;
  }
}
