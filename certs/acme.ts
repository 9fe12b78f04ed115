/**
 * Certificates from an ACME CA (Let's Encrypt, or any RFC 8555 server) for the proxy's public
 * hostnames, by HTTP-01: the CA fetches `http://<hostname>/.well-known/acme-challenge/<token>`,
 * which the proxy's HTTP listener answers from `challenges`. One certificate per hostname, so a
 * name that fails validation never holds up the others. The account key lives beside the
 * certificates (`<home>/certs/acme/accounts/<directory>/`, 0600) and is made on first use.
 *
 * `want()` takes the hostnames the routes ask for; a single worker issues what is missing, renews
 * what has `renewDays` or fewer left (checked every `checkIntervalMs` too), and retries failures
 * with backoff (1 min doubling to 6 h). Nothing here blocks a route: a route serves HTTP at once
 * and HTTPS from the moment its certificate is stored.
 */
import https from 'node:https';
import path from 'node:path';
import fs from 'node:fs/promises';
import tls from 'node:tls';
import type { Client } from 'acme-client';
import type { Logger } from '../src/logger.ts';
import { writePrivateFile } from '../src/private-file.ts';
import type { ChallengeResponder, RouteSnapshot } from '../proxy/types.ts';
import { directoryId, isStorableHostname } from './certificate-store.ts';
import { renewalDue } from './validity.ts';
import type { CertificateInfo, CertificateStore } from './certificate-store.ts';

/** Let's Encrypt's production directory: the default CA. */
export const LETS_ENCRYPT = 'https://acme-v02.api.letsencrypt.org/directory';
/** Let's Encrypt's staging directory (untrusted certificates, generous rate limits). */
export const LETS_ENCRYPT_STAGING = 'https://acme-staging-v02.api.letsencrypt.org/directory';
/** The renewal rule (certs/validity.ts), shared with the agent's own certificate. */
export { RENEW_DAYS, renewalDue } from './validity.ts';
const FIRST_RETRY_MS = 60_000;
const MAX_RETRY_MS = 6 * 3_600_000;

/** Top-level domains that never get a public certificate (RFC 2606, RFC 6761, RFC 6762, common private ones). */
const PRIVATE_TLDS = new Set(['localhost', 'local', 'test', 'invalid', 'example', 'internal', 'lan', 'home', 'corp', 'intranet', 'private', 'onion', 'alt', 'arpa']);

/** True when `hostname` can have a certificate from a public CA: a multi-label DNS name under a public top-level domain. */
export function isPublicHostname(hostname: string): boolean {
  if (!isStorableHostname(hostname)) return false;
  const tld = hostname.slice(hostname.lastIndexOf('.') + 1);
  return !PRIVATE_TLDS.has(tld) && !/^[0-9]+$/.test(tld);
}

/** The hostnames the routes want certificates for: every public host of an http route whose `https` is not `off`. */
export function certificateHostnames(snapshot: RouteSnapshot): string[] {
  const names = new Set<string>();
  for (const route of snapshot.routes) {
    if (route.kind !== 'http' || route.https === 'off') continue;
    for (const host of route.hosts) if (isPublicHostname(host)) names.add(host);
  }
  return [...names].sort();
}

/** Key authorizations of the HTTP-01 challenges being validated now. */
export class Challenges implements ChallengeResponder {
  readonly #tokens = new Map<string, string>();

  keyAuthorization(token: string): string | undefined {
    return this.#tokens.get(token);
  }

  set(token: string, keyAuthorization: string): void {
    this.#tokens.set(token, keyAuthorization);
  }

  delete(token: string): void {
    this.#tokens.delete(token);
  }
}

