/**
 * Request cases for the differential fuzzer: byte strings (latin1) built from an HTTP/1.1 request
 * grammar, then mutated where parsers are known to disagree (framing fields, Connection-listed
 * fields, odd names and values, chunk syntax, line endings, request lines, HTTP/1.0 and 0.9,
 * Expect, pipelining of 1–5 requests), with the split points at which the client writes them.
 */
import { SMUGGLED, encodeChunked, mutate, pauseMs, payload, recase, serializeHead, splitPoints } from './grammar.ts';
import type { Field } from './grammar.ts';
import type { Rng } from './random.ts';

/** One request-side case: what a client writes on one connection. */
export interface RequestCase {
  side: 'request';
  /** Set for corpus cases. */
  name?: string;
  bytes: Buffer;
  /** Offsets at which the bytes are written separately. */
  splits: number[];
  /** Pause between writes (0: the next turn of the event loop). */
  pauseMs: number;
  /** When the reference is left mid-message: how long the client waits before its FIN (default 40 ms). */
  finMs?: number;
  /** What the generator did (for reports). */
  ops?: string[];
}

/** A request case from literal bytes (latin1). */
export function requestCase(bytes: string | Buffer, options: { name?: string; splits?: number[]; pauseMs?: number; finMs?: number } = {}): RequestCase {
  return {
    side: 'request',
    bytes: typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes,
    splits: options.splits ?? [],
    pauseMs: options.pauseMs ?? 0,
    ...(options.finMs === undefined ? {} : { finMs: options.finMs }),
    ...(options.name === undefined ? {} : { name: options.name }),
  };
}

const PATHS = ['/', '/a', '/a/b?c=d', '/x', '/api/v1/items?id=7', '/a/%2e%2e/b', '/a/../b', '//fuzz.test/x', '/?q=1&x=2', '/%00', '/a%20b', '/a#frag', '/ü'];

function target(rng: Rng, method: string): string {
  if (method === 'CONNECT') return rng.pick(['fuzz.test:443', 'fuzz.test:80', '127.0.0.1:22']);
  if (method === 'OPTIONS' && rng.chance(0.5)) return '*';
  return rng.weighted([
    [20, rng.pick(PATHS)],
    [2, `http://fuzz.test${rng.pick(['/a', '/a/%2e%2e/b', '', '?x=1', '/a/./b', ':80/a'])}`],
    [1, rng.pick(['HTTP://FUZZ.TEST/x', 'https://fuzz.test/s', 'http://other.test/x', 'http://user@fuzz.test/', 'http://fuzz.test:99999/', 'ftp://fuzz.test/'])],
    [0.5, '*'],
    [0.3, `/${'x'.repeat(rng.pick([1000, 8000, 17000]))}`],
    [0.5, rng.pick(['/a\x7f', '/\xff', '', '/a\x00b', 'a'])],
  ]);
}

function method(rng: Rng, hasBody: boolean): string {
  if (hasBody) return rng.weighted([[10, 'POST'], [3, 'PUT'], [1, 'PATCH'], [0.5, 'DELETE'], [0.5, 'TRACE'], [0.3, 'GET'], [0.3, 'OPTIONS']]);
  return rng.weighted([[20, 'GET'], [3, 'HEAD'], [1, 'OPTIONS'], [1, 'TRACE'], [1, 'DELETE'], [0.7, 'CONNECT'], [0.3, 'PURGE'], [0.3, 'M-SEARCH']]);
}

function host(rng: Rng, fields: Field[]): string | undefined {
  const op = rng.weighted([[40, 'plain'], [1, 'missing'], [1, 'dup-same'], [1, 'dup-diff'], [1, 'port'], [1, 'upper'], [0.5, 'empty'], [0.5, 'bad'], [0.5, 'other'], [0.5, 'padded'], [0.5, 'name-case']] as const);
  switch (op) {
    case 'missing':
      return 'host:missing';
    case 'dup-same':
      fields.push(['Host', ' fuzz.test'], ['Host', ' fuzz.test']);
      break;
    case 'dup-diff':
      fields.push(['Host', ' fuzz.test'], ['Host', ' other.test']);
      break;
    case 'port':
      fields.push(['Host', rng.pick([' fuzz.test:80', ' fuzz.test:8080', ' fuzz.test:'])]);
      break;
    case 'upper':
      fields.push(['Host', ' FUZZ.TEST']);
      break;
    case 'empty':
      fields.push(['Host', rng.pick(['', ' '])]);
      break;
    case 'bad':
      fields.push(['Host', rng.pick([' fuzz.test/x', ' fuzz.test@evil.test', ' fuzz test', ' fuzz.test\\x'])]);
      break;
    case 'other':
      fields.push(['Host', ' other.test']);
      break;
    case 'padded':
      fields.push(['Host', rng.pick(['  fuzz.test', '\tfuzz.test', ' fuzz.test ', 'fuzz.test'])]);
      break;
    case 'name-case':
      fields.push([recase(rng, 'Host'), ' fuzz.test']);
      break;
    default:
      fields.push(['Host', ' fuzz.test']);
  }
  return op === 'plain' ? undefined : `host:${op}`;
}

