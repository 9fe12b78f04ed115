/** The agent's restart bookkeeping and its desired-state rules (pure logic, no engine). */
import test from 'ava';
import { CrashLoops } from '../src/agent/crash-loop.ts';
import { decide } from '../src/agent/desired.ts';
import type { ContainerState } from '../src/engine/types.ts';
import type { StoredPlan } from '../src/deploy/root-dir.ts';
import type { DeploymentRecord } from '../src/store/records.ts';

test('crash loops: backoff doubles to its cap, a long run forgets earlier deaths, the limit gives up once, a forget starts afresh', (t) => {
  const loops = new CrashLoops({ limit: 4, firstBackoffMs: 1000, maxBackoffMs: 3000, resetAfterMs: 60_000 });
  t.deepEqual([1, 2, 3, 4].map((n) => loops.backoff(n)), [1000, 2000, 3000, 3000]);
  t.is(loops.waitBeforeStart('a', 0), 0, 'never died: start now');
  t.false(loops.died('a', 10_000, 9_000));
  t.is(loops.waitBeforeStart('a', 10_500), 500);
  t.false(loops.died('a', 20_000, 19_000));
  t.false(loops.died('a', 30_000, 29_000));
  t.is(loops.facts('a', 30_000)?.deaths, 3);
  t.false(loops.died('a', 200_000, 100_000), 'ran 100 s (over resetAfter): counting starts again');
  t.is(loops.facts('a', 200_000)?.deaths, 1);
  for (const at of [201_000, 202_000]) t.false(loops.died('a', at, at - 500));
  t.true(loops.died('a', 203_000, 202_500), 'the 4th death in a row gives up');
  t.false(loops.died('a', 204_000, 203_500), 'only once');
  t.is(loops.waitBeforeStart('a', 300_000), undefined, 'given up: never started by the agent');
  t.is(loops.facts('a', 300_000)?.state, 'given-up');
  t.false(loops.gaveUpBefore('a', 205_000), 'until the give-up is applied, a start is the engine\'s');
  loops.gaveUpApplied('a', 206_000);
  t.false(loops.gaveUpBefore('a', 205_999), 'a start before it was applied was the engine\'s');
  t.true(loops.gaveUpBefore('a', 206_001));
  loops.forget('a');
  t.is(loops.waitBeforeStart('a', 300_000), 0);
});

const record = (over: Partial<DeploymentRecord> = {}): DeploymentRecord => ({
  id: 'i', name: 'd', project: 'depad-d', createdAt: '', updatedAt: '', revision: 1, desired: 'running', phase: 'ready', rootDir: '/x', ports: [], volumes: [], instances: { db: 1, web: 1, job: 1 }, ...over,
});
const container = (service: string, restart = 'unless-stopped') => ({ name: `depad-d-${service}-1`, service, body: { HostConfig: { RestartPolicy: { Name: restart } } }, endpoints: [], dependsOn: {} });
const plan = (restartGiven = false): StoredPlan =>
  ({
    order: ['job', 'db', 'web'],
    containers: [container('job', 'no'), container('db', 'on-failure'), container('web')],
    services: [
      { name: 'job', oneShot: true },
      { name: 'db', ...(restartGiven ? { restartGiven: true } : {}) },
      { name: 'web' },
    ],
  }) as unknown as StoredPlan;
const state = (service: string, status: string, exitCode = 0): ContainerState =>
  ({ id: service, name: `depad-d-${service}-1`, image: 'i', imageId: 'i', status, running: status === 'running', exitCode, restartCount: 0, labels: {}, healthLog: [], ports: {}, networks: {}, restartPolicy: { name: 'no' } }) as ContainerState;

