import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { z } from 'zod';
import {
  DEFAULT_VERIFY_SAMPLE,
  type DriftKind,
  MAX_VERIFY_SAMPLE,
  type VerificationView,
  verifySync,
} from '../sync/verify';
import { emit, parseInput, withContext } from './output';

const input = z.object({
  id: z.string().trim().min(1, 'a sync id is required'),
  sample: z
    .string()
    .regex(/^\s*\d+\s*$/, 'must be a whole number')
    .transform((s) => Number(s.trim()))
    .refine((n) => n >= 1 && n <= MAX_VERIFY_SAMPLE, `must be from 1 to ${MAX_VERIFY_SAMPLE}`)
    .optional(),
  repair: z.boolean().optional(),
  json: z.boolean().optional(),
});

const KIND_TEXT: Record<DriftKind, string> = {
  tag_missing: 'tag missing',
  tag_changed: 'tag changed',
  tag_present_after_leaving: 'tag present though left',
  user_gone: 'user gone',
};

const pct = (x: number) => `${Math.round(x * 1000) / 10}%`;

/** The human report of a verification: the rate, then one line per drifted user. */
export function verificationText(v: VerificationView, repair: boolean): string {
  const lines = [
    `Verification ${v.id} of sync ${v.sync_id} (tag ${v.tag_key ?? '?'}): ${v.status}`,
    `  read back ${v.checked} of ${v.sample_size} sampled user(s) from OneSignal` +
      (v.skipped ? `; ${v.skipped} changed by a delivery meanwhile, not compared` : ''),
    `  match rate: ${v.match_rate === null ? '- (no settled users to compare)' : pct(v.match_rate)} (${v.matched} matched, ${v.drifted} drifted)`,
  ];
  for (const d of v.drift)
    lines.push(
      `  ${d.external_id.padEnd(24)} ${KIND_TEXT[d.kind].padEnd(24)} expected ${d.expected === null ? 'no tag' : `"${d.expected}"`}, OneSignal has ${d.actual === null ? (d.kind === 'user_gone' ? 'no such user' : 'no tag') : `"${d.actual}"`}`,
    );
  if (v.drift.length < v.drifted) lines.push(`  … and ${v.drifted - v.drift.length} more`);
  if (repair && v.repaired)
    lines.push(
      `  repaired: ${v.repaired} user(s) marked pending; the next delivery sends them (ampsignal sync run ${v.sync_id})`,
    );
  else if (v.drifted) lines.push(`  repair: ampsignal sync verify ${v.sync_id} --repair`);
  return lines.join('\n');
}

/** A progress bar on a terminal's stderr while users are read back (one per second). */
async function withReadProgress<T>(
  quiet: boolean | undefined,
  fn: (onProgress?: (p: { done: number; total: number }) => void) => Promise<T>,
): Promise<T> {
  if (quiet || !process.stderr.isTTY) return fn();
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: 'reading back [{bar}] {value}/{total} user(s), 1/s', clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  try {
    return await fn(({ done, total }) => {
      if (!started) {
        bar.start(total, done);
        started = true;
      } else bar.update(done);
    });
  } finally {
    if (started) bar.stop();
  }
}

/** `ampsignal sync verify`, registered on the `sync` command group. */
export function registerVerify(sync: Command): void {
  sync
    .command('verify')
    .description(
      "Read a random sample of the sync's users back from OneSignal (1 read per second per app) and compare their tags with the ledger",
    )
    .argument('<sync_id>')
    .option('--sample <n>', `users to read back (default ${DEFAULT_VERIFY_SAMPLE}, at most ${MAX_VERIFY_SAMPLE})`)
    .option('--repair', 'mark the drifted users pending, so the next delivery sets their tags right')
    .option('--json', 'print JSON only')
    .action(async (id: string, flags: { sample?: string; repair?: boolean; json?: boolean }, cmd: Command) => {
      const f = parseInput(input, { id, ...flags });
      await withContext(cmd, async (ctx) => {
        const v = await withReadProgress(f.json, (onProgress) =>
          verifySync(ctx, f.id, {
            ...(f.sample !== undefined ? { sample: f.sample } : {}),
            repair: f.repair === true,
            trigger: 'manual',
            ...(onProgress ? { onProgress } : {}),
          }),
        );
        emit(f.json, v, () => verificationText(v, f.repair === true));
      });
    });
}
