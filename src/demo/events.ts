import { startAmplitudeEmulator } from '../emulators/amplitude';
import { forwardStream } from '../events/forward';
import { createStream, streamCounters } from '../events/streams';
import { buildServer } from '../server/app';
import type { Context } from '../store';

/**
 * The events half of `ampsignal demo`: an Amplitude emulator and our server on ephemeral
 * loopback ports, a stream, a realistic burst of OneSignal events in both body shapes (with the
 * duplicates OneSignal's retries produce), forwarded, then read back from the emulator.
 */
export async function runEventsDemo(opts: { ctx: Context; log: (line: string) => void }): Promise<void> {
  const { ctx, log } = opts;
  const apiKey = 'demo-amplitude-key';
  const emu = await startAmplitudeEmulator({ projects: [{ apiKey, secretKey: 'demo-secret' }] });
  const app = await buildServer({ ctx });
  try {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    const { row, webhookSecret } = await createStream(ctx, {
      name: `demo-events-${Date.now().toString(36)}`,
      amplitudeApiKey: apiKey,
      amplitudeUrl: emu.url,
    });
    const url = `http://127.0.0.1:${port}/hooks/onesignal/events/${row.id}`;
    log(`events: stream ${row.id} receives at ${url}`);

    const burst = demoBurst(Date.now());
    for (const body of burst.requests) {
      const res = await fetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${webhookSecret}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      await res.arrayBuffer();
    }
    log(
      `events: posted ${burst.requests.length} requests (${burst.events} events, ${burst.duplicates} of them OneSignal-style retries; both the nested and the flat dotted shape)`,
    );

    const r = await forwardStream(ctx, row.id);
    const c = await streamCounters(ctx, row.id);
    log(
      `events: received ${c.received}, duplicates ${c.duplicates}, forwarded ${c.forwarded} in ${r.requests} Amplitude request(s), dead-lettered ${c.dead_lettered}, pending ${c.pending}`,
    );
    const stored = emu.events.list(apiKey);
    const byType = new Map<string, number>();
    for (const e of stored) byType.set(e.event_type, (byType.get(e.event_type) ?? 0) + 1);
    log(
      `events: Amplitude emulator now holds ${stored.length} events (${new Set(stored.map((e) => e.insert_id)).size} distinct insert_ids):`,
    );
    for (const [type, n] of [...byType].sort()) log(`  ${String(n).padStart(4)}  ${type}`);
    const sample = stored.find((e) =>
      Array.isArray((e.event_properties as Record<string, unknown> | undefined)?.amplitude_cohort_ids),
    );
    if (sample)
      log(
        `events: one as Amplitude sees it: ${JSON.stringify({ event_type: sample.event_type, user_id: sample.user_id, device_id: sample.device_id, insert_id: sample.insert_id, event_properties: sample.event_properties })}`,
      );
    if (c.dead_lettered > 0) log('events: see why with "ampsignal dead-letters list --json"');
  } finally {
    await app.close();
    await emu.close();
  }
}

/** A campaign's worth of events: push/email/SMS sends, receipts, opens and clicks, with retries. */
export function demoBurst(now: number, users = 40): { requests: unknown[]; events: number; duplicates: number } {
  const requests: unknown[] = [];
  let events = 0;
  let duplicates = 0;
  let seq = 0;
  const ts = Math.floor(now / 1000);
  for (let u = 0; u < users; u++) {
    const externalId = `user_${1000 + u}`;
    const tags = u % 3 === 0 ? { amp_cohort_power_users: '1', plan: 'pro' } : { plan: 'free' };
    const channel = (['push', 'email', 'sms'] as const)[u % 3]!;
    const kinds =
      channel === 'push'
        ? ['message.push.sent', 'message.push.received', ...(u % 2 ? ['message.push.clicked'] : [])]
        : channel === 'email'
          ? [
              'message.email.sent',
              'message.email.received',
              'message.email.opened',
              ...(u % 4 === 1 ? ['message.email.clicked'] : []),
            ]
          : ['message.sms.sent', 'message.sms.delivered'];
    const batch: unknown[] = [];
    for (const kind of kinds) {
      seq++;
      const id = `d3m0${String(seq).padStart(4, '0')}-5f1c-4e7a-9a4b-${String(u).padStart(12, '0')}`;
      const sub = `${channel}-sub-${String(u).padStart(4, '0')}-8c1e`;
      const nested = {
        event: {
          kind,
          id,
          timestamp: ts + seq,
          app_id: 'demo-app',
          subscription_device_type: channel === 'push' ? 'iOS' : channel === 'email' ? 'Email' : 'SMS',
          subscription_id: sub,
          onesignal_id: `os-${u}`,
          external_id: externalId,
        },
        message: {
          id: `msg-${channel}-1`,
          name: `Spring sale (${channel})`,
          title: channel === 'push' ? { en: 'Spring sale!' } : channel === 'email' ? 'Your spring discount' : '',
          template_id: `tpl-${channel}`,
        },
        user: { language: 'en', tags },
      };
      // Every fifth event arrives in OneSignal's flat dotted shape.
      const body =
        seq % 5 === 0
          ? {
              'event.kind': kind,
              'event.id': id,
              'event.timestamp': ts + seq,
              'event.subscription_id': sub,
              'event.external_id': externalId,
              'event.subscription_device_type': nested.event.subscription_device_type,
              'message.id': nested.message.id,
              'message.name': nested.message.name,
            }
          : nested;
      batch.push(body);
      events++;
      // OneSignal retries on slow answers: about one event in seven arrives twice.
      if (seq % 7 === 0) {
        requests.push(body);
        duplicates++;
        events++;
      }
    }
    requests.push(u % 2 ? batch : batch[0], ...(u % 2 ? [] : batch.slice(1)));
  }
  return { requests, events, duplicates };
}
