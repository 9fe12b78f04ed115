/**
 * What one client connection of the proxy's HTTP(S) listener may cost, in time and memory: the
 * settings of `startProxy` (and of `depad proxy` / `depad agent`), with their defaults. The head
 * limits are fixed: a request head of at most 16 KiB and 256 fields.
 */

/** Bounds on client connections and their exchanges. */
export interface ProxyLimits {
  /** How long an upstream may take to send response headers, counted from the end of the request body (ms). */
  headersTimeoutMs: number;
  /** How long an idle keep-alive connection is kept between requests (ms). Empty lines sent meanwhile do not extend it. */
  keepAliveTimeoutMs: number;
  /** How long a client may take from the first byte of a request head to its end (ms); then 408. */
  requestHeadTimeoutMs: number;
  /** The longest gap between two reads of a request body (ms); then 408, and the upstream connection is closed. */
  requestBodyTimeoutMs: number;
  /** How long a client may leave the proxy's writes untaken (ms) while a response waits for it; then the connection is closed. */
  sendTimeoutMs: number;
  /** Complete request heads that may wait in a connection's input beyond the one being served; beyond, reading pauses. */
  maxPipelinedRequests: number;
  /** Bytes of a connection's input read ahead of the request being served; beyond, reading pauses. */
  maxBufferedRequestBytes: number;
  /**
   * Response bytes written to a client and not yet taken by it (at least the socket's 16 KiB
   * high-water mark); above, the upstream is not read and no further pipelined request is started.
   */
  maxBufferedResponseBytes: number;
}

/** The defaults (nginx's in parentheses): 300 s headers (proxy_read_timeout 60 s), 60 s idle (keepalive_timeout 75 s), 60 s head, body and send (client_header_timeout, client_body_timeout, send_timeout 60 s), 32 pipelined requests, 64 KiB read ahead, 64 KiB unsent. */
export const DEFAULT_LIMITS: Readonly<ProxyLimits> = Object.freeze({
  headersTimeoutMs: 300_000,
  keepAliveTimeoutMs: 60_000,
  requestHeadTimeoutMs: 60_000,
  requestBodyTimeoutMs: 60_000,
  sendTimeoutMs: 60_000,
  maxPipelinedRequests: 32,
  maxBufferedRequestBytes: 64 * 1024,
  maxBufferedResponseBytes: 64 * 1024,
});

/** `DEFAULT_LIMITS` with the settings given in `options` (undefined ones left at their defaults). */
export function proxyLimits(options: Partial<ProxyLimits>): ProxyLimits {
  const limits: ProxyLimits = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(DEFAULT_LIMITS) as (keyof ProxyLimits)[]) {
    const value = options[key];
    if (value === undefined) continue;
    if (!Number.isFinite(value) || value <= 0) throw new RangeError(`proxy limit ${key} must be a positive number (got ${String(value)})`);
    limits[key] = value;
  }
  return limits;
}
