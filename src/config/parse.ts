/**
 * Config text → `DeploymentSpec`, in two phases so that all file access stays in `loadConfig`:
 * `analyzeConfig` parses and validates the text and says which env files it needs and which bind
 * sources it mounts; `finishConfig` merges env file contents, reports every issue at once and
 * builds the frozen spec. `parseConfig` runs both with contents the caller already has.
 */
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { ConfigError } from '../errors.ts';
import type { ConfigIssue } from '../errors.ts';
import type { DeploymentSpec, DepadSettings, NetworkSpec, ServiceSpec, VolumeSpec } from './spec.ts';
import { parseEnvText } from './env.ts';
import { FrozenMap, compareStrings, deepFreeze, sortedRecord } from './freeze.ts';
import { Collector, keyPath } from './nodes.ts';
import type { ConfigWarning, LEntry } from './nodes.ts';
import { checkKeys, mapEntries, readKeyValues, readString } from './read.ts';
import { labelProblem } from '../labels.ts';
import { readService } from './service.ts';
import { readNetwork, readTopObjects, readVolume } from './top-objects.ts';
import { checkNamespaceJoins } from './namespace-joins.ts';
import { checkServiceAddresses } from './ipam.ts';
import { checkContainerNames, dropAbsentOptional, parseRawEnv, withAnonymousVolumes } from './optional-deps.ts';
import type { ServiceDraft } from './service.ts';
import { readDuration, readLimits } from './service-parts.ts';
import { checkBudget } from './budget.ts';
import { rollingSurge } from './service-rollout.ts';
import { ROOT_OWN, readWorkflows, workflowRunPaths } from './workflows.ts';
import type { ServiceScope } from './service-parts.ts';
import { isIpLiteral, objectNameProblem } from './values.ts';
import { parseYamlTree } from './yaml-tree.ts';
import { foldSharedIssues } from './issues.ts';
import { composeProject } from './compose-files.ts';
import { activeProfiles, applyProfiles } from './profiles.ts';
import { readTopLevelName } from './top-level.ts';
import { readPlacement } from './placement.ts';
import { activePolicy, setActivePolicy, type HostPolicy } from './host-access.ts';
import { readSecretDefinitions, rememberSecret, type SecretDraft, type SecretSpec } from './secrets.ts';

/** Options of `parseConfig`. */
export interface ParseConfigOptions {
  /** Directory relative paths in the file are relative to; default: the file's directory. Used in messages. */
  readonly configDir?: string;
  /**
   * Contents of the files named by `env_file`, keyed by their path relative to `configDir`,
   * normalised (`./a/../app.env` → `app.env`). A required env_file missing here is an issue.
   */
  readonly envFiles?: Readonly<Record<string, string>>;
  /** Bind-mount sources (relative, normalised) known to exist beside the file; become `spec.files`. Default none. */
  readonly existingFiles?: readonly string[];
  /** Receives warnings (e.g. an unset variable became ''), in file order; once per variable. */
  readonly warn?: (warning: ConfigWarning) => void;
  /** Texts of the other files `include` and `extends.file` name (absolute path → text; `readReferencedFiles`). */
  readonly files?: Readonly<Record<string, string>>;
  /** The host-access policy (src/config/host-access.ts); default: the process's `activePolicy()`. */
  readonly policy?: HostPolicy;
  /** Contents of the files `secrets:`/`configs:` name (`ConfigInputs.secretFiles`); default none. */
  readonly secretFiles?: ConfigInputs['secretFiles'];
}

/** A validated-but-unfinished config: what it needs from the file system, and its state. */
export interface ConfigDraft {
  /** `env_file` paths (relative to `configDir`, normalised, sorted) whose contents are needed. */
  readonly envFiles: readonly string[];
  /** Bind-mount sources (relative, normalised, sorted); those that exist become `spec.files`. */
  readonly bindSources: readonly string[];
  /** Paths `run:` steps name (relative, normalised, sorted); those that exist become `spec.files` too. */
  readonly runFiles: readonly string[];
  /** Other files read (`include`, `extends.file`, their env files) inside `configDir` (relative, sorted): kept in the root too. */
  readonly composeFiles: readonly string[];
  /** Files `secrets:` and `configs:` read (relative to `configDir`, normalised, sorted). */
  readonly secretFiles: readonly string[];
  /** Directory the relative paths are relative to (absolute). */
  readonly configDir: string;
  readonly state: DraftState;
}

