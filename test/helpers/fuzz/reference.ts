/**
 * The fuzzer's strict reference: Node's own llhttp, through `node:http`, in process and without
 * sockets. Requests go through one default `http.createServer()` (strict parser, Host required
 * for HTTP/1.1) fed a fake Duplex; a response goes through `http.request` whose connection is a
 * fake Duplex. Every chunk of a body is recorded synchronously as llhttp hands it over, so what a
 * parse error cuts short is still seen exactly.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';

/** One request as llhttp read it (its head was complete). */
export interface ParsedRequest {
  method: string;
  url: string;
  /** `1.1`, `1.0` or `0.9`. */
  version: string;
  rawHeaders: string[];
  body: Buffer;
  /** The whole message, body included, was read. */
  complete: boolean;
  /** The connection may carry another request after this one. */
  keepAlive: boolean;
  /** It asked to switch protocols (Connection: upgrade with Upgrade). */
  upgrade: boolean;
}

/** Where a parse stopped: `bytes` offset is that of the chunk fed, -1 when not known. */
export interface ParseError {
  code: string;
  reason: string;
  offset: number;
}

/**
 * How a request stream ended: every message complete (`clean`), in the middle of one at EOF
 * (`incomplete`), on a parse error (`error`), or at a CONNECT (`tunnel`: the rest is not HTTP).
 */
export type RequestEnd = 'clean' | 'incomplete' | 'error' | 'tunnel';

/** The reference reading of a client's bytes. */
export interface RequestParse {
  messages: ParsedRequest[];
  end: RequestEnd;
  error?: ParseError;
}

const RECORDER = Symbol('fuzz recorder');

interface Recorder {
  incoming: RecordingMessage[];
  error?: ParseError;
  connect: boolean;
  /** An upgrade request, and the bytes after its head. */
  upgrade?: { message: http.IncomingMessage; rest: Buffer };
}

type RecordedSocket = Duplex & { [RECORDER]?: Recorder };

/** An IncomingMessage that keeps its body chunks as llhttp pushes them. */
class RecordingMessage extends http.IncomingMessage {
  chunks: Buffer[] = [];

  constructor(socket: Socket) {
    super(socket);
    (socket as RecordedSocket)[RECORDER]?.incoming.push(this);
  }

  override push(chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk !== null && chunk !== undefined) this.chunks.push(Buffer.from(chunk as Uint8Array));
    return super.push(chunk, encoding);
  }
}

let server: http.Server | undefined;

function referenceServer(): http.Server {
  if (server !== undefined) return server;
  const s = http.createServer({
    IncomingMessage: RecordingMessage as typeof http.IncomingMessage,
    insecureHTTPParser: false,
    // Taken (see parseRequests: llhttp reads nothing after an upgrade request, not even errors).
    shouldUpgradeCallback: () => true,
  });
  s.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    req.on('error', () => {});
    res.on('error', () => {});
    req.on('end', () => res.end());
    req.resume();
  });
  s.on('clientError', (err: NodeJS.ErrnoException & { reason?: string; bytesParsed?: number }, socket: RecordedSocket) => {
    const rec = socket[RECORDER];
    if (rec !== undefined && rec.error === undefined) rec.error = { code: err.code ?? 'ERROR', reason: err.reason ?? err.message, offset: err.bytesParsed ?? -1 };
    socket.destroy();
  });
  s.on('upgrade', (req: http.IncomingMessage, socket: RecordedSocket, rest: Buffer) => {
    const rec = socket[RECORDER];
    if (rec !== undefined) rec.upgrade = { message: req, rest: Buffer.from(rest) };
    socket.destroy();
  });
  s.on('connect', (_req: http.IncomingMessage, socket: RecordedSocket) => {
    const rec = socket[RECORDER];
    if (rec !== undefined) rec.connect = true;
    socket.destroy();
  });
  server = s;
  return s;
}

