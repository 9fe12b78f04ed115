/**
 * Host ports for deployments: the port range and its blocks, the allocator that picks a new
 * deployment's ports from the persisted cursor, and the real host probe.
 */
export { DEFAULT_PORT_RANGE, assertBlockStart, blockCount, blockOf, cursorIn, describeRange, nextBlock, portRangeFromEnv, validatePortRange } from './range.ts';
export type { PortRange } from './range.ts';
export { MAX_PROBES_IN_FLIGHT, allocatePorts } from './allocator.ts';
export type { AllocateRequest, Allocation } from './allocator.ts';
export { isPortOpenOnHost } from './probe.ts';
