import type { Command } from 'commander';
import { AmpError, toAmpError } from '../errors';
import { type Context, openContext } from '../store';
import { closeAbandonedRuns } from '../sync/run-record';
import { log } from '../telemetry/logger';

/** Global options every command sees (defined on the root program). */
export interface GlobalOptions {
  db?: string;
}

export function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals() as GlobalOptions;
}

/** Prints a result: the JSON alone on stdout with --json, else the human text. */
export function emit(json: boolean | undefined, value: unknown, human: () => string): void {
  if (json) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  else process.stdout.write(`${human()}\n`);
}

/** One-line error on stderr; exit code 2 for anything the user can fix by changing the command. */
export function reportError(e: unknown): void {
  const err = toAmpError(e);
  process.stderr.write(`ampsignal: ${err.message}\n`);
  if (err.kind === 'internal' && process.env.AMPSIGNAL_DEBUG && err.cause) console.error(err.cause);
  process.exitCode = err.kind === 'usage' ? 2 : 1;
}

/**
 * Runs a command body with an open database, always closing it. Runs left `running` by a
 * process that died are closed first (one indexed query), so what the command shows and does
 * never depends on a serve or worker process being up.
 */
export async function withContext<T>(cmd: Command, fn: (ctx: Context) => Promise<T>): Promise<T> {
  const ctx = await openContext({ db: globals(cmd).db, migrate: 'auto' });
  try {
    await closeAbandonedRuns(ctx).catch((e: unknown) =>
      log.warn({ err: toAmpError(e).message }, 'could not close the runs of stopped processes'),
    );
    return await fn(ctx);
  } finally {
    await ctx.close();
  }
}

/** Parses CLI input with a zod schema and turns its complaint into one readable line. */
export function parseInput<T>(
  schema: {
    safeParse(
      v: unknown,
    ):
      | { success: true; data: T }
      | { success: false; error: { issues: Array<{ path: PropertyKey[]; message: string }> } };
  },
  value: unknown,
): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const msg = r.error.issues
    .map((i) =>
      i.path.length
        ? `--${String(i.path[0]).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: ${i.message}`
        : i.message,
    )
    .join('; ');
  throw new AmpError('invalid_input', msg);
}
