import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { catalog } from '../../src/connectors/catalog';
import { OneSignalClient } from '../../src/connectors/onesignal/client';
import { performBatch, plan, type TagChange, tagValue } from '../../src/connectors/onesignal/sync-tags';
import { type OneSignalEmulator, startOneSignalEmulator } from '../../src/emulators/onesignal';

const change = (index: number, tagKey: string, member: boolean, extra: Partial<TagChange> = {}): TagChange => ({
  index,
  tagKey,
  member,
  valueKind: 'presence',
  enteredAtMs: null,
  ...extra,
});
const keys = (requests: TagChange[][]) => requests.map((r) => r.map((c) => c.tagKey));

describe('syncTags: build requests', () => {
  it('carries at most 100 tag changes a request (OneSignal: "limit your tag updates to 100 per request")', () => {
    const changes = Array.from({ length: 250 }, (_, i) => change(i, `t${i}`, true));
    const requests = plan({ maxTagsPerUser: 100 }, { externalId: 'u', confirmedTags: 0, changes });
    expect(requests.map((r) => r.length)).toEqual([100, 100, 50]);
  });

  it('sends deletes first, in an earlier request, only when the adds would pass the tag budget', () => {
    const changes = [change(0, 'add1', true), change(1, 'gone', false), change(2, 'add2', true)];
    const within = plan({ maxTagsPerUser: 10 }, { externalId: 'u', confirmedTags: 8, changes });
    expect(keys(within)).toEqual([['add1', 'gone', 'add2']]);
    const over = plan({ maxTagsPerUser: 10 }, { externalId: 'u', confirmedTags: 9, changes });
    expect(keys(over)).toEqual([['gone'], ['add1', 'add2']]);
  });

  it('writes a member as "1" (or its entry time in Unix seconds) and a leaver as "" (delete)', () => {
    expect(tagValue(change(0, 'k', true))).toBe('1');
    expect(tagValue(change(0, 'k', false))).toBe('');
    expect(tagValue(change(0, 'k', true, { valueKind: 'entered_at', enteredAtMs: 1_700_000_000_999 }))).toBe(
      '1700000000',
    );
    expect(tagValue(change(0, 'k', false, { valueKind: 'entered_at', enteredAtMs: 1_700_000_000_999 }))).toBe('');
  });

  it('renders tag keys from the template and refuses the ones OneSignal restricts', () => {
    const { tagKey } = catalog.onesignal.actions.syncTags;
    expect(tagKey('amp_cohort_{cohort_id}', { id: 'abc 1' })).toBe('amp_cohort_abc_1');
    expect(tagKey('c_{cohort_name_slug}', { id: 'x', name: 'Power Users!' })).toBe('c_power_users');
    expect(() => tagKey('{cohort_id}', { id: 'Journey' })).toThrow(/restricted OneSignal tag key/);
  });
});

describe('syncTags: send (each change settled from OneSignal answer, over loopback)', () => {
  let emu: OneSignalEmulator;
  const app = { appId: randomUUID(), apiKey: `key-${randomUUID()}` };
  const client = (apiKey = app.apiKey) =>
    new OneSignalClient({ appId: app.appId, apiKey, apiUrl: emu.url, rateLimitPerSecond: 10_000 });
  beforeAll(async () => {
    emu = await startOneSignalEmulator({
      apps: [app],
      users: { mode: 'seeded', ids: ['full', 'known'] },
      rateLimitPerSecond: 0,
      perUserPerSecond: 0,
      maxTagsPerUser: 2,
    });
  });
  afterAll(async () => emu?.close());
  beforeEach(() => emu.reset());
  const byIndex = (r: Awaited<ReturnType<typeof performBatch>>) =>
    new Map(r.settled.map((s) => [s.index, s.settlement]));

  it('a user at the tag budget gets the swap: the delete goes first and both changes are delivered', async () => {
    emu.state.setTags('full', { a: '1', b: '1' }, app.appId);
    const changes = [change(0, 'c', true), change(1, 'a', false)];
    const requests = plan({ maxTagsPerUser: 2 }, { externalId: 'full', confirmedTags: 2, changes });
    const r = await performBatch(client(), 'full', requests);
    expect(byIndex(r)).toEqual(
      new Map([
        [0, { status: 'delivered' }],
        [1, { status: 'delivered' }],
      ]),
    );
    expect(emu.state.getUser('full', app.appId)).toEqual({ b: '1', c: '1' });
  });

  it('an unknown user: every change is not_found, and the later request shares it unsent', async () => {
    const changes = [change(0, 'c', true), change(1, 'a', false)];
    const requests = plan({ maxTagsPerUser: 1 }, { externalId: 'nobody', confirmedTags: 1, changes });
    expect(requests).toHaveLength(2);
    const before = emu.state.stats();
    const r = await performBatch(client(), 'nobody', requests);
    expect([...byIndex(r).values()].map((s) => s.status)).toEqual(['not_found', 'not_found']);
    expect(emu.state.stats().requests - before.requests).toBe(1);
  });

  it('a 5xx is a retry with the reason; a refused key stops with the vendor message and settles nothing', async () => {
    emu.setFaults({ errorRate: 1 });
    const requests = plan(
      { maxTagsPerUser: 10 },
      { externalId: 'known', confirmedTags: 0, changes: [change(0, 'a', true)] },
    );
    const r = await performBatch(client(), 'known', requests);
    expect(byIndex(r).get(0)).toMatchObject({
      status: 'retry',
      reason: expect.stringMatching(/OneSignal answered 5\d\d/),
    });
    emu.setFaults({ errorRate: 0 });
    const refused = await performBatch(client('wrong-key'), 'known', requests);
    expect(refused.settled).toEqual([]);
    expect(refused.fatal?.kind).toBe('destination_fatal');
    expect(emu.state.getUser('known', app.appId)).toEqual({});
  });
});
