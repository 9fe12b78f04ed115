/**
 * The proxy's HTTPS listener with real TLS on loopback (certificates from depad's local CA code
 * in a CertificateStore): SNI picks the certificate and refuses unknown names, ALPN settles on
 * HTTP/1.1, upstreams see X-Forwarded-Proto https, keep-alive works over TLS, a renewed
 * certificate is served at the next handshake, `https: redirect` answers 308 only once a
 * certificate exists, and ACME HTTP-01 challenges are answered on any host, never redirected.
 */
import test from 'ava';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import { Challenges } from '../certs/acme.ts';
import { CertificateStore } from '../certs/certificate-store.ts';
import { ensureAgentTls } from '../certs/local-ca.ts';
import { httpRoute, proxy, request, stateDir, upstream } from './helpers/proxy-fixtures.ts';

async function issue(dir: string, hostname: string) {
  return ensureAgentTls({ dir, hostnames: [hostname], ips: [] });
}

function httpsGet(port: number, servername: string, ca: string, agent: https.Agent | false = false, pathname = '/'): Promise<{ status: number; body: string; reused: boolean; cert: tls.PeerCertificate }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path: pathname, servername, headers: { host: servername }, ca, agent }, (res) => {
      let body = '';
      const cert = (res.socket as tls.TLSSocket).getPeerCertificate();
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, reused: req.reusedSocket, cert }));
    });
    req.on('error', reject);
  });
}

function handshake(port: number, options: tls.ConnectionOptions): Promise<{ ok: boolean; alpn: string | false | null }> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options }, () => {
      const alpn = socket.alpnProtocol ?? null;
      socket.destroy();
      resolve({ ok: true, alpn });
    });
    socket.on('error', () => resolve({ ok: false, alpn: null }));
  });
}

test('HTTPS listener: SNI, ALPN, X-Forwarded-Proto, keep-alive, hot certificate swap, redirect and challenges', async (t) => {
  const dir = await stateDir(t);
  const store = await CertificateStore.open(path.join(dir, 'acme'));
  const first = await issue(path.join(dir, 'ca1'), 'secure.example.com');
  await store.save('secure.example.com', first.certChain, first.serverKey);
  const challenges = new Challenges();
  const p = await proxy(t, undefined, { https: { port: 0, host: '127.0.0.1', certificates: store }, challenges });
  const port = p.httpsPort as number;
  const up = await upstream(t, 'app');
  await p.client.setDeploymentRoutes('shop', [
    httpRoute('shop', 'web', ['secure.example.com'], [up.port], { https: 'redirect' }),
    httpRoute('shop', 'api', ['nocert.example.com'], [up.port], { https: 'redirect' }),
    httpRoute('shop', 'old', ['plain.example.com'], [up.port]),
  ]);

  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const one = await httpsGet(port, 'secure.example.com', first.caCert, agent);
  t.is(one.status, 200);
  t.is(one.body, 'app');
  t.is(up.seen.at(-1)?.['x-forwarded-proto'], 'https');
  t.is(up.seen.at(-1)?.['x-forwarded-host'], 'secure.example.com');
  const two = await httpsGet(port, 'secure.example.com', first.caCert, agent);
  t.true(two.reused, 'keep-alive over TLS');

  t.deepEqual(await handshake(port, { servername: 'secure.example.com', ALPNProtocols: ['h2', 'http/1.1'] }), { ok: true, alpn: 'http/1.1' });
  t.false((await handshake(port, { servername: 'plain.example.com' })).ok, 'no certificate for the name: the handshake is refused');
  t.false((await handshake(port, {})).ok, 'no SNI: refused');

  // A renewed certificate is served from the next handshake, with no restart.
  const second = await issue(path.join(dir, 'ca2'), 'secure.example.com');
  await store.save('secure.example.com', second.certChain, second.serverKey);
  const renewed = await httpsGet(port, 'secure.example.com', second.caCert);
  t.is(renewed.status, 200);
  t.not(renewed.cert.fingerprint256, one.cert.fingerprint256);

  const redirected = await request(p, 'secure.example.com:80', { path: '/a/b?c=d' });
  t.is(redirected.status, 308);
  t.is(redirected.headers.location, `https://secure.example.com:${port}/a/b?c=d`);
  t.is((await request(p, 'nocert.example.com')).status, 200, 'redirect waits for a certificate');
  t.is((await request(p, 'plain.example.com')).status, 200);

  challenges.set('tok-123', 'tok-123.thumbprint');
  for (const host of ['secure.example.com', 'unrouted.example.org']) {
    const answer = await request(p, host, { path: '/.well-known/acme-challenge/tok-123' });
    t.is(answer.status, 200, host);
    t.is(answer.body.toString(), 'tok-123.thumbprint', 'the key authorization, exactly');
  }
  t.is((await request(p, 'unrouted.example.org', { path: '/.well-known/acme-challenge/other' })).status, 404, 'unknown tokens are routed as usual');
  challenges.delete('tok-123');
  t.is((await request(p, 'secure.example.com', { path: '/.well-known/acme-challenge/tok-123' })).status, 308);
});
