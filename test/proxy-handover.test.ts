/**
 * A proxy handing its listening sockets to another process (what an agent restart does, without
 * the agent): the child (helpers/proxy-heir.ts) serves on the same kernel sockets, the old proxy
 * retires. Nothing is refused; a keep-alive connection of the old one gets one more answer, with
 * `Connection: close`; an idle one is closed after the grace; a TCP connection stays until it
 * ends; the control socket file stays and its requests reach the new process; the peer routes go
 * along.
 */
import test from 'ava';
import { fork } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { ROOT, testPorts } from './helpers/harness.ts';
import { httpRoute, keepAliveAgent, proxy, request, tcpRoute, until, upstream } from './helpers/proxy-fixtures.ts';

/** A TCP upstream answering each line with `name:line`. */
async function lineUpstream(t: import('ava').ExecutionContext, name: string): Promise<number> {
  const server = net.createServer((socket) => socket.on('data', (d: Buffer) => socket.write(`${name}:${d.toString().trim()}\n`)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(() => void server.close());
  return (server.address() as net.AddressInfo).port;
}

function ask(socket: net.Socket, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    socket.once('data', (d: Buffer) => resolve(d.toString().trim()));
    socket.once('error', reject);
    socket.write(`${line}\n`);
  });
}

test('listeners handed to another process: nothing refused, the old proxy drains its connections', async (t) => {
  const one = await upstream(t, 'one');
  const two = await upstream(t, 'two');
  const tcpOne = await lineUpstream(t, 'one');
  const listenPort = (await testPorts(t))();
  const old = await proxy(t);
  await old.client.setDeploymentRoutes('app', [httpRoute('app', 'web', ['a.test'], [one.port]), tcpRoute('app', 'db', listenPort, [tcpOne])]);
  // A peer route (the peer's "proxy" is upstream one).
  await old.client.setPeers({ self: 'host-a', key: 'k'.repeat(43), hosts: [{ name: 'host-b', address: '127.0.0.1', httpPort: one.port }], routes: { 'p.test': 'host-b' } });
  const agent = keepAliveAgent(t);
  t.is((await request(old, 'a.test', { agent })).body.toString(), 'one');
  const long = net.connect(listenPort, '127.0.0.1');
  long.on('error', () => {});
  t.is(await ask(long, 'hi'), 'one:hi');
  // A keep-alive connection left idle across the handover.
  const idle = net.connect(old.httpPort, '127.0.0.1');
  idle.write('GET / HTTP/1.1\r\nHost: a.test\r\n\r\n');
  await new Promise((resolve) => idle.once('data', resolve));
  idle.on('error', () => {});
  const idleEnded = new Promise<number>((resolve) => idle.once('end', () => resolve(Date.now())));

  const heir = fork(path.join(ROOT, 'test/helpers/proxy-heir.ts'), [old.stateDir], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  t.teardown(() => void (heir.exitCode === null && heir.kill('SIGKILL')));
  const messages: Record<string, unknown>[] = [];
  heir.on('message', (m: Record<string, unknown>) => messages.push(m));
  const send = (message: object, handle?: object) => new Promise<void>((resolve, reject) => heir.send(message, handle as never, (e) => (e ? reject(e) : resolve())));
  const l = old.listeners();
  await send({ role: 'http' }, l.http);
  await send({ role: 'control' }, l.control);
  for (const [port, handle] of l.tcp) await send({ role: 'tcp', port }, handle);
  await send({ done: true });
  await until(() => messages.some((m) => m.serving !== undefined), 'the heir to serve');

  const retiredAt = Date.now();
  const retired = await old.retire({ idleGraceMs: 2000, drainTimeoutMs: 5000 });
  t.is(retired.peers?.self, 'host-a');
  await send({ routes: { snapshot: retired.snapshot, unhealthy: retired.unhealthy, peers: retired.peers } });
  await until(() => messages.some((m) => m.control === true), "the heir's control channel");
  t.truthy(await fs.stat(old.paths.socketPath), 'the control socket file stays');
  t.deepEqual((await old.client.routes()).routes.map((r) => r.id), ['app/web', 'app/db'], 'the heir took the routes');
  await old.client.setDeploymentRoutes('app', [httpRoute('app', 'web', ['a.test'], [two.port]), tcpRoute('app', 'db', listenPort, [tcpOne])]);

  const last = await request(old, 'a.test', { agent });
  t.is(last.body.toString(), 'one', 'the old connection is still served by the old proxy (its table)');
  t.true(last.reused);
  t.is(last.headers.connection, 'close', 'with Connection: close');
  const next = await request(old, 'a.test', { agent });
  t.false(next.reused);
  t.is(next.body.toString(), 'two', 'the next connection reaches the new process');
  for (let i = 0; i < 5; i++) t.is((await request(old, 'a.test')).body.toString(), 'two');
  t.is((await request(old, 'p.test')).body.toString(), 'one', 'the new process took the peer routes');
  const idleFor = (await idleEnded) - retiredAt;
  t.true(idleFor > 1500 && idleFor < 4000, `the idle keep-alive connection was closed after the grace (${idleFor} ms)`);
  await retired.http;

  t.is(await ask(long, 'still'), 'one:still', 'the TCP connection stays on the old process');
  const fresh = net.connect(listenPort, '127.0.0.1');
  t.is(await ask(fresh, 'new'), 'one:new', 'a new TCP connection is served by the new process');
  fresh.destroy();
  long.end();
  t.is(await retired.done, 0, 'nothing left to end at the deadline');
  await send({ stop: true });
  await new Promise((resolve) => heir.once('exit', resolve));
});
