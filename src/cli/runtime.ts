/**
 * Running one CLI command against the local state: open the store (waiting briefly for another
 * depad), connect the engine, recover interrupted operations, run, always close. Ctrl-C aborts
 * the running operation, which undoes its steps; a second Ctrl-C exits at once.
 */
import { Engine } from '../engine/engine.ts';
import { DepadError, isDepadError } from '../errors.ts';
import { agentSocketPath, proxyStateDir, resolveHome } from '../home.ts';
import { createLogger, isLogLevel, type LogLevel, type Logger } from '../logger.ts';
import type { OpContext } from '../deploy/context.ts';
import { recoverJournal } from '../deploy/recover.ts';
import { Store } from '../store/store.ts';
// The client and paths only: ordinary commands do not load the proxy server.
import { ProxyClient } from '../../proxy/client.ts';
import { proxyPaths } from '../../proxy/paths.ts';
import type { Command } from 'commander';
import { resolveDeployment } from '../deploy/resolve.ts';
import type { DeploymentRecord } from '../store/records.ts';
import { processOutput, progressPrinter, type Output } from './output.ts';
import { localAgent, type AgentClient } from './agent-client.ts';
import { agentFor } from './contexts.ts';

/** Global options every command accepts. */
export interface GlobalOptions {
  json?: boolean;
  home?: string;
  /** A remote agent: https://host[:port] (with token and caFingerprint). */
  host?: string;
  token?: string;
  caFingerprint?: string;
  /** A saved context (see contexts.ts). */
  context?: string;
}

/** What a command's action receives: its own options and the global ones. */
export type CommandOptions = GlobalOptions & Record<string, unknown>;

/**
 * The action of a `<verb> <deployment>` command: opens the state, finds the deployment (name,
 * ID or unambiguous ID prefix) and runs `fn`; the state is closed however it ends.
 */
export function deploymentAction(
  verb: string,
  fn: (ctx: OpContext, record: DeploymentRecord, opts: CommandOptions, output: Output) => Promise<void>,
  options: { readOnly?: boolean; remote?: RemoteAction } = {},
): (ref: string, opts: CommandOptions, cmd: Command) => Promise<void> {
  return async (ref, opts, cmd) => {
    const globals = cmd.optsWithGlobals<CommandOptions>();
    const output = processOutput(Boolean(globals.json));
    if (options.remote) {
      const agent = await agentFor(globals);
      if (agent) return options.remote(agent, ref, opts, output);
    }
    await withState(globals, output, `${verb} ${ref}`, async (ctx) => fn(ctx, await resolveDeployment(ctx.store, ref), opts, output), options);
  };
}

/** A verb carried out by the local agent (same output as the local way). */
export type RemoteAction = (agent: AgentClient, ref: string, opts: CommandOptions, output: Output) => Promise<void>;

/** The logger the CLI injects: level from DEPAD_LOG_LEVEL (default, or when unset or not a level, `fallback`: warn), to stderr. */
export function cliLogger(fallback: LogLevel = 'warn'): Logger {
  const env = process.env.DEPAD_LOG_LEVEL;
  const level = isLogLevel(env) ? env : fallback;
  return createLogger({ level, format: process.env.DEPAD_LOG_FORMAT === 'json' ? 'json' : 'text' });
}

/**
 * Opens the state and runs `fn` with an operation context. `command` is shown to another process
 * that finds the state locked (never include secrets). Read-only commands pass `readOnly` so a
 * dead engine does not stop them from reporting what the store knows; `recover: false` leaves
 * interrupted operations in the journal (doctor reports them, and recovers them only with --fix).
 */
export async function withState<T>(
  globals: GlobalOptions,
  output: Output,
  command: string,
  fn: (ctx: OpContext) => Promise<T>,
  options: { readOnly?: boolean; recover?: boolean } = {},
): Promise<T> {
  const home = globals.home ?? resolveHome();
  const log = cliLogger();
  await assertNoAgent(home);
  const store = await Store.open(home, { command });
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupts += 1;
    if (interrupts > 1) process.exit(130);
    output.err(`\ndepad: ${signal}: stopping; undoing what this command did (again to quit at once)\n`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Routes go to the proxy's control socket, or into its snapshot when no proxy runs.
  const routes: OpContext['routes'] = new ProxyClient(proxyPaths(proxyStateDir(home)));
  const ctx: OpContext = { home, store, engine: new Engine(), routes, log, progress: progressPrinter(output), signal: controller.signal };
  try {
    try {
      const notes = options.recover === false ? [] : await recoverJournal(ctx);
      for (const n of notes) {
        output.err(`depad: recovered: ${{ undone: 'undid', completed: 'completed', 'rolled back': 'rolled back' }[n.action]} the interrupted ${n.kind} of ${n.name} (stopped at step ${n.step})\n`);
      }
    } catch (error) {
      if (!(options.readOnly && isDepadError(error, 'DEPAD_ENGINE_UNAVAILABLE'))) throw error;
      log.warn({}, 'an interrupted operation could not be recovered: the engine is unavailable');
    }
    return await fn(ctx);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await store.close();
  }
}

/** Opens only the state (no engine, no recovery) for commands that touch records alone (tokens). */
export async function withStore<T>(globals: GlobalOptions, command: string, fn: (store: Store) => Promise<T>): Promise<T> {
  const home = globals.home ?? resolveHome();
  await assertNoAgent(home);
  const store = await Store.open(home, { command });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/**
 * Fails at once when a depad agent owns this home's state (it answers on `<home>/agent.sock`),
 * instead of waiting for a lock the agent never releases.
 */
async function assertNoAgent(home: string): Promise<void> {
  if ((await localAgent(home)) === undefined) return;
  const socket = agentSocketPath(home);
  throw new DepadError('DEPAD_STATE_LOCKED', `a depad agent owns the state in ${home}`, {
    hint: `this command does not go through the agent yet; use its API (curl --unix-socket ${socket} http://agent/v1/openapi.json) or stop the agent.`,
  });
}
