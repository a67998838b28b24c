/**
 * `inferd audit verify|export`: checks the audit chain and its signed checkpoints, naming every
 * edited, deleted, re-ordered or rewritten record (exit status 1 when any is found), and
 * exports records as JSON lines.
 */
import { Command, InvalidArgumentError } from 'commander';
import type { CheckpointVerifier } from '../security/audit/chain.js';
import { checkpointPublicKey, checkpointVerifier } from '../security/audit/keys.js';
import { AuditLog } from '../security/audit/log.js';
import { readSecret } from '../security/secrets.js';
import { runSecurityCommand, SecurityCommand, withCommon, type CliContext } from './security-common.js';

class AuditFailed extends Error {}

function verifier(ctx: CliContext, o: { signingKeyFile?: string; publicKeyFile?: string }): Buffer | CheckpointVerifier | undefined {
  if (o.publicKeyFile !== undefined) return checkpointPublicKey(o.publicKeyFile);
  if (o.signingKeyFile !== undefined) return readSecret({ file: o.signingKeyFile }, 'audit signing key');
  return checkpointVerifier(ctx.security.audit);
}

function seqArg(text: string): number {
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(Number(text))) throw new InvalidArgumentError(`'${text}' is not a record number`);
  return Number(text);
}

export function registerAuditCommand(program: Command): void {
  const audit = new SecurityCommand('audit');
  audit.copyInheritedSettings(program);
  audit.description('check and export the tamper-evident audit log');
  program.addCommand(audit);

  withCommon(
    audit
      .command('verify')
      .description('check every record\'s hash and link and every signed checkpoint; exit status 1 names what was tampered with')
      .option('--signing-key-file <file>', 'HMAC checkpoint secret (default: the configuration\'s security.audit.signing_key)')
      .option('--public-key-file <file>', 'Ed25519 public key (PEM) of the checkpoints (default: security.audit.public_key_file, else the signing key)'),
  ).action(async (_options: unknown, command: Command) => {
    const o = command.opts<{ signingKeyFile?: string; publicKeyFile?: string }>();
    await runSecurityCommand(command, async (ctx) => {
      const key = verifier(ctx, o);
      const result = await new AuditLog(ctx.db).verify(key);
      if (ctx.json) ctx.printJson(result);
      else {
        const head = result.head === null ? 'empty' : `head record ${result.head.seq} (${result.head.hash.slice(0, 16)})`;
        const signatures = key === undefined ? 'signatures not checked: no key given' : `${result.signaturesChecked} signatures checked`;
        ctx.print(`${result.records} records, ${result.checkpoints} checkpoints (${signatures}), ${head}`);
        if (result.ok) ctx.print('audit log intact');
        for (const p of result.problems) ctx.print(`  ${p.kind.toUpperCase().padEnd(19)} ${p.message}`);
      }
      if (!result.ok) throw new AuditFailed(`the audit log fails verification: ${result.problems.length} problem(s)`);
    });
  });

  withCommon(
    audit
      .command('export')
      .description('print audit records as JSON lines, oldest first')
      .option('--after <seq>', 'only records after this one', seqArg),
  ).action(async (_options: unknown, command: Command) => {
    const o = command.opts<{ after?: number }>();
    await runSecurityCommand(command, async (ctx) => {
      for await (const record of new AuditLog(ctx.db).records(o.after ?? 0)) {
        ctx.write(`${JSON.stringify({ ...record, details: JSON.parse(record.details) as unknown })}\n`);
      }
    });
  });
}
