import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type OneSignalEmulator, startOneSignalEmulator } from '../../src/emulators/onesignal';
import { buildServer } from '../../src/server/app';
import { closedPort } from '../cli/proc';
import { describeEachDialect } from '../helpers/db';

const TOKEN = 'connection-test-admin-token-0123';
const MARKER = 'MARKER-from-the-probed-service';

async function listening<S extends Server | TcpServer>(server: S): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as { port: number }).port;
}

/**
 * "Test connection" must not become a port scanner (issue 11 item 11): whatever answers at the
 * URL (nothing, a web server, another protocol), the caller learns one classified outcome and
 * never the answer.
 */
describeEachDialect('destination "Test connection"', (db) => {
  let app: FastifyInstance;
  let base: string;
  let emu: OneSignalEmulator;
  const others: Array<Server | TcpServer> = [];
  const onesignal = { appId: randomUUID(), apiKey: `key-${randomUUID()}` };
  let targets: Record<string, string>;

  beforeAll(async () => {
    emu = await startOneSignalEmulator({ apps: [onesignal] });
    app = await buildServer({ ctx: db().ctx, adminToken: TOKEN });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    const web500 = createHttpServer((_req, res) => res.writeHead(500, { 'content-type': 'text/plain' }).end(MARKER));
    const web404 = createHttpServer((_req, res) =>
      res.writeHead(404, { 'content-type': 'text/html' }).end(`<h1>${MARKER}</h1>`),
    );
    const banner = createTcpServer((s) => s.end(`SSH-2.0-${MARKER}\r\n`));
    others.push(web500, web404, banner);
    targets = {
      'closed port': `http://127.0.0.1:${await closedPort()}`,
      'web server answering 500': `http://127.0.0.1:${await listening(web500)}`,
      'web server answering 404': `http://127.0.0.1:${await listening(web404)}`,
      'another protocol': `http://127.0.0.1:${await listening(banner)}`,
    };
  });
  afterAll(async () => {
    await app?.close();
    await emu?.close();
    for (const s of others) s.close();
  });

  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  const sameShape = (r: unknown, url: string) => JSON.stringify(r).replaceAll(new URL(url).origin, '<origin>');

  it('the API test of a saved destination tells nothing, open port or closed, beyond "unreachable"', async () => {
    const answers: string[] = [];
    const created = await api('POST', '/destinations', {
      name: 'probe',
      app_id: onesignal.appId,
      api_key: onesignal.apiKey,
      api_url: emu.url,
    });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    for (const [name, url] of Object.entries(targets)) {
      expect((await api('PATCH', `/destinations/${id}`, { api_url: url })).status, name).toBe(200);
      const r = await api('POST', `/destinations/${id}/test`);
      expect(r.status, name).toBe(200);
      expect(r.json, name).toMatchObject({ ok: false, error: 'unreachable' });
      expect(JSON.stringify(r.json), name).not.toContain(MARKER);
      answers.push(sameShape({ ...r.json, latency_ms: 0 }, url));
    }
    expect(new Set(answers).size).toBe(1);

    // Against OneSignal itself the outcomes a user acts on stay apart.
    await api('PATCH', `/destinations/${id}`, { api_url: emu.url });
    expect((await api('POST', `/destinations/${id}/test`)).json).toMatchObject({ ok: true });
    await api('PATCH', `/destinations/${id}`, { api_key: 'wrong-key' });
    const refused = (await api('POST', `/destinations/${id}/test`)).json;
    expect(refused).toMatchObject({ ok: false, error: 'credentials_refused' });
  });

  it('the UI form test of unsaved settings answers the same for every target', async () => {
    const signIn = await fetch(`${base}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base },
      body: `token=${TOKEN}&next=%2F`,
    });
    const cookie = (signIn.headers.get('set-cookie') ?? '').split(';')[0]!;
    const answers: string[] = [];
    for (const [name, url] of Object.entries(targets)) {
      const res = await fetch(`${base}/destinations/test`, {
        method: 'POST',
        headers: { cookie, origin: base, 'content-type': 'application/x-www-form-urlencoded', 'hx-request': 'true' },
        body: new URLSearchParams({ name: 'x', app_id: onesignal.appId, api_key: onesignal.apiKey, api_url: url }),
      });
      expect(res.status, name).toBe(200);
      const text = await res.text();
      expect(text, name).not.toContain(MARKER);
      answers.push(text.replaceAll(new URL(url).origin, '<origin>'));
    }
    expect(new Set(answers).size).toBe(1);
  });
});
