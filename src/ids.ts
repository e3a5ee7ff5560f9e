import { randomBytes } from 'node:crypto';

/** Short, URL-safe, prefixed ids (e.g. `dst_3f9a…`), so an id says what it names. */
export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(9).toString('base64url')}`;
}

export function newSecret(): string {
  return randomBytes(24).toString('base64url');
}
