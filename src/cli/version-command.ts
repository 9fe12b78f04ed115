/**
 * `depad version`: depad's version (package.json), Node's, and the Docker Engine's (its version
 * and API version) when it answers; with an agent (local, or named by --host or a context) the
 * agent's version too, and the engine is the one the agent uses. Nothing it asks may fail the
 * command: an engine or agent that does not answer is reported as such.
 */
import type { Command } from 'commander';
import type { AgentInfo } from '../agent/agent-info.ts';
import { Engine } from '../engine/engine.ts';
import { depadVersion } from '../version.ts';
import { agentFor } from './contexts.ts';
import { printJson, processOutput } from './output.ts';
import type { CommandOptions, GlobalOptions } from './runtime.ts';

/** What `depad version --json` prints. */
export interface VersionReport {
  depad: string;
  node: string;
  engine: { address: string; version?: string; apiVersion?: string; error?: string };
  agent?: { where: string; version?: string; node?: string; pid?: number; error?: string };
}

/** Adds `depad version`. */
export function addVersionCommand(program: Command): void {
  program
    .command('version')
    .description("depad's version, Node's, and the Docker Engine's (and the agent's, when one runs)")
    .action(async (_opts: CommandOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<CommandOptions>();
      const output = processOutput(Boolean(g.json));
      const report = await versionReport(g);
      if (output.json) return printJson(output, report);
      const e = report.engine;
      const a = report.agent;
      output.out(
        `depad   ${report.depad}\nnode    ${report.node}\n` +
          `engine  ${e.error === undefined ? `${e.version} (API ${e.apiVersion})` : `not reachable (${e.error})`} at ${e.address}\n` +
          (a === undefined ? '' : `agent   ${a.error === undefined ? `${a.version} on node ${a.node} (pid ${a.pid})` : `not reachable (${a.error})`} at ${a.where}\n`),
      );
    });
}

/** Gathers the versions; engine and agent failures become `error` fields. */
async function versionReport(g: GlobalOptions): Promise<VersionReport> {
  const report: VersionReport = { depad: depadVersion(), node: process.version, engine: { address: new Engine().address } };
  let agent;
  try {
    agent = await agentFor(g);
  } catch (error) {
    report.agent = { where: g.host ?? g.context ?? 'the current context', error: (error as Error).message };
  }
  if (agent !== undefined) {
    try {
      const info = await agent.request<AgentInfo>({ method: 'GET', path: '/v1/agent' });
      report.agent = { where: agent.where, version: info.version, node: info.node, pid: info.pid };
      const ae = info.engine;
      report.engine = { address: ae.address, ...(ae.version === undefined ? { error: ae.state === 'up' ? 'the agent could not ask it' : (ae.error ?? 'down') } : { version: ae.version, apiVersion: ae.apiVersion as string }) };
      return report;
    } catch (error) {
      report.agent = { where: agent.where, error: (error as Error).message };
      if (agent.remote) return { ...report, engine: { address: `the engine of ${agent.where}`, error: 'its agent did not answer' } };
    }
  }
  const engine = new Engine();
  try {
    report.engine = { address: engine.address, ...(await engine.version(2000)) };
  } catch (error) {
    report.engine = { address: engine.address, error: (error as Error).message };
  }
  return report;
}