/** Options of `AcmeManager`. */
export interface AcmeOptions {
  /** The ACME directory URL (default Let's Encrypt). */
  directoryUrl?: string;
  /** Contact address registered with the account. */
  email?: string;
  /** PEM of the CA behind the ACME server's own HTTPS, when no public CA signs it (a private CA, or Pebble in tests). */
  serverCa?: string;
  /** Where certificates are kept and served from; the account lives under its directory too. */
  store: CertificateStore;
  /** Renew when this many days or fewer remain (default 30). */
  renewDays?: number;
  /** How often every certificate is checked for renewal (default 12 h). */
  checkIntervalMs?: number;
  log: Logger;
  /** The clock (tests). */
  now?: () => number;
}

/** Where one hostname stands. */
export interface CertificateStatus {
  hostname: string;
  /** `valid`: served; `due`: served and being renewed; `pending`: none yet; `failed`: the last attempt failed (see `error`). */
  state: 'valid' | 'due' | 'pending' | 'failed';
  certificate?: CertificateInfo;
  error?: string;
  /** When a failed hostname is tried again. */
  retryAt?: string;
}

interface Failure {
  attempts: number;
  retryAt: number;
  error: string;
}

/** Obtains and renews the proxy's certificates. */
export class AcmeManager {
  /** What the proxy answers HTTP-01 challenges from. */
  readonly challenges = new Challenges();
  readonly #o: AcmeOptions;
  readonly #directoryUrl: string;
  readonly #now: () => number;
  #wanted = new Set<string>();
  readonly #failures = new Map<string, Failure>();
  #client: Promise<Client> | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #checkTimer: NodeJS.Timeout | undefined;

  constructor(options: AcmeOptions) {
    this.#o = options;
    this.#directoryUrl = options.directoryUrl ?? LETS_ENCRYPT;
    this.#now = options.now ?? Date.now;
  }

  /** Starts the periodic renewal check. */
  start(): void {
    this.#checkTimer = setInterval(() => this.#kick(), this.#o.checkIntervalMs ?? 12 * 3_600_000);
    this.#checkTimer.unref();
  }

