/** lab-engine.ts for ava tests: a lab engine removed in t.teardown, pass or fail. */
import type { ExecutionContext } from 'ava';
import { startLabEngine, type LabEngine, type LabEngineOptions } from './lab-engine.ts';

/** Starts a lab engine for `t` (see startLabEngine); `t.teardown` removes it and everything it made. */
export async function labEngine(t: ExecutionContext, options: LabEngineOptions = {}): Promise<LabEngine> {
  const lab = await startLabEngine(options);
  t.teardown(() => lab.remove());
  return lab;
}
