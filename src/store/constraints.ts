/** A write refused by a unique index or primary key, in either database. */
export function isUniqueViolation(e: unknown): boolean {
  const code = (e as { code?: string } | undefined)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
