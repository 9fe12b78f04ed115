/** What the engine's stats answer means: CPU, memory and processes of one container, computed the way `docker stats` does. */

/** One sample of a container's use. */
export interface ContainerStats {
  /** Share of one CPU × 100 (200 = two CPUs busy), over the engine's sampling interval. */
  cpuPercent: number;
  /** Memory in use, without the inactive page cache (as `docker stats` shows it). */
  memoryBytes: number;
  /** The container's memory limit (the host's memory when it has none). */
  memoryLimitBytes: number;
  pids: number;
}

/** The parts of the Engine API's stats object this reads (cgroup v1 and v2). */
export interface RawStats {
  cpu_stats?: { cpu_usage?: { total_usage?: number; percpu_usage?: number[] }; system_cpu_usage?: number; online_cpus?: number };
  precpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number };
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
  pids_stats?: { current?: number };
}

/** The sample in `raw` (a one-shot stats answer, with its previous sample in `precpu_stats`). */
export function statsFrom(raw: RawStats): ContainerStats {
  const cpu = raw.cpu_stats ?? {};
  const pre = raw.precpu_stats ?? {};
  const cpuDelta = (cpu.cpu_usage?.total_usage ?? 0) - (pre.cpu_usage?.total_usage ?? 0);
  const systemDelta = (cpu.system_cpu_usage ?? 0) - (pre.system_cpu_usage ?? 0);
  const cpus = cpu.online_cpus ?? cpu.cpu_usage?.percpu_usage?.length ?? 1;
  const memory = raw.memory_stats ?? {};
  const cache = memory.stats?.inactive_file ?? memory.stats?.total_inactive_file ?? 0;
  const used = memory.usage ?? 0;
  return {
    cpuPercent: cpuDelta > 0 && systemDelta > 0 ? (cpuDelta / systemDelta) * cpus * 100 : 0,
    memoryBytes: used > cache ? used - cache : used,
    memoryLimitBytes: memory.limit ?? 0,
    pids: raw.pids_stats?.current ?? 0,
  };
}
