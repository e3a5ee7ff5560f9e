import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  type OneSignalEmulator,
  type OneSignalEmulatorOptions,
  startOneSignalEmulator,
} from '../../src/emulators/onesignal/index';

const APP = 'aaaaaaaa-0000-4000-8000-000000000001';
const KEY = 'key-one';

const agent = new Agent({ connections: 8 });
afterAll(() => agent.close());

const running: OneSignalEmulator[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((e) => e.close()));
});

async function start(opts: Partial<OneSignalEmulatorOptions> = {}): Promise<OneSignalEmulator> {
  const emu = await startOneSignalEmulator({
    apps: [{ appId: APP, apiKey: KEY }],
    perUserPerSecond: 0,
    users: { mode: 'seeded', count: 10 },
    ...opts,
  });
  running.push(emu);
  return emu;
}

async function call(url: string, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', body?: unknown, key?: string) {
  const headers: Record<string, string> = {};
  if (key) headers.authorization = `Key ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await request(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    dispatcher: agent,
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, json: text ? JSON.parse(text) : undefined };
}

const patchTags = (emu: OneSignalEmulator, user: string, tags: Record<string, string>) =>
  call(`${emu.url}/apps/${APP}/users/by/external_id/${user}`, 'PATCH', { properties: { tags } }, KEY);
const viewUser = (emu: OneSignalEmulator, user: string) =>
  call(`${emu.url}/apps/${APP}/users/by/external_id/${user}`, 'GET', undefined, KEY);

describe('OneSignal emulator: drift behind the sync', () => {
  it('changes and deletes tags and deletes users in process; the view API and updates see it', async () => {
    const emu = await start({ viewRateLimitPerSecond: 0 });
    expect((await patchTags(emu, 'user-1', { amp_cohort_a: '1', amp_cohort_b: '1' })).status).toBe(202);
    expect((await patchTags(emu, 'user-2', { amp_cohort_a: '1' })).status).toBe(202);

    expect(emu.state.setTags('user-1', { amp_cohort_a: '0', plan: 'pro' })).toEqual({
      amp_cohort_a: '0',
      amp_cohort_b: '1',
      plan: 'pro',
    });
    expect(emu.state.deleteTag('user-1', 'amp_cohort_b')).toBe(true);
    expect(emu.state.deleteUser('user-2')).toBe(true);
    // Unknown users are reported, not created.
    expect(emu.state.setTags('nobody', { x: '1' })).toBeUndefined();
    expect(emu.state.deleteTag('nobody', 'x')).toBe(false);
    expect(emu.state.deleteUser('user-2')).toBe(false);

    const one = await viewUser(emu, 'user-1');
    expect(one.status).toBe(200);
    expect(one.json.properties.tags).toEqual({ amp_cohort_a: '0', plan: 'pro' });
    expect((await viewUser(emu, 'user-2')).status).toBe(404);
    expect((await patchTags(emu, 'user-2', { amp_cohort_a: '' })).status).toBe(404);
    // Drift is not traffic: nothing counted against the app.
    expect(emu.state.stats().byApp[APP]!.requests).toBe(5);
  });

  it('drifts over HTTP under /_emulator, from another process', async () => {
    const emu = await start();
    await patchTags(emu, 'user-3', { amp_cohort_a: '1', keep: 'yes' });
    const base = `${emu.url}/_emulator/users/${APP}`;
    const changed = await call(`${base}/user-3`, 'PATCH', { tags: { amp_cohort_a: '', other: '7', keep: null } });
    expect(changed.status).toBe(200);
    expect(changed.json).toEqual({ app_id: APP, external_id: 'user-3', tags: { other: '7' } });
    expect(emu.state.getUser('user-3')).toEqual({ other: '7' });

    expect((await call(`${base}/user-3`, 'DELETE')).json).toEqual({ deleted: true });
    expect(emu.state.getUser('user-3')).toBeUndefined();
    expect((await call(`${base}/user-3`, 'DELETE')).status).toBe(404);
    expect((await call(`${base}/nobody`, 'PATCH', { tags: { a: '1' } })).status).toBe(404);
    expect((await call(`${emu.url}/_emulator/users/no-app/user-1`, 'DELETE')).status).toBe(404);
    const bad = await call(`${base}/user-4`, 'PATCH', { tags: { a: 1 } });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toBe('invalid_input');
  });
});

describe('OneSignal emulator: updates of unknown users', () => {
  it('answers 404 by default; with acceptUnknownUsers answers 202 and applies nothing', async () => {
    const strict = await start();
    expect((await patchTags(strict, 'ghost', { amp_cohort_a: '1' })).status).toBe(404);

    const lax = await start({ acceptUnknownUsers: true });
    const res = await patchTags(lax, 'ghost', { amp_cohort_a: '1' });
    expect(res.status).toBe(202);
    expect(res.json).toEqual({ properties: { tags: { amp_cohort_a: '1' } } });
    expect(lax.state.getUser('ghost')).toBeUndefined();
    expect(lax.state.userCount()).toBe(10);
    expect(lax.state.stats().unknownAccepted).toBe(1);
    // Still validated like any update.
    const restricted = await call(
      `${lax.url}/apps/${APP}/users/by/external_id/ghost`,
      'PATCH',
      { properties: { tags: { user: '1' } } },
      KEY,
    );
    expect(restricted.status).toBe(400);
    // Known users are updated as usual.
    expect((await patchTags(lax, 'user-1', { amp_cohort_a: '1' })).status).toBe(202);
    expect(lax.state.getUser('user-1')).toEqual({ amp_cohort_a: '1' });
  });

  it('is switched at runtime (in process and over HTTP) and restored by reset', async () => {
    const emu = await start();
    emu.setBehaviour({ acceptUnknownUsers: true });
    expect((await patchTags(emu, 'ghost', { a: '1' })).status).toBe(202);
    const off = await call(`${emu.url}/_emulator/behaviour`, 'POST', { acceptUnknownUsers: false });
    expect(off.json).toEqual({ behaviour: { acceptUnknownUsers: false } });
    expect((await patchTags(emu, 'ghost', { a: '1' })).status).toBe(404);
    expect((await call(`${emu.url}/_emulator/behaviour`, 'POST', { acceptUnknownUsers: 'yes' })).status).toBe(400);
    emu.setBehaviour({ acceptUnknownUsers: true });
    emu.reset();
    expect((await patchTags(emu, 'ghost', { a: '1' })).status).toBe(404);
  });

  it('the CLI flag --accept-unknown-users does the same, and --help names the drift routes', async () => {
    const help = spawn(process.execPath, ['bin/ampsignal.mjs', 'emulator', 'onesignal', '--help'], { cwd: ROOT });
    let helpOut = '';
    help.stdout.on('data', (d: Buffer) => (helpOut += d.toString()));
    await once(help, 'exit');
    expect(helpOut).toMatch(/--accept-unknown-users/);
    expect(helpOut).toMatch(/PATCH {2}\/_emulator\/users\/APP_ID\/EXTERNAL_ID/);
    expect(helpOut).toMatch(/--fault-rate/);

    for (const [flags, status] of [
      [[], 404],
      [['--accept-unknown-users'], 202],
    ] as const) {
      await withCli([...flags], async (url) => {
        const res = await call(
          `${url}/apps/${APP}/users/by/external_id/ghost`,
          'PATCH',
          { properties: { tags: { a: '1' } } },
          KEY,
        );
        expect(res.status).toBe(status);
        expect((await call(`${url}/_emulator/users/${APP}/ghost`, 'GET')).status).toBe(404);
      });
    }
  });
});

const ROOT = path.resolve(__dirname, '../..');

/** Runs `ampsignal emulator onesignal` with `flags` around `fn`, stopping it afterwards. */
async function withCli(flags: string[], fn: (url: string) => Promise<void>): Promise<void> {
  const child = spawn(
    process.execPath,
    ['bin/ampsignal.mjs', 'emulator', 'onesignal', '--port', '0', '--json', '--app', `${APP}:${KEY}`, ...flags],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  try {
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    let info: { url: string } | undefined;
    while (!info) {
      await Promise.race([once(child.stdout, 'data'), once(child, 'exit')]);
      if (child.exitCode !== null) throw new Error('the emulator exited before starting');
      try {
        info = JSON.parse(out) as { url: string };
      } catch {
        /* not complete yet */
      }
    }
    await fn(info.url);
    child.kill('SIGTERM');
    await once(child, 'exit');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

describe('OneSignal emulator: segment evaluation', () => {
  const DAY = 86_400;

  it('selects users by tag filters: exists, time_elapsed_gt/lt on entry times, comparisons, AND and OR', async () => {
    const emu = await start();
    const now = Date.UTC(2025, 0, 10) / 1000;
    // Entry times: user-0 entered 5 days ago, user-1 2 days ago, user-2 just now; user-3 has no tag.
    emu.state.setTags('user-0', { amp_cohort_c: String(now - 5 * DAY), plan: '10' });
    emu.state.setTags('user-1', { amp_cohort_c: String(now - 2 * DAY), plan: '3' });
    emu.state.setTags('user-2', { amp_cohort_c: String(now), plan: 'free' });
    emu.state.setTags('user-3', { plan: '10' });
    const at = { nowMs: now * 1000 };
    const sorted = (a: string[]) => [...a].sort();

    const created = await call(
      `${emu.url}/apps/${APP}/segments`,
      'POST',
      {
        name: 'In cohort c for more than 3 days',
        filters: [{ field: 'tag', key: 'amp_cohort_c', relation: 'time_elapsed_gt', value: String(3 * DAY) }],
      },
      KEY,
    );
    expect(created.status).toBe(201);
    expect(emu.state.segmentUsers(created.json.id, at)).toEqual(['user-0']);

    const exists = [{ field: 'tag', key: 'amp_cohort_c', relation: 'exists' }];
    expect(sorted(emu.state.segmentUsers(exists, at))).toEqual(['user-0', 'user-1', 'user-2']);
    expect(
      sorted(
        emu.state.segmentUsers(
          [{ field: 'tag', key: 'amp_cohort_c', relation: 'time_elapsed_lt', value: String(3 * DAY) }],
          at,
        ),
      ),
    ).toEqual(['user-1', 'user-2']);
    // Numeric strings compare as numbers ("10" > "3"); a non-number matches no comparison.
    expect(sorted(emu.state.segmentUsers([{ field: 'tag', key: 'plan', relation: '>', value: '5' }], at))).toEqual([
      'user-0',
      'user-3',
    ]);
    expect(emu.state.segmentUsers([{ field: 'tag', key: 'plan', relation: '=', value: 'free' }], at)).toEqual([
      'user-2',
    ]);
    // AND within a group, OR between groups.
    expect(
      sorted(
        emu.state.segmentUsers(
          [
            { field: 'tag', key: 'amp_cohort_c', relation: 'exists' },
            { field: 'tag', key: 'plan', relation: '=', value: '10' },
            { operator: 'OR' },
            { field: 'tag', key: 'plan', relation: '=', value: 'free' },
          ],
          at,
        ),
      ),
    ).toEqual(['user-0', 'user-2']);
    expect(emu.state.segmentUsers([{ field: 'tag', key: 'amp_cohort_c', relation: 'not_exists' }], at)).toContain(
      'user-3',
    );
    // Leaving deletes the tag: the user drops out of the segment.
    emu.state.deleteTag('user-0', 'amp_cohort_c');
    expect(emu.state.segmentUsers(created.json.id, at)).toEqual([]);

    // The same over HTTP, at a given time.
    emu.state.setTags('user-1', { amp_cohort_c: String(now - 4 * DAY) });
    const http = await call(`${emu.url}/_emulator/segments/${APP}/${created.json.id}/users?now=${now * 1000}`, 'GET');
    expect(http.json).toEqual({ users: ['user-1'] });
    expect((await call(`${emu.url}/_emulator/segments/${APP}/nope/users`, 'GET')).status).toBe(404);

    expect(() => emu.state.segmentUsers([{ field: 'session_count', relation: '>', value: '1' }])).toThrow(
      /tag filters only/,
    );
    expect(() => emu.state.segmentUsers('no-such-segment')).toThrow(/no segment/);
  });
});
