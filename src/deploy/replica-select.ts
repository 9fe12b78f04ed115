/**
 * Picking services and replicas of a deployment for ps, logs, stats and health: `-s web`,
 * `-s web --replica 2` or `-s 'web[2]'` on the CLI; the `service` (repeatable, `web` or `web[2]`)
 * and `replica` query parameters in the API. One parser and one check serve both, so the CLI
 * and the agent refuse the same things with the same messages.
 */
import { LABELS } from '../engine/types.ts';
import { DepadError } from '../errors.ts';
import { currentInstances, type InstanceHolder } from '../render/names.ts';
import type { DeploymentView } from './status.ts';

/** Which services, and which of their replicas, a command shows. */
export interface ReplicaSelection {
  /** Only these services (absent: all). */
  readonly services?: readonly string[];
  /** service → only these replicas (a service not in it: all of its replicas). */
  readonly replicas: Readonly<Record<string, readonly number[]>>;
}

/** How the service and replica inputs are spelled where they came from, for the messages. */
export interface SelectionSpelling {
  service: string;
  replica: string;
}

/** The CLI's spelling: `-s/--service`, `--replica`. */
export const CLI_SPELLING: SelectionSpelling = { service: '-s/--service', replica: '--replica' };

/** The API's spelling: its query parameters. */
export const API_SPELLING: SelectionSpelling = { service: 'query parameter service', replica: 'query parameter replica' };

/** Everything: no service or replica named. */
export const ALL: ReplicaSelection = Object.freeze({ replicas: Object.freeze({}) });

const REPLICA = /^[1-9]\d{0,5}$/;
const SERVICE_REPLICA = /^([^[\]]+)\[([^[\]]*)\]$/;

/**
 * The selection `services` (each `web` or `web[2]`) and `replica` (a number for the one service
 * named) ask for; DEPAD_USAGE for what does not parse or a replica without exactly one service.
 */
export function parseSelection(services: readonly string[] | undefined, replica: string | number | undefined, spelling: SelectionSpelling): ReplicaSelection {
  const names: string[] = [];
  const limited = new Map<string, Set<number> | 'all'>();
  for (const given of services ?? []) {
    const m = SERVICE_REPLICA.exec(given);
    if (m === null && /[[\]]/.test(given)) throw usage(`${spelling.service} ${JSON.stringify(given.slice(0, 80))} is neither a service nor service[replica]`, 'write a service name, or a service and its replica number: web[2]');
    const name = m?.[1] ?? given;
    if (!names.includes(name)) names.push(name);
    if (m === null) {
      limited.set(name, 'all');
      continue;
    }
    const n = replicaNumber(m[2] ?? '', `${spelling.service} ${given}`);
    const known = limited.get(name);
    if (known === undefined) limited.set(name, new Set([n]));
    else if (known !== 'all') known.add(n);
  }
  if (replica !== undefined) {
    const n = replicaNumber(String(replica), spelling.replica);
    const [only] = names;
    if (names.length !== 1 || only === undefined) {
      throw usage(`${spelling.replica} ${n} needs exactly one service (${spelling.service}), ${names.length === 0 ? 'none was named' : `not ${names.length}: ${names.join(', ')}`}`, 'name the service the replica is of: -s web --replica 2 (or -s \'web[2]\')');
    }
    if (limited.get(only) !== 'all') throw usage(`${spelling.replica} ${n} and ${spelling.service} ${services?.join(' ')} both name a replica`, 'name it once: -s web --replica 2, or -s \'web[2]\'');
    limited.set(only, new Set([n]));
  }
  const replicas: Record<string, readonly number[]> = {};
  for (const [name, which] of limited) if (which !== 'all') replicas[name] = Object.freeze([...which].sort((a, b) => a - b));
  return Object.freeze({ ...(names.length > 0 ? { services: Object.freeze(names) } : {}), replicas: Object.freeze(replicas) });
}

/** The selection of an API request's `service` and `replica` query parameters. */
export function selectionQuery(params: URLSearchParams): ReplicaSelection {
  const services = params.getAll('service');
  return parseSelection(services.length > 0 ? services : undefined, params.get('replica') ?? undefined, API_SPELLING);
}

