import { type Kysely, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Context, type InboxValues, type LedgerOutcome, openContext, type StreamEventsJob } from '../../src/store';
import type { DB } from '../../src/store/schema';
import { renewLeases } from '../../src/sync/delivery-queue';
import { diffTransaction } from '../../src/sync/diff';
import { deleteStaging, stagedIds } from '../../src/sync/staging';
import { describeEachDialect, freshDatabaseUrl, PG_URL, SKIP_POSTGRES } from '../helpers/db';
import { seedCohort, seedLedger, seedStream, seedSync, seedSyncWithParts } from '../helpers/seed';

/** The database seam's operations (src/store/dialect), each on both databases. */

/** Ledger rows leased by `owner`, each with its `desired`. */
async function leased(ctx: Context, syncId: string, rows: Array<{ ext: string; desired: number; owner: string }>) {
  await seedLedger(
    ctx,
    rows.map((r) => ({
      sync_id: syncId,
      destination_id: `dst_${syncId}`,
      external_id: r.ext,
      desired: r.desired,
      attempts: 2,
      next_attempt_at: 5,
      lease_owner: r.owner,
      lease_until: Date.now() + 60_000,
    })),
  );
}

function ledgerRows(ctx: Context, syncId: string) {
  return ctx.store.db
    .selectFrom('ledger')
    .select(['external_id', 'confirmed', 'outcome', 'error', 'attempts', 'next_attempt_at', 'lease_owner'])
    .where('sync_id', '=', syncId)
    .orderBy('external_id')
    .execute();
}

function inboxValues(messageId: string): InboxValues {
  return {
    source_id: 'src_e',
    message_id: messageId,
    cohort_id: 'coh_e',
    cohort_name: 'E',
    in_cohort: 1,
    computed_time: 1,
    body: '{"users":[]}',
    body_deflated: null,
    received_at: 2,
  };
}

describeEachDialect('the database seam', (db) => {
  it('names capabilities, not the database, to the code above it', () => {
    const { can, name } = db().ctx.store.engine;
    expect(name).toBe(db().dialect);
    // SQLite: one snapshot per transaction, a single writer, jobs in-process; PostgreSQL the opposite.
    const embedded = db().dialect === 'sqlite';
    expect(can).toEqual({
      inPlaceSnapshot: embedded,
      skipLockedClaims: !embedded,
      rowLocks: !embedded,
      embeddedJobRunner: embedded,
    });
  });

  it('inserts inbox messages once per (source, message_id), concurrent requests each with their own answer', async () => {
    const { ctx } = db();
    const engine = ctx.store.engine;
    const ids = await Promise.all(['m1', 'm2', 'm3', 'm1', 'm4'].map((m) => engine.insertInboxMessage(inboxValues(m))));
    const stored = ids.filter((x) => x !== null);
    expect(stored).toHaveLength(4);
    expect(new Set(stored).size).toBe(4);
    // One of the two m1 requests stored it; the other is told it is a repeat.
    expect(ids[0] === null || ids[3] === null).toBe(true);
    expect(await engine.insertInboxMessage(inboxValues('m2'))).toBeNull();
    const rows = await ctx.store.db.selectFrom('webhook_inbox').select(['id', 'message_id']).orderBy('id').execute();
    expect(rows.map((r) => r.message_id).sort()).toEqual(['m1', 'm2', 'm3', 'm4']);
    expect(rows.map((r) => Number(r.id)).sort()).toEqual([...stored].sort());
  });

  it('writes ledger outcomes on its own leases only, re-opening rows whose wish changed in flight', async () => {
    const { ctx } = db();
    await seedSyncWithParts(ctx, 'syn_o');
    await leased(ctx, 'syn_o', [
      { ext: 'a', desired: 1, owner: 'w1' },
      { ext: 'b', desired: 0, owner: 'w1' },
      { ext: 'c', desired: 1, owner: 'w1' },
      { ext: 'd', desired: 1, owner: 'w2' },
    ]);
    const sent = (ext: string, o: Partial<LedgerOutcome>): LedgerOutcome => ({
      syncId: 'syn_o',
      externalId: ext,
      sent: 1,
      outcome: 'delivered',
      error: null,
      attempts: 3,
      nextAttemptAt: null,
      ...o,
    });
    await ctx.store.engine.writeLedgerOutcomes(
      ctx.store.db,
      'w1',
      [
        sent('a', {}),
        sent('b', {}),
        sent('c', { outcome: 'retry', error: 'HTTP 503', nextAttemptAt: 99 }),
        sent('d', {}),
      ],
      1000,
    );
    expect(await ledgerRows(ctx, 'syn_o')).toEqual([
      {
        external_id: 'a',
        confirmed: 1,
        outcome: 'delivered',
        error: null,
        attempts: 3,
        next_attempt_at: null,
        lease_owner: null,
      },
      // Delivered an older wish (1) while the row now wants 0: OneSignal differs again, so pending.
      {
        external_id: 'b',
        confirmed: 1,
        outcome: null,
        error: null,
        attempts: 0,
        next_attempt_at: null,
        lease_owner: null,
      },
      {
        external_id: 'c',
        confirmed: 0,
        outcome: 'retry',
        error: 'HTTP 503',
        attempts: 3,
        next_attempt_at: 99,
        lease_owner: null,
      },
      // Another worker's lease: untouched.
      {
        external_id: 'd',
        confirmed: 0,
        outcome: null,
        error: null,
        attempts: 2,
        next_attempt_at: 5,
        lease_owner: 'w2',
      },
    ]);
  });

  it("writes ledger outcomes inside the caller's transaction, rolled back with it", async () => {
    const { ctx } = db();
    await seedSyncWithParts(ctx, 'syn_t');
    await leased(ctx, 'syn_t', [{ ext: 'a', desired: 1, owner: 'w1' }]);
    const outcome: LedgerOutcome = {
      syncId: 'syn_t',
      externalId: 'a',
      sent: 1,
      outcome: 'delivered',
      error: null,
      attempts: 1,
      nextAttemptAt: null,
    };
    await expect(
      ctx.store.db.transaction().execute(async (trx) => {
        await ctx.store.engine.writeLedgerOutcomes(trx, 'w1', [outcome], 1000);
        throw new Error('a later write of the same transaction failed');
      }),
    ).rejects.toThrow('a later write');
    expect((await ledgerRows(ctx, 'syn_t'))[0]).toMatchObject({ confirmed: 0, outcome: null, lease_owner: 'w1' });
    await ctx.store.db.transaction().execute((trx) => ctx.store.engine.writeLedgerOutcomes(trx, 'w1', [outcome], 1000));
    expect((await ledgerRows(ctx, 'syn_t'))[0]).toMatchObject({
      confirmed: 1,
      outcome: 'delivered',
      lease_owner: null,
    });
  });
});

