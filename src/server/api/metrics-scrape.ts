import { Gauge, Registry } from 'prom-client';
import { countOutbox } from '../../events/streams';
import type { Context } from '../../store';
import { registry } from '../../telemetry/metrics';

// State that lives in the database (pending rows, dead letters, runs) is read at scrape time, so
// every `serve` process reports the same numbers no matter which worker did the work.

/** Reads the database-backed gauges into a fresh registry (one scrape, no shared state). */
async function databaseGauges(ctx: Context): Promise<Registry> {
  const reg = new Registry();
  const db = ctx.store.db;
  const [pending, outboxPendingBy, deadBy, runs, destinations] = await Promise.all([
    db
      .selectFrom('ledger')
      .select(['destination_id', (eb) => eb.fn.countAll().as('n')])
      .whereRef('desired', '<>', 'confirmed')
      .groupBy('destination_id')
      .execute(),
    countOutbox(ctx, { status: 'pending' }),
    countOutbox(ctx, { status: 'dead' }),
    db
      .selectFrom('runs')
      .select(['status', (eb) => eb.fn.countAll().as('n')])
      .groupBy('status')
      .execute(),
    db.selectFrom('destinations').select(['id', 'status']).execute(),
  ]);

  const ledgerPending = new Gauge({
    name: 'ampsignal_ledger_pending_rows',
    help: 'Ledger rows whose desired tag state OneSignal has not confirmed yet, per destination',
    labelNames: ['destination_id'] as const,
    registers: [reg],
  });
  for (const r of pending) ledgerPending.set({ destination_id: r.destination_id }, Number(r.n));

  const outboxPending = new Gauge({
    name: 'ampsignal_outbox_pending_events',
    help: 'Accepted OneSignal events not yet forwarded to Amplitude, per stream',
    labelNames: ['stream_id'] as const,
    registers: [reg],
  });
  const deadLetters = new Gauge({
    name: 'ampsignal_dead_letters',
    help: 'Events Amplitude refused for good (dead letters), per stream',
    labelNames: ['stream_id'] as const,
    registers: [reg],
  });
  for (const [stream_id, n] of outboxPendingBy) outboxPending.set({ stream_id }, n);
  for (const [stream_id, n] of deadBy) deadLetters.set({ stream_id }, n);

  const runsByStatus = new Gauge({
    name: 'ampsignal_runs',
    help: 'Sync runs in the run history, by status',
    labelNames: ['status'] as const,
    registers: [reg],
  });
  for (const r of runs) runsByStatus.set({ status: r.status }, Number(r.n));

  const destinationPaused = new Gauge({
    name: 'ampsignal_destination_paused',
    help: '1 when a destination is paused (e.g. OneSignal refused its key), else 0',
    labelNames: ['destination_id'] as const,
    registers: [reg],
  });
  for (const d of destinations) destinationPaused.set({ destination_id: d.id }, d.status === 'paused' ? 1 : 0);

  return reg;
}

/** The Prometheus text exposition: this process's counters plus the database gauges. */
export async function scrapeMetrics(ctx: Context): Promise<{ contentType: string; body: string }> {
  const merged = Registry.merge([registry, await databaseGauges(ctx)]);
  return { contentType: registry.contentType, body: await merged.metrics() };
}
