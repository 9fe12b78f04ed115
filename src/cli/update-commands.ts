/** update, diff, history and rollback: revisions of a deployment (both `depad <verb>` and `depad deployment <verb>`). */
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { packBundle } from '../deploy/bundle.ts';
import type { OpContext } from '../deploy/context.ts';
import type { PlanDiff } from '../deploy/diff.ts';
import { viewDeployment } from '../deploy/status.ts';
import { planUpdate, rollbackDeployment, rollbackRequest, updateDeployment, updateRequestFor, type UpdateOutcome, type UpdateTarget } from '../deploy/update.ts';
import { previewUpdate, type UpdatePreview } from '../deploy/update-preview.ts';
import { DepadError } from '../errors.ts';
import type { DeploymentRecord, RevisionRecord } from '../store/records.ts';
import { seg, type AgentClient } from './agent-client.ts';
import { addConfigOptions, readEnv, warnPrinter } from './config-input.ts';
import { deploymentHeadline, instancesTable, printJson, printWarning, processOutput, progressPrinter, table, type Output } from './output.ts';
import { localBulkRollback, localBulkUpdate, runBulk, selectorOf, selectorOptions } from './bulk-commands.ts';
import { deploymentAction, type CommandOptions as Opts } from './runtime.ts';

/** Options that say what to update to: a config file, variables, or new images for named services. */
function targetOptions(command: Command): Command {
  return addConfigOptions(command, { required: false, description: 'the new config (docker-compose format with x-depad keys); default: the current one' })
    .option('--reset-env', "start from no variables instead of the current revision's (then only -e and --env-file count)")
    .addOption(new Option('-s, --service <names...>', 'with --image: the services to give the new image'))
    .option('--image <ref>', 'a new image for the services named by -s')
    .option('--scale <service=n...>', 'run n replicas of the service (the replicas that stay are kept; new ones join the route once healthy, removed ones are drained first)');
}