function eventsJob(streamId: string, ids: string[], kind = 'notification.clicked'): StreamEventsJob {
  return {
    streamId,
    extra: 0,
    rows: ids.map((id) => ({
      stream_id: streamId,
      event_id: id,
      kind,
      payload: '{}',
      status: 'pending',
      next_attempt_at: 1,
      reason: null,
      received_at: 1,
    })),
  };
}

describeEachDialect('stream event inserts (group commit)', (db) => {
  it('stores each event once, credits it to the first request that offered it, and counts duplicates', async () => {
    const { ctx } = db();
    await seedStream(ctx, { id: 'str_g', name: 'g', amplitude_api_key: 'k', webhook_secret: 's' });
    const engine = ctx.store.engine;
    const [a, b, c] = await Promise.all([
      engine.insertStreamEvents(eventsJob('str_g', ['e1', 'e2'])),
      engine.insertStreamEvents({ ...eventsJob('str_g', ['e2', 'e3']), extra: 1 }),
      engine.insertStreamEvents(eventsJob('str_g', ['e4'])),
    ]);
    expect([[...a], [...b], [...c]]).toEqual([['e1', 'e2'], ['e3'], ['e4']]);
    expect([...(await engine.insertStreamEvents(eventsJob('str_g', ['e1', 'e5'])))]).toEqual(['e5']);
    const stream = await ctx.store.db
      .selectFrom('streams')
      .select('duplicates')
      .where('id', '=', 'str_g')
      .executeTakeFirstOrThrow();
    // e2 offered twice, one in-body duplicate, e1 offered again.
    expect(Number(stream.duplicates)).toBe(3);
  });
});

