/**
 * The proxy's HTTP/1.1 engine at the protocol level, over raw sockets against real upstreams on
 * loopback: HTTP/1.0, pipelining, 100-continue, refused smuggling shapes, response framings,
 * HEAD, oversized and slow heads, idle timeouts, stale keep-alive retries, early answers, and an
 * upgrade the upstream refuses. Everything started here is closed in t.teardown.
 */
import test from 'ava';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { httpRoute, proxy, request, upstream } from './helpers/proxy-fixtures.ts';
import { answerEach, raw, rawUpstream } from './helpers/raw-http.ts';

const STATUS = /HTTP\/1\.1 (\d{3})/g;
const statuses = (text: string) => [...text.matchAll(STATUS)].map((m) => Number(m[1]));

test('HTTP/1.0: forwarded as HTTP/1.0, answered, then the connection is closed', async (t) => {
  const a = await upstream(t, 'A', (req, res) => res.end(`version ${req.httpVersion}`));
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [a.port])]);
  const c = await raw(t, p, 'GET / HTTP/1.0\r\nHost: a.test\r\n\r\n');
  await c.closed;
  t.regex(c.text(), /^HTTP\/1\.1 200 /);
  t.regex(c.text(), /\r\nConnection: close\r\n/i);
  t.true(c.text().endsWith('version 1.0'));
});

test('pipelined requests are answered in order on one connection', async (t) => {
  const a = await upstream(t, 'A', (req, res) => void sleep(req.url === '/1' ? 100 : 0).then(() => res.end(`path ${req.url}`)));
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [a.port])]);
  const c = await raw(t, p, ['/1', '/2', '/3'].map((u) => `GET ${u} HTTP/1.1\r\nHost: a.test\r\n\r\n`).join(''));
  const text = await c.waitFor(/path \/3/);
  t.deepEqual([...text.matchAll(/path (\/\d)/g)].map((m) => m[1]), ['/1', '/2', '/3']);
});

test('Expect: 100-continue reaches the upstream, whose 100 Continue reaches the client', async (t) => {
  const a = await upstream(t, 'A', (req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => res.end(`got ${body}`));
  });
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [a.port])]);
  const reply = await new Promise<string>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: p.httpPort, method: 'POST', headers: { host: 'a.test', expect: '100-continue', 'content-length': 5 }, agent: false });
    req.on('continue', () => req.end('hello'));
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
  });
  t.is(reply, 'got hello');
});

test('smuggling shapes get 400 and never reach the upstream', async (t) => {
  const a = await upstream(t, 'A');
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [a.port])]);
  for (const head of [
    'POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
    'GET / HTTP/1.1\nHost: a.test\n\n',
  ]) {
    const c = await raw(t, p, head);
    await c.closed;
    t.regex(c.text(), /^HTTP\/1\.1 400 /, JSON.stringify(head));
  }
  t.is(a.seen.length, 0);
  // A well-formed head whose chunked body then goes wrong: the exchange is cut, the client gets 400.
  const badChunk = await raw(t, p, 'POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n');
  await badChunk.closed;
  t.regex(badChunk.text(), /^HTTP\/1\.1 400 /);
});

test('chunked and close-delimited upstream responses pass through; HEAD answers have no body', async (t) => {
  const up = await rawUpstream(
    t,
    answerEach((_n, head) => {
      if (head.startsWith('GET /chunked')) return 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n';
      if (head.startsWith('HEAD')) return 'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n';
      return 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
    }),
  );
  const closing = await rawUpstream(t, (socket) => socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close')));
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [up.port]), httpRoute('one', 'eof', ['eof.test'], [closing.port])]);
  const c = await raw(t, p, 'GET /chunked HTTP/1.1\r\nHost: a.test\r\n\r\nHEAD / HTTP/1.1\r\nHost: a.test\r\n\r\nGET /after HTTP/1.1\r\nHost: a.test\r\n\r\n');
  const text = await c.waitFor(/\r\n\r\nok$/);
  t.true(text.includes('5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n'));
  t.deepEqual(statuses(text), [200, 200, 200]);
  t.is(up.connections(), 1, 'one upstream connection carried all three');
  const eof = await raw(t, p, 'GET / HTTP/1.1\r\nHost: eof.test\r\n\r\n');
  await eof.closed;
  t.true(eof.text().endsWith('\r\n\r\nuntil close'));
  t.regex(eof.text(), /\r\nConnection: close\r\n/);
});

test('431 for an oversized request head; 408 for a head that does not finish; idle connections are closed', async (t) => {
  const a = await upstream(t, 'A');
  const p = await proxy(t, undefined, { keepAliveTimeoutMs: 1500, requestHeadTimeoutMs: 1500 });
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [a.port])]);
  const big = await raw(t, p, `GET / HTTP/1.1\r\nHost: a.test\r\nX-Big: ${'x'.repeat(20_000)}\r\n\r\n`);
  await big.closed;
  t.regex(big.text(), /^HTTP\/1\.1 431 /);
  const slow = await raw(t, p, 'GET / HTTP/1.1\r\nHost: a.t');
  const idle = await raw(t, p);
  const started = Date.now();
  await Promise.all([slow.closed, idle.closed]);
  t.regex(slow.text(), /^HTTP\/1\.1 408 /);
  t.is(idle.text(), '');
  t.true(Date.now() - started < 4000);
  t.is(a.seen.length, 0);
});

