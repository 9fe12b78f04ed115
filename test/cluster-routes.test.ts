/**
 * Stable endpoints across hosts, in the lab (two hosts, each its own engine and agent, and a
 * manager they joined; test/helpers/lab-manager.ts): a deployment created through the manager on
 * host-1 answers at host-2's proxy with its hostname — the body from host-1's container, which sees
 * the client's address in X-Forwarded-For — on one kept-alive connection from the client and one
 * from host-2's proxy to host-1's; a marked request is not forwarded again; the hostname is refused
 * to another deployment, by the manager and by host-2's agent; after destroy, host-2 answers 404
 * within a few heartbeats.
 */
import test from 'ava';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { clientEnv, startLabCluster } from './helpers/lab-cluster.ts';
import { DEPAD } from './helpers/harness.ts';
import { until } from './helpers/lab-cluster-layout.ts';
import { joinLabCluster } from './helpers/lab-manager.ts';
import { must, run } from './helpers/lab-proc.ts';

const APP = 'depad-example/app:1';

/** A GET to `address`:80 with a Host header (node:http: fetch would not send a Host of its own). */
function get(address: string, host: string, options: { path?: string; agent?: http.Agent; headers?: Record<string, string> } = {}): Promise<{ status: number; body: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: address, port: 80, path: options.path ?? '/cgi-bin/env', headers: { host, ...options.headers }, agent: options.agent ?? false, timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, reused: req.reusedSocket }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET http://${address}${options.path ?? '/'}: timeout`)));
    req.on('error', reject);
  });
}

/** The value of `name` in the `env` output of the container's CGI script. */
function envOf(body: string, name: string): string | undefined {
  return body.split('\n').find((l) => l.startsWith(`${name}=`))?.slice(name.length + 1);
}

