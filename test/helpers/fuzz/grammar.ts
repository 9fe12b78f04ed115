/**
 * HTTP/1.1 message pieces shared by the request and response generators of the differential
 * fuzzer: header fields and their mutations (duplicated, folded, padded, re-cased, underscored,
 * non-token names, framing fields in every shape parsers disagree on), chunked bodies with their
 * mutations, line endings, and the split points at which bytes are written. Strings are latin1:
 * one character per byte.
 */
import type { Rng } from './random.ts';

/** A header line: name and raw value (leading whitespace included); a null value is a line without a colon. */
export type Field = [name: string, value: string | null];

/** A request smuggled in a body: the fuzzer sees it as an extra request whenever framing is read differently. */
export const SMUGGLED = 'GET /smug HTTP/1.1\r\nHost: fuzz.test\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n';
/** A response smuggled in a body (response splitting). */
export const SMUGGLED_RESPONSE = 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Smuggled: 1\r\n\r\nevil';

/** A body: often a complete or partial request, else short text. */
export function payload(rng: Rng, smuggled = SMUGGLED): string {
  return rng.weighted([
    [4, smuggled],
    [1, smuggled.slice(0, rng.int(1, smuggled.length - 1))],
    [3, 'hello'],
    [2, 'x'.repeat(rng.int(1, 40))],
    [1, ''],
    [1, '0\r\n\r\n'],
  ]);
}

/** `name` in random letter case (or a fixed variant). */
export function recase(rng: Rng, name: string): string {
  return rng.weighted([
    [1, name.toLowerCase()],
    [1, name.toUpperCase()],
    [2, [...name].map((c) => (rng.chance(0.5) ? c.toUpperCase() : c.toLowerCase())).join('')],
  ]);
}

function find(fields: Field[], name: string): number {
  return fields.findIndex(([n]) => n.toLowerCase() === name);
}

function insertAt(rng: Rng, fields: Field[], field: Field): void {
  fields.splice(rng.int(0, fields.length), 0, field);
}

/** Mutates the Content-Length field (adding one if absent) of a body of `length` bytes; returns what it did. */
export function mutateContentLength(rng: Rng, fields: Field[], length: number): string {
  let i = find(fields, 'content-length');
  if (i < 0) {
    fields.push(['Content-Length', ` ${length}`]);
    i = fields.length - 1;
  }
  const f = fields[i] as Field;
  const other = length + rng.pick([1, 2, 5, -1, -2]);
  const op = rng.pick(['dup-same', 'dup-diff', 'list-same', 'list-diff', 'pad', 'zero', 'plus', 'neg', 'empty', 'huge', 'hex', 'wrong', 'underscore', 'recase', 'space-before-colon', 'no-space', 'connection', 'with-te', 'drop'] as const);
  switch (op) {
    case 'dup-same':
      insertAt(rng, fields, ['Content-Length', ` ${length}`]);
      break;
    case 'dup-diff':
      insertAt(rng, fields, ['Content-Length', ` ${Math.max(0, other)}`]);
      break;
    case 'list-same':
      f[1] = rng.pick([` ${length}, ${length}`, ` ${length},${length}`, ` ${length} ,${length}`, ` ${length}, ${length}, ${length}`]);
      break;
    case 'list-diff':
      f[1] = ` ${length}, ${Math.max(0, other)}`;
      break;
    case 'pad':
      f[1] = rng.pick([`  ${length}`, `\t${length}`, ` ${length} `, ` ${length}\t`, `\t ${length} \t`]);
      break;
    case 'zero':
      f[1] = ` ${'0'.repeat(rng.int(1, 3))}${length}`;
      break;
    case 'plus':
      f[1] = ` +${length}`;
      break;
    case 'neg':
      f[1] = ` -${length}`;
      break;
    case 'empty':
      f[1] = rng.pick(['', ' ']);
      break;
    case 'huge':
      f[1] = rng.pick([' 99999999999999999999', ' 18446744073709551616', ' 9007199254740993']);
      break;
    case 'hex':
      f[1] = ` 0x${length.toString(16)}`;
      break;
    case 'wrong':
      f[1] = ` ${Math.max(0, other)}`;
      break;
    case 'underscore':
      f[0] = rng.pick(['Content_Length', 'content_length', 'CONTENT_LENGTH']);
      break;
    case 'recase':
      f[0] = recase(rng, 'Content-Length');
      break;
    case 'space-before-colon':
      f[0] = `Content-Length${rng.pick([' ', '\t'])}`;
      break;
    case 'no-space':
      f[1] = `${length}`;
      break;
    case 'connection':
      insertAt(rng, fields, ['Connection', rng.pick([' Content-Length', ' close, Content-Length', ' keep-alive, Content-Length', ' content-length'])]);
      break;
    case 'with-te':
      insertAt(rng, fields, ['Transfer-Encoding', ' chunked']);
      break;
    case 'drop':
      fields.splice(i, 1);
  }
  return `cl:${op}`;
}

