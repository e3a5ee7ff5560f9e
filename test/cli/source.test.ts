import { afterAll, beforeAll, expect, it } from 'vitest';
import { type AmplitudeEmulator, startAmplitudeEmulator } from '../../src/emulators/amplitude';
import { describeEachDialect } from '../helpers/db';
import { runCli } from './proc';

const P = { apiKey: 'cli-source-key', secretKey: 'cli-source-secret' };
let amplitude: AmplitudeEmulator;
beforeAll(async () => {
  amplitude = await startAmplitudeEmulator({ projects: [P] });
});
afterAll(async () => {
  await amplitude?.close();
});

const SLOW = 180_000;

describeEachDialect('ampsignal source', (db) => {
  it(
    'add, the same project again refused naming it, update a rotated secret key, test, delete with --yes',
    async () => {
      const { url } = db();
      const src = (args: string[]) => runCli(['--db', url, 'source', ...args]);
      const add = await src([
        'add',
        'amplitude',
        '--name',
        'main',
        '--api-key',
        P.apiKey,
        '--secret-key',
        'old',
        '--api-url',
        amplitude.url,
        '--json',
      ]);
      expect(add.code, add.stderr).toBe(0);
      const created = JSON.parse(add.stdout) as { id: string; webhook_secret: string };
      const [again, refused, noKey] = await Promise.all([
        src(['add', 'amplitude', '--name', 'other', '--api-key', P.apiKey, '--secret-key', 's']),
        src(['test', created.id, '--json']),
        src(['update', created.id]),
      ]);
      expect(again.code).toBe(2);
      expect(again.stderr).toContain(`already the source "main" (${created.id})`);
      expect(refused.code).toBe(1);
      expect(JSON.parse(refused.stdout)).toMatchObject({ ok: false, error: 'credentials_refused' });
      expect(noKey.code).toBe(2);
      expect(noKey.stderr).toContain('nothing to change');

      const rotate = await src([
        'update',
        created.id,
        '--secret-key',
        P.secretKey,
        '--download-budget',
        '300',
        '--json',
      ]);
      expect(rotate.code, rotate.stderr).toBe(0);
      expect(JSON.parse(rotate.stdout)).toMatchObject({ id: created.id, download_budget: 300 });
      const ok = await src(['test', created.id, '--json']);
      expect(ok.code, ok.stderr).toBe(0);
      expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true });

      const noTty = await src(['delete', created.id]);
      expect(noTty.code).toBe(2);
      expect(noTty.stderr).toContain('add --yes');
      const del = await src(['delete', created.id, '--yes', '--json']);
      expect(del.code, del.stderr).toBe(0);
      expect(JSON.parse(del.stdout)).toMatchObject({ id: created.id, deleted: true });
      expect((await src(['show', created.id])).code).toBe(2);
    },
    SLOW,
  );
});
