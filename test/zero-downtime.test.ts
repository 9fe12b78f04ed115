/**
 * Zero-downtime updates through the real proxy process, against real containers: continuous load
 * across 10 updates, a new instance that never becomes healthy, WebSocket and TCP draining, a
 * stateful recreate that holds new connections, and a proxy restart.
 */
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import type { DeploymentView } from '../src/deploy/status.ts';
import { EXAMPLES, engineObjects, harness, type Harness } from './helpers/harness.ts';
import { getVia, jsonVia, startLoad } from './helpers/load.ts';
import { startProxyProcess } from './helpers/proxy-process.ts';
import { openWebSocket } from './helpers/ws.ts';

const webapp = path.join(EXAMPLES, 'webapp/depad.yml');
const hostOf = (name: string) => `web.${name}.localhost`;
const version = async (port: number, name: string) => (await jsonVia<{ version: string }>(port, hostOf(name))).version;

/** One line of the node-app's TCP protocol through `port`, on an existing socket. */
function ask(socket: net.Socket, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const onClose = () => reject(new Error(`connection closed before an answer to ${line}`));
    const onData = (d: Buffer) => {
      socket.off('error', reject);
      socket.off('close', onClose);
      resolve(d.toString().trim());
    };
    socket.once('data', onData);
    socket.once('error', reject);
    socket.once('close', onClose);
    socket.write(line + '\n');
  });
}

async function connect(port: number): Promise<net.Socket> {
  const socket = net.connect({ host: '127.0.0.1', port });
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  return socket;
}

async function createWebapp(h: Harness, name: string, file = webapp): Promise<DeploymentView> {
  const r = await h.run(['create', '-n', name, '-f', file]);
  if (r.code !== 0) throw new Error(r.stderr);
  return h.json<DeploymentView>(['inspect', name]);
}

test('10 updates under continuous load: no failed request, then only the new version answers', async (t) => {
  const h = await harness(t);
  const proxy = await startProxyProcess(t, h);
  const name = h.name('load');
  await createWebapp(h, name);
  t.is(await version(proxy.port, name), '1');
  const load = startLoad({ port: proxy.port, host: hostOf(name), keepAliveClients: 4, newConnectionClients: 2 });
  try {
    for (let i = 1; i <= 10; i++) {
      const to = i % 2 === 1 ? '2' : '1';
      const r = await h.run(['update', name, '-s', 'web', '--image', `depad-example/node-app:${to}`]);
      t.is(r.code, 0, r.stderr);
      for (let k = 0; k < 10; k++) t.is(await version(proxy.port, name), to, `after update ${i} only version ${to} answers`);
    }
  } finally {
    const stats = await load.stop();
    t.log(`load: ${stats.ok} ok, ${stats.failed} failed, slowest ${stats.maxLatencyMs} ms, versions ${JSON.stringify(stats.versions)}`);
    t.is(stats.failed, 0, stats.failures.join('\n'));
    t.true(stats.ok > 200);
    t.deepEqual(Object.keys(stats.versions).sort(), ['1', '2']);
  }
  const view = await h.json<DeploymentView>(['inspect', name]);
  t.is(view.revision, 11);
  t.deepEqual((await engineObjects(h.engine, h.prefix)).containers.sort(), [`depad-${name}-db-1`, `depad-${name}-web-11`]);
});

test('a new instance that never becomes healthy: the update fails, traffic keeps flowing, nothing leaks', async (t) => {
  const h = await harness(t);
  const proxy = await startProxyProcess(t, h);
  const name = h.name('sick');
  const fast = path.join(h.dir, 'webapp.yml');
  await fs.writeFile(fast, (await fs.readFile(webapp, 'utf8')).replace('start_timeout: 60s', 'start_timeout: 4s'));
  const before = await createWebapp(h, name, fast);
  const sick = path.join(h.dir, 'sick.yml');
  await fs.writeFile(sick, (await fs.readFile(fast, 'utf8')).replace('      DB_PORT: "5432"\n', '      DB_PORT: "5432"\n      UNHEALTHY: "1"\n'));
  const load = startLoad({ port: proxy.port, host: hostOf(name) });
  const r = await h.run(['update', name, '-f', sick]);
  const stats = await load.stop();
  t.is(r.code, 10, r.stderr);
  t.regex(r.stderr, /did not pass its health check within 4 s: GET \/health answered 503, expected 200/);
  t.is(stats.failed, 0, stats.failures.join('\n'));
  t.deepEqual(Object.keys(stats.versions), ['1']);
  const after = await h.json<DeploymentView>(['inspect', name]);
  t.is(after.revision, 1);
  t.deepEqual(after.ports, before.ports, 'no port leaked');
  t.deepEqual((await engineObjects(h.engine, h.prefix)).containers.sort(), [`depad-${name}-db-1`, `depad-${name}-web-1`]);
});