/** True when the selection names no service (and so no replica). */
export function selectsAll(selection: ReplicaSelection): boolean {
  return selection.services === undefined;
}

/** A deployment's services, each with its number of current replicas. */
export interface ServiceReplicas {
  deployment: string;
  services: ReadonlyArray<{ name: string; replicas: number }>;
}

/** How many current replicas `service` has in `record` (1 for services without replicas). */
export function replicaCount(record: InstanceHolder, service: string): number {
  return currentInstances(record, service).length;
}

/** The services (in `order`) and replica counts of a deployment record. */
export function recordReplicas(record: { name: string } & InstanceHolder, order: readonly string[]): ServiceReplicas {
  return { deployment: record.name, services: order.map((name) => ({ name, replicas: replicaCount(record, name) })) };
}

/** The services and replica counts a deployment view shows. */
export function viewReplicas(view: DeploymentView): ServiceReplicas {
  return { deployment: view.name, services: view.services.map((s) => ({ name: s.name, replicas: s.replicas ?? 1 })) };
}

/**
 * Refuses a selection the deployment cannot answer: a service it does not have
 * (DEPAD_SERVICE_NOT_FOUND) or a replica number its service does not have (DEPAD_NOT_FOUND),
 * saying what there is.
 */
export function checkSelection(known: ServiceReplicas, selection: ReplicaSelection): void {
  const names = known.services.map((s) => s.name);
  const unknown = (selection.services ?? []).filter((s) => !names.includes(s));
  if (unknown.length > 0) {
    throw new DepadError('DEPAD_SERVICE_NOT_FOUND', `deployment ${known.deployment} has no service ${unknown.map((s) => JSON.stringify(s)).join(', ')}`, { hint: `its services are: ${names.join(', ')}` });
  }
  for (const [service, replicas] of Object.entries(selection.replicas)) {
    const count = known.services.find((s) => s.name === service)?.replicas ?? 1;
    const missing = replicas.filter((n) => n > count);
    if (missing.length === 0) continue;
    const has = count === 1 ? 'one replica, 1' : `${count} replicas, 1…${count} (${service}[1] … ${service}[${count}])`;
    throw new DepadError('DEPAD_NOT_FOUND', `service ${service} of deployment ${known.deployment} has no replica ${missing.join(', ')}: it has ${has}`, {
      hint: `name one it has, or all of them with just the service; depad ps ${known.deployment} -s ${service} lists them`,
    });
  }
}

/** True when the selection takes `service`'s replica `replica`. */
export function isSelected(selection: ReplicaSelection, service: string, replica: number): boolean {
  if (selection.services !== undefined && !selection.services.includes(service)) return false;
  const only = selection.replicas[service];
  return only === undefined || only.includes(replica);
}

/** The replica a container is (its `depad.replica` label; 1 for containers made before replicas). */
export function replicaOf(labels: Readonly<Record<string, string>>): number {
  const n = Number(labels[LABELS.replica] ?? 1);
  return Number.isInteger(n) && n > 0 ? n : 1;
}

/** `view` with only the services and instances `selection` takes, after checking it against the view. */
export function selectView(view: DeploymentView, selection: ReplicaSelection): DeploymentView {
  if (selectsAll(selection)) return view;
  checkSelection(viewReplicas(view), selection);
  const services = view.services
    .filter((s) => selection.services?.includes(s.name) ?? true)
    .map((s) => ({ ...s, instances: s.instances.filter((i) => isSelected(selection, s.name, i.replica ?? 1)) }));
  return { ...view, services };
}

function replicaNumber(text: string, where: string): number {
  if (!REPLICA.test(text)) throw usage(`${where}: ${JSON.stringify(text.slice(0, 20))} is not a replica number`, 'replicas are numbered from 1: --replica 2, or web[2]');
  return Number(text);
}

function usage(message: string, hint: string): DepadError {
  return new DepadError('DEPAD_USAGE', message, { hint });
}
