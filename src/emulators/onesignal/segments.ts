import { AmpError } from '../../errors';
import type { AppState, SegmentFilter, Tags } from './state';

/**
 * Which users a segment's filters select, so tests can check that the tags a sync writes drive
 * the segment they are meant for. Source: https://documentation.onesignal.com/reference/create-segments
 * (filters are ANDed; an `{"operator":"OR"}` entry starts another AND-group).
 *
 * Only `tag` filters are evaluated: the emulator keeps no sessions, locations or devices.
 * Readings taken where the docs say nothing [U]:
 * - numeric strings compare as numbers (the tags page says so); `>`/`<` on a non-number match nobody;
 * - `!=` matches users who carry the tag with another value, not users without it;
 * - `time_elapsed_gt`/`_lt` read the tag value as a Unix time in seconds and `value` as seconds
 *   elapsed since then; a value that is not a number matches nobody.
 */
export function segmentUsers(app: AppState, filters: SegmentFilter[], nowMs = Date.now()): string[] {
  const groups = andGroups(filters);
  const matched: string[] = [];
  for (const [externalId, rec] of app.users) {
    const tags = rec?.tags ?? {};
    if (groups.some((g) => g.every((f) => tagFilterMatches(f, tags, nowMs)))) matched.push(externalId);
  }
  return matched;
}

function andGroups(filters: SegmentFilter[]): SegmentFilter[][] {
  const groups: SegmentFilter[][] = [[]];
  for (const f of filters) {
    if (f.operator === 'OR') groups.push([]);
    else if (f.operator === undefined) {
      if (f.field !== 'tag') {
        throw new AmpError('invalid_input', `the emulator evaluates tag filters only, not field "${String(f.field)}"`);
      }
      groups[groups.length - 1]!.push(f);
    }
  }
  return groups.filter((g) => g.length > 0);
}

const asNumber = (v: string | undefined): number | undefined => {
  if (v === undefined || v.trim() === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
};

function tagFilterMatches(f: SegmentFilter, tags: Tags, nowMs: number): boolean {
  const key = f.key ?? '';
  const has = Object.hasOwn(tags, key);
  const tag = has ? tags[key] : undefined;
  switch (f.relation) {
    case 'exists':
      return has;
    case 'not_exists':
      return !has;
    case '=':
    case '!=': {
      if (!has) return false;
      const a = asNumber(tag);
      const b = asNumber(f.value);
      const equal = a !== undefined && b !== undefined ? a === b : tag === f.value;
      return f.relation === '=' ? equal : !equal;
    }
    case '>':
    case '<': {
      const a = asNumber(tag);
      const b = asNumber(f.value);
      if (a === undefined || b === undefined) return false;
      return f.relation === '>' ? a > b : a < b;
    }
    case 'time_elapsed_gt':
    case 'time_elapsed_lt': {
      const at = asNumber(tag);
      const seconds = asNumber(f.value);
      if (at === undefined || seconds === undefined) return false;
      const elapsed = nowMs / 1000 - at;
      return f.relation === 'time_elapsed_gt' ? elapsed > seconds : elapsed < seconds;
    }
    default:
      throw new AmpError('invalid_input', `the emulator cannot evaluate the tag relation "${String(f.relation)}"`);
  }
}
