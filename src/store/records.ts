/** The records depad keeps in its LevelDB. Plain JSON; no secrets (env values stay in the root dir). */
import type { WorkflowRun } from '../deploy/workflows.ts';

/**
 * A host port held by a deployment, kept until the deployment is destroyed: a port an update no
 * longer uses becomes a `spare` of the same deployment (never handed to another one).
 */
export interface PortAssignment {
  service: string;
  /** Container port. */
  target: number;
  protocol: 'tcp' | 'udp';
  /** Host port from the deployment's block(s). */
  host: number;
  /**
   * `published`: the service's own published port, bound by its current instance and kept across
   * updates, restarts and rollbacks. `instance`: the port one instance publishes for the proxy's
   * route (an upstream: each instance has its own, the route is the stable endpoint). `route`: the
   * proxy's stable port of an `expose: tcp` service. `spare`: given up by an update, kept by the
   * deployment for its next instances (`service` names its last holder).
   */
  role: 'published' | 'instance' | 'route' | 'spare';
  /** The instance number, for `instance` ports (0 otherwise). */
  instance: number;
  /** A `published` port of one replica (1…N) of a service with several; absent: the service's only one. */
  replica?: number;
  /** The host port (or range) the file asked for (`"80:8080"` → `80`), when it asked. */
  asked?: string;
  /** The host address it is bound to, when the file gave one for this port. */
  hostIp?: string;
}

/** One deployment: its identity, desired state, root directory and ports. */
export interface DeploymentRecord {
  id: string;
  name: string;
  /** Prefix of every engine object's name: `depad-<name>`. */
  project: string;
  createdAt: string;
  updatedAt: string;
  /** Current revision number (1 after create). */
  revision: number;
  /** What the user last asked for. */
  desired: 'running' | 'stopped';
  /** Services stopped on their own (`stop -s`) while the deployment should run: the agent leaves them stopped. */
  stoppedServices?: string[];
  /** `creating` and `destroying` are transient; a record left in them is recovered from the journal. */
  phase: 'creating' | 'ready' | 'destroying';
  rootDir: string;
  ports: PortAssignment[];
  /** Subnets allocated for its networks' `ipam` subnets, kept until destroy (absent: none). */
  subnets?: SubnetAssignment[];
  /** Names of the engine volumes this deployment uses (some may predate it, kept by --keep-volumes). */
  volumes: string[];
  /** service → number of its current instance (1 after create; each update of the service adds one). */
  instances: Record<string, number>;
  /** service → the instance numbers of its current replicas, for a service with more than one (absent: the one in `instances`). */
  replicas?: Record<string, number[]>;
  /** service → its replicas that still run an older revision's container: a tolerated failure or a paused rolling update (roll-holds.ts). */
  held?: Record<string, HeldService>;
  /** The labels selectors match: the config's (`x-depad.labels`, `x-depad.class`), then `labelOverrides` (absent in records made before labels). */
  labels?: Record<string, string>;
  /** Labels given at create (`--class`, `--label`): they win over the config's, at every update too. */
  labelOverrides?: Record<string, string>;
}

/** A service some of whose replicas kept their old container when its rolling update failed for them. */
export interface HeldService {
  /** The slots (replica 1…N) on an old container: its instance number, the revision it was made by, why. */
  replicas: { replica: number; instance: number; revision: number; reason: string }[];
  /** Set when `failure_action: pause` stopped the roll: why. The next update rolls the service again. */
  paused?: string;
}

/** One numbered version of a deployment. Its files live in `<root>/revisions/<n>/`. */
export interface RevisionRecord {
  deploymentId: string;
  number: number;
  createdAt: string;
  /** Absolute path of the config file as the user gave it. */
  configFile: string;
  /** sha256 of the config text and of the rendered compose file. */
  configSha256: string;
  composeSha256: string;
  /** service → image reference and the image ID it ran. */
  images: Record<string, { ref: string; id: string }>;
  /** What made it (`scale`: a replica count changed alone, by depad scale). */
  source: 'create' | 'update' | 'rollback' | 'scale';
  /** Services it started new instances of (all, for create), and services it removed. */
  changed: string[];
  removed: string[];
  /** Image overrides given on the command line (`update -s svc --image ref`), kept to re-render it. */
  overrides: Record<string, string>;
  /** For a rollback: the revision it restored. */
  from?: number;
  /** Workflows its create or update ran (hooks), with their log files. */
  workflows?: WorkflowRun[];
}

/**
 * A subnet depad allocated for a network whose file asks for one (`ipam.config[0].subnet`): same
 * prefix length, from depad's pool; the file's addresses keep their offsets inside it.
 */
