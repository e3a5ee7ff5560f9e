import { AmpError } from '../../errors';
import { VERSION } from '../../telemetry/version';
import { httpRequest, parseRetryAfter } from '../http';
import { type AlertMessage, slackBody } from './message';

/** A receiver that has not answered in this long is down for this try; the retry policy takes over. */
export const WEBHOOK_TIMEOUT_MS = 10_000;

/**
 * Where an answer becomes a catalogue error. The receiver's URL is never part of a message (it
 * carries the token); its answer is, shortened, since it says why (Slack: `invalid_token`,
 * `no_service`, `channel_is_archived`).
 */
export function answerError(what: string, status: number, text: string, retryAfter?: string | string[]): AmpError {
  const said = text.replace(/\s+/g, ' ').trim().slice(0, 300);
  const message = `${what} answered ${status}${said ? `: ${said}` : ''}`;
  if (status === 429) {
    const retryAfterMs = parseRetryAfter(retryAfter);
    return new AmpError('rate_limited', message, { status, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });
  }
  if (status === 408 || status >= 500) return new AmpError('vendor_unavailable', message, { status });
  if (status === 401 || status === 403) return new AmpError('vendor_auth', message, { status });
  return new AmpError('vendor_rejected', message, { status });
}

async function postJson(what: string, url: string, body: unknown, id: string, signal?: AbortSignal): Promise<void> {
  const res = await httpRequest(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'user-agent': `ampsignal/${VERSION}`,
      // Same on every retry of one notification: a receiver can drop a repeat.
      'idempotency-key': id,
    },
    body: JSON.stringify(body),
    timeoutMs: WEBHOOK_TIMEOUT_MS,
    ...(signal ? { signal } : {}),
  });
  if (res.status >= 200 && res.status < 300) return;
  throw answerError(what, res.status, res.text, res.headers['retry-after']);
}

/** A generic JSON webhook: the AlertMessage as it is. */
export function sendWebhook(url: string, m: AlertMessage, signal?: AbortSignal): Promise<void> {
  return postJson('the webhook', url, m, m.id, signal);
}

/** A Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat, Discord's /slack URL). */
export function sendSlack(url: string, m: AlertMessage, signal?: AbortSignal): Promise<void> {
  return postJson('the Slack webhook', url, slackBody(m), m.id, signal);
}
