import { expect, it } from 'vitest';
import { describeEachDialect } from '../helpers/db';
import { cli, writeText } from '../sync/setup';

describeEachDialect('cli cohort', (db) => {
  it('imports a CSV, re-imports by id, lists; --json is the JSON alone', async () => {
    const { url } = db();
    const f1 = writeText('plan,user_id,country\nfree, u1 ,de\npro,u2,fr\nfree,,us\npro,u2,fr\n');
    const r = await cli([
      '--db',
      url,
      'cohort',
      'import',
      '--file',
      f1,
      '--name',
      'Buyers',
      '--id',
      'buyers',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      cohort_id: 'buyers',
      name: 'Buyers',
      members: 2,
      blank: 1,
      duplicates: 1,
      trimmed: 1,
      replaced: false,
    });

    const f2 = writeText('u7\nu8\n\nu9\n');
    const r2 = await cli([
      '--db',
      url,
      'cohort',
      'import',
      '--file',
      f2,
      '--name',
      'Buyers',
      '--id',
      'buyers',
      '--json',
    ]);
    expect(r2.code, r2.stderr).toBe(0);
    expect(JSON.parse(r2.stdout)).toMatchObject({ members: 3, blank: 1, replaced: true });

    const l = await cli(['--db', url, 'cohort', 'list', '--json']);
    expect(l.code, l.stderr).toBe(0);
    const list = JSON.parse(l.stdout) as Array<{ id: string; size: number }>;
    expect(list.find((c) => c.id === 'buyers')?.size).toBe(3);
  }, 180_000);

  it('a CSV without user_id names the columns found, exit 2, nothing written', async () => {
    const { url, ctx } = db();
    const f = writeText('email,plan\na@x.io,pro\n');
    const r = await cli(['--db', url, 'cohort', 'import', '--file', f, '--name', 'Bad', '--id', 'bad']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/user_id.*"email", "plan"/);
    const c = await ctx.store.db.selectFrom('cohorts').select('id').where('id', '=', 'bad').executeTakeFirst();
    expect(c).toBeUndefined();
  }, 180_000);

  it('a failed re-import keeps the previous membership', async () => {
    const { url, ctx } = db();
    const ok = writeText('user_id\nk1\nk2\n');
    expect((await cli(['--db', url, 'cohort', 'import', '--file', ok, '--name', 'Keep', '--id', 'keep'])).code).toBe(0);
    const bad = writeText('email,plan\nx,y\n');
    expect((await cli(['--db', url, 'cohort', 'import', '--file', bad, '--name', 'Keep', '--id', 'keep'])).code).toBe(
      2,
    );
    const rows = await ctx.store.db
      .selectFrom('cohort_members')
      .select('external_id')
      .where('cohort_id', '=', 'keep')
      .orderBy('external_id')
      .execute();
    expect(rows.map((r) => r.external_id)).toEqual(['k1', 'k2']);
  }, 180_000);

  it('missing file, missing flag and unknown flag are one-line errors with exit code 2', async () => {
    const { url } = db();
    const a = await cli(['--db', url, 'cohort', 'import', '--file', '/nonexistent.csv', '--name', 'X']);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/no such file/);
    const b = await cli(['--db', url, 'cohort', 'import', '--file', '/nonexistent.csv']);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/--name/);
    const c = await cli(['--db', url, 'cohort', 'list', '--bogus']);
    expect(c.code).toBe(2);
  }, 180_000);
});
