import { afterEach, expect, it } from 'vitest';
import { AmpError } from '../../src/errors';
import { createJobQueue } from '../../src/jobs';
import type { JobQueue, TaskList } from '../../src/jobs/port';
import { type Context, openContext } from '../../src/store';
import { describeEachDialect } from '../helpers/db';
import { gate, waitFor } from './helpers';

// One contract, both adapters: the embedded SQLite runner and graphile-worker on PostgreSQL.
describeEachDialect('job queue contract', (db) => {
  const open: JobQueue[] = [];
  const contexts: Context[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((q) => q.stop()));
    await Promise.all(contexts.splice(0).map((c) => c.close()));
  });

  function queue(ctx: Context = db().ctx): JobQueue {
    const q = createJobQueue(ctx, { sqlite: { pollMs: 50, retryBaseMs: 300 }, graphile: { pollMs: 200 } });
    open.push(q);
    return q;
  }
  let seq = 0;
  const uniq = (name: string) => `${name}_${++seq}`;

  it('runs an added job with its payload, then forgets it', async () => {
    const task = uniq('echo');
    const seen: unknown[] = [];
    const q = queue();
    await q.start({ [task]: async (p) => void seen.push(p) }, { concurrency: 2 });
    await q.add(task, { hello: 'world', n: 1 });
    await waitFor(() => seen.length === 1, { what: 'job to run' });
    expect(seen).toEqual([{ hello: 'world', n: 1 }]);
    await waitFor(async () => (await q.list()).every((j) => j.task !== task), { what: 'completed job to be removed' });
  });

  it('a job key keeps one pending job and the newest payload', async () => {
    const task = uniq('keyed');
    const seen: number[] = [];
    const q = queue();
    await q.add(task, { v: 1 }, { jobKey: `${task}:k` });
    await q.add(task, { v: 2 }, { jobKey: `${task}:k` });
    await q.add(task, { v: 3 }, { jobKey: `${task}:k` });
    const pending = (await q.list()).filter((j) => j.task === task);
    expect(pending).toHaveLength(1);
    expect(pending[0]!.payload).toEqual({ v: 3 });
    await q.start({ [task]: async (p) => void seen.push(p.v) }, { concurrency: 1 });
    await waitFor(async () => seen.length === 1 && (await q.list()).every((j) => j.task !== task), {
      what: 'keyed job',
    });
    expect(seen).toEqual([3]);
  });

  it('adding a key while its job runs schedules a follow-up run (no lost wake-up)', async () => {
    const task = uniq('rerun');
    const g = gate();
    const seen: number[] = [];
    const q = queue();
    await q.start(
      {
        [task]: async (p) => {
          seen.push(p.v);
          if (p.v === 1) await g.promise;
        },
      },
      { concurrency: 2 },
    );
    await q.add(task, { v: 1 }, { jobKey: `${task}:k` });
    await waitFor(() => seen.length === 1, { what: 'first run to start' });
    await q.add(task, { v: 2 }, { jobKey: `${task}:k` });
    g.open();
    await waitFor(() => seen.length === 2, { what: 'follow-up run' });
    expect(seen).toEqual([1, 2]);
  });

  it('a running job whose key was added again fails into the newer job, not into a failed job', async () => {
    const task = uniq('superseded');
    const g = gate();
    const seen: number[] = [];
    const q = queue();
    await q.start(
      {
        [task]: async (p) => {
          seen.push(p.v);
          if (p.v !== 1) return;
          await g.promise;
          throw new AmpError('aborted', 'cancelled: worker stopping');
        },
      },
      { concurrency: 1 },
    );
    await q.add(task, { v: 1 }, { jobKey: `${task}:k` });
    await waitFor(() => seen.length === 1, { what: 'first run to start' });
    await q.add(task, { v: 2 }, { jobKey: `${task}:k` });
    g.open();
    await waitFor(() => seen.length === 2, { what: 'the newer job to run' });
    await waitFor(async () => (await q.list()).every((j) => j.task !== task || j.state === 'failed'), {
      what: 'both runs to end',
    });
    expect((await q.list()).filter((j) => j.task === task)).toEqual([]);
    expect(seen).toEqual([1, 2]);
  });

  it('runs one job per named queue at a time, in order, and queues in parallel', async () => {
    const task = uniq('queued');
    const active = new Map<string, number>();
    let maxPerQueue = 0;
    let overall = 0;
    let maxOverall = 0;
    const order: Record<string, number[]> = {};
    const q = queue();
    for (let n = 0; n < 5; n++) {
      for (const name of ['a', 'b']) await q.add(task, { queue: name, n }, { queue: `${task}:${name}` });
    }
    await q.start(
      {
        [task]: async (p: { queue: string; n: number }) => {
          const a = (active.get(p.queue) ?? 0) + 1;
          active.set(p.queue, a);
          overall++;
          maxPerQueue = Math.max(maxPerQueue, a);
          maxOverall = Math.max(maxOverall, overall);
          order[p.queue] ??= [];
          order[p.queue]!.push(p.n);
          await new Promise((r) => setTimeout(r, 60)); // simulated work, long enough to overlap
          active.set(p.queue, active.get(p.queue)! - 1);
          overall--;
        },
      },
      { concurrency: 4 },
    );
    await waitFor(() => (order.a?.length ?? 0) + (order.b?.length ?? 0) === 10, {
      what: 'all queued jobs',
      timeoutMs: 20_000,
    });
    expect(maxPerQueue).toBe(1);
    expect(maxOverall).toBe(2);
    expect(order.a).toEqual([0, 1, 2, 3, 4]);
    expect(order.b).toEqual([0, 1, 2, 3, 4]);
  });

  it('does not run a job before its runAt', async () => {
    const task = uniq('later');
    const ranAt: number[] = [];
    const q = queue();
    await q.start({ [task]: async () => void ranAt.push(Date.now()) }, { concurrency: 1 });
    const runAt = Date.now() + 1500;
    await q.add(task, {}, { runAt });
    await waitFor(() => ranAt.length === 1, { what: 'delayed job' });
    expect(ranAt[0]!).toBeGreaterThanOrEqual(runAt - 50); // PostgreSQL's clock vs Node's: tiny skew
  });

  it('retries a retryable failure after a backoff', async () => {
    const task = uniq('flaky');
    const calls: number[] = [];
    const q = queue();
    await q.start(
      {
        [task]: async () => {
          calls.push(Date.now());
          if (calls.length === 1) throw new AmpError('vendor_unavailable', 'upstream 503');
        },
      },
      { concurrency: 1 },
    );
    await q.add(task, {}, { maxAttempts: 3 });
    await waitFor(() => calls.length === 2, { what: 'retry', timeoutMs: 20_000 });
    const gap = calls[1]! - calls[0]!;
    // embedded: full jitter, the first retry due within [0, 300 ms) in this test (plus a poll and
    // a loaded machine's slack); graphile-worker: exp(1) ≈ 2.7 s.
    if (db().dialect === 'sqlite') expect(gap).toBeLessThan(300 + 2_000);
    else expect(gap).toBeGreaterThanOrEqual(2000 - 50);
    await waitFor(async () => (await q.list()).every((j) => j.task !== task), { what: 'job to complete' });
  });

  it('does not retry a terminal failure and keeps it with its error', async () => {
    const task = uniq('terminal');
    let calls = 0;
    const q = queue();
    await q.start(
      {
        [task]: async () => {
          calls++;
          throw new AmpError('vendor_rejected', 'bad tag key');
        },
      },
      { concurrency: 1 },
    );
    await q.add(task, {}, { maxAttempts: 5 });
    const failed = await waitFor(async () => (await q.list()).find((j) => j.task === task && j.state === 'failed'), {
      what: 'permanent failure',
    });
    expect(calls).toBe(1);
    expect(failed.attempts).toBe(1);
    expect(failed.lastError).toContain('bad tag key');
  });

  it('gives up after max attempts', async () => {
    const task = uniq('exhaust');
    let calls = 0;
    const q = queue();
    await q.start(
      {
        [task]: async () => {
          calls++;
          throw new AmpError('timeout', 'slow');
        },
      },
      { concurrency: 1 },
    );
    await q.add(task, {}, { maxAttempts: 1 });
    const failed = await waitFor(async () => (await q.list()).find((j) => j.task === task && j.state === 'failed'), {
      what: 'exhausted job',
    });
    expect(calls).toBe(1);
    expect(failed.lastError).toContain('slow');
  });

  it('stop() waits for running jobs to finish', async () => {
    const task = uniq('slow');
    let started = false;
    let finished = false;
    const q = queue();
    await q.start(
      {
        [task]: async () => {
          started = true;
          await new Promise((r) => setTimeout(r, 400)); // simulated work
          finished = true;
        },
      },
      { concurrency: 1 },
    );
    await q.add(task, {});
    await waitFor(() => started, { what: 'job start' });
    await q.stop();
    expect(finished).toBe(true);
  });

  it('two runners on one database never run the same job twice', async () => {
    const task = uniq('shared');
    const counts = new Map<number, number>();
    const ctx2 = await openContext({ db: db().url, migrate: 'require' });
    contexts.push(ctx2);
    const q1 = queue();
    const q2 = queue(ctx2);
    const handler: TaskList = {
      [task]: async (p: { n: number }) => {
        counts.set(p.n, (counts.get(p.n) ?? 0) + 1);
        await new Promise((r) => setTimeout(r, 5));
      },
    };
    for (let n = 0; n < 60; n++) await q1.add(task, { n });
    await Promise.all([q1.start(handler, { concurrency: 3 }), q2.start(handler, { concurrency: 3 })]);
    await waitFor(() => counts.size === 60, { what: 'all jobs', timeoutMs: 20_000 });
    await waitFor(async () => (await q1.list()).every((j) => j.task !== task), { what: 'queue to drain' });
    expect([...counts.values()].every((c) => c === 1)).toBe(true);
  });
});
