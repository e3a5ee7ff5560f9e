import { afterAll, describe, expect, it } from 'vitest';
import { openContext } from '../../src/store';
import { runSync } from '../../src/sync/run';
import { freshDatabaseUrl } from '../helpers/db';
import { cohortSync, range, reimport, setupApp } from './setup';

// A delivery pass touches the users it delivers to, not the whole ledger: with a million-member
// sync, one full scan per claimed chunk stalled the sender for a tenth of a second each time.
describe('delivery query plans [sqlite]', () => {
  const closers: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const c of closers) await c();
  });

  it('no statement of a delivery pass scans the whole ledger table', async () => {
    const fresh = await freshDatabaseUrl('sqlite');
    const ctx = await openContext({ db: fresh.url, migrate: 'auto' });
    closers.push(fresh.cleanup, () => ctx.close());
    const { emu, dest } = await setupApp(ctx, { users: range('u', 0, 60) });
    closers.push(() => emu.close());
    const { cohortId, sync } = await cohortSync(ctx, dest.id, range('u', 0, 40));
    await runSync(ctx, sync.id);
    await reimport(ctx, cohortId, range('u', 10, 60));

    // Every statement the pass prepares, with the arguments it ran with.
    const h = ctx.store.sqlite!;
    const ran: Array<{ source: string; args: unknown[] }> = [];
    const prepare = h.prepare.bind(h);
    h.prepare = ((source: string) => {
      const stmt = prepare(source);
      for (const m of ['run', 'get', 'all', 'iterate'] as const) {
        const call = (stmt[m] as (...a: unknown[]) => unknown).bind(stmt);
        (stmt as unknown as Record<string, unknown>)[m] = (...args: unknown[]) => {
          ran.push({ source, args });
          return call(...args);
        };
      }
      return stmt;
    }) as typeof h.prepare;
    let r;
    try {
      r = await runSync(ctx, sync.id);
    } finally {
      h.prepare = prepare;
    }
    expect(r).toMatchObject({ status: 'completed', added: 20, removed: 10, delivered: 30 });

    const scans = new Set<string>();
    for (const { source, args } of ran) {
      // The diff walks the run's snapshot (a TEMP table, gone by now) against the ledger by design.
      if (!/\bledger\b/.test(source) || /stg_(snap|heap)_/.test(source) || /^\s*(EXPLAIN|CREATE|DROP)/i.test(source)) continue;
      const plan = prepare(`EXPLAIN QUERY PLAN ${source}`).all(...(args as [])) as Array<{ detail: string }>;
      if (plan.some((p) => p.detail === 'SCAN ledger')) scans.add(source.replace(/\s+/g, ' ').slice(0, 160));
    }
    expect([...scans]).toEqual([]);
  });
});
