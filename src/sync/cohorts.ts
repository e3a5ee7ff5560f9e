import { createReadStream, existsSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { CsvError, parse } from 'csv-parse';
import { sql } from 'kysely';
import { AmpError, toAmpError } from '../errors';
import { newId } from '../ids';
import type { Context } from '../store';

export interface ImportReport {
  cohort_id: string;
  name: string;
  /** Distinct members now in the cohort's snapshot. */
  members: number;
  /** Blank rows (no id: anonymous users), counted and skipped. */
  blank: number;
  /** Ids repeated in the file (after trimming), counted once. */
  duplicates: number;
  /** Ids that had leading/trailing whitespace, trimmed. */
  trimmed: number;
  replaced: boolean;
}

const BATCH = 5000;

/** Where a cohort's ids are read from: a file, or text given inline (the admin API, the UI's paste box). */
export type IdSource = { file: string } | { text: string; label?: string } | { ids: Iterable<string> };

const labelOf = (src: IdSource): string =>
  'file' in src ? src.file : 'text' in src ? (src.label ?? 'the CSV text') : 'the ids';

function openText(src: { file: string } | { text: string }, end?: number): Readable {
  if ('file' in src) return createReadStream(src.file, { encoding: 'utf8', ...(end ? { end } : {}) });
  return Readable.from([end ? src.text.slice(0, end) : src.text]);
}

/**
 * Streams the ids of a cohort file or text: a CSV whose header has a `user_id` column (other
 * columns ignored), or one id per line (first line without a comma and not a header). A CSV
 * that cannot be parsed is refused with its line number.
 */
async function* readIds(src: IdSource): AsyncGenerator<string> {
  if ('ids' in src) {
    yield* src.ids;
    return;
  }
  const firstLine = await readFirstLine(src);
  const header = firstLine.replace(/^\uFEFF/, '');
  const looksCsv = header.includes(',') || header.trim().replace(/^"|"$/g, '').toLowerCase() === 'user_id';
  if (!looksCsv) {
    const rl = createInterface({ input: openText(src), crlfDelay: Infinity });
    let first = true;
    for await (const line of rl) {
      yield first ? line.replace(/^\uFEFF/, '') : line;
      first = false;
    }
    return;
  }
  const parser = openText(src).pipe(
    parse({ bom: true, relax_column_count: true, skip_empty_lines: false, trim: false }),
  );
  let col = -1;
  try {
    for await (const rec of parser as AsyncIterable<string[]>) {
      if (col < 0) {
        const cols = rec.map((c) => c.trim());
        col = cols.findIndex((c) => c.toLowerCase() === 'user_id');
        if (col < 0) {
          parser.destroy();
          throw new AmpError(
            'invalid_input',
            `${labelOf(src)}: the CSV header has no user_id column (found: ${cols.map((c) => JSON.stringify(c)).join(', ')})`,
          );
        }
        continue;
      }
      yield rec[col] ?? '';
    }
  } catch (e) {
    if (e instanceof CsvError)
      throw new AmpError('invalid_input', `${labelOf(src)}: not a readable CSV: ${e.message}`, { cause: e });
    throw e;
  }
}

async function readFirstLine(src: { file: string } | { text: string }): Promise<string> {
  const rl = createInterface({ input: openText(src, 64 * 1024), crlfDelay: Infinity });
  for await (const line of rl) {
    rl.close();
    return line;
  }
  return '';
}

/** Imports (or re-imports, same id) a cohort's membership from a file (see importCohortIds). */
export async function importCohortFile(
  ctx: Context,
  input: { file: string; name: string; id?: string },
): Promise<ImportReport> {
  if (!existsSync(input.file) || !statSync(input.file).isFile()) {
    throw new AmpError('invalid_input', `cannot read ${input.file}: no such file`);
  }
  return importCohortIds(ctx, { name: input.name, ...(input.id ? { id: input.id } : {}), from: { file: input.file } });
}

/**
 * Imports (or re-imports, same id) a cohort's membership from a file, CSV text or a list of ids.
 * The cohort row and its members are replaced in ONE transaction: bad input leaves the previous
 * snapshot intact. Duplicates are absorbed by the (cohort_id, external_id) primary key and
 * counted from the rows the database actually inserted, so memory stays flat for million-row files.
 */
export async function importCohortIds(
  ctx: Context,
  input: { from: IdSource; name: string; id?: string },
): Promise<ImportReport> {
  const name = input.name.trim();
  if (!name) throw new AmpError('invalid_input', '--name must not be blank');
  const id = input.id?.trim() || newId('coh');
  const existing = await ctx.store.db
    .selectFrom('cohorts')
    .select(['id', 'origin'])
    .where('id', '=', id)
    .executeTakeFirst();
  if (existing && existing.origin !== 'file') {
    throw new AmpError('conflict', `cohort ${id} comes from ${existing.origin}, not a file; pick another --id`);
  }
  const now = Date.now();
  const counts: LineCounts = { nonBlank: 0, blank: 0, trimmed: 0 };
  let inserted: number;
  try {
    inserted = await ctx.store.engine.importCohortMembers({
      cohortId: id,
      batches: idBatches(input.from, counts),
      before: async (exec) => {
        await exec(sql`INSERT INTO cohorts (id, source_id, name, origin, size, last_computed, created_at, updated_at, blank_ids)
          VALUES (${id}, NULL, ${name}, 'file', 0, ${now}, ${now}, ${now}, 0)
          ON CONFLICT (id) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at`);
        await exec(sql`DELETE FROM cohort_members WHERE cohort_id = ${id}`);
      },
      after: async (exec, added) => {
        await exec(
          sql`UPDATE cohorts SET size = ${added}, blank_ids = ${counts.blank}, last_computed = ${now}, updated_at = ${now} WHERE id = ${id}`,
        );
      },
    });
  } catch (e) {
    throw toAmpError(e);
  }
  return {
    cohort_id: id,
    name,
    members: inserted,
    blank: counts.blank,
    duplicates: counts.nonBlank - inserted,
    trimmed: counts.trimmed,
    replaced: existing !== undefined,
  };
}

interface LineCounts {
  nonBlank: number;
  blank: number;
  trimmed: number;
}

/** The source's ids, trimmed, in batches of BATCH; blank and trimmed lines are counted into `counts`. */
async function* idBatches(src: IdSource, counts: LineCounts): AsyncGenerator<string[]> {
  let buf: string[] = [];
  for await (const raw of readIds(src)) {
    const v = raw.trim();
    if (!v) {
      counts.blank++;
      continue;
    }
    if (v !== raw) counts.trimmed++;
    counts.nonBlank++;
    buf.push(v);
    if (buf.length >= BATCH) {
      yield buf;
      buf = [];
    }
  }
  if (buf.length) yield buf;
}

export interface CohortView {
  id: string;
  name: string;
  origin: string;
  source_id: string | null;
  size: number | null;
  blank_ids: number;
  last_computed: number | null;
  created_at: number;
  updated_at: number;
}

export async function listCohorts(ctx: Context, opts: { origin?: string } = {}): Promise<CohortView[]> {
  let q = ctx.store.db.selectFrom('cohorts').selectAll().orderBy('created_at').orderBy('id');
  if (opts.origin) q = q.where('origin', '=', opts.origin);
  const rows = await q.execute();
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    origin: r.origin,
    source_id: r.source_id,
    size: r.size === null ? null : Number(r.size),
    blank_ids: Number(r.blank_ids),
    last_computed: r.last_computed === null ? null : Number(r.last_computed),
    created_at: Number(r.created_at),
    updated_at: Number(r.updated_at),
  }));
}
