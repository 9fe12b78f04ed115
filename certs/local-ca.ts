/**
 * The agent's own TLS: a local certificate authority and a server certificate it signs, made on
 * first start (keys by node:crypto, certificates by node-forge) and kept in one directory (0700,
 * files 0600, written atomically). The CA lives 10 years and is never replaced silently: clients
 * pin its SHA-256 fingerprint. The server certificate lives 397 days and is issued again when it
 * has 30 days or fewer left, or when it does not cover the names asked for.
 */
import { X509Certificate, createPrivateKey, generateKeyPair, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type forgeModule from 'node-forge';
import { DepadError } from '../src/errors.ts';
import { writePrivateFile } from '../src/private-file.ts';
import { DAY_MS, renewalDue } from './validity.ts';

/** Lifetime of the local CA. */
export const CA_DAYS = 3650;
/** Lifetime of a server certificate (the longest browsers accept). */
export const SERVER_DAYS = 397;
/** A server certificate with this many days or fewer left is issued again (the rule in validity.ts). */
export { RENEW_DAYS } from './validity.ts';

/** The agent's TLS material, PEM encoded. */
export interface AgentTls {
  /** The CA certificate: what clients trust (and pin by fingerprint). */
  caCert: string;
  /** The server certificate followed by the CA certificate (the chain to present). */
  certChain: string;
  serverKey: string;
  /** SHA-256 fingerprint of the CA certificate, `AB:CD:…` (what `depad context add --ca-fingerprint` takes). */
  fingerprint: string;
  /** What this call made: a new CA, a new server certificate. */
  created: { ca: boolean; server: boolean };
}

/** Options of `ensureAgentTls`. */
export interface AgentTlsOptions {
  /** Directory of the files (created 0700). */
  dir: string;
  /** DNS names the server certificate covers (default: localhost and this host's name). */
  hostnames?: string[];
  /** IP addresses it covers (default: 127.0.0.1 and ::1). */
  ips?: string[];
  /** The time to judge expiry by (tests). */
  now?: Date;
}

const keyPair = promisify(generateKeyPair);

/**
 * node-forge, loaded only when a certificate is issued: a start that finds its CA and server
 * certificate in place never needs it (it would cost the agent ~4 MB of resident memory).
 */
async function loadForge(): Promise<typeof forgeModule> {
  return (await import('node-forge')).default;
}

/** A new RSA key pair: PKCS#1 private key, SPKI public key. */
async function newKey(): Promise<{ privateKey: string; publicKey: string }> {
  return keyPair('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs1', format: 'pem' } });
}

/** A random positive serial number (16 bytes, high bit clear). */
function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] as number) & 0x7f;
  return bytes.toString('hex');
}

/** The SHA-256 fingerprint of a PEM certificate, `AB:CD:…`. */
export function fingerprintOf(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

async function issueCa(now: Date, host: string): Promise<{ cert: string; key: string }> {
  const [forge, { privateKey, publicKey }] = await Promise.all([loadForge(), newKey()]);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey);
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(now.getTime() - 60_000);
  cert.validity.notAfter = new Date(now.getTime() + CA_DAYS * DAY_MS);
  const subject = [
    { name: 'commonName', value: `depad local CA (${host})` },
    { name: 'organizationName', value: 'depad' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(privateKey), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: privateKey };
}

async function issueServer(ca: { cert: string; key: string }, hostnames: string[], ips: string[], now: Date): Promise<{ cert: string; key: string }> {
  const { privateKey, publicKey } = await newKey();
  const cert = await signLeaf(ca, publicKey, hostnames[0] ?? ips[0] ?? 'depad agent', SERVER_DAYS, now, [
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: [...hostnames.map((value) => ({ type: 2, value })), ...ips.map((ip) => ({ type: 7, ip }))] },
  ]);
  return { cert, key: privateKey };
}

