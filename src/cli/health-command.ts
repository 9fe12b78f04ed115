/**
 * `depad health [deployment]`: where each checked instance stands (status, since when,
 * consecutive failures, restarts, the last result). The periodic checks run in the agent; with
 * no agent this shows what the engine knows: the containers' own health checks.
 */
import { Command } from 'commander';
import type { InstanceHealth } from '../agent/health-monitor.ts';
import type { EngineStatus } from '../agent/observed.ts';
import { resolveDeployment } from '../deploy/resolve.ts';
import { listDeploymentViews, viewDeployment } from '../deploy/status.ts';
import { seg } from './agent-client.ts';
import { agentFor } from './contexts.ts';
import { printJson, processOutput, table } from './output.ts';
import { withState, type CommandOptions } from './runtime.ts';
import { selectView } from '../deploy/replica-select.ts';
import { cliSelection, needsDeployment, replicaName, replicaOption, selectionParams } from './replica-filter.ts';

/** Adds `depad health` to `parent`. */
export function addHealthCommand(parent: Command): void {
  parent
    .command('health [deployment]')
    .description('health of every checked instance (web[2] for replica 2): status, failures, restarts, last result (all deployments by default)')
    .option('-s, --service <names...>', "only these services of the deployment (web[2]: its replica 2)")
    .addOption(replicaOption())
    .action(async (ref: string | undefined, opts: CommandOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<CommandOptions>();
      const output = processOutput(Boolean(g.json));
      const selection = cliSelection(opts);
      if (ref === undefined) needsDeployment(selection, 'health');
      const agent = await agentFor(g);
      let list: InstanceHealth[];
      let engine: EngineStatus | undefined;
      if (agent) {
        engine = await agent.request<EngineStatus>({ method: 'GET', path: '/v1/engine' });
        const name = ref === undefined ? undefined : (await agent.request<{ name: string }>({ method: 'GET', path: `/v1/deployments/${seg(ref)}` })).name;
        list = await agent.request<InstanceHealth[]>({ method: 'GET', path: `/v1/health${name === undefined ? '' : `?${selectionParams(opts, new URLSearchParams({ deployment: name })).toString()}`}` });
      } else {
        output.err('depad: no agent runs: only the containers\' own health checks are shown (x-depad.health checks run in depad agent)\n');
        list = await withState(g, output, 'health', async (ctx) => {
          const views = ref === undefined ? await listDeploymentViews(ctx) : [selectView(await viewDeployment(ctx, await resolveDeployment(ctx.store, ref)), selection)];
          return views.flatMap((v) =>
            v.services.flatMap((s) =>
              s.instances
                .filter((i) => i.health !== undefined && i.state === 'running')
                .map((i): InstanceHealth => ({ deployment: v.name, service: s.name, replica: i.replica ?? 1, replicas: s.replicas ?? 1, instance: i.container, probe: 'container', status: i.health as InstanceHealth['status'], since: i.startedAt ?? '', failures: 0, restarts: 0, checks: [] })),
            ),
          );
        }, { readOnly: true });
      }
      // The engine's state: GET /v1/engine for scripts; here a line above the table (stderr with --json).
      if (engine?.state === 'down') (output.json ? output.err : output.out)(`engine: DOWN since ${engine.since} (${engine.address}: ${engine.error ?? 'no answer'}); instances are unknown until it answers\n`);
      if (output.json) return printJson(output, list);
      // Through a cluster manager each row has its host: a HOST column, as in ls.
      const hostOf = (h: InstanceHealth) => (h as InstanceHealth & { host?: string }).host;
      const hosts = list.some((h) => hostOf(h) !== undefined);
      output.out(
        table(
          ['DEPLOYMENT', ...(hosts ? ['HOST'] : []), 'SERVICE', 'INSTANCE', 'CHECK', 'STATUS', 'SINCE', 'FAILURES', 'RESTARTS', 'LAST RESULT'],
          list.map((h) => [h.deployment, ...(hosts ? [hostOf(h) ?? '-'] : []), replicaName(h.service, h.replica, h.replicas), h.instance, h.probe, h.status, h.since.slice(11, 19) || '-', String(h.failures), String(h.restarts), h.checks.at(-1)?.output.replace(/\s+/g, ' ').slice(0, 60) ?? '-']),
        ),
      );
    });
}
