import type { Command } from 'commander';
import { migrateGraphile } from '../jobs/graphile-queue';
import { openStore } from '../store/database';
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
        if (store.target.dialect === 'postgres') await migrateGraphile(store.target);
        emit(opts.json, { database: store.displayUrl, dialect: store.dialect, applied }, () =>
          applied.length
            ? `applied ${applied.length} migration(s) to ${store.displayUrl}: ${applied.join(', ')}`
            : `${store.displayUrl} is up to date`,
        );
      } finally {
        await store.close();
      }
    });
}
