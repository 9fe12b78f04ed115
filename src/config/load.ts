/**
 * `loadConfig`: the only part of `src/config` that touches the file system. Reads the config,
 * the env files it names and checks which bind-mount sources and files of `run:` steps exist,
 * then builds the spec.
 */
import { readFile, realpath, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { readReferencedFiles } from './compose-files.ts';
import type { DeploymentSpec } from './spec.ts';
import { unreadable } from './env.ts';
import type { ConfigWarning } from './nodes.ts';
import { analyzeConfig, finishConfig } from './parse.ts';

/** Options of `loadConfig`. */
export interface LoadConfigOptions {
  /** Receives warnings (e.g. an unset variable became ''), in file order. */
  readonly warn?: (warning: ConfigWarning) => void;
}

/**
 * Reads and validates the config at `file` (and the files its `include` and `extends` name) with
 * variables from `env` only. A missing or
 * unreadable file is DEPAD_CONFIG_UNREADABLE; malformed YAML DEPAD_CONFIG_SYNTAX; anything else
 * wrong (including missing or malformed env files) one `ConfigError` listing every issue.
 */
export async function loadConfig(
  file: string,
  env: Readonly<Record<string, string>>,
  options: LoadConfigOptions = {},
): Promise<DeploymentSpec> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw unreadable(file, error, 'config file');
  }
  const files = await readReferencedFiles(resolve(file), text, env, (abs) => readFile(abs, 'utf8').catch(() => undefined));
  const draft = analyzeConfig(text, file, env, { files, ...(options.warn === undefined ? {} : { warn: options.warn }) });
  const envFiles: Record<string, string> = {};
  await Promise.all(
    draft.envFiles.map(async (rel) => {
      try {
        const content = await readFile(join(draft.configDir, rel), 'utf8');
        Object.defineProperty(envFiles, rel, { value: content, enumerable: true, writable: true, configurable: true });
      } catch {
        // Left out: finishConfig reports a missing required env_file at its position.
      }
    }),
  );
  const wanted = [...new Set([...draft.bindSources, ...draft.runFiles])];
  const checks = await Promise.all(wanted.map(async (rel) => ((await exists(join(draft.configDir, rel))) ? rel : undefined)));
  const secretFiles: Record<string, Buffer | { problem: string }> = {};
  for (const rel of draft.secretFiles) {
    const found = await readSecretFile(draft.configDir, rel);
    if (found !== undefined) Object.defineProperty(secretFiles, rel, { value: found, enumerable: true });
  }
  return finishConfig(draft, { envFiles, existingFiles: checks.filter((x) => x !== undefined), secretFiles });
}

/** A secret's or config's file: its bytes, undefined when missing, or why it cannot be used (a link out of `dir`, not a file). */
async function readSecretFile(dir: string, rel: string): Promise<Buffer | { problem: string } | undefined> {
  try {
    const real = await realpath(join(dir, rel));
    const realDir = await realpath(dir);
    if (!real.startsWith(realDir + sep)) return { problem: `it leads outside ${dir} (through a link); copy the file into the config directory instead` };
    if (!(await stat(real)).isFile()) return { problem: 'it is not a regular file' };
    return await readFile(real);
  } catch {
    return undefined;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
