/**
 * Deployment files: reading, interpolating and validating a docker-compose-format config into
 * a frozen `DeploymentSpec`, plus `--env` / `.env` variable parsing.
 */
export { parseEnvAssignments, parseEnvText, readEnvFile } from './env.ts';
export type { EnvTextResult } from './env.ts';
export { interpolate } from './interpolate.ts';
export type { InterpolationResult } from './interpolate.ts';
export { loadConfig } from './load.ts';
export { readReferencedFiles } from './compose-files.ts';
export { withImages, withReplicas } from './override.ts';
export type { LoadConfigOptions } from './load.ts';
export type { ConfigWarning } from './nodes.ts';
export { analyzeConfig, finishConfig, parseConfig } from './parse.ts';
export type { ConfigDraft, ConfigInputs, ParseConfigOptions } from './parse.ts';
export type * from './spec.ts';
