import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type OneSignalEmulator, startOneSignalEmulator } from '../../src/emulators/onesignal';
import { describeEachDialect } from '../helpers/db';

const BIN = resolve(__dirname, '../../bin/ampsignal.mjs');

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

function run(dbUrl: string, args: string[]): Promise<Ran> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [BIN, '--db', dbUrl, 'destination', ...args],
      { env: process.env, timeout: 150_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        done({ code, stdout, stderr: err?.signal ? `${stderr}[killed by ${err.signal}]` : stderr });
      },
    );
  });
}

let emu: OneSignalEmulator;
const app = { appId: randomUUID(), apiKey: `key-${randomUUID()}` };
const second = { appId: randomUUID(), apiKey: `key-${randomUUID()}` };
beforeAll(async () => {
  emu = await startOneSignalEmulator({ apps: [app, second] });
});
afterAll(async () => {
  await emu?.close();
});

// Every CLI call is a child process (tsx start-up is the cost), so independent calls run in
// parallel waves; the module-level behaviour is covered in-process by test/connectors.
const SLOW = 180_000;

describeEachDialect('ampsignal destination', (db) => {
  it(
    'add, show, test (good and wrong key), pause; usage errors are one line and exit 2',
    async () => {
      const { url } = db();
      const [add, addWrong, unknown, badFlag, badValues] = await Promise.all([
        run(url, [
          'add',
          'onesignal',
          '--name',
          'Main',
          '--app-id',
          app.appId,
          '--api-key',
          app.apiKey,
          '--api-url',
          emu.url,
          '--max-tags',
          '20',
          '--json',
        ]),
        run(url, [
          'add',
          'onesignal',
          '--name',
          'Wrong',
          '--app-id',
          second.appId,
          '--api-key',
          'not-the-key',
          '--api-url',
          emu.url,
          '--json',
        ]),
        run(url, ['show', 'dst_missing']),
        run(url, ['add', 'onesignal', '--bogus']),
        run(url, ['add', 'onesignal', '--name', 'X', '--app-id', app.appId, '--api-key', 'k', '--max-tags', 'many']),
      ]);
      expect(add.stderr).toBe('');
      expect(add.code).toBe(0);
      const view = JSON.parse(add.stdout) as Record<string, unknown>;
      expect(view).toMatchObject({
        name: 'Main',
        app_id: app.appId,
        api_url: emu.url,
        max_tags_per_user: 20,
        status: 'active',
      });
      expect(add.stdout).not.toContain(app.apiKey);
      const id = view.id as string;
      expect(addWrong.code).toBe(0);
      const wrongId = (JSON.parse(addWrong.stdout) as { id: string }).id;

      expect(unknown.code).toBe(2);
      expect(unknown.stderr.trim()).toBe('ampsignal: destination dst_missing not found');
      expect(badFlag.code).toBe(2);
      expect(badFlag.stderr).toContain("unknown option '--bogus'");
      expect(badValues.code).toBe(2);
      expect(badValues.stderr.trim()).toBe('ampsignal: --max-tags: must be a whole number');

      const [show, test, testWrong] = await Promise.all([
        run(url, ['show', id, '--json']),
        run(url, ['test', id, '--json']),
        run(url, ['test', wrongId, '--json']),
      ]);
      expect(show.code).toBe(0);
      expect(JSON.parse(show.stdout)).toEqual(view);
      expect(test.code, test.stderr).toBe(0);
      expect(JSON.parse(test.stdout)).toMatchObject({ ok: true, destination_id: id, app_id: app.appId });
      expect(testWrong.code).toBe(1);
      const failed = JSON.parse(testWrong.stdout) as { ok: boolean; error: string; message: string };
      expect(failed).toMatchObject({ ok: false, error: 'credentials_refused', destination_id: wrongId });
      expect(failed.message).toMatch(/refused the App ID or the App API key/);

      const pause = await run(url, ['pause', id, '--reason', 'maintenance', '--json']);
      expect(pause.code).toBe(0);
      expect(JSON.parse(pause.stdout)).toMatchObject({ id, status: 'paused', status_reason: 'maintenance' });
    },
    SLOW,
  );

  it(
    'a second destination for one app is refused naming the first; update rotates the key; delete asks, or takes --yes',
    async () => {
      const { url } = db();
      const list = JSON.parse((await run(url, ['list', '--json'])).stdout) as Array<{ id: string; app_id: string }>;
      const main = list.find((d) => d.app_id === app.appId)!;
      const wrong = list.find((d) => d.app_id === second.appId)!;
      const [again, rotate, badUpdate, noChoice, noTty] = await Promise.all([
        run(url, ['add', 'onesignal', '--name', 'Again', '--app-id', app.appId, '--api-key', 'k']),
        run(url, ['update', wrong.id, '--api-key', second.apiKey, '--max-tags', '12', '--json']),
        run(url, ['update', wrong.id, '--max-tags', '0']),
        run(url, ['delete', main.id]),
        run(url, ['delete', main.id, '--keep-tags']),
      ]);
      expect(again.code, again.stderr).toBe(2);
      expect(again.stderr).toContain(`is already the destination "Main" (${main.id})`);
      expect(rotate.code, rotate.stderr).toBe(0);
      expect(JSON.parse(rotate.stdout)).toMatchObject({ id: wrong.id, max_tags_per_user: 12 });
      expect(badUpdate.code, badUpdate.stderr).toBe(2);
      expect(badUpdate.stderr.trim()).toBe('ampsignal: --max-tags: must be at least 1');
      expect(noChoice.code, noChoice.stderr).toBe(2);
      expect(noChoice.stderr).toContain('--remove-tags or --keep-tags');
      expect(noTty.code, noTty.stderr).toBe(2);
      expect(noTty.stderr).toContain('add --yes');

      const test = await run(url, ['test', wrong.id, '--json']);
      expect(test.code, test.stderr).toBe(0);
      expect(JSON.parse(test.stdout)).toMatchObject({ ok: true });
      const del = await run(url, ['delete', wrong.id, '--keep-tags', '--yes', '--json']);
      expect(del.code, del.stderr).toBe(0);
      expect(JSON.parse(del.stdout)).toMatchObject({ id: wrong.id, deleted: true, removed_tags: false });
      expect((await run(url, ['show', wrong.id])).code).toBe(2);
    },
    SLOW,
  );
});
