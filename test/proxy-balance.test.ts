/**
 * Load balancing in the real proxy (the `depad proxy` process, or startProxy in the test process
 * where the agent's health marks are needed) over real upstream servers on loopback: least
 * outstanding requests with round robin among ties, unhealthy upstreams passed over, keep-alive
 * connections and WebSockets staying on their upstream, cookie affinity (also across a restart of
 * the proxy process), TCP least connections. Everything started here is closed in t.teardown.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { fork } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CertificateStore } from '../certs/certificate-store.ts';
import { ensureAgentTls } from '../certs/local-ca.ts';
import { ROOT, testPorts } from './helpers/harness.ts';
import { startProxyProcess } from './helpers/proxy-process.ts';
import { httpRoute, keepAliveAgent, proxy, request, stateDir, tcpRoute, until, upstream } from './helpers/proxy-fixtures.ts';
import type { Proxy } from './helpers/proxy-fixtures.ts';
import { ProxyClient, proxyPaths } from '../proxy/index.ts';

/** `depad proxy` on a fresh DEPAD_HOME, with a control-channel client. */
async function proxyProcess(t: ExecutionContext): Promise<{ port: number; client: ProxyClient; stop: () => Promise<void>; start: () => Promise<void> }> {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'depad-lb-'));
  t.teardown(() => fs.rm(home, { recursive: true, force: true }));
  const p = await startProxyProcess(t, { home });
  return { port: p.port, client: new ProxyClient(proxyPaths(path.join(home, 'proxy'))), stop: p.stop, start: p.start };
}

/** The proxy's port as the fixtures' request helper takes it. */
function at(port: number): Proxy {
  return { httpPort: port } as Proxy;
}

/** How many of `names` each name is. */
function counts(names: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of names) out[n] = (out[n] ?? 0) + 1;
  return out;
}

/** `n` requests one after another, each on a new connection; the upstreams' names in order. */
async function sequential(p: Proxy, host: string, n: number, headers: http.OutgoingHttpHeaders = {}): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < n; i++) names.push((await request(p, host, { headers })).body.toString());
  return names;
}

test('three equal upstreams share requests evenly, in turn (depad proxy process)', async (t) => {
  const ups = [await upstream(t, 'a'), await upstream(t, 'b'), await upstream(t, 'c')];
  const p = await proxyProcess(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['lb.test'], ups.map((u) => u.port))]);
  const names = await sequential(at(p.port), 'lb.test', 30);
  t.deepEqual(counts(names), { a: 10, b: 10, c: 10 });
  t.deepEqual(names.slice(0, 6), ['a', 'b', 'c', 'a', 'b', 'c']);
  // Concurrent requests (new connections) spread too.
  const concurrent = await Promise.all(Array.from({ length: 30 }, () => request(at(p.port), 'lb.test')));
  t.true(concurrent.every((r) => r.status === 200));
  const spread = counts(concurrent.map((r) => r.body.toString()));
  t.deepEqual(Object.keys(spread).sort(), ['a', 'b', 'c']);
  for (const n of Object.values(spread)) t.true(n >= 5 && n <= 15, JSON.stringify(spread));
});

test('a slow upstream gets fewer requests than fast ones under concurrent load (least outstanding)', async (t) => {
  const slow = await upstream(t, 'slow', (_req, res) => void sleep(150).then(() => res.end('slow')));
  const fast1 = await upstream(t, 'fast1');
  const fast2 = await upstream(t, 'fast2');
  const p = await proxyProcess(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['lb.test'], [slow.port, fast1.port, fast2.port])]);
  const names: string[] = [];
  // 6 clients, each sending 15 requests one after another on new connections.
  await Promise.all(Array.from({ length: 6 }, async () => (names.push(...(await sequential(at(p.port), 'lb.test', 15))))));
  const c = counts(names);
  t.log(JSON.stringify(c));
  t.is(names.length, 90);
  // Round robin would give each 30.
  t.true((c.slow ?? 0) <= 15, JSON.stringify(c));
  t.true((c.fast1 ?? 0) > 2 * (c.slow ?? 0) && (c.fast2 ?? 0) > 2 * (c.slow ?? 0), JSON.stringify(c));
});

test('an unhealthy upstream gets no request, and takes its share again once healthy', async (t) => {
  const ups = [await upstream(t, 'a'), await upstream(t, 'b'), await upstream(t, 'c')];
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['lb.test'], ups.map((u) => u.port))]);
  p.markUpstream(`127.0.0.1:${ups[1]!.port}`, false);
  t.deepEqual(counts(await sequential(p, 'lb.test', 12)), { a: 6, c: 6 });
  p.markUpstream(`127.0.0.1:${ups[1]!.port}`, true);
  t.deepEqual(counts(await sequential(p, 'lb.test', 12)), { a: 4, b: 4, c: 4 });
});

