/**
 * Slow and hostile clients against the proxy: slowloris heads, stalled and trickled bodies, empty
 * lines on an idle connection, a pipelined flood from a client that never reads, a never-reading
 * client of a large response, thousands of idle keep-alive connections, and heads that can no
 * longer become valid. Timeouts are tested on the proxy in process (small limits); memory on the
 * real `depad proxy` process (its VmRSS). In every test a normal request on another connection is
 * answered within PROMPT_MS (250 ms) while the hostile client is at work. Bounds asserted, with
 * margin for a busy 2-core machine: a timeout fires within -250/+1500 ms of its limit (a sweep once
 * a second); a flood of 3000 pipelined GETs (16 KiB answers) lets < 500 reach the upstream and
 * grows RSS by < 24 MB (unbounded: ~3000 and ~+60 MB); a never-read 64 MiB response grows RSS by
 * < 40 MB and the upstream writes < 32 MiB; 5,000 idle connections cost < 16 KiB each (~5-6 seen).
 * Serial: timings and memory are measured, and the tests would disturb each other. Everything is
 * closed in t.teardown.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { httpRoute, proxy, until, upstream } from './helpers/proxy-fixtures.ts';
import type { Proxy, Upstream } from './helpers/proxy-fixtures.ts';
import type { ProxyLimits } from '../proxy/index.ts';
import { assertPrompt, closedWithin, mb, proxyChild, rssPeak, trickle } from './helpers/hostile-clients.ts';
import type { ProxyChild } from './helpers/hostile-clients.ts';
import { ResponseReader, settled, streamChunks } from './helpers/hostile-common.ts';
import { rawClient } from './helpers/raw-http.ts';
import type { RawClient } from './helpers/raw-http.ts';

/** The settings of `startProxy` that bound what hostile clients cost. */
type Limits = Partial<ProxyLimits>;

/** The timeout under test. */
const T = 1500;
/** A timeout may fire this much early (the coarse clock is up to 100 ms old) … */
const EARLY_MS = 250;
/** … or this much late (a sweep once a second, a busy machine). */
const LATE_MS = 1500;
/** A limit not under test: far beyond the test's length. */
const LONG = 20_000;
const MiB = 1024 * 1024;

/** A proxy in process with `limits`, routing a.test to `target` and ok.test (the probes) to an upstream of its own. */
async function proxyWith(t: ExecutionContext, limits: Limits, target: Upstream): Promise<Proxy> {
  const ok = await upstream(t, 'OK');
  const p = await proxy(t, undefined, limits);
  await p.client.setDeploymentRoutes('one', [httpRoute('one', 'web', ['a.test'], [target.port]), httpRoute('one', 'ok', ['ok.test'], [ok.port])]);
  return p;
}

/** The real proxy process routing a.test to `target` and ok.test to an upstream of its own. */
async function childWith(t: ExecutionContext, target: Upstream): Promise<ProxyChild> {
  const ok = await upstream(t, 'OK');
  const px = await proxyChild(t);
  await px.setRoutes('one', [httpRoute('one', 'web', ['a.test'], [target.port]), httpRoute('one', 'ok', ['ok.test'], [ok.port])]);
  return px;
}

/** Asserts that `c` was closed `limit` ms (within EARLY_MS/LATE_MS) after `from`, having received nothing or `status`. */
function closedAtLimit(t: ExecutionContext, c: RawClient, from: number, limit: number, status: number, before = ''): void {
  const at = c.closedAt();
  if (at === undefined) return void t.fail(`still open ${limit + LATE_MS} ms after the start (limit ${limit} ms)`);
  t.true(at - from >= limit - EARLY_MS && at - from <= limit + LATE_MS, `closed after ${at - from} ms (limit ${limit} ms)`);
  const rest = c.text().slice(before.length);
  t.true(rest === '' || new RegExp(`^HTTP/1\\.1 ${status} `).test(rest), `got ${JSON.stringify(rest.slice(0, 80))}`);
}

const GET = (path: string) => `GET ${path} HTTP/1.1\r\nHost: a.test\r\n\r\n`;

