/**
 * `depad service stop|start|restart|update|logs <deployment> <service>` against the real engine:
 * each acts on that one service, as the deployment verb with -s does. The harness removes the
 * deployment afterwards.
 */
import test from 'ava';
import path from 'node:path';
import { EXAMPLES, harness } from './helpers/harness.ts';

test('service verbs act on one service of a deployment', async (t) => {
  const h = await harness(t);
  const name = h.name('svc');
  t.is((await h.run(['create', '-n', name, '-f', path.join(EXAMPLES, 'clinic', 'depad.yml'), '-e', 'CLINIC=Test'])).code, 0);
  const state = async () =>
    Object.fromEntries(
      (JSON.parse((await h.run(['ps', name, '--json'])).stdout) as { service: string; state: string }[]).map((i) => [i.service, i.state]),
    );

  const stopped = await h.run(['service', 'stop', name, 'worker']);
  t.is(stopped.code, 0, stopped.stderr);
  const afterStop = await state();
  t.not(afterStop.worker, 'running');
  t.is(afterStop.web, 'running', 'the other services keep running');
  t.is((await h.run(['service', 'start', name, 'worker'])).code, 0);
  t.is((await state()).worker, 'running');
  t.is((await h.run(['--json', 'service', 'restart', name, 'worker'])).code, 0);

  const updated = await h.run(['service', 'update', name, 'web', '--image', 'depad-example/app:2']);
  t.is(updated.code, 0, updated.stderr);
  const history = JSON.parse((await h.run(['history', name, '--json'])).stdout) as { number: number; changed: string[]; images: Record<string, { ref: string }> }[];
  t.deepEqual(history.at(-1)?.changed, ['web']);
  t.is(history.at(-1)?.images.web?.ref, 'depad-example/app:2');
  t.is(history.at(-1)?.images.db?.ref, history[0]?.images.db?.ref, 'only that service changed');

  const logs = await h.run(['service', 'logs', name, 'worker', '--tail', '3']);
  t.is(logs.code, 0, logs.stderr);
  const lines = logs.stdout.split('\n').filter(Boolean);
  t.true(lines.length > 0, 'the worker logged something');
  t.true(lines.every((line) => line.startsWith('worker')), logs.stdout);
  const missing = await h.run(['service', 'stop', name, 'nosuch']);
  t.is(missing.code, 4);
  t.regex(missing.stderr, /nosuch/);
});
