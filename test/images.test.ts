/**
 * The example images depad-example/node-app:1 and :2 (scripts/build-images) on the real engine:
 * image config, the http mode's endpoints (info, keep-alive, slow, echo, count, WebSocket,
 * health), the tcp mode's line protocol and its data on a named volume, the probe script, and a
 * draining SIGTERM. Every container, volume and network is named depad-imgtest-<random>, labelled
 * depad.test=images, and removed in t.teardown, pass or fail.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import type { ExecutionContext } from 'ava';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const IMAGE = (version: 1 | 2) => `depad-example/node-app:${version}`;
const LABEL = 'depad.test=images';

interface Exec {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command; never throws on a non-zero exit. */
function exec(file: string, args: readonly string[], timeoutMs = 60_000): Promise<Exec> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err);
      resolve({ code: err ? Number(err.code) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** Runs `docker args…` and returns its stdout; throws unless it exits 0. */
async function docker(args: readonly string[], timeoutMs?: number): Promise<string> {
  const r = await exec('docker', args, timeoutMs);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

const unique = () => `depad-imgtest-${randomBytes(4).toString('hex')}`;

/** A docker volume or network that `t.teardown` removes. */
async function dockerObject(t: ExecutionContext, kind: 'volume' | 'network'): Promise<string> {
  const name = unique();
  t.teardown(async () => { await exec('docker', [kind, 'rm', name]); });
  await docker([kind, 'create', '--label', LABEL, name]);
  return name;
}

interface Container {
  name: string;
  /** The host port published for the container's PORT (127.0.0.1). */
  port: number;
}

interface RunOptions {
  version?: 1 | 2;
  env?: Record<string, string>;
  /** The container port to publish on 127.0.0.1 (8080 in http mode, 5432 in tcp mode). */
  containerPort?: number;
  args?: readonly string[];
}

/** Starts a node-app container that `t.teardown` removes, and waits until it answers. */
async function run(t: ExecutionContext, options: RunOptions = {}): Promise<Container> {
  const name = unique();
  t.teardown(async () => { await exec('docker', ['rm', '-f', '-v', name]); });
  const containerPort = options.containerPort ?? 8080;
  const env = Object.entries(options.env ?? {}).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
  await docker(['run', '-d', '--name', name, '--label', LABEL, '-p', `127.0.0.1::${containerPort}`, ...env,
    ...(options.args ?? []), IMAGE(options.version ?? 1)]);
  const mapped = await docker(['port', name, `${containerPort}/tcp`]);
  const port = Number(/127\.0\.0\.1:(\d+)/.exec(mapped)?.[1]);
  if (!port) throw new Error(`no published port for ${name}: ${mapped}`);
  const c = { name, port };
  await waitUntilAnswering(c, options.env?.MODE === 'tcp');
  return c;
}

/** Polls until the app (not just docker-proxy) answers: any HTTP status, or PONG. */
async function waitUntilAnswering(c: Container, tcp: boolean): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      if (tcp) {
        const client = await lineClient(c.port);
        try { if ((await client.send('PING')) === 'PONG') return; } finally { client.close(); }
      } else {
        await request(c.port, '/health');
        return;
      }
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${c.name} did not answer within 15 s: ${String(err)}`);
    }
    await sleep(100);
  }
}

interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The client side's local port: the same for two requests on one connection. */
  localPort: number;
}

/** One HTTP request to 127.0.0.1:port. */
function request(port: number, urlPath: string, options: { method?: string; body?: Buffer | string; agent?: http.Agent } = {}): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method: options.method ?? 'GET', agent: options.agent ?? false }, (res) => {
      const localPort = res.socket.localPort ?? 0;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString(), localPort }));
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${urlPath} timed out`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

interface LineClient {
  send(line: string): Promise<string>;
  close(): void;
}

/** A connection to the tcp mode: one answer line per command, in order. */
function lineClient(port: number): Promise<LineClient> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const waiting: { resolve: (line: string) => void; reject: (err: Error) => void }[] = [];
    let buffered = '';
    socket.setEncoding('utf8');
    socket.setTimeout(5000, () => socket.destroy(new Error('line client timed out')));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        waiting.shift()?.resolve(line);
      }
    });
    const fail = (err: Error) => { for (const w of waiting.splice(0)) w.reject(err); };
    socket.on('error', (err) => { fail(err); reject(err); });
    socket.on('close', () => fail(new Error('connection closed')));
    socket.on('connect', () => resolve({
      send: (line) => new Promise<string>((res, rej) => { waiting.push({ resolve: res, reject: rej }); socket.write(`${line}\n`); }),
      close: () => socket.destroy(),
    }));
  });
}

