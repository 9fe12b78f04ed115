/** Where a proxy keeps its files: its own module, so the CLI can find them without loading the proxy. */
import path from 'node:path';

/** Where a proxy keeps its files inside its state directory. */
export interface ProxyPaths {
  /** The saved route snapshot (`routes.json`). */
  snapshotFile: string;
  /** The control channel's unix socket (`control.sock`). */
  socketPath: string;
}

/** The proxy's file paths for `stateDir`. */
export function proxyPaths(stateDir: string): ProxyPaths {
  return { snapshotFile: path.join(stateDir, 'routes.json'), socketPath: path.join(stateDir, 'control.sock') };
}
