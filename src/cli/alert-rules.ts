import type { Command } from 'commander';
import { addRule, deleteRule, listRules, type RuleView, testRule } from '../app/alert-rules';
import { AmpError } from '../errors';
import { ALERT_KINDS, THRESHOLDS } from '../jobs/alert-conditions';
import { emit, withContext } from './output';

const atThreshold = (r: RuleView) =>
  r.threshold === null || !(r.kind in THRESHOLDS)
    ? ''
    : ` at ${r.threshold} ${THRESHOLDS[r.kind as keyof typeof THRESHOLDS].unit}`;
const ruleLine = (r: RuleView) => `${r.id}  ${r.kind} alerts${atThreshold(r)} → ${r.channel_name} (${r.channel_id})`;

/** A number, or the text as given (the operation's schema names what is wrong with it). */
const numberOrText = (v: string): number | string => (v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v);

/** `ampsignal alert rule add|list|delete|test`: which kinds of alert a channel hears. */
export function registerRules(alert: Command): void {
  const rule = alert
    .command('rule')
    .description('which kinds of alert a channel hears (a channel without rules hears every kind)');

  rule
    .command('add')
    .description('send alerts of one kind to a channel; from then on it hears only the kinds its rules name')
    .requiredOption('--channel <channel>', 'channel id or name')
    .requiredOption('--kind <kind>', `one of ${ALERT_KINDS.join(', ')}`)
    .option(
      '--threshold <n>',
      `this rule's own threshold, for ${Object.entries(THRESHOLDS)
        .map(([k, t]) => `${k} (${t.unit})`)
        .join(', ')}; default: the AMPSIGNAL_ALERT_* setting`,
    )
    .option('--json', 'print JSON')
    .action(async (flags: { channel: string; kind: string; threshold?: string; json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const r = await addRule(ctx, {
          channel: flags.channel,
          kind: flags.kind,
          ...(flags.threshold === undefined ? {} : { threshold: numberOrText(flags.threshold) }),
        });
        emit(flags.json, r, () => `added rule ${ruleLine(r)}`);
      });
    });

  rule
    .command('list')
    .description('list alert rules')
    .option('--json', 'print JSON')
    .action(async (flags: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const rules = await listRules(ctx);
        emit(flags.json, rules, () =>
          rules.length ? rules.map(ruleLine).join('\n') : 'no rules: every channel hears every kind of alert',
        );
      });
    });

  rule
    .command('delete')
    .description('delete an alert rule')
    .argument('<rule>', 'rule id')
    .option('--json', 'print JSON')
    .action(async (ref: string, flags: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const r = await deleteRule(ctx, ref);
        emit(flags.json, r, () => `deleted rule ${ruleLine(r)}`);
      });
    });

  rule
    .command('test')
    .description("send a sample alert of the rule's kind to its channel now")
    .argument('<rule>', 'rule id')
    .option('--json', 'print JSON')
    .action(async (ref: string, flags: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const r = await testRule(ctx, ref);
        if (!r.ok) {
          if (flags.json) emit(true, r, () => '');
          throw new AmpError('vendor_rejected', `the sample alert to ${r.name} was not delivered: ${r.message}`);
        }
        emit(flags.json, r, () => `ok: ${r.message} (${r.latency_ms} ms)`);
      });
    });
}