/** A Duplex that swallows writes: the reference's answers go nowhere. */
function sink(onDestroy?: () => void): Duplex {
  return new Duplex({
    read() {},
    write(_chunk, _encoding, callback) {
      callback();
    },
    final(callback) {
      callback();
    },
    destroy(error, callback) {
      onDestroy?.();
      callback(error);
    },
  });
}

function keepAliveOf(m: http.IncomingMessage): boolean {
  const tokens = String(m.headers.connection ?? '')
    .toLowerCase()
    .split(',')
    .map((s) => s.trim());
  if (tokens.includes('close')) return false;
  return m.httpVersion === '1.1' || tokens.includes('keep-alive');
}

function runServerParse(bytes: Buffer): Promise<Recorder> {
  return new Promise((resolve) => {
    const rec: Recorder = { incoming: [], connect: false };
    const socket = sink() as RecordedSocket;
    socket[RECORDER] = rec;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      resolve(rec);
    };
    referenceServer().emit('connection', socket);
    // Registered after the server's own listeners: they have run (EOF checked) when these fire.
    socket.on('end', finish);
    socket.on('close', finish);
    socket.on('error', () => {});
    if (bytes.length > 0) socket.push(bytes);
    socket.push(null);
  });
}

/**
 * Parses `bytes` as what a client sent on one connection, then EOF. Stops (as a strict server
 * does) at an HTTP/1.1 request without Host (`HOST_MISSING`) and at a request line without an
 * HTTP version, which llhttp takes for HTTP/0.9 (`NO_VERSION`: RFC 9112 has no such request),
 * also while such a head is still unterminated, unless `bareLines` is false.
 */
export async function parseRequests(bytes: Buffer, options: { bareLines?: boolean } = {}): Promise<RequestParse> {
  const result = await parseRequestsOnce(bytes, options);
  // llhttp quirk: a tab after the final `chunked` makes it refuse the request (HTAB is OWS).
  for (let tries = 0, b = bytes; result.error?.code === 'HPE_INVALID_TRANSFER_ENCODING' && tries < 4; tries++) {
    const end = result.error.offset;
    const start = Math.max(0, b.lastIndexOf('\r\n\r\n', Math.max(0, end - 5), 'latin1'));
    const fixed = untabTransferEncoding(b, start, end);
    if (fixed === b) break;
    b = fixed;
    Object.assign(result, { error: undefined }, await parseRequestsOnce(b, options));
  }
  return result;
}

/**
 * `buf` with the tabs ending Transfer-Encoding values in `[start, end)` turned to spaces (llhttp
 * reads `chunked<TAB>` as some other coding; RFC 9110 §5.5 excludes trailing OWS from a value),
 * or `buf` itself when there is none.
 */
export function untabTransferEncoding(buf: Buffer, start: number, end: number): Buffer {
  const text = buf.toString('latin1', start, end);
  const fixed = text.replace(/^(transfer-encoding:[^\r\n]*?)([ \t]*\t[ \t]*)(?=\r?\n)/gim, (_m, head: string, ws: string) => head + ' '.repeat(ws.length));
  if (fixed === text) return buf;
  return Buffer.concat([buf.subarray(0, start), Buffer.from(fixed, 'latin1'), buf.subarray(end)]);
}

