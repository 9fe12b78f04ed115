/** Human and `--json` output of the CLI: tables and results on stdout, progress and errors on stderr. */
import { heldSummary } from '../deploy/roll-holds.ts';
import { labelsText } from '../labels.ts';
import { bytesText } from '../config/budget.ts';
import path from 'node:path';
import { DepadError } from '../errors.ts';
import type { ProgressEvent } from '../deploy/context.ts';
import type { DeploymentView, InstanceView } from '../deploy/status.ts';

/** Where the CLI writes; injectable for tests. */
export interface Output {
  json: boolean;
  out: (text: string) => void;
  err: (text: string) => void;
}

/** The process's own stdout/stderr. */
export function processOutput(json: boolean): Output {
  return { json, out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };
}

/** A progress sink that prints one line per step to stderr, with the elapsed time. */
export function progressPrinter(output: Output): (event: ProgressEvent) => void {
  const started = Date.now();
  return (event) => {
    if (event.step === 'warning') return printWarning(output, event.message);
    const secs = ((Date.now() - started) / 1000).toFixed(1).padStart(5);
    output.err(`${secs}s  ${event.message}\n`);
  };
}

/** Prints a warning on stderr, the way every command does. */
export function printWarning(output: Output, message: string): void {
  output.err(`depad: warning: ${message}\n`);
}

/** Prints a value as JSON (scripts) — the one form of `--json` output. */
export function printJson(output: Output, value: unknown): void {
  output.out(JSON.stringify(value, null, 2) + '\n');
}

/** Formats rows as an aligned table with a header. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

/** The instances table of one deployment (create, start, ps, inspect). */
export function instancesTable(view: DeploymentView): string {
  const rows = view.services.flatMap((s) => {
    const route = !s.route ? '-' : s.route.kind === 'http' ? (s.route.urls ?? s.route.hosts.map((h) => `http://${h}`)).join(' ') : `tcp :${s.route.port ?? '?'}`;
    if (s.instances.length === 0) return [[s.name, '-', s.replicas === 0 ? '0 replicas' : 'missing', '-', '-', portsText(s.ports), route]];
    // Several replicas: each row names its replica and shows its own ports.
    const many = (s.replicas ?? 1) > 1 || new Set(s.instances.map((i) => i.replica)).size > 1;
    const own = (i: (typeof s.instances)[number]) => s.ports.filter((p) => i.ports.some((b) => b.host === p.host));
    return s.instances.map((i) => [many && i.replica !== undefined ? `${s.name}[${i.replica}]` : s.name, i.container, stateText(i), i.health ?? '-', restartsText(i), portsText(many ? own(i) : s.ports), route]);
  });
  return table(['SERVICE', 'CONTAINER', 'STATE', 'HEALTH', 'RESTARTS', 'PORTS', 'ROUTE'], rows);
}

function stateText(i: InstanceView): string {
  return i.state === 'exited' ? `exited (${i.exitCode})` : i.state;
}

/** `3`, `3, next in 20 s`, `10, gave up`. */
function restartsText(i: InstanceView): string {
  const loop = i.crashLoop;
  if (loop?.state === 'given-up') return `${i.restarts}, gave up`;
  if (loop?.state === 'backoff' && loop.nextRestart) return `${i.restarts}, next in ${Math.max(0, Math.ceil((Date.parse(loop.nextRestart) - Date.now()) / 1000))} s`;
  return String(i.restarts ?? 0);
}

/** One line saying what a deployment is, above its table. */
export function deploymentHeadline(view: DeploymentView): string {
  return `deployment ${view.name} (${view.id.slice(0, 12)}): ${view.status}, revision ${view.revision}\n`;
}

/** `3000->8080/tcp, 3001->5432/tcp` */
export function portsText(ports: ReadonlyArray<{ host: number; target: number; protocol: string; asked?: string; hostIp?: string }>): string {
  const one = (p: (typeof ports)[number]) => `${p.hostIp ? `${p.hostIp}:` : ''}${p.host}->${p.target}/${p.protocol}${p.asked !== undefined && p.asked !== String(p.host) ? ` (asked ${p.asked})` : ''}`;
  return ports.length ? ports.map(one).join(', ') : '-';
}

