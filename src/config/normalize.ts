/**
 * A validated spec as a compose document, like `docker compose config` prints: variables
 * interpolated, `include`/`extends`/profiles resolved, defaults filled and short syntaxes
 * expanded (ports, volumes, depends_on, networks in their long form). Relative bind sources are
 * `./path` against the file's directory. depad's settings stay under `x-depad`.
 */
import type { DeploymentSpec, ServiceSpec } from './spec.ts';
import { normalizedBuild, normalizedEngine, normalizedMount, normalizedRollouts, normalizedSecretDefinitions, normalizedSecretMounts, rest, snake } from './normalize-parts.ts';
import { ipamDocument } from './ipam.ts';

/** Fields of `ServiceSpec` written by `normalizedService` by name; any other field is written as is (snake_case). */
const KNOWN = new Set([
  'name', 'image', 'command', 'entrypoint', 'environment', 'ports', 'expose', 'volumes', 'networks', 'dependsOn', 'healthcheck', 'restart',
  'resources', 'labels', 'user', 'workingDir', 'tmpfs', 'capAdd', 'capDrop', 'extraHosts', 'stopGracePeriodMs', 'stopSignal', 'depad',
  'engine', 'build', 'secretMounts', 'rollout', 'replicas',
]);

/** The normalized compose document of `spec` (plain data: print it as YAML or JSON). */
export function normalizedCompose(spec: DeploymentSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (spec.name !== undefined) out.name = spec.name;
  out.services = Object.fromEntries(Object.entries(spec.services).map(([name, s]) => [name, normalizedService(s)]));
  out.networks = Object.fromEntries(
    Object.values(spec.networks).map((n) => [n.name, n.external !== undefined ? { external: true, name: n.external } : { driver: n.driver, ...(n.internal ? { internal: true } : {}), ...nonEmpty('driver_opts', n.driverOpts), ...nonEmpty('labels', n.labels), ...(n.ipam ? { ipam: ipamDocument(n.ipam) } : {}) }]),
  );
  if (Object.keys(spec.volumes).length > 0) {
    out.volumes = Object.fromEntries(Object.values(spec.volumes).map((v) => [v.name, v.external !== undefined ? { external: true, name: v.external } : { driver: v.driver, ...nonEmpty('driver_opts', v.driverOpts), ...nonEmpty('labels', v.labels) }]));
  }
  const d = spec.depad;
  const depad: Record<string, unknown> = { host_ip: d.hostIp, start_timeout: duration(d.startTimeoutMs) };
  if (d.domain !== undefined) depad.domain = d.domain;
  if (Object.keys(d.labels).length > 0) depad.labels = d.labels;
  if (d.resources !== undefined) depad.resources = limits(d.resources);
  if (d.placement !== undefined) depad.placement = { ...(d.placement.constraints.length > 0 ? { constraints: d.placement.constraints.map((k) => `${k.label}${k.op}${k.value}`) } : {}), ...(d.placement.spread === undefined ? {} : { spread: d.placement.spread }) };
  if (Object.keys(d.workflows).length > 0) {
    depad.workflows = Object.fromEntries(
      Object.values(d.workflows).map((w) => [
        w.name,
        { ...(w.hooks.length > 0 ? { hooks: [...w.hooks] } : {}), timeout: duration(w.timeoutMs), steps: w.steps.map((st) => (st.kind === 'run' ? { run: st.command } : { exec: [...st.command], service: st.service })) },
      ]),
    );
  }
  Object.assign(out, normalizedSecretDefinitions(spec));
  out['x-depad'] = depad;
  return out;
}

