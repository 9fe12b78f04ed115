/**
 * Host access: the one place that decides which service settings reach outside the deployment,
 * onto the host (privileged mode, devices, the host's namespaces, powerful capabilities,
 * unconfined security profiles, bind mounts of absolute or `~` paths such as
 * /var/run/docker.sock), and the operator's policy that allows some of them.
 *
 * The policy is set by the operator only: the flags of `depad agent` (`--allow privileged`,
 * `--allow-host-path /etc/localtime:ro`) and, for script mode and the agent alike,
 * `<home>/host-policy.json` (src/deploy/host-policy.ts). No API caller or token adds to it.
 *
 * API:
 *   - `hostAccessReason(request)`: why a `{key, value}` reaches the host (undefined: it does not).
 *     A new host-reaching key: a case there, its `--allow` name in `ALLOW_NAMES` and `allowName`.
 *   - `hostAccessProblem(request, policy = activePolicy())`: the refusal (reason, and the flag and
 *     policy-file line that would allow it), or undefined when allowed or harmless.
 *   - `checkHostMount(c, policy, …)`: the same for one bind mount whose source is on the host.
 *   - `specHostAccessProblems(spec, policy)`: what a stored revision (rollback, image update) uses
 *     that today's policy does not allow.
 *   - External volumes and networks (`external: true`, src/config/external.ts) are host access too:
 *     `external-volume:NAME` / `external-network:NAME` (the engine-side name, or `*` for any).
 *   - `HostPolicy`, `EMPTY_POLICY`, `parsePolicyFile`, `policyFromFlags`, `mergePolicies`,
 *     `setActivePolicy` / `activePolicy` (the process's policy, which validation uses by default).
 */
import os from 'node:os';
import { posix } from 'node:path';
import type { Collector, Pos } from './nodes.ts';

/** A request for host access: the compose key and the value asking for it. */
export interface HostAccessRequest {
  /** The service key, e.g. `privileged`, `cap_add`, `security_opt`, `network_mode`. */
  readonly key: string;
  /** The value as written (a capability, an option, a mode…); `true` for boolean keys. */
  readonly value: string | true;
}

const POWERFUL_CAPS = new Set(['SYS_ADMIN', 'NET_ADMIN', 'ALL']);
const HOST_MODES: Readonly<Record<string, string>> = {
  network_mode: "the host's network stack",
  pid: "the host's processes",
  ipc: "the host's shared memory",
  uts: "the host's hostname",
  userns_mode: "the host's user namespace (root in the container is root on the host)",
  cgroup: "the host's cgroup namespace",
};

/** Why `request` reaches the host (for the refusal message), or undefined when it does not. */
export function hostAccessReason(request: HostAccessRequest): string | undefined {
  const { key, value } = request;
  const text = value === true ? '' : value;
  switch (key) {
    case 'privileged':
      return 'privileged mode gives the container every device and capability of the host';
    case 'devices':
      return `device ${text} is a device of the host`;
    case 'gpus':
      return "GPUs are devices of the host";
    case 'device_cgroup_rules':
      return "device cgroup rules open the host's devices to the container";
    case 'cgroup_parent':
      return "cgroup_parent places the container in the host's cgroup tree";
    case 'use_api_socket':
      return "it mounts the host's Docker Engine socket";
    case 'cap_add': {
      const cap = text.toUpperCase().replace(/^CAP_/, '');
      return POWERFUL_CAPS.has(cap) ? `capability ${cap} lets the container change the host's ${cap === 'NET_ADMIN' ? 'networking' : 'kernel state'}` : undefined;
    }
    case 'security_opt':
      return /^[a-z_-]+[:=]unconfined$/i.test(text) ? `${text} lifts the confinement that keeps the container off the host` : undefined;
    case 'deploy.resources.reservations.devices':
      return 'device reservations hand devices of the host to the container';
    case 'volumes.external':
      return `external volume ${text} is not the deployment's own: it is shared with whatever else on the host uses it`;
    case 'networks.external':
      return `external network ${text} is not the deployment's own: it is shared with whatever else on the host uses it`;
    default: {
      const what = HOST_MODES[key];
      return what !== undefined && text === 'host' ? `${key}: host shares ${what}` : undefined;
    }
  }
}

