import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addDestination } from '../../src/app/destinations';
import { type OneSignalEmulatorOptions, startOneSignalEmulator } from '../../src/emulators/onesignal/index';
import type { Context } from '../../src/store';
import { importCohortFile } from '../../src/sync/cohorts';
import { createSync } from '../../src/sync/syncs';

const dir = mkdtempSync(join(tmpdir(), 'ampsignal-sync-test-'));
let n = 0;

export function writeIds(ids: string[], header = true): string {
  const f = join(dir, `c${++n}.csv`);
  writeFileSync(f, `${(header ? 'user_id,plan\n' : '') + ids.map((i) => (header ? `${i},x` : i)).join('\n')}\n`);
  return f;
}

export function writeText(text: string): string {
  const f = join(dir, `t${++n}.txt`);
  writeFileSync(f, text);
  return f;
}

export const range = (prefix: string, from: number, to: number): string[] =>
  Array.from({ length: to - from }, (_, i) => `${prefix}${from + i}`);

/** An emulator app (fresh app id, so the process-wide per-app limiter is not shared across tests) and a destination on it. */
export async function setupApp(
  ctx: Context,
  opts: { users?: string[]; emulator?: Partial<OneSignalEmulatorOptions>; apiKey?: string; maxTags?: number } = {},
) {
  const appId = randomUUID();
  const apiKey = `key-${randomUUID()}`;
  const emu = await startOneSignalEmulator({
    apps: [{ appId, apiKey }],
    users: { mode: 'seeded', ids: opts.users ?? [] },
    rateLimitPerSecond: 0,
    perUserPerSecond: 0,
    ...(opts.emulator ?? {}),
  } as OneSignalEmulatorOptions);
  const dest = await addDestination(ctx, {
    name: `dest-${appId}`,
    app_id: appId,
    api_key: opts.apiKey ?? apiKey,
    api_url: emu.url,
    rate_limit_per_second: 20000,
    ...(opts.maxTags ? { max_tags_per_user: opts.maxTags } : {}),
  });
  return { emu, dest, appId, apiKey };
}

export async function cohortSync(ctx: Context, destinationId: string, ids: string[], name = `Cohort ${++n}`) {
  const imp = await importCohortFile(ctx, { file: writeIds(ids), name });
  const sync = await createSync(ctx, { cohortId: imp.cohort_id, destinationId });
  return { cohortId: imp.cohort_id, sync, name };
}

export function reimport(ctx: Context, cohortId: string, ids: string[], name = 'Cohort') {
  return importCohortFile(ctx, { file: writeIds(ids), name, id: cohortId });
}

export function addsUp(r: {
  added: number;
  removed: number;
  retried?: number;
  delivered: number;
  not_found: number;
  failed: number;
  pending: number;
  members: number;
  unchanged: number;
}) {
  return (
    r.added + r.removed + (r.retried ?? 0) === r.delivered + r.not_found + r.failed + r.pending &&
    r.members === r.added + r.unchanged
  );
}

/** Runs the real CLI (node bin/ampsignal.mjs) and collects its output and exit code. */
export async function cli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { spawn } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/ampsignal.mjs', ...args], {
      cwd: new URL('../../', import.meta.url).pathname,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
