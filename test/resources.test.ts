/**
 * Resource limits against the real engine: per-service limits reach the container (docker
 * inspect), `depad stats` reads the use beside them, `inspect` shows them, and a deployment
 * budget (x-depad.resources) that the services' limits exceed is refused at create and at update,
 * leaving things as they were. The harness removes the deployment afterwards.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { EXAMPLES, harness } from './helpers/harness.ts';

const MIB = 1024 * 1024;

test('limits reach the engine and stats; a budget overflow is refused at create and update', async (t) => {
  const h = await harness(t);
  const hello = await fs.readFile(path.join(EXAMPLES, 'hello', 'depad.yml'), 'utf8');
  const config = (memory: string) =>
    `${hello.replace('    ports:', `    deploy:\n      resources:\n        limits: { cpus: 0.5, memory: ${memory}, pids: 50 }\n    ports:`)}\nx-depad:\n  resources: { cpus: 1, memory: 128m, pids: 100 }\n`;
  const fits = path.join(h.dir, 'fits.yml');
  const over = path.join(h.dir, 'over.yml');
  await fs.writeFile(fits, config('64m'));
  await fs.writeFile(over, config('256m'));
  const name = h.name('res');

  const refused = await h.run(['create', '-n', h.name('big'), '-f', over]);
  t.is(refused.code, 3, refused.stderr);
  t.regex(refused.stderr, /over\.yml:\d+:\d+ x-depad\.resources\.memory: the services' memory limits add up to 256 MiB \(web 256 MiB\), over the budget of 128 MiB/);
  t.is((await h.run(['inspect', h.name('big')])).code, 4, 'nothing was made');

  const created = await h.run(['create', '-n', name, '-f', fits]);
  t.is(created.code, 0, created.stderr);
  const container = `depad-${name}-web-1`;
  const host = JSON.parse(execFileSync('docker', ['inspect', '--format', '{{json .HostConfig}}', container], { encoding: 'utf8' })) as { Memory: number; NanoCpus: number; PidsLimit: number };
  t.is(host.Memory, 64 * MIB);
  t.is(host.NanoCpus, 500_000_000);
  t.is(host.PidsLimit, 50);

  const stats = JSON.parse((await h.run(['stats', name, '--json'])).stdout) as { service: string; memoryBytes: number; memoryLimitBytes: number; pids: number; cpuLimit: number }[];
  t.is(stats.length, 1);
  t.is(stats[0]?.service, 'web');
  t.is(stats[0]?.memoryLimitBytes, 64 * MIB, 'the engine reports the limit');
  t.true((stats[0]?.memoryBytes ?? 0) > 0 && (stats[0]?.memoryBytes ?? 0) < 64 * MIB);
  t.true((stats[0]?.pids ?? 0) >= 1);
  t.is(stats[0]?.cpuLimit, 0.5);
  const table = await h.run(['stats']);
  t.regex(table.stdout, new RegExp(`${name}\\s+web\\s+${container}\\s+[\\d.]+\\s+0\\.5\\s+[\\d.]+ [KM]iB\\s+64 MiB\\s+\\d+`));
  t.regex((await h.run(['inspect', name])).stdout, /limits web: 0\.5 CPUs, 64 MiB, 50 pids/);

  const update = await h.run(['update', name, '-f', over]);
  t.is(update.code, 3, update.stderr);
  t.regex(update.stderr, /x-depad\.resources\.memory: .*over the budget of 128 MiB/);
  t.is((JSON.parse((await h.run(['inspect', name, '--json'])).stdout) as { revision: number }).revision, 1);
  t.is(Number(execFileSync('docker', ['inspect', '--format', '{{.HostConfig.Memory}}', container], { encoding: 'utf8' }).trim()), 64 * MIB, 'the running instance is unchanged');
});
