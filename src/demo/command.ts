import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative, sep } from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { addDestination, type DestinationView } from '../app/destinations';
import { globals, parseInput } from '../cli/output';
import { runSummary, withProgressBar } from '../cli/runs';
import { type OneSignalEmulator, startOneSignalEmulator } from '../emulators/onesignal/index';
import { type Context, openContext } from '../store';
import { importCohortFile } from '../sync/cohorts';
import { type RunView, runSync } from '../sync/run';
import { createSync } from '../sync/syncs';
import { runAmplitudeDemo } from './amplitude';
import { runEventsDemo } from './events';

export interface DemoOptions {
  /** Database URL; default a throwaway SQLite file in a temp dir (kept, so the printed commands work). */
  db?: string;
  /** Cohort size (rows in the file, blanks included). */
  users?: number;
  /** Where the narrative goes (default stdout). */
  out?: (line: string) => void;
  /** Show a progress bar on a terminal. */
  progress?: boolean;
}

/** What the demo steps share: the database, the emulator and the destination on it. */
export interface DemoEnv {
  ctx: Context;
  dbUrl: string;
  workDir: string;
  emulator: OneSignalEmulator;
  destination: DestinationView;
  /** A second emulated app for the Amplitude section's destination (one destination per OneSignal app). */
  projectApp: { appId: string; apiKey: string };
  out: (line: string) => void;
  progress: boolean;
}

export interface CohortFileDemoResult {
  cohortId: string;
  syncId: string;
  tagKey: string;
  first: RunView;
  second: RunView;
}

/**
 * `ampsignal demo`: a OneSignal emulator in-process, a destination on it, and sections that
 * each show one feature. Sections are separate functions so others can append theirs
 * (Amplitude source, event stream) without touching this one.
 */
export async function runDemo(opts: DemoOptions = {}): Promise<{ cohortFile: CohortFileDemoResult; dbUrl: string }> {
  const out = opts.out ?? ((l: string) => process.stdout.write(`${l}\n`));
  const workDir = mkdtempSync(join(tmpdir(), 'ampsignal-demo-'));
  const dbUrl = opts.db ?? `sqlite:${join(workDir, 'demo.db')}`;
  const users = opts.users ?? 5000;
  const ctx = await openContext({ db: dbUrl, migrate: 'auto' });
  let emulator: OneSignalEmulator | undefined;
  try {
    const env = await setUpDestination(ctx, { dbUrl, workDir, out, users, progress: opts.progress === true });
    emulator = env.emulator;
    const cohortFile = await cohortFileSection(env, users);
    await runAmplitudeDemo({
      ctx,
      log: out,
      oneSignal: { url: env.emulator.url, ...env.projectApp },
    });
    out('');
    await runEventsDemo({ ctx, log: out });
    out('');
    printNextSteps(env, cohortFile);
    return { cohortFile, dbUrl };
  } finally {
    await emulator?.close();
    await ctx.close();
  }
}

function knownUserIds(users: number): string[] {
  // ~5% of the cohort's ids are unknown to OneSignal (never seeded): they end not_found.
  return Array.from({ length: users + 1000 }, (_, i) => `user_${i}`).filter((_, i) => i % 20 !== 7);
}

async function setUpDestination(
  ctx: Context,
  o: { dbUrl: string; workDir: string; out: (l: string) => void; users: number; progress: boolean },
): Promise<DemoEnv> {
  const appId = randomUUID();
  const apiKey = `demo-key-${randomUUID()}`;
  const projectApp = { appId: randomUUID(), apiKey: `demo-key-${randomUUID()}` };
  const emulator = await startOneSignalEmulator({
    apps: [{ appId, apiKey }, projectApp],
    users: { mode: 'seeded', ids: knownUserIds(o.users) },
    rateLimitPerSecond: 1000,
    perUserPerSecond: 1,
  });
  const destination = await addDestination(ctx, {
    name: `Demo OneSignal app ${appId.slice(0, 8)}`,
    app_id: appId,
    api_key: apiKey,
    api_url: emulator.url,
    rate_limit_per_second: 1000,
  });
  o.out(`OneSignal emulator listening at ${emulator.url} (app ${appId}, 1,000 req/s, 1 req/s per user)`);
  o.out(`Database: ${o.dbUrl}`);
  o.out(`Destination ${destination.id} "${destination.name}" created\n`);
  return {
    ctx,
    dbUrl: o.dbUrl,
    workDir: o.workDir,
    emulator,
    destination,
    projectApp,
    out: o.out,
    progress: o.progress,
  };
}

