/**
 * `depad completion bash|zsh|fish`: the bash script, printed by the real CLI and sourced in bash,
 * registers itself (`complete -p depad`) and completes, in a COMP_WORDS simulation, commands
 * (`depad upd` → update), subcommands and their options, option values (skipped, or their
 * choices), arguments with choices and deployments' names. The script comes from the program:
 * a command added to a program appears in its script. fish (its own `complete -C`) and zsh (the
 * script's functions with the completion builtins stubbed) are checked where they are installed.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { Command } from 'commander';
import { completionScript } from '../src/cli/completion-scripts.ts';
import { DEPAD, EXAMPLES, harness } from './helpers/harness.ts';

const has = (shell: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${shell}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

/** What bash completes for each line (the last word is the one under the cursor), with `script` sourced. */
function bashCompletes(script: string, lines: string[][], env: Record<string, string> = {}): string[] {
  const program = [
    `source ${script}`,
    'complete -p depad',
    't() { COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMPREPLY=(); _depad; echo "${COMPREPLY[*]}"; }',
    ...lines.map((l) => `t ${l.map((w) => `'${w}'`).join(' ')}`),
  ].join('\n');
  return execFileSync('bash', ['--norc', '-c', program], { encoding: 'utf8', env: { ...process.env, ...env } }).split('\n').slice(0, -1);
}

test('the bash script from depad completion bash completes commands, subcommands, options, values and deployments', async (t) => {
  const h = await harness(t);
  const printed = await h.run(['completion', 'bash']);
  t.is(printed.code, 0, printed.stderr);
  const script = path.join(h.dir, 'depad.bash');
  await fs.writeFile(script, printed.stdout);
  const name = h.name('comp');
  t.is((await h.run(['create', '-n', name, '-f', path.join(EXAMPLES, 'hello/depad.yml')])).code, 0);

  const [registered, ...answers] = bashCompletes(script, [
    ['depad', 'upd'],
    ['depad', 'agent', ''],
    ['depad', 'agent', 'restart', '--dr'],
    ['depad', '--home', '/x', 'ag'],
    ['depad', 'logs', 'x', '-f', '--ta'],
    ['depad', 'deployment', 'up'],
    ['depad', 'context', 'l'],
    ['depad', 'update', 'x', '--pull', ''],
    ['depad', 'create', '-f', ''],
    ['depad', 'completion', ''],
    ['depad', 'inspect', name.slice(0, -1)],
    ['depad', 'service', 'stop', name, 'w'],
  ], { DEPAD_HOME: h.home, DEPAD_PORT_RANGE: h.portRange, PATH: `${path.dirname(DEPAD)}:${process.env.PATH ?? ''}` });
  t.is(registered, 'complete -o default -F _depad depad');
  t.deepEqual(answers, [
    'update',
    'restart status stop fingerprint',
    '--drain-timeout',
    'agent',
    '--tail',
    'update',
    'ls list',
    'missing never',
    '', // a value: file names (-o default)
    'bash zsh fish',
    name,
    '', // the service: file names
  ]);
});

test('the script follows the program: a new command, its options and aliases appear without a change', (t) => {
  const program = new Command('depad').option('--json');
  program.command('frobnicate <deployment>').alias('frob').option('--level <n>', 'how much').option('--dry');
  const script = completionScript('bash', program);
  t.regex(script, /'frobnicate' 'frob'/);
  t.regex(script, /'frobnicate'\) printf '%s\\n' '--level' '--dry' ;;/);
  t.regex(script, /'frobnicate'\) echo '--level' ;;/, 'an option that takes a value');
  t.regex(script, /'frobnicate'\) echo 'deployment' ;;/);
  for (const shell of ['zsh', 'fish'] as const) t.true(completionScript(shell, program).includes('frobnicate'), shell);
});

test('fish: its own completer reads the script', async (t) => {
  t.true(has('fish'), 'fish is installed (scripts/setup installs it)');
  const h = await harness(t);
  const script = path.join(h.dir, 'depad.fish');
  await fs.writeFile(script, (await h.run(['completion', 'fish'])).stdout);
  const complete = (line: string) => execFileSync('fish', ['--no-config', '-c', `source ${script}; complete -C'${line}'`], { encoding: 'utf8' }).split('\n').filter(Boolean).map((l) => l.split('\t')[0]);
  t.deepEqual(complete('depad upd'), ['update']);
  t.deepEqual(complete('depad agent restart --dr'), ['--drain-timeout']);
  t.deepEqual(complete('depad --home /x agent s').sort(), ['status', 'stop']);
  t.deepEqual(complete('depad update x --pull ').sort(), ['missing', 'never']);
  t.deepEqual(complete('depad completion ').sort(), ['bash', 'fish', 'zsh']);
});

test('zsh: the script parses and its functions offer the same words', async (t) => {
  t.true(has('zsh'), 'zsh is installed (scripts/setup installs it)');
  const h = await harness(t);
  const script = path.join(h.dir, 'depad.zsh');
  await fs.writeFile(script, (await h.run(['completion', 'zsh'])).stdout);
  // The completion builtins stubbed: each prints the words it was given.
  const program = [
    `source ${script}`,
    '_describe() { print -rl -- "${(@P)4}" | cut -d: -f1 | sort | tr "\\n" " "; echo; }',
    'compadd() { shift; print -r -- "${(@P)1}"; }',
    '_files() { echo FILES; }',
    't() { words=("$@"); CURRENT=${#words}; _depad; }',
    't depad agent ""',
    't depad agent restart --dr',
    't depad update x --pull ""',
    't depad create -f ""',
  ].join('\n');
  const lines = execFileSync('zsh', ['-f', '-c', program], { encoding: 'utf8' }).split('\n');
  t.is(lines[0]?.trim(), 'fingerprint restart status stop');
  t.true(lines[1]?.split(' ').includes('--drain-timeout'));
  t.is(lines[2], 'missing never');
  t.is(lines[3], 'FILES');
});
