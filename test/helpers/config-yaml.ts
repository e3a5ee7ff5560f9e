/**
 * The configuration file the config tests share: one Amplitude source, one OneSignal destination
 * on it, one sync of a cohort, and optionally an event stream. Keys are `${VAR}` references, as a
 * user's file would hold them; each test names its own variables so no secret is shared.
 */
export interface ConfigYaml {
  amplitudeUrl: string;
  onesignalUrl: string;
  appId: string;
  /** Names of the environment variables holding the keys. */
  vars: { ampKey: string; ampSecret: string; osKey: string };
  cohort: string;
  cadence?: string;
  /** rate_limit_per_second of the destination; the default when absent. */
  rate?: number;
  stream?: { keyVar: string };
  /** Lines appended to the sync's entry. */
  syncExtra?: string;
}

export function configYaml(c: ConfigYaml): string {
  const rate = c.rate === undefined ? '' : `\n    rate_limit_per_second: ${c.rate}`;
  const stream = c.stream
    ? `streams:
  - name: events
    amplitude_api_key: \${${c.stream.keyVar}}
    amplitude_url: ${c.amplitudeUrl}
    event_names:
      message.push.sent: Push Sent
`
    : '';
  const cadence = c.cadence ? `\n    cadence: ${c.cadence}` : '';
  return `version: 1
sources:
  - name: Production
    api_key: \${${c.vars.ampKey}}
    secret_key: \${${c.vars.ampSecret}}
    api_url: ${c.amplitudeUrl}
destinations:
  - name: Main app
    app_id: ${c.appId}
    api_key: \${${c.vars.osKey}}
    source: Production
    api_url: ${c.onesignalUrl}${rate}
${stream}syncs:
  - cohort: ${c.cohort}
    destination: Main app${cadence}
${c.syncExtra ?? ''}`;
}
