/**
 * Where the host-access policy (src/config/host-access.ts) comes from: `<home>/host-policy.json`,
 * which the operator edits, and the flags of the running agent, which it records in
 * `<home>/host-policy.agent.json` (0600) while it runs so that the CLI's own validation on this
 * host applies the same policy before it sends a config to the agent.
 */
import { processRuns } from '../pid.ts';
import fs from 'node:fs/promises';
import path from 'node:path';
import { EMPTY_POLICY, activePolicy, mergePolicies, parsePolicyFile, specHostAccessProblems, type HostPolicy } from '../config/host-access.ts';
import type { DeploymentSpec } from '../config/spec.ts';
import { DepadError } from '../errors.ts';
import { writePrivateFile } from '../private-file.ts';

/** The operator's policy file in a home. */
export function policyFile(home: string): string {
  return path.join(home, 'host-policy.json');
}

/** The running agent's flags, recorded while it runs. */
function agentPolicyFile(home: string): string {
  return path.join(home, 'host-policy.agent.json');
}

/** `<home>/host-policy.json` as a policy (empty when there is none); DEPAD_CONFIG_INVALID when it is malformed. */
export async function readPolicyFile(home: string): Promise<HostPolicy> {
  const file = policyFile(home);
  const text = await fs.readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw new DepadError('DEPAD_CONFIG_INVALID', `cannot read the host policy ${file}: ${error.message}`, { hint: 'fix its permissions or remove it' });
  });
  if (text === undefined) return { ...EMPTY_POLICY, file };
  try {
    return parsePolicyFile(text, file);
  } catch (error) {
    throw new DepadError('DEPAD_CONFIG_INVALID', (error as Error).message, { hint: 'fix the host policy file (see README, "Host access")' });
  }
}

/** The policy that applies in this home: its file, and the running agent's flags. */
export async function loadHostPolicy(home: string): Promise<HostPolicy> {
  const own = await readPolicyFile(home);
  const agent = await fs.readFile(agentPolicyFile(home), 'utf8').catch(() => undefined);
  if (agent === undefined) return own;
  try {
    const recorded = JSON.parse(agent) as { pid: number; allow: string[]; hostPaths: string[] };
    if (!processRuns(recorded.pid)) return own;
    return mergePolicies(own, parsePolicyFile(JSON.stringify({ allow: recorded.allow, hostPaths: recorded.hostPaths }), agentPolicyFile(home)));
  } catch {
    // An agent that is gone (or a damaged record): its flags no longer apply.
    return own;
  }
}

/** Records the agent's flags (see the top of this file). */
export async function recordAgentPolicy(home: string, flags: HostPolicy): Promise<void> {
  const hostPaths = flags.hostPaths.map((p) => `${p.path}${p.readOnly ? ':ro' : ''}`);
  await writePrivateFile(agentPolicyFile(home), `${JSON.stringify({ pid: process.pid, allow: flags.allow, hostPaths }, null, 2)}\n`);
}

/** Removes the record when the agent stops (only its own). */
export async function forgetAgentPolicy(home: string): Promise<void> {
  const text = await fs.readFile(agentPolicyFile(home), 'utf8').catch(() => undefined);
  if (text !== undefined && (JSON.parse(text) as { pid?: number }).pid === process.pid) await fs.rm(agentPolicyFile(home), { force: true });
}

/**
 * Refuses a spec that uses host access the process's policy does not allow: a stored revision
 * (rollback, an image update) validated under a wider policy than today's.
 */
export function assertHostAccess(spec: DeploymentSpec, policy: HostPolicy = activePolicy()): void {
  const problems = specHostAccessProblems(spec, policy);
  if (problems.length === 0) return;
  throw new DepadError('DEPAD_CONFIG_INVALID', `the host's policy does not allow what this revision uses: ${problems.join('; ')}`, {
    hint: `the host's operator can allow it with the flags named, or in ${policy.file ?? '<home>/host-policy.json'}; else change the config`,
  });
}
