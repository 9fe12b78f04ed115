/**
 * depad's subnet pool: where the subnets a file asks for (`ipam.config[].subnet`) are allocated
 * from, one per deployment network, of the asked prefix length. The default avoids Docker's own
 * default address pools (172.17-31.x, 192.168.x); `DEPAD_SUBNET_POOL` changes it.
 */
import { DepadError } from '../errors.ts';
import { formatCidr, overlaps, parseCidr, sizeOf, type Cidr } from './ipv4.ts';

/** The pool used unless DEPAD_SUBNET_POOL says otherwise. */
export const DEFAULT_SUBNET_POOL = '10.96.0.0/12';

/** The pool's subnets: DEPAD_SUBNET_POOL (comma-separated CIDRs), else the default. Throws DEPAD_USAGE when it is malformed. */
export function subnetPoolFromEnv(env: NodeJS.ProcessEnv = process.env): Cidr[] {
  const raw = env.DEPAD_SUBNET_POOL?.trim() || DEFAULT_SUBNET_POOL;
  return raw.split(',').map((part) => {
    const c = parseCidr(part.trim());
    if (typeof c === 'string') {
      throw new DepadError('DEPAD_USAGE', `DEPAD_SUBNET_POOL=${raw}: ${part.trim()}: ${c}`, { hint: `give IPv4 subnets in CIDR form, comma-separated, e.g. DEPAD_SUBNET_POOL=${DEFAULT_SUBNET_POOL}` });
    }
    return c;
  });
}

/** The pool as text, for messages. */
export function poolText(pool: readonly Cidr[]): string {
  return pool.map(formatCidr).join(',');
}

/**
 * The first subnet of prefix length `prefix` inside the pool that overlaps none of `taken`;
 * undefined when there is none (or the pool holds no subnet that long).
 */
export function firstFreeSubnet(pool: readonly Cidr[], prefix: number, taken: readonly Cidr[]): Cidr | undefined {
  const step = 2 ** (32 - prefix);
  for (const range of pool) {
    if (prefix < range.prefix) continue;
    const end = range.base + sizeOf(range);
    let base = range.base;
    while (base + step <= end) {
      const candidate = { base, prefix };
      const clash = taken.find((t) => overlaps(t, candidate));
      if (clash === undefined) return candidate;
      // Jump past the clashing subnet, to the next boundary of the asked size.
      const past = Math.max(clash.base + sizeOf(clash), base + step);
      base = Math.ceil((past - range.base) / step) * step + range.base;
    }
  }
  return undefined;
}

/** Whether any subnet of the pool can hold a subnet of prefix length `prefix`. */
export function poolFits(pool: readonly Cidr[], prefix: number): boolean {
  return pool.some((r) => prefix >= r.prefix);
}