/** A file cohort: import, sync, change the membership, sync again. */
export async function cohortFileSection(env: DemoEnv, users: number): Promise<CohortFileDemoResult> {
  const { ctx, out } = env;
  const rows = (ids: string[], blankEvery: number) => {
    const lines = ['user_id,plan'];
    ids.forEach((id, i) => {
      // ~3% of rows have no user id: anonymous users, counted and skipped.
      if (i % blankEvery === 0) lines.push(',free');
      lines.push(`${id},${i % 3 === 0 ? 'pro' : 'free'}`);
    });
    return `${lines.join('\n')}\n`;
  };
  const memberCount = Math.round(users * 0.97);
  const first = Array.from({ length: memberCount }, (_, i) => `user_${i}`);
  const file1 = join(env.workDir, 'power-users.csv');
  writeFileSync(file1, rows(first, 33));

  out('== Cohort from a file ==');
  const imp = await importCohortFile(ctx, { file: file1, name: 'Power users' });
  out(`$ ampsignal cohort import --file ${file1} --name "Power users"`);
  out(
    `  cohort ${imp.cohort_id}: ${imp.members} members, ${imp.blank} blank rows skipped, ${imp.duplicates} duplicates`,
  );
  const sync = await createSync(ctx, { cohortId: imp.cohort_id, destinationId: env.destination.id });
  out(`$ ampsignal sync create --cohort ${imp.cohort_id} --destination ${env.destination.id}`);
  out(
    `  sync ${sync.id}: tag key ${sync.tag_key}, segment ${sync.segment_id ?? `not created (${sync.segment_error})`}\n`,
  );

  out(`$ ampsignal sync run ${sync.id}`);
  const r1 = await runWithBar(env, sync.id);
  out(`${indent(runSummary(r1))}\n`);

  // Churn: 10% leave, 5% new users join (a few of them unknown to OneSignal).
  const leave = new Set(first.filter((_, i) => i % 10 === 3));
  const join_ = Array.from({ length: Math.round(memberCount * 0.05) }, (_, i) => `user_${memberCount + i}`);
  const second = [...first.filter((id) => !leave.has(id)), ...join_];
  const file2 = join(env.workDir, 'power-users-next-day.csv');
  writeFileSync(file2, rows(second, 33));
  const imp2 = await importCohortFile(ctx, { file: file2, name: 'Power users', id: imp.cohort_id });
  out(`The cohort changes: ${leave.size} users leave, ${join_.length} join`);
  out(`$ ampsignal cohort import --file ${file2} --name "Power users" --id ${imp.cohort_id}`);
  out(`  cohort ${imp2.cohort_id}: ${imp2.members} members\n`);

  out(`$ ampsignal sync run ${sync.id} --dry-run`);
  const dry = await runSync(ctx, sync.id, { dryRun: true, trigger: 'manual' });
  out(`${indent(runSummary(dry))}\n`);
  out(`$ ampsignal sync run ${sync.id}`);
  const r2 = await runWithBar(env, sync.id);
  out(`${indent(runSummary(r2))}\n`);

  const stayed = second[0]!;
  const left = [...leave][0]!;
  const joined = join_[0]!;
  const unknown = second.find((id) => env.emulator.state.getUser(id) === undefined);
  out('Tags read back from the emulator:');
  out(`  ${stayed} (stayed): ${JSON.stringify(env.emulator.state.getUser(stayed))}`);
  out(`  ${left} (left):   ${JSON.stringify(env.emulator.state.getUser(left))}`);
  out(`  ${joined} (joined): ${JSON.stringify(env.emulator.state.getUser(joined))}`);
  if (unknown) out(`  ${unknown} (not in OneSignal): not_found, never created (like the native integration)`);
  out('');
  return { cohortId: imp.cohort_id, syncId: sync.id, tagKey: sync.tag_key, first: r1, second: r2 };
}

async function runWithBar(env: DemoEnv, syncId: string): Promise<RunView> {
  return withProgressBar(!env.progress, (progress) =>
    runSync(env.ctx, syncId, { trigger: 'manual', deliver: 'inline', ...progress }),
  );
}

function indent(s: string): string {
  return s
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

/** The command as this user can type it again: the clone's bin, or the installed command. */
function invokedAs(): string {
  const script = process.argv[1] ?? '';
  const rel = relative(process.cwd(), script);
  if (script && !rel.startsWith('..') && !isAbsolute(rel) && !rel.includes('node_modules')) return `node ${rel}`;
  return script.includes(`node_modules${sep}.bin`) ? 'npx ampsignal' : 'ampsignal';
}

function printNextSteps(env: DemoEnv, r: CohortFileDemoResult): void {
  const me = `${invokedAs()} --db ${env.dbUrl}`;
  env.out('== Look further (the database is kept; the emulator has stopped) ==');
  env.out(`  ${me} runs show ${r.second.id} --json`);
  env.out(`  ${me} runs show ${r.first.id} --records not_found`);
  env.out(`  ${me} runs list --sync ${r.syncId}`);
  env.out(`  ${me} sync show ${r.syncId}`);
  env.out(`  ${me} cohort list`);
  env.out(`  ${invokedAs()} emulator onesignal    # run the emulator yourself`);
}

export function register(program: Command): void {
  program
    .command('demo')
    .option('--users <n>', 'cohort size', '5000')
    .action(async (flags: { users: string }, cmd: Command) => {
      const f = parseInput(
        z.object({
          users: z
            .string()
            .regex(/^\d+$/, 'must be a whole number')
            .transform(Number)
            .refine((n) => n >= 50 && n <= 1_000_000, 'must be between 50 and 1000000'),
        }),
        flags,
      );
      const db = globals(cmd).db;
      await runDemo({ ...(db ? { db } : {}), users: f.users, progress: true });
    });
}
