/**
 * `depad volumes ls|rm`: the home's depad volumes (src/deploy/volumes.ts), among them the ones
 * `destroy --keep-volumes` kept. `rm` removes only volumes depad made for this home that no
 * deployment uses, all or none, after a confirmation on a terminal (`--yes` otherwise). Without an
 * agent it works on the state under its lock; with one, through GET /v1/volumes and
 * POST /v1/volumes/remove, which run in the agent's queue.
 */
import type { Command } from 'commander';
import { bytesText } from '../config/budget.ts';
import { listVolumes, removeVolumes, type VolumeView } from '../deploy/volumes.ts';
import { DepadError } from '../errors.ts';
import { agentFor } from './contexts.ts';
import { confirm } from './doctor-command.ts';
import { printJson, processOutput, progressPrinter, table, type Output } from './output.ts';
import { withState, type CommandOptions } from './runtime.ts';

/** Adds `depad volumes ls|rm` (and `depad volume …`). */
export function addVolumeCommands(program: Command): void {
  const volumes = program.command('volumes').alias('volume').description("depad's named volumes of this home, with the ones destroy --keep-volumes kept").exitOverride();

  volumes
    .command('ls')
    .alias('list')
    .description('list them: name, the deployment that made it, its key, the live deployment that uses it (- for a kept one)')
    .option('--size', 'measure each one (the engine reads every file: slow with much data)')
    .exitOverride()
    .action(async (opts: CommandOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<CommandOptions>();
      const output = processOutput(Boolean(g.json));
      const size = Boolean(opts.size);
      const agent = await agentFor(g);
      const list = agent
        ? await agent.request<VolumeView[]>({ method: 'GET', path: `/v1/volumes${size ? '?size=true' : ''}` })
        : await withState(g, output, 'volumes ls', (ctx) => listVolumes(ctx, { size }), { readOnly: true });
      printVolumes(output, list, size);
    });

  volumes
    .command('rm <volume...>')
    .alias('remove')
    .description('remove volumes depad made for this home that no deployment uses (their data is lost), all or none')
    .option('-y, --yes', 'do not ask (needed when stdin is not a terminal)')
    .exitOverride()
    .action(async (names: string[], opts: CommandOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<CommandOptions>();
      const output = processOutput(Boolean(g.json));
      const agent = await agentFor(g);
      const remove = async (check: boolean): Promise<string[]> => {
        if (agent) {
          const answer = await agent.request<{ removed?: string[]; checked?: string[] }>({ method: 'POST', path: '/v1/volumes/remove', body: { names, check }, ...(check ? {} : { onProgress: progressPrinter(output) }) });
          return answer.removed ?? answer.checked ?? [];
        }
        return withState(g, output, check ? 'volumes rm (checking)' : 'volumes rm', (ctx) => removeVolumes(ctx, names, { check }));
      };
      // Checked first (the same refusals as the removal), so a question is asked only about what can go.
      const sure = await remove(true);
      if (!opts.yes) {
        if (!process.stdin.isTTY) throw new DepadError('DEPAD_USAGE', 'depad volumes rm asks before it removes data, and stdin is not a terminal', { hint: `depad volumes rm --yes ${sure.join(' ')}` });
        if (!(await confirm(`remove ${sure.length === 1 ? 'volume' : `${sure.length} volumes`} ${sure.join(', ')} (the data in ${sure.length === 1 ? 'it' : 'them'} is lost)? [y/N] `))) {
          throw new DepadError('DEPAD_USAGE', 'not confirmed: nothing was removed', { hint: 'depad volumes rm --yes removes without asking' });
        }
      }
      const removed = await remove(false);
      if (output.json) return printJson(output, { removed });
      output.out(removed.map((n) => `removed volume ${n}\n`).join(''));
    });
}

/** The volumes table (or JSON): NAME, DEPLOYMENT (its ID), KEY, USED BY, and SIZE when measured. */
function printVolumes(output: Output, list: readonly VolumeView[], size: boolean): void {
  if (output.json) return printJson(output, list);
  const header = ['NAME', 'DEPLOYMENT', 'KEY', 'USED BY', ...(size ? ['SIZE'] : [])];
  const rows = list.map((v) => [v.name, v.external ? '(external)' : `${v.deployment} (${v.deploymentId.slice(0, 12)})`, v.key ?? '-', v.usedBy ?? '- (kept)', ...(size ? [v.sizeBytes === undefined || v.sizeBytes < 0 ? '?' : bytesText(v.sizeBytes)] : [])]);
  output.out(table(header, rows));
}