/** The internals of a draft: keep opaque outside this module. */
export interface DraftState {
  readonly collector: Collector;
  readonly file: string;
  readonly source: string;
  readonly services: ReadonlyMap<string, ServiceDraft>;
  readonly networks: Record<string, NetworkSpec>;
  readonly volumes: Record<string, VolumeSpec>;
  readonly depad: DepadSettings;
  /** The top-level `name:` (the default deployment name). */
  readonly name?: string;
  readonly secretDefs: ReadonlyMap<string, SecretDraft>;
  readonly configDefs: ReadonlyMap<string, SecretDraft>;
}

const TOP_KEYS = ['services', 'networks', 'volumes', 'version', 'x-depad', 'name', 'include', 'secrets', 'configs'] as const;
const TOP_SPECIAL: Readonly<Record<string, string>> = {};

/**
 * Parses and validates a config (pure, synchronous, deterministic). Variables come only from
 * `env`. Throws DEPAD_CONFIG_SYNTAX for malformed YAML and one `ConfigError` with every issue.
 * Issues and positions name `file` as given; `spec.file` is its absolute form.
 */
export function parseConfig(text: string, file: string, env: Readonly<Record<string, string>>, options: ParseConfigOptions = {}): DeploymentSpec {
  const draft = analyzeConfig(text, file, env, options);
  return finishConfig(draft, { envFiles: options.envFiles ?? {}, existingFiles: options.existingFiles ?? [], ...(options.secretFiles ? { secretFiles: options.secretFiles } : {}) });
}

/** Phase one: parse, interpolate and validate. Throws only for syntax errors; issues are kept. */
export function analyzeConfig(
  text: string,
  file: string,
  env: Readonly<Record<string, string>>,
  options: Pick<ParseConfigOptions, 'configDir' | 'warn' | 'files' | 'policy'> = {},
): ConfigDraft {
  // The keys host-access.ts checks read the process's policy: a given one applies for this call (it is synchronous).
  if (options.policy === undefined) return analyze(text, file, env, options);
  const before = activePolicy();
  setActivePolicy(options.policy);
  try {
    return analyze(text, file, env, options);
  } finally {
    setActivePolicy(before);
  }
}