async function parseRequestsOnce(bytes: Buffer, options: { bareLines?: boolean }): Promise<RequestParse> {
  const rec = await runServerParse(bytes);
  const messages: ParsedRequest[] = [];
  for (const m of rec.incoming) {
    const version = `${m.httpVersionMajor}.${m.httpVersionMinor}`;
    if (version === '0.9') return { messages, end: 'error', error: { code: 'NO_VERSION', reason: 'request line without an HTTP version', offset: -1 } };
    if (version === '1.1' && m.method !== 'CONNECT' && m.headers.host === undefined) {
      return { messages, end: 'error', error: { code: 'HOST_MISSING', reason: 'HTTP/1.1 request without Host', offset: -1 } };
    }
    const connect = m.method === 'CONNECT';
    messages.push({
      method: m.method ?? '',
      url: m.url ?? '',
      version,
      rawHeaders: m.rawHeaders,
      body: Buffer.concat(m.chunks),
      complete: m.complete || connect,
      keepAlive: !connect && keepAliveOf(m),
      upgrade: false,
    });
    if (connect && rec.connect) return { messages, end: 'tunnel' };
    if (rec.upgrade?.message === m) return declinedUpgrade(messages, rec.upgrade.rest, bytes.length, options);
  }
  const last = messages[messages.length - 1];
  if (rec.error !== undefined) {
    if (rec.error.code !== 'HPE_INVALID_EOF_STATE') return { messages, end: 'error', error: rec.error };
    if ((last === undefined || last.complete) && options.bareLines !== false) {
      // In the middle of a head: is its request line complete without a version? (Ending the
      // head makes it HTTP/0.9 for llhttp, and no way of going on gives it a version.)
      const probe = await parseRequestsOnce(Buffer.concat([bytes, Buffer.from('\r\n\r\n')]), { bareLines: false });
      let bare = probe.error?.code === 'NO_VERSION' && probe.messages.length === messages.length;
      for (const more of ['HTTP/1.0', ' HTTP/1.0', 'x HTTP/1.0']) {
        if (!bare) break;
        const versioned = await parseRequestsOnce(Buffer.concat([bytes, Buffer.from(`${more}\r\n\r\n`)]), { bareLines: false });
        if (versioned.messages[messages.length]?.version === '1.0') bare = false;
      }
      if (bare) {
        return { messages, end: 'error', error: { code: 'NO_VERSION', reason: 'request line without an HTTP version', offset: -1 } };
      }
    }
    return { messages, end: 'incomplete', error: rec.error };
  }
  return { messages, end: last !== undefined && !last.complete ? 'incomplete' : 'clean' };
}

/**
 * Reads on past an upgrade request (the last of `messages`) as a server that declines it does:
 * its body, framed by its own framing fields, then the requests after it. llhttp stops at such a
 * request (and hides the errors after it), so what follows its head goes through a stand-in head
 * with the same framing fields.
 */
async function declinedUpgrade(messages: ParsedRequest[], rest: Buffer, total: number, options: { bareLines?: boolean }): Promise<RequestParse> {
  const m = messages[messages.length - 1] as ParsedRequest;
  let fields = '';
  for (let i = 0; i + 1 < m.rawHeaders.length; i += 2) {
    const name = (m.rawHeaders[i] as string).toLowerCase();
    let value = m.rawHeaders[i + 1] as string;
    if (name === 'connection') value = value.split(',').filter((t) => t.trim().toLowerCase() !== 'upgrade').join(',') || 'keep-alive';
    if (name === 'content-length' || name === 'transfer-encoding' || name === 'connection') fields += `${m.rawHeaders[i]}: ${value}\r\n`;
  }
  const head = Buffer.from(`POST /upgrade-body HTTP/${m.version}\r\nHost: fuzz.test\r\n${fields}\r\n`, 'latin1');
  const after = await parseRequests(Buffer.concat([head, rest]), options);
  const [body, ...next] = after.messages;
  m.upgrade = true;
  if (body === undefined) {
    m.complete = false;
    m.keepAlive = false;
  } else {
    m.body = body.body;
    m.complete = body.complete;
    m.keepAlive = body.keepAlive;
  }
  const shift = total - rest.length - head.length;
  const error = after.error === undefined ? {} : { error: { ...after.error, offset: after.error.offset < 0 ? -1 : after.error.offset + shift } };
  return { messages: [...messages, ...next], end: after.end, ...error };
}

/** The reference reading of an upstream's final response. */
export interface ParsedResponse {
  status: number;
  rawHeaders: string[];
  body: Buffer;
  complete: boolean;
}

