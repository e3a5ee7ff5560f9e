import { resolve } from 'node:path';
import { AmpError } from '../errors';

export const DEFAULT_DATABASE_URL = 'sqlite:./.ampsignal/ampsignal.db';

export type DatabaseTarget =
  | { dialect: 'sqlite'; path: string; url: string }
  | { dialect: 'postgres'; connectionString: string; schema: string | undefined; url: string };

/** --db flag, then AMPSIGNAL_DATABASE_URL, then the embedded default. */
export function resolveDatabaseUrl(flag?: string): string {
  return flag ?? process.env.AMPSIGNAL_DATABASE_URL ?? DEFAULT_DATABASE_URL;
}

/** A URL fit for logs and error messages: the password is never shown. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^@]*@/i, '$1***@');
}

/**
 * The one place that decides the dialect. `sqlite:PATH` (or `sqlite::memory:`),
 * `postgres://…` / `postgresql://…`; a `schema` query parameter on a PostgreSQL URL puts every
 * table (ours and graphile-worker's) in that schema, which is how tests isolate themselves.
 */
export function parseDatabaseUrl(url: string): DatabaseTarget {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length).replace(/^\/\//, '');
    if (!path) throw new AmpError('invalid_input', `database URL "${url}" names no file; use sqlite:PATH`);
    return { dialect: 'sqlite', path: path === ':memory:' ? path : resolve(path), url };
  }
  if (/^postgres(ql)?:\/\//i.test(url)) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new AmpError('invalid_input', `database URL "${redactUrl(url)}" is not a valid URL`);
    }
    const schema = parsed.searchParams.get('schema') ?? undefined;
    if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,50}$/i.test(schema)) {
      throw new AmpError('invalid_input', `schema "${schema}" must be letters, digits and underscores`);
    }
    parsed.searchParams.delete('schema');
    return { dialect: 'postgres', connectionString: parsed.toString(), schema, url };
  }
  throw new AmpError(
    'invalid_input',
    `database URL "${redactUrl(url)}" is not supported; use sqlite:PATH or postgres://user@host:port/db`,
  );
}
