/**
 * The only module that talks to the Docker Engine (through dockerode). It carries out plans and
 * reports state; it decides nothing. Every engine failure leaves here as a DepadError.
 */
import { statsFrom } from './stats.ts';
import type { ContainerStats, RawStats } from './stats.ts';
import type Docker from 'dockerode';
import { DepadError } from '../errors.ts';
import { engineError, messageOf, statusOf } from './engine-errors.ts';
import { containerStateOf } from './container-state.ts';
import { readToEnd, type EngineStream } from './streams.ts';
import { LogDemuxer, type LogLine } from './logs.ts';
import { CONTAINER_EVENTS, EventLines, type ContainerEvent } from './events.ts';
import { LABELS } from './types.ts';
import { buildQuery, type BuildOptions } from './build-options.ts';
import { mapLimit } from '../serial.ts';
import type { ContainerPlan, ContainerState, EndpointPlan, EngineObject, NetworkPlan, VolumePlan } from './types.ts';

/**
 * Most container inspections in flight at once when listing (the health monitor lists every
 * container after each operation). Each one holds a socket to the engine, a read buffer and its
 * response until parsed: all 200 at once with 200 deployments made V8 keep tens of MB more heap
 * (bench/agent.ts). With 32, listing 200 containers took as long as all at once, side by side.
 */
const INSPECTS_IN_FLIGHT = 32;

/** Options for the engine connection. */
export interface EngineOptions {
  /** Engine address; default: DOCKER_HOST, else /var/run/docker.sock. */
  host?: string;
}

/** What `buildImage` builds (build-options.ts). */
export type { BuildOptions } from './build-options.ts';

/** Filters for listing depad's objects: label key → value, or `null` for "has the label" (all must match). */
export type LabelFilter = Record<string, string | null>;

/** A connection to the Docker Engine. */
export class Engine {
  #client: Promise<Docker> | undefined;
  readonly #host: string | undefined;
  readonly address: string;

  constructor(options: EngineOptions = {}) {
    this.#host = options.host ?? process.env.DOCKER_HOST;
    this.address = this.#host ?? 'unix:///var/run/docker.sock';
  }

