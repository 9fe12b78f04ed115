/**
 * The built-in proxy against real upstream servers on loopback (node:http and net servers
 * started here): routing, headers, errors, streaming, keep-alive, route switches, drain,
 * WebSocket and TCP pass-through, pause, restart from the saved snapshot, the control channel
 * and the client. Every server and proxy is closed in t.teardown.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { DepadError } from '../src/errors.ts';
import { testPorts } from './helpers/harness.ts';
import { silentLogger } from '../src/logger.ts';
import { ProxyClient, proxyPaths, startProxy } from '../proxy/index.ts';
import { deadPort, httpRoute, keepAliveAgent, proxy, request, stateDir, tcpRoute, until, upstream } from './helpers/proxy-fixtures.ts';
import type { Proxy, Upstream } from './helpers/proxy-fixtures.ts';
import type { Route } from '../proxy/index.ts';

// ---------------------------------------------------------------------------------------------
// HTTP

test('routes by Host (any case, with a port) and answers 404 for an unknown host', async (t) => {
  const a = await upstream(t, 'A');
  const b = await upstream(t, 'B');
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [a.port])]);
  await p.client.setDeploymentRoutes('two', [httpRoute('two', 'web', ['b.test', 'www.b.test'], [b.port])]);
  t.is((await request(p, 'a.test')).body.toString(), 'A');
  t.is((await request(p, 'B.Test:8080')).body.toString(), 'B');
  t.is((await request(p, 'www.b.test')).body.toString(), 'B');
  const missing = await request(p, 'c.test');
  t.is(missing.status, 404);
  t.regex(missing.body.toString(), /no route/);
});

test('an absolute-form target is routed by its authority; a repeated Host header is refused', async (t) => {
  const a = await upstream(t, 'A');
  const b = await upstream(t, 'B');
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [a.port]), httpRoute('one', 'api', ['b.test'], [b.port])]);
  const absolute = await request(p, 'a.test', { path: 'http://b.test/x?y=1' });
  t.is(absolute.body.toString(), 'B');
  t.is((b.seen[0] as http.IncomingHttpHeaders).host, 'b.test');
  const raw = await new Promise<string>((resolve) => {
    const socket = net.connect(p.httpPort, '127.0.0.1', () => socket.end('GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n'));
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.on('close', () => resolve(text));
  });
  t.regex(raw, /^HTTP\/1\.1 400 /);
  t.is(a.seen.length + b.seen.length, 1);
});

test('sets X-Forwarded-For (appended), -Proto and -Host; strips hop-by-hop headers both ways', async (t) => {
  const a = await upstream(t, 'A', (_req, res) => {
    res.setHeader('x-kept', 'yes');
    res.setHeader('x-private', 'dropped');
    res.setHeader('connection', 'x-private');
    res.end('ok');
  });
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [a.port])]);
  const reply = await request(p, 'a.test:81', {
    headers: { 'x-forwarded-for': '203.0.113.9', connection: 'keep-alive, x-hop', 'x-hop': 'secret', 'keep-alive': 'timeout=5', 'proxy-authorization': 'x', te: 'trailers', 'x-end': 'kept' },
  });
  t.is(reply.status, 200);
  const seen = a.seen[0] as http.IncomingHttpHeaders;
  t.is(seen['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
  t.is(seen['x-forwarded-proto'], 'http');
  t.is(seen['x-forwarded-host'], 'a.test:81');
  t.is(seen.host, 'a.test:81');
  t.is(seen['x-end'], 'kept');
  for (const hop of ['x-hop', 'proxy-authorization', 'te']) t.is(seen[hop], undefined, hop);
  t.is(reply.headers['x-kept'], 'yes');
  t.is(reply.headers['x-private'], undefined);
});

test('503 when the route has no upstream, 502 when its upstream is down', async (t) => {
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'empty', ['empty.test'], []), httpRoute('one', 'dead', ['dead.test'], [await deadPort(t)])]);
  const empty = await request(p, 'empty.test');
  t.is(empty.status, 503);
  t.regex(empty.body.toString(), /no running instance/);
  const dead = await request(p, 'dead.test');
  t.is(dead.status, 502);
  t.regex(dead.body.toString(), /did not answer/);
});

test('502 when the upstream resets the connection mid-request', async (t) => {
  const a = await upstream(t, 'A', (req) => req.socket.destroy());
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [a.port])]);
  t.is((await request(p, 'a.test')).status, 502);
});

test('504 when the upstream sends no response headers in time', async (t) => {
  const hanging = await upstream(t, 'hang', () => {});
  const p = await proxy(t, undefined, { headersTimeoutMs: 300 });
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [hanging.port])]);
  const reply = await request(p, 'a.test');
  t.is(reply.status, 504);
  t.regex(reply.body.toString(), /in time/);
  t.deepEqual(p.load(), {});
});

test('streams a POST body of several MB both ways, with and without Content-Length', async (t) => {
  const a = await upstream(t, 'A', (req, res) => {
    res.setHeader('content-type', 'application/octet-stream');
    req.pipe(res);
  });
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [a.port])]);
  const body = randomBytes(6 * 1024 * 1024);
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const sized = await request(p, 'a.test', { method: 'POST', body, headers: { 'content-length': body.length } });
  t.is(sized.status, 200);
  t.is(sha(sized.body), sha(body));
  const chunked = await request(p, 'a.test', { method: 'PUT', body, headers: { 'transfer-encoding': 'chunked' } });
  t.is(chunked.status, 200);
  t.is(sha(chunked.body), sha(body));
});

test('backpressure: a client that stops reading stops the upstream from sending', async (t) => {
  const total = 64 * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 7);
  let written = 0;
  const a = await upstream(t, 'A', (_req, res) => {
    res.setHeader('content-length', total);
    const pump = () => {
      while (written < total) {
        written += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [a.port])]);
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: p.httpPort, headers: { host: 'a.test' }, agent: false }, resolve).on('error', reject);
  });
  res.pause();
  await sleep(500);
  t.true(written < total / 4, `upstream wrote ${written} bytes while the client read nothing`);
  let received = 0;
  res.on('data', (c: Buffer) => (received += c.length));
  res.resume();
  await new Promise((resolve) => res.on('end', resolve));
  t.is(received, total);
});

test('keep-alive client connections are reused, and so are upstream connections', async (t) => {
  const a = await upstream(t, 'A');
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [a.port])]);
  const agent = keepAliveAgent(t);
  const replies = [];
  for (let i = 0; i < 20; i++) replies.push(await request(p, 'a.test', { agent }));
  t.true(replies.every((r) => r.status === 200));
  t.deepEqual(replies.map((r) => r.reused), [false, ...Array<boolean>(19).fill(true)]);
  t.is(a.connections(), 1);
});

test('round robin over a route’s upstreams', async (t) => {
  const a = await upstream(t, 'A');
  const b = await upstream(t, 'B');
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [a.port, b.port])]);
  const names = [];
  for (let i = 0; i < 6; i++) names.push((await request(p, 'a.test')).body.toString());
  t.deepEqual(names, ['A', 'B', 'A', 'B', 'A', 'B']);
});

test('switching the route while a client loops on a keep-alive connection: no failure, old then only new', async (t) => {
  const a = await upstream(t, 'A');
  const b = await upstream(t, 'B');
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [a.port])]);
  const agent = keepAliveAgent(t);
  const seen: string[] = [];
  let failures = 0;
  let stop = false;
  const loop = (async () => {
    while (!stop) {
      const r = await request(p, 'a.test', { agent }).catch(() => undefined);
      if (r?.status === 200) seen.push(r.body.toString());
      else failures++;
    }
  })();
  await until(() => seen.length >= 20, 'requests to A');
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [b.port])]);
  const switchedAt = seen.length;
  await until(() => seen.length >= switchedAt + 20, 'requests after the switch');
  stop = true;
  await loop;
  t.is(failures, 0);
  const firstB = seen.indexOf('B');
  t.true(firstB > 0, 'requests reached A, then B');
  t.true(seen.slice(firstB).every((name) => name === 'B'), 'nothing went to A after the switch');
  t.true(seen.length - firstB > 5);
});

test('drain waits for a slow in-flight request, then reports drained', async (t) => {
  let answeredAt = Infinity;
  const slow = await upstream(t, 'slow', (_req, res) => void sleep(2000).then(() => ((answeredAt = Date.now()), res.end('slow'))));
  const b = await upstream(t, 'B');
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [slow.port])]);
  const pending = request(p, 'a.test');
  await until(() => slow.seen.length === 1, 'the request to reach the upstream');
  t.deepEqual(p.load()[`127.0.0.1:${slow.port}`], { requests: 1, websockets: 0, tcp: 0 });
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [b.port])]);
  const result = await p.client.drain({ host: '127.0.0.1', port: slow.port }, 5000);
  t.true(result.drained);
  t.is(result.remaining, 0);
  t.true(Date.now() >= answeredAt, 'drain returned after the upstream answered');
  t.true(result.waitedMs > 0);
  const reply = await pending;
  t.is(reply.status, 200);
  t.is(reply.body.toString(), 'slow');
  t.is((await request(p, 'a.test')).body.toString(), 'B');
});

test('drain timeout destroys a hanging request and reports what remained', async (t) => {
  const hanging = await upstream(t, 'hang', () => {});
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [hanging.port])]);
  const pending = request(p, 'a.test').then(
    () => 'answered',
    (error: Error) => error.message,
  );
  await until(() => hanging.seen.length === 1, 'the request to reach the upstream');
  const result = await p.client.drain({ host: '127.0.0.1', port: hanging.port }, 300);
  t.false(result.drained);
  t.is(result.remaining, 1);
  t.true(result.waitedMs >= 250);
  t.regex(await pending, /socket hang up|ECONNRESET/);
  t.deepEqual(p.load(), {});
});

test('drain of an upstream that never served anything returns at once', async (t) => {
  const p = await proxy(t);
  t.deepEqual(await p.client.drain({ host: '127.0.0.1', port: 1 }, 1000), { drained: true, remaining: 0, waitedMs: 0 });
});

// ---------------------------------------------------------------------------------------------
// WebSocket

interface Frame {
  opcode: number;
  payload: Buffer;
  length: number;
}

function parseFrame(buf: Buffer): Frame | undefined {
  if (buf.length < 2) return undefined;
  const masked = ((buf[1] as number) & 0x80) !== 0;
  let len = (buf[1] as number) & 0x7f;
  let off = 2;
  if (len === 126) {
    if (buf.length < 4) return undefined;
    len = buf.readUInt16BE(2);
    off = 4;
  }
  const maskAt = off;
  if (masked) off += 4;
  if (buf.length < off + len) return undefined;
  const payload = Buffer.from(buf.subarray(off, off + len));
  if (masked) for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] as number) ^ (buf[maskAt + (i % 4)] as number);
  return { opcode: (buf[0] as number) & 0x0f, payload, length: off + len };
}

function frame(opcode: number, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x80 | opcode, payload.length]), payload]);
}

/** An HTTP server whose upgrade handler speaks just enough WebSocket to echo `name:text`. */
async function wsUpstream(t: ExecutionContext, name: string): Promise<Upstream> {
  const up = await upstream(t, name);
  up.server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
    up.seen.push(req.headers);
    socket.on('error', () => {});
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    let buf = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (let f = parseFrame(buf); f; f = parseFrame(buf)) {
        buf = buf.subarray(f.length);
        if (f.opcode === 8) return void socket.end(frame(8, Buffer.alloc(0)));
        if (f.opcode === 1) socket.write(frame(1, Buffer.from(`${name}:${f.payload.toString()}`)));
      }
    });
  });
  return up;
}

