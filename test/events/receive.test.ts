import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mapOneSignalEvent } from '../../src/events/map';
import { DEFAULT_EVENT_NAMES, eventTypeFor } from '../../src/events/names';
import { createStream, streamCounters } from '../../src/events/streams';
import { describeEachDialect } from '../helpers/db';
import { nestedEvent, postEvents, startServer } from './helpers';

describe('event mapping', () => {
  it('names events as OneSignal’s Amplitude export does, with a generic name for unknown kinds', () => {
    expect(eventTypeFor('message.push.sent')).toBe('[Onesignal] Push Delivered');
    expect(eventTypeFor('message.push.clicked')).toBe('[Onesignal] Push Clicked');
    expect(eventTypeFor('message.email.opened')).toBe('[Onesignal] Email Opened');
    expect(eventTypeFor('message.email.bounced')).toBe('[Onesignal] Email Hard bounced');
    expect(eventTypeFor('message.sms.undelivered')).toBe('[Onesignal] SMS Failed delivery');
    expect(eventTypeFor('message.iam.page_displayed')).toBe('[Onesignal] IAM Page Displayed');
    expect(eventTypeFor('message.carrier_pigeon.sent')).toBe('[Onesignal] message.carrier_pigeon.sent');
    expect(eventTypeFor('message.push.clicked', { 'message.push.clicked': 'Push Opened' })).toBe('Push Opened');
    expect(DEFAULT_EVENT_NAMES.size).toBeGreaterThanOrEqual(21);
  });

  it('maps ids, time in ms, a deterministic insert_id, message properties and cohort tags', () => {
    const m = mapOneSignalEvent(
      nestedEvent({
        id: 'evt-1',
        externalId: 'u1',
        subscriptionId: 'sub-1',
        tags: { amp_cohort_c42: '1', amp_cohort_c43: '', plan: 'pro' },
      }),
      {
        receivedAt: Date.now(),
        cohortIdsFromTags: (t) =>
          Object.keys(t)
            .filter((k) => k.startsWith('amp_cohort_') && t[k] === '1')
            .map((k) => k.slice(11)),
      },
    );
    expect(m.ok).toBe(true);
    if (!m.ok) return;
    expect(m.amplitude).toMatchObject({
      event_type: '[Onesignal] Push Clicked',
      user_id: 'u1',
      device_id: 'sub-1',
      time: 1708559115000,
      insert_id: 'os-evt-1',
      event_properties: {
        source: 'onesignal',
        message_id: 'msg-1',
        message_name: 'Spring sale',
        message_title: 'Spring sale!',
        template_id: 'tpl-1',
        channel: 'push',
        device_type: 'iOS',
        language: 'en',
        amplitude_cohort_ids: ['c42'],
      },
    });
  });
});

