import type { z } from 'zod';
import { AmpError, isAmpError } from '../../errors';

/** Turns zod's complaint into one line a person can act on: `field: problem; field: problem`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => (i.path.length ? `${i.path.map(String).join('.')}: ${i.message}` : i.message))
    .join('; ');
}

/** Parses external input, throwing AmpError invalid_input (HTTP 400) with the readable message. */
export function parseOr400<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  throw new AmpError('invalid_input', `invalid ${what}: ${describeIssues(r.error)}`, {
    details: { fields: r.error.issues.map((i) => i.path.map(String).join('.')).filter(Boolean) },
  });
}

/**
 * The JSON error shape of the admin API: `{error, message}` (plus details). Internal errors keep
 * their text out of the response (it may name file paths or SQL); vendor errors are the user's
 * business, since they explain why a test or a run failed.
 */
export function errorResponse(e: unknown): { status: number; body: Record<string, unknown> } {
  if (isAmpError(e)) {
    if (e.kind === 'internal')
      return { status: 500, body: { error: 'internal', message: 'internal error; see the server log' } };
    return { status: e.httpStatus, body: e.toJSON() };
  }
  const fe = e as { statusCode?: unknown; code?: unknown; message?: unknown };
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    const error =
      fe.statusCode === 413 ? 'payload_too_large' : fe.statusCode === 415 ? 'unsupported_media_type' : 'invalid_input';
    return { status: fe.statusCode, body: { error, message: String(fe.message ?? 'bad request') } };
  }
  return { status: 500, body: { error: 'internal', message: 'internal error; see the server log' } };
}
