/**
 * The engine's vocabulary: what render plans and the engine carries out. Plain data in the Docker
 * Engine API's own field names, so nothing is lost in translation; no dockerode types leak out.
 */

import type { ContainerFields, HostConfigFields } from './create-fields.ts';

/** Labels every object depad makes carries. */
export const LABELS = {
  deployment: 'depad.deployment',
  deploymentId: 'depad.deployment.id',
  /** The absolute path of the home whose state holds the deployment (`homeIdentity`); absent on objects made before it. */
  home: 'depad.home',
  service: 'depad.service',
  revision: 'depad.revision',
  instance: 'depad.instance',
  /** A service's replica, 1…N: which of its current containers this is (instance numbers change with each update). */
  replica: 'depad.replica',
  network: 'depad.network',
  volume: 'depad.volume',
} as const;

/** A network to create. */
export interface NetworkPlan {
  /** Engine name, e.g. `depad-mercy_default`. */
  name: string;
  /** The name in the config, e.g. `default`. */
  key: string;
  driver: string;
  internal: boolean;
  options: Record<string, string>;
  labels: Record<string, string>;
  /** The subnet depad allocated for the network (the file's `ipam`, addresses mapped); absent: the engine picks one. */
  ipam?: { subnet: string; ipRange?: string; gateway?: string; auxAddresses: Record<string, string>; options: Record<string, string> };
}

/** A named volume to create (or reuse when it exists with depad's labels for the same deployment name). */
export interface VolumePlan {
  name: string;
  key: string;
  driver: string;
  options: Record<string, string>;
  labels: Record<string, string>;
}

/** A network endpoint of a container: engine network name and DNS aliases on it. */
export interface EndpointPlan {
  network: string;
  aliases: string[];
  /** The fixed address on this network (the file's `ipv4_address`, mapped into the allocated subnet). */
  ipv4Address?: string;
}

/** The Engine API's container-create body, restricted to the fields depad sets. */
export interface ContainerCreateBody extends ContainerFields {
  Image: string;
  Cmd?: string[];
  Entrypoint?: string[];
  Env: string[];
  Labels: Record<string, string>;
  ExposedPorts: Record<string, Record<string, never>>;
  User?: string;
  WorkingDir?: string;
  StopSignal?: string;
  StopTimeout?: number;
  Healthcheck?: { Test: string[]; Interval?: number; Timeout?: number; Retries?: number; StartPeriod?: number };
  HostConfig: HostConfigFields & {
    PortBindings: Record<string, Array<{ HostIp: string; HostPort: string }>>;
    Mounts: Array<{ Type: 'volume' | 'bind'; Source: string; Target: string; ReadOnly: boolean; BindOptions?: { Propagation: string }; VolumeOptions?: { NoCopy: boolean } }>;
    Tmpfs: Record<string, string>;
    RestartPolicy: { Name: string; MaximumRetryCount?: number };
    NanoCpus?: number;
    Memory?: number;
    PidsLimit?: number;
    CapAdd: string[];
    CapDrop: string[];
    ExtraHosts: string[];
    NetworkMode: string;
  };
}

/** A container to create: its name, its service, its endpoints and what it waits for. */
export interface ContainerPlan {
  name: string;
  service: string;
  body: ContainerCreateBody;
  /** `platform` (compose): the create call's `platform` query parameter. */
  platform?: string;
  endpoints: EndpointPlan[];
  /** Services to wait for before starting this one, and how (compose `depends_on`). */
  dependsOn: Record<string, { condition: 'service_started' | 'service_healthy' | 'service_completed_successfully' }>;
  /** `secret <name>` / `config <name>` → its host copy's file name (digest-named, never the value); absent: none. */
  secrets?: Record<string, string>;
}

/** What the engine reports about a container. */
export interface ContainerState {
  id: string;
  name: string;
  labels: Record<string, string>;
  image: string;
  imageId: string;
  /** created, running, paused, restarting, removing, exited, dead. */
  status: string;
  running: boolean;
  exitCode: number;
  restartCount: number;
  /** The engine's restart policy: `no`, `always`, `unless-stopped`, `on-failure` (with its retries). */
  restartPolicy: { name: string; maxRetries?: number };
  /** Undefined when the container has no health check. */
  health?: 'starting' | 'healthy' | 'unhealthy';
  /** Last health-check outputs, newest last. */
  healthLog: string[];
  startedAt?: string;
  finishedAt?: string;
  /** Host port bindings: "8080/tcp" → [host ports]. */
  ports: Record<string, number[]>;
  /** Engine networks → IP address. */
  networks: Record<string, string>;
  error?: string;
}

/** A network or volume depad found on the engine. */
export interface EngineObject {
  name: string;
  id: string;
  labels: Record<string, string>;
}

/** What depad itself needs to know about a service at run time (stored with the plan). */
export interface ServicePlan {
  name: string;
  /** The proxy route: kind, container port, every hostname (http). */
  route?: { kind: 'http' | 'tcp'; port: number; hosts: string[]; https?: 'redirect' | 'off'; affinity?: 'cookie' };
  /** Host address its published ports are reached on (loopback unless bound to one address). */
  upstreamHost: string;
  /** Check from the host before routing to a new instance. */
  health?: { kind: 'http'; path: string; status: number } | { kind: 'tcp' } | { kind: 'command'; command: string[] };
  /** The agent's periodic checks (`x-depad.health` timing and restart). */
  monitor?: { intervalMs: number; timeoutMs: number; retries: number; startPeriodMs: number; restart: boolean };
  drainTimeoutMs: number;
  pauseTimeoutMs: number;
  /** The file gave `restart:` (its `no` and `on-failure` are then honoured by the agent too; absent in plans made before). */
  restartGiven?: true;
  /** Another service waits for it to complete (`service_completed_successfully`): it runs once and is never restarted. */
  oneShot?: true;
  /** Has named volumes: cannot run twice, so an update swaps it while its route is paused. */
  stateful: boolean;
  /** How many replicas the file asks for, when not 1 (`deploy.replicas`, `scale`). */
  replicas?: number;
  /** Has a fixed address (`ipv4_address`), which two instances cannot share: an update replaces it stop-first. */
  fixedAddress?: true;
  /** `update_config.order` / `rollback_config.order` when the file gives them (else stop-first with named volumes, start-first without). */
  order?: { update?: 'start-first' | 'stop-first'; rollback?: 'start-first' | 'stop-first' };
}
