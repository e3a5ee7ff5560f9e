import type { AppLimiter, PacingSnapshot } from '../connectors/onesignal/limiter';
import type { Context } from '../store';

/**
 * One delivery job per OneSignal app runs at a time (its named queue), but consecutive jobs may
 * run in different processes, and a limiter's memory of what it sent in the last second stays
 * in its process. So a pass that sent records its limiter's windows when it ends, and a pass in
 * another process takes them over before its first send: the app's second, each user's spacing
 * and a Retry-After pause continue across the handover instead of starting empty (which could
 * double the rate, or send inside the vendor's Retry-After), without pausing at the handover. The same limiter goes on with its own state.
 */

/** Before a pass's first send: takes over the windows another limiter recorded for this app. */
export async function takeOverPacing(ctx: Context, limiter: AppLimiter): Promise<void> {
  const row = await ctx.store.db
    .selectFrom('pacing_handoffs')
    .select(['limiter_id', 'state'])
    .where('app_id', '=', limiter.appId)
    .executeTakeFirst();
  if (row && row.limiter_id !== limiter.instanceId) limiter.restore(JSON.parse(row.state) as PacingSnapshot);
}

/** When a pass that sent ends (all answered): records this limiter's windows for the app. */
export async function recordPacingHandoff(ctx: Context, limiter: AppLimiter): Promise<void> {
  const row = { app_id: limiter.appId, limiter_id: limiter.instanceId, state: JSON.stringify(limiter.snapshot()) };
  await ctx.store.db
    .insertInto('pacing_handoffs')
    .values(row)
    .onConflict((oc) => oc.column('app_id').doUpdateSet({ limiter_id: row.limiter_id, state: row.state }))
    .execute();
}
