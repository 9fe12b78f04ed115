/**
 * The proxy's vocabulary, shared by the proxy process and the CLI's proxy client. A route is a
 * stable endpoint of one service of one deployment and the instance(s) it currently points at.
 */

/** Where an instance listens: always a host port on loopback (its published port). */
export interface Upstream {
  host: string;
  port: number;
  /** Container name of the instance, for logs and drain reports. */
  instance: string;
}

/** A stable endpoint of a deployment's service. */
export interface Route {
  /** `<deployment>/<service>`: unique. */
  id: string;
  deployment: string;
  service: string;
  /** `http`: matched by Host on the proxy's HTTP listener; `tcp`: its own listener on `listenPort`. */
  kind: 'http' | 'tcp';
  /** http: the hostnames that reach this route (lowercase, no port). */
  hosts: string[];
  /**
   * http: HTTPS on the proxy's TLS listener. Unset: served over HTTPS when a certificate for the
   * host exists (ACME), and over HTTP as well; `redirect`: plain HTTP requests get a 308 to HTTPS
   * when a certificate exists; `off`: no certificate is requested for its hosts.
   */
  https?: 'redirect' | 'off';
  /**
   * http: `cookie` — the proxy sets a cookie naming the upstream it chose (an opaque keyed hash),
   * and sends requests that carry it to that upstream while it is in the route and healthy.
   */
  affinity?: 'cookie';
  /** tcp: the stable host port the proxy listens on for this route. */
  listenPort?: number;
  /** Instances that take new requests/connections (least loaded, see balance.ts); empty → 503 / connection held or refused. */
  upstreams: Upstream[];
  /**
   * While set, new requests and connections wait (up to this deadline, ms since epoch) instead of
   * being refused: used while a service that cannot run twice is recreated.
   */
  pausedUntil?: number;
}

/** The whole route table as persisted and exchanged: replaced as one value. */
export interface RouteSnapshot {
  /** Increases with every change. */
  version: number;
  routes: Route[];
}

/** Result of waiting for an upstream to finish its in-flight work. */
export interface DrainResult {
  /** True when nothing was left in flight before the timeout. */
  drained: boolean;
  /** Requests, WebSockets and TCP connections still open when the wait ended (then destroyed). */
  remaining: number;
  waitedMs: number;
}

/** Answers ACME HTTP-01 challenges: the key authorization for a token being validated now. */
export interface ChallengeResponder {
  keyAuthorization(token: string): string | undefined;
}

/** The certificates the HTTPS listener serves, by SNI name (lowercase). */
export interface CertificateSource {
  /** The TLS context for `servername`, or undefined (the handshake is refused). */
  context(servername: string): import('node:tls').SecureContext | undefined;
}