function analyze(text: string, file: string, env: Readonly<Record<string, string>>, options: Pick<ParseConfigOptions, 'configDir' | 'warn' | 'files' | 'policy'>): ConfigDraft {
  const c = new Collector(file, env, options.warn);
  const composed = composeProject(c, parseYamlTree(text, c), resolve(file), { files: options.files ?? {}, env });
  const root = composed.root;
  const top = checkKeys(c, root.entries, '', { supported: TOP_KEYS, special: TOP_SPECIAL });
  const projectName = readTopLevelName(c, top);
  const networks = readTopObjects(c, top.get('networks'), 'networks', readNetwork);
  const volumes = readTopObjects(c, top.get('volumes'), 'volumes', readVolume);
  const secretDefs = readSecretDefinitions(c, top.get('secrets'), 'secrets');
  const configDefs = readSecretDefinitions(c, top.get('configs'), 'configs');
  const depadEntry = top.get('x-depad');
  const depad = readDepad(c, depadEntry);
  const scope: ServiceScope = { c, policy: options.policy ?? activePolicy(), secrets: new Set(secretDefs.keys()), configs: new Set(configDefs.keys()), networks: new Set(Object.keys(networks.declared)), volumes: new Set(Object.keys(volumes.declared)), configDir: options.configDir === undefined ? dirname(resolve(file)) : resolve(options.configDir) };
  const services = new Map<string, ServiceDraft>();
  const servicesEntry = top.get('services');
  if (servicesEntry === undefined) {
    c.issue('services', { line: 1, column: 1 }, 'the file has no services: key; list the services to run under it');
  } else {
    const all = mapEntries(c, servicesEntry.value, 'services', 'a map of service name → settings');
    const profiled = all === undefined ? undefined : applyProfiles(c, all, activeProfiles(env));
    const entries = profiled?.enabled;
    for (const entry of profiled?.disabled ?? []) readService(scope, entry, keyPath('services', entry.key));
    if (all?.length === 0) c.issue('services', servicesEntry.keyPos, 'services: is empty; list at least one service with its image');
    else if (all !== undefined && entries?.length === 0) c.issue('services', servicesEntry.keyPos, `no service runs with the active profiles (${activeProfiles(env).join(', ') || 'none'}); activate one with --profile NAME or COMPOSE_PROFILES`);
    for (const entry of entries ?? []) {
      const path = keyPath('services', entry.key);
      const problem = objectNameProblem(entry.key, 'service');
      if (problem !== undefined) c.issue(path, entry.keyPos, problem);
      services.set(entry.key, readService(scope, entry, path));
    }
  }
  dropAbsentOptional(c, services);
  checkContainerNames(c, services);
  checkDependencies(c, services);
  checkNamespaceJoins(c, services);
  checkServiceAddresses(c, networks.valid, services);
  const workflows = depadEntry?.value.kind === 'map' ? depadEntry.value.entries.find((e) => e.key === 'workflows') : undefined;
  if (workflows) depad.workflows = readWorkflows(c, workflows.value, 'x-depad.workflows', [...services.keys()]);
  checkBudget(c, depad.resources, [...services.entries()].map(([name, s]) => ({ name, limits: s.spec.resources, replicas: s.spec.replicas ?? 1, surge: rollingSurge(s.spec) })));
  const netRecord = { ...networks.valid };
  const usesDefault = [...services.values()].some((s) => 'default' in s.spec.networks);
  if (usesDefault && !('default' in netRecord)) {
    netRecord['default'] = { name: 'default', driver: 'bridge', internal: false, driverOpts: {}, labels: {} };
  }
  const absFile = resolve(file);
  const configDir = options.configDir === undefined ? dirname(absFile) : resolve(options.configDir);
  const drafts = [...services.values()];
  const uniqSorted = (xs: string[]) => [...new Set(xs)].sort(compareStrings);
  return {
    envFiles: uniqSorted(drafts.flatMap((s) => s.envFiles.map((e) => e.path))),
    bindSources: uniqSorted(drafts.flatMap((s) => s.spec.volumes.flatMap((v) => (v.type === 'bind' && !v.onHost ? [v.source] : [])))),
    runFiles: workflowRunPaths(depad.workflows ?? {}),
    // Kept in the root beside the bind sources, except where depad's own files are (a docker-compose.yml included from depad.yml).
    composeFiles: composed.used.map((f) => relative(configDir, f).split(sep).join('/')).filter((f) => !f.startsWith('..') && !isAbsolute(f) && !ROOT_OWN.has(f.split('/')[0] ?? '')),
    secretFiles: uniqSorted([...secretDefs.values(), ...configDefs.values()].flatMap((d) => (d.file === undefined ? [] : [d.file]))),
    configDir,
    state: { secretDefs, configDefs, collector: c, file: absFile, source: text, services, networks: sortedRecord(Object.entries(netRecord)), volumes: withAnonymousVolumes(volumes.valid, drafts), depad, ...(projectName === undefined ? {} : { name: projectName }) },
  };
}

/** What phase two needs from the file system. */
export interface ConfigInputs {
  /** env_file path (as in `ConfigDraft.envFiles`) → contents; absent means not found. */
  readonly envFiles: Readonly<Record<string, string>>;
  /** Bind sources and `run:` step paths that exist. */
  readonly existingFiles: readonly string[];
  /** Contents of `ConfigDraft.secretFiles` (absent: missing, or a message why it cannot be used). */
  readonly secretFiles?: Readonly<Record<string, Buffer | { readonly problem: string }>>;
}