interface Ws {
  send(text: string): Promise<string>;
  closed: Promise<void>;
  ws: WebSocket;
}

/** Opens a WebSocket (Node's global client) through the proxy; `send` resolves with the reply. */
async function openWs(t: ExecutionContext, p: Proxy): Promise<Ws> {
  const ws = new WebSocket(`ws://127.0.0.1:${p.httpPort}/chat`);
  t.teardown(() => ws.close());
  const replies: ((text: string) => void)[] = [];
  ws.addEventListener('message', (e) => replies.shift()?.(String(e.data)));
  const closed = new Promise<void>((resolve) => ws.addEventListener('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve());
    ws.addEventListener('error', () => reject(new Error('websocket failed')));
  });
  return { ws, closed, send: (text) => new Promise((resolve) => (replies.push(resolve), ws.send(text))) };
}

test('WebSocket upgrades pass through with X-Forwarded-* headers', async (t) => {
  const a = await wsUpstream(t, 'A');
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['127.0.0.1'], [a.port])]);
  const c = await openWs(t, p);
  t.is(await c.send('hello'), 'A:hello');
  t.is(await c.send('again'), 'A:again');
  const handshake = a.seen[0] as http.IncomingHttpHeaders;
  t.is(handshake['x-forwarded-for'], '127.0.0.1');
  t.is(handshake['x-forwarded-proto'], 'http');
  t.is(handshake.upgrade, 'websocket');
  t.deepEqual(p.load()[`127.0.0.1:${a.port}`], { requests: 0, websockets: 1, tcp: 0 });
});

