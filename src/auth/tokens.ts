/**
 * API tokens: `depad_<id>_<secret>`, the id public (lookup, audit log), the secret 32 random bytes
 * shown once at creation and stored only as its SHA-256 (a fast hash is enough for 256 random
 * bits; comparison is constant-time). Every failure to authenticate gives the same answer, so a
 * caller learns nothing about which tokens exist. Scopes: `admin`, or `deploy` limited to the
 * deployments a token selects (see TokenScope).
 */
import { matchesSelector, parseLabelArgs } from '../labels.ts';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { NAME_PATTERN } from '../deploy/resolve.ts';
import { DepadError } from '../errors.ts';
import type { TokenRecord, TokenScope } from '../store/records.ts';
import type { Store } from '../store/store.ts';

const TOKEN_FORMAT = /^depad_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;
/** A deployment selector entry: a name, or a prefix ending in `*`. */
const NAME_SELECTOR = /^[a-z0-9][a-z0-9-]{0,62}\*?$/;

/** What may be done to deployments, by kind: `read` and `deploy` actions are open to deploy tokens. */
export const ACTIONS = {
  ls: 'read',
  inspect: 'read',
  ps: 'read',
  logs: 'read',
  history: 'read',
  diff: 'read',
  create: 'deploy',
  update: 'deploy',
  rollback: 'deploy',
  start: 'deploy',
  stop: 'deploy',
  restart: 'deploy',
  destroy: 'admin',
  tokens: 'admin',
  certificates: 'admin',
  doctor: 'admin',
  volumes: 'admin',
  agent: 'admin',
  /** The cluster manager's hosts and join tokens. */
  hosts: 'admin',
} as const;

/** An action a token may be checked for. */
export type Action = keyof typeof ACTIONS;