/** Phase two: merge env files, throw a `ConfigError` with every issue, or return the frozen spec. */
export function finishConfig(draft: ConfigDraft, inputs: ConfigInputs): DeploymentSpec {
  const { collector: c, services } = draft.state;
  const envIssues: ConfigIssue[] = [];
  const parsedEnv = new Map<string, Record<string, string>>();
  const finished: [string, ServiceSpec][] = [];
  for (const [name, s] of services) {
    const entries: (readonly [string, string])[] = [];
    for (const ref of s.envFiles) {
      let values = parsedEnv.get(ref.path);
      if (values === undefined) {
        const text = Object.hasOwn(inputs.envFiles, ref.path) ? inputs.envFiles[ref.path] : undefined;
        if (text === undefined) {
          if (ref.required) c.issue(ref.keyPath, ref.pos, `env_file "${ref.path}" is missing or unreadable in ${draft.configDir}; create it, fix the path, or remove it`);
          continue;
        }
        const parsed = ref.raw === true ? parseRawEnv(text) : parseEnvText(text, join(dirname(c.file), ref.path));
        envIssues.push(...parsed.issues);
        values = parsed.values;
        parsedEnv.set(ref.path, values);
      }
      entries.push(...Object.entries(values));
    }
    entries.push(...s.environment);
    finished.push([name, { ...s.spec, environment: sortedRecord(entries) }]);
  }
  const secrets = finishSecrets(c, draft.state.secretDefs, inputs, draft.configDir);
  const configs = finishSecrets(c, draft.state.configDefs, inputs, draft.configDir);
  const issues = foldSharedIssues([...c.issues].sort((a, b) => fileOrder(c.file, a.file, b.file) || a.line - b.line || a.column - b.column));
  issues.push(...envIssues);
  if (issues.length > 0) throw new ConfigError(c.file, issues);
  const existing = new Set(inputs.existingFiles);
  const { state } = draft;
  const spec: DeploymentSpec = {
    file: state.file,
    source: state.source,
    services: sortedRecord(finished),
    networks: state.networks,
    volumes: state.volumes,
    ...(Object.keys(secrets).length > 0 ? { secrets } : {}),
    ...(Object.keys(configs).length > 0 ? { configs } : {}),
    depad: state.depad,
    files: [...new Set([...[...draft.bindSources, ...draft.runFiles].filter((f) => existing.has(f)), ...draft.composeFiles])].sort(compareStrings),
    ...(state.name === undefined ? {} : { name: state.name }),
    positions: new FrozenMap(c.positions),
  };
  return deepFreeze(spec);
}

/** The main file's issues first, then other files' (included, extended) by name. */
function fileOrder(main: string, a: string, b: string): number {
  if (a === b) return 0;
  if (a === main) return -1;
  if (b === main) return 1;
  return a < b ? -1 : 1;
}

/** Definitions with their values' digests (values are kept by src/config/secrets.ts, never in the spec). */
function finishSecrets(c: Collector, defs: ReadonlyMap<string, SecretDraft>, inputs: ConfigInputs, configDir: string): Record<string, SecretSpec> {
  const out: [string, SecretSpec][] = [];
  for (const [name, d] of defs) {
    let value = d.value;
    if (d.file !== undefined) {
      const found = inputs.secretFiles && Object.hasOwn(inputs.secretFiles, d.file) ? inputs.secretFiles[d.file] : undefined;
      if (found === undefined) c.issue(d.path, d.pos, `${d.kind} file "${d.file}" is missing or unreadable in ${configDir}; create it or fix the path`);
      else if (!Buffer.isBuffer(found)) c.issue(d.path, d.pos, `${d.kind} file "${d.file}": ${found.problem}`);
      else value = found;
    }
    if (value === undefined) continue;
    const spec: SecretSpec = { kind: d.kind, name, origin: d.origin, digest: rememberSecret(value), ...(d.file === undefined ? {} : { file: d.file }), ...(d.variable === undefined ? {} : { variable: d.variable }) };
    out.push([name, spec]);
  }
  return sortedRecord(out);
}

const DEFAULT_DEPAD: DepadSettings = Object.freeze({ hostIp: '0.0.0.0', startTimeoutMs: 120_000, labels: Object.freeze({}), workflows: Object.freeze({}) });

