/**
 * Shell completion scripts (bash, zsh, fish) generated from the commander program itself: every
 * command and subcommand with its aliases, its options (and which take a value, so that the value
 * is skipped), and the global options. A command added to the program appears without anything
 * here changing. An argument or option value with choices completes with them; an argument
 * named `deployment` with the deployments' names (`depad ls -q`, run as the command was typed);
 * other values and arguments complete as file names.
 */
import type { Command } from 'commander';

/** One command of the tree, by its path of canonical names (`agent restart`; `` for the program). */
export interface CompletionNode {
  path: string;
  /** Subcommands: canonical name, aliases, description. */
  subcommands: { name: string; aliases: string[]; description: string }[];
  /** Its own options: every spelling (`-f`, `--follow`), whether it takes a value, the values it allows, description. */
  options: { flags: string[]; value: boolean; choices?: string[]; description: string }[];
  /** Its positional arguments, in order (`deployment`, `service`), with the values one allows. */
  args: { name: string; choices?: string[] }[];
}

/** The shells `depad completion` writes for. */
export const SHELLS = ['bash', 'zsh', 'fish'] as const;
/** One of SHELLS. */
export type Shell = (typeof SHELLS)[number];

/** Walks the program: one node per command, depth first, the program first. */
export function completionTree(program: Command): CompletionNode[] {
  const nodes: CompletionNode[] = [];
  const walk = (cmd: Command, path: string) => {
    nodes.push({
      path,
      subcommands: cmd.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden).map((c) => ({ name: c.name(), aliases: c.aliases(), description: c.description() })),
      options: cmd.options.filter((o) => !o.hidden).map((o) => ({ flags: [o.short, o.long].filter((f): f is string => f !== undefined), value: o.required || o.optional, ...(o.argChoices ? { choices: o.argChoices } : {}), description: o.description })),
      args: cmd.registeredArguments.map((a) => ({ name: a.name(), ...(a.argChoices ? { choices: a.argChoices } : {}) })),
    });
    for (const c of cmd.commands) walk(c, path === '' ? c.name() : `${path} ${c.name()}`);
  };
  walk(program, '');
  return nodes;
}

/** The completion script for `shell`, for the program named `name` (`depad`). */
export function completionScript(shell: Shell, program: Command): string {
  const nodes = completionTree(program);
  return { bash: bashScript, zsh: zshScript, fish: fishScript }[shell](program.name(), nodes);
}