test('an open WebSocket survives a route switch until its upstream is drained', async (t) => {
  const a = await wsUpstream(t, 'A');
  const b = await wsUpstream(t, 'B');
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['127.0.0.1'], [a.port])]);
  const old = await openWs(t, p);
  t.is(await old.send('1'), 'A:1');
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['127.0.0.1'], [b.port])]);
  t.is(await old.send('2'), 'A:2');
  const fresh = await openWs(t, p);
  t.is(await fresh.send('3'), 'B:3');
  const result = await p.client.drain({ host: '127.0.0.1', port: a.port }, 300);
  t.deepEqual([result.drained, result.remaining], [false, 1]);
  await old.closed;
  t.is(await fresh.send('4'), 'B:4');
});

// ---------------------------------------------------------------------------------------------
// TCP

/** A TCP upstream answering each chunk with `name:chunk`, and `name:got N` after the client's end. */
async function tcpUpstream(t: ExecutionContext, name: string): Promise<{ port: number }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let got = 0;
    socket.on('data', (d: Buffer) => {
      got += d.length;
      socket.write(`${name}:${d.toString()}`);
    });
    socket.on('end', () => void sleep(50).then(() => socket.end(`|${name}:got ${got}`)));
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => (sockets.forEach((s) => s.destroy()), server.close(() => resolve()))));
  return { port: (server.address() as net.AddressInfo).port };
}

