/**
 * HTTP forwarding: a node:http request handler that routes by Host, holds requests while their
 * route is paused, and forwards through a keep-alive undici Pool per upstream (round robin),
 * streaming bodies both ways with backpressure. Answers 404 (no route), 503 (no upstream, pause
 * ran out, shutting down), 502 (upstream unreachable or reset) and 504 (upstream headers timeout).
 * The handler is listener-agnostic: a later TLS listener passes `proto: 'https'`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { Logger } from '../src/logger.ts';
import { forwardRequestHeaders, forwardResponseHeaders } from './forward-headers.ts';
import type { ForwardedHead } from './forward-headers.ts';
import { isPaused } from './pause-gate.ts';
import type { PauseGate } from './pause-gate.ts';
import { nextUpstream } from './route-table.ts';
import type { ActiveRoute, RouteTable } from './route-table.ts';
import { Tracked } from './upstreams.ts';
import type { UpstreamEntry, Upstreams } from './upstreams.ts';

/** What the forwarding code of one listener needs. */
export interface ForwardContext {
  table: RouteTable;
  upstreams: Upstreams;
  gate: PauseGate;
  log: Logger;
  /** The scheme clients used to reach this listener, sent as X-Forwarded-Proto. */
  proto: 'http' | 'https';
  /** True once the proxy is shutting down: new requests get 503. */
  closing: () => boolean;
  /** How long an upstream may take to send response headers (default HEADERS_TIMEOUT_MS). */
  headersTimeoutMs: number;
}

/** The short texts of the proxy's own answers. */
export const MESSAGES = {
  noHost: 'depad proxy: the request has no Host header, or more than one',
  noRoute: 'depad proxy: no route for this host',
  noUpstream: 'depad proxy: the service has no running instance',
  pausedTooLong: 'depad proxy: the service was paused for too long',
  badGateway: 'depad proxy: the service did not answer',
  gatewayTimeout: 'depad proxy: the service did not answer in time',
  closing: 'depad proxy: shutting down',
} as const;

/** Answers with a short plain-text page (or destroys the response when headers already went out). */
export function replyText(res: ServerResponse, status: number, text: string): void {
  if (res.destroyed) return;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `${text}\n`;
  const headers = ['Content-Type', 'text/plain; charset=utf-8', 'Content-Length', String(Buffer.byteLength(body)), 'Cache-Control', 'no-store'];
  if (status === 503) headers.push('Retry-After', '1');
  res.writeHead(status, headers);
  res.end(body);
}

const ENDED_BY_PROXY = 'request ended by the proxy';

/** How long an upstream may take to send response headers (checked about once a second). */
export const HEADERS_TIMEOUT_MS = 300_000;

/** The error a request is aborted with when its upstream sends no headers in time. */
class HeadersTimeout extends Error {
  readonly code = 'UND_ERR_HEADERS_TIMEOUT';
}

/** One forwarded request: undici's handler for it, and the work item its upstream tracks. */
class ForwardedRequest extends Tracked implements Dispatcher.DispatchHandler {
  readonly kind = 'request' as const;
  readonly #entry: UpstreamEntry;
  readonly #res: ServerResponse;
  #controller: Dispatcher.DispatchController | undefined;
  #done = false;
  #aborted = false;
  #waitingForDrain = false;
  /** When response headers are due (ms since epoch); Infinity once they came. */
  #headersDue: number;
  #timedOut = false;

