import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildServer } from '../../src/server/app';
import { type HttpReceiver, startHttpReceiver } from '../alerts/receivers';
import { describeEachDialect } from '../helpers/db';
import { seedDestination } from '../helpers/seed';

const TOKEN = 'test-admin-token-0123456789';
const HOOK_TOKEN = 'hook-token-PLAINTEXT-never-returned';

describeEachDialect('alerts API', (db) => {
  let app: FastifyInstance;
  let base: string;
  let hook: HttpReceiver;
  const bodies: string[] = [];

  async function call(method: string, path: string, body?: unknown) {
    const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    bodies.push(text);
    return { status: res.status, json: JSON.parse(text) as any };
  }

  beforeAll(async () => {
    hook = await startHttpReceiver();
    app = await buildServer({ ctx: db().ctx, adminToken: TOKEN });
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await app?.close();
    await hook?.close();
  });

  it('adds, lists, tests and deletes a channel; the URL never comes back', async () => {
    const added = await call('POST', '/api/v1/alert-channels', {
      kind: 'webhook',
      name: 'ops',
      url: `${hook.url}/ops?token=${HOOK_TOKEN}`,
    });
    expect(added.status).toBe(201);
    expect(added.json).toMatchObject({ kind: 'webhook', name: 'ops', settings: { url: `${hook.url}/…` } });
    const id = added.json.id as string;

    const list = await call('GET', '/api/v1/alert-channels');
    expect(list.json.channels.map((c: { id: string }) => c.id)).toEqual([id]);
    expect((await call('GET', `/api/v1/alert-channels/${id}`)).json.name).toBe('ops');

    const tested = await call('POST', `/api/v1/alert-channels/${id}/test`);
    expect(tested.status).toBe(200);
    expect(tested.json).toMatchObject({ ok: true, channel_id: id });
    expect(hook.accepted()).toHaveLength(1);
    expect(hook.accepted()[0]!.path).toBe(`/ops?token=${HOOK_TOKEN}`);
    expect(hook.accepted()[0]!.body.event).toBe('test');

    // A receiver that refuses is a result, not an HTTP error.
    hook.failNext(1, 410, 'gone');
    const refused = await call('POST', `/api/v1/alert-channels/${id}/test`);
    expect(refused.status).toBe(200);
    expect(refused.json.ok).toBe(false);
    expect(refused.json.error).toBe('vendor_rejected');

    const dup = await call('POST', '/api/v1/alert-channels', { kind: 'slack', name: 'ops', url: 'https://x.test/h' });
    expect(dup.status).toBe(409);

    const deleted = await call('DELETE', `/api/v1/alert-channels/${id}`);
    expect(deleted.status).toBe(200);
    expect((await call('GET', `/api/v1/alert-channels/${id}`)).status).toBe(404);
    expect((await call('GET', '/api/v1/alert-channels')).json.channels).toEqual([]);
    for (const b of bodies) expect(b).not.toContain(HOOK_TOKEN);
  });

  it('refuses bad channels with a 400 naming each field, and adds an e-mail channel without echoing its password', async () => {
    const bad = await call('POST', '/api/v1/alert-channels', { kind: 'email', name: '', from: 'nope', to: [] });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toBe('invalid_input');
    expect(bad.json.message).toMatch(/name: a name is required/);
    expect(bad.json.message).toMatch(/from: must be an e-mail address/);
    expect(bad.json.message).toMatch(/to: at least one recipient is required/);
    const kind = await call('POST', '/api/v1/alert-channels', { kind: 'pager', name: 'x' });
    expect(kind.status).toBe(400);
    expect(kind.json.message).toMatch(/kind must be one of webhook, slack, email/);
    const extra = await call('POST', '/api/v1/alert-channels', {
      kind: 'webhook',
      name: 'x',
      url: 'https://x.test',
      host: 'smtp.x.test',
    });
    expect(extra.status).toBe(400);
    expect(extra.json.message).toMatch(/host does not apply to a webhook channel/);
    expect((await call('POST', '/api/v1/alert-channels', 'not json at all')).status).toBe(400);

    const mail = await call('POST', '/api/v1/alert-channels', {
      kind: 'email',
      name: 'mail',
      host: 'smtp.example.test',
      user: 'bot',
      password: 'smtp-PLAINTEXT-password',
      from: 'ampsignal@example.test',
      to: ['oncall@example.test'],
    });
    expect(mail.status).toBe(201);
    expect(mail.json.settings).toMatchObject({ port: 587, security: 'starttls', password_set: true });
    expect(JSON.stringify(mail.json)).not.toContain('smtp-PLAINTEXT-password');
    expect((await call('GET', '/api/v1/alert-channels/chn_nope')).status).toBe(404);
    expect((await call('POST', '/api/v1/alert-channels/bad%20id/test')).status).toBe(400);
  });

  it('evaluates now and lists open alerts; bad query parameters are a 400', async () => {
    const { ctx } = db();
    await seedDestination(ctx, {
      id: 'dst_paused',
      name: 'Paused app',
      app_id: crypto.randomUUID(),
      api_url: 'http://127.0.0.1:9',
      api_key: 'k',
      status: 'paused',
      status_reason: 'OneSignal rejected the credentials (403)',
    });
    const ev = await call('POST', '/api/v1/alerts/evaluate');
    expect(ev.status).toBe(200);
    expect(ev.json.opened).toContain('destination_paused:dst_paused');
    const open = await call('GET', '/api/v1/alerts');
    expect(open.json.alerts).toHaveLength(1);
    expect(open.json.alerts[0]).toMatchObject({
      condition: 'destination_paused:dst_paused',
      kind: 'destination_paused',
      status: 'open',
    });
    expect((await call('GET', '/api/v1/alerts?status=resolved')).json.alerts).toEqual([]);
    const bad = await call('GET', '/api/v1/alerts?status=closed&limit=0');
    expect(bad.status).toBe(400);
    expect(bad.json.message).toMatch(/status: must be one of open, resolved, all/);
    expect(bad.json.message).toMatch(/limit: must be at least 1/);
  });

  it('adds, lists, tests and deletes alert rules', async () => {
    const ch = await call('POST', '/api/v1/alert-channels', {
      kind: 'webhook',
      name: 'rules hook',
      url: `${hook.url}/rules`,
    });
    const added = await call('POST', '/api/v1/alert-rules', { channel: ch.json.id, kind: 'run_failed' });
    expect(added.status).toBe(201);
    expect(added.json).toMatchObject({ channel_id: ch.json.id, channel_name: 'rules hook', kind: 'run_failed' });
    expect((await call('POST', '/api/v1/alert-rules', { channel: 'rules hook', kind: 'run_failed' })).status).toBe(409);
    const bad = await call('POST', '/api/v1/alert-rules', { channel: '', kind: 'lunch', extra: 1 });
    expect(bad.status).toBe(400);
    expect(bad.json.message).toMatch(/channel: a channel id or name is required/);
    expect(bad.json.message).toMatch(/kind: must be one of/);
    expect((await call('POST', '/api/v1/alert-rules', { channel: 'nobody', kind: 'drift' })).status).toBe(404);
    expect((await call('GET', '/api/v1/alert-rules')).json.rules.map((r: { id: string }) => r.id)).toEqual([
      added.json.id,
    ]);
    const tested = await call('POST', `/api/v1/alert-rules/${added.json.id}/test`);
    expect(tested.json.ok).toBe(true);
    expect(hook.accepted().at(-1)!.body.alert.kind).toBe('run_failed');
    expect((await call('DELETE', `/api/v1/alert-rules/${added.json.id}`)).status).toBe(200);
    expect((await call('DELETE', `/api/v1/alert-rules/${added.json.id}`)).status).toBe(404);
    const doc = (await call('GET', '/api/v1/openapi.json')).json;
    const body = doc.paths['/alert-rules'].post.requestBody.content['application/json'].schema;
    expect(body.required).toEqual(['channel', 'kind']);
    expect(body.properties.kind.enum).toContain('drift');
  });

  it('describes the routes in the OpenAPI document with the schemas the handlers validate with', async () => {
    const doc = (await call('GET', '/api/v1/openapi.json')).json;
    const post = doc.paths['/alert-channels'].post;
    const variants =
      post.requestBody.content['application/json'].schema.oneOf ??
      post.requestBody.content['application/json'].schema.anyOf;
    expect(variants.map((v: any) => v.properties.kind.const).sort()).toEqual(['email', 'slack', 'webhook']);
    const email = variants.find((v: any) => v.properties.kind.const === 'email');
    expect(email.required).toEqual(expect.arrayContaining(['kind', 'name', 'host', 'from', 'to']));
    expect(email.additionalProperties).toBe(false);
    const listed = doc.paths['/alert-channels'].get.responses['200'].content['application/json'].schema;
    expect(listed.properties.channels.items.properties.kind.enum).toEqual(['webhook', 'slack', 'email']);
    const alerts = doc.paths['/alerts'].get;
    expect(alerts.parameters.map((p: any) => p.name).sort()).toEqual(['limit', 'status']);
    expect(
      alerts.responses['200'].content['application/json'].schema.properties.alerts.items.properties.kind.enum,
    ).toContain('drift');
    expect(doc.paths['/alert-channels/{id}'].delete).toBeDefined();
    expect(doc.paths['/alert-channels/{id}/test'].post.responses['200']).toBeDefined();
  });
});
