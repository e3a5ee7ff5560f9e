import { readFile, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { applyConfig, exportConfig, type LoadedConfig, loadConfig, planConfig, planLines } from '../app/config';
import { AmpError } from '../errors';
import { emit, withContext } from './output';

const DEFAULT_FILE = 'ampsignal.yaml';

/** Reads and checks the file before any database is opened: a bad file is an error naming its line. */
async function readConfig(path: string): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new AmpError('invalid_input', `cannot read ${path}${code === 'ENOENT' ? ': no such file' : ` (${code})`}`);
  }
  return loadConfig(text, { file: basename(path), env: process.env });
}

export function register(program: Command): void {
  program
    .command('plan')
    .description('Show what apply would create, change or delete to make the database match a configuration file')
    .option('-f, --file <path>', 'the configuration file', DEFAULT_FILE)
    .option('--prune', 'plan as apply --prune: objects not in the file are deleted')
    .option('--json', 'print JSON only')
    .action(async (flags: { file: string; prune?: boolean; json?: boolean }, cmd: Command) => {
      const loaded = await readConfig(flags.file);
      await withContext(cmd, async (ctx) => {
        const plan = await planConfig(ctx, loaded, { prune: flags.prune === true });
        emit(flags.json, plan, () => planLines(plan).join('\n'));
      });
    });

  program
    .command('apply')
    .description('Make the database match a configuration file (a second apply changes nothing)')
    .option('-f, --file <path>', 'the configuration file', DEFAULT_FILE)
    .option('--prune', 'also delete what the file does not list (deleting a sync removes its tags at OneSignal)')
    .option('--json', 'print JSON only')
    .action(async (flags: { file: string; prune?: boolean; json?: boolean }, cmd: Command) => {
      const loaded = await readConfig(flags.file);
      await withContext(cmd, async (ctx) => {
        const r = await applyConfig(ctx, loaded, { prune: flags.prune === true });
        emit(flags.json, r, () =>
          [
            ...(r.applied.length ? planLines(r.plan).slice(0, -1) : []),
            ...r.applied.map((a) => `${a.action}d ${a.kind} "${a.name}" (${a.id})${a.message ? `: ${a.message}` : ''}`),
            r.message,
          ].join('\n'),
        );
      });
    });

  program
    .command('export')
    .description(
      'Write the current configuration as a file for plan/apply (keys as environment variable references, never values)',
    )
    .option('-o, --output <path>', 'write to this file instead of stdout')
    .action(async (flags: { output?: string }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const text = await exportConfig(ctx);
        if (flags.output) await writeFile(flags.output, text, { mode: 0o644 });
        else process.stdout.write(text);
      });
    });
}
