import { z } from 'zod';
import { NUL_PROBLEM, storable } from '../../store/text';
import { OneSignalClient } from './client';
import {
  DEFAULT_EXTERNAL_ID_PROPERTY,
  DEFAULT_MAX_TAGS_PER_USER,
  DEFAULT_TAG_KEY_TEMPLATE,
  MAX_PROPERTY_UPDATES_PER_REQUEST,
  ONESIGNAL_API_URL,
  TAG_KEY_PLACEHOLDER,
  USER_UPDATES_PER_SECOND_PER_APP,
} from './constants';
import { syncTags } from './sync-tags';
import { tagKeyProblem } from './tag-keys';

// A OneSignal App ID is a UUID (Settings > Keys & IDs); dashes are optional so a pasted id works.
const APP_ID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

export const oneSignalSettingsSchema = z.object({
  name: z.string().trim().min(1, 'a name is required').max(200, 'at most 200 characters').refine(storable, NUL_PROBLEM),
  app_id: z
    .string()
    .trim()
    .regex(
      APP_ID_RE,
      'must be a OneSignal App ID, a UUID such as 3f1c2b7e-0a4d-4c8e-9b1f-2d6e5a7c9b10 (Settings > Keys & IDs)',
    )
    .transform((s) => s.toLowerCase()),
  api_key: z
    .string()
    .trim()
    .min(1, 'the app API key is required (Settings > Keys & IDs)')
    .max(500, 'too long for an API key'),
  api_url: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL, e.g. https://api.onesignal.com' })
    .transform((s) => s.replace(/\/+$/, ''))
    .default(ONESIGNAL_API_URL),
  tag_key_template: z
    .string()
    .trim()
    .max(128, 'at most 128 characters')
    .superRefine((t, c) => {
      // One complaint at a time: the first rule broken is the one to fix.
      if (!t.includes(TAG_KEY_PLACEHOLDER))
        c.addIssue({ code: 'custom', message: `must contain ${TAG_KEY_PLACEHOLDER}` });
      else if (/\s/.test(t))
        c.addIssue({ code: 'custom', message: 'must not contain spaces (OneSignal tag keys cannot)' });
      else if (tagKeyProblem(t.split(TAG_KEY_PLACEHOLDER).join('1')))
        c.addIssue({ code: 'custom', message: 'would produce a restricted OneSignal tag key' });
    })
    .default(DEFAULT_TAG_KEY_TEMPLATE),
  external_id_property: z
    .string()
    .trim()
    .min(1, 'must not be empty')
    .max(200)
    .refine(storable, NUL_PROBLEM)
    .default(DEFAULT_EXTERNAL_ID_PROPERTY),
  max_tags_per_user: z
    .number()
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(MAX_PROPERTY_UPDATES_PER_REQUEST, `must be at most ${MAX_PROPERTY_UPDATES_PER_REQUEST}`)
    .default(DEFAULT_MAX_TAGS_PER_USER),
  // OneSignal documents 1,000 req/s per app; higher values are allowed for proxies and emulators.
  rate_limit_per_second: z
    .number()
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(100_000, 'must be at most 100000')
    .default(USER_UPDATES_PER_SECOND_PER_APP),
});

export type OneSignalSettings = z.output<typeof oneSignalSettingsSchema>;
export type OneSignalSettingsInput = z.input<typeof oneSignalSettingsSchema>;

/** A connector: its settings schema, a credential check and its actions (à la Segment action-destinations). */
export interface ConnectorDefinition<S, Actions> {
  id: string;
  name: string;
  description: string;
  settingsSchema: z.ZodType<S>;
  testAuthentication(settings: S): Promise<void>;
  actions: Actions;
}

function clientFor(
  s: Pick<OneSignalSettings, 'app_id' | 'api_key' | 'api_url' | 'rate_limit_per_second'>,
): OneSignalClient {
  return new OneSignalClient({
    appId: s.app_id,
    apiKey: s.api_key,
    apiUrl: s.api_url,
    rateLimitPerSecond: s.rate_limit_per_second,
  });
}

export const oneSignalDefinition = {
  id: 'onesignal',
  name: 'OneSignal',
  description:
    'Mirror cohort membership onto OneSignal users as data tags (by external_id), with one segment per cohort.',
  settingsSchema: oneSignalSettingsSchema,
  testAuthentication: (settings: OneSignalSettings) => clientFor(settings).testConnection(),
  actions: { syncTags },
} satisfies ConnectorDefinition<OneSignalSettings, Record<string, { title: string; description: string }>>;
