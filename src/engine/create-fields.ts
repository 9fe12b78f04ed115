/**
 * The optional Engine API (1.41) container-create fields that compose service keys map onto
 * (`hostname`, `shm_size`, `ulimits`, `logging`…): read by src/config/service-engine.ts, merged
 * into the container body by render in one place. Field names are the Engine API's own.
 */

/** Top-level fields of the create body. */
export interface ContainerFields {
  Hostname?: string;
  Domainname?: string;
  Tty?: boolean;
  OpenStdin?: boolean;
  MacAddress?: string;
}

/** A device path with a rate or weight (`blkio_config`). */
export interface BlkioDevice {
  Path: string;
  Rate?: number;
  Weight?: number;
}

/** `HostConfig` fields. */
export interface HostConfigFields {
  Init?: boolean;
  ReadonlyRootfs?: boolean;
  ShmSize?: number;
  Ulimits?: Array<{ Name: string; Soft: number; Hard: number }>;
  Sysctls?: Record<string, string>;
  MemorySwap?: number;
  MemoryReservation?: number;
  MemorySwappiness?: number;
  CpuShares?: number;
  CpuQuota?: number;
  CpuPeriod?: number;
  CpuRealtimePeriod?: number;
  CpuRealtimeRuntime?: number;
  CpusetCpus?: string;
  CpusetMems?: string;
  OomScoreAdj?: number;
  OomKillDisable?: boolean;
  LogConfig?: { Type: string; Config: Record<string, string> };
  Dns?: string[];
  DnsSearch?: string[];
  DnsOptions?: string[];
  GroupAdd?: string[];
  StorageOpt?: Record<string, string>;
  SecurityOpt?: string[];
  IpcMode?: string;
  /** Host access the host's policy allowed (src/config/host-access.ts). */
  Privileged?: boolean;
  Devices?: Array<{ PathOnHost: string; PathInContainer: string; CgroupPermissions: string }>;
  PidMode?: string;
  UsernsMode?: string;
  CgroupnsMode?: string;
  Runtime?: string;
  BlkioWeight?: number;
  BlkioWeightDevice?: Array<{ Path: string; Weight: number }>;
  BlkioDeviceReadBps?: Array<{ Path: string; Rate: number }>;
  BlkioDeviceWriteBps?: Array<{ Path: string; Rate: number }>;
  BlkioDeviceReadIOps?: Array<{ Path: string; Rate: number }>;
  BlkioDeviceWriteIOps?: Array<{ Path: string; Rate: number }>;
  /** `none` for `network_mode: none` (no network at all); otherwise render's own. */
  NetworkMode?: string;
  /** `-v`-style binds, for mounts whose options only the Binds syntax carries (SELinux `z`/`Z`). */
  Binds?: string[];
}
