/**
 * secrets: every key, secret and token an installation was given or generated, searched for
 * after real work (a sync, forwarded events, a cohort webhook, wrong secrets, a connection test)
 * in the logs at debug level, the database (SQLite's files; PostgreSQL's tables), every CLI
 * listing, every admin API answer and every UI page. The only place one may show is the `add`
 * output that created it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import pg from 'pg';
import { PG_URL } from '../bench/db';
import { ADMIN_TOKEN, api, call, cli, cliJson, type Dialect, SECRET_KEY } from './cluster';
import {
  AMP,
  COHORT,
  OS_KEY,
  oneSignalEvent,
  planEvents,
  round2,
  STREAM_KEY,
  sendEvents,
  startWorld,
  syncRound,
  type World,
  waitUntilForwarded,
} from './world';

export interface SecretsSize {
  users: number;
  events: number;
  /** Most UI pages crawled from the overview. */
  pages: number;
  workers: number;
  seed: number;
}

export const sizes: Record<'full' | 'quick', SecretsSize> = {
  full: { users: 2_000, events: 2_000, pages: 200, workers: 2, seed: 3 },
  quick: { users: 300, events: 300, pages: 60, workers: 1, seed: 3 },
};

const ALERT_TOKEN = 'alert-hook-token-reliability-92ab';
const SLACK_PATH = 'T000RELY/B000RELY/slack-secret-reliability-5d1e';

/** Where a secret was found: place → how many hits. */
type Hits = Record<string, number>;

export async function run(dialect: Dialect, size: SecretsSize): Promise<Record<string, unknown>> {
  const t0 = Date.now();
  const debug = { AMPSIGNAL_LOG_LEVEL: 'debug' };
  const w = await startWorld({
    dialect,
    label: 'secrets',
    members: size.users,
    faultRate: 0.05,
    hangMs: 500,
    workers: size.workers,
    seed: size.seed,
    env: debug,
  });
  try {
    // Alert channels carry secrets in their URLs.
    await cliJson(w.db.url, [
      'alert',
      'channel',
      'add',
      'webhook',
      '--name',
      'pager',
      '--url',
      `https://hooks.example.invalid/ampsignal?token=${ALERT_TOKEN}`,
    ]);
    await cliJson(w.db.url, [
      'alert',
      'channel',
      'add',
      'slack',
      '--name',
      'ops',
      '--url',
      `https://hooks.slack.com/services/${SLACK_PATH}`,
    ]);
    await doWork(w, size);

    const secrets: Record<string, string> = {
      amplitude_api_key: AMP.apiKey,
      amplitude_secret_key: AMP.secretKey,
      onesignal_api_key: OS_KEY,
      stream_amplitude_api_key: STREAM_KEY,
      source_webhook_secret: w.sourceSecret,
      stream_webhook_secret: w.streamSecret,
      admin_token: ADMIN_TOKEN,
      encryption_key: SECRET_KEY,
      alert_webhook_token: ALERT_TOKEN,
      slack_url_secret: SLACK_PATH,
    };
    const places: Record<string, string[]> = {
      cli_outputs: await cliOutputs(w, debug),
      api_answers: await apiAnswers(w),
      ui_pages: await uiPages(w, size.pages),
      database: await databaseText(w, dialect),
    };
    // Logs last: everything above ran against the cluster at debug level.
    places.logs = [w.cluster.logs()];
    const hits: Record<string, Hits> = {};
    let total = 0;
    for (const [place, texts] of Object.entries(places)) {
      for (const [name, secret] of Object.entries(secrets)) {
        const n = texts.reduce((sum, t) => sum + occurrences(t, secret), 0);
        if (n > 0) {
          hits[place] = { ...hits[place], [name]: n };
          total += n;
        }
      }
    }
    // The search itself must see a secret where one is shown on purpose.
    const reveal = await cli(w.db.url, ['source', 'show', w.sourceId, '--reveal-secret', '--json']);
    const control = occurrences(reveal.stdout, w.sourceSecret);
    const figures = {
      secrets: Object.keys(secrets).length,
      searched: Object.fromEntries(Object.entries(places).map(([k, v]) => [k, v.length])),
      searched_bytes: Object.values(places).reduce((n, v) => n + v.reduce((m, t) => m + t.length, 0), 0),
      hits: total,
      hits_by_place: hits,
      control_hits_in_reveal_secret: control,
      crashed_processes: w.cluster.crashed().length,
    };
    return {
      ...figures,
      seconds: round2((Date.now() - t0) / 1000),
      targets_met: total === 0 && control > 0 && figures.crashed_processes === 0,
    };
  } finally {
    await w.close();
  }
}

/** Plain, and as hex (PostgreSQL prints bytea columns as hex). */
function occurrences(text: string, secret: string): number {
  let n = 0;
  for (const needle of [secret, Buffer.from(secret).toString('hex')]) {
    for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + 1)) n++;
  }
  return n;
}

