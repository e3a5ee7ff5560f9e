import { Migrator, type Migration, type MigrationProvider } from 'kysely';
import { AmpError } from '../errors';
import type { Store } from './database';
import * as m001 from './migrations/001_initial';
import * as m002 from './migrations/002_sync';
import * as m003 from './migrations/003_pacing_handoff';
import * as m004 from './migrations/004_inbox_body';
import * as m005 from './migrations/005_ledger_run_open';

type DialectMigration = { up: (db: any, dialect: Store['dialect']) => Promise<void> };

// Listed by hand (not read from disk) so the set is the same under tsx, vitest and any bundler.
const MIGRATIONS: Record<string, DialectMigration> = {
  '001_initial': m001,
  '002_sync': m002,
  '003_pacing_handoff': m003,
  '004_inbox_body': m004,
  '005_ledger_run_open': m005,
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
// schema, so a short retry is the whole fix.
const CATALOG_RACE_CODES = new Set(['3F000', '42P01']);
const CATALOG_RACE_ATTEMPTS = 5;

function isCatalogRace(store: Store, e: unknown): boolean {
  const code = (e as { code?: string } | undefined)?.code;
  return store.dialect === 'postgres' && code !== undefined && CATALOG_RACE_CODES.has(code);
}

async function retryingCatalogRace<T>(store: Store, attempt: () => Promise<T>, failed: (r: T) => unknown): Promise<T> {
  for (let i = 1; ; i++) {
    let result: T;
    try {
      result = await attempt();
    } catch (e) {
      if (i < CATALOG_RACE_ATTEMPTS && isCatalogRace(store, e)) continue;
      throw e;
    }
    if (i < CATALOG_RACE_ATTEMPTS && isCatalogRace(store, failed(result))) continue;
    return result;
  }
}

export async function pendingMigrations(store: Store): Promise<string[]> {
  const all = await retryingCatalogRace(store, () => migrator(store).getMigrations(), () => undefined);
  return all.filter((m) => !m.executedAt).map((m) => m.name);
}

/** Applies every pending migration, each in its own transaction; a failure leaves the database at the last good one. */
export async function migrateToLatest(store: Store): Promise<string[]> {
  const { error, results } = await retryingCatalogRace(store, () => migrator(store).migrateToLatest(), (r) => r.error);
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new AmpError('internal', `migration ${failed} failed: ${(error as Error).message}`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
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
