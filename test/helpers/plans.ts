import { afterAll } from 'vitest';
import { type Context, openContext } from '../../src/store';
import { sqliteHandleOf } from '../../src/store/dialect/sqlite';
import { freshDatabaseUrl } from './db';

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
