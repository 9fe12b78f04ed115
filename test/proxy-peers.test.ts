/**
 * Peer routes of the proxy (proxy/peer-routes.ts) between two real proxies on loopback: a hostname
 * with no local route goes to the peer's proxy, marked, over kept-alive connections, with the first
 * proxy's X-Forwarded-* reaching the upstream; a marked request is never forwarded again (a forged
 * mark gets a 421, a wrong key is not trusted); a local route wins; a bad table is refused; requests
 * through a peer are balanced one by one (the peer connection carries many clients).
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { DepadError } from '../src/errors.ts';
import type { PeerTable } from '../proxy/peer-routes.ts';
import { httpRoute, keepAliveAgent, proxy, request, upstream } from './helpers/proxy-fixtures.ts';
import type { Proxy } from './helpers/proxy-fixtures.ts';

const KEY = randomBytes(32).toString('base64url');

/** A TCP relay to `port` on loopback that counts the connections it accepts (the peer's side). */
async function relay(t: ExecutionContext, port: number): Promise<{ port: number; connections: () => number }> {
  let connections = 0;
  const open = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections++;
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    const out = net.connect(port, '127.0.0.1');
    socket.pipe(out).pipe(socket);
    socket.on('error', () => out.destroy());
    out.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => (server.close(() => resolve()), open.forEach((s) => s.destroy()))));
  return { port: (server.address() as net.AddressInfo).port, connections: () => connections };
}

/** Two proxies: `a` serves shop.test locally; `b` has `a` (through a counting relay) as its peer for it. */
async function pair(t: ExecutionContext) {
  const app = await upstream(t, 'APP');
  const a = await proxy(t);
  const b = await proxy(t);
  await a.client.setDeploymentRoutes('shop', [httpRoute('shop', 'web', ['shop.test'], [app.port])]);
  const toA = await relay(t, a.httpPort);
  const peers = (self: string, other: string, port: number, routes: Record<string, string>): PeerTable => ({ self, key: KEY, hosts: [{ name: other, address: '127.0.0.1', httpPort: port }], routes });
  t.true(await b.client.setPeers(peers('host-b', 'host-a', toA.port, { 'shop.test': 'host-a', 'gone.test': 'host-a' })));
  t.true(await a.client.setPeers(peers('host-a', 'host-b', b.httpPort, { 'gone.test': 'host-b' })));
  return { app, a, b, toA };
}

test('a peer hostname answers through the other proxy: keep-alive to the peer, X-Forwarded-* of the first proxy, no mark upstream', async (t) => {
  const { app, b, toA } = await pair(t);
  const agent = keepAliveAgent(t);
  for (let i = 0; i < 5; i++) {
    const r = await request(b, 'Shop.Test:80', { agent, headers: { 'x-forwarded-for': '203.0.113.9' } });
    t.is(r.status, 200);
    t.is(r.body.toString(), 'APP');
    if (i > 0) t.true(r.reused, 'the client keeps its connection');
  }
  t.is(toA.connections(), 1, 'one kept-alive connection from proxy b to proxy a');
  const seen = app.seen[0]!;
  t.is(seen['x-forwarded-for'], '203.0.113.9, 127.0.0.1', "b's value, not appended to by a");
  t.is(seen['x-forwarded-proto'], 'http');
  t.is(seen['x-forwarded-host'], 'Shop.Test:80');
  t.is(seen['x-depad-via'], undefined, 'the mark never reaches the container');
  t.is((await request(b, 'other.test')).status, 404, 'no local and no peer route: 404');
});

test('no loop: a forwarded request with no local route gets 421; a forged mark is not forwarded, a wrong key not trusted', async (t) => {
  const { app, a, b, toA } = await pair(t);
  // The tables disagree (a says b serves gone.test, b says a does): one hop, then 421.
  const gone = await request(b, 'gone.test');
  t.is(gone.status, 421);
  t.regex(gone.body.toString(), /another depad proxy forwarded; it is not forwarded again/);
  t.is(toA.connections(), 1);
  // A client's mark: never forwarded.
  const forged = await request(b, 'shop.test', { headers: { 'x-depad-via': `host-x; key=${KEY}` } });
  t.is(forged.status, 421);
  t.is(app.seen.length, 0);
  // A wrong key where a local route serves: served, but its X-Forwarded-* are the proxy's own.
  const wrong = await request(a, 'shop.test', { headers: { 'x-depad-via': `host-b; key=${'A'.repeat(43)}`, 'x-forwarded-for': '198.51.100.1', 'x-forwarded-proto': 'https' } });
  t.is(wrong.status, 200);
  t.is(app.seen[0]!['x-forwarded-for'], '198.51.100.1, 127.0.0.1');
  t.is(app.seen[0]!['x-forwarded-proto'], 'http');
  t.is(app.seen[0]!['x-depad-via'], undefined);
});

