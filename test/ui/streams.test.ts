import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type AmplitudeEmulator, startAmplitudeEmulator } from '../../src/emulators/amplitude';
import { EVENT_STREAM_BODY_TEMPLATE } from '../../src/events/stream-template';
import { describeEachDialect } from '../helpers/db';
import { clipboardText, expectTablesFit, openUi, runBrowser, shot, type UiSession } from './harness';

const AMP_KEY = 'ui-stream-amp-key';

/** What OneSignal's Liquid does with the template: `{{ path }}` → the value (objects as JSON). */
function renderLiquid(template: string, values: Record<string, unknown>): string {
  return template.replace(/\{\{\s*([\w.]+)\s*\}\}/g, (_m, path: string) => {
    const v = path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], values);
    if (v === undefined || v === null) return '';
    return typeof v === 'object' ? JSON.stringify(v) : String(v);
  });
}

function oneSignalEvent(id: string, kind: string, externalId: string): Record<string, unknown> {
  return {
    event: {
      kind,
      id,
      timestamp: 1764680000,
      datetime: '2025-12-02T13:33:20Z',
      app_id: 'app-1',
      external_id: externalId,
    },
    message: { id: 'msg-1', name: 'Winter sale' },
    user: { external_id: externalId, tags: { plan: 'pro' } },
  };
}

it('the body template shown in the UI is the one in docs/onesignal-event-stream.md', () => {
  expect(readFileSync('docs/onesignal-event-stream.md', 'utf8')).toContain(
    `\`\`\`liquid\n${EVENT_STREAM_BODY_TEMPLATE}\n\`\`\``,
  );
});

