/**
 * A top-level network's `ipam:` (IPv4 only, the default driver) and a service's per-network
 * `ipv4_address`, checked at load: every address inside its subnet, not the network or broadcast
 * address, not the gateway or an aux address, no two services on one address. depad allocates a
 * subnet of the same prefix length per deployment (src/deploy/subnet-assign.ts) and maps these
 * addresses by their offsets.
 */
import type { IpamSpec, NetworkSpec, ServiceSpec } from './spec.ts';
import { sortedRecord } from './freeze.ts';
import { Collector, entryPos, indexPath, keyPath } from './nodes.ts';
import type { LEntry, LNode, Pos } from './nodes.ts';
import { checkKeys, mapEntries, readString } from './read.ts';
import { contains, formatIpv4, parseCidr, parseIpv4, sizeOf, within, type Cidr } from '../subnets/ipv4.ts';
import { poolFits, poolText, subnetPoolFromEnv } from '../subnets/pool.ts';

/** Shortest and longest prefix length a fixed subnet may have (a /31 or /32 has no room for a gateway and a container). */
const PREFIX_MIN = 8;
const PREFIX_MAX = 30;

/** Reads `networks.<name>.ipam`; undefined when it asks for no subnet (no `config:`), or on an issue. */
export function readIpam(c: Collector, node: LNode, path: string): IpamSpec | undefined {
  const keys = checkKeys(c, mapEntries(c, node, path) ?? [], path, { supported: ['driver', 'config', 'options'] });
  const driverEntry = keys.get('driver');
  const driver = driverEntry ? readString(c, driverEntry.value, keyPath(path, 'driver')) : 'default';
  if (driver !== undefined && driver !== 'default') {
    c.issue(keyPath(path, 'driver'), entryPos(driverEntry!), `IPAM driver ${driver} is not supported: depad allocates the subnet itself with the engine's default driver; remove driver: or write driver: default`);
  }
  const options = keys.get('options') ? stringValues(c, keys.get('options')!.value, keyPath(path, 'options')) : {};
  const configEntry = keys.get('config');
  if (configEntry === undefined || (configEntry.value.kind === 'scalar' && configEntry.value.value === null)) {
    if (Object.keys(options).length > 0) c.warning(keyPath(path, 'options'), keys.get('options')!.keyPos, 'ipam options without a config: subnet have no effect; the engine picks the subnet');
    return undefined;
  }
  const configPath = keyPath(path, 'config');
  if (configEntry.value.kind !== 'seq') {
    c.issue(configPath, configEntry.keyPos, 'expected a list of subnet settings (- subnet: 172.28.0.0/16)');
    return undefined;
  }
  const items = configEntry.value.items;
  if (items.length === 0) return undefined;
  for (const [i, item] of items.entries()) {
    if (i > 0) c.issue(indexPath(configPath, i), item.pos, 'one subnet per network: depad maps one IPv4 subnet per network (IPv6 subnets are not supported); remove this entry or put it on a network of its own');
  }
  const spec = readIpamConfig(c, items[0]!, indexPath(configPath, 0));
  if (spec === undefined || driver === undefined || (driver !== 'default')) return undefined;
  return { ...spec, options };
}

