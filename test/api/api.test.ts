import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type OneSignalEmulator, startOneSignalEmulator } from '../../src/emulators/onesignal';
import { createJobQueue } from '../../src/jobs';
import { buildServer } from '../../src/server/app';
import type { Context } from '../../src/store';
import { appendRecords } from '../../src/sync/records';
import { describeEachDialect } from '../helpers/db';
import { seedCohort, seedDestination, seedStream, seedStreamEvents, seedSync } from '../helpers/seed';

const TOKEN = 'test-admin-token-0123456789';
const OS_KEY = 'os-app-key-PLAINTEXT-never-returned';
const AMP_KEY = 'amp-key-PLAINTEXT-never-returned';
const HOOK_SECRET = 'hook-secret-PLAINTEXT-never-returned';

async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

/** Rows the owners' commands would normally create, inserted directly so each read has data. */
async function seed(ctx: Context, osUrl: string, appId: string) {
  const db = ctx.store.db;
  const now = Date.now();
  await seedDestination(ctx, {
    id: 'dst_seed',
    name: 'Seeded app',
    app_id: appId,
    api_key: OS_KEY,
    api_url: osUrl,
    created_at: now,
  });
  for (const [id, name] of [
    ['coh_seed', 'Seeded cohort'],
    ['coh_file', 'Power users'],
  ] as const) {
    await seedCohort(ctx, { id, name, size: 5, last_computed: now, created_at: now });
  }
  await db
    .insertInto('cohort_members')
    .values(['u1', 'u2', 'u3', 'u4', 'u5'].map((external_id) => ({ cohort_id: 'coh_file', external_id })))
    .execute();
  await seedSync(ctx, {
    id: 'syn_seed',
    cohort_id: 'coh_seed',
    destination_id: 'dst_seed',
    cadence: 'daily',
    tag_key: 'amp_cohort_coh_seed',
    last_run_id: 'run_new',
    created_at: now,
  });
  const run = {
    sync_id: 'syn_seed',
    trigger: 'manual',
    dry_run: 0,
    members: 4,
    added: 4,
    removed: 0,
    unchanged: 0,
    skipped_anonymous: 1,
    delivered: 1,
    not_found: 1,
    failed: 1,
    pending: 1,
    requests: 4,
    error: null,
    hold_reason: null,
    sample: null,
    finished_at: now,
  };
  await db
    .insertInto('runs')
    .values({ ...run, id: 'run_old', status: 'completed', started_at: now - 60_000 })
    .execute();
  await db
    .insertInto('runs')
    .values({ ...run, id: 'run_new', status: 'completed', started_at: now - 1000 })
    .execute();
  await db
    .insertInto('runs')
    .values({
      ...run,
      id: 'run_held',
      status: 'held',
      hold_reason: 'would remove 80% of confirmed members',
      started_at: now - 2000,
    })
    .execute();
  const ledger = (
    external_id: string,
    outcome: string | null,
    desired: number,
    confirmed: number,
    error: string | null,
  ) => ({
    sync_id: 'syn_seed',
    destination_id: 'dst_seed',
    external_id,
    desired,
    confirmed,
    source_ts: now,
    run_id: 'run_new',
    outcome,
    error,
    attempts: 1,
    updated_at: now,
  });
  await db
    .insertInto('ledger')
    .values([
      ledger('a-delivered', 'delivered', 1, 1, null),
      ledger('b-notfound', 'not_found', 1, 0, null),
      ledger('c-failed', 'failed', 1, 0, 'tag key rejected by OneSignal'),
      ledger('d-pending', null, 1, 0, null),
    ])
    .execute();
  // The run's history: what the delivery appended as the outcomes settled.
  const record = (externalId: string, outcome: 'delivered' | 'not_found' | 'failed', message: string | null) => ({
    runId: 'run_new',
    externalId,
    operation: 'add' as const,
    outcome,
    status: outcome === 'delivered' ? 200 : outcome === 'not_found' ? 404 : 400,
    attempts: 1,
    message,
    atMs: now,
  });
  await db
    .transaction()
    .execute((trx) =>
      appendRecords(trx, ctx.store, [
        record('a-delivered', 'delivered', null),
        record('b-notfound', 'not_found', 'user not found in OneSignal'),
        record('c-failed', 'failed', 'tag key rejected by OneSignal'),
      ]),
    );
  await seedStream(ctx, {
    id: 'str_seed',
    name: 'Push events',
    amplitude_api_key: AMP_KEY,
    webhook_secret: HOOK_SECRET,
    duplicates: 2,
    created_at: now,
  });
  const events = [
    { event_id: 'e1', status: 'forwarded' },
    { event_id: 'e2', status: 'forwarded' },
    { event_id: 'e3', status: 'pending' },
    { event_id: 'e4', status: 'dead', reason: 'Invalid field values on some events: user_id too short' },
  ];
  await seedStreamEvents(
    ctx,
    'str_seed',
    events.map((e) => ({
      ...e,
      payload: JSON.stringify({ event_type: '[Onesignal] Push Clicked', user_id: 'u1', insert_id: e.event_id }),
    })),
    now,
  );
}

