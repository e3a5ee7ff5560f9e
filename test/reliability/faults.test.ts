import { expect, it } from 'vitest';
import { run, sizes } from '../../reliability/faults.scenario';
import { describeDialects } from '../helpers/db';

// `npm run reliability -- faults` at a size for the suite: the real serve and worker processes,
// emulators failing a fifth of requests, a churning cohort and a stream of events with resends.
describeDialects('reliability: faults', (dialect) => {
  it('every tag equals membership and every event is in Amplitude once, under vendor faults', async () => {
    const line = await run(dialect, {
      ...sizes.quick,
      users: 300,
      rounds: 2,
      events: 600,
      // More 429s than the full size's 0.2%, so a few happen at this size.
      throttleRate: 0.01,
      hangMs: 300,
      workers: 1,
    });
    expect(line).toMatchObject({
      tag_mismatches: 0,
      events_missing: 0,
      events_doubled: 0,
      events_unexpected: 0,
      retry_after_violations: 0,
      per_user_violations: 0,
      crashed_processes: 0,
      targets_met: true,
    });
    // The faults really happened (and were survived).
    const dealt = line.faults_onesignal as Record<string, number>;
    expect(dealt.error! + dealt.drop! + dealt.timeout! + dealt.lost!).toBeGreaterThan(0);
    expect(dealt.throttle).toBeGreaterThan(0);
  }, 240_000);
});
