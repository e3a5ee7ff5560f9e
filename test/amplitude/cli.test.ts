import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AmplitudeEmulator, startAmplitudeEmulator } from '../../src/emulators/amplitude';
import { describeEachDialect } from '../helpers/db';
import { AMP } from './fixtures';

const BIN = resolve(__dirname, '../../bin/ampsignal.mjs');

function cli(dbUrl: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [BIN, '--db', dbUrl, ...args],
      { env: process.env, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === 'number'
            ? (err as { code: number }).code
            : 1
          : 0;
        done({ code, stdout, stderr });
      },
    );
  });
}

describeEachDialect('source and cohort CLI for Amplitude', (db) => {
  let amplitude: AmplitudeEmulator;
  beforeAll(async () => {
    amplitude = await startAmplitudeEmulator({
      projects: [AMP],
      cohorts: [
        { id: 'coh_cli_1', name: 'Power users', members: [{ user_id: 'a' }, { user_id: 'b' }, { amplitude_id: 7 }] },
        { id: 'coh_cli_2', name: 'Churn risk', members: [{ user_id: 'c' }] },
      ],
    });
  });
  afterAll(async () => {
    await amplitude?.close();
  });

  it('source add / list / show print the source, its webhook path, and the secret only when asked', async () => {
    const { url } = db();
    const add = await cli(url, [
      'source',
      'add',
      'amplitude',
      '--name',
      'Main project',
      '--api-key',
      AMP.apiKey,
      '--secret-key',
      AMP.secretKey,
      '--api-url',
      amplitude.url,
      '--download-budget',
      '100',
      '--json',
    ]);
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    const created = JSON.parse(add.stdout) as Record<string, unknown>;
    expect(created).toMatchObject({
      name: 'Main project',
      kind: 'amplitude',
      region: 'us',
      api_url: amplitude.url,
      download_budget: 100,
    });
    expect(created.webhook_path).toBe(`/hooks/amplitude/cohorts/${created.id}`);
    expect(String(created.webhook_secret).length).toBeGreaterThanOrEqual(24);
    expect(add.stdout).not.toContain(AMP.secretKey);
    expect(add.stdout).not.toContain(AMP.apiKey);

    // The rest only reads: run the processes side by side.
    const [listOut, showOut, revealOut, cohorts, unknown] = await Promise.all([
      cli(url, ['source', 'list', '--json']),
      cli(url, ['source', 'show', String(created.id), '--json']),
      cli(url, ['source', 'show', String(created.id), '--reveal-secret', '--json']),
      cli(url, ['cohort', 'list', '--source', String(created.id), '--refresh', '--json']),
      cli(url, ['cohort', 'list', '--source', 'src_missing', '--json']),
    ]);
    // After the refresh: the discovered cohorts are now known locally.
    const files = await cli(url, ['cohort', 'list', '--json']);
    const list = JSON.parse(listOut.stdout) as Array<Record<string, unknown>>;
    expect(list.map((s) => s.id)).toContain(created.id);
    expect(list[0]).not.toHaveProperty('webhook_secret');

    const show = JSON.parse(showOut.stdout) as Record<string, unknown>;
    expect(show).not.toHaveProperty('webhook_secret');
    expect(show).toMatchObject({ downloads_this_month: 0, planned_downloads_per_month: 0 });
    const revealed = JSON.parse(revealOut.stdout) as Record<string, unknown>;
    expect(revealed.webhook_secret).toBe(created.webhook_secret);

    // cohort list --source: the project's cohorts from Amplitude (listing is not a download).
    expect(cohorts.stderr).toBe('');
    const rows = JSON.parse(cohorts.stdout) as Array<Record<string, unknown>>;
    expect(rows.map((r) => [r.id, r.name, r.size])).toEqual([
      ['coh_cli_2', 'Churn risk', 1],
      ['coh_cli_1', 'Power users', 3],
    ]);
    expect(rows[0]!.last_computed).toEqual(expect.any(Number));
    expect(amplitude.cohorts.downloads()).toBe(0);

    // Without --source, `cohort list` lists every cohort known locally, the discovered ones included.
    expect(files.code).toBe(0);
    const known = JSON.parse(files.stdout) as Array<Record<string, unknown>>;
    expect(known.map((c) => [c.id, c.origin, c.source_id]).sort()).toEqual([
      ['coh_cli_1', 'amplitude', created.id],
      ['coh_cli_2', 'amplitude', created.id],
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no source with id src_missing/);
  });
});

// Flag validation happens before any database is opened.
describe('source CLI input checks', () => {
  it('bad input exits 2 with one line naming the flag', async () => {
    const url = 'sqlite:/nonexistent-dir-never-opened/x.db';
    const [region, missing, kind] = await Promise.all([
      cli(url, [
        'source',
        'add',
        'amplitude',
        '--name',
        'X',
        '--api-key',
        'k',
        '--secret-key',
        's',
        '--region',
        'mars',
      ]),
      cli(url, ['source', 'add', 'amplitude', '--name', 'X', '--api-key', 'k']),
      cli(url, ['source', 'add', 'mixpanel', '--name', 'X', '--api-key', 'k', '--secret-key', 's']),
    ]);
    expect(region.code).toBe(2);
    expect(region.stderr).toMatch(/--region: must be us or eu/);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--secret-key/);
    expect(kind.code).toBe(2);
    expect(kind.stderr).toMatch(/unknown source kind "mixpanel"/);
  });
});
