import type BetterSqlite3 from 'better-sqlite3';

/**
 * SQLite group commit for acknowledgement paths (events, cohort messages): the writes of every
 * request that reaches `submit` in one event-loop turn go into ONE transaction, flushed from
 * setImmediate (after the turn's I/O callbacks), and each request's promise settles only after
 * that commit, so nothing is acknowledged before its own rows are durable. Why: every commit
 * appends its pages to the WAL with one write per page, and requests arriving together touch the
 * same few pages, so one commit for all of them writes each page once instead of once a request.
 *
 * `write` runs inside the transaction, once per job in arrival order, so the outcome equals the
 * jobs run one after another. If the group fails, nothing of it was committed and each job is
 * retried alone, so one request's failure answers only that request. While a Kysely transaction
 * is open on the shared handle (another module, between its awaits), a raw transaction would
 * nest inside it as a savepoint and could be rolled back after we acknowledged: such jobs take
 * `viaQueryBuilder`, which waits for its turn.
 */
export class GroupCommit<J, R> {
  private queue: Array<{ job: J; resolve: (r: R) => void; reject: (e: unknown) => void }> = [];
  private readonly one: (job: J) => R;
  private readonly group: (jobs: J[]) => R[];

  constructor(
    private readonly db: BetterSqlite3.Database,
    write: (job: J) => R,
    private readonly viaQueryBuilder: (job: J) => Promise<R>,
  ) {
    this.one = db.transaction(write);
    this.group = db.transaction((jobs: J[]) => jobs.map(write));
  }

  submit(job: J): Promise<R> {
    return new Promise((resolve, reject) => {
      if (this.queue.length === 0) setImmediate(() => this.flush());
      this.queue.push({ job, resolve, reject });
    });
  }

  private flush(): void {
    const q = this.queue;
    this.queue = [];
    if (!this.db.open || this.db.inTransaction) {
      for (const e of q) this.viaQueryBuilder(e.job).then(e.resolve, e.reject);
      return;
    }
    try {
      const results = this.group(q.map((e) => e.job));
      q.forEach((e, i) => {
        e.resolve(results[i]!);
      });
    } catch {
      for (const e of q) {
        try {
          e.resolve(this.one(e.job));
        } catch (err) {
          e.reject(err);
        }
      }
    }
  }
}
