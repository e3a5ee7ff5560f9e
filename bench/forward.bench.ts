/**
 * forward: events per Amplitude request under sustained load (target ≥ 1,000; counted over the
 * rounds that started while webhooks were still arriving, the final drain reported apart) and end-to-end
 * events per second (webhook → outbox → Amplitude emulator), while events keep arriving.
 * ratio = events per request / 1,000 (the target). Baseline beside it in the same run: Amplitude's
 * own SDK default batch (flushQueueSize 200) posting the same events straight to the emulator.
 */
import { buildBody } from '../src/connectors/amplitude/httpapi';
import { httpRequest } from '../src/connectors/http';
import { startAmplitudeEmulator } from '../src/emulators/amplitude';
import { forwardStream } from '../src/events/forward';
import { createStream } from '../src/events/streams';
import { buildServer } from '../src/server/app';
import { AS_SERVE, type BenchDialect, openBenchContext } from './db';

const EVENTS = Number(process.env.BENCH_FORWARD_EVENTS ?? 20_000);
const PER_REQUEST = 50;

function body(n: number) {
  return {
    event: {
      kind: 'message.push.received',
      id: `fwd-${n}`,
      timestamp: 1708559115 + (n % 1000),
      subscription_device_type: 'Android',
      subscription_id: `sub-${n}-6f1d2c3b`,
      external_id: `user_${n}`,
    },
    message: { id: 'msg-1', name: 'Spring sale', template_id: 'tpl-1' },
    user: { language: 'en', tags: { amp_cohort_c1: '1' } },
  };
}

export async function run(dialect: BenchDialect): Promise<Record<string, unknown>> {
  const apiKey = 'bench-key';
  process.env.AMPSIGNAL_SECRET_KEY ??= `${'0'.repeat(63)}1`;
  const emu = await startAmplitudeEmulator({ projects: [{ apiKey, secretKey: 's' }] });
  const bench = await openBenchContext(dialect, 'forward', { ...AS_SERVE, checkpointThread: true }).catch(async (e) => {
    await emu.close();
    throw e;
  });
  const ctx = bench.ctx;
  try {
    const { row, webhookSecret } = await createStream(ctx, {
      name: 'bench',
      amplitudeApiKey: apiKey,
      amplitudeUrl: emu.url,
    });
    const app = await buildServer({ ctx });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/hooks/onesignal/events/${row.id}`;

    const start = Date.now();
    let posting = true;
    const poster = (async () => {
      const lanes = 8;
      let next = 0;
      await Promise.all(
        Array.from({ length: lanes }, async () => {
          while (next < EVENTS) {
            const first = next;
            next += PER_REQUEST;
            const events = Array.from({ length: Math.min(PER_REQUEST, EVENTS - first) }, (_, i) => body(first + i));
            await fetch(url, {
              method: 'POST',
              headers: { authorization: `Bearer ${webhookSecret}`, 'content-type': 'application/json' },
              body: JSON.stringify(events),
            });
          }
        }),
      );
      posting = false;
    })();
    let requests = 0;
    let forwarded = 0;
    // Events per request is judged over the sustained part (rounds started while events were
    // still arriving); the drain after the last webhook necessarily sends a partial batch.
    let sustainedRequests = 0;
    let sustainedForwarded = 0;
    // The forwarder loops as a worker would while webhooks keep arriving.
    while (posting || forwarded < EVENTS) {
      const sustained = posting;
      const r = await forwardStream(ctx, row.id, sustained ? { lingerMs: 1_000 } : {});
      requests += r.requests;
      forwarded += r.forwarded;
      if (sustained) {
        sustainedRequests += r.requests;
        sustainedForwarded += r.forwarded;
      }
      if (r.requests === 0) await new Promise((res) => setTimeout(res, 20));
      if (Date.now() - start > 300_000) throw new Error('forward bench did not finish in 5 minutes');
    }
    await poster;
    const elapsed = (Date.now() - start) / 1000;
    await app.close();

    // Baseline: the same number of events posted straight to the emulator, 200 per request.
    emu.reset();
    const sdkBatch = 200;
    const serialized = Array.from({ length: EVENTS }, (_, n) =>
      JSON.stringify({
        event_type: 'x',
        user_id: `user_${n}`,
        device_id: `sub-${n}-6f1d2c3b`,
        insert_id: `b-${n}`,
        time: Date.now(),
      }),
    );
    const t0 = Date.now();
    for (let i = 0; i < EVENTS; i += sdkBatch) {
      await httpRequest(`${emu.url}/2/httpapi`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: buildBody(apiKey, serialized.slice(i, i + sdkBatch)),
      });
    }
    const baselineEps = EVENTS / ((Date.now() - t0) / 1000);

    const perRequest = sustainedForwarded / Math.max(1, sustainedRequests);
    return {
      bench: 'forward',
      events_per_request: Math.round(perRequest),
      target_events_per_request: 1000,
      ratio: Number((perRequest / 1000).toFixed(3)),
      end_to_end_events_per_s: Math.round(EVENTS / elapsed),
      events_per_request_overall: Math.round(forwarded / Math.max(1, requests)),
      amplitude_requests: requests,
      sustained_requests: sustainedRequests,
      sdk_default_batch_direct_events_per_s: Math.round(baselineEps),
      events: EVENTS,
    };
  } finally {
    await bench.close();
    await emu.close();
  }
}
