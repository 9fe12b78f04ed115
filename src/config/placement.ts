/**
 * `x-depad.placement` (top level): where a cluster manager may put the deployment.
 *
 * ```yaml
 * x-depad:
 *   placement:
 *     constraints: ["region==eu", "disk!=hdd"]   # every one must hold on the host's labels
 *     spread: zone                               # spread one class over this host label's values
 * ```
 *
 * Read with positions at load and frozen into `spec.depad.placement`; one agent alone ignores it.
 */
import type { Collector, LEntry } from './nodes.ts';
import { indexPath, keyPath } from './nodes.ts';
import { checkKeys, mapEntries, readString } from './read.ts';
import { LABEL_VALUE } from '../labels.ts';

/** One hard constraint on a host label: `region==eu` (the host's `region` is `eu`) or `disk!=hdd` (it is not, or unset). */
export interface PlacementConstraint {
  readonly label: string;
  readonly op: '==' | '!=';
  readonly value: string;
}

/** `x-depad.placement` as read. */
export interface PlacementSpec {
  /** Every one must hold on a host's labels for the deployment to go there; in file order. */
  readonly constraints: readonly PlacementConstraint[];
  /** A host label (`zone`): deployments of one class go first to the value that has fewest of them. */
  readonly spread?: string;
}

/** Host label names, as agents take them (`--label region=eu`): lowercase letters, digits, `.`, `_`, `-`, up to 63. */
export const HOST_LABEL_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

const NAME_RULE = "lowercase letters, digits, '.', '_' and '-' (up to 63, starting with a letter or digit)";
const VALUE_RULE = "1 to 63 letters, digits, '.', '_' and '-'";
const CONSTRAINT = /^\s*([^=!\s]*)\s*(==|!=)\s*(.*?)\s*$/;

/** Why `name` is not a host label name, or undefined when it is. */
export function hostLabelProblem(name: string): string | undefined {
  if (HOST_LABEL_NAME.test(name)) return undefined;
  return `label name ${JSON.stringify(name)} must be ${NAME_RULE}`;
}

/**
 * Parses `label==value` / `label!=value` (spaces around the operator allowed); a message saying
 * what to write when it is not one.
 */
export function parseConstraint(text: string): PlacementConstraint | { readonly problem: string } {
  const m = CONSTRAINT.exec(text);
  if (m === null) {
    const eq = /^\s*([a-z0-9._-]+)\s*=\s*([^=]+?)\s*$/.exec(text);
    const example = eq ? `${eq[1]}==${eq[2]}` : 'region==eu';
    return { problem: `${JSON.stringify(text)} is not a constraint: write label==value or label!=value, e.g. ${example}` };
  }
  const [, rawLabel = '', op = '==', value = ''] = m;
  const swarm = /^node\.labels\.(.+)$/.exec(rawLabel);
  if (swarm) return { problem: `${JSON.stringify(text)}: depad matches host labels by name; write ${swarm[1]}${op}${value}` };
  if (/^node\./.test(rawLabel)) return { problem: `${JSON.stringify(text)}: ${rawLabel} is a Swarm node attribute; depad matches host labels (give the host a label with depad agent --label, or name it with --host)` };
  if (rawLabel === '') return { problem: `${JSON.stringify(text)} has no label name before ${op}: write label${op}value, e.g. region${op}eu` };
  const labelIssue = hostLabelProblem(rawLabel);
  if (labelIssue) return { problem: `${JSON.stringify(text)}: ${labelIssue}` };
  if (!LABEL_VALUE.test(value)) return { problem: `${JSON.stringify(text)}: the value ${JSON.stringify(value)} must be ${VALUE_RULE}` };
  return { label: rawLabel, op: op === '!=' ? '!=' : '==', value };
}

/** Reads `x-depad.placement`; issues at each bad part, with what to write. Undefined when absent or invalid. */
export function readPlacement(c: Collector, entry: LEntry | undefined): PlacementSpec | undefined {
  if (entry === undefined) return undefined;
  const path = 'x-depad.placement';
  const entries = mapEntries(c, entry.value, path, 'a map such as {constraints: ["region==eu"], spread: zone}');
  if (entries === undefined) return undefined;
  const keys = checkKeys(c, entries, path, { supported: ['constraints', 'spread'], special: { preferences: "preferences is Swarm's; write spread: LABEL (e.g. spread: zone) here" } });
  let ok = true;
  const constraints: PlacementConstraint[] = [];
  const list = keys.get('constraints');
  if (list) {
    const at = keyPath(path, 'constraints');
    const node = list.value;
    if (node.kind === 'scalar' && node.value === null) {
      // constraints: (empty) is none
    } else if (node.kind !== 'seq') {
      c.issue(at, node.pos, 'expected a list of "label==value" or "label!=value" strings, e.g. ["region==eu", "disk!=hdd"]');
      ok = false;
    } else {
      node.items.forEach((item, i) => {
        const itemPath = indexPath(at, i);
        const text = readString(c, item, itemPath, { what: 'a "label==value" or "label!=value" string' });
        if (text === undefined) return void (ok = false);
        const parsed = parseConstraint(text);
        if ('problem' in parsed) {
          c.issue(itemPath, item.pos, parsed.problem);
          ok = false;
          return;
        }
        const clash = constraints.find((o) => o.label === parsed.label && o.op === '==' && parsed.op === '==' && o.value !== parsed.value);
        if (clash) c.issue(itemPath, item.pos, `${parsed.label}==${parsed.value} and ${clash.label}==${clash.value} cannot both hold: no host could take this deployment; keep one`);
        constraints.push(parsed);
      });
    }
  }
  let spread: string | undefined;
  const spreadEntry = keys.get('spread');
  if (spreadEntry) {
    const at = keyPath(path, 'spread');
    const text = readString(c, spreadEntry.value, at, { what: 'a host label name such as zone' });
    const problem = text === undefined ? undefined : hostLabelProblem(text.replace(/^node\.labels\./, ''));
    if (text === undefined) ok = false;
    else if (text.startsWith('node.labels.')) {
      c.issue(at, spreadEntry.value.pos, `spread names a host label by its name: write spread: ${text.slice('node.labels.'.length)}`);
      ok = false;
    } else if (problem) {
      c.issue(at, spreadEntry.value.pos, `spread: ${problem}, e.g. spread: zone`);
      ok = false;
    } else spread = text;
  }
  if (!ok) return undefined;
  return { constraints, ...(spread === undefined ? {} : { spread }) };
}
