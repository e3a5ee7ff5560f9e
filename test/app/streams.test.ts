import { afterAll, beforeAll, expect, it } from 'vitest';
import { listDeadLetters, replay } from '../../src/app/dead-letters';
import {
  addStream,
  deleteStream,
  listStreams,
  pauseStream,
  resumeStream,
  showStream,
  updateStream,
} from '../../src/app/streams';
import { type AmplitudeEmulator, startAmplitudeEmulator } from '../../src/emulators/amplitude';
import { forwardStream } from '../../src/events/forward';
import { nestedEvent, postEvents, startServer } from '../events/helpers';
import { describeEachDialect } from '../helpers/db';
import { caught } from '../helpers/errors';

const KEY = 'app-streams-key';

describeEachDialect('app: streams and dead letters', (db) => {
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

  it('a stream paused for a refused key is fixed by update; resume checks the key first and stays paused while it is wrong', async () => {
    const { ctx } = db();
    const s = await addStream(ctx, { name: 'prod', amplitude_api_key: 'wrong-key', amplitude_url: emu.url });
    expect(s).toMatchObject({ name: 'prod', status: 'active', webhook_path: `/hooks/onesignal/events/${s.id}` });
    expect(s.webhook_secret.length).toBeGreaterThan(20);
    expect(JSON.stringify(await showStream(ctx, s.id))).not.toContain(s.webhook_secret);
    const dup = await caught(addStream(ctx, { name: 'prod', amplitude_api_key: 'k' }));
    expect(dup.code).toBe('conflict');
    expect(dup.message).toContain(`(${s.id})`);

    expect((await postEvents(server.base, s.id, s.webhook_secret, [nestedEvent({ id: 'st-1' })])).status).toBe(200);
    expect(await forwardStream(ctx, s.id)).toMatchObject({ forwarded: 0, status: 'paused' });
    expect((await showStream(ctx, s.id)).status_reason).toMatch(/Invalid API key/);

    const still = await caught(resumeStream(ctx, s.id));
    expect(still.code).toBe('conflict');
    expect(still.message).toContain('still refuses');
    expect(await showStream(ctx, s.id)).toMatchObject({ status: 'paused', pending: 1 });

    const updated = await updateStream(ctx, s.id, {
      amplitude_api_key: KEY,
      event_names: { 'message.push.sent': 'Sent' },
    });
    expect(updated).toMatchObject({ status: 'paused', event_names: { 'message.push.sent': 'Sent' } });
    expect(await resumeStream(ctx, s.id)).toMatchObject({ status: 'active', status_reason: null });
    expect(await forwardStream(ctx, s.id)).toMatchObject({ forwarded: 1, pending: 0 });

    expect(await pauseStream(ctx, s.id, 'maintenance')).toMatchObject({
      status: 'paused',
      status_reason: 'maintenance',
    });
    const badField = await caught(updateStream(ctx, s.id, { webhook_secret: 'x' }));
    expect(badField.message).toContain('cannot be changed: webhook_secret');
  });

  it('dead letters: replay one by id, or all of a stream; neither is refused naming what to give', async () => {
    const { ctx } = db();
    const [s] = await listStreams(ctx);
    await resumeStream(ctx, s!.id);
    const secret = (await ctx.store.db.selectFrom('streams').select('webhook_secret_enc').executeTakeFirstOrThrow())
      .webhook_secret_enc;
    const body = ['dl-1', 'dl-2', 'dl-3'].map((id) => nestedEvent({ id }));
    expect((await postEvents(server.base, s!.id, ctx.secrets.decrypt(secret), body)).status).toBe(200);
    emu.events.forceNext(400, {
      code: 400,
      error: 'Invalid field values on some events',
      events_with_invalid_fields: { device_id: [0, 1, 2] },
    });
    expect(await forwardStream(ctx, s!.id)).toMatchObject({ deadLettered: 3 });
    const dead = await listDeadLetters(ctx, { stream: s!.id });
    expect(dead.map((d) => d.event_id)).toEqual(['dl-3', 'dl-2', 'dl-1']);

    const neither = await caught(replay(ctx, { stream: s!.id }));
    expect(neither.code).toBe('invalid_input');
    expect(neither.message).toContain('all: true');
    expect(await replay(ctx, { ids: [String(dead[2]!.id)] })).toMatchObject({ replayed: 1, streams: [s!.id] });
    expect(await replay(ctx, { stream: s!.id, all: true })).toMatchObject({ replayed: 2 });
    expect(await forwardStream(ctx, s!.id)).toMatchObject({ forwarded: 3, pending: 0 });
    expect(await listDeadLetters(ctx, { stream: s!.id })).toEqual([]);

    const gone = await deleteStream(ctx, s!.id);
    expect(gone).toMatchObject({ deleted: true, dropped_pending: 0 });
    expect((await caught(showStream(ctx, s!.id))).code).toBe('not_found');
    expect((await postEvents(server.base, s!.id, 'x', body)).status).toBe(404);
  });
});
