// Health probe for a Docker HEALTHCHECK, 2 s timeout, on 127.0.0.1 (or PROBE_HOST):
//   node /app/probe.mjs http PORT [PATH]   exit 0 when GET PATH (default /health) answers 200
//   node /app/probe.mjs tcp PORT           exit 0 when PING is answered PONG
// Exit 1 when unhealthy (with the reason on stderr), 2 on a usage error.
import net from 'node:net';

const [kind, portArg, target = '/health'] = process.argv.slice(2);
const port = Number(portArg);
const host = process.env.PROBE_HOST || '127.0.0.1';
if ((kind !== 'http' && kind !== 'tcp') || !Number.isInteger(port) || port < 1 || port > 65535) {
  process.stderr.write('usage: probe.mjs http PORT [PATH] | probe.mjs tcp PORT\n');
  process.exit(2);
}

const fail = (why) => {
  process.stderr.write(`probe ${kind} ${host}:${port}: ${why}\n`);
  process.exit(1);
};
setTimeout(() => fail('timed out after 2 s'), 2000).unref();

// Both probes are one request and one answer line on a raw socket: no node:http to load.
const socket = net.connect({ host, port });
let got = '';
socket.setEncoding('latin1');
socket.on('error', (err) => fail(err.code || err.message));
socket.on('connect', () => {
  socket.write(kind === 'http'
    ? `GET ${target} HTTP/1.1\r\nHost: ${host}:${port}\r\nConnection: close\r\nUser-Agent: depad-probe\r\n\r\n`
    : 'PING\n');
});
socket.on('data', (chunk) => {
  got += chunk;
  const nl = got.indexOf('\n');
  if (nl < 0) return;
  const line = got.slice(0, nl).replace(/\r$/, '');
  if (kind === 'http' ? /^HTTP\/1\.[01] 200( |$)/.test(line) : line === 'PONG') process.exit(0);
  fail(`answered ${JSON.stringify(line.slice(0, 100))}`);
});
socket.on('end', () => fail(got ? `answered ${JSON.stringify(got.slice(0, 100))} without a newline` : 'closed without an answer'));
