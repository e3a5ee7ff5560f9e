import type { Command } from 'commander';
import { z } from 'zod';
import { startWorker } from '../jobs/runtime';
import { openContext } from '../store';
import { log } from '../telemetry/logger';
import { emit, globals, parseInput } from './output';

export const concurrencySchema = z.coerce
  .number({ message: 'must be a whole number' })
  .int('must be a whole number')
  .min(1, 'must be at least 1')
  .max(256, 'must be at most 256');

/** Resolves on the first SIGTERM or SIGINT, so long-running commands can shut down in order. */
export function waitForShutdownSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      resolve(sig);
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
  });
}

/**
 * After a clean shutdown a stray handle (a keep-alive socket of a vendor client) must not keep
 * the process alive; the timer is unref'd, so it only fires if something else holds the loop.
 */
export function exitSoonAfterShutdown(): void {
  setTimeout(() => process.exit(process.exitCode ?? 0), 1500).unref();
}

export function register(program: Command): void {
  program
    .command('worker')
    .option('--concurrency <n>', 'jobs at once in this process', '4')
    .option('--migrate', 'apply pending migrations first instead of refusing to start')
    .option('--json', 'print the start line as JSON')
    .action(async (raw: { concurrency: string; migrate?: boolean; json?: boolean }, cmd: Command) => {
      const opts = parseInput(z.object({ concurrency: concurrencySchema }), { concurrency: raw.concurrency });
      const signal = waitForShutdownSignal();
      const ctx = await openContext({
        db: globals(cmd).db,
        migrate: raw.migrate ? 'auto' : 'require',
        checkpointThread: true,
        role: 'worker',
        jobConcurrency: opts.concurrency,
      });
      let failure: Error | undefined;
      try {
        const jobs = await startWorker(ctx, { concurrency: opts.concurrency });
        emit(
          raw.json,
          {
            status: 'started',
            pid: process.pid,
            database: ctx.store.displayUrl,
            queue: jobs.kind,
            concurrency: opts.concurrency,
          },
          () =>
            `worker ${process.pid} working jobs (${jobs.kind}, concurrency ${opts.concurrency}) on ${ctx.store.displayUrl}; SIGTERM stops it`,
        );
        // A runner that cannot go on ends the process (exit 1) so its supervisor starts a fresh one.
        const stop = await Promise.race([signal, jobs.failed]);
        if (stop instanceof Error) failure = stop;
        else log.info({ signal: stop }, 'worker stopping');
        await jobs.stop();
      } finally {
        await ctx.close();
      }
      exitSoonAfterShutdown();
      if (failure) throw failure;
      process.exitCode = 0;
    });
}
