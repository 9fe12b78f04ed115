/**
 * The agent's TLS material (certs/local-ca.ts) and CA pinning (certs/pin.ts): files and modes,
 * reuse and reissue, a real TLS handshake verified against the CA, and pinning against a real
 * TLS server on loopback. Temporary directories and servers are removed in t.teardown.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { ensureAgentTls, fingerprintOf, RENEW_DAYS, SERVER_DAYS } from '../certs/local-ca.ts';
import type { AgentTls } from '../certs/local-ca.ts';
import { fetchPinnedCa, normalizeFingerprint } from '../certs/pin.ts';
import { DepadError } from '../src/errors.ts';

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'depad-certs-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  return path.join(dir, 'certs', 'agent');
}

async function tlsServer(t: ExecutionContext, material: AgentTls): Promise<number> {
  const server = tls.createServer({ key: material.serverKey, cert: material.certChain }, (socket) => socket.end('hello over tls'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as net.AddressInfo).port;
}

/** Connects with `options` and resolves with what the server sent, or rejects with the TLS error. */
function talk(port: number, options: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ...options });
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

const mode = async (file: string) => (await fs.stat(file)).mode & 0o777;

test('first start makes a CA and a server certificate, private files only; later starts reuse them', async (t) => {
  const dir = await tempDir(t);
  const first = await ensureAgentTls({ dir, hostnames: ['localhost', 'agent.test'] });
  t.deepEqual(first.created, { ca: true, server: true });
  t.regex(first.fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  t.is(await mode(dir), 0o700);
  for (const file of ['ca.crt', 'ca.key', 'server.crt', 'server.key']) t.is(await mode(path.join(dir, file)), 0o600, file);
  t.deepEqual((await fs.readdir(dir)).sort(), ['ca.crt', 'ca.key', 'server.crt', 'server.key'], 'no temporary files left');

  const ca = new X509Certificate(first.caCert);
  const server = new X509Certificate(first.certChain);
  t.true(ca.ca);
  t.false(server.ca);
  t.true(server.verify(ca.publicKey), 'signed by the CA');
  t.is(server.checkHost('agent.test'), 'agent.test');
  t.is(server.checkIP('127.0.0.1'), '127.0.0.1');
  t.is(server.checkIP('::1'), '::1');
  t.is(server.checkHost('other.test'), undefined);
  t.deepEqual(server.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'server authentication only');
  const days = (new Date(server.validTo).getTime() - Date.now()) / 86_400_000;
  t.true(days > SERVER_DAYS - 1 && days <= SERVER_DAYS);

  const again = await ensureAgentTls({ dir, hostnames: ['localhost', 'agent.test'] });
  t.deepEqual(again.created, { ca: false, server: false });
  t.is(again.fingerprint, first.fingerprint);
  t.is(again.certChain, first.certChain);
});

test('a real TLS handshake verifies against the CA alone, with the hostname checked', async (t) => {
  const material = await ensureAgentTls({ dir: await tempDir(t), hostnames: ['localhost'] });
  const port = await tlsServer(t, material);
  t.is(await talk(port, { ca: material.caCert, servername: 'localhost' }), 'hello over tls');
  const untrusted = await t.throwsAsync(talk(port, { servername: 'localhost' }));
  t.regex(String((untrusted as NodeJS.ErrnoException).code), /SELF_SIGNED|UNABLE_TO_GET_ISSUER|UNABLE_TO_VERIFY/);
  const wrongName = await t.throwsAsync(talk(port, { ca: material.caCert, servername: 'elsewhere.test' }));
  t.is((wrongName as NodeJS.ErrnoException).code, 'ERR_TLS_CERT_ALTNAME_INVALID');
});

test('the server certificate is issued again near expiry or for a new name; the CA stays', async (t) => {
  const dir = await tempDir(t);
  const first = await ensureAgentTls({ dir, hostnames: ['localhost'] });
  const renamed = await ensureAgentTls({ dir, hostnames: ['localhost', 'new.test'] });
  t.deepEqual(renamed.created, { ca: false, server: true });
  t.is(renamed.fingerprint, first.fingerprint);
  t.is(new X509Certificate(renamed.certChain).checkHost('new.test'), 'new.test');
  const later = new Date(Date.now() + (SERVER_DAYS - RENEW_DAYS + 1) * 86_400_000);
  const renewed = await ensureAgentTls({ dir, hostnames: ['localhost', 'new.test'], now: later });
  t.deepEqual(renewed.created, { ca: false, server: true });
  t.is(renewed.fingerprint, first.fingerprint);
  t.not(renewed.certChain, renamed.certChain);
});

test('a damaged CA is an error naming the file; nothing is replaced', async (t) => {
  const dir = await tempDir(t);
  await ensureAgentTls({ dir });
  await fs.writeFile(path.join(dir, 'ca.crt'), 'garbage\n');
  const error = await t.throwsAsync(ensureAgentTls({ dir }), { instanceOf: DepadError });
  t.is(error?.code, 'DEPAD_TLS_INVALID');
  t.true(error?.message.startsWith(path.join(dir, 'ca.crt')));
  t.regex(error?.hint ?? '', /pin the new fingerprint/);
  t.is(await fs.readFile(path.join(dir, 'ca.crt'), 'utf8'), 'garbage\n');
  await fs.rm(path.join(dir, 'ca.crt'));
  t.is((await t.throwsAsync(ensureAgentTls({ dir }), { instanceOf: DepadError }))?.code, 'DEPAD_TLS_INVALID', 'a key without its certificate');
});

test('pinning: the CA with the pinned fingerprint is fetched from the chain and then trusted alone', async (t) => {
  const material = await ensureAgentTls({ dir: await tempDir(t), hostnames: ['localhost'] });
  const port = await tlsServer(t, material);
  const loose = material.fingerprint.replace(/:/g, '').toLowerCase();
  const ca = await fetchPinnedCa('127.0.0.1', port, `sha256:${loose}`, { servername: 'localhost' });
  t.is(fingerprintOf(ca), material.fingerprint);
  t.is(await talk(port, { ca, servername: 'localhost' }), 'hello over tls');

  const other = await ensureAgentTls({ dir: await tempDir(t) });
  const mismatch = await t.throwsAsync(fetchPinnedCa('127.0.0.1', port, other.fingerprint), { instanceOf: DepadError });
  t.is(mismatch?.code, 'DEPAD_TLS_PIN_MISMATCH');
  t.is((mismatch?.details?.presented as unknown[]).length, 2, 'names the leaf and the CA it saw');
  const leaf = fingerprintOf(material.certChain);
  t.is((await t.throwsAsync(fetchPinnedCa('127.0.0.1', port, leaf), { instanceOf: DepadError }))?.code, 'DEPAD_TLS_PIN_MISMATCH', 'a pinned leaf is not a CA');
});

test('pinning: bad fingerprints and unreachable agents fail with their codes', async (t) => {
  t.is(normalizeFingerprint(`SHA256:${'ab'.repeat(32)}`), Array(32).fill('AB').join(':'));
  for (const bad of ['', 'AB:CD', 'zz'.repeat(32), 'ab'.repeat(33)]) {
    t.is(t.throws(() => normalizeFingerprint(bad), { instanceOf: DepadError })?.code, 'DEPAD_USAGE', bad);
  }
  const closed = net.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', () => resolve()));
  const port = (closed.address() as net.AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  const error = await t.throwsAsync(fetchPinnedCa('127.0.0.1', port, 'ab'.repeat(32)), { instanceOf: DepadError });
  t.is(error?.code, 'DEPAD_AGENT_UNAVAILABLE');
  t.true(error?.message.includes(`127.0.0.1:${port}`));
});