/** A leaf certificate for `publicKey` (common name `name`, `days` long) that `ca` signs, with `extensions` besides the usual ones. */
async function signLeaf(ca: { cert: string; key: string }, publicKey: string, name: string, days: number, now: Date, extensions: object[]): Promise<string> {
  const forge = await loadForge();
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey);
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(now.getTime() - 60_000);
  cert.validity.notAfter = new Date(now.getTime() + days * DAY_MS);
  cert.setSubject([{ name: 'commonName', value: name }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    ...extensions,
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(ca.key), forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function invalid(file: string, why: string, cause?: unknown): DepadError {
  return new DepadError('DEPAD_TLS_INVALID', `${file}: ${why}`, {
    cause,
    hint: `Restore it from a backup, or remove ${path.dirname(file)} to make a new CA (clients must then pin the new fingerprint).`,
  });
}

/** Loads and checks the CA pair in `dir`, or undefined when there is none. */
async function loadCa(dir: string): Promise<{ cert: string; key: string } | undefined> {
  const certFile = path.join(dir, 'ca.crt');
  const keyFile = path.join(dir, 'ca.key');
  const [cert, key] = await Promise.all([readIfExists(certFile), readIfExists(keyFile)]);
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined || key === undefined) throw invalid(cert === undefined ? certFile : keyFile, 'missing while its pair exists');
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (error) {
    throw invalid(certFile, 'not a PEM certificate', error);
  }
  if (!x509.ca) throw invalid(certFile, 'not a CA certificate');
  try {
    if (!x509.checkPrivateKey(createPrivateKey(key))) throw new Error('mismatch');
  } catch (error) {
    throw invalid(keyFile, 'not the private key of ca.crt', error);
  }
  return { cert, key };
}

/** True when the server certificate in `dir` is signed by `caCert`, covers every name and is not due for renewal. */
function serverUsable(cert: string | undefined, key: string | undefined, caCert: string, hostnames: string[], ips: string[], now: Date): boolean {
  if (cert === undefined || key === undefined) return false;
  try {
    const x509 = new X509Certificate(cert);
    const ca = new X509Certificate(caCert);
    if (!x509.verify(ca.publicKey)) return false;
    if (renewalDue(new Date(x509.validTo), now.getTime())) return false;
    if (!hostnames.every((h) => x509.checkHost(h, { wildcards: false }) === h)) return false;
    if (!ips.every((ip) => x509.checkIP(ip) !== undefined)) return false;
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes (first time) or loads the agent's CA and server certificate in `options.dir`; issues a new
 * server certificate when the current one is near expiry or misses a name. A damaged CA is an
 * error (`DEPAD_TLS_INVALID`), never replaced silently.
 */
export async function ensureAgentTls(options: AgentTlsOptions): Promise<AgentTls> {
  const dir = options.dir;
  const now = options.now ?? new Date();
  const hostnames = [...new Set(options.hostnames ?? ['localhost', os.hostname()])];
  const ips = [...new Set(options.ips ?? ['127.0.0.1', '::1'])];
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await fs.chmod(dir, 0o700);
  let ca = await loadCa(dir);
  const created = { ca: false, server: false };
  if (ca === undefined) {
    ca = await issueCa(now, os.hostname());
    await writePrivateFile(path.join(dir, 'ca.key'), ca.key);
    await writePrivateFile(path.join(dir, 'ca.crt'), ca.cert);
    created.ca = true;
  }
  let [cert, key] = await Promise.all([readIfExists(path.join(dir, 'server.crt')), readIfExists(path.join(dir, 'server.key'))]);
  if (!serverUsable(cert, key, ca.cert, hostnames, ips, now)) {
    const issued = await issueServer(ca, hostnames, ips, now);
    await writePrivateFile(path.join(dir, 'server.key'), issued.key);
    await writePrivateFile(path.join(dir, 'server.crt'), issued.cert);
    ({ cert, key } = issued);
    created.server = true;
  }
  return { caCert: ca.cert, certChain: `${(cert as string).trimEnd()}\n${ca.cert}`, serverKey: key as string, fingerprint: fingerprintOf(ca.cert), created };
}

/** Lifetime of a client certificate the cluster manager's CA issues (an agent's, the manager's own). */
export const CLIENT_DAYS = 397;

/** A new key pair for a client certificate: PKCS#1 private key, SPKI public key (PEM). */
export async function newClientKey(): Promise<{ privateKey: string; publicKey: string }> {
  return newKey();
}

/**
 * Issues a client certificate (extKeyUsage clientAuth) for `publicKey` with common name `name`,
 * signed by the CA in `dir` (made by `ensureAgentTls`). The cluster manager signs agents' keys
 * at join and its own, so that after the join both sides authenticate by certificate only.
 */
export async function issueClientCert(dir: string, name: string, publicKey: string, now = new Date()): Promise<string> {
  const ca = await loadCa(dir);
  if (ca === undefined) throw new DepadError('DEPAD_TLS_INVALID', `${dir}: no CA to sign a client certificate with`, { hint: 'start the manager once to make its CA' });
  return signLeaf(ca, publicKey, name, CLIENT_DAYS, now, [{ name: 'extKeyUsage', clientAuth: true }]);
}
