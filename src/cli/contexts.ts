/**
 * Remote agents for the CLI. A context names an agent: its HTTPS address, a token, and its CA,
 * fetched once by the pinned fingerprint (`depad context add`). Contexts live in
 * `$XDG_CONFIG_HOME/depad/contexts.json` (else ~/.config/depad), mode 0600: it holds tokens.
 * Which agent a command talks to: `--host` (with `--token`, `--ca-fingerprint`) or DEPAD_HOST
 * (DEPAD_TOKEN, DEPAD_CA_FINGERPRINT); else `--context` or DEPAD_CONTEXT; else the current
 * context; else a local agent on this home's socket; else none (the CLI works on the state itself).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fetchPinnedCa, normalizeFingerprint } from '../../certs/pin.ts';
import { DepadError } from '../errors.ts';
import { writePrivateFile } from '../private-file.ts';
import { resolveHome } from '../home.ts';
import { AgentClient, localAgent } from './agent-client.ts';
import { parseSshUrl } from './ssh-transport.ts';
import type { GlobalOptions } from './runtime.ts';

/** A saved remote agent. */
export interface Context {
  host: string;
  /** HTTPS only: the token, the agent's CA (PEM, trusted for this context only) and its fingerprint. */
  token?: string;
  ca?: string;
  fingerprint?: string;
}

/** The contexts file. */
export interface ContextsFile {
  current?: string;
  contexts: Record<string, Context>;
}

/** Where contexts are kept. */
export function contextsPath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config'), 'depad', 'contexts.json');
}

/** Reads the contexts file (empty when there is none). */
export async function readContexts(file = contextsPath()): Promise<ContextsFile> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { contexts: {} };
    throw new DepadError('DEPAD_CONFIG_UNREADABLE', `cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
  try {
    const value = JSON.parse(text) as ContextsFile;
    if (typeof value !== 'object' || value === null || typeof value.contexts !== 'object') throw new Error('no contexts object');
    return value;
  } catch (error) {
    throw new DepadError('DEPAD_CONFIG_SYNTAX', `${file} is not a contexts file: ${(error as Error).message}`, { hint: 'fix or remove it', cause: error });
  }
}

/** Writes the contexts file (0600, atomically). */
export async function writeContexts(value: ContextsFile, file = contextsPath()): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await writePrivateFile(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** Checks an agent address: `https://host[:port]` or `ssh://user@host[:port][/depad-home]`. */
export function parseAgentUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // `create --host eu-1`, as the cluster issue spelled it: the cluster host is --on-host.
    const bare = /^[a-z0-9][a-z0-9._-]*$/i.test(text);
    throw new DepadError('DEPAD_USAGE', `not an agent address: ${JSON.stringify(text)}`, { hint: `e.g. https://build-host:8443${bare ? `; --host is the agent or manager to talk to: to place a create on the cluster host ${text}, pass --on-host ${text}` : ''}` });
  }
  if (url.protocol === 'ssh:') return url;
  if (url.protocol !== 'https:' || url.username || url.password || url.search || url.hash || (url.pathname !== '/' && url.pathname !== '')) {
    throw new DepadError('DEPAD_USAGE', `an agent address is https://host[:port] or ssh://user@host: ${JSON.stringify(text)}`, { hint: 'the API is always TLS' });
  }
  return url;
}

/** Pins the CA of the agent at `url` by `fingerprint` and returns a client for it. */
export async function pinnedClient(url: URL, token: string, fingerprint: string): Promise<{ client: AgentClient; ca: string }> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const ca = await fetchPinnedCa(host, Number(url.port || 443), normalizeFingerprint(fingerprint));
  return { client: new AgentClient({ kind: 'https', url, ca, token }), ca };
}

/** The agent a command talks to (see the file comment), or undefined to work on the state directly. */
export async function agentFor(globals: GlobalOptions, env: NodeJS.ProcessEnv = process.env): Promise<AgentClient | undefined> {
  const host = globals.host ?? env.DEPAD_HOST;
  if (host !== undefined && host !== '' && host.startsWith('ssh:')) return new AgentClient({ kind: 'ssh', target: parseSshUrl(parseAgentUrl(host)) });
  if (host !== undefined && host !== '') {
    const url = parseAgentUrl(host);
    const token = globals.token ?? env.DEPAD_TOKEN;
    const fingerprint = globals.caFingerprint ?? env.DEPAD_CA_FINGERPRINT;
    if (!token) throw new DepadError('DEPAD_USAGE', `--host ${host} needs a token`, { hint: 'pass --token or set DEPAD_TOKEN' });
    // No fingerprint: the agent's certificate must verify against the system's trust store (a public certificate).
    if (!fingerprint) return new AgentClient({ kind: 'https', url, token });
    return (await pinnedClient(url, token, fingerprint)).client;
  }
  const name = globals.context ?? env.DEPAD_CONTEXT;
  const file = await readContexts();
  const chosen = name ?? file.current;
  if (chosen !== undefined && chosen !== '' && chosen !== 'local') {
    const c = file.contexts[chosen];
    if (c === undefined) throw new DepadError('DEPAD_NOT_FOUND', `no context named ${chosen}`, { hint: 'list them with: depad context ls' });
    const url = parseAgentUrl(c.host);
    if (url.protocol === 'ssh:') return new AgentClient({ kind: 'ssh', target: parseSshUrl(url) });
    return new AgentClient({ kind: 'https', url, ...(c.ca === undefined ? {} : { ca: c.ca }), token: c.token ?? '' });
  }
  return localAgent(globals.home ?? resolveHome());
}