interface TcpClient {
  socket: net.Socket;
  /** Everything received so far. */
  received: () => string;
  /** Resolves once the received text includes `text`. */
  waitFor: (text: string) => Promise<void>;
  ended: Promise<void>;
}

async function tcpConnect(t: ExecutionContext, port: number): Promise<TcpClient> {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  t.teardown(() => socket.destroy());
  let text = '';
  const waiters: [string, () => void][] = [];
  socket.on('data', (d: Buffer) => {
    text += d.toString();
    for (const [want, wake] of waiters) if (text.includes(want)) wake();
  });
  socket.on('error', () => {});
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => (socket.once('connect', resolve), socket.once('error', reject)));
  return {
    socket,
    received: () => text,
    ended,
    waitFor: (want) => (text.includes(want) ? Promise.resolve() : new Promise((resolve) => waiters.push([want, resolve]))),
  };
}

test('TCP route: echo through the proxy, and half-close is propagated', async (t) => {
  const a = await tcpUpstream(t, 'A');
  const p = await proxy(t);
  const port = (await testPorts(t))();
  await p.client.setDeploymentRoutes('db', [tcpRoute('db', 'pg', port, [a.port])]);
  t.deepEqual(p.tcpPorts(), [port]);
  const c = await tcpConnect(t, port);
  c.socket.write('hello');
  await c.waitFor('A:hello');
  c.socket.end(); // half-close: the upstream answers after seeing our end
  await c.ended;
  t.is(c.received(), 'A:hello|A:got 5');
});

