import { z } from 'zod';
import { AmpError } from '../errors';

/**
 * What a process does with the database, which sizes its PostgreSQL pool (README "Where state
 * lives"; SQLite has one connection whatever the role).
 * - 'cli': a one-shot command, watched by whoever ran it. One thing at a time; a sync run with
 *   delivery holds at most two connections at once (a claim and an outcome write). No statement
 *   timeout: `migrate`, a large import or an approval may legitimately run for long.
 * - 'serve': HTTP only (`serve --no-worker`): each webhook or page holds a connection for one
 *   short transaction, but approving a held run and dry runs diff whole cohorts in-process.
 * - 'worker': `jobConcurrency` jobs at once, each holding at most two connections (a delivery's
 *   claim and outcome write; a run's diff holds one), plus one for the minute tick.
 * - 'serve+worker': `serve` that also works jobs (PostgreSQL's default, SQLite's only mode).
 * graphile-worker has a pool of its own (`--concurrency` + 3) and each worker pool a liveness
 * session (src/jobs/graphile-queue.ts): those are not counted here.
 */
export type ProcessRole = 'cli' | 'serve' | 'worker' | 'serve+worker';

export interface PoolSettings {
  /** Most connections open at once. */
  max: number;
  /** PostgreSQL's statement_timeout for every statement of the pool; 0 = none. */
  statementTimeoutMs: number;
  /** An idle connection is closed after this long. */
  idleTimeoutMs: number;
}

const MINUTE = 60_000;
/**
 * A long-running process must not hold a connection (and its locks) for ever on a statement
 * stuck behind a lock or a runaway plan, yet a run's diff of a large cohort is one statement per
 * pass: 15 minutes is far above those passes for cohorts of several million members (bench diff).
 */
const SERVICE_STATEMENT_TIMEOUT_MS = 15 * MINUTE;

function roleDefaults(role: ProcessRole, jobConcurrency: number): PoolSettings {
  const jobs = 2 * jobConcurrency + 2;
  switch (role) {
    case 'cli':
      return { max: 3, statementTimeoutMs: 0, idleTimeoutMs: 10_000 };
    case 'serve':
      // Webhooks come in bursts: connections go back to the database between them.
      return { max: 10, statementTimeoutMs: SERVICE_STATEMENT_TIMEOUT_MS, idleTimeoutMs: 10_000 };
    case 'worker':
      // Longer than the minute tick, so a quiet worker keeps a connection from one tick to the next.
      return { max: jobs, statementTimeoutMs: SERVICE_STATEMENT_TIMEOUT_MS, idleTimeoutMs: 90_000 };
    case 'serve+worker':
      return { max: 10 + jobs, statementTimeoutMs: SERVICE_STATEMENT_TIMEOUT_MS, idleTimeoutMs: 90_000 };
  }
}

const whole = (what: string, min: number, max: number) =>
  z.coerce
    .number({ message: `must be ${what}` })
    .int(`must be ${what}`)
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);

const OVERRIDES = {
  max: ['AMPSIGNAL_PG_POOL_SIZE', whole('a whole number of connections', 1, 1000)],
  statementTimeoutMs: ['AMPSIGNAL_PG_STATEMENT_TIMEOUT_MS', whole('whole milliseconds (0 = none)', 0, 2_147_483_647)],
  idleTimeoutMs: ['AMPSIGNAL_PG_IDLE_TIMEOUT_MS', whole('whole milliseconds', 1, 2_147_483_647)],
} as const;

/** The pool of a process in this role: the role's defaults, each overridable by its environment variable. */
export function poolSettings(
  role: ProcessRole,
  jobConcurrency = 1,
  env: NodeJS.ProcessEnv = process.env,
): PoolSettings {
  const settings = roleDefaults(role, jobConcurrency);
  for (const [key, [name, schema]] of Object.entries(OVERRIDES) as Array<
    [keyof PoolSettings, (typeof OVERRIDES)[keyof PoolSettings]]
  >) {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') continue;
    const r = schema.safeParse(raw);
    if (!r.success) {
      throw new AmpError('invalid_input', `${name} ${r.error.issues[0]?.message ?? 'is invalid'} (got "${raw}")`);
    }
    settings[key] = r.data;
  }
  return settings;
}