test.serial('slowloris: a head trickled a byte every 200 ms gets 408 at requestHeadTimeoutMs; so do 200 at once', async (t) => {
  const a = await upstream(t, 'A');
  const p = await proxyWith(t, { requestHeadTimeoutMs: T, keepAliveTimeoutMs: LONG }, a);
  const bytes = [...`GET / HTTP/1.1\r\nHost: a.test\r\nX-Pad: ${'x'.repeat(200)}`];
  const one = await rawClient(t, p.httpPort);
  const crowd = await Promise.all(Array.from({ length: 200 }, () => rawClient(t, p.httpPort)));
  const started = Date.now();
  for (const c of [one, ...crowd]) trickle(t, c, bytes, 200);
  await sleep(T / 2);
  await assertPrompt(t, p.httpPort, 'ok.test', 'during 201 slowloris heads');
  await closedWithin([one, ...crowd], started + T + LATE_MS - Date.now());
  closedAtLimit(t, one, started, T, 408);
  const open = crowd.filter((c) => c.closedAt() === undefined).length;
  t.is(open, 0, `${open} of 200 slowloris connections still open`);
  const late = crowd.filter((c) => (c.closedAt() ?? Infinity) - started > T + LATE_MS || (c.closedAt() ?? 0) - started < T - EARLY_MS).length;
  t.is(late, 0, `${late} of 200 closed outside ${T - EARLY_MS}..${T + LATE_MS} ms`);
  t.true(crowd.every((c) => c.text() === '' || c.text().startsWith('HTTP/1.1 408 ')));
  t.is(a.seen.length, 0, 'nothing reached the upstream');
});

test.serial('slow body: a stalled body gets 408 at requestBodyTimeoutMs and its upstream connection is closed; a trickled one is not cut', async (t) => {
  const stalledSocket: { closedAt?: number; socket?: net.Socket } = {};
  const a = await upstream(t, 'A', (req, res) => {
    if (req.url === '/stall') {
      stalledSocket.socket = req.socket;
      req.socket.once('close', () => (stalledSocket.closedAt = Date.now()));
    }
    let n = 0;
    req.on('data', (d: Buffer) => (n += d.length));
    req.on('end', () => res.end(`got ${n}`));
  });
  const p = await proxyWith(t, { requestBodyTimeoutMs: T, requestHeadTimeoutMs: LONG, keepAliveTimeoutMs: LONG }, a);
  const key = `127.0.0.1:${a.port}`;
  const trickled = await rawClient(t, p.httpPort, 'POST /trickle HTTP/1.1\r\nHost: a.test\r\nContent-Length: 160\r\n\r\n');
  trickle(t, trickled, Array.from({ length: 16 }, () => 'y'.repeat(10)), 300); // 4.5 s, gaps of 300 ms
  const stalled = await rawClient(t, p.httpPort, `POST /stall HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1000\r\n\r\n${'x'.repeat(10)}`);
  const started = Date.now();
  await until(() => stalledSocket.socket !== undefined, 'the stalled request to reach the upstream');
  await sleep(T / 2);
  await assertPrompt(t, p.httpPort, 'ok.test', 'while a body stalls');
  await closedWithin([stalled], started + T + LATE_MS - Date.now());
  closedAtLimit(t, stalled, started, T, 408);
  t.regex(stalled.text(), /^HTTP\/1\.1 408 /);
  await until(() => stalledSocket.closedAt !== undefined, "the stalled exchange's upstream connection to close").catch(() => {});
  const upClosed = stalledSocket.closedAt;
  t.true(upClosed !== undefined && upClosed - (stalled.closedAt() ?? 0) < 500, 'the upstream connection of the stalled exchange was closed at once');
  t.is(p.load()[key]?.requests, 1, 'only the trickled request is in flight');
  await trickled.waitFor(/got 160$/, 5000).catch(() => {});
  t.regex(trickled.text(), /^HTTP\/1\.1 200 [^]*\r\n\r\ngot 160$/, 'a body trickled with gaps under the limit is not cut');
  await until(() => Object.keys(p.load()).length === 0, 'nothing in flight').catch(() => {});
  t.deepEqual(p.load(), {});
});