/** Runs the probe script inside the container; resolves with its exit code and duration. */
async function probe(c: Container, args: readonly string[]): Promise<{ code: number; ms: number; stderr: string }> {
  const started = performance.now();
  const r = await exec('docker', ['exec', c.name, 'node', '/app/probe.mjs', ...args]);
  return { code: r.code, ms: performance.now() - started, stderr: r.stderr };
}

/** Opens a WebSocket and collects its messages. */
function webSocket(port: number) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  const messages: string[] = [];
  const waiters: (() => void)[] = [];
  ws.addEventListener('message', (e) => { messages.push(String(e.data)); for (const w of waiters.splice(0)) w(); });
  const closed = new Promise<{ code: number; reason: string; wasClean: boolean }>((resolve) =>
    ws.addEventListener('close', (e) => resolve({ code: e.code, reason: e.reason, wasClean: e.wasClean })));
  /** Resolves with message number `n` (0-based) once it has arrived. */
  const message = async (n: number): Promise<string> => {
    const deadline = Date.now() + 5000;
    while (messages.length <= n) {
      if (Date.now() > deadline) throw new Error(`WebSocket: no message #${n} within 5 s (got ${JSON.stringify(messages)})`);
      await Promise.race([new Promise<void>((r) => waiters.push(r)), sleep(200)]);
    }
    return messages[n]!;
  };
  return { ws, messages, message, closed };
}

test.before('build the images (idempotent)', async () => {
  const r = await exec('bash', [path.join(ROOT, 'scripts/build-images')], 300_000);
  if (r.code !== 0) throw new Error(`scripts/build-images exited ${r.code}: ${r.stderr}`);
});

test('image config: node on PATH, WORKDIR /app, CMD server.mjs, version label and /app/VERSION', async (t) => {
  for (const version of [1, 2] as const) {
    const config = JSON.parse(await docker(['image', 'inspect', '--format', '{{json .Config}}', IMAGE(version)])) as {
      Env: string[]; WorkingDir: string; Cmd: string[]; Labels: Record<string, string>;
    };
    t.deepEqual(config.Env, ['PATH=/bin:/usr/local/bin']);
    t.is(config.WorkingDir, '/app');
    t.deepEqual(config.Cmd, ['node', '/app/server.mjs']);
    t.is(config.Labels['org.opencontainers.image.version'], String(version));
    t.regex(config.Labels['depad.example.inputs'] ?? '', new RegExp(`^[0-9a-f]{16}-${version}$`));
    const name = unique();
    t.teardown(async () => { await exec('docker', ['rm', '-f', name]); });
    const out = await docker(['run', '--name', name, '--label', LABEL, IMAGE(version), 'sh', '-c',
      'cat /app/VERSION; node -p "process.versions.node.split(\\".\\")[0]"; pwd; command -v node']);
    const [file, major, cwd, node] = out.split('\n');
    t.is(file, String(version));
    t.true(Number(major) >= 22, `node major ${major}`);
    t.is(cwd, '/app');
    t.is(node, '/usr/local/bin/node');
  }
});

test('http: /info tells version 1 from 2, with the deployment, service and instance', async (t) => {
  const env = { APP_NAME: 'shop', DEPAD_DEPLOYMENT: 'shop-eu', DEPAD_SERVICE: 'web' };
  const [one, two] = await Promise.all([run(t, { version: 1, env }), run(t, { version: 2, env })]);
  for (const [c, version] of [[one, '1'], [two, '2']] as const) {
    const r = await request(c.port, '/info');
    t.is(r.status, 200);
    t.regex(String(r.headers['content-type']), /^application\/json/);
    const info = JSON.parse(r.body) as Record<string, unknown>;
    const id = await docker(['inspect', '--format', '{{.Config.Hostname}}', c.name]);
    t.deepEqual(info, { app: 'shop', deployment: 'shop-eu', service: 'web', version, instance: id, hostname: id, pid: 1 });
  }
});

