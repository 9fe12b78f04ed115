/**
 * The deployment verbs. Each is registered on both `depad` and `depad deployment`, as the spec
 * fixes (`depad deployment create …` and `depad create …`).
 */
import path from 'node:path';
import { packBundle } from '../deploy/bundle.ts';
import { Command, InvalidArgumentError, Option } from 'commander';
import { createDeployment } from '../deploy/create.ts';
import { destroyDeployment, lifecycleOperation } from '../deploy/lifecycle.ts';
import { assertValidName, resolveDeployment } from '../deploy/resolve.ts';
import { listDeploymentViews, listRevisions, readLogs, viewDeployment } from '../deploy/status.ts';
import type { DeploymentView } from '../deploy/status.ts';
import type { RevisionRecord } from '../store/records.ts';
import { seg, type AgentClient } from './agent-client.ts';
import { agentFor } from './contexts.ts';
import { addConfigOptions, readConfigInput } from './config-input.ts';
import { deploymentNameFromFile } from '../config/top-level.ts';
import { printDeployment, printDestroyed, printInspect, printJson, printList, printPs, processOutput, progressPrinter, table, type Output } from './output.ts';
import type { PlacementResult } from '../cluster/placement.ts';
import { DepadError } from '../errors.ts';
import { deploymentAction, withState, type CommandOptions } from './runtime.ts';
import { collect } from './option-parsers.ts';
import { matchesSelector, parseLabelArgs } from '../labels.ts';
import { cliSelection, logLinePrinter, replicaOption, selectionParams, selectionQueryString } from './replica-filter.ts';
import { replicaCount, selectView } from '../deploy/replica-select.ts';
import { localBulkLifecycle, optionalSelector, runBulk, selectorOf, selectorOption, selectorOptions } from './bulk-commands.ts';

type Opts = CommandOptions;

const serviceOption = () => new Option('-s, --service <names...>', 'only these services of the deployment');