function requestLine(rng: Rng, m: string, t: string, version: string, ops: string[]): string {
  let sep1 = ' ';
  let sep2 = ' ';
  let meth = m;
  let ver = version;
  if (rng.chance(0.06)) {
    const op = rng.pick(['double-space', 'tab', 'lower-method', 'trailing-space', 'version', 'leading-space'] as const);
    ops.push(`line:${op}`);
    if (op === 'double-space') (rng.chance(0.5) ? (sep1 = '  ') : (sep2 = '  '));
    else if (op === 'tab') (rng.chance(0.5) ? (sep1 = '\t') : (sep2 = '\t'));
    else if (op === 'lower-method') meth = m.toLowerCase();
    else if (op === 'trailing-space') ver = `${version} `;
    else if (op === 'leading-space') meth = ` ${m}`;
    else ver = rng.pick(['HTTP/1.2', 'HTTP/2.0', 'http/1.1', 'HTTP/01.1', 'HTTP/1.10', 'HTTP/1', 'HTTP/1.1x', 'HTTP/0.9']);
  }
  return `${meth}${sep1}${t}${sep2}${ver}`;
}

/** One request of a case: `mutations` scales how much is changed. */
function oneRequest(rng: Rng, mutations: number, ops: string[]): string {
  const shape = rng.weighted([[30, 'get'], [25, 'length'], [25, 'chunked'], [6, 'http10'], [2, 'http09'], [2, 'expect']] as const);
  if (shape === 'http09') {
    ops.push('http09');
    return `GET ${rng.pick(['/x', '/', '/a?b'])}${rng.chance(0.7) ? '\r\n' : rng.pick(['\n', '\r\n\r\n', '\r\nHost: fuzz.test\r\n\r\n'])}`;
  }
  const hasBody = shape === 'length' || shape === 'chunked' || shape === 'expect' || (shape === 'http10' && rng.chance(0.4));
  const m = shape === 'expect' ? rng.pick(['POST', 'PUT']) : method(rng, hasBody);
  const version = shape === 'http10' ? 'HTTP/1.0' : 'HTTP/1.1';
  const fields: Field[] = [];
  const hostOp = host(rng, fields);
  if (hostOp !== undefined) ops.push(hostOp);
  for (const extra of rng.shuffle<Field>([['User-Agent', ' fuzz/1'], ['Accept', ' */*'], ['X-Forwarded-For', ' 1.2.3.4'], ['Cookie', ' a=b'], ['X-Trace', ' t1']]).slice(0, rng.int(0, 3))) {
    fields.splice(rng.int(0, fields.length), 0, extra);
  }
  if (shape === 'http10' && rng.chance(0.4)) fields.push(['Connection', ' keep-alive']);
  if (shape === 'expect') fields.push(['Expect', rng.pick([' 100-continue', ' 100-Continue', ' nonsense'])]);
  const data = hasBody ? payload(rng) : '';
  let body = '';
  const chunked = shape === 'chunked' || (shape === 'http10' && hasBody && rng.chance(0.3));
  if (chunked) {
    fields.push(['Transfer-Encoding', ' chunked']);
    body = encodeChunked(rng, data, mutations > 0 && rng.chance(0.5));
  } else if (hasBody) {
    fields.push(['Content-Length', ` ${data.length}`]);
    body = data;
  }
  if (!chunked && rng.chance(0.03)) {
    ops.push('te-on-bodyless');
    fields.push(['Transfer-Encoding', ' chunked']);
    body = encodeChunked(rng, payload(rng), false);
  }
  const style = mutate(rng, fields, ops, mutations, { te: chunked ? 2 : 1, cl: hasBody && !chunked ? 3 : 1, connection: 2, fields: 3 }, data.length, body.length);
  const head = serializeHead(rng, requestLine(rng, m, target(rng, m), version, ops), fields, style);
  if (rng.chance(0.04)) {
    ops.push('body-longer');
    body += rng.pick(['x', 'xx\r\n', '\r\n', SMUGGLED]);
  }
  return head + body;
}

/** A random request case: 1–5 pipelined requests, sometimes truncated or with a stray byte. */
export function generateRequestCase(rng: Rng): RequestCase {
  const ops: string[] = [];
  const count = rng.weighted([[60, 1], [25, 2], [9, 3], [4, 4], [2, 5]]);
  let text = '';
  for (let k = 0; k < count; k++) {
    const mutations = rng.weighted([[35, 0], [40, 1], [18, 2], [7, 3]]);
    if (k > 0 && rng.chance(0.05)) text += rng.pick(['\r\n', '\n', '\r\n\r\n']);
    text += oneRequest(rng, k === 0 ? mutations : Math.min(mutations, 1), ops);
  }
  if (rng.chance(0.04)) {
    ops.push('truncated');
    text = text.slice(0, rng.int(1, text.length));
  } else if (rng.chance(0.02)) {
    ops.push('stray-byte');
    const at = rng.int(0, text.length);
    text = text.slice(0, at) + rng.pick(['\x00', '\r', '\n', ' ', '\x7f', '\xff']) + text.slice(at);
  }
  // A FIN right after the last byte also meets the proxy mid-exchange (a previous answer still coming).
  return { side: 'request', bytes: Buffer.from(text, 'latin1'), splits: splitPoints(rng, text), pauseMs: pauseMs(rng), finMs: rng.chance(0.3) ? 0 : 40, ops };
}