/** Transfer-Encoding values that parsers read differently. */
export const TE_VALUES = [
  ' chunked', ' Chunked', ' CHUNKED', '  chunked', '\tchunked', ' chunked ', 'chunked', ' chunked, chunked', ' gzip, chunked', ' chunked, gzip',
  ' chunked;x', ' chunked;q=1', ' identity', ' identity, chunked', ' x-chunked', ' chunk', ' "chunked"', '', ' chunked,', ' ,chunked', ' gzip',
] as const;

/** Mutates the Transfer-Encoding field (adding one if absent); returns what it did. */
export function mutateTransferEncoding(rng: Rng, fields: Field[], bodyLength: number): string {
  let i = find(fields, 'transfer-encoding');
  if (i < 0) {
    fields.push(['Transfer-Encoding', ' chunked']);
    i = fields.length - 1;
  }
  const f = fields[i] as Field;
  const op = rng.pick(['value', 'value', 'value', 'split', 'dup', 'underscore', 'recase', 'space-before-colon', 'with-cl', 'connection', 'drop'] as const);
  switch (op) {
    case 'value':
      f[1] = rng.pick(TE_VALUES);
      break;
    case 'split':
      fields.splice(i, 1, ...(rng.chance(0.7) ? [['Transfer-Encoding', ' gzip'], ['Transfer-Encoding', ' chunked']] : [['Transfer-Encoding', ' chunked'], ['Transfer-Encoding', ' gzip']]) as Field[]);
      break;
    case 'dup':
      insertAt(rng, fields, ['Transfer-Encoding', ' chunked']);
      break;
    case 'underscore':
      f[0] = rng.pick(['Transfer_Encoding', 'transfer_encoding']);
      break;
    case 'recase':
      f[0] = recase(rng, 'Transfer-Encoding');
      break;
    case 'space-before-colon':
      f[0] = `Transfer-Encoding${rng.pick([' ', '\t'])}`;
      break;
    case 'with-cl':
      insertAt(rng, fields, ['Content-Length', ` ${rng.pick([bodyLength, 0, 3, bodyLength + 4])}`]);
      break;
    case 'connection':
      insertAt(rng, fields, ['Connection', rng.pick([' Transfer-Encoding', ' close, Transfer-Encoding', ' keep-alive, transfer-encoding', ' Content-Length, Transfer-Encoding'])]);
      break;
    case 'drop':
      fields.splice(i, 1);
  }
  return `te:${op}`;
}

/** Adds a Connection field listing a header (and the header when it is a hop-by-hop option). */
export function addConnection(rng: Rng, fields: Field[]): string {
  const value = rng.pick([
    'Content-Length', 'close, Content-Length', 'Transfer-Encoding', 'close, Transfer-Encoding', 'Host', 'X-Forwarded-For', 'keep-alive', 'close', 'Upgrade',
    'keep-alive, Upgrade', 'TE', 'Content-Length, Transfer-Encoding', 'keep-alive, X-Fuzz', 'Keep-Alive', 'close, Host', 'x-forwarded-for, close',
  ]);
  insertAt(rng, fields, ['Connection', ` ${value}`]);
  if (value.includes('Upgrade')) insertAt(rng, fields, ['Upgrade', rng.pick([' websocket', ' h2c'])]);
  if (value === 'TE') insertAt(rng, fields, ['TE', ' trailers']);
  if (value.includes('X-Fuzz')) insertAt(rng, fields, ['X-Fuzz', ' 1']);
  if (value.includes('X-Forwarded-For') || value.includes('x-forwarded-for')) insertAt(rng, fields, ['X-Forwarded-For', ' 6.6.6.6']);
  if (value === 'Keep-Alive') insertAt(rng, fields, ['Keep-Alive', ' timeout=5']);
  return `connection:${value}`;
}

