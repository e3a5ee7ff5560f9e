import type { FastifyInstance } from 'fastify';
import { afterEach, expect, it } from 'vitest';
import { buildServer } from '../../src/server/app';
import { runCli } from '../cli/proc';
import { describeEachDialect } from '../helpers/db';

const TOKEN = 'admin-auth-test-token-0123456789';

/** Admin token rules (issue 11 item 10), as a browser, an API client and an operator see them. */
describeEachDialect('admin token: length, sessions, Secure behind a proxy, throttling', (db) => {
  const open: FastifyInstance[] = [];
  afterEach(async () => {
    for (const app of open.splice(0)) await app.close();
  });
  const serve = async (opts: Partial<Parameters<typeof buildServer>[0]> = {}) => {
    const app = await buildServer({ ctx: db().ctx, adminToken: TOKEN, ...opts });
    open.push(app);
    return app.listen({ host: '127.0.0.1', port: 0 });
  };
  const signIn = (base: string, token: string, headers: Record<string, string> = {}) =>
    fetch(`${base}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base, ...headers },
      body: `token=${encodeURIComponent(token)}&next=%2Fstreams`,
    });
  const page = (base: string, cookie: string) => fetch(`${base}/streams`, { redirect: 'manual', headers: { cookie } });

  it('a token shorter than 16 characters is refused: the server does not start, and serve says why in one line', async () => {
    await expect(buildServer({ ctx: db().ctx, adminToken: 'x' })).rejects.toThrow(/at least 16 characters/);
    await expect(buildServer({ ctx: db().ctx, adminToken: 'fifteen-chars!!' })).rejects.toThrow(/at least 16/);
    const r = await runCli(['--db', db().url, 'serve', '--port', '0'], { AMPSIGNAL_ADMIN_TOKEN: 'short' });
    expect(r.code).toBe(2);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/AMPSIGNAL_ADMIN_TOKEN must be at least 16 characters/);
    const proxy = await runCli(['--db', db().url, 'serve', '--port', '0'], {
      AMPSIGNAL_ADMIN_TOKEN: TOKEN,
      AMPSIGNAL_TRUST_PROXY: '10.0.0.0/99',
    });
    expect(proxy.code).toBe(2);
    expect(proxy.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(proxy.stderr).toMatch(/AMPSIGNAL_TRUST_PROXY: "10.0.0.0\/99"/);
  });

  it('the session cookie is a signed random id, never the token; forged, raw-token and old-token cookies are refused', async () => {
    const base = await serve();
    const res = await signIn(base, TOKEN);
    expect(res.status).toBe(303);
    const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0]!;
    const value = decodeURIComponent(cookie.split('=')[1]!);
    expect(value).not.toContain(TOKEN);
    expect(value).not.toBe(encodeURIComponent(TOKEN));
    expect((await page(base, cookie)).status).toBe(200);
    // Two sign-ins, two different sessions.
    const again = ((await signIn(base, TOKEN)).headers.get('set-cookie') ?? '').split(';')[0]!;
    expect(again).not.toBe(cookie);

    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    for (const [name, forged] of [
      ['the raw token', `ampsignal_admin=${encodeURIComponent(TOKEN)}`],
      ['another id', `ampsignal_admin=${flip(value, 3)}`],
      ['a later expiry', `ampsignal_admin=${value.replace(/\.(\d+)\./, (_m, e) => `.${Number(e) + 3600}.`)}`],
      ['a changed signature', `ampsignal_admin=${flip(value, value.length - 5)}`],
    ] as const) {
      const r = await page(base, forged);
      expect(r.status, name).toBe(303);
      expect(r.headers.get('location'), name).toMatch(/^\/login/);
    }
    // A new admin token ends every session.
    const rotated = await serve({ adminToken: `${TOKEN}-rotated` });
    expect((await page(rotated, cookie)).status).toBe(303);
  });

  it('sets Secure when the request came over TLS through a trusted proxy, and only then', async () => {
    const forwarded = { 'x-forwarded-proto': 'https' };
    const plain = await serve();
    expect((await signIn(plain, TOKEN, forwarded)).headers.get('set-cookie')).not.toMatch(/Secure/);
    const saved = process.env.AMPSIGNAL_TRUST_PROXY;
    process.env.AMPSIGNAL_TRUST_PROXY = 'loopback';
    try {
      const behindProxy = await serve();
      expect((await signIn(behindProxy, TOKEN, forwarded)).headers.get('set-cookie')).toMatch(/; Secure/);
      expect((await signIn(behindProxy, TOKEN)).headers.get('set-cookie')).not.toMatch(/Secure/);
    } finally {
      if (saved === undefined) delete process.env.AMPSIGNAL_TRUST_PROXY;
      else process.env.AMPSIGNAL_TRUST_PROXY = saved;
    }
  });

  it('throttles wrong tokens per client address with 429 and Retry-After, on the API and the sign-in form', async () => {
    const base = await serve({ trustProxy: ['127.0.0.1'] });
    const api = (token: string, client: string) =>
      fetch(`${base}/api/v1/streams`, {
        headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': client },
      });
    for (let i = 0; i < 10; i++) expect((await api(`wrong-${i}`, '203.0.113.7')).status).toBe(401);
    const blocked = await api('wrong-again', '203.0.113.7');
    expect(blocked.status).toBe(429);
    const retryAfter = Number(blocked.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(((await blocked.json()) as { error: string }).error).toBe('too_many_attempts');
    // Blocked means blocked: the right token too, so guessing cannot go on.
    expect((await api(TOKEN, '203.0.113.7')).status).toBe(429);
    const form = await signIn(base, TOKEN, { 'x-forwarded-for': '203.0.113.7' });
    expect(form.status).toBe(429);
    expect(form.headers.get('retry-after')).toBeTruthy();
    expect(await form.text()).toMatch(/Too many wrong tokens/);
    // Another address is not affected.
    expect((await api(TOKEN, '198.51.100.2')).status).toBe(200);
  });
});