/** What a scope is checked against: a deployment's name and labels (`class` among them). */
export interface ScopeTarget {
  name: string;
  labels?: Readonly<Record<string, string>>;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** The same answer for every token that does not authenticate. */
function unauthenticated(): DepadError {
  return new DepadError('DEPAD_UNAUTHENTICATED', 'authentication required: no valid token', {
    hint: 'pass a token with --token, DEPAD_TOKEN or a context (depad token create makes one)',
  });
}

/**
 * Builds a scope from CLI-style parts: `admin`, or `deploy` with deployment names (`pr-*` for a
 * prefix) and/or labels (`class=web,env=prod`). A deploy scope must select something.
 */
export function parseScope(kind: string, deployments: readonly string[] = [], labelText: readonly string[] = []): TokenScope {
  if (kind === 'admin') {
    if (deployments.length > 0 || labelText.length > 0) throw new DepadError('DEPAD_USAGE', 'an admin token covers every deployment: drop --deployment and --selector');
    return { kind: 'admin' };
  }
  if (kind !== 'deploy') throw new DepadError('DEPAD_USAGE', `unknown scope ${JSON.stringify(kind)}`, { hint: 'use --scope admin or --scope deploy' });
  for (const d of deployments) {
    if (!NAME_SELECTOR.test(d)) throw new DepadError('DEPAD_USAGE', `not a deployment name or prefix: ${JSON.stringify(d)}`, { hint: 'e.g. --deployment shop or --deployment "pr-*"' });
  }
  const labels = parseLabelArgs(labelText, '--selector');
  if (deployments.length === 0 && Object.keys(labels).length === 0) {
    throw new DepadError('DEPAD_USAGE', 'a deploy token must select deployments', { hint: 'add --deployment NAME (or "prefix-*") and/or --selector key=value' });
  }
  return { kind: 'deploy', deployments: [...new Set(deployments)].sort(), labels };
}

/** A scope in one line, for listings and the audit log. */
export function scopeText(scope: TokenScope): string {
  if (scope.kind === 'admin') return 'admin';
  const parts: string[] = [];
  if (scope.deployments.length > 0) parts.push(`names ${scope.deployments.join(' ')}`);
  const labels = Object.entries(scope.labels);
  if (labels.length > 0) parts.push(`labels ${labels.map(([k, v]) => `${k}=${v}`).join(',')}`);
  return `deploy (${parts.join(' or ')})`;
}

/** Makes a token. Returns the token text (shown once, never stored) and its record. */
export async function createToken(store: Store, name: string, scope: TokenScope, now = new Date()): Promise<{ token: string; record: TokenRecord }> {
  // Token names follow the rules of deployment names.
  if (!NAME_PATTERN.test(name)) throw new DepadError('DEPAD_NAME_INVALID', `invalid token name ${JSON.stringify(name)}`, { hint: 'use lowercase letters, digits and -, e.g. ci-deploy' });
  const tokens = await store.listTokens();
  if (tokens.some((t) => t.name === name && t.revokedAt === undefined)) {
    throw new DepadError('DEPAD_NAME_TAKEN', `a token named ${name} exists`, { hint: `revoke it first (depad token revoke ${name}) or pick another name` });
  }
  let id: string;
  do id = randomBytes(6).toString('hex');
  while (tokens.some((t) => t.id === id));
  const secret = randomBytes(32).toString('base64url');
  const record: TokenRecord = { id, name, scope, hash: sha256(secret).toString('hex'), createdAt: now.toISOString() };
  await store.batch().putToken(record).write();
  return { token: `depad_${id}_${secret}`, record };
}

/** The record of a valid, unrevoked token; DEPAD_UNAUTHENTICATED otherwise (always the same error). */
export async function authenticate(store: Store, presented: string | undefined): Promise<TokenRecord> {
  const m = presented === undefined ? null : TOKEN_FORMAT.exec(presented);
  if (m === null) throw unauthenticated();
  const record = await store.getToken(m[1] as string);
  const expected = Buffer.from(record?.hash ?? '00'.repeat(32), 'hex');
  const ok = timingSafeEqual(sha256(m[2] as string), expected) && record !== undefined && record.revokedAt === undefined;
  if (!ok) throw unauthenticated();
  return record;
}

/** True when `scope` selects the deployment `target`. */
export function selects(scope: TokenScope, target: ScopeTarget): boolean {
  if (scope.kind === 'admin') return true;
  const byName = scope.deployments.some((d) => (d.endsWith('*') ? target.name.startsWith(d.slice(0, -1)) : target.name === d));
  const byLabels = Object.keys(scope.labels).length > 0 && matchesSelector(target.labels, scope.labels);
  return byName || byLabels;
}

/**
 * Checks that `token` may do `action` (on `target`, for actions on one deployment); throws
 * DEPAD_FORBIDDEN otherwise, saying only what was refused.
 */
export function authorize(token: TokenRecord, action: Action, target?: ScopeTarget): void {
  const scope = token.scope;
  if (scope.kind === 'admin') return;
  const kind = ACTIONS[action];
  const allowed = kind !== 'admin' && (target === undefined ? action === 'ls' : selects(scope, target));
  if (!allowed) {
    throw new DepadError('DEPAD_FORBIDDEN', target === undefined ? `token ${token.name} may not ${action}` : `token ${token.name} may not ${action} ${target.name}`, {
      hint: 'use a token whose scope covers this (depad token ls shows scopes)',
    });
  }
}

/** Revokes the token with this name or ID (it stays listed, marked revoked). */
export async function revokeToken(store: Store, ref: string, now = new Date()): Promise<TokenRecord> {
  const match = (await store.listTokens()).find((t) => t.revokedAt === undefined && (t.name === ref || t.id === ref));
  if (match === undefined) throw new DepadError('DEPAD_NOT_FOUND', `no active token named or with ID ${JSON.stringify(ref)}`, { hint: 'list tokens with: depad token ls' });
  const revoked = { ...match, revokedAt: now.toISOString() };
  await store.batch().putToken(revoked).write();
  return revoked;
}
