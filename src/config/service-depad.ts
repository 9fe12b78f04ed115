/**
 * Service-level `x-depad`: how the built-in proxy fronts the service and how an update checks a
 * new instance before routing to it.
 *
 *   x-depad:
 *     expose: http              # or tcp
 *     port: 8080                # container port to route to; default: the service's only port
 *     hostnames: [a.example.com]
 *     https: redirect           # auto (default) | redirect | off: HTTPS with ACME certificates (agent)
 *     affinity: cookie          # http: a client stays on the instance its cookie names (several instances)
 *     health:                   # checked before routing, and by the agent every interval
 *       http: /health           # or tcp: true, or command: [pg_isready], or nothing (the container's own check)
 *       status: 200
 *       interval: 10s
 *       timeout: 5s
 *       retries: 3
 *       start_period: 0s
 *       restart: true           # restart an unhealthy instance, with backoff
 *     drain_timeout: 30s
 *     pause_timeout: 30s
 */
import type { HealthMonitorSpec, HealthProbeSpec, PortSpec, RouteSpec, ServiceDepad } from './spec.ts';
import type { Collector, LNode } from './nodes.ts';
import { keyPath } from './nodes.ts';
import { checkKeys, mapEntries, readBool, readInt, readString, readStringList } from './read.ts';
import { readDuration } from './service-parts.ts';

/** Keys of a service's `x-depad`. */
export const SERVICE_DEPAD_KEYS = ['expose', 'port', 'hostnames', 'https', 'health', 'drain_timeout', 'pause_timeout', 'affinity'] as const;

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
    const affinityEntry = keys.get('affinity');
    const affinity = affinityEntry ? readString(c, affinityEntry.value, at('affinity'), { what: 'cookie or none' }) : undefined;
    if (affinity !== undefined && affinity !== 'cookie' && affinity !== 'none') c.issue(at('affinity'), affinityEntry!.value.pos, `affinity must be cookie or none, found "${affinity}"`);
    else if (affinity === 'cookie' && kind === 'tcp') c.issue(at('affinity'), affinityEntry!.value.pos, 'affinity: cookie applies to expose: http; a tcp connection stays on its instance anyway');
    if ((kind === 'http' || kind === 'tcp') && port !== undefined) {
      const route: RouteSpec = {
        kind,
        port,
        hostnames: [...new Set(names.map((n) => n.toLowerCase()))].sort(),
        ...(kind === 'http' && (https === 'redirect' || https === 'off') ? { https } : {}),
        ...(kind === 'http' && affinity === 'cookie' ? { affinity } : {}),
      };
      out.route = route;
      if (!ports.some((p) => p.target === port && p.protocol === 'tcp')) ports.push({ target: port, protocol: 'tcp' });
    }
  } else {
    for (const key of ['port', 'hostnames', 'https', 'affinity'] as const) {
      const entry = keys.get(key);
      if (entry) c.issue(at(key), entry.keyPos, `${key} only applies with expose: http or expose: tcp`);
    }
  }

  const health = keys.get('health');
  if (health) readHealth(c, health.value, at('health'), out);
  for (const [key, field] of [['drain_timeout', 'drainTimeoutMs'], ['pause_timeout', 'pauseTimeoutMs']] as const) {
    const entry = keys.get(key);
    const ms = entry ? readDuration(c, entry.value, at(key)) : undefined;
    if (ms !== undefined) out[field] = ms;
  }
  return out;
}

/** Defaults of the agent's periodic checks. */
export const DEFAULT_MONITOR: HealthMonitorSpec = Object.freeze({ intervalMs: 10_000, timeoutMs: 5_000, retries: 3, startPeriodMs: 0, restart: false });

/** `x-depad.health`: the probe (http, tcp, command, or none: the container's own check) and its timing. */
function readHealth(c: Collector, node: LNode, hPath: string, out: { -readonly [K in keyof ServiceDepad]: ServiceDepad[K] }): void {
  const hKeys = checkKeys(c, mapEntries(c, node, hPath, 'a map such as { http: /health } or { tcp: true }') ?? [], hPath, {
    supported: ['http', 'status', 'tcp', 'command', 'interval', 'timeout', 'retries', 'start_period', 'restart'],
  });
  const probes = (['http', 'tcp', 'command'] as const).filter((k) => hKeys.has(k));
  if (probes.length > 1) c.issue(hPath, node.pos, `give one probe (http, tcp or command), not ${probes.join(' and ')}`);
  const http = hKeys.get('http');
  const tcp = hKeys.get('tcp');
  const command = hKeys.get('command');
  if (probes.length === 1 && http) {
    const p = readString(c, http.value, keyPath(hPath, 'http'), { what: 'a path such as /health' });
    const statusEntry = hKeys.get('status');
    const status = statusEntry ? readInt(c, statusEntry.value, keyPath(hPath, 'status'), 100) : 200;
    if (p !== undefined && !p.startsWith('/')) c.issue(keyPath(hPath, 'http'), http.value.pos, `the health path must start with /, found "${p}"`);
    else if (p !== undefined && status !== undefined) out.health = { kind: 'http', path: p, status } satisfies HealthProbeSpec;
  } else if (probes.length === 1 && tcp) {
    if (readBool(c, tcp.value, keyPath(hPath, 'tcp')) === true) out.health = { kind: 'tcp' };
  } else if (probes.length === 1 && command) {
    const argv = readStringList(c, command.value, keyPath(hPath, 'command'), { single: false });
    if (argv !== undefined && argv.length === 0) c.issue(keyPath(hPath, 'command'), command.value.pos, 'the command is empty; give the program and its arguments, e.g. [pg_isready, -U, app]');
    else if (argv !== undefined) out.health = { kind: 'command', command: argv };
  }
  if (out.health && out.health.kind !== 'command' && !out.route) c.issue(hPath, node.pos, 'http and tcp checks go to the service\'s published port: expose it (expose: http or tcp), or use command:');
  if (hKeys.has('status') && !http) c.issue(keyPath(hPath, 'status'), hKeys.get('status')!.keyPos, 'status applies to an http check');
  const monitor: { -readonly [K in keyof HealthMonitorSpec]: HealthMonitorSpec[K] } = { ...DEFAULT_MONITOR };
  for (const [key, field] of [['interval', 'intervalMs'], ['timeout', 'timeoutMs'], ['start_period', 'startPeriodMs']] as const) {
    const entry = hKeys.get(key);
    const ms = entry ? readDuration(c, entry.value, keyPath(hPath, key)) : undefined;
    if (ms !== undefined) monitor[field] = ms;
  }
  if (monitor.intervalMs < 1000) c.issue(keyPath(hPath, 'interval'), hKeys.get('interval')!.value.pos, 'the interval must be at least 1s');
  const retries = hKeys.get('retries');
  const n = retries ? readInt(c, retries.value, keyPath(hPath, 'retries'), 1) : undefined;
  if (n !== undefined) monitor.retries = n;
  const restart = hKeys.get('restart');
  const r = restart ? readBool(c, restart.value, keyPath(hPath, 'restart')) : undefined;
  if (r !== undefined) monitor.restart = r;
  out.monitor = monitor;
}
