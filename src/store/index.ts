import { openStore, type Store } from './database';
import { assertMigrated, migrateToLatest } from './migrate';
import type { ProcessRole } from './pool';
import { loadSecretBox, type SecretBox } from './secrets';
import { resolveDatabaseUrl } from './url';

export interface Context {
  store: Store;
  secrets: SecretBox;
  close(): Promise<void>;
}

/**
 * Opens the database named by --db / AMPSIGNAL_DATABASE_URL / the default, and the secret box.
 * `migrate: 'auto'` (CLI commands, demo, tests) brings the schema up to date;
 * `migrate: 'require'` (worker) refuses to run on a database with pending migrations;
 * `migrate: 'embedded'` (serve) migrates a SQLite file, which only this process uses, and
 * requires PostgreSQL's, which many processes share and `ampsignal migrate` brings up to date.
 * `checkpointThread` (serve, worker): on a SQLite file, WAL checkpoints run on a thread of their
 * own (checkpointer.ts); a one-shot command would only pay the thread's start.
 * `role` (default 'cli') and `jobConcurrency` size the PostgreSQL pool (pool.ts).
 */
export async function openContext(opts: {
  db?: string;
  migrate: 'auto' | 'require' | 'embedded';
  checkpointThread?: boolean;
  role?: ProcessRole;
  jobConcurrency?: number;
}): Promise<Context> {
  const store = await openStore(resolveDatabaseUrl(opts.db), {
    checkpointThread: opts.checkpointThread ?? false,
    ...(opts.role ? { role: opts.role } : {}),
    ...(opts.jobConcurrency ? { jobConcurrency: opts.jobConcurrency } : {}),
  });
  try {
    const auto = opts.migrate === 'auto' || (opts.migrate === 'embedded' && store.target.dialect === 'sqlite');
    if (auto) await migrateToLatest(store);
    else await assertMigrated(store);
    const secrets = loadSecretBox(store.target);
    return { store, secrets, close: () => store.close() };
  } catch (e) {
    await store.close();
    throw e;
  }
}

export type { Store } from './database';
export type {
  Capabilities,
  CohortMembersImport,
  Engine,
  ExecInTransaction,
  InboxValues,
  LedgerOutcome,
  SnapshotStage,
  StagedAt,
  StreamEventRow,
  StreamEventsJob,
} from './dialect/engine';
export { runSnapshotTables } from './dialect/stage-snapshot.postgres';
export { tempSnapshotNames } from './dialect/stage-snapshot.sqlite';
export type { ProcessRole } from './pool';
export type { SecretBox } from './secrets';
