/** The `depad` command line. */
import { Command, CommanderError } from 'commander';
import { setActivePolicy } from '../config/host-access.ts';
import { addPolicyCommand, cliHostPolicy } from './policy-command.ts';
import type { GlobalOptions } from './runtime.ts';
import { DepadError } from '../errors.ts';
import { addAgentCommand } from './agent-command.ts';
import { addManagerCommands } from './manager-commands.ts';
import { addContextCommands } from './context-commands.ts';
import { addDeploymentCommands } from './deployment-commands.ts';
import { addProxyCommand } from './proxy-command.ts';
import { addTokenCommands } from './token-commands.ts';
import { addCertCommands } from './cert-commands.ts';
import { addUpdateCommands } from './update-commands.ts';
import { addServiceCommands } from './service-commands.ts';
import { addStatsCommand } from './stats-command.ts';
import { addHealthCommand } from './health-command.ts';
import { addWorkflowCommands } from './workflow-commands.ts';
import { addDoctorCommand } from './doctor-command.ts';
import { addEventsCommand } from './events-command.ts';
import { addVersionCommand } from './version-command.ts';
import { addVolumeCommands } from './volume-commands.ts';
import { addCompletionCommand } from './completion-command.ts';
import { addConfigCommand } from './config-command.ts';
import { depadVersion } from '../version.ts';
import { processOutput, reportError } from './output.ts';
import { endQuietlyWhenOutputCloses } from './closed-output.ts';

/** Options of `buildProgram`. */
export interface ProgramOptions {
  /** `--json` was given: commander prints no usage errors of its own (main reports them as JSON). */
  json?: boolean;
}

/** Builds the program: every deployment verb as `depad <verb>` and `depad deployment <verb>`. */
export function buildProgram(options: ProgramOptions = {}): Command {
  const program = new Command('depad')
    .description('Deploy the same application many times on your own hosts, isolated, and update it without downtime.')
    .version(depadVersion())
    .option('--json', 'machine-readable output on stdout (errors as JSON on stderr)')
    .option('--home <dir>', "depad's data directory (default: DEPAD_HOME, /var/lib/depad as root, else ~/.local/share/depad)")
    .option('--host <url>', 'a remote agent, https://host[:port] (default: DEPAD_HOST)')
    .option('--token <token>', 'the token for --host (default: DEPAD_TOKEN)')
    .option('--ca-fingerprint <sha256>', "the agent's CA fingerprint for --host (default: DEPAD_CA_FINGERPRINT)")
    .option('--context <name>', 'a saved remote agent (default: DEPAD_CONTEXT, else the current context)')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  // Every subcommand made with .command() inherits these (commander copies them at creation).
  if (options.json) program.configureOutput({ outputError: () => {} }).showHelpAfterError(false);
  // The host-access policy of the home (src/deploy/host-policy.ts) applies to every config this process validates.
  program.hook('preAction', async (_program, action) => setActivePolicy(await cliHostPolicy(action.optsWithGlobals<GlobalOptions>())));
  addDeploymentCommands(program);
  addUpdateCommands(program);
  addPolicyCommand(program);
  addProxyCommand(program);
  addTokenCommands(program);
  addCertCommands(program);
  addStatsCommand(program);
  addHealthCommand(program);
  addWorkflowCommands(program);
  addDoctorCommand(program);
  addAgentCommand(program);
  addManagerCommands(program);
  addContextCommands(program);
  addEventsCommand(program);
  addVolumeCommands(program);
  addVersionCommand(program);
  addCompletionCommand(program);
  addConfigCommand(program);
  addServiceCommands(program, async (argv) => void (await buildProgram(options).parseAsync(argv, { from: 'user' })));
  const deployment = program.command('deployment').description('the same verbs, spelled depad deployment <verb>').exitOverride();
  addDeploymentCommands(deployment);
  addUpdateCommands(deployment);
  return program;
}

/** Runs the CLI and returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const json = argv.includes('--json');
  try {
    await buildProgram({ json }).parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return 0;
      const usage = new DepadError('DEPAD_USAGE', error.message.replace(/^error: /, ''), { hint: 'run the command with --help for its usage', details: { reason: error.code } });
      // Without --json commander has printed it already.
      return json ? reportError(processOutput(true), usage) : usage.exitCode;
    }
    return reportError(processOutput(json), error);
  }
}

endQuietlyWhenOutputCloses();
// bin/depad puts "--" before the user's arguments (so Node itself leaves them alone); drop it.
const args = process.argv.slice(2);
process.exitCode = await main(args[0] === '--' ? args.slice(1) : args);
