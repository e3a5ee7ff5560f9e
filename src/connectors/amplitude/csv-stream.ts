import { pipeline, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { parse } from 'csv-parse';
import { AmpError } from '../../errors';
import { COHORT_FILE_USER_COLUMN, COHORT_FILE_VALUE_PREFIX } from './constants';

/**
 * Turns the byte stream of an Amplitude cohort file into CSV records, one at a time, without
 * ever holding the file: gunzip when the bytes say gzip (magic 1f 8b — S3 serves the file with or
 * without Content-Encoding, and undici never decodes), then csv-parse with a header row.
 */

async function* prepend(head: Buffer, rest: AsyncIterator<Uint8Array>): AsyncGenerator<Buffer> {
  if (head.length) yield head;
  for (;;) {
    const r = await rest.next();
    if (r.done) return;
    yield Buffer.from(r.value);
  }
}

/** Peeks at the first two bytes; gunzips when they are the gzip magic (repeatedly, for a gzip inside Content-Encoding gzip). */
async function maybeGunzip(body: AsyncIterable<Uint8Array>, depth = 0): Promise<AsyncIterable<Buffer>> {
  const it = body[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  while (head.length < 2) {
    const r = await it.next();
    if (r.done) break;
    head = Buffer.concat([head, Buffer.from(r.value)]);
  }
  const stream = prepend(head, it);
  if (depth >= 2 || head.length < 2 || head[0] !== 0x1f || head[1] !== 0x8b) return stream;
  const gunzip = createGunzip();
  pipeline(Readable.from(stream), gunzip, () => {
    /* errors surface through the gunzip stream's iterator */
  });
  return maybeGunzip(gunzip, depth + 1);
}

/** Strips the tab Amplitude prefixes to every header and value [S], and surrounding whitespace. */
export function cleanCell(v: string): string {
  let s = v;
  while (s.startsWith(COHORT_FILE_VALUE_PREFIX)) s = s.slice(COHORT_FILE_VALUE_PREFIX.length);
  return s.trim();
}

/** Streams the file's records as objects keyed by (cleaned) header names. */
export async function* csvRecords(body: AsyncIterable<Uint8Array>): AsyncGenerator<Record<string, string>> {
  let bytes: AsyncIterable<Buffer>;
  try {
    bytes = await maybeGunzip(body);
  } catch (e) {
    throw asFileError(e);
  }
  const parser = parse({
    columns: (header: string[]) => header.map(cleanCell),
    bom: true,
    // A tab before an opening quote (`\t"user"`) would otherwise be an "invalid opening quote".
    ltrim: true,
    relax_column_count: true,
    skip_empty_lines: true,
  });
  let pipeError: unknown;
  pipeline(Readable.from(bytes), parser, (e) => {
    if (e) pipeError = e;
  });
  try {
    for await (const rec of parser as AsyncIterable<Record<string, string>>) {
      yield rec;
    }
  } catch (e) {
    throw asFileError(e);
  }
  if (pipeError) throw asFileError(pipeError);
}

function asFileError(e: unknown): AmpError {
  if (e instanceof AmpError) return e;
  const err = e as { code?: string; message?: string };
  // A dropped connection or a truncated gzip: the download is worth retrying from scratch.
  const transport =
    err.code === 'Z_BUF_ERROR' ||
    err.code === 'ECONNRESET' ||
    /^UND_ERR/.test(err.code ?? '') ||
    /aborted|terminated|unexpected end|closed/i.test(err.message ?? '');
  return new AmpError(
    transport ? 'network' : 'vendor_rejected',
    `cohort file could not be read: ${err.code ?? ''} ${err.message ?? String(e)}`.trim(),
    {
      cause: e,
    },
  );
}

export interface MappedRows {
  /** Rows whose mapped id was empty (anonymous users). */
  skippedAnonymous: number;
  rows: number;
}

/**
 * Streams the mapped external ids of a cohort file to `add`: `user_id` by default, or the
 * column of a user property requested with props=1&propKeys=P. With props=1 Amplitude adds one
 * column per property [S, inferred]; we match the header by exact name, then case-insensitively,
 * then as `user_properties.P` / `P` suffix so either naming works.
 */
export async function streamExternalIds(
  body: AsyncIterable<Uint8Array>,
  property: string,
  add: (externalId: string) => Promise<void> | void,
): Promise<MappedRows> {
  let column: string | undefined;
  let skippedAnonymous = 0;
  let rows = 0;
  for await (const rec of csvRecords(body)) {
    if (column === undefined) column = pickColumn(Object.keys(rec), property);
    rows++;
    const raw = rec[column];
    const id = raw === undefined ? '' : cleanCell(raw);
    if (!id) {
      skippedAnonymous++;
      continue;
    }
    const p = add(id);
    if (p) await p;
  }
  return { skippedAnonymous, rows };
}

export function pickColumn(headers: string[], property: string): string {
  const exact = headers.find((h) => h === property);
  if (exact !== undefined) return exact;
  const lower = property.toLowerCase();
  const ci = headers.find((h) => h.toLowerCase() === lower);
  if (ci !== undefined) return ci;
  const suffixed = headers.find((h) => h.toLowerCase().endsWith(`.${lower}`) || h.toLowerCase().endsWith(`_${lower}`));
  if (suffixed !== undefined && property !== COHORT_FILE_USER_COLUMN) return suffixed;
  throw new AmpError(
    'vendor_rejected',
    `the cohort file has no "${property}" column (columns: ${headers.join(', ') || 'none'}); ` +
      (property === COHORT_FILE_USER_COLUMN
        ? 'Amplitude changed the file format'
        : 'check the external id property name'),
  );
}
