/**
 * Scores a directory of compose files: how many depad's loader accepts as they are (the check
 * `depad config` and `create` run first: nothing is created), how many Debian's `docker-compose
 * config -q` accepts, and every refusal of depad's, grouped by reason; then how many depad accepts
 * once the host's policy allows all host access (every `--allow`, `--allow-host-path /`): the files
 * refused only for reaching the host, which an operator allows per host.
 *
 * Usage: scripts/node bench/compose-corpus.ts DIR [--envs ENVDIR] [--json]
 *   DIR holds the compose files (`*.yml`, `*.yaml`). A file X with a directory `X.ctx/` beside it
 *   is checked there, as the compose file found in it (the files it references sit beside it).
 *   Variables for X: `ENVDIR/X.env` if present, else `X.ctx/.env.project`, else none; both tools
 *   get the same ones (depad never reads its own environment; docker-compose runs with env -i).
 * The corpus is not in the repository: bench/compose-corpus-sources.md lists where its files come from.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, readEnvFile } from '../src/config/index.ts';
import { ALLOW_NAMES, EMPTY_POLICY, setActivePolicy, type HostPolicy } from '../src/config/host-access.ts';

interface Verdict {
  file: string;
  depad: { ok: boolean; issues: { path: string; message: string }[]; error?: string };
  /** depad with every host access allowed: what is left is not the host policy's. */
  allowed: { ok: boolean; issues: { path: string; message: string }[]; error?: string };
  compose: { ok: boolean; error?: string };
}

const args = process.argv.slice(2);
const dir = args.find((a) => !a.startsWith('--') && args[args.indexOf(a) - 1] !== '--envs');
const envs = args.includes('--envs') ? args[args.indexOf('--envs') + 1] : undefined;
if (dir === undefined) {
  console.error('usage: scripts/node bench/compose-corpus.ts DIR [--envs ENVDIR] [--json]');
  process.exit(2);
}

/** A host that allows every host access depad can carry out. */
const ALLOW_ALL: HostPolicy = { allow: [...ALLOW_NAMES, 'external-volume:*', 'external-network:*'], hostPaths: [{ path: '/', readOnly: false }] };

const exists = (p: string) => fs.stat(p).then(() => true, () => false);
// docker-compose wants a file for --env-file (not /dev/null): an empty one when a compose file has none.
const emptyEnv = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'depad-corpus-')), 'empty.env');
await fs.writeFile(emptyEnv, '');

async function checkOne(file: string): Promise<Verdict> {
  const base = path.basename(file);
  let target = file;
  const ctx = `${file}.ctx`;
  if (await exists(ctx)) {
    const inside = (await fs.readdir(ctx)).find((n) => /\.ya?ml$/.test(n));
    if (inside) target = path.join(ctx, inside);
  }
  let envPath: string | undefined;
  for (const candidate of [envs ? path.join(envs, `${base}.env`) : undefined, path.join(ctx, '.env.project')]) {
    if (envPath === undefined && candidate !== undefined && (await exists(candidate))) envPath = candidate;
  }
  const env = envPath ? await readEnvFile(envPath) : {};
  const depad = async (policy: HostPolicy): Promise<Verdict['depad']> => {
    setActivePolicy(policy);
    try {
      await loadConfig(target, env, { warn: () => {} });
      return { ok: true, issues: [] };
    } catch (error) {
      const e = error as { message?: string; issues?: { path: string; message: string }[] };
      return { ok: false, issues: (e.issues ?? []).map((i) => ({ path: i.path, message: i.message })), error: String(e.message ?? error).split('\n')[0] };
    }
  };
  const verdict: Verdict = { file: base, depad: await depad(EMPTY_POLICY), allowed: await depad(ALLOW_ALL), compose: { ok: true } };
  const compose = spawnSync('env', ['-i', `PATH=${process.env.PATH}`, `HOME=${process.env.HOME}`, 'docker-compose', '--project-directory', path.dirname(target), '--env-file', envPath ?? emptyEnv, '-f', target, 'config', '-q'], { encoding: 'utf8' });
  if (compose.error) verdict.compose = { ok: false, error: `docker-compose not runnable: ${compose.error.message}` };
  else if (compose.status !== 0) verdict.compose = { ok: false, error: compose.stderr.trim().split('\n').slice(-1)[0] ?? `exit ${compose.status}` };
  return verdict;
}

/** A reason's group: the key the issue is about and the message without its specifics. */
function reason(issue: { path: string; message: string }): string {
  if (issue.message.startsWith('unknown key')) return `unknown key ${issue.path.split('.').pop()?.replace(/\[\d+\]/g, '')}`;
  const key = issue.path.replace(/\[\d+\]/g, '[]').replace(/^services\.[^.[]+/, 'services.*').replace(/^(networks|volumes|secrets|configs)\.[^.[]+/, '$1.*');
  return `${key}: ${issue.message.split(';')[0]!.replace(/"[^"]*"/g, '"…"').replace(/'[^']*'/g, "'…'").replace(/\d+/g, 'N').slice(0, 120)}`;
}

const files = (await fs.readdir(dir)).filter((n) => /\.ya?ml$/.test(n)).sort().map((n) => path.join(dir, n));
const verdicts: Verdict[] = [];
for (const file of files) verdicts.push(await checkOne(file));
if (args.includes('--json')) {
  console.log(JSON.stringify(verdicts, null, 2));
} else {
  for (const v of verdicts) {
    const first = v.depad.issues[0] ? `${v.depad.issues[0].path}: ${v.depad.issues[0].message}` : v.depad.error ?? '';
    console.log(`${v.depad.ok ? 'ok  ' : 'FAIL'}  compose:${v.compose.ok ? 'ok  ' : 'FAIL'}  ${v.file}${v.depad.ok ? '' : `\n        ${first.slice(0, 200)}`}`);
  }
  const groups = new Map<string, Set<string>>();
  for (const v of verdicts) for (const i of v.depad.issues) (groups.get(reason(i)) ?? groups.set(reason(i), new Set()).get(reason(i))!).add(v.file);
  console.log(`\nfiles: ${verdicts.length}`);
  console.log(`depad accepts: ${verdicts.filter((v) => v.depad.ok).length}`);
  console.log(`docker-compose accepts: ${verdicts.filter((v) => v.compose.ok).length}`);
  console.log(`both accept: ${verdicts.filter((v) => v.compose.ok && v.depad.ok).length}; docker-compose only: ${verdicts.filter((v) => v.compose.ok && !v.depad.ok).length}; depad only: ${verdicts.filter((v) => !v.compose.ok && v.depad.ok).length}`);
  console.log('\ndepad refusals by reason (files):');
  for (const [r, set] of [...groups].sort((a, b) => b[1].size - a[1].size)) console.log(`  ${String(set.size).padStart(3)}  ${r}`);
  const allowed = verdicts.filter((v) => v.allowed.ok);
  console.log(`\nwith every host access allowed by the host's policy, depad accepts: ${allowed.length}; of the files docker-compose accepts: ${allowed.filter((v) => v.compose.ok).length} of ${verdicts.filter((v) => v.compose.ok).length}`);
  console.log('refused then (not for host access):');
  for (const v of verdicts.filter((x) => !x.allowed.ok)) {
    console.log(`  compose:${v.compose.ok ? 'ok  ' : 'FAIL'}  ${v.file}`);
    for (const i of v.allowed.issues.slice(0, 3)) console.log(`        ${`${i.path}: ${i.message}`.slice(0, 200)}`);
  }
}
