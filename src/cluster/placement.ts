/**
 * Placement: which host of a cluster takes a deployment. Pure and deterministic (no engine, no
 * network, no clock): the manager gives the request and its view of the hosts, and gets the
 * choice with every host's score or reason for exclusion (what `create --dry-run` shows).
 *
 * 1. Hard filters, each host: it is `ready` (a `cordoned` or `down` host is excluded, saying so);
 *    it is the host asked for (`create --on-host NAME`), when one is; every constraint of
 *    `x-depad.placement` holds on its labels; the need fits what is unreserved (CPUs and memory;
 *    host ports when both the need and the host's free ports are known).
 * 2. Score, lowest first: the *spread* count, then the *load*, then the host's name.
 *    - spread: how many deployments of the request's group run on the hosts that share the
 *      candidate's value of the `spread` label (hosts without the label share the value "unset");
 *      0 everywhere without `spread` (least loaded alone: counting per host would put as many of a
 *      class on a small host as on a big one). The group is the deployment's `class`; a
 *      deployment without a class is grouped by its name prefix, the name without its last
 *      `-part` (`mercy-eu` and `mercy-us` are group `mercy`; `shop` is its own), matched only
 *      against deployments without a class.
 *    - load: the larger of the host's reserved CPU share and memory share once the deployment is
 *      placed (0 to 1).
 *    `score` is the two added (spread + load), for people; the order is the one above.
 */
import { DepadError } from '../errors.ts';
import { bytesText, cpusText } from '../config/budget.ts';
import { counted } from '../plural.ts';
import { compareStrings } from '../config/freeze.ts';

/** One host as the manager sees it. */
export interface HostView {
  readonly name: string;
  /** Only a `ready` host takes deployments: `cordoned` by an operator, `down` when it missed its heartbeats. */
  readonly state: 'ready' | 'down' | 'cordoned';
  /** The agent's labels (`--label region=eu`). */
  readonly labels: Readonly<Record<string, string>>;
  /** What the host has: CPUs, memory (bytes), and where known the disk of its data directory and its free host ports. */
  readonly capacity: { readonly cpus: number; readonly memoryBytes: number; readonly diskBytes?: number; readonly freePorts?: number };
  /** What the deployments placed there already reserve. */
  readonly reserved: { readonly cpus: number; readonly memoryBytes: number };
  /** The deployments placed there (for spread). */
  readonly deployments: readonly { readonly name: string; readonly class?: string; readonly labels: Readonly<Record<string, string>> }[];
}

/** A deployment to place. */
export interface PlacementRequest {
  readonly name: string;
  /** Its class (the `class` label): the group spread counts. */
  readonly class?: string;
  readonly labels: Readonly<Record<string, string>>;
  /** What it reserves on the host (src/cluster/need.ts `needOf`). */
  readonly need: { readonly cpus: number; readonly memoryBytes: number; readonly ports?: number };
  /** Hard constraints on host labels (`x-depad.placement.constraints`). */
  readonly constraints: readonly { readonly label: string; readonly op: '==' | '!='; readonly value: string }[];
  /** The host label to spread the group over (`x-depad.placement.spread`). */
  readonly spread?: string;
  /** Only this host (`create --on-host NAME`). */
  readonly host?: string;
}

/** Why a host was excluded: one kind per failed filter. */
export type ExclusionKind = 'down' | 'cordoned' | 'host' | 'constraint' | 'capacity';

/** One host's outcome. */
export interface PlacementCandidate {
  readonly host: string;
  /** Set when it could take the deployment: spread count + load after (lower is better). */
  readonly score?: number;
  /** Set when it could not: why, one line with the numbers (`needs 2 CPUs, 0.5 of 4 free`). */
  readonly excluded?: string;
  /** The kinds of reasons in `excluded`. */
  readonly kinds?: readonly ExclusionKind[];
  /** For people: the score's parts, or what the host has free. */
  readonly detail: string;
}

/** The choice (absent when no host fits) and every host's outcome: eligible ones best first, then the excluded by name. */
export interface PlacementResult {
  readonly chosen?: string;
  readonly candidates: readonly PlacementCandidate[];
}

/** The group spread counts for `d`: its class, else its name prefix (see the module comment). */
export function spreadGroup(d: { readonly name: string; readonly class?: string }): { readonly class: string } | { readonly prefix: string } {
  if (d.class !== undefined) return { class: d.class };
  const dash = d.name.lastIndexOf('-');
  return { prefix: dash > 0 ? d.name.slice(0, dash) : d.name };
}