describeEachDialect('admin API', (db) => {
  let app: FastifyInstance;
  let base: string;
  let emu: OneSignalEmulator;
  const appId = crypto.randomUUID();
  const viaApiApp = crypto.randomUUID();
  const wrongKeyApp = crypto.randomUUID();
  const bodies: string[] = [];

  async function call(method: string, path: string, opts: { body?: unknown; token?: string | null } = {}) {
    const headers: Record<string, string> = {};
    if (opts.token !== null) headers.authorization = `Bearer ${opts.token ?? TOKEN}`;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(base + path, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
    const text = await res.text();
    bodies.push(text);
    return { status: res.status, json: JSON.parse(text) as any, headers: res.headers };
  }

  beforeAll(async () => {
    const { ctx } = db();
    emu = await startOneSignalEmulator({
      apps: [
        { appId, apiKey: OS_KEY },
        { appId: viaApiApp, apiKey: OS_KEY },
        { appId: wrongKeyApp, apiKey: OS_KEY },
      ],
      users: { mode: 'seeded', ids: ['u1', 'u2', 'u3'] },
    });
    await seed(ctx, emu.url, appId);
    app = await buildServer({ ctx, adminToken: TOKEN });
    base = await listen(app);
  });
  afterAll(async () => {
    await app?.close();
    await emu?.close();
  });

  it('refuses requests without the right bearer token (401 JSON)', async () => {
    const none = await call('GET', '/api/v1/destinations', { token: null });
    expect(none.status).toBe(401);
    expect(none.json.error).toBe('unauthorized');
    expect(none.json.message).toMatch(/Bearer/);
    const wrong = await call('GET', '/api/v1/destinations', { token: 'nope' });
    expect(wrong.status).toBe(401);
    const post = await call('POST', '/api/v1/destinations', { token: 'nope', body: { name: 'x' } });
    expect(post.status).toBe(401);
  });

  it('serves the OpenAPI 3.1 document describing every route', async () => {
    const r = await call('GET', '/api/v1/openapi.json', { token: null });
    expect(r.status).toBe(200);
    expect(r.json.openapi).toBe('3.1.0');
    for (const p of [
      '/destinations',
      '/destinations/{id}/test',
      '/syncs/{id}/runs',
      '/runs/{id}/records',
      '/runs/{id}/approve',
      '/dead-letters',
    ]) {
      expect(r.json.paths[p], p).toBeDefined();
    }
    expect(
      r.json.paths['/destinations'].post.requestBody.content['application/json'].schema.properties.app_id,
    ).toBeDefined();
  });

  it('lists and shows destinations with pending rows, never the key', async () => {
    const list = await call('GET', '/api/v1/destinations');
    expect(list.status).toBe(200);
    const d = list.json.destinations.find((x: any) => x.id === 'dst_seed');
    expect(d).toMatchObject({ name: 'Seeded app', app_id: appId, status: 'active', pending_rows: 3 });
    expect(d).not.toHaveProperty('api_key_enc');
    const one = await call('GET', '/api/v1/destinations/dst_seed');
    expect(one.json).toMatchObject({ id: 'dst_seed', pending_rows: 3 });
    const missing = await call('GET', '/api/v1/destinations/dst_missing');
    expect(missing.status).toBe(404);
    expect(missing.json).toMatchObject({ error: 'not_found' });
  });

  it('lists cohorts and syncs with the last run', async () => {
    const cohorts = await call('GET', '/api/v1/cohorts');
    expect(cohorts.json.cohorts.map((c: any) => c.id)).toEqual(expect.arrayContaining(['coh_seed', 'coh_file']));
    expect(cohorts.json.cohorts.find((c: any) => c.id === 'coh_seed').sync_ids).toEqual(['syn_seed']);
    const syncs = await call('GET', '/api/v1/syncs');
    const s = syncs.json.syncs.find((x: any) => x.id === 'syn_seed');
    expect(s).toMatchObject({ cohort_name: 'Seeded cohort', destination_name: 'Seeded app', cadence: 'daily' });
    expect(s.last_run).toMatchObject({ id: 'run_new', status: 'completed' });
  });

  it('pages the run history newest first and shows one run with counters', async () => {
    const runs = await call('GET', '/api/v1/syncs/syn_seed/runs');
    expect(runs.json.runs.map((r: any) => r.id)).toEqual(['run_new', 'run_held', 'run_old']);
    const page = await call('GET', '/api/v1/syncs/syn_seed/runs?limit=1');
    expect(page.json.runs.map((r: any) => r.id)).toEqual(['run_new']);
    const next = await call('GET', `/api/v1/syncs/syn_seed/runs?limit=1&before=${page.json.runs[0].started_at}`);
    expect(next.json.runs.map((r: any) => r.id)).toEqual(['run_held']);
    const run = await call('GET', '/api/v1/runs/run_new');
    expect(run.json).toMatchObject({
      id: 'run_new',
      status: 'completed',
      added: 4,
      delivered: 1,
      not_found: 1,
      failed: 1,
      pending: 1,
      skipped_anonymous: 1,
    });
    expect(run.json.added + run.json.removed).toBe(
      run.json.delivered + run.json.not_found + run.json.failed + run.json.pending,
    );
  });

  it("pages a run's records with a cursor, filters by outcome, exports them, and finds a user", async () => {
    const all = await call('GET', '/api/v1/runs/run_new/records');
    expect(all.json.records.map((r: any) => [r.external_id, r.outcome])).toEqual([
      ['a-delivered', 'delivered'],
      ['b-notfound', 'not_found'],
      ['c-failed', 'failed'],
      ['d-pending', 'pending'],
    ]);
    expect(all.json.next_cursor).toBeNull();
    const failed = await call('GET', '/api/v1/runs/run_new/records?outcome=failed');
    expect(failed.json.records).toEqual([
      expect.objectContaining({
        external_id: 'c-failed',
        operation: 'add',
        status: 400,
        message: 'tag key rejected by OneSignal',
      }),
    ]);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { json: { records: Array<{ external_id: string }>; next_cursor: string | null } } = await call(
        'GET',
        `/api/v1/runs/run_new/records?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      seen.push(...page.json.records.map((r) => r.external_id));
      cursor = page.json.next_cursor;
    } while (cursor);
    expect(seen).toEqual(['a-delivered', 'b-notfound', 'c-failed', 'd-pending']);
    expect((await call('GET', '/api/v1/runs/run_new/records?cursor=nonsense')).status).toBe(400);

    const csv = await fetch(`${base}/api/v1/runs/run_new/records/export?format=csv`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/text\/csv/);
    expect(csv.headers.get('content-disposition')).toMatch(/attachment; filename="run_new-records.csv"/);
    const lines = (await csv.text()).trim().split('\n');
    expect(lines[0]).toBe('external_id,operation,outcome,status,message,attempts,at');
    expect(lines.slice(1).map((l) => l.split(',').slice(0, 3).join(','))).toEqual([
      'a-delivered,add,delivered',
      'b-notfound,add,not_found',
      'c-failed,add,failed',
      'd-pending,add,pending',
    ]);
    const nd = await fetch(`${base}/api/v1/runs/run_new/records/export?format=ndjson&outcome=not_found`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(
      (await nd.text())
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).external_id),
    ).toEqual(['b-notfound']);
    const missing = await fetch(`${base}/api/v1/runs/run_missing/records/export?format=csv`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(missing.status).toBe(404);

    const user = await call('GET', '/api/v1/users?external_id=b-notfound');
    expect(user.status).toBe(200);
    expect(user.json.syncs).toEqual([
      expect.objectContaining({
        sync_id: 'syn_seed',
        in_cohort: true,
        tag_confirmed: false,
        state: 'not_found',
        records: [expect.objectContaining({ run_id: 'run_new', outcome: 'not_found', status: 404 })],
      }),
    ]);
    expect((await call('GET', '/api/v1/users')).status).toBe(400);
  });

  it('shows streams with counters and their dead letters', async () => {
    const list = await call('GET', '/api/v1/streams');
    const s = list.json.streams.find((x: any) => x.id === 'str_seed');
    expect(s).toMatchObject({
      received: 4,
      duplicates: 2,
      forwarded: 2,
      dead_lettered: 1,
      pending: 1,
      forwarded_last_minute: 2,
      webhook_path: '/hooks/onesignal/events/str_seed',
    });
    expect((await call('GET', '/api/v1/streams/str_seed')).json).toMatchObject({ id: 'str_seed', dead_lettered: 1 });
    const dl = await call('GET', '/api/v1/dead-letters?stream=str_seed');
    expect(dl.json.dead_letters).toEqual([
      expect.objectContaining({
        event_id: 'e4',
        reason: 'Invalid field values on some events: user_id too short',
        event: expect.objectContaining({ insert_id: 'e4' }),
      }),
    ]);
    expect((await call('GET', '/api/v1/dead-letters?stream=str_missing')).status).toBe(404);
  });

  it('answers invalid input with 400 and a message naming the field', async () => {
    const bad = await call('GET', '/api/v1/runs/run_new/records?outcome=exploded');
    expect(bad.status).toBe(400);
    expect(bad.json.error).toBe('invalid_input');
    expect(bad.json.message).toMatch(/outcome: must be one of delivered, not_found, failed, pending/);
    const limit = await call('GET', '/api/v1/syncs/syn_seed/runs?limit=0');
    expect(limit.status).toBe(400);
    expect(limit.json.message).toMatch(/limit: must be at least 1/);
    const id = await call('GET', '/api/v1/runs/has%20space');
    expect(id.status).toBe(400);
    const dest = await call('POST', '/api/v1/destinations', {
      body: { name: 'Bad', app_id: 'not-a-uuid', api_key: 'k' },
    });
    expect(dest.status).toBe(400);
    expect(dest.json.message).toMatch(/app_id/);
    const sync = await call('POST', '/api/v1/syncs', {
      body: { cohort_id: 'coh_file', destination_id: 'dst_seed', cadence: 'weekly' },
    });
    expect(sync.status).toBe(400);
    expect(sync.json.message).toMatch(/cadence/);
    const tagValue = await call('POST', '/api/v1/syncs', {
      body: { cohort_id: 'coh_file', destination_id: 'dst_seed', tag_value: 'when' },
    });
    expect(tagValue.status).toBe(400);
    expect(tagValue.json.message).toMatch(/tag_value: must be one of presence, entered_at/);
    const notJson = await fetch(`${base}/api/v1/syncs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: '{oops',
    });
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as any).error).toBe('invalid_input');
    // Nothing half-written: the rejected destination does not exist.
    expect((await call('GET', '/api/v1/destinations')).json.destinations.map((d: any) => d.name)).not.toContain('Bad');
  });

  it('creates and tests a destination, creates a sync and runs it against the emulator', async () => {
    const created = await call('POST', '/api/v1/destinations', {
      body: { name: 'Via API', app_id: viaApiApp, api_key: OS_KEY, api_url: emu.url },
    });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ name: 'Via API', app_id: viaApiApp, status: 'active' });
    const dup = await call('POST', '/api/v1/destinations', {
      body: { name: 'Via API', app_id: wrongKeyApp, api_key: OS_KEY, api_url: emu.url },
    });
    expect(dup.status).toBe(409);
    const sameApp = await call('POST', '/api/v1/destinations', {
      body: { name: 'Seeded again', app_id: appId, api_key: OS_KEY, api_url: emu.url },
    });
    expect(sameApp.status).toBe(409);
    expect(sameApp.json).toMatchObject({ error: 'conflict', existing_id: 'dst_seed' });

    const ok = await call('POST', `/api/v1/destinations/${created.json.id}/test`);
    expect(ok.json).toMatchObject({ ok: true });
    const wrongKey = await call('POST', '/api/v1/destinations', {
      body: { name: 'Wrong key', app_id: wrongKeyApp, api_key: 'wrong', api_url: emu.url },
    });
    const refused = await call('POST', `/api/v1/destinations/${wrongKey.json.id}/test`);
    expect(refused.status).toBe(200);
    expect(refused.json).toMatchObject({ ok: false, error: 'credentials_refused' });

    const sync = await call('POST', '/api/v1/syncs', {
      body: { cohort_id: 'coh_file', destination_id: created.json.id, cadence: 'manual' },
    });
    expect(sync.status).toBe(201);
    expect(sync.json).toMatchObject({
      cohort_id: 'coh_file',
      destination_id: created.json.id,
      cadence: 'manual',
      tag_value: 'presence',
    });

    const run = await call('POST', `/api/v1/syncs/${sync.json.id}/run`, { body: {} });
    expect(run.status).toBe(200);
    expect(run.json.run_id).toBe(run.json.run.id);
    expect(run.json.run).toMatchObject({
      status: 'completed',
      added: 5,
      delivered: 3,
      not_found: 2,
      failed: 0,
      pending: 0,
    });
    expect(emu.state.getUser('u1', viaApiApp)).toMatchObject({ [sync.json.tag_key]: '1' });

    const records = await call('GET', `/api/v1/runs/${run.json.run.id}/records?outcome=not_found`);
    expect(records.json.records.map((r: any) => r.external_id)).toEqual(['u4', 'u5']);
  });

  it('with a job queue, starting a run answers with its id at once; its delivery goes to the queue', async () => {
    const { ctx } = db();
    const jobs = createJobQueue(ctx);
    const queued = await buildServer({ ctx, jobs, adminToken: TOKEN });
    try {
      const url = await listen(queued);
      const first = await fetch(`${url}/api/v1/syncs/syn_seed/run`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      expect([200, 202]).toContain(first.status);
      const body = (await first.json()) as { run_id: string; run: { id: string; sync_id: string }; finished: boolean };
      expect(body.run_id).toMatch(/^run_/);
      expect(body.run).toMatchObject({ id: body.run_id, sync_id: 'syn_seed' });
      const polled = await call('GET', `/api/v1/runs/${body.run_id}`);
      expect(polled.status).toBe(200);
      expect(polled.json.id).toBe(body.run_id);
      // Nothing ran as a second pass through sync.run: the run is this request's.
      expect((await jobs.list()).filter((j) => j.task === 'sync.run')).toHaveLength(0);
    } finally {
      await queued.close();
      await jobs.stop().catch(() => {});
    }
  });

  it('rejects a held run and refuses to decide a finished one (409)', async () => {
    const finished = await call('POST', '/api/v1/runs/run_old/reject');
    expect(finished.status).toBe(409);
    expect(finished.json.error).toBe('run_state');
    const rejected = await call('POST', '/api/v1/runs/run_held/reject');
    expect(rejected.status).toBe(200);
    expect(rejected.json).toMatchObject({ id: 'run_held', status: 'rejected' });
  });

  it('exposes Prometheus metrics computed from the database', async () => {
    // A webhook request (to a stream that does not exist) is counted by route pattern and status.
    const hook = await fetch(`${base}/hooks/onesignal/events/str_unknown`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/ampsignal_ledger_pending_rows\{destination_id="dst_seed"\} 3/);
    expect(text).toMatch(/ampsignal_outbox_pending_events\{stream_id="str_seed"\} 1/);
    expect(text).toMatch(/ampsignal_dead_letters\{stream_id="str_seed"\} 1/);
    expect(text).toMatch(/ampsignal_runs\{status="rejected"\} 1/);
    expect(text).toMatch(/ampsignal_api_requests_total\{route="\/api\/v1\/destinations",status="401"\} \d+/);
    // The counters are per process, and this file runs twice (once per dialect): at least 1.
    expect(text).toContain(
      `ampsignal_webhook_requests_total{route="/hooks/onesignal/events/:streamId",status="${hook.status}"} `,
    );
  });

  it('never returns a key or secret in any response', async () => {
    const { ctx } = db();
    const encrypted = await ctx.store.db.selectFrom('destinations').select('api_key_enc').execute();
    const all = bodies.join('\n');
    expect(bodies.length).toBeGreaterThan(20);
    for (const secret of [OS_KEY, AMP_KEY, HOOK_SECRET, TOKEN, ...encrypted.map((e) => e.api_key_enc)]) {
      expect(all).not.toContain(secret);
    }
    expect(all).not.toMatch(/_enc"/);
  });
});

