/**
 * The cluster manager's book of placements: which host runs each deployment, and what it
 * reserves there. Names are unique across the cluster: a create first writes its placement in
 * state `creating` (so a second create of the name is refused at once), and either completes it
 * with the deployment's ID or removes it. A placement a crash left `creating` is settled when the
 * manager starts (`settleCreating`): kept if the host has the deployment, else removed.
 */
import { DepadError } from '../errors.ts';
import type { DeploymentView } from '../deploy/status.ts';
import type { HostRecord, PlacementRecord } from '../store/records.ts';
import { assertRoom, type HostRoom } from './need.ts';
import type { Store } from '../store/store.ts';

/** The placements, in memory and in the store. */
export class Placements {
  readonly #store: Store;
  readonly #byName = new Map<string, PlacementRecord>();
  /** What changes under way will need beyond their placements' reservations (`withGrowth`); in memory only. */
  readonly #holds = new Map<number, { name: string; host: string; cpus: number; memoryBytes: number }>();
  #nextHold = 0;

  private constructor(store: Store) {
    this.#store = store;
  }

  /** Loads the store's placements. */
  static async open(store: Store): Promise<Placements> {
    const p = new Placements(store);
    for (const r of await store.listPlacements()) p.#byName.set(r.name, r);
    return p;
  }