test('a keep-alive connection stays on its upstream while it is in the route and healthy, then moves', async (t) => {
  const ups = [await upstream(t, 'a'), await upstream(t, 'b'), await upstream(t, 'c')];
  const p = await proxy(t);
  const ports = ups.map((u) => u.port);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['lb.test'], ports)]);
  const agent = keepAliveAgent(t);
  const first = (await request(p, 'lb.test', { agent })).body.toString();
  const onConnection: string[] = [];
  for (let i = 0; i < 9; i++) {
    const r = await request(p, 'lb.test', { agent });
    t.true(r.reused);
    onConnection.push(r.body.toString());
    // Meanwhile other connections are spread as usual.
    await request(p, 'lb.test');
  }
  t.deepEqual(counts(onConnection), { [first]: 9 });
  // Its upstream is marked unhealthy: the same connection moves to another one, and stays there.
  const firstPort = ports[['a', 'b', 'c'].indexOf(first)] as number;
  p.markUpstream(`127.0.0.1:${firstPort}`, false);
  const moved = await sequentialOn(p, agent, 5);
  t.is(new Set(moved).size, 1);
  t.not(moved[0], first);
  p.markUpstream(`127.0.0.1:${firstPort}`, true);
  t.deepEqual(await sequentialOn(p, agent, 3), [moved[0], moved[0], moved[0]], 'no move back: the new one is still fine');
  // Its upstream leaves the route: the next request goes to one still in it, without a failure.
  const left = ports.filter((port) => port !== ports[['a', 'b', 'c'].indexOf(moved[0] as string)]);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['lb.test'], left)]);
  const after = await sequentialOn(p, agent, 4);
  t.is(new Set(after).size, 1);
  t.not(after[0], moved[0]);
});

async function sequentialOn(p: Proxy, agent: http.Agent, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await request(p, 'lb.test', { agent });
    if (r.status !== 200) throw new Error(`status ${r.status}`);
    out.push(r.body.toString());
  }
  return out;
}

/** An HTTP upstream that also takes upgrades: after the 101, answers every chunk with `name`. */
async function tunnelUpstream(t: ExecutionContext, name: string): Promise<number> {
  const up = await upstream(t, name);
  // Upgraded sockets leave the server's books: closed here, or its close would wait for them.
  const upgraded = new Set<net.Socket>();
  t.teardown(() => upgraded.forEach((s) => s.destroy()));
  up.server.on('upgrade', (_req: http.IncomingMessage, socket: net.Socket) => {
    upgraded.add(socket);
    socket.on('error', () => {});
    socket.on('end', () => socket.end());
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n');
    socket.on('data', () => socket.write(name));
  });
  return up.port;
}

/** An upgraded connection through the proxy; `ask` sends a byte and resolves with the upstream's name. */
async function tunnel(t: ExecutionContext, p: Proxy, host: string): Promise<{ ask: () => Promise<string> }> {
  const socket = net.connect({ port: p.httpPort, host: '127.0.0.1' });
  t.teardown(() => socket.destroy());
  socket.write(`GET /ws HTTP/1.1\r\nHost: ${host}\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n`);
  await new Promise<void>((resolve, reject) => {
    let head = '';
    const onData = (d: Buffer) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      if (head.startsWith('HTTP/1.1 101')) resolve();
      else reject(new Error(head));
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
  return { ask: () => new Promise((resolve) => (socket.once('data', (d: Buffer) => resolve(d.toString())), socket.write('x'))) };
}

test('a WebSocket stays on its upstream; new ones go to the upstream with fewer; open ones do not count for requests', async (t) => {
  const ports = [await tunnelUpstream(t, 'a'), await tunnelUpstream(t, 'b')];
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['lb.test'], ports)]);
  const first = await tunnel(t, p, 'lb.test');
  const name = await first.ask();
  for (let i = 0; i < 5; i++) t.is(await first.ask(), name);
  // Plain requests take turns over both, the open WebSocket notwithstanding.
  t.deepEqual(counts(await sequential(p, 'lb.test', 4)), { a: 2, b: 2 });
  // New WebSockets go where fewer are open.
  const others = [await tunnel(t, p, 'lb.test'), await tunnel(t, p, 'lb.test'), await tunnel(t, p, 'lb.test')];
  const all = [name, ...(await Promise.all(others.map((o) => o.ask())))];
  t.deepEqual(counts(all), { a: 2, b: 2 });
  t.deepEqual(Object.values(p.load()).map((l) => l.websockets), [2, 2]);
});

