/**
 * What an exchange (http-exchange.ts) and the client connection it serves (http-connection.ts)
 * agree on: the client's side of an exchange, an exchange's timeouts, and the texts of the
 * proxy's own error pages.
 */
import type { UpstreamEntry } from './upstreams.ts';
import type { UpstreamSocket } from './upstream-socket.ts';

/** What an exchange needs from the client connection it serves. */
export interface ExchangeClient {
  /** Writes to the client; false when its buffer is full (wait for `onClientDrain`). */
  write(data: Buffer | string): boolean;
  /** Stops reading the client (request body backpressure). */
  pauseReading(): void;
  /** Reads the client again. */
  resumeReading(): void;
  /** The exchange is complete; the connection carries the next request when `keepClient`. */
  exchangeDone(keepClient: boolean): void;
  /** Answers with a proxy error page (nothing was sent yet) and closes the connection. */
  replyError(status: number, text: string): void;
  /** Ends the client's connection at once (the response was cut short). */
  abort(): void;
  /** The response is complete but the request body is not: read the rest (bounded in time), then close. */
  linger(): void;
  /** Hands both connections over to a tunnel after `101 Switching Protocols`. */
  startTunnel(entry: UpstreamEntry, up: UpstreamSocket): void;
  /** True once the proxy is shutting down. */
  closing(): boolean;
}

/** The texts of the proxy's own error pages. */
export const MESSAGES = {
  badRequest: 'depad proxy: bad request',
  noRoute: 'depad proxy: no route for this host',
  noUpstream: 'depad proxy: the service has no running instance',
  pausedTooLong: 'depad proxy: the service was paused for too long',
  badGateway: 'depad proxy: the service did not answer',
  gatewayTimeout: 'depad proxy: the service did not answer in time',
  bodyTimeout: 'depad proxy: the request body took too long',
  closing: 'depad proxy: shutting down',
} as const;

/** How long an exchange waits for each side (ms). */
export interface ExchangeTimeouts {
  /** From the end of the request body to the response head. */
  headersMs: number;
  /** The longest gap between two reads of the request body (while the proxy is reading it). */
  bodyMs: number;
  /** How long the client may leave response bytes untaken. */
  sendMs: number;
}

