/**
 * `depad agent restart`: asks the running agent to restart into a new process (the code now on
 * disk) without refusing a connection (src/agent/handover.ts), and returns once the new agent is
 * ready, printing both pids. `systemctl reload depad-agent` runs it (examples/systemd). With no
 * agent running it says so (DEPAD_AGENT_UNAVAILABLE); when the new process does not start, the old
 * one keeps serving and the command fails with what the new one reported
 * (DEPAD_AGENT_RESTART_FAILED).
 */
import { Command } from 'commander';
import type { RestartResult } from '../agent/handover.ts';
import { runningAgent } from './agent-info-commands.ts';
import { durationMs } from './option-parsers.ts';
import { printJson, processOutput } from './output.ts';
import type { CommandOptions } from './runtime.ts';

/** Adds `restart` under `depad agent`. */
export function addAgentRestartCommand(agent: Command): void {
  agent
    .command('restart')
    .description('restart the running agent into a new process (an upgrade: the code now on disk) without refusing a connection; returns once the new one is ready')
    .option('--drain-timeout <duration>', 'how long open WebSockets and TCP connections may stay on the old process before they are ended', durationMs, 30_000)
    .exitOverride()
    .action(async (opts: CommandOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<CommandOptions>();
      const output = processOutput(Boolean(g.json));
      const client = await runningAgent(g);
      const result = await client.request<RestartResult>({ method: 'POST', path: '/v1/agent/restart', body: { drainTimeoutMs: opts.drainTimeout as number } });
      if (output.json) return printJson(output, result);
      output.out(`depad agent: restarted: pid ${result.oldPid} → ${result.newPid} (new agent ready in ${(result.ms / 1000).toFixed(2)} s; open WebSockets and TCP connections stay on pid ${result.oldPid} for up to ${Math.round(result.drainTimeoutMs / 1000)} s)\n`);
    });
}
