/**
 * The proxy's HTTP/1.x head parsing and chunked framing (pure): what is forwarded, how bodies are
 * delimited, and the request-smuggling shapes that are refused.
 */
import test from 'ava';
import { ChunkedDecoder, encodeChunks, joinChunks } from '../proxy/chunked.ts';
import { checkPartialRequestHead, clientHead, headText, parseRequestHead, parseResponseHead } from '../proxy/http-head.ts';
import type { HeadError, RequestHead, ResponseHead } from '../proxy/http-head.ts';

const FWD = { clientIp: '192.0.2.7', proto: 'http' };

function req(lines: string[]): RequestHead {
  const head = parseRequestHead(lines.join('\r\n'), FWD);
  if ('error' in head) throw new Error(`refused: ${head.error} ${head.reason}`);
  return head;
}

function refused(lines: string[]): HeadError {
  const head = parseRequestHead(lines.join('\r\n'), FWD);
  if (!('error' in head)) throw new Error(`accepted: ${JSON.stringify(head.upstreamHead)}`);
  return head;
}

function res(lines: string[], method = 'GET'): ResponseHead {
  const head = parseResponseHead(lines.join('\r\n'), method);
  if ('error' in head) throw new Error(`refused: ${head.reason}`);
  return head;
}

test('a plain GET goes upstream with X-Forwarded-* added and Host kept as sent', (t) => {
  const head = req(['GET /a?b=1 HTTP/1.1', 'Host: App.Example:8080', 'Accept: */*']);
  t.is(head.method, 'GET');
  t.is(head.host, 'App.Example:8080');
  t.true(head.keepAlive);
  t.deepEqual(head.framing, { kind: 'none' });
  t.is(
    head.upstreamHead,
    'GET /a?b=1 HTTP/1.1\r\nHost: App.Example:8080\r\nAccept: */*\r\nX-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: App.Example:8080\r\n\r\n',
  );
});

test('hop-by-hop fields and those named in Connection are dropped; X-Forwarded-For is appended to', (t) => {
  const head = req([
    'POST /x HTTP/1.1',
    'host: a.test',
    'Connection: keep-alive, X-Secret',
    'X-Secret: 1',
    'Keep-Alive: timeout=5',
    'TE: trailers',
    'Proxy-Authorization: Basic eA==',
    'X-Forwarded-For: 203.0.113.1',
    'x-forwarded-for: 203.0.113.2',
    'X-Forwarded-Proto: https',
    'X-Forwarded-Host: evil.test',
    'Content-Length: 3',
    'X-Kept: yes',
  ]);
  t.deepEqual(head.framing, { kind: 'length', length: 3 });
  t.is(
    head.upstreamHead,
    'POST /x HTTP/1.1\r\nhost: a.test\r\nX-Kept: yes\r\nContent-Length: 3\r\n' +
      'X-Forwarded-For: 203.0.113.1, 203.0.113.2, 192.0.2.7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: a.test\r\n\r\n',
  );
});

test('absolute-form targets are routed by their authority and sent in origin form', (t) => {
  const head = req(['GET http://b.test:81/p?q HTTP/1.1', 'Host: a.test']);
  t.is(head.host, 'b.test:81');
  t.true(head.upstreamHead.startsWith('GET /p?q HTTP/1.1\r\nHost: b.test:81\r\n'));
  t.false(head.upstreamHead.includes('a.test'));
});

test('HTTP/1.0 requests go upstream as HTTP/1.0 with Connection: close; Connection: close ends keep-alive', (t) => {
  const old = req(['GET / HTTP/1.0', 'Host: a.test', 'Connection: keep-alive']);
  t.false(old.keepAlive);
  t.true(old.upstreamHead.startsWith('GET / HTTP/1.0\r\n'));
  t.true(old.upstreamHead.includes('\r\nConnection: close\r\n'));
  t.false(req(['GET / HTTP/1.1', 'Host: a.test', 'Connection: close']).keepAlive);
});

