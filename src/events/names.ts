/**
 * OneSignal Event Streams `event.kind` → Amplitude `event_type`, named exactly as OneSignal's own
 * Amplitude export names them, so dashboards built on the native integration keep working.
 * Source: https://documentation.onesignal.com/docs/en/amplitude (event table; reference §9.4).
 * The pairing of export rows to stream kinds is by name ([S] in the reference: OneSignal does
 * not publish it), e.g. "Push Sent" = `message.push.sent`. Note the export's own wording:
 * "Sent" becomes "…Delivered" and "Received" becomes "…Confirmed delivery".
 */
export const NATIVE_EVENT_NAMES: Readonly<Record<string, string>> = {
  'message.push.sent': '[Onesignal] Push Delivered',
  'message.push.received': '[Onesignal] Push Confirmed delivery',
  'message.push.clicked': '[Onesignal] Push Clicked',
  'message.push.failed': '[Onesignal] Push Failed',
  'message.push.unsubscribed': '[Onesignal] Push Unsubscribed',
  'message.iam.impression': '[Onesignal] IAM Displayed',
  'message.iam.clicked': '[Onesignal] IAM Clicked',
  'message.iam.page_displayed': '[Onesignal] IAM Page Displayed',
  'message.email.sent': '[Onesignal] Email Delivered',
  'message.email.received': '[Onesignal] Email Confirmed delivery',
  'message.email.opened': '[Onesignal] Email Opened',
  'message.email.clicked': '[Onesignal] Email Clicked',
  'message.email.unsubscribed': '[Onesignal] Email Unsubscribed',
  'message.email.reported_as_spam': '[Onesignal] Email Reported as SPAM',
  'message.email.bounced': '[Onesignal] Email Hard bounced',
  'message.email.failed': '[Onesignal] Email Failed delivery',
  'message.email.suppressed': '[Onesignal] Email Not delivering to suppressed email address',
  'message.sms.sent': '[Onesignal] SMS Delivered',
  'message.sms.failed': '[Onesignal] SMS Failed delivery',
  'message.sms.delivered': '[Onesignal] SMS Confirmed delivery',
  // The export names SMS Undelivered the same as SMS Failed (per OneSignal's docs).
  'message.sms.undelivered': '[Onesignal] SMS Failed delivery',
};

/**
 * Kinds Event Streams emit that the native export has no row for: named by us in the same
 * style ("sent" → Delivered, "delivered" → Confirmed delivery) so they sort beside their
 * siblings in Amplitude. `dismissed` is [U]: mentioned on the overview page, absent from the
 * kind table; mapped in case it appears.
 */
export const EXTRA_EVENT_NAMES: Readonly<Record<string, string>> = {
  'message.live_activity.sent': '[Onesignal] Live Activity Delivered',
  'message.live_activity.delivered': '[Onesignal] Live Activity Confirmed delivery',
  'message.live_activity.unsubscribed': '[Onesignal] Live Activity Unsubscribed',
  'message.live_activity.failed': '[Onesignal] Live Activity Failed',
  'message.live_activity.clicked': '[Onesignal] Live Activity Clicked',
  'message.push.dismissed': '[Onesignal] Push Dismissed',
  'message.iam.dismissed': '[Onesignal] IAM Dismissed',
};

// Maps, not objects: a kind is whatever a webhook sends, and `constructor`, `toString` or
// `__proto__` would find Object.prototype's members in a plain object.
export const DEFAULT_EVENT_NAMES: ReadonlyMap<string, string> = new Map(
  Object.entries({ ...NATIVE_EVENT_NAMES, ...EXTRA_EVENT_NAMES }),
);

/**
 * Kinds OneSignal's documentation spells two ways in different versions, each → the spelling of
 * the kind table (reference §7.2), so both become the same Amplitude event.
 */
export const KIND_SPELLINGS: ReadonlyMap<string, string> = new Map([
  ['message.iam.displayed', 'message.iam.impression'],
  ['message.iam.pagedisplayed', 'message.iam.page_displayed'],
  ['message.email.hardbounced', 'message.email.bounced'],
  ['message.email.supressed', 'message.email.suppressed'],
]);

/** The kind as the kind table spells it. */
export function canonicalKind(kind: string): string {
  return KIND_SPELLINGS.get(kind) ?? kind;
}

/** A stream's override for a kind: its own property only, and only a name. */
function overrideFor(overrides: Readonly<Record<string, string>> | null | undefined, kind: string): string | undefined {
  if (!overrides || !Object.hasOwn(overrides, kind)) return undefined;
  const name = overrides[kind];
  return typeof name === 'string' && name.length > 0 ? name : undefined;
}

/**
 * The Amplitude event type for a kind: the stream's override (for the spelling received, else the
 * table's spelling), else the default table, else a generic `[Onesignal] <kind>` so an unknown
 * (new) kind is still forwarded, never lost.
 */
export function eventTypeFor(kind: string, overrides?: Readonly<Record<string, string>> | null): string {
  const canonical = canonicalKind(kind);
  return (
    overrideFor(overrides, kind) ??
    overrideFor(overrides, canonical) ??
    DEFAULT_EVENT_NAMES.get(canonical) ??
    `[Onesignal] ${kind}`
  );
}

/** `message.push.clicked` → `push`; the channel segment, or undefined for an unexpected shape. */
export function channelOf(kind: string): string | undefined {
  const m = /^message\.([a-z_]+)\./.exec(kind);
  return m?.[1];
}

// The native export's `message_type` values (push / in-app / email / SMS), reference §9.5.
export const MESSAGE_TYPES: ReadonlyMap<string, string> = new Map([
  ['push', 'push'],
  ['iam', 'in-app'],
  ['email', 'email'],
  ['sms', 'SMS'],
  ['live_activity', 'live activity'],
]);