test.serial('empty lines sent every 300 ms on an idle connection do not keep it open past keepAliveTimeoutMs', async (t) => {
  const a = await upstream(t, 'A');
  const p = await proxyWith(t, { keepAliveTimeoutMs: T, requestHeadTimeoutMs: LONG }, a);
  const used = await rawClient(t, p.httpPort, GET('/'));
  const first = await used.waitFor(/\r\n\r\nA$/);
  const fresh = await rawClient(t, p.httpPort);
  const started = Date.now();
  const crlf = Array.from({ length: 40 }, () => '\r\n');
  trickle(t, fresh, crlf, 300);
  trickle(t, used, crlf, 300);
  await sleep(T / 2);
  await assertPrompt(t, p.httpPort, 'ok.test', 'during CRLF trickles');
  await closedWithin([fresh, used], started + T + LATE_MS - Date.now());
  closedAtLimit(t, fresh, started, T, 408);
  closedAtLimit(t, used, started, T, 408, first);
});

test.serial('pipelined flood: 3000 GETs in one write from a client that does not read are held back, then all answered in order', async (t) => {
  const body = Buffer.alloc(16 * 1024, 0x62);
  const a = await upstream(t, 'A', (req, res) => {
    res.setHeader('x-n', (req.url ?? '').slice(1));
    res.end(body);
  });
  const px = await childWith(t, a);
  const warm = await rawClient(t, px.port, Array.from({ length: 200 }, (_, i) => GET(`/w${i}`)).join(''), { paused: true });
  const warmed = new ResponseReader();
  warm.read((chunk) => warmed.push(chunk));
  await until(() => warmed.statuses.length === 200, 'the warm-up answers');
  warm.socket.destroy();
  await sleep(300);
  const baseline = px.rss();
  const seen = a.seen.length;
  const peak = rssPeak(t, px.rss);
  const flood = await rawClient(t, px.port, Array.from({ length: 3000 }, (_, i) => GET(`/${i}`)).join(''), { paused: true });
  const received = (await settled(() => a.seen.length)) - seen;
  await assertPrompt(t, px.port, 'ok.test', 'during a pipelined flood');
  const growth = peak.stop() - baseline;
  t.log(`upstream got ${received} of 3000 while the client did not read; proxy RSS ${mb(baseline)} + ${mb(growth)}`);
  t.true(received < 500, `the upstream received ${received} requests while the client did not read (bound 500)`);
  t.true(growth < 24 * MiB, `proxy RSS grew by ${mb(growth)} (bound 24 MB)`);
  const reader = new ResponseReader();
  flood.read((chunk) => reader.push(chunk));
  await until(() => reader.statuses.length >= 3000, 'all 3000 answers').catch(() => {});
  t.is(reader.statuses.length, 3000);
  t.true(reader.statuses.every((s) => s === 200));
  t.deepEqual(reader.tags, Array.from({ length: 3000 }, (_, i) => String(i)), 'answered in order');
});