test('an upgrade keeps Connection: Upgrade and Upgrade; an Upgrade header alone is dropped', (t) => {
  const ws = req(['GET /chat HTTP/1.1', 'Host: a.test', 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Key: x']);
  t.is(ws.upgrade, 'websocket');
  t.true(ws.upstreamHead.includes('\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n'));
  const plain = req(['GET / HTTP/1.1', 'Host: a.test', 'Upgrade: h2c']);
  t.is(plain.upgrade, undefined);
  t.false(plain.upstreamHead.toLowerCase().includes('upgrade'));
});

test('request bodies: Content-Length (once, digits only), chunked, none', (t) => {
  t.deepEqual(req(['PUT / HTTP/1.1', 'Host: a', 'Content-Length: 0']).framing, { kind: 'none' });
  t.deepEqual(req(['PUT / HTTP/1.1', 'Host: a', 'Content-Length:  05 ']).framing, { kind: 'length', length: 5 });
  // Repeated, even with the same value, or as a list: refused (Node's parser and nginx refuse them).
  t.is(refused(['PUT / HTTP/1.1', 'Host: a', 'Content-Length: 5', 'content-length: 5']).error, 400);
  t.is(refused(['PUT / HTTP/1.1', 'Host: a', 'Content-Length: 5, 5']).error, 400);
  t.deepEqual(req(['PUT / HTTP/1.1', 'Host: a', 'Transfer-Encoding: Chunked']).framing, { kind: 'chunked' });
});

test('request smuggling shapes and malformed heads are refused with 400 (or 501/505/431)', (t) => {
  const cases: [string[], number][] = [
    [['POST / HTTP/1.1', 'Host: a', 'Content-Length: 5', 'Transfer-Encoding: chunked'], 400],
    [['POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked', 'Content-Length: 5'], 400],
    [['POST / HTTP/1.1', 'Host: a', 'Content-Length: 5', 'Content-Length: 6'], 400],
    [['POST / HTTP/1.1', 'Host: a', 'Content-Length: 5, 6'], 400],
    [['POST / HTTP/1.1', 'Host: a', 'Content-Length: -1'], 400],
    [['POST / HTTP/1.1', 'Host: a', 'Content-Length: 0x10'], 400],
    [['POST / HTTP/1.1', 'Host: a', 'Content-Length: 1e3'], 400],
    [['POST / HTTP/1.1', 'Host: a', 'Content-Length: 9999999999999999'], 400],
    [['POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding: gzip, chunked'], 501],
    [['POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked, identity'], 501],
    [['POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding: xchunked'], 501],
    [['POST / HTTP/1.0', 'Host: a', 'Transfer-Encoding: chunked'], 400],
    [['POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding : chunked'], 400],
    [['POST / HTTP/1.1', 'Host: a', ' Transfer-Encoding: chunked'], 400],
    [['POST / HTTP/1.1', 'Host: a', 'X-A: 1', ' folded'], 400],
    [['POST / HTTP/1.1', 'Host: a', 'X-A: 1\rTransfer-Encoding: chunked'], 400],
    [['POST / HTTP/1.1', 'Host: a', 'X-A: 1\nTransfer-Encoding: chunked'], 400],
    [['GET / HTTP/1.1', 'Host: a', 'X-A: a\u0000b'], 400],
    [['GET / HTTP/1.1', 'Host: a', 'Bad[Name]: 1'], 400],
    [['GET / HTTP/1.1', 'Host: a', ': no name'], 400],
    [['GET / HTTP/1.1'], 400],
    [['GET / HTTP/1.1', 'Host: a', 'Host: b'], 400],
    [['GET / HTTP/1.1', 'Host: a b'], 400],
    [['GET / HTTP/1.1', 'Host: a/b'], 400],
    [['GET / HTTP/1.1', 'Host: user@a'], 400],
    [['GET / HTTP/1.1', 'Host:'], 400],
    [['CONNECT a.test:443 HTTP/1.1', 'Host: a.test:443'], 405],
    [['get / HTTP/1.1', 'Host: a'], 501],
    [['BREW / HTTP/1.1', 'Host: a'], 501],
    [['GET http://a.test/ HTTP/1.1'], 400],
    [['TRACE / HTTP/1.1', 'Host: a'], 405],
    [['POST / HTTP/1.1', 'Host: a', 'Connection: Content-Length', 'Content-Length: 5'], 400],
    [['POST / HTTP/1.1', 'Host: a', 'Connection: close, content-length', 'Content-Length: 5'], 400],
    [['POST / HTTP/1.1', 'Host: a', 'Connection: Transfer-Encoding', 'Transfer-Encoding: chunked'], 400],
    [['GET / HTTP/1.1', 'Host: a', 'Connection: host'], 400],
    [['POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked, chunked'], 501],
    [['POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'], 501],
    [['GET http://user:pw@a.test/ HTTP/1.1', 'Host: a.test'], 400],
    [['GET /a b HTTP/1.1', 'Host: a'], 400],
    [['GET  / HTTP/1.1', 'Host: a'], 400],
    [['GET / HTTP/1.1 ', 'Host: a'], 400],
    [['G(T / HTTP/1.1', 'Host: a'], 400],
    [['GET /\u00e9 HTTP/1.1', 'Host: a'], 400],
    [['GET / HTTP/2.0', 'Host: a'], 505],
    [['GET / HTTP/1.2', 'Host: a'], 505],
    [['GET / http/1.1', 'Host: a'], 400],
    [['GET / HTTP/1.1', 'Host: a', ...Array.from({ length: 300 }, (_, i) => `X-${i}: 1`)], 431],
  ];
  for (const [lines, status] of cases) t.is(refused(lines).error, status, JSON.stringify(lines.slice(0, 4)));
});

test('framing is re-written by the proxy: one plain Content-Length or Transfer-Encoding: chunked, never the client\'s fields', (t) => {
  const listed = req(['POST / HTTP/1.1', 'Host: a', 'content-length:\t005 ']);
  t.deepEqual(listed.framing, { kind: 'length', length: 5 });
  t.is(listed.upstreamHead.match(/content-length/gi)?.length, 1);
  t.true(listed.upstreamHead.includes('\r\nContent-Length: 5\r\n'));
  const tab = req(['POST / HTTP/1.1', 'Host: a', 'Transfer-Encoding:\tChunked']);
  t.deepEqual(tab.framing, { kind: 'chunked' });
  t.true(tab.upstreamHead.includes('\r\nTransfer-Encoding: chunked\r\n'));
  t.false(tab.upstreamHead.includes('\t'));
  const zero = req(['POST / HTTP/1.1', 'Host: a', 'Content-Length: 000']);
  t.true(zero.upstreamHead.includes('\r\nContent-Length: 0\r\n'));
  // Names that differ from a framing or forwarding field only by `_` are dropped.
  const confusable = req(['GET / HTTP/1.1', 'Host: a', 'Content_Length: 40', 'Transfer_Encoding: chunked', 'X_Forwarded_For: 6.6.6.6', 'X_Other: kept']);
  t.deepEqual(confusable.framing, { kind: 'none' });
  t.false(/content_length|transfer_encoding|x_forwarded_for/i.test(confusable.upstreamHead));
  t.true(confusable.upstreamHead.includes('\r\nX_Other: kept\r\n'));
  // Connection may still name other fields: they are dropped.
  t.false(req(['GET / HTTP/1.1', 'Host: a', 'Connection: X-Private', 'X-Private: 1']).upstreamHead.includes('X-Private'));
});

test('absolute-form targets keep their path exactly as sent (no dot-segment removal)', (t) => {
  const head = req(['GET http://a.test/a/%2e%2e/b/../c?x=%2F HTTP/1.1', 'Host: a.test']);
  t.is(head.target, '/a/%2e%2e/b/../c?x=%2F');
  t.is(req(['GET http://a.test HTTP/1.1', 'Host: a.test']).target, '/');
  t.is(req(['GET http://a.test?q HTTP/1.1', 'Host: a.test']).target, '/?q');
  t.is(refused(['GET http://u@a.test/ HTTP/1.1', 'Host: a.test']).error, 400);
});

test('an unfinished head is refused at once when it can no longer become valid', (t) => {
  const check = (text: string) => checkPartialRequestHead(text, 0);
  t.deepEqual(check('GET /x\r\n'), { error: 400, reason: 'malformed request line' });
  t.is((check('GET / HTTP/1.1\nHost: a\n\r\n') as { error: number }).error, 400);
  t.is((check('GET / HTTP/1.1\r\nHost: a\n') as { error: number }).error, 400);
  t.is((check('GET / HTTP/1.1\r\nHost: a\rX') as { error: number }).error, 400);
  t.is((check('GET / HTTP/1.1\r\n folded: 1\r\n') as { error: number }).error, 400);
  t.is((check('GET / HTTP/2.0\r\n') as { error: number }).error, 505);
  t.is(check('GET / HTTP/1.1\r\nHost: a\r'), 16);
  t.is(check('GET / HTTP/1.1\r\nHost: a\r\nX-Y: partial'), 25);
  t.is(check('GET /inco'), 0);
  t.is(check('G'), 0);
  t.is(check('GET / HTTP/1.'), 0);
  // The line being read is checked too: a bad character, an unknown method, a fold.
  t.is((check('GET /\u00fc HTT') as { error: number }).error, 400);
  t.is((check('GEX') as { error: number }).error, 501);
  t.is((check('GET a HTTP/1') as { error: number }).error, 400);
  t.is(check('POST / HTTP/1.1\r\nTransfer-Encoding: chun'), 17);
  // A line whose CR came and whose LF has not yet is fine, framing fields too.
  t.is(check('POST / HTTP/1.1\r\nContent-Length: 5\r'), 17);
  t.is(check('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r'), 17);
  t.is(check('GET / HTTP/1.1\r'), 0);
  // A line whose CR has come is checked as complete: only its LF may follow.
  t.is((check('GET / HTTP/1.1\r\nGarbage-Without-Colon\r') as { error: number }).error, 400);
  t.is((check('GET /x\r') as { error: number }).error, 400);
  t.is((check('POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r') as { error: number }).error, 400);
  t.is(check('GET / HTTP/1.1\r\nHost: a\r\n\r'), 25);
  // A long line's start is checked on its first read, whatever its length.
  t.is((check(`get /${'x'.repeat(3000)}`) as { error: number }).error, 501);
  t.is((check(`GET  /${'x'.repeat(3000)}`) as { error: number }).error, 400);
  t.is((check(`GET / HTTP/1.1\r\nX Y: ${'x'.repeat(3000)}`) as { error: number }).error, 400);
  t.is(check(`GET /${'x'.repeat(3000)}`), 0);
  t.is((check('POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chu') as { error: number }).error, 501);
  t.is((check('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: c') as { error: number }).error, 501);
  t.is((check('POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n') as { error: number }).error, 501);
  t.is((check('POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding:') as { error: number }).error, 400);
  t.is((check('POST / HTTP/1.1\r\nContent-Length: 0x') as { error: number }).error, 400);
  t.is((check('GET a') as { error: number }).error, 400);
  t.is(check('GET htt'), 0);
  t.is(check('GET HTTPS://a'), 0);
  t.is((check('GET httpx') as { error: number }).error, 400);
  t.is((check('GET ** HTTP/1.1\r\n') as { error: number }).error, 400);
  t.is((check('FOO / HTTP/1.1\r\n') as { error: number }).error, 501);
  t.is((check('GET / HTTP/1.1 x') as { error: number }).error, 400);
  t.is((check('GET / HTTP/1.1\r\nX Y') as { error: number }).error, 400);
  t.is((check('GET / HTTP/1.1\r\n\tfold') as { error: number }).error, 400);
  t.is((check('GET / HTTP/1.1\r\nX: a\u0001') as { error: number }).error, 400);
  // From a later offset, only what follows is checked.
  t.is(checkPartialRequestHead('X-Y: 1\r\nZ', 25), 33);
});

test('responses: framing rewritten unless one plain Content-Length; HTTP/1.0 clients get no chunked coding', (t) => {
  t.false(res(['HTTP/1.1 200 OK', 'Content-Length: 12']).needsRewrite);
  for (const lines of [
    ['HTTP/1.1 200 OK', 'Content-Length: 012'],
    ['HTTP/1.1 200 OK', 'Content-Length: 12 '],
    ['HTTP/1.1 200 OK', 'Content-Length: 12', 'Content_Length: 3'],
  ]) {
    const head = res(lines);
    t.true(head.needsRewrite, JSON.stringify(lines));
    t.deepEqual(head.framing, { kind: 'length', length: 12 });
    t.is(clientHead(head, false), 'HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n', JSON.stringify(lines));
  }
  const chunked = res(['HTTP/1.1 200 OK', 'Transfer-Encoding:  chunked', 'X: 1']);
  t.is(clientHead(chunked, false), 'HTTP/1.1 200 OK\r\nX: 1\r\nTransfer-Encoding: chunked\r\n\r\n');
  t.is(clientHead(chunked, false, true), 'HTTP/1.1 200 OK\r\nX: 1\r\nConnection: close\r\n\r\n');
  const head = res(['HTTP/1.1 200 OK', 'Content-Length: 7', 'Transfer-Encoding: chunked'], 'HEAD');
  t.is(clientHead(head, false), 'HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n');
  t.is(clientHead(res(['HTTP/1.1 204 No Content', 'Content-Length: 7']), false), 'HTTP/1.1 204 No Content\r\n\r\n');
});

test('response framing: length, chunked (final coding), until close; no body for HEAD, 1xx, 204, 304', (t) => {
  t.deepEqual(res(['HTTP/1.1 200 OK', 'Content-Length: 12']).framing, { kind: 'length', length: 12 });
  t.deepEqual(res(['HTTP/1.1 200 OK', 'Transfer-Encoding: Chunked']).framing, { kind: 'chunked' });
  t.deepEqual(res(['HTTP/1.1 200 OK']).framing, { kind: 'close' });
  t.deepEqual(res(['HTTP/1.1 200 OK', 'Content-Length: 12'], 'HEAD').framing, { kind: 'none' });
  for (const status of [100, 103, 204, 304]) t.deepEqual(res([`HTTP/1.1 ${status} X`, 'Content-Length: 5']).framing, { kind: 'none' }, String(status));
  t.is(res(['HTTP/1.1 204']).status, 204);
});

test('response reuse: HTTP/1.1 unless Connection: close or the body runs until close; HTTP/1.0 never', (t) => {
  t.true(res(['HTTP/1.1 200 OK', 'Content-Length: 1']).reusable);
  t.false(res(['HTTP/1.1 200 OK', 'Content-Length: 1', 'Connection: close']).reusable);
  t.false(res(['HTTP/1.1 200 OK', 'Content-Length: 1', 'connection: Keep-Alive, Close']).reusable);
  t.false(res(['HTTP/1.0 200 OK', 'Content-Length: 1', 'Connection: keep-alive']).reusable);
  t.false(res(['HTTP/1.1 200 OK']).reusable);
});

test('response heads pass unchanged unless they carry hop-by-hop fields; clientHead drops them', (t) => {
  const nginx = res(['HTTP/1.1 200 OK', 'Server: nginx', 'Content-Length: 2', 'Connection: keep-alive']);
  t.false(nginx.needsRewrite);
  t.is(clientHead(nginx, true), 'HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 2\r\nConnection: close\r\n\r\n');
  const node = res(['HTTP/1.1 200 OK', 'Content-Length: 2', 'Connection: keep-alive, X-Private', 'X-Private: 1', 'Keep-Alive: timeout=5', 'X-Kept: 1']);
  t.true(node.needsRewrite);
  t.is(clientHead(node, false), 'HTTP/1.1 200 OK\r\nX-Kept: 1\r\nContent-Length: 2\r\n\r\n');
  const switching = res(['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', 'Keep-Alive: 1']);
  t.is(clientHead(switching, true), 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
});

test('malformed responses are refused (502)', (t) => {
  for (const lines of [
    ['HTTP/1.1 20 OK'],
    ['HTTP/1.1 099 Weird'],
    ['HTTP/2 200'],
    ['ICY 200 OK'],
    ['HTTP/1.1 200 OK', 'Content-Length: abc'],
    ['HTTP/1.1 200 OK', 'Content-Length: 1', 'Content-Length: 2'],
    ['HTTP/1.1 200 OK', 'Content-Length: 1', 'Content-Length: 1'],
    ['HTTP/1.1 200 OK', 'Content-Length: 1, 1'],
    ['HTTP/1.1 200 OK', 'Content-Length: 2', 'Transfer-Encoding: chunked'],
    ['HTTP/1.1 200 OK', 'Transfer-Encoding: gzip'],
    ['HTTP/1.1 200 OK', 'Transfer-Encoding: gzip, chunked'],
    ['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked, chunked'],
    ['HTTP/1.1 200 OK', 'Bad Name: 1'],
    ['HTTP/1.1 200 OK', 'X: 1\nContent-Length: 0'],
  ]) {
    const head = parseResponseHead(lines.join('\r\n'), 'GET');
    t.true('error' in head && head.error === 502, JSON.stringify(lines));
  }
});

test('headText finds the end of a head, short or long', (t) => {
  t.is(headText(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\nbody')), 'GET / HTTP/1.1\r\nHost: a');
  t.is(headText(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n')), undefined);
  const long = `GET / HTTP/1.1\r\nX: ${'y'.repeat(6000)}`;
  t.is(headText(Buffer.from(`${long}\r\n\r\n`)), long);
  t.is(headText(Buffer.from(`${long}\r\n`)), undefined);
});

/** Scans `text` in pieces of `step` bytes; returns the end offset in the whole text, -1 or -2. */
function scanAll(text: string, step: number): number {
  const buf = Buffer.from(text, 'latin1');
  const decoder = new ChunkedDecoder();
  for (let at = 0; at < buf.length; at += step) {
    const end = decoder.decode(buf.subarray(at, Math.min(buf.length, at + step)));
    if (end === -2) return -2;
    if (end >= 0) return at + end;
  }
  return -1;
}

test('chunked bodies end after the last chunk and trailers, however the bytes are split', (t) => {
  const body = '5\r\nhello\r\n1a;name=value\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: 1\r\n\r\n';
  for (const step of [1, 2, 3, 7, 1000]) t.is(scanAll(`${body}NEXT`, step), body.length, `step ${step}`);
  t.is(scanAll('0\r\n\r\n', 1), 5);
  t.is(scanAll('A\r\n0123456789\r\n0\r\n\r\n', 4), 20);
  t.is(scanAll('3;a;b="q \\" ;"\r\nabc\r\n0;z=1\r\n\r\n', 1), 30);
  t.is(scanAll('5\r\nhel', 2), -1);
});

test('malformed chunked bodies are refused', (t) => {
  for (const bad of [
    'g\r\n',
    '\r\n',
    '5\nhello\r\n0\r\n\r\n',
    '5\r\nhello\n0\r\n\r\n',
    '5\r\nhelloX\r\n',
    '1 2\r\n',
    '5\u0000\r\n',
    '12345678901234\r\n',
    '0\r\n folded\r\n\r\n',
    '0\r\nX: 1\n\r\n',
    '5 \r\nhello\r\n0\r\n\r\n',
    '5\t\r\nhello\r\n0\r\n\r\n',
    '5 ;a\r\nhello\r\n0\r\n\r\n',
    '5;a b\r\nhello\r\n0\r\n\r\n',
    '5;\r\nhello\r\n0\r\n\r\n',
    '0\r\nno colon\r\n\r\n',
    '0\r\nContent-Length: 5\r\n\r\n',
    '0\r\ntransfer-encoding: chunked\r\n\r\n',
    '0\r\nConnection: close\r\n\r\n',
    '0\r\n: empty name\r\n\r\n',
    '5\r\nhello\r\n0\r\n\r',
  ]) {
    const result = scanAll(bad, 1);
    t.true(result === -2 || (bad.endsWith('\r') && result === -1), JSON.stringify(bad));
  }
});

test('chunked data is re-emitted canonically (extensions and trailers dropped), or de-chunked', (t) => {
  const body = Buffer.from('005;ext="x"\r\nhello\r\n0B\r\n world, and\r\n0\r\nX-T: 1\r\n\r\n', 'latin1');
  const decoder = new ChunkedDecoder();
  t.is(decoder.decode(body), body.length);
  t.is(encodeChunks(body, decoder.spans, true).toString('latin1'), '5\r\nhello\r\nb\r\n world, and\r\n0\r\n\r\n');
  t.is(joinChunks(body, decoder.spans).toString('latin1'), 'hello world, and');
  // Split inside a chunk: each piece is a chunk of its own; the last chunk only at the end.
  const split = new ChunkedDecoder();
  t.is(split.decode(body.subarray(0, 17)), -1);
  t.is(encodeChunks(body.subarray(0, 17), split.spans, false).toString('latin1'), '4\r\nhell\r\n');
});