export interface SubnetAssignment {
  /** The network's name in the file. */
  network: string;
  /** The subnet the file asks for (CIDR). */
  asked: string;
  /** The subnet it got (CIDR). */
  given: string;
}

/** Registry entry for one allocated subnet. */
export interface SubnetRecord extends SubnetAssignment {
  deploymentId: string;
}

/** Registry entry for one host port. */
export interface PortRecord extends PortAssignment {
  deploymentId: string;
}

/** Operations the journal knows how to finish or undo after a crash. */
export type JournalKind = 'create' | 'destroy' | 'update';

/** An operation in progress. Present only while it runs; a leftover one means depad was killed. */
export interface JournalEntry {
  opId: string;
  kind: JournalKind;
  deploymentId: string;
  name: string;
  pid: number;
  startedAt: string;
  /** The last step reached. */
  step: string;
  /** Cursor before the operation, restored if a create is undone. */
  previousCursor?: number;
  keepVolumes?: boolean;
  /** For an update: the revision it would make. */
  toRevision?: number;
}

/** Who holds the state database: written next to it by the process that has it open. */
export interface HolderInfo {
  pid: number;
  command: string;
  since: string;
}

/**
 * What an API token may do. `admin`: everything. `deploy`: read and deploy (create, update,
 * rollback, start, stop, restart, and the read-only verbs) on the deployments it selects: by name
 * (a trailing `*` matches a prefix) or by labels (every one must match; `class` is a label).
 */
export type TokenScope = { kind: 'admin' } | { kind: 'deploy'; deployments: string[]; labels: Record<string, string> };

/** An API token as stored: never the secret, only its SHA-256. */
export interface TokenRecord {
  /** Public part of the token (`depad_<id>_<secret>`), 12 hex digits. */
  id: string;
  /** Unique among tokens not revoked. */
  name: string;
  scope: TokenScope;
  /** SHA-256 of the secret part, hex. */
  hash: string;
  createdAt: string;
  revokedAt?: string;
}

/** What an agent's host offers the cluster (from its heartbeats; `--capacity` can declare less). */
export interface HostCapacity {
  cpus: number;
  memoryBytes: number;
  /** Free bytes on the file system of the agent's home. */
  diskBytes?: number;
  /** Host ports of its range that no deployment holds. */
  freePorts?: number;
}

/** One agent that joined the cluster, as the manager keeps it. */
export interface HostRecord {
  /** Unique in the cluster; the agent's client certificate's common name. */
  name: string;
  /** Where the manager reaches its API: `https://address:port`. */
  apiUrl: string;
  /** Its own address, which its proxy also listens on (for forwarding between hosts). */
  address: string;
  /** The proxy's HTTP port on that address. */
  httpPort: number;
  /** The agent's CA (PEM), pinned by the manager when it calls it. */
  agentCa: string;
  /** SHA-256 fingerprint of the client certificate the manager issued it at join: its heartbeats must present exactly that. */
  certFingerprint: string;
  labels: Record<string, string>;
  capacity: HostCapacity;
  /** `cordon` keeps deployments where they are and places no new one. */
  cordoned: boolean;
  joinedAt: string;
  lastSeen: string;
  /** Whether the agent reaches its host's engine, as its last heartbeat said (a host whose engine is down is `down`). */
  engine?: { state: 'up' | 'down'; since: string; error?: string };
  /** The agent's version and the deployments it reported last. */
  version?: string;
  deployments?: { name: string; id: string; labels: Record<string, string>; status: string; /** Its HTTP route hostnames (peer routes, cluster/peers.ts). */ hostnames?: string[] }[];
}

/** Where one deployment of the cluster runs, and what it reserves there. */
export interface PlacementRecord {
  /** The deployment's name: unique across the cluster. */
  name: string;
  /** Its ID on the host (set once the create succeeded; empty while it is under way). */
  id: string;
  host: string;
  labels: Record<string, string>;
  /** Its class label, for spreading. */
  class?: string;
  need: { cpus: number; memoryBytes: number };
  /** The HTTP hostnames its config routes at create: they count as taken until its host's heartbeats report its own. */
  hostnames?: string[];
  /** `creating` until the host answered; a placement left in it by a crash is removed. */
  state: 'creating' | 'placed';
  createdAt: string;
}

/** A one-time join token (only its hash is kept). */
export interface JoinTokenRecord {
  id: string;
  hash: string;
  createdAt: string;
  expiresAt: string;
  /** Set when an agent used it: it can never be used again. */
  usedBy?: string;
}
