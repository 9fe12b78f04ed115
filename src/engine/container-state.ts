/**
 * A container's inspect document (the fields depad reads, as the Engine API names them) as a
 * ContainerState. Pure: engine.ts fetches the document.
 */
import type { ContainerState } from './types.ts';

/** The parts of an Engine API container inspect document that depad reads. */
export interface InspectDocument {
  Id: string;
  Name: string;
  Image: string;
  RestartCount: number;
  Config: { Labels?: Record<string, string> | null; Image: string };
  State: { Status: string; Running: boolean; ExitCode: number; StartedAt?: string; FinishedAt?: string; Error?: string; Health?: unknown };
  HostConfig: { RestartPolicy?: { Name?: string; MaximumRetryCount?: number } };
  NetworkSettings: { Ports?: Record<string, Array<{ HostPort: string }> | null> | null; Networks?: Record<string, { IPAddress: string }> | null };
}

/** The state depad keeps of an inspected container. */
export function containerStateOf(info: InspectDocument): ContainerState {
  const ports: Record<string, number[]> = {};
  for (const [key, bindings] of Object.entries(info.NetworkSettings.Ports ?? {})) {
    ports[key] = [...new Set((bindings ?? []).map((b) => Number(b.HostPort)))];
  }
  const networks: Record<string, string> = {};
  for (const [name, endpoint] of Object.entries(info.NetworkSettings.Networks ?? {})) networks[name] = endpoint.IPAddress;
  const health = info.State.Health as { Status?: string; Log?: Array<{ Output?: string }> } | undefined;
  const state: ContainerState = {
    id: info.Id,
    name: info.Name.replace(/^\//, ''),
    labels: info.Config.Labels ?? {},
    image: info.Config.Image,
    imageId: info.Image,
    status: info.State.Status,
    running: info.State.Running,
    exitCode: info.State.ExitCode,
    restartCount: info.RestartCount,
    restartPolicy: { name: info.HostConfig.RestartPolicy?.Name || 'no', ...(info.HostConfig.RestartPolicy?.MaximumRetryCount ? { maxRetries: info.HostConfig.RestartPolicy.MaximumRetryCount } : {}) },
    healthLog: (health?.Log ?? []).map((l) => (l.Output ?? '').trim()),
    ports,
    networks,
  };
  if (health?.Status === 'starting' || health?.Status === 'healthy' || health?.Status === 'unhealthy') state.health = health.Status;
  if (info.State.StartedAt && !info.State.StartedAt.startsWith('0001')) state.startedAt = info.State.StartedAt;
  if (info.State.FinishedAt && !info.State.FinishedAt.startsWith('0001')) state.finishedAt = info.State.FinishedAt;
  if (info.State.Error) state.error = info.State.Error;
  return state;
}
