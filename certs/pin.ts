/**
 * Certificate pinning for the remote CLI: an agent's CA is trusted because its SHA-256
 * fingerprint was given out of band (printed by the agent at first start). `fetchPinnedCa` makes
 * one TLS handshake without verification, finds the CA with that fingerprint in the chain the
 * server presents, and returns it; from then on the CLI connects with normal verification
 * against that CA alone (hostname included).
 */
import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import type { PeerCertificate, DetailedPeerCertificate } from 'node:tls';
import { DepadError } from '../src/errors.ts';

/** A fingerprint as `AB:CD:…` (64 hex digits); accepts lowercase, no colons, and a `sha256:` prefix. */
export function normalizeFingerprint(input: string): string {
  const hex = input.trim().replace(/^sha256:/i, '').replace(/[:\s]/g, '').toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) {
    throw new DepadError('DEPAD_USAGE', `not a SHA-256 fingerprint: ${JSON.stringify(input)}`, { hint: 'Use the fingerprint the agent printed at its first start (64 hex digits, colons optional).' });
  }
  return hex.match(/../g)?.join(':') ?? hex;
}

/** PEM text of a DER certificate. */
function pem(der: Buffer): string {
  const b64 = der.toString('base64').match(/.{1,64}/g)?.join('\n') ?? '';
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

/** The certificates of a presented chain, leaf first (each once). */
function chainOf(leaf: DetailedPeerCertificate): PeerCertificate[] {
  const out: PeerCertificate[] = [];
  for (let c: DetailedPeerCertificate | undefined = leaf; c !== undefined && c.raw !== undefined; c = c.issuerCertificate) {
    if (out.some((seen) => seen.fingerprint256 === c?.fingerprint256)) break;
    out.push(c);
  }
  return out;
}

/** Options of `fetchPinnedCa`. */
export interface PinOptions {
  /** Name sent as SNI (default: `host` unless it is an IP address). */
  servername?: string;
  /** Give up after this long (default 10 000 ms). */
  timeoutMs?: number;
  /** What should answer there, for the hints (default: a depad agent); a join names the cluster manager. */
  peer?: { runs: string; fingerprint: string };
}

/**
 * Returns the PEM of the CA certificate with SHA-256 `fingerprint` from the chain `host:port`
 * presents. Fails with DEPAD_TLS_PIN_MISMATCH (naming what was presented) or
 * DEPAD_AGENT_UNAVAILABLE (no TLS answer).
 */
export function fetchPinnedCa(host: string, port: number, fingerprint: string, options: PinOptions = {}): Promise<string> {
  const want = normalizeFingerprint(fingerprint);
  const where = `${host}:${port}`;
  const peer = options.peer ?? { runs: '`depad agent`', fingerprint: 'Check the fingerprint the agent printed' };
  return new Promise((resolve, reject) => {
    const servername = options.servername ?? (net.isIP(host) === 0 ? host : undefined);
    const socket = tls.connect({ host, port, rejectUnauthorized: false, ...(servername === undefined ? {} : { servername }) });
    socket.setTimeout(options.timeoutMs ?? 10_000, () => socket.destroy(new Error('timed out')));
    socket.once('error', (error) => {
      reject(new DepadError('DEPAD_AGENT_UNAVAILABLE', `no TLS answer from ${where}: ${error.message}`, { cause: error, hint: `Check the address and port, and that ${peer.runs} runs there.` }));
    });
    socket.once('secureConnect', () => {
      const chain = chainOf(socket.getPeerCertificate(true));
      socket.end();
      const match = chain.find((c) => c.fingerprint256 === want);
      if (match === undefined) {
        return reject(
          new DepadError('DEPAD_TLS_PIN_MISMATCH', `${where} presented no CA with fingerprint ${want}`, {
            details: { presented: chain.map((c) => ({ subject: c.subject?.CN, fingerprint: c.fingerprint256 })) },
            hint: `${peer.fingerprint}; a different one means a different ${options.peer ? 'manager' : 'agent'}, or someone in between.`,
          }),
        );
      }
      const text = pem(match.raw);
      if (!new X509Certificate(text).ca) return reject(new DepadError('DEPAD_TLS_PIN_MISMATCH', `the certificate with fingerprint ${want} at ${where} is not a CA`, { hint: 'Pin the fingerprint of the agent\'s CA, not of its server certificate.' }));
      resolve(text);
    });
  });
}

/** SHA-256 fingerprint (`AB:CD:…`) of the certificate a TLS client presented, when it chains to the server's `ca`; else undefined. */
export function verifiedPeerFingerprint(socket: { authorized?: boolean; getPeerCertificate?: () => PeerCertificate | undefined }): string | undefined {
  if (typeof socket.getPeerCertificate !== 'function' || socket.authorized !== true) return undefined;
  const raw = socket.getPeerCertificate()?.raw;
  return raw ? new X509Certificate(raw).fingerprint256 : undefined;
}
