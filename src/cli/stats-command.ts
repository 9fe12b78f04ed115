/**
 * `depad stats [deployment] [-l selector]`: CPU, memory and processes of every running instance,
 * one engine sample each, with the limits the engine enforces. Without a deployment: all of them.
 */
import { Command } from 'commander';
import { bytesText } from '../config/budget.ts';
import { matchesSelector } from '../labels.ts';
import { resolveDeployment } from '../deploy/resolve.ts';
import type { DeploymentView } from '../deploy/status.ts';
import { deploymentUsage } from '../deploy/usage.ts';
import type { InstanceUsage } from '../deploy/usage.ts';
import { seg } from './agent-client.ts';
import { agentFor } from './contexts.ts';
import { optionalSelector, selectorOption } from './bulk-commands.ts';
import { printJson, processOutput, table } from './output.ts';
import { withState, type CommandOptions } from './runtime.ts';
import { cliSelection, needsDeployment, replicaName, replicaOption, selectionQueryString } from './replica-filter.ts';

/** Adds `depad stats` to `parent`. */
export function addStatsCommand(parent: Command): void {
  parent
    .command('stats [deployment]')
    .description('CPU, memory and processes per running instance (web[2] for replica 2), with their limits (all deployments by default)')
    .addOption(selectorOption('only deployments with these labels'))
    .option('-s, --service <names...>', "only these services of the deployment (web[2]: its replica 2)")
    .addOption(replicaOption())
    .action(async (ref: string | undefined, opts: CommandOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<CommandOptions>();
      const output = processOutput(Boolean(g.json));
      const selector = optionalSelector(opts);
      const selection = cliSelection(opts);
      if (ref === undefined) needsDeployment(selection, 'stats');
      const agent = await agentFor(g);
      let usage: InstanceUsage[];
      if (agent) {
        const names = ref !== undefined ? [ref] : (await agent.request<DeploymentView[]>({ method: 'GET', path: '/v1/deployments' })).filter((v) => !selector || matchesSelector(v.labels, selector)).map((v) => v.name);
        usage = (await Promise.all(names.map((n) => agent.request<InstanceUsage[]>({ method: 'GET', path: `/v1/deployments/${seg(n)}/stats${selectionQueryString(opts)}` })))).flat();
      } else {
        usage = await withState(g, output, 'stats', async (ctx) => {
          const records = ref !== undefined ? [await resolveDeployment(ctx.store, ref)] : (await ctx.store.listDeployments()).filter((r) => !selector || matchesSelector(r.labels, selector)).sort((a, b) => a.name.localeCompare(b.name));
          return (await Promise.all(records.map((r) => deploymentUsage(ctx, r, selection)))).flat();
        }, { readOnly: true });
      }
      if (output.json) return printJson(output, usage);
      output.out(
        table(
          ['DEPLOYMENT', 'SERVICE', 'CONTAINER', 'CPU %', 'CPU LIMIT', 'MEMORY', 'MEMORY LIMIT', 'PIDS'],
          usage.map((u) => [u.deployment, replicaName(u.service, u.replica, u.replicas), u.container, u.cpuPercent.toFixed(1), u.cpuLimit == null ? '-' : String(u.cpuLimit), bytesText(u.memoryBytes), u.memoryLimitBytes == null ? '-' : bytesText(u.memoryLimitBytes), String(u.pids)]),
        ),
      );
    });
}
