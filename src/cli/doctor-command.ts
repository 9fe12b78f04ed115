/**
 * `depad doctor [--fix] [--yes] [--volumes]`: the findings of src/deploy/doctor.ts as a table (or
 * JSON), exit 14 (DEPAD_DOCTOR_FINDINGS) when there are any. `--fix` shows them, asks on a
 * terminal (or needs `--yes`), fixes them and reports what is left. Without an agent it works on
 * the state directly, under its lock, and leaves interrupted operations to --fix; with one, it
 * goes through `GET /v1/doctor` and `POST /v1/doctor/fix`, which run in the agent's queue.
 */
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { diagnose, doctorFix, type Diagnosis, type DoctorOptions, type Finding, type FixOutcome } from '../deploy/doctor.ts';
import { DepadError } from '../errors.ts';
import type { AgentClient } from './agent-client.ts';
import { agentFor } from './contexts.ts';
import { printJson, processOutput, progressPrinter, table, type Output } from './output.ts';
import { withState, type CommandOptions } from './runtime.ts';
import { counted } from '../plural.ts';

/** Where doctor's work is done: this process (under the state lock) or the agent. */
interface DoctorBackend {
  diagnose(): Promise<Diagnosis>;
  fix(keys: readonly string[]): Promise<FixOutcome>;
}

/** Adds `depad doctor`. */
export function addDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description("report engine objects, ports, routes and directories that disagree with depad's state; --fix puts them right")
    .option('--fix', 'fix what was found, after a confirmation')
    .option('-y, --yes', 'with --fix: do not ask (needed when stdin is not a terminal)')
    .option('--volumes', 'also remove orphan volumes and root directories (they hold data; kept otherwise)')
    .action(async (opts: CommandOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<CommandOptions>();
      const output = processOutput(Boolean(g.json));
      const fix = Boolean(opts.fix);
      const options: DoctorOptions = { volumes: Boolean(opts.volumes) };
      if (opts.yes && !fix) throw new DepadError('DEPAD_USAGE', '--yes goes with --fix', { hint: 'depad doctor --fix --yes' });
      if (fix && !opts.yes && !process.stdin.isTTY) {
        throw new DepadError('DEPAD_USAGE', 'depad doctor --fix asks before it changes anything, and stdin is not a terminal', {
          hint: 'see what it would do with depad doctor, then run depad doctor --fix --yes',
        });
      }
      const run = (backend: DoctorBackend) => runDoctor(backend, output, { fix, yes: Boolean(opts.yes) });
      const agent = await agentFor(g);
      if (agent) return run(agentBackend(agent, options, output));
      await withState(g, output, fix ? 'doctor --fix' : 'doctor', (ctx) => run({ diagnose: () => diagnose(ctx, options), fix: (keys) => doctorFix(ctx, options, keys) }), { recover: false });
    });
}

function agentBackend(agent: AgentClient, options: DoctorOptions, output: Output): DoctorBackend {
  return {
    diagnose: () => agent.request<Diagnosis>({ method: 'GET', path: `/v1/doctor${options.volumes ? '?volumes=true' : ''}` }),
    fix: (keys) => agent.request<FixOutcome>({ method: 'POST', path: '/v1/doctor/fix', body: { volumes: Boolean(options.volumes), findings: keys }, onProgress: progressPrinter(output) }),
  };
}

async function runDoctor(backend: DoctorBackend, output: Output, opts: { fix: boolean; yes: boolean }): Promise<void> {
  const found = await backend.diagnose();
  if (!opts.fix || !output.json) printDiagnosis(output, found);
  const actionable = found.findings.filter((f) => f.fix.action !== 'keep' && f.fix.action !== 'none');
  if (!opts.fix || actionable.length === 0) {
    if (opts.fix && output.json) printJson(output, { found, results: [], after: found });
    if (opts.fix && found.findings.length > 0) output.err('depad: nothing here that --fix changes\n');
    return finish(found, opts.fix ? 'left' : 'found');
  }
  const question = `${fixSummary(actionable)}? [y/N] `;
  if (!opts.yes && !(await confirm(question))) {
    throw new DepadError('DEPAD_DOCTOR_FINDINGS', 'not confirmed: nothing was changed', { hint: 'depad doctor --fix --yes fixes without asking' });
  }
  const outcome = await backend.fix(actionable.map((f) => f.key));
  if (output.json) printJson(output, { found, ...outcome });
  else {
    output.out('\n' + table(['RESULT', 'KIND', 'OBJECT', 'NOTE'], outcome.results.map((r) => [r.result, r.kind, r.object, r.note])));
    output.out(outcome.after.findings.length === 0 ? 'doctor: clean now\n' : `doctor: ${plural(outcome.after.findings.length, 'finding')} left (depad doctor lists them)\n`);
  }
  finish(outcome.after, 'left');
}

