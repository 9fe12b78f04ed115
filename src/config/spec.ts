/**
 * The typed, validated, frozen form of a deployment file: what `src/config` produces and
 * `src/render` consumes. Everything here is plain data; durations are milliseconds, sizes bytes.
 */
import type { SourcePosition } from '../errors.ts';
import type { BuildSpec } from './build.ts';

/** A `depends_on` condition, as in docker-compose. */
import type { WorkflowSpec } from './workflows.ts';
import type { ContainerFields, HostConfigFields } from '../engine/create-fields.ts';
import type { SecretMountSpec, SecretSpec } from './secrets.ts';
import type { RolloutPolicy } from './service-rollout.ts';
import type { PlacementSpec } from './placement.ts';

export type DependsCondition = 'service_started' | 'service_healthy' | 'service_completed_successfully';

/** A published port. depad allocates the host port unless `x-depad.host_ports: fixed`. */
export interface PortSpec {
  /** Port inside the container. */
  readonly target: number;
  readonly protocol: 'tcp' | 'udp';
  /** The host port (or range, for one container port) the file asks for: `"80:8080"`, long syntax `published`. */
  readonly published?: { readonly from: number; readonly to: number };
  /** The host address to bind (`"127.0.0.1:80:8080"`, long syntax `host_ip`); default `x-depad.host_ip`. */
  readonly hostIp?: string;
}

/** A port the service listens on inside its networks only (compose `expose`). */
export interface ExposeSpec {
  readonly target: number;
  readonly protocol: 'tcp' | 'udp';
}

/** Mount options beyond read-only (`:z`, `nocopy`, `bind.propagation`…). */
export interface MountOptions {
  /** SELinux relabel: `z` shared, `Z` private (sent in the Binds syntax, the only one Engine API 1.41 takes it in). */
  readonly selinux?: 'z' | 'Z';
  /** Volume: do not copy the image's files into an empty volume. */
  readonly noCopy?: true;
  /** Bind: mount propagation (rprivate, private, rshared, shared, rslave, slave). */
  readonly propagation?: string;
}

/** A mount: a named volume of the deployment, or a bind mount of a path inside its root. */
export type MountSpec =
  | ({ readonly type: 'volume'; readonly source: string; readonly target: string; readonly readOnly: boolean } & MountOptions)
  | ({
      readonly type: 'bind';
      /** Normalised path relative to the deployment's root (never absolute, never `..`). */
      readonly source: string;
      readonly target: string;
      readonly readOnly: boolean;
      /** Set when `source` is an absolute host path the host's policy allows (src/config/host-access.ts). */
      readonly onHost?: true;
      /** Set with `onHost` when the source was written relative and leaves the config file's directory (`../backend`): as written. A remote client's config may not have it. */
      readonly outside?: string;
    } & MountOptions);

/** A container health check (compose `healthcheck`); durations in ms. */
export interface HealthcheckSpec {
  /** `['CMD', ...]`, `['CMD-SHELL', cmd]` or `['NONE']`. */
  readonly test: readonly string[];
  readonly intervalMs?: number;
  readonly timeoutMs?: number;
  readonly retries?: number;
  readonly startPeriodMs?: number;
}

/** Limits the engine enforces (compose `deploy.resources.limits`). */
export interface ResourceLimits {
  /** CPUs, e.g. 0.5. */
  readonly cpus?: number;
  readonly memoryBytes?: number;
  readonly pids?: number;
}

/** How the built-in proxy gives a service a stable endpoint (service-level `x-depad.expose`). */
export interface RouteSpec {
  /** `http`: `<service>.<deployment>.<domain>` and `hostnames` on the proxy's HTTP listener; `tcp`: a stable host port. */
  readonly kind: 'http' | 'tcp';
  /** Container port the proxy forwards to (published, so each instance has its own host port). */
  readonly port: number;
  /** Extra hostnames (http), lowercase. */
  readonly hostnames: readonly string[];
  /** http: `x-depad.https` — `redirect` (HTTP → HTTPS once a certificate exists) or `off` (no certificate); unset: auto. */
  readonly https?: 'redirect' | 'off';
  /** http: `x-depad.affinity: cookie` — a client stays on the instance its affinity cookie names (proxy/affinity.ts). */
  readonly affinity?: 'cookie';
}