/**
 * How a response ended: read whole (`complete`), still waiting for bytes (`incomplete`), cut by
 * EOF (`truncated`), or refused by the parser (`error`).
 */
export type ResponseEnd = 'complete' | 'incomplete' | 'truncated' | 'error';

/** What llhttp made of an upstream's response bytes. */
export interface ResponseParse {
  /** Status codes of the 1xx responses before the final one. */
  interim: number[];
  final?: ParsedResponse;
  end: ResponseEnd;
  error?: ParseError;
  /** Bytes followed the complete final response (another response, or garbage). */
  extra: boolean;
  /** Responses read: interim, final, and one more when another response followed. */
  count: number;
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Parses `bytes` as an upstream's answer to a `method` request (EOF after them when `eof`).
 */
export async function parseResponse(original: Buffer, method: string, eof: boolean): Promise<ResponseParse> {
  // The llhttp quirk of parseRequests, in the heads of the 1xx responses and the final one.
  let bytes = original;
  for (let pos = 0; pos < bytes.length && bytes.toString('latin1', pos, pos + 5) === 'HTTP/'; ) {
    const end = bytes.indexOf('\r\n\r\n', pos, 'latin1');
    if (end < 0) break;
    bytes = untabTransferEncoding(bytes, pos, end + 2);
    if (!/^HTTP\/1\.[01] 1\d\d/.test(bytes.toString('latin1', pos, pos + 12))) break;
    pos = end + 4;
  }
  const interim: number[] = [];
  let final: ParsedResponse | undefined;
  let error: ParseError | undefined;
  let extra = false;
  let pushing = false;
  let settled = false;
  const socket = sink(() => {
    // A destroy while llhttp runs on our bytes after a complete response: a second response.
    if (pushing && final?.complete === true) extra = true;
  });
  socket.on('error', () => {});
  socket.on('close', () => (settled = true));
  const req = http.request({ method, host: 'fuzz.test', path: '/', createConnection: () => socket as unknown as Socket });
  req.on('information', (info: http.InformationEvent) => interim.push(info.statusCode));
  req.on('response', (res: http.IncomingMessage) => {
    const response: ParsedResponse = { status: res.statusCode ?? 0, rawHeaders: res.rawHeaders, body: Buffer.alloc(0), complete: false };
    final = response;
    const chunks: Buffer[] = [];
    const push = res.push.bind(res);
    res.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
      if (chunk !== null && chunk !== undefined) chunks.push(Buffer.from(chunk as Uint8Array));
      else response.complete = true;
      response.body = Buffer.concat(chunks);
      return push(chunk, encoding);
    };
    res.on('error', () => {});
    res.on('end', () => (settled = true));
    res.resume();
  });
  req.on('error', (err: NodeJS.ErrnoException & { reason?: string; bytesParsed?: number }) => {
    settled = true;
    if (final?.complete === true) extra = true;
    else if (err.code?.startsWith('HPE_') === true && err.code !== 'HPE_INVALID_EOF_STATE') error ??= { code: err.code, reason: err.reason ?? err.message, offset: err.bytesParsed ?? -1 };
  });
  req.end();
  await new Promise<void>((resolve) => (req.socket !== null ? resolve() : req.once('socket', () => resolve())));
  await turn();
  pushing = true;
  if (bytes.length > 0) socket.push(bytes);
  pushing = false;
  if (eof) socket.push(null);
  for (let i = 0; i < 4 || (!settled && i < 8); i++) await turn();
  if (!socket.destroyed) socket.destroy();
  const done = final as ParsedResponse | undefined;
  let end: ResponseEnd;
  if (error !== undefined && done?.complete !== true) end = 'error';
  else if (done?.complete === true) end = 'complete';
  else end = eof ? 'truncated' : 'incomplete';
  return { interim, ...(done === undefined ? {} : { final: done }), end, ...(error === undefined || end !== 'error' ? {} : { error }), extra, count: interim.length + (done === undefined ? 0 : 1) + (extra ? 1 : 0) };
}
