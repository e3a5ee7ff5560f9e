import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OneSignalEmulator, startOneSignalEmulator } from '../../src/emulators/onesignal';
import { cliScope, runCli } from './proc';

// The installed command runs from whatever folder the user is in: nothing may be read relative to
// the working directory but the documented default database (./.ampsignal/ampsignal.db).
const scope = cliScope();
const TOKEN = 'anywhere-admin-token-0123456789';
const pkg = JSON.parse(readFileSync(resolve(__dirname, '../../package.json'), 'utf8')) as { version: string };

let dir: string;
let emu: OneSignalEmulator;
const app = { appId: randomUUID(), apiKey: `key-${randomUUID()}` };
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ampsignal-anywhere-'));
  emu = await startOneSignalEmulator({ apps: [app] });
  emu.state.seedUsers(['a1', 'a2', 'a3'], app.appId);
});
afterAll(async () => {
  await emu?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function json<T>(args: string[]): Promise<T> {
  const r = await runCli([...args, '--json'], {}, 60_000, dir);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
}

describe('ampsignal from an empty working directory', () => {
  it('runs commands and serves every UI page, the API and /metrics', async () => {
    const version = await runCli(['--version'], {}, 30_000, dir);
    expect(version).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });

    const dest = await json<{ id: string }>([
      'destination',
      'add',
      'onesignal',
      '--name',
      'Anywhere',
      '--app-id',
      app.appId,
      '--api-key',
      app.apiKey,
      '--api-url',
      emu.url,
    ]);
    // The documented default database, relative to the working directory.
    expect(existsSync(join(dir, '.ampsignal', 'ampsignal.db'))).toBe(true);
    writeFileSync(join(dir, 'ids.txt'), 'a1\na2\na3\nnobody\n');
    const cohort = await json<{ cohort_id: string }>(['cohort', 'import', '--file', 'ids.txt', '--name', 'Anywhere']);
    const sync = await json<{ id: string }>(['sync', 'create', '--cohort', cohort.cohort_id, '--destination', dest.id]);
    const run = await json<{ id: string; delivered: number }>(['sync', 'run', sync.id]);
    expect(run.delivered).toBe(3);
    const stream = await json<{ id: string }>(['stream', 'add', '--name', 'Push', '--amplitude-api-key', 'amp-key']);
    expect(await json<unknown[]>(['runs', 'list'])).toHaveLength(1);

    const s = scope.start(['serve', '--port', '0', '--json'], { AMPSIGNAL_ADMIN_TOKEN: TOKEN }, dir);
    const { url } = await s.started;
    const cookie = await login(url);
    const pages = [
      '/',
      '/catalog',
      '/destinations/new',
      '/cohorts',
      `/syncs/${sync.id}`,
      `/runs/${run.id}`,
      '/streams',
      `/streams/${stream.id}/dead-letters`,
      '/assets/htmx.min.js',
      '/assets/style.css',
    ];
    for (const page of pages) {
      const res = await fetch(`${url}${page}`, { headers: { cookie } });
      expect(res.status, page).toBe(200);
      expect(await res.text(), page).not.toMatch(/is not defined|Internal Server Error/);
    }
    const auth = { authorization: `Bearer ${TOKEN}` };
    for (const route of ['/api/v1/openapi.json', '/api/v1/syncs', `/api/v1/runs/${run.id}`, '/api/v1/streams']) {
      const res = await fetch(`${url}${route}`, { headers: auth });
      expect(res.status, route).toBe(200);
    }
    const metrics = await fetch(`${url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/^ampsignal_/m);
    s.child.kill('SIGTERM');
    expect((await s.exited).code).toBe(0);
  }, 240_000);
});

/** Signs in through the login form; returns the session cookie. */
async function login(url: string): Promise<string> {
  const res = await fetch(`${url}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: url },
    body: new URLSearchParams({ token: TOKEN, next: '/' }).toString(),
  });
  expect(res.status).toBe(303);
  const cookie = res.headers.get('set-cookie');
  expect(cookie).toBeTruthy();
  return cookie!.split(';')[0]!;
}
