import type { AppLimiter } from '../connectors/onesignal/limiter';
import { PACING_WINDOW_MS, PER_USER_SPACING_MS } from '../connectors/onesignal/limiter';
import type { Context } from '../store';

/**
 * One delivery job per OneSignal app runs at a time (its named queue), but consecutive jobs may
 * run in different processes, and a limiter's memory of what it sent in the last second stays
 * in its process. A process taking over an app from another limiter waits until the previous
 * pass's sends have left every window the vendor counts (the app's rolling second, a user's
 * one-per-second) before its first send; the same limiter continues without a pause.
 */
export const HANDOFF_QUIET_MS = Math.max(PACING_WINDOW_MS, PER_USER_SPACING_MS);

/** Resolves once this limiter may send for the app without overlapping another limiter's window. */
export async function awaitPacingHandoff(ctx: Context, limiter: AppLimiter, signal?: AbortSignal): Promise<void> {
  const row = await ctx.store.db
    .selectFrom('pacing_handoffs')
    .select(['limiter_id', 'ended_at'])
    .where('app_id', '=', limiter.appId)
    .executeTakeFirst();
  if (!row || row.limiter_id === limiter.instanceId) return;
  const wait = Number(row.ended_at) + HANDOFF_QUIET_MS - Date.now();
  if (wait <= 0 || signal?.aborted) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, wait);
    signal?.addEventListener('abort', done);
  });
}

/** Records that this limiter sent for the app until now (called when a pass that sent ends). */
export async function recordPacingHandoff(ctx: Context, limiter: AppLimiter): Promise<void> {
  const row = { app_id: limiter.appId, limiter_id: limiter.instanceId, ended_at: Date.now() };
  await ctx.store.db
    .insertInto('pacing_handoffs')
    .values(row)
    .onConflict((oc) => oc.column('app_id').doUpdateSet({ limiter_id: row.limiter_id, ended_at: row.ended_at }))
    .execute();
}
