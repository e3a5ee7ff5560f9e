import type { Command } from 'commander';
import { migrateGraphile } from '../jobs/graphile-queue';
import { describeStore, openStore, postgresTargetOf } from '../store/database';
import { migrateToLatest } from '../store/migrate';
import { resolveDatabaseUrl } from '../store/url';
import { emit, globals } from './output';

export function register(program: Command): void {
  program
    .command('migrate')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const store = await openStore(resolveDatabaseUrl(globals(cmd).db));
      try {
        const applied = await migrateToLatest(store);
        // graphile-worker's schema is versioned by graphile itself; installing it here means a
        // `serve --no-worker` can enqueue before any worker has ever started.
        if (!store.engine.can.embeddedJobRunner) await migrateGraphile(postgresTargetOf(store, 'graphile-worker'));
        emit(opts.json, { ...describeStore(store), applied }, () =>
          applied.length
            ? `applied ${applied.length} migration(s) to ${store.displayUrl}: ${applied.join(', ')}`
            : `${store.displayUrl} is up to date`,
        );
      } finally {
        await store.close();
      }
    });
}
