/**
 * PostgreSQL group commit for acknowledgement paths (events, cohort messages): the jobs of
 * concurrent requests are written by ONE statement (a multi-row insert, which PostgreSQL commits
 * as one transaction), and each request's promise settles only after that commit. Why: a commit
 * costs a round trip and a WAL flush whatever it holds, so one per request capped ingest at a
 * fraction of SQLite's.
 *
 * When nothing is being written, a batch closes at the end of the event-loop turn in which its
 * first job arrived (so a lone request waits for nothing). While a batch is being written, new
 * jobs gather behind it and go as one batch when it is done: every commit waits for a WAL flush,
 * and flushes run one after another, so a second partial batch sent at once would only queue
 * behind the first one's flush and split the waiting requests into two groups, each waiting two
 * flushes (bench ingest: ~11 rows a commit with 32 senders, against ~15 so). Only a full batch
 * (`maxRows` rows) goes while others are in flight, up to `maxInFlight`: with bulk requests its
 * execution overlaps the flush ahead of it. A job waits at most for the batches ahead of it and
 * its own. If a batch fails, nothing of it was committed and each of its jobs is written alone:
 * one request's bad row refuses only that request.
 */
export interface PgGroupCommitOptions<J, R> {
  /** Writes every job in one statement; the results in the jobs' order. */
  writeBatch: (jobs: J[]) => Promise<R[]>;
  rowsOf: (job: J) => number;
  maxRows: number;
  /** Batches written at once, counting only full ones beyond the first. */
  maxInFlight: number;
}

interface Waiting<J, R> {
  job: J;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
}

export class PgGroupCommit<J, R> {
  private queue: Array<Waiting<J, R>> = [];
  private queuedRows = 0;
  private inFlight = 0;
  private scheduled = false;

  constructor(private readonly opts: PgGroupCommitOptions<J, R>) {}

  submit(job: J): Promise<R> {
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.queuedRows += this.opts.rowsOf(job);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.queue.length === 0 || this.inFlight >= this.opts.maxInFlight) return;
    if (this.queuedRows >= this.opts.maxRows) {
      this.flush();
      return;
    }
    // A partial batch waits for the one in flight; its completion schedules again.
    if (this.inFlight > 0 || this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.inFlight === 0) this.flush();
    });
  }

  private flush(): void {
    const batch = this.takeBatch();
    if (batch.length === 0) return;
    this.inFlight++;
    this.write(batch).finally(() => {
      this.inFlight--;
      this.schedule();
    });
    this.schedule();
  }

  /** Jobs in arrival order up to maxRows rows (at least one job, however large). */
  private takeBatch(): Array<Waiting<J, R>> {
    let rows = 0;
    let n = 0;
    while (n < this.queue.length) {
      const r = this.opts.rowsOf(this.queue[n]!.job);
      if (n > 0 && rows + r > this.opts.maxRows) break;
      rows += r;
      n++;
    }
    this.queuedRows -= rows;
    return this.queue.splice(0, n);
  }

  private async write(batch: Array<Waiting<J, R>>): Promise<void> {
    try {
      const results = await this.opts.writeBatch(batch.map((w) => w.job));
      batch.forEach((w, i) => {
        w.resolve(results[i]!);
      });
    } catch (e) {
      if (batch.length === 1) {
        batch[0]!.reject(e);
        return;
      }
      await Promise.all(
        batch.map((w) =>
          this.opts.writeBatch([w.job]).then(
            (r) => w.resolve(r[0]!),
            (err) => w.reject(err),
          ),
        ),
      );
    }
  }
}
