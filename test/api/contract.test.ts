import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { type AmplitudeEmulator, startAmplitudeEmulator } from '../../src/emulators/amplitude';
import { type OneSignalEmulator, startOneSignalEmulator } from '../../src/emulators/onesignal';
import { buildServer } from '../../src/server/app';
import { finalizeRun, openRun, releaseRunLease } from '../../src/sync/run-record';
import { describeEachDialect } from '../helpers/db';
import { waitFor } from '../jobs/helpers';

process.env.AMPSIGNAL_AMPLITUDE_POLL_MS = '10';
const TOKEN = 'contract-admin-token-0123456789';
type Json = Record<string, any>;

/**
 * The OpenAPI document is the contract: every route answers what the document says. This walks
 * the whole life of each object through the API (create, read, change, pause, resume, run,
 * delete) and checks every answer against the schema documented for its route and status; then
 * it walks every documented GET route without a path parameter.
 */
describeEachDialect('admin API contract (OpenAPI)', (db) => {
  let app: FastifyInstance;
  let base: string;
  let os: OneSignalEmulator;
  let amp: AmplitudeEmulator;
  let doc: Json;
  const appId = crypto.randomUUID();
  const exercised = new Set<string>();

  beforeAll(async () => {
    os = await startOneSignalEmulator({
      apps: [{ appId, apiKey: 'os-key' }],
      users: { mode: 'seeded', ids: ['c1', 'c2'] },
    });
    amp = await startAmplitudeEmulator({ projects: [{ apiKey: 'amp-key', secretKey: 'amp-secret' }] });
    app = await buildServer({ ctx: db().ctx, adminToken: TOKEN });
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/api/v1`;
    doc = (await (await fetch(`${base}/openapi.json`)).json()) as Json;
  });
  afterAll(async () => {
    await app?.close();
    await os?.close();
    await amp?.close();
  });

  /** The documented schema, with component references inlined (z.fromJSONSchema reads one schema). */
  function resolve(schema: Json): Json {
    const text = JSON.stringify(schema).replace(/\{"\$ref":"#\/components\/schemas\/(\w+)"\}/g, (_m, name: string) =>
      JSON.stringify(doc.components.schemas[name]),
    );
    return JSON.parse(text) as Json;
  }

  /** Calls a route and checks the answer against the schema documented for its status. */
  async function call(
    method: string,
    template: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; json: Json }> {
    const op = doc.paths[template]?.[method.toLowerCase()];
    expect(op, `${method} ${template} is documented`).toBeDefined();
    const res = await fetch(base + path, {
      method,
      headers: {
        authorization: `Bearer ${TOKEN}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const type = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
    const json = (type === 'application/json' ? await res.json() : await res.text()) as Json;
    const documented = op.responses[String(res.status)];
    expect(
      documented,
      `${method} ${template} answered ${res.status}, which it does not document: ${JSON.stringify(json)}`,
    ).toBeDefined();
    expect(
      documented.content[type],
      `${method} ${template} ${res.status} answered ${type}, not documented`,
    ).toBeDefined();
    const schema = resolve(documented.content[type].schema);
    const r = z.fromJSONSchema(schema as never).safeParse(json);
    expect(r.success, `${method} ${template} ${res.status}: ${r.success ? '' : JSON.stringify(r.error.issues)}`).toBe(
      true,
    );
    exercised.add(`${method} ${template}`);
    return { status: res.status, json };
  }

  it('every operation of every object answers as documented, through its whole life', async () => {
    const src = await call('POST', '/sources', '/sources', {
      name: 'p',
      api_key: 'amp-key',
      secret_key: 'amp-secret',
      api_url: amp.url,
    });
    expect(src.status).toBe(201);
    const sid = src.json.id as string;
    expect(
      (await call('POST', '/sources', '/sources', { name: 'p2', api_key: 'amp-key', secret_key: 'x' })).status,
    ).toBe(409);
    expect((await call('POST', '/sources', '/sources', { name: '' })).status).toBe(400);
    await call('GET', '/sources', '/sources');
    await call('GET', '/sources/{id}', `/sources/${sid}`);
    expect((await call('GET', '/sources/{id}', '/sources/src_none')).status).toBe(404);
    await call('PATCH', '/sources/{id}', `/sources/${sid}`, { download_budget: 400 });
    expect((await call('POST', '/sources/{id}/test', `/sources/${sid}/test`)).json.ok).toBe(true);

    const dst = await call('POST', '/destinations', '/destinations', {
      name: 'd',
      app_id: appId,
      api_key: 'os-key',
      api_url: os.url,
    });
    const did = dst.json.id as string;
    await call('GET', '/destinations', '/destinations');
    await call('GET', '/destinations/{id}', `/destinations/${did}`);
    await call('PATCH', '/destinations/{id}', `/destinations/${did}`, { max_tags_per_user: 12 });
    await call('POST', '/destinations/{id}/test', `/destinations/${did}/test`);
    await call('POST', '/destinations/{id}/pause', `/destinations/${did}/pause`, { reason: 'contract' });
    await call('POST', '/destinations/{id}/resume', `/destinations/${did}/resume`);

    const imported = await call('POST', '/cohorts', '/cohorts', {
      name: 'Contract cohort',
      user_ids: ['c1', 'c2', ' c3 ', '', 'c1'],
    });
    expect(imported).toMatchObject({ status: 201, json: { members: 3, blank: 1, duplicates: 1, trimmed: 1 } });
    const cohort = imported.json as { cohort_id: string };
    // One bad id is refused with its place; the members come as user_ids or csv, one of them.
    const bad = await call('POST', '/cohorts', '/cohorts', { name: 'Bad', user_ids: ['ok', 7] });
    expect(bad).toMatchObject({ status: 400 });
    expect(bad.json.message).toContain('user_ids.1');
    expect((await call('POST', '/cohorts', '/cohorts', { name: 'Neither' })).status).toBe(400);
    const csv = await call('POST', '/cohorts', '/cohorts', {
      name: 'CSV',
      id: 'csv_c',
      csv: 'user_id,plan\nc1,pro\nc2,free\n',
    });
    expect(csv.json).toMatchObject({ cohort_id: 'csv_c', members: 2, replaced: false });
    const noColumn = await call('POST', '/cohorts', '/cohorts', { name: 'CSV', csv: 'id,plan\nc1,pro\n' });
    expect(noColumn).toMatchObject({ status: 400, json: { error: 'invalid_input' } });
    expect(noColumn.json.message).toContain('no user_id column');
    const broken = await call('POST', '/cohorts', '/cohorts', { name: 'CSV', csv: 'user_id,plan\n"c1,pro\n' });
    expect(broken).toMatchObject({ status: 400, json: { error: 'invalid_input' } });
    expect((await call('GET', '/cohorts', '/cohorts')).json.cohorts.map((c: Json) => c.id)).toContain('csv_c');
    expect((await call('DELETE', '/cohorts/{id}', '/cohorts/csv_c')).json).toMatchObject({ deleted: true, members: 2 });
    const syn = await call('POST', '/syncs', '/syncs', {
      cohort_id: cohort.cohort_id,
      destination_id: did,
      guard_threshold: 0.6,
    });
    expect(syn.status).toBe(201);
    const yid = syn.json.id as string;
    expect(
      (await call('POST', '/syncs', '/syncs', { cohort_id: cohort.cohort_id, destination_id: did })).json.existing_id,
    ).toBe(yid);
    await call('GET', '/syncs', '/syncs');
    await call('GET', '/syncs/{id}', `/syncs/${yid}`);
    await call('PATCH', '/syncs/{id}', `/syncs/${yid}`, { cadence: 'daily' });
    await call('POST', '/syncs/{id}/pause', `/syncs/${yid}/pause`);
    await call('POST', '/syncs/{id}/resume', `/syncs/${yid}/resume`);
    const dry = await call('POST', '/syncs/{id}/run', `/syncs/${yid}/run`, { dry_run: true });
    expect(dry.json.run).toMatchObject({ status: 'dry_run' });
    // OneSignal refuses c2 for good (its tag limit, reached behind the sync's back) until it is raised.
    os.setLimits({ maxTagsPerUser: 1 });
    os.state.setTags('c2', { other_tool: 'x' });
    const run = await call('POST', '/syncs/{id}/run', `/syncs/${yid}/run`, {});
    const rid = run.json.run_id as string;
    expect(rid).toMatch(/^run_/);
    await waitFor(async () => (await call('GET', '/runs/{id}', `/runs/${rid}`)).json.status !== 'running');
    expect((await call('GET', '/runs/{id}', `/runs/${rid}`)).json).toMatchObject({ status: 'completed', failed: 1 });
    expect((await call('GET', '/runs/{id}', '/runs/run_none')).status).toBe(404);
    expect((await call('GET', '/syncs/{id}/runs', `/syncs/${yid}/runs?limit=5`)).json.runs).toHaveLength(2);
    expect((await call('GET', '/syncs/{id}/runs', `/syncs/${yid}/runs?limit=0`)).status).toBe(400);
    expect((await call('GET', '/runs', `/runs?sync=${yid}&limit=1`)).json.runs[0].id).toBe(rid);
    expect((await call('GET', '/runs', '/runs?sync=syn_none')).status).toBe(404);
    expect((await call('POST', '/runs/{id}/approve', `/runs/${rid}/approve`)).status).toBe(409);
    expect((await call('POST', '/runs/{id}/reject', `/runs/${rid}/reject`)).status).toBe(409);
    os.setLimits({ maxTagsPerUser: 100 });
    const retried = await call('POST', '/runs/{id}/retry', `/runs/${rid}/retry`);
    expect(retried).toMatchObject({ status: 200, json: { requeued: 1, run: { status: 'completed', failed: 0 } } });
    expect((await call('POST', '/runs/{id}/retry', `/runs/${rid}/retry`)).status).toBe(409);
    expect((await call('POST', '/runs/{id}/retry', '/runs/run_none/retry')).status).toBe(404);
    // Another process's run of the sync at work (its lease held): a second run is refused, naming it.
    const atWork = await openRun(db().ctx, { syncId: yid, trigger: 'schedule', dryRun: false });
    expect(await call('POST', '/syncs/{id}/run', `/syncs/${yid}/run`, {})).toMatchObject({
      status: 409,
      json: { error: 'conflict', message: expect.stringContaining(atWork.runId) },
    });
    await finalizeRun(db().ctx, atWork.runId, { failed: 'ended by the test' });
    await releaseRunLease(db().ctx, atWork);

    const str = await call('POST', '/streams', '/streams', {
      name: 's',
      amplitude_api_key: 'amp-key',
      amplitude_url: amp.url,
    });
    const tid = str.json.id as string;
    await call('GET', '/streams', '/streams');
    await call('GET', '/streams/{id}', `/streams/${tid}`);
    await call('PATCH', '/streams/{id}', `/streams/${tid}`, { event_names: { 'message.push.sent': 'Sent' } });
    await call('POST', '/streams/{id}/pause', `/streams/${tid}/pause`);
    await call('POST', '/streams/{id}/resume', `/streams/${tid}/resume`);
    await call('GET', '/dead-letters', `/dead-letters?stream=${tid}`);
    expect((await call('POST', '/dead-letters/replay', '/dead-letters/replay', { stream: tid })).status).toBe(400);
    await call('POST', '/dead-letters/replay', '/dead-letters/replay', { stream: tid, all: true });
    await call('DELETE', '/streams/{id}', `/streams/${tid}`);

    const inUse = await call('DELETE', '/cohorts/{id}', `/cohorts/${cohort.cohort_id}`);
    expect(inUse).toMatchObject({ status: 409, json: { existing_id: yid } });
    await call('POST', '/sources/{id}/refresh', `/sources/${sid}/refresh`);
    await call('GET', '/cohorts', '/cohorts');
    const del = await call('DELETE', '/syncs/{id}', `/syncs/${yid}`);
    expect((await call('DELETE', '/cohorts/{id}', `/cohorts/${cohort.cohort_id}`)).json).toMatchObject({
      deleted: true,
    });
    expect(del.json).toMatchObject({ deleted: true, removed: 2 });
    expect((await call('DELETE', '/sources/{id}', `/sources/${sid}?force=false`)).json.deleted).toBe(true);
    expect((await call('DELETE', '/destinations/{id}', `/destinations/${did}?remove_tags=true`)).json.deleted).toBe(
      true,
    );

    // Every route of the objects' lifecycles was exercised.
    const lifecycle = Object.entries(doc.paths as Record<string, Json>)
      .flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`))
      .filter((r) =>
        /^\w+ \/(sources|destinations|streams|dead-letters|syncs|cohorts)(\/\{id\})?(\/(test|pause|resume|run|replay|refresh))?$|\/runs(\/\{id\}(\/(approve|reject|retry))?)?$|\/syncs\/\{id\}\/runs$/.test(
          r,
        ),
      );
    expect(lifecycle.filter((r) => !exercised.has(r))).toEqual([]);
  }, 120_000);

  it('every documented GET route without a path parameter answers as documented', async () => {
    const gets = Object.entries(doc.paths as Record<string, Json>)
      .filter(([p, ops]) => ops.get && !p.includes('{') && p !== '/openapi.json')
      .map(([p]) => p);
    expect(gets.length).toBeGreaterThan(5);
    for (const p of gets) await call('GET', p, p);
  });

  it('configuration as code answers as documented: plan, apply, a bad file, export', async () => {
    const yaml = `destinations:\n  - name: cfg\n    app_id: ${appId}\n    api_key: \${CONTRACT_OS_KEY}\n    api_url: ${os.url}\n`;
    const env = { CONTRACT_OS_KEY: 'os-key' };
    const plan = await call('POST', '/config/plan', '/config/plan', { yaml, env });
    expect(plan.json.summary).toMatchObject({ create: 1 });
    expect((await call('POST', '/config/plan', '/config/plan', { yaml: 'destinations: [' })).status).toBe(400);
    expect((await call('POST', '/config/apply', '/config/apply', { yaml, env })).json.applied).toHaveLength(1);
    const again = await call('POST', '/config/apply', '/config/apply', { yaml, env });
    expect(again.json.applied).toEqual([]);
    const exported = await call('GET', '/config/export', '/config/export');
    expect(String(exported.json)).toContain('name: cfg');
  });
});
