/** The records depad keeps in its LevelDB. Plain JSON; no secrets (env values stay in the root dir). */

/** A host port held by a deployment's service, kept until the deployment is destroyed. */
export interface PortAssignment {
  service: string;
  /** Container port. */
  target: number;
  protocol: 'tcp' | 'udp';
  /** Host port from the deployment's block(s). */
  host: number;
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
  /** `creating` and `destroying` are transient; a record left in them is recovered from the journal. */
  phase: 'creating' | 'ready' | 'destroying';
  rootDir: string;
  ports: PortAssignment[];
  /** Names of the engine volumes this deployment uses (some may predate it, kept by --keep-volumes). */
  volumes: string[];
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
}

/** Registry entry for one host port. */
export interface PortRecord extends PortAssignment {
  deploymentId: string;
}

/** Operations the journal knows how to finish or undo after a crash. */
export type JournalKind = 'create' | 'destroy';

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
  /** Volumes the create made (undo removes these, not volumes it reused). */
  createdVolumes?: string[];
  keepVolumes?: boolean;
}

/** Who holds the state database: written next to it by the process that has it open. */
export interface HolderInfo {
  pid: number;
  command: string;
  since: string;
}
