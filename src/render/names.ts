/** How depad names what it makes on the engine. One place, so every module agrees. */

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

/** Container name of the instance of `service` that `record` says is current. */
export function currentInstanceName(record: { name: string; instances: Readonly<Record<string, number>> }, service: string): string {
  return containerName(record.name, service, record.instances[service] ?? 1);
}
