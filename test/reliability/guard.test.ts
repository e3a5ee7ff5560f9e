import { expect, it } from 'vitest';
import { run, sizes } from '../../reliability/guard.scenario';
import { describeDialects } from '../helpers/db';

// `npm run reliability -- guard` at a size for the suite.
describeDialects('reliability: guard', (dialect) => {
  it('an empty or -90% snapshot after an upstream failure is held; no tag is removed before approval', async () => {
    const line = await run(dialect, { ...sizes.quick, users: 200, workers: 1 });
    expect(line).toMatchObject({
      upstream_failures: 6,
      empty_snapshot_held: true,
      minus_90_held: true,
      tags_removed_before_approval: 0,
      tags_removed_after_reject: 0,
      approved_run_status: 'completed',
      tag_mismatches_after_approval: 0,
      targets_met: true,
    });
  }, 180_000);
});
