import { expect, it } from 'vitest';
import { describeEachDialect } from '../helpers/db';
import { cli } from '../sync/setup';

describeEachDialect('cli demo', (db) => {
  it('runs to the end, reports the counts, and the records it suggests looking at are there', async () => {
    const { url } = db();
    const r = await cli(['--db', url, 'demo', '--users', '600']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/run run_\S+ \(sync syn_\S+\): completed/);
    expect(r.stdout).toMatch(/added 582, removed 0, retried 0, unchanged 0/);
    expect(r.stdout).toMatch(/delivered \d+, not found \d+, failed 0, pending 0/);
    expect(r.stdout).toMatch(/runs show run_\S+ --json/);

    // The first run's not_found users are retried by the second run; the first run's records
    // must still list every one of them, as its counter says.
    const firstNotFound = Number(/not found (\d+)/.exec(r.stdout)?.[1]);
    expect(firstNotFound).toBeGreaterThan(0);
    const suggested = /runs show (run_\S+) --records not_found/.exec(r.stdout);
    expect(suggested).not.toBeNull();
    const shown = await cli(['--db', url, 'runs', 'show', suggested![1]!, '--records', 'not_found', '--json']);
    expect(shown.code).toBe(0);
    const body = JSON.parse(shown.stdout) as { not_found: number; records: Array<{ outcome: string }> };
    expect(body.not_found).toBe(firstNotFound);
    expect(body.records).toHaveLength(firstNotFound);
    expect(new Set(body.records.map((x) => x.outcome))).toEqual(new Set(['not_found']));
    // The second run says which of its changes are retries of those users, apart from joins.
    expect(r.stdout).toMatch(new RegExp(`retried ${firstNotFound},`));
  }, 180_000);
});
