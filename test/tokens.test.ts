/**
 * API tokens: scopes (pure), the token store on a real LevelDB (authentication, revocation, no
 * secret at rest) and `depad token` through the CLI. Each test uses its own DEPAD_HOME, removed
 * afterwards; nothing touches the engine.
 */
import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { authenticate, authorize, createToken, parseScope, revokeToken, selects } from '../src/auth/tokens.ts';
import { DepadError } from '../src/errors.ts';
import { stateDir } from '../src/home.ts';
import type { TokenRecord } from '../src/store/records.ts';
import { Store } from '../src/store/store.ts';
import { harness } from './helpers/harness.ts';

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    return (error as DepadError).code;
  }
  return 'none';
};

test('scopes: admin, or deploy selecting names, prefixes or labels; bad scopes are usage errors', (t) => {
  t.deepEqual(parseScope('admin'), { kind: 'admin' });
  t.deepEqual(parseScope('deploy', ['shop', 'pr-*', 'shop'], ['class=web,env=prod']), { kind: 'deploy', deployments: ['pr-*', 'shop'], labels: { class: 'web', env: 'prod' } });
  for (const [kind, names, labels] of [
    ['root', [], []],
    ['deploy', [], []],
    ['admin', ['shop'], []],
    ['deploy', ['Shop'], []],
    ['deploy', ['../x'], []],
    ['deploy', ['a*b'], []],
    ['deploy', [], ['class']],
    ['deploy', [], ['=web']],
    ['deploy', [], ['class=']],
  ] as [string, string[], string[]][]) {
    t.is(code(() => parseScope(kind, names, labels)), 'DEPAD_USAGE', JSON.stringify([kind, names, labels]));
  }
  const scope = parseScope('deploy', ['shop', 'pr-*'], ['class=web,env=prod']);
  t.true(selects(scope, { name: 'shop' }));
  t.true(selects(scope, { name: 'pr-42' }));
  t.false(selects(scope, { name: 'shop-2' }));
  t.false(selects(scope, { name: 'pr' }));
  t.true(selects(scope, { name: 'other', labels: { class: 'web', env: 'prod', team: 'x' } }));
  t.false(selects(scope, { name: 'other', labels: { class: 'web' } }), 'every label must match');
});

test('authorize: admin does everything; a deploy token reads and deploys only what it selects, never destroys', (t) => {
  const base = { id: '0123456789ab', hash: '', createdAt: '' };
  const admin: TokenRecord = { ...base, name: 'root', scope: { kind: 'admin' } };
  const ci: TokenRecord = { ...base, name: 'ci', scope: parseScope('deploy', ['shop']) };
  t.notThrows(() => authorize(admin, 'destroy', { name: 'any' }));
  t.notThrows(() => authorize(admin, 'tokens'));
  for (const action of ['update', 'rollback', 'create', 'logs', 'inspect', 'restart'] as const) t.notThrows(() => authorize(ci, action, { name: 'shop' }), action);
  t.notThrows(() => authorize(ci, 'ls'), 'ls is filtered, not refused');
  t.is(code(() => authorize(ci, 'update', { name: 'bank' })), 'DEPAD_FORBIDDEN');
  t.is(code(() => authorize(ci, 'destroy', { name: 'shop' })), 'DEPAD_FORBIDDEN');
  t.is(code(() => authorize(ci, 'tokens')), 'DEPAD_FORBIDDEN');
  const error = t.throws(() => authorize(ci, 'update', { name: 'bank' }), { instanceOf: DepadError });
  t.is(error?.status, 403);
});

test('tokens authenticate until revoked; every failure is the same 401; no secret is stored', async (t) => {
  const home = (await harness(t)).home;
  const store = await Store.open(home, { command: 'test' });
  try {
    const { token, record } = await createToken(store, 'ci', parseScope('deploy', ['shop']));
    t.regex(token, /^depad_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    t.is((await authenticate(store, token)).name, 'ci');
    const secret = token.slice('depad_000000000000_'.length);
    const failures = await Promise.all(
      [undefined, '', 'Bearer x', token.slice(0, -1), `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`, `depad_ffffffffffff_${secret}`].map((bad) =>
        authenticate(store, bad).then(
          () => 'accepted',
          (error: DepadError) => `${error.code} ${error.status} ${error.message}`,
        ),
      ),
    );
    t.deepEqual(new Set(failures), new Set(['DEPAD_UNAUTHENTICATED 401 authentication required: no valid token']));
    t.is(record.hash.length, 64);
    t.false(JSON.stringify(await store.listTokens()).includes(secret));

    await revokeToken(store, 'ci');
    t.is((await t.throwsAsync(authenticate(store, token), { instanceOf: DepadError }))?.code, 'DEPAD_UNAUTHENTICATED');
    t.is((await t.throwsAsync(revokeToken(store, 'ci'), { instanceOf: DepadError }))?.code, 'DEPAD_NOT_FOUND');
    const again = await createToken(store, 'ci', { kind: 'admin' });
    t.not(again.record.id, record.id, 'a revoked name can be reused');
    await store.close();
    const files = await fs.readdir(stateDir(home));
    t.true(files.length > 0);
    for (const file of files) {
      const bytes = await fs.readFile(path.join(stateDir(home), file)).catch(() => Buffer.alloc(0));
      t.false(bytes.includes(secret), `secret in ${file}`);
    }
  } finally {
    await store.close();
  }
});

test('depad token create prints the token once on stdout; ls never shows it; revoke stops it', async (t) => {
  const h = await harness(t);
  const created = await h.run(['token', 'create', '--name', 'ci', '--scope', 'deploy', '-d', 'shop', '-l', 'class=web']);
  t.is(created.code, 0, created.stderr);
  const token = created.stdout.trim();
  t.regex(token, /^depad_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
  t.regex(created.stderr, /shown this once/);
  t.false(created.stderr.includes(token));
  const listed = await h.run(['token', 'ls']);
  t.regex(listed.stdout, /ci\s+[0-9a-f]{12}\s+deploy \(names shop or labels class=web\)/);
  const json = await h.json<Record<string, unknown>[]>(['token', 'ls']);
  t.deepEqual(Object.keys(json[0] ?? {}).sort(), ['createdAt', 'id', 'name', 'scope']);
  t.false(JSON.stringify(json).includes(token.slice('depad_000000000000_'.length)));
  t.is((await h.run(['token', 'revoke', 'ci'])).code, 0);
  t.is((await h.json<unknown[]>(['token', 'ls'])).length, 0);
  t.is((await h.json<unknown[]>(['token', 'ls', '--all'])).length, 1);
  const bad = await h.run(['token', 'create', '--name', 'x', '--scope', 'deploy']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /must select deployments/);
  const badName = await h.run(['token', 'create', '--name', '../etc', '--scope', 'admin']);
  t.is(badName.code, 2);
});