/** A single-quoted shell word (bash, zsh and fish alike: no escapes inside but for the quote). */
function q(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** fish's single quotes: a backslash and a quote are escaped inside. */
function fq(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** A description on one line, short. */
function short(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 80 ? `${line.slice(0, 77)}...` : line;
}

/** Every argument and option that allows only some values: its keys (`path|name`, `path|--flag` per spelling) and the values. */
function choiceEntries(nodes: readonly CompletionNode[]): [string[], string[]][] {
  return nodes.flatMap((n) => [
    ...n.args.filter((a) => a.choices).map((a): [string[], string[]] => [[`${n.path}|${a.name}`], a.choices as string[]]),
    ...n.options.filter((o) => o.choices).map((o): [string[], string[]] => [o.flags.map((f) => `${n.path}|${f}`), o.choices as string[]]),
  ]);
}

/** The shell functions bash and zsh share: sub-commands, canonical names, options, valued options, arguments per path. */
function dataFunctions(fn: string, nodes: readonly CompletionNode[], withDescriptions: boolean): string {
  const entry = (words: string[]) => words.map(q).join(' ');
  const subs = nodes.filter((n) => n.subcommands.length > 0);
  const lines: string[] = [];
  // Sub-commands (with descriptions for zsh: "name:description").
  lines.push(`${fn}_subs() {`, '  case "$1" in');
  for (const n of subs) {
    const words = n.subcommands.flatMap((s) => [s.name, ...s.aliases].map((w) => (withDescriptions ? `${w}:${short(s.description)}` : w)));
    lines.push(`    ${q(n.path)}) printf '%s\\n' ${entry(words)} ;;`);
  }
  lines.push('  esac', '}');
  lines.push(`${fn}_canon() {`, '  case "$1|$2" in');
  for (const n of subs) for (const s of n.subcommands) lines.push(`    ${[s.name, ...s.aliases].map((w) => q(`${n.path}|${w}`)).join('|')}) echo ${q(s.name)} ;;`);
  lines.push('  esac', '}');
  lines.push(`${fn}_opts() {`, '  case "$1" in');
  for (const n of nodes) {
    const words = n.options.flatMap((o) => o.flags.map((f) => (withDescriptions ? `${f}:${short(o.description)}` : f)));
    if (words.length > 0) lines.push(`    ${q(n.path)}) printf '%s\\n' ${entry(words)} ;;`);
  }
  lines.push('  esac', '}');
  lines.push(`${fn}_valued() {`, '  case "$1" in');
  for (const n of nodes) {
    const words = n.options.filter((o) => o.value).flatMap((o) => o.flags);
    if (words.length > 0) lines.push(`    ${q(n.path)}) echo ${entry(words)} ;;`);
  }
  lines.push('  esac', '}');
  lines.push(`${fn}_args() {`, '  case "$1" in');
  for (const n of nodes) if (n.args.length > 0) lines.push(`    ${q(n.path)}) echo ${entry(n.args.map((a) => a.name))} ;;`);
  lines.push('  esac', '}');
  // The values an argument ("path|name") or an option ("path|--flag") allows.
  lines.push(`${fn}_values() {`, '  case "$1" in');
  for (const [key, values] of choiceEntries(nodes)) lines.push(`    ${key.map(q).join('|')}) echo ${entry(values)} ;;`);
  lines.push('  esac', '}');
  return lines.join('\n');
}

/**
 * The walk over the words before the cursor, in bash and zsh alike: sets `cmdpath` (canonical
 * names of the commands typed) and `npos` (arguments typed after it); an option that takes a
 * value skips the next word (`skip` holds that option while the cursor is on its value). Its
 * arguments are the words between the command's name and the cursor. `_choices KEY` prints the
 * values an argument or option allows (`path|name`, `path|--flag`), an option's own or a global one's.
 */
function walkFunction(fn: string): string {
  return `${fn}_walk() {
  local w c
  cmdpath= npos=0
  for w in "$@"; do
    if [ -n "$skip" ]; then skip=; continue; fi
    case "$w" in
      --*=*) ;;
      -*) case " $(${fn}_valued "$cmdpath") $(${fn}_valued '') " in *" $w "*) skip=$w ;; esac ;;
      *) c=$(${fn}_canon "$cmdpath" "$w")
         if [ -n "$c" ] && [ "$npos" = 0 ]; then cmdpath=\${cmdpath:+$cmdpath }$c; else npos=$((npos + 1)); fi ;;
    esac
  done
}
${fn}_choices() {
  local v
  v=$(${fn}_values "$1")
  [ -z "$v" ] && v=$(${fn}_values "|\${1#*|}")
  echo "$v"
}`;
}

function bashScript(name: string, nodes: readonly CompletionNode[]): string {
  const fn = `_${name.replace(/[^A-Za-z0-9_]/g, '_')}`;
  return `# bash completion for ${name}, generated by \`${name} completion bash\` from its commands.
# Load it in ~/.bashrc: source <(${name} completion bash)
${dataFunctions(fn, nodes, false)}
${walkFunction(fn)}
${fn}() {
  local cur=\${COMP_WORDS[COMP_CWORD]} cmdpath npos skip= arg=
  local -a args
  ${fn}_walk "\${COMP_WORDS[@]:1:COMP_CWORD-1}"
  # The value of an option: the ones it allows, else file names (complete -o default).
  if [ -n "$skip" ]; then
    COMPREPLY=($(compgen -W "$(${fn}_choices "$cmdpath|$skip")" -- "$cur"))
    return 0
  fi
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$(${fn}_opts "$cmdpath") $(${fn}_opts '') --help" -- "$cur"))
    return 0
  fi
  COMPREPLY=($(compgen -W "$(${fn}_subs "$cmdpath")" -- "$cur"))
  [ \${#COMPREPLY[@]} -gt 0 ] && return 0
  args=($(${fn}_args "$cmdpath"))
  # The argument at the cursor (the last one again past the end: variadic).
  if [ \${#args[@]} -gt 0 ]; then arg=\${args[npos]:-\${args[\${#args[@]}-1]}}; fi
  [ -z "$arg" ] && return 0
  COMPREPLY=($(compgen -W "$(${fn}_choices "$cmdpath|$arg")" -- "$cur"))
  if [ "$arg" = deployment ]; then COMPREPLY=($(compgen -W "$("\${COMP_WORDS[0]}" ls -q 2>/dev/null)" -- "$cur")); fi
  return 0
}
complete -o default -F ${fn} ${name}
`;
}

function zshScript(name: string, nodes: readonly CompletionNode[]): string {
  const fn = `_${name.replace(/[^A-Za-z0-9_]/g, '_')}`;
  return `#compdef ${name}
# zsh completion for ${name}, generated by \`${name} completion zsh\` from its commands.
# Load it in ~/.zshrc (after compinit): source <(${name} completion zsh)
${dataFunctions(fn, nodes, true)}
${walkFunction(fn)}
${fn}() {
  local cmdpath npos skip= arg=
  local -a items args
  ${fn}_walk "\${(@)words[2,CURRENT-1]}"
  if [[ -n $skip ]]; then
    items=(\${=$(${fn}_choices "$cmdpath|$skip")})
    if (( \${#items} > 0 )); then compadd -a items; else _files; fi
    return
  fi
  if [[ \${words[CURRENT]} == -* ]]; then
    items=(\${(f)"$(${fn}_opts "$cmdpath"; ${fn}_opts '')"} '--help:show help')
    _describe -t options option items
    return
  fi
  items=(\${(f)"$(${fn}_subs "$cmdpath")"})
  if (( \${#items} > 0 )); then _describe -t commands command items; return; fi
  args=(\${=$(${fn}_args "$cmdpath")})
  (( \${#args} > 0 )) && arg=\${args[npos+1]:-\${args[-1]}}
  items=(\${=$(${fn}_choices "$cmdpath|$arg")})
  if [[ $arg == deployment ]]; then items=(\${(f)"$(\${words[1]} ls -q 2>/dev/null)"}); fi
  if (( \${#items} > 0 )); then compadd -a items; else _files; fi
}
if (( $+functions[compdef] )); then compdef ${fn} ${name}; fi
`;
}

function fishScript(name: string, nodes: readonly CompletionNode[]): string {
  const fn = `__${name.replace(/[^A-Za-z0-9_]/g, '_')}`;
  const lines = [
    `# fish completion for ${name}, generated by \`${name} completion fish\` from its commands.`,
    `# Load it: ${name} completion fish > ~/.config/fish/completions/${name}.fish`,
    `function ${fn}_canon`,
    '    switch "$argv[1]|$argv[2]"',
  ];
  for (const n of nodes) for (const s of n.subcommands) lines.push(`        case ${[s.name, ...s.aliases].map((w) => fq(`${n.path}|${w}`)).join(' ')}`, `            echo ${fq(s.name)}`);
  lines.push('    end', 'end', `function ${fn}_valued`, '    switch "$argv[1]"');
  for (const n of nodes) {
    const words = n.options.filter((o) => o.value).flatMap((o) => o.flags);
    if (words.length > 0) lines.push(`        case ${fq(n.path)}`, `            printf '%s\\n' ${words.map(fq).join(' ')}`);
  }
  lines.push('    end', 'end', `function ${fn}_args`, '    switch "$argv[1]"');
  for (const n of nodes) if (n.args.length > 0) lines.push(`        case ${fq(n.path)}`, `            printf '%s\\n' ${n.args.map((a) => fq(a.name)).join(' ')}`);
  lines.push(
    '    end',
    'end',
    '# The commands typed (canonical names) and how many arguments after them: "agent restart|0".',
    `function ${fn}_state`,
    "    set -l cmdpath ''",
    '    set -l npos 0',
    '    set -l skip 0',
    '    set -l words (commandline -opc)',
    '    set -e words[1]',
    '    for w in $words',
    '        if test $skip = 1; set skip 0; continue; end',
    '        switch $w',
    "            case '--*=*'",
    "            case '-*'",
    `                if contains -- $w (${fn}_valued $cmdpath) (${fn}_valued '')`,
    '                    set skip 1',
    '                end',
    "            case '*'",
    `                set -l c (${fn}_canon $cmdpath $w)`,
    '                if test -n "$c" -a $npos = 0',
    '                    set cmdpath (string trim -- "$cmdpath $c")',
    '                else',
    '                    set npos (math $npos + 1)',
    '                end',
    '        end',
    '    end',
    '    echo "$cmdpath|$npos|$skip"',
    'end',
    '# At the command $argv[1] (_in: also on the value of one of its options).',
    `function ${fn}_at`,
    `    string match -q -- "$argv[1]|*|0" (${fn}_state)`,
    'end',
    `function ${fn}_in`,
    `    string match -q -- "$argv[1]|*" (${fn}_state)`,
    'end',
    '# The argument at the cursor, "path|name" (the last one again past the end: variadic); nothing on an option\'s value.',
    `function ${fn}_arg`,
    `    set -l state (string split '|' -- (${fn}_state))`,
    '    test $state[3] = 1; and return 1',
    `    set -l args (${fn}_args $state[1])`,
    '    test (count $args) -gt 0; or return 1',
    '    set -l i (math $state[2] + 1)',
    '    test $i -gt (count $args); and set i (count $args)',
    '    echo "$state[1]|$args[$i]"',
    'end',
    '# True when the argument at the cursor is named $argv[1] (of the command $argv[2], when given).',
    `function ${fn}_arg_is`,
    `    set -l at (string split '|' -- (${fn}_arg))`,
    '    test (count $at) -eq 2; or return 1',
    '    test "$at[2]" = "$argv[1]"; or return 1',
    '    test (count $argv) -lt 2; or test "$at[1]" = "$argv[2]"',
    'end',
  );
  for (const n of nodes) {
    for (const s of n.subcommands) {
      for (const w of [s.name, ...s.aliases]) lines.push(`complete -c ${name} -f -n ${fq(`${fn}_at ${fq(n.path)}`)} -a ${fq(w)} -d ${fq(short(s.description))}`);
    }
    for (const o of n.options) {
      const spell = o.flags.map((f) => (f.startsWith('--') ? `-l ${fq(f.slice(2))}` : `-s ${fq(f.slice(1))}`)).join(' ');
      const when = n.path === '' ? '' : ` -n ${fq(`${fn}_in ${fq(n.path)}`)}`;
      const value = o.choices ? ` -x -a ${fq(o.choices.join(' '))}` : o.value ? ' -r' : '';
      lines.push(`complete -c ${name}${when} ${spell}${value} -d ${fq(short(o.description))}`);
    }
    for (const a of n.args) if (a.choices) lines.push(`complete -c ${name} -f -n ${fq(`${fn}_arg_is ${fq(a.name)} ${fq(n.path)}`)} -a ${fq(a.choices.join(' '))}`);
  }
  lines.push(
    '# Deployment names, from the command as typed (bin/depad too).',
    `function ${fn}_deployments`,
    '    set -l words (commandline -opc)',
    '    command -q $words[1]; and command $words[1] ls -q 2>/dev/null',
    'end',
    `complete -c ${name} -f -n ${fq(`${fn}_arg_is deployment`)} -a ${fq(`(${fn}_deployments)`)}`,
  );
  return `${lines.join('\n')}\n`;
}
