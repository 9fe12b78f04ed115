/**
 * `x-depad.workflows`: named steps that are not container management (a migration, a seed, a
 * dependency to install), run by hand (`depad workflow run`) or bound to hooks of depad's own
 * operations.
 *
 *   x-depad:
 *     workflows:
 *       migrate:
 *         hooks: [before-update]      # before-create, after-create, before-update, after-update, before-destroy
 *         timeout: 10m                # per step (default 10m)
 *         steps:
 *           - exec: [node, migrate.js]  # in a one-off container of the service's image, network and environment
 *             service: web
 *           - run: ./seed.sh            # on the host, in the deployment's root directory (./seed.sh is copied there)
 */
import { posix } from 'node:path';
import type { Collector, LNode } from './nodes.ts';
import { keyPath } from './nodes.ts';
import { checkKeys, mapEntries, readString, readStringList } from './read.ts';
import { readDuration } from './service-parts.ts';

/** When a workflow runs on its own. */
export const HOOKS = ['before-create', 'after-create', 'before-update', 'after-update', 'before-destroy'] as const;
/** A hook of depad's operations. */
export type Hook = (typeof HOOKS)[number];

/** One step. */
export type WorkflowStep = { readonly kind: 'run'; readonly command: string } | { readonly kind: 'exec'; readonly command: readonly string[]; readonly service: string };

/** A named workflow. */
export interface WorkflowSpec {
  readonly name: string;
  readonly hooks: readonly Hook[];
  /** Per step. */
  readonly timeoutMs: number;
  readonly steps: readonly WorkflowStep[];
}

/** Workflow names: lowercase letters, digits, `-` and `_`, up to 63. */
export const WORKFLOW_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** What the root directory holds of depad's own: a file a `run:` step names never replaces it. */
export const ROOT_OWN: ReadonlySet<string> = new Set(['depad.yml', 'docker-compose.yml', 'revisions', 'workflows']);

/**
 * The relative paths a `run:` step's command names (`./seed.sh`, `sh scripts/seed.sh`,
 * `psql -f db/seed.sql`, `--file=db/seed.sql`), normalised: those that exist beside the config are
 * copied into the deployment's root, where the step runs. Words with variables, globs or `~`,
 * absolute paths and paths that leave the config's directory are not paths beside it.
 */
