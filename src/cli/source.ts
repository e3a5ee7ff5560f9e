import type { Command } from 'commander';
import {
  addSource,
  deleteSource,
  listSources,
  type SourceView,
  showSource,
  sourceInputSchema,
  testSource,
  updateSource,
} from '../app/sources';
import { AmpError } from '../errors';
import { keyOption, resolveKeys } from './key-input';
import { confirm, emit, parseInput, wholeNumberFlag, withContext } from './output';

interface SourceFlags {
  name?: string;
  apiKey?: string;
  secretKey?: string;
  region?: string;
  apiUrl?: string;
  downloadBudget?: string;
  json?: boolean;
}

/** The flags a person gave, as the operation's input (fields not given stay absent). */
function inputOf(f: SourceFlags, apiUrlReset: boolean): Record<string, unknown> {
  const input: Record<string, unknown> = {
    name: f.name,
    api_key: f.apiKey,
    secret_key: f.secretKey,
    region: f.region,
    api_url: apiUrlReset && f.apiUrl === '' ? null : f.apiUrl,
    download_budget: wholeNumberFlag(f.downloadBudget, '--download-budget'),
  };
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
}

function human(v: SourceView & { webhook_secret?: string }): string {
  return [
    `${v.id}  ${v.name}  (${v.kind}, ${v.region}, ${v.api_url})`,
    `downloads: ${v.downloads_this_month} used this month, ${v.planned_downloads_per_month} planned a month, budget ${v.download_budget}`,
    `webhook: POST ${v.webhook_path}${v.webhook_secret ? `  Authorization: Bearer ${v.webhook_secret}` : ''}`,
  ].join('\n');
}

function keyOptions(cmd: Command): Command {
  keyOption(cmd, 'api-key', 'project API key (Amplitude: Settings > Projects > API key)');
  keyOption(cmd, 'secret-key', 'project secret key');
  return cmd;
}

export function register(program: Command): void {
  const source = program.command('source');

  keyOptions(
    source
      .command('add')
      .description('add an Amplitude project as a cohort source (one per project); prints its webhook path and secret')
      .argument('<kind>', 'the source kind: amplitude')
      .option('--name <name>', 'a name for this project'),
  )
    .option('--region <region>', 'us or eu', 'us')
    .option('--api-url <url>', 'override the Behavioral Cohorts API base URL (an emulator, a proxy)')
    .option('--download-budget <n>', 'cohort downloads allowed per month (Amplitude: 500 on Growth/Enterprise)')
    .option('--json', 'print JSON')
    .action(async (kind: string, f: SourceFlags, cmd: Command) => {
      if (kind !== 'amplitude')
        throw new AmpError('invalid_input', `unknown source kind "${kind}" (supported: amplitude)`);
      await resolveKeys(f as Record<string, unknown>, ['api-key', 'secret-key']);
      // Checked before the database opens, with the operation's own schema.
      const input = parseInput(sourceInputSchema, inputOf(f, false));
      await withContext(cmd, async (ctx) => {
        const created = await addSource(ctx, input);
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
        const views = await listSources(ctx);
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
      await withContext(cmd, async (ctx) => {
        const view = await showSource(ctx, id, { revealSecret: opts.revealSecret === true });
        emit(opts.json, view, () => human(view));
      });
    });

  keyOptions(
    source
      .command('update')
      .description("change a source's name, keys (a rotated key), region, API URL or monthly download budget")
      .argument('<id>', 'source id')
      .option('--name <name>', 'a new name'),
  )
    .option('--region <region>', 'us or eu')
    .option('--api-url <url>', 'a new Behavioral Cohorts API base URL ("" = by region)')
    .option('--download-budget <n>', 'cohort downloads allowed per month')
    .option('--json', 'print JSON')
    .action(async (id: string, f: SourceFlags, cmd: Command) => {
      await resolveKeys(f as Record<string, unknown>, ['api-key', 'secret-key']);
      const patch = inputOf(f, true);
      if (!Object.keys(patch).length)
        throw new AmpError('invalid_input', 'nothing to change: give at least one option');
      await withContext(cmd, async (ctx) => {
        const view = await updateSource(ctx, id, patch);
        emit(f.json, view, () => `updated ${view.id}\n${human(view)}`);
      });
    });

  source
    .command('test')
    .description(
      "check the source's keys against Amplitude (lists its cohorts, which costs no download; exit 1 when refused)",
    )
    .argument('<id>', 'source id')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const r = await testSource(ctx, id);
        emit(opts.json, r, () => (r.ok ? `ok: ${r.message} (${r.latency_ms} ms)` : `failed: ${r.message}`));
        if (!r.ok) process.exitCode = 1;
      });
    });

  source
    .command('delete')
    .description('delete a source and its cohorts; refused while syncs use them, unless --force deletes those too')
    .argument('<id>', 'source id')
    .option('--force', 'also delete the syncs of its cohorts (their tags and segments are removed from OneSignal)')
    .option('--yes', 'do not ask for confirmation (scripts)')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { force?: boolean; yes?: boolean; json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const v = await showSource(ctx, id);
        await confirm(
          `delete source ${v.name} (${v.id}) and its cohorts${opts.force ? ' and their syncs' : ''}?`,
          opts.yes,
        );
        const r = await deleteSource(ctx, id, { force: opts.force === true });
        emit(opts.json, r, () =>
          [
            r.message,
            ...r.syncs.map(
              (x) => `  ${x.id}: ${x.deleted ? 'deleted' : 'still deleting'}, ${x.removed} tag(s) removed`,
            ),
          ].join('\n'),
        );
        if (!r.deleted) process.exitCode = 1;
      });
    });
}
