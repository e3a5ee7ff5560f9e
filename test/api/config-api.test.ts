import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type AmplitudeEmulator, startAmplitudeEmulator } from '../../src/emulators/amplitude';
import { type OneSignalEmulator, startOneSignalEmulator } from '../../src/emulators/onesignal';
import { buildServer } from '../../src/server/app';
import { configYaml } from '../helpers/config-yaml';
import { describeEachDialect } from '../helpers/db';

process.env.AMPSIGNAL_AMPLITUDE_POLL_MS = '10';
const TOKEN = 'config-api-admin-token-0123456789';
const AMP = { apiKey: `amp-cfgapi-${crypto.randomUUID()}`, secretKey: `amp-secret-${crypto.randomUUID()}` };
const OS = { appId: crypto.randomUUID(), apiKey: `os-cfgapi-${crypto.randomUUID()}` };
// The Amplitude keys come from the server's environment, the OneSignal key from the request.
process.env.CFGAPI_AMP_KEY = AMP.apiKey;
process.env.CFGAPI_AMP_SECRET = AMP.secretKey;
const SECRETS = [AMP.apiKey, AMP.secretKey, OS.apiKey, TOKEN];

describeEachDialect('admin API: configuration as code', (db) => {
  let app: FastifyInstance;
  let base: string;
  let amplitude: AmplitudeEmulator;
  let onesignal: OneSignalEmulator;
  const bodies: string[] = [];

  async function call(method: string, path: string, body?: unknown) {
    const res = await fetch(base + path, {
      method,
      headers: {
        authorization: `Bearer ${TOKEN}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    bodies.push(text);
    const json = res.headers.get('content-type')?.startsWith('application/json') ? JSON.parse(text) : text;
    return { status: res.status, type: res.headers.get('content-type'), json: json as any };
  }

  const yaml = (rate = 1000) =>
    configYaml({
      amplitudeUrl: amplitude.url,
      onesignalUrl: onesignal.url,
      appId: OS.appId,
      vars: { ampKey: 'CFGAPI_AMP_KEY', ampSecret: 'CFGAPI_AMP_SECRET', osKey: 'CFGAPI_OS_KEY' },
      cohort: 'coh_api',
      cadence: 'daily',
      rate,
    });
  const env = { CFGAPI_OS_KEY: OS.apiKey };

  beforeAll(async () => {
    amplitude = await startAmplitudeEmulator({ projects: [AMP], pollsBeforeReady: 1 });
    onesignal = await startOneSignalEmulator({ apps: [OS], users: { mode: 'seeded', ids: ['u1'] } });
    amplitude.cohorts.upsert({ id: 'coh_api', name: 'API cohort', members: [{ user_id: 'u1' }] });
    app = await buildServer({ ctx: db().ctx, adminToken: TOKEN });
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/api/v1`;
  });
  afterAll(async () => {
    await app?.close();
    await amplitude?.close();
    await onesignal?.close();
    for (const b of bodies) for (const s of SECRETS) expect(b).not.toContain(s);
  });

  it('plan lists the creates; apply makes them; a second apply changes nothing; plan then says so', async () => {
    const plan = await call('POST', '/config/plan', { yaml: yaml(), env });
    expect(plan.status).toBe(200);
    expect(plan.json.items.map((i: any) => `${i.action} ${i.kind} ${i.name} line ${i.line}`)).toEqual([
      'create source Production line 3',
      'create destination Main app line 8',
      'create sync coh_api → Main app line 15',
    ]);
    expect(plan.json.lines).toContain(`    api_key: from \${CFGAPI_OS_KEY}`);
    expect(plan.json.lines.at(-1)).toBe('Plan: 3 to create, 0 to change, 0 to delete.');

    const first = await call('POST', '/config/apply', { yaml: yaml(), env });
    expect(first.status).toBe(200);
    expect(first.json.applied.map((a: any) => `${a.action} ${a.kind}`)).toEqual([
      'create source',
      'create destination',
      'create sync',
    ]);
    expect(first.json.message).toBe('Applied ampsignal.yaml: 3 created, 0 changed, 0 deleted');
    const { ctx } = db();
    const dest = await ctx.store.db.selectFrom('destinations').selectAll().executeTakeFirstOrThrow();
    expect(ctx.secrets.decrypt(dest.api_key_enc)).toBe(OS.apiKey);
    const source = await ctx.store.db.selectFrom('sources').selectAll().executeTakeFirstOrThrow();
    expect(ctx.secrets.decrypt(source.secret_key_enc)).toBe(AMP.secretKey);
    const rows = async () =>
      JSON.stringify(
        await Promise.all(
          (['sources', 'destinations', 'syncs'] as const).map((t) => ctx.store.db.selectFrom(t).selectAll().execute()),
        ),
      );
    const before = await rows();

    const second = await call('POST', '/config/apply', { yaml: yaml(), env });
    expect(second.json.applied).toEqual([]);
    expect(second.json.message).toBe('No changes: the database already matches ampsignal.yaml');
    expect(await rows()).toBe(before);
    expect((await call('POST', '/config/plan', { yaml: yaml(), env })).json.lines).toEqual([
      'No changes: the database matches ampsignal.yaml.',
    ]);
  }, 60_000);

  it('a change shows field by field; export answers YAML without a key, and its plan is empty', async () => {
    const plan = await call('POST', '/config/plan', { yaml: yaml(50), env });
    expect(plan.json.items).toEqual([
      expect.objectContaining({
        action: 'update',
        kind: 'destination',
        changes: [{ field: 'rate_limit_per_second', from: '1000', to: '50' }],
      }),
    ]);
    const exported = await call('GET', '/config/export');
    expect(exported.status).toBe(200);
    expect(exported.type).toMatch(/^application\/yaml/);
    expect(exported.json).toContain(`api_key: \${DESTINATION_MAIN_APP_API_KEY}`);
    expect(exported.json).toContain('cohort: coh_api # API cohort');
    const again = await call('POST', '/config/plan', {
      yaml: exported.json,
      env: {
        SOURCE_PRODUCTION_API_KEY: AMP.apiKey,
        SOURCE_PRODUCTION_SECRET_KEY: AMP.secretKey,
        DESTINATION_MAIN_APP_API_KEY: OS.apiKey,
      },
    });
    expect(again.json.items).toEqual([]);
  });

  it('a bad file is a 400 naming each line; unset and server-own variables are named, never read', async () => {
    const bad = await call('POST', '/config/plan', { yaml: yaml().replace('cadence: daily', 'cadence: weekly'), env });
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ error: 'invalid_input' });
    expect(bad.json.message).toMatch(/^ampsignal\.yaml:17: syncs\[0\]\.cadence: .*must be one of/);
    expect(bad.json.problems).toEqual([expect.objectContaining({ line: 17, field: 'syncs[0].cadence' })]);

    const unset = await call('POST', '/config/apply', { yaml: yaml() });
    expect(unset.status).toBe(400);
    expect(unset.json.message).toBe(
      'ampsignal.yaml:10: destinations[0].api_key: environment variable CFGAPI_OS_KEY is not set',
    );
    const own = await call('POST', '/config/plan', {
      yaml: yaml().replace(`\${CFGAPI_OS_KEY}`, `\${AMPSIGNAL_ADMIN_TOKEN}`),
    });
    expect(own.json.message).toContain('environment variable AMPSIGNAL_ADMIN_TOKEN is not set');

    const syntax = await call('POST', '/config/plan', { yaml: 'sources:\n  - name: [a\n' });
    expect(syntax.status).toBe(400);
    expect(syntax.json.message).toMatch(/^ampsignal\.yaml:\d: /);
    for (const body of [{}, { yaml: '' }, { yaml: 'x: 1', env: { 'bad-name': 'v' } }, { yaml: 'x', colour: 1 }]) {
      const r = await call('POST', '/config/plan', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.error).toBe('invalid_input');
    }
  });

  it('a variable used outside a key field is answered as its reference, not its value', async () => {
    const leaky = yaml().replaceAll('Main app', `\${CFGAPI_OS_KEY}`);
    const plan = await call('POST', '/config/plan', { yaml: leaky, env });
    expect(plan.status, JSON.stringify(plan.json)).toBe(200);
    expect(plan.json.items).toContainEqual(
      expect.objectContaining({ action: 'create', kind: 'destination', name: `\${CFGAPI_OS_KEY}` }),
    );
    expect(plan.json.lines).toContain(`+ destination "\${CFGAPI_OS_KEY}"  line 8`);
  });
});
