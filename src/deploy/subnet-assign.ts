/**
 * Subnets for the networks whose file asks for one (`ipam.config[0].subnet`): each deployment
 * network gets a subnet of the same prefix length from depad's pool (src/subnets/pool.ts) that
 * overlaps no network on the engine and no subnet another deployment holds (the registry). A
 * deployment keeps its subnets until it is destroyed; the file's addresses keep their offsets.
 */
import type { DeploymentSpec } from '../config/spec.ts';
import { DepadError, formatIssue } from '../errors.ts';
import type { SubnetAssignment } from '../store/records.ts';
import { formatCidr, mapText, parseCidr, parseIpv4, contains, type Cidr } from '../subnets/ipv4.ts';
import { firstFreeSubnet, poolFits, poolText, subnetPoolFromEnv } from '../subnets/pool.ts';
import type { NetworkPlan } from '../engine/types.ts';
import type { OpContext } from './context.ts';

/**
 * The subnets for `spec`'s networks: those `held` (by this deployment, for the same network and
 * asked subnet) kept, the others allocated (`fresh`). `subnets` is everything the deployment holds
 * afterwards (held ones of networks no longer in the file stay, as spare ports do).
 * DEPAD_SUBNET_EXHAUSTED when the pool has no free subnet of an asked size; nothing is reserved then.
 */
export async function assignSubnets(ctx: OpContext, spec: DeploymentSpec, held: readonly SubnetAssignment[] = []): Promise<{ subnets: SubnetAssignment[]; fresh: SubnetAssignment[] }> {
  const asking = Object.values(spec.networks).filter((n) => n.ipam !== undefined && !held.some((h) => h.network === n.name && h.asked === n.ipam!.subnet));
  if (asking.length === 0) return { subnets: [...held], fresh: [] };
  const pool = subnetPoolFromEnv();
  const registry = await ctx.store.listSubnets();
  const onEngine = await ctx.engine.networkSubnets();
  const taken: Cidr[] = [...registry.map((r) => r.given), ...onEngine].flatMap((t) => {
    const c = parseCidr(t);
    return typeof c === 'string' ? [] : [c];
  });
  const fresh: SubnetAssignment[] = [];
  for (const n of asking) {
    const asked = parseCidr(n.ipam!.subnet) as Cidr;
    const key = `networks.${n.name}.ipam.config[0].subnet`;
    const at = spec.positions.get(key) ?? { file: spec.file, line: 1, column: 1 };
    const given = poolFits(pool, asked.prefix) ? firstFreeSubnet(pool, asked.prefix, taken) : undefined;
    if (given === undefined) {
      const why = poolFits(pool, asked.prefix)
        ? `no /${asked.prefix} subnet of depad's subnet pool ${poolText(pool)} is free (${registry.length} held by deployments of this home, ${onEngine.length} subnets of networks on the engine)`
        : `a /${asked.prefix} subnet does not fit in depad's subnet pool ${poolText(pool)}`;
      throw new DepadError('DEPAD_SUBNET_EXHAUSTED', formatIssue({ ...at, path: key, message: `${why}; depad gives each deployment its own subnet of the asked size` }), {
        hint: 'destroy deployments you no longer need, ask for a smaller subnet (a longer prefix, such as /24), or widen the pool with DEPAD_SUBNET_POOL (comma-separated CIDRs that avoid your LAN and Docker\'s address pools); see the README, "Subnets"',
        details: { network: n.name, asked: n.ipam!.subnet, pool: poolText(pool) },
      });
    }
    taken.push(given);
    fresh.push({ network: n.name, asked: n.ipam!.subnet, given: formatCidr(given) });
  }
  return { subnets: [...held, ...fresh], fresh };
}

/**
 * The warnings naming each moved subnet and the addresses in it, like the host-port warning:
 * `networks.backend: subnet 172.28.0.0/16 → 10.96.0.0/16 (…: db 172.28.5.10 → 10.96.5.10)`; and one
 * for each environment value holding an address of a moved subnet (it is not rewritten).
 */
export function subnetWarnings(spec: DeploymentSpec, subnets: readonly SubnetAssignment[]): string[] {
  const out: string[] = [];
  for (const a of subnets) {
    const n = spec.networks[a.network];
    if (n?.ipam === undefined || a.asked !== n.ipam.subnet || a.asked === a.given) continue;
    const from = parseCidr(a.asked) as Cidr;
    const to = parseCidr(a.given) as Cidr;
    const moved = (label: string, address: string) => `${label} ${address} → ${mapText(address, from, to)}`;
    const addresses = [
      ...Object.values(spec.services).flatMap((s) => (s.networks[a.network]?.ipv4Address ? [moved(s.name, s.networks[a.network]!.ipv4Address!)] : [])),
      ...(n.ipam.gateway ? [moved('gateway', n.ipam.gateway)] : []),
      ...(n.ipam.ipRange ? [moved('ip_range', n.ipam.ipRange)] : []),
      ...Object.entries(n.ipam.auxAddresses).map(([k, v]) => moved(`aux ${k}`, v)),
    ];
    out.push(`networks.${a.network}: subnet ${a.asked} → ${a.given} (depad allocates subnets per deployment; addresses keep their offsets${addresses.length ? `: ${addresses.join(', ')}` : ''})`);
    for (const s of Object.values(spec.services)) {
      for (const [k, v] of Object.entries(s.environment)) {
        for (const found of v.match(/\b\d{1,3}(?:\.\d{1,3}){3}\b/g) ?? []) {
          const address = parseIpv4(found);
          if (address === undefined || !contains(from, address)) continue;
          out.push(`services.${s.name}.environment.${k}: ${found} is an address of networks.${a.network} (${a.asked}), which this deployment has at ${mapText(found, from, to)}; environment values are not rewritten: reach the service by its name instead`);
        }
      }
    }
  }
  return out;
}

/**
 * Refuses an update that changes the `ipam` of a network the deployment has (adds, removes or
 * changes its subnet, range, gateway or aux addresses): the engine cannot change a network's
 * addresses in place. A network of a new name is a new network, and gets its own subnet.
 */
export function assertSubnetsUnchanged(spec: DeploymentSpec, current: { readonly networks: readonly NetworkPlan[] }, candidate: { readonly networks: readonly NetworkPlan[] }): void {
  for (const n of candidate.networks) {
    const was = current.networks.find((c) => c.name === n.name);
    if (was === undefined || JSON.stringify(was.ipam ?? null) === JSON.stringify(n.ipam ?? null)) continue;
    const key = spec.positions.has(`networks.${n.key}.ipam`) ? `networks.${n.key}.ipam` : `networks.${n.key}`;
    const at = spec.positions.get(key) ?? { file: spec.file, line: 1, column: 1 };
    const what = was.ipam === undefined ? 'gives it a fixed subnet' : n.ipam === undefined ? 'removes its fixed subnet' : 'changes its subnet settings';
    throw new DepadError('DEPAD_CONFIG_INVALID', formatIssue({ ...at, path: key, message: `the update ${what}: the engine cannot change a network's addresses in place while the deployment's containers are on it` }), {
      hint: `keep networks.${n.key}.ipam as it was; or give the network a new name (a new network, with a subnet of its own); or destroy the deployment and create it again`,
      details: { network: n.key },
    });
  }
}
