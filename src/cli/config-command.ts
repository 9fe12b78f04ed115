/**
 * `depad config`: like `docker compose config`, validates a deployment file (with its include,
 * extends, profiles and variables) and prints the normalized file, or `--json` the same as JSON.
 * Needs no engine, no agent and no state: it never opens the data directory.
 */
import { Option, type Command } from 'commander';
import { stringify } from 'yaml';
import { normalizedCompose } from '../config/normalize.ts';
import { readConfigInput } from './config-input.ts';
import { collect } from './option-parsers.ts';
import { printJson, processOutput } from './output.ts';
import type { CommandOptions } from './runtime.ts';

/** Adds `depad config`. */
export function addConfigCommand(program: Command): void {
  program
    .command('config')
    .description('validate a deployment file and print it normalized (variables, include, extends and profiles resolved), like docker compose config')
    .addOption(new Option('-f, --config-file <file>', 'the deployment file (docker-compose format)').makeOptionMandatory())
    .option('-e, --env <KEY=VALUE>', 'a variable for ${VAR} in the config (repeatable)', collect, [])
    .option('--env-file <file>', 'a file of KEY=VALUE lines (repeatable; replaces the .env beside the config; --env wins)', collect, [])
    .option('--profile <name>', 'activate a profile (repeatable; over COMPOSE_PROFILES)', collect, [])
    .option('-q, --quiet', 'only validate: print nothing, exit 0 when valid')
    .option('--services', 'print the names of the services that would run, one a line')
    .action(async (opts: CommandOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<CommandOptions>();
      const output = processOutput(Boolean(g.json));
      const input = await readConfigInput(String(opts.configFile), opts.env as string[], opts.envFile as string[], output, opts.profile as string[]);
      if (opts.quiet) return;
      if (opts.services) {
        const names = Object.keys(input.spec.services);
        return output.json ? printJson(output, names) : output.out(names.map((n) => `${n}\n`).join(''));
      }
      const doc = normalizedCompose(input.spec);
      if (output.json) return printJson(output, doc);
      output.out(stringify(doc, { version: '1.1', sortMapEntries: false, lineWidth: 0, aliasDuplicateObjects: false }));
    });
}
