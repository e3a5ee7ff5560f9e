import { expect, it } from 'vitest';
import { demoBurst, runEventsDemo } from '../../src/demo/events';
import { describeEachDialect } from '../helpers/db';

describeEachDialect('events demo', (db) => {
  it('posts a burst with duplicates and shows every distinct event arriving in Amplitude once', async () => {
    const lines: string[] = [];
    await runEventsDemo({ ctx: db().ctx, log: (l) => lines.push(l) });
    const burst = demoBurst(Date.now());
    const distinct = burst.events - burst.duplicates;
    const text = lines.join('\n');
    expect(text).toContain(`duplicates ${burst.duplicates}, forwarded ${distinct}`);
    expect(text).toContain(`holds ${distinct} events (${distinct} distinct insert_ids)`);
    expect(text).toMatch(/\[Onesignal\] Push Clicked/);
    expect(text).toMatch(/\[Onesignal\] Email Opened/);
    expect(text).toMatch(/\[Onesignal\] SMS Confirmed delivery/);
    expect(text).toMatch(/amplitude_cohort_ids/);
  });
});
