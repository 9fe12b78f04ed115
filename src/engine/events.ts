/** Engine container events, parsed from the JSON lines of the events stream. */
import { LABELS } from './types.ts';

/** The container events the agent watches (the ones that change what `ContainerState` says). */
export const CONTAINER_EVENTS = ['create', 'start', 'die', 'oom', 'health_status', 'destroy', 'pause', 'unpause', 'rename', 'update'] as const;

/** One container event of a depad object. */
export interface ContainerEvent {
  action: string;
  containerId: string;
  /** Container name, deployment ID and service from its labels. */
  name: string;
  deploymentId: string;
  service: string;
  /** For `die`: the exit code. */
  exitCode?: number;
  /** When it happened (ms since epoch). */
  time: number;
}

interface RawEvent {
  Action?: string;
  status?: string;
  id?: string;
  time?: number;
  timeNano?: number;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}

/** Splits the stream into lines and parses each into a ContainerEvent (lines it cannot read are skipped). */
export class EventLines {
  #buf = '';
  readonly #onEvent: (event: ContainerEvent) => void;

  constructor(onEvent: (event: ContainerEvent) => void) {
    this.#onEvent = onEvent;
  }

  /** Feeds bytes from the stream. */
  push(chunk: Buffer): void {
    this.#buf += chunk.toString('utf8');
    for (let nl = this.#buf.indexOf('\n'); nl >= 0; nl = this.#buf.indexOf('\n')) {
      const line = this.#buf.slice(0, nl).trim();
      this.#buf = this.#buf.slice(nl + 1);
      if (line === '') continue;
      try {
        const event = parseEvent(JSON.parse(line) as RawEvent);
        if (event) this.#onEvent(event);
      } catch {
        // not JSON: skipped
      }
    }
  }
}

/** A ContainerEvent from the engine's JSON, or undefined when it is not one of depad's containers. */
export function parseEvent(raw: RawEvent): ContainerEvent | undefined {
  const attrs = raw.Actor?.Attributes ?? {};
  const deploymentId = attrs[LABELS.deploymentId];
  const action = (raw.Action ?? raw.status ?? '').split(':')[0] ?? '';
  if (deploymentId === undefined || action === '') return undefined;
  const exit = attrs.exitCode === undefined ? undefined : Number(attrs.exitCode);
  return {
    action: raw.Action?.startsWith('health_status') ? raw.Action : action,
    containerId: raw.Actor?.ID ?? raw.id ?? '',
    name: attrs.name ?? '',
    deploymentId,
    service: attrs[LABELS.service] ?? '',
    ...(exit === undefined || Number.isNaN(exit) ? {} : { exitCode: exit }),
    time: raw.timeNano ? Math.floor(raw.timeNano / 1e6) : (raw.time ?? 0) * 1000,
  };
}
