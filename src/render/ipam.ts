/**
 * The file's `ipam` and `ipv4_address` moved into the subnets depad allocated for the deployment:
 * every address keeps its host offset (172.28.0.0/16 → 10.96.0.0/16: 172.28.5.10 → 10.96.5.10).
 * A network with no allocated subnet yet (a placeholder plan, made before allocation) keeps the file's values.
 */
import type { NetworkSpec } from '../config/spec.ts';
import { ipamDocument } from '../config/ipam.ts';
import type { NetworkPlan } from '../engine/types.ts';
import type { SubnetAssignment } from '../store/records.ts';
import { mapText, parseCidr, type Cidr } from '../subnets/ipv4.ts';

/** The subnets of a rendering: network name → allocated subnet. */
export type SubnetMap = readonly SubnetAssignment[] | undefined;

function mover(n: NetworkSpec, subnets: SubnetMap): (text: string) => string {
  // By network and asked subnet: a network removed, then added again asking another, holds both.
  const given = subnets?.find((s) => s.network === n.name && s.asked === n.ipam?.subnet);
  if (given === undefined) return (t) => t;
  const from = parseCidr(given.asked) as Cidr;
  const to = parseCidr(given.given) as Cidr;
  return (t) => mapText(t, from, to);
}

/** The engine IPAM of a network: the file's, mapped into its allocated subnet; undefined when the file asks none. */
export function networkIpam(n: NetworkSpec, subnets: SubnetMap): NetworkPlan['ipam'] {
  if (n.ipam === undefined) return undefined;
  const move = mover(n, subnets);
  return {
    subnet: move(n.ipam.subnet),
    ...(n.ipam.ipRange !== undefined ? { ipRange: move(n.ipam.ipRange) } : {}),
    ...(n.ipam.gateway !== undefined ? { gateway: move(n.ipam.gateway) } : {}),
    auxAddresses: Object.fromEntries(Object.entries(n.ipam.auxAddresses).map(([k, v]) => [k, move(v)])),
    options: { ...n.ipam.options },
  };
}

/** A service's fixed address on network `n`, mapped; undefined when it has none. */
export function endpointAddress(n: NetworkSpec | undefined, address: string | undefined, subnets: SubnetMap): string | undefined {
  if (address === undefined) return undefined;
  return n === undefined ? address : mover(n, subnets)(address);
}

/** The compose file's `ipam:` for a planned network (what reached the engine). */
export function composeIpam(ipam: NonNullable<NetworkPlan['ipam']>): Record<string, unknown> {
  return ipamDocument(ipam);
}
