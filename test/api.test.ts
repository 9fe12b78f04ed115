/**
 * The management API handler over real HTTPS (the agent's own CA, verified with the hostname),
 * against a real store and engine: 401 for every unauthenticated request alike, scopes (403),
 * bad requests (4xx with a code, state unchanged), the audit log, slowing down repeated failures,
 * and the OpenAPI document. A deployment made by the CLI is removed by the harness afterwards.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import fs from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { AuditLog } from '../src/api/audit.ts';
import { FailureLimiter } from '../src/api/failures.ts';
import { cancelOperation, startOperation } from '../src/api/operations.ts';
import { isDepadError } from '../src/errors.ts';
import { ENDPOINTS, createApiHandler } from '../src/api/handler.ts';
import { serialQueue } from '../src/serial.ts';
import { createToken, parseScope } from '../src/auth/tokens.ts';
import { ensureAgentTls } from '../certs/local-ca.ts';
import type { OpContext } from '../src/deploy/context.ts';
import { Engine } from '../src/engine/engine.ts';
import { agentTlsDir, proxyStateDir } from '../src/home.ts';
import { silentLogger } from '../src/logger.ts';
import { Store } from '../src/store/store.ts';
import { ProxyClient } from '../proxy/client.ts';
import { proxyPaths } from '../proxy/paths.ts';
import { EXAMPLES, engineObjects, harness } from './helpers/harness.ts';

interface Api {
  call(method: string, pathname: string, options?: { token?: string; body?: string | Buffer; type?: string; accept?: string }): Promise<{ status: number; headers: Record<string, unknown>; json: any; text: string; ms: number }>;
  store: Store;
  auditFile: string;
  admin: string;
}

async function startApi(t: ExecutionContext, home: string): Promise<Api> {
  const tlsMaterial = await ensureAgentTls({ dir: agentTlsDir(home), hostnames: ['localhost'] });
  const store = await Store.open(home, { command: 'api test' });
  t.teardown(() => store.close());
  const ctx: OpContext = { home, store, engine: new Engine(), routes: new ProxyClient(proxyPaths(proxyStateDir(home))), log: silentLogger, progress: () => {} };
  const auditFile = path.join(home, 'audit.log');
  const server = https.createServer({ key: tlsMaterial.serverKey, cert: tlsMaterial.certChain }, createApiHandler({ context: () => ctx, audit: new AuditLog(auditFile), limiter: new FailureLimiter(), log: silentLogger, serialize: serialQueue() }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))));
  const port = (server.address() as AddressInfo).port;
  const admin = (await createToken(store, 'root', { kind: 'admin' })).token;
  const call: Api['call'] = (method, pathname, options = {}) =>
    new Promise((resolve, reject) => {
      const started = Date.now();
      const headers: Record<string, string | number> = {};
      if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
      if (options.accept !== undefined) headers.accept = options.accept;
      if (options.body !== undefined) {
        headers['content-type'] = options.type ?? 'application/json';
        headers['content-length'] = Buffer.byteLength(options.body);
      }
      const req = https.request({ host: '127.0.0.1', port, method, path: pathname, servername: 'localhost', ca: tlsMaterial.caCert, headers, agent: false }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => {
          const ndjson = String(res.headers['content-type']).startsWith('application/x-ndjson');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, json: text && !ndjson ? JSON.parse(text) : undefined, text, ms: Date.now() - started });
        });
      });
      req.on('error', reject);
      req.end(options.body);
    });
  return { call, store, auditFile, admin };
}

test('API over HTTPS: 401 alike for every unauthenticated request; scopes; bad requests; audit; OpenAPI', async (t) => {
  const h = await harness(t);
  const mine = h.name('shop');
  const created = await h.run(['create', '-n', mine, '-f', path.join(EXAMPLES, 'hello', 'depad.yml')]);
  t.is(created.code, 0, created.stderr);
  const api = await startApi(t, h.home);

  // Unauthenticated: the same answer whatever the path, method or token shape.
  const anonymous = await Promise.all([
    api.call('GET', '/v1/deployments'),
    api.call('GET', '/v1/nothing-here'),
    api.call('DELETE', '/v1/tokens/root', { token: 'depad_000000000000_' + 'A'.repeat(43) }),
    api.call('GET', '/v1/deployments', { token: api.admin.slice(0, -2) + 'xx' }),
  ]);
  for (const r of anonymous) {
    t.is(r.status, 401);
    t.deepEqual(r.json, anonymous[0]?.json);
    t.is(r.headers['www-authenticate'], 'Bearer realm="depad"');
  }

  // Admin: everything.
  const all = await api.call('GET', '/v1/deployments', { token: api.admin });
  t.is(all.status, 200);
  t.deepEqual(all.json.map((d: { name: string }) => d.name), [mine]);
  const one = await api.call('GET', `/v1/deployments/${mine}`, { token: api.admin });
  t.is(one.json.name, mine);
  t.is(one.json.revisions.length, 1);

  // A deploy token selecting another name: sees nothing of this one; 403, not 404, for names outside it.
  const madeCi = await api.call('POST', '/v1/tokens', { token: api.admin, body: JSON.stringify({ name: 'ci', scope: 'deploy', deployments: [`${h.prefix}other-*`] }) });
  t.is(madeCi.status, 201);
  const ci = madeCi.json.token as string;
  t.deepEqual((await api.call('GET', '/v1/deployments', { token: ci })).json, []);
  for (const target of [mine, `${h.prefix}missing`]) {
    const r = await api.call('GET', `/v1/deployments/${target}`, { token: ci });
    t.is(r.status, 403, target);
    t.is(r.json.error.code, 'DEPAD_FORBIDDEN');
  }
  t.is((await api.call('GET', `/v1/deployments/${h.prefix}other-1`, { token: ci })).status, 404, 'inside the scope, a missing name is 404');
  t.is((await api.call('GET', '/v1/tokens', { token: ci })).status, 403);
  const own = (await createToken(api.store, 'ci-own', parseScope('deploy', [mine]))).token;
  t.is((await api.call('GET', `/v1/deployments/${mine}`, { token: own })).status, 200);

  // Bad requests: 4xx with a code, nothing changed.
  const before = (await api.store.listTokens()).length;
  const bad: [string, string, { body?: string | Buffer; type?: string }, number, string][] = [
    ['POST', '/v1/tokens', { body: '{"name": "x",' }, 400, 'DEPAD_USAGE'],
    ['POST', '/v1/tokens', { body: '[1]' }, 400, 'DEPAD_USAGE'],
    ['POST', '/v1/tokens', { body: JSON.stringify({ name: 'x', scope: 'admin', admin: true }) }, 400, 'DEPAD_USAGE'],
    ['POST', '/v1/tokens', { body: JSON.stringify({ name: 'x', scope: 'admin' }), type: 'text/plain' }, 400, 'DEPAD_USAGE'],
    ['POST', '/v1/tokens', { body: Buffer.alloc(2 * 1024 * 1024, 0x20) }, 413, 'DEPAD_BODY_TOO_LARGE'],
    ['POST', '/v1/tokens', { body: JSON.stringify({ name: '../../etc/passwd', scope: 'admin' }) }, 400, 'DEPAD_NAME_INVALID'],
    ['GET', '/v1/deployments/..%2F..%2Fetc%2Fpasswd', {}, 400, 'DEPAD_NAME_INVALID'],
    ['GET', '/v1/deployments/%2e%2e', {}, 404, 'DEPAD_NOT_FOUND'], // a dot segment: the URL resolves to /v1/, no endpoint
    ['DELETE', '/v1/tokens/a%2F..%2F..%2Fb', {}, 400, 'DEPAD_NAME_INVALID'],
    ['PUT', '/v1/tokens', {}, 404, 'DEPAD_NOT_FOUND'],
  ];
  for (const [method, pathname, options, status, code] of bad) {
    const r = await api.call(method, pathname, { token: api.admin, ...options });
    t.is(r.status, status, `${method} ${pathname}`);
    t.is(r.json?.error?.code, code, `${method} ${pathname}`);
  }
  t.is((await api.store.listTokens()).length, before);

  // Revocation through the API stops the token at once.
  t.is((await api.call('DELETE', '/v1/tokens/ci', { token: api.admin })).status, 200);
  t.is((await api.call('GET', '/v1/deployments', { token: ci })).status, 401);

  // OpenAPI: every endpoint, bearer security.
  const doc = (await api.call('GET', '/v1/openapi.json', { token: api.admin })).json;
  t.is(doc.openapi, '3.1.0');
  for (const e of ENDPOINTS) t.truthy(doc.paths[e.path]?.[e.method.toLowerCase()], `${e.method} ${e.path}`);

  // Audit log: token names, actions, deployments, results; never a token.
  const audit = (await fs.readFile(api.auditFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  t.true(audit.some((e) => e.token === 'root' && e.action === 'inspect' && e.deployment === mine && e.result === 'ok' && e.status === 200));
  t.true(audit.some((e) => e.token === 'ci' && e.action === 'inspect' && e.deployment === mine && e.result === 'error' && e.status === 403));
  const text = await fs.readFile(api.auditFile, 'utf8');
  for (const secret of [api.admin, ci, own]) t.false(text.includes(secret.slice('depad_000000000000_'.length)));
  t.is((await fs.stat(api.auditFile)).mode & 0o777, 0o600);
});

test('API: repeated authentication failures from one address are slowed down', async (t) => {
  const h = await harness(t);
  const api = await startApi(t, h.home);
  for (let i = 0; i < 6; i++) t.is((await api.call('GET', '/v1/deployments', { token: 'nope' })).status, 401);
  const slowed = await api.call('GET', '/v1/deployments', { token: api.admin });
  t.is(slowed.status, 200, 'a valid token still works');
  t.true(slowed.ms >= 900, `answered after ${slowed.ms} ms`);
});

test('API: stop with streamed progress, start, destroy refused to a deploy token and done by admin', async (t) => {
  const h = await harness(t);
  const name = h.name('life');
  const created = await h.run(['create', '-n', name, '-f', path.join(EXAMPLES, 'hello', 'depad.yml')]);
  t.is(created.code, 0, created.stderr);
  const api = await startApi(t, h.home);
  const ci = (await createToken(api.store, 'ci', parseScope('deploy', [name]))).token;

  const stopped = await api.call('POST', `/v1/deployments/${name}/stop`, { token: ci, accept: 'application/x-ndjson' });
  t.is(stopped.status, 200);
  const lines = stopped.text.trim().split('\n').map((l) => JSON.parse(l));
  t.true(lines.length >= 2, 'progress lines, then the result');
  t.true(lines.slice(0, -1).every((l) => typeof l.progress?.message === 'string'));
  t.is(lines.at(-1).result.name, name);
  t.is(lines.at(-1).result.status, 'stopped');

  const started = await api.call('POST', `/v1/deployments/${name}/start`, { token: ci, body: JSON.stringify({ wait: true }) });
  t.is(started.status, 200, started.text);
  t.is(started.json.status, 'running');
  const unknownField = await api.call('POST', `/v1/deployments/${name}/restart`, { token: ci, body: JSON.stringify({ force: true }) });
  t.is(unknownField.status, 400);
  t.is((await api.call('GET', `/v1/deployments/${name}/history`, { token: ci })).json.length, 1);

  const refused = await api.call('DELETE', `/v1/deployments/${name}`, { token: ci });
  t.is(refused.status, 403);
  t.not((await engineObjects(h.engine, h.prefix)).containers.length, 0, 'nothing removed');
  const failedStream = await api.call('POST', `/v1/deployments/${h.prefix}nothing/stop`, { token: api.admin, accept: 'application/x-ndjson' });
  t.is(JSON.parse(failedStream.text.trim()).error.code, 'DEPAD_NOT_FOUND', 'a streamed failure ends with an error line');

  const destroyed = await api.call('DELETE', `/v1/deployments/${name}`, { token: api.admin });
  t.is(destroyed.status, 200, destroyed.text);
  t.is((await api.call('GET', `/v1/deployments/${name}`, { token: api.admin })).status, 404);
  t.deepEqual(await engineObjects(h.engine, h.prefix), { containers: [], networks: [], volumes: [] });
});

test('API: a token scoped by labels selects deployments by their labels (config, --class, --label), never others', async (t) => {
  const h = await harness(t);
  const shop = h.name('lbl-shop');
  const other = h.name('lbl-other');
  const hello = await fs.readFile(path.join(EXAMPLES, 'hello', 'depad.yml'), 'utf8');
  const labeled = path.join(h.dir, 'labeled.yml');
  await fs.writeFile(labeled, `${hello}\nx-depad:\n  class: shop\n  labels: { env: staging }\n`);
  t.is((await h.run(['create', '-n', shop, '-f', labeled])).code, 0);
  const otherCreate = await h.run(['create', '-n', other, '-f', path.join(EXAMPLES, 'hello', 'depad.yml'), '--class', 'other', '--label', 'env=prod']);
  t.is(otherCreate.code, 0, otherCreate.stderr);
  // Only labels change: they change in place, with no new revision and no restart.
  await fs.writeFile(labeled, `${hello}\nx-depad:\n  class: shop\n  labels: { env: prod }\n`);
  const relabel = await h.run(['update', shop, '-f', labeled]);
  t.is(relabel.code, 0, relabel.stderr);
  t.regex(relabel.stderr, /labels now class=shop,env=prod/);
  const inspected = JSON.parse((await h.run(['inspect', shop, '--json'])).stdout) as { labels: Record<string, string>; revision: number };
  t.deepEqual(inspected.labels, { class: 'shop', env: 'prod' });
  t.is(inspected.revision, 1);
  // --class and --label win over the config's, at every update too.
  const kept = await h.run(['update', other, '-f', labeled]);
  t.is(kept.code, 0, kept.stderr);
  t.deepEqual((JSON.parse((await h.run(['inspect', other, '--json'])).stdout) as { labels: Record<string, string> }).labels, { class: 'other', env: 'prod' });

  const api = await startApi(t, h.home);
  const byClass = (await createToken(api.store, 'ci-shop', parseScope('deploy', [], ['class=shop']))).token;
  const byEnv = (await createToken(api.store, 'ci-prod', parseScope('deploy', [], ['env=prod']))).token;
  t.deepEqual((await api.call('GET', '/v1/deployments', { token: byClass })).json.map((d: { name: string }) => d.name), [shop]);
  t.deepEqual((await api.call('GET', '/v1/deployments', { token: byEnv })).json.map((d: { name: string }) => d.name).sort(), [other, shop].sort());
  t.is((await api.call('GET', `/v1/deployments/${shop}`, { token: byClass })).status, 200);
  t.is((await api.call('GET', `/v1/deployments/${other}`, { token: byClass })).status, 403);
  t.is((await api.call('POST', `/v1/deployments/${other}/restart`, { token: byClass, body: '{}' })).status, 403);
  const sneaky = h.name('lbl-new');
  const refused = await api.call('POST', '/v1/deployments', { token: byClass, body: JSON.stringify({ name: sneaky, config: hello, configName: 'depad.yml', labels: { class: 'other' } }) });
  t.is(refused.status, 403, 'a create outside the selector is refused');
  t.is(await api.store.idForName(sneaky), undefined, 'nothing was made');
  const badLabel = await api.call('POST', '/v1/deployments', { token: api.admin, body: JSON.stringify({ name: sneaky, config: hello, configName: 'depad.yml', labels: { 'depad.x': 'y' } }) });
  t.is(badLabel.status, 400);
  t.is(badLabel.json.error.code, 'DEPAD_USAGE');

  // Bulk: allowed only when the token may act on every selected deployment.
  const restarted = await api.call('POST', '/v1/bulk/restart', { token: byClass, body: JSON.stringify({ selector: { class: 'shop' }, wait: false }) });
  t.is(restarted.status, 200, restarted.text);
  t.deepEqual(restarted.json.items.map((i: { deployment: string; result: string }) => [i.deployment, i.result]), [[shop, 'done']]);
  const wide = await api.call('POST', '/v1/bulk/stop', { token: byClass, body: JSON.stringify({ selector: { env: 'prod' } }) });
  t.is(wide.status, 403, 'env=prod also picks a deployment outside the token');
  t.is((await api.call('GET', `/v1/deployments/${shop}`, { token: api.admin })).json.status, 'running', 'nothing was stopped');
  const stopped = await api.call('POST', '/v1/bulk/stop', { token: byClass, body: JSON.stringify({ selector: { class: 'shop' } }) });
  t.is(stopped.status, 200, stopped.text);
  t.is((await api.call('GET', `/v1/deployments/${shop}`, { token: api.admin })).json.status, 'stopped', 'a bulk stop with no services stops every service');
  const started = await api.call('POST', '/v1/bulk/start', { token: byClass, body: JSON.stringify({ selector: { class: 'shop' } }) });
  t.is(started.status, 200, started.text);
  t.is((await api.call('GET', `/v1/deployments/${shop}`, { token: api.admin })).json.status, 'running');
  const dry = await api.call('POST', '/v1/bulk/update', { token: byEnv, body: JSON.stringify({ selector: { env: 'prod' }, overrides: { web: 'depad-example/app:2' }, dryRun: true }) });
  t.is(dry.status, 200, dry.text);
  t.deepEqual(dry.json.items.map((i: { result: string }) => i.result), ['would update', 'would update']);
});

test('operations: only the token that started one, or an administrator, cancels it; unknown or finished IDs are one 404', (t) => {
  const token = (id: string, scope: ReturnType<typeof parseScope>) => ({ id, name: id, scope, hash: '', createdAt: '' });
  const ci = token('ci', parseScope('deploy', ['shop'], []));
  const other = token('other', parseScope('deploy', ['shop'], []));
  const root = token('root', { kind: 'admin' });
  const controller = new AbortController();
  const op = startOperation(ci, controller, () => 'shop');
  t.is(t.throws(() => cancelOperation(op.id, other))?.message, `no operation ${op.id} under way`, 'another token learns nothing');
  t.false(controller.signal.aborted);
  t.deepEqual(cancelOperation(op.id, ci), { cancelled: op.id, deployment: 'shop' });
  t.true(controller.signal.aborted);
  t.notThrows(() => cancelOperation(op.id, root), 'an administrator may too');
  op.done();
  t.true(isDepadError(t.throws(() => cancelOperation(op.id, ci)), 'DEPAD_NOT_FOUND'), 'finished');
});