/** One generic mutation of the field list: duplicated, folded, padded, re-cased, underscored, odd names and values. */
export function mutateFields(rng: Rng, fields: Field[]): string {
  const op = rng.pick(['dup', 'fold', 'pad-before-colon', 'pad-value', 'recase', 'underscore', 'non-token', 'ctl-value', 'colonless', 'x-underscore', 'empty-value'] as const);
  const i = fields.length === 0 ? -1 : rng.int(0, fields.length - 1);
  const f = fields[i];
  switch (op) {
    case 'dup':
      if (f !== undefined) insertAt(rng, fields, [f[0], f[1]]);
      break;
    case 'fold':
      if (f !== undefined && f[1] !== null) f[1] = `${f[1]}${rng.pick(['\r\n ', '\r\n\t', '\r\n  '])}${rng.pick(['folded', 'chunked', '5', ''])}`;
      break;
    case 'pad-before-colon':
      if (f !== undefined) f[0] = `${f[0]}${rng.pick([' ', '\t', '  '])}`;
      break;
    case 'pad-value':
      if (f !== undefined && f[1] !== null) f[1] = `${rng.pick(['', ' ', '\t', '  ', ' \t'])}${f[1].trim()}${rng.pick(['', ' ', '\t', ' \t '])}`;
      break;
    case 'recase':
      if (f !== undefined) f[0] = recase(rng, f[0]);
      break;
    case 'underscore':
      if (f !== undefined) f[0] = f[0].replace(/-/g, '_');
      break;
    case 'non-token':
      insertAt(rng, fields, [rng.pick(['X Y', 'X@Y', 'X(Y)', 'X\x00Y', 'X\x7fY', 'X\xfcY', '', 'X\tY', 'X/Y', '[X]', 'X"Y', 'X,Y', ' X', 'X\x0bY']), ' v']);
      break;
    case 'ctl-value':
      insertAt(rng, fields, ['X-Value', rng.pick([' a\x01b', ' a\x7fb', ' a\x00b', ' a\x0bb', ' a\xffb', ' a\x1bb', ' a\rb', ' a\nb'])]);
      break;
    case 'colonless':
      insertAt(rng, fields, [rng.pick(['Garbage-Without-Colon', 'GET /x HTTP/1.1', 'Content-Length 5']), null]);
      break;
    case 'x-underscore':
      insertAt(rng, fields, [rng.pick(['X_Forwarded_For', 'X_Forwarded_Host', 'Content_Type']), rng.pick([' 6.6.6.6', ' evil.test', ' text/plain'])]);
      break;
    case 'empty-value':
      insertAt(rng, fields, ['X-Empty', rng.pick(['', ' ', '\t'])]);
  }
  return `field:${op}`;
}

/**
 * A chunked body for `data` (1–3 chunks, the last chunk, trailers, the final CRLF); `mutate`
 * adds chunk-level oddities: sizes with leading zeros, upper-case hex, whitespace, extensions,
 * bare LF, sizes that do not match the data, odd trailers.
 */
export function encodeChunked(rng: Rng, data: string, mutate: boolean): string {
  const parts: string[] = [];
  let rest = data;
  const n = rest.length === 0 ? 0 : rng.int(1, Math.min(3, rest.length));
  for (let k = 0; k < n; k++) {
    const take = k === n - 1 ? rest.length : rng.int(1, rest.length - (n - 1 - k));
    parts.push(rest.slice(0, take));
    rest = rest.slice(take);
  }
  const m = (p: number): boolean => mutate && rng.chance(p);
  let out = '';
  for (const part of parts) {
    let size = part.length;
    if (m(0.08)) size += rng.pick([1, -1, 3]);
    let hex = Math.max(0, size).toString(16);
    if (m(0.15)) hex = hex.toUpperCase();
    if (m(0.08)) hex = `${'0'.repeat(rng.int(1, 3))}${hex}`;
    if (m(0.03)) hex = rng.pick(['fffffffffffffffff', '-1', '0x5', '+5', '']);
    let line = hex;
    if (m(0.08)) line += rng.pick([' ', '\t', '  ']);
    if (m(0.12)) line += rng.pick([';a=b', ';', ';a="b c"', '; a=b', ';a="\\"x"', ';a=', ';a=b;c', ';\x01', ';a=b c']);
    out += `${line}${m(0.05) ? '\n' : '\r\n'}${part}${m(0.05) ? rng.pick(['\n', '', '\r', 'xx\r\n']) : '\r\n'}`;
  }
  let last = '0';
  if (m(0.06)) last = rng.pick(['000', '0;ext=1', '0 ', '0;']);
  out += `${last}${m(0.03) ? '\n' : '\r\n'}`;
  if (m(0.25)) {
    out += rng.pick(['X-Trailer: v\r\n', 'bad\r\n', 'X-T: a\r\n b\r\n', 'Content-Length: 5\r\n', 'Transfer-Encoding: chunked\r\n', 'X-T : v\r\n', 'X-T: v\n', 'X_T: v\r\n', 'Host: evil.test\r\n']);
  } else if (mutate && rng.chance(0.08)) out += 'X-Trailer: v\r\n';
  out += m(0.04) ? rng.pick(['\n', '', 'GET']) : '\r\n';
  return out;
}