/** The affinity token a response sets, checking the cookie's attributes. */
function affinityCookie(t: ExecutionContext, headers: http.IncomingHttpHeaders, secure = false): string {
  const set = headers['set-cookie'] ?? [];
  t.is(set.length, 1, JSON.stringify(set));
  const m = /^depad_affinity=([A-Za-z0-9_-]{22}); Path=\/; HttpOnly; SameSite=Lax(; Secure)?$/.exec(set[0] ?? '');
  if (m === null) throw new Error(`unexpected Set-Cookie ${set[0]}`);
  t.is(m[2] !== undefined, secure);
  return m[1] as string;
}

test('cookie affinity: the cookie names the upstream opaquely, sticks, and is replaced when its upstream leaves or is unhealthy', async (t) => {
  const ups = [await upstream(t, 'a'), await upstream(t, 'b'), await upstream(t, 'c')];
  const ports = ups.map((u) => u.port);
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['lb.test'], ports, { affinity: 'cookie' })]);
  const first = await request(p, 'lb.test');
  const token = affinityCookie(t, first.headers);
  for (const port of ports) t.false(token.includes(String(port)));
  const name = first.body.toString();
  // Each on a new connection, among other cookies: always the same upstream, no new cookie.
  for (let i = 0; i < 6; i++) {
    const r = await request(p, 'lb.test', { headers: { cookie: `theme=dark; depad_affinity=${token} ; lang=en` } });
    t.is(r.body.toString(), name);
    t.is(r.headers['set-cookie'], undefined);
  }
  // A forged or altered value is no cookie: a pick, and a cookie naming what was picked.
  const forged = await request(p, 'lb.test', { headers: { cookie: `depad_affinity=${token.slice(0, 21)}A` } });
  affinityCookie(t, forged.headers);
  // Unhealthy: another upstream and a new cookie; it sticks.
  const namePort = ports[['a', 'b', 'c'].indexOf(name)] as number;
  p.markUpstream(`127.0.0.1:${namePort}`, false);
  const moved = await request(p, 'lb.test', { headers: { cookie: `depad_affinity=${token}` } });
  t.not(moved.body.toString(), name);
  const token2 = affinityCookie(t, moved.headers);
  t.not(token2, token);
  t.deepEqual(counts(await sequential(p, 'lb.test', 4, { cookie: `depad_affinity=${token2}` })), { [moved.body.toString()]: 4 });
  // Healthy again: the old cookie leads to its upstream again.
  p.markUpstream(`127.0.0.1:${namePort}`, true);
  t.is((await request(p, 'lb.test', { headers: { cookie: `depad_affinity=${token}` } })).body.toString(), name);
  // Its upstream leaves the route: a new pick among the others, and a new cookie.
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['lb.test'], ports.filter((port) => port !== namePort), { affinity: 'cookie' })]);
  const gone = await request(p, 'lb.test', { headers: { cookie: `depad_affinity=${token}` } });
  t.is(gone.status, 200);
  t.not(gone.body.toString(), name);
  affinityCookie(t, gone.headers);
  // A route without affinity sets no cookie.
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['lb.test'], ports)]);
  t.is((await request(p, 'lb.test')).headers['set-cookie'], undefined);
});

test('cookie affinity survives a restart of the depad proxy process (its key is in the state directory)', async (t) => {
  const ups = [await upstream(t, 'a'), await upstream(t, 'b'), await upstream(t, 'c')];
  const p = await proxyProcess(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['lb.test'], ups.map((u) => u.port), { affinity: 'cookie' })]);
  const tokens = new Map<string, string>();
  for (let i = 0; i < 3; i++) {
    const r = await request(at(p.port), 'lb.test');
    tokens.set(r.body.toString(), affinityCookie(t, r.headers));
  }
  t.is(tokens.size, 3);
  await p.stop();
  await p.start();
  for (const [name, token] of tokens) {
    const r = await request(at(p.port), 'lb.test', { headers: { cookie: `depad_affinity=${token}` } });
    t.is(r.body.toString(), name);
    t.is(r.headers['set-cookie'], undefined);
  }
});

test('cookie affinity over HTTPS: the cookie is Secure, and names the same upstream as over HTTP', async (t) => {
  const dir = await stateDir(t);
  const store = await CertificateStore.open(path.join(dir, 'acme'));
  const issued = await ensureAgentTls({ dir: path.join(dir, 'ca'), hostnames: ['secure.example.com'], ips: [] });
  await store.save('secure.example.com', issued.certChain, issued.serverKey);
  const p = await proxy(t, undefined, { https: { port: 0, host: '127.0.0.1', certificates: store } });
  const ups = [await upstream(t, 'a'), await upstream(t, 'b')];
  await p.client.setDeploymentRoutes('shop', [httpRoute('shop', 'web', ['secure.example.com'], ups.map((u) => u.port), { affinity: 'cookie' })]);
  const get = (cookie?: string) =>
    new Promise<{ body: string; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
      const headers = { host: 'secure.example.com', ...(cookie === undefined ? {} : { cookie }) };
      const req = https.get({ host: '127.0.0.1', port: p.httpsPort, servername: 'secure.example.com', headers, ca: issued.caCert, agent: false }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ body, headers: res.headers }));
      });
      req.on('error', reject);
    });
  const first = await get();
  const token = affinityCookie(t, first.headers, true);
  for (let i = 0; i < 4; i++) t.is((await get(`depad_affinity=${token}`)).body, first.body);
  t.is((await request(p, 'secure.example.com', { headers: { cookie: `depad_affinity=${token}` } })).body.toString(), first.body, 'the same token over HTTP');
});

