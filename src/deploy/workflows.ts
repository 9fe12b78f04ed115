/**
 * Running workflows (`x-depad.workflows`, see src/config/workflows.ts): their steps one after the
 * other, each bounded by the workflow's timeout. A `run` step is `sh -c` on the host in the
 * deployment's root directory, with the deployment's variables; an `exec` step runs in a one-off
 * container made from the service's plan for the revision at hand (its image, networks, volumes
 * and environment; no published ports, no health check), removed afterwards. Output goes to the
 * progress stream line by line and to `<root>/workflows/<time>-<name>.log` (0600). The first
 * failing step stops the workflow with DEPAD_WORKFLOW_FAILED; the operation that ran the hook
 * undoes what it started.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { DeploymentSpec } from '../config/spec.ts';
import type { Hook, WorkflowSpec, WorkflowStep } from '../config/workflows.ts';
import { LABELS } from '../engine/types.ts';
import type { ContainerPlan } from '../engine/types.ts';
import { DepadError } from '../errors.ts';
import type { DeploymentRecord } from '../store/records.ts';
import { interrupted, type OpContext } from './context.ts';
import { readPlan, readRevisionSpec } from './root-dir.ts';

/** One workflow run, as kept with the revision. */
export interface WorkflowRun {
  workflow: string;
  /** The hook that ran it, or `manual`. */
  trigger: Hook | 'manual';
  ok: boolean;
  ms: number;
  /** The log file. */
  log: string;
  error?: string;
}

/** What a workflow runs against: the deployment, its config and plan at the revision at hand, its variables. */
export interface WorkflowTarget {
  record: DeploymentRecord;
  spec: DeploymentSpec;
  containers: readonly ContainerPlan[];
  env: Readonly<Record<string, string>>;
}

/** The target for the deployment's current revision (what a manual run and before-destroy use). */
export async function currentTarget(record: DeploymentRecord): Promise<WorkflowTarget> {
  const { spec, env } = await readRevisionSpec(record.rootDir, record.revision);
  const plan = await readPlan(record.rootDir, record.revision);
  return { record, spec, containers: plan.containers, env };
}

/**
 * Runs the before-destroy workflows, if the current revision has any. A revision whose config
 * cannot be read has none to run: destroy must still clean up a deployment whose files are damaged.
 */
export async function runBeforeDestroy(ctx: OpContext, record: DeploymentRecord): Promise<void> {
  let revision: { spec: DeploymentSpec; env: Record<string, string> };
  try {
    revision = await readRevisionSpec(record.rootDir, record.revision);
  } catch (error) {
    ctx.log.warn({ deployment: record.name, error: (error as Error).message }, 'cannot read the current revision\'s config: no before-destroy workflow runs');
    return;
  }
  if (!Object.values(revision.spec.depad.workflows ?? {}).some((w) => w.hooks.includes('before-destroy'))) return;
  const plan = await readPlan(record.rootDir, record.revision);
  await runHook(ctx, { record, spec: revision.spec, containers: plan.containers, env: revision.env }, 'before-destroy');
}

/** Runs every workflow bound to `hook`, in name order; throws at the first failure. */
export async function runHook(ctx: OpContext, target: WorkflowTarget, hook: Hook): Promise<WorkflowRun[]> {
  const runs: WorkflowRun[] = [];
  for (const workflow of Object.values(target.spec.depad.workflows ?? {}).filter((w) => w.hooks.includes(hook)).sort((a, b) => a.name.localeCompare(b.name))) {
    runs.push(await runWorkflow(ctx, target, workflow, hook));
  }
  return runs;
}

/** The workflow `name` of the target's config; DEPAD_NOT_FOUND naming the ones there are. */
export function findWorkflow(spec: DeploymentSpec, name: string): WorkflowSpec {
  const found = spec.depad.workflows?.[name];
  if (found === undefined) {
    const names = Object.keys(spec.depad.workflows ?? {}).sort();
    throw new DepadError('DEPAD_NOT_FOUND', `no workflow "${name}" in this deployment's config`, { hint: names.length ? `its workflows: ${names.join(', ')}` : 'it has no x-depad.workflows' });
  }
  return found;
}