/** Exit 0 when clean; DEPAD_DOCTOR_FINDINGS (exit 14) otherwise. */
function finish(d: Diagnosis, how: 'found' | 'left'): void {
  const n = d.findings.length;
  if (n === 0) return;
  const message = how === 'found' ? `${plural(n, 'finding')}` : `${plural(n, 'finding')} left`;
  throw new DepadError('DEPAD_DOCTOR_FINDINGS', message, {
    hint: how === 'found' ? 'depad doctor --fix puts right what it can (it asks first)' : 'what is left needs --volumes or a person: see the FIX column of depad doctor',
    details: { findings: n },
  });
}

/** The findings table (stdout), or the diagnosis as JSON; notes about objects it leaves alone (stderr). */
function printDiagnosis(output: Output, d: Diagnosis): void {
  if (output.json) printJson(output, d);
  else if (d.findings.length === 0) output.out('doctor: no findings: the engine, the registry, the routes and the directories agree with the state\n');
  else output.out(table(['KIND', 'OBJECT', 'DEPLOYMENT', 'FIX'], d.findings.map((f) => [f.kind, f.object, deploymentText(f), fixText(f)])));
  if (d.unattributed.length > 0) {
    const by = (type: string) => d.unattributed.filter((o) => o.type === type).length;
    const counts = ['container', 'network', 'volume'].map((t) => [by(t), t] as const).filter(([n]) => n > 0).map(([n, t]) => plural(n, t)).join(', ');
    output.err(`depad: note: ${counts} with depad's labels but no home label belong to no deployment of this home (another depad home's, or made before depad labelled its home): left alone${output.json ? '' : '; --json lists them'}\n`);
  }
  if (d.otherHomes > 0) output.err(`depad: note: ${plural(d.otherHomes, 'object')} of other depad homes on this engine: left alone\n`);
}

function fixText(f: Finding): string {
  return f.fix.command ? `${f.fix.text} [${f.fix.command}]` : f.fix.text;
}

function deploymentText(f: Finding): string {
  const { name, id } = f.deployment ?? {};
  if (name !== undefined && id !== undefined) return `${name} (${id.slice(0, 12)})`;
  return name ?? id?.slice(0, 12) ?? '-';
}

/** What --fix will do, for the question: "remove 2 containers and 1 network, release 1 port". */
function fixSummary(findings: readonly Finding[]): string {
  const groups = new Map<string, Map<string, number>>();
  for (const f of findings) {
    const verb = { remove: 'remove', recreate: 're-create', release: 'release', register: 'reserve again', recover: 'recover', keep: 'keep', none: 'leave' }[f.fix.action];
    const things = groups.get(verb) ?? new Map<string, number>();
    const noun = thing(f);
    things.set(noun, (things.get(noun) ?? 0) + 1);
    groups.set(verb, things);
  }
  return [...groups].map(([verb, things]) => `${verb} ${[...things].map(([noun, n]) => plural(n, noun)).join(' and ')}`).join(', ');
}

function thing(f: Finding): string {
  if (f.kind.startsWith('port-')) return 'port';
  if (f.kind === 'orphan-root') return 'directory';
  if (f.kind === 'orphan-route') return 'set of routes';
  if (f.kind === 'interrupted-operation') return 'interrupted operation';
  return f.kind.replace(/^[a-z]+-/, '');
}

function plural(n: number, noun: string): string {
  return counted(n, noun, noun === 'directory' ? 'directories' : noun === 'set of routes' ? 'sets of routes' : undefined);
}

/** Asks on the terminal (the question on stderr: stdout keeps the results). */
export async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}
