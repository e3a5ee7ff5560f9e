/**
 * ingest: OneSignal events per second our receiver accepts durably (validated, mapped, stored in
 * the SQLite outbox, acknowledged), beside a bare node:http server answering 200 to the same
 * load in the same run; the load comes from a separate process for both. ratio = ours / bare (target ≥ 0.5). Bodies are realistic single events
 * in the README template's shape, each with a fresh event id.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createStream } from '../src/events/streams';
import { buildServer } from '../src/server/app';
import { openContext } from '../src/store';
import { againstBareServer, loadFromProcess, type LoadResult } from './load';

const SENDERS = join(dirname(fileURLToPath(import.meta.url)), 'ingest.senders.mjs');

const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 5);
const CONNECTIONS = 32;

/** ingest.senders.mjs builds the bodies; the bare baseline gets the same load. */
function load(url: string, headers: Record<string, string>): Promise<LoadResult> {
  const allHeaders = { 'content-type': 'application/json', ...headers };
  return loadFromProcess(SENDERS, [url, String(CONNECTIONS), String(DURATION_S), JSON.stringify(allHeaders)], DURATION_S);
}

export async function run(): Promise<Record<string, unknown>> {
  const bareResult = await againstBareServer('{"accepted":1}', (url) => load(url, {}));

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
