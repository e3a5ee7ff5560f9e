import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildServer } from '../../src/server/app';
import { describeEachDialect } from '../helpers/db';

const TOKEN = 'test-admin-token-nul-text-0123';

// PostgreSQL's text cannot hold U+0000: a name carrying one must be a 400 naming the field on
// both databases, never a 500 (PostgreSQL) or a stored row (SQLite). Found by the reliability
// harness's bad-input corpus (POST /api/v1/destinations answered 500 on PostgreSQL).
describeEachDialect('NUL in names sent to the admin API', (db) => {
  let app: FastifyInstance;
  let base: string;
  beforeAll(async () => {
    process.env.AMPSIGNAL_ADMIN_TOKEN = TOKEN;
    app = await buildServer({ ctx: db().ctx });
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/api/v1`;
  });
  afterAll(async () => {
    await app?.close();
    delete process.env.AMPSIGNAL_ADMIN_TOKEN;
  });

  const post = async (path: string, body: unknown) => {
    const r = await fetch(base + path, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: r.status, json: (await r.json()) as { fields?: string[]; message: string } };
  };

  const cases = [
    [
      '/destinations',
      {
        name: 'app\u0000',
        app_id: '5eed0000-0000-4000-8000-0000000000aa',
        api_key: 'k',
        api_url: 'http://127.0.0.1:9',
      },
      'name',
    ],
    [
      '/destinations',
      {
        name: 'app two',
        app_id: '5eed0000-0000-4000-8000-0000000000ab',
        api_key: 'k',
        api_url: 'http://127.0.0.1:9',
        external_id_property: 'user\u0000id',
      },
      'external_id_property',
    ],
    ['/sources', { name: 'project\u0000', api_key: 'k', secret_key: 's', api_url: 'http://127.0.0.1:9' }, 'name'],
    ['/streams', { name: 'stream\u0000', amplitude_api_key: 'k', amplitude_url: 'http://127.0.0.1:9' }, 'name'],
  ] as const;

  for (const [path, body, field] of cases) {
    it(`POST ${path} with NUL in ${field}: 400 naming it, nothing stored`, async () => {
      const r = await post(path, body);
      expect(r.status).toBe(400);
      expect(r.json.fields).toContain(field);
      expect(r.json.message).toMatch(/NUL/);
      const table = path === '/destinations' ? 'destinations' : path === '/sources' ? 'sources' : 'streams';
      const rows = await db().ctx.store.db.selectFrom(table).select('name').execute();
      expect(rows.filter((row) => row.name.includes('\u0000'))).toEqual([]);
    });
  }
});