describeEachDialect('admin API without a token', (db) => {
  it('answers 503 with instructions on the API and the UI (never open by default)', async () => {
    const saved = process.env.AMPSIGNAL_ADMIN_TOKEN;
    delete process.env.AMPSIGNAL_ADMIN_TOKEN;
    const app = await buildServer({ ctx: db().ctx });
    try {
      const base = await listen(app);
      const api = await fetch(`${base}/api/v1/destinations`, { headers: { authorization: 'Bearer anything' } });
      expect(api.status).toBe(503);
      const body = (await api.json()) as any;
      expect(body.error).toBe('admin_token_not_configured');
      expect(body.message).toMatch(/AMPSIGNAL_ADMIN_TOKEN/);
      const ui = await fetch(`${base}/`, { redirect: 'manual' });
      expect(ui.status).toBe(503);
      expect(await ui.text()).toMatch(/AMPSIGNAL_ADMIN_TOKEN/);
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
    } finally {
      await app.close();
      if (saved !== undefined) process.env.AMPSIGNAL_ADMIN_TOKEN = saved;
    }
  });

  it('UI: cookie login, ?token= once, and Origin-checked POSTs', async () => {
    const app = await buildServer({ ctx: db().ctx, adminToken: TOKEN });
    try {
      const base = await listen(app);
      const anon = await fetch(`${base}/cohorts`, { redirect: 'manual' });
      expect(anon.status).toBe(303);
      expect(anon.headers.get('location')).toBe('/login?next=%2Fcohorts');

      const once = await fetch(`${base}/streams?token=${TOKEN}`, { redirect: 'manual' });
      expect(once.status).toBe(303);
      expect(once.headers.get('location')).toBe('/streams');
      const cookie = once.headers.get('set-cookie') ?? '';
      expect(cookie).toMatch(/HttpOnly/);
      expect(cookie).toMatch(/SameSite=Strict/);
      const jar = cookie.split(';')[0]!;
      const page = await fetch(`${base}/streams`, { headers: { cookie: jar } });
      expect(page.status).toBe(200);
      expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self'/);

      // Names come from Amplitude and users: they are escaped, never markup.
      const now = Date.now();
      await seedCohort(db().ctx, {
        id: 'coh_xss',
        name: '<script>alert("pwned")</script>',
        size: 1,
        last_computed: now,
        created_at: now,
      });
      const cohorts = await (await fetch(`${base}/cohorts`, { headers: { cookie: jar } })).text();
      expect(cohorts).toContain('&lt;script>alert(&#34;pwned&#34;)&lt;/script>');
      expect(cohorts).not.toContain('<script>alert');

      const badLogin = await fetch(`${base}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base },
        body: 'token=wrong&next=%2F',
      });
      expect(badLogin.status).toBe(401);
      expect(await badLogin.text()).toMatch(/not the admin token/);

      const crossSite = await fetch(`${base}/syncs`, {
        method: 'POST',
        headers: { cookie: jar, 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' },
        body: 'cohort_id=x&destination_id=y&cadence=manual',
      });
      expect(crossSite.status).toBe(403);
      const noOrigin = await fetch(`${base}/logout`, { method: 'POST', headers: { cookie: jar } });
      expect(noOrigin.status).toBe(403);
    } finally {
      await app.close();
    }
  });
});
