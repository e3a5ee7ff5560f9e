import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { parseOr400 } from './errors';

/**
 * One admin API route: what it validates, what it answers, and the app operation it calls.
 * The route is registered from this and the OpenAPI document is generated from this, so the
 * document is the contract the handlers keep (test/api/contract.test.ts walks it).
 */
export interface ApiRoute extends RouteShape {
  handle(input: { id: string; query: unknown; body: unknown }): Promise<unknown>;
}

interface RouteShape {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** fastify syntax: /destinations/:id */
  path: string;
  summary: string;
  /** What the id in the path names, for the document. */
  idOf?: string;
  query?: z.ZodObject;
  body?: z.ZodType;
  /** A body may be left out (an action with options). */
  bodyOptional?: boolean;
  /** Bytes a body may have, when more than the server's default (a cohort's ids). */
  bodyLimit?: number;
  /** Status and schema of the success answer. */
  status?: number;
  /** Content type of the success answer when it is not JSON (a file to save). */
  produces?: string;
  response: z.ZodType;
  /** Other success answers (202 while a run is in progress). */
  alsoAnswers?: Array<{ status: number; description: string; schema: z.ZodType }>;
  /** Error statuses this route can answer (401 and 503 are added to every route). */
  errors: number[];
}

type Parsed<S> = S extends z.ZodType ? z.output<S> : undefined;

/** Declares a route with its handler typed by its query and body schemas. */
export function route<Q extends z.ZodObject | undefined = undefined, B extends z.ZodType | undefined = undefined>(
  r: RouteShape & {
    query?: Q;
    body?: B;
    /** The answer, or an Answer to pick the status (202 vs 200). */
    handle(input: { id: string; query: Parsed<Q>; body: Parsed<B> }): Promise<unknown>;
  },
): ApiRoute {
  return r as ApiRoute;
}

/** A handler that picks its status (202 vs 200) returns this. */
export class Answer {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {}
}

export const idSchema = z
  .string()
  .trim()
  .min(1, 'an id is required')
  .max(200, 'at most 200 characters')
  .regex(/^[\w.:-]+$/, 'must be an id such as dst_Ab3…');
const idParams = z.object({ id: idSchema });

export function registerRoutes(api: FastifyInstance, routes: readonly ApiRoute[]): void {
  for (const r of routes) {
    api.route({
      method: r.method,
      url: r.path,
      ...(r.bodyLimit ? { bodyLimit: r.bodyLimit } : {}),
      handler: async (req: FastifyRequest, reply: FastifyReply) => {
        const id = r.path.includes(':id') ? parseOr400(idParams, req.params, 'path').id : '';
        const query = r.query ? parseOr400(r.query, req.query ?? {}, 'query') : undefined;
        const raw = req.body ?? (r.bodyOptional ? {} : undefined);
        const body = r.body ? parseOr400(r.body, raw ?? {}, 'body') : undefined;
        const out = await r.handle({ id, query, body });
        if (out instanceof Answer) return reply.code(out.status).send(out.body);
        if (r.produces) void reply.type(r.produces);
        return reply.code(r.status ?? 200).send(out);
      },
    });
  }
}

// ---- the OpenAPI side ----

type Json = Record<string, unknown>;

const jsonSchema = (s: z.ZodType, io: 'input' | 'output'): Json => {
  const { $schema: _drop, ...rest } = z.toJSONSchema(s, { io, unrepresentable: 'any' }) as Json;
  return rest;
};

const errorRef = { $ref: '#/components/schemas/Error' };

function queryParams(s: z.ZodObject): Json[] {
  const schema = jsonSchema(s, 'input') as { properties?: Record<string, Json>; required?: string[] };
  return Object.entries(schema.properties ?? {}).map(([name, p]) => ({
    name,
    in: 'query',
    required: schema.required?.includes(name) ?? false,
    schema: p,
  }));
}

const content = (schema: Json) => ({ 'application/json': { schema } });

/** The OpenAPI operation of a route. */
export function routeOperation(r: ApiRoute): Json {
  const parameters: Json[] = [];
  if (r.path.includes(':id'))
    parameters.push({
      name: 'id',
      in: 'path',
      required: true,
      schema: jsonSchema(idSchema, 'input'),
      description: `${r.idOf ?? 'object'} id`,
    });
  if (r.query) parameters.push(...queryParams(r.query));
  const responses: Json = {
    [String(r.status ?? 200)]: {
      description: 'success',
      content: { [r.produces ?? 'application/json']: { schema: jsonSchema(r.response, 'output') } },
    },
  };
  for (const a of r.alsoAnswers ?? [])
    responses[String(a.status)] = { description: a.description, content: content(jsonSchema(a.schema, 'output')) };
  for (const code of [...new Set([...r.errors, 401, 503])].sort())
    responses[String(code)] = { description: 'error', content: content(errorRef) };
  return {
    summary: r.summary,
    security: [{ bearer: [] }],
    ...(parameters.length ? { parameters } : {}),
    ...(r.body ? { requestBody: { required: !r.bodyOptional, content: content(jsonSchema(r.body, 'input')) } } : {}),
    responses,
  };
}

/** OpenAPI paths of the routes: /destinations/{id}. */
export function routePaths(routes: readonly ApiRoute[]): Record<string, Json> {
  const paths: Record<string, Json> = {};
  for (const r of routes) {
    const p = r.path.replace(/:(\w+)/g, '{$1}');
    paths[p] = { ...(paths[p] ?? {}), [r.method.toLowerCase()]: routeOperation(r) };
  }
  return paths;
}
