/**
 * `depad workflow run <deployment> <name>` runs one of a deployment's workflows now, with its
 * current revision (steps streamed; exit 10 when a step fails); `depad workflow ls <deployment>`
 * lists them with their hooks and steps.
 */
import { Command } from 'commander';
import type { WorkflowRun } from '../deploy/workflows.ts';
import type { WorkflowSpec } from '../config/workflows.ts';
import { currentTarget, findWorkflow, runWorkflow } from '../deploy/workflows.ts';
import { readRevisionSpec } from '../deploy/root-dir.ts';
import { seg } from './agent-client.ts';
import { printJson, progressPrinter, table } from './output.ts';
import { deploymentAction } from './runtime.ts';

/** Adds `depad workflow …` to `parent`. */
export function addWorkflowCommands(parent: Command): void {
  const workflow = parent.command('workflow').description("a deployment's workflows (x-depad.workflows): run one now, list them").exitOverride();
  workflow
    .command('run <deployment> <name>')
    .description('run a workflow now, with the current revision; its output streams, and is kept in <root>/workflows/')
    .exitOverride()
    .action((ref: string, name: string, opts, cmd: Command) =>
      deploymentAction(
        'workflow run',
        async (ctx, record, _opts, output) => {
          const target = await currentTarget(record);
          printRun(output, await runWorkflow(ctx, target, findWorkflow(target.spec, name), 'manual'));
        },
        {
          remote: async (agent, r, _opts, output) =>
            printRun(output, await agent.request<WorkflowRun>({ method: 'POST', path: `/v1/deployments/${seg(r)}/workflows/${seg(name)}`, body: {}, onProgress: progressPrinter(output) })),
        },
      )(ref, opts, cmd),
    );
  workflow
    .command('ls <deployment>')
    .description("list a deployment's workflows: hooks and steps")
    .exitOverride()
    .action(
      deploymentAction('workflow ls', async (_ctx, record, _opts, output) => {
        const { spec } = await readRevisionSpec(record.rootDir, record.revision);
        printList(output, Object.values(spec.depad.workflows ?? {}));
      }, {
        readOnly: true,
        remote: async (agent, r, _opts, output) => printList(output, await agent.request<WorkflowSpec[]>({ method: 'GET', path: `/v1/deployments/${seg(r)}/workflows` })),
      }),
    );
}

function printList(output: Parameters<typeof printJson>[0], list: readonly WorkflowSpec[]): void {
  if (output.json) return printJson(output, list);
  const steps = (w: WorkflowSpec) => w.steps.map((s) => (s.kind === 'run' ? `run: ${s.command}` : `exec(${s.service}): ${s.command.join(' ')}`)).join(' ; ');
  output.out(table(['WORKFLOW', 'HOOKS', 'TIMEOUT', 'STEPS'], list.map((w) => [w.name, w.hooks.join(',') || '-', `${w.timeoutMs / 1000}s`, steps(w)])));
}

function printRun(output: Parameters<typeof printJson>[0], run: WorkflowRun): void {
  if (output.json) return printJson(output, run);
  output.out(`workflow ${run.workflow}: ${run.ok ? 'done' : 'failed'} in ${(run.ms / 1000).toFixed(1)} s; log ${run.log}\n`);
}
