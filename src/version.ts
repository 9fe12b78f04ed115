/** depad's own version: the `version` of package.json, read once (`depad version`, `--version`, the agent's status). */
import { readFileSync } from 'node:fs';

/** The version in package.json, or `unknown` when it cannot be read. */
export function depadVersion(): string {
  cached ??= read();
  return cached;
}

let cached: string | undefined;

function read(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}
