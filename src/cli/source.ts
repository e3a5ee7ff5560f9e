import type { Command } from 'commander';
import { z } from 'zod';
import { downloadsThisMonth, plannedMonthlyDownloads } from '../connectors/amplitude/budget';
import {
  createSource,
  getSource,
  listSources,
  revealWebhookSecret,
  sourceView,
  updateSource,
} from '../connectors/amplitude/sources';
import { AmpError } from '../errors';
import { keyOption, resolveKeys } from './key-input';
import { emit, parseInput, withContext } from './output';

const addFlags = z.object({
  name: z.string({ error: 'is required' }).trim().min(1, 'is required'),
  apiKey: z.string({ error: 'is required (the Amplitude project API key)' }).trim().min(1, 'is required'),
  secretKey: z.string({ error: 'is required (the Amplitude project secret key)' }).trim().min(1, 'is required'),
  region: z.enum(['us', 'eu'], { error: 'must be us or eu' }).default('us'),
  apiUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  downloadBudget: z.coerce
    .number({ error: 'must be a number' })
    .int('must be a whole number')
    .min(0, 'must be 0 or more')
    .optional(),
  json: z.boolean().optional(),
});

const idArg = z
  .string()
  .trim()
  .regex(/^src_[A-Za-z0-9_-]+$/, 'a source id looks like src_…');

export function register(program: Command): void {
  const source = program.command('source');

  const add = source
    .command('add')
    .description('add an Amplitude project as a cohort source; prints its webhook path and secret')
    .argument('<kind>', 'the source kind: amplitude')
    .option('--name <name>', 'a name for this project');
  keyOption(add, 'api-key', 'project API key (Amplitude: Settings > Projects > API key)');
  keyOption(add, 'secret-key', 'project secret key');
  add
    .option('--region <region>', 'us or eu', 'us')
    .option('--api-url <url>', 'override the Behavioral Cohorts API base URL (an emulator, a proxy)')
    .option('--download-budget <n>', 'cohort downloads allowed per month (Amplitude: 500 on Growth/Enterprise)')
    .option('--json', 'print JSON')
    .action(async (kind: string, opts: Record<string, unknown>, cmd: Command) => {
      if (kind !== 'amplitude')
        throw new AmpError('invalid_input', `unknown source kind "${kind}" (supported: amplitude)`);
      await resolveKeys(opts, ['api-key', 'secret-key']);
      const f = parseInput(addFlags, opts);
      await withContext(cmd, async (ctx) => {
        const created = await createSource(ctx, {
          name: f.name,
          api_key: f.apiKey,
          secret_key: f.secretKey,
          region: f.region,
          ...(f.apiUrl ? { api_url: f.apiUrl } : {}),
          ...(f.downloadBudget !== undefined ? { download_budget: f.downloadBudget } : {}),
        });
        emit(f.json, created, () =>
          [
            `source ${created.id} (${created.name}, ${created.region}) added; budget ${created.download_budget} downloads a month`,
            `In Amplitude (Data > Destinations > Cohort > Webhook), set:`,
            `  URL:    https://<your ampsignal host>${created.webhook_path}`,
            `  header: Authorization: Bearer ${created.webhook_secret}`,
            `The secret is shown again only by \`ampsignal source show ${created.id} --reveal-secret\`.`,
          ].join('\n'),
        );
      });
    });

  source
    .command('list')
    .description('list sources')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const views = (await listSources(ctx)).map(sourceView);
        emit(opts.json, views, () =>
          views.length
            ? views.map((s) => `${s.id}  ${s.name}  ${s.region}  budget ${s.download_budget}/month`).join('\n')
            : 'no sources yet: `ampsignal source add amplitude …`',
        );
      });
    });

  source
    .command('show')
    .description('show a source, its download usage this month and planned downloads')
    .argument('<id>', 'source id')
    .option('--reveal-secret', 'also print the webhook secret')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { json?: boolean; revealSecret?: boolean }, cmd: Command) => {
      const sourceId = parseInput(idArg, id);
      await withContext(cmd, async (ctx) => {
        const row = await getSource(ctx, sourceId);
        const planned = await plannedMonthlyDownloads(ctx, row.id);
        const view = {
          ...sourceView(row),
          downloads_this_month: await downloadsThisMonth(ctx, row.id),
          planned_downloads_per_month: planned.total,
          ...(opts.revealSecret ? { webhook_secret: revealWebhookSecret(ctx, row) } : {}),
        };
        emit(opts.json, view, () =>
          [
            `${view.id}  ${view.name}  (${view.kind}, ${view.region}, ${view.api_url})`,
            `downloads: ${view.downloads_this_month} used this month, ${view.planned_downloads_per_month} planned a month, budget ${view.download_budget}`,
            `webhook: POST ${view.webhook_path}` +
              (view.webhook_secret ? `  Authorization: Bearer ${view.webhook_secret}` : ''),
          ].join('\n'),
        );
      });
    });

  source
    .command('update')
    .description("change a source's name, API URL or monthly download budget")
    .argument('<id>', 'source id')
    .option('--name <name>', 'a new name')
    .option('--api-url <url>', 'a new Behavioral Cohorts API base URL ("" = by region)')
    .option('--download-budget <n>', 'cohort downloads allowed per month')
    .option('--json', 'print JSON')
    .action(
      async (
        id: string,
        opts: { name?: string; apiUrl?: string; downloadBudget?: string; json?: boolean },
        cmd: Command,
      ) => {
        const sourceId = parseInput(idArg, id);
        await withContext(cmd, async (ctx) => {
          const view = await updateSource(ctx, sourceId, {
            ...(opts.name !== undefined ? { name: opts.name } : {}),
            ...(opts.apiUrl !== undefined ? { api_url: opts.apiUrl === '' ? null : opts.apiUrl } : {}),
            ...(opts.downloadBudget !== undefined ? { download_budget: opts.downloadBudget } : {}),
          });
          emit(
            opts.json,
            view,
            () => `source ${view.id} (${view.name}): ${view.api_url}, budget ${view.download_budget} downloads a month`,
          );
        });
      },
    );
}
