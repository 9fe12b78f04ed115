/**
 * `depad doctor`: where the engine, the store, the port registry, the proxy's routes and the
 * home's directories disagree. `diagnose` only reads; `repair` (doctor-repair.ts) fixes what it
 * found. depad's objects are those with both `depad.deployment` and `depad.deployment.id`; no
 * other object is ever listed or touched. An object whose deployment this home does not know is
 * judged only when its `depad.home` label names this home: another home's objects are counted
 * and left alone, and objects with no home label (made before depad set it) are listed as
 * unattributed, never fixed. Deployments the journal says are being changed are left out: the
 * interrupted (or running) operation is the finding instead.
 */
import { homeIdentity } from '../home.ts';
import { LABELS } from '../engine/types.ts';
import type { JournalEntry } from '../store/records.ts';
import type { OpContext } from './context.ts';
import { checkPorts, checkRecords, checkRootDirs, checkRoutes, type Known } from './doctor-records.ts';
import { checkSubnets } from './doctor-subnets.ts';

import { repair, type RepairResult } from './doctor-repair.ts';

export { repair, type RepairResult } from './doctor-repair.ts';

/** What doctor finds, by kind (stable: scripts match on them). */
export type FindingKind =
  | 'orphan-container'
  | 'orphan-network'
  | 'orphan-volume'
  | 'orphan-root'
  | 'orphan-route'
  | 'stray-container'
  | 'stray-network'
  | 'missing-container'
  | 'missing-network'
  | 'missing-volume'
  | 'port-leak'
  | 'port-unregistered'
  | 'port-conflict'
  | 'subnet-leak'
  | 'subnet-unregistered'
  | 'record-damaged'
  | 'interrupted-operation'
  | 'operation-in-progress';

/** What `--fix` does about a finding; `none` and `keep` leave it (then `command` says what to run, if anything). */
export type FixAction = 'remove' | 'recreate' | 'release' | 'register' | 'recover' | 'keep' | 'none';

/** One disagreement between what depad knows and what is there. */
export interface Finding {
  kind: FindingKind;
  /** Unique and stable while the thing lasts: `<kind>:<engine ID, name or port>`; `--fix` through the agent names the findings it confirms by it. */
  key: string;
  /** The thing, as the user knows it: a container, network or volume name, `port 3001`, a directory. */
  object: string;
  /** The engine ID of a container or network. */
  id?: string;
  /** The deployment it names (labels, record or registry). */
  deployment?: { name?: string; id?: string };
  /** What is wrong, in one sentence. */
  problem: string;
  fix: { action: FixAction; text: string; command?: string };
}

/** A depad object with no home label whose deployment this home does not know: perhaps another home's, so not judged. */
export interface UnattributedObject {
  type: 'container' | 'network' | 'volume';
  name: string;
  id: string;
  deployment: string;
}

/** What `diagnose` reports. */
export interface Diagnosis {
  /** This home's identity (its `depad.home` label). */
  home: string;
  findings: Finding[];
  unattributed: UnattributedObject[];
  /** depad objects labelled for other homes on this engine: never judged. */
  otherHomes: number;
}

/** Options of diagnose and repair. */
export interface DoctorOptions {
  /** Orphan volumes and root directories hold data: they are removed only when this is set. */
  volumes?: boolean;
}

/** An engine object with depad's labels, as doctor sees it. */
interface Labelled {
  type: 'container' | 'network' | 'volume';
  name: string;
  id: string;
  labels: Record<string, string>;
}

