/**
 * `npm run bench`: runs every bench/*.bench.ts (or those named on the command line, e.g.
 * `npm run bench -- diff paced`) one after another, each on SQLite and then on PostgreSQL
 * (`--db sqlite|postgres` picks one; see db.ts), each run printing one JSON line on stdout with
 * its `database` and a `ratio` measured side by side against a baseline in the same run. A bench
 * that only makes sense on one database exports `databases` and a `why`; on the other it prints
 * a line saying so instead of a figure.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type BenchDialect, DIALECTS, parseBenchArgs } from './db';

interface BenchModule {
  run: (dialect: BenchDialect) => Promise<Record<string, unknown>>;
  /** The databases it runs on (default both), and why not the other. */
  databases?: readonly BenchDialect[];
  why?: string;
}

const here = dirname(fileURLToPath(import.meta.url));
const { names, dialects } = parseBenchArgs(process.argv.slice(2));
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => names.length === 0 || names.includes(f.replace(/\.bench\.ts$/, '')))
  .sort();

const print = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(line)}\n`);

let failed = 0;
for (const f of files) {
  const bench = f.replace(/\.bench\.ts$/, '');
  const mod = (await import(pathToFileURL(join(here, f)).href)) as BenchModule;
  for (const database of dialects) {
    if (!(mod.databases ?? DIALECTS).includes(database)) {
      print({ bench, database, skipped: mod.why ?? `runs on ${mod.databases?.join(', ')} only` });
      continue;
    }
    try {
      // bench and database first, whatever the bench returns; the bench's own fields after.
      print({ bench, database, ...(await mod.run(database)) });
    } catch (e) {
      failed++;
      print({ bench, database, error: (e as Error).message });
    }
  }
}
process.exit(failed ? 1 : 0);
