import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { AmpError } from '../../errors';
import type { AdminDeps } from '../api/auth';
import { describeIssues } from '../api/errors';
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
  if (!r.success) throw new AmpError('invalid_input', `invalid id in the address: ${describeIssues(r.error)}`);
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
