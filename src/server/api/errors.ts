import type { z } from 'zod';
import { invalidInput, isAmpError } from '../../errors';

/** Parses external input, throwing AmpError invalid_input (HTTP 400) that names each bad field by its JSON path. */
export function parseOr400<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  throw invalidInput(r.error.issues, { prefix: `invalid ${what}` });
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
