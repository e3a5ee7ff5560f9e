import type { AppLimiter, PacingSnapshot } from '../connectors/onesignal/limiter';
import { PACING_WINDOW_MS, PER_USER_SPACING_MS } from '../connectors/onesignal/limiter';
import type { Context } from '../store';

/**
 * One delivery job per OneSignal app runs at a time (its named queue), but consecutive jobs may
 * run in different processes, and a limiter's memory of what it sent in the last second stays
 * in its process. So a pass that sent records its limiter's windows when it ends, and a pass in
 * another process takes them over before its first send: the app's second and each user's
 * spacing continue across the handover instead of starting empty (which could double the rate),
 * and without pausing a second at every handover. The same limiter goes on with its own state.
 */

/** How long a handover without recorded windows waits: every window the vendor counts. */
export const HANDOFF_QUIET_MS = Math.max(PACING_WINDOW_MS, PER_USER_SPACING_MS);

/** Resolves once this limiter may send for the app without overlapping another limiter's windows. */
export async function awaitPacingHandoff(ctx: Context, limiter: AppLimiter, signal?: AbortSignal): Promise<void> {
  const row = await ctx.store.db
    .selectFrom('pacing_handoffs')
    .select(['limiter_id', 'ended_at', 'state'])
    .where('app_id', '=', limiter.appId)
    .executeTakeFirst();
  if (!row || row.limiter_id === limiter.instanceId) return;
  if (row.state !== null) {
    limiter.restore(JSON.parse(row.state) as PacingSnapshot);
    return;
  }
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

/** Records this limiter's windows for the app (called when a pass that sent ends, all answered). */
export async function recordPacingHandoff(ctx: Context, limiter: AppLimiter): Promise<void> {
  const row = { app_id: limiter.appId, limiter_id: limiter.instanceId, ended_at: Date.now(), state: JSON.stringify(limiter.snapshot()) };
  await ctx.store.db
    .insertInto('pacing_handoffs')
    .values(row)
    .onConflict((oc) => oc.column('app_id').doUpdateSet({ limiter_id: row.limiter_id, ended_at: row.ended_at, state: row.state }))
    .execute();
}
