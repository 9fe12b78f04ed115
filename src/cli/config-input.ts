/** Reading a deployment file and its variables (--env, --env-file) for a command. */
import path from 'node:path';
import { loadConfig, parseEnvAssignments, readEnvFile } from '../config/index.ts';
import type { DeploymentSpec } from '../config/spec.ts';
import { formatIssue } from '../errors.ts';
import type { Output } from './output.ts';

/** A loaded config and the variables it was rendered with. */
export interface ConfigInput {
  spec: DeploymentSpec;
  env: Record<string, string>;
}

/** Reads env files (in order), then --env over them, then loads and validates the config. */
export async function readConfigInput(file: string, envArgs: readonly string[], envFiles: readonly string[], output: Output): Promise<ConfigInput> {
  const env: Record<string, string> = {};
  for (const f of envFiles) Object.assign(env, await readEnvFile(path.resolve(f)));
  Object.assign(env, parseEnvAssignments(envArgs, '--env'));
  const spec = await loadConfig(path.resolve(file), env, {
    warn: (w) => output.err(`depad: warning: ${formatIssue(w)}\n`),
  });
  return { spec, env };
}