  constructor(entry: UpstreamEntry, res: ServerResponse, headersTimeoutMs: number) {
    super();
    this.#entry = entry;
    this.#res = res;
    this.#headersDue = Date.now() + headersTimeoutMs;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#aborted) controller.abort(new Error(ENDED_BY_PROXY));
    else if (this.#timedOut) controller.abort(new HeadersTimeout('the upstream sent no response headers in time'));
  }

  /** Headers overdue: abort the upstream request; onResponseError answers 504. */
  override expire(now: number): void {
    if (now < this.#headersDue || this.#done) return;
    this.#headersDue = Infinity;
    this.#timedOut = true;
    this.#controller?.abort(new HeadersTimeout('the upstream sent no response headers in time'));
  }

  onResponseStart(_c: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    const res = this.#res;
    if (status < 200 || res.destroyed) return; // 1xx informational: not relayed
    this.#headersDue = Infinity;
    try {
      if (statusMessage) res.writeHead(status, statusMessage, forwardResponseHeaders(headers));
      else res.writeHead(status, forwardResponseHeaders(headers));
    } catch (error) {
      // A status line or header node:http refuses to send (invalid characters): the upstream's fault.
      this.#entry.failed(error as Error, 'response');
      replyText(res, 502, MESSAGES.badGateway);
      this.#abort();
      this.#finish();
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const res = this.#res;
    if (!res.write(chunk) && !this.#waitingForDrain && !res.destroyed) {
      this.#waitingForDrain = true;
      controller.pause();
      res.once('drain', () => {
        this.#waitingForDrain = false;
        controller.resume();
      });
    }
  }

  onResponseEnd(): void {
    this.#res.end();
    this.#finish();
  }

  onResponseError(_c: Dispatcher.DispatchController, error: Error): void {
    if (!this.#aborted) {
      this.#entry.failed(error, 'request');
      const timeout = (error as { code?: string }).code === 'UND_ERR_HEADERS_TIMEOUT';
      replyText(this.#res, timeout ? 504 : 502, timeout ? MESSAGES.gatewayTimeout : MESSAGES.badGateway);
    }
    this.#finish();
  }

  /** Drain timeout: end both sides now. */
  destroy(): void {
    this.#abort();
    this.#res.destroy();
    this.#finish();
  }

  /** The client's response closed: complete, or the client went away (then abort upstream). */
  clientClosed(): void {
    if (this.#done) return;
    this.#abort();
    this.#finish();
  }

  #abort(): void {
    if (this.#aborted || this.#done) return;
    this.#aborted = true;
    this.#controller?.abort(new Error(ENDED_BY_PROXY));
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#entry.release(this);
  }
}

function forward(ctx: ForwardContext, active: ActiveRoute, req: IncomingMessage, res: ServerResponse, head: ForwardedHead): void {
  const i = nextUpstream(active);
  if (i < 0) return replyText(res, 503, MESSAGES.noUpstream);
  const entry = ctx.upstreams.entry(active.keys[i] as string);
  const job = new ForwardedRequest(entry, res, ctx.headersTimeoutMs);
  entry.add(job);
  res.on('close', () => job.clientClosed());
  const options: Dispatcher.DispatchOptions = {
    path: head.path,
    method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
    headers: head.headers,
    body: head.hasBody ? req : null,
  };
  try {
    entry.pool().dispatch(options, job);
  } catch (error) {
    job.onResponseError(undefined as unknown as Dispatcher.DispatchController, error as Error);
  }
}

function waitThenForward(ctx: ForwardContext, host: string, req: IncomingMessage, res: ServerResponse, head: ForwardedHead): void {
  const wait = ctx.gate.wait(() => ctx.table.httpRoute(host));
  res.once('close', wait.cancel);
  void wait.outcome.then((outcome) => {
    res.off('close', wait.cancel);
    if (outcome.kind === 'ready') forward(ctx, outcome.active, req, res, head);
    else if (outcome.kind === 'gone') replyText(res, 404, MESSAGES.noRoute);
    else replyText(res, 503, outcome.kind === 'timeout' ? MESSAGES.pausedTooLong : MESSAGES.closing);
  });
}

/** The `request` listener of an HTTP (later also HTTPS) server. */
export function createRequestHandler(ctx: ForwardContext): (req: IncomingMessage, res: ServerResponse) => void {
  return function handleRequest(req, res) {
    if (ctx.closing()) {
      res.shouldKeepAlive = false;
      return replyText(res, 503, MESSAGES.closing);
    }
    const head = forwardRequestHeaders(req.rawHeaders, req.url ?? '/', req.socket.remoteAddress ?? '', ctx.proto, false);
    if (head.host === undefined) return replyText(res, 400, MESSAGES.noHost);
    const active = ctx.table.httpRoute(head.host);
    if (active === undefined) return replyText(res, 404, MESSAGES.noRoute);
    if (active.route.pausedUntil !== undefined && isPaused(active)) return waitThenForward(ctx, head.host, req, res, head);
    forward(ctx, active, req, res, head);
  };
}
