import { expect, it } from 'vitest';
import { run, sizes } from '../../reliability/crash.scenario';
import { describeDialects } from '../helpers/db';

// `npm run reliability -- crash` at a size for the suite: kill -9 of the real serve and worker
// processes while a cohort syncs and events stream through, each restarted at once.
describeDialects('reliability: crash', (dialect) => {
  it('after kill -9 and restarts nothing is lost or doubled, delivery resumes within 10 s, no run is left running', async () => {
    const line = await run(dialect, {
      ...sizes.quick,
      users: 600,
      kills: 3,
      rounds: 1,
      events: 600,
      rateLimit: 100,
      workers: 1,
    });
    expect(line).toMatchObject({
      tag_mismatches: 0,
      events_missing: 0,
      events_doubled: 0,
      events_unexpected: 0,
      retry_after_violations: 0,
      per_user_violations: 0,
      runs_left_running: 0,
      crashed_processes: 0,
      targets_met: true,
    });
    expect(line.longest_stall_s).toBeLessThanOrEqual(10);
  }, 300_000);
});
