/**
 * Regression tests for the proxy's request-smuggling and framing findings (issue 10), end to end:
 * raw clients → the real proxy → a strict recording upstream (Node's llhttp) or a raw one. Each
 * asserts what the upstream received, byte for byte where framing is the point.
 */
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { httpRoute, proxy } from './helpers/proxy-fixtures.ts';
import type { Proxy } from './helpers/proxy-fixtures.ts';
import { raw, rawUpstream, recordingUpstream } from './helpers/raw-http.ts';
import type { RecordingUpstream } from './helpers/raw-http.ts';
import type { ExecutionContext } from 'ava';

async function setup(t: ExecutionContext): Promise<{ p: Proxy; up: RecordingUpstream }> {
  const up = await recordingUpstream(t);
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [up.port])]);
  return { p, up };
}

/** The smuggled part of each attack: a whole second request, with a spoofed X-Forwarded-For. */
const SMUGGLED = 'GET /smug HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n';
const chunk = (data: string) => `${data.length.toString(16)}\r\n${data}\r\n`;

test('Connection naming Content-Length or Transfer-Encoding is refused: nothing is smuggled, a victim gets its own answer', async (t) => {
  const { p, up } = await setup(t);
  for (const connection of ['Content-Length', 'close, Content-Length', 'keep-alive, content-length']) {
    const c = await raw(t, p, `POST /a HTTP/1.1\r\nHost: a.test\r\nConnection: ${connection}\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`);
    await c.closed;
    t.regex(c.text(), /^HTTP\/1\.1 400 /, connection);
  }
  const te = await raw(t, p, `POST /a HTTP/1.1\r\nHost: a.test\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(SMUGGLED)}0\r\n\r\n`);
  await te.closed;
  t.regex(te.text(), /^HTTP\/1\.1 400 /);
  const victim = await raw(t, p, 'GET /victim HTTP/1.1\r\nHost: a.test\r\n\r\n');
  t.regex(await victim.waitFor(/seen \/victim$/), /^HTTP\/1\.1 200 /);
  t.deepEqual(up.requests.map((r) => r.url), ['/victim']);
  t.false(up.bytes().includes('/smug'));
});

test('request framing reaches the upstream as the proxy wrote it: one plain Content-Length, or canonical chunks', async (t) => {
  const { p, up } = await setup(t);
  const send = async (text: string) => {
    const c = await raw(t, p, text);
    await c.waitFor(/seen \/\w+$/);
  };
  await send('POST /list HTTP/1.1\r\nHost: a.test\r\ncontent-length:\t005 \r\n\r\nhello');
  await send('POST /tab HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding:\tchunked\r\n\r\n005;name="v"\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n');
  await send('POST /conf HTTP/1.1\r\nHost: a.test\r\nContent-Length: 2\r\nContent_Length: 40\r\nTransfer_Encoding: chunked\r\nX_Forwarded_For: 6.6.6.6\r\n\r\nhi');
  t.deepEqual(
    up.requests.map((r) => [r.url, r.body.toString()]),
    [['/list', 'hello'], ['/tab', 'hello'], ['/conf', 'hi']],
  );
  const bytes = up.bytes();
  t.is(bytes.match(/^content-length:.*$/gim)?.join('|'), 'Content-Length: 5|Content-Length: 2');
  t.true(bytes.includes('\r\nTransfer-Encoding: chunked\r\n'));
  t.true(bytes.includes('\r\n\r\n5\r\nhello\r\n0\r\n\r\n'), 'chunks re-emitted, extension and trailer dropped');
  t.false(/_length|_encoding|_forwarded|\t|6\.6\.6\.6/i.test(bytes));
});

test('ambiguous chunked framing is refused with 400 and never reaches the upstream', async (t) => {
  const { p, up } = await setup(t);
  for (const body of ['5 \r\nhello\r\n0\r\n\r\n', '5\r\nhello\r\n0\r\nno colon\r\n\r\n', '5;a b\r\nhello\r\n0\r\n\r\n', '5\nhello\r\n0\r\n\r\n']) {
    const c = await raw(t, p, `POST /x HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n${body}`);
    await c.closed;
    t.regex(c.text(), /HTTP\/1\.1 400 /, JSON.stringify(body));
  }
  t.is(up.requests.length, 0, 'no complete request reached the upstream');
});

test('an absolute-form target is passed on exactly as sent; TRACE is refused', async (t) => {
  const { p, up } = await setup(t);
  const c = await raw(t, p, 'GET http://a.test/a/%2e%2e/b HTTP/1.1\r\nHost: other.test\r\n\r\n');
  await c.waitFor(/seen /);
  t.is(up.requests[0]?.url, '/a/%2e%2e/b');
  const trace = await raw(t, p, 'TRACE / HTTP/1.1\r\nHost: a.test\r\n\r\n');
  t.regex(await trace.waitFor(/\r\n\r\n/), /^HTTP\/1\.1 405 /);
  t.is(up.requests.length, 1);
});

test('HTTP/0.9 and bare-LF heads are answered 400 at once, without waiting for a timeout', async (t) => {
  const { p, up } = await setup(t);
  for (const head of ['GET /x\r\n', 'GET / HTTP/1.1\nHost: a.test\n\r\n', 'GET / HTTP/1.1\r\nHost: a.test\r\n folded\r\n']) {
    const started = Date.now();
    const c = await raw(t, p, head);
    await c.closed;
    t.regex(c.text(), /^HTTP\/1\.1 400 /, JSON.stringify(head));
    t.true(Date.now() - started < 1000, JSON.stringify(head));
  }
  t.is(up.requests.length, 0);
});

test('an HTTP/1.0 client gets no interim responses and no chunked coding; a 1.1 client gets canonical chunks', async (t) => {
  const upstream = await rawUpstream(t, (socket) =>
    socket.on('data', () =>
      socket.write('HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-App: 1\r\n\r\n5;e=1\r\nhello\r\n06\r\n world\r\n0\r\nX-T: 1\r\n\r\n'),
    ),
  );
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [upstream.port])]);
  const old = await raw(t, p, 'GET / HTTP/1.0\r\nHost: a.test\r\n\r\n');
  await old.closed;
  t.false(old.text().includes('103'));
  t.false(/transfer-encoding/i.test(old.text()));
  t.regex(old.text(), /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nhello world$/);
  const current = await raw(t, p, 'GET / HTTP/1.1\r\nHost: a.test\r\n\r\n');
  const text = await current.waitFor(/0\r\n\r\n$/);
  t.true(text.startsWith('HTTP/1.1 103 Early Hints\r\n'));
  t.true(text.endsWith('\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n'));
  await sleep(50);
  t.false(current.socket.destroyed, 'kept alive');
});
