/** How depad names what it makes on the engine. One place, so every module agrees. */
import { LABELS } from '../engine/types.ts';

/** Prefix of every engine object of a deployment. */
export function projectName(deploymentName: string): string {
  return `depad-${deploymentName}`;
}

/** Engine name of a deployment's network or volume declared as `key` in the config. */
export function scopedName(deploymentName: string, key: string): string {
  return `${projectName(deploymentName)}_${key}`;
}

/** Container name of a service's instance `n` (1 for the first). */
export function containerName(deploymentName: string, service: string, instance = 1): string {
  return `${projectName(deploymentName)}-${service}-${instance}`;
}

/** The instance number a container plan carries (its `depad.instance` label; 1 in plans without one). */
export function planInstance(c: { readonly body: { readonly Labels: Readonly<Record<string, string>> } }): number {
  return Number(c.body.Labels[LABELS.instance] ?? 1);
}

/** What knows a deployment's current instances: a record, a render identity, a routing state. */
export interface InstanceHolder {
  /** service → its newest instance number (the one current instance with one replica). */
  readonly instances?: Readonly<Record<string, number>>;
  /** service → the instance numbers of its current replicas, in replica order (absent: the one in `instances`). */
  readonly replicas?: Readonly<Record<string, readonly number[]>>;
}

/** The instance numbers of `service`'s current replicas (one, 1 by default, without `replicas`). */
export function currentInstances(holder: InstanceHolder, service: string): number[] {
  return [...(holder.replicas?.[service] ?? [holder.instances?.[service] ?? 1])];
}

/** Container name of the instance of `service` that `record` says is current (its first replica). */
export function currentInstanceName(record: { name: string } & InstanceHolder, service: string): string {
  return containerName(record.name, service, currentInstances(record, service)[0] ?? 1);
}

/** True when the container `name` is one of `service`'s current replicas in `record`. */
export function isCurrentInstance(record: { name: string } & InstanceHolder, service: string, name: string): boolean {
  return currentInstances(record, service).some((n) => containerName(record.name, service, n) === name);
}
