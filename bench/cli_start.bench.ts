/**
 * cli_start: how long the installed command takes to answer, as a user types it. Median wall
 * time over RUNS runs each of `--version`, `--help` and `runs list --json` (on an empty SQLite
 * database), interleaved with `node -e 0` measured in the same rounds; ratio = median / median of
 * `node -e 0`. Targets: --version and --help ≤ 4×, runs list ≤ 8×. Also the peak RSS of runs list.
 * Runs the compiled bin (bin/ampsignal.mjs → dist/): `npm run build` first.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchDialect } from './db';
import { median } from './load';

const BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../bin/ampsignal.mjs');
const RUNS = 15;
const TARGETS = { version: 4, help: 4, runs_list: 8 } as const;

export const databases: readonly BenchDialect[] = ['sqlite'];
export const why =
  'start-up of a command on the default install (SQLite, no --db); PostgreSQL adds a connection, not start-up';

/** Wall milliseconds of one run. */
function timed(args: string[], cwd: string): number {
  const started = performance.now();
  const r = spawnSync(process.execPath, args, { cwd, encoding: 'utf8' });
  const ms = performance.now() - started;
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

/** Peak RSS in kB, from GNU time (absent on some machines: then undefined). */
function peakRssKb(args: string[], cwd: string): number | undefined {
  const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, ...args], { cwd, encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  const kb = Number(r.stderr.trim().split('\n').pop());
  return Number.isFinite(kb) ? kb : undefined;
}

export async function run(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'ampsignal-bench-cli-'));
  try {
    const commands = {
      node: ['-e', '0'],
      version: [BIN, '--version'],
      help: [BIN, '--help'],
      runs_list: [BIN, 'runs', 'list', '--json'],
    };
    // The first `runs list` creates and migrates the database: not what a user waits for each time.
    timed(commands.runs_list, dir);
    const samples: Record<keyof typeof commands, number[]> = { node: [], version: [], help: [], runs_list: [] };
    for (let i = 0; i < RUNS; i++) {
      for (const [name, args] of Object.entries(commands)) {
        samples[name as keyof typeof commands].push(timed(args, dir));
      }
    }
    const nodeMs = median(samples.node);
    const line: Record<string, unknown> = { bench: 'cli_start', runs: RUNS, node_ms: round(nodeMs) };
    let met = true;
    for (const name of Object.keys(TARGETS) as Array<keyof typeof TARGETS>) {
      const ms = median(samples[name]);
      const ratio = ms / nodeMs;
      line[`${name}_ms`] = round(ms);
      line[`${name}_ratio`] = round(ratio, 2);
      met &&= ratio <= TARGETS[name];
    }
    line.runs_list_peak_rss_mb = round((peakRssKb(commands.runs_list, dir) ?? Number.NaN) / 1024);
    line.targets = 'version, help <= 4x node -e 0; runs list <= 8x';
    line.met = met;
    return line;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function round(n: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
