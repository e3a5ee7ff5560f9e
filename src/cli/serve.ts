import type { Command } from 'commander';
import { z } from 'zod';
import { createJobQueue } from '../jobs';
import type { JobQueue } from '../jobs/port';
import { startWorker } from '../jobs/runtime';
import { assertAdminToken } from '../server/api/auth';
import { buildServer, parseTrustProxy } from '../server/app';
import { openContext } from '../store';
import { log } from '../telemetry/logger';
import { emit, globals, parseInput } from './output';
import { concurrencySchema, exitSoonAfterShutdown, waitForShutdownSignal } from './worker';

const serveSchema = z.object({
  port: z.coerce
    .number({ message: 'must be a port number' })
    .int('must be a port number')
    .min(0)
    .max(65535, 'must be at most 65535'),
  host: z.string().trim().min(1, 'must name an interface, e.g. 127.0.0.1 or 0.0.0.0'),
  concurrency: concurrencySchema,
});

export function register(program: Command): void {
  program
    .command('serve')
    .option('--port <port>', 'TCP port (0 picks a free one)', '8080')
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option('--no-worker', 'PostgreSQL only: serve HTTP without working jobs (run `ampsignal worker` elsewhere)')
    .option('--concurrency <n>', 'jobs at once when this process works jobs', '4')
    .option('--migrate', 'apply pending migrations first instead of refusing to start')
    .option('--json', 'print the listening address as JSON')
    .action(
      async (
        raw: { port: string; host: string; worker: boolean; concurrency: string; migrate?: boolean; json?: boolean },
        cmd: Command,
      ) => {
        const opts = parseInput(serveSchema, raw);
        // Settings the server would refuse, refused before anything starts: one line, exit 2.
        assertAdminToken({});
        parseTrustProxy(process.env.AMPSIGNAL_TRUST_PROXY);
        const signal = waitForShutdownSignal();
        const ctx = await openContext({
          db: globals(cmd).db,
          migrate: raw.migrate ? 'auto' : 'embedded',
          checkpointThread: true,
          // On SQLite serve always works jobs; the role only sizes a PostgreSQL pool.
          role: raw.worker ? 'serve+worker' : 'serve',
          jobConcurrency: opts.concurrency,
        });
        let jobs: JobQueue | undefined;
        let failure: Error | undefined;
        try {
          // Embedded mode has no other process to work jobs, so --no-worker is ignored there.
          const working = ctx.store.engine.can.embeddedJobRunner || raw.worker;
          jobs = createJobQueue(ctx);
          if (working) await startWorker(ctx, { concurrency: opts.concurrency, jobs });
          const app = await buildServer({ ctx, jobs });
          try {
            await app.listen({ port: opts.port, host: opts.host });
            const addr = app.server.address();
            const port = typeof addr === 'object' && addr ? addr.port : opts.port;
            const url = `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}`;
            emit(
              raw.json,
              { status: 'listening', url, pid: process.pid, database: ctx.store.displayUrl, worker: working },
              () =>
                `ampsignal listening on ${url} (${ctx.store.engine.name}${working ? ', working jobs' : ', no worker'}); SIGTERM stops it`,
            );
            // A job runner that cannot go on ends the process (exit 1) so its supervisor starts a fresh one.
            const stop = await Promise.race([signal, jobs.failed]);
            if (stop instanceof Error) failure = stop;
            else log.info({ signal: stop }, 'server stopping');
          } finally {
            // Order matters: fastify's close waits for in-flight requests, so every webhook we
            // answered is stored before the worker and then the database go away.
            await app.close();
          }
        } finally {
          await jobs?.stop();
          await ctx.close();
        }
        exitSoonAfterShutdown();
        if (failure) throw failure;
        process.exitCode = 0;
      },
    );
}