/** Compares the engine and the home's files with the store; changes nothing. */
export async function diagnose(ctx: OpContext, options: DoctorOptions = {}): Promise<Diagnosis> {
  const home = homeIdentity(ctx.home);
  // The engine first, then the store: an object made after its record (create) is always matched.
  const any = { [LABELS.deploymentId]: null };
  const [containers, networks, volumes] = await Promise.all([ctx.engine.listContainers(any), ctx.engine.listNetworks(any), ctx.engine.listVolumes(any)]);
  const objects: Labelled[] = [
    ...containers.map((c) => ({ type: 'container' as const, name: c.name, id: c.id, labels: c.labels })),
    ...networks.map((n) => ({ type: 'network' as const, name: n.name, id: n.id, labels: n.labels })),
    ...volumes.map((v) => ({ type: 'volume' as const, name: v.name, id: v.name, labels: v.labels })),
  ].filter((o) => o.labels[LABELS.deployment] !== undefined && o.labels[LABELS.deploymentId] !== undefined);
  const records = await ctx.store.listDeployments();
  const journal = await ctx.store.listJournal();
  const known: Known = {
    records: new Map(records.map((r) => [r.id, r])),
    busy: new Set(journal.map((e) => e.deploymentId)),
    busyNames: new Set(journal.map((e) => e.name)),
    // Volumes a deployment reuses (kept by an earlier one of its name) carry that one's ID.
    usedVolumes: new Set(records.flatMap((r) => r.volumes)),
  };
  const findings: Finding[] = journal.map(journalFinding);
  const unattributed: UnattributedObject[] = [];
  let otherHomes = 0;
  for (const o of objects) {
    const id = o.labels[LABELS.deploymentId] as string;
    if (known.records.has(id) || known.busy.has(id) || (o.type === 'volume' && known.usedVolumes.has(o.name))) continue;
    const owner = o.labels[LABELS.home];
    if (owner === undefined) unattributed.push({ type: o.type, name: o.name, id: o.id, deployment: o.labels[LABELS.deployment] as string });
    else if (owner !== home) otherHomes++;
    else findings.push(orphanFinding(o, options));
  }
  const mine = (o: { labels: Record<string, string> }) => known.records.has(o.labels[LABELS.deploymentId] ?? '');
  findings.push(...(await checkRecords(known, { containers: containers.filter(mine), networks: networks.filter(mine), volumeNames: new Set(volumes.map((v) => v.name)) })));
  findings.push(...checkPorts(known, await ctx.store.listPorts()));
  findings.push(...checkSubnets(known, await ctx.store.listSubnets()));
  findings.push(...(await checkRoutes(ctx, known)));
  findings.push(...(await checkRootDirs(ctx, known, options)));
  return { home, findings, unattributed, otherHomes };
}

/** What `doctor --fix` answers: what it did to each finding, and the diagnosis after it. */
export interface FixOutcome {
  results: RepairResult[];
  after: Diagnosis;
}

/**
 * Diagnoses again and repairs the findings named by `keys` that are still there (every finding
 * when `keys` is undefined: the ones a user confirmed may be fewer than what is there now), then
 * diagnoses once more.
 */
export async function doctorFix(ctx: OpContext, options: DoctorOptions, keys?: readonly string[]): Promise<FixOutcome> {
  const now = (await diagnose(ctx, options)).findings;
  const confirmed = keys === undefined ? now : now.filter((f) => keys.includes(f.key));
  const results = await repair(ctx, confirmed);
  return { results, after: await diagnose(ctx, options) };
}

function orphanFinding(o: Labelled, options: DoctorOptions): Finding {
  const deployment = { name: o.labels[LABELS.deployment] as string, id: o.labels[LABELS.deploymentId] as string };
  const problem = `${o.type} of deployment ${deployment.name} (${deployment.id.slice(0, 12)}), which this home's store does not know`;
  const base = { key: `orphan-${o.type}:${o.id}`, object: o.name, deployment, problem };
  if (o.type === 'container') return { ...base, kind: 'orphan-container', id: o.id, fix: { action: 'remove', text: 'remove (forcefully, with its anonymous volumes)' } };
  if (o.type === 'network') return { ...base, kind: 'orphan-network', id: o.id, fix: { action: 'remove', text: 'remove' } };
  return {
    ...base,
    kind: 'orphan-volume',
    fix: options.volumes
      ? { action: 'remove', text: 'remove (its data is lost)' }
      : { action: 'keep', text: `keep: it holds data; a new deployment named ${deployment.name} would reuse it`, command: 'depad doctor --fix --volumes' },
  };
}

function journalFinding(entry: JournalEntry): Finding {
  const deployment = { name: entry.name, id: entry.deploymentId };
  const what = `a ${entry.kind} of ${entry.name} (pid ${entry.pid}, started ${entry.startedAt}, at step ${entry.step})`;
  if (entry.pid === process.pid) {
    return { kind: 'operation-in-progress', key: `operation-in-progress:${entry.opId}`, object: `${entry.kind} ${entry.name}`, deployment, problem: `${what} is running; its objects are not judged`, fix: { action: 'none', text: 'wait for it to finish, then run depad doctor again', command: 'depad doctor' } };
  }
  const outcome = entry.kind === 'destroy' ? 'completed' : entry.kind === 'create' ? 'undone' : 'rolled back';
  return {
    kind: 'interrupted-operation',
    key: `interrupted-operation:${entry.opId}`,
    object: `${entry.kind} ${entry.name}`,
    deployment,
    problem: `${what} was interrupted; its objects are not judged until it is ${outcome}`,
    fix: { action: 'recover', text: `${outcome} from the journal, as the next depad command that opens the state would` },
  };
}