/** A check depad runs from the host against a new instance's port before routing to it. */
export type HealthProbeSpec =
  | { readonly kind: 'http'; readonly path: string; readonly status: number }
  | { readonly kind: 'tcp' }
  | { readonly kind: 'command'; readonly command: readonly string[] };

/** How the agent keeps checking a service (`x-depad.health` timing); the probe is `health`, or the container's own health check. */
export interface HealthMonitorSpec {
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Consecutive failures that make an instance unhealthy. */
  readonly retries: number;
  /** Failures in this time after a start do not count. */
  readonly startPeriodMs: number;
  /** Restart an unhealthy instance (with backoff). */
  readonly restart: boolean;
}

/** depad's settings for one service (service-level `x-depad`). */
export interface ServiceDepad {
  readonly route?: RouteSpec;
  readonly health?: HealthProbeSpec;
  /** Periodic checks by the agent; set when the service has `x-depad.health`. */
  readonly monitor?: HealthMonitorSpec;
  /** How long an update waits for in-flight work on the old instance (default 30 s). */
  readonly drainTimeoutMs: number;
  /** How long new requests and connections are held while a stateful service is recreated (default 30 s). */
  readonly pauseTimeoutMs: number;
}

/** Engine API fields compose keys map onto (src/config/service-engine.ts); render merges them into the container body. */
export interface ServiceEngine {
  readonly container: Readonly<ContainerFields>;
  readonly host: Readonly<HostConfigFields>;
  /** `platform`: passed to container create (`os[/arch[/variant]]`). */
  readonly platform?: string;
  /** `pull_policy`, reduced to what depad does: pull always, never, or when missing. */
  readonly pullPolicy?: 'always' | 'never' | 'missing';
  /** Network aliases on every network of the service (`container_name`). */
  readonly aliases: readonly string[];
  /** `links`: this service reaches `service` also as `alias` (an alias of that service on its networks). */
  readonly links: readonly { readonly service: string; readonly alias: string }[];
  /**
   * `network_mode`, `ipc`, `pid: service:<name>`: the namespaces this service shares with another
   * service of the deployment (its container joins that service's current container).
   */
  readonly joins?: { readonly network?: string; readonly ipc?: string; readonly pid?: string };
}

/** One service of a deployment. */
export interface ServiceSpec {
  readonly name: string;
  readonly image: string;
  readonly command?: readonly string[];
  readonly entrypoint?: readonly string[];
  /** env_file entries first, then `environment` over them; keys sorted. */
  readonly environment: Readonly<Record<string, string>>;
  readonly ports: readonly PortSpec[];
  readonly expose: readonly ExposeSpec[];
  readonly volumes: readonly MountSpec[];
  /** Network name (as declared at top level) → extra aliases; `default` when none was given. */
  readonly networks: Readonly<Record<string, { readonly aliases: readonly string[]; readonly ipv4Address?: string }>>;
  readonly dependsOn: Readonly<Record<string, { readonly condition: DependsCondition }>>;
  /** Undefined: the image's own HEALTHCHECK applies. `disabled`: compose `disable: true`. */
  readonly healthcheck?: HealthcheckSpec | 'disabled';
  /** The file's `restart:`; undefined when it says none (render then picks depad's default, see `restartPolicy`). */
  readonly restart?: { readonly policy: 'no' | 'always' | 'on-failure' | 'unless-stopped'; readonly maxRetries?: number };
  readonly resources: ResourceLimits;
  readonly labels: Readonly<Record<string, string>>;
  readonly user?: string;
  readonly workingDir?: string;
  /** Container paths, optionally with `:options` (compose short form). */
  readonly tmpfs: readonly string[];
  readonly capAdd: readonly string[];
  readonly capDrop: readonly string[];
  /** `host:ip` entries. */
  readonly extraHosts: readonly string[];
  readonly stopGracePeriodMs?: number;
  readonly stopSignal?: string;
  readonly depad: ServiceDepad;
  /** `build:`: how to build the image (build.ts); `image` then is the extra tag, or '' (depad tags it per deployment). */
  readonly build?: BuildSpec;
  /** Engine fields of the compose keys depad passes through; absent when the service uses none. */
  readonly engine?: ServiceEngine;
  /** Service-level `secrets:` and `configs:`, in file order; absent: none. */
  readonly secretMounts?: readonly SecretMountSpec[];
  /** `deploy.replicas` / `scale`, when not 1: how many containers run this service. */
  readonly replicas?: number;
  /** `deploy.update_config` / `rollback_config` (src/config/service-rollout.ts); absent: depad's defaults. */
  readonly rollout?: { readonly update?: RolloutPolicy; readonly rollback?: RolloutPolicy };
}