test('cookie affinity survives a handover of the listeners to another proxy process, and a reorder of the upstreams', async (t) => {
  const ups = [await upstream(t, 'a'), await upstream(t, 'b'), await upstream(t, 'c')];
  const ports = ups.map((u) => u.port);
  const old = await proxy(t);
  await old.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['lb.test'], ports, { affinity: 'cookie' })]);
  const tokens = new Map<string, string>();
  for (let i = 0; i < 3; i++) {
    const r = await request(old, 'lb.test');
    tokens.set(r.body.toString(), affinityCookie(t, r.headers));
  }
  const heir = fork(path.join(ROOT, 'test/helpers/proxy-heir.ts'), [old.stateDir], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  t.teardown(() => void (heir.exitCode === null && heir.kill('SIGKILL')));
  const messages: Record<string, unknown>[] = [];
  heir.on('message', (m: Record<string, unknown>) => messages.push(m));
  const send = (message: object, handle?: object) => new Promise<void>((resolve, reject) => heir.send(message, handle as never, (e) => (e ? reject(e) : resolve())));
  const l = old.listeners();
  await send({ role: 'http' }, l.http);
  await send({ role: 'control' }, l.control);
  await send({ done: true });
  await until(() => messages.some((m) => m.serving !== undefined), 'the heir to serve');
  const retired = await old.retire({ idleGraceMs: 200, drainTimeoutMs: 1000 });
  await send({ routes: { snapshot: retired.snapshot, unhealthy: retired.unhealthy } });
  await until(() => messages.some((m) => m.control === true), "the heir's control channel");
  // Set on the heir alone (the old process takes no changes now): the same upstreams, another order.
  await old.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['lb.test'], [...ports].reverse(), { affinity: 'cookie' })]);
  for (const [name, token] of tokens) {
    const r = await request(old, 'lb.test', { headers: { cookie: `depad_affinity=${token}` } });
    t.is(r.body.toString(), name);
    t.is(r.headers['set-cookie'], undefined);
  }
  await send({ stop: true });
  await new Promise((resolve) => heir.once('exit', resolve));
});

/** A TCP upstream that answers every chunk with its name; counts open connections. */
async function tcpNamed(t: ExecutionContext, name: string): Promise<{ port: number; open: () => number }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.on('data', () => socket.write(name));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => (sockets.forEach((s) => s.destroy()), server.close(() => resolve()))));
  return { port: (server.address() as net.AddressInfo).port, open: () => sockets.size };
}

/** A connection through the TCP route; resolves with it and the upstream's name. */
async function tcpOpen(t: ExecutionContext, port: number): Promise<{ socket: net.Socket; name: string }> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  t.teardown(() => socket.destroy());
  const name = await new Promise<string>((resolve, reject) => {
    socket.once('data', (d: Buffer) => resolve(d.toString()));
    socket.once('error', reject);
    socket.write('?');
  });
  return { socket, name };
}

test('TCP route: a new connection goes to the upstream with the fewest open ones (depad proxy process)', async (t) => {
  const a = await tcpNamed(t, 'a');
  const b = await tcpNamed(t, 'b');
  const p = await proxyProcess(t);
  const port = (await testPorts(t))();
  await p.client.setDeploymentRoutes('db', [tcpRoute('db', 'pg', port, [a.port, b.port])]);
  const c1 = await tcpOpen(t, port);
  const c2 = await tcpOpen(t, port);
  const c3 = await tcpOpen(t, port);
  t.deepEqual([c1.name, c2.name, c3.name], ['a', 'b', 'a']);
  c2.socket.destroy();
  await until(() => b.open() === 0, 'the connection to b to close');
  await sleep(50); // the proxy sees the close too
  // b has none, a has two: both new ones go to b (round robin would send the second to a).
  const c4 = await tcpOpen(t, port);
  const c5 = await tcpOpen(t, port);
  t.deepEqual([c4.name, c5.name], ['b', 'b']);
  // Equal again (2 and 2): turns.
  const c6 = await tcpOpen(t, port);
  const c7 = await tcpOpen(t, port);
  t.deepEqual([c6.name, c7.name].sort(), ['a', 'b']);
});