function readIpamConfig(c: Collector, node: LNode, path: string): Omit<IpamSpec, 'options'> | undefined {
  const keys = checkKeys(c, mapEntries(c, node, path) ?? [], path, { supported: ['subnet', 'ip_range', 'gateway', 'aux_addresses'] });
  const subnetEntry = keys.get('subnet');
  if (subnetEntry === undefined) {
    c.issue(path, node.pos, 'an ipam config needs subnet: (such as subnet: 172.28.0.0/16); add it, or remove the ipam config and let the engine pick');
    return undefined;
  }
  const subnet = cidrAt(c, subnetEntry, keyPath(path, 'subnet'));
  if (subnet === undefined) return undefined;
  let ok = true;
  if (subnet.prefix < PREFIX_MIN || subnet.prefix > PREFIX_MAX) {
    c.issue(keyPath(path, 'subnet'), entryPos(subnetEntry), `a /${subnet.prefix} subnet is not supported: depad allocates /${PREFIX_MIN} to /${PREFIX_MAX} subnets (a /24 holds 254 addresses); change the prefix length`);
    ok = false;
  }
  const pool = poolOrUndefined();
  if (ok && pool !== undefined && !poolFits(pool, subnet.prefix)) {
    c.issue(keyPath(path, 'subnet'), entryPos(subnetEntry), `a /${subnet.prefix} subnet does not fit in depad's subnet pool ${poolText(pool)}: depad gives each deployment its own subnet of the asked size from it; ask for a smaller subnet (a longer prefix), or widen the pool (DEPAD_SUBNET_POOL)`);
    ok = false;
  }
  const out: { subnet: string; ipRange?: string; gateway?: string; auxAddresses: Record<string, string> } = { subnet: text(subnet), auxAddresses: {} };
  const rangeEntry = keys.get('ip_range');
  if (rangeEntry) {
    const range = cidrAt(c, rangeEntry, keyPath(path, 'ip_range'));
    if (range === undefined) ok = false;
    else if (!within(range, subnet)) {
      c.issue(keyPath(path, 'ip_range'), entryPos(rangeEntry), `ip_range ${text(range)} is not inside the subnet ${text(subnet)}; give a range inside it`);
      ok = false;
    } else out.ipRange = text(range);
  }
  const used = new Map<number, string>();
  const gatewayEntry = keys.get('gateway');
  if (gatewayEntry) {
    const gateway = hostAddressAt(c, gatewayEntry, keyPath(path, 'gateway'), subnet, 'gateway', used);
    if (gateway === undefined) ok = false;
    else out.gateway = gateway;
  }
  const auxEntry = keys.get('aux_addresses');
  if (auxEntry) {
    const aux: [string, string][] = [];
    for (const e of mapEntries(c, auxEntry.value, keyPath(path, 'aux_addresses'), 'a map of host name → address') ?? []) {
      const address = hostAddressAt(c, e, keyPath(keyPath(path, 'aux_addresses'), e.key), subnet, `aux address ${e.key}`, used);
      if (address === undefined) ok = false;
      else aux.push([e.key, address]);
    }
    out.auxAddresses = sortedRecord(aux);
  }
  return ok ? out : undefined;
}

/**
 * Checks every service's `ipv4_address`: its network has a subnet (`ipam.config`), the address is
 * a host address inside it, not the gateway or an aux address, and no other service has it.
 */
export function checkServiceAddresses(c: Collector, networks: Readonly<Record<string, NetworkSpec>>, services: ReadonlyMap<string, { readonly spec: Pick<ServiceSpec, 'networks' | 'rollout'> }>): void {
  const byNetwork = new Map<string, Map<number, string>>();
  for (const [service, { spec }] of services) {
    if (Object.values(spec.networks).some((n) => n.ipv4Address !== undefined)) {
      for (const [kind, policy] of [['update_config', spec.rollout?.update], ['rollback_config', spec.rollout?.rollback]] as const) {
        if (policy?.order !== 'start-first') continue;
        const path = keyPath(keyPath(keyPath(keyPath('services', service), 'deploy'), kind), 'order');
        c.issue(path, c.positions.get(path) ?? { line: 1, column: 1 }, 'order: start-first starts the new instance beside the old one, and the fixed address this service has (ipv4_address) can be held by one of them only; use stop-first, or remove ipv4_address and reach the service by its name');
      }
    }
    for (const [net, endpoint] of Object.entries(spec.networks)) {
      if (endpoint.ipv4Address === undefined) continue;
      const path = keyPath(keyPath(keyPath(keyPath('services', service), 'networks'), net), 'ipv4_address');
      const pos: Pos = c.positions.get(path) ?? { line: 1, column: 1 };
      if (networks[net]?.external !== undefined || c.positions.has(keyPath(keyPath('networks', net), 'external'))) {
        c.issue(path, pos, `a fixed address on an external network would be asked by every deployment of this file, and the network is not depad's to give addresses in; remove ipv4_address and reach ${service} by its name`);
        continue;
      }
      const ipam = networks[net]?.ipam;
      if (ipam === undefined) {
        if (c.positions.has(keyPath(keyPath('networks', net), 'ipam'))) continue; // its ipam has an issue of its own
        c.issue(path, pos, `a fixed address needs a subnet on the network: add ipam: {config: [{subnet: …}]} to networks.${net}, or remove ipv4_address and reach ${service} by its name`);
        continue;
      }
      const subnet = parseCidr(ipam.subnet) as Cidr;
      const used = byNetwork.get(net) ?? reserved(ipam);
      byNetwork.set(net, used);
      hostAddress(c, endpoint.ipv4Address, path, pos, subnet, `${service}'s address`, used, service);
    }
  }
}

