import type { Context } from '../store';

/**
 * Which OneSignal tags are ampsignal cohort tags: the exact tag keys of existing syncs, and any
 * key matching a destination's tag-key template (default `amp_cohort_{cohort_id}`), so a tag
 * written by a since-deleted sync is still recognised. Value "1" means "in the cohort"
 * (DESIGN §3: "" deletes a tag). Cached briefly: it changes only when syncs are created.
 */
export const DEFAULT_TAG_KEY_TEMPLATE = 'amp_cohort_{cohort_id}';
const CACHE_MS = 30_000;

interface Matcher {
  exact: Map<string, string>;
  patterns: RegExp[];
  expires: number;
}

const cache = new Map<string, Matcher>();

function templateToRegExp(template: string): RegExp | undefined {
  if (!template.includes('{cohort_id}')) return undefined;
  const [before, after] = template.split('{cohort_id}', 2) as [string, string];
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${esc(before)}(.+)${esc(after)}$`);
}

function cached(ctx: Context): Matcher | undefined {
  const hit = cache.get(ctx.store.displayUrl);
  return hit && hit.expires > Date.now() ? hit : undefined;
}

async function load(ctx: Context): Promise<Matcher> {
  const key = ctx.store.displayUrl;
  const [syncs, templates] = await Promise.all([
    ctx.store.db.selectFrom('syncs').select(['tag_key', 'cohort_id']).execute(),
    ctx.store.db.selectFrom('destinations').select('tag_key_template').distinct().execute(),
  ]);
  const exact = new Map(syncs.map((s) => [s.tag_key, s.cohort_id]));
  const patterns: RegExp[] = [];
  for (const t of new Set([DEFAULT_TAG_KEY_TEMPLATE, ...templates.map((d) => d.tag_key_template)])) {
    const re = templateToRegExp(t);
    if (re) patterns.push(re);
  }
  const m = { exact, patterns, expires: Date.now() + CACHE_MS };
  cache.set(key, m);
  return m;
}

export function matchCohortIds(m: Pick<Matcher, 'exact' | 'patterns'>, tags: Record<string, unknown>): string[] {
  const ids = new Set<string>();
  for (const [k, v] of Object.entries(tags)) {
    // Only a string or number can be "1": String() of any object a webhook sends may throw
    // ({"toString": 1}) or run code we did not write.
    if (v !== '1' && v !== 1) continue;
    const exact = m.exact.get(k);
    if (exact) {
      ids.add(exact);
      continue;
    }
    for (const re of m.patterns) {
      const hit = re.exec(k);
      if (hit?.[1]) {
        ids.add(hit[1]);
        break;
      }
    }
  }
  return [...ids].sort();
}

/**
 * A function for mapOneSignalEvent, bound to the current syncs/destinations of this database.
 * Synchronous while cached: the receiver calls it for every request (bench ingest).
 */
export function cohortTagMatcher(
  ctx: Context,
): ((tags: Record<string, unknown>) => string[]) | Promise<(tags: Record<string, unknown>) => string[]> {
  const bind = (m: Matcher) => (tags: Record<string, unknown>) => matchCohortIds(m, tags);
  const hit = cached(ctx);
  return hit ? bind(hit) : load(ctx).then(bind);
}