test('a local route wins over a peer route; a bad peer table is refused and the old one stays', async (t) => {
  const { b } = await pair(t);
  const local = await upstream(t, 'LOCAL');
  await b.client.setDeploymentRoutes('mine', [httpRoute('mine', 'web', ['shop.test'], [local.port])]);
  t.is((await request(b, 'shop.test')).body.toString(), 'LOCAL');
  await b.client.removeDeployment('mine');
  t.is((await request(b, 'shop.test')).body.toString(), 'APP');
  const refused = await b.client.setPeers({ self: 'host-b', key: KEY, hosts: [], routes: { 'shop.test': 'host-z' } }).catch((e: unknown) => e);
  t.true(refused instanceof DepadError && refused.code === 'DEPAD_USAGE', String(refused));
  t.regex((refused as Error).message, /routes\.shop\.test: "host-z" is not one of hosts/);
  t.is((await request(b, 'shop.test')).body.toString(), 'APP');
});

test('an upgrade (WebSocket) to a peer hostname becomes a tunnel through both proxies', async (t) => {
  const { app, b } = await pair(t);
  app.server.on('upgrade', (req, socket: net.Socket) => {
    app.seen.push(req.headers);
    socket.on('error', () => {});
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n');
    socket.pipe(socket);
  });
  const socket = net.connect(b.httpPort, '127.0.0.1');
  socket.on('error', () => {});
  t.teardown(() => socket.destroy());
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
  socket.write('GET /ws HTTP/1.1\r\nHost: shop.test\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n');
  const deadline = Date.now() + 5000;
  while (!text.includes('\r\n\r\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.regex(text, /^HTTP\/1\.1 101 /);
  text = '';
  socket.write('ping through two proxies');
  while (text !== 'ping through two proxies' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.is(text, 'ping through two proxies');
  t.is(app.seen[0]!.upgrade, 'echo');
  t.is(app.seen[0]!['x-depad-via'], undefined);
});

test("an ACME HTTP-01 challenge for a peer's hostname is answered by the peer that asked for the certificate", async (t) => {
  const app = await upstream(t, 'APP');
  const a = await proxy(t, undefined, { challenges: { keyAuthorization: (token) => (token === 'tok' ? 'tok.thumb' : undefined) } });
  const b = await proxy(t, undefined, { challenges: { keyAuthorization: () => undefined } });
  await a.client.setDeploymentRoutes('shop', [httpRoute('shop', 'web', ['shop.test'], [app.port])]);
  await b.client.setPeers({ self: 'host-b', key: KEY, hosts: [{ name: 'host-a', address: '127.0.0.1', httpPort: a.httpPort }], routes: { 'shop.test': 'host-a' } });
  const r = await request(b, 'shop.test', { path: '/.well-known/acme-challenge/tok' });
  t.is(r.status, 200);
  t.is(r.body.toString(), 'tok.thumb');
  t.is(app.seen.length, 0);
});

test('a proxy without peers: a marked request for an unknown host gets 421, an unmarked one 404', async (t) => {
  const p: Proxy = await proxy(t);
  t.is((await request(p, 'x.test', { headers: { 'x-depad-via': 'h' } })).status, 421);
  t.is((await request(p, 'x.test')).status, 404);
});

test('requests that come through a peer are balanced each on its own over the replicas (the peer connection is shared)', async (t) => {
  const one = await upstream(t, 'ONE');
  const two = await upstream(t, 'TWO');
  const a = await proxy(t);
  const b = await proxy(t);
  await a.client.setDeploymentRoutes('shop', [httpRoute('shop', 'web', ['shop.test'], [one.port, two.port])]);
  t.true(await b.client.setPeers({ self: 'host-b', key: KEY, hosts: [{ name: 'host-a', address: '127.0.0.1', httpPort: a.httpPort }], routes: { 'shop.test': 'host-a' } }));
  const agent = keepAliveAgent(t);
  const seen: Record<string, number> = {};
  for (let i = 0; i < 10; i++) {
    const body = (await request(b, 'shop.test', { agent })).body.toString();
    seen[body] = (seen[body] ?? 0) + 1;
  }
  t.deepEqual(seen, { ONE: 5, TWO: 5 }, 'one client connection to b, one from b to a, both replicas in turn');
  // A client's own keep-alive connection straight to a stays on its replica, as before.
  const direct = keepAliveAgent(t);
  const bodies = new Set<string>();
  for (let i = 0; i < 4; i++) bodies.add((await request(a, 'shop.test', { agent: direct })).body.toString());
  t.is(bodies.size, 1);
});