  /** Every placement, by name. */
  list(): PlacementRecord[] {
    return [...this.#byName.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The placements on `host`. */
  onHost(host: string): PlacementRecord[] {
    return this.list().filter((p) => p.host === host);
  }

  /**
   * What the placements on `host` reserve, and what the changes under way there hold beyond that
   * (`withGrowth`; but the holds of `except`, the deployment asking for its own room).
   */
  reservedOn(host: string, except?: string): { cpus: number; memoryBytes: number } {
    const placed = this.onHost(host).reduce((sum, p) => ({ cpus: sum.cpus + p.need.cpus, memoryBytes: sum.memoryBytes + p.need.memoryBytes }), { cpus: 0, memoryBytes: 0 });
    for (const h of this.#holds.values()) if (h.host === host && h.name !== except) (placed.cpus += h.cpus), (placed.memoryBytes += h.memoryBytes);
    return placed;
  }

  /** What `placement` may grow to on `host`: its capacity less what everything else there reserves or holds. */
  roomOf(placement: PlacementRecord, host: HostRecord): HostRoom {
    const current = this.#byName.get(placement.name) ?? placement;
    const reserved = this.reservedOn(host.name, current.name);
    return {
      host: host.name,
      cpus: Math.max(0, Math.round((host.capacity.cpus - reserved.cpus + current.need.cpus) * 1000) / 1000),
      memoryBytes: Math.max(0, host.capacity.memoryBytes - reserved.memoryBytes + current.need.memoryBytes),
    };
  }

  /**
   * DEPAD_NO_HOST (assertRoom) when `placement`, changed to need `need` (an update's or rollback's
   * dry run says it), would need more of `host` than its room; returns what it needs beyond its
   * reservation. Without `need` (an agent that does not say), nothing is checked.
   */
  checkRoom(placement: PlacementRecord, host: HostRecord, need: { cpus: number; memoryBytes: number } | undefined): { cpus: number; memoryBytes: number } {
    const current = this.#byName.get(placement.name) ?? placement;
    if (need === undefined) return { cpus: 0, memoryBytes: 0 };
    assertRoom(current.name, current.need, need, this.roomOf(current, host));
    return { cpus: Math.max(0, need.cpus - current.need.cpus), memoryBytes: Math.max(0, need.memoryBytes - current.need.memoryBytes) };
  }

  /**
   * Runs `change`, a relayed update, scale or rollback of `placement` that will need `need`,
   * refused first when it does not fit (`checkRoom`), then holding what it needs beyond the
   * reservation on `host` until it is done, so that changes and creates beside it see that room
   * taken. Checking and holding is one synchronous step, so two changes relayed at once cannot
   * both take the last room. `change` should take up the new need (followAnswer) before it returns.
   */
  async withGrowth<T>(placement: PlacementRecord, host: HostRecord, need: { cpus: number; memoryBytes: number } | undefined, change: () => Promise<T>): Promise<T> {
    const extra = this.checkRoom(placement, host, need);
    if (extra.cpus === 0 && extra.memoryBytes === 0) return change();
    const id = ++this.#nextHold;
    this.#holds.set(id, { name: placement.name, host: host.name, ...extra });
    try {
      return await change();
    } finally {
      this.#holds.delete(id);
    }
  }

  /** The placement a reference names: a deployment name, or a prefix of its ID (at least 4 characters, one match). */
  resolve(ref: string): PlacementRecord {
    const byName = this.#byName.get(ref);
    if (byName && byName.state === 'placed') return byName;
    const byId = /^[0-9a-f]{4,32}$/.test(ref) ? this.list().filter((p) => p.state === 'placed' && p.id.startsWith(ref)) : [];
    if (byId.length === 1) return byId[0]!;
    if (byId.length > 1) throw new DepadError('DEPAD_AMBIGUOUS', `${ref} is the start of several deployments' IDs: ${byId.map((p) => p.name).join(', ')}`, { hint: 'give more of the ID, or the name' });
    throw new DepadError('DEPAD_NOT_FOUND', `the cluster has no deployment ${JSON.stringify(ref)}`, { hint: 'list them with: depad ls' });
  }

  /** Reserves `name` on a host (state `creating`); DEPAD_NAME_TAKEN when the cluster has it. */
  async reserve(record: Omit<PlacementRecord, 'state' | 'id' | 'createdAt'>, now = new Date()): Promise<PlacementRecord> {
    const taken = this.#byName.get(record.name);
    if (taken) throw new DepadError('DEPAD_NAME_TAKEN', `the cluster has a deployment named ${record.name} already (on ${taken.host})`, { hint: 'pick another name, or destroy that one first' });
    const placement: PlacementRecord = { ...record, id: '', state: 'creating', createdAt: now.toISOString() };
    this.#byName.set(record.name, placement);
    await this.#store.batch().putPlacement(placement).write();
    return placement;
  }

  /** Completes a reservation with the deployment's ID and labels. */
  async placed(name: string, id: string, labels: Record<string, string>): Promise<PlacementRecord> {
    const p = this.#byName.get(name);
    if (!p) throw new DepadError('DEPAD_INTERNAL', `no placement ${name} to complete`);
    return this.#put({ ...p, id, labels, state: 'placed' });
  }

  /** Updates a placement's labels (an update changed them). */
  async relabel(name: string, labels: Record<string, string>): Promise<void> {
    const p = this.#byName.get(name);
    if (p && JSON.stringify(p.labels) !== JSON.stringify(labels)) await this.#put({ ...p, labels });
  }

  /** Updates what a placement reserves (an update or a scale changed what the deployment needs). */
  async reneed(name: string, need: PlacementRecord['need']): Promise<void> {
    const p = this.#byName.get(name);
    if (p && (p.need.cpus !== need.cpus || p.need.memoryBytes !== need.memoryBytes)) await this.#put({ ...p, need });
  }

  /** Forgets a placement (a failed create, a destroy, a host removed with --force). */
  async forget(name: string): Promise<void> {
    if (!this.#byName.delete(name)) return;
    await this.#store.batch().deletePlacement(name).write();
  }

  /** Placements a crash left `creating`, for `settleCreating`. */
  creating(): PlacementRecord[] {
    return this.list().filter((p) => p.state === 'creating');
  }

  async #put(p: PlacementRecord): Promise<PlacementRecord> {
    this.#byName.set(p.name, p);
    await this.#store.batch().putPlacement(p).write();
    return p;
  }
}

/**
 * What the placement of `name` takes from a host's answer about it (an update, scale, rollback or
 * view): the deployment's labels, for scope checks, and what it now needs of its host (`need` of an
 * update's answer: the reservation follows a scale or new limits).
 */
export async function followAnswer(placements: Placements, name: string, answer: unknown): Promise<void> {
  const view = (answer as { view?: DeploymentView } | undefined)?.view ?? (answer as DeploymentView | undefined);
  if (view === undefined || view === null || typeof view !== 'object' || view.name !== name) return;
  if (view.labels) await placements.relabel(name, view.labels);
  const need = (answer as { need?: { cpus?: unknown; memoryBytes?: unknown } }).need;
  if (typeof need?.cpus === 'number' && typeof need.memoryBytes === 'number' && need.cpus >= 0 && need.memoryBytes >= 0) await placements.reneed(name, { cpus: need.cpus, memoryBytes: need.memoryBytes });
}
