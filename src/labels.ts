/**
 * Deployment labels: `key=value` pairs that select deployments (token scopes now; bulk commands
 * later). `class` is a label like any other, set by `x-depad.class` or `--class`. One set of
 * rules for config files, command-line flags and selectors.
 */
import { DepadError } from './errors.ts';

/** Label keys: lowercase letters, digits, `.`, `_`, `/`, `-`; up to 63 characters. */
export const LABEL_KEY = /^[a-z0-9][a-z0-9._/-]{0,62}$/;
/** Label values: letters, digits, `.`, `_`, `-`; 1 to 63 characters. */
export const LABEL_VALUE = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})?$/;

/** Why `key=value` is not a valid label, or undefined when it is. */
export function labelProblem(key: string, value: string): string | undefined {
  if (!LABEL_KEY.test(key)) return `label key ${JSON.stringify(key)} must be lowercase letters, digits, ".", "_", "/" or "-" (up to 63, starting with a letter or digit)`;
  if (key.startsWith('depad.')) return `label keys starting with "depad." are reserved; rename ${JSON.stringify(key)}`;
  if (!LABEL_VALUE.test(value)) return `label value ${JSON.stringify(value)} (of ${key}) must be 1 to 63 letters, digits, ".", "_" or "-"`;
  return undefined;
}

/**
 * Parses `key=value` items (each may hold several, comma separated), as `--label` and `--selector`
 * take them; throws DEPAD_USAGE naming `flag` and the bad item.
 */
export function parseLabelArgs(items: readonly string[], flag: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const part of items.flatMap((t) => t.split(','))) {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    const problem = eq <= 0 ? `${JSON.stringify(part)} is not key=value` : labelProblem(key, value);
    if (problem) throw new DepadError('DEPAD_USAGE', `${flag}: ${problem}`, { hint: `e.g. ${flag} class=plateaumed,env=prod` });
    labels[key] = value;
  }
  return labels;
}

/** `a=1,b=2` (keys sorted), or `-` for none. */
export function labelsText(labels: Readonly<Record<string, string>> | undefined): string {
  const entries = Object.entries(labels ?? {}).sort(([a], [b]) => a.localeCompare(b));
  return entries.length === 0 ? '-' : entries.map(([k, v]) => `${k}=${v}`).join(',');
}

/** A deployment's labels: its config's, then the overrides given at create. */
export function deploymentLabels(spec: { depad: { labels: Readonly<Record<string, string>> } }, overrides: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const merged = { ...spec.depad.labels, ...overrides };
  return Object.fromEntries(Object.entries(merged).sort(([a], [b]) => a.localeCompare(b)));
}

/** True when `labels` has every `selector` label (an empty selector matches everything). */
export function matchesSelector(labels: Readonly<Record<string, string>> | undefined, selector: Readonly<Record<string, string>>): boolean {
  return Object.entries(selector).every(([key, value]) => labels?.[key] === value);
}
