/**
 * `coalesce`: users entering 3 cohorts synced to one destination cost one request each
 * (one PATCH carrying the three tag changes). Prints requests per changed user; target 1.00.
 */
import type { BenchDialect } from './db';
import { benchSetup, timedDelivery } from './deliver.bench';

const USERS = 2000;

export async function run(dialect: BenchDialect): Promise<Record<string, unknown>> {
  const users = Array.from({ length: USERS }, (_, i) => `user_${i}`);
  const b = await benchSetup({
    dialect,
    label: 'coalesce',
    users,
    emulator: { rateLimit: 0, perUserLimit: 1 },
    rate: 100_000,
  });
  try {
    const syncs = [await b.addCohort(users), await b.addCohort(users), await b.addCohort(users)];
    const before = (await b.emu.stats()).requests;
    const r = await timedDelivery(b.ctx, syncs, b.dest.id);
    const sent = (await b.emu.stats()).requests - before;
    const tags = (await b.emu.getUser('user_7')) ?? {};
    const allThree = syncs.every((s) => tags[s.tag_key] === '1');
    if (!allThree) throw new Error('user_7 does not carry all three cohort tags');
    return {
      bench: 'coalesce',
      changed_users: USERS,
      cohorts: syncs.length,
      tag_changes: r.delivered,
      requests: sent,
      ratio: Math.round((sent / USERS) * 100) / 100,
      target_ratio: '1.00 requests per changed user',
    };
  } finally {
    await b.close();
  }
}
