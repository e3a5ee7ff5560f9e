import { z } from 'zod';
import { exportConfig } from '../../app/config';
import {
  applyConfigText,
  configApplySchema,
  configPlanSchema,
  configRequestSchema,
  planConfigText,
} from '../../app/config-server';
import type { Context } from '../../store';
import { type ApiRoute, route } from './routes';

/**
 * /config: configuration as code (src/app/config.ts), as `ampsignal plan / apply / export`. The
 * file travels as JSON `{yaml, env?, prune?}`: one body shape for both, documented and checked
 * like every other, with room for the variables beside the text.
 */
export function configRoutes(ctx: Context): ApiRoute[] {
  return [
    route({
      method: 'POST',
      path: '/config/plan',
      summary:
        'What apply would create, change or delete to make the database match a configuration file (YAML in `yaml`); a bad file is 400 naming each line',
      body: configRequestSchema,
      response: configPlanSchema,
      errors: [400],
      handle: ({ body }) => planConfigText(ctx, body),
    }),
    route({
      method: 'POST',
      path: '/config/apply',
      summary:
        'Make the database match a configuration file, through the same operations as the other routes; a second apply changes nothing. A plan holding a change apply cannot make is 409, nothing applied',
      body: configRequestSchema,
      response: configApplySchema,
      errors: [400, 404, 409, 502],
      handle: ({ body }) => applyConfigText(ctx, body),
    }),
    route({
      method: 'GET',
      path: '/config/export',
      summary: `The current configuration as a file plan and apply accept (application/yaml); keys as \${VAR} references, never values`,
      produces: 'application/yaml',
      response: z.string().describe('ampsignal.yaml'),
      errors: [],
      handle: () => exportConfig(ctx),
    }),
  ];
}
