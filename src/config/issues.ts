/** Post-processing of a config's issues before they are reported. */
import type { ConfigIssue } from '../errors.ts';

const SERVICE_PATH = /^services\.([^.[]+|\["[^"]*"\])(.+)$/;

/**
 * One issue per problem written once: the same problem at the same place reached from several
 * services (a `<<: *anchor` merge or an alias shared by them) is reported once, at the anchor,
 * naming the services that use it. Order is kept (first occurrence).
 */
export function foldSharedIssues(issues: readonly ConfigIssue[]): ConfigIssue[] {
  const groups = new Map<string, { first: ConfigIssue; services: string[] }>();
  const out: (ConfigIssue | string)[] = [];
  for (const issue of issues) {
    const m = SERVICE_PATH.exec(issue.path);
    if (!m) {
      out.push(issue);
      continue;
    }
    const service = m[1]!;
    const rest = m[2]!;
    const plain = service.startsWith('["') ? (JSON.parse(service.slice(1, -1)) as string) : service;
    const generic = issue.message.split(`services.${service}`).join('services.<service>').split(`'${plain}'`).join("'<service>'");
    const key = `${issue.file}\0${issue.line}\0${issue.column}\0${rest}\0${generic}`;
    const group = groups.get(key);
    if (group) {
      if (!group.services.includes(plain)) group.services.push(plain);
      continue;
    }
    groups.set(key, { first: issue, services: [plain] });
    out.push(key);
  }
  return out.map((item) => {
    if (typeof item !== 'string') return item;
    const { first, services } = groups.get(item)!;
    if (services.length < 2) return first;
    return { ...first, message: `${first.message} (written once, here, and used by services ${services.join(', ')}: fix it here)` };
  });
}
