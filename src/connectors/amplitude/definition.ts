import type { z } from 'zod';
import { AmplitudeCohortsClient } from './cohorts-api';
import { COHORTS_API_URL } from './constants';
import { createSourceSchema } from './sources';

export const amplitudeSettingsSchema = createSourceSchema;
export type AmplitudeSettings = z.output<typeof amplitudeSettingsSchema>;

function clientFor(
  s: Pick<AmplitudeSettings, 'api_key' | 'secret_key' | 'region' | 'api_url'>,
  opts: { tries?: number } = {},
): AmplitudeCohortsClient {
  return new AmplitudeCohortsClient({
    baseUrl: s.api_url ?? COHORTS_API_URL[s.region],
    apiKey: s.api_key,
    secretKey: s.secret_key,
    ...opts,
  });
}

/** The Amplitude cohort source as a catalog connector: settings, a credential check, its actions. */
export const amplitudeDefinition = {
  id: 'amplitude',
  name: 'Amplitude',
  description:
    'Cohorts from one Amplitude project: pulled through the Behavioral Cohorts API on a cadence, or pushed by its cohort webhook.',
  settingsSchema: amplitudeSettingsSchema,
  // Listing cohorts is free (it is not a download), so it doubles as the credential check; one
  // try, so whoever asked hears about an unreachable host at once.
  testAuthentication: async (settings: AmplitudeSettings): Promise<void> => {
    await clientFor(settings, { tries: 1 }).listCohorts();
  },
  actions: {
    listCohorts: (settings: AmplitudeSettings) => clientFor(settings).listCohorts(),
  },
};