  /** Replaces the set of hostnames that should have certificates, and gets what is missing or due. */
  want(hostnames: Iterable<string>): void {
    this.#wanted = new Set([...hostnames].filter(isPublicHostname));
    for (const name of this.#failures.keys()) if (!this.#wanted.has(name)) this.#failures.delete(name);
    this.#kick();
  }

  /** Every wanted or stored hostname and where it stands. */
  status(): CertificateStatus[] {
    const names = new Set([...this.#wanted, ...this.#o.store.list().map((c) => c.hostname)]);
    return [...names].sort().map((hostname) => {
      const certificate = this.#o.store.get(hostname);
      const failure = this.#failures.get(hostname);
      const state = failure ? 'failed' : !certificate ? 'pending' : this.#due(hostname) ? 'due' : 'valid';
      return {
        hostname,
        state,
        ...(certificate ? { certificate } : {}),
        ...(failure ? { error: failure.error, retryAt: new Date(failure.retryAt).toISOString() } : {}),
      };
    });
  }

  /** Resolves once no issuance is running (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /** Stops the timers and waits for a running issuance to end. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#checkTimer);
    clearTimeout(this.#retryTimer);
    await this.settled();
  }

  #due(hostname: string): boolean {
    const certificate = this.#o.store.get(hostname);
    return certificate === undefined || renewalDue(certificate.notAfter, this.#now(), this.#o.renewDays);
  }

  #kick(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#work().finally(() => {
      this.#running = undefined;
      this.#schedule();
    });
  }

  async #work(): Promise<void> {
    do {
      this.#again = false;
      for (const hostname of [...this.#wanted]) {
        if (this.#stopped) return;
        const failure = this.#failures.get(hostname);
        if ((failure && failure.retryAt > this.#now()) || !this.#due(hostname)) continue;
        await this.#obtain(hostname, failure);
      }
    } while (this.#again && !this.#stopped);
  }

  /** Arms a timer for the earliest retry of a failed hostname. */
  #schedule(): void {
    clearTimeout(this.#retryTimer);
    if (this.#stopped) return;
    const next = Math.min(...[...this.#failures.values()].map((f) => f.retryAt));
    if (!Number.isFinite(next)) return;
    this.#retryTimer = setTimeout(() => this.#kick(), Math.max(0, next - this.#now()));
    this.#retryTimer.unref();
  }

  async #obtain(hostname: string, failure: Failure | undefined): Promise<void> {
    const log = this.#o.log;
    const renewing = this.#o.store.get(hostname) !== undefined;
    const started = this.#now();
    log.info({ hostname, directory: this.#directoryUrl, renewing }, renewing ? 'renewing a certificate' : 'requesting a certificate');
    try {
      const acme = await import('acme-client');
      const client = await this.#account();
      const key = await acme.crypto.createPrivateEcdsaKey('P-256');
      const [, csr] = await acme.crypto.createCsr({ commonName: hostname, altNames: [hostname] }, key);
      const chain = await client.auto({
        csr,
        ...(this.#o.email ? { email: this.#o.email } : {}),
        termsOfServiceAgreed: true,
        challengePriority: ['http-01'],
        // acme-client's own pre-check fetches the token through this host's resolver and port 80,
        // which says nothing about what the CA sees (NAT, split DNS, another HTTP port): the CA decides.
        skipChallengeVerification: true,
        challengeCreateFn: async (_authz, challenge, keyAuthorization) => this.challenges.set(challenge.token, keyAuthorization),
        challengeRemoveFn: async (_authz, challenge) => this.challenges.delete(challenge.token),
      });
      const info = await this.#o.store.save(hostname, chain, key.toString());
      this.#failures.delete(hostname);
      log.info({ hostname, notAfter: info.notAfter.toISOString(), issuer: info.issuer, ms: this.#now() - started }, 'certificate stored');
    } catch (error) {
      const attempts = (failure?.attempts ?? 0) + 1;
      const retryAt = this.#now() + Math.min(FIRST_RETRY_MS * 2 ** (attempts - 1), MAX_RETRY_MS);
      const message = acmeErrorText(error);
      this.#failures.set(hostname, { attempts, retryAt, error: message });
      log.warn({ hostname, attempts, retryAt: new Date(retryAt).toISOString(), err: message }, 'could not get a certificate; HTTP keeps serving');
    }
  }

  /** The ACME client with this directory's account key (made and saved 0600 on first use). */
  #account(): Promise<Client> {
    return (this.#client ??= this.#makeClient().catch((error: unknown) => {
      this.#client = undefined;
      throw error;
    }));
  }

  async #makeClient(): Promise<Client> {
    const acme = await import('acme-client');
    if (this.#o.serverCa) {
      acme.axios.defaults.httpsAgent = new https.Agent({ ca: [...tls.rootCertificates, this.#o.serverCa], keepAlive: true });
    }
    const dir = path.join(this.#o.store.dir, 'accounts', directoryId(this.#directoryUrl));
    const keyFile = path.join(dir, 'account.key');
    let accountKey = await fs.readFile(keyFile, 'utf8').catch((error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? undefined : Promise.reject(error)));
    if (accountKey === undefined) {
      await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      accountKey = (await acme.crypto.createPrivateEcdsaKey('P-256')).toString();
      await writePrivateFile(keyFile, accountKey);
      this.#o.log.info({ directory: this.#directoryUrl, file: keyFile }, 'made an ACME account key');
    }
    // Poll orders from 1 s (acme-client's default first wait is 5 s), backing off to 30 s.
    return new acme.Client({ directoryUrl: this.#directoryUrl, accountKey, backoffMin: 1000, backoffMax: 30_000 });
  }
}

/** The CA's problem text (type and detail), never the request or keys. */
function acmeErrorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const response = (error as { response?: { data?: { type?: string; detail?: string } } }).response?.data;
  if (response?.detail) return `${response.type ?? 'error'}: ${response.detail}`;
  return error.message;
}
