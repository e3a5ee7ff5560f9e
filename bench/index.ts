/**
 * `npm run bench`: runs every bench/*.bench.ts (or those named on the command line, e.g.
 * `npm run bench -- diff paced`) one after another, each printing one JSON line on stdout
 * with a `ratio` measured side by side against a baseline in the same run.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => wanted.length === 0 || wanted.includes(f.replace(/\.bench\.ts$/, '')))
  .sort();

let failed = 0;
for (const f of files) {
  const mod = (await import(pathToFileURL(join(here, f)).href)) as { run: () => Promise<Record<string, unknown>> };
  try {
    const line = await mod.run();
    process.stdout.write(`${JSON.stringify(line)}\n`);
  } catch (e) {
    failed++;
    process.stdout.write(`${JSON.stringify({ bench: f.replace(/\.bench\.ts$/, ''), error: (e as Error).message })}\n`);
  }
}
process.exit(failed ? 1 : 0);
