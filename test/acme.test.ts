/**
 * ACME end to end: a real `depad agent` with --acme against Pebble (Let's Encrypt's test server)
 * on loopback, a real deployment on the engine. The route's public hostname gets a certificate
 * through HTTP-01 answered by the proxy; Pebble's root verifies it on the HTTPS listener (SNI);
 * `https: redirect` sends plain HTTP there; `https: off` gets nothing; the agent's API presents
 * the certificate of its public --hostname, and a CLI with no fingerprint trusts the system's store;
 * the key files are 0600;
 * a restart keeps the certificate while it is far from expiry and renews it when it is within the
 * renewal window. Processes and the deployment are removed in t.teardown.
 */
import test from 'ava';
import fs from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import { certificateHostnames, isPublicHostname, renewalDue } from '../certs/acme.ts';
import { acmeDir } from '../src/home.ts';
import { startAgent } from './helpers/agent-process.ts';
import type { Harness } from './helpers/harness.ts';
import { harness, testPorts } from './helpers/harness.ts';
import { startPebble } from './helpers/pebble.ts';

interface CertView {
  hostname: string;
  state: string;
  certificate?: { serialNumber: string; notAfter: string; issuer: string };
  error?: string;
}

async function certs(h: Harness): Promise<CertView[]> {
  const result = await h.run(['certs', '--json']);
  if (result.code !== 0) throw new Error(`depad certs: ${result.stderr}`);
  return JSON.parse(result.stdout) as CertView[];
}

