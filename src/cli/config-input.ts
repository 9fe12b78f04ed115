/** Reading a deployment file and its variables (--env, --env-file) for a command. */
import path from 'node:path';
import { Option, type Command } from 'commander';
import { loadConfig, parseEnvAssignments, readEnvFile } from '../config/index.ts';
import type { ConfigWarning } from '../config/index.ts';
import type { DeploymentSpec } from '../config/spec.ts';
import { formatIssue } from '../errors.ts';
import type { Output } from './output.ts';
import { collect } from './option-parsers.ts';


/**
 * Adds the options that give a deployment file and its variables (`-f`, `-e`, `--env-file`,
 * `--pull`) to `command`; `readConfigInput` reads what they say.
 */
export function addConfigOptions(command: Command, file: { required: boolean; description: string }): Command {
  const fileOption = new Option('-f, --config-file <file>', file.description);
  if (file.required) fileOption.makeOptionMandatory();
  return command
    .addOption(fileOption)
    .option('-e, --env <KEY=VALUE>', 'a variable for ${VAR} in the config (repeatable)', collect, [])
    .option('--env-file <file>', 'a file of KEY=VALUE lines (repeatable; --env wins)', collect, [])
    .addOption(new Option('--pull <policy>', 'pull images that are not on the host').choices(['missing', 'never']).default('missing'));
}

/** A loaded config and the variables it was rendered with. */
export interface ConfigInput {
  spec: DeploymentSpec;
  env: Record<string, string>;
}

/** The variables the options give: env files (in order), then --env over them. */
export async function readEnv(envArgs: readonly string[], envFiles: readonly string[]): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const f of envFiles) Object.assign(env, await readEnvFile(path.resolve(f)));
  Object.assign(env, parseEnvAssignments(envArgs, '--env'));
  return env;
}

/** Prints a config warning the way every command does. */
export function warnPrinter(output: Output): (w: ConfigWarning) => void {
  return (w) => output.err(`depad: warning: ${formatIssue(w)}\n`);
}

/** Reads the variables, then loads and validates the config. */
export async function readConfigInput(file: string, envArgs: readonly string[], envFiles: readonly string[], output: Output): Promise<ConfigInput> {
  const env = await readEnv(envArgs, envFiles);
  const spec = await loadConfig(path.resolve(file), env, { warn: warnPrinter(output) });
  return { spec, env };
}
