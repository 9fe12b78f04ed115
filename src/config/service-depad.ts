/**
 * Service-level `x-depad`: how the built-in proxy fronts the service and how an update checks a
 * new instance before routing to it.
 *
 *   x-depad:
 *     expose: http              # or tcp
 *     port: 8080                # container port to route to; default: the service's only port
 *     hostnames: [a.example.com]
 *     https: redirect           # auto (default) | redirect | off: HTTPS with ACME certificates (agent)
 *     health: { http: /health, status: 200 }   # or { tcp: true }
 *     drain_timeout: 30s
 *     pause_timeout: 30s
 */
import type { HealthProbeSpec, PortSpec, RouteSpec, ServiceDepad } from './spec.ts';
import type { Collector, LNode } from './nodes.ts';
import { keyPath } from './nodes.ts';
import { checkKeys, mapEntries, readBool, readInt, readString, readStringList } from './read.ts';
import { readDuration } from './service-parts.ts';

/** Keys of a service's `x-depad`. */
export const SERVICE_DEPAD_KEYS = ['expose', 'port', 'hostnames', 'https', 'health', 'drain_timeout', 'pause_timeout'] as const;

/** A service's depad settings when its config says nothing. */
export const DEFAULT_SERVICE_DEPAD: ServiceDepad = Object.freeze({ drainTimeoutMs: 30_000, pauseTimeoutMs: 30_000 });
const HOSTNAME = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** Reads a service's `x-depad`; `ports` are the service's published ports (the route port is added when missing). */
export function readServiceDepad(c: Collector, node: LNode | undefined, path: string, ports: PortSpec[]): ServiceDepad {
  if (node === undefined) return { ...DEFAULT_SERVICE_DEPAD };
  const keys = checkKeys(c, mapEntries(c, node, path, 'a map of depad settings such as expose: http') ?? [], path, { supported: SERVICE_DEPAD_KEYS });
  const at = (key: string) => keyPath(path, key);
  const out: { -readonly [K in keyof ServiceDepad]: ServiceDepad[K] } = { ...DEFAULT_SERVICE_DEPAD };

  const expose = keys.get('expose');
  if (expose) {
    const kind = readString(c, expose.value, at('expose'), { what: 'http or tcp' });
    if (kind !== undefined && kind !== 'http' && kind !== 'tcp') c.issue(at('expose'), expose.value.pos, `expose must be http or tcp, found "${kind}"`);
    const portEntry = keys.get('port');
    let port = portEntry ? readInt(c, portEntry.value, at('port'), 1) : undefined;
    if (port !== undefined && port > 65535) {
      c.issue(at('port'), portEntry!.value.pos, `port must be a container port between 1 and 65535, found ${port}`);
      port = undefined;
    }
    const tcpPorts = ports.filter((p) => p.protocol === 'tcp');
    if (portEntry === undefined && tcpPorts.length !== 1) {
      c.issue(at('expose'), expose.value.pos, `say which container port to route to with x-depad.port (the service publishes ${tcpPorts.length === 0 ? 'no' : tcpPorts.length} tcp ports)`);
    }
    port ??= portEntry === undefined ? tcpPorts[0]?.target : undefined;
    const hostnames = keys.get('hostnames');
    const names = hostnames ? (readStringList(c, hostnames.value, at('hostnames'), { single: true }) ?? []) : [];
    for (const [i, name] of names.entries()) {
      if (!HOSTNAME.test(name.toLowerCase())) c.issue(keyPath(at('hostnames'), String(i)), hostnames!.value.pos, `"${name}" is not a hostname such as app.example.com`);
    }
    if (names.length && kind === 'tcp') c.issue(at('hostnames'), hostnames!.value.pos, 'hostnames apply to expose: http; a tcp route is reached by its port');
    const httpsEntry = keys.get('https');
    const https = httpsEntry ? readString(c, httpsEntry.value, at('https'), { what: 'auto, redirect or off' }) : undefined;
    if (https !== undefined && !['auto', 'redirect', 'off'].includes(https)) c.issue(at('https'), httpsEntry!.value.pos, `https must be auto, redirect or off, found "${https}"`);
    else if (https !== undefined && kind === 'tcp') c.issue(at('https'), httpsEntry!.value.pos, 'https applies to expose: http; the proxy passes tcp routes through as they are');
    if ((kind === 'http' || kind === 'tcp') && port !== undefined) {
      const route: RouteSpec = {
        kind,
        port,
        hostnames: [...new Set(names.map((n) => n.toLowerCase()))].sort(),
        ...(kind === 'http' && (https === 'redirect' || https === 'off') ? { https } : {}),
      };
      out.route = route;
      if (!ports.some((p) => p.target === port && p.protocol === 'tcp')) ports.push({ target: port, protocol: 'tcp' });
    }
  } else {
    for (const key of ['port', 'hostnames', 'https'] as const) {
      const entry = keys.get(key);
      if (entry) c.issue(at(key), entry.keyPos, `${key} only applies with expose: http or expose: tcp`);
    }
  }

  const health = keys.get('health');
  if (health) {
    const hPath = at('health');
    const hKeys = checkKeys(c, mapEntries(c, health.value, hPath, 'a map such as { http: /health } or { tcp: true }') ?? [], hPath, {
      supported: ['http', 'status', 'tcp'],
    });
    const http = hKeys.get('http');
    const tcp = hKeys.get('tcp');
    if (http && tcp) c.issue(hPath, health.value.pos, 'give either http: or tcp:, not both');
    else if (http) {
      const p = readString(c, http.value, keyPath(hPath, 'http'), { what: 'a path such as /health' });
      const statusEntry = hKeys.get('status');
      const status = statusEntry ? readInt(c, statusEntry.value, keyPath(hPath, 'status'), 100) : 200;
      if (p !== undefined && !p.startsWith('/')) c.issue(keyPath(hPath, 'http'), http.value.pos, `the health path must start with /, found "${p}"`);
      else if (p !== undefined && status !== undefined) out.health = { kind: 'http', path: p, status } satisfies HealthProbeSpec;
    } else if (tcp) {
      if (readBool(c, tcp.value, keyPath(hPath, 'tcp')) === true) out.health = { kind: 'tcp' };
    } else {
      c.issue(hPath, health.value.pos, 'health needs http: /path or tcp: true');
    }
    if (out.health && !out.route) c.issue(hPath, health.value.pos, 'health checks from the host need the service to be exposed (expose: http or tcp)');
  }
  for (const [key, field] of [['drain_timeout', 'drainTimeoutMs'], ['pause_timeout', 'pauseTimeoutMs']] as const) {
    const entry = keys.get(key);
    const ms = entry ? readDuration(c, entry.value, at(key)) : undefined;
    if (ms !== undefined) out[field] = ms;
  }
  return out;
}