test('a hostname of a deployment on host-1 answers through host-2: keep-alive, X-Forwarded-* kept, no loop, gone after destroy', async (t) => {
  const state = await startLabCluster(t, 2, { images: [APP] });
  const manager = await joinLabCluster(t, state);
  const [h1, h2] = state.hosts as [(typeof state.hosts)[0], (typeof state.hosts)[0]];
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'depad-cluster-routes-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const name = `routes-${Math.random().toString(36).slice(2, 8)}`;
  const hostname = `${name}.shop.test`;
  const file = path.join(dir, 'depad.yml');
  // The container answers /cgi-bin/env with its CGI environment: the request's headers as HTTP_*.
  await fs.writeFile(
    file,
    `services:\n  web:\n    image: ${APP}\n    command:\n      - sh\n      - -c\n      - |\n` +
      `        printf '#!/bin/sh\\nprintf "Content-Type: text/plain\\\\r\\\\n\\\\r\\\\n"\\nenv\\n' > /app/www/cgi-bin/env\n` +
      `        chmod +x /app/www/cgi-bin/env\n        exec /app/bin/web\n` +
      `    x-depad: {expose: http, port: 8080, hostnames: [${hostname}]}\n`,
  );
  const created = await manager.run(['create', '-n', name, '-f', file, '--on-host', 'host-1']);
  t.is(created.code, 0, created.stderr);
  t.teardown(() => manager.run(['destroy', name]).then(() => undefined));
  const local = await get(h1.address, hostname);
  t.is(local.status, 200, local.body);

  // host-2 runs nothing of it; its proxy serves the hostname once a heartbeat brought the peer table.
  const started = Date.now();
  const first = await until('host-2 to serve the hostname', 30_000, async () => {
    const r = await get(h2.address, hostname);
    return r.status === 200 ? r : undefined;
  });
  t.log(`host-2 served it ${Date.now() - started} ms after the create`);
  t.is(envOf(first.body, 'DEPAD_DEPLOYMENT'), name, "the body is host-1's container's");
  t.is(envOf(first.body, 'HTTP_X_FORWARDED_FOR'), state.gateway, "the client's address, not host-2's");
  t.is(envOf(first.body, 'HTTP_X_FORWARDED_PROTO'), 'http');
  t.is(envOf(first.body, 'HTTP_X_FORWARDED_HOST'), hostname);
  t.is(envOf(first.body, 'HTTP_X_DEPAD_VIA'), undefined, 'the mark never reaches the container');

  // A hostname is the cluster's, as a name is: another deployment asking for it on the other host is refused, naming the owner.
  const rival = `${name}-b`;
  const clash = await manager.run(['create', '-n', rival, '-f', file, '--on-host', 'host-2']);
  t.is(clash.code, 5, clash.stderr);
  t.regex(clash.stderr, /depad: depad\.yml:\d+:\d+ /, "the user's file, not the manager's upload directory");
  t.regex(clash.stderr, new RegExp(`services\\.web\\.x-depad\\.hostnames\\[0\\]: host ${hostname.replace(/\./g, '\\.')} is already routed to deployment ${name} on host host-1`));
  t.is((await manager.run(['ls', '-q'])).stdout, `${name}\n`, 'the refused create left nothing');
  // A create straight at a host's agent is refused: the manager places creates and keeps names unique.
  const direct = await run(DEPAD, ['create', '-n', `${name}-c`, '-f', file], { env: clientEnv(h2) });
  t.is(direct.code, 2, direct.stderr);
  t.regex(direct.stderr, /this agent is host host-2 of a cluster: create deployments through its manager/);
  // An update that would take the hostname is refused by its host's agent: its proxy's peer table says it is host-1's.
  const plain = path.join(dir, 'plain.yml');
  await fs.writeFile(plain, (await fs.readFile(file, 'utf8')).replace(`, hostnames: [${hostname}]`, ''));
  t.is((await manager.run(['create', '-n', rival, '-f', plain, '--on-host', 'host-2'])).code, 0);
  t.teardown(() => manager.run(['destroy', rival]).then(() => undefined));
  const taking = await manager.run(['update', rival, '-f', file]);
  t.is(taking.code, 5, taking.stderr);
  t.regex(taking.stderr, new RegExp(`host ${hostname.replace(/\./g, '\\.')} is already routed to a deployment on host host-1`));
  t.regex(taking.stderr, /which deployment: depad ls --on-host host-1 through the cluster manager/);
  t.is((await manager.run(['destroy', rival])).code, 0);

  // Keep-alive: several requests on one client connection, over one connection from host-2's proxy to host-1's.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  // (The static page: busybox's CGI answers end with the connection, so they cannot be kept alive anywhere.)
  const page = await get(h1.address, hostname, { path: '/' });
  for (let i = 0; i < 6; i++) {
    const r = await get(h2.address, hostname, { agent, path: '/' });
    t.is(r.status, 200);
    t.is(r.body, page.body);
    if (i > 0) t.true(r.reused, `request ${i + 1} went on the same client connection`);
  }
  const ss = await must('nsenter', [`--net=${h2.netns}`, '--', 'ss', '-Htn', 'state', 'established']);
  const toPeer = ss.split('\n').filter((l) => l.trim().split(/\s+/).at(-1) === `${h1.address}:80`);
  t.is(toPeer.length, 1, `one connection from host-2's proxy to host-1's:\n${ss}`);

  // No loop: a request marked as forwarded is never forwarded again, whoever marked it.
  const marked = await get(h2.address, hostname, { headers: { 'x-depad-via': 'host-1; key=forged' } });
  t.is(marked.status, 421);
  t.regex(marked.body, /not forwarded again/);
  const unknown = await get(h2.address, `nothing-${name}.test`);
  t.is(unknown.status, 404);

  // Destroyed: host-2 stops serving it within a few heartbeats (2 s each).
  t.is((await manager.run(['destroy', name])).code, 0);
  const gone = Date.now();
  await until('host-2 to stop serving the hostname', 15_000, async () => ((await get(h2.address, hostname)).status === 404 ? true : undefined));
  t.log(`host-2 answered 404 ${Date.now() - gone} ms after the destroy`);
  t.is((await get(h1.address, hostname)).status, 404);

  // The hostname is free in the cluster as soon as the destroy returns: a create on host-2 takes it at once.
  t.is((await manager.run(['create', '-n', rival, '-f', file, '--on-host', 'host-1'])).code, 0);
  t.is((await manager.run(['destroy', rival])).code, 0);
  t.teardown(() => manager.run(['destroy', `${rival}x`]).then(() => undefined));
  const again = await manager.run(['create', '-n', `${rival}x`, '-f', file, '--on-host', 'host-2']);
  t.is(again.code, 0, again.stderr);
  t.is((await manager.run(['destroy', `${rival}x`])).code, 0);
});
