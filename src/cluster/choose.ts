/**
 * The manager's placement call: turns its hosts and placements into placement.ts's input, asks
 * `place`, and answers the chosen host with what the deployment reserves there, or throws
 * DEPAD_NO_HOST (placementError) naming every host's reason.
 */
import type { DeploymentSpec } from '../config/spec.ts';
import type { HostRegistry } from './hosts.ts';
import { placementRequest } from './need.ts';
import { place, placementError, type HostView, type PlacementResult } from './placement.ts';
import type { Placements } from './placements.ts';

/** What placing a deployment needs to know of it. */
export interface PlaceAsk {
  name: string;
  /** Its labels: the file's and those given at create. */
  labels: Record<string, string>;
  spec: DeploymentSpec;
  /** Only this host (create --on-host). */
  host?: string;
}

/** The hosts as placement sees them: state, labels, capacity, what their placements reserve, and those placements. */
export function placementHosts(deps: { hosts: HostRegistry; placements: Placements }): HostView[] {
  return deps.hosts.list().map((h) => ({
    name: h.name,
    state: deps.hosts.stateOf(h),
    labels: h.labels,
    capacity: h.capacity,
    reserved: deps.placements.reservedOn(h.name),
    deployments: deps.placements.onHost(h.name).map((p) => ({ name: p.name, ...(p.class ? { class: p.class } : {}), labels: p.labels })),
  }));
}

/** The chosen host, the need it reserves, and every candidate; DEPAD_NO_HOST when none fits. */
export function choosePlacement(deps: { hosts: HostRegistry; placements: Placements }, ask: PlaceAsk): { host: string; need: { cpus: number; memoryBytes: number }; result: PlacementResult } {
  const request = placementRequest(ask.name, ask.spec, { labels: ask.labels, ...(ask.host === undefined ? {} : { host: ask.host }) });
  const result = place(request, placementHosts(deps));
  if (result.chosen === undefined) throw placementError(request, result);
  return { host: result.chosen, need: { cpus: request.need.cpus, memoryBytes: request.need.memoryBytes }, result };
}
