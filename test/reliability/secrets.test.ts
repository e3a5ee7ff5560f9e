import { expect, it } from 'vitest';
import { run, sizes } from '../../reliability/secrets.scenario';
import { describeDialects } from '../helpers/db';

// `npm run reliability -- secrets` at a size for the suite.
describeDialects('reliability: secrets', (dialect) => {
  it('no key, secret or token shows in debug logs, the database, CLI output, API answers or UI pages', async () => {
    const line = await run(dialect, { ...sizes.quick, users: 100, events: 100, pages: 40 });
    expect(line.hits_by_place).toEqual({});
    expect(line).toMatchObject({ hits: 0, targets_met: true });
    // The search sees a secret where one is shown on purpose (source show --reveal-secret).
    expect(line.control_hits_in_reveal_secret).toBeGreaterThan(0);
    expect((line.searched as Record<string, number>).ui_pages).toBeGreaterThanOrEqual(5);
  }, 240_000);
});
