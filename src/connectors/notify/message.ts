/**
 * What every channel is told: one alert event, rendered per channel (JSON, Slack text, e-mail).
 * `id` is the notification's id, the same on every retry of it, so a receiver that saw a send
 * whose answer was lost can drop the repeat (webhooks get it as Idempotency-Key, e-mail as its
 * Message-ID).
 */
export type AlertEvent = 'opened' | 'resolved' | 'test';

export interface AlertMessage {
  id: string;
  event: AlertEvent;
  alert: {
    id: string;
    kind: string;
    condition: string;
    subject_id: string;
    title: string;
    message: string;
    /** The page in the web UI (from AMPSIGNAL_PUBLIC_URL), when one is configured. */
    link: string | null;
    details: Record<string, unknown>;
    opened_at: number;
    resolved_at: number | null;
  };
  sent_at: number;
}

const PREFIX: Record<AlertEvent, string> = { opened: 'ALERT', resolved: 'RESOLVED', test: 'TEST' };

/** One line: `[ALERT] Run held for approval: …`. */
export function headline(m: AlertMessage): string {
  return `[${PREFIX[m.event]}] ${m.alert.title}`;
}

function when(ms: number): string {
  return `${new Date(ms).toISOString().replace('T', ' ').slice(0, 19)} UTC`;
}

/** The alert's text as of this event: a resolved alert says it has cleared before what it was. */
function body(m: AlertMessage): string {
  return m.event === 'resolved' ? `This has cleared. It was: ${m.alert.message}` : m.alert.message;
}

/** The plain-text body (e-mail, and what chat tools show as a preview). */
export function plainText(m: AlertMessage): string {
  const lines = [headline(m), '', body(m)];
  if (m.alert.link) lines.push('', `Open: ${m.alert.link}`);
  lines.push('', `Opened ${when(m.alert.opened_at)}`);
  if (m.alert.resolved_at !== null) lines.push(`Resolved ${when(m.alert.resolved_at)}`);
  lines.push(`Condition: ${m.alert.condition}`, `Notification: ${m.id}`);
  return lines.join('\n');
}

// Slack's mrkdwn treats these three as control characters in text (api.slack.com "Formatting text").
const slackEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The body of a Slack-compatible incoming webhook: `text` is the one field every clone reads. */
export function slackBody(m: AlertMessage): { text: string } {
  const icon = m.event === 'resolved' ? ':white_check_mark:' : m.event === 'test' ? ':wave:' : ':rotating_light:';
  const lines = [`${icon} *${slackEscape(headline(m))}*`, slackEscape(body(m))];
  if (m.alert.link) lines.push(`<${m.alert.link}|Open in ampsignal>`);
  return { text: lines.join('\n') };
}

/** A sample message for `alert test`: the shape of a real one, marked as a test. */
export function sampleMessage(channelName: string, id: string, now = Date.now()): AlertMessage {
  return {
    id,
    event: 'test',
    alert: {
      id: 'test',
      kind: 'test',
      condition: 'test',
      subject_id: 'test',
      title: `Test alert from ampsignal to "${channelName}"`,
      message: `This is a sample alert. Channel "${channelName}" works: real alerts (failed or held runs, paused destinations and streams, dead letters, download budget, silent real-time syncs, read-back drift) will arrive here.`,
      link: null,
      details: {},
      opened_at: now,
      resolved_at: null,
    },
    sent_at: now,
  };
}