/** Prints an error the way the CLI reports every failure; returns the exit code. */
export function reportError(output: Output, error: unknown): number {
  const depad =
    error instanceof DepadError
      ? error
      : new DepadError('DEPAD_INTERNAL', `internal error: ${error instanceof Error ? error.message : String(error)}`, {
          hint: 'this is a bug in depad; run again with DEPAD_LOG_LEVEL=debug and report it',
          cause: error,
        });
  if (output.json) {
    output.err(JSON.stringify({ error: depad.toJSON() }) + '\n');
  } else {
    output.err(`depad: ${depad.message}\n`);
    if (depad.hint) output.err(`  hint: ${depad.hint}\n`);
  }
  if (!(error instanceof DepadError) && process.env.DEPAD_LOG_LEVEL === 'debug' && error instanceof Error) output.err(`${error.stack}\n`);
  return depad.exitCode;
}

/** `depad ls`: a table, names only (`quiet`) or JSON. */
export function printList(output: Output, views: readonly DeploymentView[], quiet: boolean, cluster = false): void {
  if (output.json) return printJson(output, views);
  if (quiet) return output.out(views.map((v) => `${v.name}\n`).join(''));
  // Through a cluster manager each view names its host (`cluster`: known to be one, even when the list is empty).
  const hosts = cluster || views.some((v) => v.host !== undefined);
  const rows = views.map((v) => [v.name, ...(hosts ? [v.host ?? '-'] : []), v.id.slice(0, 12), v.status, String(v.revision ?? '-'), String(v.services.length), portsText(v.services.flatMap((s) => s.ports)), v.createdAt?.slice(0, 19).replace('T', ' ') ?? '-']);
  output.out(table(['NAME', ...(hosts ? ['HOST'] : []), 'ID', 'STATUS', 'REV', 'SERVICES', 'PORTS', 'CREATED'], rows));
}

/** `depad inspect`: identity, revisions, instances. */
export function printInspect(output: Output, view: DeploymentView, revisions: ReadonlyArray<{ number: number; configFile: string; configSha256: string; createdAt: string }>): void {
  if (output.json) return printJson(output, { ...view, revisions });
  output.out(deploymentHeadline(view));
  if (view.host !== undefined) output.out(`  host:     ${view.host}\n`);
  output.out(`  id:       ${view.id}\n  root:     ${view.rootDir}\n  desired:  ${view.desired}${view.stoppedServices?.length ? ` (stopped on their own: ${view.stoppedServices.join(', ')})` : ''}\n  labels:   ${labelsText(view.labels)}\n  created:  ${view.createdAt}\n  updated:  ${view.updatedAt}\n`);
  for (const n of view.subnets ?? []) output.out(`  subnet:   ${n.network} ${n.asked} → ${n.given}\n`);
  for (const line of heldSummary(view.held ?? {})) output.out(`  held:     ${line}\n`);
  for (const r of revisions) output.out(`  revision ${r.number}: ${path.basename(r.configFile)} (config ${r.configSha256.slice(0, 12)}, ${r.createdAt})\n`);
  for (const s of view.services) {
    const l = s.limits;
    if (l) output.out(`  limits ${s.name}: ${[l.cpus !== undefined ? `${l.cpus} CPUs` : '', l.memoryBytes !== undefined ? bytesText(l.memoryBytes) : '', l.pids !== undefined ? `${l.pids} pids` : ''].filter(Boolean).join(', ')}\n`);
  }
  output.out('\n' + instancesTable(view));
}

/** `depad ps`: the instances of the services named (all by default). */
export function printPs(output: Output, view: DeploymentView, only: readonly string[] | undefined): void {
  const filtered = only ? { ...view, services: view.services.filter((s) => only.includes(s.name)) } : view;
  if (output.json) return printJson(output, filtered.services.flatMap((s) => s.instances));
  output.out(instancesTable(filtered));
}

/** A deployment after start, stop, restart or create: headline and instances. */
export function printDeployment(output: Output, view: DeploymentView): void {
  if (output.json) return printJson(output, view);
  output.out(deploymentHeadline(view) + instancesTable(view));
}

/** `depad destroy`'s result. */
export function printDestroyed(output: Output, record: { id: string; name: string }, keptVolumes: boolean): void {
  if (output.json) printJson(output, { destroyed: { id: record.id, name: record.name }, keptVolumes });
  else output.out(`destroyed ${record.name} (${record.id.slice(0, 12)})\n`);
}
