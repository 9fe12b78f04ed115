/** The problems `parseConfig` finds in a config text (its message; '' when it has none), for the pure config tests. */
import { ConfigError } from '../../src/errors.ts';
import { parseConfig } from '../../src/config/index.ts';

/** Parses `text` as `cfg.yml` with `env`; returns the ConfigError's message, or '' when it is valid. */
export function problems(text: string, env: Record<string, string> = {}): string {
  try {
    parseConfig(text, 'cfg.yml', env);
    return '';
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
}
