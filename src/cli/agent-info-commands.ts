/**
 * `depad agent status|stop|fingerprint`, and how the agent commands find the running agent: the
 * one the global options name (`--host`, a context), else the one answering on this home's socket.
 * `status` shows what it says about itself (GET /v1/agent); `stop` asks it to stop as SIGTERM does
 * (POST /v1/agent/stop, local socket or SSH only) and waits until it is gone; `fingerprint` prints
 * the CA fingerprint clients pin, read from the home's CA (no agent needed) or asked of a remote
 * agent. With no agent running, status and stop fail with DEPAD_AGENT_UNAVAILABLE (exit 12).
 */
import { processRuns } from '../pid.ts';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import type { AgentInfo } from '../agent/agent-info.ts';
import { fingerprintOf } from '../../certs/local-ca.ts';
import { DepadError } from '../errors.ts';
import { agentPidPath, agentSocketPath, agentTlsDir, resolveHome } from '../home.ts';
import type { AgentClient } from './agent-client.ts';
import { agentFor } from './contexts.ts';
import { durationMs } from './option-parsers.ts';
import { printJson, processOutput } from './output.ts';
import type { CommandOptions, GlobalOptions } from './runtime.ts';

/**
 * The agent the global options name, or the one on this home's socket; with none, a
 * DEPAD_AGENT_UNAVAILABLE that says what the home's pid file tells (a stale or unanswering agent).
 */
export async function runningAgent(g: GlobalOptions): Promise<AgentClient> {
  const client = await agentFor(g);
  if (client !== undefined) return client;
  const home = g.home ?? resolveHome();
  throw new DepadError('DEPAD_AGENT_UNAVAILABLE', `no agent is running for ${home} (nothing answers on ${agentSocketPath(home)})${await pidFileNote(home)}`, {
    hint: 'start one: depad agent --daemon, or systemctl start depad-agent',
  });
}

/** Adds `status`, `stop` and `fingerprint` under `depad agent`. */
export function addAgentInfoCommands(agent: Command): void {
  agent
    .command('status')
    .description('is an agent running for this home (or context): pid, since, version, API address, sockets, CA fingerprint, engine')
    .exitOverride()
    .action(async (_opts: CommandOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<CommandOptions>();
      const output = processOutput(Boolean(g.json));
      const client = await runningAgent(g);
      const info = await client.request<AgentInfo>({ method: 'GET', path: '/v1/agent' });
      if (output.json) return printJson(output, info);
      const e = info.engine;
      const engine = e.state === 'up' ? `up since ${e.since}, ${e.address}${e.version ? ` (Docker ${e.version}, API ${e.apiVersion})` : ''}` : `DOWN since ${e.since} (${e.address}: ${e.error ?? 'no answer'})`;
      const p = info.proxy;
      output.out(
        `depad agent: running at ${client.where}: pid ${info.pid}, since ${info.startedAt} (up ${uptime(info.startedAt)}), depad ${info.version} on node ${info.node}\n` +
          `  home:    ${info.home}\n` +
          `  API:     https://${info.api.host}:${info.api.port}\n` +
          `  socket:  ${info.socket}\n` +
          `  proxy:   http ${p.httpHost}:${p.httpPort}${p.httpsPort === undefined ? '' : `, https ${p.httpHost}:${p.httpsPort}`}, TCP routes on ${p.tcpHost}, control ${p.control}\n` +
          `  CA:      ${info.fingerprint} (SHA-256)\n` +
          `  engine:  ${engine}\n`,
      );
    });

  agent
    .command('stop')
    .description('stop the running agent gracefully (as SIGTERM: running operations finish, the proxy drains) and wait until it is gone')
    .option('--timeout <duration>', 'how long to wait for it to be gone', durationMs, 120_000)
    .exitOverride()
    .action(async (opts: CommandOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<CommandOptions>();
      const output = processOutput(Boolean(g.json));
      const client = await runningAgent(g);
      const started = Date.now();
      const { pid } = await client.request<{ pid: number }>({ method: 'POST', path: '/v1/agent/stop' });
      output.err(`depad agent: stopping pid ${pid} (running operations finish first)\n`);
      await waitGone(client, pid, started + (opts.timeout as number));
      const ms = Date.now() - started;
      if (output.json) return printJson(output, { stopped: true, pid, ms });
      output.out(`depad agent: stopped (pid ${pid}, in ${(ms / 1000).toFixed(1)} s)\n`);
    });

  agent
    .command('fingerprint')
    .description("print the SHA-256 fingerprint of the agent's CA, what clients pin (depad context add --fingerprint); no agent needs to run")
    .exitOverride()
    .action(async (_opts: CommandOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<CommandOptions>();
      const output = processOutput(Boolean(g.json));
      const client = await agentFor(g);
      let fingerprint: string;
      let caFile: string | undefined;
      if (client?.remote) fingerprint = (await client.request<AgentInfo>({ method: 'GET', path: '/v1/agent' })).fingerprint;
      else ({ fingerprint, caFile } = await localFingerprint(g.home ?? resolveHome()));
      if (output.json) return printJson(output, { fingerprint, ...(caFile === undefined ? {} : { caFile }) });
      output.out(`${fingerprint}\n`);
    });
}

