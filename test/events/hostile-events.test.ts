import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type AmplitudeEmulator, startAmplitudeEmulator } from '../../src/emulators/amplitude';
import { forwardStream } from '../../src/events/forward';
import { eventTypeFor } from '../../src/events/names';
import { createStream } from '../../src/events/streams';
import { describeEachDialect } from '../helpers/db';
import { nestedEvent, postEvents, startServer } from './helpers';

const KEY = 'amp-hostile-key';

/** The answer of a webhook must never carry what the database or the runtime said. */
function leaksInternals(json: unknown): boolean {
  return /insert into|stream_events|relation|invalid byte sequence|0x00|syntax|TypeError|Cannot convert|at .*\.ts/i.test(
    JSON.stringify(json),
  );
}

describe('event kinds OneSignal spells two ways', () => {
  it('each spelling gets the same native Amplitude event name', () => {
    const pairs = [
      ['message.iam.impression', 'message.iam.displayed', '[Onesignal] IAM Displayed'],
      ['message.iam.page_displayed', 'message.iam.pagedisplayed', '[Onesignal] IAM Page Displayed'],
      ['message.email.bounced', 'message.email.hardbounced', '[Onesignal] Email Hard bounced'],
      [
        'message.email.suppressed',
        'message.email.supressed',
        '[Onesignal] Email Not delivering to suppressed email address',
      ],
    ] as const;
    for (const [table, other, name] of pairs) {
      expect(eventTypeFor(table), table).toBe(name);
      expect(eventTypeFor(other), other).toBe(name);
      // A stream's override of the table's spelling covers the other spelling too.
      expect(eventTypeFor(other, { [table]: 'Custom' }), other).toBe('Custom');
    }
    const ownProto = JSON.parse('{"__proto__": "Proto override"}') as Record<string, string>;
    expect(eventTypeFor('__proto__', ownProto)).toBe('Proto override');
    expect(eventTypeFor('constructor', ownProto)).toBe('[Onesignal] constructor');
  });
});