function normalizedService(s: ServiceSpec): Record<string, unknown> {
  const out: Record<string, unknown> = s.image === '' && s.build !== undefined ? {} : { image: s.image };
  if (s.entrypoint) out.entrypoint = [...s.entrypoint];
  if (s.command) out.command = [...s.command];
  if (Object.keys(s.environment).length > 0) out.environment = { ...s.environment };
  if (s.ports.length > 0) out.ports = s.ports.map((p) => ({ target: p.target, ...publishedOf(p), protocol: p.protocol, ...rest(p, ['target', 'protocol', 'published']) }));
  if (s.expose.length > 0) out.expose = s.expose.map((e) => (e.protocol === 'tcp' ? String(e.target) : `${e.target}/${e.protocol}`));
  if (s.volumes.length > 0) {
    out.volumes = s.volumes.map(normalizedMount);
  }
  if (s.build !== undefined) out.build = normalizedBuild(s.build);
  Object.assign(out, normalizedEngine(s), normalizedSecretMounts(s));
  if (s.engine?.joins?.network === undefined) out.networks = Object.fromEntries(Object.entries(s.networks).map(([n, v]) => [n, v.aliases.length > 0 || v.ipv4Address !== undefined ? { ...(v.aliases.length > 0 ? { aliases: [...v.aliases] } : {}), ...(v.ipv4Address !== undefined ? { ipv4_address: v.ipv4Address } : {}) } : null]));
  if (Object.keys(s.dependsOn).length > 0) out.depends_on = Object.fromEntries(Object.entries(s.dependsOn).map(([n, v]) => [n, { condition: v.condition, required: true, ...rest(v, ['condition']) }]));
  if (s.healthcheck === 'disabled') out.healthcheck = { disable: true };
  else if (s.healthcheck) {
    const h = s.healthcheck;
    out.healthcheck = {
      test: [...h.test],
      ...(h.intervalMs === undefined ? {} : { interval: duration(h.intervalMs) }),
      ...(h.timeoutMs === undefined ? {} : { timeout: duration(h.timeoutMs) }),
      ...(h.retries === undefined ? {} : { retries: h.retries }),
      ...(h.startPeriodMs === undefined ? {} : { start_period: duration(h.startPeriodMs) }),
    };
  }
  if (s.restart) out.restart = s.restart.maxRetries === undefined ? s.restart.policy : `${s.restart.policy}:${s.restart.maxRetries}`;
  const lim = limits(s.resources);
  const deploy: Record<string, unknown> = { ...(s.replicas !== undefined ? { replicas: s.replicas } : {}), ...(Object.keys(lim).length > 0 ? { resources: { limits: lim } } : {}), ...normalizedRollouts(s) };
  if (Object.keys(deploy).length > 0) out.deploy = deploy;
  if (Object.keys(s.labels).length > 0) out.labels = { ...s.labels };
  if (s.user !== undefined) out.user = s.user;
  if (s.workingDir !== undefined) out.working_dir = s.workingDir;
  if (s.tmpfs.length > 0) out.tmpfs = [...s.tmpfs];
  if (s.capAdd.length > 0) out.cap_add = [...s.capAdd];
  if (s.capDrop.length > 0) out.cap_drop = [...s.capDrop];
  if (s.extraHosts.length > 0) out.extra_hosts = [...s.extraHosts];
  if (s.stopGracePeriodMs !== undefined) out.stop_grace_period = duration(s.stopGracePeriodMs);
  if (s.stopSignal !== undefined) out.stop_signal = s.stopSignal;
  for (const [key, value] of Object.entries(s)) {
    if (!KNOWN.has(key) && value !== undefined && !(Array.isArray(value) && value.length === 0)) out[snake(key)] = value;
  }
  out['x-depad'] = serviceDepad(s.depad);
  return out;
}

/** A service's `x-depad` in the syntax the file takes (expose, port, health…), defaults filled. */
function serviceDepad(d: ServiceSpec['depad']): Record<string, unknown> {
  const { route, health, monitor, drainTimeoutMs, pauseTimeoutMs, ...others } = d;
  const out: Record<string, unknown> = {};
  if (route) {
    out.expose = route.kind;
    out.port = route.port;
    if (route.hostnames.length > 0) out.hostnames = [...route.hostnames];
    if (route.https !== undefined) out.https = route.https;
    if (route.affinity !== undefined) out.affinity = route.affinity;
  }
  if (health || monitor) {
    const h: Record<string, unknown> = {};
    if (health?.kind === 'http') Object.assign(h, { http: health.path, status: health.status });
    else if (health?.kind === 'tcp') h.tcp = true;
    else if (health?.kind === 'command') h.command = [...health.command];
    if (monitor) Object.assign(h, { interval: duration(monitor.intervalMs), timeout: duration(monitor.timeoutMs), retries: monitor.retries, start_period: duration(monitor.startPeriodMs), restart: monitor.restart });
    out.health = h;
  }
  out.drain_timeout = duration(drainTimeoutMs);
  out.pause_timeout = duration(pauseTimeoutMs);
  return { ...out, ...rest(others, []) };
}

/** compose's `published: "80"` (or `"8000-8001"`) when the file asks for a host port. */
function publishedOf(p: object): Record<string, string> {
  const published = (p as { published?: { from: number; to: number } }).published;
  if (published === undefined) return {};
  return { published: published.from === published.to ? String(published.from) : `${published.from}-${published.to}` };
}

function limits(r: { readonly cpus?: number; readonly memoryBytes?: number; readonly pids?: number }): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (r.cpus !== undefined) out.cpus = String(r.cpus);
  if (r.memoryBytes !== undefined) out.memory = `${r.memoryBytes}b`;
  if (r.pids !== undefined) out.pids = r.pids;
  return out;
}

function nonEmpty(key: string, record: Readonly<Record<string, string>>): Record<string, unknown> {
  return Object.keys(record).length > 0 ? { [key]: { ...record } } : {};
}

/** Milliseconds in compose's duration syntax (`1m30s`, `500ms`). */
function duration(ms: number): string {
  if (ms % 1000 !== 0) return `${ms}ms`;
  let s = ms / 1000;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s || (!h && !m) ? `${s}s` : ''}`;
}
