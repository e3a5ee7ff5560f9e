import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { OneSignalEmulator } from '../../src/emulators/onesignal/index';
import { buildServer } from '../../src/server/app';
import { runSync } from '../../src/sync/run';
import { describeEachDialect } from '../helpers/db';
import { waitFor } from '../jobs/helpers';
import { cohortSync, range, setupApp } from '../sync/setup';

const TOKEN = 'test-admin-token-0123456789';

describeEachDialect('verify API', (db) => {
  let app: FastifyInstance;
  let base: string;
  let emu: OneSignalEmulator;

  async function call(method: string, path: string, body?: unknown) {
    const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as any };
  }

  beforeAll(async () => {
    app = await buildServer({ ctx: db().ctx, adminToken: TOKEN });
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await app?.close();
    await emu?.close();
  });

  it('starts a verification (202, running), which completes with the drift; --repair through the API marks it pending', async () => {
    const { ctx } = db();
    const setup = await setupApp(ctx, { users: range('u', 0, 3) });
    emu = setup.emu;
    const { sync } = await cohortSync(ctx, setup.dest.id, range('u', 0, 3));
    expect((await runSync(ctx, sync.id)).status).toBe('completed');
    emu.state.deleteTag('u2', sync.tag_key);

    const started = await call('POST', `/api/v1/syncs/${sync.id}/verify`, { sample: 3, repair: true });
    expect(started.status).toBe(202);
    expect(started.json).toMatchObject({ sync_id: sync.id, status: 'running', sample_size: 3, trigger: 'api' });
    const done = await waitFor(
      async () => {
        const v = await call('GET', `/api/v1/verifications/${started.json.id}`);
        return v.json.status === 'completed' ? v.json : undefined;
      },
      { what: 'the verification', timeoutMs: 30_000, intervalMs: 200 },
    );
    expect(done).toMatchObject({ checked: 3, matched: 2, drifted: 1, repaired: 1 });
    expect(done.drift).toEqual([{ external_id: 'u2', kind: 'tag_missing', expected: '1', actual: null }]);
    const list = await call('GET', `/api/v1/syncs/${sync.id}/verifications?limit=5`);
    expect(list.json.verifications.map((v: { id: string }) => v.id)).toEqual([started.json.id]);
    const row = await ctx.store.db
      .selectFrom('ledger')
      .select(['desired', 'confirmed', 'outcome'])
      .where('sync_id', '=', sync.id)
      .where('external_id', '=', 'u2')
      .executeTakeFirstOrThrow();
    expect({ desired: Number(row.desired), confirmed: Number(row.confirmed), outcome: row.outcome }).toEqual({
      desired: 1,
      confirmed: 0,
      outcome: null,
    });
  }, 60_000);

  it('a server that closes cancels its background verification, which is recorded failed', async () => {
    const { ctx } = db();
    const setup = await setupApp(ctx, { users: range('c', 0, 5) });
    const { sync } = await cohortSync(ctx, setup.dest.id, range('c', 0, 5));
    expect((await runSync(ctx, sync.id)).status).toBe('completed');
    const other = await buildServer({ ctx, adminToken: TOKEN });
    await other.listen({ port: 0, host: '127.0.0.1' });
    const res = await fetch(
      `http://127.0.0.1:${(other.server.address() as AddressInfo).port}/api/v1/syncs/${sync.id}/verify`,
      {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ sample: 5 }),
      },
    );
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    await other.close();
    const v = await call('GET', `/api/v1/verifications/${id}`);
    expect(v.json).toMatchObject({ status: 'failed', error: expect.stringContaining('the server is stopping') });
    expect(v.json.checked).toBe(0);
    await setup.emu.close();
  });

  it('refuses bad requests with a 400 naming the field, and unknown ids with a 404', async () => {
    for (const [body, msg] of [
      [{ sample: 0 }, /sample: must be at least 1/],
      [{ sample: 1.5 }, /sample: must be a whole number/],
      [{ repair: 'yes' }, /repair: must be true or false/],
      [{ sampel: 3 }, /sampel/],
    ] as const) {
      const r = await call('POST', '/api/v1/syncs/syn_x/verify', body);
      expect(r.status).toBe(400);
      expect(r.json.message).toMatch(msg);
    }
    expect((await call('POST', '/api/v1/syncs/syn_nope/verify', {})).status).toBe(404);
    expect((await call('GET', '/api/v1/syncs/syn_nope/verifications')).status).toBe(404);
    expect((await call('GET', '/api/v1/verifications/ver_nope')).status).toBe(404);
    expect((await call('GET', '/api/v1/syncs/syn_x/verifications?limit=0')).status).toBe(400);
    const doc = (await call('GET', '/api/v1/openapi.json')).json;
    const body = doc.paths['/syncs/{id}/verify'].post.requestBody.content['application/json'].schema;
    expect(body.properties.sample).toMatchObject({ type: 'integer', minimum: 1, maximum: 10000 });
    expect(
      doc.paths['/verifications/{id}'].get.responses['200'].content['application/json'].schema.properties.drift.items
        .properties.kind.enum,
    ).toEqual(['tag_missing', 'tag_changed', 'tag_present_after_leaving', 'user_gone']);
  });
});