export function runStepPaths(command: string): string[] {
  const out = new Set<string>();
  for (const raw of command.split(/[\s;|&()<>`]+/)) {
    const word = raw.replace(/^['"]+|['"]+$/g, '');
    for (const part of [word, word.slice(word.indexOf('=') + 1)]) {
      if (!/^[A-Za-z0-9._][A-Za-z0-9._/+@,-]*$/.test(part)) continue;
      const norm = posix.normalize(part).replace(/\/+$/, '');
      if (norm === '.' || norm === '..' || norm.startsWith('../') || ROOT_OWN.has(norm.split('/')[0] ?? '')) continue;
      out.add(norm);
    }
  }
  return [...out].sort();
}

/** Every path the `run:` steps of `workflows` name (see `runStepPaths`), sorted. */
export function workflowRunPaths(workflows: Readonly<Record<string, WorkflowSpec>>): string[] {
  const paths = Object.values(workflows).flatMap((w) => w.steps.flatMap((step) => (step.kind === 'run' ? runStepPaths(step.command) : [])));
  return [...new Set(paths)].sort();
}

/** Reads `x-depad.workflows`; `services` are the deployment's service names (exec steps must name one). */
export function readWorkflows(c: Collector, node: LNode, path: string, services: readonly string[]): Record<string, WorkflowSpec> {
  const out: Record<string, WorkflowSpec> = {};
  for (const entry of mapEntries(c, node, path, 'a map of workflow name → { hooks, steps }') ?? []) {
    const wPath = keyPath(path, entry.key);
    if (!WORKFLOW_NAME.test(entry.key)) c.issue(wPath, entry.keyPos, `workflow name "${entry.key}" must be lowercase letters, digits, "-" or "_"`);
    const keys = checkKeys(c, mapEntries(c, entry.value, wPath, 'a map with steps (and hooks, timeout)') ?? [], wPath, { supported: ['hooks', 'timeout', 'steps'] });
    const hooks: Hook[] = [];
    const hooksEntry = keys.get('hooks');
    for (const [i, hook] of (hooksEntry ? (readStringList(c, hooksEntry.value, keyPath(wPath, 'hooks'), { single: true }) ?? []) : []).entries()) {
      if ((HOOKS as readonly string[]).includes(hook)) hooks.push(hook as Hook);
      else c.issue(keyPath(keyPath(wPath, 'hooks'), String(i)), hooksEntry!.value.pos, `unknown hook "${hook}"; hooks are ${HOOKS.join(', ')}`);
    }
    const timeout = keys.get('timeout');
    const timeoutMs = (timeout ? readDuration(c, timeout.value, keyPath(wPath, 'timeout')) : undefined) ?? 600_000;
    const stepsEntry = keys.get('steps');
    const steps: WorkflowStep[] = [];
    if (stepsEntry === undefined) c.issue(wPath, entry.keyPos, 'a workflow needs steps: a list of { run: … } or { exec: […], service: … }');
    else if (stepsEntry.value.kind !== 'seq' || stepsEntry.value.items.length === 0) c.issue(keyPath(wPath, 'steps'), stepsEntry.value.pos, 'steps must be a non-empty list of { run: … } or { exec: […], service: … }');
    else {
      for (const [i, item] of stepsEntry.value.items.entries()) {
        const step = readStep(c, item, keyPath(keyPath(wPath, 'steps'), String(i)), services);
        if (step) steps.push(step);
      }
    }
    out[entry.key] = { name: entry.key, hooks, timeoutMs, steps };
  }
  return out;
}

function readStep(c: Collector, node: LNode, sPath: string, services: readonly string[]): WorkflowStep | undefined {
  const keys = checkKeys(c, mapEntries(c, node, sPath, '{ run: "command" } or { exec: [program, args…], service: name }') ?? [], sPath, { supported: ['run', 'exec', 'service'] });
  const run = keys.get('run');
  const exec = keys.get('exec');
  if ((run === undefined) === (exec === undefined)) {
    c.issue(sPath, node.pos, 'a step is either run: (on the host) or exec: (in a container of a service), one of the two');
    return undefined;
  }
  const serviceEntry = keys.get('service');
  if (run) {
    if (serviceEntry) c.issue(keyPath(sPath, 'service'), serviceEntry.keyPos, 'service applies to exec steps; run steps run on the host');
    const command = readString(c, run.value, keyPath(sPath, 'run'), { what: 'a shell command' });
    return command === undefined ? undefined : { kind: 'run', command };
  }
  const argv = exec!.value.kind === 'scalar' ? readString(c, exec!.value, keyPath(sPath, 'exec'), { what: 'a command' }) : undefined;
  const command = argv !== undefined ? ['sh', '-c', argv] : readStringList(c, exec!.value, keyPath(sPath, 'exec'));
  if (command !== undefined && command.length === 0) c.issue(keyPath(sPath, 'exec'), exec!.value.pos, 'the command is empty');
  let service = serviceEntry ? readString(c, serviceEntry.value, keyPath(sPath, 'service'), { what: 'a service name' }) : services.length === 1 ? services[0] : undefined;
  if (serviceEntry === undefined && services.length !== 1) c.issue(sPath, node.pos, 'say whose image, network and environment the step runs with: service: <name>');
  else if (service !== undefined && !services.includes(service)) {
    c.issue(keyPath(sPath, 'service'), serviceEntry!.value.pos, `no service "${service}" in this file (services: ${[...services].sort().join(', ')})`);
    service = undefined;
  }
  return command === undefined || command.length === 0 || service === undefined ? undefined : { kind: 'exec', command, service };
}
