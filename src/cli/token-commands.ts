/**
 * `depad token create|ls|revoke`: API tokens for the agent's management API. The token text is
 * printed once, by `create`, and never stored or shown again; `ls` shows names, IDs and scopes.
 */
import { Command } from 'commander';
import { createToken, parseScope, revokeToken, scopeText } from '../auth/tokens.ts';
import type { TokenRecord } from '../store/records.ts';
import { seg } from './agent-client.ts';
import { agentFor } from './contexts.ts';
import { printJson, processOutput, table } from './output.ts';
import { withStore, type CommandOptions } from './runtime.ts';
import { collect } from './option-parsers.ts';

type TokenView = Pick<TokenRecord, 'id' | 'name' | 'scope' | 'createdAt' | 'revokedAt'>;


/** Adds `depad token …` to `parent`. */
export function addTokenCommands(parent: Command): void {
  const token = parent.command('token').description('API tokens for the agent (admin, or deploy-only for selected deployments)').exitOverride();

  token
    .command('create')
    .description('make a token and print it once')
    .requiredOption('--name <name>', 'a name for the token (shown in listings and the audit log)')
    .requiredOption('--scope <scope>', 'admin, or deploy (with --deployment and/or --selector)')
    .option('-d, --deployment <name>', 'deploy scope: a deployment name, or a prefix ending in * (repeatable)', collect, [])
    .option('-l, --selector <labels>', 'deploy scope: labels every selected deployment has, e.g. class=web,env=prod (repeatable)', collect, [])
    .exitOverride()
    .action(async (opts: CommandOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<CommandOptions>();
      const output = processOutput(Boolean(g.json));
      const scope = parseScope(String(opts.scope), opts.deployment as string[], opts.selector as string[]);
      const agent = await agentFor(g);
      const { token: text, record } = agent
        ? await agent
            .request<TokenView & { token: string }>({ method: 'POST', path: '/v1/tokens', body: { name: opts.name, scope: opts.scope, deployments: opts.deployment, selector: opts.selector } })
            .then(({ token, ...record }) => ({ token, record }))
        : // The command line shown to a process that finds the state locked never includes the token.
          await withStore(g, `token create --name ${String(opts.name)}`, (store) => createToken(store, String(opts.name), scope));
      if (output.json) return printJson(output, { token: text, id: record.id, name: record.name, scope: record.scope, createdAt: record.createdAt });
      output.out(`${text}\n`);
      output.err(`depad: token ${record.name} (${record.id}, ${scopeText(record.scope)}) created. It is shown this once; store it as a secret.\n`);
    });

  token
    .command('ls')
    .alias('list')
    .description('list tokens (never their secrets)')
    .option('-a, --all', 'include revoked tokens')
    .exitOverride()
    .action(async (opts: CommandOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<CommandOptions>();
      const output = processOutput(Boolean(g.json));
      const agent = await agentFor(g);
      const all: TokenView[] = agent ? await agent.request<TokenView[]>({ method: 'GET', path: '/v1/tokens' }) : await withStore(g, 'token ls', (store) => store.listTokens());
      const tokens = all.filter((t) => opts.all || t.revokedAt === undefined);
      const views = tokens.map(({ id, name, scope, createdAt, revokedAt }) => ({ id, name, scope, createdAt, revokedAt }));
      if (output.json) return printJson(output, views);
      output.out(table(['NAME', 'ID', 'SCOPE', 'CREATED', 'REVOKED'], views.map((t) => [t.name, t.id, scopeText(t.scope), t.createdAt.slice(0, 19).replace('T', ' '), t.revokedAt?.slice(0, 19).replace('T', ' ') ?? '-'])));
    });

  token
    .command('revoke <token>')
    .description('revoke a token by name or ID (it stops working at once)')
    .exitOverride()
    .action(async (ref: string, _opts: CommandOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<CommandOptions>();
      const output = processOutput(Boolean(g.json));
      const agent = await agentFor(g);
      const record = agent
        ? await agent.request<TokenView>({ method: 'DELETE', path: `/v1/tokens/${seg(ref)}` })
        : await withStore(g, `token revoke ${ref}`, (store) => revokeToken(store, ref));
      if (output.json) return printJson(output, { id: record.id, name: record.name, revokedAt: record.revokedAt });
      output.out(`token ${record.name} (${record.id}) revoked\n`);
    });
}
