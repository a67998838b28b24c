/**
 * `inferd keys create|list|rotate|revoke`: API keys in the registry database. The secret is
 * printed once, at creation or rotation; only its keyed hash is stored, so the command needs
 * the server's pepper (from the configuration's security block, or --pepper-file). Changes
 * are written to the audit log when the configuration turns it on.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { ConfigError } from '../config/validate.js';
import { checkpointSigner } from '../security/audit/keys.js';
import { AuditLog } from '../security/audit/log.js';
import { ApiKeyStore, type ApiKeyRecord } from '../security/authn/api-keys.js';
import { readSecret, requireLength } from '../security/secrets.js';
import { parseDuration, runSecurityCommand, SecurityCommand, table, UsageError, when, withCommon, type CliContext } from './security-common.js';

function collect(text: string, previous: string[] = []): string[] {
  if (text.trim() === '') throw new InvalidArgumentError('an empty value');
  return [...previous, text.trim()];
}

/** Revoking and listing hash nothing, so they run without the pepper. */
function keyStore(ctx: CliContext, pepperFile: string | undefined, needsPepper = true): ApiKeyStore {
  const source = pepperFile !== undefined ? { file: pepperFile } : ctx.security.authentication.api_keys.pepper;
  if (source === undefined && needsPepper) {
    throw new ConfigError('the API key pepper is needed to hash keys: pass --config <server config> with security.authentication.api_keys.pepper, or --pepper-file <file>');
  }
  const pepper = source === undefined ? Buffer.alloc(32) : requireLength(readSecret(source, 'API key pepper'), 32, 'the API key pepper');
  const audit = ctx.security.audit.enabled && ctx.security.audit.signing_key !== undefined
    ? new AuditLog(ctx.db, { signingKey: checkpointSigner(ctx.security.audit)!, checkpointEvery: ctx.security.audit.checkpoint_every })
    : undefined;
  return new ApiKeyStore(ctx.db, {
    pepper,
    cacheTtlMs: 0,
    ...(audit !== undefined ? { onChange: async (c) => void (await audit.append({ actor: c.actor, action: c.action, target: `key/${c.id}`, outcome: 'ok', details: c.details })) } : {}),
  });
}

function state(record: ApiKeyRecord, now = Date.now()): string {
  if (record.revokedAt !== null) return `revoked ${when(record.revokedAt)}`;
  if (record.expiresAt !== null && now >= record.expiresAt) return 'expired';
  if (record.previousExpiresAt !== null && now < record.previousExpiresAt) return `rotating (old secret until ${when(record.previousExpiresAt)})`;
  return 'active';
}

function checkRoles(ctx: CliContext, roles: string[]): void {
  const known = new Set(['admin', ...Object.keys(ctx.security.authorization.roles)]);
  // Without a configuration the roles cannot be checked; with one, a typo is caught here.
  if (Object.keys(ctx.security.authorization.roles).length === 0) return;
  const unknown = roles.filter((r) => !known.has(r));
  if (unknown.length > 0) throw new UsageError(`unknown role(s) ${unknown.map((r) => `'${r}'`).join(', ')}; the configuration defines ${[...known].join(', ')}`);
}

function printIssued(ctx: CliContext, key: string, record: ApiKeyRecord, verb: string): void {
  if (ctx.json) return ctx.printJson({ key, ...record });
  ctx.print(`${verb} API key ${record.id} (${record.name}), roles ${record.roles.join(', ')}${record.models !== null ? `, models ${record.models.join(', ')}` : ''}`);
  ctx.print('the key (shown once; store it now):');
  ctx.print(`  ${key}`);
}

export function registerKeysCommand(program: Command): void {
  const keys = new SecurityCommand('keys');
  keys.copyInheritedSettings(program);
  keys.description('manage API keys: create, list, rotate with an overlap window, revoke');
  program.addCommand(keys);
  const pepperOption = () => new Option('--pepper-file <file>', 'file holding the server\'s API key pepper (instead of the configuration\'s)');

  withCommon(
    keys
      .command('create')
      .description('create an API key; prints it once')
      .requiredOption('--name <name>', 'what the key is for (shown in lists and logs)')
      .addOption(new Option('--role <role>', 'a role the key carries (repeatable)').argParser(collect).makeOptionMandatory())
      .addOption(new Option('--model <pattern>', 'limit the key to models matching this name or glob (repeatable)').argParser(collect))
      .option('--expires-in <duration>', 'expire after this long (90s, 30m, 24h, 7d)')
      .addOption(pepperOption()),
  ).action(async (_options: unknown, command: Command) => {
    const o = command.opts<{ name: string; role: string[]; model?: string[]; expiresIn?: string; pepperFile?: string }>();
    await runSecurityCommand(command, async (ctx) => {
      checkRoles(ctx, o.role);
      const expiresAt = o.expiresIn === undefined ? undefined : Date.now() + parseDuration(o.expiresIn);
      const { key, record } = await keyStore(ctx, o.pepperFile).create(
        { name: o.name, roles: o.role, ...(o.model !== undefined ? { models: o.model } : {}), ...(expiresAt !== undefined ? { expiresAt } : {}) },
        ctx.actor,
      );
      printIssued(ctx, key, record, 'created');
    });
  });

  withCommon(keys.command('list').description('list API keys (never their secrets)')).action(async (_options: unknown, command: Command) => {
    await runSecurityCommand(command, async (ctx) => {
      // Listing needs no pepper: it reads records only.
      const list = await keyStore(ctx, undefined, false).list();
      if (ctx.json) return ctx.printJson(list.map((r) => ({ ...r, state: state(r) })));
      if (list.length === 0) return ctx.print('no API keys');
      ctx.print(
        table(
          ['ID', 'NAME', 'ROLES', 'MODELS', 'CREATED', 'BY', 'EXPIRES', 'STATE'],
          list.map((r) => [r.id, r.name, r.roles.join(','), r.models?.join(',') ?? '*', when(r.createdAt), r.createdBy, when(r.expiresAt), state(r)]),
        ),
      );
    });
  });

  withCommon(
    keys
      .command('rotate')
      .description('give a key a new secret; the old one keeps working for the overlap window')
      .argument('<id>', 'key id (16 hex digits)')
      .option('--overlap <duration>', 'how long the old secret stays valid (0 ends it now)', '24h')
      .addOption(pepperOption()),
  ).action(async (id: string, _options: unknown, command: Command) => {
    const o = command.opts<{ overlap: string; pepperFile?: string }>();
    await runSecurityCommand(command, async (ctx) => {
      const { key, record } = await keyStore(ctx, o.pepperFile).rotate(id, parseDuration(o.overlap), ctx.actor);
      printIssued(ctx, key, record, 'rotated');
      if (!ctx.json && record.previousExpiresAt !== null) ctx.print(`the previous secret works until ${when(record.previousExpiresAt)}`);
    });
  });

  withCommon(
    keys
      .command('revoke')
      .description('revoke a key at once (servers that cached it stop accepting it within api_keys.cache_ttl_ms)')
      .argument('<id>', 'key id (16 hex digits)')
      .addOption(pepperOption()),
  ).action(async (id: string, _options: unknown, command: Command) => {
    const o = command.opts<{ pepperFile?: string }>();
    await runSecurityCommand(command, async (ctx) => {
      const record = await keyStore(ctx, o.pepperFile, false).revoke(id, ctx.actor);
      if (ctx.json) return ctx.printJson(record);
      ctx.print(`revoked API key ${record.id} (${record.name})`);
    });
  });
}
