import { createHash } from 'node:crypto';
import type { Selectable } from 'kysely';
import { AmpError } from '../../errors';
import type { Context } from '../../store';
import type { DestinationsTable } from '../../store/schema';
import { OneSignalClient } from './client';

/** Destination CRUD is src/app/destinations.ts; the engine needs only these reads and the pause. */
export type DestinationRow = Selectable<DestinationsTable>;

export async function getDestination(ctx: Context, id: string): Promise<DestinationRow> {
  const row = await ctx.store.db.selectFrom('destinations').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new AmpError('not_found', `destination ${id} not found`);
  return row;
}

/** Stops delivery to a destination (e.g. after a 401/403), keeping the reason for the user. */
export async function pauseDestination(ctx: Context, id: string, reason: string): Promise<DestinationRow> {
  const res = await ctx.store.db
    .updateTable('destinations')
    .set({ status: 'paused', status_reason: reason })
    .where('id', '=', id)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) === 0) throw new AmpError('not_found', `destination ${id} not found`);
  return getDestination(ctx, id);
}

const clients = new Map<string, OneSignalClient>();

/**
 * The process's client for this destination's app + key + URL. Every client of one app id
 * shares that app's limiter (limiter.ts), so destinations on one app never exceed its rate together.
 */
export function clientForDestination(ctx: Context, row: DestinationRow): OneSignalClient {
  const apiKey = ctx.secrets.decrypt(row.api_key_enc);
  // The cache key holds a hash, never the key itself.
  const keyHash = createHash('sha256').update(apiKey).digest('base64url');
  const cacheKey = `${row.app_id}\n${row.api_url}\n${keyHash}`;
  let client = clients.get(cacheKey);
  if (!client) {
    client = new OneSignalClient({
      appId: row.app_id,
      apiKey,
      apiUrl: row.api_url,
      rateLimitPerSecond: Number(row.rate_limit_per_second),
    });
    clients.set(cacheKey, client);
  } else {
    client.limiter.constrain(Number(row.rate_limit_per_second));
  }
  return client;
}
