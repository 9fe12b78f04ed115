/**
 * Label selectors on the commands that name a deployment: `update -l class=x -s db --image …`,
 * `start|stop|restart -l …`, `ls -l …`. One deployment is named by its argument; many by `-l`
 * (never both). The work itself is in src/deploy/bulk.ts; through an agent it is one API call
 * (`POST /v1/bulk/<verb>`) whose progress streams back. A summary table ends every bulk command;
 * a failure makes the exit code that of the first failed deployment's error.
 */
import { Command, Option } from 'commander';
import { bulkLifecycle, bulkRollback, bulkUpdate, selectDeployments } from '../deploy/bulk.ts';
import type { BulkOutcome } from '../deploy/bulk.ts';
import type { OpContext } from '../deploy/context.ts';
import type { UpdateTarget } from '../deploy/update.ts';
import { DepadError, ERROR_CODES } from '../errors.ts';
import type { ErrorCode } from '../errors.ts';
import { labelsText, parseLabelArgs } from '../labels.ts';
import type { AgentClient } from './agent-client.ts';
import { agentFor } from './contexts.ts';
import { collect, positiveInt } from './option-parsers.ts';
import { printJson, processOutput, progressPrinter, table, type Output } from './output.ts';
import { withState, type CommandOptions } from './runtime.ts';
import { counted } from '../plural.ts';

/** The `-l/--selector` option (repeatable `key=value[,…]`). */
export function selectorOption(description: string): Option {
  return new Option('-l, --selector <labels>', `${description}, e.g. class=plateaumed,env=prod (repeatable)`).argParser(collect);
}

/** The selector `-l` gives, or undefined without one. */
export function optionalSelector(opts: CommandOptions): Record<string, string> | undefined {
  const items = (opts.selector as string[] | undefined) ?? [];
  return items.length === 0 ? undefined : parseLabelArgs(items, '--selector');
}

/** Adds `-l/--selector` and `--max-parallel` (and `--dry-run`, described by `dryRun`, when given) to `command`. */
export function selectorOptions(command: Command, options: { dryRun?: string } = {}): Command {
  command
    .addOption(selectorOption('instead of a deployment: every deployment with these labels'))
    .option('--max-parallel <n>', 'with -l: how many deployments change at once', positiveInt, 1);
  if (options.dryRun) command.option('--dry-run', options.dryRun);
  return command;
}

/**
 * The selector the options give, or undefined; DEPAD_USAGE when both a deployment and -l are
 * given, or neither, and (given `cmd`) when one deployment is named with `--max-parallel`: an
 * option a command does not use is an error, never ignored.
 */
export function selectorOf(ref: string | undefined, opts: CommandOptions, cmd?: Command): Record<string, string> | undefined {
  const selector = optionalSelector(opts);
  if (selector === undefined && ref === undefined) throw new DepadError('DEPAD_USAGE', 'name a deployment, or select deployments with -l key=value');
  if (selector !== undefined && ref !== undefined) throw new DepadError('DEPAD_USAGE', `give either a deployment (${ref}) or -l, not both`);
  if (selector === undefined && cmd?.getOptionValueSource('maxParallel') === 'cli') {
    throw new DepadError('DEPAD_USAGE', '--max-parallel applies to many deployments at once (with -l key=value); it means nothing for one');
  }
  return selector;
}

/** A bulk verb, carried out here or by the agent. */
export type BulkVerb = 'update' | 'rollback' | 'start' | 'stop' | 'restart';

/**
 * Runs a bulk command: through the agent when one is there (`body` is what the API takes besides
 * the selector), else on the local state with `local`. Prints the summary; throws after it when
 * something failed.
 */
export async function runBulk(
  verb: BulkVerb,
  cmd: Command,
  selector: Record<string, string>,
  body: (agent: AgentClient) => Promise<Record<string, unknown>>,
  local: (ctx: OpContext, selector: Record<string, string>) => Promise<BulkOutcome>,
): Promise<void> {
  const g = cmd.optsWithGlobals<CommandOptions>();
  const output = processOutput(Boolean(g.json));
  const agent = await agentFor(g);
  const outcome = agent
    ? await agent.request<BulkOutcome>({ method: 'POST', path: `/v1/bulk/${verb}`, body: { selector, ...(await body(agent)) }, onProgress: progressPrinter(output) })
    : await withState(g, output, `${verb} -l ${labelsText(selector)}`, (ctx) => local(ctx, selector));
  printBulk(output, verb, outcome);
  const failed = outcome.items.find((i) => i.result === 'failed');
  if (failed) {
    const code = (failed.code && failed.code in ERROR_CODES ? failed.code : 'DEPAD_SERVICE_FAILED') as ErrorCode;
    const skipped = outcome.items.filter((i) => i.result === 'skipped').length;
    throw new DepadError(code, `${verb} stopped at ${failed.deployment}: ${failed.error ?? 'failed'}`, {
      hint: `${counted(skipped, 'deployment')} ${skipped === 1 ? 'was' : 'were'} not touched; fix ${failed.deployment} and run the command again (the ones done are at their target already: they change nothing), or narrow -l to leave it out`,
    });
  }
}

/** The summary: deployment, from, to, result, time (and each one's host, through a cluster manager). */
export function printBulk(output: Output, verb: BulkVerb, outcome: BulkOutcome): void {
  if (output.json) return printJson(output, outcome);
  const hosts = outcome.items.some((i) => i.host !== undefined);
  const row = (i: BulkOutcome['items'][number]) => [i.deployment, ...(hosts ? [i.host ?? '-'] : []), i.from, i.to, i.result, `${(i.ms / 1000).toFixed(1)}s`];
  output.out(table(['DEPLOYMENT', ...(hosts ? ['HOST'] : []), 'FROM', 'TO', 'RESULT', 'TIME'], outcome.items.map(row)));
  const counts = new Map<string, number>();
  for (const i of outcome.items) counts.set(i.result, (counts.get(i.result) ?? 0) + 1);
  output.err(`depad: ${verb} -l ${labelsText(outcome.selector)}: ${[...counts].map(([r, n]) => `${n} ${r}`).join(', ')}\n`);
}

/** The local bulk update: select, then roll (see src/deploy/bulk.ts). */
export function localBulkUpdate(target: UpdateTarget, opts: CommandOptions) {
  return async (ctx: OpContext, selector: Record<string, string>): Promise<BulkOutcome> =>
    bulkUpdate(ctx, selectDeployments(await ctx.store.listDeployments(), selector), target, selector, { maxParallel: opts.maxParallel as number, dryRun: Boolean(opts.dryRun) });
}

/** The local bulk rollback (each to its previous revision). */
export function localBulkRollback(opts: CommandOptions) {
  return async (ctx: OpContext, selector: Record<string, string>): Promise<BulkOutcome> =>
    bulkRollback(ctx, selectDeployments(await ctx.store.listDeployments(), selector), selector, { maxParallel: opts.maxParallel as number, dryRun: Boolean(opts.dryRun) });
}

/** The local bulk start, stop or restart. */
export function localBulkLifecycle(verb: 'start' | 'stop' | 'restart', opts: CommandOptions) {
  return async (ctx: OpContext, selector: Record<string, string>): Promise<BulkOutcome> =>
    bulkLifecycle(ctx, selectDeployments(await ctx.store.listDeployments(), selector), verb, selector, {
      maxParallel: opts.maxParallel as number,
      ...(opts.service ? { services: opts.service as string[] } : {}),
      wait: opts.wait !== false,
    });
}