test('http: keep-alive serves two requests on one connection (timeout=65)', async (t) => {
  const c = await run(t);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const first = await request(c.port, '/info', { agent });
  const second = await request(c.port, '/health', { agent });
  t.is(first.status, 200);
  t.is(second.status, 200);
  t.is(second.body, 'ok\n');
  t.is(first.localPort, second.localPort, 'the second request reused the first one\'s connection');
  t.is(first.headers.connection, 'keep-alive');
  t.is(first.headers['keep-alive'], 'timeout=65');
});

test('http: /slow answers after ms, /echo streams the body back, unknown paths 404', async (t) => {
  const c = await run(t, { version: 2 });
  const started = performance.now();
  const slow = await request(c.port, '/slow?ms=600');
  const took = performance.now() - started;
  t.is(slow.status, 200);
  t.is(slow.body.trim(), '2');
  t.true(took >= 590 && took < 3000, `took ${Math.round(took)} ms`);

  // A streamed (chunked) upload of 1 MiB, larger than any socket buffer, comes back byte for byte.
  const body = randomBytes(1 << 19).toString('hex');
  const echoed = await new Promise<string>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: c.port, path: '/echo', method: 'POST', agent: false,
      headers: { 'content-type': 'text/plain' } }, (res) => {
      t.is(res.statusCode, 200);
      t.is(res.headers['content-type'], 'text/plain');
      let got = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { got += d; });
      res.on('end', () => resolve(got));
    });
    req.on('error', reject);
    for (let i = 0; i < body.length; i += 65536) req.write(body.slice(i, i + 65536));
    req.end();
  });
  t.is(echoed.length, body.length);
  t.true(echoed === body, 'echoed body differs');

  t.is((await request(c.port, '/nope')).status, 404);
  t.is((await request(c.port, '/echo')).status, 405);
});

test('http: WebSocket greets with the version and echoes "<version>:<message>"', async (t) => {
  for (const version of [1, 2] as const) {
    const c = await run(t, { version });
    const { ws, message, closed } = webSocket(c.port);
    t.teardown(() => ws.close());
    t.is(await message(0), `hello from ${version}`);
    ws.send('hi');
    t.is(await message(1), `${version}:hi`);
    const long = 'é'.repeat(40_000); // 80 000 bytes: a 64-bit length frame
    ws.send(long);
    t.is(await message(2), `${version}:${long}`);
    ws.close(1000, 'done');
    t.like(await closed, { code: 1000, wasClean: true });
  }
});

test('http: /count increments a counter in the tcp db; 503 without one', async (t) => {
  const network = await dockerObject(t, 'network');
  await run(t, { env: { MODE: 'tcp' }, containerPort: 5432, args: ['--network', network, '--network-alias', 'db'] });
  const web = await run(t, { env: { DB_HOST: 'db', DB_PORT: '5432' }, args: ['--network', network] });
  t.deepEqual([(await request(web.port, '/count')).body, (await request(web.port, '/count')).body], ['1\n', '2\n']);
  const alone = await run(t);
  const r = await request(alone.port, '/count');
  t.is(r.status, 503);
  const unreachable = await run(t, { env: { DB_HOST: '127.0.0.1', DB_PORT: '9' } });
  t.is((await request(unreachable.port, '/count')).status, 503);
});

test('tcp: PING, SET/GET, INCR, VERSION on one connection; data outlives the instance on a volume', async (t) => {
  const volume = await dockerObject(t, 'volume');
  const one = await run(t, { version: 1, env: { MODE: 'tcp' }, containerPort: 5432, args: ['-v', `${volume}:/data`] });
  const a = await lineClient(one.port);
  t.teardown(() => a.close());
  t.is(await a.send('PING'), 'PONG');
  t.is(await a.send('VERSION'), '1');
  t.is(await a.send('SET greeting hello there'), 'OK');
  t.is(await a.send('GET greeting'), 'hello there');
  t.is(await a.send('INCR visits'), '1');
  t.is(await a.send('INCR visits'), '2');
  t.is(await a.send('INCR greeting'), 'ERR value is not an integer');
  t.is(await a.send('FLY away'), 'ERR unknown command');
  a.close();
  await docker(['stop', '-t', '10', one.name]);
  t.is(await docker(['inspect', '--format', '{{.State.ExitCode}}', one.name]), '0');

  const two = await run(t, { version: 2, env: { MODE: 'tcp' }, containerPort: 5432, args: ['-v', `${volume}:/data`] });
  const b = await lineClient(two.port);
  t.teardown(() => b.close());
  t.is(await b.send('VERSION'), '2');
  t.is(await b.send('INCR visits'), '3');
  t.is(await b.send('GET greeting'), 'hello there');
});

