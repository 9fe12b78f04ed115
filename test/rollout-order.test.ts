/**
 * `deploy.update_config.order` and `rollback_config.order` against the real engine: a stateless
 * service the file says to replace stop-first is, with its route paused; one with a named volume
 * the file says to replace start-first starts its new instance beside the old one (both use the
 * volume); a rollback follows rollback_config's order.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { harness } from './helpers/harness.ts';

const file = `services:
  web:
    image: depad-example/app:\${WEB:-1}
    command: ["/app/bin/web"]
    x-depad: {expose: http, port: 8080}
    deploy:
      update_config: {order: stop-first}
      rollback_config: {order: start-first}
  db:
    image: depad-example/app:\${DB:-1}
    command: ["/app/bin/db"]
    volumes: [data:/data]
    deploy:
      update_config: {order: start-first}
volumes:
  data: {}
`;

test("order: the file's update_config and rollback_config order wins over depad's default", async (t) => {
  const h = await harness(t);
  const config = path.join(h.dir, 'compose.yaml');
  await fs.writeFile(config, file);
  const name = h.name('order');
  const created = await h.run(['create', '-n', name, '-f', config]);
  t.is(created.code, 0, created.stderr);

  const dry = await h.run(['update', name, '-e', 'WEB=2', '--dry-run']);
  t.regex(dry.stdout, /web: stop-first \(its update_config says order: stop-first\)/);
  const web = await h.run(['update', name, '-e', 'WEB=2']);
  t.is(web.code, 0, web.stderr);
  t.regex(web.stderr, /pausing web \(its update_config says order: stop-first\)[\s\S]*stopping the old web[\s\S]*starting the new web/);

  const db = await h.run(['update', name, '-e', 'DB=2']);
  t.is(db.code, 0, db.stderr);
  t.regex(db.stderr, /starting the new db[\s\S]*stopping the old db/, 'start-first although it has a named volume');
  t.notRegex(db.stderr, /stop-first/);

  const back = await h.run(['rollback', name, '--to', '1']);
  t.is(back.code, 0, back.stderr);
  t.regex(back.stderr, /starting the new web[\s\S]*stopping the old web/, 'web rolls back start-first, as its rollback_config says');
  t.regex(back.stderr, /replacing db stop-first \(it has named volumes\)/, 'db has no rollback_config order: its volume makes it stop-first');
});

test('an update that changes only update_config records a revision with it, starts nothing, and the next update follows it', async (t) => {
  const h = await harness(t);
  const config = path.join(h.dir, 'compose.yaml');
  await fs.writeFile(config, file);
  const name = h.name('policy');
  t.is((await h.run(['create', '-n', name, '-f', config])).code, 0);
  const before = (await h.engine.listContainers({ 'depad.deployment': name })).map((c) => c.id).sort();
  const v2 = path.join(h.dir, 'compose-v2.yaml');
  await fs.writeFile(v2, file.replace('update_config: {order: stop-first}', 'update_config: {order: start-first}'));
  const diff = await h.run(['diff', name, '-f', v2]);
  t.is(diff.code, 0, diff.stderr);
  t.regex(diff.stdout, /web: no new instance: update_config or rollback_config changed \(the next roll follows it\)/);
  const up = await h.run(['update', name, '-f', v2]);
  t.is(up.code, 0, up.stderr);
  t.notRegex(up.stdout, /no changes/i);
  t.regex((await h.run(['history', name])).stdout, /^\*2\s/m, 'a revision records the new settings');
  t.deepEqual((await h.engine.listContainers({ 'depad.deployment': name })).map((c) => c.id).sort(), before, 'no container was replaced');
  // update -e starts from the current revision: its start-first now applies to web.
  const next = await h.run(['update', name, '-e', 'WEB=2']);
  t.is(next.code, 0, next.stderr);
  t.regex(next.stderr, /starting the new web[\s\S]*stopping the old web/);
  t.notRegex(next.stderr, /pausing web/);
});