/** `--scale web=3 worker=2` as service → count; DEPAD_USAGE for anything else. */
export function scaleCounts(given: readonly string[] | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of given ?? []) {
    const m = /^([^=\s]+)=(\d+)$/.exec(item);
    if (!m) throw new DepadError('DEPAD_USAGE', `--scale ${item}: expected SERVICE=N, e.g. web=3`);
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** What the options say to update to (config file, variables, images for services). */
async function readTarget(opts: Opts, output: Output): Promise<UpdateTarget> {
  const services = (opts.service as string[] | undefined) ?? [];
  const image = opts.image as string | undefined;
  if (image !== undefined && services.length === 0) throw new DepadError('DEPAD_USAGE', '--image needs -s <service> to say which services get it');
  if (image === undefined && services.length > 0) throw new DepadError('DEPAD_USAGE', '-s names the services --image gives a new image to: add --image <ref>');
  const overrides: Record<string, string> = image === undefined ? {} : Object.fromEntries(services.map((s) => [s, image]));
  const scale = scaleCounts(opts.scale as string[] | undefined);
  const env = await readEnv(opts.env as string[], opts.envFile as string[], {
    ...(opts.configFile === undefined ? {} : { configFile: String(opts.configFile) }),
    profiles: (opts.profile as string[] | undefined) ?? [],
  });
  return {
    ...(opts.configFile === undefined ? {} : { configFile: path.resolve(String(opts.configFile)) }),
    env,
    ...(opts.resetEnv ? { resetEnv: true } : {}),
    overrides,
    ...(Object.keys(scale).length > 0 ? { scale } : {}),
    pull: opts.pull as 'missing' | 'never',
    warn: warnPrinter(output),
    notice: (message) => printWarning(output, message),
  };
}

/**
 * The body of an update or diff request to an agent. A local agent gets the config's path and
 * reads it itself; a remote one gets it in a bundle with the files it references. The agent merges the variables with the current
 * revision's and sends its warnings back as progress lines.
 */
async function remoteTarget(agent: AgentClient, opts: Opts, output: Output): Promise<Record<string, unknown>> {
  const { warn: _w, notice: _n, configFile, ...target } = await readTarget(opts, output);
  if (configFile === undefined) return target;
  if (!agent.remote) return { ...target, configFile };
  return { ...target, bundle: await packBundle(configFile, target.env ?? {}) };
}

/** Adds update, diff, history and rollback to `parent`. */
export function addUpdateCommands(parent: Command): void {
  const updateOne = deploymentAction('update', async (ctx, record, opts, output) => {
    const result = await updateDeployment(ctx, record, await updateRequestFor(record, await readTarget(opts, output)));
    await printResult(ctx, output, result.record, result.diff, result.revision);
  }, {
    remote: async (agent, ref, opts, output) => {
      printUpdate(output, await agent.request<UpdateOutcome>({ method: 'POST', path: `/v1/deployments/${seg(ref)}/update`, body: await remoteTarget(agent, opts, output), onProgress: progressPrinter(output) }));
    },
  });
  const previewOne = deploymentAction('update --dry-run', async (ctx, record, opts, output) => {
    printPreview(output, await previewUpdate(ctx, record, await updateRequestFor(record, await readTarget(opts, output))));
  }, {
    readOnly: true,
    remote: async (agent, ref, opts, output) => {
      const body = { ...(await remoteTarget(agent, opts, output)), dryRun: true };
      printPreview(output, await agent.request<UpdatePreview>({ method: 'POST', path: `/v1/deployments/${seg(ref)}/update`, body, onProgress: progressPrinter(output) }));
    },
  });
  const update = targetOptions(parent.command('update [deployment]').description('update a deployment (or every one -l selects, rolling): new instances of changed services, zero downtime through the proxy'));
  selectorOptions(update, { dryRun: 'show the diff and what the update would do (per deployment with -l); change nothing' }).action(async (ref: string | undefined, opts: Opts, cmd: Command) => {
    const selector = selectorOf(ref, opts, cmd);
    if (selector === undefined) return (opts.dryRun ? previewOne : updateOne)(ref as string, opts, cmd);
    const output = processOutput(Boolean(cmd.optsWithGlobals<Opts>().json));
    await runBulk(
      'update',
      cmd,
      selector,
      async (agent) => ({ ...(await remoteTarget(agent, opts, output)), maxParallel: opts.maxParallel, dryRun: Boolean(opts.dryRun) }),
      async (ctx, sel) => localBulkUpdate(await readTarget(opts, output), opts)(ctx, sel),
    );
  });

  targetOptions(parent.command('diff <deployment>').description('show what an update would change, per service; changes nothing')).action(
    deploymentAction('diff', async (ctx, record, opts, output) => {
      const { diff } = await planUpdate(ctx, record, await updateRequestFor(record, await readTarget(opts, output)));
      printDiff(output, diff, record.name, record.revision);
    }, {
      readOnly: true,
      remote: async (agent, ref, opts, output) => {
        const answer = await agent.request<{ diff: PlanDiff; name: string; revision: number }>({ method: 'POST', path: `/v1/deployments/${seg(ref)}/diff`, body: await remoteTarget(agent, opts, output) });
        printDiff(output, answer.diff, answer.name, answer.revision);
      },
    }),
  );

  parent
    .command('history <deployment>')
    .description("list a deployment's revisions")
    .action(
      deploymentAction('history', async (ctx, record, _opts, output) => printHistory(output, (await ctx.store.listRevisions(record.id)).map((r) => ({ ...r, current: r.number === record.revision }))), {
        readOnly: true,
        remote: async (agent, ref, _opts, output) => printHistory(output, await agent.request({ method: 'GET', path: `/v1/deployments/${seg(ref)}/history` })),
      }),
    );

  const rollbackOne = deploymentAction('rollback', async (ctx, record, opts, output) => {
    const result = await rollbackDeployment(ctx, record, opts.to as number | undefined);
    await printResult(ctx, output, result.record, result.diff, result.revision);
  }, {
    remote: async (agent, ref, opts, output) => {
      const body = opts.to === undefined ? {} : { to: opts.to };
      printUpdate(output, await agent.request<UpdateOutcome>({ method: 'POST', path: `/v1/deployments/${seg(ref)}/rollback`, body, onProgress: progressPrinter(output) }));
    },
  });
  const previewRollback = deploymentAction('rollback --dry-run', async (ctx, record, opts, output) => {
    printPreview(output, await previewUpdate(ctx, record, await rollbackRequest(ctx, record, opts.to as number | undefined)));
  }, {
    readOnly: true,
    remote: async (agent, ref, opts, output) => {
      const body = { ...(opts.to === undefined ? {} : { to: opts.to }), dryRun: true };
      printPreview(output, await agent.request<UpdatePreview>({ method: 'POST', path: `/v1/deployments/${seg(ref)}/rollback`, body, onProgress: progressPrinter(output) }));
    },
  });
  const rollback = parent
    .command('rollback [deployment]')
    .description('go back to an earlier revision (itself a zero-downtime update, recorded as a new revision); with -l: each selected deployment to its previous one')
    .option('--to <revision>', 'the revision to restore (default: the one before the current)', (v) => {
      if (!/^[1-9]\d*$/.test(v)) throw new InvalidArgumentError(`--to takes a revision number, not ${JSON.stringify(v)}`);
      return Number(v);
    });
  selectorOptions(rollback, { dryRun: 'show the diff and what the rollback would do (per deployment with -l); change nothing' }).action(async (ref: string | undefined, opts: Opts, cmd: Command) => {
    const selector = selectorOf(ref, opts, cmd);
    if (selector === undefined) return (opts.dryRun ? previewRollback : rollbackOne)(ref as string, opts, cmd);
    if (opts.to !== undefined) throw new DepadError('DEPAD_USAGE', '--to names a revision of one deployment; with -l each goes back to its previous revision');
    await runBulk('rollback', cmd, selector, async () => ({ maxParallel: opts.maxParallel, dryRun: Boolean(opts.dryRun) }), localBulkRollback(opts));
  });
}

/** Prints what an update or rollback would do (`--dry-run`). */
export function printPreview(output: Output, preview: UpdatePreview): void {
  if (output.json) return printJson(output, preview);
  output.out('dry run: nothing was changed\n');
  if (preview.toRevision === undefined) {
    output.out(`no changes: ${preview.name} would stay at revision ${preview.revision}\n`);
    return;
  }
  output.out(diffText(preview.diff, preview.name, preview.revision));
  output.out(`would make revision ${preview.toRevision}:\n${preview.steps.map((step, i) => `  ${i + 1}. ${step}`).join('\n')}\n`);
}

async function printResult(ctx: OpContext, output: Output, record: DeploymentRecord, diff: PlanDiff, revision: number | undefined): Promise<void> {
  printUpdate(output, { view: await viewDeployment(ctx, record), diff, revision });
}

/** Prints an update's or rollback's outcome. */
export function printUpdate(output: Output, { view, diff, revision }: UpdateOutcome): void {
  if (output.json) return printJson(output, { ...view, updated: revision !== undefined, changes: diff.services.filter((s) => s.kind !== 'unchanged') });
  if (revision === undefined) output.out(`no changes: ${view.name} stays at revision ${view.revision}\n`);
  else output.out(diffText(diff, view.name, revision - 1));
  output.out(deploymentHeadline(view) + instancesTable(view));
}

/** Prints a deployment's revisions (`current` marks the one it runs). */
export function printHistory(output: Output, revisions: ReadonlyArray<RevisionRecord & { current: boolean }>): void {
  if (output.json) return printJson(output, revisions);
  const rows = revisions.map((r) => [
    `${r.current ? '*' : ' '}${r.number}`,
    r.createdAt.slice(0, 19).replace('T', ' '),
    r.source === 'rollback' ? `rollback to ${r.from}` : r.source,
    r.changed.join(',') + (r.removed.length ? ` -${r.removed.join(',-')}` : '') || '-',
    Object.entries(r.images).map(([s, i]) => `${s}=${i.ref}`).join(' '),
    path.basename(r.configFile),
  ]);
  output.out(table(['REV', 'CREATED', 'SOURCE', 'CHANGED', 'IMAGES', 'CONFIG'], rows));
}

/** Prints what an update would change (`depad diff`). */
export function printDiff(output: Output, diff: PlanDiff, name: string, revision: number): void {
  if (output.json) return printJson(output, diff);
  output.out(diffText(diff, name, revision));
}

/** Per-service changes as lines a reviewer reads. */
function diffText(diff: PlanDiff, name: string, against: number): string {
  if (diff.empty) return `no changes against revision ${against} of ${name}\n`;
  const lines = [`changes against revision ${against} of ${name}:`];
  for (const s of diff.services) {
    if (s.kind === 'unchanged') lines.push(`  = ${s.service}: unchanged`);
    else {
      const mark = { added: '+', removed: '-', changed: '~', routing: '~' }[s.kind];
      const what = s.replicas?.only ? 'scale' : { added: 'new service', removed: 'removed', changed: 'new instance', routing: 'no new instance' }[s.kind];
      lines.push(`  ${mark} ${s.service}: ${what}${s.details.length ? `: ${s.details.join('; ')}` : ''}`);
    }
  }
  for (const kind of ['networks', 'volumes'] as const) {
    if (diff[kind].added.length) lines.push(`  + ${kind}: ${diff[kind].added.join(', ')}`);
    if (diff[kind].removed.length) lines.push(`  - ${kind}: ${diff[kind].removed.join(', ')}`);
  }
  return lines.join('\n') + '\n';
}
