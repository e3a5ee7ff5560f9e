import { sql } from 'kysely';
import pg from 'pg';
import { afterAll } from 'vitest';
import { type Context, openContext } from '../../src/store';
import { postgresTargetOf } from '../../src/store/database';
import { sqliteHandleOf } from '../../src/store/dialect/sqlite';
import { freshDatabaseUrl, type TestDialect } from './db';

/** Fresh SQLite databases for plan tests, closed and removed after the file; `defer` adds cleanups (run last in, first out). */
export function sqliteScope(): { open(): Promise<Context>; defer(fn: () => Promise<unknown>): void } {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  return {
    async open() {
      const fresh = await freshDatabaseUrl('sqlite');
      cleanups.push(fresh.cleanup);
      const ctx = await openContext({ db: fresh.url, migrate: 'auto' });
      cleanups.push(() => ctx.close());
      return ctx;
    },
    defer(fn) {
      cleanups.push(fn);
    },
  };
}

/**
 * Runs `fn` while recording every statement prepared on the store's SQLite handle (Kysely's and
 * our raw ones) with the arguments it ran with, then returns the statements whose query plan
 * reads all of one of `tables`: a table scan, or a scan of a full index (a partial index holds
 * only open work, pending rows or dead letters, and may be walked). Whitespace folded.
 * Statements on a run's TEMP snapshot are skipped: they are gone by then.
 */
