/**
 * The certificates the proxy serves over HTTPS, one per hostname, kept under
 * `<home>/certs/acme/certificates/<hostname>/` (directories 0700; `cert.pem`, the chain, and
 * `key.pem`, both 0600 and written atomically). The store loads them all at start, keeps a TLS
 * context per hostname for the proxy's SNI lookup, and swaps a context in one assignment when a
 * certificate is renewed, so a handshake sees the old certificate or the new one.
 */
import { X509Certificate, createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import tls from 'node:tls';
import { writePrivateFile } from '../src/private-file.ts';
import type { CertificateSource } from '../proxy/types.ts';

/** What depad knows of a stored certificate. */
export interface CertificateInfo {
  hostname: string;
  notBefore: Date;
  notAfter: Date;
  issuer: string;
  serialNumber: string;
  /** SHA-256 of the leaf certificate, `AB:CD:…`. */
  fingerprint: string;
}

interface Entry {
  info: CertificateInfo;
  context: tls.SecureContext;
}

/** Hostnames as stored: lowercase DNS labels (letters, digits, `-`), dot separated. Nothing else reaches the disk. */
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/;

/** True when `name` can be stored (a lowercase multi-label DNS name, so a safe directory name). */
export function isStorableHostname(name: string): boolean {
  return HOSTNAME.test(name);
}

/** Reads the facts of the first certificate of a PEM chain. */
export function certificateInfo(hostname: string, chainPem: string): CertificateInfo {
  const leaf = new X509Certificate(chainPem);
  return {
    hostname,
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    issuer: leaf.issuer.replace(/\n/g, ', '),
    serialNumber: leaf.serialNumber,
    fingerprint: leaf.fingerprint256,
  };
}

/** The proxy's certificates on disk and in memory. */
export class CertificateStore implements CertificateSource {
  readonly dir: string;
  #entries = new Map<string, Entry>();

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Opens the store in `dir` (created 0700), loading every certificate in it; unreadable ones are reported through `onBad` and skipped. */
  static async open(dir: string, onBad: (hostname: string, error: Error) => void = () => {}): Promise<CertificateStore> {
    const store = new CertificateStore(dir);
    const root = path.join(dir, 'certificates');
    await fs.mkdir(root, { recursive: true, mode: 0o700 });
    for (const hostname of await fs.readdir(root)) {
      if (!isStorableHostname(hostname)) continue;
      try {
        const [chain, key] = await Promise.all(['cert.pem', 'key.pem'].map((f) => fs.readFile(path.join(root, hostname, f), 'utf8')));
        store.#entries.set(hostname, entryOf(hostname, chain as string, key as string));
      } catch (error) {
        onBad(hostname, error as Error);
      }
    }
    return store;
  }

  /** The TLS context for an SNI name, or undefined. */
  context(servername: string): tls.SecureContext | undefined {
    return this.#entries.get(servername)?.context;
  }

  /** The stored certificate's facts for `hostname`, if any. */
  get(hostname: string): CertificateInfo | undefined {
    return this.#entries.get(hostname)?.info;
  }

  /** Every stored certificate, by hostname. */
  list(): CertificateInfo[] {
    return [...this.#entries.values()].map((e) => e.info).sort((a, b) => a.hostname.localeCompare(b.hostname));
  }

  /** Stores (or replaces) the certificate of `hostname` and serves it from now on. */
  async save(hostname: string, chainPem: string, keyPem: string): Promise<CertificateInfo> {
    if (!isStorableHostname(hostname)) throw new Error(`not a hostname: ${JSON.stringify(hostname)}`);
    const entry = entryOf(hostname, chainPem, keyPem);
    const dir = path.join(this.dir, 'certificates', hostname);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    // The key first: a crash between the two writes leaves a new key with the old certificate,
    // which fails to load and is issued again, rather than a certificate nobody has the key of.
    await writePrivateFile(path.join(dir, 'key.pem'), keyPem);
    await writePrivateFile(path.join(dir, 'cert.pem'), chainPem);
    this.#entries.set(hostname, entry);
    return entry.info;
  }
}

function entryOf(hostname: string, chainPem: string, keyPem: string): Entry {
  const info = certificateInfo(hostname, chainPem);
  return { info, context: tls.createSecureContext({ cert: chainPem, key: keyPem }) };
}

/** A short stable name for an ACME directory URL (its account lives under `accounts/<this>/`). */
export function directoryId(directoryUrl: string): string {
  const host = new URL(directoryUrl).host.replace(/[^a-z0-9.-]/gi, '_');
  return `${host}-${createHash('sha256').update(directoryUrl).digest('hex').slice(0, 12)}`;
}
