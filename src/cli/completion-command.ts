/**
 * `depad completion bash|zsh|fish`: prints a completion script for the shell, generated from the
 * program's own commands (completion-scripts.ts), so new commands and options complete without
 * any change here.
 */
import { Argument, type Command } from 'commander';
import { completionScript, SHELLS, type Shell } from './completion-scripts.ts';

/** Adds `depad completion <shell>`; `program` is the whole program, whose commands the script completes. */
export function addCompletionCommand(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script: source <(depad completion bash); zsh and fish too')
    .addArgument(new Argument('<shell>', 'the shell').choices(SHELLS))
    .exitOverride()
    .action((shell: Shell) => {
      process.stdout.write(completionScript(shell, program));
    });
}
