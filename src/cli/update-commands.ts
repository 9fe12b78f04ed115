/** update, diff, history and rollback: revisions of a deployment (both `depad <verb>` and `depad deployment <verb>`). */
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { withImages } from '../config/index.ts';
import type { OpContext } from '../deploy/context.ts';
import type { PlanDiff } from '../deploy/diff.ts';
import { readRevisionSpec } from '../deploy/root-dir.ts';
import { viewDeployment } from '../deploy/status.ts';
import { planUpdate, updateDeployment, type UpdateRequest } from '../deploy/update.ts';
import { DepadError } from '../errors.ts';
import type { DeploymentRecord } from '../store/records.ts';
import { addConfigOptions, readConfigInput } from './config-input.ts';
import { deploymentHeadline, instancesTable, printJson, table, type Output } from './output.ts';
import { deploymentAction, type CommandOptions as Opts } from './runtime.ts';

/** Options that say what to update to: a config file, or new images for named services. */
function targetOptions(command: Command): Command {
  return addConfigOptions(command, { required: false, description: 'the new config (docker-compose format with x-depad keys)' })
    .addOption(new Option('-s, --service <names...>', 'with --image: the services to give the new image'))
    .option('--image <ref>', 'a new image for the services named by -s (without -f: the current config otherwise)');
}

/** Reads what the options say into an update request (config file, or current revision plus images). */
async function readTarget(opts: Opts, record: DeploymentRecord, output: Output): Promise<UpdateRequest> {
  const services = (opts.service as string[] | undefined) ?? [];
  const image = opts.image as string | undefined;
  if (image !== undefined && services.length === 0) throw new DepadError('DEPAD_USAGE', '--image needs -s <service> to say which services get it');
  if (image === undefined && services.length > 0 && opts.configFile === undefined) {
    throw new DepadError('DEPAD_USAGE', '-s needs --image (or give the new config with -f)');
  }
  const overrides: Record<string, string> = image === undefined ? {} : Object.fromEntries(services.map((s) => [s, image]));
  let request: UpdateRequest;
  if (opts.configFile !== undefined) {
    const input = await readConfigInput(String(opts.configFile), opts.env as string[], opts.envFile as string[], output);
    request = { spec: withImages(input.spec, overrides), env: input.env, overrides };
  } else if (image !== undefined) {
    const current = await readRevisionSpec(record.rootDir, record.revision);
    request = { spec: withImages(current.spec, overrides), env: current.env, overrides };
  } else {
    throw new DepadError('DEPAD_USAGE', 'say what to update to: -f <config file>, or -s <service> --image <ref>');
  }
  return { ...request, pull: opts.pull as 'missing' | 'never' };
}

/** Adds update, diff, history and rollback to `parent`. */
export function addUpdateCommands(parent: Command): void {
  targetOptions(parent.command('update <deployment>').description('update a deployment: new instances of changed services, zero downtime through the proxy')).action(
    deploymentAction('update', async (ctx, record, opts, output) => {
      const result = await updateDeployment(ctx, record, await readTarget(opts, record, output));
      await printResult(ctx, output, result.record, result.diff, result.revision);
    }),
  );

  targetOptions(parent.command('diff <deployment>').description('show what an update would change, per service; changes nothing')).action(
    deploymentAction('diff', async (ctx, record, opts, output) => {
      const { diff } = await planUpdate(ctx, record, await readTarget(opts, record, output));
      if (output.json) return printJson(output, diff);
      output.out(diffText(diff, record.name, record.revision));
    }, { readOnly: true }),
  );

  parent
    .command('history <deployment>')
    .description("list a deployment's revisions")
    .action(
      deploymentAction('history', async (ctx, record, _opts, output) => {
        const revisions = await ctx.store.listRevisions(record.id);
        if (output.json) return printJson(output, revisions.map((r) => ({ ...r, current: r.number === record.revision })));
        const rows = revisions.map((r) => [
          `${r.number === record.revision ? '*' : ' '}${r.number}`,
          r.createdAt.slice(0, 19).replace('T', ' '),
          r.source === 'rollback' ? `rollback to ${r.from}` : r.source,
          r.changed.join(',') + (r.removed.length ? ` -${r.removed.join(',-')}` : '') || '-',
          Object.entries(r.images).map(([s, i]) => `${s}=${i.ref}`).join(' '),
          path.basename(r.configFile),
        ]);
        output.out(table(['REV', 'CREATED', 'SOURCE', 'CHANGED', 'IMAGES', 'CONFIG'], rows));
      }, { readOnly: true }),
    );

  parent
    .command('rollback <deployment>')
    .description('go back to an earlier revision (itself a zero-downtime update, recorded as a new revision)')
    .option('--to <revision>', 'the revision to restore (default: the one before the current)', (v) => {
      if (!/^[1-9]\d*$/.test(v)) throw new InvalidArgumentError(`--to takes a revision number, not ${JSON.stringify(v)}`);
      return Number(v);
    })
    .action(
      deploymentAction('rollback', async (ctx, record, opts, output) => {
        const revisions = await ctx.store.listRevisions(record.id);
        const to = (opts.to as number | undefined) ?? record.revision - 1;
        const target = revisions.find((r) => r.number === to);
        if (!target || to === record.revision) {
          throw new DepadError('DEPAD_NOT_FOUND', to === record.revision ? `revision ${to} is the current one` : `deployment ${record.name} has no revision ${to}`, {
            hint: `see its revisions with: depad history ${record.name}`,
          });
        }
        const { spec, env } = await readRevisionSpec(record.rootDir, to);
        const result = await updateDeployment(ctx, record, { spec, env, overrides: target.overrides, source: 'rollback', from: to, pull: 'never' });
        await printResult(ctx, output, result.record, result.diff, result.revision);
      }),
    );
}

async function printResult(ctx: OpContext, output: Output, record: DeploymentRecord, diff: PlanDiff, revision: number | undefined): Promise<void> {
  const view = await viewDeployment(ctx, record);
  if (output.json) return printJson(output, { ...view, updated: revision !== undefined, changes: diff.services.filter((s) => s.kind !== 'unchanged') });
  if (revision === undefined) output.out(`no changes: ${record.name} stays at revision ${record.revision}\n`);
  else output.out(diffText(diff, record.name, revision - 1));
  output.out(deploymentHeadline(view) + instancesTable(view));
}

/** Per-service changes as lines a reviewer reads. */
function diffText(diff: PlanDiff, name: string, against: number): string {
  if (diff.empty) return `no changes against revision ${against} of ${name}\n`;
  const lines = [`changes against revision ${against} of ${name}:`];
  for (const s of diff.services) {
    if (s.kind === 'unchanged') lines.push(`  = ${s.service}: unchanged`);
    else {
      const mark = { added: '+', removed: '-', changed: '~', routing: '~' }[s.kind];
      const what = { added: 'new service', removed: 'removed', changed: 'new instance', routing: 'route only' }[s.kind];
      lines.push(`  ${mark} ${s.service}: ${what}${s.details.length ? `: ${s.details.join('; ')}` : ''}`);
    }
  }
  for (const kind of ['networks', 'volumes'] as const) {
    if (diff[kind].added.length) lines.push(`  + ${kind}: ${diff[kind].added.join(', ')}`);
    if (diff[kind].removed.length) lines.push(`  - ${kind}: ${diff[kind].removed.join(', ')}`);
  }
  return lines.join('\n') + '\n';
}