/** Adds every deployment verb to `parent`. */
export function addDeploymentCommands(parent: Command): void {
  const create = parent
    .command('create')
    .description('create a deployment from a config file and run it')
    .option('-n, --name <name>', "unique deployment name (a-z, 0-9, -; at most 63); default: COMPOSE_PROJECT_NAME, else the file's top-level name:");
  addConfigOptions(create, { required: true, description: 'deployment config (docker-compose format with x-depad keys)' })
    .option('--no-wait', 'return once started, without waiting for health checks')
    .option('--class <class>', 'the deployment\'s class (the class label), over x-depad.class')
    .option('--label <key=value>', 'a label selectors match, over x-depad.labels (repeatable; a=1,b=2 also works)', collect, [])
    .option('--on-host <host>', 'through a cluster manager: run it on this host only (--host names the manager)')
    .option('--dry-run', 'through a cluster manager: show the host placement would choose and every host\'s score or reason; create nothing')
    .action(async (opts: Opts, cmd: Command) => {
      const g = cmd.optsWithGlobals<Opts>();
      const output = processOutput(Boolean(g.json));
      if (opts.name !== undefined) assertValidName(String(opts.name));
      const labels = parseLabelArgs([...(opts.label as string[]), ...(opts.class === undefined ? [] : [`class=${String(opts.class)}`])], '--label');
      const input = await readConfigInput(String(opts.configFile), opts.env as string[], opts.envFile as string[], output, opts.profile as string[]);
      if (opts.name === undefined) opts.name = deploymentNameFromFile(input.spec, input.env);
      const agent = await agentFor(g);
      if (agent) {
        const file = path.resolve(String(opts.configFile));
        // A remote agent gets the config with the files it references (env files, bind sources, run: step files).
        const config = agent.remote ? { bundle: await packBundle(file, input.env) } : { configFile: file };
        const body = { name: opts.name, ...config, env: input.env, labels, pull: opts.pull, wait: opts.wait !== false, ...(opts.onHost ? { host: opts.onHost } : {}), ...(opts.dryRun ? { dryRun: true } : {}) };
        if (opts.dryRun) return printPlacement(output, await agent.request<{ placement: PlacementResult }>({ method: 'POST', path: '/v1/deployments', body }));
        return printDeployment(output, await agent.request<DeploymentView>({ method: 'POST', path: '/v1/deployments', body, onProgress: progressPrinter(output) }));
      }
      if (opts.onHost || opts.dryRun) throw new DepadError('DEPAD_USAGE', `${opts.onHost ? '--on-host' : '--dry-run'} places a deployment in a cluster: give the manager with --host or --context`);
      await withState(g, output, `create --name ${String(opts.name)}`, async (ctx) => {
        const record = await createDeployment(ctx, {
          name: String(opts.name),
          spec: input.spec,
          env: input.env,
          labels,
          pull: opts.pull as 'missing' | 'never',
          wait: opts.wait !== false,
        });
        printDeployment(output, await viewDeployment(ctx, record));
      });
    });

  const lifecycle = (verb: 'start' | 'stop' | 'restart', description: string) => {
    const command = parent
      .command(`${verb} [deployment]`)
      .description(`${description} (or every deployment -l selects)`)
      .addOption(serviceOption());
    if (verb !== 'stop') command.option('--no-wait', 'do not wait for health checks after starting');
    selectorOptions(command);
    const one = deploymentAction(verb, async (ctx, record, opts, output) => {
        const options = { ...(opts.service ? { services: opts.service as string[] } : {}), wait: opts.wait !== false };
        const run = lifecycleOperation(verb);
        const updated = await run(ctx, record, options);
        printDeployment(output, await viewDeployment(ctx, updated));
      }, {
        remote: async (agent, ref, opts, output) => {
          const body = { ...(opts.service ? { services: opts.service } : {}), ...(verb === 'stop' ? {} : { wait: opts.wait !== false }) };
          printDeployment(output, await agent.request<DeploymentView>({ method: 'POST', path: `/v1/deployments/${seg(ref)}/${verb}`, body, onProgress: progressPrinter(output) }));
        },
      });
    command.action(async (ref: string | undefined, opts: Opts, cmd: Command) => {
      const selector = selectorOf(ref, opts, cmd);
      if (selector === undefined) return one(ref as string, opts, cmd);
      const body = { ...(opts.service ? { services: opts.service } : {}), ...(verb === 'stop' ? {} : { wait: opts.wait !== false }), maxParallel: opts.maxParallel };
      await runBulk(verb, cmd, selector, async () => body, localBulkLifecycle(verb, opts));
    });
  };
  lifecycle('start', 'start a deployment, or some of its services (-s)');
  lifecycle('stop', 'stop a deployment, or some of its services (-s); its ports stay reserved');
  lifecycle('restart', 'restart a deployment, or some of its services (-s)');

  parent
    .command('destroy <deployment>')
    .alias('rm')
    .description('remove a deployment: containers, networks, volumes, root directory, ports')
    .option('--keep-volumes', 'keep its named volumes (a later create with the same name reuses them)')
    .action(
      deploymentAction('destroy', async (ctx, record, opts, output) => {
        await destroyDeployment(ctx, record, { keepVolumes: Boolean(opts.keepVolumes) });
        printDestroyed(output, record, Boolean(opts.keepVolumes));
      }, {
        remote: async (agent, ref, opts, output) => {
          const done = await agent.request<{ destroyed: string; id: string }>({ method: 'DELETE', path: `/v1/deployments/${seg(ref)}?keepVolumes=${Boolean(opts.keepVolumes)}`, onProgress: progressPrinter(output) });
          printDestroyed(output, { id: done.id, name: done.destroyed }, Boolean(opts.keepVolumes));
        },
      }),
    );

  parent
    .command('ls')
    .alias('list')
    .description('list deployments')
    .option('-q, --quiet', 'only names')
    .addOption(selectorOption('only deployments with these labels'))
    .option('--on-host <host>', 'through a cluster manager: only the deployments of this host')
    .action(async (opts: Opts, cmd: Command) => {
      const g = cmd.optsWithGlobals<Opts>();
      const output = processOutput(Boolean(g.json));
      const selector = optionalSelector(opts);
      const onHost = opts.onHost as string | undefined;
      const pick = (views: DeploymentView[]) => views.filter((v) => (!selector || matchesSelector(v.labels, selector)) && (onHost === undefined || v.host === onHost));
      const agent = await agentFor(g);
      if (onHost !== undefined) {
        // A host the cluster does not have is an error, not an empty list.
        const noManager = () => new DepadError('DEPAD_USAGE', '--on-host lists the deployments of one host of a cluster: give its manager with --host or --context');
        if (!agent) throw noManager();
        const hosts = await agent.request<Array<{ name: string }>>({ method: 'GET', path: '/v1/hosts' }).catch((error: unknown) => {
          if (error instanceof DepadError && error.code === 'DEPAD_NOT_FOUND' && /no endpoint/.test(error.message)) throw noManager();
          return undefined; // a token that may not list hosts: the filter alone
        });
        if (hosts && !hosts.some((h) => h.name === onHost)) throw new DepadError('DEPAD_NOT_FOUND', `the cluster has no host ${JSON.stringify(onHost)}`, { hint: `its hosts are: ${hosts.map((h) => h.name).join(', ') || 'none'}` });
      }
      const cluster = onHost !== undefined;
      if (agent) return printList(output, pick(await agent.request<DeploymentView[]>({ method: 'GET', path: '/v1/deployments' })), Boolean(opts.quiet), cluster);
      await withState(g, output, 'ls', async (ctx) => printList(output, pick(await listDeploymentViews(ctx)), Boolean(opts.quiet)), { readOnly: true });
    });

  parent
    .command('inspect <deployment>')
    .description('show a deployment: identity, root directory, revisions, services, instances, ports')
    .addOption(serviceOption())
    .addOption(replicaOption())
    .action(
      deploymentAction('inspect', async (ctx, record, opts, output) => printInspect(output, selectView(await viewDeployment(ctx, record), cliSelection(opts)), await listRevisions(ctx, record)), {
        readOnly: true,
        remote: async (agent, ref, opts, output) => {
          cliSelection(opts);
          const { revisions, ...view } = await agent.request<DeploymentView & { revisions: RevisionRecord[] }>({ method: 'GET', path: `/v1/deployments/${seg(ref)}${selectionQueryString(opts)}` });
          printInspect(output, view, revisions);
        },
      }),
    );

  parent
    .command('ps <deployment>')
    .description("list a deployment's instances (containers); -s web --replica 2 (or -s 'web[2]'): one replica")
    .addOption(serviceOption())
    .addOption(replicaOption())
    .action(
      deploymentAction('ps', async (ctx, record, opts, output) => printPs(output, selectView(await viewDeployment(ctx, record), cliSelection(opts)), undefined), {
        readOnly: true,
        remote: async (agent, ref, opts, output) => {
          cliSelection(opts);
          printPs(output, await agent.request<DeploymentView>({ method: 'GET', path: `/v1/deployments/${seg(ref)}${selectionQueryString(opts)}` }), undefined);
        },
      }),
    );

  parent
    .command('logs <deployment>')
    .description("show a deployment's logs, prefixed by service (web[2] for a service's replica 2 when it has several)")
    .addOption(serviceOption())
    .addOption(replicaOption())
    .option('-f, --follow', 'keep following new output (Ctrl-C to stop)')
    .option('--tail <n>', 'only the last n lines of each instance', (v) => {
      if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`--tail takes a number of lines, not ${JSON.stringify(v)}`);
      return Number(v);
    })
    .option('-t, --timestamps', 'show timestamps')
    .action(async (ref: string, opts: Opts, cmd: Command) => {
      const g = cmd.optsWithGlobals<Opts>();
      const output = processOutput(Boolean(g.json));
      const selection = cliSelection(opts);
      const agent = await agentFor(g);
      if (agent) return remoteLogs(agent, ref, opts, output);
      // Resolve under the lock, then release it: following logs must not block other commands.
      const { engine, record } = await withState(g, output, `logs ${ref}`, async (ctx) => ({
        engine: ctx.engine,
        record: await resolveDeployment(ctx.store, ref),
      }), { readOnly: true });
      const controller = new AbortController();
      const stop = () => controller.abort();
      process.once('SIGINT', stop);
      const print = logLinePrinter(output, new Map([...Object.keys(record.instances), ...record.ports.map((p) => p.service)].map((s) => [s, replicaCount(record, s)])));
      try {
        await readLogs({ engine }, record, {
          selection,
          follow: Boolean(opts.follow),
          ...(opts.tail !== undefined ? { tail: opts.tail as number } : {}),
          timestamps: Boolean(opts.timestamps),
          signal: controller.signal,
        }, (service, line, replica) => print(service, line.stream, line.text, replica));
      } finally {
        process.off('SIGINT', stop);
      }
    });
}


