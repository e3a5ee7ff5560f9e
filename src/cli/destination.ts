import type { Command } from 'commander';
import { z } from 'zod';
import { getConnector } from '../connectors/catalog';
import {
  clientForDestination,
  createDestination,
  type DestinationView,
  destinationView,
  getDestination,
  listDestinations,
  pauseDestination,
  resumeDestination,
} from '../connectors/onesignal/destinations';
import { AmpError, toAmpError } from '../errors';
import { keyOption, resolveKeys } from './key-input';
import { emit, parseInput, withContext } from './output';

// Settings fields as the flags a person typed, so a complaint names the flag to fix.
const FLAG_OF: Record<string, string> = {
  name: '--name',
  app_id: '--app-id',
  api_key: '--api-key',
  api_url: '--api-url',
  tag_key_template: '--tag-key-template',
  external_id_property: '--external-id-property',
  max_tags_per_user: '--max-tags',
  rate_limit_per_second: '--rate-limit',
  source_id: '--source',
};

const idArg = z.string().trim().min(1, 'a destination id is required');
// parseInput prefixes the flag name (maxTags → --max-tags).
const wholeNumber = () =>
  z
    .string()
    .regex(/^\s*-?\d+\s*$/, 'must be a whole number')
    .transform((s) => Number(s.trim()))
    .optional();

interface AddFlags {
  name?: string;
  appId?: string;
  apiKey?: string;
  apiUrl?: string;
  tagKeyTemplate?: string;
  externalIdProperty?: string;
  maxTags?: string;
  rateLimit?: string;
  source?: string;
  json?: boolean;
}

function human(v: DestinationView): string {
  return [
    `${v.id}  ${v.name}  (${v.kind}, ${v.status}${v.status_reason ? `: ${v.status_reason}` : ''})`,
    `  app id:              ${v.app_id}`,
    `  api url:             ${v.api_url}`,
    `  source:              ${v.source_id ?? '-'}`,
    `  tag key template:    ${v.tag_key_template}`,
    `  external id from:    ${v.external_id_property}`,
    `  max tags per user:   ${v.max_tags_per_user}`,
    `  rate limit:          ${v.rate_limit_per_second}/s`,
  ].join('\n');
}