test('a GET that meets a stale keep-alive connection is retried on a new one; a POST gets 502', async (t) => {
  // The upstream answers the first request of each connection, then closes at the second (as one
  // whose keep-alive timer fired just as the request arrived).
  const up = await rawUpstream(t, answerEach((n) => (n === 0 ? 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok' : undefined)));
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [up.port])]);
  t.is((await request(p, 'a.test')).status, 200);
  t.is((await request(p, 'a.test')).status, 200, 'retried on a new connection');
  t.is(up.connections(), 2);
  const post = await request(p, 'a.test', { method: 'POST', body: Buffer.from('data') });
  t.is(post.status, 502, 'a POST is not sent twice');
});

test('an answer before the whole request body: the client gets it with Connection: close; the rest is read, then the connection closes', async (t) => {
  const a = await upstream(t, 'A', (_req, res) => {
    res.writeHead(413, { 'content-type': 'text/plain' });
    res.end('too large');
  });
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [a.port])]);
  const c = await raw(t, p, 'POST /upload HTTP/1.1\r\nHost: a.test\r\nContent-Length: 200000\r\n\r\n');
  const text = await c.waitFor(/too large/);
  t.regex(text, /^HTTP\/1\.1 413 /);
  t.regex(text, /\r\nConnection: close\r\n/i);
  t.false(c.socket.destroyed, 'still open while the body may come');
  c.socket.write(Buffer.alloc(200_000, 0x61));
  await c.closed;
  t.deepEqual(statuses(c.text()), [413]);
  t.deepEqual(p.load(), {});
});

test('Expect: 100-continue refused by a final answer: the client gets it and the connection closes when the client does', async (t) => {
  const a = await upstream(t, 'A');
  a.server.removeAllListeners('checkContinue');
  a.server.on('checkContinue', (_req, res: http.ServerResponse) => {
    res.writeHead(417);
    res.end();
  });
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [a.port])]);
  const c = await raw(t, p, 'PUT /f HTTP/1.1\r\nHost: a.test\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n');
  const text = await c.waitFor(/^HTTP\/1\.1 417 [^]*\r\n\r\n/);
  t.regex(text, /\r\nConnection: close\r\n/i);
  c.socket.end();
  await c.closed;
});

test('malformed or oversized upstream responses get 502', async (t) => {
  const bad = await rawUpstream(t, (socket) => socket.once('data', () => socket.write('HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n')));
  const huge = await rawUpstream(t, (socket) => socket.once('data', () => socket.write(`HTTP/1.1 200 OK\r\nX: ${'y'.repeat(70_000)}\r\n\r\n`)));
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'bad', ['bad.test'], [bad.port]), httpRoute('one', 'huge', ['huge.test'], [huge.port])]);
  t.is((await request(p, 'bad.test')).status, 502);
  t.is((await request(p, 'huge.test')).status, 502);
});

test('an upgrade the upstream refuses is an ordinary response; the connection goes on', async (t) => {
  const a = await upstream(t, 'A', (req, res) => {
    res.writeHead(req.headers.upgrade ? 426 : 200);
    res.end(req.headers.upgrade ? 'no upgrade here' : 'plain');
  });
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [a.port])]);
  const c = await raw(t, p, 'GET /ws HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
  await c.waitFor(/no upgrade here/);
  c.socket.write('GET / HTTP/1.1\r\nHost: a.test\r\n\r\n');
  const text = await c.waitFor(/plain/);
  t.deepEqual(statuses(text), [426, 200]);
  t.is(a.seen[1]?.['x-forwarded-for'], '127.0.0.1', 'the second request was parsed and rewritten too');
});

test('pipelined POSTs whose bodies look like heads, then a head split across writes: all answered in order with a small read-ahead bound', async (t) => {
  const a = await upstream(t, 'A', (req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => res.end(`${req.url} ${body.length}`));
  });
  const p = await proxy(t, undefined, { maxPipelinedRequests: 4 });
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [a.port])]);
  const body = 'x\r\n\r\ny\r\n\r\nz\r\n\r\n';
  const posts = Array.from({ length: 12 }, (_, i) => `POST /p${i} HTTP/1.1\r\nHost: a.test\r\nContent-Length: ${body.length}\r\n\r\n${body}`).join('');
  const c = await raw(t, p, `${posts}GET /last HT`);
  await sleep(100);
  c.socket.write('TP/1.1\r\nHost: a.test\r\n\r\n');
  const text = await c.waitFor(/\/last 0$/);
  t.deepEqual(statuses(text), Array.from({ length: 13 }, () => 200));
});

test('a head split between the CR and the LF of its framing line is read whole (not refused)', async (t) => {
  const a = await upstream(t, 'A', (req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => res.end(`${req.url} ${body}`));
  });
  const p = await proxy(t);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [a.port])]);
  for (const [path, framing, body] of [
    ['/length', 'Content-Length: 5', 'hello'],
    ['/chunked', 'Transfer-Encoding: chunked', '5\r\nhello\r\n0\r\n\r\n'],
  ] as const) {
    const c = await raw(t, p, `POST ${path} HTTP/1.1\r\nHost: a.test\r\n${framing}\r`);
    await sleep(50);
    c.socket.write(`\n\r\n${body}`);
    const text = await c.waitFor(new RegExp(`${path} hello$`));
    t.regex(text, /^HTTP\/1\.1 200 /, path);
  }
});
