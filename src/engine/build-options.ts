/** The Engine API's build parameters (`POST /build`, classic builder), as `Engine.buildImage` sends them. */

/** What `Engine.buildImage` builds. */
export interface BuildOptions {
  /** Every tag the image gets. */
  tags: string[];
  /** The Dockerfile's path inside the context archive. */
  dockerfile: string;
  args: Readonly<Record<string, string>>;
  labels: Readonly<Record<string, string>>;
  target?: string;
  network?: string;
  shmSizeBytes?: number;
  /** `host:ip` entries. */
  extraHosts: readonly string[];
  cacheFrom: readonly string[];
  noCache: boolean;
  pull: boolean;
  platform?: string;
}

/** The query of `POST /build` for `options` (objects are sent as JSON, arrays as repeated parameters). */
export function buildQuery(options: BuildOptions): Record<string, unknown> {
  const query: Record<string, unknown> = { t: options.tags, dockerfile: options.dockerfile, rm: true, forcerm: true, nocache: options.noCache, pull: options.pull };
  if (Object.keys(options.args).length) query.buildargs = options.args;
  if (Object.keys(options.labels).length) query.labels = options.labels;
  if (options.target) query.target = options.target;
  if (options.network) query.networkmode = options.network;
  if (options.shmSizeBytes !== undefined) query.shmsize = options.shmSizeBytes;
  if (options.extraHosts.length) query.extrahosts = [...options.extraHosts]; // repeated: one host:ip each
  if (options.cacheFrom.length) query.cachefrom = options.cacheFrom;
  if (options.platform) query.platform = options.platform;
  return query;
}