test('TCP route: a long-lived connection stays on its upstream until drained; new ones go to the new upstream', async (t) => {
  const a = await tcpUpstream(t, 'A');
  const b = await tcpUpstream(t, 'B');
  const p = await proxy(t);
  const port = (await testPorts(t))();
  await p.client.setDeploymentRoutes('db', [tcpRoute('db', 'pg', port, [a.port])]);
  const old = await tcpConnect(t, port);
  old.socket.write('1');
  await old.waitFor('A:1');
  await p.client.setDeploymentRoutes('db', [tcpRoute('db', 'pg', port, [b.port])]);
  old.socket.write('2');
  await old.waitFor('A:2');
  const fresh = await tcpConnect(t, port);
  fresh.socket.write('3');
  await fresh.waitFor('B:3');
  t.deepEqual(p.load()[`127.0.0.1:${a.port}`], { requests: 0, websockets: 0, tcp: 1 });
  const result = await p.client.drain({ host: '127.0.0.1', port: a.port }, 300);
  t.deepEqual([result.drained, result.remaining], [false, 1]);
  await old.ended;
  fresh.socket.write('4');
  await fresh.waitFor('B:4');
});

test('TCP route: the listener stops when the route is removed', async (t) => {
  const a = await tcpUpstream(t, 'A');
  const p = await proxy(t);
  const port = (await testPorts(t))();
  await p.client.setDeploymentRoutes('db', [tcpRoute('db', 'pg', port, [a.port])]);
  await p.client.removeDeployment('db');
  t.deepEqual(p.tcpPorts(), []);
  await t.throwsAsync(tcpConnect(t, port), { message: /ECONNREFUSED/ });
});

// ---------------------------------------------------------------------------------------------
// Pause

test('pause: a request waits while paused and succeeds once the route points to a new upstream', async (t) => {
  const a = await upstream(t, 'A');
  const b = await upstream(t, 'B');
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [a.port], { pausedUntil: Date.now() + 10_000 })]);
  let settled = false;
  const pending = request(p, 'a.test').finally(() => (settled = true));
  await sleep(300);
  t.false(settled, 'the request waits');
  t.is((await p.client.health())?.waiting, 1);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [b.port])]);
  const reply = await pending;
  t.is(reply.status, 200);
  t.is(reply.body.toString(), 'B');
  t.is(a.seen.length, 0);
});

test('pause: a request still waiting at the deadline gets 503', async (t) => {
  const a = await upstream(t, 'A');
  const p = await proxy(t);
  const deadline = Date.now() + 1000;
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [a.port], { pausedUntil: deadline })]);
  const reply = await request(p, 'a.test');
  t.is(reply.status, 503);
  t.regex(reply.body.toString(), /paused/);
  t.true(Date.now() >= deadline, 'answered at the deadline, not before');
  t.is(a.seen.length, 0);
});

test('pause: a new TCP connection waits and is then piped to the new upstream', async (t) => {
  const a = await tcpUpstream(t, 'A');
  const b = await tcpUpstream(t, 'B');
  const p = await proxy(t);
  const port = (await testPorts(t))();
  await p.client.setDeploymentRoutes('db', [tcpRoute('db', 'pg', port, [a.port], { pausedUntil: Date.now() + 10_000 })]);
  const c = await tcpConnect(t, port);
  c.socket.write('x');
  await sleep(300);
  t.is(c.received(), '');
  await p.client.setDeploymentRoutes('db', [tcpRoute('db', 'pg', port, [b.port])]);
  await c.waitFor('B:x');
  t.pass();
});

// ---------------------------------------------------------------------------------------------
// Restart, control channel, client