export function register(program: Command): void {
  const dest = program.command('destination');

  const add = dest
    .command('add')
    .description('add a destination (connector: onesignal)')
    .argument('<connector>', 'connector id, e.g. onesignal')
    .option('--name <name>', 'a unique name, e.g. "OneSignal - My App"')
    .option('--app-id <id>', 'OneSignal App ID (Settings > Keys & IDs)');
  keyOption(add, 'api-key', 'OneSignal App API key (stored encrypted)');
  add
    .option('--api-url <url>', 'API base URL (default https://api.onesignal.com)')
    .option('--tag-key-template <t>', 'tag key per cohort; must contain {cohort_id} (default amp_cohort_{cohort_id})')
    .option('--external-id-property <p>', 'Amplitude field that becomes the OneSignal external_id (default user_id)')
    .option('--max-tags <n>', 'cohort tags a user may carry on your plan (default 10)')
    .option('--rate-limit <n>', 'requests per second for this app (default 1000)')
    .option('--source <id>', 'the Amplitude source this destination serves')
    .option('--json', 'print JSON')
    .action(async (connector: string, flags: AddFlags, cmd: Command) => {
      if (getConnector(connector).id !== 'onesignal') {
        throw new AmpError('invalid_input', `destinations of connector "${connector}" cannot be added here`);
      }
      const nums = parseInput(z.object({ maxTags: wholeNumber(), rateLimit: wholeNumber() }), {
        maxTags: flags.maxTags,
        rateLimit: flags.rateLimit,
      });
      await resolveKeys(flags as Record<string, unknown>, ['api-key']);
      const missing = (['name', 'appId', 'apiKey'] as const).filter((k) => !flags[k]);
      if (missing.length) {
        const names = missing.map((k) => FLAG_OF[k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)]);
        throw new AmpError('invalid_input', `missing ${names.join(', ')}`);
      }
      await withContext(cmd, async (ctx) => {
        const row = await createDestination(
          ctx,
          {
            name: flags.name,
            app_id: flags.appId,
            api_key: flags.apiKey,
            api_url: flags.apiUrl,
            tag_key_template: flags.tagKeyTemplate,
            external_id_property: flags.externalIdProperty,
            max_tags_per_user: nums.maxTags,
            rate_limit_per_second: nums.rateLimit,
            source_id: flags.source,
          },
          { label: (f) => FLAG_OF[f] ?? f },
        );
        const v = destinationView(row);
        emit(flags.json, v, () => `added destination ${v.id}\n${human(v)}`);
      });
    });

  dest
    .command('test')
    .description("check the destination's app id and key against OneSignal")
    .argument('<id>', 'destination id')
    .option('--json', 'print JSON')
    .action(async (id: string, flags: { json?: boolean }, cmd: Command) => {
      const destId = parseInput(idArg, id);
      await withContext(cmd, async (ctx) => {
        const row = await getDestination(ctx, destId);
        const client = clientForDestination(ctx, row);
        const started = Date.now();
        try {
          await client.testConnection();
        } catch (e) {
          const err = toAmpError(e);
          // The JSON answer for scripts; the one-line reason still goes to stderr via the caller.
          if (flags.json)
            emit(
              true,
              { ok: false, destination_id: row.id, app_id: row.app_id, error: err.code, message: err.message },
              () => '',
            );
          throw err;
        }
        const result = {
          ok: true,
          destination_id: row.id,
          app_id: row.app_id,
          api_url: row.api_url,
          status: row.status,
          latency_ms: Date.now() - started,
        };
        emit(flags.json, result, () =>
          [
            `ok: ${row.name} (${row.app_id}) accepted the key (${result.latency_ms} ms)`,
            ...(row.status === 'paused'
              ? [
                  `the destination is paused (${row.status_reason ?? 'no reason'}): resume it with \`ampsignal destination resume ${row.id}\``,
                ]
              : []),
          ].join('\n'),
        );
      });
    });

  dest
    .command('list')
    .description('list destinations')
    .option('--json', 'print JSON')
    .action(async (flags: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const views = (await listDestinations(ctx)).map(destinationView);
        emit(flags.json, views, () =>
          views.length
            ? views
                .map(
                  (v) =>
                    `${v.id}  ${v.name}  app ${v.app_id}  ${v.status}${v.status_reason ? ` (${v.status_reason})` : ''}`,
                )
                .join('\n')
            : 'no destinations yet: add one with `ampsignal destination add onesignal --name … --app-id … --api-key …`',
        );
      });
    });

  dest
    .command('show')
    .description('show one destination (never its key)')
    .argument('<id>', 'destination id')
    .option('--json', 'print JSON')
    .action(async (id: string, flags: { json?: boolean }, cmd: Command) => {
      const destId = parseInput(idArg, id);
      await withContext(cmd, async (ctx) => {
        const v = destinationView(await getDestination(ctx, destId));
        emit(flags.json, v, () => human(v));
      });
    });

  dest
    .command('pause')
    .description('stop delivering to a destination')
    .argument('<id>', 'destination id')
    .option('--reason <text>', 'why (shown in show/list)', 'paused by user')
    .option('--json', 'print JSON')
    .action(async (id: string, flags: { reason: string; json?: boolean }, cmd: Command) => {
      const destId = parseInput(idArg, id);
      const reason = parseInput(z.string().trim().min(1, '--reason must not be empty').max(500), flags.reason);
      await withContext(cmd, async (ctx) => {
        const v = destinationView(await pauseDestination(ctx, destId, reason));
        emit(flags.json, v, () => `paused ${v.id} (${v.name}): ${reason}`);
      });
    });

  dest
    .command('resume')
    .description('resume delivering to a paused destination')
    .argument('<id>', 'destination id')
    .option('--json', 'print JSON')
    .action(async (id: string, flags: { json?: boolean }, cmd: Command) => {
      const destId = parseInput(idArg, id);
      await withContext(cmd, async (ctx) => {
        const v = destinationView(await resumeDestination(ctx, destId));
        emit(flags.json, v, () => `resumed ${v.id} (${v.name})`);
      });
    });
}