function readDepad(c: Collector, entry: LEntry | undefined): { -readonly [K in keyof DepadSettings]: DepadSettings[K] } {
  if (entry === undefined) return { ...DEFAULT_DEPAD };
  const keys = checkKeys(c, mapEntries(c, entry.value, 'x-depad') ?? [], 'x-depad', { supported: ['host_ip', 'host_ports', 'start_timeout', 'domain', 'class', 'labels', 'resources', 'workflows', 'placement'] });
  const settings: { -readonly [K in keyof DepadSettings]: DepadSettings[K] } = { ...DEFAULT_DEPAD };
  const hostIp = keys.get('host_ip');
  if (hostIp) {
    const path = 'x-depad.host_ip';
    const text = readString(c, hostIp.value, path, { what: 'an IP address' });
    if (text !== undefined && !isIpLiteral(text)) c.issue(path, hostIp.value.pos, `host_ip must be an IPv4 or IPv6 address such as 127.0.0.1 or ::1, found "${text}"`);
    else if (text !== undefined) settings.hostIp = text;
  }
  const hostPorts = keys.get('host_ports');
  if (hostPorts) {
    const text = readString(c, hostPorts.value, 'x-depad.host_ports', { what: 'allocate or fixed' });
    if (text === 'fixed' || text === 'allocate') settings.hostPorts = text;
    else if (text !== undefined) c.issue('x-depad.host_ports', hostPorts.value.pos, `host_ports must be allocate (depad gives host ports from the deployment's block, the default) or fixed (the host ports the file asks for), found "${text}"`);
  }
  const domain = keys.get('domain');
  if (domain) {
    const text = readString(c, domain.value, 'x-depad.domain', { what: 'a domain such as apps.example.com' });
    if (text !== undefined && !/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(text)) c.issue('x-depad.domain', domain.value.pos, `domain must be a lowercase DNS name such as apps.example.com, found "${text}"`);
    else if (text !== undefined) settings.domain = text;
  }
  const timeout = keys.get('start_timeout');
  if (timeout) {
    const ms = readDuration(c, timeout.value, 'x-depad.start_timeout');
    if (ms !== undefined) settings.startTimeoutMs = ms;
  }
  settings.labels = readDeploymentLabels(c, keys);
  const resources = keys.get('resources');
  if (resources) settings.resources = readLimits(c, resources.value, 'x-depad.resources');
  const placement = readPlacement(c, keys.get('placement'));
  if (placement !== undefined) settings.placement = placement;
  return settings;
}

/** `x-depad.labels` (a map or `key=value` list) and `x-depad.class` (the `class` label). */
function readDeploymentLabels(c: Collector, keys: Map<string, LEntry>): Record<string, string> {
  const out: [string, string][] = [];
  const labels = keys.get('labels');
  for (const kv of labels ? (readKeyValues(c, labels.value, 'x-depad.labels', 'label') ?? []) : []) {
    const problem = labelProblem(kv.key, kv.value);
    if (problem) c.issue(kv.path, kv.pos, problem);
    else out.push([kv.key, kv.value]);
  }
  const cls = keys.get('class');
  if (cls) {
    const value = readString(c, cls.value, 'x-depad.class', { what: 'a class name such as plateaumed' });
    const problem = value === undefined ? undefined : labelProblem('class', value);
    if (problem) c.issue('x-depad.class', cls.value.pos, problem.replace('label value', 'class'));
    else if (out.some(([k]) => k === 'class')) c.issue('x-depad.class', cls.keyPos, 'the class is given twice: as x-depad.class and as the class label; keep one');
    else if (value !== undefined) out.push(['class', value]);
  }
  return sortedRecord(out);
}

/** depends_on targets must exist, not be the service itself, and not form cycles. */
function checkDependencies(c: Collector, services: ReadonlyMap<string, ServiceDraft>): void {
  const edges = new Map<string, ServiceDraft['dependencies']>();
  for (const [name, s] of services) {
    const ok = s.dependencies.filter((d) => {
      const joined = /\.(network_mode|ipc|pid)$/.exec(d.path)?.[1];
      const all = [...services.keys()].sort(compareStrings).join(', ');
      if (d.service === name) c.issue(d.path, d.pos, joined ? `${joined}: service:${name} names the service itself; name another service of this file` : `service '${name}' depends on itself; remove this entry`);
      else if (!services.has(d.service)) c.issue(d.path, d.pos, joined ? `${joined}: service:${d.service}: there is no service ${d.service} in this file; services: ${all}` : `${d.path.includes('.links[') ? 'links' : 'depends_on'} names '${d.service}', which is not a service in this file; services: ${all}`);
      else return true;
      return false;
    });
    edges.set(name, ok);
  }
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const reported = new Set<string>();
  const visit = (name: string): void => {
    state.set(name, 'visiting');
    stack.push(name);
    for (const dep of edges.get(name) ?? []) {
      const seen = state.get(dep.service);
      if (seen === 'visiting') {
        const cycle = [...stack.slice(stack.indexOf(dep.service)), dep.service];
        const key = [...new Set(cycle)].sort(compareStrings).join(' ');
        if (!reported.has(key)) {
          reported.add(key);
          c.issue(dep.path, dep.pos, `dependency cycle: ${cycle.join(' -> ')}; remove one of these depends_on entries`);
        }
      } else if (seen === undefined) {
        visit(dep.service);
      }
    }
    stack.pop();
    state.set(name, 'done');
  };
  for (const name of [...services.keys()].sort(compareStrings)) if (!state.has(name)) visit(name);
}
