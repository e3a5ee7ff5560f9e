import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openContext } from '../../src/store';

const mode = (path: string) => statSync(path).mode & 0o777;

/**
 * The SQLite database holds user ids and encrypted keys, and the key file decrypts them: both,
 * with the WAL and shared-memory files, are readable by their owner only (issue 11: 0644), under
 * the usual umask 022 as under any other.
 */
describe('files created on SQLite [sqlite]', () => {
  let dir: string;
  let savedUmask: number;
  let savedKey: string | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ampsignal-modes-'));
    savedUmask = process.umask(0o022);
    savedKey = process.env.AMPSIGNAL_SECRET_KEY;
    // Without a key in the environment a key file is created beside the database.
    delete process.env.AMPSIGNAL_SECRET_KEY;
  });
  afterEach(() => {
    process.umask(savedUmask);
    if (savedKey !== undefined) process.env.AMPSIGNAL_SECRET_KEY = savedKey;
    rmSync(dir, { recursive: true, force: true });
  });

  it('the database, its -wal and -shm, the key file and their folder are private to the owner', async () => {
    const folder = join(dir, 'state');
    const db = join(folder, 'ampsignal.db');
    const ctx = await openContext({ db: `sqlite:${db}`, migrate: 'auto' });
    try {
      await ctx.store.db
        .insertInto('cohorts')
        .values({
          id: 'c',
          source_id: null,
          name: 'c',
          origin: 'file',
          size: 0,
          last_computed: 0,
          created_at: 0,
          updated_at: 0,
        })
        .execute();
      for (const f of [db, `${db}-wal`, `${db}-shm`, join(folder, 'secret.key')]) {
        expect(existsSync(f), f).toBe(true);
        expect(mode(f).toString(8), f).toBe('600');
      }
      expect(mode(folder).toString(8)).toBe('700');
    } finally {
      await ctx.close();
    }
  });
});