async function waitForCert(h: Harness, hostname: string, accept: (c: CertView) => boolean): Promise<CertView> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const found = (await certs(h)).find((c) => c.hostname === hostname);
    if (found && accept(found)) return found;
    if (Date.now() > deadline) throw new Error(`no certificate for ${hostname}: ${JSON.stringify(found)}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

function httpsGet(port: number, servername: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get({ host: '127.0.0.1', port, path: '/cgi-bin/info', servername, headers: { host: servername }, ca, agent: false }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

function httpGet(port: number, host: string, pathname: string): Promise<{ status: number; location: string | undefined }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: pathname, headers: { host }, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location }));
      })
      .on('error', reject);
  });
}

/** The TLS handshake's outcome for an SNI name the proxy has no certificate for. */
function handshake(port: number, servername: string): Promise<'ok' | 'refused'> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => (socket.destroy(), resolve('ok')));
    socket.on('error', () => resolve('refused'));
  });
}

test('public hostnames: which names get certificates, and when they are due', (t) => {
  t.true(isPublicHostname('shop.example.com'));
  t.false(isPublicHostname('web.shop.localhost'));
  t.false(isPublicHostname('db.internal'));
  t.false(isPublicHostname('localhost'));
  t.false(isPublicHostname('10.0.0.1'));
  t.false(isPublicHostname('under_score.example.com'), 'not a valid DNS name for a certificate');
  const route = (id: string, hosts: string[], https?: 'off' | 'redirect') => ({ id, deployment: 'd', service: id, kind: 'http' as const, hosts, upstreams: [], ...(https ? { https } : {}) });
  t.deepEqual(
    certificateHostnames({ version: 1, routes: [route('a', ['a.d.localhost', 'shop.example.com']), route('b', ['b.example.org'], 'off'), route('c', ['c.example.net'], 'redirect')] }),
    ['c.example.net', 'shop.example.com'],
  );
  const now = Date.parse('2026-11-24T00:00:00Z');
  t.false(renewalDue(new Date(now + 31 * 86_400_000), now));
  t.true(renewalDue(new Date(now + 30 * 86_400_000), now));
  t.true(renewalDue(new Date(now - 1), now));
});

test('ACME against Pebble: certificate by HTTP-01, HTTPS with SNI, redirect, off, the API on a public certificate, 0600 files, renewal', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  const httpPort = port();
  const httpsPort = port();
  const pebble = await startPebble(t, h.dir, httpPort, port);
  const name = h.name('tls');
  const config = path.join(h.dir, 'shop.yml');
  await fs.writeFile(
    config,
    [
      'services:',
      '  web:',
      '    image: depad-example/app:1',
      '    environment: { APP_NAME: shop }',
      '    ports: ["8080"]',
      '    x-depad: { expose: http, hostnames: [shop.example.com], https: redirect }',
      '  admin:',
      '    image: depad-example/app:1',
      '    environment: { APP_NAME: admin }',
      '    ports: ["8080"]',
      '    x-depad: { expose: http, hostnames: [admin.example.com], https: off }',
      '',
    ].join('\n'),
  );
  const acmeArgs = (renewDays: string) => [
    '--http-port', String(httpPort), '--https-port', String(httpsPort),
    '--acme-directory', pebble.directoryUrl, '--acme-ca-file', pebble.serverCaFile, '--acme-email', 'ops@example.com', '--acme-renew-days', renewDays,
  ];
  const first = await startAgent(t, h, port, [...acmeArgs('30'), '--hostname', 'agent.example.com']);
  t.is(first.facts.httpsPort, httpsPort);
  t.teardown(async () => void (await h.run(['destroy', name])));
  const created = await h.run(['create', '-n', name, '-f', config]);
  t.is(created.code, 0, created.stderr);

  const issued = await waitForCert(h, 'shop.example.com', (c) => c.state === 'valid');
  t.regex(issued.certificate?.issuer ?? '', /Pebble/);
  const root = await pebble.issuingRoot();
  const secure = await httpsGet(httpsPort, 'shop.example.com', root);
  t.is(secure.status, 200, 'Pebble\'s root verifies the certificate and the route answers over HTTPS');
  t.regex(secure.body, /shop/);

  const plain = await httpGet(httpPort, 'shop.example.com', '/some/path?q=1');
  t.is(plain.status, 308);
  t.is(plain.location, `https://shop.example.com:${httpsPort}/some/path?q=1`);
  t.is((await httpGet(httpPort, 'admin.example.com', '/')).status, 200, 'https: off is served over HTTP');
  t.is(await handshake(httpsPort, 'admin.example.com'), 'refused', 'https: off gets no certificate');
  t.is(await handshake(httpsPort, `web.${name}.localhost`), 'refused', 'no certificate for a private name');
  t.false((await certs(h)).some((c) => c.hostname === 'admin.example.com'));

  // The API presents the public certificate for the agent's public --hostname, the local CA's otherwise.
  await waitForCert(h, 'agent.example.com', (c) => c.state === 'valid');
  const api = await new Promise<number>((resolve, reject) => {
    https.get({ host: '127.0.0.1', port: first.facts.apiPort, path: '/v1/deployments', servername: 'agent.example.com', ca: root, agent: false }, (res) => (res.resume(), resolve(res.statusCode ?? 0))).on('error', reject);
  });
  t.is(api, 401, 'TLS verified by the public root; no token');
  // A client without a fingerprint trusts the system's store: refused for the local CA (exit 11), accepted once the store has it.
  const token = (await h.run(['token', 'create', '--name', 'ops', '--scope', 'admin'])).stdout.trim();
  const remote = ['--host', `https://localhost:${first.facts.apiPort}`, '--token', token, 'ls', '--json'];
  const untrusted = await h.run(remote);
  t.is(untrusted.code, 11, untrusted.stderr);
  t.regex(untrusted.stderr, /does not trust/);
  const trusted = await h.run(remote, { env: { NODE_EXTRA_CA_CERTS: path.join(h.home, 'certs', 'agent', 'ca.crt') } });
  t.is(trusted.code, 0, trusted.stderr);
  t.deepEqual((JSON.parse(trusted.stdout) as { name: string }[]).map((d) => d.name), [name]);

  const dir = acmeDir(h.home);
  for (const file of ['certificates/shop.example.com/key.pem', 'certificates/shop.example.com/cert.pem']) {
    t.is((await fs.stat(path.join(dir, file))).mode & 0o777, 0o600, file);
  }
  const accounts = await fs.readdir(path.join(dir, 'accounts'));
  t.is(accounts.length, 1);
  t.is((await fs.stat(path.join(dir, 'accounts', accounts[0] as string, 'account.key'))).mode & 0o777, 0o600);

  // Far from expiry: a restart serves the same certificate and asks for nothing.
  first.child.kill('SIGTERM');
  t.is(await first.exited, 0);
  const second = await startAgent(t, h, port, acmeArgs('30'));
  const kept = (await certs(h)).find((c) => c.hostname === 'shop.example.com');
  t.is(kept?.state, 'valid');
  t.is(kept?.certificate?.serialNumber, issued.certificate?.serialNumber);
  t.is((await httpsGet(httpsPort, 'shop.example.com', root)).status, 200);
  second.child.kill('SIGKILL');
  await second.exited;

  // Within the renewal window (Pebble's certificates live years; a window longer than that makes it due now).
  const third = await startAgent(t, h, port, acmeArgs('100000'));
  const renewed = await waitForCert(h, 'shop.example.com', (c) => c.certificate?.serialNumber !== issued.certificate?.serialNumber);
  t.truthy(renewed.certificate);
  t.is((await httpsGet(httpsPort, 'shop.example.com', root)).status, 200, 'the renewed certificate is served without a restart');
  third.child.kill('SIGTERM');
  t.is(await third.exited, 0);
});

test('the agent refuses to start on a taken HTTPS port, naming it, and leaves the state free', async (t) => {
  const h = await harness(t);
  const port = await testPorts(t);
  const taken = port();
  const holder = net.createServer();
  await new Promise<void>((resolve) => holder.listen(taken, '127.0.0.1', () => resolve()));
  t.teardown(() => void holder.close());
  const refused = await h.run(['agent', '--api-port', String(port()), '--api-host', '127.0.0.1', '--http-port', String(port()), '--http-host', '127.0.0.1', '--https-port', String(taken)]);
  t.is(refused.code, 8, refused.stderr);
  t.regex(refused.stderr, new RegExp(`127\\.0\\.0\\.1:${taken} is already in use by another process`));
  t.notRegex(refused.stderr, /internal error/);
  const ls = await h.run(['ls', '--json']);
  t.is(ls.code, 0, 'the state is not left locked');
});