describeEachDialect('web UI: event streams and dead letters', (db) => {
  let amp: AmplitudeEmulator;
  let ui: UiSession;

  beforeAll(async () => {
    if (!runBrowser) return;
    amp = await startAmplitudeEmulator({ projects: [{ apiKey: AMP_KEY, secretKey: 'unused-secret' }] });
    ui = await openUi(db().ctx);
  });
  afterAll(async () => {
    await ui?.close();
    await amp?.close();
  });

  it.skipIf(!runBrowser)(
    'adds a stream, receives events sent with the copied set-up, forwards them, replays a dead letter, pauses',
    async () => {
      const { page, base } = ui;
      await page.getByRole('link', { name: 'Streams', exact: true }).click();
      await page.getByRole('link', { name: 'Add event stream' }).click();
      await page.getByLabel('Name', { exact: true }).fill('Pushes');
      await page.getByLabel('Amplitude project API key').fill(AMP_KEY);
      await page.getByLabel('Event name overrides (optional)').fill('message.push.clicked');
      await page.getByLabel('HTTP V2 API URL (optional)').fill(amp.url);
      await page.getByRole('button', { name: 'Save stream' }).click();
      await page.getByText('"message.push.clicked": write KIND=NAME').waitFor();
      await page.getByLabel('Amplitude project API key').fill(AMP_KEY);
      await page.getByLabel('Event name overrides (optional)').fill('message.push.clicked=Push Opened');
      await page.getByRole('button', { name: 'Save stream' }).click();
      await page.getByRole('heading', { name: 'Stream: Pushes' }).waitFor();

      // The three things to paste into OneSignal, each copied with its button.
      await page.getByRole('button', { name: 'Copy URL' }).click();
      const url = await clipboardText(page);
      expect(url).toMatch(new RegExp(`^${base}/hooks/onesignal/events/str_[\\w-]+$`));
      await page.getByRole('button', { name: 'Copy Header' }).click();
      const header = await clipboardText(page);
      expect(header).toMatch(/^Authorization: Bearer \S{16,}$/);
      await page.getByText('Body (paste exactly)').click();
      await page.getByRole('button', { name: 'Copy Body' }).click();
      const template = await clipboardText(page);
      expect(template).toBe(EVENT_STREAM_BODY_TEMPLATE);
      await shot(page, `stream-created-${db().dialect}`);

      // OneSignal sending with them: the rendered template is accepted.
      const [hName, hValue] = header.split(': ') as [string, string];
      for (const [id, kind] of [
        ['ev-click', 'message.push.clicked'],
        ['ev-sent', 'message.push.sent'],
      ] as const) {
        const r = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', [hName]: hValue },
          body: renderLiquid(template, oneSignalEvent(id, kind, 'user-12345')),
        });
        expect(r.status).toBe(200);
      }

      // Amplitude refuses the second event once: it becomes a dead letter, the first is forwarded.
      amp.events.forceNext(400, {
        code: 400,
        error: 'Invalid field values',
        events_with_invalid_fields: { time: [1] },
      });
      await page.getByRole('button', { name: 'Forward pending now' }).click();
      await page.getByText('Forwarded 1; dead-lettered 1; 0 still pending.').waitFor();
      expect(amp.events.list(AMP_KEY).map((e) => e.event_type)).toEqual(['Push Opened']);
      const counter = (label: string) =>
        page
          .locator('dl.counters div', { has: page.getByText(label, { exact: true }) })
          .locator('dd')
          .textContent();
      expect(await counter('Received')).toBe('2');
      expect(await counter('Dead letters')).toBe('1');
      // A reload no longer shows the secret.
      expect(await page.locator('#stream-header').count()).toBe(0);

      await page.locator('dl.counters').getByRole('link', { name: '1' }).click();
      await page
        .getByRole('row', { name: /ev-sent/ })
        .getByText(/time/)
        .waitFor();
      await expectTablesFit(page);
      await shot(page, `dead-letters-${db().dialect}`);
      await page.getByRole('button', { name: 'Replay all 1' }).click();
      await page.getByText('1 dead letter(s) back in the outbox').waitFor();
      const row = await db()
        .ctx.store.db.selectFrom('stream_events')
        .select('status')
        .where('event_id', '=', 'ev-sent')
        .executeTakeFirstOrThrow();
      expect(row.status).toBe('pending');

      await page.getByRole('link', { name: '← The stream' }).click();
      await page.getByRole('button', { name: 'Forward pending now' }).click();
      await page.getByText('Forwarded 1; dead-lettered 0; 0 still pending.').waitFor();
      expect(await counter('Forwarded')).toBe('2');
      expect(await counter('Dead letters')).toBe('0');
      expect(amp.events.list(AMP_KEY).map((e) => e.event_type)).toEqual(['Push Opened', '[Onesignal] Push Delivered']);
      // The per-minute chart counts both events received and both forwarded within the hour.
      const chart = page.getByRole('img', { name: /^Events received and forwarded per minute/ });
      const summary = (await chart.getAttribute('aria-label')) ?? '';
      expect(summary).toContain('Received: 2 in all');
      expect(summary).toContain('Forwarded: 2 in all');
      expect(await chart.locator('polyline').count()).toBe(2);

      await page.getByRole('button', { name: 'Pause forwarding' }).click();
      await page.getByText('Forwarding paused').waitFor();
      // A rotated key Amplitude refuses: resume says so and the stream stays paused.
      await page.getByLabel('New Amplitude project API key').fill('not-a-project-key');
      await page.getByRole('button', { name: 'Save changes' }).click();
      await page.getByText('Changes saved.').waitFor();
      await page.getByRole('button', { name: 'Resume forwarding' }).click();
      await page
        .getByRole('alert')
        .getByText(/Amplitude still refuses the stream's API key/)
        .waitFor();
      await page
        .getByRole('row', { name: /Status/ })
        .getByText('paused', { exact: true })
        .waitFor();
      await page.getByLabel('New Amplitude project API key').fill(AMP_KEY);
      await page.getByLabel('Name', { exact: true }).fill('Pushes (prod)');
      await page.getByRole('button', { name: 'Save changes' }).click();
      await page.getByRole('heading', { name: 'Stream: Pushes (prod)' }).waitFor();
      await page.getByRole('button', { name: 'Resume forwarding' }).click();
      await page.getByText('Forwarding resumed: Amplitude accepted the key.').waitFor();
      // The overrides survive an edit that did not touch them.
      expect(await page.getByLabel('Event name overrides (optional)').inputValue()).toBe(
        'message.push.clicked=Push Opened',
      );
      await page.getByRole('link', { name: 'Streams', exact: true }).click();
      await expectTablesFit(page);
      await shot(page, `streams-${db().dialect}`);
      await page.getByRole('link', { name: 'Pushes (prod)' }).click();
      await page.getByRole('link', { name: 'Delete stream…' }).click();
      await page.getByRole('heading', { name: 'Delete stream Pushes (prod)?' }).waitFor();
      await page.getByRole('button', { name: 'Delete stream' }).click();
      await page.getByText('Stream "Pushes (prod)" deleted').waitFor();
      expect(await db().ctx.store.db.selectFrom('stream_events').select('id').execute()).toEqual([]);
      expect((await fetch(url, { method: 'POST', headers: { [hName]: hValue }, body: '{}' })).status).toBe(404);
      expect(ui.scriptErrors).toEqual([]);
    },
  );
});
