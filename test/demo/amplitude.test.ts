import { afterAll, beforeAll, expect, it } from 'vitest';
import { runAmplitudeDemo } from '../../src/demo/amplitude';
import { type OneSignalEmulator, startOneSignalEmulator } from '../../src/emulators/onesignal';
import { OS_APP } from '../amplitude/fixtures';
import { describeEachDialect } from '../helpers/db';

describeEachDialect('Amplitude demo section', (db) => {
  let onesignal: OneSignalEmulator;
  beforeAll(async () => {
    onesignal = await startOneSignalEmulator({
      apps: [OS_APP],
      users: { mode: 'seeded', ids: Array.from({ length: 400 }, (_, i) => `user_${i}`) },
    });
  });
  afterAll(async () => {
    await onesignal?.close();
  });

  it('pulls a cohort from the Amplitude emulator, then applies and delivers its pushed changes', async () => {
    const { ctx } = db();
    const lines: string[] = [];
    await runAmplitudeDemo({ ctx, log: (l) => lines.push(l), oneSignal: { url: onesignal.url, ...OS_APP } });
    const text = lines.join('\n');
    expect(text).toMatch(/completed; 240 members, 6 anonymous skipped; \+240 -0 \(=0\); delivered 240/);
    expect(text).toMatch(/an hourly sync would be refused: hourly = about 720 downloads a month/);
    expect(text).toMatch(/applied 2 messages to the ledger; delivered 32 tag changes/);
    expect(text).toMatch(/OneSignal now tags 232 users/);
    expect(onesignal.state.getUser('user_0')?.amp_cohort_trial_users).toBeUndefined();
    expect(onesignal.state.getUser('user_300')?.amp_cohort_trial_users).toBe('1');
  });
});