/** The `--allow` name that grants `request` (undefined: it needs none). */
export function allowName(request: HostAccessRequest): string | undefined {
  const { key, value } = request;
  if (key === 'cap_add' && value !== true) return `cap_add:${value.toUpperCase().replace(/^CAP_/, '')}`;
  if ((key === 'volumes.external' || key === 'networks.external') && value !== true) return `${key === 'volumes.external' ? EXTERNAL_VOLUME : EXTERNAL_NETWORK}${value}`;
  if (key === 'security_opt') return 'security_opt:unconfined';
  if (value === 'host' && key in HOST_MODES) return `${key}:host`;
  return key;
}

/**
 * Checks a request against the policy: undefined when it does not reach the host or the policy
 * allows it, else the refusal message: the reason, and the flag and policy-file line that allow it.
 */
export function hostAccessProblem(request: HostAccessRequest, policy: HostPolicy = activePolicy()): string | undefined {
  const reason = hostAccessReason(request);
  const name = allowName(request);
  if (reason === undefined || name === undefined || policyAllows(policy, name)) return undefined;
  if (!(ALLOW_NAMES as readonly string[]).includes(name) && externalAllowName(name) === undefined) return `${reason}: this reaches the host, which depad refuses; no host policy can allow it yet; remove it`;
  return `${reason}: this reaches the host, which depad refuses unless the host's policy allows it; ${howToAllow(policy, `--allow ${name}`, `"allow": ["${name}"]`)}`;
}

/** The operator's host-access policy. */
export interface HostPolicy {
  /** Allowed keys, as `--allow` takes them: `privileged`, `devices`, `network_mode:host`, `cap_add:SYS_ADMIN`, … */
  readonly allow: readonly string[];
  /** Host paths that may be bind-mounted (and everything below them); `readOnly`: only with `:ro`. */
  readonly hostPaths: readonly { readonly path: string; readonly readOnly: boolean }[];
  /** The policy file, named in messages. */
  readonly file?: string;
}

/** The policy of a host nobody configured: every host-reaching key is refused. */
export const EMPTY_POLICY: HostPolicy = Object.freeze({ allow: Object.freeze([]), hostPaths: Object.freeze([]) });

/** Every name `--allow` accepts. */
// Only what depad can also carry to the engine: gpus, device_cgroup_rules, cgroup_parent, use_api_socket,
// device reservations, uts: host and cgroup: host stay refused whatever the policy (not mapped yet).
export const ALLOW_NAMES = [
  'privileged', 'devices',
  'network_mode:host', 'pid:host', 'ipc:host', 'userns_mode:host',
  'cap_add:SYS_ADMIN', 'cap_add:NET_ADMIN', 'cap_add:ALL', 'security_opt:unconfined',
] as const;

/** `--allow` prefixes for external objects: the engine-side name follows (or `*`: any of them). */
export const EXTERNAL_VOLUME = 'external-volume:';
export const EXTERNAL_NETWORK = 'external-network:';
/** An engine-side volume or network name depad accepts (the engine's own volume-name rule). */
export const EXTERNAL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** `text` as an external allow name (`external-volume:data`, `external-network:*`), or undefined when it is not one. Throws a message for a bad name. */
function externalAllowName(text: string): string | undefined {
  const prefix = [EXTERNAL_VOLUME, EXTERNAL_NETWORK].find((p) => text.toLowerCase().startsWith(p));
  if (prefix === undefined) return undefined;
  const rest = text.slice(prefix.length);
  if (rest !== '*' && !EXTERNAL_NAME.test(rest)) throw new Error(`"${text}": after ${prefix} comes the engine-side name (letters, digits, _ . -) or * for any`);
  return `${prefix}${rest}`;
}

/** True when `policy` allows `name` (an external object's name also by its `*`). */
export function policyAllows(policy: HostPolicy, name: string): boolean {
  if (policy.allow.includes(name)) return true;
  const prefix = [EXTERNAL_VOLUME, EXTERNAL_NETWORK].find((p) => name.startsWith(p));
  return prefix !== undefined && policy.allow.includes(`${prefix}*`);
}

let active: HostPolicy = EMPTY_POLICY;

