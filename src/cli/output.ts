import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { AmpError, describeIssues, type FieldLabel, type InputIssue, relabel, toAmpError } from '../errors';
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

/** A field named as the flag a person typed: `max_tags_per_user` → `--max-tags` when mapped, else `--max-tags-per-user`. */
/** Where inside a flag's value: a repeated flag is counted from 1 as typed (`--project #2`), a key named. */
function inside(rest: readonly PropertyKey[]): string {
  if (rest.length === 0) return '';
  const [first, ...more] = rest;
  const head =
    typeof first === 'number' || /^\d+$/.test(String(first)) ? ` #${Number(first) + 1}` : ` (${String(first)})`;
  return more.length ? `${head} (${more.map(String).join('.')})` : head;
}

export function flagLabel(flags: Record<string, string> = {}): FieldLabel {
  return (path) => {
    const field = String(path[0] ?? '');
    const flag = flags[field] ?? `--${field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`).replace(/_/g, '-')}`;
    return `${flag}${inside(path.slice(1))}`;
  };
}

/**
 * Runs a command body with an open database, always closing it. Runs left `running` by a
 * process that died are closed first (one indexed query), so what the command shows and does
 * never depends on a serve or worker process being up. A validation error names the fields
 * as the command's flags (`flags` maps a field to its flag where the names differ).
 */
export async function withContext<T>(
  cmd: Command,
  fn: (ctx: Context) => Promise<T>,
  flags: Record<string, string> = {},
): Promise<T> {
  const ctx = await openContext({ db: globals(cmd).db, migrate: 'auto' });
  try {
    await closeAbandonedRuns(ctx).catch((e: unknown) =>
      log.warn({ err: toAmpError(e).message }, 'could not close the runs of stopped processes'),
    );
    return await fn(ctx);
  } catch (e) {
    throw relabel(e, flagLabel(flags));
  } finally {
    await ctx.close();
  }
}

/** Parses CLI input with a zod schema and turns its complaint into one readable line naming the flags. */
export function parseInput<T>(
  schema: {
    safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: readonly InputIssue[] } };
  },
  value: unknown,
  flags: Record<string, string> = {},
): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  throw new AmpError('invalid_input', describeIssues(r.error.issues, flagLabel(flags)));
}

/** A whole-number flag (`--max-tags 20`), checked here since commander hands over strings. */
export function wholeNumberFlag(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\s*-?\d+\s*$/.test(value)) throw new AmpError('invalid_input', `${flag}: must be a whole number`);
  return Number(value.trim());
}

/**
 * Asks before a destructive command: `--yes` answers for scripts; on a terminal the person
 * types y; without a terminal and without `--yes` the command is refused (exit 2), never assumed.
 */
export async function confirm(question: string, yes: boolean | undefined): Promise<void> {
  if (yes) return;
  if (!process.stdin.isTTY)
    throw new AmpError('invalid_input', `${question.replace(/\?$/, '')}: refused without a terminal to ask; add --yes`);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = (await rl.question(`${question} [y/N] `)).trim().toLowerCase();
    if (answer !== 'y' && answer !== 'yes') throw new AmpError('invalid_input', 'cancelled; nothing was changed');
  } finally {
    rl.close();
  }
}
