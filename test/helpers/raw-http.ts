/**
 * Raw HTTP peers for the proxy tests: a client socket that writes bytes and keeps everything that
 * comes back, and TCP upstreams that answer (or misbehave) byte by byte and record what they got.
 * Everything started here is closed in t.teardown.
 */
import type { ExecutionContext } from 'ava';
import http from 'node:http';
import net from 'node:net';
import { until } from './proxy-fixtures.ts';
import type { Proxy } from './proxy-fixtures.ts';

/** A raw client connection to the proxy: write bytes, read everything that comes back. */
export interface Raw {
  socket: net.Socket;
  /** Everything received so far (latin1). */
  text(): string;
  /** Resolves once the received text matches `pattern` (fails after 5 s). */
  waitFor(pattern: RegExp): Promise<string>;
  /** Resolves once the proxy closed the connection. */
  closed: Promise<void>;
}

/** A raw client connection to the proxy, `data` written once connected. */
export async function raw(t: ExecutionContext, p: Proxy, data?: string): Promise<Raw> {
  const socket = net.connect(p.httpPort, '127.0.0.1');
  t.teardown(() => void socket.destroy());
  let received = '';
  socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  if (data !== undefined) socket.write(data);
  return {
    socket,
    text: () => received,
    closed,
    async waitFor(pattern) {
      await until(() => pattern.test(received), `a response matching ${pattern}`);
      return received;
    },
  };
}

/** A raw TCP upstream: `onData` gets each connection's bytes and writes what it wants. */
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
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, body: Buffer.concat(chunks) });
      res.end(`seen ${req.url}`);
    });
  });
  server.on('connection', (socket: net.Socket) => socket.on('data', (d: Buffer) => (bytes += d.toString('latin1'))));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))));
  return { port: (server.address() as net.AddressInfo).port, requests, bytes: () => bytes };
}
