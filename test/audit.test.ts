/** The audit log rotates by size and keeps a bounded number of files, all 0600 (on a temporary directory). */
import test from 'ava';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AuditLog } from '../src/api/audit.ts';

test('audit log: rotated at maxBytes, keep files kept, newest entries in the current file', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'depad-audit-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'audit.log');
  const log = new AuditLog(file, { maxBytes: 300, keep: 2 });
  for (let i = 0; i < 30; i++) log.record({ ip: '127.0.0.1', token: 'ci', action: 'ls', result: 'ok', status: 200, deployment: `d${i}` });
  await log.flush();
  const files = (await fs.readdir(dir)).sort();
  t.deepEqual(files, ['audit.log', 'audit.log.1', 'audit.log.2']);
  for (const name of files) {
    const stat = await fs.stat(path.join(dir, name));
    t.true(stat.size <= 300, `${name}: ${stat.size} bytes`);
    t.is(stat.mode & 0o777, 0o600, name);
  }
  const current = (await fs.readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { deployment: string });
  t.is(current.at(-1)?.deployment, 'd29');
  const older = (await fs.readFile(`${file}.1`, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { deployment: string });
  t.is(Number(older.at(-1)?.deployment.slice(1)) + 1, Number(current[0]?.deployment.slice(1)), 'no entry lost between files');
});