/** Runs one workflow's steps; throws DEPAD_WORKFLOW_FAILED (after logging) when a step fails. */
export async function runWorkflow(ctx: OpContext, target: WorkflowTarget, workflow: WorkflowSpec, trigger: Hook | 'manual'): Promise<WorkflowRun> {
  const dir = path.join(target.record.rootDir, 'workflows');
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const log = path.join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${workflow.name}.log`);
  const file = await fs.open(log, 'a', 0o600);
  const started = Date.now();
  const say = (text: string) => {
    void file.write(`${new Date().toISOString()} ${text}\n`);
    ctx.progress({ step: 'workflow', message: `${workflow.name}: ${text}` });
  };
  say(`running (${trigger}, ${workflow.steps.length} step${workflow.steps.length === 1 ? '' : 's'})`);
  try {
    for (const [i, step] of workflow.steps.entries()) {
      const label = `step ${i + 1} ${step.kind === 'run' ? `run: ${step.command}` : `exec in ${step.service}: ${step.command.join(' ')}`}`;
      if (ctx.signal?.aborted) throw interrupted(`workflow:${workflow.name}`);
      say(label);
      const code = step.kind === 'run' ? await runOnHost(ctx, target, workflow, step, say) : await runInContainer(ctx, target, workflow, step, say);
      // Interrupted: the step was ended (SIGTERM, or its container stopped); say so rather than "exit 143".
      if (ctx.signal?.aborted) throw interrupted(`workflow:${workflow.name}`);
      if (code !== 0) throw new DepadError('DEPAD_WORKFLOW_FAILED', `workflow ${workflow.name} failed at ${label}: ${code === 'timeout' ? `no end within ${Math.round(workflow.timeoutMs / 1000)} s` : `exit ${code}`}`, { hint: `its output: ${log}` });
    }
    say(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return { workflow: workflow.name, trigger, ok: true, ms: Date.now() - started, log };
  } catch (error) {
    say(`failed: ${(error as Error).message}`);
    throw error;
  } finally {
    await file.close();
  }
}

/** Splits a stream into lines for `say`. */
function lines(say: (text: string) => void): { push(chunk: Buffer): void; end(): void } {
  let rest = '';
  return {
    push(chunk) {
      rest += chunk.toString();
      const parts = rest.split('\n');
      rest = parts.pop() ?? '';
      for (const line of parts) say(`  ${line}`);
    },
    end() {
      if (rest) say(`  ${rest}`);
      rest = '';
    },
  };
}

function runOnHost(ctx: OpContext, target: WorkflowTarget, workflow: WorkflowSpec, step: Extract<WorkflowStep, { kind: 'run' }>, say: (text: string) => void): Promise<number | 'timeout'> {
  const env = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: process.env.HOME ?? '/',
    ...target.env,
    DEPAD_DEPLOYMENT: target.record.name,
    DEPAD_DEPLOYMENT_ID: target.record.id,
    DEPAD_ROOT: target.record.rootDir,
    DEPAD_WORKFLOW: workflow.name,
  };
  return new Promise((resolve, reject) => {
    // Its own process group, so that a timeout or an interruption ends the commands it started
    // too (a `sleep` left behind would hold its output open, and the step with it).
    const child = spawn('sh', ['-c', step.command], { cwd: target.record.rootDir, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const kill = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        // the group is gone already
      }
    };
    const out = lines(say);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => out.push(d));
    let timedOut = false;
    const timer = setTimeout(() => ((timedOut = true), kill('SIGKILL')), workflow.timeoutMs);
    const abort = () => kill('SIGTERM');
    ctx.signal?.addEventListener('abort', abort, { once: true });
    child.once('error', (error) => (clearTimeout(timer), reject(new DepadError('DEPAD_WORKFLOW_FAILED', `workflow ${workflow.name}: cannot run sh: ${error.message}`))));
    child.once('close', (code) => {
      clearTimeout(timer);
      ctx.signal?.removeEventListener('abort', abort);
      out.end();
      resolve(timedOut ? 'timeout' : (code ?? 1));
    });
  });
}

async function runInContainer(ctx: OpContext, target: WorkflowTarget, workflow: WorkflowSpec, step: Extract<WorkflowStep, { kind: 'exec' }>, say: (text: string) => void): Promise<number | 'timeout'> {
  const base = target.containers.find((c) => c.service === step.service);
  if (base === undefined) throw new DepadError('DEPAD_SERVICE_NOT_FOUND', `workflow ${workflow.name}: no service ${step.service} in this revision`);
  const plan: ContainerPlan = {
    name: `${target.record.project}-wf-${workflow.name}-${randomBytes(3).toString('hex')}`,
    service: step.service,
    body: {
      ...base.body,
      Cmd: [...step.command],
      Labels: { ...base.body.Labels, [LABELS.service]: `workflow-${workflow.name}` },
      Healthcheck: { Test: ['NONE'] },
      HostConfig: { ...base.body.HostConfig, PortBindings: {}, RestartPolicy: { Name: 'no' } },
    },
    endpoints: base.endpoints.map((e) => ({ ...e, aliases: [] })),
    dependsOn: {},
  };
  const id = await ctx.engine.createContainer(plan);
  try {
    await ctx.engine.startContainer(id);
    const out = lines(say);
    const logs = ctx.engine.logs(id, { follow: true }, (line) => out.push(Buffer.from(`${line.text}\n`)));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), workflow.timeoutMs)));
    // Interrupted: the step's container is stopped (its exit then ends the wait).
    const abort = () => void ctx.engine.stopContainer(id, 2).catch(() => {});
    ctx.signal?.addEventListener('abort', abort, { once: true });
    const code = await Promise.race([ctx.engine.waitContainer(id), timeout]).finally(() => ctx.signal?.removeEventListener('abort', abort));
    clearTimeout(timer);
    if (code === 'timeout') await ctx.engine.stopContainer(id, 0);
    await logs.catch(() => {});
    out.end();
    return code;
  } finally {
    await ctx.engine.removeContainer(id);
  }
}