/** Chooses the host for `request` among `hosts` (see the module comment); the same input gives the same answer. */
export function place(request: PlacementRequest, hosts: readonly HostView[]): PlacementResult {
  const sameGroup = groupMatcher(request);
  const valueOf = (h: HostView): string => (request.spread === undefined ? '' : (labelOf(h, request.spread) ?? '\u0000unset'));
  const counts = new Map<string, number>();
  for (const h of request.spread === undefined ? [] : hosts) {
    let n = 0;
    for (const d of h.deployments) if (sameGroup(d)) n++;
    const v = valueOf(h);
    counts.set(v, (counts.get(v) ?? 0) + n);
  }
  const scored: { c: PlacementCandidate; spread: number; load: number }[] = [];
  const excluded: PlacementCandidate[] = [];
  const need = { cpus: milli(request.need.cpus), memory: request.need.memoryBytes };
  for (const h of hosts) {
    const reasons = exclusions(request, h, need);
    if (reasons.length > 0) {
      excluded.push({ host: h.name, excluded: reasons.map((r) => r.text).join('; '), kinds: [...new Set(reasons.map((r) => r.kind))], detail: freeText(h) });
      continue;
    }
    const cpuShare = share(milli(h.reserved.cpus) + need.cpus, milli(h.capacity.cpus));
    const memShare = share(h.reserved.memoryBytes + need.memory, h.capacity.memoryBytes);
    const load = Math.max(cpuShare, memShare);
    const spread = counts.get(valueOf(h)) ?? 0;
    const where = request.spread === undefined ? '' : `${request.spread}=${labelOf(h, request.spread) ?? '(unset)'} runs ${spread} of ${groupText(request)}; `;
    const detail = `${where}load after ${pct(load)} (cpu ${pct(cpuShare)}, memory ${pct(memShare)})`;
    scored.push({ c: { host: h.name, score: Math.round((spread + load) * 10_000) / 10_000, detail }, spread, load });
  }
  scored.sort((a, b) => a.spread - b.spread || a.load - b.load || compareStrings(a.c.host, b.c.host));
  excluded.sort((a, b) => compareStrings(a.host, b.host));
  const best = scored[0];
  return { ...(best === undefined ? {} : { chosen: best.c.host }), candidates: [...scored.map((s) => s.c), ...excluded] };
}

function groupMatcher(request: PlacementRequest): (d: { readonly name: string; readonly class?: string }) => boolean {
  const group = spreadGroup(request);
  if ('class' in group) return (d) => d.class === group.class;
  return (d) => {
    if (d.class !== undefined) return false;
    const dash = d.name.lastIndexOf('-');
    const prefix = dash > 0 ? d.name.slice(0, dash) : d.name;
    return prefix === group.prefix;
  };
}

function groupText(request: PlacementRequest): string {
  const group = spreadGroup(request);
  return 'class' in group ? `class ${group.class}` : `group ${group.prefix} (no class)`;
}

/** Every filter `h` fails for `request`, one reason each; none when it can take it. */
function exclusions(request: PlacementRequest, h: HostView, need: { cpus: number; memory: number }): { kind: ExclusionKind; text: string }[] {
  if (h.state !== 'ready') return [{ kind: h.state, text: h.state === 'down' ? 'down (missed its heartbeats)' : 'cordoned (depad hosts uncordon to take deployments again)' }];
  if (request.host !== undefined && h.name !== request.host) return [{ kind: 'host', text: `not the host asked for (--on-host ${request.host})` }];
  const out: { kind: ExclusionKind; text: string }[] = [];
  for (const k of request.constraints) {
    const has = labelOf(h, k.label);
    if (k.op === '==' && has !== k.value) out.push({ kind: 'constraint', text: `${k.label}==${k.value}: ${has === undefined ? `it has no ${k.label} label` : `its ${k.label} is ${has}`}` });
    if (k.op === '!=' && has === k.value) out.push({ kind: 'constraint', text: `${k.label}!=${k.value}: its ${k.label} is ${has}` });
  }
  const freeCpu = milli(h.capacity.cpus) - milli(h.reserved.cpus);
  if (need.cpus > freeCpu) out.push({ kind: 'capacity', text: `needs ${cpusText(need.cpus / 1000)}, ${cpuText(Math.max(0, freeCpu))} of ${cpuText(milli(h.capacity.cpus))} free` });
  const freeMem = h.capacity.memoryBytes - h.reserved.memoryBytes;
  if (need.memory > freeMem) out.push({ kind: 'capacity', text: `needs ${bytesText(need.memory)} of memory, ${bytesText(Math.max(0, freeMem))} of ${bytesText(h.capacity.memoryBytes)} free` });
  const ports = request.need.ports;
  const freePorts = h.capacity.freePorts;
  if (ports !== undefined && freePorts !== undefined && ports > freePorts) out.push({ kind: 'capacity', text: `needs ${counted(ports, 'host port')}, ${freePorts} free` });
  return out;
}

