// The Node.js demo app of depad-example/node-app: one dependency-free ES module (node: built-ins
// only). MODE=http (default) is a web service, MODE=tcp a tiny line-protocol database.
//
// MODE=http, on PORT (default 8080), HTTP/1.1 with keep-alive:
//   GET  /info        JSON { app, deployment, service, version, instance, hostname, pid }
//   GET  /health      200 "ok"; 503 when /tmp/unhealthy exists or UNHEALTHY=1
//   GET  /slow?ms=N   answers with the version after N ms (for drain tests)
//   GET  /cpu?n=N     N SHA-256 rounds (at most 1e6: CPU-bound work), then answers (bench/replicas.ts)
//   POST /echo        streams the request body back
//   GET  /count       INCR count on the db at DB_HOST:DB_PORT; 503 when it cannot be reached
//   GET  /ws          WebSocket (RFC 6455): sends "hello from <version>", answers each text
//                     message with "<version>:<message>"; fragmented or binary messages: close 1003
// MODE=tcp, on PORT (default 5432), one command per line, many per connection:
//   PING → PONG, GET k → value (0 when unset), SET k v → OK, INCR k → new value, VERSION → version
//   Each key is a file DATA_DIR/<key> (default /data; keys keep only [A-Za-z0-9_-]), the same
//   layout as depad-example/app's db, so a named volume keeps the data across instances.
// SIGTERM/SIGINT: stop accepting, let in-flight requests finish, exit 0 (forced after 9 s).
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream';

const env = process.env;
const MODE = env.MODE || 'http';
const VERSION = readVersion();
const STOP_DEADLINE_MS = 9000;

function readVersion() {
  try {
    return fs.readFileSync(new URL('./VERSION', import.meta.url), 'utf8').trim() || 'dev';
  } catch {
    return 'dev';
  }
}

function log(message) {
  process.stdout.write(`node-app ${VERSION} ${MODE}: ${message}\n`);
}

function port(fallback) {
  const n = Number(env.PORT || fallback);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    console.error(`node-app: bad PORT ${JSON.stringify(env.PORT)}`);
    process.exit(2);
  }
  return n;
}

/** Calls `stop(signal)` once on SIGTERM or SIGINT; exits 0 after STOP_DEADLINE_MS regardless. */
function onStopSignal(stop) {
  let stopping = false;
  const handler = (signal) => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => {
      log(`stopped (${signal}; forced after ${STOP_DEADLINE_MS} ms)`);
      process.exit(0);
    }, STOP_DEADLINE_MS).unref();
    stop(signal);
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

// ---------------------------------------------------------------------------------------------
// MODE=http