  /** dockerode, loaded on first use (it takes ~0.1 s to load; --help and config errors never need it). */
  #docker(): Promise<Docker> {
    this.#client ??= import('dockerode').then(({ default: Dockerode }) => {
      const host = this.#host;
      return host?.startsWith('unix://') ? new Dockerode({ socketPath: host.slice('unix://'.length) }) : new Dockerode();
    });
    return this.#client;
  }

  /**
   * Fails with DEPAD_ENGINE_UNAVAILABLE unless the engine answers within `timeoutMs`. An engine that
   * is not there fails at once (no socket, refused); the wait is for a busy one (a loaded host's
   * dockerd can take seconds to answer), so the default is generous.
   */
  async ping(timeoutMs = 15_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error('no answer'), { code: 'ETIMEDOUT' })), timeoutMs);
    });
    try {
      await Promise.race([(await this.#docker()).ping(), timeout]);
    } catch (error) {
      throw this.#wrap(error, 'ping the engine');
    } finally {
      clearTimeout(timer);
    }
  }

  /** The engine's version and API version (`depad version`); fails with DEPAD_ENGINE_UNAVAILABLE unless it answers within `timeoutMs`. */
  async version(timeoutMs = 5000): Promise<{ version: string; apiVersion: string }> {
    await this.ping(timeoutMs);
    try {
      const v = await (await this.#docker()).version();
      return { version: v.Version, apiVersion: v.ApiVersion };
    } catch (error) {
      throw this.#wrap(error, 'ask the engine its version');
    }
  }

  /** The image's ID, or undefined when the image is not on this host. */
  async imageId(ref: string): Promise<string | undefined> {
    try {
      const info = await (await this.#docker()).getImage(ref).inspect();
      return info.Id;
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw this.#wrap(error, `inspect image ${ref}`);
    }
  }

  /** Pulls an image from its registry. */
  async pullImage(ref: string): Promise<void> {
    try {
      const docker = await this.#docker();
      const stream = (await docker.pull(ref)) as NodeJS.ReadableStream;
      await new Promise<void>((resolve, reject) => {
        docker.modem.followProgress(stream, (err: Error | null, output: Array<{ error?: string }>) => {
          const failed = output?.find((o) => o.error);
          if (err) reject(err);
          else if (failed) reject(new Error(failed.error));
          else resolve();
        });
      });
    } catch (error) {
      throw this.#wrap(error, `pull image ${ref}`);
    }
  }

  /**
   * Builds an image from `context` (a tar archive) with the classic builder; `onLine` gets each
   * line of the build's output. Returns the image's ID. A failing build (a RUN that exits non-zero,
   * a missing base image) throws DEPAD_IMAGE_BUILD_FAILED with the builder's message; the caller
   * adds the log's last lines.
   */
  async buildImage(context: Buffer, options: BuildOptions, onLine: (line: string) => void): Promise<string> {
    const query = buildQuery(options);
    let id: string | undefined;
    let failure: string | undefined;
    try {
      const docker = await this.#docker();
      const stream = (await docker.buildImage(context as unknown as NodeJS.ReadableStream, query)) as NodeJS.ReadableStream;
      await new Promise<void>((resolve, reject) => {
        docker.modem.followProgress(
          stream,
          (err: Error | null) => (err ? reject(err) : resolve()),
          (event: { stream?: string; error?: string; aux?: { ID?: string } }) => {
            if (event.aux?.ID) id = event.aux.ID;
            if (event.error) failure = event.error.trim();
            for (const line of (event.stream ?? '').split('\n')) if (line.trim() !== '') onLine(line.replace(/\s+$/, ''));
          },
        );
      });
    } catch (error) {
      if (statusOf(error) === 400 || statusOf(error) === 500) failure = messageOf(error);
      else throw this.#wrap(error, 'build an image');
    }
    if (failure !== undefined || id === undefined) {
      throw new DepadError('DEPAD_IMAGE_BUILD_FAILED', failure ?? 'the build ended without an image', { details: { builderMessage: failure ?? null } });
    }
    return id;
  }

  /** Tags image `id` as `ref` (moving the tag when another image has it). */
  async tagImage(id: string, ref: string): Promise<void> {
    const at = ref.lastIndexOf(':');
    const slash = ref.lastIndexOf('/');
    const [repo, tag] = at > slash ? [ref.slice(0, at), ref.slice(at + 1)] : [ref, 'latest'];
    try {
      await (await this.#docker()).getImage(id).tag({ repo, tag });
    } catch (error) {
      throw this.#wrap(error, `tag image ${id.slice(0, 19)} as ${ref}`);
    }
  }

  /** Images with the labels: ID and tags. */
  async listImages(labels: LabelFilter): Promise<{ id: string; tags: string[]; labels: Record<string, string> }[]> {
    try {
      const list = await (await this.#docker()).listImages({ filters: { label: labelFilters(labels) } });
      return list.map((i) => ({ id: i.Id, tags: (i.RepoTags ?? []).filter((t) => t !== '<none>:<none>'), labels: i.Labels ?? {} }));
    } catch (error) {
      throw this.#wrap(error, 'list images');
    }
  }

  /** Removes an image (a tag, or an ID); false when a container still uses it or it is gone. */
  async removeImage(ref: string): Promise<boolean> {
    try {
      await (await this.#docker()).getImage(ref).remove({ noprune: false });
      return true;
    } catch (error) {
      if (statusOf(error) === 404 || statusOf(error) === 409) return false;
      throw this.#wrap(error, `remove image ${ref}`);
    }
  }

  /** depad's networks matching the labels (exact name match when `name` is given). */
  async listNetworks(labels: LabelFilter, name?: string): Promise<EngineObject[]> {
    try {
      const filters: Record<string, string[]> = { label: labelFilters(labels) };
      if (name) filters.name = [name];
      const list = await (await this.#docker()).listNetworks({ filters });
      return list
        .filter((n) => name === undefined || n.Name === name)
        .map((n) => ({ name: n.Name, id: n.Id, labels: n.Labels ?? {} }));
    } catch (error) {
      throw this.#wrap(error, 'list networks');
    }
  }

  /** The IPv4 subnets of every network on the engine (depad's or not), for subnet allocation to avoid. */
  async networkSubnets(): Promise<string[]> {
    try {
      const list = await (await this.#docker()).listNetworks();
      return list.flatMap((n) => (n.IPAM?.Config ?? []).flatMap((c) => (typeof c.Subnet === 'string' && !c.Subnet.includes(':') ? [c.Subnet] : [])));
    } catch (error) {
      throw this.#wrap(error, 'list networks');
    }
  }

  /** Creates a network; fails with DEPAD_ENGINE_CONFLICT if one of that name exists. */
  async createNetwork(plan: NetworkPlan): Promise<string> {
    if ((await this.listNetworks({}, plan.name)).length > 0) {
      throw new DepadError('DEPAD_ENGINE_CONFLICT', `a network named ${plan.name} already exists on the engine`, {
        hint: `remove it (docker network rm ${plan.name}) or choose another deployment name`,
      });
    }
    try {
      const network = await (await this.#docker()).createNetwork({
        Name: plan.name,
        Driver: plan.driver,
        Internal: plan.internal,
        Options: plan.options,
        Labels: plan.labels,
        CheckDuplicate: true,
        ...(plan.ipam
          ? {
              IPAM: {
                Driver: 'default',
                Config: [{ Subnet: plan.ipam.subnet, ...(plan.ipam.ipRange ? { IPRange: plan.ipam.ipRange } : {}), ...(plan.ipam.gateway ? { Gateway: plan.ipam.gateway } : {}), ...(Object.keys(plan.ipam.auxAddresses).length ? { AuxiliaryAddresses: plan.ipam.auxAddresses } : {}) }],
                Options: plan.ipam.options,
              },
            }
          : {}),
      });
      return network.id;
    } catch (error) {
      throw this.#wrap(error, `create network ${plan.name}`);
    }
  }

  /** Removes a network; a missing one is not an error. */
  async removeNetwork(idOrName: string): Promise<void> {
    try {
      await (await this.#docker()).getNetwork(idOrName).remove();
    } catch (error) {
      if (statusOf(error) !== 404) throw this.#wrap(error, `remove network ${idOrName}`);
    }
  }

  /** depad's volumes matching the labels. */
  async listVolumes(labels: LabelFilter): Promise<EngineObject[]> {
    try {
      const { Volumes } = await (await this.#docker()).listVolumes({ filters: { label: labelFilters(labels) } });
      return (Volumes ?? []).map((v) => ({ name: v.Name, id: v.Name, labels: v.Labels ?? {} }));
    } catch (error) {
      throw this.#wrap(error, 'list volumes');
    }
  }

  /** The labels of a volume, or undefined when there is no such volume. */
  async volumeLabels(name: string): Promise<Record<string, string> | undefined> {
    try {
      const info = await (await this.#docker()).getVolume(name).inspect();
      return info.Labels ?? {};
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw this.#wrap(error, `inspect volume ${name}`);
    }
  }

  /**
   * The disk use of every volume, by name (bytes; -1 where the engine did not measure it). The
   * engine walks every volume's files to answer, so callers ask only when the user wants sizes.
   */
  async volumeSizes(): Promise<Map<string, number>> {
    try {
      const df = (await (await this.#docker()).df()) as { Volumes?: { Name: string; UsageData?: { Size?: number } | null }[] | null };
      return new Map((df.Volumes ?? []).map((v) => [v.Name, v.UsageData?.Size ?? -1]));
    } catch (error) {
      throw this.#wrap(error, 'measure volumes');
    }
  }

  /** Creates a named volume. */
  async createVolume(plan: VolumePlan): Promise<void> {
    try {
      await (await this.#docker()).createVolume({ Name: plan.name, Driver: plan.driver, DriverOpts: plan.options, Labels: plan.labels });
    } catch (error) {
      throw this.#wrap(error, `create volume ${plan.name}`);
    }
  }

  /** Removes a volume; a missing one is not an error. */
  async removeVolume(name: string): Promise<void> {
    try {
      await (await this.#docker()).getVolume(name).remove();
    } catch (error) {
      if (statusOf(error) !== 404) throw this.#wrap(error, `remove volume ${name}`);
    }
  }

  /** Creates a container and connects it to all its networks (with aliases); returns its ID. */
  async createContainer(plan: ContainerPlan): Promise<string> {
    const [first, ...rest] = plan.endpoints;
    try {
      const container = await (await this.#docker()).createContainer({
        name: plan.name,
        ...(plan.platform === undefined ? {} : { platform: plan.platform }),
        ...plan.body,
        NetworkingConfig: first ? { EndpointsConfig: { [first.network]: endpointConfig(first) } } : undefined,
      } as Docker.ContainerCreateOptions);
      for (const endpoint of rest) {
        await (await this.#docker()).getNetwork(endpoint.network).connect({
          Container: container.id,
          EndpointConfig: endpointConfig(endpoint),
        });
      }
      return container.id;
    } catch (error) {
      throw this.#wrap(error, `create container ${plan.name}`);
    }
  }

  /** Starts a container (already running is fine). */
  async startContainer(id: string): Promise<void> {
    try {
      await (await this.#docker()).getContainer(id).start();
    } catch (error) {
      if (statusOf(error) !== 304) throw this.#wrap(error, `start container ${id.slice(0, 12)}`);
    }
  }

  /** Sets a container's restart policy (`no` when the agent gives up on a crash loop; the plan's when it runs again). */
  async setRestartPolicy(id: string, policy: ContainerState['restartPolicy']): Promise<void> {
    try {
      await (await this.#docker()).getContainer(id).update({ RestartPolicy: { Name: policy.name, ...(policy.maxRetries ? { MaximumRetryCount: policy.maxRetries } : {}) } });
    } catch (error) {
      throw this.#wrap(error, `set the restart policy of container ${id.slice(0, 12)}`);
    }
  }

  /** Stops a container with its stop signal, killing it after `timeoutSec` (already stopped is fine). */
  async stopContainer(id: string, timeoutSec?: number): Promise<void> {
    try {
      await (await this.#docker()).getContainer(id).stop(timeoutSec === undefined ? {} : { t: timeoutSec });
    } catch (error) {
      const status = statusOf(error);
      if (status !== 304 && status !== 404) throw this.#wrap(error, `stop container ${id.slice(0, 12)}`);
    }
  }

  /** Removes a container (forcefully) with its anonymous volumes; a missing one is not an error. */
  async removeContainer(id: string): Promise<void> {
    try {
      await (await this.#docker()).getContainer(id).remove({ force: true, v: true });
    } catch (error) {
      const status = statusOf(error);
      if (status !== 404 && !(status === 409 && /already in progress/.test(messageOf(error)))) {
        throw this.#wrap(error, `remove container ${id.slice(0, 12)}`);
      }
    }
  }

  /** depad's containers matching the labels, stopped ones included. */
  async listContainers(labels: LabelFilter): Promise<ContainerState[]> {
    let ids: string[];
    try {
      const list = await (await this.#docker()).listContainers({ all: true, filters: { label: labelFilters(labels) } });
      ids = list.map((c) => c.Id);
    } catch (error) {
      throw this.#wrap(error, 'list containers');
    }
    const states = await mapLimit(ids, INSPECTS_IN_FLIGHT, (id) => this.inspectContainer(id));
    return states.filter((s): s is ContainerState => s !== undefined).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** One sample of a container's CPU, memory and processes; undefined when it is gone. */
  async containerStats(id: string): Promise<ContainerStats | undefined> {
    try {
      return statsFrom((await (await this.#docker()).getContainer(id).stats({ stream: false })) as RawStats);
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw this.#wrap(error, `read the stats of container ${id.slice(0, 12)}`);
    }
  }

  /** A container's state, or undefined when it no longer exists. */
  async inspectContainer(id: string): Promise<ContainerState | undefined> {
    let info: Docker.ContainerInspectInfo;
    try {
      info = await (await this.#docker()).getContainer(id).inspect();
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw this.#wrap(error, `inspect container ${id.slice(0, 12)}`);
    }
    return containerStateOf(info);
  }

  /**
   * Streams a container's logs line by line to `onLine` until they end (or, with `follow`,
   * until `signal` aborts); `since` keeps the lines from that time on.
   */
  async logs(
    id: string,
    options: { follow: boolean; tail?: number; timestamps?: boolean; signal?: AbortSignal; /** Only lines from then (Unix seconds, fractions kept). */ since?: number },
    onLine: (line: LogLine) => void,
  ): Promise<void> {
    const container = (await this.#docker()).getContainer(id);
    const demuxer = new LogDemuxer(onLine);
    try {
      const common = { stdout: true, stderr: true, timestamps: options.timestamps ?? false, tail: options.tail ?? 'all', ...(options.since !== undefined ? { since: options.since.toFixed(6) } : {}) };
      if (!options.follow) {
        const buffer = (await container.logs({ ...common, follow: false } as Docker.ContainerLogsOptions & { follow: false })) as unknown as Buffer;
        demuxer.push(buffer);
        demuxer.end();
        return;
      }
      const stream = (await container.logs({ ...common, follow: true } as Docker.ContainerLogsOptions & { follow: true })) as unknown as EngineStream;
      await readToEnd(stream, (chunk) => demuxer.push(chunk), options.signal ? { signal: options.signal } : {});
      if (!options.signal?.aborted) demuxer.end();
    } catch (error) {
      throw this.#wrap(error, `read logs of ${id.slice(0, 12)}`);
    }
  }

  /**
   * Container events of depad's objects (start, die, oom, health_status) as they happen, until
   * `signal` aborts or the stream breaks. `onEvent` gets each parsed event (see events.ts);
   * `onConnected` is called once the engine has begun the stream (events from then on are not missed).
   */
  async containerEvents(onEvent: (event: ContainerEvent) => void, signal: AbortSignal, onConnected: () => void = () => {}): Promise<void> {
    const docker = await this.#docker();
    let stream: EngineStream;
    try {
      stream = (await docker.getEvents({ filters: { type: ['container'], label: [LABELS.deploymentId], event: [...CONTAINER_EVENTS] } })) as unknown as EngineStream;
    } catch (error) {
      throw this.#wrap(error, 'watch engine events');
    }
    const lines = new EventLines(onEvent);
    onConnected();
    await readToEnd(stream, (chunk) => lines.push(chunk), { signal, errors: 'end' });
  }

  /** Waits until a container stops; resolves with its exit code. */
  async waitContainer(id: string): Promise<number> {
    try {
      const result = (await (await this.#docker()).getContainer(id).wait()) as { StatusCode?: number };
      return result.StatusCode ?? -1;
    } catch (error) {
      throw this.#wrap(error, `wait for container ${id.slice(0, 12)}`);
    }
  }

  /** Runs a command in a running container and collects its output and exit code. */
  async exec(id: string, cmd: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
    try {
      const exec = await (await this.#docker()).getContainer(id).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
      const stream = await exec.start({ hijack: true, stdin: false });
      const out: string[] = [];
      const err: string[] = [];
      const demuxer = new LogDemuxer((line) => (line.stream === 'stdout' ? out : err).push(line.text));
      await readToEnd(stream, (chunk) => demuxer.push(chunk));
      demuxer.end();
      const info = await exec.inspect();
      return { exitCode: info.ExitCode ?? -1, stdout: out.join('\n'), stderr: err.join('\n') };
    } catch (error) {
      throw this.#wrap(error, `exec in ${id.slice(0, 12)}`);
    }
  }

  /** Turns a dockerode failure into a DepadError that says what depad was doing (engine-errors.ts). */
  #wrap(error: unknown, doing: string): DepadError {
    return engineError(error, doing, this.address);
  }
}

function labelFilters(labels: LabelFilter): string[] {
  return Object.entries(labels).map(([k, v]) => (v === null ? k : `${k}=${v}`));
}

/** An endpoint's create/connect body: its aliases, and its fixed address when it has one. */
function endpointConfig(e: EndpointPlan): { Aliases: string[]; IPAMConfig?: { IPv4Address: string } } {
  return e.ipv4Address === undefined ? { Aliases: e.aliases } : { Aliases: e.aliases, IPAMConfig: { IPv4Address: e.ipv4Address } };
}