describe.skipIf(SKIP_POSTGRES)('group commit [postgres]', () => {
  let ctx: Context;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    const fresh = await freshDatabaseUrl('postgres');
    cleanup = fresh.cleanup;
    ctx = await openContext({ db: fresh.url, migrate: 'auto' });
    await seedStream(ctx, { id: 'str_pg', name: 'pg', amplitude_api_key: 'k', webhook_secret: 's' });
  });
  afterAll(async () => {
    await ctx?.close();
    await cleanup?.();
  });

  /** The transaction that wrote each event (xmin): events of one commit share it. */
  async function commitsOf(eventIds: string[]): Promise<Map<string, string>> {
    const r = await sql<{ event_id: string; tx: string }>`SELECT event_id, xmin::text AS tx FROM stream_events
      WHERE event_id = ANY(${eventIds}::text[])`.execute(ctx.store.db);
    return new Map(r.rows.map((x) => [x.event_id, x.tx]));
  }

  it('writes the events of concurrent requests in one commit', async () => {
    const ids = Array.from({ length: 20 }, (_, i) => `c${i}`);
    const got = await Promise.all(ids.map((id) => ctx.store.engine.insertStreamEvents(eventsJob('str_pg', [id]))));
    expect(got.map((s) => [...s])).toEqual(ids.map((id) => [id]));
    const txs = new Set((await commitsOf(ids)).values());
    expect(txs.size).toBe(1);
  });

  it('requests arriving while a commit is in flight wait for it, then share the next commit', async () => {
    const engine = ctx.store.engine;
    const turn = () => new Promise((r) => setImmediate(r));
    const first = engine.insertStreamEvents(eventsJob('str_pg', ['f0']));
    await turn(); // f0's batch is written now
    const second = engine.insertStreamEvents(eventsJob('str_pg', ['f1']));
    await turn();
    const third = engine.insertStreamEvents(eventsJob('str_pg', ['f2']));
    await Promise.all([first, second, third]);
    const txs = await commitsOf(['f0', 'f1', 'f2']);
    // One WAL flush for both late requests; f0's commit was under way before they came.
    expect(txs.get('f1')).toBe(txs.get('f2'));
    expect(txs.get('f0')).not.toBe(txs.get('f1'));
  });

  it('a bad row refuses only its own request; its batch siblings commit', async () => {
    const engine = ctx.store.engine;
    // PostgreSQL refuses a NUL in text: the whole multi-row statement fails with it.
    const results = await Promise.allSettled([
      engine.insertStreamEvents(eventsJob('str_pg', ['ok1', 'ok2'])),
      engine.insertStreamEvents(eventsJob('str_pg', ['bad1'], 'bad\u0000kind')),
      engine.insertStreamEvents(eventsJob('str_pg', ['ok3'])),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect([...(results[0] as PromiseFulfilledResult<Set<string>>).value]).toEqual(['ok1', 'ok2']);
    const stored = await commitsOf(['ok1', 'ok2', 'ok3', 'bad1']);
    expect([...stored.keys()].sort()).toEqual(['ok1', 'ok2', 'ok3']);
  });

  it('a bad cohort message refuses only its own request; its batch siblings commit', async () => {
    const engine = ctx.store.engine;
    const results = await Promise.allSettled([
      engine.insertInboxMessage(inboxValues('pg_ok1')),
      engine.insertInboxMessage({ ...inboxValues('pg_bad'), cohort_name: 'bad\u0000name' }),
      engine.insertInboxMessage(inboxValues('pg_ok2')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const rows = await ctx.store.db
      .selectFrom('webhook_inbox')
      .select('message_id')
      .where('message_id', 'like', 'pg_%')
      .orderBy('message_id')
      .execute();
    expect(rows.map((r) => r.message_id)).toEqual(['pg_ok1', 'pg_ok2']);
  });
});

describe.skipIf(SKIP_POSTGRES)('acknowledgement inserts [postgres]', () => {
  let ctx: Context;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    const fresh = await freshDatabaseUrl('postgres');
    cleanup = fresh.cleanup;
    // One connection, so the session the inserts ran on is the one asked afterwards.
    process.env.AMPSIGNAL_PG_POOL_SIZE = '1';
    try {
      ctx = await openContext({ db: fresh.url, migrate: 'auto' });
    } finally {
      delete process.env.AMPSIGNAL_PG_POOL_SIZE;
    }
    await seedStream(ctx, { id: 'str_named', name: 'n', amplitude_api_key: 'k', webhook_secret: 's' });
  });
  afterAll(async () => {
    await ctx?.close();
    await cleanup?.();
  });

  it('are named statements, parsed and planned once per connection rather than once a batch', async () => {
    await ctx.store.engine.insertStreamEvents(eventsJob('str_named', ['n1']));
    await ctx.store.engine.insertStreamEvents(eventsJob('str_named', ['n2']));
    await ctx.store.engine.insertInboxMessage(inboxValues('named1'));
    const r = await sql<{ name: string }>`SELECT name FROM pg_prepared_statements ORDER BY name`.execute(ctx.store.db);
    expect(r.rows.map((x) => x.name)).toEqual(['ampsignal_insert_stream_events', 'ampsignal_insert_webhook_inbox']);
  });

  it('readies a diff transaction to hash a whole snapshot in memory without JIT, and only that transaction', async () => {
    const settings = (db: Kysely<DB>) =>
      sql<{
        work_mem: string;
        jit: string;
      }>`SELECT current_setting('work_mem') AS work_mem, current_setting('jit') AS jit`
        .execute(db)
        .then((r) => r.rows[0]);
    const before = await settings(ctx.store.db);
    expect(await diffTransaction(ctx, settings)).toEqual({ work_mem: '192MB', jit: 'off' });
    // One connection: a setting that outlived the transaction would show here.
    expect(await settings(ctx.store.db)).toEqual(before);
    expect(before?.work_mem).not.toBe('192MB');
  });
});

describeEachDialect('snapshots and cohort members', (db) => {
  it('stages a run snapshot where the diff reads it, duplicates absorbed, sorted by id', async () => {
    const { ctx } = db();
    const stage = ctx.store.engine.stageSnapshot('run_s');
    for (const id of ['u3', 'u1', 'u2', 'u1']) await stage.add(id);
    expect(await stage.finish()).toBe(3);
    const ref = { runId: 'run_s', stagedAt: stage.stagedAt };
    const read = () => sql<{ external_id: string }>`${stagedIds(ref)} ORDER BY external_id`.execute(ctx.store.db);
    expect((await read()).rows.map((r) => r.external_id)).toEqual(['u1', 'u2', 'u3']);
    await deleteStaging(ctx, 'run_s');
    // Discarded in every form: a run's own table is gone, `staging` rows are deleted.
    if (stage.stagedAt === 'staging') expect((await read()).rows).toEqual([]);
    else await expect(read()).rejects.toThrow(/no such table|does not exist/);
  });

  it('stages the ids a query selects, copied in the database beside added ones', async () => {
    const { ctx } = db();
    await seedCohort(ctx, { id: 'coh_sel', name: 'sel' });
    await ctx.store.db
      .insertInto('cohort_members')
      .values(['m2', 'm1'].map((external_id) => ({ cohort_id: 'coh_sel', external_id })))
      .execute();
    const stage = ctx.store.engine.stageSnapshot('run_sel');
    await stage.add('m1');
    await stage.addSelected(sql`SELECT external_id FROM cohort_members WHERE cohort_id = ${'coh_sel'}`);
    expect(await stage.finish()).toBe(2);
    const r = await sql<{
      external_id: string;
    }>`${stagedIds({ runId: 'run_sel', stagedAt: stage.stagedAt })} ORDER BY external_id`.execute(ctx.store.db);
    expect(r.rows.map((x) => x.external_id)).toEqual(['m1', 'm2']);
    await deleteStaging(ctx, 'run_sel');
  });

  it('replaces cohort members in one transaction, and keeps the old ones when the import fails', async () => {
    const { ctx } = db();
    await seedCohort(ctx, { id: 'coh_m', name: 'm' });
    const importIds = (lists: string[][], fail = false) =>
      ctx.store.engine.importCohortMembers({
        cohortId: 'coh_m',
        batches: (async function* () {
          yield* lists;
        })(),
        before: async (exec) => {
          await exec(sql`DELETE FROM cohort_members WHERE cohort_id = ${'coh_m'}`);
        },
        after: async (exec, added) => {
          await exec(sql`UPDATE cohorts SET size = ${added} WHERE id = ${'coh_m'}`);
          if (fail) throw new Error('the file was cut');
        },
      });
    const members = async () =>
      (
        await ctx.store.db
          .selectFrom('cohort_members')
          .select('external_id')
          .where('cohort_id', '=', 'coh_m')
          .orderBy('external_id')
          .execute()
      ).map((r) => r.external_id);
    const size = async () =>
      Number(
        (await ctx.store.db.selectFrom('cohorts').select('size').where('id', '=', 'coh_m').executeTakeFirst())?.size,
      );
    expect(
      await importIds([
        ['b', 'a'],
        ['c', 'a'],
      ]),
    ).toBe(3);
    expect(await members()).toEqual(['a', 'b', 'c']);
    expect(await size()).toBe(3);
    await expect(importIds([['x']], true)).rejects.toThrow('the file was cut');
    expect(await members()).toEqual(['a', 'b', 'c']);
    expect(await size()).toBe(3);
    expect(await importIds([['x']])).toBe(1);
    expect(await members()).toEqual(['x']);
  });
});

describe.skipIf(SKIP_POSTGRES)('delivery claims [postgres]', () => {
  let ctx: Context;
  let cleanup: () => Promise<void>;
  let url: string;
  beforeAll(async () => {
    const fresh = await freshDatabaseUrl('postgres');
    cleanup = fresh.cleanup;
    url = fresh.url;
    ctx = await openContext({ db: fresh.url, migrate: 'auto' });
  });
  afterAll(async () => {
    await ctx?.close();
    await cleanup?.();
  });

  it('skips a user whose row another claimer holds locked, whole, without waiting, and takes it once free', async () => {
    await seedSyncWithParts(ctx, 'syn_k1');
    await seedCohort(ctx, { id: 'coh_k2', name: 'k2' });
    await seedSync(ctx, { id: 'syn_k2', cohort_id: 'coh_k2', destination_id: 'dst_syn_k1' });
    const pending = (sync_id: string, external_id: string) => ({
      sync_id,
      destination_id: 'dst_syn_k1',
      external_id,
      desired: 1,
    });
    await seedLedger(ctx, [pending('syn_k1', 'x'), pending('syn_k2', 'x'), pending('syn_k1', 'y')]);
    const claim = (workerId: string) =>
      ctx.store.engine.claimLedgerRows(ctx.store.db, {
        destinationId: 'dst_syn_k1',
        workerId,
        users: 10,
        nowMs: Date.now(),
        leaseUntil: Date.now() + 60_000,
      });
    // Another claimer in the middle of its statement holds one of x's two rows.
    const other = new pg.Client({ connectionString: PG_URL });
    await other.connect();
    try {
      await other.query(`SET search_path TO "${new URL(url).searchParams.get('schema')}"`);
      await other.query('BEGIN');
      await other.query(`SELECT 1 FROM ledger WHERE sync_id = 'syn_k2' AND external_id = 'x' FOR UPDATE`);
      const first = await claim('w1');
      expect(first.map((r) => `${r.sync_id}/${r.external_id}`)).toEqual(['syn_k1/y']);
      await other.query('ROLLBACK');
    } finally {
      await other.end();
    }
    const second = await claim('w2');
    expect(second.map((r) => `${r.sync_id}/${r.external_id}`).sort()).toEqual(['syn_k1/x', 'syn_k2/x']);
  });

  it('renews the leases of a pass without waiting for rows an outcome write of the pass holds', async () => {
    await ctx.store.db
      .updateTable('ledger')
      .set({ lease_owner: 'w3', lease_until: 1 })
      .where('destination_id', '=', 'dst_syn_k1')
      .execute();
    const other = new pg.Client({ connectionString: PG_URL });
    await other.connect();
    try {
      await other.query(`SET search_path TO "${new URL(url).searchParams.get('schema')}"`);
      await other.query('BEGIN');
      await other.query(`SELECT 1 FROM ledger WHERE sync_id = 'syn_k2' AND external_id = 'x' FOR UPDATE`);
      // Waiting on that lock here is how the renewal and an outcome write deadlocked.
      await renewLeases(ctx, { destinationId: 'dst_syn_k1', workerId: 'w3' });
      await other.query('ROLLBACK');
    } finally {
      await other.end();
    }
    const rows = await ctx.store.db
      .selectFrom('ledger')
      .select(['sync_id', 'external_id', 'lease_until'])
      .where('destination_id', '=', 'dst_syn_k1')
      .orderBy('sync_id')
      .orderBy('external_id')
      .execute();
    expect(rows.map((r) => [r.sync_id, r.external_id, Number(r.lease_until) > 1])).toEqual([
      ['syn_k1', 'x', true],
      ['syn_k1', 'y', true],
      ['syn_k2', 'x', false],
    ]);
  });
});
