/**
 * Response cases for the differential fuzzer: what a raw upstream answers to one simple GET or
 * HEAD from an HTTP/1.1 or HTTP/1.0 client. Built from a response grammar with the mutations of
 * grammar.ts (framing fields, Connection-listed fields, odd names, chunk syntax), 1xx interim
 * responses before the final one, close-delimited bodies, a second response or bytes after it.
 */
import { SMUGGLED_RESPONSE, encodeChunked, mutate, pauseMs, payload, serializeHead, splitPoints } from './grammar.ts';
import type { Field } from './grammar.ts';
import type { Rng } from './random.ts';

/** One response-side case. */
export interface ResponseCase {
  side: 'response';
  name?: string;
  /** What the upstream sends once it has the request head. */
  bytes: Buffer;
  splits: number[];
  pauseMs: number;
  /** The upstream closes its connection after the bytes. */
  close: boolean;
  /** The client's request. */
  method: 'GET' | 'HEAD';
  version: '1.1' | '1.0';
  ops?: string[];
}

/** A response case from literal bytes (latin1). */
export function responseCase(
  bytes: string | Buffer,
  options: { name?: string; close?: boolean; method?: 'GET' | 'HEAD'; version?: '1.1' | '1.0'; splits?: number[]; pauseMs?: number } = {},
): ResponseCase {
  return {
    side: 'response',
    bytes: typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes,
    splits: options.splits ?? [],
    pauseMs: options.pauseMs ?? 0,
    close: options.close ?? false,
    method: options.method ?? 'GET',
    version: options.version ?? '1.1',
    ...(options.name === undefined ? {} : { name: options.name }),
  };
}

const INTERIM = ['HTTP/1.1 100 Continue\r\n\r\n', 'HTTP/1.1 102 Processing\r\n\r\n', 'HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n', 'HTTP/1.1 100 Continue\r\nX-I: 1\r\n\r\n'];

function statusLine(rng: Rng, ops: string[]): string {
  const status = rng.weighted([[20, 200], [2, 201], [2, 204], [2, 304], [2, 404], [1, 500], [1, 206], [0.5, 302]]);
  const version = rng.chance(0.9) ? 'HTTP/1.1' : 'HTTP/1.0';
  if (rng.chance(0.04)) {
    const line = rng.pick(['HTTP/1.1 200', 'HTTP/1.1 200 ', 'HTTP/1.1 2000 OK', 'HTTP/1.1 099 X', 'HTTP/1.2 200 OK', 'http/1.1 200 OK', 'HTTP/1.1  200 OK', 'HTTP/1.1 200 O\x01K', 'HTTP/2 200 OK']);
    ops.push(`status:${JSON.stringify(line)}`);
    return line;
  }
  return `${version} ${status} ${rng.pick(['OK', 'Fine', 'Whatever'])}`;
}

/** A random response case. */
export function generateResponseCase(rng: Rng): ResponseCase {
  const ops: string[] = [];
  let text = '';
  if (rng.chance(0.2)) {
    for (let k = rng.int(1, 2); k > 0; k--) text += rng.pick(INTERIM);
    ops.push('interim');
  }
  const line = statusLine(rng, ops);
  const framing = rng.weighted([[5, 'length'], [4, 'chunked'], [1.5, 'close']] as const);
  const fields: Field[] = [['Content-Type', ' text/plain']];
  if (rng.chance(0.3)) fields.push(['Server', ' fuzz']);
  const data = rng.chance(0.3) ? SMUGGLED_RESPONSE : payload(rng);
  let body = data;
  if (framing === 'length') fields.push(['Content-Length', ` ${data.length}`]);
  if (framing === 'chunked') {
    fields.push(['Transfer-Encoding', ' chunked']);
    body = encodeChunked(rng, data, rng.chance(0.5));
  }
  const mutations = rng.weighted([[35, 0], [40, 1], [18, 2], [7, 3]]);
  const style = mutate(rng, fields, ops, mutations, { te: framing === 'chunked' ? 3 : 1, cl: framing === 'length' ? 3 : 1, connection: 2, fields: 2 }, data.length, body.length);
  text += serializeHead(rng, line, fields, style) + body;
  const after = rng.weighted([[85, ''], [6, SMUGGLED_RESPONSE], [3, 'garbage'], [3, '\r\n'], [3, 'HTTP/1.1 204 No Content\r\n\r\n']]);
  if (after !== '') ops.push(`after:${JSON.stringify(after.slice(0, 12))}`);
  text += after;
  const close = framing === 'close' || rng.chance(0.35);
  if (rng.chance(0.03)) {
    ops.push('truncated');
    text = text.slice(0, rng.int(1, text.length));
  }
  return {
    side: 'response',
    bytes: Buffer.from(text, 'latin1'),
    splits: splitPoints(rng, text),
    pauseMs: pauseMs(rng),
    close,
    method: rng.chance(0.15) ? 'HEAD' : 'GET',
    version: rng.chance(0.3) ? '1.0' : '1.1',
    ops,
  };
}
