/**
 * `depad context add|ls|use|rm`: saved remote agents (see contexts.ts). `add` pins the agent's CA
 * by its fingerprint and checks the token against the agent before saving anything.
 */
import { Command } from 'commander';
import { NAME_PATTERN } from '../deploy/resolve.ts';
import { DepadError } from '../errors.ts';
import { AgentClient } from './agent-client.ts';
import { contextsPath, parseAgentUrl, pinnedClient, readContexts, writeContexts } from './contexts.ts';
import { parseSshUrl } from './ssh-transport.ts';
import { printJson, processOutput, table } from './output.ts';
import type { CommandOptions } from './runtime.ts';

/** Adds `depad context …` to `parent`. */
export function addContextCommands(parent: Command): void {
  const context = parent.command('context').description('saved remote agents (address, token, pinned CA)').exitOverride();

  context
    .command('add <name>')
    .description("save a remote agent; its CA is fetched and checked against the fingerprint it printed")
    .requiredOption('--agent <url>', 'the agent: https://host[:port], or ssh://user@host[:port][/depad-home]')
    .option('--fingerprint <sha256>', "https: the agent's CA fingerprint (printed at its first start); omit it for an agent with a public certificate")
    .option('--use', 'make it the current context')
    .exitOverride()
    .action(async (name: string, opts: CommandOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<CommandOptions>();
      const output = processOutput(Boolean(g.json));
      if (!NAME_PATTERN.test(name) || name === 'local') throw new DepadError('DEPAD_NAME_INVALID', `invalid context name ${JSON.stringify(name)}`, { hint: 'lowercase letters, digits and -; "local" is reserved' });
      const url = parseAgentUrl(String(opts.agent));
      const file = await readContexts();
      if (url.protocol === 'ssh:') {
        await new AgentClient({ kind: 'ssh', target: parseSshUrl(url) }).request({ method: 'GET', path: '/v1/openapi.json' }); // it answers
        file.contexts[name] = { host: url.href };
      } else {
        const token = g.token ?? process.env.DEPAD_TOKEN;
        if (!token) throw new DepadError('DEPAD_USAGE', 'an HTTPS context needs a token', { hint: 'set DEPAD_TOKEN (or pass --token) for depad context add' });
        if (opts.fingerprint === undefined) {
          // An agent with a public certificate (depad agent --acme --hostname NAME): the system's trust store decides.
          await new AgentClient({ kind: 'https', url, token }).request({ method: 'GET', path: '/v1/openapi.json' });
          file.contexts[name] = { host: url.origin, token };
        } else {
          const { client, ca } = await pinnedClient(url, token, String(opts.fingerprint));
          await client.request({ method: 'GET', path: '/v1/openapi.json' }); // the token works
          file.contexts[name] = { host: url.origin, token, ca, fingerprint: String(opts.fingerprint).toUpperCase() };
        }
      }
      if (opts.use) file.current = name;
      await writeContexts(file);
      const shown = file.contexts[name]?.host ?? url.origin;
      if (output.json) printJson(output, { added: name, host: shown, current: file.current === name });
      else output.out(`context ${name}: ${shown} saved${file.current === name ? ' and in use' : ''} (${contextsPath()})\n`);
    });

  context
    .command('ls')
    .alias('list')
    .description('list saved agents (never their tokens)')
    .exitOverride()
    .action(async (_opts: CommandOptions, cmd: Command) => {
      const output = processOutput(Boolean(cmd.optsWithGlobals<CommandOptions>().json));
      const file = await readContexts();
      const rows = Object.entries(file.contexts).map(([name, c]) => ({ name, host: c.host, current: file.current === name }));
      if (output.json) return printJson(output, rows);
      output.out(table(['CURRENT', 'NAME', 'AGENT'], [[file.current === undefined ? '*' : ' ', 'local', 'this host'], ...rows.map((r) => [r.current ? '*' : ' ', r.name, r.host])]));
    });

  context
    .command('use <name>')
    .description('talk to this agent from now on ("local": this host)')
    .exitOverride()
    .action(async (name: string, _opts: CommandOptions, cmd: Command) => {
      const output = processOutput(Boolean(cmd.optsWithGlobals<CommandOptions>().json));
      const file = await readContexts();
      if (name !== 'local' && file.contexts[name] === undefined) throw new DepadError('DEPAD_NOT_FOUND', `no context named ${name}`, { hint: 'list them with: depad context ls' });
      const previous = file.current ?? 'local';
      if (name === 'local') delete file.current;
      else file.current = name;
      await writeContexts(file);
      const host = name === 'local' ? 'this host' : (file.contexts[name]?.host ?? '');
      if (output.json) return printJson(output, { current: name, host, previous });
      output.out(`using context ${name} (${host})\n`);
    });

  context
    .command('rm <name>')
    .description('forget a saved agent (and its token)')
    .exitOverride()
    .action(async (name: string) => {
      const file = await readContexts();
      if (file.contexts[name] === undefined) throw new DepadError('DEPAD_NOT_FOUND', `no context named ${name}`);
      delete file.contexts[name];
      if (file.current === name) delete file.current;
      await writeContexts(file);
    });
}
