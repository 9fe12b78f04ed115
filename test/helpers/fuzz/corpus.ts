/**
 * The fuzzer's fixed seed corpus: every request-smuggling finding in the proxy as a named case,
 * and their neighbours. Once the proxy is fixed, none of them shows a divergence (a refusal is
 * fine). Names are stable: tests assert per name.
 */
import { SMUGGLED } from './grammar.ts';
import { requestCase } from './requests.ts';
import { responseCase } from './responses.ts';
import type { FuzzCase } from './run-case.ts';

const H = 'Host: fuzz.test\r\n';
const chunk = (data: string): string => `${data.length.toString(16)}\r\n${data}\r\n`;
const post = (fields: string, body: string, target = '/a'): string => `POST ${target} HTTP/1.1\r\n${H}${fields}\r\n${body}`;
const cl = (body: string): string => `Content-Length: ${body.length}\r\n`;
const chunked = `Transfer-Encoding: chunked\r\n`;
const ok = (body: string, fields = ''): string => `HTTP/1.1 200 OK\r\n${fields}Content-Length: ${body.length}\r\n\r\n${body}`;

const requests: [string, string, { splits?: number[]; pauseMs?: number; finMs?: number }?][] = [
  // 1. Framing fields named in Connection were dropped after the body was framed by them.
  ['connection-content-length', post(`Connection: Content-Length\r\n${cl(SMUGGLED)}`, SMUGGLED)],
  ['connection-close-content-length', post(`Connection: close, Content-Length\r\n${cl(SMUGGLED)}`, SMUGGLED)],
  ['connection-transfer-encoding', post(`Connection: Transfer-Encoding\r\n${chunked}`, `${chunk(SMUGGLED)}0\r\n\r\n`)],
  ['connection-keep-alive-content-length', post(`Connection: keep-alive, content-length\r\n${cl(SMUGGLED)}`, SMUGGLED)],
  ['connection-content-length-and-te-chunked', post(`Connection: Content-Length, Transfer-Encoding\r\n${chunked}`, `${chunk(SMUGGLED)}0\r\n\r\n`)],
  ['connection-host', `GET /a HTTP/1.1\r\n${H}Connection: Host\r\n\r\n`],
  ['connection-x-forwarded-for', `GET /a HTTP/1.1\r\n${H}Connection: X-Forwarded-For\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n`],
  // 2. Heads that are complete (or can never become valid) must be answered at once.
  ['http09-request-line', 'GET /x\r\n'],
  ['http09-after-request', `GET /a HTTP/1.1\r\n${H}\r\nGET /x\r\n`],
  ['lf-head-ending-crlf', `GET /a HTTP/1.1\n${H.replace('\r\n', '\n')}\r\n`],
  ['lf-only-head', `GET /a HTTP/1.1\nHost: fuzz.test\n\n`],
  ['crlf-head-ending-lf', `GET /a HTTP/1.1\r\n${H}\n`],
  ['bare-cr-in-head', `GET /a HTTP/1.1\r\nHost: fuzz.test\rX: y\r\n\r\n`],
  // 3. Framing values a strict parser refuses, forwarded as they were.
  ['content-length-repeated-same', post(`Content-Length: 5\r\nContent-Length: 5\r\n`, 'hello')],
  ['content-length-list-same', post(`Content-Length: 5, 5\r\n`, 'hello')],
  ['content-length-repeated-different', post(`Content-Length: 5\r\nContent-Length: 6\r\n`, 'hello!')],
  ['content-length-leading-zeros', post(`Content-Length: 005\r\n`, 'hello')],
  ['content-length-padded', post(`Content-Length: \t5 \r\n`, 'hello')],
  ['content-length-with-chunked', post(`Content-Length: 5\r\n${chunked}`, `${chunk('hello')}0\r\n\r\n`)],
  ['chunk-size-trailing-space', post(chunked, `5 \r\nhello\r\n0\r\n\r\n`)],
  ['chunk-size-trailing-tab', post(chunked, `5\t\r\nhello\r\n0\r\n\r\n`)],
  ['chunk-extension', post(chunked, `5;a=b\r\nhello\r\n0\r\n\r\n`)],
  ['chunk-extension-quoted', post(chunked, `5;a="b c"\r\nhello\r\n0\r\n\r\n`)],
  ['chunk-extension-bare-semicolon', post(chunked, `5;\r\nhello\r\n0\r\n\r\n`)],
  ['chunk-size-leading-zeros', post(chunked, `005\r\nhello\r\n0\r\n\r\n`)],
  ['chunk-size-uppercase-hex', post(chunked, `${SMUGGLED.length.toString(16).toUpperCase()}\r\n${SMUGGLED}\r\n0\r\n\r\n`)],
  ['chunk-size-bare-lf', post(chunked, `5\nhello\r\n0\r\n\r\n`)],
  ['chunk-data-longer-than-size', post(chunked, `3\r\nhello\r\n0\r\n\r\n`)],
  ['trailer-without-colon', post(chunked, `5\r\nhello\r\n0\r\nbad\r\n\r\n`)],
  ['trailer-valid', post(chunked, `5\r\nhello\r\n0\r\nX-Trailer: v\r\n\r\n`)],
  ['trailer-folded', post(chunked, `5\r\nhello\r\n0\r\nX-Trailer: a\r\n b\r\n\r\n`)],
  ['trailer-content-length', post(chunked, `5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n`)],
  ['transfer-encoding-tab', post(`Transfer-Encoding:\tchunked\r\n`, `${chunk('hello')}0\r\n\r\n`)],
  ['transfer-encoding-leading-space', post(`Transfer-Encoding:  chunked\r\n`, `${chunk('hello')}0\r\n\r\n`)],
  ['transfer-encoding-capitalised', post(`Transfer-Encoding: Chunked\r\n`, `${chunk('hello')}0\r\n\r\n`)],
  ['transfer-encoding-chunked-chunked', post(`Transfer-Encoding: chunked, chunked\r\n`, `${chunk('hello')}0\r\n\r\n`)],
  ['transfer-encoding-gzip-chunked', post(`Transfer-Encoding: gzip, chunked\r\n`, `${chunk('hello')}0\r\n\r\n`)],
  ['transfer-encoding-split', post(`Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n`, `${chunk('hello')}0\r\n\r\n`)],
  ['transfer-encoding-identity', post(`Transfer-Encoding: identity\r\n${cl('hello')}`, 'hello')],
  ['transfer-encoding-space-before-colon', post(`Transfer-Encoding : chunked\r\n`, `${chunk('hello')}0\r\n\r\n`)],
  ['content-length-underscore', post(`Content_Length: ${SMUGGLED.length}\r\n`, SMUGGLED)],
  ['transfer-encoding-underscore', post(`Transfer_Encoding: chunked\r\n`, `${chunk(SMUGGLED)}0\r\n\r\n`)],
  ['x-forwarded-for-underscore', `GET /a HTTP/1.1\r\n${H}X_Forwarded_For: 6.6.6.6\r\n\r\n`],
  ['folded-header', `GET /a HTTP/1.1\r\n${H}X-A: a\r\n b\r\n\r\n`],
  ['http10-chunked', `POST /a HTTP/1.0\r\n${H}${chunked}\r\n${chunk('hello')}0\r\n\r\n`],
  // 4. Request targets are forwarded as sent (origin form), methods as they are.
  ['absolute-form-dot-segments', `GET http://fuzz.test/a/%2e%2e/b HTTP/1.1\r\n${H}\r\n`],
  ['absolute-form-dot-dot', `GET http://fuzz.test/a/../b HTTP/1.1\r\n${H}\r\n`],
  ['absolute-form-no-path', `GET http://fuzz.test?x=1 HTTP/1.1\r\n${H}\r\n`],
  ['absolute-form-without-host', `GET http://fuzz.test/a HTTP/1.1\r\n\r\n`],
  ['origin-form-dot-segments', `GET /a/%2e%2e/b HTTP/1.1\r\n${H}\r\n`],
  ['trace', `TRACE /a HTTP/1.1\r\n${H}\r\n`],
  ['trace-with-body', `TRACE /a HTTP/1.1\r\n${H}${cl(SMUGGLED)}\r\n${SMUGGLED}`],
  ['options-star', `OPTIONS * HTTP/1.1\r\n${H}\r\n`],
  ['connect', `CONNECT fuzz.test:443 HTTP/1.1\r\n${H}\r\n`],
  ['lowercase-method', `get /a HTTP/1.1\r\n${H}\r\n`],
  ['double-space-request-line', `GET  /a HTTP/1.1\r\n${H}\r\n`],
  ['huge-target', `GET /${'x'.repeat(17000)} HTTP/1.1\r\n${H}\r\n`],
  // Other neighbours: pipelining, HTTP/1.0 keep-alive, 100-continue, upgrade, duplicate Host.
  ['pipelined-three', `GET /1 HTTP/1.1\r\n${H}\r\n${post(cl('hello'), 'hello', '/2')}HEAD /3 HTTP/1.1\r\n${H}\r\n`],
  ['pipelined-split-everywhere', `GET /1 HTTP/1.1\r\n${H}\r\n${post(chunked, `${chunk('hello')}0\r\n\r\n`, '/2')}`, { splits: [3, 17, 18, 40, 41, 62, 63, 80, 95, 96] }],
  ['http10-keep-alive-pipelined', `GET /1 HTTP/1.0\r\n${H}Connection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n${H}\r\n`],
  ['expect-100-continue', `POST /a HTTP/1.1\r\n${H}Expect: 100-continue\r\n${cl('hello')}\r\nhello`, { splits: [78], pauseMs: 20 }],
  ['upgrade-then-pipelined', `GET /ws HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: websocket\r\n\r\nGET /b HTTP/1.1\r\n${H}\r\n`],
  ['duplicate-host', `GET /a HTTP/1.1\r\n${H}Host: other.test\r\n\r\n`],
  ['body-shorter-than-length', post(`Content-Length: 10\r\n`, 'hello')],
  // A FIN that arrives while an earlier answer is still on its way, with part of a head buffered.
  ['fin-mid-exchange', `${post(cl('hello'), 'hello', '/1')}${post(cl('xxx'), 'xxx', '/2')}POST /3 HTTP/1.1\r\n${H}Content-Length: 5\r\n`, { finMs: 0 }],
  // 6. Found by the random run and fixed: each must be refused (or answered) at once, or not forwarded.
  ['partial-line-bad-target-char', 'GET /\u00fc HTT'],
  ['partial-line-target-not-a-path', 'GET a HTTP/1'],
  ['partial-line-unknown-method', 'GEX /a'],
  ['partial-te-after-length', `POST /a HTTP/1.1\r\n${H}Content-Length: 0\r\nTransfer-Encoding: ch`],
  ['partial-length-not-digits', `POST /a HTTP/1.1\r\n${H}Content-Length: 0x0\r\nTransfer`],
  ['partial-te-not-chunked-last', `POST /a HTTP/1.1\r\n${H}Transfer-Encoding: chunked, chu`],
  ['partial-second-te', `POST /a HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: c`],
  ['trailer-bare-lf', post(chunked, `1\r\n0\r\n0\r\n\n`)],
  ['trailer-connection-close-then-pipelined', `${post(chunked, `5\r\nhello\r\n0\r\nConnection: close\r\n\r\n`)}GET /b HTTP/1.1\r\n${H}\r\n`],
  ['chunk-extension-space', post(chunked, `5;a b\r\nhello\r\n0\r\n\r\n`)],
  // Seed 20261201 (late under load, on time when replayed): a lowercase method pipelined after empty lines, smuggling a request.
  ['pipelined-lowercase-method-after-empty-lines', `GET /x HTTP/1.1\r\n${H}\r\n\r\npost //fuzz.test/x HTTP/1.1\r\n${H}${chunked}\r\n${chunk(SMUGGLED)}0\r\n\r\n`],
  // Found by a 4-minute run (seed 777): a line of more than 1 KiB in its first read was not checked until it ended.
  ['long-line-unknown-method', `get /${'x'.repeat(3000)}`],
  ['long-line-double-space-after-request', `GET /a HTTP/1.1\r\n${H}\r\nGET  /${'x'.repeat(3000)}`],
  // Found by a 3-minute run (seed 31337): a bad line whose CR had come waited for its LF.
  ['field-without-colon-awaiting-lf', `GET /a HTTP/1.1\r\n${H}Garbage-Without-Colon\r`],
  ['request-line-http09-awaiting-lf', 'GET /x\r'],
  ['fin-after-request-with-partial-next', `GET /a HTTP/1.1\r\n${H}\r\n\r\n\r\nTRACE http://fuzz.test/a HTTP/1.1\r\nHost: `, { finMs: 0 }],
  // Seed 20261202 (late under load, on time when replayed): an unknown method pipelined after a chunked and a sized request.
  ['pipelined-unknown-method-after-chunked-and-sized', `POST /a#frag HTTP/1.1\r\nX-Empty:\t\r\n${H}${chunked}\r\n4\r\nhell\r\n1\r\no\r\n0\r\n\r\nPOST / HTTP/1.1\r\n${H}Content-Length:5\r\n\r\nhellox`],
  // Seed 20261202: the asterisk target with a chunked body.
  ['asterisk-target-chunked', `GET * HTTP/1.1\r\n${H}${chunked}\r\n4\r\nxxxx\r\n0\r\n\r\n`],
  // Seed 20261205 (late once in a 195 s campaign of 80 lanes, on time when replayed): a target that starts with "//" and an uppercase Host;
  ['double-slash-target-uppercase-host', 'DELETE //fuzz.test/x HTTP/1.1\r\nHost: FUZZ.TEST\r\n\r\n'],
  // a chunked body that carries a head with a bare CR, then the start of an absolute-form request and the client's FIN (400, then close);
  ['chunked-carrying-bare-cr-head-then-partial-absolute-form', post(`X-Forwarded-For: 1.2.3.4\r\nAccept: */*\r\n${chunked}`, `24\r\nGET /smug HTTP/1.1\r\nHost: fuzz.test\r\r\n18\r\n\nX-Forwarded-For: 6.6.6.\r\n5\r\n6\r\n\r\n\r\n0\r\n\r\nGET http://fuzz.test:80`, '/'), { finMs: 0 }],
  // a tab-padded zero length, an HTTP/0.9 line and more requests pipelined, split in two writes.
  ['padded-zero-length-then-http09-and-pipelined', `GET /api/v1/items?id=7 HTTP/1.1\r\n${H}Content-Length:\t 0 \t\r\n\r\nGET /\r\nGET /%00 HTTP/1.0\r\nCookie: a=b\r\n${H}\r\nPOST / HTTP/1.1\r\n${H}Cookie: a=b\r\nContent-Length: 65\r\n\r\nGET /smug HTTP/1.1\r\n${H}X-Forwarded-For: 6.6.6.6\r\n\r\n`, { splits: [257] }],
];

