/**
 * `depad events [-f] [--since T]`: the agent's event log (GET /v1/events), one line per event:
 * time, deployment, kind, detail. `-f` keeps following (JSON lines from `?follow=true`) until
 * Ctrl-C, and follows a restarted agent too (`depad agent restart`). The events live in the
 * agent's memory: with no agent there are none to show (DEPAD_AGENT_UNAVAILABLE).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidArgumentError, type Command } from 'commander';
import type { AgentEvent } from '../agent/reconciler.ts';
import { parseDuration } from '../config/values.ts';
import { DepadError, isDepadError } from '../errors.ts';
import { resolveHome } from '../home.ts';
import type { AgentClient } from './agent-client.ts';
import { agentFor } from './contexts.ts';
import { printJson, processOutput, type Output } from './output.ts';
import type { CommandOptions } from './runtime.ts';

/** How long `-f` tries to reach an agent that went away (a restart takes a few seconds) before it gives up. */
const RECONNECT_MS = 30_000;

/** Adds `depad events`. */
export function addEventsCommand(program: Command): void {
  program
    .command('events')
    .description("the agent's event log: instances that died, restarted, gave up or changed health, the engine lost and back (oldest first)")
    .option('-f, --follow', 'keep following new events (Ctrl-C to stop)')
    .option('--since <time>', 'only events from this time on: a duration ago (10m, 1h30m) or a time (2025-01-31T12:00:00Z)', sinceTime)
    .action(async (opts: CommandOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<CommandOptions>();
      const output = processOutput(Boolean(g.json));
      const agent = await agentFor(g);
      if (agent === undefined) {
        throw new DepadError('DEPAD_AGENT_UNAVAILABLE', `events are kept by the agent, and none is running for ${g.home ?? resolveHome()}`, { hint: 'start one: depad agent --daemon' });
      }
      const since = opts.since as string | undefined;
      const events = await agent.request<AgentEvent[]>({ method: 'GET', path: `/v1/events${since === undefined ? '' : `?since=${encodeURIComponent(since)}`}` });
      if (output.json && !opts.follow) return printJson(output, events);
      for (const e of events) printEvent(output, e);
      if (opts.follow) await follow(agent, events.at(-1)?.time ?? since, output);
    });
}

/**
 * Follows from `from` (the time of the last event printed, whose millisecond's events were all
 * printed) until Ctrl-C; when the agent goes away, reconnects for a while from the last event seen.
 */
async function follow(agent: AgentClient, from: string | undefined, output: Output): Promise<void> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  let last = from;
  let lostAt: number | undefined;
  try {
    while (!controller.signal.aborted) {
      try {
        await agent.request({
          method: 'GET',
          path: `/v1/events?follow=true${from === undefined ? '' : `&since=${encodeURIComponent(from)}`}`,
          signal: controller.signal,
          onLine: (line) => {
            lostAt = undefined;
            const e = line.event as AgentEvent | undefined;
            // The events of the last one's millisecond were printed already.
            if (e === undefined || (from !== undefined && e.time <= from)) return;
            last = e.time;
            printEvent(output, e);
          },
        });
        if (controller.signal.aborted) return;
      } catch (error) {
        if (!isDepadError(error, 'DEPAD_AGENT_UNAVAILABLE')) throw error;
        lostAt ??= Date.now();
        if (Date.now() - lostAt > RECONNECT_MS) {
          throw new DepadError('DEPAD_AGENT_UNAVAILABLE', `the agent at ${agent.where} went away while its events were followed, and did not come back in ${RECONNECT_MS / 1000} s`, { hint: 'start it again (depad agent --daemon, or systemctl start depad-agent) and follow again' });
        }
      }
      from = last;
      await sleep(250, undefined, { signal: controller.signal }).catch(() => {});
    }
  } finally {
    process.off('SIGINT', stop);
  }
}

/** One event as a line: time (UTC), deployment, kind, detail. */
export function eventLine(e: AgentEvent): string {
  const what = [e.service, e.instance].filter(Boolean).join(' ');
  const detail = [what, e.exitCode === undefined ? '' : `exit ${e.exitCode}`, e.detail ?? ''].filter(Boolean).join(': ');
  return `${e.time.slice(0, 19).replace('T', ' ')}  ${(e.deployment ?? '-').padEnd(16)}  ${e.kind.padEnd(18)}  ${detail}`.trimEnd();
}

/** Prints one event (a line, or JSON with --json: one object per line when following). */
function printEvent(output: Output, e: AgentEvent): void {
  output.out(output.json ? `${JSON.stringify(e)}\n` : `${eventLine(e)}\n`);
}

/** `--since`: a duration ago (`10m`) or a time, as an ISO time. */
function sinceTime(value: string): string {
  const ago = parseDuration(value);
  if (ago.ok) return new Date(Date.now() - ago.value).toISOString();
  const ms = Date.parse(value);
  if (!/^\d{4}-\d\d-\d\d/.test(value) || Number.isNaN(ms)) throw new InvalidArgumentError(`not a duration (10m, 1h30m) or a time (2025-01-31T12:00:00Z): ${JSON.stringify(value)}`);
  return new Date(ms).toISOString();
}
