import { type Migration, type MigrationProvider, Migrator } from 'kysely';
import { AmpError } from '../errors';
import type { Store } from './database';
import * as m001 from './migrations/001_initial';
import * as m002 from './migrations/002_sync';
import * as m003 from './migrations/003_pacing_handoff';
import * as m004 from './migrations/004_inbox_body';
import * as m005 from './migrations/005_ledger_run_open';
import * as m006 from './migrations/006_retention';
import * as m007 from './migrations/007_inbox_deflate';
import * as m008edge from './migrations/008_edge_unfreeze_times';
import * as m008r from './migrations/008_recovery_leases';
import * as m009 from './migrations/009_alerts';
import * as m010 from './migrations/010_run_records';
import * as m011rules from './migrations/011_alert_rules';
import * as m011verify from './migrations/011_verifications';
import * as m013 from './migrations/013_entry_time_tags';
import * as m014threshold from './migrations/014_alert_rule_threshold';
import * as m015 from './migrations/015_one_run_at_work';

type DialectMigration = { up: (db: any, dialect: Store['dialect']) => Promise<void> };

// Listed by hand (not read from disk) so the set is the same under tsx, vitest and any bundler.
const MIGRATIONS: Record<string, DialectMigration> = {
  '001_initial': m001,
  '002_sync': m002,
  '003_pacing_handoff': m003,
  '004_inbox_body': m004,
  '005_ledger_run_open': m005,
  '006_retention': m006,
  '007_inbox_deflate': m007,
  '008_edge_unfreeze_times': m008edge,
  '008_recovery_leases': m008r,
  '009_alerts': m009,
  '010_run_records': m010,
  '011_alert_rules': m011rules,
  '011_verifications': m011verify,
  '013_entry_time_tags': m013,
  '014_alert_rule_threshold': m014threshold,
  '015_one_run_at_work': m015,
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
    // 010_run_records landed after 011_verifications: a database already at 011 applies 010 too.
    // Migrations are independent of each other's order past 009.
    allowUnorderedMigrations: true,
    ...(store.target.dialect === 'postgres' && store.target.schema
      ? { migrationTableSchema: store.target.schema }
      : {}),
  });
}

export async function pendingMigrations(store: Store): Promise<string[]> {
  const all = await migrator(store).getMigrations();
  return all.filter((m) => !m.executedAt).map((m) => m.name);
}

/** Applies every pending migration, each in its own transaction; a failure leaves the database at the last good one. */
export async function migrateToLatest(store: Store): Promise<string[]> {
  const { error, results } = await migrator(store).migrateToLatest();
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