const responses: [string, string, Parameters<typeof responseCase>[1]][] = [
  // 5. What an HTTP/1.0 client cannot read.
  ['response-1xx-to-http10', `HTTP/1.1 100 Continue\r\n\r\n${ok('ok')}`, { version: '1.0' }],
  ['response-103-to-http10', `HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n${ok('ok')}`, { version: '1.0' }],
  ['response-chunked-to-http10', `HTTP/1.1 200 OK\r\n${chunked}\r\n${chunk('hello')}0\r\n\r\n`, { version: '1.0' }],
  ['response-chunked-trailer-to-http10', `HTTP/1.1 200 OK\r\n${chunked}\r\n${chunk('hello')}0\r\nX-T: v\r\n\r\n`, { version: '1.0' }],
  // Neighbours: framing an HTTP/1.1 client would read differently.
  ['response-103-to-http11', `HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n${ok('ok')}`, {}],
  ['response-content-length-repeated', `HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello`, {}],
  ['response-content-length-list', `HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello`, {}],
  ['response-chunk-extension', `HTTP/1.1 200 OK\r\n${chunked}\r\n5;a=b\r\nhello\r\n0\r\n\r\n`, {}],
  ['response-gzip-close-delimited', `HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhello`, { close: true }],
  ['response-te-and-content-length', `HTTP/1.1 200 OK\r\nContent-Length: 3\r\n${chunked}\r\n${chunk('hello')}0\r\n\r\n`, {}],
  ['response-connection-content-length', `HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\nhello`, {}],
  ['response-underscore-content-length', `HTTP/1.1 200 OK\r\nContent_Length: 5\r\n\r\nhello`, { close: true }],
  ['response-two-back-to-back', `${ok('hello')}${ok('evil', 'X-Smuggled: 1\r\n')}`, {}],
  ['response-bytes-after', `${ok('hello')}garbage`, {}],
  ['response-head-with-length', `HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n`, { method: 'HEAD' }],
  ['response-close-delimited', `HTTP/1.1 200 OK\r\n\r\nuntil close`, { close: true }],
  // Found by the random run and fixed.
  ['response-head-invalid-length', `HTTP/1.1 200 OK\r\nCONTENT-LENGTH: +5\r\n\r\n`, { method: 'HEAD', version: '1.0' }],
  ['response-length-padded', `HTTP/1.1 200 OK\r\nContent-Length:  5\r\n\r\nhello`, {}],
  ['response-trailer-transfer-encoding-to-http10', `HTTP/1.1 200 OK\r\n${chunked}\r\n${chunk('hello')}0\r\nTransfer-Encoding: chunked\r\n\r\n`, { version: '1.0', close: true }],
  ['response-chunked-truncated-to-http10', `HTTP/1.1 200 OK\r\n${chunked}\r\n1\r\n`, { version: '1.0', close: true }],
  // Seed 20261203 (late in the run, 502 on time when replayed): a status line ended by a bare LF, one write, then the upstream closes.
  ['response-bare-lf-status-line-then-close', `HTTP/1.1 404 OK\nContent-Type: text/plain\r\nX-Empty:\t\r\n\r\nxxxxxxxxxxx`, { close: true }],
];

/** The named corpus cases, request side first. */
export const CORPUS: FuzzCase[] = [
  ...requests.map(([name, bytes, options]) => requestCase(bytes, { name, ...options })),
  ...responses.map(([name, bytes, options]) => responseCase(bytes, { name, ...options })),
];