export async function fullScansDuring(
  ctx: Context,
  tables: string | string[],
  fn: () => Promise<unknown>,
): Promise<string[]> {
  const names = typeof tables === 'string' ? [tables] : tables;
  const h = sqliteHandleOf(ctx.store);
  if (!h) throw new Error('query plans are checked on SQLite');
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
  try {
    await fn();
  } finally {
    h.prepare = prepare;
  }
  const partial = new Set(
    (
      prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '% where %'`).all() as Array<{
        name: string;
      }>
    ).map((r) => r.name),
  );
  const readsAll = (detail: string) =>
    names.some((t) => {
      const m = new RegExp(`^SCAN ${t}(?: USING (?:COVERING )?INDEX (\\w+))?$`).exec(detail);
      return m !== null && (m[1] === undefined || !partial.has(m[1]));
    });
  const scans = new Set<string>();
  const mentions = new RegExp(`\\b(${names.join('|')})\\b`);
  for (const { source, args } of ran) {
    if (!mentions.test(source) || /stg_(snap|heap)_/.test(source) || /^\s*(EXPLAIN|CREATE|DROP)/i.test(source))
      continue;
    const plan = prepare(`EXPLAIN QUERY PLAN ${source}`).all(...(args as [])) as Array<{ detail: string }>;
    if (plan.some((p) => readsAll(p.detail))) scans.add(source.replace(/\s+/g, ' ').slice(0, 200));
  }
  return [...scans];
}

/** Fresh databases of either kind for plan tests, closed and removed after the file. */
export function planScope(dialect: TestDialect): { open(): Promise<Context>; defer(fn: () => Promise<unknown>): void } {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  return {
    async open() {
      const fresh = await freshDatabaseUrl(dialect);
      cleanups.push(fresh.cleanup);
      const ctx = await openContext({ db: fresh.url, migrate: 'auto' });
      cleanups.push(() => ctx.close());
      if (dialect === 'postgres') await neverAnalyzed(ctx);
      return ctx;
    },
    defer(fn) {
      cleanups.push(fn);
    },
  };
}

/** Keeps autovacuum from analyzing the store's tables: see fullScansDuringPg. */
async function neverAnalyzed(ctx: Context): Promise<void> {
  const tables = await sql<{
    t: string;
  }>`SELECT tablename AS t FROM pg_tables WHERE schemaname = current_schema()`.execute(ctx.store.db);
  for (const { t } of tables.rows)
    await sql`ALTER TABLE ${sql.table(t)} SET (autovacuum_enabled = off)`.execute(ctx.store.db);
}

/** fullScansDuring on SQLite, fullScansDuringPg on PostgreSQL. */
export function readsAllDuring(ctx: Context, tables: string | string[], fn: () => Promise<unknown>): Promise<string[]> {
  return sqliteHandleOf(ctx.store) ? fullScansDuring(ctx, tables, fn) : fullScansDuringPg(ctx, tables, fn);
}

type PlanNode = {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Index Cond'?: string;
  Plans?: PlanNode[];
};

/**
 * PostgreSQL's counterpart of fullScansDuring: records every statement sent while `fn` runs
 * (with its parameters), then EXPLAINs each one that names one of `tables` and returns those whose
 * plan reads all of one of them: a Seq Scan, or an index or bitmap index scan with no Index Cond
 * over an index that is not partial (partial indexes hold only open work and may be walked).
 *
 * A test's tables hold a few rows, on which the planner rightly prefers a sequential scan or a
 * walk of a whole index. So the tables of planScope('postgres') are never analyzed (autovacuum
 * off): the planner then assumes tables of unknown, non-trivial size and default selectivities,
 * as it would plan a large table it knows little about, the same way every run. And the EXPLAIN
 * runs with `enable_seqscan = off`: PostgreSQL still picks a sequential scan when no index can
 * serve the statement (at a prohibitive cost), so one in these plans means the statement has no
 * index path at all, which is what grows with the table.
 */
export async function fullScansDuringPg(
  ctx: Context,
  tables: string | string[],
  fn: () => Promise<unknown>,
): Promise<string[]> {
  const names = typeof tables === 'string' ? [tables] : tables;
  const ran: Array<{ text: string; values: unknown[] }> = [];
  const proto = pg.Client.prototype as unknown as { query: (...a: unknown[]) => unknown };
  const query = proto.query;
  proto.query = function (this: unknown, ...args: unknown[]) {
    const [first, second] = args;
    if (typeof first === 'string') ran.push({ text: first, values: Array.isArray(second) ? second : [] });
    else if (first && typeof first === 'object' && typeof (first as { text?: unknown }).text === 'string') {
      const c = first as { text: string; values?: unknown[] };
      ran.push({ text: c.text, values: c.values ?? [] });
    }
    return query.apply(this, args);
  };
  try {
    await fn();
  } finally {
    proto.query = query;
  }
  const target = postgresTargetOf(ctx.store, 'plan checks');
  const client = new pg.Client({ connectionString: target.connectionString });
  await client.connect();
  try {
    if (target.schema) await client.query(`SET search_path TO "${target.schema}"`);
    await client.query('SET enable_seqscan = off');
    // Every index of the tables that is not partial: a walk of one without a condition reads all rows.
    const fullIndexes = new Set(
      (
        await client.query<{ indexname: string }>(
          `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = ANY($1::text[])
             AND indexdef NOT LIKE '% WHERE %'`,
          [names],
        )
      ).rows.map((r) => r.indexname),
    );
    const readsAll = (n: PlanNode): boolean =>
      (n['Node Type'] === 'Seq Scan' && names.includes(n['Relation Name'] ?? '')) ||
      (/^(Bitmap )?Index (Only )?Scan$/.test(n['Node Type']) &&
        n['Index Cond'] === undefined &&
        fullIndexes.has(n['Index Name'] ?? '')) ||
      (n.Plans ?? []).some(readsAll);
    const mentions = new RegExp(`\\b(${names.join('|')})\\b`, 'i');
    const scans = new Set<string>();
    const checked = ran.filter(
      ({ text }) => mentions.test(text) && /^\s*(WITH|SELECT|INSERT|UPDATE|DELETE)\b/i.test(text),
    );
    // A check that saw no statement would pass whatever the code does.
    if (checked.length === 0) throw new Error(`no statement on ${names.join(', ')} ran: nothing was checked`);
    // A run drops its snapshot tables when its diff is done: stand-ins of the same shape, so the
    // diff's statements are planned too (TEMP: found first by name, gone with this client).
    const snapshotTables = new Set(checked.flatMap(({ text }) => text.match(/\bstg_(?:snap|heap)_[0-9a-f]+\b/g) ?? []));
    for (const t of snapshotTables)
      await client.query(`CREATE TEMP TABLE IF NOT EXISTS ${t} (external_id text NOT NULL)`);
    for (const { text, values } of checked) {
      const r = await client.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(
        `EXPLAIN (FORMAT JSON) ${text}`,
        values,
      );
      if (readsAll(r.rows[0]!['QUERY PLAN'][0]!.Plan)) scans.add(text.replace(/\s+/g, ' ').slice(0, 200));
    }
    return [...scans];
  } finally {
    await client.end();
  }
}