/** The host's own label `name` (never an inherited property such as `constructor`). */
function labelOf(h: HostView, name: string): string | undefined {
  return Object.hasOwn(h.labels, name) ? h.labels[name] : undefined;
}

/** What `h` has free, and its labels: the detail of an excluded host. */
function freeText(h: HostView): string {
  const labels = Object.entries(h.labels).sort(([a], [b]) => compareStrings(a, b)).map(([k, v]) => `${k}=${v}`).join(',') || '-';
  const cpu = Math.max(0, milli(h.capacity.cpus) - milli(h.reserved.cpus));
  const mem = Math.max(0, h.capacity.memoryBytes - h.reserved.memoryBytes);
  const ports = h.capacity.freePorts === undefined ? '' : `, ${h.capacity.freePorts} ports`;
  return `free ${cpuText(cpu)} of ${cpuText(milli(h.capacity.cpus))} CPUs, ${bytesText(mem)} of ${bytesText(h.capacity.memoryBytes)}${ports}; ${h.deployments.length} deployments; labels ${labels}`;
}

/** CPUs as integer thousandths, so sums do not drift. */
function milli(cpus: number): number {
  return Math.round(cpus * 1000);
}

function cpuText(m: number): string {
  return String(m / 1000);
}

function share(used: number, capacity: number): number {
  if (capacity <= 0) return used <= 0 ? 0 : 1;
  return used / capacity;
}

function pct(x: number): string {
  return `${Math.round(x * 100)}%`;
}

/** The need of `request` for people: `2 CPUs, 1 GiB of memory, 3 host ports`. */
export function needText(need: PlacementRequest['need']): string {
  return `${cpusText(milli(need.cpus) / 1000)}, ${bytesText(need.memoryBytes)} of memory${need.ports === undefined ? '' : `, ${counted(need.ports, 'host port')}`}`;
}

/**
 * DEPAD_NO_HOST (exit 18) for a `place` result without a choice: the message lists every host
 * with the reason it was excluded, the hint says what would make room.
 */
export function placementError(request: PlacementRequest, result: PlacementResult): DepadError {
  const rules = request.constraints.map((k) => `${k.label}${k.op}${k.value}`);
  const wants = [needText(request.need), ...rules, ...(request.host === undefined ? [] : [`--on-host ${request.host}`])].join('; ');
  const hosts = result.candidates.map((c) => c.host);
  if (hosts.length === 0) {
    return new DepadError('DEPAD_NO_HOST', `no host can take ${request.name}: the cluster has no hosts`, { hint: 'join a host: depad manager join-token, then depad agent --join on it', details: { hosts: [] } });
  }
  if (request.host !== undefined && !hosts.includes(request.host)) {
    return new DepadError('DEPAD_NO_HOST', `no host can take ${request.name}: there is no host ${request.host} (--on-host); hosts: ${[...hosts].sort(compareStrings).join(', ')}`, { hint: 'name one of the hosts depad hosts lists, or leave --on-host out', details: { hosts: result.candidates } });
  }
  const lines = result.candidates.map((c) => `  ${c.host}: ${c.excluded ?? 'could take it'}`);
  const kinds = new Set(result.candidates.flatMap((c) => c.kinds ?? []));
  const hints = [
    kinds.has('capacity') ? 'free capacity (destroy deployments, or lower the limits or x-depad.resources), or join a host with room' : undefined,
    kinds.has('constraint') ? 'relax x-depad.placement.constraints or label a host that should match (depad hosts label)' : undefined,
    kinds.has('cordoned') ? 'uncordon a host (depad hosts uncordon NAME)' : undefined,
    kinds.has('down') ? 'bring a down host back (its agent and engine)' : undefined,
    kinds.has('host') && !kinds.has('capacity') && !kinds.has('constraint') ? 'leave --on-host out to let the manager choose' : undefined,
  ].filter((h): h is string => h !== undefined);
  return new DepadError('DEPAD_NO_HOST', `no host can take ${request.name} (it needs ${wants}):\n${lines.join('\n')}`, { hint: `${hints.join('; ') || 'join a host'}; nothing was created`, details: { hosts: result.candidates } });
}
