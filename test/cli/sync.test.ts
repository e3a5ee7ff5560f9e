import { afterAll, expect, it } from 'vitest';
import { describeEachDialect } from '../helpers/db';
import { cli, cohortSync, range, reimport, setupApp, writeIds } from '../sync/setup';

const emulators: Array<{ close(): Promise<void> }> = [];
afterAll(async () => {
  await Promise.all(emulators.map((e) => e.close()));
});

describeEachDialect('cli sync + runs', (db) => {
  // Each spawn starts tsx; on a loaded machine that takes seconds, hence the generous timeouts.
  it('create, dry run, run, show, records, list — JSON only on stdout', async () => {
    const { url, ctx } = db();
    const { emu, dest } = await setupApp(ctx, { users: range('s', 0, 20) });
    emulators.push(emu);
    const file = writeIds([...range('s', 0, 20), 'nobody1', 'nobody2']);
    const imp = JSON.parse(
      (await cli(['--db', url, 'cohort', 'import', '--file', file, '--name', 'CLI cohort', '--json'])).stdout,
    ) as { cohort_id: string };

    const c = await cli(['--db', url, 'sync', 'create', '--cohort', imp.cohort_id, '--destination', dest.id, '--json']);
    expect(c.code, c.stderr).toBe(0);
    const sync = JSON.parse(c.stdout) as { id: string; tag_key: string; cadence: string };
    expect(sync).toMatchObject({ tag_key: `amp_cohort_${imp.cohort_id}`, cadence: 'manual' });

    const dup = await cli(['--db', url, 'sync', 'create', '--cohort', imp.cohort_id, '--destination', dest.id]);
    expect(dup.code).toBe(2);
    expect(dup.stderr).toMatch(/already syncs/);

    const dry = await cli(['--db', url, 'sync', 'run', sync.id, '--dry-run', '--json']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ status: 'dry_run', added: 22, requests: 0 });

    const run = await cli(['--db', url, 'sync', 'run', sync.id, '--json']);
    expect(run.code, run.stderr).toBe(0);
    const view = JSON.parse(run.stdout) as Record<string, unknown>;
    for (const k of [
      'id',
      'sync_id',
      'status',
      'members',
      'added',
      'removed',
      'unchanged',
      'skipped_anonymous',
      'delivered',
      'not_found',
      'failed',
      'pending',
      'requests',
    ]) {
      expect(view).toHaveProperty(k);
    }
    expect(view).toMatchObject({
      status: 'completed',
      members: 22,
      added: 22,
      delivered: 20,
      not_found: 2,
      pending: 0,
      requests: 22,
    });
    expect(emu.state.getUser('s3')).toMatchObject({ [sync.tag_key]: '1' });

    const show = await cli(['--db', url, 'runs', 'show', String(view.id), '--records', 'not_found', '--json']);
    expect(show.code, show.stderr).toBe(0);
    const shown = JSON.parse(show.stdout) as { records: Array<{ external_id: string; outcome: string }> };
    expect(shown.records.map((r) => r.external_id).sort()).toEqual(['nobody1', 'nobody2']);

    const list = await cli(['--db', url, 'runs', 'list', '--sync', sync.id, '--json']);
    expect((JSON.parse(list.stdout) as unknown[]).length).toBe(2);
  }, 240_000);

  it('held runs: approve and reject via CLI; wrong ids and flags exit 2', async () => {
    const { url, ctx } = db();
    const users = range('h', 0, 10);
    const { emu, dest } = await setupApp(ctx, { users });
    emulators.push(emu);
    const { cohortId, sync } = await cohortSync(ctx, dest.id, users);
    expect(JSON.parse((await cli(['--db', url, 'sync', 'run', sync.id, '--json'])).stdout)).toMatchObject({
      status: 'completed',
      delivered: 10,
    });
    await reimport(ctx, cohortId, ['h0']);
    const held = JSON.parse((await cli(['--db', url, 'sync', 'run', sync.id, '--json'])).stdout) as {
      id: string;
      status: string;
    };
    expect(held.status).toBe('held');
    const rej = await cli(['--db', url, 'runs', 'reject', held.id, '--json']);
    expect(JSON.parse(rej.stdout)).toMatchObject({ status: 'rejected' });
    const again = await cli(['--db', url, 'runs', 'approve', held.id]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/only a held run/);
    const held2 = JSON.parse((await cli(['--db', url, 'sync', 'run', sync.id, '--json'])).stdout) as { id: string };
    const ok = await cli(['--db', url, 'runs', 'approve', held2.id, '--json']);
    expect(JSON.parse(ok.stdout)).toMatchObject({ status: 'completed', removed: 9, delivered: 9 });
    expect(emu.state.getUser('h5')?.[sync.tag_key]).toBeUndefined();

    const unknown = await cli(['--db', url, 'runs', 'show', 'run_nope', '--json']);
    expect(unknown.code).toBe(2);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1);
    const badCadence = await cli([
      '--db',
      url,
      'sync',
      'create',
      '--cohort',
      cohortId,
      '--destination',
      dest.id,
      '--cadence',
      'weekly',
    ]);
    expect(badCadence.code).toBe(2);
    expect(badCadence.stderr).toMatch(/cadence/);
    const badFlag = await cli(['--db', url, 'sync', 'run', sync.id, '--wat']);
    expect(badFlag.code).toBe(2);
  }, 240_000);

  it('update, pause and resume; delete asks (or takes --yes) and removes the tag and the segment', async () => {
    const { url, ctx } = db();
    const users = range('d', 0, 3);
    const { emu, dest } = await setupApp(ctx, { users });
    emulators.push(emu);
    const { sync } = await cohortSync(ctx, dest.id, users);
    expect((await cli(['--db', url, 'sync', 'run', sync.id, '--json'])).code).toBe(0);
    const upd = await cli(['--db', url, 'sync', 'update', sync.id, '--guard-threshold', '0.3', '--json']);
    expect(upd.code, upd.stderr).toBe(0);
    expect(JSON.parse(upd.stdout)).toMatchObject({ guard_threshold: 0.3 });
    const paused = await cli(['--db', url, 'sync', 'pause', sync.id, '--json']);
    expect(JSON.parse(paused.stdout)).toMatchObject({ status: 'paused' });
    const refused = await cli(['--db', url, 'sync', 'run', sync.id]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('sync resume');
    expect(JSON.parse((await cli(['--db', url, 'sync', 'resume', sync.id, '--json'])).stdout)).toMatchObject({
      status: 'active',
    });
    const noYes = await cli(['--db', url, 'sync', 'delete', sync.id]);
    expect(noYes.code).toBe(2);
    expect(noYes.stderr).toContain('add --yes');
    expect(emu.state.getUser('d1')).toMatchObject({ [sync.tag_key]: '1' });
    const del = await cli(['--db', url, 'sync', 'delete', sync.id, '--yes', '--json']);
    expect(del.code, del.stderr).toBe(0);
    expect(JSON.parse(del.stdout)).toMatchObject({ deleted: true, removed: 3, segment_error: null });
    expect(emu.state.getUser('d1')).toEqual({});
    expect(emu.state.segments()).toHaveLength(0);
  }, 240_000);
});
