import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openContext } from '../../src/store';
import { sqliteHandleOf } from '../../src/store/dialect/sqlite';

// The WAL of a SQLite store is checkpointed by a thread of its own (src/store/checkpointer.ts),
// never inside a commit on the event loop.
describe('SQLite WAL checkpoints off the event loop [sqlite]', () => {
  it('the handle never checkpoints on commit; the thread copies committed pages, the WAL is reused, and nothing is lost', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ampsignal-ckpt-'));
    const file = join(dir, 'a.db');
    try {
      const ctx = await openContext({ db: `sqlite:${file}`, migrate: 'auto', checkpointThread: true });
      const h = sqliteHandleOf(ctx.store)!;
      expect(h.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
      h.exec('CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB NOT NULL)');
      const insert = h.prepare('INSERT INTO blobs (b) VALUES (?)');
      // A checkpoint begun after `since` that copied every frame in the WAL: the next write starts
      // the WAL over. (Reports posted while a transaction blocked this thread arrive late, stale.)
      const caughtUp = (since: number) =>
        new Promise<{ frames: number; checkpointed: number }>((resolve) => {
          const off = ctx.store.checkpointer!.onCheckpoint((r) => {
            if (r.startedAt <= since || r.checkpointed < r.frames) return;
            off();
            resolve(r);
          });
        });
      const ROUND_BYTES = 4_000_000;
      for (let round = 0; round < 10; round++) {
        h.transaction(() => {
          for (let i = 0; i < ROUND_BYTES / 4000; i++) insert.run(Buffer.alloc(4000, round));
        })();
        expect((await caughtUp(Date.now())).checkpointed).toBeGreaterThan(0);
      }
      // 40 MB went through the WAL; reused from its start after each catch-up, it holds about one round.
      expect(statSync(`${file}-wal`).size).toBeLessThan(3 * ROUND_BYTES);
      expect(statSync(file).size).toBeGreaterThan(9 * ROUND_BYTES);
      await ctx.close();

      // A one-shot command's store (no checkpointThread) checkpoints on commit, as SQLite does.
      const again = await openContext({ db: `sqlite:${file}`, migrate: 'auto' });
      expect(again.store.checkpointer).toBeUndefined();
      expect(sqliteHandleOf(again.store)!.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
      expect(sqliteHandleOf(again.store)!.prepare('SELECT COUNT(*) FROM blobs').pluck().get()).toBe(
        10 * (ROUND_BYTES / 4000),
      );
      await again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
