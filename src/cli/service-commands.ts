/**
 * `depad service stop|start|restart|update|logs <deployment> <service>`: one service of a
 * deployment, spelled as its own verb. Each is the deployment verb with `-s <service>` (the same
 * code, output, agent routing and exit codes); `service update` gives the service a new image,
 * zero-downtime through the proxy like any update.
 */
import { Command } from 'commander';
import type { CommandOptions } from './runtime.ts';

/** Runs the CLI again with these arguments (main.ts passes its own parser). */
export type Dispatch = (argv: string[]) => Promise<void>;

/** The global options of `cmd`'s invocation, as arguments to pass on. */
function globalArgs(cmd: Command): string[] {
  const g = cmd.optsWithGlobals<CommandOptions>();
  const out: string[] = [];
  if (g.json) out.push('--json');
  for (const [key, flag] of [['home', '--home'], ['host', '--host'], ['token', '--token'], ['caFingerprint', '--ca-fingerprint'], ['context', '--context']] as const) {
    const value = g[key];
    if (typeof value === 'string') out.push(flag, value);
  }
  return out;
}

/** Adds `depad service …` to `program`. */
export function addServiceCommands(program: Command, dispatch: Dispatch): void {
  const service = program.command('service').description('one service of a deployment: stop, start, restart, update (zero downtime), scale, logs').exitOverride();
  for (const verb of ['start', 'stop', 'restart'] as const) {
    const command = service.command(`${verb} <deployment> <service>`).description(`${verb} one service (its dependencies ${verb === 'stop' ? 'keep running' : 'are started first'})`);
    if (verb !== 'stop') command.option('--no-wait', 'do not wait for its health check');
    command.exitOverride().action((deployment: string, name: string, opts: CommandOptions, cmd: Command) =>
      dispatch([...globalArgs(cmd), verb, deployment, '-s', name, ...(opts.wait === false ? ['--no-wait'] : [])]),
    );
  }
  service
    .command('update <deployment> <service>')
    .description('give one service a new image: a new instance on fresh ports, health checked, routed, the old one drained (zero downtime)')
    .requiredOption('--image <ref>', 'the new image')
    .option('--pull <policy>', 'missing or never', 'missing')
    .exitOverride()
    .action((deployment: string, name: string, opts: CommandOptions, cmd: Command) =>
      dispatch([...globalArgs(cmd), 'update', deployment, '-s', name, '--image', String(opts.image), '--pull', String(opts.pull)]),
    );
  service
    .command('scale <deployment> <service> <replicas>')
    .description('run that many replicas of one service (the ones that stay are kept; zero downtime)')
    .exitOverride()
    .action((deployment: string, name: string, replicas: string, _opts: CommandOptions, cmd: Command) => dispatch([...globalArgs(cmd), 'update', deployment, '--scale', `${name}=${replicas}`]));
  program
    .command('scale <deployment> <counts...>')
    .description('run n replicas of services: depad scale shop web=3 worker=2 (with -l: depad update -l … --scale web=3)')
    .option('--dry-run', 'show what the scale would do; change nothing')
    .exitOverride()
    .action((deployment: string, counts: string[], opts: CommandOptions, cmd: Command) =>
      dispatch([...globalArgs(cmd), 'update', deployment, '--scale', ...counts, ...(opts.dryRun ? ['--dry-run'] : [])]),
    );
  service
    .command('logs <deployment> <service>')
    .description("one service's logs")
    .option('-f, --follow', 'keep following new output (Ctrl-C to stop)')
    .option('--tail <n>', 'only the last n lines of each instance')
    .option('-t, --timestamps', 'show timestamps')
    .option('--replica <n>', "only this replica (1…N; or write the service as 'web[2]')")
    .exitOverride()
    .action((deployment: string, name: string, opts: CommandOptions, cmd: Command) =>
      dispatch([
        ...globalArgs(cmd),
        'logs',
        deployment,
        '-s',
        name,
        ...(opts.follow ? ['--follow'] : []),
        ...(opts.tail === undefined ? [] : ['--tail', String(opts.tail)]),
        ...(opts.timestamps ? ['--timestamps'] : []),
        ...(opts.replica === undefined ? [] : ['--replica', String(opts.replica)]),
      ]),
    );
}