test('WebSocket: an open connection lives until drained; a new one reaches the new instance', async (t) => {
  const h = await harness(t);
  const proxy = await startProxyProcess(t, h);
  const name = h.name('ws');
  await createWebapp(h, name);
  const old = await openWebSocket(proxy.port, hostOf(name));
  t.is(await old.next(), 'hello from 1');
  const update = h.run(['update', name, '-s', 'web', '--image', 'depad-example/node-app:2']);
  // The route switches, then the update waits for the old instance to drain.
  for (let i = 0; i < 100 && (await version(proxy.port, name)) !== '2'; i++) await sleep(100);
  const fresh = await openWebSocket(proxy.port, hostOf(name));
  t.is(await fresh.next(), 'hello from 2');
  old.send('still here');
  t.is(await old.next(), '1:still here', 'the old connection still works while draining');
  old.close();
  const r = await update;
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /drained the old web in \d+ ms/);
  fresh.send('hi');
  t.is(await fresh.next(), '2:hi');
  fresh.close();
});

test('TCP: a long-lived connection is drained; during a stateful recreate new connections wait, then succeed', async (t) => {
  const h = await harness(t);
  const proxy = await startProxyProcess(t, h);
  const name = h.name('tcp');
  const view = await createWebapp(h, name);
  const stable = view.services.find((s) => s.name === 'db')!.route!.port!;
  const first = await connect(stable);
  t.is(await ask(first, 'INCR n'), '1');

  // The db has a named volume: it cannot run twice, so its route is paused while it is swapped.
  // Hold the update just after the new db is created (old one stopped, route paused).
  const update = await h.startPaused(['update', name, '-s', 'db', '--image', 'depad-example/node-app:2'], 'update:created:db');
  const attempts = Array.from({ length: 5 }, async () => {
    const socket = await connect(stable);
    try {
      return await ask(socket, 'VERSION');
    } finally {
      socket.destroy();
    }
  });
  await sleep(500);
  await update.resume();
  t.is(await update.exited, 0, update.stderr());
  t.regex(update.stderr(), /pausing db/);
  t.deepEqual(await Promise.all(attempts), ['2', '2', '2', '2', '2'], 'connections made during the swap waited for the new db');
  const second = await connect(stable);
  t.is(await ask(second, 'INCR n'), '2', 'the data survived on the volume');
  second.destroy();
  first.destroy();
  void proxy;
});

test('TCP: a stateless service drains its long-lived connections', async (t) => {
  const h = await harness(t);
  const proxy = await startProxyProcess(t, h);
  const name = h.name('tcp2');
  const file = path.join(h.dir, 'cache.yml');
  await fs.writeFile(
    file,
    [
      'services:',
      '  cache:',
      '    image: depad-example/node-app:1',
      '    environment: { MODE: tcp, DATA_DIR: /tmp }',
      '    x-depad: { expose: tcp, port: 5432, health: { tcp: true }, drain_timeout: 20s }',
      '',
    ].join('\n'),
  );
  t.is((await h.run(['create', '-n', name, '-f', file])).code, 0);
  const stable = (await h.json<DeploymentView>(['inspect', name])).services[0]!.route!.port!;
  const long = await connect(stable);
  t.is(await ask(long, 'VERSION'), '1');
  const update = h.run(['update', name, '-s', 'cache', '--image', 'depad-example/node-app:2']);
  let fresh = await connect(stable);
  for (let i = 0; i < 100 && (await ask(fresh, 'VERSION')) !== '2'; i++) {
    fresh.destroy();
    await sleep(100);
    fresh = await connect(stable);
  }
  t.is(await ask(fresh, 'VERSION'), '2', 'new connections reach the new instance');
  t.is(await ask(long, 'VERSION'), '1', 'the long-lived one still reaches the old instance');
  long.end();
  const r = await update;
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /drained the old cache in \d+ ms/);
  fresh.destroy();
  void proxy;
});

test('proxy restart: the routes come back from its state at once', async (t) => {
  const h = await harness(t);
  const proxy = await startProxyProcess(t, h);
  const name = h.name('restart');
  await createWebapp(h, name);
  t.is(await version(proxy.port, name), '1');
  await proxy.stop();
  await proxy.start();
  t.is((await getVia(proxy.port, hostOf(name))).status, 200, 'the first request after the restart is served');
  t.is((await getVia(proxy.port, 'nobody.localhost')).status, 404);
  t.is((await h.run(['stop', name])).code, 0);
  t.is((await getVia(proxy.port, hostOf(name))).status, 503, 'a stopped deployment answers 503');
});