/** Sets the policy validation uses when its caller gives none (the agent and the CLI do, at start). */
export function setActivePolicy(policy: HostPolicy): void {
  active = policy;
}

/** The process's policy (see `setActivePolicy`); empty unless set. */
export function activePolicy(): HostPolicy {
  return active;
}

/** How to allow something: the flag and the policy-file line. */
function howToAllow(policy: HostPolicy, flag: string, fileLine: string): string {
  const file = policy.file ?? '<home>/host-policy.json';
  return `the host's operator can allow it: depad agent ${flag}, or ${fileLine} in ${file}`;
}

/**
 * A bind mount whose source is on the host (absolute or `~/…`, or `written` relative, leaving the config's directory, and resolved into `source`): the absolute host path when the
 * policy allows it (read-only when its entry says `:ro`), else an issue naming the flag and returns undefined.
 */
export function checkHostMount(c: Collector, policy: HostPolicy, source: string, readOnly: boolean, path: string, pos: Pos, written?: string): string | undefined {
  const expanded = source === '~' || source.startsWith('~/') ? posix.join(os.homedir(), source.slice(1)) : source;
  if (!posix.isAbsolute(expanded)) {
    c.issue(path, pos, `a bind-mount source must be relative to the config file (such as "./data") or an absolute host path; found "${source}"`);
    return undefined;
  }
  const full = posix.normalize(expanded).replace(/(.)\/$/, '$1');
  const entry = policy.hostPaths.find((p) => p.path === '/' || full === p.path || full.startsWith(`${p.path}/`));
  if (entry && (!entry.readOnly || readOnly)) return full;
  const what = entry
    ? `the host's policy allows ${entry.path} read-only only; add :ro (or read_only: true) to this mount`
    : `"${written ?? source}" ${written === undefined ? 'is a path on the host' : `leaves the config file's directory: it is ${full}, a path on the host`}: bind mounts must stay inside the deployment's root directory (use a path relative to the config file, such as "./data")`;
  const flag = `--allow-host-path ${full}${readOnly ? ':ro' : ''}`;
  c.issue(path, pos, `${what}${entry ? '' : `, so depad refuses it unless the host's policy allows it; ${howToAllow(policy, flag, `"hostPaths": ["${full}${readOnly ? ':ro' : ''}"]`)}`}`);
  return undefined;
}

/** Parses one `--allow-host-path` value: an absolute path, optionally with `:ro` or `:rw`. Throws a message. */
export function parseHostPath(text: string): { path: string; readOnly: boolean } {
  const m = /^(.*?)(?::(ro|rw))?$/.exec(text);
  const p = m?.[1] ?? '';
  if (!posix.isAbsolute(p)) throw new Error(`a host path must be absolute, such as /etc/localtime:ro; found "${text}"`);
  return { path: posix.normalize(p).replace(/(.)\/$/, '$1'), readOnly: m?.[2] === 'ro' };
}

/** Checks one `--allow` value. Throws a message listing the names. */
export function parseAllowName(text: string): string {
  const external = externalAllowName(text);
  if (external !== undefined) return external;
  const wanted = text.toLowerCase().replace('=', ':').replace(':cap_', ':');
  const name = (ALLOW_NAMES as readonly string[]).find((n) => n.toLowerCase() === wanted);
  if (name === undefined) throw new Error(`unknown host access "${text}"; one of: ${ALLOW_NAMES.join(', ')}, ${EXTERNAL_VOLUME}NAME, ${EXTERNAL_NETWORK}NAME`);
  return name;
}

/** The policy the agent's flags give. Throws a message for a bad value. */
export function policyFromFlags(allow: readonly string[], hostPaths: readonly string[]): HostPolicy {
  return { allow: [...new Set(allow.map(parseAllowName))].sort(), hostPaths: hostPaths.map(parseHostPath) };
}

/**
 * `<home>/host-policy.json`'s text → a policy: `{"allow": ["privileged"], "hostPaths": ["/etc/localtime:ro"]}`.
 * Throws a message naming the file for anything else.
 */
export function parsePolicyFile(text: string, file: string): HostPolicy {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new Error(`${file}: not valid JSON (${(error as Error).message}); expected {"allow": [...], "hostPaths": [...]}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${file}: expected an object {"allow": [...], "hostPaths": [...]}`);
  const obj = raw as Record<string, unknown>;
  for (const key of Object.keys(obj)) if (key !== 'allow' && key !== 'hostPaths') throw new Error(`${file}: unknown key "${key}"; the keys are allow and hostPaths`);
  const list = (key: string): string[] => {
    const v = obj[key] ?? [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new Error(`${file}: ${key} must be a list of strings`);
    return v as string[];
  };
  try {
    return { ...policyFromFlags(list('allow'), list('hostPaths')), file };
  } catch (error) {
    throw new Error(`${file}: ${(error as Error).message}`);
  }
}

/** Both policies' allowances together (the agent: its flags and the home's file). */
export function mergePolicies(a: HostPolicy, b: HostPolicy): HostPolicy {
  const paths = [...a.hostPaths, ...b.hostPaths];
  // A path allowed read-write by either wins over read-only.
  const byPath = new Map<string, { path: string; readOnly: boolean }>();
  for (const p of paths) byPath.set(p.path, { path: p.path, readOnly: (byPath.get(p.path)?.readOnly ?? true) && p.readOnly });
  const file = a.file ?? b.file;
  return { allow: [...new Set([...a.allow, ...b.allow])].sort(), hostPaths: [...byPath.values()].sort((x, y) => (x.path < y.path ? -1 : 1)), ...(file ? { file } : {}) };
}

/** What `spec`'s services use that `policy` does not allow: `web: privileged`, `web: host path /srv`… (empty: nothing). */
export function specHostAccessProblems(spec: { readonly services: Readonly<Record<string, ServiceSpecLike>>; readonly networks?: Readonly<Record<string, { readonly external?: string }>>; readonly volumes?: Readonly<Record<string, { readonly external?: string }>> }, policy: HostPolicy): string[] {
  const out: string[] = [];
  for (const [kind, objects] of [['networks', spec.networks], ['volumes', spec.volumes]] as const) {
    for (const [key, o] of Object.entries(objects ?? {})) {
      const name = o.external === undefined ? undefined : allowName({ key: `${kind}.external`, value: o.external });
      if (name !== undefined && !policyAllows(policy, name)) out.push(`${kind}.${key}: ${name} (--allow ${name})`);
    }
  }
  for (const s of Object.values(spec.services)) {
    const h = s.engine?.host ?? {};
    const requests: HostAccessRequest[] = [];
    if (h.Privileged) requests.push({ key: 'privileged', value: true });
    if (h.Devices?.length) requests.push({ key: 'devices', value: true });
    for (const [key, mode] of [['network_mode', h.NetworkMode], ['pid', h.PidMode], ['ipc', h.IpcMode], ['userns_mode', h.UsernsMode]] as const) if (mode === 'host') requests.push({ key, value: 'host' });
    for (const opt of h.SecurityOpt ?? []) requests.push({ key: 'security_opt', value: opt });
    for (const cap of s.capAdd) requests.push({ key: 'cap_add', value: cap });
    for (const r of requests) {
      const name = allowName(r);
      if (name !== undefined && hostAccessReason(r) !== undefined && !policyAllows(policy, name)) out.push(`${s.name}: ${name} (--allow ${name})`);
    }
    for (const m of s.volumes) {
      if (m.type !== 'bind' || !m.onHost) continue;
      const entry = policy.hostPaths.find((p) => p.path === '/' || m.source === p.path || m.source.startsWith(`${p.path}/`));
      if (!entry || (entry.readOnly && !m.readOnly)) out.push(`${s.name}: host path ${m.source} (--allow-host-path ${m.source}${m.readOnly ? ':ro' : ''})`);
    }
  }
  return out;
}

/** The parts of a service spec `specHostAccessProblems` reads. */
interface ServiceSpecLike {
  readonly name: string;
  readonly engine?: { readonly host: { readonly Privileged?: boolean; readonly Devices?: readonly unknown[]; readonly NetworkMode?: string; readonly PidMode?: string; readonly IpcMode?: string; readonly UsernsMode?: string; readonly SecurityOpt?: readonly string[] } };
  readonly capAdd: readonly string[];
  readonly volumes: readonly ({ readonly type: string; readonly source: string; readonly readOnly: boolean; readonly onHost?: true })[];
}