test('restart: a new proxy on the same state directory serves the saved routes at once', async (t) => {
  const a = await upstream(t, 'A');
  const echo = await tcpUpstream(t, 'T');
  const dir = await stateDir(t);
  const port = (await testPorts(t))();
  const first = await proxy(t, dir);
  await first.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [a.port]), tcpRoute('one', 'db', port, [echo.port])]);
  await first.close();
  const mode = (await fs.stat(first.paths.snapshotFile)).mode & 0o777;
  t.is(mode, 0o600);
  const second = await proxy(t, dir);
  t.is((await request(second, 'a.test')).body.toString(), 'A');
  const c = await tcpConnect(t, port);
  c.socket.write('y');
  await c.waitFor('T:y');
  t.is(second.routes().version, 1);
});

/** A raw control request: status and parsed body. */
function control(p: Proxy, method: string, urlPath: string, body?: string): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: p.paths.socketPath, method, path: urlPath, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('control channel: health, routes, errors as {error: {code, message}}', async (t) => {
  const p = await proxy(t);
  t.is((await fs.stat(p.paths.socketPath)).mode & 0o777, 0o660);
  const health = await control(p, 'GET', '/health');
  t.is(health.status, 200);
  t.like(health.json, { ok: true, pid: process.pid, version: '0.1.0' });

  const badJson = await control(p, 'PUT', '/deployments/one', '{"routes": [');
  t.is(badJson.status, 400);
  t.is(badJson.json.error.code, 'DEPAD_USAGE');
  t.regex(badJson.json.error.message, /not valid JSON/);

  const put = (name: string, routes: unknown) => control(p, 'PUT', `/deployments/${name}`, JSON.stringify({ routes }));
  t.is((await put('one', [httpRoute('one', 'web', ['shared.test'], [80]), tcpRoute('one', 'db', 15432, [5432])])).status, 200);
  const taken = await put('two', [httpRoute('two', 'web', ['Shared.Test'], [81])]);
  t.is(taken.status, 409);
  t.is(taken.json.error.code, 'DEPAD_NAME_TAKEN');
  t.regex(taken.json.error.message, /host shared\.test is already routed to deployment one/);
  const portTaken = await put('two', [tcpRoute('two', 'db', 15432, [5433])]);
  t.is(portTaken.status, 409);
  t.is(portTaken.json.error.code, 'DEPAD_PORT_IN_USE');

  const invalid: [unknown, RegExp][] = [
    [[{ ...httpRoute('two', 'web', ['x.test'], [81]), kind: 'udp' }], /kind/],
    [[tcpRoute('two', 'db', 1.5, [81])], /listenPort/],
    [[httpRoute('two', 'web', ['x.test'], [70000])], /port/],
    [[httpRoute('two', 'web', ['x.test'], [81]), httpRoute('two', 'web', ['y.test'], [81])], /used twice/],
    [[httpRoute('three', 'web', ['x.test'], [81])], /does not match/],
    [[httpRoute('two', 'web', ['http://x.test/'], [81])], /not a hostname/],
  ];
  for (const [routes, message] of invalid) {
    const r = await put('two', routes);
    t.is(r.status, 400, JSON.stringify(routes));
    t.regex(r.json.error.message, message);
  }
  t.is((await put('Bad_Name', [])).json.error.code, 'DEPAD_NAME_INVALID');
  t.is((await control(p, 'GET', '/nope')).status, 404);
  t.is((await control(p, 'POST', '/routes')).status, 405);
  t.is((await control(p, 'POST', '/drain', '{"upstream": {"host": "127.0.0.1"}}')).status, 400);

  const routes = await control(p, 'GET', '/routes');
  t.is(routes.json.version, 1);
  t.deepEqual(routes.json.routes.map((r: Route) => r.id), ['one/web', 'one/db']);
  const removed = await control(p, 'DELETE', '/deployments/one');
  t.deepEqual(removed.json, { version: 2 });
  t.is((await request(p, 'shared.test')).status, 404);
});