/** The addresses of a network's ipam that services may not take: the gateway and the aux addresses. */
function reserved(ipam: IpamSpec): Map<number, string> {
  const out = new Map<number, string>();
  if (ipam.gateway !== undefined) out.set(parseIpv4(ipam.gateway)!, 'the gateway');
  for (const [name, a] of Object.entries(ipam.auxAddresses)) out.set(parseIpv4(a)!, `aux address ${name}`);
  return out;
}

function cidrAt(c: Collector, entry: LEntry, path: string): Cidr | undefined {
  const value = readString(c, entry.value, path, { what: 'a subnet in CIDR form' });
  if (value === undefined) return undefined;
  const cidr = parseCidr(value.trim());
  if (typeof cidr === 'string') {
    c.issue(path, entryPos(entry), cidr);
    return undefined;
  }
  return cidr;
}

function hostAddressAt(c: Collector, entry: LEntry, path: string, subnet: Cidr, what: string, used: Map<number, string>): string | undefined {
  const value = readString(c, entry.value, path, { what: 'an IPv4 address' });
  return value === undefined ? undefined : hostAddress(c, value.trim(), path, entryPos(entry), subnet, what, used, what);
}

/** Checks one address of `subnet` that a host takes; marks it used by `holder`. */
function hostAddress(c: Collector, value: string, path: string, pos: Pos, subnet: Cidr, what: string, used: Map<number, string>, holder: string): string | undefined {
  const address = parseIpv4(value);
  if (address === undefined) {
    c.issue(path, pos, `${value} is not an IPv4 address (such as ${formatIpv4(subnet.base + 10)}; IPv6 is not supported)`);
    return undefined;
  }
  if (!contains(subnet, address)) {
    c.issue(path, pos, `${what} ${value} is not inside the subnet ${text(subnet)}; give an address inside it (${formatIpv4(subnet.base + 1)}-${formatIpv4(subnet.base + sizeOf(subnet) - 2)})`);
    return undefined;
  }
  if (address === subnet.base || address === subnet.base + sizeOf(subnet) - 1) {
    c.issue(path, pos, `${what} ${value} is the ${address === subnet.base ? 'network' : 'broadcast'} address of ${text(subnet)}; give a host address (${formatIpv4(subnet.base + 1)}-${formatIpv4(subnet.base + sizeOf(subnet) - 2)})`);
    return undefined;
  }
  const other = used.get(address);
  if (other !== undefined) {
    c.issue(path, pos, `${what} ${value} is already ${other.startsWith('the ') || other.startsWith('aux ') ? other : `${other}'s address`} on this network; give each its own address`);
    return undefined;
  }
  used.set(address, holder);
  return formatIpv4(address);
}

/** The compose form of an ipam (`driver: default`, one `config` entry, `options` when given): for `depad config` and the rendered file. */
export function ipamDocument(ipam: IpamSpec): Record<string, unknown> {
  const config: Record<string, unknown> = { subnet: ipam.subnet };
  if (ipam.ipRange !== undefined) config.ip_range = ipam.ipRange;
  if (ipam.gateway !== undefined) config.gateway = ipam.gateway;
  if (Object.keys(ipam.auxAddresses).length) config.aux_addresses = { ...ipam.auxAddresses };
  return { driver: 'default', config: [config], ...(Object.keys(ipam.options).length ? { options: { ...ipam.options } } : {}) };
}

/** This host's subnet pool; undefined when DEPAD_SUBNET_POOL is malformed (the allocation says so). */
function poolOrUndefined(): Cidr[] | undefined {
  try {
    return subnetPoolFromEnv();
  } catch {
    return undefined;
  }
}

function stringValues(c: Collector, node: LNode, path: string): Record<string, string> {
  const out: [string, string][] = [];
  for (const e of mapEntries(c, node, path) ?? []) {
    const v = readString(c, e.value, keyPath(path, e.key), { numbers: true });
    if (v !== undefined) out.push([e.key, v]);
  }
  return sortedRecord(out);
}

function text(c: Cidr): string {
  return `${formatIpv4(c.base)}/${c.prefix}`;
}