test.serial('a client that never reads a 64 MiB response: proxy memory bounded, the upstream held back, then the whole body arrives intact', async (t) => {
  const SIZE = 64 * MiB;
  const chunks = Array.from({ length: SIZE / (64 * 1024) }, (_, i) => Buffer.alloc(64 * 1024, i % 251));
  const expected = createHash('sha256');
  for (const c of chunks) expected.update(c);
  const digest = expected.digest('hex');
  let pushed = 0;
  const a = await upstream(t, 'A', (req, res) => {
    if (req.url !== '/big') return void res.end('small');
    res.writeHead(200, { 'content-length': SIZE });
    streamChunks(res, chunks, (bytes) => (pushed += bytes));
  });
  const px = await childWith(t, a);
  const warm = await rawClient(t, px.port, GET('/small'));
  await warm.waitFor(/small$/);
  await sleep(300);
  const baseline = px.rss();
  const peak = rssPeak(t, px.rss);
  const client = await rawClient(t, px.port, GET('/big'), { paused: true });
  await until(() => pushed > 0, 'the upstream to start');
  const held = await settled(() => pushed, 500, 5000);
  await assertPrompt(t, px.port, 'ok.test', 'while a client does not read a large response');
  const growth = peak.stop() - baseline;
  t.log(`upstream wrote ${mb(held)} of ${mb(SIZE)} while the client did not read; proxy RSS ${mb(baseline)} + ${mb(growth)}`);
  t.true(growth < 40 * MiB, `proxy RSS grew by ${mb(growth)} (bound 40 MB)`);
  t.true(held < SIZE / 2, `the upstream could write ${mb(held)} of ${mb(SIZE)}`);
  const hash = createHash('sha256');
  const reader = new ResponseReader((piece) => hash.update(piece));
  client.read((chunk) => reader.push(chunk));
  await until(() => reader.bodyBytes >= SIZE, 'the whole body').catch(() => {});
  t.regex(reader.heads[0] ?? '', /^HTTP\/1\.1 200 /);
  t.is(reader.bodyBytes, SIZE);
  t.is(hash.digest('hex'), digest, 'the body arrived intact');
});

test.serial('5,000 idle keep-alive connections: proxy memory bounded per connection, a normal request still prompt', async (t) => {
  const COUNT = 5000;
  const PER_CONNECTION = 16 * 1024;
  const a = await upstream(t, 'A');
  const px = await childWith(t, a);
  for (let i = 0; i < 5; i++) await Promise.all(Array.from({ length: 50 }, () => rawClient(t, px.port, GET('/')).then((c) => c.waitFor(/\r\n\r\nA$/).then(() => c.socket.destroy()))));
  await sleep(300);
  const baseline = px.rss();
  const peak = rssPeak(t, px.rss);
  const idle: RawClient[] = [];
  for (let batch = 0; batch < COUNT / 250; batch++) {
    const opened = await Promise.all(Array.from({ length: 250 }, () => rawClient(t, px.port, GET('/'))));
    await Promise.all(opened.map((c) => c.waitFor(/\r\n\r\nA$/, 10_000)));
    idle.push(...opened);
  }
  await sleep(300);
  await assertPrompt(t, px.port, 'ok.test', `with ${COUNT} idle connections`);
  const after = px.rss();
  const peakGrowth = peak.stop() - baseline;
  t.log(`proxy RSS ${mb(baseline)} → ${mb(after)} (peak +${mb(peakGrowth)}): ${((after - baseline) / COUNT / 1024).toFixed(1)} KiB per idle connection`);
  t.is(idle.filter((c) => c.closedAt() !== undefined).length, 0, 'all still open');
  t.true(after - baseline < COUNT * PER_CONNECTION, `${((after - baseline) / COUNT / 1024).toFixed(1)} KiB per idle connection (bound ${PER_CONNECTION / 1024} KiB)`);
});

test.serial('a head that can no longer become valid (HTTP/0.9, bare LF lines) gets 400 at once, without the client ending', async (t) => {
  const a = await upstream(t, 'A');
  const p = await proxyWith(t, {}, a);
  const heads = ['GET /x\r\n', 'GET / HTTP/1.1\nHost: a\n\r\n'];
  const started = Date.now();
  const clients = await Promise.all(heads.map((head) => rawClient(t, p.httpPort, head)));
  const answered = await Promise.all(clients.map((c) => c.waitFor(/^HTTP\/1\.1 \d{3} [^]*\r\n\r\n/, 500).then(() => Date.now() - started, () => undefined)));
  await assertPrompt(t, p.httpPort, 'ok.test', 'next to heads that cannot become valid');
  for (const [i, c] of clients.entries()) {
    const ms = answered[i];
    t.true(ms !== undefined && ms < 500, `${JSON.stringify(heads[i])}: answered after ${ms ?? 'more than 500'} ms`);
    t.regex(c.text(), /^HTTP\/1\.1 400 /, JSON.stringify(heads[i]));
  }
  t.is(a.seen.length, 0, 'nothing reached the upstream');
});