test('probe.mjs: exit 0 when healthy, 1 otherwise, quickly', async (t) => {
  const [web, db] = await Promise.all([run(t), run(t, { env: { MODE: 'tcp' }, containerPort: 5432 })]);
  const ok = await probe(web, ['http', '8080', '/health']);
  t.is(ok.code, 0, ok.stderr);
  t.true(ok.ms < 2000, `probe took ${Math.round(ok.ms)} ms`);
  t.is((await probe(db, ['tcp', '5432'])).code, 0);
  t.is((await probe(web, ['http', '8080', '/nope'])).code, 1);
  t.is((await probe(web, ['tcp', '8080'])).code, 1, 'an HTTP server does not answer PONG');
  t.is((await probe(web, ['http', '9999'])).code, 1, 'nothing listens there');
  t.is((await probe(db, ['http', '5432'])).code, 1);
  t.is((await probe(web, ['bogus'])).code, 2);

  await docker(['exec', web.name, 'touch', '/tmp/unhealthy']);
  const sick = await probe(web, ['http', '8080', '/health']);
  t.is(sick.code, 1);
  t.regex(sick.stderr, /503/);
  t.is((await request(web.port, '/health')).status, 503);
  await docker(['exec', web.name, 'rm', '/tmp/unhealthy']);
  t.is((await probe(web, ['http', '8080', '/health'])).code, 0);
});

test('UNHEALTHY=1: /health is 503 for good, the rest still answers', async (t) => {
  const c = await run(t, { version: 2, env: { UNHEALTHY: '1' } });
  const r = await request(c.port, '/health');
  t.is(r.status, 503);
  t.is(r.body, 'unhealthy\n');
  t.is((await probe(c, ['http', '8080', '/health'])).code, 1);
  t.is(JSON.parse((await request(c.port, '/info')).body).version, '2');
});

test('SIGTERM: in-flight requests finish, idle and WebSocket connections close, exit 0 long before the 9 s deadline', async (t) => {
  const c = await run(t);
  // An idle keep-alive connection and an open WebSocket must not hold the stop up.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  t.is((await request(c.port, '/health', { agent })).status, 200);
  const socket = webSocket(c.port);
  t.teardown(() => socket.ws.close());
  t.is(await socket.message(0), 'hello from 1');

  const slow = request(c.port, '/slow?ms=1200');
  await sleep(200); // the request is in flight
  const started = performance.now();
  await docker(['stop', '-t', '10', c.name]);
  const took = performance.now() - started;
  const answered = await slow;
  t.is(answered.status, 200, 'the in-flight request was answered');
  t.is(answered.body.trim(), '1');
  t.is(answered.headers.connection, 'close');
  // Held by the idle connection it would take the app's 9 s deadline (docker's kill at 10 s): 6 s leaves a loaded machine room.
  t.true(took < 6000, `docker stop took ${Math.round(took)} ms`);
  t.true(took >= 800, `stopped after ${Math.round(took)} ms, before the in-flight request was done`);
  t.like(await socket.closed, { code: 1001 });
  t.is(await docker(['inspect', '--format', '{{.State.ExitCode}}', c.name]), '0');
  const logs = await docker(['logs', c.name]);
  t.regex(logs, /^node-app 1 http: listening on :8080 \(pid 1\)\nnode-app 1 http: stopped \(SIGTERM\)$/);

  const db = await run(t, { env: { MODE: 'tcp' }, containerPort: 5432 });
  const client = await lineClient(db.port);
  t.teardown(() => client.close());
  t.is(await client.send('PING'), 'PONG');
  const dbStarted = performance.now();
  await docker(['stop', '-t', '10', db.name]);
  const dbTook = performance.now() - dbStarted;
  t.true(dbTook < 6000, `docker stop (tcp) took ${Math.round(dbTook)} ms`);
  t.is(await docker(['inspect', '--format', '{{.State.ExitCode}}', db.name]), '0');
  t.regex(await docker(['logs', db.name]), /node-app 1 tcp: stopped \(SIGTERM\)/);
});
