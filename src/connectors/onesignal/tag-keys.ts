import { AmpError } from '../../errors';
import { RESTRICTED_TAG_KEYS, TAG_KEY_PLACEHOLDER } from './constants';

/** `{cohort_name_slug}` in a template: the cohort's name in lower-case ASCII words joined by `_`. */
const NAME_SLUG_PLACEHOLDER = '{cohort_name_slug}';

export function slugify(name: string): string {
  return (
    name
      .toLowerCase()
      .normalize('NFKD')
      .replace(/[^a-z0-9]+/g, '_')
      .replace(/^_+|_+$/g, '')
      .slice(0, 48) || 'cohort'
  );
}

/** Why OneSignal would refuse this tag key, or undefined when it is fine. */
export function tagKeyProblem(key: string): string | undefined {
  if (!key) return 'is empty';
  if (/\s/.test(key)) return 'contains whitespace, which OneSignal tag keys must not';
  if (RESTRICTED_TAG_KEYS.includes(key.toLowerCase()))
    return `is a restricted OneSignal tag key (${RESTRICTED_TAG_KEYS.join(', ')})`;
  return undefined;
}

/**
 * The tag key of one cohort from a destination's template, checked against OneSignal's tag rules.
 * Whitespace in a cohort id becomes `_`: OneSignal's CSV import refuses tag keys with spaces, and
 * the key must stay writable by every path into OneSignal.
 */
export function renderTagKey(template: string, cohort: { id: string; name?: string }): string {
  const key = template
    .split(TAG_KEY_PLACEHOLDER)
    .join(cohort.id)
    .split(NAME_SLUG_PLACEHOLDER)
    .join(slugify(cohort.name ?? cohort.id))
    .replace(/\s+/g, '_');
  const problem = tagKeyProblem(key);
  if (problem) throw new AmpError('invalid_input', `tag key "${key}" ${problem}`);
  return key;
}
