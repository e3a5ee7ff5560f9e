// The SQLite checkpointer's thread (see checkpointer.ts). Plain JavaScript: it needs only
// better-sqlite3, so it starts in a few milliseconds under the CLI, the tests and the benchmarks.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const db = new Database(workerData.path, { fileMustExist: true });
const timer = setInterval(() => {
  try {
    // PASSIVE never waits for (nor blocks) the writer or readers: it copies what it can.
    const startedAt = Date.now();
    const [r] = db.pragma('wal_checkpoint(PASSIVE)');
    if (r.checkpointed > 0) parentPort.postMessage({ frames: r.log, checkpointed: r.checkpointed, startedAt });
  } catch (e) {
    parentPort.postMessage({ error: String(e?.message ?? e) });
  }
}, workerData.intervalMs);

parentPort.on('message', (m) => {
  if (m !== 'stop') return;
  clearInterval(timer);
  db.close();
  parentPort.close();
});
