/**
 * `depad policy show`: the host-access policy that applies in this home (src/config/host-access.ts):
 * `<home>/host-policy.json` and the running agent's `--allow` / `--allow-host-path` flags.
 */
import type { Command } from 'commander';
import { loadHostPolicy, policyFile, readPolicyFile } from '../deploy/host-policy.ts';
import { resolveHome } from '../home.ts';
import { printJson, processOutput } from './output.ts';
import type { CommandOptions, GlobalOptions } from './runtime.ts';
import { ALLOW_NAMES, EXTERNAL_NETWORK, EXTERNAL_VOLUME, type HostPolicy } from '../config/host-access.ts';
import { readContexts } from './contexts.ts';

/**
 * The policy this CLI process validates configs with: the home's (its file and the local agent's
 * flags), or, when the command goes to a remote agent (--host, DEPAD_HOST, a context), everything:
 * the remote agent validates the config again with its own policy, which is the one that counts.
 */
export async function cliHostPolicy(globals: GlobalOptions, env: NodeJS.ProcessEnv = process.env): Promise<HostPolicy> {
  const host = globals.host ?? env.DEPAD_HOST;
  const context = globals.context ?? env.DEPAD_CONTEXT ?? (await readContexts().catch(() => ({ current: undefined }))).current;
  if ((host !== undefined && host !== '') || (context !== undefined && context !== '' && context !== 'local')) {
    return { allow: [...ALLOW_NAMES, `${EXTERNAL_VOLUME}*`, `${EXTERNAL_NETWORK}*`], hostPaths: [{ path: '/', readOnly: false }], file: "the remote agent's policy" };
  }
  return loadHostPolicy(globals.home ?? resolveHome());
}

/** Adds `depad policy show`. */
export function addPolicyCommand(program: Command): void {
  const policy = program.command('policy').description('the host-access policy: what configs may reach on this host (README, "Host access")');
  policy
    .command('show')
    .description('print the policy in effect: the policy file and the running agent\'s flags')
    .action(async (_opts: CommandOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<CommandOptions>();
      const output = processOutput(Boolean(g.json));
      const home = g.home ?? resolveHome();
      const fromFile = await readPolicyFile(home);
      const effective = await loadHostPolicy(home);
      const paths = effective.hostPaths.map((p) => `${p.path}${p.readOnly ? ':ro' : ''}`);
      if (output.json) return printJson(output, { file: policyFile(home), allow: effective.allow, hostPaths: paths, fromFile: { allow: fromFile.allow, hostPaths: fromFile.hostPaths.map((p) => `${p.path}${p.readOnly ? ':ro' : ''}`) } });
      output.out(
        `policy file  ${policyFile(home)}${fromFile.allow.length + fromFile.hostPaths.length === 0 ? ' (none, or empty)' : ''}\n` +
          `allow        ${effective.allow.join(', ') || '-'}\n` +
          `host paths   ${paths.join(', ') || '-'}\n`,
      );
    });
}
