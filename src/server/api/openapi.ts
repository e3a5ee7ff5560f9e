import { z } from 'zod';
import { alertPaths } from './alerts';
import { exportQuery } from './history';
import { type ApiRoute, routePaths } from './routes';
import { verifyPaths } from './verify';

/**
 * The OpenAPI 3.1 document of /api/v1. Request shapes come from the same zod schemas the
 * handlers validate with (z.toJSONSchema), so the document cannot drift from the checks.
 */

type Json = Record<string, unknown>;

const bodySchema = (s: z.ZodType): Json => z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }) as Json;

function queryParams(s: z.ZodObject): Json[] {
  const schema = z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, Json> };
  return Object.entries(schema.properties ?? {}).map(([name, p]) => ({
    name,
    in: 'query',
    required: false,
    schema: p,
  }));
}

const idPath = (what: string): Json => ({
  name: 'id',
  in: 'path',
  required: true,
  schema: { type: 'string' },
  description: `${what} id`,
});

const errorSchema = {
  type: 'object',
  required: ['error', 'message'],
  properties: {
    error: { type: 'string', description: 'catalogue code, e.g. invalid_input, not_found, unauthorized' },
    message: { type: 'string' },
  },
};

const errors = (...codes: number[]): Json =>
  Object.fromEntries(
    codes.map((c) => [
      String(c),
      { description: 'error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
    ]),
  );

/** The export is a download, not JSON: a CSV with a header line, or one JSON record a line. */
const exportAnswer: Json = {
  '200': {
    description: 'every record of the run (columns and fields as GET /runs/{id}/records)',
    content: {
      'text/csv': { schema: { type: 'string' } },
      'application/x-ndjson': { schema: { type: 'string' } },
    },
  },
};

function op(summary: string, extra: Json): Json {
  return { summary, security: [{ bearer: [] }], ...extra };
}

const _jsonBody = (s: z.ZodType): Json => ({
  required: true,
  content: { 'application/json': { schema: bodySchema(s) } },
});

let cached: Json | undefined;

export function openApiDocument(routes: readonly ApiRoute[]): Json {
  cached ??= {
    openapi: '3.1.0',
    info: {
      title: 'ampsignal admin API',
      version: '1',
      description:
        'Admin API of ampsignal. Every operation but this document needs `Authorization: Bearer <AMPSIGNAL_ADMIN_TOKEN>`. ' +
        'Errors are JSON `{error, message}`. API keys and webhook secrets are never returned.',
    },
    servers: [{ url: '/api/v1' }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Error: errorSchema,
      },
    },
    paths: {
      ...routePaths(routes),
      '/runs/{id}/records/export': {
        get: op('Every record of a run as a CSV or NDJSON download, streamed', {
          parameters: [idPath('run'), ...queryParams(exportQuery)],
          responses: { ...exportAnswer, ...errors(400, 401, 404) },
        }),
      },
      ...alertPaths(),
      ...verifyPaths(),
      '/openapi.json': {
        get: {
          summary: 'This document (no auth)',
          responses: {
            '200': {
              description: 'OpenAPI 3.1 document',
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    required: ['openapi', 'info', 'paths'],
                    properties: { openapi: { type: 'string' }, info: { type: 'object' }, paths: { type: 'object' } },
                  },
                },
              },
            },
          },
        },
      },
    },
  };
  return cached;
}