describeEachDialect('OneSignal event receiver', (db) => {
  let base: string;
  let close: () => Promise<void>;
  let stream: { id: string; secret: string };

  beforeAll(async () => {
    const { ctx } = db();
    const s = await startServer(ctx, { bodyLimit: 64 * 1024 });
    base = s.base;
    close = () => s.app.close();
    const { row, webhookSecret } = await createStream(ctx, {
      name: 'recv',
      amplitudeApiKey: 'k',
      amplitudeUrl: 'http://127.0.0.1:9',
    });
    stream = { id: row.id, secret: webhookSecret };
  });
  afterAll(async () => close?.());

  it('accepts the nested shape and the flat dotted shape, and stores them once', async () => {
    const nested = await postEvents(base, stream.id, stream.secret, nestedEvent({ id: 'n-1' }));
    expect(nested).toEqual({ status: 200, json: { accepted: 1, duplicates: 0, dead_lettered: 0, rejected: [] } });
    const flat = await postEvents(base, stream.id, stream.secret, {
      'event.kind': 'message.email.opened',
      'event.id': 'f-1',
      'event.timestamp': 1708559115,
      'event.subscription_device_type': 'Email',
      'event.subscription_id': 'sub-email-1',
      'event.external_id': 'user_12345',
      'event.data.page_name': '',
      'message.title': 'Your receipt',
    });
    expect(flat.status).toBe(200);
    expect(flat.json.accepted).toBe(1);
    const rows = await db()
      .ctx.store.db.selectFrom('stream_events')
      .select(['event_id', 'kind', 'payload', 'status'])
      .where('event_id', 'in', ['n-1', 'f-1'])
      .orderBy('event_id')
      .execute();
    expect(rows.map((r) => [r.event_id, r.kind, r.status])).toEqual([
      ['f-1', 'message.email.opened', 'pending'],
      ['n-1', 'message.push.clicked', 'pending'],
    ]);
    const flatPayload = JSON.parse(rows[0]!.payload);
    expect(flatPayload).toMatchObject({
      event_type: '[Onesignal] Email Opened',
      user_id: 'user_12345',
      device_id: 'sub-email-1',
      insert_id: 'os-f-1',
    });
    expect(flatPayload.event_properties.message_title).toBe('Your receipt');
  });

  it('counts duplicates, across requests and inside one array', async () => {
    const e = nestedEvent({ id: 'dup-1' });
    expect((await postEvents(base, stream.id, stream.secret, e)).json.accepted).toBe(1);
    const again = await postEvents(base, stream.id, stream.secret, [
      e,
      nestedEvent({ id: 'dup-2' }),
      nestedEvent({ id: 'dup-2' }),
    ]);
    expect(again.json).toMatchObject({ accepted: 1, duplicates: 2 });
    const c = await streamCounters(db().ctx, stream.id);
    expect(c.duplicates).toBe(2);
  });

  it('rejects a wrong or missing secret with 401 and stores nothing', async () => {
    const before = (await streamCounters(db().ctx, stream.id)).received;
    expect((await postEvents(base, stream.id, 'wrong', nestedEvent())).status).toBe(401);
    expect((await postEvents(base, stream.id, undefined, nestedEvent())).status).toBe(401);
    expect((await postEvents(base, 'str_nope', stream.secret, nestedEvent())).status).toBe(404);
    expect((await streamCounters(db().ctx, stream.id)).received).toBe(before);
  });

  it('answers 400 naming the problem for non-JSON and for events without kind or id', async () => {
    const before = (await streamCounters(db().ctx, stream.id)).received;
    const notJson = await postEvents(base, stream.id, stream.secret, '{"event": ');
    expect(notJson.status).toBe(400);
    expect(notJson.json.message).toMatch(/not JSON/);
    const noKind = await postEvents(base, stream.id, stream.secret, { event: { id: 'x-1' } });
    expect(noKind.status).toBe(400);
    expect(noKind.json.message).toMatch(/event\.kind is missing/);
    const noId = await postEvents(base, stream.id, stream.secret, { 'event.kind': 'message.push.sent' });
    expect(noId.status).toBe(400);
    expect(noId.json.message).toMatch(/event\.id is missing/);
    const allBad = await postEvents(base, stream.id, stream.secret, [{ event: {} }, 'x']);
    expect(allBad.status).toBe(400);
    expect(allBad.json.rejected.map((r: { index: number }) => r.index)).toEqual([0, 1]);
    expect((await streamCounters(db().ctx, stream.id)).received).toBe(before);
  });

  it('in a mixed array stores the valid events and lists the rejected ones by index', async () => {
    const r = await postEvents(base, stream.id, stream.secret, [
      nestedEvent({ id: 'mix-1' }),
      { event: { kind: 'message.push.sent' } },
      nestedEvent({ id: 'mix-2' }),
    ]);
    expect(r.status).toBe(200);
    expect(r.json.accepted).toBe(2);
    expect(r.json.rejected).toEqual([{ index: 1, problem: 'event.id is missing' }]);
  });

  it('answers 413 for a body over the limit', async () => {
    const big = Array.from({ length: 200 }, (_, i) => nestedEvent({ id: `big-${i}` }));
    const r = await postEvents(base, stream.id, stream.secret, big);
    expect(r.status).toBe(413);
    expect(r.json.error).toBe('payload_too_large');
  });

  it('keeps an unknown kind under a generic name, and dead-letters an event with no ids', async () => {
    const unknown = await postEvents(
      base,
      stream.id,
      stream.secret,
      nestedEvent({ id: 'unk-1', kind: 'message.hologram.beamed' }),
    );
    expect(unknown.json.accepted).toBe(1);
    const noIds = await postEvents(base, stream.id, stream.secret, {
      event: { kind: 'message.push.sent', id: 'noid-1', external_id: '', subscription_id: '' },
    });
    expect(noIds.json).toMatchObject({ accepted: 1, dead_lettered: 1 });
    const rows = await db()
      .ctx.store.db.selectFrom('stream_events')
      .select(['event_id', 'status', 'reason', 'payload'])
      .where('event_id', 'in', ['unk-1', 'noid-1'])
      .orderBy('event_id')
      .execute();
    expect(rows[0]).toMatchObject({ event_id: 'noid-1', status: 'dead' });
    expect(rows[0]!.reason).toMatch(/no external_id or subscription_id/);
    expect(rows[1]).toMatchObject({ event_id: 'unk-1', status: 'pending' });
    expect(JSON.parse(rows[1]!.payload).event_type).toBe('[Onesignal] message.hologram.beamed');
  });
});
