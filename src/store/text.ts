/**
 * PostgreSQL's text type cannot hold U+0000 (SQLite's can), so a string with one that reaches a
 * text column fails the statement on one dialect only. Every string field taken from outside and
 * stored as a column is refused with it at the edge (one rule, both dialects answer the same 400).
 * Strings stored inside JSON text need no such rule: JSON escapes the character.
 */
export const NUL_PROBLEM = 'must not contain the NUL character (\\u0000)';

export function hasNul(s: string): boolean {
  return s.includes('\u0000');
}

/** For zod refinements: `.refine(storable, NUL_PROBLEM)`. */
export function storable(s: string): boolean {
  return !hasNul(s);
}
