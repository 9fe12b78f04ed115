/**
 * Raw HTTP peers for the proxy tests: a client socket that writes bytes and keeps everything that
 * comes back (or reads nothing until told), and TCP upstreams that answer (or misbehave) byte by
 * byte and record what they got. Everything started here is closed in t.teardown.
 */
import type { ExecutionContext } from 'ava';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { upstream } from './proxy-fixtures.ts';
import type { Proxy } from './proxy-fixtures.ts';

/** A raw client connection: write bytes, read what comes back (or not, until `read()`). */
export interface RawClient {
  socket: net.Socket;
  /** Everything received so far (latin1); empty for a client given a `sink`. */
  text(): string;
  /** Resolves once the received text matches `pattern` (fails after `timeoutMs`, default 5 s). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves once the connection closed. */
  closed: Promise<void>;
  /** When it closed (Date.now()), if it did. */
  closedAt(): number | undefined;
  /** Starts reading a client opened with `paused`; `sink` takes the bytes instead of `text()`. */
  read(sink?: (chunk: Buffer) => void): void;
}

/** Connects to `port` on loopback and writes `data`; with `paused`, nothing is read until `read()`. */
export async function rawClient(t: ExecutionContext, port: number, data?: string, options: { paused?: boolean } = {}): Promise<RawClient> {
  const socket = net.connect(port, '127.0.0.1');
  t.teardown(() => void socket.destroy());
  if (options.paused) socket.pause();
  let received = '';
  let closedAt: number | undefined;
  let reading = false;
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => ((closedAt = Date.now()), resolve())));
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const read = (sink?: (chunk: Buffer) => void) => {
    if (reading) return;
    reading = true;
    socket.on('data', (d: Buffer) => {
      if (sink) sink(d);
      else received += d.toString('latin1');
    });
    socket.resume();
  };
  if (!options.paused) read();
  if (data !== undefined) socket.write(data, 'latin1');
  return {
    socket,
    text: () => received,
    closed,
    closedAt: () => closedAt,
    read,
    async waitFor(pattern, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(received)) {
        if (Date.now() > deadline) throw new Error(`no response matching ${pattern} in ${timeoutMs} ms; got ${JSON.stringify(received.slice(0, 200))}`);
        await sleep(5);
      }
      return received;
    },
  };
}

/** A raw client connection to the proxy `p` (in process), `data` written once connected. */
export function raw(t: ExecutionContext, p: Proxy, data?: string): Promise<RawClient> {
  return rawClient(t, p.httpPort, data);
}

/** A raw TCP upstream: `onConnection` gets each connection (and its index) and writes what it wants. */
export async function rawUpstream(t: ExecutionContext, onConnection: (socket: net.Socket, index: number) => void): Promise<{ port: number; connections: () => number }> {
  let count = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onConnection(socket, count++);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => (sockets.forEach((s) => s.destroy()), server.close(() => resolve()))));
  return { port: (server.address() as net.AddressInfo).port, connections: () => count };
}

/** Answers every request head on a connection with `reply(index)` (keep-alive). */
export function answerEach(reply: (n: number, head: string) => string | undefined): (socket: net.Socket) => void {
  return (socket) => {
    let buf = '';
    let n = 0;
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        const out = reply(n++, head);
        if (out === undefined) return void socket.destroy();
        socket.write(out);
      }
    });
  };
}

/** A request as a strict upstream (Node's llhttp) read it, with the raw bytes of its connection. */
export interface Recorded {
  method: string;
  url: string;
  /** Header lines as received (name, value pairs). */
  rawHeaders: string[];
  body: Buffer;
}

/** A strict HTTP upstream (node:http) recording every request and every byte it received. */
export interface RecordingUpstream {
  port: number;
  requests: Recorded[];
  /** Everything received, all connections, in order (latin1). */
  bytes(): string;
}

/** Starts a recording upstream on loopback; each request is answered `200 seen <url>`. */
export async function recordingUpstream(t: ExecutionContext): Promise<RecordingUpstream> {
  const requests: Recorded[] = [];
  let bytes = '';
  const up = await upstream(t, 'recording', (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, body: Buffer.concat(chunks) });
      res.end(`seen ${req.url}`);
    });
  });
  up.server.on('connection', (socket: net.Socket) => socket.on('data', (d: Buffer) => (bytes += d.toString('latin1'))));
  return { port: up.port, requests, bytes: () => bytes };
}
