/**
 * `depad manager` (run the cluster manager in the foreground), `depad manager join-token`, and
 * `depad hosts ls|inspect|label|cordon|uncordon|rm`. The commands reach the manager as the CLI
 * reaches an agent: `--host`/`--context` (HTTPS, token, pinned CA), else the manager's unix socket
 * in the home (`<home>/manager.sock`, the local administrator).
 */
import { Command } from 'commander';
import { AgentClient, seg } from './agent-client.ts';
import { agentFor } from './contexts.ts';
import type { HostSummary } from '../cluster/hosts.ts';
import { DepadError } from '../errors.ts';
import { managerSocketPath, resolveHome } from '../home.ts';
import { bytesText, cpusText } from '../config/budget.ts';
import { labelsText } from '../labels.ts';
import { printJson, processOutput, table, type Output } from './output.ts';
import { cliLogger, type CommandOptions } from './runtime.ts';
import { collect, portNumber } from './option-parsers.ts';
import { keepServingWhenOutputCloses } from './closed-output.ts';

/** The manager's API: the remote one the globals name, else the local socket. */
async function managerFor(g: CommandOptions): Promise<AgentClient> {
  const remote = g.host !== undefined || g.context !== undefined || process.env.DEPAD_HOST !== undefined || process.env.DEPAD_CONTEXT !== undefined ? await agentFor(g) : undefined;
  if (remote && remote.transport.kind !== 'socket') return remote;
  return new AgentClient({ kind: 'socket', socketPath: managerSocketPath(g.home ?? resolveHome()), relays: true });
}

