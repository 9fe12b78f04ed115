/**
 * WebSocket (and any other HTTP/1.1 Upgrade) pass-through: the server's `upgrade` listener
 * routes by Host like a request, connects to the chosen upstream, writes the request head with
 * X-Forwarded-* headers, then pipes bytes both ways; an error on either side destroys both.
 * Each upgraded connection is tracked on its upstream until it closes (or a drain ends it).
 */
import net from 'node:net';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { forwardRequestHeaders } from './forward-headers.ts';
import type { ForwardedHead } from './forward-headers.ts';
import { MESSAGES } from './http-proxy.ts';
import type { ForwardContext } from './http-proxy.ts';
import { isPaused } from './pause-gate.ts';
import { nextUpstream } from './route-table.ts';
import type { ActiveRoute } from './route-table.ts';
import { SocketPair } from './upstreams.ts';

const REASONS: Record<number, string> = { 400: 'Bad Request', 404: 'Not Found', 502: 'Bad Gateway', 503: 'Service Unavailable' };

/** Answers an upgrade request with a short plain-text HTTP response and closes the socket. */
function replyRaw(socket: Duplex, status: number, text: string): void {
  if (socket.destroyed) return;
  const body = `${text}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n${body}`,
  );
}

/** The request head as written to the upstream. */
function requestHead(req: IncomingMessage, head: ForwardedHead): string {
  let text = `${req.method ?? 'GET'} ${head.path} HTTP/1.1\r\n`;
  const h = head.headers;
  for (let i = 0; i < h.length; i += 2) text += `${h[i] as string}: ${h[i + 1] as string}\r\n`;
  return `${text}\r\n`;
}

function connect(ctx: ForwardContext, active: ActiveRoute, req: IncomingMessage, socket: Duplex, first: Buffer, head: ForwardedHead): void {
  const i = nextUpstream(active);
  if (i < 0) return replyRaw(socket, 503, MESSAGES.noUpstream);
  const upstream = active.route.upstreams[i] as ActiveRoute['route']['upstreams'][number];
  const entry = ctx.upstreams.entry(active.keys[i] as string);
  const up = net.connect({ host: upstream.host, port: upstream.port });
  let connected = false;
  const work = new SocketPair('websocket', socket, up);
  entry.add(work);
  const release = () => entry.release(work);
  up.setNoDelay(true);
  up.once('connect', () => {
    connected = true;
    up.write(requestHead(req, head));
    if (first.length > 0) up.write(first);
    socket.pipe(up);
    up.pipe(socket);
  });
  up.on('error', (error) => {
    entry.failed(error, 'websocket');
    if (connected) socket.destroy();
    else replyRaw(socket, 502, MESSAGES.badGateway);
  });
  socket.on('error', () => up.destroy());
  // One side closed: let the other flush what it still has, then close too.
  up.once('close', () => {
    release();
    if (!socket.destroyed) (socket as net.Socket).destroySoon();
  });
  socket.once('close', () => {
    release();
    if (!up.destroyed) up.destroySoon();
  });
}

/** The `upgrade` listener of an HTTP (later also HTTPS) server. */
export function createUpgradeHandler(ctx: ForwardContext): (req: IncomingMessage, socket: Duplex, first: Buffer) => void {
  return function handleUpgrade(req, socket, first) {
    socket.on('error', () => socket.destroy());
    if (ctx.closing()) return replyRaw(socket, 503, MESSAGES.closing);
    const head = forwardRequestHeaders(req.rawHeaders, req.url ?? '/', req.socket.remoteAddress ?? '', ctx.proto, true);
    if (head.host === undefined) return replyRaw(socket, 400, MESSAGES.noHost);
    const host = head.host;
    const active = ctx.table.httpRoute(host);
    if (active === undefined) return replyRaw(socket, 404, MESSAGES.noRoute);
    if (!isPaused(active)) return connect(ctx, active, req, socket, first, head);
    socket.pause();
    const wait = ctx.gate.wait(() => ctx.table.httpRoute(host));
    socket.once('close', wait.cancel);
    void wait.outcome.then((outcome) => {
      socket.off('close', wait.cancel);
      if (outcome.kind === 'ready') connect(ctx, outcome.active, req, socket, first, head);
      else if (outcome.kind === 'gone') replyRaw(socket, 404, MESSAGES.noRoute);
      else replyRaw(socket, 503, outcome.kind === 'timeout' ? MESSAGES.pausedTooLong : MESSAGES.closing);
    });
  };
}