test('desired state: what to start and stop, in order, and what stays down', (t) => {
  const now = () => 0;
  const names = (d: ReturnType<typeof decide>) => ({ start: d.start.map((s) => `${s.service}:${s.reason}`), stop: d.stop.map((s) => s.service) });
  // Everything exited: db and web start in order; the one-shot job is left alone.
  t.deepEqual(names(decide(record(), plan(), [state('job', 'exited'), state('db', 'exited', 1), state('web', 'exited')], now)), { start: ['db:it exited (code 1)', 'web:it exited (code 0)'], stop: [] });
  // A container gone is created again; one the engine is restarting is left to it.
  t.deepEqual(names(decide(record(), plan(), [state('db', 'restarting')], now)), { start: ['web:its container is gone'], stop: [] });
  // The file's on-failure: a clean exit stays down while the agent watches; restored after a restart.
  t.deepEqual(names(decide(record(), plan(true), [state('db', 'exited', 0), state('web', 'running')], now)), { start: [], stop: [] });
  t.deepEqual(names(decide(record(), plan(true), [state('db', 'exited', 0), state('web', 'running')], now, true)), { start: ['db:it exited (code 0)'], stop: [] });
  // Backoff and give-up.
  const waiting = decide(record(), plan(), [state('db', 'exited', 1), state('web', 'exited', 1)], (n) => (n.includes('db') ? 1500 : undefined));
  t.deepEqual(names(waiting), { start: [], stop: [] });
  t.is(waiting.retryInMs, 1500);
  // Stopped deployment: running instances are stopped, dependants first; a service stopped on its own too.
  t.deepEqual(names(decide(record({ desired: 'stopped' }), plan(), [state('db', 'running'), state('web', 'running')], now)), { start: [], stop: ['web', 'db'] });
  t.deepEqual(names(decide(record({ stoppedServices: ['web'] }), plan(), [state('db', 'running'), state('web', 'running')], now)), { start: [], stop: ['web'] });
  // A deployment in the middle of an operation is not touched.
  t.deepEqual(names(decide(record({ phase: 'creating' }), plan(), [], now)), { start: [], stop: [] });
});

test('desired state: an instance that joins another one\'s namespaces is restarted when that one started after it', (t) => {
  const joinerPlan = {
    order: ['gate', 'web'],
    containers: [container('gate'), { ...container('web'), body: { HostConfig: { RestartPolicy: { Name: 'unless-stopped' }, NetworkMode: 'container:depad-d-gate-1' } } }],
    services: [{ name: 'gate' }, { name: 'web' }],
  } as unknown as StoredPlan;
  const at = (service: string, startedAt: string) => ({ ...state(service, 'running'), startedAt });
  const r = record({ instances: { gate: 1, web: 1 } });
  const later = decide(r, joinerPlan, [at('gate', '2026-12-01T10:00:05Z'), at('web', '2026-12-01T10:00:00Z')], () => 0);
  t.deepEqual(later.stop.map((s) => [s.service, s.restart]), [['web', true]], 'stopped to be started again, not counted as a death');
  t.deepEqual(later.start.map((s) => `${s.service}:${s.reason}`), ["web:depad-d-gate-1 started after it, and it shares depad-d-gate-1's namespaces"]);
  const earlier = decide(r, joinerPlan, [at('gate', '2026-12-01T10:00:00Z'), at('web', '2026-12-01T10:00:05Z')], () => 0);
  t.deepEqual([earlier.start.length, earlier.stop.length], [0, 0], 'joined after its owner started: left alone');
  // The owner seen stopped (a docker restart under way) is started now: the joiner is restarted after it,
  // in the same pass (it may be what answers the owner's health check: waiting for that first never ends).
  const ownerDown = decide(r, joinerPlan, [{ ...state('gate', 'exited'), startedAt: '2026-12-01T10:00:00Z' }, at('web', '2026-12-01T10:00:05Z')], () => 0);
  t.deepEqual(ownerDown.start.map((s) => `${s.service}:${s.reason}`), ['gate:it exited (code 0)', "web:depad-d-gate-1 is started again, and it shares depad-d-gate-1's namespaces"]);
  t.deepEqual(ownerDown.stop.map((s) => [s.service, s.restart]), [['web', true]]);
});
