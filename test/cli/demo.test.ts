import { expect, it } from 'vitest';
import { describeEachDialect } from '../helpers/db';
import { cli } from '../sync/setup';

describeEachDialect('cli demo', (db) => {
  it('runs to the end and reports the counts', async () => {
    const { url } = db();
    const r = await cli(['--db', url, 'demo', '--users', '600']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/run run_\S+ \(sync syn_\S+\): completed/);
    expect(r.stdout).toMatch(/added 582, removed 0, unchanged 0/);
    expect(r.stdout).toMatch(/delivered \d+, not found \d+, failed 0, pending 0/);
    expect(r.stdout).toMatch(/runs show run_\S+ --json/);
  }, 120_000);
});
