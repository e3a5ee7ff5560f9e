import { inflateRawSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { isAmpError } from '../../src/errors';
import { OFF_THREAD_MIN_BYTES, WebhookParsePool } from '../../src/server/hooks/parse-pool';

// The worker threads that check large cohort-webhook bodies (src/server/hooks/parse-pool.ts).
describe('webhook parse workers', () => {
  const pools: WebhookParsePool[] = [];
  afterEach(async () => {
    for (const p of pools.splice(0)) await p.close();
  });
  const body = (users: number, extra: Record<string, unknown> = {}) =>
    JSON.stringify({
      cohort_id: 'c1',
      cohort_name: 'One',
      in_cohort: true,
      computed_time: '1700000000',
      message_id: 'm1',
      users: Array.from({ length: users }, (_, i) => ({
        user_id: `user-${i}@example.com`,
        user_properties: { city: 'Paris' },
      })),
      ...extra,
    });

  it('checks a large body on a worker and hands back its summary and the text deflated', async () => {
    const pool = new WebhookParsePool(1);
    pools.push(pool);
    const text = body(1000);
    expect(Buffer.byteLength(text)).toBeGreaterThan(OFF_THREAD_MIN_BYTES);
    const r = await pool.check(Buffer.from(text));
    expect(r.message).toEqual({
      cohort_id: 'c1',
      cohort_name: 'One',
      in_cohort: true,
      computed_ms: 1_700_000_000_000,
      message_id: 'm1',
      users: 1000,
    });
    expect('deflated' in r.body && inflateRawSync(r.body.deflated).toString('utf8')).toBe(text);

    const small = await pool.check(Buffer.from(body(2)));
    expect(small.body).toEqual({ text: body(2) });
  });

  it('rejects a bad large body with the field named, like the in-thread check', async () => {
    const pool = new WebhookParsePool(1);
    pools.push(pool);
    const bad = body(1000, { in_cohort: 'maybe' });
    const err = await Promise.resolve(pool.check(Buffer.from(bad))).catch((e: unknown) => e);
    expect(isAmpError(err) && err.code).toBe('invalid_input');
    expect((err as Error).message).toContain('in_cohort');
  });

  it('a worker that dies fails only its own messages (5xx), and the next message gets a fresh worker', async () => {
    const pool = new WebhookParsePool(1);
    pools.push(pool);
    await pool.check(Buffer.from(body(1000)));
    const slots = (pool as unknown as { slots: Array<{ worker: { terminate(): Promise<number> } }> }).slots;
    const stopping = slots[0]!.worker.terminate();
    // Posted to the stopping worker, which never answers: it fails when the thread has exited.
    const err = await Promise.resolve(pool.check(Buffer.from(body(1000)))).catch((e: unknown) => e);
    await stopping;
    expect(isAmpError(err) && err.code).toBe('internal');
    expect((err as Error).message).toMatch(/parse worker stopped/);
    const next = await pool.check(Buffer.from(body(1000)));
    expect(next.message.users).toBe(1000);
  });
});
