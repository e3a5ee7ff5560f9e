/**
 * ingest: OneSignal events per second our receiver accepts durably (validated, mapped, stored in
 * the outbox, acknowledged), beside a bare node:http server answering 200 to the same
 * load in the same run, in alternating rounds; the load comes from a separate process for both.
 * ratio = median over rounds of ours / bare (target ≥ 0.5). Bodies are realistic single events
 * in the README template's shape, each with a fresh event id.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createStream } from '../src/events/streams';
import { buildServer } from '../src/server/app';
import { AS_SERVE, type BenchDialect, openBenchContext } from './db';
import { againstBareServer, alternate, type LoadResult, loadFromProcess, median } from './load';

const SENDERS = join(dirname(fileURLToPath(import.meta.url)), 'ingest.senders.mjs');

const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = 32;

/** ingest.senders.mjs builds the bodies; the bare baseline gets the same load. */
function load(url: string, headers: Record<string, string>): Promise<LoadResult> {
  const allHeaders = { 'content-type': 'application/json', ...headers };
  return loadFromProcess(
    SENDERS,
    [url, String(CONNECTIONS), String(DURATION_S), JSON.stringify(allHeaders)],
    DURATION_S,
  );
}

export async function run(dialect: BenchDialect): Promise<Record<string, unknown>> {
  process.env.AMPSIGNAL_SECRET_KEY ??= `${'0'.repeat(63)}1`;
  const bench = await openBenchContext(dialect, 'ingest', { ...AS_SERVE, checkpointThread: true });
  const ctx = bench.ctx;
  try {
    const { row, webhookSecret } = await createStream(ctx, {
      name: 'bench',
      amplitudeApiKey: 'k',
      amplitudeUrl: 'http://127.0.0.1:9',
    });
    const app = await buildServer({ ctx });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as { port: number }).port;
    const stored = async () =>
      Number(
        (
          await ctx.store.db
            .selectFrom('stream_events')
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .where('stream_id', '=', row.id)
            .executeTakeFirstOrThrow()
        ).n,
      );
    const rounds = await alternate(
      ROUNDS,
      () => againstBareServer('{"accepted":1}', (url) => load(url, {})),
      async () => {
        const before = await stored();
        const r = await load(`http://127.0.0.1:${port}/hooks/onesignal/events/${row.id}`, {
          authorization: `Bearer ${webhookSecret}`,
        });
        // Counted in the outbox, not from the answers: what was accepted durably.
        return { ...r, stored: (await stored()) - before };
      },
    ).finally(() => app.close());
    const oursEps = rounds.map((r) => r.ours.stored / DURATION_S);
    const bareRps = rounds.map((r) => r.baseline.requests.total / DURATION_S);
    return {
      bench: 'ingest',
      events_per_s: oursEps.map(Math.round),
      bare_http_per_s: bareRps.map(Math.round),
      ratio: Number(median(oursEps.map((o, i) => o / bareRps[i]!)).toFixed(3)),
      target_ratio: '>= 0.5 (median of rounds)',
      p99_ack_ms: rounds.map((r) => r.ours.latency.p99),
      bare_p99_ms: rounds.map((r) => r.baseline.latency.p99),
      non_2xx: rounds.reduce((n, r) => n + r.ours.non2xx, 0),
      errors: rounds.reduce((n, r) => n + r.ours.errors, 0),
      connections: CONNECTIONS,
      rounds: ROUNDS,
      duration_s: DURATION_S,
    };
  } finally {
    await bench.close();
  }
}
