/**
 * `paced`: a 20,000-user sync against the emulator limiting the app to 1,000 req/s (and 1
 * req/s per user): achieved req/s and the 429s seen. Target ≥ 0.95 of the limit, zero 429s.
 */
import { benchSetup, timedDelivery } from './deliver.bench';

const USERS = 20_000;
const LIMIT = 1000;

export async function run(): Promise<Record<string, unknown>> {
  const users = Array.from({ length: USERS }, (_, i) => `user_${i}`);
  const b = await benchSetup({ users, emulator: { rateLimitPerSecond: LIMIT, perUserPerSecond: 1 }, rate: LIMIT });
  try {
    const sync = await b.addCohort(users);
    const before = b.emu.state.stats();
    const r = await timedDelivery(b.ctx, [sync], b.dest.id);
    const after = b.emu.state.stats();
    const achieved = r.requests / r.seconds;
    return {
      bench: 'paced',
      users: USERS,
      limit_req_per_s: LIMIT,
      achieved_req_per_s: Math.round(achieved),
      delivered: r.delivered,
      rate_limited_429: after.rateLimited - before.rateLimited,
      ratio: Math.round((achieved / LIMIT) * 1000) / 1000,
      target_ratio: '>= 0.95 with zero 429s',
    };
  } finally {
    await b.close();
  }
}