/** Line-ending styles of a head. */
export type LineEnding = 'crlf' | 'lf' | 'lf-crlf-end' | 'crlf-lf-end' | 'mixed' | 'bare-cr' | 'cr';

/** A random line-ending style: almost always CRLF. */
export function lineEnding(rng: Rng): LineEnding {
  return rng.weighted<LineEnding>([
    [90, 'crlf'],
    [2, 'lf'],
    [2, 'lf-crlf-end'],
    [2, 'crlf-lf-end'],
    [2, 'mixed'],
    [1.5, 'bare-cr'],
    [0.5, 'cr'],
  ]);
}

/** A head: the start line, the fields and the blank line, with the given line endings. */
export function serializeHead(rng: Rng, startLine: string, fields: readonly Field[], style: LineEnding): string {
  const lines = [startLine, ...fields.map(([n, v]) => (v === null ? n : `${n}:${v}`))];
  const odd = rng.int(0, lines.length - 1);
  const eol = (k: number): string => {
    switch (style) {
      case 'lf':
      case 'lf-crlf-end':
        return '\n';
      case 'mixed':
        return rng.chance(0.5) ? '\n' : '\r\n';
      case 'bare-cr':
        return k === odd ? '\r' : '\r\n';
      case 'cr':
        return '\r';
      default:
        return '\r\n';
    }
  };
  const end = style === 'lf' ? '\n' : style === 'crlf-lf-end' ? '\n' : style === 'cr' ? '\r' : '\r\n';
  return `${lines.map((line, k) => `${line}${eol(k)}`).join('')}${end}`;
}

/** Offsets at which a message is written in separate writes: often none, sometimes inside CRLF or at every byte. */
export function splitPoints(rng: Rng, bytes: string): number[] {
  const len = bytes.length;
  if (len < 2) return [];
  const shape = rng.weighted([
    [50, 'none'],
    [25, 'one'],
    [17, 'few'],
    [6, 'crlf'],
    [2, 'every'],
  ] as const);
  if (shape === 'none') return [];
  if (shape === 'every' && len <= 160) return Array.from({ length: len - 1 }, (_, k) => k + 1);
  const points = new Set<number>();
  if (shape === 'crlf') {
    for (let k = bytes.indexOf('\r\n'); k >= 0; k = bytes.indexOf('\r\n', k + 1)) if (rng.chance(0.4)) points.add(k + 1);
    const head = bytes.indexOf('\r\n\r\n');
    if (head >= 0) points.add(head + 4 < len ? head + 4 : head + 2);
  }
  const count = shape === 'one' ? 1 : shape === 'few' ? rng.int(2, 4) : rng.int(0, 1);
  for (let k = 0; k < count; k++) points.add(rng.int(1, len - 1));
  return [...points].filter((p) => p > 0 && p < len).sort((a, b) => a - b);
}

/** How long to wait between writes: usually no pause, sometimes a few ms. */
export function pauseMs(rng: Rng): number {
  return rng.chance(0.15) ? rng.int(1, 5) : 0;
}

/** How much each kind of mutation weighs when `mutate` picks one. */
export interface MutationWeights {
  te: number;
  cl: number;
  connection: number;
  fields: number;
}

/**
 * Applies `count` mutations picked by `weights` to `fields` (naming each in `ops`), then picks the
 * line ending: plain CRLF when nothing was mutated.
 */
export function mutate(rng: Rng, fields: Field[], ops: string[], count: number, weights: MutationWeights, dataLength: number, bodyLength: number): LineEnding {
  for (let k = 0; k < count; k++) {
    const kind = rng.weighted([[weights.te, 'te'], [weights.cl, 'cl'], [weights.connection, 'connection'], [weights.fields, 'fields']] as const);
    if (kind === 'te') ops.push(mutateTransferEncoding(rng, fields, dataLength));
    else if (kind === 'cl') ops.push(mutateContentLength(rng, fields, bodyLength));
    else if (kind === 'connection') ops.push(addConnection(rng, fields));
    else ops.push(mutateFields(rng, fields));
  }
  const style = count > 0 ? lineEnding(rng) : 'crlf';
  if (style !== 'crlf') ops.push(`eol:${style}`);
  return style;
}
