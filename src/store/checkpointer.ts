import { Worker } from 'node:worker_threads';
import type BetterSqlite3 from 'better-sqlite3';
import { log } from '../telemetry/logger';

/**
 * WAL checkpoints on a thread of their own. SQLite's automatic checkpoint runs inside whichever
 * commit crosses 1,000 WAL pages, on that connection's thread, fsyncs included: on the event loop
 * that is a pause every few hundred milliseconds under webhook load, which every acknowledgement
 * waiting behind it pays for. Here the main handle never checkpoints and a second connection on
 * a worker thread runs a PASSIVE checkpoint every `intervalMs`, which never waits for or blocks
 * the writer; the WAL is reused from its start once a checkpoint has caught up, so it stays about
 * as large as `intervalMs` of writes. Closing the main handle checkpoints what is left. Started
 * for serving processes only (openContext's `checkpointThread`): a one-shot command would pay
 * for the thread.
 */
/** One background checkpoint that copied pages: WAL frames, frames copied, and when it began (epoch ms). */
export interface CheckpointReport {
  frames: number;
  checkpointed: number;
  startedAt: number;
}

export interface Checkpointer {
  /** Called after each background checkpoint that copied pages (tests, diagnostics). */
  onCheckpoint(fn: (r: CheckpointReport) => void): () => void;
  stop(): Promise<void>;
}

const WORKER_URL = new URL('./checkpoint-worker.mjs', import.meta.url);

export function startCheckpointer(handle: BetterSqlite3.Database, path: string, intervalMs = 200): Checkpointer {
  let worker: Worker;
  try {
    worker = new Worker(WORKER_URL, { workerData: { path, intervalMs } });
  } catch (e) {
    log.warn({ err: (e as Error).message }, 'cannot start the SQLite checkpointer thread; checkpointing on commit');
    return { onCheckpoint: () => () => {}, stop: async () => {} };
  }
  handle.pragma('wal_autocheckpoint = 0');
  worker.unref();
  let stopped = false;
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  const fallBack = (why: string) => {
    if (stopped) return;
    stopped = true;
    // Without the thread the WAL would grow without bound: checkpoint on commit again.
    if (handle.open) handle.pragma('wal_autocheckpoint = 1000');
    log.warn({ why }, 'SQLite checkpointer thread stopped; checkpointing on commit');
  };
  const listeners = new Set<(r: CheckpointReport) => void>();
  worker.on('message', (m: Partial<CheckpointReport> & { error?: string }) => {
    if (m.error) log.warn({ err: m.error }, 'SQLite background checkpoint failed; the next one retries');
    else for (const fn of listeners) fn({ frames: m.frames!, checkpointed: m.checkpointed!, startedAt: m.startedAt! });
  });
  worker.on('error', (e) => fallBack(e.message));
  worker.on('exit', (code) => fallBack(`exit code ${code}`));
  return {
    onCheckpoint(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    async stop() {
      if (stopped) return exited;
      stopped = true;
      // Unref'd so an open store never keeps a process alive; waiting for the thread must.
      worker.ref();
      worker.postMessage('stop');
      await exited;
    },
  };
}