function httpMode() {
  let stopping = false;
  const sockets = new Set(); // open WebSocket connections

  const server = http.createServer((req, res) => {
    if (stopping) res.setHeader('Connection', 'close');
    const url = new URL(req.url || '/', 'http://localhost');
    const route = ROUTES[url.pathname];
    if (!route) return send(res, 404, 'not found\n');
    const handler = route[req.method === 'HEAD' ? 'GET' : req.method || 'GET'];
    if (!handler) {
      res.setHeader('Allow', Object.keys(route).join(', '));
      return send(res, 405, 'method not allowed\n');
    }
    handler(req, res, url);
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000; // must outlast keepAliveTimeout

  /** Ends `res` with a text body; asks the client to close once we are stopping. */
  function send(res, status, body, type = 'text/plain; charset=utf-8') {
    if (res.headersSent || res.destroyed) return;
    if (stopping) res.setHeader('Connection', 'close');
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  }

  const ROUTES = {
    '/info': {
      GET: (req, res) => send(res, 200, JSON.stringify({
        app: env.APP_NAME ?? null,
        deployment: env.DEPAD_DEPLOYMENT ?? null,
        service: env.DEPAD_SERVICE ?? null,
        version: VERSION,
        instance: env.HOSTNAME ?? null,
        hostname: os.hostname(),
        pid: process.pid,
      }) + '\n', 'application/json'),
    },
    '/health': {
      GET: (req, res) => {
        if (env.UNHEALTHY === '1' || fs.existsSync('/tmp/unhealthy')) send(res, 503, 'unhealthy\n');
        else send(res, 200, 'ok\n');
      },
    },
    '/slow': {
      GET: (req, res, url) => {
        const ms = Math.min(Math.max(Number(url.searchParams.get('ms')) || 0, 0), 600_000);
        const timer = setTimeout(() => send(res, 200, `${VERSION}\n`), ms);
        res.on('close', () => clearTimeout(timer));
      },
    },
    '/cpu': {
      // CPU-bound work for the replicas benchmark: n SHA-256 rounds (at most 1e6), a fixed amount of work, then answers.
      GET: (req, res, url) => {
        const n = Math.min(Math.max(Math.floor(Number(url.searchParams.get('n')) || 0), 0), 1_000_000);
        let digest = '';
        for (let i = 0; i < n; i++) digest = crypto.createHash('sha256').update(digest).digest('hex');
        send(res, 200, `${VERSION} ${digest.slice(0, 8)}\n`);
      },
    },
    '/echo': {
      POST: (req, res) => {
        res.writeHead(200, { 'Content-Type': req.headers['content-type'] || 'application/octet-stream' });
        pipeline(req, res, () => {});
      },
    },
    '/count': {
      GET: (req, res) => {
        const host = env.DB_HOST;
        if (!host) return send(res, 503, 'no db: DB_HOST is not set\n');
        dbCommand(host, Number(env.DB_PORT || 5432), 'INCR count').then(
          (value) => /^-?\d+$/.test(value) ? send(res, 200, `${value}\n`) : send(res, 502, `db said: ${value}\n`),
          (err) => send(res, 503, `db unreachable: ${err.message}\n`),
        );
      },
    },
  };

  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url || '/', 'http://localhost');
    const key = req.headers['sec-websocket-key'];
    if (url.pathname !== '/ws' || stopping || req.method !== 'GET'
        || String(req.headers.upgrade).toLowerCase() !== 'websocket'
        || typeof key !== 'string' || Buffer.from(key, 'base64').length !== 16
        || req.headers['sec-websocket-version'] !== '13') {
      const status = url.pathname !== '/ws' ? '404 Not Found' : stopping ? '503 Service Unavailable' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    const accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
      + `Sec-WebSocket-Accept: ${accept}\r\n\r\n`);
    const ws = webSocket(socket, head, {
      onOpen: (ws) => ws.send(`hello from ${VERSION}`),
      onText: (ws, text) => ws.send(`${VERSION}:${text}`),
    });
    sockets.add(ws);
    socket.on('close', () => sockets.delete(ws));
  });

  server.on('clientError', (err, socket) => {
    if (socket.writable && !socket.destroyed) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  server.listen(port(8080), () => log(`listening on :${server.address().port} (pid ${process.pid})`));

  onStopSignal((signal) => {
    stopping = true;
    server.close(() => {
      log(`stopped (${signal})`);
      process.exit(0);
    });
    server.closeIdleConnections();
    // Keep-alive connections whose request is in flight become idle once it is answered.
    setInterval(() => server.closeIdleConnections(), 100).unref();
    for (const ws of sockets) ws.close(1001, 'going away');
  });
}

/** Sends one line to the db and resolves with its one-line answer (2 s timeout). */
function dbCommand(host, dbPort, line) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port: dbPort });
    let buffered = '';
    socket.setTimeout(2000, () => socket.destroy(new Error('timed out')));
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${line}\n`));
    socket.on('data', (chunk) => {
      buffered += chunk;
      const nl = buffered.indexOf('\n');
      if (nl >= 0) {
        resolve(buffered.slice(0, nl).replace(/\r$/, ''));
        socket.end();
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error('closed without an answer')));
  });
}

/**
 * A minimal RFC 6455 server connection on an upgraded socket: `onOpen` runs first, text messages
 * go to `onText`, pings are answered, a close is echoed. Fragmented and binary messages are
 * refused (1003).
 */
function webSocket(socket, head, { onOpen, onText }) {
  const MAX_PAYLOAD = 1 << 20;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let buffer = head && head.length ? Buffer.from(head) : Buffer.alloc(0);
  let closing = false;
  socket.setNoDelay(true);
  socket.setTimeout(0);

  function frame(opcode, payload) {
    const len = payload.length;
    const header = len < 126 ? Buffer.alloc(2) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
    header[0] = 0x80 | opcode;
    if (len < 126) header[1] = len;
    else if (len < 65536) { header[1] = 126; header.writeUInt16BE(len, 2); }
    else { header[1] = 127; header.writeBigUInt64BE(BigInt(len), 2); }
    if (socket.writable) socket.write(Buffer.concat([header, payload]));
  }

  function close(code, reason = '') {
    if (closing) return;
    closing = true;
    const r = Buffer.from(reason);
    const payload = Buffer.alloc(2 + r.length);
    payload.writeUInt16BE(code, 0);
    r.copy(payload, 2);
    frame(0x8, payload);
    socket.end();
    setTimeout(() => socket.destroy(), 2000).unref(); // the client should close its side first
  }

  function parse() {
    while (!closing && buffer.length >= 2) {
      const fin = (buffer[0] & 0x80) !== 0;
      const rsv = buffer[0] & 0x70;
      const opcode = buffer[0] & 0x0f;
      const masked = (buffer[1] & 0x80) !== 0;
      let len = buffer[1] & 0x7f;
      let offset = 2;
      if (len === 126) {
        if (buffer.length < 4) return;
        len = buffer.readUInt16BE(2);
        offset = 4;
      } else if (len === 127) {
        if (buffer.length < 10) return;
        const big = buffer.readBigUInt64BE(2);
        if (big > BigInt(MAX_PAYLOAD)) return close(1009, 'message too big');
        len = Number(big);
        offset = 10;
      }
      if (rsv) return close(1002, 'reserved bits set');
      if (!masked) return close(1002, 'client frames must be masked');
      if (len > MAX_PAYLOAD) return close(1009, 'message too big');
      if (buffer.length < offset + 4 + len) return;
      const mask = buffer.subarray(offset, offset + 4);
      const payload = Buffer.from(buffer.subarray(offset + 4, offset + 4 + len));
      for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
      buffer = buffer.subarray(offset + 4 + len);

      if (opcode >= 0x8) { // control frames: never fragmented, at most 125 bytes
        if (!fin || len > 125) return close(1002, 'bad control frame');
        if (opcode === 0x8) {
          const code = len >= 2 ? payload.readUInt16BE(0) : 1000;
          const valid = (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006)
            || (code >= 3000 && code <= 4999);
          return close(valid ? code : 1002);
        }
        if (opcode === 0x9) frame(0xa, payload);
        else if (opcode !== 0xa) return close(1002, 'unknown opcode');
      } else if (opcode === 0x1 && fin) {
        let text;
        try { text = decoder.decode(payload); } catch { return close(1007, 'invalid utf-8'); }
        onText(ws, text);
      } else if (opcode === 0x0 || opcode === 0x1 || opcode === 0x2) {
        return close(1003, opcode === 0x2 ? 'binary messages are not supported' : 'fragmented messages are not supported');
      } else {
        return close(1002, 'unknown opcode');
      }
    }
  }

  socket.on('data', (chunk) => {
    buffer = buffer.length ? Buffer.concat([buffer, chunk]) : chunk;
    parse();
  });
  socket.on('error', () => socket.destroy());
  socket.on('end', () => { if (!closing) { closing = true; socket.end(); } });
  const ws = { send: (text) => { if (!closing) frame(0x1, Buffer.from(text)); }, close };
  onOpen(ws);
  parse(); // frames the client sent along with its handshake
  return ws;
}

// ---------------------------------------------------------------------------------------------
// MODE=tcp

function tcpMode() {
  const dataDir = env.DATA_DIR || '/data';
  fs.mkdirSync(dataDir, { recursive: true });
  const file = (key) => path.join(dataDir, key);
  const read = (key) => {
    try { return fs.readFileSync(file(key), 'utf8').replace(/\n$/, ''); } catch (err) {
      if (err.code === 'ENOENT') return null;
      throw err;
    }
  };
  const write = (key, value) => { // whole-file replace, so a reader never sees half a value
    const tmp = file(`.${key}.${process.pid}.tmp`);
    fs.writeFileSync(tmp, `${value}\n`);
    fs.renameSync(tmp, file(key));
  };

  function answer(line) {
    const m = /^\s*(\S+)(?:\s+(\S+))?(?:\s(.*))?$/.exec(line);
    if (!m) return null; // blank line
    const cmd = m[1].toUpperCase();
    if (cmd === 'PING') return 'PONG';
    if (cmd === 'VERSION') return VERSION;
    if (cmd === 'QUIT') return 'BYE';
    if (cmd !== 'GET' && cmd !== 'SET' && cmd !== 'INCR') return 'ERR unknown command';
    const key = (m[2] || '').replace(/[^A-Za-z0-9_-]/g, '');
    if (!key || key.length > 200) return 'ERR bad key';
    try {
      if (cmd === 'GET') return read(key) ?? '0';
      if (cmd === 'SET') { write(key, (m[3] ?? '').replace(/[\r\n]/g, '')); return 'OK'; }
      const old = read(key) ?? '0';
      if (!/^-?\d+$/.test(old.trim())) return 'ERR value is not an integer';
      const next = String(BigInt(old.trim()) + 1n);
      write(key, next);
      return next;
    } catch (err) {
      return `ERR ${err.code || err.message}`;
    }
  }

  const connections = new Set();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    connections.add(socket);
    socket.on('close', () => connections.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setEncoding('utf8');
    let buffered = '';
    const reply = (line) => {
      const text = answer(line.replace(/\r$/, ''));
      if (text !== null && !socket.writableEnded) socket.write(`${text}\n`);
      if (text === 'BYE') socket.end();
    };
    socket.on('data', (chunk) => {
      buffered += chunk;
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0 && !socket.writableEnded) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        reply(line);
      }
      if (buffered.length > 65536) { socket.end('ERR line too long\n'); buffered = ''; }
    });
    socket.on('end', () => { // the client is done sending: answer a last line without \n, then close
      if (buffered && !socket.writableEnded) reply(buffered);
      buffered = '';
      socket.end();
    });
  });
  server.listen(port(5432), () => log(`listening on :${server.address().port} (pid ${process.pid}, data in ${dataDir})`));

  onStopSignal((signal) => {
    // Commands are answered synchronously, so no connection is mid-command here.
    server.close(() => {
      log(`stopped (${signal})`);
      process.exit(0);
    });
    for (const socket of connections) socket.end();
  });
}

if (MODE === 'http') httpMode();
else if (MODE === 'tcp') tcpMode();
else {
  console.error(`node-app: unknown MODE ${JSON.stringify(MODE)} (http or tcp)`);
  process.exit(2);
}
