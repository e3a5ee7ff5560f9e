import { Migrator, type Migration, type MigrationProvider } from 'kysely';
import { AmpError } from '../errors';
import type { Store } from './database';
import * as m001 from './migrations/001_initial';
import * as m002 from './migrations/002_sync';
import * as m003 from './migrations/003_pacing_handoff';
import * as m004 from './migrations/004_inbox_body';
import * as m005 from './migrations/005_ledger_run_open';
import * as m006 from './migrations/006_retention';

type DialectMigration = { up: (db: any, dialect: Store['dialect']) => Promise<void> };

// Listed by hand (not read from disk) so the set is the same under tsx, vitest and any bundler.
const MIGRATIONS: Record<string, DialectMigration> = {
  '001_initial': m001,
  '002_sync': m002,
  '003_pacing_handoff': m003,
  '004_inbox_body': m004,
  '005_ledger_run_open': m005,
  '006_retention': m006,
};

function migrator(store: Store): Migrator {
  const provider: MigrationProvider = {
    async getMigrations() {
      const out: Record<string, Migration> = {};
      for (const [name, m] of Object.entries(MIGRATIONS)) out[name] = { up: (db) => m.up(db, store.dialect) };
      return out;
    },
  };
  return new Migrator({
    db: store.db,
    provider,
    ...(store.target.dialect === 'postgres' && store.target.schema ? { migrationTableSchema: store.target.schema } : {}),
  });
}

// Kysely's PostgreSQL introspector reads every schema's tables, calling pg_get_serial_sequence on
// each; a schema another client drops in that instant (tests drop theirs; so may an operator)
// fails our migration with 3F000 "schema … does not exist". The race has nothing to do with our
// schema, so a short retry (after the other DROP has had time to commit) is the whole fix.
const CATALOG_RACE_CODES = new Set(['3F000', '42P01']);
const CATALOG_RACE_ATTEMPTS = 6;
const CATALOG_RACE_BACKOFF_MS = 50;

function isCatalogRace(store: Store, e: unknown): boolean {
  // The migrator's failure arrives wrapped in our AmpError, with the driver's error as its cause.
  const err = e as { code?: string; cause?: { code?: string } } | undefined;
  return store.dialect === 'postgres' && [err?.code, err?.cause?.code].some((c) => c !== undefined && CATALOG_RACE_CODES.has(c));
}

async function retryingCatalogRace<T>(store: Store, attempt: () => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (e) {
      if (i >= CATALOG_RACE_ATTEMPTS || !isCatalogRace(store, e)) throw e;
      // Give the other client's DROP time to commit before reading the catalog again.
      await new Promise((r) => setTimeout(r, CATALOG_RACE_BACKOFF_MS * i));
    }
  }
}

export async function pendingMigrations(store: Store): Promise<string[]> {
  const all = await retryingCatalogRace(store, () => migrator(store).getMigrations());
  return all.filter((m) => !m.executedAt).map((m) => m.name);
}

/** Applies every pending migration, each in its own transaction; a failure leaves the database at the last good one. */
export function migrateToLatest(store: Store): Promise<string[]> {
  return retryingCatalogRace(store, async () => {
    const { error, results } = await migrator(store).migrateToLatest();
    if (error) {
      const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
      throw new AmpError('internal', `migration ${failed} failed: ${(error as Error).message}`, { cause: error });
    }
    return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
  });
}

export async function assertMigrated(store: Store): Promise<void> {
  const pending = await pendingMigrations(store);
  if (pending.length > 0) {
    throw new AmpError(
      'migrations_pending',
      `database ${store.displayUrl} has ${pending.length} pending migration(s) (${pending.join(', ')}); run "ampsignal migrate" or pass --migrate`,
    );
  }
}
