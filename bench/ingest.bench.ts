/**
 * ingest: OneSignal events per second our receiver accepts durably (validated, mapped, stored in
 * the SQLite outbox, acknowledged), beside a bare node:http server answering 200 to the same
 * load in the same run. ratio = ours / bare (target ≥ 0.5). Bodies are realistic single events
 * in the README template's shape, each with a fresh event id.
 */
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { createStream } from '../src/events/streams';
import { buildServer } from '../src/server/app';
import { openContext } from '../src/store';

// autocannon ships no types; the little used here is typed by hand.
interface LoadResult {
  requests: { total: number };
  latency: { p99: number };
  non2xx: number;
  errors: number;
}
type Req = { body?: string } & Record<string, unknown>;
const autocannon = createRequire(import.meta.url)('autocannon') as (opts: Record<string, unknown>) => Promise<LoadResult>;

const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 5);
const CONNECTIONS = 32;

function eventBody(n: number): string {
  return JSON.stringify({
    event: {
      kind: n % 3 ? 'message.push.received' : 'message.push.clicked',
      id: `7c1e${n.toString(16).padStart(4, '0')}-2b1a-4c8e-9f00-${String(n).padStart(12, '0')}`,
      timestamp: 1708559115 + n,
      datetime: '2024-02-21T23:45:15.228Z',
      app_id: '5eb5a37e-b458-11e3-ac11-000c2940e62c',
      subscription_device_type: 'iOS',
      subscription_id: `a5b8e0c2-1d3f-4a6b-8c9d-${String(n % 5000).padStart(12, '0')}`,
      onesignal_id: `0f9a1b2c-3d4e-4f5a-8b6c-${String(n % 5000).padStart(12, '0')}`,
      external_id: `user_${n % 5000}`,
      data: { failure_reason: '', page_name: '', page_id: '', target_name: '', target_id: '', live_activity_id: '', live_activity_type: '' },
    },
    message: { id: 'b1c2d3e4-0000-4000-8000-000000000001', name: 'Spring sale', template_id: 'tpl-1', url: 'https://example.com/sale' },
    user: { external_id: `user_${n % 5000}`, onesignal_id: '', language: 'en', tags: { plan: 'pro', amp_cohort_c1: '1', first_seen: '2023-10-01' } },
  });
}

async function load(url: string, headers: Record<string, string>): Promise<LoadResult> {
  let n = 0;
  return autocannon({
    url,
    method: 'POST',
    connections: CONNECTIONS,
    duration: DURATION_S,
    headers: { 'content-type': 'application/json', ...headers },
    requests: [{ setupRequest: (req: Req) => ({ ...req, body: eventBody(n++) }) }],
  });
}

export async function run(): Promise<Record<string, unknown>> {
  const bare = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"accepted":1}');
    });
  });
  await new Promise<void>((r) => bare.listen(0, '127.0.0.1', () => r()));
  const bareAddr = bare.address() as { port: number };
  const bareResult = await load(`http://127.0.0.1:${bareAddr.port}/`, {});
  await new Promise((r) => bare.close(r));

  const dir = mkdtempSync(join(tmpdir(), 'ampsignal-bench-'));
  process.env.AMPSIGNAL_SECRET_KEY ??= '0'.repeat(63) + '1';
  const ctx = await openContext({ db: `sqlite:${join(dir, 'bench.db')}`, migrate: 'auto' });
  try {
    const { row, webhookSecret } = await createStream(ctx, { name: 'bench', amplitudeApiKey: 'k', amplitudeUrl: 'http://127.0.0.1:9' });
    const app = await buildServer({ ctx });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as { port: number }).port;
    const ours = await load(`http://127.0.0.1:${port}/hooks/onesignal/events/${row.id}`, { authorization: `Bearer ${webhookSecret}` });
    await app.close();
    const stored = await ctx.store.db
      .selectFrom('stream_events')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('stream_id', '=', row.id)
      .executeTakeFirstOrThrow();
    const accepted = Number(stored.n);
    const oursEps = accepted / DURATION_S;
    const bareRps = bareResult.requests.total / DURATION_S;
    return {
      bench: 'ingest',
      events_per_s: Math.round(oursEps),
      bare_http_per_s: Math.round(bareRps),
      ratio: Number((oursEps / bareRps).toFixed(3)),
      target_ratio: 0.5,
      p99_ack_ms: ours.latency.p99,
      bare_p99_ms: bareResult.latency.p99,
      non_2xx: ours.non2xx,
      errors: ours.errors,
      stored: accepted,
      connections: CONNECTIONS,
      duration_s: DURATION_S,
      database: 'sqlite',
    };
  } finally {
    await ctx.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
