/**
 * Commands over many deployments by label selector, against the real engine: six deployments of
 * two classes; `update -l` rolls through the selected class only, one at a time, and stops at an
 * injected failure (a health check the new image fails): that deployment is rolled back and
 * still serves the old version, the rest of the class is skipped, the other class untouched.
 * `--dry-run` changes nothing; `stop/start -l` and `ls -l` pick the same way. The harness
 * removes everything afterwards.
 */
import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { rolling } from '../src/deploy/bulk.ts';
import { EXAMPLES, harness, httpGet } from './helpers/harness.ts';
import type { Harness } from './helpers/harness.ts';

interface Item { deployment: string; from: string; to: string; result: string; error?: string }

async function inspect(h: Harness, name: string): Promise<{ revision: number; status: string; ports: { host: number; target: number; role: string }[] }> {
  const result = await h.run(['inspect', name, '--json']);
  return JSON.parse(result.stdout);
}

test('rolling: order, the limit, stop after the first failure (pure)', async (t) => {
  let running = 0;
  let peak = 0;
  const seen: number[] = [];
  const results = await rolling([1, 2, 3, 4, 5, 6], 2, async (n) => {
    running++;
    peak = Math.max(peak, running);
    seen.push(n);
    await new Promise((resolve) => setTimeout(resolve, 20));
    running--;
    if (n === 3) throw new Error('three');
    return n * 10;
  });
  t.is(peak, 2);
  t.deepEqual(results.map((r) => r.outcome), ['done', 'done', 'failed', 'done', 'skipped', 'skipped'], 'the one in flight (4) finishes; nothing new starts');
  t.deepEqual(seen, [1, 2, 3, 4]);
  t.is(results[0]?.value, 10);
});