test('control socket: a stale socket file is replaced; a second proxy on the same state is refused', async (t) => {
  const dir = await stateDir(t);
  await fs.writeFile(proxyPaths(dir).socketPath, 'stale');
  const p = await proxy(t, dir);
  t.true(await p.client.running());
  const error = await t.throwsAsync(startProxy({ stateDir: dir, httpPort: 0, httpHost: '127.0.0.1', logger: silentLogger }));
  t.true(error instanceof DepadError && error.code === 'DEPAD_STATE_LOCKED', String(error));
  t.true(await p.client.running());
});

test('client without a running proxy edits the snapshot file; the proxy serves it when it starts', async (t) => {
  const a = await upstream(t, 'A');
  const dir = await stateDir(t);
  const client = new ProxyClient(proxyPaths(dir));
  t.false(await client.running());
  t.deepEqual(await client.routes(), { version: 0, routes: [] });
  t.deepEqual(await client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [a.port])]), { version: 1, live: false });
  t.deepEqual(await client.setDeploymentRoutes('gone', [httpRoute('gone', 'web', ['g.test'], [a.port])]), { version: 2, live: false });
  t.deepEqual(await client.removeDeployment('gone'), { version: 3, live: false });
  const conflict = await t.throwsAsync(client.setDeploymentRoutes('two', [httpRoute('two', 'web', ['a.test'], [a.port])]));
  t.is((conflict as DepadError).code, 'DEPAD_NAME_TAKEN');
  t.deepEqual(await client.drain({ host: '127.0.0.1', port: a.port }, 5000), { drained: true, remaining: 0, waitedMs: 0 });
  t.is((await fs.stat(proxyPaths(dir).snapshotFile)).mode & 0o777, 0o600);
  t.deepEqual((await client.routes()).routes.map((r) => r.id), ['one/web']);

  const p = await proxy(t, dir);
  t.is((await request(p, 'a.test')).body.toString(), 'A');
  t.true(await client.running());
  t.deepEqual(await client.setDeploymentRoutes('two', [httpRoute('two', 'web', ['b.test'], [a.port])]), { version: 4, live: true });
  const live = await t.throwsAsync(client.setDeploymentRoutes('three', [httpRoute('three', 'web', ['B.test'], [a.port])]));
  t.is((live as DepadError).code, 'DEPAD_NAME_TAKEN');
  t.is((await client.routes()).version, 4);
  t.deepEqual(await client.removeDeployment('two'), { version: 5, live: true });
  await t.throwsAsync(client.removeDeployment('No'), { instanceOf: DepadError });
});

test('close() lets an in-flight request finish before stopping', async (t) => {
  const slow = await upstream(t, 'slow', (_req, res) => void sleep(300).then(() => res.end('done')));
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [slow.port])]);
  const pending = request(p, 'a.test');
  await until(() => slow.seen.length === 1, 'the request to reach the upstream');
  await p.close();
  t.is((await pending).body.toString(), 'done');
  t.false(await p.client.running());
});

test('a route passes over an upstream marked unhealthy while it has a healthy one; with none healthy, all serve', async (t) => {
  const p = await proxy(t);
  const a = await upstream(t, 'a');
  const b = await upstream(t, 'b');
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['rr.test'], [a.port, b.port])]);
  const answers = async (n: number) => {
    const seen: string[] = [];
    for (let i = 0; i < n; i++) seen.push((await request(p, 'rr.test')).body.toString());
    return [...new Set(seen)].sort();
  };
  t.deepEqual(await answers(4), ['a', 'b']);
  p.markUpstream(`127.0.0.1:${a.port}`, false);
  t.deepEqual(await answers(6), ['b'], 'the unhealthy one is passed over');
  p.markUpstream(`127.0.0.1:${b.port}`, false);
  t.deepEqual(await answers(4), ['a', 'b'], 'no healthy one: both still serve');
  p.markUpstream(`127.0.0.1:${a.port}`, true);
  t.deepEqual(await answers(6), ['a']);
});