/** A top-level network; depad names it `<project>_<name>` on the engine. */
export interface NetworkSpec {
  readonly name: string;
  readonly driver: string;
  readonly internal: boolean;
  readonly driverOpts: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
  /** `external: true`: the engine-side name of a network that exists already; depad neither creates nor removes it (host access, src/config/external.ts). */
  readonly external?: string;
  /** `ipam` with a subnet: the file's own addresses (depad allocates a subnet of the same prefix length per deployment). */
  readonly ipam?: IpamSpec;
}

/** A network's fixed IPv4 subnet (`ipam.config[0]`, `ipam.options`) as the file gives it; addresses normalised. */
export interface IpamSpec {
  /** CIDR, such as 172.28.0.0/16. */
  readonly subnet: string;
  /** CIDR inside the subnet the engine gives dynamic addresses from. */
  readonly ipRange?: string;
  readonly gateway?: string;
  /** Host name → address the engine must not give out. */
  readonly auxAddresses: Readonly<Record<string, string>>;
  /** IPAM driver options, passed as they are. */
  readonly options: Readonly<Record<string, string>>;
}

/** A top-level named volume; depad names it `<project>_<name>` on the engine. */
export interface VolumeSpec {
  readonly name: string;
  readonly driver: string;
  readonly driverOpts: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
  /** `external: true`: the engine-side name of a volume that exists already; depad neither creates nor removes it (host access, src/config/external.ts). */
  readonly external?: string;
}

/** depad's own deployment-wide settings (top-level `x-depad`). */
export interface DepadSettings {
  /** Host address published ports bind to (default 0.0.0.0). */
  readonly hostIp: string;
  /**
   * `allocate` (default): every published port gets a host port from the deployment's block, also
   * one the file asks for (`"80:8080"`). `fixed` (`x-depad.host_ports`): the asked host ports are
   * reserved as they are, and refused with their holder named when taken.
   */
  readonly hostPorts?: 'allocate' | 'fixed';
  /** How long create/start wait for a service to be running, healthy or completed (default 120 s). */
  readonly startTimeoutMs: number;
  /** Base domain of HTTP routes, `<service>.<deployment>.<domain>`; unset: DEPAD_BASE_DOMAIN, else `localhost`. */
  readonly domain?: string;
  /** The deployment's labels (`x-depad.labels`, with `x-depad.class` as `class`): what selectors match. */
  readonly labels: Readonly<Record<string, string>>;
  /** The budget its services' limits must fit in (`x-depad.resources`); unset: none. */
  readonly resources?: ResourceLimits;
  /** Named workflows (`x-depad.workflows`), run by hand or at hooks. */
  readonly workflows: Readonly<Record<string, WorkflowSpec>>;
  /** Where a cluster manager may put it (`x-depad.placement`: host-label constraints, spread label); unset: anywhere. */
  readonly placement?: PlacementSpec;
}

/** A validated deployment file. Frozen; services, networks and volumes keyed and sorted by name. */
export interface DeploymentSpec {
  /** Absolute path of the file it was read from. */
  readonly file: string;
  /** The file's text as read (before interpolation): what create copies into the root. */
  readonly source: string;
  readonly services: Readonly<Record<string, ServiceSpec>>;
  readonly networks: Readonly<Record<string, NetworkSpec>>;
  readonly volumes: Readonly<Record<string, VolumeSpec>>;
  /** Top-level `secrets:` and `configs:` (no values: src/config/secrets.ts); absent: none. */
  readonly secrets?: Readonly<Record<string, SecretSpec>>;
  readonly configs?: Readonly<Record<string, SecretSpec>>;
  readonly depad: DepadSettings;
  /** What is copied from beside the config file into the root (relative, normalised, sorted): the bind-mount sources and the paths `run:` steps name that exist. */
  readonly files: readonly string[];
  /** Key path (e.g. `services.web.image`) → where it is in the file, for errors found later. */
  readonly positions: ReadonlyMap<string, SourcePosition>;
  /** Images given on the command line (`update -s web --image app:2`), by service: they are not in the file. */
  readonly imageOverrides?: Readonly<Record<string, string>>;
  /** The top-level `name:` (compose's project name): the deployment name when `-n` is not given. */
  readonly name?: string;
}