test('update -l rolls through one class, stops at the failure, rolls it back; rollback/stop/start/ls -l', async (t) => {
  const h = await harness(t);
  const hello = path.join(EXAMPLES, 'hello', 'depad.yml');
  // A health check only version 1 passes: the injected failure.
  const v1only = path.join(h.dir, 'v1only.yml');
  await fs.writeFile(v1only, (await fs.readFile(hello, 'utf8')).replace(/test: \[.*\]/, 'test: ["CMD-SHELL", "grep -qx 1 /app/VERSION"]').replace('retries: 5', 'retries: 2'));
  const a = h.name('a');
  const b = h.name('b');
  const names = { a: [1, 2, 3, 4].map((i) => h.name(`a${i}`)), b: [1, 2].map((i) => h.name(`b${i}`)) };
  for (const [cls, list] of [[a, names.a], [b, names.b]] as const) {
    for (const name of list) {
      const wave = name === names.a[0] || name === names.a[1] ? ['--label', `wave=${a}`] : [];
      const created = await h.run(['create', '-n', name, '-f', name === names.a[2] ? v1only : hello, '--class', cls, ...wave]);
      t.is(created.code, 0, created.stderr);
    }
  }
  const image = ['-s', 'web', '--image', 'depad-example/app:2'];

  const dry = await h.run(['update', '-l', `class=${a}`, ...image, '--dry-run', '--json']);
  t.is(dry.code, 0, dry.stderr);
  const planned = (JSON.parse(dry.stdout) as { items: Item[] }).items;
  t.deepEqual(planned.map((i) => [i.deployment, i.from, i.to, i.result]), names.a.map((n) => [n, 'depad-example/app:1', 'depad-example/app:2', 'would update']));
  for (const name of names.a) t.is((await inspect(h, name)).revision, 1, 'a dry run changes nothing');

  const both = await h.run(['update', names.a[0] as string, '-l', `class=${a}`, ...image]);
  t.is(both.code, 2);
  t.regex(both.stderr, /either a deployment .* or -l, not both/);
  const none = await h.run(['update', '-l', 'class=nobody-has-this', ...image]);
  t.is(none.code, 4);
  t.regex(none.stderr, /no deployment has the labels class=nobody-has-this/);

  const rolled = await h.run(['update', '-l', `class=${a}`, ...image, '--max-parallel', '1', '--json']);
  t.is(rolled.code, 10, rolled.stderr);
  t.regex(rolled.stderr, new RegExp(`update stopped at ${names.a[2]}`));
  const items = (JSON.parse(rolled.stdout) as { items: Item[]; ok: boolean }).items;
  t.deepEqual(items.map((i) => [i.deployment, i.result]), [[names.a[0], 'updated'], [names.a[1], 'updated'], [names.a[2], 'failed'], [names.a[3], 'skipped']]);
  t.is(items[0]?.to, 'depad-example/app:2');
  t.is(items[2]?.to, 'depad-example/app:2', 'a failed row names the target it did not reach');
  t.is(items[3]?.to, 'depad-example/app:2');
  t.is((await inspect(h, names.a[0] as string)).revision, 2);
  const failed = await inspect(h, names.a[2] as string);
  t.is(failed.revision, 1, 'the failed deployment was rolled back');
  t.is(failed.status, 'running');
  const port = failed.ports.find((p) => p.target === 8080 && p.role === 'published')?.host as number;
  t.regex((await httpGet(port, '/cgi-bin/info')).body, /"version":"1"/, 'and still serves the old version');
  t.is((await inspect(h, names.a[3] as string)).revision, 1, 'skipped after the failure');
  for (const name of names.b) t.is((await inspect(h, name)).revision, 1, 'the other class is untouched');

  // Rollback by selector: refused when one selected deployment has nothing to go back to; done for the first wave.
  const noPrevious = await h.run(['rollback', '-l', `class=${a}`]);
  t.is(noPrevious.code, 4, noPrevious.stderr);
  t.regex(noPrevious.stderr, /has no revision before 1; nothing was rolled back/);
  const dryBack = await h.run(['rollback', '-l', `wave=${a}`, '--dry-run', '--json']);
  t.is(dryBack.code, 0, dryBack.stderr);
  t.deepEqual((JSON.parse(dryBack.stdout) as { items: Item[] }).items.map((i) => [i.deployment, i.result, i.to]), [[names.a[0], 'would update', 'rev 3 (= rev 1)'], [names.a[1], 'would update', 'rev 3 (= rev 1)']]);
  t.is((await inspect(h, names.a[0] as string)).revision, 2, 'a dry rollback changes nothing');
  const back = await h.run(['rollback', '-l', `wave=${a}`, '--max-parallel', '2', '--json']);
  t.is(back.code, 0, back.stderr);
  t.deepEqual((JSON.parse(back.stdout) as { items: Item[] }).items.map((i) => [i.deployment, i.result, i.to]), [[names.a[0], 'updated', 'rev 3 (= rev 1)'], [names.a[1], 'updated', 'rev 3 (= rev 1)']]);

  const stopped = await h.run(['stop', '-l', `class=${b}`, '--max-parallel', '2', '--json']);
  t.is(stopped.code, 0, stopped.stderr);
  t.deepEqual((JSON.parse(stopped.stdout) as { items: Item[] }).items.map((i) => [i.deployment, i.result, i.to]), names.b.map((n) => [n, 'done', 'stopped']));
  const listed = await h.run(['ls', '-l', `class=${b}`, '--json']);
  t.deepEqual((JSON.parse(listed.stdout) as { name: string; status: string }[]).map((d) => [d.name, d.status]), names.b.map((n) => [n, 'stopped']));
  t.is((await inspect(h, names.a[0] as string)).status, 'running');
  const started = await h.run(['start', '-l', `class=${b}`]);
  t.is(started.code, 0, started.stderr);
  t.regex(started.stdout, /DEPLOYMENT\s+FROM\s+TO\s+RESULT\s+TIME/);
  for (const name of names.b) t.is((await inspect(h, name)).status, 'running');
});
