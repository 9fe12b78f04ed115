/**
 * Giving host ports to what create and update need (port-plan.ts says what): a port fixed by the
 * file (`x-depad.host_ports: fixed`) is taken as asked, or refused naming its holder; the others
 * come from the deployment's spares, then from the allocator (the specification's algorithm).
 */
import { DepadError } from '../errors.ts';
import { allocatePorts, blockOf, cursorIn, isPortOpenOnHost, portRangeFromEnv, type Allocation } from '../ports/index.ts';
import type { DeploymentRecord, PortAssignment } from '../store/records.ts';
import type { OpContext } from './context.ts';
import type { PortNeed } from './port-plan.ts';

/** Where the allocator starts, and what the deployment holds already. */
export interface AssignOptions {
  /** The block to start at (create: the persisted cursor; update: the deployment's own block). */
  cursor: number;
  /** The deployment's spares, taken first for ports that are not fixed. */
  spares?: readonly PortAssignment[];
  /** The deployment asking (its own spares may satisfy a fixed port). */
  deploymentId?: string;
  /** Ask the allocator even for 0 ports, for its next cursor (a create moves the cursor on). */
  moveCursor?: boolean;
}

/** Host ports for `needs`, in their order; `allocation` is the allocator's decision (for create's cursor). */
export async function assignPorts(ctx: OpContext, needs: readonly PortNeed[], options: AssignOptions): Promise<{ ports: PortAssignment[]; allocation?: Allocation }> {
  const given = new Map<number, number>();
  const taken = new Set<number>();
  const reserved = await ctx.store.reservedPorts();
  for (const [i, need] of needs.entries()) {
    if (need.fixed === undefined) continue;
    given.set(i, await fixedPort(ctx, need, reserved, taken, options.deploymentId));
  }
  const spares = [...(options.spares ?? [])].sort((a, b) => a.host - b.host).filter((s) => !taken.has(s.host));
  const rest = needs.map((_, i) => i).filter((i) => !given.has(i));
  for (const spare of spares) {
    const i = rest.find((r) => !given.has(r));
    if (i === undefined) break;
    if (await isPortOpenOnHost(spare.host)) continue;
    given.set(i, spare.host);
    taken.add(spare.host);
  }
  const left = rest.filter((i) => !given.has(i));
  let allocation: Allocation | undefined;
  if (left.length > 0 || options.moveCursor) {
    const range = portRangeFromEnv();
    allocation = await allocatePorts({ count: left.length, cursor: options.cursor, range, isReserved: (p) => reserved.has(p) || taken.has(p), isOpenOnHost: isPortOpenOnHost });
    left.forEach((i, k) => given.set(i, allocation!.ports[k]!));
  }
  const ports = needs.map(({ fixed: _fixed, ...need }, i) => ({ ...need, host: given.get(i)! }));
  return allocation === undefined ? { ports } : { ports, allocation };
}

/**
 * Host ports for an update's new instances: fixed ones as asked, then the deployment's spares
 * free on the host, then from its own block onward; the global cursor does not move.
 */
export async function assignUpdatePorts(ctx: OpContext, record: DeploymentRecord, needed: readonly PortNeed[], spares: readonly PortAssignment[]): Promise<PortAssignment[]> {
  if (needed.length === 0) return [];
  const range = portRangeFromEnv();
  const own = record.ports.map((p) => p.host).filter((p) => p >= range.min && p <= range.max);
  const cursor = own.length ? blockOf(Math.min(...own), range) : cursorIn(await ctx.store.getCursor(), range);
  return (await assignPorts(ctx, needed, { cursor, spares, deploymentId: record.id })).ports;
}

/** The first port of the asked range that is free (or a spare of this deployment); DEPAD_PORT_IN_USE naming the holder otherwise. */
async function fixedPort(ctx: OpContext, need: PortNeed, reserved: ReadonlySet<number>, taken: Set<number>, self: string | undefined): Promise<number> {
  const holders: string[] = [];
  for (let port = need.fixed!.from; port <= need.fixed!.to; port++) {
    if (taken.has(port)) continue;
    const holder = reserved.has(port) ? await ctx.store.getPort(port) : undefined;
    if (holder !== undefined && !(holder.deploymentId === self && holder.role === 'spare')) {
      const other = await ctx.store.getDeployment(holder.deploymentId);
      holders.push(`${port} is held by deployment ${other?.name ?? holder.deploymentId.slice(0, 12)}`);
      continue;
    }
    // Free in the registry (or this deployment's spare, as in the spares loop below): still checked on the host.
    if (await isPortOpenOnHost(port)) {
      holders.push(`${port} is in use on this host (another program listens on it)`);
      continue;
    }
    taken.add(port);
    return port;
  }
  const asked = need.fixed!.from === need.fixed!.to ? `host port ${need.fixed!.from}` : `no host port of ${need.fixed!.from}-${need.fixed!.to}`;
  throw new DepadError('DEPAD_PORT_IN_USE', `${need.service}: ${asked} (asked for ${need.target}/${need.protocol} with x-depad.host_ports: fixed) is not free: ${holders.join('; ')}`, {
    hint: 'free that port, or leave x-depad.host_ports at allocate: depad then gives the service a port from the deployment\'s block',
    details: { service: need.service, target: need.target, asked: need.asked },
  });
}

/** The warnings for asked host ports that depad allocated instead: `web: published 80 → 3001 (…)`. */
export function allocatedInstead(ports: readonly PortAssignment[], fixed: boolean): string[] {
  if (fixed) return [];
  return ports
    .filter((p) => p.asked !== undefined && p.asked !== String(p.host))
    .map((p) => `${p.service}: published ${p.asked} → ${p.host} for ${p.target}/${p.protocol} (depad allocates host ports; to keep the asked ones, x-depad.host_ports: fixed; a stable endpoint is x-depad.expose)`);
}
