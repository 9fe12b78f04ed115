/**
 * IPv4 arithmetic for subnets and addresses: parsing dotted quads and CIDRs, containment, overlap,
 * and moving an address from one subnet to another by its host offset.
 */

/** An IPv4 subnet: its network address (as an unsigned 32-bit number) and prefix length. */
export interface Cidr {
  readonly base: number;
  readonly prefix: number;
}

/** The number of a dotted-quad IPv4 address, or undefined when `text` is not one. */
export function parseIpv4(text: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255) || m.slice(1).some((p) => p.length > 1 && p.startsWith('0'))) return undefined;
  return ((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!;
}

/** Dotted quad of an address number. */
export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** The netmask of a prefix length, as a number. */
function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** `a.b.c.d/n`, or a reason it is not a subnet (host bits set, no prefix, bad address). */
export function parseCidr(text: string): Cidr | string {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(text);
  if (!m) return 'expected a subnet in CIDR form, such as 172.28.0.0/16';
  const address = parseIpv4(m[1]!);
  const prefix = Number(m[2]);
  if (address === undefined) return `${m[1]} is not an IPv4 address (IPv6 subnets are not supported)`;
  if (prefix > 32) return `/${prefix} is not an IPv4 prefix length (0-32)`;
  const base = (address & mask(prefix)) >>> 0;
  if (base !== address) return `${text} has host bits set; the subnet is ${formatCidr({ base, prefix })}`;
  return { base, prefix };
}

/** `a.b.c.d/n`. */
export function formatCidr(c: Cidr): string {
  return `${formatIpv4(c.base)}/${c.prefix}`;
}

/** Number of addresses in a subnet. */
export function sizeOf(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

/** Whether `address` is inside `c`. */
export function contains(c: Cidr, address: number): boolean {
  return address >= c.base && address < c.base + sizeOf(c);
}

/** Whether `inner` lies wholly inside `outer`. */
export function within(inner: Cidr, outer: Cidr): boolean {
  return inner.prefix >= outer.prefix && contains(outer, inner.base);
}

/** Whether two subnets share an address. */
export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.base < b.base + sizeOf(b) && b.base < a.base + sizeOf(a);
}

/** `address` of subnet `from` moved to the same host offset in `to` (same prefix length). */
export function mapAddress(address: number, from: Cidr, to: Cidr): number {
  return to.base + (address - from.base);
}

/** A dotted-quad address or CIDR of `from` moved to `to` by its offset; text that is neither is returned as is. */
export function mapText(text: string, from: Cidr, to: Cidr): string {
  const address = parseIpv4(text);
  if (address !== undefined) return formatIpv4(mapAddress(address, from, to));
  const c = parseCidr(text);
  return typeof c === 'string' ? text : formatCidr({ base: mapAddress(c.base, from, to), prefix: c.prefix });
}
