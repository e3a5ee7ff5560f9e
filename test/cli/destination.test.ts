import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startOneSignalEmulator, type OneSignalEmulator } from '../../src/emulators/onesignal';
import { describeEachDialect } from '../helpers/db';

const BIN = resolve(__dirname, '../../bin/ampsignal.mjs');

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

function run(dbUrl: string, args: string[]): Promise<Ran> {
  return new Promise((done) => {
    execFile(process.execPath, [BIN, '--db', dbUrl, 'destination', ...args], { env: process.env, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      done({ code, stdout, stderr });
    });
  });
}

let emu: OneSignalEmulator;
const app = { appId: randomUUID(), apiKey: `key-${randomUUID()}` };
beforeAll(async () => {
  emu = await startOneSignalEmulator({ apps: [app] });
});
afterAll(async () => {
  await emu?.close();
});

describeEachDialect('ampsignal destination', (db) => {
  it('add, show, list, test, pause and resume', async () => {
    const { url } = db();
    const add = await run(url, ['add', 'onesignal', '--name', 'Main', '--app-id', app.appId, '--api-key', app.apiKey, '--api-url', emu.url, '--max-tags', '20', '--json']);
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    const view = JSON.parse(add.stdout) as Record<string, unknown>;
    expect(view).toMatchObject({ name: 'Main', app_id: app.appId, api_url: emu.url, max_tags_per_user: 20, status: 'active' });
    expect(add.stdout).not.toContain(app.apiKey);
    const id = view.id as string;

    const show = await run(url, ['show', id, '--json']);
    expect(show.code).toBe(0);
    expect(JSON.parse(show.stdout)).toEqual(view);

    const test = await run(url, ['test', id, '--json']);
    expect(test.code).toBe(0);
    expect(JSON.parse(test.stdout)).toMatchObject({ ok: true, destination_id: id, app_id: app.appId });

    const pause = await run(url, ['pause', id, '--reason', 'maintenance', '--json']);
    expect(pause.code).toBe(0);
    expect(JSON.parse(pause.stdout)).toMatchObject({ status: 'paused', status_reason: 'maintenance' });
    const resume = await run(url, ['resume', id]);
    expect(resume.code).toBe(0);
    expect(resume.stdout).toContain('resumed');

    const list = await run(url, ['list', '--json']);
    expect(list.code).toBe(0);
    const all = JSON.parse(list.stdout) as Array<Record<string, unknown>>;
    expect(all.map((d) => d.id)).toEqual([id]);
    expect(all[0]!.status).toBe('active');
  });

  it('a wrong key fails the test with the vendor message (exit 1)', async () => {
    const { url } = db();
    const add = await run(url, ['add', 'onesignal', '--name', 'Wrong', '--app-id', app.appId, '--api-key', 'not-the-key', '--api-url', emu.url, '--json']);
    expect(add.code).toBe(0);
    const id = (JSON.parse(add.stdout) as { id: string }).id;
    const test = await run(url, ['test', id, '--json']);
    expect(test.code).toBe(1);
    expect(test.stderr.trim().split('\n')).toHaveLength(1);
    expect(test.stderr).toMatch(/access denied/i);
    expect(JSON.parse(test.stdout)).toMatchObject({ ok: false, error: 'vendor_auth' });
    expect((JSON.parse(test.stdout) as { message: string }).message).toMatch(/access denied/i);
  });

  it('usage errors are one line and exit 2', async () => {
    const { url } = db();
    const unknown = await run(url, ['show', 'dst_missing']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim()).toBe('ampsignal: destination dst_missing not found');
    expect((await run(url, ['test', 'dst_missing'])).code).toBe(2);

    const badFlag = await run(url, ['add', 'onesignal', '--bogus']);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toContain("unknown option '--bogus'");

    const badValues = await run(url, ['add', 'onesignal', '--name', 'X', '--app-id', 'nope', '--api-key', 'k', '--max-tags', 'many']);
    expect(badValues.code).toBe(2);
    expect(badValues.stderr.trim().split('\n')).toHaveLength(1);
    expect(badValues.stderr).toContain('--max-tags: must be a whole number');

    const badApp = await run(url, ['add', 'onesignal', '--name', 'X', '--app-id', 'nope', '--api-key', 'k']);
    expect(badApp.code).toBe(2);
    expect(badApp.stderr).toContain('--app-id: must be a OneSignal App ID');

    const noSource = await run(url, ['add', 'onesignal', '--name', 'X', '--app-id', app.appId, '--api-key', 'k', '--source', 'src_nope']);
    expect(noSource.code).toBe(2);
    expect(noSource.stderr.trim()).toBe('ampsignal: source src_nope not found');

    const missing = await run(url, ['add', 'onesignal', '--name', 'X']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('missing --app-id, --api-key');

    const list = await run(url, ['list', '--json']);
    expect(JSON.parse(list.stdout)).toEqual([]);
  });
});
