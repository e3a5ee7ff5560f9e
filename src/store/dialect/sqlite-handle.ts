import type { Kysely } from 'kysely';
import type { DB } from '../schema';

/**
 * Runs `fn`, which uses the raw SQLite handle that Kysely's connection shares. Inside a Kysely
 * transaction (`db` is one) the raw statements join it, as the caller wants. Otherwise `fn` runs
 * while holding Kysely's single-connection lock: raw statements issued while another caller's
 * Kysely transaction is open on the handle would silently join that one (and vanish if it rolls
 * back). Never pass the store's `db` from inside a transaction on it: the lock would wait for itself.
 */
export function onHandle<T>(db: Kysely<DB>, fn: () => T): Promise<T> {
  if (db.isTransaction) return Promise.resolve().then(fn);
  return db.connection().execute(async () => fn());
}
