import { expect, it } from 'vitest';
import { run, sizes } from '../../reliability/bad-input.scenario';
import { describeDialects } from '../helpers/db';

// `npm run reliability -- bad-input` at a size for the suite: the same seeded corpus, shorter.
describeDialects('reliability: bad-input', (dialect) => {
  it('hostile and valid requests to both webhooks and the admin API: no 5xx, nothing invalid stored, nothing valid lost, no internals', async () => {
    const line = await run(dialect, { ...sizes.quick, cases: 300, unauthenticated: 1_000 });
    expect(line.examples).toBeUndefined();
    expect(line).toMatchObject({
      server_errors_5xx: 0,
      connection_errors: 0,
      crashes: 0,
      invalid_items_stored: 0,
      valid_items_lost: 0,
      answers_leaking_internals: 0,
      targets_met: true,
    });
    // The corpus mixes both kinds of item.
    expect(line.valid_items).toBeGreaterThan(50);
    expect(line.invalid_items).toBeGreaterThan(50);
    expect(typeof line.heap_growth_mb).toBe('number');
  }, 240_000);
});