describeEachDialect('OneSignal events: hostile input', (db) => {
  let emu: AmplitudeEmulator;
  let base: string;
  let close: () => Promise<void>;
  let stream: { id: string; secret: string };

  beforeAll(async () => {
    const { ctx } = db();
    emu = await startAmplitudeEmulator({ projects: [{ apiKey: KEY, secretKey: 'sk' }] });
    const s = await startServer(ctx);
    base = s.base;
    close = () => s.app.close();
    const created = await createStream(ctx, {
      name: 'hostile',
      amplitudeApiKey: KEY,
      amplitudeUrl: emu.url,
      // Overrides are looked up as the stream's own entries: one named after a built-in applies
      // to that kind, and a kind without an entry never finds Object.prototype's members.
      eventNames: { toString: 'String override' },
    });
    stream = { id: created.row.id, secret: created.webhookSecret };
  });
  afterAll(async () => {
    await close?.();
    await emu?.close();
  });
  beforeEach(() => emu.reset());

  const storedIds = async () =>
    (
      await db()
        .ctx.store.db.selectFrom('stream_events')
        .select('event_id')
        .where('stream_id', '=', stream.id)
        .execute()
    ).map((r) => r.event_id);

  it('kinds named after JavaScript built-ins are forwarded under their own names, each with an event_type', async () => {
    const { ctx } = db();
    const kinds = ['constructor', 'toString', '__proto__', 'valueOf', 'hasOwnProperty', 'message.__proto__.sent'];
    const r = await postEvents(
      base,
      stream.id,
      stream.secret,
      kinds.map((kind, i) => nestedEvent({ id: `builtin-${i}`, kind, externalId: `builtin-user-${i}` })),
    );
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ accepted: kinds.length, dead_lettered: 0, rejected: [] });
    const f = await forwardStream(ctx, stream.id);
    expect(f).toMatchObject({ forwarded: kinds.length, deadLettered: 0 });
    const byInsertId = new Map(emu.events.list(KEY).map((e) => [String(e.insert_id), e]));
    const typeOf = (i: number) => byInsertId.get(`os-builtin-${i}`)?.event_type;
    expect(kinds.map((_, i) => typeOf(i))).toEqual([
      '[Onesignal] constructor',
      'String override',
      '[Onesignal] __proto__',
      '[Onesignal] valueOf',
      '[Onesignal] hasOwnProperty',
      '[Onesignal] message.__proto__.sent',
    ]);
    const last = byInsertId.get(`os-builtin-${kinds.length - 1}`)!;
    expect((last.event_properties as Record<string, unknown>).message_type).toBe('__proto__');
  });

  it('both spellings of a kind arrive in Amplitude as the same event', async () => {
    const { ctx } = db();
    const r = await postEvents(base, stream.id, stream.secret, [
      nestedEvent({ id: 'spell-1', kind: 'message.email.bounced' }),
      nestedEvent({ id: 'spell-2', kind: 'message.email.hardbounced' }),
      nestedEvent({ id: 'spell-3', kind: 'message.iam.displayed' }),
      nestedEvent({ id: 'spell-4', kind: 'message.iam.pagedisplayed' }),
      nestedEvent({ id: 'spell-5', kind: 'message.email.supressed' }),
    ]);
    expect(r.json.accepted).toBe(5);
    await forwardStream(ctx, stream.id);
    const types = emu.events
      .list(KEY)
      .filter((e) => String(e.insert_id).startsWith('os-spell-'))
      .sort((a, b) => String(a.insert_id).localeCompare(String(b.insert_id)))
      .map((e) => e.event_type);
    expect(types).toEqual([
      '[Onesignal] Email Hard bounced',
      '[Onesignal] Email Hard bounced',
      '[Onesignal] IAM Displayed',
      '[Onesignal] IAM Page Displayed',
      '[Onesignal] Email Not delivering to suppressed email address',
    ]);
  });

  it('one bad event in a batch is refused with its reason and its valid siblings are stored; never a 5xx', async () => {
    const batch = [
      nestedEvent({ id: 'sib-1' }),
      { ...nestedEvent({ id: 'bad-tag' }), user: { tags: { amp_cohort_c42: { toString: 1 } } } },
      nestedEvent({ id: 'sib-2' }),
      nestedEvent({ id: 'bad\u0000id' }),
      nestedEvent({ id: 'sib-3', tags: { amp_cohort_c42: '1' } }),
    ];
    const r = await postEvents(base, stream.id, stream.secret, batch);
    expect(r.status).toBe(200);
    expect(r.json.accepted).toBe(3);
    expect(r.json.rejected.map((x: { index: number }) => x.index)).toEqual([1, 3]);
    expect(r.json.rejected[0].problem).toMatch(/user\.tags\.amp_cohort_c42 must be text/);
    expect(r.json.rejected[1].problem).toMatch(/event\.id must not contain the NUL character/);
    expect(leaksInternals(r.json)).toBe(false);
    const stored = await storedIds();
    expect(stored).toEqual(expect.arrayContaining(['sib-1', 'sib-2', 'sib-3']));
    expect(stored).not.toContain('bad-tag');

    // A NUL in the stream id of the URL: a malformed id, not a database error.
    const badPath = await postEvents(base, `${stream.id}%00x`, stream.secret, nestedEvent());
    expect(badPath.status).toBe(400);
    expect(badPath.json.message).toMatch(/stream id in the URL is malformed/);

    // Alone, each is a 400 naming the problem, on both databases.
    for (const bad of [batch[1], batch[3]]) {
      const one = await postEvents(base, stream.id, stream.secret, bad);
      expect(one.status).toBe(400);
      expect(one.json.error).toBe('invalid_input');
      expect(leaksInternals(one.json)).toBe(false);
    }
  });

  it('refuses nonsense timestamps per event, naming the rule, and keeps the valid ones', async () => {
    const { ctx } = db();
    const nonsense: Array<number | string> = [99999999999, 1e15, 253402300800, '0x10', 1.5, 1e20, '1e3', -5];
    const withTime = (id: string, timestamp: number | string) => {
      const e = nestedEvent({ id });
      return { ...e, event: { ...e.event, timestamp } };
    };
    const now = Math.floor(Date.now() / 1000);
    const batch = [
      withTime('ts-ok-seconds', now - 60),
      ...nonsense.map((t, i) => withTime(`ts-bad-${i}`, t)),
      withTime('ts-ok-string', String(now - 30)),
      withTime('ts-ok-ms', (now - 10) * 1000),
      {
        ...nestedEvent({ id: 'ts-bad-datetime' }),
        event: {
          ...nestedEvent().event,
          id: 'ts-bad-datetime',
          timestamp: undefined,
          datetime: '9999-12-31T00:00:00Z',
        },
      },
    ];
    const r = await postEvents(base, stream.id, stream.secret, batch);
    expect(r.status).toBe(200);
    expect(r.json.accepted).toBe(3);
    const rejected = r.json.rejected as Array<{ index: number; problem: string }>;
    expect(rejected.map((x) => x.index)).toEqual([...nonsense.map((_, i) => i + 1), batch.length - 1]);
    for (const x of rejected)
      expect(x.problem).toMatch(/event\.(timestamp|datetime) .* is not a time between 2000-01-01 and now/);
    await forwardStream(ctx, stream.id);
    const times = new Map(emu.events.list(KEY).map((e) => [String(e.insert_id), e.time]));
    expect(times.get('os-ts-ok-seconds')).toBe((now - 60) * 1000);
    expect(times.get('os-ts-ok-string')).toBe((now - 30) * 1000);
    expect(times.get('os-ts-ok-ms')).toBe((now - 10) * 1000);
    expect((await storedIds()).filter((id) => id.startsWith('ts-bad'))).toEqual([]);
  });
});
