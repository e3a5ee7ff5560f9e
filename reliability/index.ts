/**
 * `npm run reliability`: every reliability scenario (faults, crash, bad-input, secrets, guard)
 * on SQLite and then on PostgreSQL, each printing one JSON line with its figures and
 * `targets_met`. The real `ampsignal` command runs every process (built first from src/).
 *
 *   npm run reliability                       # the sizes, both databases
 *   npm run reliability -- --quick            # smaller sizes (a few minutes)
 *   npm run reliability -- faults --db sqlite # some scenarios, one database
 *   npm run reliability -- crash --kills 5    # any size field of a scenario: --name value
 *   npm run reliability -- --no-build         # use dist/ as built (another run is using it)
 *
 * Exit code 1 when a target was missed or a scenario failed.
 */
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Dialect } from './cluster';
import { http, stopClustersOnSignal } from './cluster';

interface Scenario {
  run(dialect: Dialect, size: Record<string, number>): Promise<Record<string, unknown>>;
  sizes: Record<'full' | 'quick', Record<string, number>>;
}

const SCENARIOS = ['faults', 'crash', 'bad-input', 'secrets', 'guard'] as const;
const DIALECTS: readonly Dialect[] = ['sqlite', 'postgres'];

const here = dirname(fileURLToPath(import.meta.url));

function parseArgs(argv: string[]) {
  const names: string[] = [];
  const overrides: Record<string, number> = {};
  let dialects = DIALECTS;
  let quick = false;
  let build = true;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') quick = true;
    else if (a === '--no-build') build = false;
    else if (a === '--db') {
      const d = argv[++i] as Dialect;
      if (!DIALECTS.includes(d)) throw new Error(`--db takes sqlite or postgres, not "${d}"`);
      dialects = [d];
    } else if (a.startsWith('--')) {
      const value = Number(argv[++i]);
      if (!Number.isFinite(value)) throw new Error(`${a} takes a number`);
      overrides[a.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())] = value;
    } else if ((SCENARIOS as readonly string[]).includes(a)) names.push(a);
    else throw new Error(`unknown scenario "${a}"; scenarios: ${SCENARIOS.join(', ')}`);
  }
  return { names: names.length ? names : [...SCENARIOS], dialects, quick, build, overrides };
}

const print = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(line)}\n`);

const args = parseArgs(process.argv.slice(2));
stopClustersOnSignal();
// The scenarios run the shipped command, so it is built from the sources first (as `npm test` does).
// --no-build: two runs at once must not rebuild dist/ under each other's processes.
if (args.build)
  execFileSync(process.execPath, [join(here, '../scripts/build.mjs')], { stdio: ['ignore', 'ignore', 'inherit'] });

let missed = 0;
for (const name of args.names) {
  const mod = (await import(`./${name}.scenario.ts`)) as Scenario;
  const base = mod.sizes[args.quick ? 'quick' : 'full'];
  const size = { ...base };
  for (const [k, v] of Object.entries(args.overrides)) if (k in base) size[k] = v;
  for (const database of args.dialects) {
    try {
      const line = await mod.run(database, size);
      if (line.targets_met !== true) missed++;
      print({ scenario: name, database, ...line });
    } catch (e) {
      missed++;
      print({ scenario: name, database, error: (e as Error).message, targets_met: false });
    }
  }
}
await http.close();
process.exit(missed ? 1 : 0);
