/** Reading a deployment file and its variables (--env, --env-file) for a command. */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { loadConfig, parseEnvAssignments, readEnvFile } from '../config/index.ts';
import type { ConfigWarning } from '../config/index.ts';
import type { DeploymentSpec } from '../config/spec.ts';
import { formatIssue } from '../errors.ts';
import { PROFILES_VARIABLE } from '../config/profiles.ts';
import { printWarning, type Output } from './output.ts';
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
    .option('--env-file <file>', 'a file of KEY=VALUE lines (repeatable; replaces the .env beside the config; --env wins)', collect, [])
    .option('--profile <name>', 'activate a profile: services with profiles: run only when one is active (repeatable; over COMPOSE_PROFILES)', collect, [])
    .addOption(new Option('--pull <policy>', 'pull images that are not on the host').choices(['missing', 'never']).default('missing'));
}

/** A loaded config and the variables it was rendered with. */
export interface ConfigInput {
  spec: DeploymentSpec;
  env: Record<string, string>;
}

/** What else decides the variables: the config file (its `.env`) and `--profile`. */
export interface EnvSources {
  /** The config file: the `.env` beside it is read when no --env-file is given. */
  readonly configFile?: string;
  /** `--profile` names: they become COMPOSE_PROFILES. */
  readonly profiles?: readonly string[];
}

/**
 * The variables the options give, as compose reads them: the env files given (in order), or
 * else the `.env` beside the config file when there is one; --env over them. The active profiles
 * are the variable COMPOSE_PROFILES: `--profile` sets it, else the process environment's when
 * the files and --env do not.
 */
export async function readEnv(envArgs: readonly string[], envFiles: readonly string[], sources: EnvSources = {}): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const f of envFiles) Object.assign(env, await readEnvFile(path.resolve(f)));
  if (envFiles.length === 0 && sources.configFile !== undefined) {
    const dotEnv = path.join(path.dirname(path.resolve(sources.configFile)), '.env');
    if (await isFile(dotEnv)) Object.assign(env, await readEnvFile(dotEnv));
  }
  Object.assign(env, parseEnvAssignments(envArgs, '--env'));
  const profiles = sources.profiles ?? [];
  if (profiles.length > 0) env[PROFILES_VARIABLE] = profiles.join(',');
  else if (!Object.hasOwn(env, PROFILES_VARIABLE) && process.env[PROFILES_VARIABLE]) env[PROFILES_VARIABLE] = process.env[PROFILES_VARIABLE];
  return env;
}

async function isFile(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isFile() === true;
}

/** Prints a config warning the way every command does. */
export function warnPrinter(output: Output): (w: ConfigWarning) => void {
  return (w) => printWarning(output, formatIssue(w));
}

/** Reads the variables, then loads and validates the config. */
export async function readConfigInput(file: string, envArgs: readonly string[], envFiles: readonly string[], output: Output, profiles: readonly string[] = []): Promise<ConfigInput> {
  const env = await readEnv(envArgs, envFiles, { configFile: file, profiles });
  const spec = await loadConfig(path.resolve(file), env, { warn: warnPrinter(output) });
  return { spec, env };
}
