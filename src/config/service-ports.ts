/**
 * `ports` and `expose` of a service, in every syntax the Compose Specification gives:
 *   "8080", "8080/udp", "8080-8082", "80:8080", "8000-8002:8080-8082", "9000-9010:80",
 *   "127.0.0.1:80:8080", "127.0.0.1::8080", "[::1]:80:8080", and the long syntax
 *   {target, published, host_ip, protocol, app_protocol, mode, name}.
 * A host port in the file is what the file asks for; depad still allocates from the deployment's
 * block unless `x-depad.host_ports: fixed` (ports/port-plan decide; this only reads).
 */
import type { ExposeSpec, PortSpec } from './spec.ts';
import type { Collector, LNode } from './nodes.ts';
import { describe, entryPos, indexPath, keyPath } from './nodes.ts';
import { checkKeys, mapEntries, readString, scalarNumber } from './read.ts';
import type { ServiceScope } from './service-parts.ts';
import { fail, isIpLiteral, ok, parseProtocol, type Parsed } from './values.ts';


/** `ports`: published ports (the host side is what the file asks; depad allocates, see the module comment). */
export function readPorts(s: ServiceScope, node: LNode, path: string): PortSpec[] {
  return readPortList(s.c, node, path, 'ports');
}

/** `expose`: container ports reachable inside the deployment's networks (a range is every port in it). */
export function readExpose(s: ServiceScope, node: LNode, path: string): ExposeSpec[] {
  return readPortList(s.c, node, path, 'expose').map((p) => ({ target: p.target, protocol: p.protocol }));
}

function readPortList(c: Collector, node: LNode, path: string, field: 'ports' | 'expose'): PortSpec[] {
  if (node.kind !== 'seq') {
    c.issue(path, node.pos, `expected a list of ports such as "8080" or "80:8080", found ${describe(node)}`);
    return [];
  }
  const out: PortSpec[] = [];
  const seen = new Set<string>();
  node.items.forEach((item, i) => {
    const itemPath = indexPath(path, i);
    let ports: PortSpec[] | undefined;
    if (item.kind === 'map' && field === 'ports') {
      ports = readLongPort(c, item, itemPath);
    } else if (item.kind === 'scalar' && (typeof item.value === 'number' || typeof item.value === 'string')) {
      const text = typeof item.value === 'number' ? String(item.value) : c.text(item, itemPath);
      if (text === undefined) return;
      const parsed = parsePortText(text, field);
      if (parsed.ok) ports = parsed.value;
      else c.issue(itemPath, item.pos, parsed.error);
    } else {
      c.issue(itemPath, item.pos, `expected a port such as "8080" or "80:8080/udp", found ${describe(item)}`);
    }
    c.record(itemPath, item.pos);
    for (const port of ports ?? []) {
      const key = `${port.target}/${port.protocol}`;
      if (seen.has(key)) {
        c.issue(itemPath, item.pos, `container port ${key} is listed twice in ${path}: depad publishes each container port once (on the host port it allocates); list it once`);
        continue;
      }
      seen.add(key);
      out.push(port);
    }
  });
  return out;
}

/** One short-syntax entry → its ports (a range gives several). */
export function parsePortText(text: string, field: 'ports' | 'expose'): Parsed<PortSpec[]> {
  let s = text.trim();
  let protocol: 'tcp' | 'udp' = 'tcp';
  const slash = s.lastIndexOf('/');
  if (slash >= 0) {
    const p = parseProtocol(s.slice(slash + 1));
    if (!p.ok) return fail(p.error);
    protocol = p.value;
    s = s.slice(0, slash);
  }
  let hostIp: string | undefined;
  if (s.startsWith('[')) {
    const end = s.indexOf(']:');
    if (end < 0) return fail(`expected "[IPv6]:host:container", found "${text}"`);
    hostIp = s.slice(1, end);
    s = s.slice(end + 2);
    if (!s.includes(':')) return fail(`expected "[${hostIp}]:host port:container port", found "${text}"`);
  }
  const parts = s.split(':');
  if (parts.length > 3) return fail(`expected "[host address:][host port:]container port[/protocol]", found "${text}"`);
  if (parts.length === 3) {
    if (hostIp !== undefined) return fail(`expected "[host address:][host port:]container port[/protocol]", found "${text}"`);
    hostIp = parts.shift() || undefined; // ":443:443": an empty host address is none, as compose reads it
  }
  if (field === 'expose' && parts.length > 1) return fail(`expose takes container ports only, e.g. "8080"; found "${text}"`);
  if (hostIp !== undefined && !isIpLiteral(hostIp)) return fail(`the host address in "${text}" must be an IPv4 or IPv6 address such as 127.0.0.1, found "${hostIp}"`);
  const containerText = parts.pop() ?? '';
  const hostText = parts.pop();
  const container = parseRange(containerText, 'container port', text);
  if (!container.ok) return fail(container.error);
  const host = hostText === undefined || hostText === '' ? undefined : parseRange(hostText, 'host port', text);
  if (host !== undefined && !host.ok) return fail(host.error);
  return expand(container.value, host?.value, protocol, hostIp, text);
}

