import { execFile } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type AmplitudeEmulator, startAmplitudeEmulator } from '../../src/emulators/amplitude';
import { forwardStream } from '../../src/events/forward';
import { describeEachDialect } from '../helpers/db';
import { nestedEvent, postEvents, startServer } from './helpers';

function cli(dbUrl: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['bin/ampsignal.mjs', '--db', dbUrl, ...args],
      { timeout: 60_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

const KEY = 'cli-project-key';

describeEachDialect('stream and dead-letters CLI', (db) => {
  let emu: AmplitudeEmulator;
  let server: { base: string; close: () => Promise<void> };
  beforeAll(async () => {
    emu = await startAmplitudeEmulator({ projects: [{ apiKey: KEY, secretKey: 'sk' }] });
    const s = await startServer(db().ctx);
    server = { base: s.base, close: () => s.app.close() };
  });
  afterAll(async () => {
    await server?.close();
    await emu?.close();
  });

  it('adds a stream, receives, dead-letters, replays and shows the counters', async () => {
    const { url, ctx } = db();
    const add = await cli(url, [
      'stream',
      'add',
      '--name',
      'prod',
      '--amplitude-api-key',
      KEY,
      '--amplitude-url',
      emu.url,
      '--event-name',
      'message.push.clicked=Push Opened',
      '--json',
    ]);
    expect(add.code).toBe(0);
    const stream = JSON.parse(add.stdout);
    expect(stream.webhook_path).toBe(`/hooks/onesignal/events/${stream.id}`);
    expect(stream.webhook_secret).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(add.stdout).not.toContain(KEY);

    const body = [
      nestedEvent({ id: 'cli-1' }),
      nestedEvent({ id: 'cli-2' }),
      nestedEvent({ id: 'cli-3' }),
      nestedEvent({ id: 'cli-1' }),
    ];
    expect((await postEvents(server.base, stream.id, stream.webhook_secret, body)).json).toMatchObject({
      accepted: 3,
      duplicates: 1,
    });
    emu.events.forceNext(400, {
      code: 400,
      error: 'Invalid field values on some events',
      events_with_invalid_fields: { device_id: [1] },
    });
    expect(await forwardStream(ctx, stream.id)).toMatchObject({ forwarded: 2, deadLettered: 1 });
    expect(emu.events.list(KEY).map((e) => e.event_type)).toEqual(['Push Opened', 'Push Opened']);

    const list = await cli(url, ['dead-letters', 'list', '--stream', stream.id, '--json']);
    expect(list.code).toBe(0);
    const dead = JSON.parse(list.stdout);
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ event_id: 'cli-2', stream_id: stream.id });
    expect(dead[0].reason).toMatch(/device_id/);

    const replay = await cli(url, [
      'dead-letters',
      'replay',
      '--stream',
      stream.id,
      '--id',
      String(dead[0].id),
      '--json',
    ]);
    expect(JSON.parse(replay.stdout)).toMatchObject({ replayed: 1 });
    expect(await forwardStream(ctx, stream.id)).toMatchObject({ forwarded: 1, pending: 0 });

    const show = await cli(url, ['stream', 'show', stream.id, '--json']);
    expect(JSON.parse(show.stdout)).toMatchObject({
      id: stream.id,
      received: 3,
      duplicates: 1,
      forwarded: 3,
      dead_lettered: 0,
      pending: 0,
    });
    expect(show.stdout).not.toContain(stream.webhook_secret);
    expect(new Set(emu.events.list(KEY).map((e) => e.insert_id))).toEqual(
      new Set(['os-cli-1', 'os-cli-2', 'os-cli-3']),
    );
  }, 120_000);

  it('refuses a stream without an API key with exit code 2, naming the flag', async () => {
    const bad = await cli(db().url, ['stream', 'add', '--name', 'no-key', '--json']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--amplitude-api-key: is required/);
  }, 60_000);

  it('a refused key: resume stays paused until update gives the right key; delete asks or takes --yes', async () => {
    const { url, ctx } = db();
    const add = await cli(url, [
      'stream',
      'add',
      '--name',
      'rotated',
      '--amplitude-api-key',
      'old',
      '--amplitude-url',
      emu.url,
      '--json',
    ]);
    expect(add.code, add.stderr).toBe(0);
    const stream = JSON.parse(add.stdout);
    await postEvents(server.base, stream.id, stream.webhook_secret, [nestedEvent({ id: 'rot-1' })]);
    expect(await forwardStream(ctx, stream.id)).toMatchObject({ status: 'paused' });
    const [still, noReplayChoice] = await Promise.all([
      cli(url, ['stream', 'resume', stream.id]),
      cli(url, ['dead-letters', 'replay']),
    ]);
    expect(still.code).toBe(2);
    expect(still.stderr).toContain('still refuses');
    expect(noReplayChoice.code).toBe(2);
    expect(noReplayChoice.stderr).toContain('all');
    const update = await cli(url, ['stream', 'update', stream.id, '--amplitude-api-key', KEY, '--json']);
    expect(update.code, update.stderr).toBe(0);
    const resumed = await cli(url, ['stream', 'resume', stream.id, '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ status: 'active', pending: 1 });
    expect(await forwardStream(ctx, stream.id)).toMatchObject({ forwarded: 1 });
    const noYes = await cli(url, ['stream', 'delete', stream.id]);
    expect(noYes.code).toBe(2);
    const del = await cli(url, ['stream', 'delete', stream.id, '--yes', '--json']);
    expect(del.code, del.stderr).toBe(0);
    expect(JSON.parse(del.stdout)).toMatchObject({ id: stream.id, deleted: true });
  }, 120_000);
});