/** The fingerprint of the home's CA certificate (made at the agent's first start). */
async function localFingerprint(home: string): Promise<{ fingerprint: string; caFile: string }> {
  const caFile = path.join(agentTlsDir(home), 'ca.crt');
  const pem = await fs.readFile(caFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw new DepadError('DEPAD_TLS_INVALID', `cannot read ${caFile}: ${error.code ?? error.message}`, { cause: error });
    throw new DepadError('DEPAD_NOT_FOUND', `${home} has no agent CA yet (${caFile})`, { hint: 'the agent makes it on its first start: depad agent --daemon' });
  });
  try {
    return { fingerprint: fingerprintOf(pem), caFile };
  } catch (error) {
    throw new DepadError('DEPAD_TLS_INVALID', `${caFile}: not a PEM certificate`, { cause: error });
  }
}

/**
 * Waits until the agent that answered as `pid` is gone: on this host, until the process has
 * ended; through SSH, until its socket no longer answers (or another agent answers there).
 */
async function waitGone(client: AgentClient, pid: number, deadline: number): Promise<void> {
  const local = client.transport.kind === 'socket';
  for (;;) {
    if (local ? !processRuns(pid) : await answersAs(client, pid).then((same) => !same)) return;
    if (Date.now() > deadline) {
      throw new DepadError('DEPAD_TIMEOUT', `the agent (pid ${pid}) is still stopping`, { hint: 'it lets running operations finish and drains the proxy first; wait, or see its log (<home>/agent.log with --daemon)' });
    }
    await sleep(100);
  }
}

/** True while the agent at `client` answers as `pid`. */
async function answersAs(client: AgentClient, pid: number): Promise<boolean> {
  try {
    return (await client.request<AgentInfo>({ method: 'GET', path: '/v1/agent' })).pid === pid;
  } catch (error) {
    if (error instanceof DepadError && error.code === 'DEPAD_AGENT_UNAVAILABLE') return false;
    throw error;
  }
}

/** What `<home>/agent.pid` says when no agent answers: nothing, a stale pid, or a process that does not answer. */
async function pidFileNote(home: string): Promise<string> {
  const text = (await fs.readFile(agentPidPath(home), 'utf8').catch(() => '')).trim();
  if (!/^\d+$/.test(text)) return '';
  return processRuns(Number(text)) ? `; agent.pid names pid ${text}, which runs but does not answer: starting, or stuck` : `; agent.pid names pid ${text}, which is gone (it did not stop cleanly)`;
}

/** `3d 4h`, `2h 5m`, `4m 10s`, `12s`. */
function uptime(since: string): string {
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(since)) / 1000));
  const [d, h, m] = [Math.floor(s / 86400), Math.floor((s % 86400) / 3600), Math.floor((s % 3600) / 60)];
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s % 60}s`;
  return `${s}s`;
}