/** Container ports with their asked host ports: ranges of equal length pair up; one container port may take a host range. */
function expand(container: Range, host: Range | undefined, protocol: 'tcp' | 'udp', hostIp: string | undefined, text: string): Parsed<PortSpec[]> {
  const count = container.to - container.from + 1;
  if (count > 1000) return fail(`the range in "${text}" holds ${count} ports; depad publishes at most 1000 from one entry`);
  if (host !== undefined && count > 1 && host.to - host.from + 1 !== count) {
    return fail(`"${text}" maps ${count} container ports onto ${host.to - host.from + 1} host ports; the two ranges must be as long`);
  }
  const out: PortSpec[] = [];
  for (let i = 0; i < count; i++) {
    const published = host === undefined ? undefined : count === 1 ? host : { from: host.from + i, to: host.from + i };
    out.push({ target: container.from + i, protocol, ...(published ? { published } : {}), ...(hostIp !== undefined ? { hostIp } : {}) });
  }
  return ok(out);
}

interface Range {
  from: number;
  to: number;
}

function parseRange(text: string, what: string, whole: string): Parsed<Range> {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text);
  if (!m) return fail(`expected a ${what} such as "8080" or a range "8080-8082" in "${whole}", found "${text}"`);
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  for (const n of [from, to]) if (!Number.isInteger(n) || n < 1 || n > 65535) return fail(`a ${what} must be from 1 to 65535, found ${n} in "${whole}"`);
  if (to < from) return fail(`the ${what} range "${text}" ends before it starts`);
  return ok({ from, to });
}

/** The long syntax: {target, published, host_ip, protocol, app_protocol, mode, name}. */
function readLongPort(c: Collector, node: LNode, path: string): PortSpec[] | undefined {
  const entries = mapEntries(c, node, path) ?? [];
  const keys = checkKeys(c, entries, path, { supported: ['target', 'published', 'host_ip', 'protocol', 'app_protocol', 'mode', 'name'] });
  const targetEntry = keys.get('target');
  if (targetEntry === undefined) {
    c.issue(path, node.pos, 'a port in long syntax needs target: the container port');
    return undefined;
  }
  const field = (key: string): string | undefined => {
    const entry = keys.get(key);
    if (entry === undefined) return undefined;
    const value = entry.value;
    if (value.kind === 'scalar' && typeof value.value === 'number') return String(value.value);
    return readString(c, value, keyPath(path, key), { numbers: true });
  };
  const targetPath = keyPath(path, 'target');
  const n = scalarNumber(c, targetEntry.value, targetPath);
  if (n === null || n === undefined) return undefined;
  const target = parseRange(String(n), 'container port', String(n));
  if (!target.ok) {
    c.issue(targetPath, entryPos(targetEntry), target.error);
    return undefined;
  }
  const protocolText = field('protocol');
  const protocol = protocolText === undefined ? ok<'tcp' | 'udp'>('tcp') : parseProtocol(protocolText);
  if (!protocol.ok) {
    c.issue(keyPath(path, 'protocol'), entryPos(keys.get('protocol')!), protocol.error);
    return undefined;
  }
  const mode = field('mode');
  if (mode !== undefined && mode !== 'host' && mode !== 'ingress') c.issue(keyPath(path, 'mode'), entryPos(keys.get('mode')!), `mode must be host or ingress, found "${mode}"`);
  const hostIp = field('host_ip');
  if (hostIp !== undefined && !isIpLiteral(hostIp)) {
    c.issue(keyPath(path, 'host_ip'), entryPos(keys.get('host_ip')!), `host_ip must be an IPv4 or IPv6 address such as 127.0.0.1, found "${hostIp}"`);
    return undefined;
  }
  const publishedText = field('published');
  const published = publishedText === undefined || publishedText === '' ? undefined : parseRange(publishedText, 'host port', publishedText);
  if (published !== undefined && !published.ok) {
    c.issue(keyPath(path, 'published'), entryPos(keys.get('published')!), published.error);
    return undefined;
  }
  const ports = expand(target.value, published?.value, protocol.value, hostIp, `${publishedText ?? ''}:${n}`);
  if (!ports.ok) c.issue(path, node.pos, ports.error);
  return ports.ok ? ports.value : undefined;
}