/** Adds `depad manager …` and `depad hosts …` to `parent`. */
export function addManagerCommands(parent: Command): void {
  const manager = parent
    .command('manager')
    .description('run the cluster manager in the foreground: it places deployments on the agents that joined it and relays every verb to them')
    .option('--api-port <port>', 'HTTPS API port', portNumber, 9443)
    .option('--api-host <address>', 'HTTPS API address', '0.0.0.0')
    .option('--hostname <name>', 'a DNS name or IP address clients and agents use for the manager, put in its certificate (repeatable)', collect, [])
    .option('--heartbeat <ms>', 'how often agents send heartbeats; a host is down after 3 missed ones + 2 s', (v) => Number(v), 2000)
    .exitOverride()
    .action(async (opts: CommandOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<CommandOptions>();
      const output = processOutput(Boolean(g.json));
      const home = g.home ?? resolveHome();
      keepServingWhenOutputCloses();
      const { startManager } = await import('../cluster/manager.ts');
      const handle = await startManager({ home, apiPort: opts.apiPort as number, apiHost: String(opts.apiHost), hostnames: opts.hostname as string[], heartbeatMs: opts.heartbeat as number, log: cliLogger() });
      const facts = { pid: process.pid, apiPort: handle.apiPort, socket: handle.socketPath, fingerprint: handle.fingerprint };
      if (output.json) output.out(`${JSON.stringify({ listening: facts })}\n`);
      else output.out(`depad manager: API on https://${String(opts.apiHost)}:${handle.apiPort}, local socket ${handle.socketPath}\nCA fingerprint (SHA-256): ${handle.fingerprint}\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      output.err('depad manager: stopping\n');
      await handle.close();
    });

  manager
    .command('join-token')
    .description('print a one-time token an agent joins with (depad agent --join URL --join-token …); valid 24 h')
    .exitOverride()
    .action(async (_opts: CommandOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<CommandOptions>();
      const output = processOutput(Boolean(g.json));
      const { token, expiresAt } = await (await managerFor(g)).request<{ token: string; expiresAt: string }>({ method: 'POST', path: '/v1/cluster/join-tokens' });
      if (output.json) return printJson(output, { token, expiresAt });
      output.out(`${token}\n`);
      output.err(`depad: join token made; it works once, until ${expiresAt}. Keep it secret until used.\n`);
    });

  const hosts = parent.command('hosts').description("the cluster's hosts (through the manager)").exitOverride();
  hosts
    .command('ls', { isDefault: true })
    .alias('list')
    .description('each host: state, address, labels, capacity, reserved, deployments')
    .exitOverride()
    .action(async (_opts: CommandOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<CommandOptions>();
      const output = processOutput(Boolean(g.json));
      printHosts(output, await (await managerFor(g)).request<HostSummary[]>({ method: 'GET', path: '/v1/hosts' }));
    });
  hosts
    .command('inspect <host>')
    .description('one host, with the deployments placed on it')
    .exitOverride()
    .action(async (name: string, _opts: CommandOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<CommandOptions>();
      const output = processOutput(Boolean(g.json));
      const view = await (await managerFor(g)).request<HostSummary & { placements: Array<{ name: string; need: { cpus: number; memoryBytes: number } }> }>({ method: 'GET', path: `/v1/hosts/${seg(name)}` });
      if (output.json) return printJson(output, view);
      printHosts(output, [view]);
      // Over its capacity (declared lower since, or deployments that grew before the checks): say what that means.
      if (view.reserved.cpus > view.capacity.cpus + 1e-9 || view.reserved.memoryBytes > view.capacity.memoryBytes) output.out(`  over capacity: nothing new is placed on ${view.name}, and a change that needs more there is refused; a change that needs less goes\n`);
      for (const p of view.placements) output.out(`  ${p.name}: reserves ${cpusText(p.need.cpus)}, ${bytesText(p.need.memoryBytes)}\n`);
    });
  hosts
    .command('label <host> <changes...>')
    .description('set (key=value) or remove (key-) labels of a host')
    .exitOverride()
    .action(async (name: string, changes: string[], _opts: CommandOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<CommandOptions>();
      const output = processOutput(Boolean(g.json));
      const set: Record<string, string> = {};
      const remove: string[] = [];
      for (const c of changes) {
        const m = /^([^=]+)=(.+)$/.exec(c);
        if (m) set[m[1]!] = m[2]!;
        else if (c.endsWith('-') && c.length > 1) remove.push(c.slice(0, -1));
        else throw new DepadError('DEPAD_USAGE', `${c}: expected key=value to set a label, or key- to remove it`);
      }
      printHosts(output, [await (await managerFor(g)).request<HostSummary>({ method: 'POST', path: `/v1/hosts/${seg(name)}/label`, body: { set, remove } })]);
    });
  for (const verb of ['cordon', 'uncordon'] as const) {
    hosts
      .command(`${verb} <host>`)
      .description(verb === 'cordon' ? 'place no new deployment on the host (the ones there stay)' : 'place deployments on the host again')
      .exitOverride()
      .action(async (name: string, _opts: CommandOptions, cmd: Command) => {
        const g = cmd.optsWithGlobals<CommandOptions>();
        printHosts(processOutput(Boolean(g.json)), [await (await managerFor(g)).request<HostSummary>({ method: 'POST', path: `/v1/hosts/${seg(name)}/${verb}` })]);
      });
  }
  hosts
    .command('rm <host>')
    .description('forget a host (refused while deployments are placed on it, unless --force)')
    .option('--force', 'forget its placements too (the deployments keep running on it, outside the cluster)')
    .exitOverride()
    .action(async (name: string, opts: CommandOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<CommandOptions>();
      const output = processOutput(Boolean(g.json));
      const r = await (await managerFor(g)).request<{ removed: string; forgotten: string[] }>({ method: 'DELETE', path: `/v1/hosts/${seg(name)}${opts.force ? '?force=true' : ''}` });
      if (output.json) return printJson(output, r);
      output.out(`removed host ${r.removed}${r.forgotten.length ? `; forgot ${r.forgotten.join(', ')}` : ''}\n`);
    });
}

/** The hosts table. */
export function printHosts(output: Output, views: readonly HostSummary[]): void {
  if (output.json) return printJson(output, views);
  const share = (used: number, of: number) => (of > 0 ? `${Math.round((100 * used) / of)}%` : '-');
  const rows = views.map((h) => [
    h.name,
    h.state,
    h.address,
    labelsText(h.labels),
    `${cpusText(h.capacity.cpus)}, ${bytesText(h.capacity.memoryBytes)}`,
    `${share(h.reserved.cpus, h.capacity.cpus)} CPU, ${share(h.reserved.memoryBytes, h.capacity.memoryBytes)} mem${h.reserved.cpus > h.capacity.cpus + 1e-9 || h.reserved.memoryBytes > h.capacity.memoryBytes ? ' (over)' : ''}`,
    String(h.deployments),
    h.lastSeen.slice(11, 19),
  ]);
  output.out(table(['HOST', 'STATE', 'ADDRESS', 'LABELS', 'CAPACITY', 'RESERVED', 'DEPLOYMENTS', 'SEEN'], rows));
}
