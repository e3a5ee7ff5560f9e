import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { AmpError, describeIssues, toAmpError } from '../../errors';
import type { AdminDeps } from '../api/auth';
import { idParam } from '../api/schemas';

/** Small request/response helpers shared by every UI route file. */

export const HTML = 'text/html; charset=utf-8';

export type Form = Record<string, string>;

/** What each `routes/<object>.tsx` registers its pages with. */
export type UiRoutes = (ui: FastifyInstance, deps: AdminDeps) => void;

export const formOf = (req: FastifyRequest): Form =>
  req.body && typeof req.body === 'object' ? (req.body as Form) : {};

export const queryOf = (req: FastifyRequest): Form => (req.query ?? {}) as Form;

export function html(reply: FastifyReply, page: JSX.Element, status = 200): FastifyReply {
  return reply
    .code(status)
    .type(HTML)
    .send(page as string);
}

export const isHtmx = (req: FastifyRequest): boolean => req.headers['hx-request'] === 'true';

export function parseId(req: FastifyRequest): string {
  const r = idParam.safeParse(req.params);
  if (!r.success) throw new AmpError('invalid_input', `invalid id in the address: ${describeIssues(r.error.issues)}`);
  return r.data.id;
}

export function fieldErrors(error: z.ZodError): Record<string, string> {
  const out: Record<string, string> = {};
  for (const i of error.issues) {
    const k = String(i.path[0] ?? '_');
    out[k] ??= i.message;
  }
  return out;
}

/** `/syncs/syn_…`: ids are checked on the way in, and encoded on the way out all the same. */
export const pathOf = (kind: string, id: string, tail = ''): string => `/${kind}/${encodeURIComponent(id)}${tail}`;

/**
 * This server's address as the person reading the page reaches it, for URLs to paste into a
 * vendor's dashboard: AMPSIGNAL_PUBLIC_URL when set (behind a proxy the Host can be internal),
 * else the scheme and host of this request.
 */
export function publicBase(req: FastifyRequest): string {
  const configured = process.env.AMPSIGNAL_PUBLIC_URL?.trim().replace(/\/+$/, '');
  return configured || `${req.protocol}://${req.host}`;
}

/** Empty form fields mean "not given". */
export const optional = (v: string | undefined): string | undefined =>
  v === undefined || v.trim() === '' ? undefined : v.trim();

/** A refusal a person can act on (bad input, conflict, refused state); anything else goes to the error page. */
export function userFacing(e: unknown): AmpError {
  const err = toAmpError(e);
  if (err.kind === 'internal' || err.code === 'not_found') throw err;
  return err;
}

/**
 * An operation's refusal as a form shows it: invalid input by field (the operation's issues),
 * a conflict by the field it names; anything the form has no field for as one message above it.
 */
export function formErrors(
  e: unknown,
  formFields: readonly string[],
): { fields: Record<string, string>; message?: string; status: number } {
  const err = userFacing(e);
  const issues = (err.details?.issues as Array<{ field: string; message: string }> | undefined) ?? [];
  const named = typeof err.details?.field === 'string' ? [{ field: err.details.field, message: err.message }] : [];
  const fields: Record<string, string> = {};
  let unplaced = issues.length + named.length === 0;
  for (const i of [...issues, ...named]) {
    const f = i.field.split('.')[0] ?? '';
    if (formFields.includes(f)) fields[f] ??= i.message;
    else unplaced = true;
  }
  return unplaced ? { fields, message: err.message, status: err.httpStatus } : { fields, status: err.httpStatus };
}

/**
 * The POST of a confirmation page (delete…): nothing happens without the page's own confirm field.
 * `act` answers where to go once done, or why it was refused; a refusal shows on the same page.
 */
export async function confirmed(
  req: FastifyRequest,
  reply: FastifyReply,
  page: (error?: string) => Promise<JSX.Element>,
  act: () => Promise<string | { refused: string }>,
): Promise<FastifyReply> {
  if (formOf(req).confirm !== 'yes') return html(reply, await page(), 400);
  try {
    const r = await act();
    if (typeof r !== 'string') return html(reply, await page(r.refused), 409);
    return reply.redirect(r, 303);
  } catch (e) {
    const f = formErrors(e, []);
    return html(reply, await page(f.message), f.status);
  }
}
