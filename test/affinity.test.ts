/**
 * `x-depad.affinity: cookie` end to end: bin/depad creates a deployment (real engine) whose route
 * the `depad proxy` process serves with an affinity cookie; an update that only turns it off is a
 * routing change (diff says so) and the cookie stops. The harness removes what it made.
 */
import test from 'ava';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { harness } from './helpers/harness.ts';
import { startProxyProcess } from './helpers/proxy-process.ts';

function get(port: number, host: string, cookie?: string): Promise<{ status: number; setCookie: string[] }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', headers: { host, ...(cookie ? { cookie } : {}) }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, setCookie: res.headers['set-cookie'] ?? [] }));
    });
    req.on('error', reject);
  });
}

test('create with x-depad.affinity: cookie → the proxy sets the cookie; an update turning it off is a routing change', async (t) => {
  const h = await harness(t);
  const name = h.name('sticky');
  const file = path.join(h.dir, 'sticky.yml');
  const config = (affinity: string) => `services:\n  web:\n    image: depad-example/app:1\n    x-depad: { expose: http, port: 8080, affinity: ${affinity} }\n`;
  await fs.writeFile(file, config('cookie'));
  const proxy = await startProxyProcess(t, h);
  const created = await h.run(['create', '-n', name, '-f', file]);
  t.is(created.code, 0, created.stderr);
  const routes = JSON.parse(await fs.readFile(path.join(h.home, 'proxy', 'routes.json'), 'utf8')) as { routes: Array<{ id: string; affinity?: string }> };
  t.is(routes.routes.find((r) => r.id === `${name}/web`)?.affinity, 'cookie');
  const host = `web.${name}.localhost`;
  const first = await get(proxy.port, host);
  t.is(first.status, 200);
  t.regex(first.setCookie[0] ?? '', /^depad_affinity=[A-Za-z0-9_-]{22}; Path=\/; HttpOnly; SameSite=Lax$/);
  const cookie = (first.setCookie[0] ?? '').split(';')[0] as string;
  const again = await get(proxy.port, host, cookie);
  t.deepEqual([again.status, again.setCookie], [200, []], 'a valid cookie gets no new one');
  const config2 = await h.run(['config', '-f', file]);
  t.regex(config2.stdout, /affinity: cookie/);

  await fs.writeFile(file, config('none'));
  const dry = await h.run(['update', name, '-f', file, '--dry-run']);
  t.regex(dry.stdout, /\(affinity: cookie\)/);
  const updated = await h.run(['update', name, '-f', file]);
  t.is(updated.code, 0, updated.stderr);
  t.deepEqual((await get(proxy.port, host)).setCookie, []);
});
