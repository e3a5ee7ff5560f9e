/**
 * webhook_ack: p99 time to acknowledge a 1,000-user Amplitude cohort webhook (authenticated,
 * validated, stored durably in the inbox, 200 sent) under 50 concurrent senders, beside
 * the same load against a bare node:http server that reads the body and answers 200, in the same
 * run, in alternating rounds. ratio = median over rounds of our p99 / bare p99. Target: p99 < 50 ms. Every request carries a fresh message_id
 * (duplicates would take the cheaper dedupe path).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addSource } from '../src/app/sources';
import { buildServer } from '../src/server/app';
import { AS_SERVE, type BenchDialect, openBenchContext } from './db';
import { againstBareServer, alternate, type LoadResult, loadFromProcess, median } from './load';

const SENDERS = join(dirname(fileURLToPath(import.meta.url)), 'webhook_ack.senders.mjs');

const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = 50;
const USERS = 1000;
const TARGET_P99_MS = 50;

// The payload of Amplitude's default template, with two selected user properties per user.
const users = JSON.stringify(
  Array.from({ length: USERS }, (_, i) => ({
    user_id: `user-${String(i).padStart(6, '0')}@example.com`,
    user_properties: { city: 'Paris', plan: i % 2 ? 'pro' : 'free' },
  })),
);
const body = `{"cohort_name":"Bench cohort","cohort_id":"bench01","in_cohort":true,"computed_time":"1700000000","message_id":"bench-[<id>]::enter::0","users":${users}}`;

/**
 * The senders run in their own process (webhook_ack.senders.mjs), as Amplitude's do on its
 * machines: building 87 kB bodies and reading answers must not queue on the server's event loop.
 * `[<id>]` in the body becomes a fresh id per request, so every message is new.
 */
function load(url: string, headers: Record<string, string>, bodyFile: string): Promise<LoadResult> {
  const allHeaders = { 'content-type': 'application/json', 'user-agent': 'Amplitude/Webhook/1.0', ...headers };
  return loadFromProcess(
    SENDERS,
    [url, bodyFile, String(CONNECTIONS), String(DURATION_S), JSON.stringify(allHeaders)],
    DURATION_S,
  );
}

export async function run(dialect: BenchDialect): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'ampsignal-bench-'));
  const bodyFile = join(dir, 'body.json');
  writeFileSync(bodyFile, body);
  process.env.AMPSIGNAL_SECRET_KEY ??= `${'0'.repeat(63)}1`;
  const bench = await openBenchContext(dialect, 'webhook_ack', { ...AS_SERVE, checkpointThread: true });
  const ctx = bench.ctx;
  try {
    const source = await addSource(ctx, {
      name: 'bench',
      api_key: 'k',
      secret_key: 's',
      api_url: 'http://127.0.0.1:9',
    });
    const app = await buildServer({ ctx });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as { port: number }).port;
    const rounds = await alternate(
      ROUNDS,
      () => againstBareServer('{"ok":true}', (url) => load(url, {}, bodyFile)),
      () =>
        load(
          `http://127.0.0.1:${port}${source.webhook_path}`,
          { authorization: `Bearer ${source.webhook_secret}` },
          bodyFile,
        ),
    ).finally(() => app.close());
    const stored = await ctx.store.db
      .selectFrom('webhook_inbox')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('source_id', '=', source.id)
      .executeTakeFirstOrThrow();
    const p99 = median(rounds.map((r) => r.ours.latency.p99));
    return {
      bench: 'webhook_ack',
      p99_ms: p99,
      bare_p99_ms: median(rounds.map((r) => r.baseline.latency.p99)),
      ratio: Number(median(rounds.map((r) => r.ours.latency.p99 / Math.max(1, r.baseline.latency.p99))).toFixed(2)),
      target_p99_ms: TARGET_P99_MS,
      meets_target: p99 < TARGET_P99_MS,
      p99_rounds_ms: rounds.map((r) => r.ours.latency.p99),
      bare_p99_rounds_ms: rounds.map((r) => r.baseline.latency.p99),
      p50_ms: median(rounds.map((r) => r.ours.latency.p50)),
      acked_per_s: rounds.map((r) => Math.round(r.ours.requests.total / DURATION_S)),
      bare_per_s: rounds.map((r) => Math.round(r.baseline.requests.total / DURATION_S)),
      stored: Number(stored.n),
      non_2xx: rounds.reduce((n, r) => n + r.ours.non2xx, 0),
      errors: rounds.reduce((n, r) => n + r.ours.errors, 0),
      users_per_message: USERS,
      body_bytes: Buffer.byteLength(body),
      connections: CONNECTIONS,
      rounds: ROUNDS,
      duration_s: DURATION_S,
    };
  } finally {
    await bench.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
