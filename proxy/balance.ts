/**
 * Load balancing over a route's upstreams. A new HTTP request, a new WebSocket and a new TCP
 * connection go to the upstream with the least outstanding work of its kind, round robin among
 * ties (the scan starts after the last pick, so equal loads take turns), passing over upstreams
 * the agent's health checks marked unhealthy while the route has another one (when all are, all
 * take part). What counts as outstanding:
 *
 * - an HTTP request: the requests in flight on the upstream (open WebSockets do not count: an idle
 *   tunnel is no request load, and counting them would starve an upstream holding many of them);
 * - an upgrade request (WebSocket): requests in flight plus open WebSockets;
 * - a TCP connection: the TCP connections open to the upstream.
 *
 * Stickiness (a keep-alive connection's upstream, a cookie's) is decided by the caller before a
 * pick: `stickyIndex` says whether the upstream it names may still be used.
 */
import { cookieIndex, routeTokens, setCookieField } from './affinity.ts';
import type { ActiveRoute, RouteTable } from './route-table.ts';
import type { UpstreamEntry, UpstreamLoad, Upstreams } from './upstreams.ts';

/** What a pick is for: the counter that measures an upstream's load. */
export type PickFor = 'request' | 'websocket' | 'tcp';

/** An upstream's load for a pick `what`. */
export function outstanding(load: UpstreamLoad, what: PickFor): number {
  return what === 'request' ? load.requests : what === 'tcp' ? load.tcp : load.requests + load.websockets;
}

/**
 * The pure pick: index (0…n-1) of the least loaded of `n` upstreams, scanning from `start`
 * (mod n) so that the first of equally loaded ones wins; `load(i)` is upstream i's load and
 * `skip(i)` says it is unhealthy. Skipped upstreams are only chosen when all are skipped. -1 when
 * n is 0.
 */
export function leastLoaded(n: number, start: number, load: (i: number) => number, skip: (i: number) => boolean): number {
  let best = -1;
  let bestLoad = Infinity;
  let fallback = -1;
  let fallbackLoad = Infinity;
  for (let k = 0; k < n; k++) {
    const i = (start + k) % n;
    const l = load(i);
    if (skip(i)) {
      if (l < fallbackLoad) {
        fallback = i;
        fallbackLoad = l;
      }
    } else if (l < bestLoad) {
      best = i;
      bestLoad = l;
      if (l === 0) break; // nothing is less than idle
    }
  }
  return best >= 0 ? best : fallback;
}

/**
 * The Upstreams entry of `active`'s upstream `i`, cached on the route (an entry closed by a drain or
 * a prune is replaced by the current one).
 */
export function entryAt(active: ActiveRoute, upstreams: Upstreams, i: number): UpstreamEntry {
  const cache = (active.entries ??= []);
  let entry = cache[i];
  if (entry === undefined || entry.closed) {
    entry = upstreams.entry(active.keys[i] as string);
    cache[i] = entry;
  }
  return entry;
}

/**
 * Index of the upstream of `active` that a new `what` goes to (see the module comment), or -1
 * when the route has none. Advances the route's round-robin cursor.
 */
export function pickUpstream(active: ActiveRoute, upstreams: Upstreams, unhealthy: ReadonlySet<string>, what: PickFor): number {
  const keys = active.keys;
  const n = keys.length;
  if (n <= 1) return n - 1;
  const i = leastLoaded(
    n,
    active.next % n,
    (j) => outstanding(entryAt(active, upstreams, j).load, what),
    unhealthy.size === 0 ? never : (j) => unhealthy.has(keys[j] as string),
  );
  active.next = i + 1;
  return i;
}

function never(): boolean {
  return false;
}

/**
 * Index in `active` of the upstream `key` (a keep-alive connection's or a cookie's upstream) when it
 * is still in the route and not marked unhealthy; else -1 (a new pick).
 */
export function stickyIndex(active: ActiveRoute, key: string, unhealthy: ReadonlySet<string>): number {
  const i = active.keys.indexOf(key);
  return i >= 0 && (unhealthy.size === 0 || !unhealthy.has(key)) ? i : -1;
}

/** A client connection's pick state, reused for each of its requests. */
export interface RequestPick {
  /** The upstream (`host:port`) of the connection's last request: the next one stays on it while it may. */
  upstream: string | undefined;
  /** The upstream chosen for the request being forwarded (index in the route). */
  index: number;
  /** Cookie affinity: the Set-Cookie field line to add to the response (a new pick), else undefined. */
  cookie: string | undefined;
}

/**
 * Chooses the upstream of `active` for an HTTP request (head `text`; `upgrade`: it asks for a
 * WebSocket): its valid affinity cookie's upstream, else the connection's last one, while in the
 * route and healthy; else a pick. Fills `pick`; false when the route has no upstream (503).
 */
export function pickForRequest(
  active: ActiveRoute,
  ctx: { table: RouteTable; upstreams: Upstreams; affinityKey?: Buffer; proto: string },
  text: string,
  upgrade: boolean,
  pick: RequestPick,
): boolean {
  const keys = active.keys;
  pick.cookie = undefined;
  let i = 0;
  if (keys.length !== 1 || active.route.affinity !== undefined) {
    const unhealthy = ctx.table.unhealthy;
    const tokens = active.route.affinity === 'cookie' && ctx.affinityKey !== undefined ? routeTokens(active, ctx.affinityKey) : undefined;
    i = tokens === undefined ? -1 : cookieIndex(text, tokens);
    if (i >= 0 && unhealthy.size > 0 && unhealthy.has(keys[i] as string)) i = -1;
    const fromCookie = i >= 0;
    if (i < 0 && pick.upstream !== undefined) i = stickyIndex(active, pick.upstream, unhealthy);
    if (i < 0) i = pickUpstream(active, ctx.upstreams, unhealthy, upgrade ? 'websocket' : 'request');
    if (i < 0) return false;
    if (tokens !== undefined && !fromCookie) pick.cookie = setCookieField(tokens[i] as string, ctx.proto === 'https');
  }
  pick.index = i;
  pick.upstream = keys[i];
  return true;
}
