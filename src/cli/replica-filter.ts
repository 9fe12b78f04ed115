/**
 * The CLI side of picking replicas (`-s web --replica 2`, `-s 'web[2]'`) for ps, logs, stats and
 * health: the options, the query string for the agent, and how a replica is named in output
 * (`web[2]` when its service has several, `web` otherwise).
 */
import { Option } from 'commander';
import { CLI_SPELLING, parseSelection, selectsAll, type ReplicaSelection } from '../deploy/replica-select.ts';
import { DepadError } from '../errors.ts';
import type { Output } from './output.ts';
import type { CommandOptions } from './runtime.ts';

/** `--replica <n>`: one replica of the one service `-s` names. */
export function replicaOption(): Option {
  return new Option('--replica <n>', "only this replica (1…N) of the one service -s names (or write -s 'web[2]')");
}

/** The selection a command's `-s` and `--replica` ask for (DEPAD_USAGE when they do not parse). */
export function cliSelection(opts: CommandOptions): ReplicaSelection {
  return parseSelection(opts.service as string[] | undefined, opts.replica as string | undefined, CLI_SPELLING);
}

/** Refuses `-s`/`--replica` on a command run over every deployment (`stats`, `health` without one). */
export function needsDeployment(selection: ReplicaSelection, command: string): void {
  if (!selectsAll(selection)) throw new DepadError('DEPAD_USAGE', `${command}: -s and --replica need a deployment`, { hint: `name it: depad ${command} shop -s web --replica 2` });
}

/** `-s` and `--replica` as the API's query parameters (the agent parses and checks them as the CLI does). */
export function selectionParams(opts: CommandOptions, q = new URLSearchParams()): URLSearchParams {
  for (const s of (opts.service as string[] | undefined) ?? []) q.append('service', s);
  if (opts.replica !== undefined) q.set('replica', String(opts.replica));
  return q;
}

/** `?service=…&replica=…`, or nothing. */
export function selectionQueryString(opts: CommandOptions): string {
  const q = selectionParams(opts).toString();
  return q === '' ? '' : `?${q}`;
}

/** How output names a replica: `web[2]` when `service` has several, else `web`. */
export function replicaName(service: string, replica: number | undefined, replicas: number | undefined): string {
  return (replicas ?? 1) > 1 ? `${service}[${replica ?? 1}]` : service;
}

/** Prints `depad logs` lines: `web[2] | text` (aligned; `--json`: {service, replica, stream, text}); `counts`: service → its replicas. */
export function logLinePrinter(output: Output, counts: ReadonlyMap<string, number>): (service: string, stream: string, text: string, replica: number | undefined) => void {
  const width = Math.max(...[...counts].map(([s, n]) => replicaName(s, n, n).length), 8);
  return (service, stream, text, replica) => {
    if (output.json) output.out(JSON.stringify({ service, ...(replica === undefined ? {} : { replica }), stream, text }) + '\n');
    // A replica a scale added while following is named too (its service had one replica at the start).
    else output.out(`${replicaName(service, replica, Math.max(counts.get(service) ?? 1, replica ?? 1)).padEnd(width)} | ${text}\n`);
  };
}