/** `depad logs` through the local agent: the same lines, Ctrl-C stops following. */
async function remoteLogs(agent: AgentClient, ref: string, opts: Opts, output: Output): Promise<void> {
  const view = await agent.request<DeploymentView>({ method: 'GET', path: `/v1/deployments/${seg(ref)}` });
  const print = logLinePrinter(output, new Map(view.services.map((s) => [s.name, s.replicas ?? 1])));
  const q = selectionParams(opts);
  if (opts.tail !== undefined) q.set('tail', String(opts.tail));
  if (opts.follow) q.set('follow', 'true');
  if (opts.timestamps) q.set('timestamps', 'true');
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  try {
    await agent.request({
      method: 'GET',
      path: `/v1/deployments/${seg(ref)}/logs?${q.toString()}`,
      signal: controller.signal,
      onLine: (line) => {
        const log = line.log as { service: string; replica?: number; stream: string; text: string } | undefined;
        if (log) print(log.service, log.stream, log.text, log.replica);
      },
    });
  } finally {
    process.off('SIGINT', stop);
  }
}

/** `create --dry-run` through a manager: the choice and each host's score or reason. */
function printPlacement(output: Output, answer: { placement: PlacementResult }): void {
  if (output.json) return printJson(output, answer.placement);
  const p = answer.placement;
  output.out(p.chosen ? `would place on ${p.chosen}\n` : 'no host fits\n');
  output.out(table(['HOST', 'SCORE', 'WHY'], p.candidates.map((c) => [c.host, c.score === undefined ? '-' : c.score.toFixed(3), c.excluded ?? c.detail])));
}
