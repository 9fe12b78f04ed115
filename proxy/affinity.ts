/**
 * Cookie affinity (`affinity: 'cookie'` on an http route). The proxy answers a request that had
 * no valid affinity cookie with `Set-Cookie: depad_affinity=<token>` naming the upstream it chose;
 * a request carrying a token of an upstream still in the route and healthy goes there.
 *
 * A token is a keyed hash, HMAC-SHA256(key, `<route id>\n<host:port>`) cut to 128 bits in
 * base64url (22 characters): it reveals no address or port, cannot be forged for another
 * upstream, and is only ever compared with the current upstreams' tokens (made once per route
 * snapshot, never per request). The key lives in the proxy's state directory (`affinity.key`,
 * mode 0600, made on first start), so a restarted proxy, and the process a handover starts on
 * the same state, keep every session on its upstream.
 */
import { createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../src/logger.ts';
import { writePrivateFile } from '../src/private-file.ts';
import type { ActiveRoute } from './route-table.ts';

/** The cookie's name. */
export const AFFINITY_COOKIE = 'depad_affinity';
const PREFIX = `${AFFINITY_COOKIE}=`;
const KEY_BYTES = 32;

/** The affinity key file in a proxy state directory. */
export function affinityKeyFile(stateDir: string): string {
  return path.join(stateDir, 'affinity.key');
}

/**
 * The proxy's affinity key: read from `file`, or made and written there (mode 0600) when missing.
 * When the file can be neither read nor written, a key for this process alone (logged: affinity
 * then ends with the process).
 */
export async function loadAffinityKey(file: string, log: Logger): Promise<Buffer> {
  try {
    const key = Buffer.from((await fs.readFile(file, 'utf8')).trim(), 'hex');
    if (key.length === KEY_BYTES) return key;
    log.warn({ file }, 'the affinity key file is not valid: a new key is made (affinity cookies given before are ignored)');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') log.warn({ file, error: (error as Error).message }, 'cannot read the affinity key file: a new key is made');
  }
  const key = randomBytes(KEY_BYTES);
  try {
    await writePrivateFile(file, `${key.toString('hex')}\n`);
  } catch (error) {
    log.warn({ file, error: (error as Error).message }, 'cannot write the affinity key file: affinity cookies last as long as this proxy process');
  }
  return key;
}

/** The token of each of `active`'s upstreams (same order as its keys), made on first use for this snapshot. */
export function routeTokens(active: ActiveRoute, key: Buffer): readonly string[] {
  return (active.tokens ??= active.keys.map((k) => createHmac('sha256', key).update(`${active.route.id}\n${k}`).digest('base64url').slice(0, 22)));
}

/** Whether the field line starting at `at` of `text` is a Cookie field (name in any case). */
function isCookieField(text: string, at: number): boolean {
  const word = 'cookie';
  for (let i = 0; i < 6; i++) if ((text.charCodeAt(at + i) | 0x20) !== word.charCodeAt(i)) return false;
  return text.charCodeAt(at + 6) === 58; /* : */
}

function isSpace(code: number): boolean {
  return code === 32 || code === 9;
}

/**
 * The index in `tokens` of the first `depad_affinity` cookie in the Cookie fields of the request
 * head `text` (well formed: checked by http-head.ts) whose value is exactly one of `tokens`, or -1.
 * Pairs are split at `;` with spaces and tabs around them ignored (RFC 6265 §5.4); the name is
 * matched exactly; any other value (quoted, altered, another route's) is no match.
 */
export function cookieIndex(text: string, tokens: readonly string[]): number {
  if (text.indexOf(PREFIX) < 0) return -1; // the common case, in native code
  for (let line = text.indexOf('\r\n'); line >= 0; ) {
    const start = line + 2;
    const next = text.indexOf('\r\n', start);
    const stop = next < 0 ? text.length : next;
    if (isCookieField(text, start)) {
      for (let p = start + 7; p < stop; ) {
        while (p < stop && isSpace(text.charCodeAt(p))) p++;
        const semi = text.indexOf(';', p);
        const end = semi < 0 || semi > stop ? stop : semi;
        if (text.startsWith(PREFIX, p)) {
          let e = end;
          while (e > p && isSpace(text.charCodeAt(e - 1))) e--;
          const i = tokens.indexOf(text.slice(p + PREFIX.length, e));
          if (i >= 0) return i;
        }
        p = end + 1;
      }
    }
    line = next;
  }
  return -1;
}

/** The Set-Cookie field line (CRLF included) naming `token`; `secure` on the HTTPS listener. */
export function setCookieField(token: string, secure: boolean): string {
  return `Set-Cookie: ${PREFIX}${token}; Path=/; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}\r\n`;
}

/** `head` (a response head ending with its blank line) with the field line `line` added at its end. */
export function addField(head: string, line: string): string {
  return `${head.slice(0, -2)}${line}\r\n`;
}