/** A sync with vendor faults, forwarded events, a cohort webhook, wrong secrets, a connection test. */
async function doWork(w: World, size: SecretsSize): Promise<void> {
  await syncRound(w, 120_000 + size.users * 20);
  const plan = planEvents(size.events, 0.05, w.random, 'sec');
  await sendEvents(w, plan, { batch: 50, senders: 2, users: w.users });
  await waitUntilForwarded(w, 120_000 + size.events * 10);
  const hook = `${w.cluster.url}/hooks/amplitude/cohorts/${w.sourceId}`;
  const message = JSON.stringify({
    cohort_id: COHORT,
    cohort_name: 'Reliability',
    in_cohort: true,
    computed_time: Math.floor(Date.now() / 1000),
    message_id: 'secrets-msg-1',
    users: [{ user_id: w.users[0] }],
  });
  const json = { 'content-type': 'application/json' };
  await call(hook, { method: 'POST', headers: { ...json, authorization: `Bearer ${w.sourceSecret}` }, body: message });
  // Wrong secrets: what a prober sends must not make the server echo the right one.
  await call(hook, { method: 'POST', headers: { ...json, authorization: 'Bearer wrong-secret' }, body: message });
  await call(`${w.cluster.url}/hooks/onesignal/events/${w.streamId}`, {
    method: 'POST',
    headers: { ...json, authorization: 'Bearer wrong-secret' },
    body: JSON.stringify(oneSignalEvent('wrong-secret-event', 'user-1')),
  });
  await api(w.cluster.url, `/destinations/${w.destinationId}/test`, 'POST', {});
}

/** Every listing and detail command, as text and as JSON, stdout and stderr. */
async function cliOutputs(w: World, env: Record<string, string>): Promise<string[]> {
  const runIds = (await w.ctx.store.db.selectFrom('runs').select('id').execute()).map((r) => r.id);
  const commands: string[][] = [
    ['source', 'list'],
    ['source', 'show', w.sourceId],
    ['destination', 'list'],
    ['destination', 'show', w.destinationId],
    ['destination', 'test', w.destinationId],
    ['cohort', 'list'],
    ['cohort', 'list', '--source', w.sourceId],
    ['sync', 'list'],
    ['sync', 'show', w.syncId],
    ['runs', 'list'],
    ...runIds.flatMap((id) => [
      ['runs', 'show', id],
      ['runs', 'records', id],
      ['runs', 'export', id, '--format', 'ndjson'],
    ]),
    ['stream', 'list'],
    ['stream', 'show', w.streamId],
    ['dead-letters', 'list'],
    ['alert', 'channel', 'list'],
    ['alert', 'channel', 'show', 'pager'],
    ['alert', 'channel', 'show', 'ops'],
    ['alert', 'list', '--all'],
  ];
  const all = commands.flatMap((c) => (c[1] === 'export' ? [c] : [c, [...c, '--json']]));
  const out: string[] = [];
  // Four at a time: each is a process start.
  let next = 0;
  const runner = async () => {
    while (next < all.length) {
      const r = await cli(w.db.url, all[next++]!, { env });
      out.push(r.stdout, r.stderr);
    }
  };
  await Promise.all(Array.from({ length: 4 }, runner));
  return out;
}

/** Every admin API read, for every object there is. */
async function apiAnswers(w: World): Promise<string[]> {
  const base = w.cluster.url;
  const paths = [
    '/openapi.json',
    '/destinations',
    `/destinations/${w.destinationId}`,
    '/cohorts',
    '/syncs',
    `/syncs/${w.syncId}`,
    `/syncs/${w.syncId}/runs`,
    '/streams',
    `/streams/${w.streamId}`,
    '/dead-letters',
  ];
  for (const r of await w.ctx.store.db.selectFrom('runs').select('id').execute())
    paths.push(`/runs/${r.id}`, `/runs/${r.id}/records`);
  const out: string[] = [];
  for (const p of paths) out.push(JSON.stringify((await api(base, p)).text));
  for (const p of ['/metrics', '/healthz']) out.push((await call(`${base}${p}`)).text);
  return out;
}

/** Signs in and crawls the UI from the overview, following its own links. */
async function uiPages(w: World, most: number): Promise<string[]> {
  const base = w.cluster.url;
  const login = await call(`${base}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base },
    body: `token=${encodeURIComponent(ADMIN_TOKEN)}&next=%2F`,
  });
  const setCookie = login.headers['set-cookie'];
  const cookie = (Array.isArray(setCookie) ? setCookie : [setCookie ?? '']).map((c) => c.split(';')[0]).join('; ');
  if (!cookie) throw new Error(`UI sign-in gave no cookie (${login.status})`);
  const out: string[] = [];
  const seen = new Set<string>(['/']);
  const queue = ['/'];
  while (queue.length && out.length < most) {
    const path = queue.shift()!;
    const page = await call(`${base}${path}`, { headers: { cookie } });
    out.push(page.text);
    for (const m of page.text.matchAll(/href="(\/[^"#]*)"/g)) {
      const link = m[1]!.replace(/&amp;/g, '&');
      if (link.startsWith('/assets/') || link === '/logout' || seen.has(link)) continue;
      seen.add(link);
      queue.push(link);
    }
  }
  if (out.length < 5) throw new Error(`the UI crawl reached only ${out.length} pages`);
  return out;
}

/** SQLite: the database file, its WAL and shared memory, byte for byte. PostgreSQL: every row of every table. */
async function databaseText(w: World, dialect: Dialect): Promise<string[]> {
  if (dialect === 'sqlite') {
    const file = w.db.url.replace(/^sqlite:/, '');
    const dir = dirname(file);
    return readdirSync(dir).map((f) => readFileSync(`${dir}/${f}`).toString('latin1'));
  }
  const schema = new URL(w.db.url).searchParams.get('schema')!;
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    const tables = await c.query<{ s: string; t: string }>(
      'SELECT table_schema AS s, table_name AS t FROM information_schema.tables WHERE table_schema = ANY($1) AND table_type = $2',
      [[schema, `${schema}_gw`], 'BASE TABLE'],
    );
    const out: string[] = [];
    for (const { s, t } of tables.rows) {
      const rows = await c.query<{ r: string }>(`SELECT x::text AS r FROM "${s}"."${t}" x`);
      out.push(rows.rows.map((r) => r.r).join('\n'));
    }
    return out;
  } finally {
    await c.end();
  }
}
