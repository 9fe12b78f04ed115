/**
 * Header rewriting for forwarded HTTP requests, WebSocket upgrades and responses: hop-by-hop
 * headers (and those named in `Connection`) are dropped, X-Forwarded-For is appended to,
 * X-Forwarded-Proto and X-Forwarded-Host are set. Works on flat `[name, value, …]` arrays, the
 * form both node:http (`rawHeaders`, `writeHead`) and undici take, to avoid building objects.
 */

/** Hop-by-hop headers (RFC 9110 §7.6.1 and RFC 2616 §13.5.1, plus Proxy-Connection), lowercase. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Request headers the proxy replaces or handles itself (node answered any `Expect: 100-continue`). */
const REWRITTEN = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'expect']);

/** Connection tokens that name no header to drop. */
const CONNECTION_OPTIONS = new Set(['close', 'keep-alive', 'upgrade']);

/** A request's headers as forwarded, with what the proxy needs to know about it. */
export interface ForwardedHead {
  /** `[name, value, …]` to send upstream. */
  headers: string[];
  /** The host the request is for: the Host header, or the authority of an absolute-form target; undefined when absent or Host is repeated. */
  host: string | undefined;
  /** The request target to send upstream (origin form: path and query). */
  path: string;
  /** True when the request has a body to stream (Content-Length > 0 or Transfer-Encoding). */
  hasBody: boolean;
}

/** Extra header names listed in Connection header values (lowercase), or undefined when none. */
function connectionTokens(value: string, into: Set<string> | undefined): Set<string> | undefined {
  for (const part of value.split(',')) {
    const token = part.trim().toLowerCase();
    if (token !== '' && !CONNECTION_OPTIONS.has(token)) (into ??= new Set()).add(token);
  }
  return into;
}

function without(headers: string[], drop: Set<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (!drop.has((headers[i] as string).toLowerCase())) out.push(headers[i] as string, headers[i + 1] as string);
  }
  return out;
}

/**
 * Rewrites a request's raw headers for the upstream. `upgrade` keeps `Connection: Upgrade` and
 * `Upgrade` (for a WebSocket handshake written raw to the upstream).
 */
export function forwardRequestHeaders(raw: readonly string[], url: string, clientIp: string, proto: string, upgrade: boolean): ForwardedHead {
  const headers: string[] = [];
  let host: string | undefined;
  let hosts = 0;
  let xff: string | undefined;
  let hasBody = false;
  let extra: Set<string> | undefined;
  let upgradeValue: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const lower = name.toLowerCase();
    switch (lower) {
      case 'host':
        host = value;
        hosts++;
        continue;
      case 'content-length':
        if (value !== '0') hasBody = true;
        headers.push(name, value);
        continue;
      case 'transfer-encoding':
        hasBody = true;
        continue;
      case 'x-forwarded-for':
        xff = xff === undefined ? value : `${xff}, ${value}`;
        continue;
      case 'connection':
        extra = connectionTokens(value, extra);
        continue;
      case 'upgrade':
        upgradeValue = value;
        continue;
      default:
        if (!HOP_BY_HOP.has(lower) && !REWRITTEN.has(lower)) headers.push(name, value);
    }
  }
  if (hosts > 1) host = undefined; // RFC 9112 §3.2: more than one Host is a bad request
  let path = url;
  if (url.charCodeAt(0) !== 47 /* / */ && url !== '*') {
    // Absolute form (`GET http://host/path`): the target's authority wins over Host (RFC 9112 §3.2.2).
    const target = absoluteTarget(url);
    if (target === undefined) host = undefined;
    else ({ host, path } = target);
  }
  const out = extra === undefined ? headers : without(headers, extra);
  if (host !== undefined) out.push('Host', host);
  if (upgrade && upgradeValue !== undefined) out.push('Connection', 'Upgrade', 'Upgrade', upgradeValue);
  out.push('X-Forwarded-For', xff === undefined ? clientIp : `${xff}, ${clientIp}`, 'X-Forwarded-Proto', proto);
  if (host !== undefined) out.push('X-Forwarded-Host', host);
  return { headers: out, host, path, hasBody };
}

function absoluteTarget(url: string): { host: string; path: string } | undefined {
  try {
    const parsed = new URL(url);
    if ((parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.host === '') return undefined;
    return { host: parsed.host, path: `${parsed.pathname}${parsed.search}` };
  } catch {
    return undefined;
  }
}

/** Rewrites an upstream response's headers (undici's lowercase object) into a flat array for `writeHead`. */
export function forwardResponseHeaders(headers: Record<string, string | string[] | undefined>): string[] {
  const out: string[] = [];
  let extra: Set<string> | undefined;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (HOP_BY_HOP.has(name)) {
      if (name === 'connection') extra = connectionTokens(Array.isArray(value) ? value.join(',') : value, extra);
      continue;
    }
    if (typeof value === 'string') out.push(name, value);
    else for (const v of value) out.push(name, v);
  }
  return extra === undefined ? out : without(out, extra);
}
